//! Behind a balancer (docs/contract.md#behind-a-balancer): the agent check and the drain
//! delay, socket activation, and handing a listening socket to a new instance under load
//! without losing an exchange.

// Test code: a panic with a message is how it reports, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use hello_proto::startup::Line;
use hello_tests::{MODELS, Server, WAIT, connect, try_read_to_end, wait_until};

/// What the agent answers now.
fn ask_agent(agent: SocketAddr) -> String {
    let mut s = TcpStream::connect_timeout(&agent, WAIT).expect("connect to the agent");
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut line = String::new();
    s.read_to_string(&mut line).expect("the agent's line");
    line
}

fn echo_once(addr: SocketAddr, msg: &str) -> Result<Vec<u8>, std::io::Error> {
    let mut s = TcpStream::connect_timeout(&addr, WAIT)?;
    s.set_read_timeout(Some(WAIT))?;
    s.write_all(msg.as_bytes())?;
    s.write_all(b"\0")?;
    s.shutdown(std::net::Shutdown::Write)?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)?;
    Ok(reply)
}

#[test]
fn the_agent_says_drain_while_the_server_keeps_serving_for_the_delay() {
    let mut srv = Server::start(&[
        "--service",
        "echo",
        "--agent-port",
        "0",
        "--drain-delay",
        "700ms",
        "--bind",
        "127.0.0.1",
        "0",
    ]);
    let agent: SocketAddr = srv.next_start_up_addr(Line::Agent);
    assert_eq!(ask_agent(agent), "up ready\n");
    let t0 = Instant::now();
    srv.signal(libc::SIGTERM);
    assert!(
        wait_until(WAIT, || ask_agent(agent) == "drain\n"),
        "the agent never said drain"
    );
    // Still serving during the delay: the balancer needs that time to stop sending.
    assert_eq!(echo_once(srv.loopback(), "during").unwrap(), b"6 : during\0");
    let status = srv.wait(WAIT).expect("the server stops after the delay");
    assert!(status.success());
    assert!(
        t0.elapsed() >= Duration::from_millis(650),
        "stopped after {:?}",
        t0.elapsed()
    );
    let err = srv.stderr();
    assert!(
        err.contains("draining for 700ms") && err.contains("drained; stopping"),
        "{err}"
    );
}

#[test]
fn a_second_signal_cuts_the_drain_short() {
    let mut srv = Server::start(&["--drain-delay", "1m", "--bind", "127.0.0.1", "0"]);
    srv.signal(libc::SIGTERM);
    assert!(srv.wait_stderr("draining for 1m", WAIT));
    let t0 = Instant::now();
    srv.signal(libc::SIGINT);
    let status = srv.wait(WAIT).expect("stopped by the second signal");
    assert!(status.success());
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

/// A listening socket of this test process, on 127.0.0.1:0, with a backlog of 1024.
fn shared_listener() -> TcpListener {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    s.listen(1024).unwrap();
    s.into()
}

#[test]
fn socket_activation_serves_the_passed_socket() {
    let listener = shared_listener();
    let addr = listener.local_addr().unwrap();
    let srv = Server::activated(&listener, &["--trace", "--lang", "en", "9"]);
    assert_eq!(
        srv.addr, addr,
        "the start-up line shows the passed socket, not port 9"
    );
    assert!(
        srv.wait_stderr("socket activation", WAIT) && srv.stderr().contains("getsockname(3)"),
        "{}",
        srv.stderr()
    );
    assert!(!srv.stderr().contains("bind("), "{}", srv.stderr());
    let mut s = connect(addr);
    assert_eq!(try_read_to_end(&mut s).unwrap(), b"Hello World!\0");
}

#[test]
fn a_socket_handed_to_a_new_instance_under_load_loses_no_exchange() {
    for model in MODELS {
        let listener = shared_listener();
        let addr = listener.local_addr().unwrap();
        let mut first = Server::activated(&listener, &["--model", model, "--service", "echo", "0"]);
        let stop = Arc::new(AtomicBool::new(false));
        let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let clients: Vec<_> = (0..8)
            .map(|i| {
                let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
                thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let msg = format!("c{i} {n}");
                        match echo_once(addr, &msg) {
                            Ok(r) if r == format!("{} : {msg}\0", msg.len()).as_bytes() => {
                                ok.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                })
            })
            .collect();
        thread::sleep(Duration::from_millis(300));
        let mut second = Server::activated(&listener, &["--model", model, "--service", "echo", "0"]);
        thread::sleep(Duration::from_millis(200));
        first.signal(libc::SIGTERM);
        let status = first.wait(WAIT).expect("the first instance stops");
        assert!(status.success(), "{model}: {status}");
        let before = ok.load(Ordering::Relaxed);
        thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        assert!(
            ok.load(Ordering::Relaxed) > before,
            "{model}: the second instance served nothing"
        );
        assert_eq!(
            failed.load(Ordering::Relaxed),
            0,
            "{model}: {} ok; first stderr: {}; second: {}",
            ok.load(Ordering::Relaxed),
            first.stderr(),
            second.stderr()
        );
        second.signal(libc::SIGTERM);
        assert!(second.wait(WAIT).is_some_and(|s| s.success()), "{model}");
    }
}

#[test]
fn socket_activation_with_workers_shares_the_passed_socket() {
    let listener = shared_listener();
    let addr = listener.local_addr().unwrap();
    let args = "--model epoll --workers 2 --trace --lang en 9";
    let srv = Server::activated(&listener, &args.split(' ').collect::<Vec<_>>());
    assert_eq!(srv.addr, addr);
    hello_tests::wait_until(WAIT, || srv.stderr().matches("EPOLLEXCLUSIVE) = 0").count() >= 2);
    let err = srv.stderr();
    assert_eq!(err.matches("F_DUPFD_CLOEXEC").count(), 1, "{err}");
    assert_eq!(err.matches("EPOLLEXCLUSIVE) = 0").count(), 2, "{err}");
    assert!(!err.contains("bind(") && !err.contains("SO_REUSEPORT"), "{err}");
    for _ in 0..20 {
        let mut s = connect(addr);
        assert_eq!(try_read_to_end(&mut s).unwrap(), b"Hello World!\0");
    }
}

#[test]
fn the_agent_listens_with_the_servers_backlog() {
    // `ss` shows a listening socket's backlog as its send queue.
    let name = "the_agent_listens_with_the_servers_backlog";
    let Some(ss) = hello_tests::which("ss") else {
        hello_tests::skip(&format!("{name}: no ss (iproute2)"));
        return;
    };
    let srv = Server::start(&["--agent-port", "0", "--backlog", "7", "--bind", "127.0.0.1", "0"]);
    let agent: SocketAddr = srv.next_start_up_addr(Line::Agent);
    let backlog = |port: u16| {
        let out = std::process::Command::new(&ss)
            .args(["-Hltn", &format!("sport = :{port}")])
            .output()
            .expect("run ss");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let fields: Vec<&str> = text.split_whitespace().collect();
        assert!(fields.len() >= 3, "ss said {text:?}");
        fields[2].to_string()
    };
    assert_eq!(backlog(srv.port()), "7", "the service's own");
    assert_eq!(backlog(agent.port()), "7", "the agent's");
}
