//! The iterative model: one client at a time, in the accepting thread — the textbook's
//! `for (;;) { accept(); write(); close(); }` — with blocking calls.

use std::net::TcpListener;
use std::sync::Arc;

use hello_proto::Error;

use crate::accept::Acceptor;
use crate::blocking::{self, Env, InFlight};
use crate::budget::Budget;
use crate::{Config, Stop, Summary};

/// Accepts and serves clients one after another until `stop` (or, with `--once`, after
/// one client).
pub fn run(listener: TcpListener, config: &Config, stop: &Stop) -> Result<Summary, Error> {
    let mut acceptor = Acceptor::new(listener, config, stop, false)?;
    let in_flight = Arc::new(InFlight::default());
    let _armed = blocking::reset_after_grace(stop, &in_flight, config);
    let budget = Budget::new(config.max_buffered);
    let env = Env {
        config,
        budget: &budget,
        stop,
        in_flight: &in_flight,
    };
    let mut summary = Summary::default();
    while let Some((stream, peer)) = acceptor.next_blocking(stop)? {
        summary.count(blocking::serve(stream, peer, env));
    }
    Ok(summary)
}
