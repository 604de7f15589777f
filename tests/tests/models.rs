//! The textbook's other servers (docs/contract.md#server-models-and-limits): the select
//! model with more clients than `FD_SETSIZE`, and the fork model's processes — every
//! child reaped, a stop that reaches them; and the epoll model's `--workers`, whose
//! listening sockets share a port. The rest of the suite runs against every model (and
//! `--workers 2`).

// Test code: a panic with a message is how it reports, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::Duration;

use hello_tests::{Server, WAIT, child_processes, fd_count, raise_own_nofile};

/// `threads` threads, each with `each` hello clients one after another, every reply
/// checked byte for byte (each read bounded by [`WAIT`]).
fn hello_clients(addr: std::net::SocketAddr, threads: usize, each: usize) {
    let clients: Vec<_> = (0..threads)
        .map(|_| {
            thread::spawn(move || {
                for _ in 0..each {
                    assert_eq!(hello_tests::tcp_exchange(addr, b"", false), b"Hello World!\0");
                }
            })
        })
        .collect();
    for c in clients {
        c.join().expect("a client thread");
    }
}

#[test]
fn the_select_model_serves_more_clients_than_fd_setsize() {
    const CLIENTS: usize = 1300;
    if !raise_own_nofile(CLIENTS as u64 + 200) {
        hello_tests::skip("the_select_model_serves_more_clients_than_fd_setsize: descriptor limit too low");
        return;
    }
    let srv = Server::start(&[
        "--model",
        "select",
        "--service",
        "echo",
        "--bind",
        "127.0.0.1",
        "0",
    ]);
    // All connect and send at once; past the ~1008 the select model takes, they wait in
    // the listen backlog (a descriptor of 1024 or more never goes into an fd_set).
    let mut clients: Vec<(usize, TcpStream)> = (0..CLIENTS)
        .map(|i| {
            let mut s = TcpStream::connect(srv.loopback()).expect("connect");
            s.set_read_timeout(Some(WAIT)).unwrap();
            s.write_all(format!("{i}\0").as_bytes()).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            (i, s)
        })
        .collect();
    let peak = fd_count(srv.pid());
    assert!(
        peak <= 1024,
        "the server holds {peak} descriptors: more than a set can hold"
    );
    for (i, s) in &mut clients {
        let mut reply = Vec::new();
        s.read_to_end(&mut reply)
            .unwrap_or_else(|e| panic!("client {i}: {e}"));
        assert_eq!(
            reply,
            format!("{} : {i}\0", i.to_string().len()).into_bytes(),
            "client {i}"
        );
    }
    assert_eq!(srv.stderr(), "");
}

/// Whether process `pid` is a zombie (state Z in `/proc/PID/stat`).
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn the_fork_model_reaps_every_child_of_a_thousand_clients() {
    let srv = Server::start(&["--model", "fork", "--bind", "127.0.0.1", "0"]);
    let addr = srv.loopback();
    hello_clients(addr, 4, 250);
    // Every child has exited and been reaped: none left, not even as a zombie.
    assert!(
        hello_tests::wait_until(WAIT, || child_processes(srv.pid()).is_empty()),
        "children left: {:?} (zombies: {:?})",
        child_processes(srv.pid()),
        child_processes(srv.pid())
            .into_iter()
            .filter(|&c| is_zombie(c))
            .collect::<Vec<_>>()
    );
    assert_eq!(srv.stderr(), "");
}

#[test]
fn a_stop_reaches_the_fork_models_children_within_the_grace() {
    let mut srv = Server::start(&["--model", "fork", "--service", "echo", "--bind", "127.0.0.1", "0"]);
    // Two clients in flight in two children, one finishing its request after the stop.
    let mut stuck = TcpStream::connect(srv.loopback()).unwrap();
    stuck.write_all(b"never finished").unwrap();
    let mut late = TcpStream::connect(srv.loopback()).unwrap();
    late.write_all(b"fin").unwrap();
    assert!(
        hello_tests::wait_until(WAIT, || child_processes(srv.pid()).len() == 2),
        "two children: {:?}",
        child_processes(srv.pid())
    );
    let t0 = std::time::Instant::now();
    srv.signal(libc::SIGTERM);
    thread::sleep(Duration::from_millis(100));
    late.write_all(b"ished\0").unwrap();
    late.set_read_timeout(Some(WAIT)).unwrap();
    let mut reply = Vec::new();
    late.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"8 : finished\0", "an exchange in flight finishes");
    let status = srv.wait(WAIT).expect("the parent stops");
    assert!(status.success(), "{status}");
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(3500), "{took:?}");
    stuck.set_read_timeout(Some(WAIT)).unwrap();
    let got = stuck.read_to_end(&mut Vec::new());
    assert!(
        matches!(&got, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "the unfinished one is reset: {got:?}"
    );
    // The child reset it itself at the end of the grace (a child the parent had to kill
    // would say nothing).
    let port = stuck.local_addr().unwrap().port();
    assert_eq!(
        srv.stderr(),
        format!(
            "hello-server: read() error: 127.0.0.1:{port}: unfinished when the server stopped (connection reset)\n"
        )
    );
}

/// `--workers 2`: two listening sockets on one port, and the kernel spreads the clients
/// over both workers (by a hash of each client's address and port: forty clients all
/// landing on one of two workers has a chance of 2^-39).
#[test]
fn two_workers_both_serve_clients_on_one_port() {
    let srv = Server::start(&[
        "--model",
        "epoll",
        "--workers",
        "2",
        "--trace",
        "--lang",
        "en",
        "--bind",
        "127.0.0.1",
        "0",
    ]);
    hello_clients(srv.loopback(), 1, 40);
    let served_by = |worker: &str| {
        hello_tests::wait_until(WAIT, || {
            srv.stderr()
                .lines()
                .any(|l| l.contains(&format!(" {worker}  accept(")))
        })
    };
    assert!(served_by("server#1"), "worker 1 served no one:\n{}", srv.stderr());
    assert!(served_by("server#2"), "worker 2 served no one:\n{}", srv.stderr());
    let reuseport = srv
        .stderr()
        .lines()
        .filter(|l| l.contains("SO_REUSEPORT, 1) = 0"))
        .count();
    assert_eq!(reuseport, 2, "one SO_REUSEPORT socket per worker");
}

#[test]
fn two_workers_sharing_one_queue_both_serve_clients() {
    let srv = Server::start(&[
        "--model",
        "epoll",
        "--workers",
        "2",
        "--accept-queues",
        "shared",
        "--trace",
        "--lang",
        "en",
        "--bind",
        "127.0.0.1",
        "0",
    ]);
    // The workers' set-up lines come after the start-up line.
    hello_tests::wait_until(WAIT, || srv.stderr().matches("EPOLLEXCLUSIVE) = 0").count() >= 2);
    let err = srv.stderr();
    assert_eq!(err.matches(" listen(").count(), 1, "one listening socket:\n{err}");
    assert_eq!(
        err.matches("F_DUPFD_CLOEXEC").count(),
        1,
        "one copy for worker 2:\n{err}"
    );
    assert_eq!(
        err.matches("EPOLLEXCLUSIVE) = 0").count(),
        2,
        "both workers watch it with EPOLLEXCLUSIVE:\n{err}"
    );
    assert!(!err.contains("SO_REUSEPORT"), "{err}");
    // An idle worker is woken first, so clients one at a time may all go to one worker:
    // only while it is busy does a connection wake the other. Rounds of concurrent
    // clients, until both have served (bounded).
    let addr = srv.loopback();
    // A client taken: `server#N  accept(fd) = client, peer …` (not the EAGAIN ones).
    let served_by = |worker: &str| {
        srv.stderr()
            .lines()
            .any(|l| l.contains(&format!(" {worker}  accept(")) && l.contains(", peer "))
    };
    let mut rounds = 0;
    while !(served_by("server#1") && served_by("server#2")) {
        rounds += 1;
        assert!(
            rounds <= 50,
            "after 50 rounds of 8x25 clients a worker still served no one:\n{}",
            srv.stderr()
        );
        hello_clients(addr, 8, 25);
    }
}
