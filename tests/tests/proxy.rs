//! `--proxy-protocol` (docs/contract.md#behind-a-balancer): every connection starts with a
//! PROXY header, version 1 or 2, before the service's bytes; the real client's address
//! goes to the trace and the log lines; a connection without a valid header is closed
//! with one line.

// Test code: a panic with a message is how it reports, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::net::SocketAddr;

use hello_tests::{MODELS, Server, WAIT, connect, try_read_to_end};

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

fn server(model: &str, service: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "--proxy-protocol",
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
