//! hello-client's command line as data: the clap definition the binary parses, and that
//! `cargo xtask dist` turns into shell completions and a man page ([`command`]), so the
//! three can never disagree; hello-load's is [`crate::load::cli`]. The version line comes
//! from the build script ([`VERSION`]).

use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{CommandFactory, Parser};
use hello_proto::addr::{HumanDuration, parse_duration, parse_human_duration};
use hello_proto::cli::TraceArgs;

use crate::{DEFAULT_MAX_REPLY, DEFAULT_TIMEOUT};

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
  hello-client --wait 10s --expect 'Hello World!' -q 127.0.0.1 9190
                                               a probe for scripts and CI: wait until the
                                               server answers, check the greeting, print nothing
  hello-client 127.0.0.1:9190 '[::1]:9191'     several servers at once: exit 0 if all answer
  hello-client --json localhost:9190           one JSON object per exchange, with its times";

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
    override_usage = "hello-client [OPTIONS] <HOST> <PORT>\n       hello-client [OPTIONS] <HOST:PORT>...",
    after_help = EXAMPLES
)]
pub struct Args {
    /// HOST PORT (an IPv4 or IPv6 literal, or a host name, then the port 1..=65535), or
    /// one or more HOST:PORT targets (IPv6 in brackets: `[::1]:9190`), checked at once.
    #[arg(value_name = "TARGET", allow_negative_numbers = true)]
    pub targets: Vec<String>,

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

    /// Retry until a connection is made or DUR has passed (pauses of 50 ms doubling to 1 s).
    #[arg(long, value_name = "DUR", value_parser = parse_duration)]
    pub wait: Option<Duration>,

    /// The reply, as printed, must be TEXT; otherwise exit 1.
    #[arg(long, value_name = "TEXT")]
    pub expect: Option<String>,

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

    /// `--trace` and `--lang`.
    #[command(flatten)]
    pub narration: TraceArgs,
}

/// hello-client's command line, for completions, the man page and usage errors.
pub fn command() -> clap::Command {
    Args::command()
}
