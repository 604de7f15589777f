//! `hello-client [OPTIONS] <HOST> <PORT>` (or `<HOST:PORT>...`): connects, sends
//! `--message` if given, and prints `Message from server: …`
//! (docs/contract.md#what-the-client-prints); `--wait`, `--expect`, `--json` and `-q`
//! make it a probe for scripts, `--connect-only` one for any TCP service, and `-- CMD`
//! runs a command once every target is ready.
//!
//! ```text
//! terminal 1: hello-server 9190
//! terminal 2: hello-client 127.0.0.1 9190      # Message from server: Hello World!
//! ```

use std::io::{self, Write};
use std::os::unix::process::CommandExt as _;
use std::process::{Command, ExitCode};

use hello_client::Request;
use hello_client::args::{self, Form};
use hello_client::cli::{self, Args, command};
use hello_client::output::{Json, error_line, write_message};
use hello_proto::trace::Role;

fn main() -> ExitCode {
    let args = cli::parse(std::env::args_os().collect()).unwrap_or_else(|e| e.exit());
    let (form, targets) = args::parse(&args.targets).unwrap_or_else(|u| u.exit(command()));
    let tracer = args.narration.tracer(Role::Client);
    if args.textbook {
        return textbook(&args, &targets, &tracer);
    }
    let expect = args.expect();
    let requests: Vec<Request> = targets
        .iter()
        .map(|t| Request {
            message: args.message.clone(),
            connect_only: args.connect_only,
            udp: args.udp,
            unconnected: args.unconnected,
            timeout: args.timeout.0,
            max_reply: args.max_reply,
            expect: expect.clone(),
            tracer: tracer.clone(),
            ..Request::new(t.host.clone(), t.port)
        })
        .collect();
    let reports = hello_client::run_all(&requests, args.wait);
    tracer.finish();
    // Targets are named in the output only when there are several: one target, in either
    // form, prints exactly what the textbook client prints.
    let several = form == Form::Targets && targets.len() > 1;
    let mut errors = String::new();
    for (t, report) in targets.iter().zip(&reports) {
        if let Some(line) = error_line(several.then_some(t.typed.as_str()), report, args.wait) {
            errors.push_str("hello-client: ");
            errors.push_str(&line);
        }
    }
    let printed = print(|out| {
        for (t, report) in targets.iter().zip(&reports) {
            let name = several.then_some(t.typed.as_str());
            if args.json {
                Json::of(&t.typed, args.udp, report).write(out)?;
            } else if report.ok() && !args.quiet {
                write_message(out, name, report, args.connect_only)?;
            }
        }
        Ok(())
    });
    // Error lines last, as always (after the trace, which went to stderr as it happened).
    let _ = io::stderr().lock().write_all(errors.as_bytes());
    let ready = printed && reports.iter().all(|r| r.ok());
    match args.command.split_first() {
        Some((program, rest)) if ready => exec(program, rest),
        _ if ready => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}

/// `--textbook`: the tutorials' client, once: `Message from server: ` and what its one
/// read returned, as `printf("Message from server: %s\n", message)` prints it (shown as
/// every reply is: control characters escaped), exit 0; a failed call is one line and
/// exit 1, as the textbook's `error_handling()` exits.
fn textbook(args: &Args, targets: &[args::Typed], tracer: &hello_proto::sys::Tracer) -> ExitCode {
    let server = match targets {
        [t] => t
            .host
            .to_string()
            .parse()
            .map(|ip| std::net::SocketAddrV4::new(ip, t.port)),
        _ => {
            command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--textbook takes one server (HOST PORT), as the textbook's client does",
                )
                .exit();
        }
    };
    let Ok(server) = server else {
        command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                "--textbook takes an IPv4 address as HOST, as the textbook's inet_addr() does",
            )
            .exit();
    };
    let result = hello_client::textbook::run(server, args.message.as_deref(), args.udp, tracer);
    tracer.finish();
    match result {
        Ok(reply) => {
            let line = format!(
                "Message from server: {}\n",
                hello_proto::wire::display_reply(&reply)
            );
            if print(|out| out.write_all(line.as_bytes())) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            let _ = writeln!(io::stderr(), "hello-client: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes stdout's lines with `write`; false if that failed for another reason than a
/// closed stdout (the error line is then written here).
fn print(write: impl FnOnce(&mut io::BufWriter<io::StdoutLock<'static>>) -> io::Result<()>) -> bool {
    let mut stdout = io::BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    match write(&mut stdout).and_then(|()| stdout.flush()) {
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

/// Runs `program` in this process's place (`execvp(3)`, as `wait-for-it … -- CMD` does),
/// so that its exit status, its signals and its standard streams are its own. Returns
/// only if it could not be run: 127 when it was not found, 126 otherwise, as a shell says.
fn exec(program: &str, args: &[String]) -> ExitCode {
    let e = Command::new(program).args(args).exec();
    let _ = writeln!(io::stderr(), "hello-client: exec error: {program}: {e}");
    ExitCode::from(if e.kind() == io::ErrorKind::NotFound {
        127
    } else {
        126
    })
}
