//! hello-client's command line as data: the clap definition the binary parses, and that
//! `cargo xtask dist` turns into shell completions and a man page ([`command`]), so the
//! three can never disagree; hello-load's is [`crate::load::cli`]. The version line comes
//! from the build script ([`VERSION`]).

use std::ffi::OsString;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{ArgGroup, CommandFactory, Parser};
use hello_proto::addr::{HumanDuration, parse_duration, parse_human_duration};
use hello_proto::cli::TraceArgs;
use hello_proto::trace::join_trace_value;
use regex::Regex;

use crate::{DEFAULT_MAX_REPLY, DEFAULT_TIMEOUT, Expect};

/// The version `--version` prints: the package's, then the git commit and whether the
/// sources differed from it when built from a checkout (`0.1.0 (git 6b999e1a2b3c)`).
pub const VERSION: &str = env!("HELLO_VERSION");

/// The end of `--help`: what to type for the common cases.
pub const EXAMPLES: &str = "\
Examples:
  hello-client 127.0.0.1 9190                  the textbook client: Message from server: Hello World!
  hello-client -m hello 127.0.0.1 9190         echo: Message from server: 5 : hello
  hello-client --udp 127.0.0.1 9190            the same over UDP (a server started with --udp)
  hello-client --trace --lang ko 127.0.0.1 9190
                                               narrate every socket call, in Korean
  hello-client --textbook --trace 127.0.0.1 9190
                                               hello_client.c call for call: ONE read()
  hello-client --wait 10s --expect 'Hello World!' -q 127.0.0.1 9190
                                               a probe for scripts and CI: wait until the
                                               server answers, check the greeting, print nothing
  hello-client 127.0.0.1:9190 '[::1]:9191'     several servers at once: exit 0 if all answer
  hello-client --json localhost:9190           one JSON object per exchange, with its times
  hello-client -z --wait 1m db:5432 -- make test
                                               any TCP service: wait until the port takes a
                                               connection, then run the tests
  hello-client --wait 30s --expect-regex '^Hello' 127.0.0.1 9190
                                               a greeting that starts with Hello (as grep)";

/// The textbook hello client: connect, (send,) read the reply to its end, print it.
///
/// Connects to the server (every address of a host name in turn), sends TEXT and a NUL
/// and half-closes if --message is given, reads the reply to the end of the stream and
/// prints one line: `Message from server: <reply>`. Exits 0 if every exchange succeeded, 1
/// with one error line on stderr per failed one, 2 on a usage error.
#[derive(Debug, Parser)]
#[command(
    name = "hello-client",
    version = VERSION,
    override_usage = "hello-client [OPTIONS] <HOST> <PORT>\n       hello-client [OPTIONS] <HOST:PORT>... [-- <CMD> [ARGS]...]",
    after_help = EXAMPLES,
    group = ArgGroup::new("check").args(["expect", "expect_prefix", "expect_regex"]).multiple(false)
)]
pub struct Args {
    /// HOST PORT (an IPv4 or IPv6 literal, or a host name, then the port 1..=65535), or
    /// one or more HOST:PORT targets (IPv6 in brackets: `[::1]:9190`), checked at once.
    #[arg(value_name = "TARGET", allow_negative_numbers = true)]
    pub targets: Vec<String>,

    /// After `--`: once every target is ready, run CMD with ARGS in hello-client's place
    /// (exec), whose exit status becomes hello-client's; never run when a target is not
    /// ready (exit 1).
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,

    /// Ready means the TCP connection is made: close it at once, send and read nothing
    /// (any TCP service, as `nc -z`).
    #[arg(short = 'z', long, conflicts_with_all = ["message", "udp", "check"])]
    pub connect_only: bool,

    /// Send TEXT and a NUL, half-close, then read the reply.
    #[arg(short, long, value_name = "TEXT")]
    pub message: Option<String>,

    /// Use a datagram (UDP) socket instead of a stream (TCP) socket.
    #[arg(long)]
    pub udp: bool,

    /// With --udp: the textbook's first UDP client, with no connect(): sendto() gives the
    /// socket its address, and a datagram from anyone is taken as the reply.
    #[arg(long, requires = "udp")]
    pub unconnected: bool,

    /// Bound on connecting, and again on reading the whole reply (500ms, 2s, 1m).
    #[arg(long, value_name = "DUR", default_value_t = HumanDuration(DEFAULT_TIMEOUT),
          value_parser = parse_human_duration)]
    pub timeout: HumanDuration,

    /// Retry every failed attempt (refused, reset, closed, timed out, not as expected)
    /// until DUR has passed, the attempts included: the probe ends by then, whatever
    /// --timeout says (pauses of 50 ms doubling to 1 s; 90s, 10m, 1h; 0: one attempt).
    #[arg(long, value_name = "DUR", value_parser = parse_wait)]
    pub wait: Option<Duration>,

    /// The reply, as printed, must be TEXT; otherwise exit 1.
    #[arg(long, value_name = "TEXT")]
    pub expect: Option<String>,

    /// The reply, as printed, must start with TEXT; otherwise exit 1. It passes as soon as
    /// it does, without waiting for the end of the reply: a service that greets and then
    /// waits (SSH, SMTP, MySQL) passes too.
    #[arg(long, value_name = "TEXT")]
    pub expect_prefix: Option<String>,

    /// The reply, as printed, must hold a match for the regular expression RE, searched as
    /// grep does (`^...$` to match the whole reply); otherwise exit 1.
    #[arg(long, value_name = "RE", value_parser = Regex::new)]
    pub expect_regex: Option<Regex>,

    /// Print one JSON object per exchange instead of the Message from server line.
    #[arg(long)]
    pub json: bool,

    /// Print nothing on stdout: the exit status tells.
    #[arg(short, long, conflicts_with = "json")]
    pub quiet: bool,

    /// Largest reply accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_REPLY,
          value_parser = clap::value_parser!(u32).range(1..=1 << 30).map(|n| n as usize))]
    pub max_reply: usize,

    /// The tutorials' own program, call for call: socket, connect, (with -m one write,)
    /// ONE read, close (UDP: sendto, ONE recvfrom, close); HOST is an IPv4 address, and
    /// nothing bounds the wait. Prints what the C program prints.
    #[arg(long, conflicts_with_all = [
        "connect_only", "timeout", "wait", "check", "json", "quiet", "max_reply", "command",
    ])]
    pub textbook: bool,

    /// `--trace` and `--lang`.
    #[command(flatten)]
    pub narration: TraceArgs,
}

impl Args {
    /// The check the reply must pass, if any.
    pub fn expect(&self) -> Option<Expect> {
        let exact = self.expect.clone().map(Expect::Exact);
        let prefix = self.expect_prefix.clone().map(Expect::Prefix);
        exact
            .or(prefix)
            .or_else(|| self.expect_regex.clone().map(Expect::Regex))
    }
}

/// A `--wait` bound: a duration as [`parse_duration`] reads it, or in hours (`1h`, `1.5h`,
/// at most a day), or 0 (one attempt).
pub fn parse_wait(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Some(hours) = t.strip_suffix('h') {
        return match hours.trim().parse::<f64>() {
            Ok(h) if h.is_finite() && h > 0.0 && h <= 24.0 => Ok(Duration::from_secs_f64(h * 3600.0)),
            Ok(h) if h > 24.0 => Err(format!("'{s}' is longer than a day")),
            _ => Err(format!(
                "'{s}' is not a duration (examples: 500ms, 2s, 1m, 1h, 0)"
            )),
        };
    }
    let zero = t
        .trim_end_matches(['m', 's'])
        .trim()
        .parse::<f64>()
        .is_ok_and(|v| v == 0.0);
    if zero {
        return Ok(Duration::ZERO);
    }
    parse_duration(t)
}

/// hello-client's command line, for completions, the man page and usage errors.
pub fn command() -> clap::Command {
    Args::command()
}

/// Parses hello-client's command line (`raw` as `std::env::args_os()` gives it, the
/// program's name first). A `--` with no command after it is a usage error: clap records
/// nothing for it, so it would pass for no `--` at all and run nothing.
pub fn parse(raw: Vec<OsString>) -> Result<Args, clap::Error> {
    let raw = join_trace_value(raw);
    let args = Args::try_parse_from(&raw)?;
    // No option takes a value that starts with a hyphen, so clap takes the first `--` as
    // the end of the options, and whatever follows it is CMD: an empty CMD beside a `--`
    // is a `--` with nothing after it.
    if args.command.is_empty() && raw.iter().skip(1).any(|a| a == "--") {
        return Err(command().error(
            clap::error::ErrorKind::TooFewValues,
            "`--` must be followed by the command to run: -- <CMD> [ARGS]...",
        ));
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_takes_hours_and_zero() {
        assert_eq!(parse_wait("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_wait("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_wait("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_wait("250ms"), Ok(Duration::from_millis(250)));
        for zero in ["0", "0s", "0ms", "0.0"] {
            assert_eq!(parse_wait(zero), Ok(Duration::ZERO), "{zero}");
        }
        for bad in ["25h", "h", "-1h", "1d", "x", "-1"] {
            assert!(parse_wait(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_command_after_the_double_dash_is_kept_whole() {
        let a = Args::try_parse_from(["hello-client", "-z", "db:5432", "--", "make", "-k", "test"]).unwrap();
        assert_eq!(a.targets, ["db:5432"]);
        assert_eq!(a.command, ["make", "-k", "test"]);
        assert!(a.connect_only);
        let raw = |args: &[&str]| args.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        let a = parse(raw(&["hello-client", "db:5432", "--", "--"])).unwrap();
        assert_eq!(a.command, ["--"], "a second `--` is the command's");
        let a = parse(raw(&["hello-client", "--trace", "textbook", "db:5432"])).unwrap();
        assert!(a.command.is_empty());
        for nothing_after in [
            &["hello-client", "db:5432", "--"][..],
            &["hello-client", "-z", "a:1", "b:2", "--"],
        ] {
            let e = parse(raw(nothing_after)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{nothing_after:?}");
            assert!(e.to_string().contains("`--` must be followed by"), "{e}");
        }
        for clash in [
            &["hello-client", "-z", "--udp", "a:1"][..],
            &["hello-client", "-z", "-m", "x", "a:1"],
            &["hello-client", "-z", "--expect-prefix", "x", "a:1"],
            &["hello-client", "--expect", "x", "--expect-regex", "y", "a:1"],
            &["hello-client", "--expect-regex", "(", "a:1"],
        ] {
            let e = Args::try_parse_from(clash).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{clash:?}");
        }
    }
}
