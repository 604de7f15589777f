//! Errors and exit codes (docs/contract.md#exit-codes-and-error-lines): usage errors exit 2
//! naming the argument; a failed socket call, a timeout or an early close exits 1 with
//! exactly one stderr line naming the call, the address and the reason; no input makes
//! either program panic.

// Test code: a panic with a message is how it reports, helpers included.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hello_tests::{
    Server, WAIT, assert_one_line, bins, client, closed_tcp_port, fake_server, ipv6_loopback, server_cmd,
};

/// Runs a command expected to fail, returning (exit code, stdout, stderr).
fn failing(mut cmd: assert_cmd::Command) -> (i32, String, String) {
    let out = cmd.output().expect("run");
    let code = out.status.code().unwrap_or(-1);
    (
        code,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn server_usage_errors_exit_2_and_name_the_argument() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "<PORT>"),
        (&["abc"], "<PORT>"),
        (&["70000"], "<PORT>"),
        (&["65536"], "<PORT>"),
        (&["-1"], "<PORT>"),
        (&[""], "<PORT>"),
        (&["0", "1"], "'1'"),
        (&["--idle-timeout", "0", "0"], "--idle-timeout"),
        (&["--idle-timeout", "abc", "0"], "--idle-timeout"),
        (&["--model", "forking", "0"], "--model"),
        (&["--service", "chargen", "0"], "--service"),
        (&["--bind", "not-an-address", "0"], "--bind"),
        (&["--max-conns", "0", "0"], "--max-conns"),
        (&["--request-timeout", "0", "0"], "--request-timeout"),
        (&["--max-buffered", "-1", "0"], "--max-buffered"),
        (&["--no-such-option", "0"], "--no-such-option"),
        // The fork model's process must stay single-threaded; these need a thread.
        (&["--model", "fork", "--agent-port", "0", "0"], "--agent-port"),
        (&["--model", "fork", "--drain-delay", "1s", "0"], "--drain-delay"),
        // Each worker is an event loop with a listening socket of its own.
        (&["--workers", "0", "0"], "--workers"),
        (&["--workers", "1025", "0"], "--workers"),
        (&["--model", "threads", "--workers", "2", "0"], "--workers"),
        // The agent is a balancer's check of a TCP server.
        (&["--udp", "--agent-port", "0", "0"], "--agent-port"),
        // --proxy-from: addresses or CIDR blocks, and only with --proxy-protocol.
        (
            &["--proxy-protocol", "--proxy-from", "10.0.0.0/33", "0"],
            "--proxy-from",
        ),
        (
            &["--proxy-protocol", "--proxy-from", "::1/129", "0"],
            "--proxy-from",
        ),
        (
            &["--proxy-protocol", "--proxy-from", "localhost", "0"],
            "--proxy-from",
        ),
        (
            &["--proxy-protocol", "--proxy-from", "10.0.0.1,", "0"],
            "--proxy-from",
        ),
        (
            &["--proxy-protocol", "--proxy-from", "10.0.0.1/", "0"],
            "--proxy-from",
        ),
        (
            &["--proxy-protocol", "--proxy-from", "10.0.0.1/08", "0"],
            "--proxy-from",
        ),
        (&["--proxy-from", "127.0.0.1", "0"], "--proxy-from"),
        (&["--trace-format", "json", "0"], "--trace"),
        (&["--trace", "--trace-format", "xml", "0"], "--trace-format"),
        // Ports are ASCII digits: no sign, no spaces.
        (&[" 80"], "<PORT>"),
        (&["80 "], "<PORT>"),
        (&["+80"], "<PORT>"),
        (&["-0"], "<PORT>"),
        (&["0x50"], "<PORT>"),
    ];
    for &(args, names) in cases {
        let (code, stdout, stderr) = failing(server_cmd(args));
        assert_eq!(code, 2, "hello-server {args:?}: stderr {stderr}");
        assert!(
            stderr.contains(names),
            "hello-server {args:?}: {stderr:?} does not name {names}"
        );
        assert_eq!(stdout, "", "hello-server {args:?}");
    }
}

#[test]
fn client_usage_errors_exit_2_and_name_the_argument() {
    let cases: &[(&[&str], &str)] = &[
        (&[], "<HOST>"),
        (&["127.0.0.1"], "<PORT>"),
        (&["127.0.0.1", "abc"], "<PORT>"),
        (&["127.0.0.1", "70000"], "<PORT>"),
        (&["127.0.0.1", "-1"], "<PORT>"),
        (&["127.0.0.1", "0"], "<PORT>"),
        (&["127.0.0.1", "9190", "extra"], "'extra'"),
        (&["", "9190"], "<HOST>"),
        (&["--timeout", "0", "127.0.0.1", "9190"], "--timeout"),
        (&["--trace-format", "json", "127.0.0.1", "9190"], "--trace"),
        (
            &["--trace", "--trace-format", "xml", "127.0.0.1", "9190"],
            "--trace-format",
        ),
        (&["--timeout", "abc", "127.0.0.1", "9190"], "--timeout"),
        (&["--timeout=-1s", "127.0.0.1", "9190"], "--timeout"),
        (&["--max-reply", "0", "127.0.0.1", "9190"], "--max-reply"),
        (&["127.0.0.1", " 80"], "<PORT>"),
        (&["127.0.0.1", "+80"], "<PORT>"),
        (&["127.0.0.1", "-0"], "<PORT>"),
        (
            &["-z", "127.0.0.1:9190", "--"],
            "`--` must be followed by the command to run",
        ),
    ];
    for &(args, names) in cases {
        let (code, stdout, stderr) = failing(client(args));
        assert_eq!(code, 2, "hello-client {args:?}: stderr {stderr}");
        assert!(
            stderr.contains(names),
            "hello-client {args:?}: {stderr:?} does not name {names}"
        );
        assert_eq!(stdout, "", "hello-client {args:?}");
    }
}

#[test]
fn port_in_use_is_one_bind_error_line_and_exit_1() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("local_addr").port().to_string();
    for model in hello_tests::MODELS {
        let (code, stdout, stderr) = failing(server_cmd(&["--model", model, "--bind", "127.0.0.1", &port]));
        assert_eq!(code, 1, "stderr: {stderr}");
        assert_eq!(stdout, "", "no start-up line without a socket");
        assert_eq!(
            stderr,
            format!("hello-server: bind() error: 127.0.0.1:{port}: Address already in use (os error 98)\n")
        );
    }
}

#[test]
fn udp_port_in_use_is_one_bind_error_line_and_exit_1() {
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("local_addr").port().to_string();
    let (code, stdout, stderr) = failing(server_cmd(&["--udp", "--bind", "127.0.0.1", &port]));
    assert_eq!(code, 1, "stderr: {stderr}");
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!("hello-server: bind() error: 127.0.0.1:{port}: Address already in use (os error 98)\n")
    );
}

#[test]
fn binding_an_address_of_no_interface_is_one_line_and_exit_1() {
    // 192.0.2.1 (TEST-NET-1) is on no interface: bind() fails, and nothing is sent.
    let (code, _, stderr) = failing(server_cmd(&["--bind", "192.0.2.1", "0"]));
    assert_eq!(code, 1, "stderr: {stderr}");
    assert_eq!(
        stderr,
        "hello-server: bind() error: 192.0.2.1:0: Cannot assign requested address (os error 99)\n"
    );
}

#[test]
fn connection_refused_is_one_connect_error_line_and_exit_1() {
    let port = closed_tcp_port().to_string();
    let (code, stdout, stderr) = failing(client(&["127.0.0.1", &port]));
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!("hello-client: connect() error: 127.0.0.1:{port}: Connection refused (os error 111)\n")
    );
}

#[test]
fn connection_refused_over_ipv6_names_the_bracketed_address() {
    if !ipv6_loopback("connection_refused_over_ipv6") {
        return;
    }
    let l = TcpListener::bind("[::1]:0").expect("bind [::1]:0");
    let port = l.local_addr().expect("local_addr").port().to_string();
    drop(l);
    let (code, _, stderr) = failing(client(&["::1", &port]));
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        format!("hello-client: connect() error: [::1]:{port}: Connection refused (os error 111)\n")
    );
}

#[test]
fn a_server_that_never_writes_is_a_read_timeout() {
    // Connections complete in the backlog without accept(): the client is connected, and
    // nothing ever arrives.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("local_addr").port().to_string();
    let t0 = Instant::now();
    let (code, stdout, stderr) = failing(client(&["--timeout", "300ms", "127.0.0.1", &port]));
    let took = t0.elapsed();
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!("hello-client: read() error: 127.0.0.1:{port}: timed out after 300ms\n")
    );
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "--timeout 300ms took {took:?}"
    );
    // The timeout bounds the whole read, not each read() call: a server that drips a
    // byte at a time cannot keep the client forever.
    let (addr, peer) = fake_server(|mut s| {
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until && s.write_all(b".").is_ok() {
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let t0 = Instant::now();
    let (code, _, stderr) = failing(client(&[
        "--timeout",
        "300ms",
        "127.0.0.1",
        &addr.port().to_string(),
    ]));
    let took = t0.elapsed();
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        format!("hello-client: read() error: {addr}: timed out after 300ms\n")
    );
    assert!(
        took < Duration::from_secs(2),
        "a dripping server kept the client {took:?}"
    );
    assert!(peer.join().expect("fake server"));
}

#[test]
fn a_server_that_closes_at_once_is_closed_before_any_data() {
    let (addr, peer) = fake_server(drop);
    let (code, stdout, stderr) = failing(client(&["127.0.0.1", &addr.port().to_string()]));
    assert!(peer.join().expect("fake server"));
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!("hello-client: read() error: {addr}: connection closed before any data\n")
    );
}

#[test]
fn a_reply_over_max_reply_is_an_error_and_at_max_reply_is_not() {
    let (addr, peer) = fake_server(|mut s| {
        let _ = s.write_all(&[b'a'; 200]);
    });
    let (code, stdout, stderr) = failing(client(&[
        "--max-reply",
        "100",
        "127.0.0.1",
        &addr.port().to_string(),
    ]));
    assert!(peer.join().expect("fake server"));
    assert_eq!(code, 1);
    assert_eq!(stdout, "");
    assert_eq!(
        stderr,
        format!("hello-client: read() error: {addr}: reply longer than 100 bytes\n")
    );

    let (addr, peer) = fake_server(|mut s| {
        let _ = s.write_all(&[b'a'; 100]);
    });
    client(&["--max-reply", "100", "127.0.0.1", &addr.port().to_string()])
        .assert()
        .success()
        .stdout(format!("Message from server: {}\n", "a".repeat(100)));
    assert!(peer.join().expect("fake server"));
}

#[test]
fn a_default_max_reply_of_1_mib_is_enforced() {
    let (addr, peer) = fake_server(|mut s| {
        let _ = s.write_all(&vec![b'b'; (1 << 20) + 1]);
    });
    let (code, _, stderr) = failing(client(&["127.0.0.1", &addr.port().to_string()]));
    assert!(peer.join().expect("fake server"));
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        format!("hello-client: read() error: {addr}: reply longer than 1048576 bytes\n")
    );
}

#[test]
fn invalid_utf8_and_control_bytes_print_one_safe_line() {
    let (addr, peer) = fake_server(|mut s| {
        let _ = s.write_all(b"\xff\xfe\x1b[31mred\r\nline two\x07\x08\0tail\0\r\n");
    });
    let out = client(&["127.0.0.1", &addr.port().to_string()])
        .output()
        .expect("run");
    assert!(peer.join().expect("fake server"));
    let stdout = String::from_utf8(out.stdout).expect("stdout is UTF-8");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert_eq!(stderr, "");
    assert_one_line("stdout", &stdout);
    assert!(
        stdout.starts_with("Message from server: \u{fffd}\u{fffd}"),
        "{stdout:?}"
    );
    assert!(stdout.contains("red") && stdout.contains("line two") && stdout.contains("tail"));
    let body = &stdout[..stdout.len() - 1];
    assert!(
        !body.chars().any(|c| c.is_control() && c != '\t'),
        "a control character reached the terminal: {stdout:?}"
    );
}

/// A fake server that sends `bytes`, then resets the connection instead of closing it.
fn resetting_server(bytes: &'static [u8]) -> (std::net::SocketAddr, std::thread::JoinHandle<bool>) {
    fake_server(move |s| {
        let mut s = s;
        let _ = s.write_all(bytes);
        // Reset instead of close: SO_LINGER with a zero timeout.
        let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
        // Let the client see the bytes before the reset (bounded by its read).
        let mut buf = [0u8; 1];
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let _ = s.read(&mut buf);
    })
}

#[test]
fn a_reset_in_mid_reply_is_one_read_error_line() {
    let (addr, peer) = resetting_server(b"Hello Wo");
    let (code, stdout, stderr) = failing(client(&["127.0.0.1", &addr.port().to_string()]));
    assert!(peer.join().expect("fake server"));
    assert_eq!(code, 1, "a reset reply is not a success: {stdout}");
    assert_eq!(
        stderr,
        format!("hello-client: read() error: {addr}: Connection reset by peer (os error 104)\n")
    );
}

#[test]
fn a_reset_after_a_whole_looking_reply_is_still_an_error() {
    // The bytes end with the NUL a whole greeting ends with, but a reset is not an end of
    // stream: the client cannot know nothing was lost.
    let (addr, peer) = resetting_server(b"Hello World!\0");
    let (code, stdout, stderr) = failing(client(&["127.0.0.1", &addr.port().to_string()]));
    assert!(peer.join().expect("fake server"));
    assert_eq!(code, 1, "{stdout}");
    assert_one_line("the error", &stderr);
    assert!(stderr.contains("Connection reset by peer"), "{stderr}");
}

#[test]
fn an_echo_reply_shorter_than_its_length_is_an_error() {
    // A server that gave up in the middle of a reply and ended it with a clean FIN.
    let (addr, peer) = fake_server(|s| {
        let mut s = s;
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf);
        let _ = s.write_all(b"4000000 : yyy");
    });
    let (code, stdout, stderr) = failing(client(&["-m", "y", "127.0.0.1", &addr.port().to_string()]));
    assert!(peer.join().expect("fake server"));
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        stderr,
        format!("hello-client: read() error: {addr}: reply cut short: 4000000 bytes announced, 3 received\n")
    );
}

#[test]
fn a_full_stdout_is_exit_1_with_one_line() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        hello_tests::skip("a_full_stdout_is_exit_1_with_one_line: no /dev/full");
        return;
    };
    let srv = Server::start(&["--bind", "127.0.0.1", "0"]);
    let out = Command::new(&bins().client)
        .args(["127.0.0.1", &srv.port().to_string()])
        .stdin(Stdio::null())
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .expect("run hello-client");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr,
        "hello-client: write() error: stdout: No space left on device (os error 28)\n"
    );
}

#[test]
fn a_closed_stdout_does_not_make_the_client_panic() {
    // The client's stdout is a pipe whose read end is gone before it prints (as with
    // `hello-client ... | head -c0`). The fake server sends only once the pipe is closed.
    let (go, wait) = mpsc::channel::<()>();
    let (addr, peer) = fake_server(move |mut s| {
        let _ = wait.recv_timeout(WAIT);
        let _ = s.write_all(b"Hello World!\0");
    });
    let mut child = Command::new(&bins().client)
        .args(["127.0.0.1", &addr.port().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hello-client");
    drop(child.stdout.take());
    go.send(()).expect("fake server waiting");
    let Some(status) = hello_tests::wait_exit(&mut child, WAIT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("hello-client did not exit with a closed stdout");
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert!(peer.join().expect("fake server"));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.success(), "{status}; stderr: {stderr}");
}

#[test]
fn a_closed_stdout_does_not_stop_the_server() {
    // The start-up line is written to a pipe nobody reads any more: the server goes on.
    let mut child = Command::new(&bins().server)
        .args(["--bind", "127.0.0.1", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hello-server");
    let mut out = child.stdout.take().expect("piped stdout");
    // Read the start-up line (on a thread, so that the wait for it is bounded), then
    // close the pipe.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while line.last() != Some(&b'\n') && line.len() < 200 {
            match out.read(&mut byte) {
                Ok(1) => line.push(byte[0]),
                _ => break,
            }
        }
        let _ = tx.send((line, out));
    });
    let Ok((line, out)) = rx.recv_timeout(WAIT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("no start-up line within {WAIT:?}");
    };
    drop(out);
    let line = String::from_utf8_lossy(&line);
    let port =
        hello_proto::startup::Line::parse(&line).map_or(String::new(), |l| l.addr().port().to_string());
    let result = std::panic::catch_unwind(|| {
        client(&["127.0.0.1", &port])
            .assert()
            .success()
            .stdout("Message from server: Hello World!\n");
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(result.is_ok(), "start-up line {line:?}");
}

#[test]
fn runtime_errors_of_the_server_are_one_line_per_client() {
    // An idle echo client and a reset client each cost one stderr line, never a panic.
    let server = Server::start(&[
        "--service",
        "echo",
        "--idle-timeout",
        "200ms",
        "--bind",
        "127.0.0.1",
        "0",
    ]);
    let idle = hello_tests::connect(server.loopback());
    assert!(
        server.wait_stderr("timed out", WAIT),
        "stderr: {}",
        server.stderr()
    );
    drop(idle);
    let stderr = server.stderr();
    assert_one_line("the server's stderr", &stderr);
    assert!(
        stderr.starts_with("hello-server: read() error: 127.0.0.1:")
            && stderr.ends_with(": timed out after 200ms\n"),
        "{stderr:?}"
    );
    assert!(!stderr.contains("panicked"));
}

/// `hello-server --model uring` with `io_uring_setup()` refused by a seccomp filter, as a
/// container runtime installs one: the filter makes the call fail with `errno` and lets
/// every other call through.
fn uring_server_refused(errno: i32) -> (i32, String, String) {
    let mut cmd = Command::new(&bins().server);
    cmd.args(["--model", "uring", "--bind", "127.0.0.1", "0"])
        .stdin(Stdio::null());
    let nr = u32::try_from(libc::SYS_io_uring_setup).expect("a syscall number");
    let ret_errno = libc::SECCOMP_RET_ERRNO | u32::try_from(errno).expect("an errno");
    // SAFETY: between fork and exec only prctl(2) and seccomp(2), which are
    // async-signal-safe, run; the filter program lives on this closure's stack for the
    // whole call, and the kernel copies it.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut cmd, move || {
            let stmt = |code: u32, k: u32| libc::sock_filter {
                code: code as u16,
                jt: 0,
                jf: 0,
                k,
            };
            let filter = [
                // the system call's number (seccomp_data.nr, at offset 0)
                stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
                libc::sock_filter {
                    code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 1,
                    k: nr,
                },
                stmt(libc::BPF_RET | libc::BPF_K, ret_errno),
                stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
            ];
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut c = assert_cmd::Command::from_std(cmd);
    c.timeout(WAIT);
    failing(c)
}

#[test]
fn a_kernel_that_refuses_io_uring_is_one_io_uring_setup_error_line_and_exit_1() {
    // EPERM: what a container's seccomp filter (or kernel.io_uring_disabled) answers.
    let (code, stdout, stderr) = uring_server_refused(libc::EPERM);
    assert_eq!(code, 1, "stderr: {stderr}");
    assert_eq!(stdout, "", "no start-up line: the ring is set up before it");
    assert_one_line("hello-server --model uring under seccomp", &stderr);
    assert!(
        stderr.starts_with("hello-server: io_uring_setup() error: 127.0.0.1:")
            && stderr.ends_with("Operation not permitted (os error 1)\n"),
        "{stderr}"
    );
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled").unwrap_or_default();
    if disabled.trim() == "0" {
        assert!(stderr.contains("a seccomp filter"), "{stderr}");
    }
    // ENOSYS: a kernel without io_uring.
    let (code, stdout, stderr) = uring_server_refused(libc::ENOSYS);
    assert_eq!((code, stdout.as_str()), (1, ""), "stderr: {stderr}");
    // The address is the bound one, with the port the kernel chose.
    let (head, rest) = stderr.split_once(": 127.0.0.1:").unwrap_or_default();
    let (port, reason) = rest.split_once(": ").unwrap_or_default();
    assert_eq!(head, "hello-server: io_uring_setup() error", "{stderr}");
    assert!(port.parse::<u16>().is_ok_and(|p| p > 0), "{stderr}");
    assert_eq!(
        reason,
        "this kernel has no io_uring (it needs Linux 5.19 or later, built with \
         CONFIG_IO_URING): Function not implemented (os error 38)\n"
    );
}

#[test]
fn the_fork_model_without_proc_is_one_line_before_the_startup_line() {
    // The fork model checks that its process has one thread (fork() copies only the
    // calling thread) in /proc/self/status. Without /proc — an empty tmpfs over it, in a
    // mount namespace of the server's own — it must say so before claiming to listen.
    let name = "the_fork_model_without_proc_is_one_line_before_the_startup_line";
    let hide_proc = "mount -t tmpfs none /proc && exec \"$0\" \"$@\"";
    let probe = std::process::Command::new("unshare")
        .args([
            "-m",
            "sh",
            "-c",
            hide_proc,
            "test",
            "!",
            "-e",
            "/proc/self/status",
        ])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        hello_tests::skip(&format!(
            "{name}: cannot unshare a mount namespace and hide /proc (needs unshare and root)"
        ));
        return;
    }
    let server = bins().server.to_str().expect("a UTF-8 path").to_string();
    let mut cmd = assert_cmd::Command::new("unshare");
    cmd.args([
        "-m",
        "sh",
        "-c",
        hide_proc,
        &server,
        "--model",
        "fork",
        "--bind",
        "127.0.0.1",
        "0",
    ])
    .timeout(WAIT);
    let (code, stdout, stderr) = failing(cmd);
    assert_eq!(code, 1, "stdout {stdout:?}, stderr {stderr:?}");
    assert_eq!(stdout, "", "no start-up line: {stderr}");
    assert_one_line("the error", &stderr);
    assert!(stderr.contains("/proc"), "{stderr}");
}
