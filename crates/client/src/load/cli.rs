//! hello-load's command line as data: the clap definition the binary parses, and that
//! `cargo xtask dist` turns into shell completions and a man page ([`command`]).

use std::time::Duration;

use clap::{CommandFactory, Parser};
use hello_proto::addr::{HumanDuration, parse_duration, parse_human_duration};

use crate::DEFAULT_TIMEOUT;
use crate::cli::VERSION;

/// Exchanges when neither `--count` nor `--duration` is given.
pub const DEFAULT_COUNT: u64 = 10_000;
/// Most exchanges in flight in an open loop when `--concurrency` is not given.
pub const DEFAULT_OPEN_CONCURRENCY: u32 = 1024;

/// The end of `--help`: what to type for the common cases.
pub const EXAMPLES: &str = "\
Examples:
  hello-load -n 20000 -c 64 127.0.0.1 9190     closed loop: 20000 exchanges, 64 in flight
  hello-load -d 10s --rate 5000 -m hello --json 127.0.0.1 9190
                                               open loop: 5000 echo exchanges a second for
                                               10 s, latency from the schedule, as JSON
  hello-load --udp -n 10000 -c 16 127.0.0.1 9190
                                               datagrams, 16 in flight
  hello-load --wait 10s -n 1000 localhost 9190
                                               wait until the server answers, then load it
  hello-load --connect-only -n 20000 -c 64 127.0.0.1:8080
                                               connections per second, any TCP service
  hello-load --expect-any -n 1000 127.0.0.1:13
                                               any service that speaks and closes (daytime)";

/// Load generator for hello-server: many exchanges, latency percentiles, errors by class.
///
/// Makes many exchanges with one server from a few threads, each an epoll loop, in a
/// closed loop (--concurrency in flight) or an open one (--rate a second, latency counted
/// from each exchange's scheduled start), and reports the rate, latency percentiles,
/// errors by class and its own CPU time per exchange. Exits 1 if any exchange failed.
#[derive(Debug, Parser)]
#[command(
    name = "hello-load",
    version = VERSION,
    after_help = EXAMPLES,
    override_usage = "hello-load [OPTIONS] <HOST> <PORT>\n       hello-load [OPTIONS] <HOST:PORT>"
)]
pub struct Args {
    /// HOST PORT (an IPv4 or IPv6 literal, or a host name, then the port 1..=65535), or
    /// HOST:PORT (IPv6 in brackets: `[::1]:9190`), as hello-client reads them.
    #[arg(value_name = "TARGET", required = true, num_args = 1..=2, allow_negative_numbers = true)]
    pub target: Vec<String>,

    /// Exchanges to make in all [default: 10000].
    #[arg(short = 'n', long, value_name = "N", conflicts_with = "duration",
          value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub count: Option<u64>,

    /// Start exchanges for this long instead (500ms, 10s, 1m); those in flight then finish.
    #[arg(short = 'd', long, value_name = "DUR", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Exchanges in flight [default: 1; with --rate, the most in flight: 1024].
    #[arg(short = 'c', long, value_name = "C",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub concurrency: Option<u32>,

    /// Open loop: start R exchanges per second, whatever the server does; latency counts
    /// from each one's scheduled start.
    #[arg(long, value_name = "R", value_parser = parse_rate)]
    pub rate: Option<f64>,

    /// Threads, each an epoll loop [default: the CPUs this process may use].
    #[arg(long, value_name = "T", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,

    /// Send TEXT and a NUL, half-close, then read the reply (the echo service).
    #[arg(short, long, value_name = "TEXT")]
    pub message: Option<String>,

    /// The reply, as hello-client prints it, must be TEXT [default: exactly the greeting
    /// and its NUL; with -m, the echo reply "LEN : MSG" and its NUL].
    #[arg(long, value_name = "TEXT", conflicts_with = "expect_any")]
    pub expect: Option<String>,

    /// Any reply of at least a byte that ends in end of stream is ok: load against any
    /// service that speaks first, or (with -m) answers what is sent.
    #[arg(long)]
    pub expect_any: bool,

    /// An exchange is a TCP connection made and closed at once, nothing sent or read:
    /// connections per second against any TCP service.
    #[arg(short = 'z', long, conflicts_with_all = ["message", "expect", "expect_any", "udp"])]
    pub connect_only: bool,

    /// Datagrams (UDP) instead of connections.
    #[arg(long)]
    pub udp: bool,

    /// Bound on each exchange, from its start.
    #[arg(long, value_name = "DUR", default_value_t = HumanDuration(DEFAULT_TIMEOUT),
          value_parser = parse_human_duration)]
    pub timeout: HumanDuration,

    /// Before the run, wait up to DUR for the server to answer one exchange (as
    /// hello-client --wait does; not counted).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub wait: Option<Duration>,

    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// A rate: a positive number of exchanges per second, at most ten million.
fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 1e7 => Ok(r),
        _ => Err(format!(
            "'{s}' is not a rate (exchanges per second, more than 0, at most 10000000)"
        )),
    }
}

/// hello-load's command line, for completions and the man page.
pub fn command() -> clap::Command {
    Args::command()
}
