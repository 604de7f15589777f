//! The end-to-end harness: builds the real `hello-server` and `hello-client` once, starts
//! servers on port 0 and reads the real port from their start-up line, and compiles the
//! textbook-style C peers in `tests/c/`.

// This library exists only to fail tests: a panic with a message is how it reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Bound on every wait in the tests: a broken server fails a test, it never hangs CI.
pub const WAIT: Duration = Duration::from_secs(10);

/// Paths of the two programs under test.
#[derive(Debug)]
pub struct Bins {
    /// `hello-server`.
    pub server: PathBuf,
    /// `hello-client`.
    pub client: PathBuf,
}

/// The workspace's root folder.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// Builds both binaries once per test process (`$CARGO build`, same profile as the tests)
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
        };
        assert!(bins.server.exists(), "{} missing", bins.server.display());
        assert!(bins.client.exists(), "{} missing", bins.client.display());
        bins
    })
}

/// A running `hello-server`, killed when dropped.
pub struct Server {
    child: Option<Child>,
    /// The address from the start-up line.
    pub addr: SocketAddr,
    /// The start-up line itself.
    pub line: String,
    stderr: std::sync::Arc<Mutex<Vec<u8>>>,
    stdout_rest: mpsc::Receiver<String>,
}

impl Server {
    /// Starts `hello-server ARGS` (include the port, normally `0`) and waits for its
    /// start-up line.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with(args, |_| {})
    }

    /// Like [`Server::start`], with a hook to adjust the command (environment, limits).
    pub fn start_with(args: &[&str], adjust: impl FnOnce(&mut Command)) -> Server {
        let mut cmd = Command::new(&bins().server);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        adjust(&mut cmd);
        let mut child = cmd.spawn().expect("spawn hello-server");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let err_buf = std::sync::Arc::new(Mutex::new(Vec::new()));
        let sink = err_buf.clone();
        thread::spawn(move || {
            let mut r = stderr;
            let mut chunk = [0u8; 4096];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend_from_slice(&chunk[..n]);
            }
        });
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = match rx.recv_timeout(WAIT) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let err =
                    String::from_utf8_lossy(&err_buf.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
                panic!("hello-server {args:?} printed no start-up line; stderr: {err}");
            }
        };
        let addr: SocketAddr = line
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected start-up line {line:?}"));
        Server {
            child: Some(child),
            addr,
            line,
            stderr: err_buf,
            stdout_rest: rx,
        }
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
        self.child.as_ref().map_or(0, Child::id)
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Lines printed on stdout after the start-up line (there should be none).
    pub fn more_stdout(&self) -> Vec<String> {
        self.stdout_rest.try_iter().collect()
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the server.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the pid of a child we own and have not reaped.
        let rc = unsafe { libc::kill(self.pid() as i32, signal) };
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.pid());
    }

    /// Waits for the server to exit on its own (bounded by `within`).
    pub fn wait(&mut self, within: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let until = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= until {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A `hello-client` command with the given arguments, killed after [`WAIT`].
pub fn client(args: &[&str]) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(&bins().client);
    c.args(args).timeout(WAIT);
    c
}

/// A `hello-server` command (for runs that end by themselves: usage errors, `--once`).
pub fn server_cmd(args: &[&str]) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::new(&bins().server);
    c.args(args).timeout(WAIT);
    c
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
            eprintln!("SKIP: no C compiler ({cc}: {e}); the test against the C peer {name} did not run");
            None
        }
    }
}

/// Runs a command to completion with a bound, returning (status, stdout, stderr).
pub fn run_bounded(cmd: &mut Command) -> (ExitStatus, Vec<u8>, Vec<u8>) {
    let mut c = assert_cmd::Command::from_std(std::mem::replace(cmd, Command::new("true")));
    c.timeout(WAIT);
    let out = c.output().expect("run command");
    (out.status, out.stdout, out.stderr)
}
