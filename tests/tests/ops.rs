//! Operating the server (docs/contract.md#operating-the-server): the counters in every
//! model, `--metrics` checked by the real `promtool` and scraped by a real Prometheus, the
//! exporter's hardening, SIGUSR1's line, `--log-format json`, and the systemd units run
//! through `systemd-socket-activate`.

// Test code: a panic with a message is how it reports, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hello_harness::{Pipe, Program};
use hello_proto::startup::Line;
use hello_tests::{
    MODELS, Server, WAIT, bins, closed_tcp_port, load, run_bounded, skip, wait_until, which, workspace_root,
};

/// `hello-server ARGS --metrics 127.0.0.1:0` and the exporter's address from its second
/// start-up line.
fn start_with_metrics(args: &[&str]) -> (Server, SocketAddr) {
    let mut all = args.to_vec();
    all.extend(["--metrics", "127.0.0.1:0"]);
    let server = Server::start(&all);
    let metrics = server.next_start_up_addr(Line::Metrics);
    (server, metrics)
}

/// One HTTP/1.1 request's raw response (status line, headers, body).
fn http(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect_timeout(&addr, WAIT).expect("connect to the exporter");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The exposition's body from `GET /metrics`, checked to be a 200 of the right type.
fn scrape(addr: SocketAddr) -> String {
    let response = http(addr, b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    body.to_string()
}

/// The value of the sample whose name and labels are exactly `series`.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// `promtool check metrics` on `body`: `None` when promtool is missing (after a SKIP line),
/// else its exit status and everything it said.
fn promtool(body: &str, test: &str) -> Option<(bool, String)> {
    let Some(promtool) = which("promtool") else {
        skip(&format!(
            "{test}: promtool check metrics: no promtool (Debian: prometheus)"
        ));
        return None;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = hello_tests::run_bounded_child(child);
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Some((out.status.success(), said))
}

#[test]
fn every_model_counts_its_exchanges_serves_metrics_promtool_accepts_and_sigusr1_prints_them() {
    for model in MODELS {
        let (server, metrics) = start_with_metrics(&["--model", model, "--bind", "127.0.0.1", "0"]);
        let port = server.port().to_string();
        load(&["-n", "40", "-c", "4", "127.0.0.1", &port])
            .assert()
            .success();
        // A client that resets before reading: one exchange that is not ok.
        {
            let s = TcpStream::connect(server.addr).unwrap();
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            // The write may or may not land before the reset.
            let _ = (&s).write_all(b"x");
        }
        let mut body = String::new();
        let counted = wait_until(WAIT, || {
            body = scrape(metrics);
            let total: f64 = body
                .lines()
                .filter(|l| l.starts_with("hello_exchanges_total{"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            total >= 41.0
        });
        assert!(counted, "{model}: 41 exchanges never counted:\n{body}");
        assert_eq!(
            sample(&body, "hello_connections_accepted_total"),
            Some(41.0),
            "{model}\n{body}"
        );
        assert_eq!(
            sample(&body, "hello_exchange_duration_seconds_count{service=\"hello\"}"),
            Some(41.0),
            "{model}\n{body}"
        );
        let ok = sample(&body, "hello_exchanges_total{service=\"hello\",outcome=\"ok\"}").unwrap();
        assert!(ok >= 40.0, "{model}: the load's 40 are ok\n{body}");
        assert_eq!(sample(&body, "hello_connections_open"), Some(0.0), "{model}");
        assert_eq!(
            sample(&body, "hello_server_state{state=\"up\"}"),
            Some(1.0),
            "{model}"
        );
        if let Some((clean, said)) = promtool(&body, model) {
            assert!(
                clean && said.trim().is_empty(),
                "{model}: promtool check metrics: {said}\n{body}"
            );
        }
        // SIGUSR1: the same counters on one line, and serving goes on.
        server.signal(libc::SIGUSR1);
        assert!(
            server.wait_stderr(
                "hello-server: counters: state=up accepted=41 open=0 exchanges=41",
                WAIT
            ),
            "{model}: no counters line: {}",
            server.stderr()
        );
        load(&["-n", "1", "127.0.0.1", &port]).assert().success();
        let line = server
            .stderr()
            .lines()
            .find(|l| l.contains("counters:"))
            .map(String::from)
            .unwrap();
        assert!(
            line.contains(&format!("model={}", model.split(' ').next().unwrap())),
            "{line}"
        );
    }
}

/// A flood of SIGUSR1 (300 ms of `kill()` in a loop) prints at most one counters line a
/// tenth of a second, not one a signal; the signals in between are one line at the tenth's
/// end, so the last one asked for still comes, with the counters after it. The signal
/// thread (epoll) and the fork model's loop alike.
#[test]
fn a_flood_of_sigusr1_prints_at_most_one_counters_line_a_tenth_of_a_second() {
    std::thread::scope(|s| {
        for model in ["epoll", "fork"] {
            s.spawn(move || {
                let server = Server::start(&["--model", model, "0"]);
                let start = Instant::now();
                let mut sent = 0u32;
                while start.elapsed() < Duration::from_millis(300) {
                    server.signal(libc::SIGUSR1);
                    sent += 1;
                }
                // One exchange, then one more signal: its line, counting the exchange, comes.
                hello_tests::tcp_exchange(server.loopback(), b"", false);
                server.signal(libc::SIGUSR1);
                assert!(
                    server.wait_stderr("counters: state=up accepted=1 ", WAIT),
                    "{model}: the last SIGUSR1's line never came: {}",
                    server.stderr()
                );
                let tenths = start.elapsed().as_millis() / 100;
                let lines = server
                    .stderr()
                    .lines()
                    .filter(|l| l.contains("counters:"))
                    .count();
                assert!(
                    lines as u128 <= tenths + 2,
                    "{model}: {lines} counters lines for {sent} signals in {tenths} tenths of a second"
                );
            });
        }
    });
}

#[test]
fn a_bad_metrics_address_or_log_format_is_a_usage_error_and_a_taken_metrics_port_exit_1() {
    for bad in [
        &["--metrics", "9191", "0"][..],
        &["--metrics", "localhost:9191", "0"],
        &["--log-format", "yaml", "0"],
    ] {
        let out = hello_tests::server_cmd(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("error: invalid value"),
            "{bad:?}"
        );
    }
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let at = taken.local_addr().unwrap().to_string();
    let out = hello_tests::server_cmd(&["--bind", "127.0.0.1", "--metrics", &at, "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "no start-up line");
    let err = String::from_utf8_lossy(&out.stderr);
    hello_tests::assert_one_line("a taken metrics port", &err);
    assert!(err.contains(&format!("bind() error: {at}")), "{err}");
}

#[test]
fn the_udp_server_counts_datagrams() {
    let (server, metrics) = start_with_metrics(&["--udp", "--bind", "127.0.0.1", "0"]);
    for _ in 0..3 {
        assert_eq!(hello_tests::udp_exchange(server.addr, b""), b"Hello World!\0");
    }
    let mut body = String::new();
    assert!(wait_until(WAIT, || {
        body = scrape(metrics);
        sample(&body, "hello_datagrams_total{service=\"hello\",outcome=\"ok\"}") == Some(3.0)
    }));
    if let Some((clean, said)) = promtool(&body, "udp") {
        assert!(clean && said.trim().is_empty(), "promtool: {said}");
    }
}

#[test]
fn the_exporter_answers_garbage_huge_and_silent_clients_within_bounds_and_the_main_port_is_unaffected() {
    for model in ["epoll", "fork"] {
        let (server, metrics) = start_with_metrics(&["--model", model, "--bind", "127.0.0.1", "0"]);
        assert!(
            http(metrics, b"\x16\x03\x01 garbage\r\n\r\n").starts_with("HTTP/1.1 400 "),
            "{model}"
        );
        assert!(
            http(metrics, b"GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404 "),
            "{model}"
        );
        assert!(http(metrics, b"DELETE /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405 "));
        let head = http(metrics, b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert!(
            head.starts_with("HTTP/1.1 200 ") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        // A megabyte of header: refused after the first 8 KiB, never read whole.
        let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        huge.resize(1 << 20, b'a');
        let mut s = TcpStream::connect(metrics).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_write_timeout(Some(WAIT)).unwrap();
        let _ = s.write_all(&huge);
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 431 "),
            "{model}: {answer}"
        );
        // Silent clients hold the exporter at most its request time each; meanwhile the
        // main port serves at once.
        let silent: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(metrics).unwrap()).collect();
        let t0 = Instant::now();
        load(&["-n", "20", "-c", "4", "127.0.0.1", &server.port().to_string()])
            .assert()
            .success();
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "{model}: the main port waited"
        );
        let body = scrape(metrics);
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "{model}: scrape took {:?}",
            t0.elapsed()
        );
        assert!(body.contains("hello_connections_accepted_total"), "{model}");
        drop(silent);
    }
}

#[test]
fn a_fork_child_killed_by_a_signal_is_counted_and_leaves_nothing_open() {
    // A child that a signal ends (kill -9, the OOM killer, a crash) never counts its own
    // exchange: the parent, which reaps it, must, or hello_connections_open stays 1 for
    // as long as the server runs.
    let (server, metrics) =
        start_with_metrics(&["--model", "fork", "--service", "echo", "--bind", "127.0.0.1", "0"]);
    let _silent = TcpStream::connect(server.addr).unwrap();
    let mut child = None;
    assert!(
        wait_until(WAIT, || {
            child = hello_tests::child_processes(server.pid()).into_iter().next();
            child.is_some()
        }),
        "no child serves the client"
    );
    let child = child.unwrap();
    hello_proto::sys::process::kill_child(i32::try_from(child).unwrap());
    let mut body = String::new();
    assert!(
        wait_until(WAIT, || {
            body = scrape(metrics);
            sample(&body, "hello_connections_open") == Some(0.0)
        }),
        "the killed child's connection is still counted open:\n{body}"
    );
    assert_eq!(
        sample(&body, "hello_exchanges_total{service=\"echo\",outcome=\"error\"}"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "hello_exchange_duration_seconds_count{service=\"echo\"}"),
        Some(1.0),
        "{body}"
    );
}

#[test]
fn a_crowd_of_silent_clients_does_not_keep_a_scrape_out() {
    // Twenty connections that never send a request, held open: a scrape made after them
    // is answered at once, not after each has used up its second (they were read one at
    // a time, so twenty of them kept Prometheus, whose scrape timeout is 10 s, out for
    // 20 s). The threaded models; the fork model answers four at once in children.
    for model in ["epoll", "threads"] {
        let (_server, metrics) = start_with_metrics(&["--model", model, "--bind", "127.0.0.1", "0"]);
        let silent: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(metrics).unwrap()).collect();
        let t0 = Instant::now();
        let body = scrape(metrics);
        let took = t0.elapsed();
        assert!(body.contains("hello_connections_accepted_total"), "{model}");
        assert!(
            took < Duration::from_millis(900),
            "{model}: the scrape waited {took:?} behind 20 silent clients"
        );
        // The silent ones are closed at the request time, with a 408.
        for mut s in silent {
            s.set_read_timeout(Some(WAIT)).unwrap();
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
            let answer = String::from_utf8_lossy(&answer);
            assert!(answer.starts_with("HTTP/1.1 408 "), "{model}: {answer:?}");
        }
    }
}

#[test]
fn json_log_lines_are_json_whatever_the_peer_sent_in_every_model() {
    for model in ["epoll", "fork", "threads"] {
        let server = Server::start(&[
            "--model",
            model,
            "--bind",
            "127.0.0.1",
            "--proxy-protocol",
            "--proxy-from",
            "127.0.0.1",
            "--log-format",
            "json",
            "0",
        ]);
        // A PROXY header of quotes, backslashes, control bytes and invalid UTF-8.
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let _ = s.write_all(b"PROXY TCP4 \"\\\x01\x1b[31m\xff\xfe\t}{ 1 2\r\n");
        let _ = s.read_to_end(&mut Vec::new());
        assert!(server.wait_stderr("\n", WAIT), "{model}: no line");
        let text = server.stderr();
        for line in text.lines() {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{model}: not JSON ({e}): {line:?}"));
            assert_eq!(v["level"], "error", "{line}");
            assert!(v["ts"].as_str().unwrap().ends_with('Z'), "{line}");
            assert!(v["peer"].as_str().unwrap().starts_with("127.0.0.1:"), "{line}");
            assert!(!v["error"].as_str().unwrap().is_empty(), "{line}");
            assert!(v["step"].is_string() && v["msg"].is_string(), "{line}");
        }
    }
}

/// With `--log-format json` every line the server writes on stderr is one JSON record
/// with `ts`, `level`, `msg` and `line` (the text form without the program's name): a
/// client's failure (in the fork model, relayed from the child), the `--proxy-protocol`
/// warning, SIGUSR1's counters, the drain delay's two lines, and the error that ends it.
#[test]
fn every_stderr_line_is_a_json_record_with_log_format_json() {
    let records = |model: &str, text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("{model}: not JSON ({e}): {line:?}"));
                for key in ["ts", "level", "msg", "line"] {
                    assert!(v[key].is_string(), "{model}: no {key}: {line}");
                }
                assert!(!v["line"].as_str().unwrap().starts_with("hello-server"), "{line}");
                v
            })
            .collect()
    };
    std::thread::scope(|s| {
        for (model, more) in [("epoll", &["--drain-delay", "50ms"][..]), ("fork", &[])] {
            s.spawn(move || {
                let mut args = vec![
                    "--model",
                    model,
                    "--bind",
                    "127.0.0.1",
                    "--proxy-protocol",
                    "--log-format",
                    "json",
                ];
                args.extend(more);
                args.push("0");
                let mut server = Server::start(&args);
                // A client whose PROXY header is garbage: a client error line.
                let mut c = TcpStream::connect(server.addr).unwrap();
                c.set_read_timeout(Some(WAIT)).unwrap();
                let _ = c.write_all(b"PROXY garbage\r\n");
                let _ = c.read_to_end(&mut Vec::new());
                server.signal(libc::SIGUSR1);
                assert!(
                    server.wait_stderr("counters", WAIT),
                    "{model}: {}",
                    server.stderr()
                );
                server.signal(libc::SIGTERM);
                assert!(
                    server.wait(WAIT).is_some_and(|s| s.success()),
                    "{model}: no clean stop"
                );
                let records = records(model, &server.stderr());
                let msg = |m: &str| records.iter().find(|r| r["msg"] == m);
                let warning = msg("--proxy-protocol without --proxy-from").expect("the warning's record");
                assert_eq!(warning["level"], "warn");
                assert!(
                    warning["line"]
                        .as_str()
                        .unwrap()
                        .starts_with("warning: --proxy-protocol")
                );
                assert!(msg("client exchange failed").is_some(), "{model}: {records:?}");
                let counters = msg("counters").expect("the counters' record");
                assert_eq!(counters["counters"]["accepted"], 1, "{counters}");
                assert_eq!(counters["counters"]["state"], "up", "{counters}");
                assert!(
                    counters["line"]
                        .as_str()
                        .unwrap()
                        .starts_with("counters: state=up accepted=1 ")
                );
                if model == "epoll" {
                    let draining = msg("draining").expect("the drain delay's record");
                    assert_eq!(draining["delay_seconds"], 0.05, "{draining}");
                    assert_eq!(
                        msg("drained").expect("the drain's end")["line"],
                        "drained; stopping"
                    );
                }
            });
        }
    });
    // The error that ends the server (here before it serves: the port is taken).
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = hello_tests::server_cmd(&["--log-format", "json", "--bind", "127.0.0.1", &port])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let records = records("bind", &String::from_utf8_lossy(&out.stderr));
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["level"], "error");
    assert_eq!(records[0]["step"], "bind()");
    assert_eq!(records[0]["target"], format!("127.0.0.1:{port}"));
    assert_eq!(
        records[0]["line"],
        format!("bind() error: 127.0.0.1:{port}: Address already in use (os error 98)")
    );
}

/// A temporary folder, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("hello-ops-{what}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Prometheus on 127.0.0.1 scraping `target` every second, storing in `dir`: its address
/// once `/-/ready` says so. Prometheus cannot listen on port 0, so a free port is picked
/// and another tried when it was taken meanwhile (at most 5).
fn start_prometheus(prometheus: &Path, target: SocketAddr, dir: &Path) -> (Program, SocketAddr) {
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: hello\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    for _ in 0..5 {
        let addr = SocketAddr::from(([127, 0, 0, 1], closed_tcp_port()));
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let mut cmd = Command::new(prometheus);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let mut prometheus = Program::spawn(cmd).unwrap();
        let ready = wait_until(Duration::from_secs(30), || {
            prometheus.exited()
                || TcpStream::connect(addr)
                    .is_ok_and(|_| http(addr, b"GET /-/ready HTTP/1.0\r\n\r\n").contains(" 200 "))
        });
        match (prometheus.exited(), ready) {
            (false, true) => return (prometheus, addr),
            (true, _) => {
                let said = std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();
                assert!(
                    said.contains("address already in use"),
                    "prometheus ended: {said}"
                );
            }
            _ => panic!("prometheus not ready within 30 s"),
        }
    }
    panic!("prometheus found no free port in 5 tries");
}

/// A PromQL query's one value, if the result has one.
fn query(prometheus: SocketAddr, promql: &str) -> Option<f64> {
    let response = http(
        prometheus,
        format!("GET /api/v1/query?query={promql} HTTP/1.0\r\n\r\n").as_bytes(),
    );
    let body = response.split_once("\r\n\r\n")?.1;
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_records_the_counters_of_a_thousand_exchanges() {
    let Some(prometheus) = which("prometheus") else {
        skip("prometheus_records_the_counters_of_a_thousand_exchanges: no prometheus (Debian: prometheus)");
        return;
    };
    let (server, metrics) = start_with_metrics(&["--bind", "127.0.0.1", "0"]);
    let dir = TempDir::new("prometheus");
    let (_prometheus, api) = start_prometheus(&prometheus, metrics, &dir.0);
    load(&["-n", "1000", "-c", "8", "127.0.0.1", &server.port().to_string()])
        .assert()
        .success();
    let mut seen = (None, None);
    let recorded = wait_until(Duration::from_secs(30), || {
        seen = (
            query(api, "hello_connections_accepted_total"),
            query(api, "hello_exchange_duration_seconds_count"),
        );
        matches!(seen, (Some(a), Some(c)) if a >= 1000.0 && c == a)
    });
    assert!(
        recorded,
        "Prometheus recorded (accepted, histogram count) = {seen:?}"
    );
    let up = query(api, "up");
    assert_eq!(up, Some(1.0), "the scrape target is up");
}

/// The value of `key=` in the unit file's text (its last occurrence).
fn unit_value<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .rev()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
}

#[test]
fn the_units_start_the_server_through_systemd_socket_activate() {
    let Some(activate) = which("systemd-socket-activate") else {
        skip(
            "the_units_start_the_server_through_systemd_socket_activate: no systemd-socket-activate (Debian: systemd)",
        );
        return;
    };
    let units = workspace_root().join("dist/systemd");
    let service = std::fs::read_to_string(units.join("hello-server.service")).unwrap();
    let socket = std::fs::read_to_string(units.join("hello-server.socket")).unwrap();
    assert_eq!(unit_value(&socket, "ListenStream"), "9190");
    assert_eq!(unit_value(&socket, "Accept"), "no");
    assert_eq!(unit_value(&service, "DynamicUser"), "yes");
    // The unit's command, with the binary built here and the metrics on a port of the
    // kernel's choosing (never a fixed port in a test).
    let exec = unit_value(&service, "ExecStart");
    let mut argv: Vec<String> = exec.split_whitespace().map(String::from).collect();
    assert_eq!(argv[0], "/usr/bin/hello-server");
    argv[0] = bins().server.display().to_string();
    for a in &mut argv {
        if a.ends_with(":9191") {
            *a = a.replace(":9191", ":0");
        }
    }
    if let Some(analyze) = which("systemd-analyze") {
        // The units as systemd reads them, with the command pointing at this binary.
        let dir = TempDir::new("units");
        std::fs::write(dir.0.join("hello-server.socket"), &socket).unwrap();
        std::fs::write(
            dir.0.join("hello-server.service"),
            service.replace("/usr/bin/hello-server", &argv[0]),
        )
        .unwrap();
        let (status, out, err) = run_bounded(
            Command::new(analyze)
                .args(["verify", "--man=no"])
                .arg(dir.0.join("hello-server.socket"))
                .arg(dir.0.join("hello-server.service")),
        );
        let said = String::from_utf8_lossy(&out).into_owned() + &String::from_utf8_lossy(&err);
        assert!(status.success(), "systemd-analyze verify: {said}");
    }
    for _ in 0..5 {
        let addr = SocketAddr::from(([127, 0, 0, 1], closed_tcp_port()));
        let mut args = vec!["-l".to_string(), addr.to_string()];
        args.extend(argv.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = Command::new(&activate);
        cmd.args(&args);
        let program = Program::start(cmd).unwrap();
        // systemd-socket-activate binds, then waits for the first connection before it
        // starts the command (as the .socket unit does).
        let (served, program) = first_exchange(program, addr);
        match served {
            Some(reply) => {
                assert_eq!(reply, b"Hello World!\0");
                program.wait_for(Pipe::Stdout, "metrics on ", WAIT);
                let out = program.stdout();
                assert!(
                    out.starts_with(&format!("{}\n", Line::Listening(addr))),
                    "{out:?}"
                );
                assert!(out.contains("metrics on 127.0.0.1:"), "{out:?}");
                // SIGTERM, systemd's stop.
                let done = program.stop(WAIT).expect("the server stops on SIGTERM");
                assert!(done.status.success(), "{}", done.status);
                return;
            }
            None => continue,
        }
    }
    panic!("systemd-socket-activate never served on a free port in 5 tries");
}

/// The greeting from the first connection to `addr`, or `None` when
/// systemd-socket-activate could not listen there (the port was taken meanwhile).
fn first_exchange(mut program: Program, addr: SocketAddr) -> (Option<Vec<u8>>, Program) {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if program.exited() {
            return (None, program);
        }
        if let Ok(mut s) = TcpStream::connect(addr) {
            s.set_read_timeout(Some(WAIT)).unwrap();
            let mut reply = Vec::new();
            s.read_to_end(&mut reply).unwrap();
            return (Some(reply), program);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("systemd-socket-activate did not listen on {addr}");
}

#[test]
fn haproxys_exporter_counts_the_sessions_it_sent_to_the_instances() {
    let Some(cluster) = hello_tests::cluster::Cluster::start("epoll") else {
        return;
    };
    load(&[
        "-n",
        "30",
        "-c",
        "3",
        "127.0.0.1",
        &cluster.frontend.port().to_string(),
    ])
    .assert()
    .success();
    // HTTP/1.0: HAProxy then answers without chunks and closes.
    let response = http(cluster.metrics, b"GET /metrics HTTP/1.0\r\n\r\n");
    let (head, body) = response.split_once("\r\n\r\n").expect("a head and a body");
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{head}"
    );
    let sessions = sample(body, "haproxy_frontend_sessions_total{proxy=\"hello\"}");
    assert!(sessions.is_some_and(|n| n >= 30.0), "{sessions:?}\n{body}");
    let up = body
        .lines()
        .filter(|l| {
            l.starts_with("haproxy_server_status{proxy=\"instances\"")
                && l.contains("state=\"UP\"")
                && l.ends_with(" 1")
        })
        .count();
    assert_eq!(up, 3, "three instances UP:\n{body}");
}
