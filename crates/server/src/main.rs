//! `hello-server [OPTIONS] <PORT>`: binds, prints `listening on ADDR`, serves until
//! SIGINT/SIGTERM/SIGHUP (or one client with `--once`). The contract is docs/contract.md.
//!
//! ```text
//! terminal 1: hello-server 9190
//! terminal 2: hello-client 127.0.0.1 9190      # Message from server: Hello World!
//! ```

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hello_proto::addr::HumanDuration;
use hello_proto::conn::Limits;
use hello_proto::startup;
use hello_proto::sys::{self, Tracer};
use hello_proto::trace::Role;
use hello_proto::wire::{MAX_DATAGRAM, Service};
use hello_server::agent::Agent;
use hello_server::cli::{Args, ServiceName, command};
use hello_server::exporter::Exporter;
use hello_server::log::{self, Level};
use hello_server::metrics::{self, Labels};
use hello_server::{
    AcceptQueues, Config, DEFAULT_MAX_CONNS, GRACE, Model, Stop, Summary, max_conns_for_descriptors,
};

fn main() -> ExitCode {
    let args = hello_server::cli::parse(std::env::args_os().collect());
    if args.textbook {
        return textbook(&args);
    }
    if args.model == Model::Fork && !args.udp && (args.agent_port.is_some() || args.drain_delay.is_some()) {
        command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--agent-port and --drain-delay need threads, which the fork model's process cannot have",
            )
            .exit();
    }
    if args.workers.is_some_and(|n| n > 1) {
        // Over UDP a worker is the batched loop on a socket of its own (SO_REUSEPORT),
        // whatever --model says.
        let conflict = if args.udp {
            None
        } else if args.model != Model::Epoll {
            Some("--workers needs --model epoll (each worker is an event loop)")
        } else {
            None
        };
        if let Some(message) = conflict {
            command()
                .error(clap::error::ErrorKind::ArgumentConflict, message)
                .exit();
        }
    }
    if args.udp && args.service_is_hello() && args.message.len() + 1 > MAX_DATAGRAM {
        command()
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
            hello_server::log::say_fatal(&e);
            ExitCode::FAILURE
        }
    }
}

/// `--textbook`: the tutorials' program, one client, then exit (0, or 1 with the error
/// line, as the textbook's `error_handling()` exits).
fn textbook(args: &Args) -> ExitCode {
    use hello_server::textbook::{BACKLOG, Textbook};
    let IpAddr::V4(ip) = args.bind else {
        command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--textbook binds an IPv4 address, as the textbook's sockaddr_in: --bind takes one",
            )
            .exit();
    };
    let t = Textbook {
        addr: SocketAddrV4::new(ip, args.port),
        backlog: if args.backlog_given { args.backlog } else { BACKLOG },
        service: service(args),
        udp: args.udp,
    };
    let tracer = args.narration.tracer(Role::Server);
    let result = hello_server::textbook::run(&t, &tracer);
    tracer.finish();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "hello-server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The service `--service` and `--message` ask for.
fn service(args: &Args) -> Service {
    match args.service {
        ServiceName::Hello => Service::hello(&args.message),
        ServiceName::Echo => Service::Echo {
            max_request: args.max_request,
        },
    }
}

fn run(args: Args) -> anyhow::Result<Summary> {
    let tracer = args.narration.tracer(Role::Server);
    let service = service(&args);
    hello_server::log::set_format(args.log_format);
    hello_server::metrics::set_labels(Labels {
        service: if args.service_is_hello() { "hello" } else { "echo" },
        model: if args.udp {
            "udp".to_string()
        } else {
            args.model.to_string()
        },
        transport: if args.udp { "udp" } else { "tcp" },
        version: hello_server::cli::VERSION,
        started: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64(),
    });
    // More descriptors for the event loop's clients (a no-op where the soft limit is the
    // hard one already); freed request buffers go back to the system; threads share a
    // few malloc arenas (address space is not spent on them).
    let nofile = sys::process::raise_nofile_limit().unwrap_or(1024);
    sys::process::return_large_buffers_when_freed();
    sys::process::limit_malloc_arenas();
    let max_conns = args.max_conns.unwrap_or(match args.model {
        Model::Epoll | Model::Uring => max_conns_for_descriptors(nofile),
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
        proxy_from: args.proxy_from.clone(),
        inherited_listener: false,
        tracer: tracer.clone(),
        exporter: None,
    });
    let stop = Stop::new();
    let addr = SocketAddr::new(args.bind, args.port);
    let drain_delay = args.drain_delay.map_or(Duration::ZERO, |d| d.0);
    // Signals are caught before the start-up line, so a script that reads the line and
    // then sends SIGTERM always gets a clean exit. They are set up after the socket, so
    // that the socket gets the lowest descriptor (3), as in the textbook.
    let summary = if args.udp {
        // --once answers exactly one datagram: a second worker could take another.
        let workers = if args.once { 1 } else { args.workers.unwrap_or(1) };
        let sockets = if workers > 1 {
            sys::bind_udp_reuseport(addr, workers, &tracer)?
        } else {
            vec![sys::bind_udp(addr, &tracer)?]
        };
        let exporter = start_exporter(&args, false)?;
        watch_signals(stop.clone(), None, drain_delay, tracer.clone())?;
        let local = sockets
            .first()
            .context("no UDP socket")?
            .local_addr()
            .context("getsockname() error")?;
        announce(local, None, exporter.as_ref());
        hello_server::udp::run_workers(sockets, &config, &stop)?
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
            .map(|port| Agent::start(SocketAddr::new(args.bind, port), args.backlog))
            .transpose()?
            .map(Arc::new);
        let exporter = start_exporter(&args, args.model == Model::Fork)?;
        if args.model == Model::Fork {
            // fork() needs a single-threaded process: no signal thread (see fork.rs).
            flag_signals(&stop)?;
        } else {
            watch_signals(stop.clone(), agent.clone(), drain_delay, tracer.clone())?;
        }
        // The io_uring model's ring is set up before the start-up line: a kernel that
        // refuses it is an error before the server says it listens.
        let prepared = hello_server::prepare(args.model, &config, local)?;
        if args.proxy_protocol && args.proxy_from.is_none() {
            // As nginx's set_real_ip_from: whom to believe is the operator's to say.
            log::say(
                Level::Warn,
                "--proxy-protocol without --proxy-from",
                "warning: --proxy-protocol without --proxy-from believes the PROXY header of any \
                 peer that can connect: name your balancers with --proxy-from",
                serde_json::Map::new(),
            );
        }
        announce(local, agent.as_ref().map(|a| a.local()), exporter.as_ref());
        let config = Arc::new(Config {
            inherited_listener: inherited,
            exporter: exporter.filter(|_| args.model == Model::Fork),
            ..Config::clone(&config)
        });
        hello_server::run_prepared(listeners, queues, args.model, config, stop, prepared)?
    };
    tracer.finish();
    Ok(summary)
}

/// `--metrics`: the exporter bound, and answering on its own thread unless the model
/// (fork) answers from its loop.
fn start_exporter(args: &Args, from_the_loop: bool) -> anyhow::Result<Option<Arc<Exporter>>> {
    let Some(addr) = args.metrics else {
        return Ok(None);
    };
    let exporter = Arc::new(Exporter::bind(addr, args.backlog)?);
    if !from_the_loop {
        Arc::clone(&exporter).spawn()?;
    }
    Ok(Some(exporter))
}

/// The start-up line: on stdout, flushed, with the real port. A closed stdout is ignored:
/// the server is still useful to whoever knows the port.
fn announce(addr: SocketAddr, agent: Option<SocketAddr>, exporter: Option<&Arc<Exporter>>) {
    let mut out = io::stdout().lock();
    let lines = std::iter::once(startup::Line::Listening(addr))
        .chain(agent.map(startup::Line::Agent))
        .chain(exporter.map(|e| startup::Line::Metrics(e.local())));
    let text: String = lines.map(|line| format!("{line}\n")).collect();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// The signals that stop the server: SIGINT (a terminal's ^C), SIGTERM (kill, systemd,
/// docker stop) and SIGHUP (a closed terminal, logrotate's `kill -HUP`). Each gets the
/// stop's guarantees (docs/contract.md#signals-and-stopping).
const STOP_SIGNALS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Signals users and tools send now and then whose default action would end the process
/// at once (no grace, a reply in flight cut with a clean FIN): caught. SIGUSR1 prints the
/// counters as one line on stderr (as `dd` does) and serving goes on; SIGUSR2 and SIGALRM
/// change nothing. (SIGPIPE is ignored by Rust's
/// runtime before `main`, and every send says `MSG_NOSIGNAL`.)
const CAUGHT_SIGNALS: [i32; 3] = [libc::SIGUSR1, libc::SIGUSR2, libc::SIGALRM];

/// SIGINT/SIGTERM/SIGHUP: stop. The library stops accepting, gives exchanges in flight the
/// grace, resets what is left and returns; `main` then exits 0. SIGUSR1: the counters'
/// line, by the same thread; SIGUSR2/SIGALRM: caught by the same thread, and passed over.
fn watch_signals(
    stop: Stop,
    agent: Option<Arc<Agent>>,
    drain_delay: Duration,
    tracer: Tracer,
) -> anyhow::Result<()> {
    let mut signals = signal_hook::iterator::Signals::new(STOP_SIGNALS.iter().chain(&CAUGHT_SIGNALS))
        .context("cannot install the signal handlers")?;
    metrics::start_printer().context("cannot start the counters' thread")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if !signals.forever().any(stops) {
                return;
            }
            if !drain_delay.is_zero() {
                metrics::set_state(metrics::State::Draining);
                drain(agent.as_deref(), drain_delay, &mut signals, &tracer);
            }
            metrics::set_state(metrics::State::Stopping);
            stop.stop();
            // Counters asked for during the grace are still printed.
            signals.forever().for_each(|s| {
                stops(s);
            });
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

/// Whether `signal` is a stop signal; SIGUSR1 asks for the counters' line on the way.
fn stops(signal: i32) -> bool {
    if signal == libc::SIGUSR1 {
        metrics::ask();
    }
    STOP_SIGNALS.contains(&signal)
}

/// The stop signals set the stop's flag, with no thread to wait for them (the fork model
/// notices the flag within 100 ms); SIGCHLD is caught so that an ended child is reaped at
/// the loop's next turn; SIGUSR1 sets the flag the loop prints the counters' line for;
/// SIGUSR2/SIGALRM are caught and passed over. The children
/// inherit these handlers: a signal sent to the process group reaches a child in the
/// middle of a reply, which then finishes it (a stop signal: within the grace).
fn flag_signals(stop: &Stop) -> anyhow::Result<()> {
    use signal_hook::consts::SIGCHLD;
    for signal in STOP_SIGNALS {
        signal_hook::flag::register(signal, stop.flag()).context("cannot install the signal handlers")?;
    }
    // A flag nobody reads: these signals are caught only so that their default action
    // does not apply (SIGUSR2, SIGALRM: the end of the process) and, for SIGCHLD (whose
    // default is to be ignored), so that it interrupts the parent's accept() (EINTR),
    // which then reaps at once.
    let passed_over = Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(SIGCHLD, Arc::clone(&passed_over))
        .context("cannot install the SIGCHLD handler")?;
    signal_hook::flag::register(libc::SIGUSR1, metrics::asked_flag())
        .context("cannot install the SIGUSR1 handler")?;
    for signal in CAUGHT_SIGNALS.into_iter().filter(|&s| s != libc::SIGUSR1) {
        signal_hook::flag::register(signal, Arc::clone(&passed_over))
            .context("cannot install the signal handlers")?;
    }
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
    let mut fields = serde_json::Map::new();
    fields.insert("delay_seconds".into(), delay.as_secs_f64().into());
    let line = format!(
        "draining for {}; a second signal stops at once",
        HumanDuration(delay)
    );
    log::say(Level::Info, "draining", &line, fields);
    sys::process::sleep_draining(delay, tracer, || signals.pending().any(stops));
    log::say(
        Level::Info,
        "drained",
        "drained; stopping",
        serde_json::Map::new(),
    );
}
