//! `--proxy-protocol` (docs/contract.md#behind-a-balancer): every connection starts with a
//! PROXY header, version 1 or 2, before the service's bytes; the real client's address
//! goes to the trace and the log lines; a connection without a valid header is closed
//! with one line; `--proxy-from` says whose headers are believed.

// Test code: a panic with a message is how it reports, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::SocketAddr;

use hello_tests::{MODELS, Server, WAIT, connect, ipv6_loopback, try_read_to_end};

const CLIENT: &str = "203.0.113.7:51234";

fn v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    format!(
        "PROXY TCP4 {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

fn v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
        panic!("IPv4 only here");
    };
    let mut v = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    v.extend_from_slice(&[0x21, 0x11, 0, 12]);
    v.extend_from_slice(&s.ip().octets());
    v.extend_from_slice(&d.ip().octets());
    v.extend_from_slice(&s.port().to_be_bytes());
    v.extend_from_slice(&d.port().to_be_bytes());
    v
}

/// A server behind a balancer on this machine: headers from 127.0.0.1 are believed.
fn server(model: &str, service: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "--proxy-protocol",
        "--proxy-from",
        "127.0.0.1",
        "--model",
        model,
        "--service",
        service,
        "--bind",
        "127.0.0.1",
    ];
    args.extend_from_slice(extra);
    args.push("0");
    Server::start(&args)
}

/// Sends `bytes` (split after `cut` bytes, to make the header arrive in pieces) and
/// returns the reply.
fn exchange(addr: SocketAddr, bytes: &[u8], cut: usize) -> Vec<u8> {
    let mut s = connect(addr);
    s.write_all(&bytes[..cut]).unwrap();
    s.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    s.write_all(&bytes[cut..]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    try_read_to_end(&mut s).expect("the reply")
}

#[test]
fn both_versions_are_read_before_the_service_in_every_model() {
    let client: SocketAddr = CLIENT.parse().unwrap();
    for model in MODELS {
        let srv = server(model, "echo", &["--trace", "--lang", "en"]);
        for (name, header) in [("v1", v1(client, srv.addr)), ("v2", v2(client, srv.addr))] {
            let request = [header.clone(), b"hello\0".to_vec()].concat();
            for cut in [request.len(), 3, header.len()] {
                assert_eq!(
                    exchange(srv.loopback(), &request, cut),
                    b"5 : hello\0",
                    "{model} {name} cut at {cut}"
                );
            }
        }
        assert!(
            srv.wait_stderr("PROXY v2 on", WAIT) && srv.stderr().contains(&format!("client {CLIENT}")),
            "{model}: the trace names the real client: {}",
            srv.stderr()
        );
        // The hello service reads the header first, then greets.
        let hello = server(model, "hello", &[]);
        let header = v2(client, hello.addr);
        assert_eq!(
            exchange(hello.loopback(), &header, header.len()),
            b"Hello World!\0",
            "{model}"
        );
    }
}

#[test]
fn a_connection_without_a_header_is_closed_with_one_line() {
    for model in MODELS {
        let srv = server(model, "echo", &[]);
        let mut s = connect(srv.loopback());
        s.write_all(b"hello\0").unwrap();
        let got = try_read_to_end(&mut s);
        assert!(got.as_ref().is_ok_and(Vec::is_empty), "{model}: {got:?}");
        assert!(
            srv.wait_stderr("no PROXY protocol header", WAIT),
            "{model}: {}",
            srv.stderr()
        );
        assert_eq!(srv.stderr().lines().count(), 1, "{model}: {}", srv.stderr());
    }
}

#[test]
fn log_lines_name_the_real_client() {
    let client: SocketAddr = CLIENT.parse().unwrap();
    for model in MODELS {
        let srv = server(model, "echo", &["--idle-timeout", "200ms"]);
        let mut s = connect(srv.loopback());
        s.write_all(&v2(client, srv.addr)).unwrap();
        s.write_all(b"half a requ").unwrap();
        let _ = try_read_to_end(&mut s);
        assert!(
            srv.wait_stderr(&format!("read() error: {CLIENT}: timed out after 200ms"), WAIT),
            "{model}: {}",
            srv.stderr()
        );
    }
}

/// Sends a v1 header naming [`CLIENT`] and an echo request from a socket bound to
/// `from`, and returns what came back (`Err`: a reset).
fn spoof(from: &str, to: SocketAddr) -> std::io::Result<Vec<u8>> {
    let from: SocketAddr = from.parse().unwrap();
    let domain = socket2::Domain::for_address(to);
    let sock = socket2::Socket::new(domain, socket2::Type::STREAM, None).unwrap();
    sock.bind(&from.into()).unwrap();
    sock.connect_timeout(&to.into(), WAIT).unwrap();
    let mut s = std::net::TcpStream::from(sock);
    s.set_read_timeout(Some(WAIT)).unwrap();
    // The balancer's own address, as a balancer in front of an IPv4 service would say.
    let request = [
        v1(CLIENT.parse().unwrap(), "10.0.0.2:9190".parse().unwrap()),
        b"hello\0".to_vec(),
    ]
    .concat();
    s.write_all(&request).unwrap();
    try_read_to_end(&mut s)
}

#[test]
fn a_header_from_a_peer_not_in_proxy_from_is_refused_with_one_line_naming_the_peer() {
    for model in MODELS {
        let srv = server(model, "echo", &[]);
        // 127.0.0.2 is this machine too, but not in --proxy-from 127.0.0.1.
        let got = spoof("127.0.0.2:0", srv.loopback());
        assert!(
            got.as_ref().is_ok_and(Vec::is_empty) || got.is_err(),
            "{model}: a reply to a spoofed header: {got:?}"
        );
        assert!(srv.wait_stderr("--proxy-from", WAIT), "{model}: {}", srv.stderr());
        let stderr = srv.stderr();
        assert_eq!(stderr.lines().count(), 1, "{model}: {stderr}");
        assert!(
            stderr.contains("read() error: 127.0.0.2:") && !stderr.contains("203.0.113.7"),
            "{model}: the line names the real peer: {stderr}"
        );
        // The balancer's own connections are still believed.
        assert_eq!(
            spoof("127.0.0.1:0", srv.loopback()).unwrap(),
            b"5 : hello\0",
            "{model}"
        );
    }
}

#[test]
fn proxy_from_takes_cidr_blocks_ipv6_and_v4_mapped_peers() {
    let name = "proxy_from_takes_cidr_blocks_ipv6_and_v4_mapped_peers";
    if !ipv6_loopback(name) {
        return;
    }
    for model in MODELS {
        // Dual-stack: an IPv4 peer is ::ffff:127.0.0.1 to the socket, and must match
        // the IPv4 block all the same.
        let srv = Server::start(&[
            "--proxy-protocol",
            "--proxy-from",
            "::1/128,127.0.0.0/31",
            "--model",
            model,
            "--service",
            "echo",
            "--bind",
            "::",
            "0",
        ]);
        let v6: SocketAddr = format!("[::1]:{}", srv.port()).parse().unwrap();
        let v4: SocketAddr = format!("127.0.0.1:{}", srv.port()).parse().unwrap();
        assert_eq!(spoof("[::1]:0", v6).unwrap(), b"5 : hello\0", "{model}: ::1");
        assert_eq!(
            spoof("127.0.0.1:0", v4).unwrap(),
            b"5 : hello\0",
            "{model}: 127.0.0.1"
        );
        let refused = spoof("127.0.0.2:0", v4);
        assert!(
            refused.as_ref().map_or(true, Vec::is_empty),
            "{model}: 127.0.0.2 is outside 127.0.0.0/31: {refused:?}"
        );
        assert!(srv.wait_stderr("127.0.0.2", WAIT), "{model}: {}", srv.stderr());
        assert_eq!(srv.stderr().lines().count(), 1, "{model}: {}", srv.stderr());
    }
}

#[test]
fn proxy_protocol_without_proxy_from_warns_that_it_believes_every_peer() {
    let srv = Server::start(&[
        "--proxy-protocol",
        "--service",
        "echo",
        "--bind",
        "127.0.0.1",
        "0",
    ]);
    assert!(
        srv.wait_stderr("--proxy-from", WAIT),
        "no warning: {}",
        srv.stderr()
    );
    let stderr = srv.stderr();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("hello-server: warning: "), "{stderr}");
    // And it does believe them: a header from this machine names the client.
    assert_eq!(spoof("127.0.0.2:0", srv.loopback()).unwrap(), b"5 : hello\0");
}
