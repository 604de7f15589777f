//! hello-server as a library: [`run`] serves an already bound listening socket until
//! stopped, so the binary binds the real port and tests bind port 0. It never binds,
//! never exits the process, and returns by itself within the grace after a stop.
//!
//! ```text
//! terminal 1: hello-server 9190
//! terminal 2: hello-client 127.0.0.1 9190
//! ```
//!
//! What happens to one connection is `hello_proto::conn`; `drive` turns its actions into
//! the traced calls of `hello_proto::sys`; [`accept`] is the one accept step. The models
//! of [`Model`] ([`iterative`], [`fork`], [`threads`], [`select`], [`event_loop`] for
//! epoll, [`uring`]) only say how they wait; [`udp`] serves datagrams. ARCHITECTURE.md
//! draws the map.

pub mod accept;
pub mod agent;
mod blocking;
pub mod budget;
pub mod cli;
mod drive;
pub mod event_loop;
mod exchanges;
pub mod exporter;
pub mod fork;
pub mod iterative;
pub mod log;
pub mod metrics;
pub mod select;
pub mod slots;
pub mod stop;
pub mod textbook;
pub mod threads;
mod timers;
pub mod udp;
pub mod uring;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use hello_proto::Error;
use hello_proto::conn::{self, Limits};
use hello_proto::sys::Tracer;
use hello_proto::wire::Service;

pub use budget::DEFAULT_MAX_BUFFERED;
pub use log::report;
pub use stop::Stop;

/// Default `--idle-timeout`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = conn::DEFAULT_IDLE;
/// Default `--request-timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = conn::DEFAULT_REQUEST;
/// Default `--max-conns` of the models that pay for each slot (a thread, in the threads
/// model); the event loop's default follows the descriptors the process may open
/// ([`max_conns_for_descriptors`]).
pub const DEFAULT_MAX_CONNS: usize = 1024;
/// Descriptors an event-loop server keeps for itself (the standard streams, the listening
/// socket, the signal pipe, epoll and its eventfd, and some to spare) when its default
/// `--max-conns` is worked out from the descriptor limit.
pub const RESERVED_FDS: u64 = 16;
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
    /// One select() loop, as the textbook's I/O multiplexing chapter writes it.
    Select,
    /// A child process per client (fork()), as the textbook's multi-process chapter
    /// writes it.
    Fork,
    /// One io_uring ring serving every client: calls queued, submitted and reaped in
    /// batches (Linux 5.19 or later).
    Uring,
}

impl Model {
    /// Every model (clap's [`clap::ValueEnum::value_variants`]), in the order the
    /// textbook teaches them: iterative, fork, select, threads, epoll, then io_uring,
    /// which it does not. Every list of models (the lesson, `cargo xtask models`, `soak`,
    /// `cluster`, `bench`, the end-to-end tests) starts from this one.
    pub fn in_textbook_order() -> Vec<Model> {
        let mut all = <Model as clap::ValueEnum>::value_variants().to_vec();
        all.sort_by_key(|m| m.chapter());
        all
    }

    /// Where the textbook comes to the model (io_uring, which it has not, last).
    const fn chapter(self) -> u8 {
        match self {
            Model::Iterative => 0,
            Model::Fork => 1,
            Model::Select => 2,
            Model::Threads => 3,
            Model::Epoll => 4,
            Model::Uring => 5,
        }
    }
}

/// The name `--model` takes (`epoll`), as clap derives it from the variant.
impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match clap::ValueEnum::to_possible_value(self) {
            Some(value) => f.write_str(value.get_name()),
            None => write!(f, "{self:?}"),
        }
    }
}

/// How `--workers` share the arriving connections (`--accept-queues`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum AcceptQueues {
    /// A listening socket per worker, one `SO_REUSEPORT` set: the kernel hashes each new
    /// connection onto one worker's queue.
    #[default]
    PerWorker,
    /// One listening socket, one queue, that every worker watches with `EPOLLEXCLUSIVE`:
    /// a new connection wakes one waiting worker, and whichever is free takes it.
    Shared,
}

/// What a server serves and within which limits.
#[derive(Debug, Clone)]
pub struct Config {
    /// The service (hello or echo).
    pub service: Service,
    /// The idle and request timeouts and the discard's bounds of every connection.
    pub limits: Limits,
    /// Clients served at once (`--max-conns`; every model but the iterative one, which
    /// serves one); more wait in the backlog.
    pub max_conns: usize,
    /// Bytes of requests and replies all connections together may hold (`--max-buffered`).
    pub max_buffered: usize,
    /// Bound on finishing exchanges in flight after a stop.
    pub grace: Duration,
    /// Serve one client (or datagram), then return (`--once`).
    pub once: bool,
    /// Every connection starts with a PROXY protocol header (`--proxy-protocol`).
    pub proxy_protocol: bool,
    /// The peers whose PROXY headers are believed (`--proxy-from`); `None`: every peer's.
    pub proxy_from: Option<Vec<hello_proto::addr::Cidr>>,
    /// The listening socket was inherited (socket activation) and may be shared with
    /// another process: a stop leaves its queue to that process.
    pub inherited_listener: bool,
    /// Where socket calls are narrated (`--trace`).
    pub tracer: Tracer,
    /// `--metrics`: the fork model answers its scrapes from its loop (the other models'
    /// exporter has a thread of its own, and this is `None` for them).
    pub exporter: Option<Arc<exporter::Exporter>>,
}

impl Config {
    /// The documented defaults, for `service`.
    pub fn new(service: Service) -> Config {
        Config {
            service,
            limits: Limits::default(),
            max_conns: DEFAULT_MAX_CONNS,
            max_buffered: DEFAULT_MAX_BUFFERED,
            grace: GRACE,
            once: false,
            proxy_protocol: false,
            proxy_from: None,
            inherited_listener: false,
            tracer: Tracer::off(),
            exporter: None,
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

    /// Adds another worker's counts.
    fn add(&mut self, other: Summary) {
        self.exchanges += other.exchanges;
        self.failed += other.failed;
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
        Model::Select => select::run(listener, &config, &stop),
        Model::Fork => fork::run(listener, &config, &stop),
        Model::Uring => uring::run(listener, &config, &stop, None),
    }
}

/// What a model sets up or checks before the server says it listens (the io_uring
/// model's ring; the fork model's one thread), so that a kernel that refuses it is an
/// error before the start-up line.
pub struct Prepared(Option<hello_proto::sys::uring::Ring>);

/// Sets up what `model` needs before serving (see [`Prepared`]), on the thread that will
/// call [`run_prepared`]; `local` names the server in an error.
pub fn prepare(model: Model, config: &Config, local: std::net::SocketAddr) -> Result<Prepared, Error> {
    match model {
        Model::Uring => uring::prepare(config, local).map(|ring| Prepared(Some(ring))),
        Model::Fork => fork::check_one_thread(local).map(|()| Prepared(None)),
        _ => Ok(Prepared(None)),
    }
}

/// [`run_workers`] with what [`prepare`] set up.
pub fn run_prepared(
    listeners: Vec<TcpListener>,
    queues: AcceptQueues,
    model: Model,
    config: Arc<Config>,
    stop: Stop,
    prepared: Prepared,
) -> Result<Summary, Error> {
    let mut listeners = listeners;
    if let (Model::Uring, Some(ring), 1) = (model, prepared.0, listeners.len()) {
        if let Some(listener) = listeners.pop() {
            return uring::run(listener, &config, &stop, Some(ring));
        }
    }
    run_workers(listeners, queues, model, config, stop)
}

/// [`run`] for `--workers`: the epoll model runs an event loop per listening socket, each
/// on a thread of its own. `listeners` are one `SO_REUSEPORT` set
/// ([`AcceptQueues::PerWorker`]) or copies of one socket ([`AcceptQueues::Shared`]:
/// `hello_proto::sys::dup_listener`). The other models take exactly one socket.
pub fn run_workers(
    mut listeners: Vec<TcpListener>,
    queues: AcceptQueues,
    model: Model,
    config: Arc<Config>,
    stop: Stop,
) -> Result<Summary, Error> {
    if model == Model::Epoll {
        return event_loop::run_workers(listeners, queues, &config, &stop);
    }
    match (listeners.pop(), listeners.is_empty()) {
        (Some(listener), true) => run(listener, model, config, stop),
        _ => Err(Error::new(
            hello_proto::Step::Listen,
            "the listening sockets",
            std::io::Error::other(format!("the {model:?} model serves one listening socket")),
        )),
    }
}

/// Runs `work` on each of `workers`, each on a thread of its own named `{name}-N`, and
/// adds their summaries. A worker that fails (or panics, or cannot be started) stops the
/// others; the first failure is returned. The event loop's workers and the UDP server's
/// are both run this way.
pub(crate) fn on_worker_threads<W: Send>(
    workers: Vec<W>,
    name: &str,
    stop: &Stop,
    work: impl Fn(W) -> Result<Summary, Error> + Sync,
) -> Result<Summary, Error> {
    let work = &work;
    let results: Vec<Result<Summary, Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .into_iter()
            .enumerate()
            .map(|(i, w)| {
                std::thread::Builder::new()
                    .name(format!("{name}-{}", i + 1))
                    .spawn_scoped(scope, move || {
                        let result = work(w);
                        if result.is_err() {
                            stop.stop();
                        }
                        result
                    })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                let joined = match h {
                    Ok(h) => h.join().map_err(|_| std::io::Error::other("it panicked")),
                    Err(e) => Err(e),
                };
                joined.unwrap_or_else(|e| {
                    stop.stop();
                    Err(Error::new(
                        hello_proto::Step::Spawn,
                        format!("a {name} thread"),
                        e,
                    ))
                })
            })
            .collect()
    });
    let mut summary = Summary::default();
    let mut first_error = None;
    for result in results {
        match result {
            Ok(s) => summary.add(s),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// The default `--max-conns` of the event loop: every descriptor the process may open but
/// [`RESERVED_FDS`], each client needing one. (The threads model keeps
/// [`DEFAULT_MAX_CONNS`]: each of its slots is a thread.)
pub fn max_conns_for_descriptors(nofile: u64) -> usize {
    usize::try_from(nofile.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_come_in_the_textbooks_order_each_once_by_its_model_name() {
        let names: Vec<String> = Model::in_textbook_order().iter().map(Model::to_string).collect();
        assert_eq!(
            names,
            ["iterative", "fork", "select", "threads", "epoll", "uring"]
        );
        for m in Model::in_textbook_order() {
            assert_eq!(<Model as clap::ValueEnum>::from_str(&m.to_string(), false), Ok(m));
        }
    }
}
