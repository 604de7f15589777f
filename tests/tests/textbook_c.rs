//! Interoperability with the textbook C programs (docs/contract.md#the-two-programs): the C
//! hello and echo clients against hello-server in every model, and hello-client against the
//! C servers, including one that trickles the greeting a byte at a time.
//!
//! The C peers live in `tests/c/` and are compiled at test time; without a C compiler
//! each test prints a SKIP line and passes.

// Test code: a panic with a message is how it reports, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::path::Path;

use hello_tests::{MODELS, Server, WAIT, c_program, client, fake_server, run_bounded, tcp_exchange};

/// Runs a C client to completion; returns its stdout, after checking it succeeded
/// quietly.
fn run_c_client(exe: &Path, args: &[&str]) -> String {
    let mut cmd = std::process::Command::new(exe);
    cmd.args(args);
    let (status, stdout, stderr) = run_bounded(&mut cmd);
    let stderr = String::from_utf8_lossy(&stderr);
    assert!(
        status.success(),
        "{} {args:?}: {status}; stderr: {stderr}",
        exe.display()
    );
    assert_eq!(stderr, "", "{} {args:?}", exe.display());
    String::from_utf8_lossy(&stdout).into_owned()
}

/// Waits for a one-shot C server to exit and checks it exited 0.
fn expect_clean_exit(mut server: Server) {
    let status = server.wait(WAIT).expect("the one-shot C server did not exit");
    assert!(
        status.success(),
        "C server: {status}; stderr: {}",
        server.stderr()
    );
}

#[test]
fn c_hello_client_gets_the_greeting_and_its_nul_from_every_model() {
    let Some(c_client) = c_program("hello_client") else {
        return;
    };
    for model in MODELS {
        let server = Server::start(&["--model", model, "--bind", "127.0.0.1", "0"]);
        let port = server.port().to_string();
        // Without the NUL the C client would print "Hello World!XXXXXXXXXXXXXXXXX".
        assert_eq!(
            run_c_client(&c_client, &["127.0.0.1", &port]),
            "Message from server: Hello World!\n",
            "model {model}"
        );
    }
}

#[test]
fn c_hello_client_shows_a_missing_nul() {
    // The control for the test above: the C client really does expose a greeting sent
    // without its NUL, so that test can fail.
    let Some(c_client) = c_program("hello_client") else {
        return;
    };
    let (addr, peer) = fake_server(|mut s| {
        let _ = s.write_all(b"Hello World!");
    });
    let out = run_c_client(&c_client, &["127.0.0.1", &addr.port().to_string()]);
    assert!(peer.join().expect("fake server"));
    assert_eq!(out, "Message from server: Hello World!XXXXXXXXXXXXXXXXX\n");
}

#[test]
fn c_hello_client_gets_a_custom_message_from_every_model() {
    let Some(c_client) = c_program("hello_client") else {
        return;
    };
    for model in MODELS {
        let server = Server::start(&[
            "--model",
            model,
            "--bind",
            "127.0.0.1",
            "--message",
            "Hi there",
            "0",
        ]);
        assert_eq!(
            run_c_client(&c_client, &["127.0.0.1", &server.port().to_string()]),
            "Message from server: Hi there\n",
            "model {model}"
        );
    }
}

#[test]
fn hello_client_prints_the_c_servers_greeting_without_nul_or_garbage() {
    let Some(c_server) = c_program("hello_server") else {
        return;
    };
    let server = Server::start_program(&c_server, &["0", "127.0.0.1"]);
    assert_eq!(server.line, format!("listening on 127.0.0.1:{}", server.port()));
    client(&["127.0.0.1", &server.port().to_string()])
        .assert()
        .success()
        .stdout("Message from server: Hello World!\n")
        .stderr("");
    expect_clean_exit(server);
}

#[test]
fn c_server_sends_the_same_13_bytes_as_hello_server() {
    let Some(c_server) = c_program("hello_server") else {
        return;
    };
    let server = Server::start_program(&c_server, &["0"]);
    assert_eq!(server.line, format!("listening on 0.0.0.0:{}", server.port()));
    let c_bytes = tcp_exchange(server.loopback(), b"", false);
    expect_clean_exit(server);
    let ours = Server::start(&["--bind", "127.0.0.1", "0"]);
    assert_eq!(c_bytes, b"Hello World!\0");
    assert_eq!(tcp_exchange(ours.loopback(), b"", false), c_bytes);
}

#[test]
fn hello_client_reads_a_trickled_greeting_to_the_end() {
    let Some(trickle) = c_program("trickle_server") else {
        return;
    };
    let server = Server::start_program(&trickle, &["0", "127.0.0.1"]);
    client(&["127.0.0.1", &server.port().to_string()])
        .assert()
        .success()
        .stdout("Message from server: Hello World!\n")
        .stderr("");
    expect_clean_exit(server);
}

#[test]
fn trickle_server_sends_the_greeting_in_pieces() {
    // The trickle test above is only meaningful if the greeting really arrives in
    // several reads: 13 one-byte writes 2 ms apart, with Nagle off. A reader descheduled
    // for the whole 24 ms would see it in one read, so up to three tries.
    let Some(trickle) = c_program("trickle_server") else {
        return;
    };
    let mut most_reads = 0;
    for _ in 0..3 {
        let server = Server::start_program(&trickle, &["0", "127.0.0.1"]);
        let mut s = hello_tests::connect(server.loopback());
        let mut got = Vec::new();
        let mut reads = 0;
        let mut buf = [0u8; 64];
        while reads < 100 {
            let n = std::io::Read::read(&mut s, &mut buf).expect("read");
            if n == 0 {
                break;
            }
            reads += 1;
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"Hello World!\0");
        expect_clean_exit(server);
        most_reads = most_reads.max(reads);
        if most_reads > 1 {
            break;
        }
    }
    assert!(most_reads > 1, "the whole greeting came in one read, three times");
}

#[test]
fn c_echo_client_gets_the_length_prefixed_reply_from_every_model() {
    let Some(c_client) = c_program("echo_client") else {
        return;
    };
    for model in MODELS {
        let server = Server::start(&["--model", model, "--service", "echo", "--bind", "127.0.0.1", "0"]);
        let port = server.port().to_string();
        assert_eq!(
            run_c_client(&c_client, &["127.0.0.1", &port, "hello"]),
            "Message from server: 5 : hello\n",
            "model {model}"
        );
        assert_eq!(
            run_c_client(&c_client, &["127.0.0.1", &port, "한글"]),
            "Message from server: 6 : 한글\n",
            "model {model}"
        );
    }
}

#[test]
fn hello_client_message_gets_the_reply_from_every_model() {
    for model in MODELS {
        let server = Server::start(&["--model", model, "--service", "echo", "--bind", "127.0.0.1", "0"]);
        client(&["-m", "hello", "127.0.0.1", &server.port().to_string()])
            .assert()
            .success()
            .stdout("Message from server: 5 : hello\n")
            .stderr("");
    }
}

#[test]
fn hello_client_message_gets_the_reply_from_the_c_echo_server() {
    let Some(c_server) = c_program("echo_server") else {
        return;
    };
    let server = Server::start_program(&c_server, &["0", "127.0.0.1"]);
    client(&["-m", "hello", "127.0.0.1", &server.port().to_string()])
        .assert()
        .success()
        .stdout("Message from server: 5 : hello\n")
        .stderr("");
    expect_clean_exit(server);
}

#[test]
fn c_echo_server_and_hello_server_reply_with_the_same_bytes() {
    let Some(c_server) = c_program("echo_server") else {
        return;
    };
    let server = Server::start_program(&c_server, &["0", "127.0.0.1"]);
    let c_bytes = tcp_exchange(server.loopback(), b"hello\0", false);
    expect_clean_exit(server);
    assert_eq!(c_bytes, b"5 : hello\0");
    for model in MODELS {
        let ours = Server::start(&["--model", model, "--service", "echo", "--bind", "127.0.0.1", "0"]);
        assert_eq!(
            tcp_exchange(ours.loopback(), b"hello\0", false),
            c_bytes,
            "model {model}"
        );
    }
}
