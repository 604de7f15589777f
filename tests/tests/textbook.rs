//! `--textbook` (docs/contract.md#the-textbook-programs): hello-server and hello-client make
//! exactly the system calls of the tutorials' C programs (`tests/c/`), in their order and
//! with their arguments, as strace sees both; they print what the C programs print; each
//! works with the other's C peer; every call is traced, marked, with the C line that
//! makes it.
//!
//! Needs a C compiler and strace: without either the comparison prints a SKIP line and
//! passes (the other checks still run where they can).

// Test code: a panic with a message is how it reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use hello_tests::{Server, WAIT, bins, c_program, closed_tcp_port, run_bounded, skip, workspace_root};

/// The calls strace shows: every socket call, and `read`, `write` and `close` (the
/// textbook's I/O on a socket).
const STRACE_CALLS: &str = "trace=%network,read,write,close";

/// One exchange of the tutorials: the C programs and ours, with the client's arguments
/// after `HOST PORT`.
struct Exchange {
    name: &'static str,
    c_server: &'static str,
    c_client: &'static str,
    /// Our server's options besides `--textbook`.
    server: &'static [&'static str],
    /// Our client's options besides `--textbook`.
    client: &'static [&'static str],
    /// The C client's arguments after `HOST PORT`.
    c_client_args: &'static [&'static str],
    /// What both clients print.
    stdout: &'static str,
}

const HELLO: Exchange = Exchange {
    name: "hello",
    c_server: "hello_server",
    c_client: "hello_client",
    server: &[],
    client: &[],
    c_client_args: &[],
    stdout: "Message from server: Hello World!\n",
};

const ECHO: Exchange = Exchange {
    name: "echo",
    c_server: "echo_server",
    c_client: "echo_client",
    server: &["--service", "echo"],
    client: &["-m", "hello"],
    c_client_args: &["hello"],
    stdout: "Message from server: 5 : hello\n",
};

const UDP_ECHO: Exchange = Exchange {
    name: "udp echo",
    c_server: "uecho_server",
    c_client: "uecho_client",
    server: &["--udp", "--service", "echo"],
    client: &["--udp", "-m", "hello"],
    c_client_args: &["hello"],
    stdout: "Message from server: 5 : hello\n",
};

/// strace, if it is installed and may trace here (a container may forbid ptrace).
fn strace() -> Option<&'static Path> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let Some(strace) = hello_tests::which("strace") else {
            skip("textbook: no strace; the call-by-call comparison with the C programs did not run");
            return None;
        };
        let works = Command::new(&strace)
            .args(["-o", "/dev/null", "true"])
            .status()
            .is_ok_and(|s| s.success());
        if !works {
            skip("textbook: strace cannot trace here (ptrace refused); the comparison did not run");
            return None;
        }
        Some(strace)
    });
    found.as_deref()
}

/// A temporary file for one strace log.
fn log_path(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hello-textbook-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(what.replace(' ', "_"))
}

/// The strace arguments that run `program ARGS` with its calls logged to `log`.
fn under_strace(log: &Path, program: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec![
        "-f".to_string(),
        "-o".to_string(),
        log.display().to_string(),
        "-e".to_string(),
        STRACE_CALLS.to_string(),
        program.display().to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    all
}

/// The calls of a strace log a program's source decides, one line each as strace wrote
/// them: from the first `socket()` on (before it, the dynamic loader and the C or Rust
/// runtime start the process), without the calls on the standard streams (where the
/// start-up line and the output go: compared apart), with process ids dropped and ports
/// masked (`htons(PORT)`).
fn calls(log: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
    let mut out = Vec::new();
    for line in text.lines() {
        // `-f` puts the process id first.
        let line = match line.split_once(' ') {
            Some((pid, rest)) if pid.chars().all(|c| c.is_ascii_digit()) => rest.trim_start(),
            _ => line,
        };
        if line.starts_with("+++") || line.starts_with("---") {
            continue;
        }
        if out.is_empty() && !line.starts_with("socket(") {
            continue;
        }
        let on_std_stream = [
            "read(0,", "write(1,", "write(2,", "close(0)", "close(1)", "close(2)",
        ]
        .iter()
        .any(|p| line.starts_with(p));
        if on_std_stream {
            continue;
        }
        out.push(mask_ports(line));
    }
    out
}

/// `htons(40123)` → `htons(PORT)`, and strace's column padding before `=` squeezed.
fn mask_ports(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find("htons(") {
        out.push_str(&rest[..i + "htons(".len()]);
        rest = &rest[i + "htons(".len()..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        out.push_str("PORT");
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// What one side of an exchange did: its calls as strace saw them, what the client
/// printed, and (ours) the server's and client's trace records.
struct Run {
    server_calls: Vec<String>,
    client_calls: Vec<String>,
    client_stdout: String,
    server_stdout: Vec<String>,
    records: Vec<serde_json::Value>,
}

/// Runs `server` (its start-up line on stdout, or on stderr for ours) and `client` against
/// it under strace; the client is given `HOST PORT` then `client_tail`.
fn run_traced(x: &Exchange, c: bool, strace: &Path) -> Run {
    let side = if c { "c" } else { "ours" };
    let server_log = log_path(&format!("{} {side} server", x.name));
    let client_log = log_path(&format!("{} {side} client", x.name));
    let json = ["--trace", "--trace-format", "json", "--lang", "en"];
    let mut server_args: Vec<&str> = Vec::new();
    if !c {
        server_args.extend(["--textbook"].iter().chain(&json).chain(x.server));
    }
    server_args.push("0");
    let server_program = if c {
        c_program(x.c_server).unwrap()
    } else {
        bins().server.clone()
    };
    let args = under_strace(&server_log, &server_program, &server_args);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = if c {
        Server::start_program(strace, &args)
    } else {
        Server::start_program_announcing_on_stderr(strace, &args)
    };
    let port = server.port().to_string();
    let mut client_args: Vec<&str> = Vec::new();
    if !c {
        client_args.extend(["--textbook"].iter().chain(&json).chain(x.client));
    }
    client_args.extend(["127.0.0.1", port.as_str()]);
    if c {
        client_args.extend(x.c_client_args);
    }
    let client_program = if c {
        c_program(x.c_client).unwrap()
    } else {
        bins().client.clone()
    };
    let mut cmd = Command::new(strace);
    cmd.args(under_strace(&client_log, &client_program, &client_args));
    for v in ["LANG", "LC_ALL", "LC_MESSAGES"] {
        cmd.env_remove(v);
    }
    let (status, stdout, stderr) = run_bounded(&mut cmd);
    let client_stderr = String::from_utf8_lossy(&stderr).into_owned();
    assert!(
        status.success(),
        "{} {side} client: {status}: {client_stderr}",
        x.name
    );
    let done = server.wait(WAIT).expect("the one-shot server exits");
    assert!(
        done.success(),
        "{} {side} server: {done}: {}",
        x.name,
        server.stderr()
    );
    let server_stdout = server.stdout_to_end(WAIT);
    let records = if c {
        Vec::new()
    } else {
        let server_stderr = server.stderr();
        let startup = format!("listening on 0.0.0.0:{port}");
        assert_eq!(
            server_stderr.lines().filter(|l| *l == startup).count(),
            1,
            "{}: our server's start-up line is on stderr: {server_stderr}",
            x.name
        );
        server_stderr
            .lines()
            .filter(|l| *l != startup)
            .chain(client_stderr.lines())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: not a record ({e}): {l}", x.name))
            })
            .collect()
    };
    Run {
        server_calls: calls(&server_log),
        client_calls: calls(&client_log),
        client_stdout: String::from_utf8_lossy(&stdout).into_owned(),
        server_stdout,
        records,
    }
}

/// The comparison itself, for one exchange.
fn same_calls_as_the_c_programs(x: &Exchange) {
    let (Some(strace), Some(_), Some(_)) = (strace(), c_program(x.c_server), c_program(x.c_client)) else {
        return;
    };
    let theirs = run_traced(x, true, strace);
    let ours = run_traced(x, false, strace);
    assert!(
        !theirs.server_calls.is_empty(),
        "{}: strace saw no socket() in the C server",
        x.name
    );
    assert_eq!(
        ours.server_calls, theirs.server_calls,
        "{}: the server's calls",
        x.name
    );
    assert_eq!(
        ours.client_calls, theirs.client_calls,
        "{}: the client's calls",
        x.name
    );
    assert_eq!(
        theirs.client_stdout, x.stdout,
        "{}: the C client's output",
        x.name
    );
    assert_eq!(
        ours.client_stdout, theirs.client_stdout,
        "{}: our client prints the C client's bytes",
        x.name
    );
    assert_eq!(
        ours.server_stdout,
        Vec::<String>::new(),
        "{}: our server's stdout is empty",
        x.name
    );

    // The trace shows exactly these calls, in their order, each with its C line, found
    // in the C program: the server's and then the client's.
    let names = |calls: &[String]| -> Vec<String> {
        calls
            .iter()
            .map(|c| c.split('(').next().unwrap_or_default().to_string())
            .collect()
    };
    let mut strace_names = names(&ours.server_calls);
    strace_names.extend(names(&ours.client_calls));
    let traced: Vec<String> = ours
        .records
        .iter()
        .map(|r| r["call"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        traced, strace_names,
        "{}: the trace shows the calls strace saw",
        x.name
    );
    for r in &ours.records {
        let src = r["src"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: a record without src: {r}", x.name));
        let program = if r["who"] == "server" {
            x.c_server
        } else {
            x.c_client
        };
        assert!(
            c_source(program).contains(src),
            "{}: {src:?} is not a line of tests/c/{program}.c",
            x.name
        );
        let added = r["call"] == "getsockname";
        assert_eq!(
            r["mark"],
            if added { "added" } else { "textbook" },
            "{}: {r}",
            x.name
        );
    }
}

/// The text of `tests/c/NAME.c`.
fn c_source(name: &str) -> String {
    let path = workspace_root().join("tests").join("c").join(format!("{name}.c"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn hello_makes_the_c_programs_calls_in_their_order() {
    same_calls_as_the_c_programs(&HELLO);
}

#[test]
fn echo_makes_the_c_programs_calls_in_their_order() {
    same_calls_as_the_c_programs(&ECHO);
}

#[test]
fn udp_echo_makes_the_c_programs_calls_in_their_order() {
    same_calls_as_the_c_programs(&UDP_ECHO);
}

#[test]
fn the_normalisation_keeps_arguments_and_masks_only_ports() {
    // The control for the comparison: two calls that differ only in a port are equal,
    // and any other difference (the backlog, a byte count, the address) is not.
    let a = mask_ports(
        r#"bind(3, {sa_family=AF_INET, sin_port=htons(40123), sin_addr=inet_addr("0.0.0.0")}, 16) = 0"#,
    );
    let b = mask_ports(
        r#"bind(3, {sa_family=AF_INET, sin_port=htons(9190), sin_addr=inet_addr("0.0.0.0")}, 16)   = 0"#,
    );
    assert_eq!(a, b);
    let c = mask_ports(
        r#"bind(3, {sa_family=AF_INET, sin_port=htons(9190), sin_addr=inet_addr("127.0.0.1")}, 16) = 0"#,
    );
    assert_ne!(a, c);
    assert_ne!(mask_ports("listen(3, 5) = 0"), mask_ports("listen(3, 4096) = 0"));
    assert_ne!(
        mask_ports(r#"write(4, "Hello World!\0", 13) = 13"#),
        mask_ports(r#"write(4, "Hello World!", 12) = 12"#)
    );
}

#[test]
fn each_textbook_program_works_with_the_others_c_peer() {
    for x in [&HELLO, &ECHO, &UDP_ECHO] {
        let (Some(c_server), Some(c_client)) = (c_program(x.c_server), c_program(x.c_client)) else {
            return;
        };
        // Our client, the C server.
        let mut server = Server::start_program(&c_server, &["0"]);
        let port = server.port().to_string();
        let mut args = vec!["--textbook"];
        args.extend(x.client);
        args.extend(["127.0.0.1", port.as_str()]);
        hello_tests::client(&args)
            .assert()
            .success()
            .stdout(x.stdout)
            .stderr("");
        assert!(
            server.wait(WAIT).is_some_and(|s| s.success()),
            "{}: C server",
            x.name
        );
        // The C client, our server.
        let mut args = vec!["--textbook"];
        args.extend(x.server);
        args.push("0");
        let mut server = Server::start_program_announcing_on_stderr(&bins().server, &args);
        let port = server.port().to_string();
        let mut c_args = vec!["127.0.0.1", port.as_str()];
        c_args.extend(x.c_client_args);
        let (status, stdout, _) = run_bounded(Command::new(&c_client).args(&c_args));
        assert!(status.success(), "{}: C client: {status}", x.name);
        assert_eq!(String::from_utf8_lossy(&stdout), x.stdout, "{}", x.name);
        assert!(
            server.wait(WAIT).is_some_and(|s| s.success()),
            "{}: {}",
            x.name,
            server.stderr()
        );
        assert_eq!(server.stdout_to_end(WAIT), Vec::<String>::new(), "{}", x.name);
    }
}

#[test]
fn the_textbook_udp_hello_greets_one_datagram_then_exits() {
    let mut server =
        Server::start_program_announcing_on_stderr(&bins().server, &["--textbook", "--udp", "0"]);
    hello_tests::client(&["--textbook", "--udp", "127.0.0.1", &server.port().to_string()])
        .assert()
        .success()
        .stdout("Message from server: Hello World!\n");
    assert!(
        server.wait(WAIT).is_some_and(|s| s.success()),
        "{}",
        server.stderr()
    );
}

#[test]
fn options_real_software_adds_are_usage_errors_with_textbook() {
    for args in [
        &["--textbook", "--model", "epoll", "0"][..],
        &["--textbook", "--workers", "2", "0"],
        &["--textbook", "--proxy-protocol", "0"],
        &["--textbook", "--idle-timeout", "1s", "0"],
        &["--textbook", "--max-conns", "3", "0"],
        &["--textbook", "--bind", "::", "0"],
    ] {
        hello_tests::server_cmd(args)
            .timeout(WAIT)
            .assert()
            .code(2)
            .stdout("");
    }
    for args in [
        &["--textbook", "--timeout", "1s", "127.0.0.1", "9"][..],
        &["--textbook", "--wait", "1s", "127.0.0.1", "9"],
        &["--textbook", "--json", "127.0.0.1", "9"],
        &["--textbook", "--expect", "x", "127.0.0.1", "9"],
        &["--textbook", "localhost", "9"],
        &["--textbook", "127.0.0.1:9", "127.0.0.1:10"],
    ] {
        hello_tests::client(args)
            .timeout(WAIT)
            .assert()
            .code(2)
            .stdout("");
    }
}

#[test]
fn a_failed_call_is_one_line_naming_it_and_exit_1() {
    let port = closed_tcp_port().to_string();
    let out = hello_tests::client(&["--textbook", "127.0.0.1", &port])
        .timeout(WAIT)
        .assert()
        .code(1)
        .stdout("")
        .get_output()
        .clone();
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("hello-client: connect() error: 127.0.0.1:{port}: Connection refused (os error 111)\n")
    );
    // A port in use: bind() fails before any start-up line.
    let holder = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let out = hello_tests::server_cmd(&["--textbook", &port])
        .timeout(WAIT)
        .assert()
        .code(1)
        .stdout("")
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.starts_with(&format!("hello-server: bind() error: 0.0.0.0:{port}: ")) && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn the_text_trace_shows_each_c_line_beside_its_call() {
    let mut server = Server::start_program_announcing_on_stderr(
        &bins().server,
        &["--textbook", "--trace", "--lang", "en", "0"],
    );
    hello_tests::client(&["--textbook", "127.0.0.1", &server.port().to_string()])
        .assert()
        .success();
    assert!(server.wait(WAIT).is_some_and(|s| s.success()));
    let err = server.stderr();
    let write = err
        .lines()
        .find(|l| l.contains("server  write("))
        .unwrap_or_else(|| panic!("no write() line: {err}"));
    assert!(
        write.contains(
            r#"write(4, "Hello World!\0") = 13  # [textbook] write(clnt_sock, message, sizeof(message));  "#
        ),
        "{write}"
    );
    let closes: Vec<&str> = err.lines().filter(|l| l.contains("server  close(")).collect();
    assert_eq!(closes.len(), 2, "close(clnt_sock) and close(serv_sock): {err}");
    assert!(closes[1].contains("close(serv_sock);"), "{err}");
}
