//! hello-server's command line as data: the clap definition the binary parses, and that
//! `cargo xtask dist` turns into shell completions and a man page ([`command`]), so the
//! three can never disagree. The version line comes from the build script
//! ([`VERSION`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{CommandFactory, Parser, ValueEnum};
use hello_proto::addr::{Cidr, HumanDuration, parse_bind_ip, parse_human_duration, parse_server_port};
use hello_proto::cli::TraceArgs;
use hello_proto::sys::DEFAULT_BACKLOG;
use hello_proto::wire::DEFAULT_GREETING;

use crate::{AcceptQueues, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_BUFFERED, DEFAULT_REQUEST_TIMEOUT, Model};

/// The version `--version` prints: the package's, then the git commit and whether the
/// sources differed from it when built from a checkout (`0.1.0 (git 6b999e1a2b3c)`).
pub const VERSION: &str = env!("HELLO_VERSION");

/// The end of `--help`: what to type for the common cases.
pub const EXAMPLES: &str = "\
Examples:
  hello-server 9190                          the textbook server: greet each client, close
  hello-server --service echo 9190           echo: reply \"<len> : <msg>\" to one message
  hello-server --udp 9190                    the same over UDP (add --udp to the client too)
  hello-server --trace --lang ko 9190        narrate every socket call, in Korean
  hello-server --textbook --trace 9190       hello_server.c call for call, each call beside
                                             its C line; one client, then exit
  hello-server --model fork --once 0         one client, served by a child process, on a
                                             port the kernel picks (the start-up line says)
  hello-server --bind 127.0.0.1 9190 &       in a script or CI, then wait until it answers:
  hello-client --wait 10s --expect 'Hello World!' -q 127.0.0.1 9190";

/// The textbook hello server (and its echo sibling), over TCP or UDP.
///
/// Binds PORT, prints one line on stdout, `listening on ADDR` (with the real port, also
/// when PORT is 0), and serves every client with the hello service (the greeting and a
/// NUL, then end of stream) or the echo service until SIGINT, SIGTERM or SIGHUP; it then
/// serves the clients already queued, gives the exchanges in flight 2 s and exits 0. A
/// client's failure is one line on stderr; a socket that cannot be set up is one line and
/// exit 1; a usage error exits 2.
#[derive(Debug, Parser)]
#[command(name = "hello-server", version = VERSION, after_help = EXAMPLES)]
pub struct Args {
    /// Port to listen on (0 lets the kernel choose; the start-up line shows it).
    #[arg(value_parser = parse_server_port, allow_negative_numbers = true)]
    pub port: u16,

    /// Local address to bind; `::` is dual-stack (IPv4 clients too).
    #[arg(short, long, value_name = "ADDR", default_value = "0.0.0.0", value_parser = parse_bind_ip)]
    pub bind: IpAddr,

    /// The listen() backlog (the kernel caps it at net.core.somaxconn).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_BACKLOG, value_parser = clap::value_parser!(i32).range(0..))]
    pub backlog: i32,

    /// What is served.
    #[arg(long, value_enum, default_value_t = ServiceName::Hello)]
    pub service: ServiceName,

    /// The greeting of the hello service (sent with a trailing NUL).
    #[arg(long, value_name = "TEXT", default_value = DEFAULT_GREETING)]
    pub message: String,

    /// Serve exactly one client (over UDP: one datagram) with the chosen model, then exit.
    #[arg(long)]
    pub once: bool,

    /// Use a datagram (UDP) socket instead of a stream (TCP) socket.
    #[arg(long)]
    pub udp: bool,

    /// How TCP clients are served.
    #[arg(long, value_enum, default_value_t = Model::default())]
    pub model: Model,

    /// Clients served at once; more wait in the listen backlog [default: epoll, uring: the
    /// descriptors the process may open, less 16; threads, fork: 1024; select: 1008]
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000).map(|n| n as usize))]
    pub max_conns: Option<usize>,

    /// Event loops, one per thread, sharing the port as --accept-queues says; --max-conns
    /// and --max-buffered hold for them all. epoll model only; with --udp, batched loops
    /// with a SO_REUSEPORT socket each [default: 1]
    #[arg(long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024).map(usize::from))]
    pub workers: Option<usize>,

    /// How --workers share arriving connections: per-worker (a listening socket each, one
    /// SO_REUSEPORT set; the kernel picks the worker) or shared (one socket and queue,
    /// watched by every worker with EPOLLEXCLUSIVE; a free worker takes the next). A
    /// socket passed by socket activation is always shared
    #[arg(long, value_enum, value_name = "HOW", default_value_t = AcceptQueues::default())]
    pub accept_queues: AcceptQueues,

    /// A client that makes no progress (no byte read or sent) for this long is given up
    /// on (500ms, 2s, 1m).
    #[arg(long, value_name = "DUR", default_value_t = HumanDuration(DEFAULT_IDLE_TIMEOUT),
          value_parser = parse_human_duration)]
    pub idle_timeout: HumanDuration,

    /// An echo request that is not complete this long after the accept is given up on,
    /// however steadily it trickles in; with --proxy-protocol it also bounds the PROXY
    /// header (of either service).
    #[arg(long, value_name = "DUR", default_value_t = HumanDuration(DEFAULT_REQUEST_TIMEOUT),
          value_parser = parse_human_duration)]
    pub request_timeout: HumanDuration,

    /// Bytes of requests and replies all clients together may hold in memory; a request
    /// that would go past it is answered "error: server busy".
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BUFFERED,
          value_parser = clap::value_parser!(u64).range(0..=1 << 40).map(|n| n as usize))]
    pub max_buffered: usize,

    /// Longest echo request in bytes, terminator not counted (at most 16 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = hello_proto::wire::DEFAULT_MAX_REQUEST,
          value_parser = clap::value_parser!(u32).range(0..=16 * 1024 * 1024).map(|n| n as usize))]
    pub max_request: usize,

    /// Answer HAProxy's agent check on this port ("up ready"; "drain" once stopping),
    /// listening with --backlog; a second start-up line, "agent on ADDR", gives its
    /// address. TCP only.
    #[arg(long, value_name = "PORT", value_parser = parse_server_port, conflicts_with = "udp")]
    pub agent_port: Option<u16>,

    /// After SIGINT/SIGTERM/SIGHUP, keep serving this long (the agent answering "drain")
    /// before stopping, so that the balancer stops sending first [default: 0s].
    #[arg(long, value_name = "DUR", value_parser = parse_delay)]
    pub drain_delay: Option<HumanDuration>,

    /// Every TCP connection starts with a PROXY protocol header, version 1 or 2 (HAProxy's
    /// send-proxy, send-proxy-v2): the real client's address goes to the trace and logs.
    /// Without --proxy-from, any peer that can connect may claim any address.
    #[arg(long)]
    pub proxy_protocol: bool,

    /// With --proxy-protocol: the peers (the balancers) whose PROXY headers are believed,
    /// as addresses or CIDR blocks separated by commas (127.0.0.1,10.0.0.0/8,::1), or
    /// given again; a header from any other peer is refused with one line naming it.
    #[arg(long, value_name = "ADDR|CIDR[,...]", value_parser = Cidr::parse, value_delimiter = ',',
          requires = "proxy_protocol")]
    pub proxy_from: Option<Vec<Cidr>>,

    /// Serve Prometheus metrics (text format, GET /metrics) on this address and port, on a
    /// listener of its own; a second start-up line, "metrics on ADDR:PORT", gives it
    /// (127.0.0.1:9191; an IPv6 address in brackets; port 0 lets the kernel choose).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<SocketAddr>,

    /// How the server's lines are written on stderr (client errors, SIGUSR1's counters,
    /// the drain, warnings, the error that ends it): text, or one JSON object a line (ts,
    /// level, msg, line, and each kind's fields).
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub log_format: crate::log::LogFormat,

    /// The tutorials' own program, call for call: socket, bind, listen(5), accept, one
    /// write (echo: one read, one write; UDP: recvfrom, sendto), close, close; one client,
    /// then exit. No option real software adds; the start-up line goes to stderr.
    #[arg(long, conflicts_with_all = [
        "model", "max_conns", "workers", "accept_queues", "idle_timeout", "request_timeout",
        "max_buffered", "max_request", "agent_port", "drain_delay", "proxy_protocol", "proxy_from", "metrics", "log_format",
    ])]
    pub textbook: bool,

    /// Whether `--backlog` was given (else `--textbook` listens with the textbook's 5).
    #[arg(skip)]
    pub backlog_given: bool,

    /// `--trace` and `--lang`.
    #[command(flatten)]
    pub narration: TraceArgs,
}

/// Parses hello-server's command line (`--trace textbook` joined first), exiting as clap
/// does on a usage error, with what `--textbook` needs to know besides the values.
pub fn parse(argv: Vec<std::ffi::OsString>) -> Args {
    use clap::FromArgMatches as _;
    let matches = command().get_matches_from(hello_proto::trace::join_trace_value(argv));
    let mut args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    args.backlog_given = matches.value_source("backlog") == Some(clap::parser::ValueSource::CommandLine);
    args
}

/// A duration that may be zero (`0`, `0s`, `0ms`), for the drain delay.
fn parse_delay(s: &str) -> Result<HumanDuration, String> {
    match s.trim() {
        "0" | "0s" | "0ms" => Ok(HumanDuration(Duration::ZERO)),
        _ => parse_human_duration(s),
    }
}

impl Args {
    /// Whether the hello service (not echo) is served.
    pub fn service_is_hello(&self) -> bool {
        matches!(self.service, ServiceName::Hello)
    }
}

/// `--service`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ServiceName {
    /// Send the greeting and close.
    Hello,
    /// Reply to one message with its length and itself: 5 : hello.
    Echo,
}

/// hello-server's command line, for completions, the man page and usage errors.
pub fn command() -> clap::Command {
    Args::command()
}
