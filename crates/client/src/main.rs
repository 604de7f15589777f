//! `hello-client [OPTIONS] <HOST> <PORT>` (or `<HOST:PORT>...`): connects, sends
//! `--message` if given, and prints `Message from server: …`
//! (docs/contract.md#what-the-client-prints); `--wait`, `--expect`, `--json` and `-q`
//! make it a probe for scripts.
//!
//! ```text
//! terminal 1: hello-server 9190
//! terminal 2: hello-client 127.0.0.1 9190      # Message from server: Hello World!
//! ```

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use hello_client::args::{self, Form, Usage};
use hello_client::output::{Json, error_line, message_line};
use hello_client::{DEFAULT_MAX_REPLY, DEFAULT_TIMEOUT, Request};
use hello_proto::addr::{HumanDuration, parse_duration, parse_human_duration};
use hello_proto::sys::Tracer;
use hello_proto::trace::{Lang, Role, Selection, join_trace_value};

/// The textbook hello client: connect, (send,) read the reply to its end, print it.
#[derive(Debug, Parser)]
#[command(
    name = "hello-client",
    version,
    override_usage = "hello-client [OPTIONS] <HOST> <PORT>\n       hello-client [OPTIONS] <HOST:PORT>..."
)]
struct Args {
    /// HOST PORT (an IPv4 or IPv6 literal, or a host name, then the port 1..=65535), or
    /// one or more HOST:PORT targets (IPv6 in brackets: [::1]:9190), checked at once.
    #[arg(value_name = "TARGET", allow_negative_numbers = true)]
    targets: Vec<String>,

    /// Send TEXT and a NUL, half-close, then read the reply.
    #[arg(short, long, value_name = "TEXT")]
    message: Option<String>,

    /// Use a datagram (UDP) socket instead of a stream (TCP) socket.
    #[arg(long)]
    udp: bool,

    /// With --udp: the textbook's first UDP client, with no connect(): sendto() gives the
    /// socket its address, and a datagram from anyone is taken as the reply.
    #[arg(long, requires = "udp")]
    unconnected: bool,

    /// Bound on connecting, and again on reading the whole reply (500ms, 2s, 1m).
    #[arg(long, value_name = "DUR", default_value_t = HumanDuration(DEFAULT_TIMEOUT),
          value_parser = parse_human_duration)]
    timeout: HumanDuration,

    /// Retry until a connection is made or DUR has passed (pauses of 50 ms doubling to 1 s).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    wait: Option<Duration>,

    /// The reply, as printed, must be TEXT; otherwise exit 1.
    #[arg(long, value_name = "TEXT")]
    expect: Option<String>,

    /// Print one JSON object per exchange instead of the Message from server line.
    #[arg(long)]
    json: bool,

    /// Print nothing on stdout: the exit status tells.
    #[arg(short, long, conflicts_with = "json")]
    quiet: bool,

    /// Largest reply accepted, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_REPLY,
          value_parser = clap::value_parser!(u32).range(1..=1 << 30).map(|n| n as usize))]
    max_reply: usize,

    /// Narrate every socket call on stderr; `--trace textbook`: only the calls the
    /// textbook's program makes (the others are counted at the end).
    #[arg(long, value_name = "textbook", num_args = 0..=1, require_equals = true,
          default_missing_value = "all", value_parser = Selection::parse)]
    trace: Option<Selection>,

    /// Language of the trace (default: from LC_ALL/LC_MESSAGES/LANG).
    #[arg(long, value_name = "en|ko", value_parser = Lang::parse)]
    lang: Option<Lang>,
}

/// A usage error in clap's words and form; exits 2.
fn usage_exit(usage: Usage) -> ! {
    let (kind, message) = match usage {
        Usage::Missing(names) => (
            ErrorKind::MissingRequiredArgument,
            format!(
                "the following required arguments were not provided:\n  {}",
                names.join("\n  ")
            ),
        ),
        Usage::Invalid(name, value, why) => (
            ErrorKind::InvalidValue,
            format!("invalid value '{value}' for '{name}': {why}"),
        ),
        Usage::Unexpected(value) => (
            ErrorKind::UnknownArgument,
            format!("unexpected argument '{value}' found"),
        ),
    };
    Args::command().error(kind, message).exit()
}

fn main() -> ExitCode {
    let args = Args::parse_from(join_trace_value(std::env::args_os().collect()));
    let (form, targets) = args::parse(&args.targets).unwrap_or_else(|u| usage_exit(u));
    let tracer = match args.trace {
        Some(selection) => Tracer::stderr(Role::Client, Lang::choose(args.lang), selection),
        None => Tracer::off(),
    };
    let requests: Vec<Request> = targets
        .iter()
        .map(|t| Request {
            message: args.message.clone(),
            udp: args.udp,
            unconnected: args.unconnected,
            timeout: args.timeout.0,
            max_reply: args.max_reply,
            expect: args.expect.clone(),
            tracer: tracer.clone(),
            ..Request::new(t.host.clone(), t.port)
        })
        .collect();
    let reports = hello_client::run_all(&requests, args.wait);
    tracer.finish();
    // Targets are named in the output only when there are several: one target, in either
    // form, prints exactly what the textbook client prints.
    let several = form == Form::Targets && targets.len() > 1;
    let mut out = String::new();
    let mut errors = String::new();
    for (t, report) in targets.iter().zip(&reports) {
        let name = several.then_some(t.typed.as_str());
        if args.json {
            out.push_str(&Json::of(&t.typed, args.udp, report).line());
        } else if report.ok() && !args.quiet {
            out.push_str(&message_line(name, report));
        }
        if let Some(line) = error_line(name, report, args.wait) {
            errors.push_str("hello-client: ");
            errors.push_str(&line);
        }
    }
    let printed = print(&out);
    // Error lines last, as always (after the trace, which went to stderr as it happened).
    let _ = io::stderr().lock().write_all(errors.as_bytes());
    if printed && reports.iter().all(|r| r.ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Writes stdout's lines; false if that failed for another reason than a closed stdout
/// (the error line is then written here).
fn print(out: &str) -> bool {
    if out.is_empty() {
        return true;
    }
    let mut stdout = io::stdout().lock();
    match stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => true,
        // A closed stdout (`| head -c0`) is the reader's choice, not our failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => true,
        // A full disk or a broken terminal: the reply was not delivered.
        Err(e) => {
            let e = hello_proto::Error::new(hello_proto::Step::Write, "stdout", e);
            let _ = writeln!(io::stderr(), "hello-client: {e}");
            false
        }
    }
}
