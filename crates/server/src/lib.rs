//! hello-server as a library: `run` serves an already bound socket until stopped, so the
//! binary binds the real port and tests bind port 0.
//!
//! ```text
//! terminal 1: hello-server 9190
//! terminal 2: hello-client 127.0.0.1 9190
//! ```

pub mod accept;
pub mod event_loop;
pub mod exchange;
pub mod iterative;
pub mod stop;
pub mod threads;
pub mod udp;

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use hello_proto::trace::{Event, Tracer};
use hello_proto::wire::Service;
use hello_proto::{Error, Step};

pub use stop::Stop;

use crate::accept::{AcceptFailure, AcceptFailures, BACKOFF};

/// Default `--idle-timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `--max-conns`.
pub const DEFAULT_MAX_CONNS: usize = 1024;
/// How long exchanges in flight may take to finish after a stop (SPEC §7).
pub const GRACE: Duration = Duration::from_secs(2);

/// How clients are served (`--model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// One client at a time, in the accepting thread: the textbook's first server.
    Iterative,
    /// A thread per client, at most `max_conns` at once.
    Threads,
    /// One `epoll` event loop (mio) serving every client.
    Epoll,
}

impl Model {
    /// Every model, for tests and benchmarks that cover them all.
    pub const ALL: [Model; 3] = [Model::Iterative, Model::Threads, Model::Epoll];

    /// The name used by `--model`.
    pub fn name(self) -> &'static str {
        match self {
            Model::Iterative => "iterative",
            Model::Threads => "threads",
            Model::Epoll => "epoll",
        }
    }
}

/// What a server serves and within which limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// The service (hello or echo).
    pub service: Service,
    /// A client that sends nothing for this long is closed.
    pub idle_timeout: Duration,
    /// Clients served at once (threads and epoll models); more wait in the backlog.
    pub max_conns: usize,
    /// Bound on finishing exchanges in flight after a stop.
    pub grace: Duration,
    /// Where socket calls are narrated (`--trace`).
    pub tracer: Tracer,
}

impl Config {
    /// Defaults of SPEC §1 and §8 for `service`.
    pub fn new(service: Service) -> Config {
        Config {
            service,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_conns: DEFAULT_MAX_CONNS,
            grace: GRACE,
            tracer: Tracer::off(),
        }
    }
}

/// Serves TCP clients on `listener` with `model` until `stop` is triggered, then lets the
/// exchanges in flight finish (at most `config.grace`) and returns.
pub fn run(listener: TcpListener, model: Model, config: Arc<Config>, stop: Stop) -> Result<(), Error> {
    match model {
        Model::Iterative => iterative::run(listener, &config, &stop),
        Model::Threads => threads::run(listener, config, &stop),
        Model::Epoll => event_loop::run(listener, &config, &stop),
    }
}

/// Serves exactly one TCP client, then returns (`--once`, as `hello_server.c` does).
pub fn run_once(listener: TcpListener, config: &Config) -> Result<(), Error> {
    let local = listener
        .local_addr()
        .map_err(|e| Error::new(Step::Getsockname, "listener", e))?;
    let mut failures = AcceptFailures::new(local, listener.as_raw_fd(), &config.tracer);
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                traced_accept(&listener, &stream, peer, &config.tracer);
                return exchange::serve(stream, peer, &config.service, config.idle_timeout, &config.tracer);
            }
            Err(e) => {
                if failures.handle(e)? == AcceptFailure::Backoff {
                    std::thread::sleep(BACKOFF);
                }
            }
        }
    }
}

/// Traces a successful `accept()`.
fn traced_accept(listener: &impl AsRawFd, stream: &TcpStream, peer: SocketAddr, tracer: &Tracer) {
    if tracer.on() {
        tracer.emit(Event::Accept {
            listener: listener.as_raw_fd(),
            fd: stream.as_raw_fd(),
            peer,
        });
    }
}

/// Reports a failure that ends one client's exchange, not the server: one line on stderr.
pub fn report(err: &Error) {
    let line = format!("hello-server: {err}\n");
    let _ = io::stderr().lock().write_all(line.as_bytes());
}
