//! hello-client as a probe for scripts (docs/contract.md#hello-client-in-scripts):
//! `--wait` for a server that starts late or never, `--expect`, `--json` with the real
//! ephemeral port, `-q`, and several targets checked at once; `--wait` as a bound on the
//! whole probe (retrying closed connections and wrong replies), `--connect-only`,
//! `--expect-prefix`/`--expect-regex` and `-- CMD` against a real web server (nginx, or
//! Python's http.server), and the escaping of invisible characters.

// Test code: a panic with a message is how it reports, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use hello_tests::{Server, WAIT, assert_one_line, bins, client, fake_server, ipv6_loopback, skip};

/// A TCP socket bound to 127.0.0.1:0 that does not listen (yet): connecting to its port
/// is refused, and no other program can take the port meanwhile.
fn bound_not_listening() -> (socket2::Socket, u16) {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port();
    (s, port)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn wait_reaches_a_server_that_starts_late() {
    let (socket, port) = bound_not_listening();
    let t0 = Instant::now();
    let child = Command::new(&bins().client)
        .args(["--wait", "5s", "127.0.0.1", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hello-client");
    thread::sleep(Duration::from_millis(1500));
    // Until now every connect was refused. The server starts on this very socket
    // (socket activation), so the port never changes hands.
    socket.listen(16).unwrap();
    let listener: TcpListener = socket.into();
    let _srv = Server::activated(&listener, &["0"]);
    let out = hello_tests::run_bounded_child(child);
    let took = t0.elapsed();
    assert!(out.status.success(), "{:?}: {}", out.status, text(&out.stderr));
    assert_eq!(text(&out.stdout), "Message from server: Hello World!\n");
    assert_eq!(text(&out.stderr), "");
    assert!(took >= Duration::from_millis(1500), "reached after {took:?}");
    // The pauses are 50 ms doubling up to 1 s: the attempt after 1.5 s is at 1.55 s.
    assert!(took < Duration::from_millis(2600), "reached only after {took:?}");
}

#[test]
fn wait_for_a_server_that_never_starts_gives_up_at_the_deadline_counting_attempts() {
    let (_socket, port) = bound_not_listening();
    let t0 = Instant::now();
    let out = client(&["--wait", "5s", "127.0.0.1", &port.to_string()])
        .output()
        .expect("run hello-client");
    let took = t0.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        took >= Duration::from_secs(5) && took <= Duration::from_millis(5150),
        "gave up after {took:?}"
    );
    assert_one_line("the error", &stderr);
    // Attempts at 0, 0.05, 0.15, 0.35, 0.75, 1.55, 2.55, 3.55 and 4.55 s, and the last
    // at the deadline.
    assert_eq!(
        stderr,
        format!(
            "hello-client: connect() error: 127.0.0.1:{port}: Connection refused (os error 111); 10 attempts in 5.0s\n"
        )
    );
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn wait_over_udp_retries_an_exchange_that_got_no_reply() {
    // A UDP server that answers only from 600 ms on: the datagrams of the attempts before
    // wait in its socket, and their replies go to sockets the client has closed.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let server = thread::spawn(move || {
        thread::sleep(Duration::from_millis(600));
        socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        let mut answered = 0;
        let mut buf = [0u8; 64];
        // Bounded: it stops at the first half second without a datagram.
        while let Ok((_, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(b"Hello World!\0", from);
            answered += 1;
        }
        answered
    });
    let out = client(&[
        "--udp",
        "--wait",
        "5s",
        "--timeout",
        "200ms",
        "--json",
        "127.0.0.1",
        &addr.port().to_string(),
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reply"], "Hello World!");
    assert_eq!(v["protocol"], "udp");
    let attempts = v["attempts"].as_u64().unwrap();
    assert!(attempts >= 2, "{v}");
    assert!(v["waited_us"].as_u64().unwrap() >= 400_000, "{v}");
    assert!(server.join().unwrap() >= 1);
}

#[test]
fn without_wait_one_attempt_fails_at_once() {
    let (_socket, port) = bound_not_listening();
    let t0 = Instant::now();
    let out = client(&["127.0.0.1", &port.to_string()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    assert!(!text(&out.stderr).contains("attempt"), "{}", text(&out.stderr));
}

#[test]
fn an_ipv6_only_server_is_reached_through_localhost() {
    if !ipv6_loopback("an_ipv6_only_server_is_reached_through_localhost") {
        return;
    }
    let names: Vec<SocketAddr> = ("localhost", 9)
        .to_socket_addrs()
        .map(Iterator::collect)
        .unwrap_or_default();
    if !names.iter().any(|a| a.is_ipv6()) {
        skip(&format!(
            "an_ipv6_only_server_is_reached_through_localhost: localhost resolves to {names:?} \
             here, no IPv6 address (see /etc/hosts), so an IPv6-only server cannot be reached by it"
        ));
        return;
    }
    // Every address of the name is tried in each attempt, in the resolver's order (::1
    // usually first, by RFC 6724): an IPv6-only server and an IPv4-only one are both
    // reached, one of them only after the other address was refused.
    for (bind, reached) in [("::1", "[::1]"), ("127.0.0.1", "127.0.0.1")] {
        let srv = Server::start(&["--bind", bind, "0"]);
        let port = srv.port().to_string();
        client(&["--wait", "2s", "localhost", &port])
            .assert()
            .success()
            .stdout("Message from server: Hello World!\n");
        let out = client(&["--json", &format!("localhost:{port}")])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["address"], format!("{reached}:{port}"), "{v}");
        assert_eq!(v["attempts"], 1, "{v}");
    }
}

#[test]
fn expect_passes_on_the_printed_reply_and_a_mismatch_exits_1_with_one_line() {
    let srv = Server::start(&["--bind", "127.0.0.1", "0"]);
    let port = srv.port().to_string();
    client(&["--expect", "Hello World!", "127.0.0.1", &port])
        .assert()
        .success()
        .stdout("Message from server: Hello World!\n");
    let out = client(&["--expect", "Hello\nWorld", "127.0.0.1", &port])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        text(&out.stdout),
        "",
        "no reply line for a reply that did not pass"
    );
    assert_one_line("the mismatch", &stderr);
    assert_eq!(
        stderr,
        format!(
            "hello-client: --expect error: 127.0.0.1:{port}: expected \"Hello\\nWorld\", received \"Hello World!\"\n"
        )
    );
}

#[test]
fn json_carries_the_real_ephemeral_port_and_every_figure() {
    let (peer_tx, peer_rx) = mpsc::channel();
    let (addr, server) = fake_server(move |mut s| {
        peer_tx.send(s.peer_addr().unwrap()).unwrap();
        let mut buf = [0u8; 64];
        let mut got = Vec::new();
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"hi\0");
        s.write_all(b"2 : hi\0").unwrap();
    });
    let target = addr.to_string();
    let out = client(&["--json", "-m", "hi", &target]).output().unwrap();
    assert!(server.join().unwrap());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_one_line("--json", &stdout);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let peer: SocketAddr = peer_rx.recv_timeout(WAIT).unwrap();
    assert_eq!(v["local"], peer.to_string(), "the port the server saw");
    assert_ne!(peer.port(), addr.port());
    assert_eq!(v["target"], target);
    assert_eq!(v["address"], target);
    assert_eq!(v["protocol"], "tcp");
    assert_eq!(v["sent"], 3);
    assert_eq!(v["received"], 7);
    assert_eq!(v["reply"], "2 : hi");
    assert_eq!(v["ok"], true);
    assert_eq!(v["attempts"], 1);
    let us = |k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k}: {v}"));
    assert!(us("connect_us") <= us("first_byte_us") && us("first_byte_us") <= us("total_us"));
    assert!(v.get("step").is_none() && v.get("error").is_none(), "{v}");
}

#[test]
fn json_of_a_failure_still_prints_its_error_line() {
    let (_socket, port) = bound_not_listening();
    let out = client(&["--json", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["step"], "connect()");
    assert_eq!(v["error"], "Connection refused (os error 111)");
    assert!(v["local"].is_null());
    assert_eq!(
        text(&out.stderr),
        format!("hello-client: connect() error: 127.0.0.1:{port}: Connection refused (os error 111)\n")
    );
}

#[test]
fn three_targets_one_down_exits_1_naming_that_one() {
    let a = Server::start(&["--bind", "127.0.0.1", "0"]);
    let b = Server::start(&["--message", "Bonjour", "--bind", "127.0.0.1", "0"]);
    let (_socket, down) = bound_not_listening();
    let targets = [
        a.addr.to_string(),
        format!("127.0.0.1:{down}"),
        b.addr.to_string(),
    ];
    let args: Vec<&str> = targets.iter().map(String::as_str).collect();
    let out = client(&args).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "hello-client: 127.0.0.1:{down}: connect() error: 127.0.0.1:{down}: Connection refused (os error 111)\n"
        )
    );
    // The others passed, each named, in the order given.
    assert_eq!(
        text(&out.stdout),
        format!(
            "{}: Message from server: Hello World!\n{}: Message from server: Bonjour\n",
            targets[0], targets[2]
        )
    );
    let out = client(&["--json", &targets[0], &targets[1], &targets[2]])
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let oks: Vec<bool> = lines.iter().map(|v| v["ok"].as_bool().unwrap()).collect();
    assert_eq!(oks, [true, false, true]);
    let named: Vec<&str> = lines.iter().map(|v| v["target"].as_str().unwrap()).collect();
    assert_eq!(named, targets);
    // All up: exit 0.
    client(&[&targets[0], &targets[2]]).assert().success();
}

#[test]
fn several_targets_are_checked_at_once() {
    // Three servers that each answer only after 700 ms: one after the other would take
    // 2.1 s.
    let slow = || {
        fake_server(|mut s| {
            thread::sleep(Duration::from_millis(700));
            let _ = s.write_all(b"Hello World!\0");
        })
    };
    let servers = [slow(), slow(), slow()];
    let targets: Vec<String> = servers.iter().map(|(a, _)| a.to_string()).collect();
    let args: Vec<&str> = targets.iter().map(String::as_str).collect();
    let t0 = Instant::now();
    client(&args).assert().success();
    let took = t0.elapsed();
    for (_, t) in servers {
        assert!(t.join().unwrap());
    }
    assert!(took < Duration::from_millis(1600), "took {took:?}");
}

#[test]
fn quiet_prints_nothing_and_the_status_tells() {
    let srv = Server::start(&["--bind", "127.0.0.1", "0"]);
    let port = srv.port().to_string();
    client(&["-q", "127.0.0.1", &port])
        .assert()
        .success()
        .stdout("")
        .stderr("");
    client(&[
        "--quiet",
        &format!("127.0.0.1:{port}"),
        &format!("localhost:{port}"),
    ])
    .assert()
    .success()
    .stdout("");
    let out = client(&["-q", "--expect", "nope", "127.0.0.1", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert_one_line("the error", &text(&out.stderr));
}

#[test]
fn the_forms_are_told_apart_and_a_wrong_one_is_a_usage_error() {
    let srv = Server::start(&["--bind", "127.0.0.1", "0"]);
    let port = srv.port().to_string();
    // One target written HOST:PORT prints the textbook line, as HOST PORT does.
    client(&[&format!("127.0.0.1:{port}")])
        .assert()
        .success()
        .stdout("Message from server: Hello World!\n");
    for (args, names) in [
        (vec![format!("127.0.0.1:{port}"), "9".into()], "<HOST>"),
        (vec![format!("127.0.0.1:{port}"), "::1:9190".into()], "[::1]:9190"),
        (vec![format!("127.0.0.1:{port}"), "localhost".into()], "no port"),
    ] {
        let out = client(&args.iter().map(String::as_str).collect::<Vec<_>>())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            text(&out.stderr).contains(names),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let (_socket, down) = bound_not_listening();
    if ipv6_loopback("the_forms_are_told_apart") {
        // `::1 PORT` is HOST PORT: an IPv6 literal without brackets is never a target.
        let out = client(&["::1", &down.to_string()]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(text(&out.stderr).starts_with("hello-client: connect() error: [::1]:"));
    }
}

/// What a scripted peer does with each connection, in turn.
#[derive(Debug, Clone)]
enum Turn {
    /// Accept and close at once, nothing sent (a proxy whose backend is not up yet).
    Close,
    /// Send these bytes, then close.
    Send(&'static [u8]),
}

/// A peer that plays `turns` to the connections it accepts, one each, then stops
/// listening; how many it accepted.
fn scripted_peer(turns: Vec<Turn>) -> (SocketAddr, thread::JoinHandle<usize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    l.set_nonblocking(true).unwrap();
    let t = thread::spawn(move || {
        let until = Instant::now() + WAIT;
        let mut played = 0;
        // Bounded by the turns and by WAIT.
        while played < turns.len() && Instant::now() < until {
            match l.accept() {
                Ok((mut s, _)) => {
                    if let Turn::Send(bytes) = turns[played] {
                        s.set_nonblocking(false).unwrap();
                        let _ = s.write_all(bytes);
                    }
                    played += 1;
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
        played
    });
    (addr, t)
}

#[test]
fn wait_retries_a_peer_that_accepts_then_closes_and_a_reply_not_as_expected() {
    // docker-proxy, HAProxy or socket activation accept before the service is up: each
    // closed connection and each wrong greeting is a failed attempt, retried.
    let (addr, peer) = scripted_peer(vec![
        Turn::Close,
        Turn::Close,
        Turn::Send(b"starting\0"),
        Turn::Send(b"Hello World!\0"),
    ]);
    let t0 = Instant::now();
    let out = client(&[
        "--wait",
        "5s",
        "--expect",
        "Hello World!",
        "--json",
        &addr.to_string(),
    ])
    .output()
    .unwrap();
    let took = t0.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["attempts"], 4, "{v}");
    assert_eq!(v["reply"], "Hello World!");
    // Pauses of 50, 100 and 200 ms: the fourth attempt at 350 ms.
    let waited = v["waited_us"].as_u64().unwrap();
    assert!((350_000..1_000_000).contains(&waited), "{v}");
    assert!(v["elapsed_us"].as_u64().unwrap() >= waited, "{v}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    assert_eq!(peer.join().unwrap(), 4);

    // Without --wait, the first closed connection is the answer.
    let (addr, peer) = scripted_peer(vec![Turn::Close]);
    let out = client(&[&addr.to_string()]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("connection closed before any data"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(peer.join().unwrap(), 1);
}

#[test]
fn wait_bounds_the_whole_probe_whatever_the_timeout_says() {
    // A server that takes connections (into its backlog) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    for (wait, timeout, least, most) in [("2s", "10s", 2000, 2500), ("1s", "300ms", 1000, 1500)] {
        let t0 = Instant::now();
        let out = client(&["--wait", wait, "--timeout", timeout, "127.0.0.1", &port])
            .output()
            .unwrap();
        let took = t0.elapsed();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(
            took >= Duration::from_millis(least) && took < Duration::from_millis(most),
            "--wait {wait} --timeout {timeout} ran {took:?}: {stderr}"
        );
        assert_one_line("the give-up line", &stderr);
        // The measured time, rounded for people, and no raw float anywhere.
        let (head, note) = stderr.rsplit_once("; ").unwrap();
        assert!(
            head.contains("read() error") && head.contains("timed out after "),
            "{stderr}"
        );
        let spent = note
            .split(" in ")
            .nth(1)
            .and_then(|t| t.strip_suffix("s\n"))
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!(
            spent * 1000.0 >= least as f64 - 50.0 && spent * 1000.0 < most as f64,
            "{stderr}"
        );
        let after = head.rsplit("timed out after ").next().unwrap();
        assert!(
            after.len() <= 5 && !after.contains("0000"),
            "not rounded: {stderr}"
        );
    }
    drop(silent);
}

#[test]
fn wait_takes_hours_and_zero_is_one_attempt() {
    let srv = Server::start(&["--bind", "127.0.0.1", "0"]);
    let port = srv.port().to_string();
    client(&["--wait", "1h", "-q", "127.0.0.1", &port])
        .assert()
        .success();
    let (_socket, down) = bound_not_listening();
    let t0 = Instant::now();
    let out = client(&["--wait", "0", "127.0.0.1", &down.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(t0.elapsed() < Duration::from_millis(500), "{:?}", t0.elapsed());
    assert!(
        text(&out.stderr).contains("; 1 attempt in "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_command_after_the_double_dash_runs_once_ready_and_never_otherwise() {
    let srv = Server::start(&["--bind", "127.0.0.1", "0"]);
    let target = format!("127.0.0.1:{}", srv.port());
    let marker = std::env::temp_dir().join(format!("hello-probe-cmd-{}", std::process::id()));
    let _ = std::fs::remove_file(&marker);
    let script = format!("echo ran \"$@\" > '{}'; exit 7", marker.display());
    // Ready: the command runs in hello-client's place, with its arguments, and its exit
    // status is hello-client's; the probe's line comes first.
    let out = client(&[&target, "--", "sh", "-c", &script, "sh", "a b", "-z"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Message from server: Hello World!\n");
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran a b -z\n");
    std::fs::remove_file(&marker).unwrap();

    // Not ready: never run, exit 1.
    let (_socket, down) = bound_not_listening();
    let out = client(&[
        "--wait",
        "200ms",
        &format!("127.0.0.1:{down}"),
        &target,
        "--",
        "sh",
        "-c",
        &script,
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        !marker.exists(),
        "the command ran although a target was not ready"
    );

    // A command that cannot be run: 127, as a shell says.
    let out = client(&[&target, "--", "/nonexistent/command"]).output().unwrap();
    assert_eq!(out.status.code(), Some(127));
    assert_one_line("the exec error", &text(&out.stderr));
}

#[test]
fn connect_only_and_reply_checks_probe_a_web_server() {
    let Some(web) = hello_tests::web::Web::start("connect_only_and_reply_checks_probe_a_web_server") else {
        return;
    };
    let target = web.addr.to_string();
    let name = web.name;
    eprintln!("connect_only_and_reply_checks_probe_a_web_server: {name} at {target}");
    // A probe that waits for a greeting gets none (the issue: what --connect-only is for).
    let out = client(&["--timeout", "300ms", &target]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{name}");
    assert!(
        text(&out.stderr).contains("read() error"),
        "{name}: {}",
        text(&out.stderr)
    );

    // -z: ready once connected.
    client(&["-z", &target])
        .assert()
        .success()
        .stdout(format!("Connected to {target}\n"));
    client(&["--connect-only", "-q", "--wait", "2s", &target, &target])
        .assert()
        .success()
        .stdout("");
    let out = client(&["-z", "--json", &target]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["ok"].as_bool(), v["received"].as_u64(), v["sent"].as_u64()),
        (Some(true), Some(0), Some(0))
    );
    assert_eq!(
        (v["reply"].as_str(), v["reply_base64"].as_str()),
        (Some(""), Some(""))
    );
    assert!(v["connect_us"].as_u64().is_some(), "{v}");

    // A request, and its reply checked by prefix and by pattern, on the printed form.
    let get = hello_tests::web::GET;
    client(&["-m", get, "--expect-prefix", "HTTP/1.", "-q", &target])
        .assert()
        .success();
    client(&["-m", get, "--expect-regex", r"^HTTP/1\.[01] 200 ", "-q", &target])
        .assert()
        .success();
    let out = client(&["-m", get, "--expect-regex", r"^HTTP/\S+ 404", &target])
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
    assert_one_line("the mismatch", &stderr);
    assert!(
        stderr.starts_with(&format!("hello-client: --expect-regex error: {target}: expected a match for /^HTTP/\\S+ 404/, received \"HTTP/1.")),
        "{name}: {stderr}"
    );
    // --json: the bytes exactly, beside the printed form.
    let out = client(&["-m", get, "--json", &target]).output().unwrap();
    assert!(out.status.success(), "{name}: {}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let raw = base64_decode(v["reply_base64"].as_str().unwrap());
    assert_eq!(raw.len() as u64, v["received"].as_u64().unwrap());
    assert!(
        raw.starts_with(b"HTTP/1.") && raw.windows(4).any(|w| w == b"\r\n\r\n"),
        "{name}: {v}"
    );
    assert_eq!(v["reply"], hello_proto::wire::display_reply(&raw));

    // Usage errors: exit 2.
    for bad in [
        &["-z", "--udp", &target][..],
        &["-z", "-m", "x", &target],
        &["--expect-regex", "(", &target],
        &["--expect", "a", "--expect-prefix", "b", &target],
    ] {
        let out = client(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", text(&out.stderr));
    }
}

/// A reference base64 decoder for the tests (RFC 4648, padded).
fn base64_decode(s: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut out = Vec::new();
    for quad in s.as_bytes().chunks(4) {
        let pad = quad.iter().filter(|&&c| c == b'=').count();
        let n = quad[..4 - pad]
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | value(c) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..4 - pad]);
    }
    out
}

#[test]
fn invisible_and_direction_characters_are_escaped_in_the_line_and_in_json() {
    // Issue 21 #10: one of each range, in a reply that would otherwise read backwards
    // (U+202E) or break the line for a Unicode-aware reader (U+2028).
    let reply = "a\u{2028}b\u{2029}c\u{202a}d\u{202e}e\u{2066}f\u{2069}g\u{200b}h\u{200f}i\0";
    for json in [false, true] {
        let (addr, server) = fake_server(move |mut s| {
            let _ = s.write_all(reply.as_bytes());
        });
        let target = addr.to_string();
        let args: Vec<&str> = if json {
            vec!["--json", &target]
        } else {
            vec![&target]
        };
        let out = client(&args).output().unwrap();
        assert!(server.join().unwrap());
        assert!(out.status.success(), "{}", text(&out.stderr));
        let shown = r"a\u{2028}b\u{2029}c\u{202a}d\u{202e}e\u{2066}f\u{2069}g\u{200b}h\u{200f}i";
        let stdout = text(&out.stdout);
        if json {
            let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            assert_eq!(v["reply"], shown);
            assert_eq!(
                base64_decode(v["reply_base64"].as_str().unwrap()),
                reply.as_bytes()
            );
        } else {
            assert_eq!(stdout, format!("Message from server: {shown}\n"));
        }
        for c in [
            '\u{2028}', '\u{2029}', '\u{202a}', '\u{202e}', '\u{2066}', '\u{2069}', '\u{200b}', '\u{200f}',
        ] {
            assert!(!stdout.contains(c), "U+{:04X} printed as is", c as u32);
        }
    }
}

#[test]
fn expect_prefix_passes_a_service_that_greets_and_waits() {
    // SSH, SMTP or MySQL greet and then wait for the client: no end of stream comes. The
    // prefix is settled by the greeting; a whole-reply check can only time out.
    let greet_and_wait = || {
        fake_server(|mut s| {
            let _ = s.write_all(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n");
            // Holds the connection until the client is gone (bounded by the read timeout).
            let _ = s.read(&mut [0u8; 16]);
        })
    };
    let (addr, server) = greet_and_wait();
    let t0 = Instant::now();
    let out = client(&[
        "--expect-prefix",
        "SSH-2.0-",
        "--timeout",
        "5s",
        &addr.to_string(),
    ])
    .output()
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert_eq!(
        text(&out.stdout),
        "Message from server: SSH-2.0-OpenSSH_9.2p1 Debian-2\n"
    );
    assert!(server.join().unwrap());

    let (addr, server) = greet_and_wait();
    let out = client(&[
        "--expect",
        "SSH-2.0-OpenSSH_9.2p1 Debian-2",
        "--timeout",
        "500ms",
        &addr.to_string(),
    ])
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("timed out after 500ms"),
        "{}",
        text(&out.stderr)
    );
    assert!(server.join().unwrap());
}
