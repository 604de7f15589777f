//! hello-load, the load generator (docs/contract.md#hello-load): a run against the epoll
//! model with no error and a report whose counts add up, errors counted by class,
//! `--rate` keeping its rate, and a stalled server showing in an open loop's latency
//! (coordinated omission is not hidden).

// Test code: a panic with a message is how it reports, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use hello_tests::{Server, WAIT, connect, load};
use serde_json::Value;

/// Runs `hello-load ARGS --json`; returns the exit code and the report.
fn run(args: &[&str]) -> (i32, Value) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = load(&all).output().expect("run hello-load");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // No progress bar, nor anything else, on a pipe.
    assert_eq!(stderr, "", "hello-load {args:?}: stderr");
    assert_eq!(stdout.lines().count(), 1, "one JSON object: {stdout}");
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    check_counts(&v);
    (out.status.code().unwrap_or(-1), v)
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// The report's counts add up: exchanges = ok + failed, failed = the sum of the classes.
fn check_counts(v: &Value) {
    let e = &v["errors"];
    let classes: u64 = ["refused", "reset", "timeout", "mismatch", "other"]
        .iter()
        .map(|k| n(e, k))
        .sum();
    assert_eq!(n(v, "failed"), classes, "{v}");
    assert_eq!(n(v, "exchanges"), n(v, "ok") + n(v, "failed"), "{v}");
}

#[test]
fn a_short_run_against_the_epoll_model_has_no_error_and_counts_that_add_up() {
    let srv = Server::start(&["--model", "epoll", "--bind", "127.0.0.1", "0"]);
    let port = srv.port().to_string();
    let (code, v) = run(&["-n", "3000", "-c", "64", "--threads", "2", "127.0.0.1", &port]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (n(&v, "exchanges"), n(&v, "ok"), n(&v, "failed")),
        (3000, 3000, 0)
    );
    assert_eq!(v["loop"], "closed");
    assert_eq!((n(&v, "concurrency"), n(&v, "threads")), (64, 2));
    let lat = &v["latency_us"];
    assert!(
        n(lat, "p50") <= n(lat, "p99") && n(lat, "p99") <= n(lat, "max"),
        "{v}"
    );
    assert!(v["rate"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["cpu_us_per_exchange"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["start_lag_us"].is_null(), "a closed loop has no schedule: {v}");
    assert_eq!(srv.stderr(), "", "the server saw nothing wrong");

    // The echo service, with a message: the expected reply is the echo.
    let echo = Server::start(&["--service", "echo", "--bind", "127.0.0.1", "0"]);
    let (code, v) = run(&[
        "-n",
        "500",
        "-c",
        "8",
        "-m",
        "hello",
        &echo.addr.ip().to_string(),
        &echo.port().to_string(),
    ]);
    assert_eq!((code, n(&v, "ok")), (0, 500), "{v}");
}

#[test]
fn a_wrong_reply_is_counted_as_a_mismatch_and_exits_1() {
    let srv = Server::start(&["--bind", "127.0.0.1", "0"]);
    let port = srv.port().to_string();
    let (code, v) = run(&["-n", "200", "-c", "4", "--expect", "Bye", "127.0.0.1", &port]);
    assert_eq!(code, 1, "{v}");
    assert_eq!((n(&v, "ok"), n(&v["errors"], "mismatch")), (0, 200), "{v}");
    assert!(v["latency_us"].is_null(), "only ok exchanges have a latency: {v}");
    // The reply as hello-client prints it passes.
    let (code, v) = run(&[
        "-n",
        "200",
        "-c",
        "4",
        "--expect",
        "Hello World!",
        "127.0.0.1",
        &port,
    ]);
    assert_eq!((code, n(&v, "ok")), (0, 200), "{v}");
    // With -m the default expectation is the echo reply, which a hello server does not give.
    let (code, v) = run(&["-n", "50", "-m", "hi", "127.0.0.1", &port]);
    assert_eq!((code, n(&v["errors"], "mismatch")), (1, 50), "{v}");
}

#[test]
fn refused_and_timed_out_exchanges_are_counted_by_class() {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port().to_string();
    let (code, v) = run(&["-n", "20", "-c", "4", "127.0.0.1", &port]);
    assert_eq!((code, n(&v["errors"], "refused")), (1, 20), "{v}");

    // Connections complete in the backlog of a listener that never accepts: no reply.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    let (code, v) = run(&["-n", "3", "-c", "3", "--timeout", "300ms", "127.0.0.1", &port]);
    assert_eq!((code, n(&v["errors"], "timeout")), (1, 3), "{v}");
    assert!(v["seconds"].as_f64().unwrap() < 2.0, "{v}");
}

#[test]
fn wait_holds_the_run_until_the_server_answers() {
    // Bound, not yet listening: refused until the server starts on this very socket.
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    let port = s.local_addr().unwrap().as_socket().unwrap().port().to_string();
    let child = std::process::Command::new(&hello_tests::bins().load)
        .args([
            "--wait",
            "5s",
            "-n",
            "200",
            "-c",
            "8",
            "--json",
            "127.0.0.1",
            &port,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    s.listen(64).unwrap();
    let listener: TcpListener = s.into();
    let _srv = Server::activated(&listener, &["0"]);
    let out = hello_tests::run_bounded_child(child);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    check_counts(&v);
    assert_eq!(
        (n(&v, "ok"), n(&v, "failed")),
        (200, 0),
        "the waiting was not counted: {v}"
    );

    // Without a server, --wait gives up with the client's line, attempts counted (at 0,
    // 50 and 150 ms, and at the deadline), and no report.
    let down = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    down.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    let port = down.local_addr().unwrap().as_socket().unwrap().port();
    let out = load(&["--wait", "300ms", "-n", "5", "127.0.0.1", &port.to_string()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "hello-load: connect() error: 127.0.0.1:{port}: Connection refused (os error 111); 4 attempts in 300ms\n"
        )
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn udp_exchanges_are_datagrams() {
    let srv = Server::start(&["--udp", "--bind", "127.0.0.1", "0"]);
    let (code, v) = run(&[
        "--udp",
        "-n",
        "500",
        "-c",
        "8",
        "127.0.0.1",
        &srv.port().to_string(),
    ]);
    assert_eq!((code, n(&v, "ok")), (0, 500), "{v}");
    assert_eq!(v["protocol"], "udp");
}

/// Over UDP each exchange in flight keeps its connected socket: a peer of the test's own
/// sees `-c` source ports for hundreds of datagrams, and one more for the slot whose
/// first datagram it ignored (a timed-out exchange starts again on a new socket, so its
/// late reply cannot pass for the next one's).
#[test]
fn udp_slots_keep_their_socket_and_a_timeout_changes_it() {
    use std::collections::BTreeSet;
    use std::net::UdpSocket;
    use std::sync::{Arc, Mutex};
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let port = peer.local_addr().unwrap().port().to_string();
    let ports = Arc::new(Mutex::new(BTreeSet::new()));
    let seen = Arc::clone(&ports);
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = Arc::clone(&done);
    let answering = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let mut first = true;
        // Bounded: the run is bounded, and every receive gives up within 200 ms.
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((_, from)) = peer.recv_from(&mut buf) else {
                continue;
            };
            seen.lock().unwrap().insert(from.port());
            if std::mem::take(&mut first) {
                continue;
            }
            peer.send_to(b"Hello World!\0", from).unwrap();
        }
    });
    let (code, v) = run(&[
        "--udp",
        "-d",
        "800ms",
        "-c",
        "4",
        "--threads",
        "1",
        "--timeout",
        "200ms",
        "127.0.0.1",
        &port,
    ]);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    answering.join().unwrap();
    assert_eq!((code, n(&v, "failed")), (1, 1), "{v}");
    assert!(n(&v, "ok") > 100, "{v}");
    let ports = ports.lock().unwrap().len();
    assert_eq!(
        ports, 5,
        "4 slots' sockets and the one that replaced a timed-out one"
    );
}

#[test]
fn an_open_loop_keeps_roughly_the_rate_asked() {
    let srv = Server::start(&["--model", "epoll", "--bind", "127.0.0.1", "0"]);
    let (code, v) = run(&["-d", "2s", "--rate", "500", "127.0.0.1", &srv.port().to_string()]);
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["loop"], "open");
    // 2 s at 500 a second: 1000 starts on the schedule, give or take the last one.
    let made = n(&v, "exchanges");
    assert!((999..=1001).contains(&made), "{made} exchanges: {v}");
    let secs = v["seconds"].as_f64().unwrap();
    assert!((1.95..2.5).contains(&secs), "{secs} s: {v}");
    let rate = v["rate"].as_f64().unwrap();
    assert!((400.0..=520.0).contains(&rate), "rate {rate}: {v}");
    // The generator kept its schedule: starts were late by well under the interval.
    assert!(n(&v["start_lag_us"], "p50") < 1000, "{v}");
}

#[test]
fn a_stalled_server_shows_in_the_open_loop_latency() {
    // The iterative model serves one client at a time: a silent echo client holds it
    // for its idle timeout, 2 s, while every other client waits in the backlog.
    let srv = Server::start(&[
        "--model",
        "iterative",
        "--service",
        "echo",
        "--idle-timeout",
        "2s",
        "--trace",
        "--lang",
        "en",
        "--bind",
        "127.0.0.1",
        "0",
    ]);
    let port = srv.port().to_string();
    // The stall begins when the server has accepted the silent client (its trace says so).
    let stall = || {
        let silent = connect(srv.loopback());
        let me = silent.local_addr().unwrap();
        assert!(
            srv.wait_stderr(&format!("peer {me}"), WAIT),
            "the server never took the silent client: {}",
            srv.stderr()
        );
        silent
    };

    // Open loop: 100 exchanges due over 0.5 s all wait for the stall to end, and each
    // counts from its scheduled start: every one takes well over a second.
    let silent = stall();
    let (code, v) = run(&["-d", "500ms", "--rate", "200", "-m", "x", "127.0.0.1", &port]);
    assert_eq!((code, n(&v, "ok")), (0, 100), "{v}");
    let open = &v["latency_us"];
    assert!(n(open, "p50") >= 500_000, "the stall is hidden: {v}");
    assert!(n(open, "max") >= 1_000_000, "{v}");
    // The generator itself kept the schedule (within what a loaded test machine
    // allows, far less than the stall): the latency is the server's.
    assert!(n(&v["start_lag_us"], "p50") < 100_000, "{v}");
    drop(silent);

    // Open loop with room for one exchange in flight: the starts are late (the first
    // holds the only place until the stall ends), and the latency still counts from the
    // schedule, so the stall shows in the latency, and the lateness in the start lag.
    let silent = stall();
    let (code, v) = run(&[
        "-d",
        "500ms",
        "--rate",
        "200",
        "-c",
        "1",
        "-m",
        "x",
        "127.0.0.1",
        &port,
    ]);
    assert_eq!((code, n(&v, "ok")), (0, 100), "{v}");
    assert!(n(&v["latency_us"], "p50") >= 500_000, "the stall is hidden: {v}");
    assert!(n(&v["start_lag_us"], "p50") >= 500_000, "{v}");
    drop(silent);

    // Closed loop, one at a time, for comparison: the first exchange waits out the
    // stall and the others follow at once, so the median looks healthy and only the
    // maximum shows it. This is the omission an open loop avoids.
    let silent = stall();
    let (code, v) = run(&["-n", "100", "-c", "1", "-m", "x", "127.0.0.1", &port]);
    assert_eq!((code, n(&v, "ok")), (0, 100), "{v}");
    let closed = &v["latency_us"];
    assert!(n(closed, "p50") < 100_000, "{v}");
    assert!(n(closed, "max") >= 1_000_000, "{v}");
    drop(silent);
    assert!(srv.wait_stderr("timed out after 2s", Duration::from_secs(5)));
}

#[test]
fn the_text_report_and_usage_errors() {
    let srv = Server::start(&["--bind", "127.0.0.1", "0"]);
    let port = srv.port().to_string();
    let out = load(&["-n", "100", "-c", "2", "127.0.0.1", &port])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for line in [
        "exchanges    100: 100 ok, 0 failed",
        "latency µs   p50 ",
        "cpu          ",
    ] {
        assert!(text.contains(line), "{line:?} not in {text}");
    }
    for (args, names) in [
        (&["-n", "0", "127.0.0.1", "9"][..], "--count"),
        (&["--rate", "0", "127.0.0.1", "9"], "--rate"),
        (&["-n", "5", "-d", "1s", "127.0.0.1", "9"], "--duration"),
        (&["-c", "0", "127.0.0.1", "9"], "--concurrency"),
        (&["127.0.0.1"], "<PORT>"),
    ] {
        let out = load(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(names), "{args:?}: {stderr}");
    }
}
