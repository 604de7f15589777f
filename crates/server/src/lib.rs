//! hello-server as a library: [`run`] serves an already bound listening socket until
//! stopped, so the binary binds the real port and tests bind port 0. It never binds,
//! never exits the process, and returns by itself within the grace after a stop.
//!
//! ```text
//! terminal 1: hello-server 9190
//! terminal 2: hello-client 127.0.0.1 9190
//! ```
//!
//! What happens to one connection is `hello_proto::conn`; [`drive`] turns its actions into
//! the traced calls of `hello_proto::sys`; [`accept`] is the one accept loop. The models
//! ([`iterative`], [`threads`], [`event_loop`]) only say how they wait. ARCHITECTURE.md
//! draws the map.

pub mod accept;
mod blocking;
mod drive;
pub mod event_loop;
pub mod iterative;
pub mod stop;
pub mod threads;
pub mod udp;

use std::io::{self, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use hello_proto::Error;
use hello_proto::conn::Limits;
use hello_proto::sys::Tracer;
use hello_proto::wire::Service;

pub use stop::Stop;

/// Default `--idle-timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `--max-conns`.
pub const DEFAULT_MAX_CONNS: usize = 1024;
/// How long exchanges in flight may take to finish after a stop
/// (docs/contract.md#signals-and-stopping).
pub const GRACE: Duration = Duration::from_secs(2);

/// How TCP clients are served (`--model`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Model {
    /// One client at a time, in the accepting thread: the textbook's first server.
    Iterative,
    /// A thread per client, at most `--max-conns` at once.
    Threads,
    /// One epoll event loop serving every client.
    #[default]
    Epoll,
}

/// What a server serves and within which limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// The service (hello or echo).
    pub service: Service,
    /// The idle timeout and the drain's bounds of every connection.
    pub limits: Limits,
    /// Clients served at once (threads and epoll models); more wait in the backlog.
    pub max_conns: usize,
    /// Bound on finishing exchanges in flight after a stop.
    pub grace: Duration,
    /// Serve one client (or datagram), then return (`--once`).
    pub once: bool,
    /// Where socket calls are narrated (`--trace`).
    pub tracer: Tracer,
}

impl Config {
    /// The documented defaults, for `service`.
    pub fn new(service: Service) -> Config {
        Config {
            service,
            limits: Limits::with_idle(DEFAULT_IDLE_TIMEOUT),
            max_conns: DEFAULT_MAX_CONNS,
            grace: GRACE,
            once: false,
            tracer: Tracer::off(),
        }
    }
}

/// What a server did, once it has returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Connections served to their end, whatever the end.
    pub exchanges: u64,
    /// Of those, the ones that failed (each reported in one line).
    pub failed: u64,
}

impl Summary {
    fn count(&mut self, failed: bool) {
        self.exchanges += 1;
        self.failed += u64::from(failed);
    }
}

/// Serves TCP clients on `listener` with `model` until `stop` is triggered (or, with
/// `config.once`, after one client), then lets the exchanges in flight finish within
/// `config.grace`, resets what is still unfinished, and returns.
pub fn run(listener: TcpListener, model: Model, config: Arc<Config>, stop: Stop) -> Result<Summary, Error> {
    match model {
        Model::Iterative => iterative::run(listener, &config, &stop),
        Model::Threads => threads::run(listener, config, &stop),
        Model::Epoll => event_loop::run(listener, &config, &stop),
    }
}

/// Reports a failure that ends one client's exchange, not the server: one line on stderr.
pub fn report(err: &Error) {
    let line = format!("hello-server: {err}\n");
    let _ = io::stderr().lock().write_all(line.as_bytes());
}
