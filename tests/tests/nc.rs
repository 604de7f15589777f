//! What a user with `nc` sees: `echo hi | nc host port` and the echo framing
//! (docs/contract.md#the-echo-service). Every test checks for `nc` on PATH and prints a
//! loud SKIP line when it is missing (tests never install packages) or of a flavour whose
//! options these tests do not know.

// Test code: a panic with a message is how it reports, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use hello_tests::{MODELS, Server, WAIT, client, which};

/// The installed netcat and how to make it end the exchange.
enum Nc {
    /// OpenBSD netcat (netcat-openbsd): `-N` shuts the socket down after EOF on stdin.
    OpenBsd(PathBuf),
    /// Nmap's ncat: shuts down on EOF on stdin by default.
    Ncat(PathBuf),
    /// Traditional netcat / busybox: `-q 1` quits a second after EOF on stdin.
    Traditional(PathBuf),
}

impl Nc {
    /// Finds `nc` and its flavour, or prints a SKIP line for `test`.
    fn find(test: &str) -> Option<Nc> {
        let Some(path) = which("nc") else {
            hello_tests::skip(&format!(
                "{test}: nc is not installed (e.g. apt-get install netcat-openbsd)"
            ));
            return None;
        };
        let mut help = Command::new(&path);
        help.arg("-h");
        let (_, out, err) = hello_tests::run_bounded(&mut help);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        );
        if text.contains("OpenBSD netcat") || text.contains("Shutdown the network socket after EOF") {
            Some(Nc::OpenBsd(path))
        } else if text.contains("Ncat") {
            Some(Nc::Ncat(path))
        } else if text.contains("-q") {
            Some(Nc::Traditional(path))
        } else {
            hello_tests::skip(&format!("{test}: unknown nc flavour at {}", path.display()));
            None
        }
    }

    /// `nc [flags] 127.0.0.1 PORT`, with `stdin` as its input; returns its stdout.
    fn talk(&self, port: u16, stdin: &[u8]) -> Vec<u8> {
        let (path, flags): (&PathBuf, &[&str]) = match self {
            Nc::OpenBsd(p) => (p, &["-N"]),
            Nc::Ncat(p) => (p, &[]),
            Nc::Traditional(p) => (p, &["-q", "1"]),
        };
        let out = assert_cmd::Command::new(path)
            .args(flags)
            .args(["127.0.0.1", &port.to_string()])
            .write_stdin(stdin.to_vec())
            .timeout(WAIT)
            .output()
            .expect("run nc");
        assert!(
            out.status.success(),
            "nc: {}; stderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

#[test]
fn printf_hi_into_nc_prints_2_colon_hi() {
    let Some(nc) = Nc::find("printf_hi_into_nc_prints_2_colon_hi") else {
        return;
    };
    for model in MODELS {
        let server = Server::start(&["--model", model, "--service", "echo", "--bind", "127.0.0.1", "0"]);
        assert_eq!(nc.talk(server.port(), b"hi\n"), b"2 : hi\n", "model {model}");
        // A terminal (or `nc -C`) sends CRLF: the CR is not part of the message.
        assert_eq!(nc.talk(server.port(), b"hi\r\n"), b"2 : hi\n", "model {model}");
        // Without a newline, end of input ends the message; the reply ends with NUL.
        assert_eq!(nc.talk(server.port(), b"hello"), b"5 : hello\0", "model {model}");
    }
}

#[test]
fn nc_gets_exactly_the_13_greeting_bytes() {
    let Some(nc) = Nc::find("nc_gets_exactly_the_13_greeting_bytes") else {
        return;
    };
    for model in MODELS {
        let server = Server::start(&["--model", model, "--bind", "127.0.0.1", "0"]);
        assert_eq!(nc.talk(server.port(), b""), b"Hello World!\0", "model {model}");
    }
}

#[test]
fn nc_udp_gets_the_echo_datagram() {
    let Some(nc) = Nc::find("nc_udp_gets_the_echo_datagram") else {
        return;
    };
    let Nc::OpenBsd(path) = nc else {
        hello_tests::skip("nc_udp_gets_the_echo_datagram: needs OpenBSD netcat's -W");
        return;
    };
    let server = Server::start(&["--udp", "--service", "echo", "--bind", "127.0.0.1", "0"]);
    // -W 1: quit after one datagram received.
    let out = assert_cmd::Command::new(path)
        .args(["-u", "-W", "1", "127.0.0.1", &server.port().to_string()])
        .write_stdin("hello\n")
        .timeout(WAIT)
        .output()
        .expect("run nc -u");
    assert_eq!(out.stdout, b"5 : hello\0");
}

#[test]
fn hello_client_against_an_nc_listener() {
    let Some(nc) = Nc::find("hello_client_against_an_nc_listener") else {
        return;
    };
    let Nc::OpenBsd(path) = nc else {
        hello_tests::skip("hello_client_against_an_nc_listener: needs OpenBSD netcat's -lv port report");
        return;
    };
    // `nc -lv 127.0.0.1 0` listens on a port of the kernel's choice and names it on
    // stderr ("Listening on localhost 40123"); -N half-closes once its stdin is sent.
    let mut nc = Command::new(path)
        .args(["-N", "-l", "-v", "127.0.0.1", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nc -l");
    let stderr = nc.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let port = rx.recv_timeout(WAIT).ok().and_then(|line| {
        line.contains("istening")
            .then(|| {
                line.rsplit(|c: char| !c.is_ascii_digit())
                    .find(|w| !w.is_empty())
                    .map(str::to_owned)
            })
            .flatten()
    });
    let Some(port) = port else {
        let _ = nc.kill();
        let _ = nc.wait();
        hello_tests::skip("hello_client_against_an_nc_listener: nc -lv did not name its port");
        return;
    };
    let mut stdin = nc.stdin.take().expect("piped stdin");
    stdin.write_all(b"Hello from nc\0").expect("feed nc");
    drop(stdin);
    let result = std::panic::catch_unwind(|| {
        client(&["-m", "hi", "127.0.0.1", &port])
            .assert()
            .success()
            .stdout("Message from server: Hello from nc\n");
    });
    // nc ends once the client has closed; bounded, then killed.
    let until = Instant::now() + WAIT;
    while nc.try_wait().ok().flatten().is_none() && Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let _ = nc.kill();
    let out = nc.wait_with_output().expect("nc output");
    assert!(result.is_ok(), "hello-client against nc -l failed");
    // What the client sent: the message and its NUL, then end of stream.
    assert_eq!(out.stdout, b"hi\0");
}
