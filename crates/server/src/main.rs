//! `hello-server [OPTIONS] <PORT>`: binds, prints `listening on ADDR`, serves until
//! SIGINT/SIGTERM (or one client with `--once`). The contract is docs/contract.md.
//!
//! ```text
//! terminal 1: hello-server 9190
//! terminal 2: hello-client 127.0.0.1 9190      # Message from server: Hello World!
//! ```

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::CommandFactory;
use clap::builder::TypedValueParser as _;
use clap::{Parser, ValueEnum};
use hello_proto::addr::{HumanDuration, parse_bind_ip, parse_human_duration, parse_server_port};
use hello_proto::conn::Limits;
use hello_proto::sys::{self, DEFAULT_BACKLOG, Tracer};
use hello_proto::trace::{Event, Lang, Role, Selection, join_trace_value};
use hello_proto::wire::{DEFAULT_GREETING, DEFAULT_MAX_REQUEST, MAX_DATAGRAM, Service};
use hello_server::agent::Agent;
use hello_server::{
    AcceptQueues, Config, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_BUFFERED, DEFAULT_MAX_CONNS,
    DEFAULT_REQUEST_TIMEOUT, GRACE, Model, Stop, Summary, max_conns_for_descriptors,
};

/// The textbook hello server (and its echo sibling), over TCP or UDP.
#[derive(Debug, Parser)]
#[command(name = "hello-server", version, about)]
struct Args {
    /// Port to listen on (0 lets the kernel choose; the start-up line shows it).
    #[arg(value_parser = parse_server_port, allow_negative_numbers = true)]
    port: u16,

    /// Local address to bind; `::` is dual-stack (IPv4 clients too).
    #[arg(short, long, value_name = "ADDR", default_value = "0.0.0.0", value_parser = parse_bind_ip)]
    bind: IpAddr,

    /// The listen() backlog (the kernel caps it at net.core.somaxconn).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BACKLOG, value_parser = clap::value_parser!(i32).range(0..))]
    backlog: i32,

    /// What is served.
    #[arg(long, value_enum, default_value_t = ServiceName::Hello)]
    service: ServiceName,

    /// The greeting of the hello service (sent with a trailing NUL).
    #[arg(long, value_name = "TEXT", default_value = DEFAULT_GREETING)]
    message: String,

    /// Serve exactly one client (over UDP: one datagram) with the chosen model, then exit.
    #[arg(long)]
    once: bool,

    /// Use a datagram (UDP) socket instead of a stream (TCP) socket.
    #[arg(long)]
    udp: bool,

    /// How TCP clients are served.
    #[arg(long, value_enum, default_value_t = Model::default())]
    model: Model,

    /// Clients served at once; more wait in the listen backlog [default: epoll: the
    /// descriptors the process may open, less 16; threads: 1024]
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000).map(|n| n as usize))]
    max_conns: Option<usize>,

    /// Event loops, one per thread, each with a listening socket of its own on the same
    /// port (SO_REUSEPORT); --max-conns and --max-buffered hold for them all. epoll model
    /// only [default: 1]
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024).map(usize::from))]
    workers: Option<usize>,

    /// How --workers share arriving connections: per-worker (a listening socket each, one
    /// SO_REUSEPORT set; the kernel picks the worker) or shared (one socket and queue,
    /// watched by every worker with EPOLLEXCLUSIVE; a free worker takes the next). A
    /// socket passed by socket activation is always shared
    #[arg(long, value_enum, value_name = "HOW", default_value_t = AcceptQueues::default())]
    accept_queues: AcceptQueues,

    /// A client that makes no progress (no byte read or sent) for this long is given up
    /// on (500ms, 2s, 1m).
    #[arg(long, value_name = "DUR", default_value_t = HumanDuration(DEFAULT_IDLE_TIMEOUT),
          value_parser = parse_human_duration)]
    idle_timeout: HumanDuration,

    /// An echo request that is not complete this long after the accept is given up on,
    /// however steadily it trickles in.
    #[arg(long, value_name = "DUR", default_value_t = HumanDuration(DEFAULT_REQUEST_TIMEOUT),
          value_parser = parse_human_duration)]
    request_timeout: HumanDuration,

    /// Bytes of requests and replies all clients together may hold in memory; a request
    /// that would go past it is answered "error: server busy".
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BUFFERED,
          value_parser = clap::value_parser!(u64).range(0..=1 << 40).map(|n| n as usize))]
    max_buffered: usize,

    /// Longest echo request in bytes, terminator not counted (at most 16 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_REQUEST,
          value_parser = clap::value_parser!(u32).range(0..=16 * 1024 * 1024).map(|n| n as usize))]
    max_request: usize,

    /// Answer HAProxy's agent check on this port ("up ready"; "drain" once stopping); a
    /// second start-up line, "agent on ADDR", gives its address.
    #[arg(long, value_name = "PORT", value_parser = parse_server_port)]
    agent_port: Option<u16>,

    /// After SIGINT/SIGTERM, keep serving this long (the agent answering "drain") before
    /// stopping, so that the balancer stops sending first [default: 0s].
    #[arg(long, value_name = "DUR", value_parser = parse_delay)]
    drain_delay: Option<HumanDuration>,

    /// Every TCP connection starts with a PROXY protocol header, version 1 or 2 (HAProxy's
    /// send-proxy, send-proxy-v2): the real client's address goes to the trace and logs.
    #[arg(long)]
    proxy_protocol: bool,

    /// Narrate every socket call on stderr; `--trace textbook`: only the calls the
    /// textbook's program makes (the others are counted at the end).
    #[arg(long, value_name = "textbook", num_args = 0..=1, require_equals = true,
          default_missing_value = "all", value_parser = Selection::parse)]
    trace: Option<Selection>,

    /// Language of the trace (default: from LC_ALL/LC_MESSAGES/LANG).
    #[arg(long, value_name = "en|ko", value_parser = Lang::parse)]
    lang: Option<Lang>,
}

/// A duration that may be zero (`0`, `0s`, `0ms`), for the drain delay.
fn parse_delay(s: &str) -> Result<HumanDuration, String> {
    match s.trim() {
        "0" | "0s" | "0ms" => Ok(HumanDuration(Duration::ZERO)),
        _ => parse_human_duration(s),
    }
}

impl Args {
    fn service_is_hello(&self) -> bool {
        matches!(self.service, ServiceName::Hello)
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ServiceName {
    /// Send the greeting and close.
    Hello,
    /// Reply "<len> : <msg>" to one message.
    Echo,
}

fn main() -> ExitCode {
    let args = Args::parse_from(join_trace_value(std::env::args_os().collect()));
    if args.model == Model::Fork && !args.udp && (args.agent_port.is_some() || args.drain_delay.is_some()) {
        Args::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--agent-port and --drain-delay need threads, which the fork model's process cannot have",
            )
            .exit();
    }
    if args.workers.is_some_and(|n| n > 1) {
        let conflict = if args.udp {
            Some("--workers is for TCP: the UDP server is one loop")
        } else if args.model != Model::Epoll {
            Some("--workers needs --model epoll (each worker is an event loop)")
        } else {
            None
        };
        if let Some(message) = conflict {
            Args::command()
                .error(clap::error::ErrorKind::ArgumentConflict, message)
                .exit();
        }
    }
    if args.udp && args.service_is_hello() && args.message.len() + 1 > MAX_DATAGRAM {
        Args::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                format!(
                    "--message: a UDP greeting (and its NUL) must fit one datagram of {MAX_DATAGRAM} bytes"
                ),
            )
            .exit();
    }
    let once = args.once;
    let result = run(args);
    // Client error lines held back by the rate limit are counted, not lost.
    hello_server::log::flush();
    match result {
        // With --once, a failed exchange (already reported in its line) fails the run.
        Ok(summary) if once && summary.failed > 0 => ExitCode::FAILURE,
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "hello-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<Summary> {
    let tracer = match args.trace {
        Some(selection) => Tracer::stderr(Role::Server, Lang::choose(args.lang), selection),
        None => Tracer::off(),
    };
    let service = match args.service {
        ServiceName::Hello => Service::hello(&args.message),
        ServiceName::Echo => Service::Echo {
            max_request: args.max_request,
        },
    };
    // More descriptors for the event loop's clients (a no-op where the soft limit is the
    // hard one already); freed request buffers go back to the system.
    let nofile = sys::process::raise_nofile_limit().unwrap_or(1024);
    sys::process::return_large_buffers_when_freed();
    let max_conns = args.max_conns.unwrap_or(match args.model {
        Model::Epoll => max_conns_for_descriptors(nofile),
        Model::Threads | Model::Iterative | Model::Fork => DEFAULT_MAX_CONNS,
        Model::Select => hello_server::select::MAX_CLIENTS,
    });
    let config = Arc::new(Config {
        service,
        limits: Limits {
            idle: args.idle_timeout.0,
            request: args.request_timeout.0,
            ..Limits::default()
        },
        max_conns,
        max_buffered: args.max_buffered,
        grace: GRACE,
        once: args.once,
        proxy_protocol: args.proxy_protocol,
        inherited_listener: false,
        tracer: tracer.clone(),
    });
    let stop = Stop::new();
    let addr = SocketAddr::new(args.bind, args.port);
    let drain_delay = args.drain_delay.map_or(Duration::ZERO, |d| d.0);
    // Signals are caught before the start-up line, so a script that reads the line and
    // then sends SIGTERM always gets a clean exit. They are set up after the socket, so
    // that the socket gets the lowest descriptor (3), as in the textbook.
    let summary = if args.udp {
        let socket = sys::bind_udp(addr, &tracer)?;
        watch_signals(stop.clone(), None, drain_delay, tracer.clone())?;
        announce(socket.local_addr().context("getsockname() error")?, None);
        hello_server::udp::run(socket, &config, &stop)?
    } else {
        // --once serves exactly one client: a second worker's queue could hold another.
        let workers = if args.once { 1 } else { args.workers.unwrap_or(1) };
        let mut queues = args.accept_queues;
        let (listeners, local, inherited) = match sys::process::activated_listener(&tracer) {
            // One socket is passed: its queue is shared by the workers.
            Some(passed) => {
                let (listener, local) = passed.context("socket activation")?;
                queues = AcceptQueues::Shared;
                (sys::dup_listener(listener, workers, &tracer)?, local, true)
            }
            None if workers > 1 && queues == AcceptQueues::Shared => {
                let listener = sys::listen_tcp(addr, args.backlog, &tracer)?;
                let local = listener.local_addr().context("getsockname() error")?;
                (sys::dup_listener(listener, workers, &tracer)?, local, false)
            }
            None if workers > 1 => {
                let listeners = sys::listen_tcp_reuseport(addr, args.backlog, workers, &tracer)?;
                let local = listeners
                    .first()
                    .map(|l| l.local_addr())
                    .context("no listening socket")?
                    .context("getsockname() error")?;
                (listeners, local, false)
            }
            None => {
                let listener = sys::listen_tcp(addr, args.backlog, &tracer)?;
                let local = listener.local_addr().context("getsockname() error")?;
                (vec![listener], local, false)
            }
        };
        let agent = args
            .agent_port
            .map(|port| Agent::start(SocketAddr::new(args.bind, port)))
            .transpose()?
            .map(Arc::new);
        if args.model == Model::Fork {
            // fork() needs a single-threaded process: no signal thread (see fork.rs).
            flag_signals(&stop)?;
        } else {
            watch_signals(stop.clone(), agent.clone(), drain_delay, tracer.clone())?;
        }
        announce(local, agent.as_ref().map(|a| a.local()));
        let config = Arc::new(Config {
            inherited_listener: inherited,
            ..Config::clone(&config)
        });
        hello_server::run_workers(listeners, queues, args.model, config, stop)?
    };
    tracer.finish();
    Ok(summary)
}

/// The start-up line: on stdout, flushed, with the real port. A closed stdout is ignored:
/// the server is still useful to whoever knows the port.
fn announce(addr: SocketAddr, agent: Option<SocketAddr>) {
    let mut out = io::stdout().lock();
    let mut text = format!("listening on {addr}\n");
    if let Some(agent) = agent {
        text.push_str(&format!("agent on {agent}\n"));
    }
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// SIGINT/SIGTERM: stop. The library stops accepting, gives exchanges in flight the grace,
/// resets what is left and returns; `main` then exits 0.
fn watch_signals(
    stop: Stop,
    agent: Option<Arc<Agent>>,
    drain_delay: Duration,
    tracer: Tracer,
) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("cannot install the SIGINT/SIGTERM handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if signals.forever().next().is_none() {
                return;
            }
            if !drain_delay.is_zero() {
                drain(agent.as_deref(), drain_delay, &mut signals, &tracer);
            }
            stop.stop();
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

/// SIGINT/SIGTERM set the stop's flag, with no thread to wait for them (the fork model
/// notices the flag within 100 ms); SIGCHLD is caught so that an ended child is reaped at
/// the loop's next turn.
fn flag_signals(stop: &Stop) -> anyhow::Result<()> {
    use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
    for signal in [SIGINT, SIGTERM] {
        signal_hook::flag::register(signal, stop.flag())
            .context("cannot install the SIGINT/SIGTERM handlers")?;
    }
    let child_ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(SIGCHLD, child_ended).context("cannot install the SIGCHLD handler")?;
    Ok(())
}

/// The drain delay: the agent answers "drain" and serving goes on, so that a balancer
/// stops sending before the server stops taking; a second signal cuts it short.
fn drain(
    agent: Option<&Agent>,
    delay: Duration,
    signals: &mut signal_hook::iterator::Signals,
    tracer: &Tracer,
) {
    if let Some(agent) = agent {
        agent.drain();
    }
    let _ = writeln!(
        io::stderr(),
        "hello-server: draining for {}; a second signal stops at once",
        HumanDuration(delay)
    );
    if tracer.on() {
        tracer.emit(Event::Draining { delay });
    }
    let until = Instant::now() + delay;
    while Instant::now() < until && signals.pending().next().is_none() {
        std::thread::sleep(
            until
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(20)),
        );
    }
    let _ = writeln!(io::stderr(), "hello-server: drained; stopping");
    if tracer.on() {
        tracer.emit(Event::Drained);
    }
}
