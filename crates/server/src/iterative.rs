//! The iterative model: one client at a time, in the accepting thread — the textbook's
//! `for (;;) { accept(); write(); close(); }`.

use std::net::{Shutdown, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::Arc;

use hello_proto::{Error, Step};
use socket2::SockRef;

use crate::accept::{AcceptFailure, AcceptFailures, BACKOFF};
use crate::{Config, Stop, exchange, report, traced_accept};

/// Accepts and serves clients one after another until `stop`.
pub fn run(listener: TcpListener, config: &Config, stop: &Stop) -> Result<(), Error> {
    accept_loop(
        listener,
        config,
        stop,
        || true,
        |stream, peer| {
            if let Err(e) =
                exchange::serve(stream, peer, &config.service, config.idle_timeout, &config.tracer)
            {
                report(&e);
            }
        },
    )
}

/// The blocking accept loop shared by the iterative and thread-per-client models.
/// `admit` runs before each `accept()` and may block until a client can be taken (false:
/// stopped); `serve` takes each accepted connection. A stop wakes a blocked `accept()` by
/// `shutdown(SHUT_RD)` on the listening socket, which makes it fail with EINVAL.
pub(crate) fn accept_loop(
    listener: TcpListener,
    config: &Config,
    stop: &Stop,
    mut admit: impl FnMut() -> bool,
    mut serve: impl FnMut(std::net::TcpStream, std::net::SocketAddr),
) -> Result<(), Error> {
    let local = listener
        .local_addr()
        .map_err(|e| Error::new(Step::Getsockname, "listener", e))?;
    let listener = Arc::new(listener);
    let waking = Arc::clone(&listener);
    let _wake = stop.on_stop(move || {
        let _ = SockRef::from(&*waking).shutdown(Shutdown::Read);
    });
    let mut failures = AcceptFailures::new(local, listener.as_raw_fd(), &config.tracer);
    loop {
        if stop.is_stopped() || !admit() {
            return Ok(());
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                failures.recovered();
                traced_accept(&*listener, &stream, peer, &config.tracer);
                serve(stream, peer);
            }
            Err(e) => {
                if stop.is_stopped() {
                    return Ok(());
                }
                if failures.handle(e)? == AcceptFailure::Backoff {
                    std::thread::sleep(BACKOFF);
                }
            }
        }
    }
}
