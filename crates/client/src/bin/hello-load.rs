//! `hello-load [OPTIONS] <HOST> <PORT>` (or `<HOST:PORT>`): a load generator for the
//! hello and echo protocol, and for any TCP service with `--expect-any` or
//! `--connect-only`; tcpkali's kind: many connections in flight from a few epoll threads, a
//! closed loop or an open one at a fixed rate, latency percentiles, errors by class and
//! its own CPU time per connection (docs/contract.md#hello-load).
//!
//! ```text
//! hello-load -n 20000 -c 64 127.0.0.1 9190
//! hello-load -d 10s --rate 5000 -c 256 -m hello --json 127.0.0.1 9190
//! ```

use std::io::{self, IsTerminal as _, Write as _};
use std::process::ExitCode;

use clap::Parser;
use hello_client::args::{Typed, parse_one};
use hello_client::load::cli::{Args, DEFAULT_COUNT, DEFAULT_OPEN_CONCURRENCY, command};
use hello_client::load::summary::Setup;
use hello_client::load::{self, Config, Expect, Plan, Summary};
use hello_client::{Request, attempts_note};
use hello_proto::sys;
use hello_proto::wire::{DEFAULT_GREETING, echo_reply, greeting};
use indicatif::{ProgressBar, ProgressStyle};

fn fail(line: &str) -> ExitCode {
    let _ = writeln!(io::stderr(), "hello-load: {line}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let args = Args::parse();
    let server = parse_one(&args.target).unwrap_or_else(|u| u.exit(command()));
    let target = server.typed.clone();
    let addr = match server_address(&args, &server) {
        Ok(a) => a,
        Err(line) => return fail(&line),
    };
    // An event loop holds a descriptor per exchange in flight: the soft limit (often
    // 1024) is only a default for programs that never check. Failing to raise it only
    // means failures of class `other` (EMFILE) at very high concurrency, which show.
    let _ = sys::process::raise_nofile_limit();
    let payload = args.message.as_ref().map_or_else(Vec::new, |m| greeting(m));
    let expect = match (&args.expect, &args.message) {
        _ if args.expect_any => Expect::Any,
        (Some(text), _) => Expect::Shown(text.clone()),
        (None, Some(m)) => Expect::Bytes(echo_reply(m.as_bytes(), 0)),
        (None, None) => Expect::Bytes(greeting(DEFAULT_GREETING)),
    };
    let concurrency = args.concurrency.unwrap_or(if args.rate.is_some() {
        DEFAULT_OPEN_CONCURRENCY
    } else {
        1
    }) as usize;
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |t| t as usize,
    );
    let plan = match (args.count, args.duration) {
        (_, Some(d)) => Plan::For(d),
        (Some(n), None) => Plan::Count(n),
        (None, None) => Plan::Count(DEFAULT_COUNT),
    };
    let config = Config {
        addr,
        udp: args.udp,
        connect_only: args.connect_only,
        payload,
        numbered: false,
        expect,
        timeout: args.timeout.0,
        plan,
        concurrency,
        rate: args.rate,
        threads,
    };
    let bar = progress_bar(plan);
    let outcome = load::run(&config, |done, elapsed| match plan {
        Plan::Count(_) => bar.set_position(done),
        Plan::For(_) | Plan::CountWithin(..) => {
            bar.set_position(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
            bar.set_message(hello_proto::words::counted(done, "exchange"));
        }
    });
    bar.finish_and_clear();
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return fail(&e.to_string()),
    };
    let setup = Setup {
        target,
        address: addr.to_string(),
        udp: args.udp,
        connect_only: args.connect_only,
        rate: args.rate,
        concurrency,
    };
    let summary = Summary::new(&setup, &outcome);
    let report = if args.json { summary.json() } else { summary.text() };
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(report.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != io::ErrorKind::BrokenPipe {
            return fail(&hello_proto::Error::new(hello_proto::Step::Write, "stdout", e).to_string());
        }
    }
    if summary.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The address the load goes to. A literal is used as it is. A name with several
/// addresses, or `--wait`, first gets one exchange as hello-client makes it (every
/// address in turn, retried until `--wait` runs out), and the load goes where that one
/// went: `localhost` finds the server on whichever of ::1 and 127.0.0.1 it listens.
fn server_address(args: &Args, server: &Typed) -> Result<std::net::SocketAddr, String> {
    let addrs = sys::resolve(&server.host, server.port).map_err(|e| e.to_string())?;
    if let ([one], None) = (&addrs[..], args.wait) {
        return Ok(*one);
    }
    // The exchange the load will make, checked as loosely as the load checks it: the
    // reply's content is the run's business, only its coming matters here.
    let req = Request {
        message: args.message.clone(),
        connect_only: args.connect_only,
        udp: args.udp,
        timeout: args.timeout.0,
        ..Request::new(server.host.clone(), server.port)
    };
    let report = hello_client::run(&req, args.wait);
    match (&report.outcome, report.addr) {
        (Ok(()), Some(addr)) => Ok(addr),
        (Err(f), _) => Err(format!(
            "{f}{}",
            args.wait.map_or(String::new(), |_| attempts_note(&report))
        )),
        (Ok(()), None) => Err(format!(
            "name resolution error: {}: no address found",
            server.host
        )),
    }
}

/// A progress bar on stderr when it is a terminal and not in CI; hidden otherwise, so
/// that nothing of it reaches a pipe or a log.
fn progress_bar(plan: Plan) -> ProgressBar {
    if !io::stderr().is_terminal() || std::env::var_os("CI").is_some() {
        return ProgressBar::hidden();
    }
    let (len, template) = match plan {
        Plan::Count(n) => (n, "{bar:40} {pos}/{len} exchanges, {elapsed}, eta {eta}"),
        Plan::For(d) | Plan::CountWithin(_, d) => (
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            "{bar:40} {elapsed} of the run, {msg}",
        ),
    };
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}
