//! The server's life: the start-up line, `--once`, SIGTERM/SIGINT
//! (docs/contract.md#signals-and-stopping), long runs without descriptor leaks, clients
//! that reset, and IPv6 / dual-stack binding.

// Test code: a panic with a message is how it reports, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{ErrorKind, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hello_tests::{
    CONCURRENT_MODELS, MODELS, Server, WAIT, client, connect, fd_count, holds_connection, ipv6_loopback,
    read_to_end, tcp_exchange, try_read_to_end, udp_exchange, wait_until,
};

/// Exchanges in flight get 2 s after a stop (docs/contract.md#signals-and-stopping); the rest
/// is slack for a loaded machine.
const STOP_BOUND: Duration = Duration::from_millis(3500);

fn server(model: &str, service: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--model", model, "--service", service, "--bind", "127.0.0.1"];
    args.extend_from_slice(extra);
    args.push("0");
    Server::start(&args)
}

fn expect_exit_0(server: &mut Server, within: Duration, what: &str) {
    let t0 = Instant::now();
    let status = server
        .wait(within)
        .unwrap_or_else(|| panic!("{what}: still running after {within:?}"));
    assert!(
        status.success(),
        "{what}: {status} after {:?}; stderr: {}",
        t0.elapsed(),
        server.stderr()
    );
    assert!(
        !server.stderr().contains("panicked"),
        "{what}: {}",
        server.stderr()
    );
}

/// A request to `service` and its reply (the hello service is sent nothing: see the
/// ignored test in hello_tcp.rs).
fn exchange_for(service: &str) -> (&'static [u8], &'static [u8]) {
    if service == "hello" {
        (b"", b"Hello World!\0")
    } else {
        (b"hello\0", b"5 : hello\0")
    }
}

/// Connects a client that sends `partial` and then nothing, and waits (bounded) until
/// the server has accepted it. (The iterative model serves one client at a time, so
/// another exchange cannot prove that.)
fn stuck_client(srv: &Server, partial: &[u8]) -> TcpStream {
    let mut s = connect(srv.loopback());
    s.write_all(partial).expect("write");
    let me = s.local_addr().expect("local_addr");
    assert!(
        wait_until(WAIT, || holds_connection(srv.pid(), srv.port(), me)),
        "the server never accepted the client"
    );
    s
}

/// Waits until a new connection to `addr` is refused: the server stopped accepting.
fn refused_soon(addr: SocketAddr) -> bool {
    wait_until(WAIT, || {
        matches!(
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)),
            Err(e) if e.kind() == ErrorKind::ConnectionRefused
        )
    })
}

#[test]
fn startup_line_is_the_only_stdout_line() {
    for model in MODELS {
        let mut srv = Server::start(&[
            "--model",
            model,
            "--service",
            "echo",
            "--idle-timeout",
            "200ms",
            "0",
        ]);
        // Read before any client connected: the line is flushed at once, even to a pipe.
        assert_eq!(srv.line, format!("listening on 0.0.0.0:{}", srv.port()));
        assert_ne!(srv.port(), 0);
        // Successes and failures alike log nothing on stdout.
        assert_eq!(tcp_exchange(srv.loopback(), b"hello\0", false), b"5 : hello\0");
        let idle = connect(srv.loopback());
        assert!(srv.wait_stderr("timed out", WAIT), "model {model}");
        drop(idle);
        srv.signal(libc::SIGTERM);
        expect_exit_0(&mut srv, STOP_BOUND, model);
        assert_eq!(srv.stdout_to_end(WAIT), Vec::<String>::new(), "model {model}");
    }
}

#[test]
fn once_serves_exactly_one_tcp_client_then_exits_0_in_every_model() {
    for model in MODELS {
        for (service, request, reply) in [
            ("hello", &b""[..], &b"Hello World!\0"[..]),
            ("echo", b"hello\0", b"5 : hello\0"),
        ] {
            let mut srv = server(model, service, &["--once"]);
            let addr = srv.loopback();
            assert_eq!(tcp_exchange(addr, request, false), reply, "{model} {service}");
            expect_exit_0(&mut srv, WAIT, model);
            assert_eq!(srv.stdout_to_end(WAIT), Vec::<String>::new());
            // Nobody listens any more.
            let e = TcpStream::connect_timeout(&addr, WAIT).expect_err("still accepting after --once");
            assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{model} {service}");
        }
    }
}

#[test]
fn once_whose_exchange_fails_exits_1_with_its_one_line() {
    for model in MODELS {
        let mut srv = server(model, "echo", &["--once", "--idle-timeout", "200ms"]);
        let _silent = connect(srv.loopback());
        let status = srv
            .wait(WAIT)
            .expect("--once ends after its client's idle timeout");
        assert_eq!(status.code(), Some(1), "{model}: {}", srv.stderr());
        let err = srv.stderr();
        assert_eq!(err.lines().count(), 1, "{model}: {err}");
        assert!(
            err.contains("read() error") && err.contains("timed out after 200ms"),
            "{model}: {err}"
        );
    }
}

#[test]
fn a_signal_stops_once_from_accepting_at_once() {
    for model in MODELS {
        let mut srv = server(model, "hello", &["--once"]);
        let t0 = Instant::now();
        srv.signal(libc::SIGTERM);
        expect_exit_0(&mut srv, WAIT, model);
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "{model}: {:?}",
            t0.elapsed()
        );
    }
}

#[test]
fn once_with_hello_client_exits_0_after_it() {
    let mut srv = Server::start(&["--once", "--bind", "127.0.0.1", "0"]);
    client(&["127.0.0.1", &srv.port().to_string()])
        .assert()
        .success()
        .stdout("Message from server: Hello World!\n");
    expect_exit_0(&mut srv, WAIT, "--once");
}

#[test]
fn sigterm_and_sigint_exit_0_in_every_model() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        for model in MODELS {
            for service in ["hello", "echo"] {
                let what = format!("model {model}, service {service}, signal {signal}");
                let mut srv = server(model, service, &[]);
                let (request, reply) = exchange_for(service);
                assert_eq!(tcp_exchange(srv.loopback(), request, false), reply, "{what}");
                srv.signal(signal);
                expect_exit_0(&mut srv, STOP_BOUND, &what);
            }
        }
        // UDP, bound to one address and to every address (0.0.0.0, the default).
        for bind in ["127.0.0.1", "0.0.0.0"] {
            for service in ["hello", "echo"] {
                let mut srv = Server::start(&["--udp", "--service", service, "--bind", bind, "0"]);
                // An exchange with hello-client first: a stop after one used to panic the
                // hello server (recvfrom() woken by shutdown() returned no sender address).
                let reply = if service == "hello" {
                    "Hello World!"
                } else {
                    "1 : x"
                };
                client(&["--udp", "-m", "x", "127.0.0.1", &srv.port().to_string()])
                    .assert()
                    .success()
                    .stdout(format!("Message from server: {reply}\n"));
                srv.signal(signal);
                expect_exit_0(
                    &mut srv,
                    STOP_BOUND,
                    &format!("udp {bind} {service}, signal {signal}"),
                );
            }
        }
    }
}

/// A 12 MiB echo exchange with `signal` sent once the reply has begun to arrive, to the
/// server and its child processes (as a terminal's hang-up reaches its process group:
/// a fork model child is then in the middle of the reply): the whole reply must come,
/// and end with the server's FIN (a reply cut short would end in a reset, never a FIN:
/// docs/contract.md#how-a-connection-ends).
fn big_echo_with_a_signal(srv: &Server, signal: i32, what: &str) {
    let msg = vec![b's'; 12 << 20];
    let request = [msg.clone(), vec![0]].concat();
    let expect = [format!("{} : ", msg.len()).into_bytes(), msg, vec![0]].concat();
    let mut s = connect(srv.loopback());
    s.write_all(&request).expect("the server reads the whole request");
    let mut got = vec![0u8; 64 * 1024];
    std::io::Read::read_exact(&mut s, &mut got).unwrap_or_else(|e| panic!("{what}: the reply's start: {e}"));
    srv.signal_with_children(signal);
    let rest = try_read_to_end(&mut s);
    let rest = rest.unwrap_or_else(|e| panic!("{what}: after the signal: {e}; {}", srv.stderr()));
    got.extend_from_slice(&rest);
    assert!(
        got == expect,
        "{what}: {} of {} bytes; {}",
        got.len(),
        expect.len(),
        srv.stderr()
    );
}

#[test]
fn sighup_stops_like_sigterm_and_the_reply_in_flight_is_finished_in_every_model() {
    // A closed terminal, or logrotate's `kill -HUP`: the stop's guarantees, never an end
    // that cuts a reply with a clean FIN.
    for model in MODELS {
        let mut srv = server(model, "echo", &["--max-request", "16777216"]);
        big_echo_with_a_signal(&srv, libc::SIGHUP, &format!("{model}, SIGHUP"));
        expect_exit_0(&mut srv, STOP_BOUND, &format!("{model}, SIGHUP"));
        assert!(
            refused_soon(srv.loopback()),
            "{model}: still listening after SIGHUP"
        );
    }
}

#[test]
fn sigusr1_sigusr2_sigalrm_and_sigpipe_do_not_end_the_server_in_every_model() {
    // Signals users and tools send now and then: each is caught or ignored, in the
    // fork model's children too (one lands in the middle of a reply), and the server
    // goes on serving. SIGUSR1 prints the counters, once, and nothing else is said.
    for model in MODELS {
        let mut srv = server(model, "echo", &["--max-request", "16777216"]);
        for signal in [libc::SIGUSR1, libc::SIGUSR2, libc::SIGALRM, libc::SIGPIPE] {
            let what = format!("{model}, signal {signal}");
            big_echo_with_a_signal(&srv, signal, &what);
            assert_eq!(
                tcp_exchange(srv.loopback(), b"hello\0", false),
                b"5 : hello\0",
                "{what}"
            );
            assert!(
                srv.wait(Duration::from_millis(50)).is_none(),
                "{what}: the server ended: {}",
                srv.stderr()
            );
        }
        srv.signal(libc::SIGTERM);
        expect_exit_0(&mut srv, STOP_BOUND, model);
        let said = srv.stderr();
        let lines: Vec<&str> = said.lines().collect();
        assert_eq!(lines.len(), 1, "{model}: {said}");
        assert!(
            lines[0].starts_with("hello-server: counters: state=up accepted="),
            "{model}: {said}"
        );
    }
}

#[test]
fn a_connect_after_the_stop_is_refused_while_the_grace_runs_in_every_model() {
    // A client in flight keeps the server in its grace for 2 s; a client that connects
    // once the stop has begun must be refused at once (a balancer then retries it
    // elsewhere), not queued and reset unserved when the grace ends. (The iterative
    // model is serving its one client with the thread that would close the listening
    // socket: it cannot refuse sooner.) The models at once: each waits out its grace.
    CONCURRENT_MODELS.each_at_once(|model| {
        let mut srv = server(model, "echo", &[]);
        let _in_flight = stuck_client(&srv, b"half a mess");
        let t0 = Instant::now();
        srv.signal(libc::SIGTERM);
        let addr = srv.loopback();
        let refused = wait_until(Duration::from_millis(1000), || {
            matches!(
                TcpStream::connect_timeout(&addr, Duration::from_millis(200)),
                Err(e) if e.kind() == ErrorKind::ConnectionRefused
            )
        });
        assert!(
            refused,
            "{model}: a new client was not refused within {:?} of the stop",
            t0.elapsed()
        );
        expect_exit_0(&mut srv, STOP_BOUND, model);
    });
}

#[test]
fn a_signal_right_after_the_startup_line_is_a_clean_exit() {
    // The handlers are installed before the line is printed: a script that reads the
    // line and signals at once must not kill the server by the default action.
    for model in MODELS {
        let mut srv = server(model, "hello", &[]);
        srv.signal(libc::SIGTERM);
        expect_exit_0(&mut srv, STOP_BOUND, model);
    }
}

#[test]
fn a_signal_lets_the_exchange_in_flight_finish() {
    for model in MODELS {
        let mut srv = server(model, "echo", &[]);
        // The exchange has started (the server accepted it) before the stop.
        let mut s = stuck_client(&srv, b"hel");
        srv.signal(libc::SIGTERM);
        // The client in flight still gets its reply...
        s.write_all(b"lo\0").expect("write the second half");
        assert_eq!(read_to_end(&mut s), b"5 : hello\0", "model {model}");
        drop(s);
        expect_exit_0(&mut srv, STOP_BOUND, model);
        // ...and then nobody listens.
        assert!(refused_soon(srv.loopback()), "model {model}: still listening");
    }
}

#[test]
fn clients_queued_at_a_stop_are_all_served_in_every_model() {
    // A server that cannot accept for a while (stopped with SIGSTOP) while 8 clients
    // connect: the kernel completes their handshakes and queues them. A stop must serve
    // every one, not close the listening socket on them (which resets them all).
    for model in MODELS {
        let mut srv = server(model, "echo", &[]);
        srv.signal(libc::SIGSTOP);
        let mut queued: Vec<(usize, TcpStream)> = (0..8)
            .map(|i| {
                let mut s = connect(srv.loopback());
                s.write_all(format!("queued {i}\0").as_bytes()).expect("write");
                // As hello-client -m and nc -N do: the server's discard after the reply
                // then ends at once.
                s.shutdown(std::net::Shutdown::Write).expect("half-close");
                (i, s)
            })
            .collect();
        srv.signal(libc::SIGTERM);
        srv.signal(libc::SIGCONT);
        for (i, s) in &mut queued {
            let want = format!("8 : queued {i}\0");
            let got = try_read_to_end(s).map(|r| String::from_utf8_lossy(&r).into_owned());
            assert!(
                got.as_ref().is_ok_and(|r| *r == want),
                "model {model}: queued client {i}: {got:?}"
            );
        }
        expect_exit_0(&mut srv, STOP_BOUND, model);
    }
}

#[test]
fn a_signal_with_a_stuck_client_exits_0_within_the_grace_and_resets_the_client() {
    // The models at once: each waits out its grace.
    MODELS.each_at_once(|model| {
        // Default idle timeout (10s): only the 2 s grace period can end this.
        let mut srv = server(model, "echo", &[]);
        let mut s = stuck_client(&srv, b"half a mess");
        let t0 = Instant::now();
        srv.signal(libc::SIGTERM);
        expect_exit_0(&mut srv, STOP_BOUND, model);
        let took = t0.elapsed();
        assert!(took < STOP_BOUND, "model {model}: {took:?}");
        assert!(
            took >= Duration::from_millis(1900),
            "model {model}: the grace was cut short: {took:?}"
        );
        // An unfinished exchange ends in RST: a clean end of stream would pass for a reply.
        let got = try_read_to_end(&mut s);
        assert!(
            matches!(&got, Err(e) if e.kind() == ErrorKind::ConnectionReset),
            "model {model}: {got:?}"
        );
        // The server has exited; its last line may still be on its way through the pipe.
        assert!(
            srv.wait_stderr("unfinished when the server stopped", WAIT),
            "model {model}: {}",
            srv.stderr()
        );
        assert_eq!(srv.stderr().lines().count(), 1, "model {model}: {}", srv.stderr());
    });
}

#[test]
fn a_reply_the_client_does_not_read_is_reset_when_the_server_gives_up() {
    // 12 MiB of reply cannot sit in the socket buffers (loopback's grow to about 10 MiB
    // between the two ends), so the server's send waits on the client, which does not
    // read: the idle timeout gives up on it.
    let request = [vec![b'y'; 12 << 20], vec![0]].concat();
    for model in MODELS {
        let srv = server(
            model,
            "echo",
            &["--max-request", "16777216", "--idle-timeout", "300ms"],
        );
        let mut s = connect(srv.loopback());
        s.write_all(&request).expect("the server reads the whole request");
        assert!(
            srv.wait_stderr("write() error", WAIT),
            "model {model}: the server never gave up: {}",
            srv.stderr()
        );
        assert!(
            srv.stderr().contains("timed out after 300ms"),
            "model {model}: {}",
            srv.stderr()
        );
        // What reached the client before the server gave up is followed by a reset, never
        // by the end of stream a whole reply ends with.
        let got = try_read_to_end(&mut s);
        assert!(
            matches!(&got, Err(e) if e.kind() == ErrorKind::ConnectionReset),
            "model {model}: {:?}",
            got.map(|v| v.len())
        );
    }
}

#[test]
fn a_long_reply_read_steadily_outlasts_a_short_idle_timeout() {
    // Every byte sent restarts the idle timeout, so a reply that takes several times the
    // timeout to send is not cut off while the client keeps reading. The client's small
    // receive buffer and paced reads (2 ms per 16 KiB read) make the reply take at least
    // 1.5 s, twice the timeout; the timeout leaves room for a loaded machine to pause the
    // client now and then.
    let msg = vec![b'z'; 12 << 20];
    let request = [msg.clone(), vec![0]].concat();
    let expect = [format!("{} : ", msg.len()).into_bytes(), msg, vec![0]].concat();
    for model in MODELS {
        let srv = server(
            model,
            "echo",
            &["--max-request", "16777216", "--idle-timeout", "700ms"],
        );
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
        sock.set_recv_buffer_size(16 * 1024).expect("SO_RCVBUF");
        sock.connect_timeout(&srv.loopback().into(), WAIT)
            .expect("connect");
        let mut s = TcpStream::from(sock);
        s.set_read_timeout(Some(WAIT)).expect("SO_RCVTIMEO");
        s.write_all(&request).expect("write the request");
        let mut got = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        let t0 = Instant::now();
        loop {
            assert!(t0.elapsed() < WAIT, "model {model}: too slow");
            std::thread::sleep(Duration::from_millis(2));
            match std::io::Read::read(&mut s, &mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => panic!("model {model}: after {} bytes: {e}; {}", got.len(), srv.stderr()),
            }
        }
        assert!(
            got == expect,
            "model {model}: {} of {} bytes",
            got.len(),
            expect.len()
        );
        assert!(
            t0.elapsed() > Duration::from_millis(1400),
            "model {model}: too fast to show anything"
        );
        assert_eq!(srv.stderr(), "", "model {model}");
    }
}

/// Serves `n` clients one after another and checks the server's descriptors come back
/// to where they were.
fn no_fd_leak(model: &str, service: &str, n: usize) {
    let srv = server(model, service, &[]);
    let addr = srv.loopback();
    let (request, reply) = exchange_for(service);
    // One exchange first: whatever the server sets up lazily (an epoll instance) exists
    // before the count.
    assert_eq!(tcp_exchange(addr, request, false), reply);
    let pid = srv.pid();
    // Workers set up their event loops on threads of their own, possibly after the
    // start-up line: the baseline is taken once the count holds still for 200 ms.
    // (If the warm-up connection is still closing, the baseline is one higher: a leak
    // of one descriptor per client still shows as hundreds.)
    let mut before = fd_count(pid);
    let mut still_since = Instant::now();
    let settle_until = Instant::now() + WAIT;
    while still_since.elapsed() < Duration::from_millis(200) && Instant::now() < settle_until {
        std::thread::sleep(Duration::from_millis(20));
        let now = fd_count(pid);
        if now != before {
            before = now;
            still_since = Instant::now();
        }
    }
    for i in 0..n {
        let got = tcp_exchange(addr, request, false);
        assert_eq!(got, reply, "model {model}, service {service}, client {i}");
    }
    let mut after = 0;
    let settled = wait_until(Duration::from_secs(5), || {
        after = fd_count(pid);
        after <= before
    });
    assert!(
        settled,
        "model {model}, service {service}: {before} descriptors before {n} clients, {after} after"
    );
}

#[test]
fn three_hundred_clients_leak_no_descriptor_in_every_model() {
    for model in MODELS {
        for service in ["hello", "echo"] {
            no_fd_leak(model, service, 300);
        }
    }
}

#[test]
fn clients_that_reset_do_not_stop_the_server() {
    for model in MODELS {
        for service in ["hello", "echo"] {
            let srv = server(model, service, &[]);
            let addr = srv.loopback();
            for i in 0..20 {
                let s = connect(addr);
                if service == "echo" && i % 2 == 1 {
                    // Reset in the middle of a request.
                    let mut s2 = &s;
                    s2.write_all(b"half").expect("write");
                }
                // SO_LINGER 0: close() sends a reset instead of a FIN.
                socket2::SockRef::from(&s)
                    .set_linger(Some(Duration::ZERO))
                    .expect("SO_LINGER");
                drop(s);
            }
            let (request, reply) = exchange_for(service);
            assert_eq!(tcp_exchange(addr, request, false), reply, "model {model}");
            let port = srv.port().to_string();
            let mut args = vec!["127.0.0.1", port.as_str()];
            if service == "echo" {
                args.extend(["-m", "hello"]);
            }
            client(&args).assert().success();
            assert!(!srv.stderr().contains("panicked"), "{}", srv.stderr());
        }
    }
}

#[test]
fn ipv6_loopback_server_and_client() {
    if !ipv6_loopback("ipv6_loopback_server_and_client") {
        return;
    }
    for model in MODELS {
        let srv = Server::start(&["--model", model, "--bind", "::1", "0"]);
        assert_eq!(srv.line, format!("listening on [::1]:{}", srv.port()));
        let port = srv.port().to_string();
        for host in ["::1", "[::1]"] {
            client(&[host, &port])
                .assert()
                .success()
                .stdout("Message from server: Hello World!\n");
        }
        assert_eq!(tcp_exchange(srv.loopback(), b"", false), b"Hello World!\0");
    }
    let srv = Server::start(&["--udp", "--service", "echo", "--bind", "::1", "0"]);
    assert_eq!(srv.line, format!("listening on [::1]:{}", srv.port()));
    client(&["--udp", "-m", "hello", "::1", &srv.port().to_string()])
        .assert()
        .success()
        .stdout("Message from server: 5 : hello\n");
}

#[test]
fn dual_stack_server_accepts_ipv4_and_ipv6_clients() {
    if !ipv6_loopback("dual_stack_server_accepts_ipv4_and_ipv6_clients") {
        return;
    }
    for model in MODELS {
        let srv = Server::start(&["--model", model, "--bind", "::", "0"]);
        assert_eq!(srv.line, format!("listening on [::]:{}", srv.port()));
        let port = srv.port().to_string();
        for host in ["127.0.0.1", "::1"] {
            client(&[host, &port])
                .assert()
                .success()
                .stdout("Message from server: Hello World!\n");
        }
        let v4 = SocketAddr::from(([127, 0, 0, 1], srv.port()));
        assert_eq!(tcp_exchange(v4, b"", false), b"Hello World!\0", "model {model}");
    }
    let srv = Server::start(&["--udp", "--bind", "::", "0"]);
    let v4 = SocketAddr::from(([127, 0, 0, 1], srv.port()));
    assert_eq!(udp_exchange(v4, b""), b"Hello World!\0");
}
