//! `hello-client [OPTIONS] <HOST> <PORT>`: connects, sends `--message` if given, and prints
//! `Message from server: …` (docs/contract.md#what-the-client-prints).
//!
//! ```text
//! terminal 1: hello-server 9190
//! terminal 2: hello-client 127.0.0.1 9190      # Message from server: Hello World!
//! ```

use std::io::{self, Write};
use std::process::ExitCode;

use clap::Parser;
use clap::builder::TypedValueParser as _;
use hello_client::{DEFAULT_MAX_REPLY, DEFAULT_TIMEOUT, Request};
use hello_proto::addr::{Host, HumanDuration, parse_client_port, parse_human_duration};
use hello_proto::sys::Tracer;
use hello_proto::trace::{Lang, Role, Selection, join_trace_value};
use hello_proto::wire::display_reply;

/// The textbook hello client: connect, (send,) read the reply to its end, print it.
#[derive(Debug, Parser)]
#[command(name = "hello-client", version, about)]
struct Args {
    /// Server address: an IPv4 or IPv6 literal, or a host name.
    #[arg(value_parser = Host::parse)]
    host: Host,

    /// Server port (1..=65535).
    #[arg(value_parser = parse_client_port, allow_negative_numbers = true)]
    port: u16,

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

fn main() -> ExitCode {
    let args = Args::parse_from(join_trace_value(std::env::args_os().collect()));
    let tracer = match args.trace {
        Some(selection) => Tracer::stderr(Role::Client, Lang::choose(args.lang), selection),
        None => Tracer::off(),
    };
    let request = Request {
        message: args.message,
        udp: args.udp,
        unconnected: args.unconnected,
        timeout: args.timeout.0,
        max_reply: args.max_reply,
        tracer,
        ..Request::new(args.host, args.port)
    };
    let result = hello_client::exchange(&request);
    request.tracer.finish();
    match result {
        Ok(reply) => {
            let line = format!("Message from server: {}\n", display_reply(&reply));
            let mut out = io::stdout().lock();
            match out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                // A closed stdout (`| head -c0`) is the reader's choice, not our failure.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                // A full disk or a broken terminal: the reply was not delivered.
                Err(e) => {
                    let e = hello_proto::Error::new(hello_proto::Step::Write, "stdout", e);
                    let _ = writeln!(io::stderr(), "hello-client: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            let _ = writeln!(io::stderr(), "hello-client: {e}");
            ExitCode::FAILURE
        }
    }
}
