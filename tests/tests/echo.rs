//! The echo service over TCP (docs/contract.md#the-echo-service), byte-exact on raw
//! sockets, in every model: framing by NUL, LF (CR dropped) or end of stream, requests in
//! pieces, the size limit, and the idle timeout.

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use hello_tests::{
    CONCURRENT_MODELS, MODELS, Server, WAIT, client, connect, read_to_end, tcp_exchange, try_read_to_end,
};

fn echo_server(model: &str, extra: &[&str]) -> Server {
    let mut args = vec!["--model", model, "--service", "echo", "--bind", "127.0.0.1"];
    args.extend_from_slice(extra);
    args.push("0");
    Server::start(&args)
}

#[test]
fn framing_examples_are_byte_exact_in_every_model() {
    // (request, half-close after it, reply)
    let cases: &[(&[u8], bool, &[u8])] = &[
        (b"hello\0", false, b"5 : hello\0"),
        (b"hi\n", false, b"2 : hi\n"),
        (b"hi\r\n", false, b"2 : hi\n"),
        ("한글\0".as_bytes(), false, "6 : 한글\0".as_bytes()),
        (b"\0", false, b"0 : \0"),
        (b"\n", false, b"0 : \n"),
        // End of stream ends the message; the reply then ends with NUL.
        (b"abc", true, b"3 : abc\0"),
        (b"", true, b"0 : \0"),
        (b"ab\r", true, b"3 : ab\r\0"),
        // The first terminator wins; what follows is ignored.
        (b"a\0b\n", false, b"1 : a\0"),
        (b"a\nb\0", false, b"1 : a\n"),
        // A CR that is not right before the LF is part of the message.
        (b"a\rb\0", false, b"3 : a\rb\0"),
        (b"\r\r\n", false, b"1 : \r\n"),
        // Bytes are bytes: no UTF-8 needed.
        (b"\xff\xfe\x01\0", false, b"3 : \xff\xfe\x01\0"),
    ];
    for model in MODELS {
        let server = echo_server(model, &[]);
        for &(request, half_close, reply) in cases {
            assert_eq!(
                tcp_exchange(server.loopback(), request, half_close),
                reply,
                "model {model}, request {:?}",
                String::from_utf8_lossy(request)
            );
        }
    }
}

#[test]
fn bytes_after_the_terminator_are_ignored_without_a_reset() {
    for model in MODELS {
        let server = echo_server(model, &[]);
        let mut s = connect(server.loopback());
        s.write_all(b"hi\nand more that nobody reads\n\0").expect("write");
        // Read to the end: a server that closed with unread input would reset the
        // connection instead of ending it.
        let got = try_read_to_end(&mut s);
        assert_eq!(got.expect("clean end of stream"), b"2 : hi\n", "model {model}");
    }
}

#[test]
fn a_request_in_many_pieces_gets_the_same_reply() {
    for model in MODELS {
        let server = echo_server(model, &[]);
        for (request, reply) in [
            (&b"hello world\0"[..], &b"11 : hello world\0"[..]),
            (b"hi\r\n", b"2 : hi\n"),
            ("한글\0".as_bytes(), "6 : 한글\0".as_bytes()),
        ] {
            let mut s = connect(server.loopback());
            // One byte per write, with a pause so that each is its own segment (the
            // request has at most 12 bytes: the pauses are bounded).
            s.set_nodelay(true).expect("TCP_NODELAY");
            for b in request {
                s.write_all(std::slice::from_ref(b)).expect("write a piece");
                thread::sleep(Duration::from_millis(3));
            }
            assert_eq!(read_to_end(&mut s), reply, "model {model}");
        }
        // The same for an end-of-stream request split in two.
        let mut s = connect(server.loopback());
        s.write_all(b"ab").expect("write");
        thread::sleep(Duration::from_millis(20));
        s.write_all(b"cd").expect("write");
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        assert_eq!(read_to_end(&mut s), b"4 : abcd\0", "model {model}");
    }
}

#[test]
fn max_request_is_the_exact_limit_and_the_server_goes_on() {
    let too_long: &[u8] = b"error: message longer than 16 bytes\0";
    for model in MODELS {
        let server = echo_server(model, &["--max-request", "16"]);
        let addr = server.loopback();
        let x16 = [b'x'; 16];
        let x17 = [b'x'; 17];
        // 16 bytes is allowed, whatever the terminator.
        let mut expect16 = b"16 : ".to_vec();
        expect16.extend_from_slice(&x16);
        for (term, end) in [(&b"\0"[..], 0u8), (b"\n", b'\n'), (b"\r\n", b'\n')] {
            let mut req = x16.to_vec();
            req.extend_from_slice(term);
            let mut want = expect16.clone();
            want.push(end);
            assert_eq!(tcp_exchange(addr, &req, false), want, "model {model}");
        }
        assert_eq!(tcp_exchange(addr, &x16, true), [&expect16[..], b"\0"].concat());
        // 17 is over, terminated or not.
        let mut req = x17.to_vec();
        req.push(0);
        assert_eq!(tcp_exchange(addr, &req, false), too_long, "model {model}");
        assert_eq!(tcp_exchange(addr, &x17, true), too_long, "model {model}");
        // No terminator and no end of stream: the server answers as soon as it is over
        // the limit, without waiting for more.
        assert_eq!(tcp_exchange(addr, &[b'y'; 100], false), too_long, "model {model}");
        // And the server still serves the next client.
        assert_eq!(
            tcp_exchange(addr, b"hello\0", false),
            b"5 : hello\0",
            "model {model}"
        );
    }
}

#[test]
fn default_limit_is_65536_bytes_and_the_server_goes_on() {
    for model in MODELS {
        let server = echo_server(model, &[]);
        let addr = server.loopback();
        // 70000 bytes with no terminator: an error reply, never unbounded buffering.
        let got = tcp_exchange(addr, &vec![b'x'; 70_000], false);
        assert_eq!(got, b"error: message longer than 65536 bytes\0", "model {model}");
        let mut terminated = vec![b'x'; 70_000];
        terminated.push(0);
        let got = tcp_exchange(addr, &terminated, false);
        assert_eq!(got, b"error: message longer than 65536 bytes\0", "model {model}");
        // Exactly 65536 bytes is still a message.
        let mut at_limit = vec![b'z'; 65_536];
        at_limit.push(b'\n');
        let got = tcp_exchange(addr, &at_limit, false);
        assert_eq!(got.len(), "65536 : ".len() + 65_536 + 1, "model {model}");
        assert!(
            got.starts_with(b"65536 : zzz") && got.ends_with(b"zz\n"),
            "model {model}"
        );
        assert_eq!(
            tcp_exchange(addr, b"hello\0", false),
            b"5 : hello\0",
            "model {model}"
        );
    }
}

#[test]
fn hello_client_shows_the_error_reply_to_an_oversize_message() {
    let long = "x".repeat(70_000);
    for model in MODELS {
        let server = echo_server(model, &[]);
        client(&["-m", &long, "127.0.0.1", &server.port().to_string()])
            .assert()
            .success()
            .stdout("Message from server: error: message longer than 65536 bytes\n");
    }
}

#[test]
fn a_silent_client_is_closed_after_the_idle_timeout() {
    for model in MODELS {
        let server = echo_server(model, &["--idle-timeout", "300ms"]);
        for partial in [&b""[..], b"hel"] {
            let mut s = connect(server.loopback());
            if !partial.is_empty() {
                s.write_all(partial).expect("write");
            }
            let t0 = Instant::now();
            // The server closes without a reply (or resets); either ends the read.
            let got = try_read_to_end(&mut s).unwrap_or_default();
            let took = t0.elapsed();
            assert_eq!(got, b"", "model {model}: no reply to an unfinished request");
            assert!(
                took >= Duration::from_millis(200) && took < Duration::from_secs(3),
                "model {model}: closed after {took:?}, idle timeout 300ms"
            );
        }
        assert!(
            server.wait_stderr("timed out after 300ms", WAIT),
            "model {model}: no log line for the idle client; stderr: {}",
            server.stderr()
        );
        // The server goes on.
        assert_eq!(tcp_exchange(server.loopback(), b"hello\0", false), b"5 : hello\0");
        client(&["-m", "after", "127.0.0.1", &server.port().to_string()])
            .assert()
            .success()
            .stdout("Message from server: 5 : after\n");
    }
}

#[test]
fn a_silent_client_holds_up_no_one_in_the_concurrent_models() {
    for model in CONCURRENT_MODELS {
        // Default idle timeout (10s): only concurrency can serve the second client.
        let server = echo_server(model, &[]);
        let silent = connect(server.loopback());
        let mut half = connect(server.loopback());
        half.write_all(b"unfinished").expect("write");
        let t0 = Instant::now();
        assert_eq!(tcp_exchange(server.loopback(), b"hello\0", false), b"5 : hello\0");
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "model {model}: a silent client held up another for {:?}",
            t0.elapsed()
        );
        drop((silent, half));
    }
}

#[test]
fn a_silent_client_holds_up_the_iterative_model_only_until_the_idle_timeout() {
    let server = echo_server("iterative", &["--idle-timeout", "300ms"]);
    let _silent = connect(server.loopback());
    let t0 = Instant::now();
    assert_eq!(tcp_exchange(server.loopback(), b"hello\0", false), b"5 : hello\0");
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "the silent client held up the next one for {:?}",
        t0.elapsed()
    );
}

/// A client that hangs up without waiting (connect, close) gets the reply to its empty
/// message written into a dead connection; the failed half-close that follows is not an
/// error worth a line in any model, and the server serves the next client.
#[test]
fn a_client_that_hangs_up_leaves_no_error_line() {
    for model in hello_tests::MODELS {
        let server =
            hello_tests::Server::start(&["--model", model, "--service", "echo", "--bind", "127.0.0.1", "0"]);
        for _ in 0..20 {
            drop(hello_tests::connect(server.loopback()));
        }
        assert_eq!(
            hello_tests::tcp_exchange(server.loopback(), b"after\0", true),
            b"5 : after\0",
            "model {model}"
        );
        assert_eq!(server.stderr(), "", "model {model}");
    }
}
