//! The end-to-end tests' library: builds the real `hello-server` and `hello-client` once,
//! starts servers on port 0 through `hello-harness` (which reads the real port from their
//! start-up line and stops them), compiles the textbook-style C peers in `tests/c/`, and
//! lists the models every test runs against (`MODELS`, `Models::each_at_once`).

// This library exists only to fail tests: a panic with a message is how it reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cluster;
pub mod web;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use hello_harness::{Listening, Pipe, Program};
use hello_proto::startup;
use hello_server::Model;

/// Bound on every wait in the tests: a broken server fails a test, it never hangs CI
/// (the harness's bound).
pub const WAIT: Duration = hello_harness::WAIT;

/// Paths of the programs under test.
#[derive(Debug)]
pub struct Bins {
    /// `hello-server`.
    pub server: PathBuf,
    /// `hello-client`.
    pub client: PathBuf,
    /// `hello-load`, the load generator (a binary of the client package).
    pub load: PathBuf,
}

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Builds the binaries once per test process (`$CARGO build`, same profile as the tests)
/// and returns their paths. assert_cmd's `cargo_bin` only sees this package's own
/// binaries, hence the build.
pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        // target/<profile>/deps/<test binary>
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in target/<profile>/deps")
            .to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace_root()).args([
            "build",
            "--quiet",
            "-p",
            "hello-server",
            "-p",
            "hello-client",
        ]);
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(status.success(), "cargo build of the binaries failed: {status}");
        let bins = Bins {
            server: profile_dir.join("hello-server"),
            client: profile_dir.join("hello-client"),
            load: profile_dir.join("hello-load"),
        };
        for bin in [&bins.server, &bins.client, &bins.load] {
            assert!(bin.exists(), "{} missing", bin.display());
        }
        bins
    })
}

/// A running `hello-server` (or another program with its start-up line), started and
/// stopped by `hello-harness`; killed when dropped.
pub struct Server {
    program: Program,
    /// The address from the start-up line.
    pub addr: SocketAddr,
    /// The start-up line itself.
    pub line: String,
}

impl Server {
    /// Starts `hello-server ARGS` (include the port, normally `0`) and waits for its
    /// start-up line.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with(args, |_| {})
    }

    /// Like [`Server::start`], with a hook to adjust the command (environment, limits).
    pub fn start_with(args: &[&str], adjust: impl FnOnce(&mut Command)) -> Server {
        let mut cmd = program_cmd(&bins().server, &server_args(args));
        adjust(&mut cmd);
        Server::spawn(cmd, &format!("hello-server {args:?}"))
    }

    /// Starts another program that prints a `listening on ADDR` start-up line (a C peer
    /// from [`c_program`]), with the same bounds and clean-up as `hello-server`.
    pub fn start_program(program: &Path, args: &[&str]) -> Server {
        Server::start_program_with(program, args, |_| {})
    }

    /// [`Server::start_program`] with a hook to adjust the command (descriptors, limits).
    pub fn start_program_with(program: &Path, args: &[&str], adjust: impl FnOnce(&mut Command)) -> Server {
        let mut cmd = program_cmd(program, args);
        adjust(&mut cmd);
        Server::spawn(cmd, &format!("{} {args:?}", program.display()))
    }

    /// `hello-server ARGS` started by socket activation with `listener` (a listening
    /// socket of this process) as descriptor 3: `LISTEN_PID` is the server's own pid (the
    /// shell's, which execs it).
    pub fn activated(listener: &impl AsRawFd, args: &[&str]) -> Server {
        let server = bins().server.to_str().expect("a UTF-8 path").to_string();
        let mut sh_args = vec![
            "-c",
            "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"",
            server.as_str(),
        ];
        sh_args.extend(server_args(args));
        let fd = listener.as_raw_fd();
        Server::start_program_with(Path::new("/bin/sh"), &sh_args, |cmd| {
            // SAFETY: between fork and exec only dup2(2) and fcntl(2), which are
            // async-signal-safe, run.
            unsafe {
                cmd.pre_exec(move || {
                    // dup2 onto itself keeps close-on-exec: clear it then.
                    let rc = if fd == 3 {
                        libc::fcntl(3, libc::F_SETFD, 0)
                    } else {
                        libc::dup2(fd, 3)
                    };
                    if rc < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        })
    }

    /// Starts a program whose start-up line is on its **stderr** (`hello-server
    /// --textbook`, whose stdout is the textbook's: empty), after the trace of the calls
    /// before it if any, with the same bounds and clean-up; the line stays in
    /// [`Server::stderr`] too.
    pub fn start_program_announcing_on_stderr(program: &Path, args: &[&str]) -> Server {
        Server::spawn_announcing(
            program_cmd(program, args),
            &format!("{} {args:?}", program.display()),
            Pipe::Stderr,
        )
    }

    /// Spawns `cmd` (stdout and stderr piped) and waits for its start-up line.
    fn spawn(cmd: Command, what: &str) -> Server {
        Server::spawn_announcing(cmd, what, Pipe::Stdout)
    }

    /// [`Server::spawn`], the start-up line read from `on`.
    fn spawn_announcing(cmd: Command, what: &str, on: Pipe) -> Server {
        let program = Program::spawn(cmd).unwrap_or_else(|e| panic!("spawn {what}: {e:#}"));
        let Listening { addr, line } = program.listening(on, WAIT).unwrap_or_else(|e| panic!("{e:#}"));
        Server { program, addr, line }
    }

    /// The port from the start-up line.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:port` (or `[::1]:port` for a server bound to an IPv6 address).
    pub fn loopback(&self) -> SocketAddr {
        let ip = if self.addr.is_ipv6() {
            "::1".parse().unwrap()
        } else {
            "127.0.0.1".parse().unwrap()
        };
        SocketAddr::new(ip, self.port())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.program.pid()
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.program.stderr()
    }

    /// Lines printed on stdout after the start-up line (there should be none).
    pub fn more_stdout(&self) -> Vec<String> {
        self.program.lines_so_far(Pipe::Stdout)
    }

    /// The next line on stdout after the start-up line (the agent's, with `--agent-port`),
    /// waiting at most `within`.
    pub fn next_stdout_line(&self, within: Duration) -> Option<String> {
        self.program.next_line(Pipe::Stdout, within)
    }

    /// The address of the next start-up line on stdout after `listening on ADDR`:
    /// `agent on ADDR` (`--agent-port`) or `metrics on ADDR` (`--metrics`), as `kind`
    /// says (`startup::Line::Agent`); waits at most [`WAIT`].
    pub fn next_start_up_addr(&self, kind: fn(SocketAddr) -> startup::Line) -> SocketAddr {
        let line = self
            .next_stdout_line(WAIT)
            .unwrap_or_else(|| panic!("no second start-up line within {WAIT:?}"));
        match startup::Line::parse(&line) {
            Some(got) if got == kind(got.addr()) => got.addr(),
            _ => panic!("unexpected second start-up line {line:?}"),
        }
    }

    /// Every line printed on stdout after the start-up line, once the server has closed
    /// its stdout (call after it exited); waits at most `within`.
    pub fn stdout_to_end(&self, within: Duration) -> Vec<String> {
        self.program
            .lines_to_end(Pipe::Stdout, within)
            .unwrap_or_else(|| panic!("stdout still open after {within:?}"))
    }

    /// Waits (at most `within`) until the server's stderr contains `needle`.
    pub fn wait_stderr(&self, needle: &str, within: Duration) -> bool {
        self.program.wait_for(Pipe::Stderr, needle, within)
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the server.
    pub fn signal(&self, signal: i32) {
        self.program.signal(signal).unwrap_or_else(|e| panic!("{e:#}"));
    }

    /// Sends `signal` to the server and to its child processes (as a terminal's hang-up
    /// reaches its process group: the fork model's clients are served by children). A
    /// child that has just ended is passed over.
    pub fn signal_with_children(&self, signal: i32) {
        self.signal(signal);
        for child in child_processes(self.pid()) {
            let pid = i32::try_from(child).expect("a pid fits an i32");
            let _ = hello_proto::sys::process::signal_child(pid, signal);
        }
    }

    /// Waits for the server to exit on its own (bounded by `within`), and for what it
    /// wrote to stderr to be read.
    pub fn wait(&mut self, within: Duration) -> Option<ExitStatus> {
        self.program.wait(within)
    }
}

/// `program ARGS` with stdin closed and stdout and stderr piped, as a server is started.
fn program_cmd(program: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Waits at most `within` for `child` to exit; `None` if it is still running.
pub use hello_harness::wait_exit;

/// A `hello-client` command with the given arguments, killed after [`WAIT`].
pub fn client(args: &[&str]) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(&bins().client);
    c.args(args).timeout(WAIT);
    c
}

/// A `hello-load` command with the given arguments, killed after [`WAIT`].
pub fn load(args: &[&str]) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(&bins().load);
    c.args(args).timeout(WAIT);
    c
}

/// A `hello-server` command (for runs that end by themselves: usage errors, `--once`).
pub fn server_cmd(args: &[&str]) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(&bins().server);
    c.args(server_args(args)).timeout(WAIT);
    c
}

/// `hello-server`'s arguments with the value of `--model` spread out, so that an entry of
/// [`MODELS`] can carry options of its own (`epoll --workers 2`).
pub fn server_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut model_next = false;
    for &a in args {
        if model_next {
            out.extend(a.split_whitespace());
        } else {
            out.push(a);
        }
        model_next = a == "--model";
    }
    out
}

/// Compiles `tests/c/<name>.c` with the system C compiler into a temporary folder and
/// returns the executable, or `None` (after a loud SKIP line) when there is no compiler.
pub fn c_program(name: &str) -> Option<PathBuf> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let src = workspace_root().join("tests").join("c").join(format!("{name}.c"));
    let out_dir = std::env::temp_dir().join(format!("hello-sockets-c-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).expect("create temp dir");
    let exe = out_dir.join(name);
    if exe.exists() {
        return Some(exe);
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    match Command::new(&cc)
        .args(["-O2", "-Wall", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
    {
        Ok(out) if out.status.success() => Some(exe),
        Ok(out) => panic!(
            "{cc} failed on {}: {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            skip(&format!(
                "no C compiler ({cc}: {e}); the test against the C peer {name} did not run"
            ));
            None
        }
    }
}

/// Reports a skipped check loudly: straight to the process's stderr, which libtest does
/// not capture (it captures only the `print!` family), so the line shows in CI logs even
/// though the test passes.
pub fn skip(why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "SKIP: {why}");
}

/// Runs a command to completion with a bound, returning (status, stdout, stderr).
pub fn run_bounded(cmd: &mut Command) -> (ExitStatus, Vec<u8>, Vec<u8>) {
    let mut c = assert_cmd::Command::from_std(std::mem::replace(cmd, Command::new("true")));
    c.timeout(WAIT);
    let out = c.output().expect("run command");
    (out.status, out.stdout, out.stderr)
}

/// Waits for a spawned `child` (stdout and stderr piped) to exit, at most [`WAIT`]
/// (killed after that), and returns its output.
pub fn run_bounded_child(mut child: Child) -> std::process::Output {
    // The pipes are read to their end on threads, so that a chatty child cannot block on
    // them ("drain" is only the drain delay: ARCHITECTURE.md's glossary).
    let read_to_end = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut v = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut v);
            }
            v
        })
    };
    let out = read_to_end(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = read_to_end(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let status = match wait_exit(&mut child, WAIT) {
        Some(s) => s,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child did not exit within {WAIT:?}");
        }
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Every server model (`hello_server::Model`, in the textbook's order), and the epoll
/// model once more with two workers ([`EPOLL_WORKERS`]: its connections spread over two
/// event loops, a path of its own): each end-to-end check runs against all of them (the
/// io_uring model only where the kernel allows it: see [`Models`]).
pub const MODELS: Models = Models(|_| true);

/// The epoll model with two workers, as a [`MODELS`] entry (see [`server_args`]).
pub const EPOLL_WORKERS: &str = "epoll --workers 2";

/// The io_uring model, as a [`MODELS`] entry.
pub const URING: &str = "uring";

/// The models that serve clients at once (all but the iterative one).
pub const CONCURRENT_MODELS: Models = Models(|m| m != Model::Iterative);

/// The models whose clients share one process's memory, so that `--max-buffered` bounds
/// them all together (a fork model child has its own).
pub const ONE_PROCESS_MODELS: Models = Models(|m| !matches!(m, Model::Iterative | Model::Fork));

/// A list of models to run a check against (`for model in MODELS`): the entries of
/// [`MODELS`] whose model the function keeps, each as the value of `--model`. The
/// io_uring model is left out, with a loud SKIP line, where the kernel refuses io_uring
/// (see [`uring_refused`]).
#[derive(Debug, Clone, Copy)]
pub struct Models(pub fn(Model) -> bool);

/// Every entry of [`MODELS`]: its model, and what `--model` is given for it.
fn model_entries() -> &'static [(Model, &'static str)] {
    static ENTRIES: OnceLock<Vec<(Model, &'static str)>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        let mut entries: Vec<(Model, &'static str)> = Model::in_textbook_order()
            .into_iter()
            // Made once per test process: the names live as long as it.
            .map(|m| (m, &*Box::leak(m.to_string().into_boxed_str())))
            .collect();
        entries.push((Model::Epoll, EPOLL_WORKERS));
        entries
    })
}

impl IntoIterator for Models {
    type Item = &'static str;
    type IntoIter = std::vec::IntoIter<&'static str>;

    fn into_iter(self) -> Self::IntoIter {
        let mut runnable = Vec::new();
        for &(kind, model) in model_entries().iter().filter(|(m, _)| (self.0)(*m)) {
            if kind == Model::Uring {
                if let Some(why) = uring_refused() {
                    skip(&format!("uring: io_uring_setup failed: {why}"));
                    continue;
                }
            }
            runnable.push(model);
        }
        runnable.into_iter()
    }
}

impl Models {
    /// Runs `check` for each model on a thread of its own, and once every one has ended,
    /// fails with the message of each model that failed. For the checks that mostly wait
    /// (a stop's 2 s grace, a stall, a flood's seconds), so that the models' waits overlap
    /// instead of adding up.
    pub fn each_at_once(self, check: impl Fn(&'static str) + Sync) {
        let check = &check;
        let failed: Vec<String> = thread::scope(|scope| {
            let runs: Vec<_> = self
                .into_iter()
                .map(|model| (model, scope.spawn(move || check(model))))
                .collect();
            runs.into_iter()
                .filter_map(|(model, run)| {
                    let panic = run.join().err()?;
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_else(|| "a panic".into());
                    Some(format!("{model}: {message}"))
                })
                .collect()
        });
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }
}

/// Why this kernel refuses the io_uring model, found once by starting `hello-server
/// --model uring`: `None` when it serves (it prints its start-up line), else its error
/// line (`hello-server: io_uring_setup() error: …`).
pub fn uring_refused() -> Option<String> {
    static REFUSED: OnceLock<Option<String>> = OnceLock::new();
    REFUSED
        .get_or_init(|| {
            let mut cmd = Command::new(&bins().server);
            cmd.args(["--model", URING, "--bind", "127.0.0.1", "0"]);
            let program = Program::start(cmd).expect("spawn hello-server --model uring");
            if program.listening(Pipe::Stdout, WAIT).is_ok() {
                return None;
            }
            let out = program
                .finish(WAIT)
                .expect("hello-server --model uring exits when it cannot serve");
            let stderr = out.stderr.trim().to_string();
            assert!(
                stderr.contains("io_uring_setup() error"),
                "hello-server --model uring failed otherwise than io_uring_setup(): {stderr}"
            );
            Some(stderr)
        })
        .clone()
}

/// Polls `cond` every 5 ms until it holds or `within` passes; returns whether it held.
pub fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// A TCP connection to `addr` whose every read and write is bounded by [`WAIT`].
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, WAIT).unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.set_read_timeout(Some(WAIT)).expect("set_read_timeout");
    s.set_write_timeout(Some(WAIT)).expect("set_write_timeout");
    s
}

/// How many TCP segments this socket has received so far (`tcpi_segs_in` of
/// `getsockopt(TCP_INFO)`, Linux 4.2 and later), or `None` where the kernel does not say.
/// Read from the raw struct, because libc's `tcp_info` stops before this field; its
/// offset is fixed by the kernel's ABI (fields are only ever appended).
pub fn segments_received(s: &TcpStream) -> Option<u32> {
    use std::os::fd::AsRawFd;
    const SEGS_IN: usize = 140;
    let mut raw = [0u8; 256];
    let mut len = libc::socklen_t::try_from(raw.len()).ok()?;
    // SAFETY: `raw` is valid for writes of `len` bytes, and the kernel writes at most
    // `len` bytes and stores the length it wrote in `len`.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            raw.as_mut_ptr().cast(),
            &mut len,
        )
    };
    let len = usize::try_from(len).ok()?;
    if rc != 0 || len < SEGS_IN + 4 {
        return None;
    }
    let field: [u8; 4] = raw[SEGS_IN..SEGS_IN + 4].try_into().ok()?;
    Some(u32::from_ne_bytes(field))
}

/// Reads until end of stream: at most [`WAIT`] in all and 16 MiB.
pub fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    try_read_to_end(s).unwrap_or_else(|e| panic!("read: {e}"))
}

/// [`read_to_end`] that reports a failed read (a reset, a timeout) instead of panicking.
pub fn try_read_to_end(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let until = Instant::now() + WAIT;
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        s.set_read_timeout(Some(left))?;
        match s.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                assert!(got.len() <= 16 << 20, "more than 16 MiB from the peer");
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// One raw TCP exchange: connect, write `request` (nothing if empty), half-close if
/// `half_close`, and return every byte received until the server closed.
///
/// A server may answer and close before reading the request (the hello service does):
/// then the write or the half-close fails because the peer is gone, and the reply, which
/// is what the tests check byte for byte, is read all the same.
pub fn tcp_exchange(addr: SocketAddr, request: &[u8], half_close: bool) -> Vec<u8> {
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset, NotConnected};
    let mut s = connect(addr);
    let sent = if request.is_empty() {
        Ok(())
    } else {
        s.write_all(request)
    };
    let sent = sent.and_then(|()| {
        if half_close {
            s.shutdown(std::net::Shutdown::Write)
        } else {
            Ok(())
        }
    });
    if let Err(e) = sent {
        assert!(
            matches!(e.kind(), BrokenPipe | ConnectionReset | NotConnected),
            "sending the request: {e}"
        );
    }
    read_to_end(&mut s)
}

/// One raw UDP exchange: send `datagram` to `addr`, return the reply datagram.
pub fn udp_exchange(addr: SocketAddr, datagram: &[u8]) -> Vec<u8> {
    let local: SocketAddr = if addr.is_ipv6() { "[::1]:0" } else { "127.0.0.1:0" }
        .parse()
        .unwrap();
    let s = UdpSocket::bind(local).expect("bind a UDP socket");
    s.set_read_timeout(Some(WAIT)).expect("set_read_timeout");
    s.send_to(datagram, addr).expect("send_to");
    let mut buf = vec![0u8; 65536];
    let (n, from) = s
        .recv_from(&mut buf)
        .unwrap_or_else(|e| panic!("no reply from {addr} to a {}-byte datagram: {e}", datagram.len()));
    assert_eq!(from, addr, "reply from the wrong address");
    buf.truncate(n);
    buf
}

/// A TCP port on 127.0.0.1 with nothing listening: bound by the kernel's choice, then
/// closed again.
pub fn closed_tcp_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Raises this process's soft descriptor limit to its hard one; whether that allows `need`.
pub fn raise_own_nofile(need: u64) -> bool {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write one rlimit struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return false;
        }
        lim.rlim_cur = lim.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur >= need
    }
}

/// Open file descriptors of process `pid` (entries of `/proc/PID/fd`).
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/fd: {e}"))
        .count()
}

/// Whether `::1` can be bound here; prints a loud SKIP line for `test` when it cannot.
pub fn ipv6_loopback(test: &str) -> bool {
    match TcpListener::bind("[::1]:0") {
        Ok(_) => true,
        Err(e) => {
            skip(&format!("{test}: no IPv6 loopback (bind [::1]:0: {e})"));
            false
        }
    }
}

/// `program`'s path when it is on `PATH`.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Exactly one line, ending with a newline: how every runtime error must look.
pub fn assert_one_line(what: &str, text: &str) {
    assert!(
        text.ends_with('\n') && text.matches('\n').count() == 1,
        "{what} is not exactly one line: {text:?}"
    );
}

/// A stand-in server: listens on 127.0.0.1:0, accepts one client (waiting at most
/// [`WAIT`]) and hands it to `behave` on a thread. Returns the address to connect to and
/// the thread, which yields whether a client came.
pub fn fake_server(
    behave: impl FnOnce(TcpStream) + Send + 'static,
) -> (SocketAddr, thread::JoinHandle<bool>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = l.local_addr().expect("local_addr");
    l.set_nonblocking(true).expect("set_nonblocking");
    let t = thread::spawn(move || {
        let until = Instant::now() + WAIT;
        loop {
            match l.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false).expect("set_nonblocking");
                    s.set_read_timeout(Some(WAIT)).expect("set_read_timeout");
                    s.set_write_timeout(Some(WAIT)).expect("set_write_timeout");
                    behave(s);
                    return true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= until {
                        return false;
                    }
                    thread::sleep(Duration::from_millis(5));
                }
                Err(e) => panic!("accept: {e}"),
            }
        }
    });
    (addr, t)
}

/// Whether process `pid` holds (has accepted) the server side of the TCP connection
/// whose client end is `client` and whose server port is `server_port`: the socket is
/// looked up in `/proc/net/tcp{,6}` by its ports, then among the process's descriptors
/// by its inode. A connection still waiting in the backlog is not held.
pub fn holds_connection(pid: u32, server_port: u16, client: SocketAddr) -> bool {
    held_sockets(pid, server_port, Some(client.port())) > 0
}

/// How many connections to `server_port` process `pid` (or one of its children) holds
/// (has accepted): [`holds_connection`] for every client at once. The listening socket
/// is not counted, nor the connections still waiting in the backlog.
pub fn held_connections(pid: u32, server_port: u16) -> usize {
    held_sockets(pid, server_port, None)
}

/// The server-side sockets of connections on `server_port` (from `client_port` only, if
/// given) that `pid` or its children hold a descriptor of.
fn held_sockets(pid: u32, server_port: u16, client_port: Option<u16>) -> usize {
    // The kernel filters by port (sock_diag), so a machine with a hundred thousand
    // TIME_WAIT sockets answers as fast as an idle one; TIME_WAIT sockets have no inode.
    let Ok((sockets, _)) = hello_proto::sys::sockdiag::tcp_sockets(&[server_port]) else {
        return 0;
    };
    let inodes: std::collections::HashSet<String> = sockets
        .iter()
        .filter(|s| s.local.port() == server_port && s.peer.port() != 0 && s.inode != 0)
        .filter(|s| client_port.is_none_or(|c| c == s.peer.port()))
        .map(|s| format!("socket:[{}]", s.inode))
        .collect();
    if inodes.is_empty() {
        return 0;
    }
    // The fork model's parent hands each connection to a child process.
    let mut held = std::collections::HashSet::new();
    for p in std::iter::once(pid).chain(child_processes(pid)) {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{p}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                if let Some(inode) = target.to_str().filter(|t| inodes.contains(*t)) {
                    held.insert(inode.to_string());
                }
            }
        }
    }
    held.len()
}

/// The child processes of `pid` (`hello_proto::sys::process::child_processes`).
pub use hello_proto::sys::process::child_processes;

#[cfg(test)]
mod tests {
    use super::*;

    /// The lists of models are the server's, filtered, and `epoll --workers 2` besides.
    #[test]
    fn the_lists_of_models_are_the_servers() {
        let names = |list: Models| -> Vec<&str> {
            model_entries()
                .iter()
                .filter(|(m, _)| (list.0)(*m))
                .map(|(_, name)| *name)
                .collect()
        };
        let every: Vec<String> = Model::in_textbook_order().iter().map(Model::to_string).collect();
        assert_eq!(names(MODELS)[..every.len()], every);
        assert_eq!(names(MODELS)[every.len()..], [EPOLL_WORKERS]);
        assert!(names(MODELS).contains(&URING));
        assert_eq!(
            names(CONCURRENT_MODELS),
            ["fork", "select", "threads", "epoll", "uring", EPOLL_WORKERS]
        );
        assert_eq!(
            names(ONE_PROCESS_MODELS),
            ["select", "threads", "epoll", "uring", EPOLL_WORKERS]
        );
    }
}
