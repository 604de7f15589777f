//! hello-load, the load generator (docs/contract.md#hello-load): a run against the epoll
//! model with no error and a report whose counts add up, errors counted by class,
//! `--rate` keeping its rate, and a stalled server showing in an open loop's latency
//! (coordinated omission is not hidden); `-d` ending an open loop on time; any TCP
//! service loaded with `--connect-only` and `--expect-any` (nginx, or Python's
//! http.server), and the first mismatch shown.

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
    let classes: u64 = ["refused", "reset", "timeout", "mismatch", "not_started", "other"]
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
    // The time is measured: 300 ms and a few.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let head = format!(
        "hello-load: connect() error: 127.0.0.1:{port}: Connection refused (os error 111); 4 attempts in "
    );
    let ms: u64 = stderr
        .strip_prefix(&head)
        .and_then(|t| t.strip_suffix("ms\n"))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!((300..380).contains(&ms), "{stderr}");
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
fn an_open_loop_with_a_duration_stops_starting_at_its_end() {
    // A server that never answers: its listener takes connections into its backlog and
    // never accepts, and the backlog once full takes no more (their SYNs go unanswered).
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port().to_string();
    // 1,000 starts due over 1 s, 100 places, each held for the 1 s timeout: the starts
    // due once the places are taken may not be made late past the end of -d (issue 21
    // #11: they were, and the run took ten times -d).
    let t0 = std::time::Instant::now();
    let (code, v) = run(&[
        "-d",
        "1s",
        "--rate",
        "1000",
        "-c",
        "100",
        "--timeout",
        "1s",
        "127.0.0.1",
        &port,
    ]);
    let took = t0.elapsed();
    assert_eq!(code, 1, "{v}");
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(2600),
        "ran {took:?}, past -d + --timeout: {v}"
    );
    let secs = v["seconds"].as_f64().unwrap();
    assert!(secs < 2.3, "{secs} s: {v}");
    // Every start due before the end is accounted for: made (and timed out), or not
    // started for want of a place.
    let (made, missed) = (
        n(&v, "exchanges") - n(&v["errors"], "not_started"),
        n(&v["errors"], "not_started"),
    );
    assert_eq!(made + missed, 1000, "{v}");
    assert!((100..=200).contains(&made), "{made} made: {v}");
    assert_eq!(n(&v, "ok"), 0, "{v}");
    drop(silent);
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

    // Open loop with room for one exchange in flight: the first holds the only place
    // until the stall ends, after the end of -d, so the others due meanwhile are never
    // started, and are counted as such (failures: the schedule was not kept); the one
    // made counts from its scheduled start, so the stall shows in its latency.
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
    assert_eq!(code, 1, "{v}");
    let (ok, missed) = (n(&v, "ok"), n(&v["errors"], "not_started"));
    assert_eq!(ok + missed, 100, "{v}");
    assert!(missed >= 90, "{v}");
    assert!(n(&v["latency_us"], "p50") >= 500_000, "the stall is hidden: {v}");
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
        (&["127.0.0.1:9", "127.0.0.1:10"], "127.0.0.1:10"),
        (&["-z", "-m", "x", "127.0.0.1:9"], "--message"),
        (&["--expect-any", "--expect", "x", "127.0.0.1:9"], "--expect"),
    ] {
        let out = load(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(names), "{args:?}: {stderr}");
    }
}

#[test]
fn any_tcp_service_is_loaded_with_connect_only_or_expect_any() {
    let Some(web) = hello_tests::web::Web::start("any_tcp_service_is_loaded_with_connect_only_or_expect_any")
    else {
        return;
    };
    let target = web.addr.to_string();
    let get = hello_tests::web::GET;
    // Connections per second: nothing sent or read. HOST:PORT as hello-client writes it.
    let (code, v) = run(&["-z", "-n", "200", "-c", "4", &target]);
    assert_eq!((code, n(&v, "ok")), (0, 200), "{}: {v}", web.name);
    assert_eq!(v["connect_only"], true);
    assert!(
        v["cpu_us_per_exchange"].as_f64().is_some_and(|us| us > 0.0),
        "{v}"
    );
    // Any reply that ends in end of stream: a request and its reply.
    let (code, v) = run(&["--expect-any", "-m", get, "-n", "50", "-c", "2", &target]);
    assert_eq!((code, n(&v, "ok")), (0, 50), "{}: {v}", web.name);
    // Without --expect-any the reply is not a hello: every one a mismatch, the first shown.
    let (code, v) = run(&["-m", get, "-n", "5", &target]);
    assert_eq!((code, n(&v["errors"], "mismatch")), (1, 5), "{v}");
    let first = v["first_mismatch"].as_str().unwrap_or_else(|| panic!("{v}"));
    assert!(first.starts_with("\"HTTP/1."), "{first}");
    assert!(first.contains(r"\r\n"), "the printed form: {first}");
}

#[test]
fn the_first_mismatch_is_shown_and_connect_only_counts_connections() {
    let srv = Server::start(&["--bind", "127.0.0.1", "0"]);
    let target = srv.addr.to_string();
    let (code, v) = run(&["--expect", "Bye", "-n", "3", &target]);
    assert_eq!((code, n(&v["errors"], "mismatch")), (1, 3), "{v}");
    assert_eq!(v["first_mismatch"], "\"Hello World!\"");
    let out = load(&["--expect", "Bye", "-n", "3", &target]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("mismatch     first reply not as expected: \"Hello World!\""),
        "{text}"
    );
    // A reply known to be wrong before its end (longer than the one expected) is shown
    // as the start of a longer one.
    let long = Server::start(&[
        "--message",
        "Hello World! and a longer greeting",
        "--bind",
        "127.0.0.1",
        "0",
    ]);
    let (code, v) = run(&["-n", "1", &long.addr.to_string()]);
    assert_eq!(code, 1, "{v}");
    assert_eq!(
        v["first_mismatch"], "\"Hello World! and a longer greeting…\" (more than 35 bytes)",
        "{v}"
    );
    let (code, v) = run(&["-n", "4", &target]);
    assert_eq!((code, v["first_mismatch"].clone()), (0, Value::Null), "{v}");
    // Connect-only against a closed port: refused, counted.
    let (code, v) = run(&[
        "-z",
        "-n",
        "3",
        &format!("127.0.0.1:{}", hello_tests::closed_tcp_port()),
    ]);
    assert_eq!((code, n(&v["errors"], "refused")), (1, 3), "{v}");
    let (code, v) = run(&["--connect-only", "-n", "300", "-c", "8", &target]);
    assert_eq!((code, n(&v, "ok")), (0, 300), "{v}");
}
