//! Both services over UDP (docs/contract.md#the-hello-service,
//! docs/contract.md#the-echo-service): every datagram is answered with one datagram,
//! whatever it holds; the client's errors when nothing (or no one) answers.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use hello_tests::{Server, WAIT, client, udp_exchange, wait_until};

fn udp_server(service: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--udp", "--service", service, "--bind", "127.0.0.1"];
    args.extend_from_slice(extra);
    args.push("0");
    Server::start(&args)
}

#[test]
fn client_gets_the_greeting_over_udp() {
    let server = udp_server("hello", &[]);
    assert_eq!(server.line, format!("listening on 127.0.0.1:{}", server.port()));
    let port = server.port().to_string();
    for _ in 0..3 {
        client(&["--udp", "127.0.0.1", &port])
            .assert()
            .success()
            .stdout("Message from server: Hello World!\n")
            .stderr("");
    }
    // The hello service ignores what the datagram holds.
    client(&["--udp", "-m", "hello", "127.0.0.1", &port])
        .assert()
        .success()
        .stdout("Message from server: Hello World!\n");
}

#[test]
fn client_message_gets_the_echo_reply_over_udp() {
    let server = udp_server("echo", &[]);
    let port = server.port().to_string();
    client(&["--udp", "-m", "hello", "127.0.0.1", &port])
        .assert()
        .success()
        .stdout("Message from server: 5 : hello\n")
        .stderr("");
    client(&["--udp", "-m", "한글", "127.0.0.1", &port])
        .assert()
        .success()
        .stdout("Message from server: 6 : 한글\n");
    // No -m: one empty datagram, the empty message.
    client(&["--udp", "127.0.0.1", &port])
        .assert()
        .success()
        .stdout("Message from server: 0 : \n");
}

#[test]
fn hello_answers_any_datagram_with_the_greeting_and_its_nul() {
    let server = udp_server("hello", &["--message", "Hi there"]);
    let addr = server.loopback();
    let big = vec![b'x'; 65_000];
    for datagram in [&b""[..], b"\0\xff\x01binary\0", &big, b"hi\r\n", b"hello\0"] {
        assert_eq!(
            udp_exchange(addr, datagram),
            b"Hi there\0",
            "a {}-byte datagram",
            datagram.len()
        );
    }
}

#[test]
fn echo_answers_every_datagram_and_keeps_answering() {
    let server = udp_server("echo", &[]);
    let addr = server.loopback();
    assert_eq!(udp_exchange(addr, b""), b"0 : \0");
    // The message ends at the first NUL or LF; a CR before the LF is dropped; the reply
    // always ends with NUL over UDP.
    assert_eq!(udp_exchange(addr, b"\xff\xfe\x01\0junk"), b"3 : \xff\xfe\x01\0");
    assert_eq!(udp_exchange(addr, b"hi\r\n"), b"2 : hi\0");
    assert_eq!(udp_exchange(addr, b"hi\n"), b"2 : hi\0");
    assert_eq!(udp_exchange(addr, b"no terminator"), b"13 : no terminator\0");
    assert_eq!(udp_exchange(addr, "한글\0".as_bytes()), "6 : 한글\0".as_bytes());
    let big = vec![b'x'; 65_000];
    let reply = udp_exchange(addr, &big);
    assert_eq!(reply.len(), "65000 : ".len() + 65_000 + 1);
    assert!(reply.starts_with(b"65000 : xxx") && reply.ends_with(b"x\0"));
    // Still answering after all that.
    assert_eq!(udp_exchange(addr, b"hello\0"), b"5 : hello\0");
}

#[test]
fn echo_over_udp_enforces_max_request() {
    let server = udp_server("echo", &["--max-request", "16"]);
    let addr = server.loopback();
    assert_eq!(
        udp_exchange(addr, &[b'x'; 16]),
        [&b"16 : "[..], &[b'x'; 16], b"\0"].concat()
    );
    assert_eq!(
        udp_exchange(addr, &[b'x'; 17]),
        b"error: message longer than 16 bytes\0"
    );
    assert_eq!(udp_exchange(addr, b"hello\0"), b"5 : hello\0");
}

/// A burst in flight: the server is stopped (SIGSTOP) while 40 sockets send 3 datagrams
/// each, so that its `recvmmsg()` finds them all queued and takes them in batches. Every
/// datagram gets exactly one reply, to its own sender, with its own bytes: echoes and
/// error replies (`--max-request`) mixed in one batch; and the trace shows batches of
/// more than one datagram both ways.
#[test]
fn a_burst_in_flight_is_answered_once_each_in_batches() {
    const SOCKETS: usize = 40;
    const EACH: usize = 3;
    let server = udp_server(
        "echo",
        &["--max-request", "16", "--trace", "--trace-format", "json"],
    );
    let addr = server.loopback();
    let sockets: Vec<UdpSocket> = (0..SOCKETS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
            s.set_read_timeout(Some(WAIT)).expect("timeout");
            s
        })
        .collect();
    // Datagram j of socket i: an echo (its message names both), empty, or too long.
    let datagram = |i: usize, j: usize| -> Vec<u8> {
        match (i + j) % 3 {
            0 => format!("m{i}.{j}").into_bytes(),
            1 if j == 1 => Vec::new(),
            1 => vec![b'a' + (i % 26) as u8; 17 + i],
            _ => format!("x{i}-{j}\r\ntrailing").into_bytes(),
        }
    };
    let reply = |d: &[u8]| -> Vec<u8> {
        let msg = d.split(|&b| b == b'\n' || b == 0).next().unwrap_or_default();
        let msg = msg.strip_suffix(b"\r").unwrap_or(msg);
        if msg.len() > 16 {
            b"error: message longer than 16 bytes\0".to_vec()
        } else {
            [format!("{} : ", msg.len()).as_bytes(), msg, b"\0"].concat()
        }
    };
    server.signal(libc::SIGSTOP);
    for j in 0..EACH {
        for (i, s) in sockets.iter().enumerate() {
            s.send_to(&datagram(i, j), addr).expect("send_to");
        }
    }
    server.signal(libc::SIGCONT);
    let mut buf = vec![0u8; 65536];
    for (i, s) in sockets.iter().enumerate() {
        let mut want: Vec<Vec<u8>> = (0..EACH).map(|j| reply(&datagram(i, j))).collect();
        let mut got = Vec::new();
        for _ in 0..EACH {
            let (n, from) = s
                .recv_from(&mut buf)
                .unwrap_or_else(|e| panic!("socket {i}: a reply missing after {got:?}: {e}"));
            assert_eq!(from, addr, "socket {i}: a reply from elsewhere");
            got.push(buf[..n].to_vec());
        }
        want.sort();
        got.sort();
        assert_eq!(
            got, want,
            "socket {i}: each datagram answered, with its own bytes"
        );
        // Exactly once: the next reply is the one to a last datagram, not a second copy.
        s.send_to(b"end", addr).expect("send_to");
        let (n, _) = s.recv_from(&mut buf).expect("the reply to the last datagram");
        assert_eq!(&buf[..n], b"3 : end\0", "socket {i}: a reply came twice");
    }
    let batches = |call: &str| -> u64 {
        server
            .stderr()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["call"] == call)
            .filter_map(|r| r["ret"].as_u64())
            .max()
            .unwrap_or(0)
    };
    // The trace is read from the server's stderr as it comes: give the last lines time.
    wait_until(WAIT, || batches("recvmmsg") > 1 && batches("sendmmsg") > 1);
    assert!(batches("recvmmsg") > 1, "no batch received: {}", server.stderr());
    assert!(batches("sendmmsg") > 1, "no batch sent: {}", server.stderr());
}

/// `--workers 2` over UDP: two batched loops, a `SO_REUSEPORT` socket each on one port.
/// 40 senders (the kernel spreads them by a hash of their addresses) are each answered,
/// both workers answer some (the trace names them `server#1` and `server#2`), and
/// SIGTERM stops both (exit 0).
#[test]
fn two_udp_workers_share_the_port_and_both_answer() {
    let mut server = udp_server("hello", &["--workers", "2", "--trace", "--trace-format", "json"]);
    let addr = server.loopback();
    for _ in 0..40 {
        assert_eq!(udp_exchange(addr, b"hi"), b"Hello World!\0");
    }
    let who = |w: &str| {
        server
            .stderr()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|r| r["who"] == w && r["call"] == "recvmmsg")
            .count()
    };
    // The trace is read from the server's stderr as it comes: wait for the last lines.
    let all = wait_until(WAIT, || who("server#1") + who("server#2") == 40);
    assert!(all, "40 receives traced: {}", server.stderr());
    let (one, two) = (who("server#1"), who("server#2"));
    assert!(one > 0 && two > 0, "each worker answers some: {one} and {two}");
    server.signal(libc::SIGTERM);
    let status = server.wait(WAIT).expect("the UDP workers did not stop");
    assert!(status.success(), "{status}; stderr: {}", server.stderr());
}

#[test]
fn udp_once_answers_one_datagram_then_exits_0() {
    for service in ["hello", "echo"] {
        let mut server = udp_server(service, &["--once"]);
        let want: &[u8] = if service == "hello" {
            b"Hello World!\0"
        } else {
            b"5 : hello\0"
        };
        assert_eq!(udp_exchange(server.loopback(), b"hello\0"), want);
        let status = server.wait(WAIT).expect("--once --udp did not exit");
        assert!(status.success(), "{status}; stderr: {}", server.stderr());
        assert_eq!(server.stdout_to_end(WAIT), Vec::<String>::new());
    }
}

#[test]
fn client_udp_to_a_closed_port_is_connection_refused() {
    // The kernel answers a datagram to a closed port with ICMP port unreachable, which a
    // connected UDP socket reports as ECONNREFUSED.
    let probe = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = probe.local_addr().expect("local_addr").port().to_string();
    drop(probe);
    let out = client(&["--udp", "--timeout", "2s", "127.0.0.1", &port])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(out.stdout.is_empty());
    hello_tests::assert_one_line("stderr", &stderr);
    assert!(stderr.contains("Connection refused"), "{stderr:?}");
    assert!(stderr.starts_with("hello-client: ") && stderr.contains(&format!("127.0.0.1:{port}")));
}

#[test]
fn client_udp_to_a_server_that_never_answers_times_out() {
    let mute = UdpSocket::bind("127.0.0.1:0").expect("bind");
    mute.set_read_timeout(Some(WAIT)).expect("set_read_timeout");
    let port = mute.local_addr().expect("local_addr").port().to_string();
    let t0 = Instant::now();
    let out = client(&["--udp", "--timeout", "300ms", "127.0.0.1", &port])
        .output()
        .expect("run");
    let took = t0.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert_eq!(
        stderr,
        format!("hello-client: recvfrom() error: 127.0.0.1:{port}: timed out after 300ms\n")
    );
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "--timeout 300ms took {took:?}"
    );
    // The client did send its (empty) datagram.
    let mut buf = [0u8; 16];
    let (n, _) = mute.recv_from(&mut buf).expect("the client's datagram");
    assert_eq!(n, 0);
}
