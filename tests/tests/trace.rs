//! `--trace` end to end (docs/contract.md#the-trace): golden traces of whole exchanges (TCP
//! and UDP, hello and echo, English and Korean), stdout unchanged by `--trace`, the
//! language chosen from `--lang` or the locale, failed calls traced with their errno.
//!
//! The golden files in `tests/golden/` are what a learner sees, with the time of day,
//! descriptor numbers and ports masked (byte counts and data stay). After an intended
//! change of the trace, rewrite them with `UPDATE_GOLDEN=1 cargo test -p hello-tests
//! --test trace` and read the diff.

// Test code: a panic with a message is how it reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::SystemTime;

use hello_harness::{Done, Pipe, Program};
use hello_tests::{WAIT, bins, client, workspace_root};

/// Locale variables cleared for every program started here, so that the developer's own
/// `LANG` never changes a result.
const LOCALE_VARS: [&str; 3] = ["LANG", "LC_ALL", "LC_MESSAGES"];

// ---------------------------------------------------------------------------------------
// Running the programs
// ---------------------------------------------------------------------------------------

/// A `hello-server` started by this file (a `hello-harness` program), whose whole stdout
/// and stderr are collected once it exits (`--once`). Killed when dropped.
struct Started {
    program: Program,
    port: u16,
}

/// Starts `hello-server ARGS` with `env` on top of a locale-free environment, and waits
/// (bounded) for its start-up line. `None` if it exited without one (e.g. no IPv6).
fn start_server(args: &[&str], env: &[(&str, &str)]) -> Option<Started> {
    let mut cmd = Command::new(&bins().server);
    cmd.args(hello_tests::server_args(args));
    for v in LOCALE_VARS {
        cmd.env_remove(v);
    }
    cmd.envs(env.iter().copied());
    let program = Program::start(cmd).expect("spawn hello-server");
    match program.listening(Pipe::Stdout, WAIT) {
        Ok(l) => Some(Started {
            program,
            port: l.addr.port(),
        }),
        Err(e) => {
            let done = program
                .finish(WAIT)
                .unwrap_or_else(|still| panic!("{e:#}; {still:#}"));
            eprintln!("hello-server {args:?} did not start: {e:#}; {:?}", done.stderr);
            None
        }
    }
}

impl Started {
    /// What the server wrote to stderr so far.
    fn stderr(&self) -> String {
        self.program.stderr()
    }

    /// Waits (bounded) for the server to exit and close its output; returns all of it,
    /// the start-up line first.
    fn finish(self) -> Done {
        self.program.finish(WAIT).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// Waits (bounded) until the server's stderr holds `needle`.
    fn wait_stderr(&self, needle: &str) {
        assert!(
            self.program.wait_for(Pipe::Stderr, needle, WAIT),
            "no {needle:?} on the server's stderr within {WAIT:?}:\n{}",
            self.stderr()
        );
    }
}

/// Runs `hello-client ARGS` with `env` on top of a locale-free environment (bounded).
fn run_client(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = client(args);
    for v in LOCALE_VARS {
        c.env_remove(v);
    }
    c.envs(env.iter().copied());
    c.output().expect("run hello-client")
}

/// One whole exchange: both programs' output.
struct Exchange {
    port: u16,
    server: Done,
    client: std::process::Output,
}

impl Exchange {
    fn client_stdout(&self) -> &[u8] {
        &self.client.stdout
    }
    fn client_stderr(&self) -> String {
        String::from_utf8_lossy(&self.client.stderr).into_owned()
    }
}

/// A `--once` server with `server_args`, one client with `client_args` (`PORT` is
/// replaced by the server's port), each with `env`. Both must succeed.
fn exchange(server_args: &[&str], client_args: &[&str], env: &[(&str, &str)]) -> Exchange {
    let mut args = server_args.to_vec();
    args.extend(["--once", "0"]);
    let server = start_server(&args, env).expect("the server starts");
    let port = server.port.to_string();
    let cargs: Vec<&str> = client_args
        .iter()
        .map(|a| if *a == "PORT" { port.as_str() } else { a })
        .collect();
    let client = run_client(&cargs, env);
    let server_port = server.port;
    let server_out = server.finish();
    assert!(
        client.status.success(),
        "hello-client {cargs:?} failed: {}",
        String::from_utf8_lossy(&client.stderr)
    );
    assert!(
        server_out.status.success(),
        "hello-server {args:?} failed: {}",
        server_out.stderr
    );
    Exchange {
        port: server_port,
        server: server_out,
        client,
    }
}

// ---------------------------------------------------------------------------------------
// Masking what changes from run to run
// ---------------------------------------------------------------------------------------

/// Masks a trace (or any stderr text) so that it compares across runs: the time of day
/// becomes `HH:MM:SS.ffffff`, descriptors `<fd1>`, `<fd2>`… in order of first
/// appearance, the server's port `<server-port>` and any other non-zero port
/// `<client-port>` (then `<client-port2>`…). Port 0, byte counts and data are kept.
/// Panics on a line that starts like a trace line but is not one.
fn normalise(text: &str, server_port: u16) -> String {
    let mut m = Masker {
        server_port,
        fds: Vec::new(),
        ports: Vec::new(),
    };
    let mut out = String::new();
    for line in text.lines() {
        match TraceLine::parse(line) {
            Some(t) => {
                let fds_masked = m.mask_fds(t.call);
                let call = m.mask_addrs(&fds_masked);
                // The hello server's check for unread input races with the client: EAGAIN
                // (nothing arrived) and 0 (the client's FIN already did) both mean "nothing
                // unread". Both wordings are checked in proto's trace unit tests.
                // How long a blocking server waited for its client depends on how fast the
                // client started: its accept() timeouts, polls and their count are left out.
                if is_idle_wait(&call) {
                    continue;
                }
                let call = mask_timeouts(&call);
                if call.contains("MSG_DONTWAIT) = -1 EAGAIN") || call.ends_with("MSG_DONTWAIT) = 0") {
                    let head = call.split(" = ").next().unwrap_or(&call);
                    out.push_str(&format!(
                        "HH:MM:SS.ffffff {}  {head} = <nothing unread>\n",
                        t.role
                    ));
                    continue;
                }
                out.push_str(&format!(
                    "HH:MM:SS.ffffff {}  {call}  # {}\n",
                    t.role, t.explanation
                ));
            }
            None => {
                out.push_str(&m.mask_addrs(line));
                out.push('\n');
            }
        }
    }
    out
}

/// A blocking server's wait for its next client: `accept()` giving up after its
/// `SO_RCVTIMEO`, the `poll()` after it, and the line counting their repeats.
fn is_idle_wait(call: &str) -> bool {
    (call.starts_with("accept(") && call.contains("= -1 EAGAIN")) || call.starts_with("poll(")
}

/// A socket timeout set from a deadline is whatever time was left: `<limit>`. The
/// listening socket's fixed 100 ms stays.
fn mask_timeouts(call: &str) -> String {
    for opt in ["SO_RCVTIMEO, ", "SO_SNDTIMEO, "] {
        if let Some(i) = call.find(opt) {
            let start = i + opt.len();
            let end = call[start..].find(')').map_or(call.len(), |e| start + e);
            if &call[start..end] != "100ms" {
                return format!("{}<limit>{}", &call[..start], &call[end..]);
            }
        }
    }
    call.to_string()
}

/// `03:41:07.123456 +52µs server  listen(3, 4096) = 0  # [textbook] explanation`, taken
/// apart (the time the call was made and how long it took are left out).
struct TraceLine<'a> {
    role: &'a str,
    call: &'a str,
    explanation: &'a str,
}

impl<'a> TraceLine<'a> {
    /// `None` for a line that does not start with a time of day (an error message);
    /// panics on a line that does but is malformed.
    fn parse(line: &'a str) -> Option<TraceLine<'a>> {
        let time = line.get(..15)?;
        let shape = time.char_indices().all(|(i, c)| match i {
            2 | 5 => c == ':',
            8 => c == '.',
            _ => c.is_ascii_digit(),
        });
        if !shape {
            return None;
        }
        let rest = line[15..]
            .strip_prefix(" +")
            .unwrap_or_else(|| panic!("no duration after the time: {line:?}"));
        let (took, rest) = rest
            .split_once("µs ")
            .unwrap_or_else(|| panic!("no duration in µs: {line:?}"));
        assert!(is_number(took), "bad duration in {line:?}");
        let (role, rest) = rest
            .split_once("  ")
            .unwrap_or_else(|| panic!("no role: {line:?}"));
        // A fork model child names itself, `server[4242]`, and a worker `server#2`.
        let process = role.strip_prefix("server[").and_then(|r| r.strip_suffix(']'));
        let worker = role.strip_prefix("server#");
        assert!(
            role == "server"
                || role == "client"
                || process.is_some_and(is_number)
                || worker.is_some_and(is_number),
            "bad role in {line:?}"
        );
        let role = if process.is_some() || worker.is_some() {
            "server"
        } else {
            role
        };
        // The explanation never holds "  # "; the data shown in a call might.
        let (call, explanation) = rest
            .rsplit_once("  # ")
            .unwrap_or_else(|| panic!("no explanation: {line:?}"));
        assert!(
            call.contains('(') && !explanation.trim().is_empty(),
            "malformed trace line {line:?}"
        );
        assert!(
            ["[textbook] ", "[added] ", "[교재] ", "[추가] "]
                .iter()
                .any(|t| explanation.starts_with(t)),
            "no textbook mark in {line:?}"
        );
        Some(TraceLine {
            role,
            call,
            explanation,
        })
    }
}

struct Masker {
    server_port: u16,
    fds: Vec<String>,
    ports: Vec<u16>,
}

impl Masker {
    fn fd(&mut self, n: &str) -> String {
        let i = match self.fds.iter().position(|f| f == n) {
            Some(i) => i,
            None => {
                self.fds.push(n.to_string());
                self.fds.len() - 1
            }
        };
        format!("<fd{}>", i + 1)
    }

    fn port(&mut self, p: u16) -> String {
        if p == 0 {
            return "0".into();
        }
        if p == self.server_port {
            return "<server-port>".into();
        }
        let i = match self.ports.iter().position(|q| *q == p) {
            Some(i) => i,
            None => {
                self.ports.push(p);
                self.ports.len() - 1
            }
        };
        if i == 0 {
            "<client-port>".into()
        } else {
            format!("<client-port{}>", i + 1)
        }
    }

    /// Descriptors sit in three places: `socket(...) = N`, the first argument of every
    /// other call (`read(N)`, `bind(N, ...)`), and `accept(L) = N, peer ...`.
    fn mask_fds(&mut self, call: &str) -> String {
        let Some(open) = call.find('(') else {
            return call.to_string();
        };
        let name = &call[..open];
        // Calls whose result is a new descriptor and whose first argument is not one.
        if ["socket", "io_uring_setup", "eventfd"].contains(&name) {
            if let Some((head, result)) = call.rsplit_once(" = ") {
                if is_number(result) {
                    return format!("{head} = {}", self.fd(result));
                }
            }
            return call.to_string();
        }
        let args = &call[open + 1..];
        let end = args.find([',', ')']).unwrap_or(args.len());
        let mut out = call[..=open].to_string();
        let first = &args[..end];
        if is_number(first) {
            out.push_str(&self.fd(first));
        } else {
            out.push_str(first);
        }
        let rest = &args[end..];
        if name == "accept" || name == "IORING_OP_ACCEPT" {
            let after = rest
                .strip_prefix(") = ")
                .or_else(|| rest.strip_prefix(", IORING_ACCEPT_MULTISHOT) = "));
            let shown = if after.is_some() && rest.starts_with(", IORING") {
                ", IORING_ACCEPT_MULTISHOT"
            } else {
                ""
            };
            if let Some(after) = after {
                let n_end = after.find(',').unwrap_or(after.len());
                if is_number(&after[..n_end]) {
                    let fd = self.fd(&after[..n_end]);
                    return format!("{out}{shown}) = {fd}{}", &after[n_end..]);
                }
            }
        }
        out.push_str(rest);
        out
    }

    /// Masks the port of every `a.b.c.d:PORT` and `[v6]:PORT` outside quoted data.
    fn mask_addrs(&mut self, s: &str) -> String {
        let mut out = String::new();
        let mut token = String::new();
        let (mut quoted, mut escaped) = (false, false);
        for c in s.chars() {
            if quoted {
                out.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    quoted = false;
                }
                continue;
            }
            if matches!(c, '"' | ' ' | ',' | '(' | ')') {
                out.push_str(&self.mask_token(&token));
                token.clear();
                out.push(c);
                quoted = c == '"';
                continue;
            }
            token.push(c);
        }
        out.push_str(&self.mask_token(&token));
        out
    }

    fn mask_token(&mut self, t: &str) -> String {
        // `127.0.0.1:9190:` in `connect() error: 127.0.0.1:9190: Connection refused`.
        let (core, tail) = match t.strip_suffix(':') {
            Some(c) => (c, ":"),
            None => (t, ""),
        };
        match core.parse::<SocketAddr>() {
            Ok(a) => {
                let host = &core[..core.rfind(':').expect("an address has a colon")];
                format!("{host}:{}{tail}", self.port(a.port()))
            }
            Err(_) => t.to_string(),
        }
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn has_hangul(s: &str) -> bool {
    s.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c))
}

/// The trace lines of some stderr text.
fn trace_lines(text: &str) -> Vec<TraceLine<'_>> {
    text.lines().filter_map(TraceLine::parse).collect()
}

/// Every trace line is in `lang`: in Korean each explanation holds Hangul; in English none
/// does. At least one trace line is required.
fn assert_language(text: &str, lang: &str, what: &str) {
    let lines = trace_lines(text);
    assert!(!lines.is_empty(), "{what}: no trace lines in {text:?}");
    for t in lines {
        match lang {
            "ko" => assert!(
                has_hangul(t.explanation),
                "{what}: explanation not in Korean: {:?}",
                t.explanation
            ),
            _ => assert!(
                !has_hangul(t.explanation),
                "{what}: explanation not in English: {:?}",
                t.explanation
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Golden files
// ---------------------------------------------------------------------------------------

fn golden_path(name: &str) -> PathBuf {
    workspace_root().join("tests").join("golden").join(name)
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// Compares `got` with `tests/golden/<name>`, or writes it there with `UPDATE_GOLDEN=1`.
fn golden(name: &str, got: &str) {
    let path = golden_path(name);
    if updating() {
        std::fs::create_dir_all(path.parent().expect("golden folder")).expect("create tests/golden");
        std::fs::write(&path, got).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with UPDATE_GOLDEN=1 cargo test -p hello-tests --test trace\n\
             the output was:\n{got}",
            path.display()
        )
    });
    if want != got {
        let (w, g): (Vec<_>, Vec<_>) = (want.lines().collect(), got.lines().collect());
        let first = (0..w.len().max(g.len()))
            .find(|&i| w.get(i) != g.get(i))
            .unwrap_or(0);
        panic!(
            "{} differs from this run at line {}:\n  want: {:?}\n  got:  {:?}\n\
             whole output:\n{got}\n(if the change is intended: UPDATE_GOLDEN=1 cargo test -p \
             hello-tests --test trace, then read the diff)",
            path.display(),
            first + 1,
            w.get(first),
            g.get(first),
        );
    }
}

// ---------------------------------------------------------------------------------------
// The exchanges
// ---------------------------------------------------------------------------------------

/// One exchange of the golden set: its name and the options of each side.
struct Scenario {
    name: &'static str,
    server: &'static [&'static str],
    client: &'static [&'static str],
    /// What the client prints.
    stdout: &'static str,
}

const TCP_HELLO: Scenario = Scenario {
    name: "tcp_hello",
    server: &[],
    client: &[],
    stdout: "Message from server: Hello World!\n",
};
const TCP_ECHO: Scenario = Scenario {
    name: "tcp_echo",
    server: &["--service", "echo"],
    client: &["-m", "hello"],
    stdout: "Message from server: 5 : hello\n",
};
const UDP_HELLO: Scenario = Scenario {
    name: "udp_hello",
    server: &["--udp"],
    client: &["--udp"],
    stdout: "Message from server: Hello World!\n",
};
const UDP_ECHO: Scenario = Scenario {
    name: "udp_echo",
    server: &["--udp", "--service", "echo"],
    client: &["--udp", "-m", "hello"],
    stdout: "Message from server: 5 : hello\n",
};

/// Runs the scenario; `trace` is `None` (no `--trace`) or the `--lang`.
fn run_scenario(s: &Scenario, trace: Option<&str>, env: &[(&str, &str)]) -> Exchange {
    let mut server: Vec<&str> = vec!["--model", "iterative"];
    let mut client: Vec<&str> = Vec::new();
    if let Some(lang) = trace {
        for args in [&mut server, &mut client] {
            args.push("--trace");
            if !lang.is_empty() {
                args.extend(["--lang", lang]);
            }
        }
    }
    server.extend(s.server);
    client.extend(s.client);
    client.extend(["127.0.0.1", "PORT"]);
    exchange(&server, &client, env)
}

/// The golden check of one scenario in both languages, and stdout with and without
/// `--trace`.
fn check_scenario(s: &Scenario) {
    let plain = run_scenario(s, None, &[]);
    assert_eq!(
        String::from_utf8_lossy(plain.client_stdout()),
        s.stdout,
        "{}: client stdout",
        s.name
    );
    assert_eq!(
        plain.client_stderr(),
        "",
        "{}: client stderr without --trace",
        s.name
    );
    assert_eq!(
        plain.server.stderr, "",
        "{}: server stderr without --trace",
        s.name
    );
    for lang in ["en", "ko"] {
        let traced = run_scenario(s, Some(lang), &[]);
        // stdout is byte for byte what it is without --trace (the server's port aside,
        // which the kernel chooses anew each run).
        assert_eq!(
            traced.client_stdout(),
            plain.client_stdout(),
            "{} {lang}: --trace changed the client's stdout",
            s.name
        );
        assert_eq!(
            traced.server.stdout,
            format!("listening on 0.0.0.0:{}\n", traced.port),
            "{} {lang}: --trace changed the server's stdout",
            s.name
        );
        assert_eq!(
            plain.server.stdout,
            format!("listening on 0.0.0.0:{}\n", plain.port),
            "{}: server stdout",
            s.name
        );
        let server = traced.server.stderr.clone();
        let client = traced.client_stderr();
        assert_language(&server, lang, &format!("{} {lang} server", s.name));
        assert_language(&client, lang, &format!("{} {lang} client", s.name));
        golden(
            &format!("{}.{lang}.server.txt", s.name),
            &normalise(&server, traced.port),
        );
        golden(
            &format!("{}.{lang}.client.txt", s.name),
            &normalise(&client, traced.port),
        );
    }
}

#[test]
fn tcp_hello_trace_matches_golden_in_both_languages() {
    check_scenario(&TCP_HELLO);
}

#[test]
fn tcp_echo_trace_matches_golden_in_both_languages() {
    check_scenario(&TCP_ECHO);
}

#[test]
fn udp_hello_trace_matches_golden_in_both_languages() {
    check_scenario(&UDP_HELLO);
}

#[test]
fn udp_echo_trace_matches_golden_in_both_languages() {
    check_scenario(&UDP_ECHO);
}

/// The server's trace of one client is the same, call for call, whichever model serves
/// it (the models are not `--once`: the test waits for the `close()` line).
/// A server of `model` (not `--once`) traced in `lang`, and the scenario's client once
/// against it: the client must succeed and print what the scenario says. Returns the
/// server once its stderr holds `until`.
fn one_client_traced(s: &Scenario, model: &str, lang: &str, until: &str) -> Started {
    let mut args = vec!["--trace", "--lang", lang, "--model", model];
    args.extend(s.server);
    args.push("0");
    let server = start_server(&args, &[]).expect("the server starts");
    let port = server.port.to_string();
    let mut cargs: Vec<&str> = s.client.to_vec();
    cargs.extend(["127.0.0.1", &port]);
    let out = run_client(&cargs, &[]);
    assert!(out.status.success(), "{} {model} {lang}: client failed", s.name);
    assert_eq!(String::from_utf8_lossy(&out.stdout), s.stdout);
    server.wait_stderr(until);
    server
}

#[test]
fn every_model_traces_the_same_calls() {
    if updating() {
        return;
    }
    for (s, name) in [(&TCP_HELLO, "tcp_hello"), (&TCP_ECHO, "tcp_echo")] {
        let want = std::fs::read_to_string(golden_path(&format!("{name}.en.server.txt")))
            .expect("golden file (run the golden tests first)");
        // The io_uring model makes other calls (its ring's): see
        // the_uring_model_traces_its_submissions_and_completions.
        for model in hello_tests::MODELS
            .into_iter()
            .filter(|m| *m != hello_tests::URING)
        {
            // Until the client's socket closed (not a copy of it, in the fork model's
            // parent), by its explanation: the role may be a worker's (`server#2`).
            let server = one_client_traced(
                s,
                model,
                "en",
                "# [textbook] close the socket and release its descriptor",
            );
            // The calls on the socket and the connection are the same in every model; how
            // a model waits is its own: the select model's select() calls, the fork model's
            // processes, their copies of descriptors and the accept() that SIGCHLD
            // interrupts, the event loop's epoll calls and the listener's mode, the threads
            // model's threads, and the socket timeouts the blocking models bound their
            // calls with. Several workers are folded into one.
            let calls: String = as_one_worker(&server.stderr())
                .lines()
                .filter(|l| !model_own(l))
                .map(|l| format!("{l}\n"))
                .collect();
            let want: String = want
                .lines()
                .filter(|l| !model_own(l))
                .map(|l| format!("{l}\n"))
                .collect();
            assert_eq!(
                normalise(&calls, server.port),
                want,
                "{name}: the {model} model traces differently"
            );
        }
    }
}

/// The io_uring model's trace of one client, in both languages: the ring set up, each
/// `io_uring_enter()` with what it submitted and how many completions it reaped, and one
/// line per completion with its real result — the accept (the descriptor and the
/// client), the reply's send (for hello with the check for unread input linked after
/// it), the request read into a provided buffer, the echo's half-close (a direct
/// `shutdown()`), the close — every ring line
/// marked added. The completions counted by the `io_uring_enter()` lines are exactly the
/// completion lines. (How the calls fall into submissions depends on timing, so there is
/// no golden file.)
#[test]
fn the_uring_model_traces_its_submissions_and_completions() {
    if hello_tests::MODELS.into_iter().all(|m| m != hello_tests::URING) {
        return; // skipped loudly by MODELS
    }
    let cases: [(&Scenario, &[&str]); 2] = [
        (
            &TCP_HELLO,
            &[
                "IORING_OP_ACCEPT(<fd1>) = <fd4>, peer 127.0.0.1:<client-port>",
                "IORING_OP_SEND(<fd4>, \"Hello World!\\0\", MSG_MORE, IOSQE_IO_LINK) = 13",
                "IORING_OP_RECV(<fd4>, MSG_DONTWAIT) = ",
                "IORING_OP_CLOSE(<fd4>) = 0",
            ],
        ),
        (
            &TCP_ECHO,
            &[
                "IORING_OP_ACCEPT(<fd1>) = <fd4>, peer 127.0.0.1:<client-port>",
                "IORING_OP_RECV(<fd4>, IOSQE_BUFFER_SELECT) = 6 \"hello\\0\"",
                "IORING_OP_SEND(<fd4>, \"5 : hello\\0\", MSG_MORE) = 10",
                "shutdown(<fd4>, SHUT_WR) = 0",
                "IORING_OP_RECV(<fd4>, IOSQE_BUFFER_SELECT) = 0",
                "IORING_OP_CLOSE(<fd4>) = 0",
            ],
        ),
    ];
    for (s, want) in cases {
        for lang in ["en", "ko"] {
            let server = one_client_traced(s, hello_tests::URING, lang, "IORING_OP_CLOSE(");
            let trace = server.stderr();
            assert_language(&trace, lang, &format!("uring {} {lang}", s.name));
            let masked = normalise(&trace, server.port);
            let calls: Vec<&str> = masked
                .lines()
                .filter_map(|l| l.strip_prefix("HH:MM:SS.ffffff server  "))
                .collect();
            // In order, each after the one before.
            let mut at = 0;
            for w in want {
                let found = calls[at..].iter().position(|c| c.starts_with(w));
                let Some(i) = found else {
                    panic!("{} {lang}: no {w:?} after line {at} in\n{masked}", s.name)
                };
                at += i + 1;
            }
            let ring: Vec<&str> = calls
                .iter()
                .copied()
                .filter(|c| c.starts_with("IORING_OP_") || c.starts_with("io_uring_"))
                .collect();
            let added = if lang == "en" { "# [added]" } else { "# [추가]" };
            for c in &ring {
                // (normalise writes the check's two answers as one, without its mark)
                let ok = c.contains(added) || c.ends_with("= <nothing unread>");
                assert!(ok, "{} {lang}: not marked added: {c}", s.name);
            }
            assert!(calls.iter().any(|c| c.starts_with("io_uring_setup(")), "{masked}");
            // Every completion reaped is shown, and only those.
            let completed: usize = calls
                .iter()
                .filter(|c| c.starts_with("io_uring_enter("))
                .filter_map(|c| c.split("completed ").nth(1))
                .filter_map(|n| n.split_whitespace().next())
                .map(|n| n.parse::<usize>().expect("a count"))
                .sum();
            let shown = calls.iter().filter(|c| c.starts_with("IORING_OP_")).count();
            assert_eq!(completed, shown, "{} {lang}:\n{masked}", s.name);
        }
    }
}

/// A line of how a model waits, not of what is done on the connection.
fn model_own(line: &str) -> bool {
    let own = [
        "  select(",
        "  fork(",
        "  waitpid(",
        "  _exit(",
        "copy of",
        "EINTR",
        "  epoll_",
        "  eventfd(",
        "  fcntl(",
        "  pthread_",
        "SO_RCVTIMEO, <limit>",
        "SO_SNDTIMEO, <limit>",
    ];
    let masked = mask_timeouts(line);
    own.iter().any(|o| masked.contains(o)) || (line.contains("accept(") && line.contains("= -1 EAGAIN"))
}

/// A trace of a server with several workers as one worker would have written it: the
/// other listening sockets' set-up and the `SO_REUSEPORT` lines left out, an `accept()`
/// on any of the listeners written as one on the first, and `server#2` as `server`.
/// (A trace of one worker comes back unchanged.)
fn as_one_worker(trace: &str) -> String {
    let listen_fd = |line: &str| {
        line.split_once("  listen(")
            .and_then(|(_, rest)| rest.split_once(','))
            .map(|(fd, _)| fd.to_string())
    };
    let listeners: Vec<String> = trace.lines().filter_map(listen_fd).collect();
    let Some((first, others)) = listeners.split_first() else {
        return trace.to_string();
    };
    let mut out = String::new();
    for line in trace.lines() {
        if line.contains("SO_REUSEPORT") {
            continue;
        }
        // The other listeners' socket(), setsockopt(), bind() and listen().
        let theirs = others.iter().any(|fd| {
            line.contains(&format!("({fd},"))
                || line.contains(&format!(") = {fd}  #"))
                || line.contains(&format!("({fd}, 0)"))
        });
        if theirs && !line.contains("  accept(") {
            continue;
        }
        let mut line = line.to_string();
        for fd in others {
            line = line.replace(&format!("  accept({fd})"), &format!("  accept({first})"));
        }
        for n in 1..=9 {
            line = line.replacen(&format!(" server#{n}  "), " server  ", 1);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[test]
fn as_one_worker_leaves_one_worker_alone_and_folds_two() {
    let one = "t server  socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3  # a\n\
               t server  listen(3, 4096) = 0  # b\n\
               t server  accept(3) = 5, peer 127.0.0.1:9  # c\n";
    assert_eq!(as_one_worker(one), one);
    let two = "t server  socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3  # a\n\
               t server  setsockopt(3, SOL_SOCKET, SO_REUSEPORT, 1) = 0  # r\n\
               t server  listen(3, 4096) = 0  # b\n\
               t server  socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 4  # a\n\
               t server  setsockopt(4, SOL_SOCKET, SO_REUSEPORT, 1) = 0  # r\n\
               t server  listen(4, 4096) = 0  # b\n\
               t server#2  setsockopt(4, SOL_SOCKET, SO_RCVTIMEO, 100ms) = 0  # s\n\
               t server#2  accept(4) = 5, peer 127.0.0.1:9  # c\n";
    assert_eq!(as_one_worker(two), one);
}

/// Environment variables set for a run.
type Env<'a> = &'a [(&'a str, &'a str)];

/// `LANG=ko_KR.UTF-8` (or `LC_ALL`) without `--lang` gives Korean; `--lang en` wins over
/// the locale; a locale that is not Korean gives English.
#[test]
fn locale_chooses_korean_and_lang_overrides_it() {
    if updating() {
        return;
    }
    let golden_of = |lang: &str, side: &str| {
        std::fs::read_to_string(golden_path(&format!("tcp_hello.{lang}.{side}.txt")))
            .expect("golden file (run the golden tests first)")
    };
    // (environment, --lang: None = no --trace, "" = --trace alone, language expected)
    let cases: [(Env, Option<&str>, &str); 4] = [
        (&[("LANG", "ko_KR.UTF-8")], Some(""), "ko"),
        (&[("LC_ALL", "ko_KR.UTF-8"), ("LANG", "C")], Some(""), "ko"),
        (&[("LANG", "ko_KR.UTF-8")], Some("en"), "en"),
        (&[("LANG", "en_US.UTF-8")], Some(""), "en"),
    ];
    for (env, lang, want) in cases {
        let x = run_scenario(&TCP_HELLO, lang, env);
        let what = format!("env {env:?}, --lang {lang:?}");
        assert_language(&x.server.stderr, want, &format!("{what}: server"));
        assert_language(&x.client_stderr(), want, &format!("{what}: client"));
        assert_eq!(
            normalise(&x.server.stderr, x.port),
            golden_of(want, "server"),
            "{what}: server"
        );
        assert_eq!(
            normalise(&x.client_stderr(), x.port),
            golden_of(want, "client"),
            "{what}: client"
        );
        assert_eq!(x.client_stdout(), TCP_HELLO.stdout.as_bytes(), "{what}: stdout");
    }
}

/// A port on 127.0.0.1 where nothing listens (bound by the kernel's choice, then freed).
fn closed_tcp_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

fn closed_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    s.local_addr().expect("local_addr").port()
}

/// A refused connection is traced with its errno and explained in both languages; the
/// failed socket is closed; stdout stays empty and the exit code is 1.
#[test]
fn refused_connection_is_traced_with_econnrefused_in_both_languages() {
    for (proto, port) in [("tcp", closed_tcp_port()), ("udp", closed_udp_port())] {
        let port_s = port.to_string();
        for lang in ["en", "ko"] {
            let mut args = vec!["--trace", "--lang", lang, "--timeout", "5s"];
            if proto == "udp" {
                args.extend(["--udp", "-m", "hello"]);
            }
            args.extend(["127.0.0.1", &port_s]);
            let out = run_client(&args, &[]);
            let what = format!("{proto} {lang}");
            assert_eq!(out.status.code(), Some(1), "{what}: exit code");
            assert!(out.stdout.is_empty(), "{what}: stdout {:?}", out.stdout);
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            let failed_call = if proto == "tcp" { "connect(" } else { "recvfrom(" };
            let failed: Vec<_> = trace_lines(&err)
                .into_iter()
                .filter(|t| t.call.contains(" = -1 "))
                .collect();
            assert_eq!(failed.len(), 1, "{what}: one failed call in {err}");
            assert!(
                failed[0].call.starts_with(failed_call) && failed[0].call.contains("ECONNREFUSED"),
                "{what}: {}",
                failed[0].call
            );
            assert_language(&err, lang, &what);
            // The one-line error (docs/contract.md#exit-codes-and-error-lines) follows the trace.
            assert!(
                err.lines()
                    .last()
                    .is_some_and(|l| l.starts_with("hello-client: ") && l.contains("Connection refused")),
                "{what}: {err}"
            );
            golden(
                &format!("{proto}_refused.{lang}.client.txt"),
                &normalise(&err, port),
            );
        }
    }
}

/// A failed `bind()` is traced with the address and its errno: 192.0.2.1 (TEST-NET-1,
/// RFC 5737) is no address of this machine, so even port 0 cannot be bound there.
#[test]
fn failed_bind_is_traced_with_eaddrnotavail_in_both_languages() {
    for lang in ["en", "ko"] {
        let mut cmd = hello_tests::server_cmd(&["--trace", "--lang", lang, "--bind", "192.0.2.1", "0"]);
        for v in LOCALE_VARS {
            cmd.env_remove(v);
        }
        let out = cmd.output().expect("run hello-server");
        assert_eq!(out.status.code(), Some(1), "{lang}: exit code");
        assert!(
            out.stdout.is_empty(),
            "{lang}: no start-up line after a failed bind"
        );
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let failed: Vec<_> = trace_lines(&err)
            .into_iter()
            .filter(|t| t.call.contains(" = -1 "))
            .collect();
        assert_eq!(failed.len(), 1, "{lang}: one failed call in {err}");
        assert!(
            failed[0].call.starts_with("bind(") && failed[0].call.contains("192.0.2.1:0) = -1 EADDRNOTAVAIL"),
            "{lang}: {}",
            failed[0].call
        );
        assert_language(&err, lang, lang);
        golden(
            &format!("bind_unavailable.{lang}.server.txt"),
            &normalise(&err, 0),
        );
    }
}

/// Over IPv6 the addresses read `[::1]:PORT`, and the masking still hides every port.
#[test]
fn ipv6_exchange_is_traced_with_bracketed_addresses() {
    let Some(server) = start_server(&["--trace", "--lang", "en", "--bind", "::1", "--once", "0"], &[]) else {
        hello_tests::skip("no IPv6 loopback on this machine");
        return;
    };
    let server_port = server.port;
    let port = server_port.to_string();
    let out = run_client(&["--trace", "--lang", "en", "::1", &port], &[]);
    let done = server.finish();
    assert!(out.status.success() && done.status.success());
    let client_err = String::from_utf8_lossy(&out.stderr).into_owned();
    let client_local = trace_lines(&client_err)
        .iter()
        .find_map(|t| t.call.strip_prefix("getsockname("))
        .and_then(|r| r.split(" = ").nth(1))
        .and_then(|a| a.parse::<SocketAddr>().ok())
        .expect("the client traces its local address");
    for (text, side) in [(&done.stderr, "server"), (&client_err, "client")] {
        let masked = normalise(text, server_port);
        for p in [server_port, client_local.port()] {
            assert!(
                !masked.contains(&p.to_string()),
                "{side}: port {p} left in\n{masked}"
            );
        }
        assert!(masked.contains("[::1]:<server-port>"), "{side}:\n{masked}");
    }
    assert!(normalise(&done.stderr, server_port).contains("peer [::1]:<client-port>"));
}

/// The masking itself, on lines made to be awkward.
#[test]
fn normalise_masks_time_fds_and_ports_but_not_data() {
    let text = "\
01:02:03.456789 +12µs server  socket(AF_INET6, SOCK_STREAM, IPPROTO_TCP) = 7  # [textbook] x
01:02:03.456789 +12µs server  bind(7, [::]:0) = 0  # [textbook] port 0 stays
01:02:03.456789 +12µs server  getsockname(7) = [::]:4242  # [added] y
01:02:03.456789 +12µs server  accept(7) = 12, peer [::ffff:127.0.0.1]:50000  # [textbook] z
01:02:03.456789 +12µs server  read(12) = 22 \"1.2.3.4:80 \\\" [::1]:9 \\0\"  # [textbook] data kept
01:02:03.456789 +12µs server  write(12, \"7 : 12\\0\") = 7  # [textbook] counts kept
01:02:03.456789 +12µs server  recvfrom(7) = 0 \"\", from 127.0.0.1:50001  # [textbook] second client port
01:02:03.456789 +12µs server  connect(12) = -1 ECONNREFUSED (Connection refused)  # [textbook] failed
hello-client: connect() error: 127.0.0.1:4242: Connection refused (os error 111)
";
    let want = "\
HH:MM:SS.ffffff server  socket(AF_INET6, SOCK_STREAM, IPPROTO_TCP) = <fd1>  # [textbook] x
HH:MM:SS.ffffff server  bind(<fd1>, [::]:0) = 0  # [textbook] port 0 stays
HH:MM:SS.ffffff server  getsockname(<fd1>) = [::]:<server-port>  # [added] y
HH:MM:SS.ffffff server  accept(<fd1>) = <fd2>, peer [::ffff:127.0.0.1]:<client-port>  # [textbook] z
HH:MM:SS.ffffff server  read(<fd2>) = 22 \"1.2.3.4:80 \\\" [::1]:9 \\0\"  # [textbook] data kept
HH:MM:SS.ffffff server  write(<fd2>, \"7 : 12\\0\") = 7  # [textbook] counts kept
HH:MM:SS.ffffff server  recvfrom(<fd1>) = 0 \"\", from 127.0.0.1:<client-port2>  # [textbook] second client port
HH:MM:SS.ffffff server  connect(<fd2>) = -1 ECONNREFUSED (Connection refused)  # [textbook] failed
hello-client: connect() error: 127.0.0.1:<server-port>: Connection refused (os error 111)
";
    assert_eq!(normalise(text, 4242), want);
}

/// `--trace textbook` shows only the textbook's calls, and the program's last trace line
/// counts the others by name; `--trace` still stands alone before the port.
#[test]
fn trace_textbook_shows_the_textbooks_calls_and_counts_the_rest() {
    let x = exchange(
        &[
            "--model",
            "iterative",
            "--service",
            "echo",
            "--lang",
            "en",
            "--trace",
            "textbook",
        ],
        &[
            "--trace",
            "textbook",
            "--lang",
            "en",
            "-m",
            "hello",
            "127.0.0.1",
            "PORT",
        ],
        &[],
    );
    assert_eq!(x.client_stdout(), b"Message from server: 5 : hello\n");
    for (text, who) in [(x.server.stderr.clone(), "server"), (x.client_stderr(), "client")] {
        let lines = trace_lines(&text);
        assert!(!lines.is_empty(), "{who}: no trace lines:\n{text}");
        for t in &lines {
            assert!(t.explanation.starts_with("[textbook] "), "{who}: {}", t.call);
        }
        let last = text.lines().last().unwrap_or_default();
        assert!(
            last.starts_with(&format!("{who}: ")) && last.contains("calls beyond the textbook not shown: "),
            "{who}: the last line should count what was left out: {last:?}"
        );
        assert!(last.contains("setsockopt ×"), "{who}: {last}");
    }
    let server: Vec<String> = trace_lines(&x.server.stderr)
        .iter()
        .map(|t| t.call.to_string())
        .collect();
    for call in ["socket(", "bind(", "listen(", "accept(", "read(", "close("] {
        assert!(
            server.iter().any(|c| c.starts_with(call)),
            "the server's {call}) is the textbook's: {server:?}"
        );
    }
    for call in ["send(", "shutdown(", "setsockopt("] {
        assert!(
            !server.iter().any(|c| c.starts_with(call)),
            "{call}) is not the textbook's: {server:?}"
        );
    }
    let last = x.server.stderr.lines().last().unwrap_or_default().to_string();
    assert!(last.contains("send ×1") && last.contains("shutdown ×1"), "{last}");

    // `--trace` alone before the port: the port is still the port.
    let s = start_server(&["--lang", "en", "--once", "--trace", "0"], &[]).expect("the server starts");
    let port = s.port.to_string();
    let out = run_client(&["127.0.0.1", &port], &[]);
    assert!(out.status.success());
    assert!(
        trace_lines(&s.finish().stderr)
            .iter()
            .any(|t| t.call.starts_with("accept("))
    );
}

/// The textbook's first UDP client makes no connect(): the kernel gives the socket its
/// port at the first sendto(), which the trace shows; without --udp the option is a
/// usage error.
#[test]
fn the_unconnected_udp_client_gets_its_port_at_sendto() {
    let x = exchange(
        &["--udp", "--service", "echo"],
        &[
            "--trace",
            "--lang",
            "en",
            "--udp",
            "--unconnected",
            "-m",
            "hi",
            "127.0.0.1",
            "PORT",
        ],
        &[],
    );
    assert_eq!(x.client_stdout(), b"Message from server: 2 : hi\n");
    let calls: Vec<String> = trace_lines(&x.client_stderr())
        .iter()
        .map(|t| t.call.to_string())
        .collect();
    assert!(!calls.iter().any(|c| c.starts_with("connect(")), "{calls:?}");
    let sendto = calls
        .iter()
        .position(|c| c.starts_with("sendto("))
        .expect("a sendto()");
    assert!(
        calls
            .get(sendto + 1)
            .is_some_and(|c| c.starts_with("getsockname(")),
        "the port the kernel gave at sendto() is shown right after it: {calls:?}"
    );
    let out = run_client(&["--unconnected", "127.0.0.1", "9"], &[]);
    assert_eq!(out.status.code(), Some(2), "--unconnected without --udp");
}

// ---------------------------------------------------------------------------------------
// The trace as JSON (--trace-format json)
// ---------------------------------------------------------------------------------------

/// Whether a field's value is of the kind the contract says.
type FieldCheck = fn(&serde_json::Value) -> bool;

/// The fields every record has, each with its check.
const RECORD_FIELDS: [(&str, FieldCheck); 18] = [
    ("t_us", |v| v.is_u64()),
    ("dur_us", |v| v.is_u64()),
    ("who", |v| v.is_string()),
    ("call", |v| v.is_string()),
    ("c", |v| v.is_string()),
    ("fd", |v| v.is_null() || v.is_i64()),
    ("ret", |v| v.is_null() || v.is_i64()),
    ("errno", |v| {
        v.is_null() || v.as_str().is_some_and(|e| e.starts_with('E'))
    }),
    ("bytes", |v| v.is_null() || v.is_u64()),
    ("local", |v| {
        v.is_null() || v.as_str().is_some_and(|a| a.parse::<SocketAddr>().is_ok())
    }),
    ("peer", |v| {
        v.is_null() || v.as_str().is_some_and(|a| a.parse::<SocketAddr>().is_ok())
    }),
    ("proto", |v| v.is_null() || v == "tcp" || v == "udp"),
    ("opt", |v| {
        v.is_null() || v.as_str().is_some_and(|o| o.contains('_'))
    }),
    ("readable", |v| v.is_null() || v.is_array()),
    ("writable", |v| v.is_null() || v.is_array()),
    ("mark", |v| v == "textbook" || v == "added"),
    ("text", |v| v.as_str().is_some_and(|t| !t.is_empty())),
    // The C line: only with --textbook (tests/tests/textbook.rs).
    ("src", |v| v.is_null()),
];

/// Every line of a JSON trace parsed on its own with serde_json, checked against the
/// contract's fields: a record per line, nothing else.
fn records(stderr: &str, what: &str) -> Vec<serde_json::Value> {
    assert!(
        stderr.ends_with('\n'),
        "{what}: the last line is not whole: {stderr:?}"
    );
    stderr
        .lines()
        .map(|line| {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {line:?}"));
            let fields = v
                .as_object()
                .unwrap_or_else(|| panic!("{what}: not an object: {line}"));
            assert_eq!(fields.len(), RECORD_FIELDS.len(), "{what}: fields of {line}");
            for (name, ok) in RECORD_FIELDS {
                assert!(ok(&v[name]), "{what}: field {name} of {line}");
            }
            // A failed call says why; a call that did not fail has no errno.
            assert_eq!(
                v["ret"] == -1,
                v["errno"].is_string() || v["c"].as_str().unwrap().contains("timed out"),
                "{what}: {line}"
            );
            v
        })
        .collect()
}

/// A record as the text trace shows the same call, made from its fields alone:
/// `03:41:07.123456 +52µs server  listen(3, 4096) = 0  # [textbook] explanation`.
fn as_text_line(r: &serde_json::Value, lang: &str) -> String {
    let t = r["t_us"].as_u64().unwrap();
    let s = t / 1_000_000 % 86_400;
    let mark = match (r["mark"].as_str().unwrap(), lang) {
        ("textbook", "ko") => "교재",
        ("added", "ko") => "추가",
        (m, _) => m,
    };
    format!(
        "{:02}:{:02}:{:02}.{:06} +{}µs {}  {}  # [{mark}] {}\n",
        s / 3600,
        s / 60 % 60,
        s % 60,
        t % 1_000_000,
        r["dur_us"],
        r["who"].as_str().unwrap(),
        r["c"].as_str().unwrap(),
        r["text"].as_str().unwrap()
    )
}

/// `--trace-format json` of the golden exchanges, from the real binaries: each line one
/// valid record with the contract's fields; the records, shown as text, are the golden
/// text trace (same calls, values, marks and explanations, in both languages); the
/// values are the calls' own (the server's accept() names the client's address as the
/// client's getsockname() does); stdout is byte for byte what it is without `--trace`.
#[test]
fn the_json_trace_is_the_text_trace_as_one_record_per_line() {
    for s in [&TCP_HELLO, &TCP_ECHO, &UDP_HELLO, &UDP_ECHO] {
        for lang in ["en", "ko"] {
            let json = ["--trace", "--trace-format", "json", "--lang", lang];
            let mut server = vec!["--model", "iterative"];
            server.extend(json);
            server.extend(s.server);
            let mut client = json.to_vec();
            client.extend(s.client);
            client.extend(["127.0.0.1", "PORT"]);
            let started = SystemTime::now();
            let x = exchange(&server, &client, &[]);
            let what = format!("{} {lang}", s.name);
            assert_eq!(
                String::from_utf8_lossy(x.client_stdout()),
                s.stdout,
                "{what}: client stdout"
            );
            assert_eq!(
                x.server.stdout,
                format!("listening on 0.0.0.0:{}\n", x.port),
                "{what}: server stdout"
            );
            let server_records = records(&x.server.stderr, &format!("{what} server"));
            let client_records = records(&x.client_stderr(), &format!("{what} client"));
            let since = started
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_micros() as u64;
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_micros() as u64;
            for r in server_records.iter().chain(&client_records) {
                let t = r["t_us"].as_u64().unwrap();
                assert!(
                    since <= t && t <= now,
                    "{what}: t_us {t} outside the exchange: {r}"
                );
            }
            for (records, side) in [(&server_records, "server"), (&client_records, "client")] {
                let text: String = records.iter().map(|r| as_text_line(r, lang)).collect();
                let want = std::fs::read_to_string(golden_path(&format!("{}.{lang}.{side}.txt", s.name)))
                    .expect("golden file (run the golden tests first)");
                assert_eq!(
                    normalise(&text, x.port),
                    want,
                    "{what} {side}: the records are not the text trace"
                );
            }
            let local = client_records
                .iter()
                .find(|r| r["call"] == "getsockname")
                .map(|r| r["local"].clone());
            let peer = server_records
                .iter()
                .find(|r| ["accept", "recvmmsg"].contains(&r["call"].as_str().unwrap_or_default()))
                .map(|r| r["peer"].clone());
            assert!(local.is_some() && local == peer, "{what}: {local:?} {peer:?}");
            let sent: u64 = client_records
                .iter()
                .filter(|r| ["write", "sendto"].contains(&r["call"].as_str().unwrap()))
                .map(|r| r["bytes"].as_u64().unwrap())
                .sum();
            let request = s
                .client
                .iter()
                .position(|a| *a == "-m")
                .map_or(0, |i| s.client[i + 1].len() + 1);
            assert_eq!(sent, request as u64, "{what}: bytes the client sent");
        }
    }
}

/// The server's `--trace-format json` lines of one TCP exchange with a peer of the
/// test's own that sends `bytes`: every line whole and valid JSON (with no raw control
/// byte), and the bytes shown in a record.
fn server_json_after(bytes: &[u8]) -> Vec<serde_json::Value> {
    let server = start_server(
        &[
            "--trace",
            "--trace-format",
            "json",
            "--service",
            "echo",
            "--once",
            "0",
        ],
        &[],
    )
    .expect("the server starts");
    let mut peer = hello_tests::connect(SocketAddr::from(([127, 0, 0, 1], server.port)));
    std::io::Write::write_all(&mut peer, bytes).unwrap();
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    let _ = peer.read_to_end(&mut reply);
    let done = server.finish();
    assert!(done.status.success(), "{}", done.stderr);
    for line in done.stderr.lines() {
        assert!(
            !line.chars().any(|c| c.is_control()),
            "a raw control character: {line:?}"
        );
    }
    records(&done.stderr, "server")
}

/// A hostile peer's bytes — a quote, a backslash, a newline, a right-to-left override,
/// NUL, an invalid UTF-8 byte — never break a JSON trace line, in either direction:
/// what the server reads, and what hello-client reads from a server of the test's own.
#[test]
fn hostile_bytes_stay_inside_valid_json_lines() {
    let hostile: &[u8] = b"\"\\\n\xe2\x80\xae\x00\xff}\r\n{\"t_us\":1}";
    let server = server_json_after(hostile);
    let read = server
        .iter()
        .find(|r| r["call"] == "read" && r["bytes"].as_u64().is_some_and(|n| n > 0))
        .expect("the server traced its read");
    assert_eq!(read["bytes"], hostile.len());
    let c = read["c"].as_str().unwrap();
    assert!(
        c.contains(r#""\"\\\n"#) && c.contains("\u{202e}") && c.contains(r#"\0\xff}\r\n{\"t_us\":1}"#),
        "the bytes as a C literal: {c}"
    );

    // The other way: hello-client reads a hostile reply.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let sender = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        std::io::Write::write_all(&mut s, hostile).unwrap();
    });
    let out = run_client(&["--trace", "--trace-format", "json", "127.0.0.1", &port], &[]);
    sender.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The client's own error line, if the reply displeases it, is its one line of text.
    let (json, other): (Vec<&str>, Vec<&str>) = stderr.lines().partition(|l| l.starts_with('{'));
    assert!(other.iter().all(|l| l.starts_with("hello-client: ")), "{other:?}");
    let text: String = json.iter().map(|l| format!("{l}\n")).collect();
    let client = records(&text, "client");
    assert!(
        client.iter().any(|r| r["call"] == "read"
            && r["bytes"] == hostile.len()
            && r["c"].as_str().unwrap().contains(r"\xff")),
        "the client traced the hostile read: {stderr}"
    );
}
