//! Running the project's binaries from xtask: build, start a server and read its
//! start-up line, run a client, stop the server — every wait bounded.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{cargo, project_root};

/// Bound on each wait of a task.
pub const WAIT: Duration = Duration::from_secs(10);

/// Builds `hello-server` and `hello-client` with the dev profile (what the tests use) and
/// returns the folder holding them.
pub fn build_dev() -> Result<PathBuf> {
    let mut cmd = Command::new(cargo());
    cmd.current_dir(project_root())
        .args(["build", "--quiet", "-p", "hello-server", "-p", "hello-client"]);
    let status = cmd.status().context("cannot run cargo build")?;
    if !status.success() {
        bail!("cargo build of hello-server and hello-client failed ({status})");
    }
    Ok(target_dir().join("debug"))
}

/// Builds the binaries as shipped: release profile and, on Linux with glibc, statically
/// linked (`+crt-static`), so that starting one maps no shared library — the dynamic
/// loader is most of a small server's start-up time. Returns their folder.
///
/// `--target` is given explicitly so that the flag reaches only the programs: with it,
/// cargo builds proc-macros and build scripts separately, without the flag (a static
/// proc-macro cannot be built).
pub fn build_dist() -> Result<PathBuf> {
    build_release(&[], target_dir())
}

/// The shipped build with the trace hooks compiled out (`--cfg hello_no_trace`), in its
/// own target folder, so the benchmark can show what the hooks cost when tracing is off.
pub fn build_dist_without_trace() -> Result<PathBuf> {
    build_release(&["--cfg", "hello_no_trace"], target_dir().join("no-trace"))
}

fn build_release(extra_flags: &[&str], target: PathBuf) -> Result<PathBuf> {
    let host = host_triple()?;
    let mut cmd = Command::new(cargo());
    cmd.current_dir(project_root()).args([
        "build",
        "--quiet",
        "--release",
        "--target",
        &host,
        "-p",
        "hello-server",
        "-p",
        "hello-client",
    ]);
    let mut flags = std::env::var("RUSTFLAGS").unwrap_or_default();
    if host.ends_with("-linux-gnu") {
        flags.push_str(" -C target-feature=+crt-static");
    }
    for f in extra_flags {
        flags.push(' ');
        flags.push_str(f);
    }
    cmd.env("RUSTFLAGS", flags.trim())
        .env("CARGO_TARGET_DIR", &target);
    let status = cmd.status().context("cannot run cargo build")?;
    if !status.success() {
        bail!("release build of hello-server and hello-client failed ({status})");
    }
    Ok(target.join(host).join("release"))
}

/// Where cargo builds: `$CARGO_TARGET_DIR`, else `target/` in the project.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target"))
}

/// The host's target triple, from `rustc -vV`.
pub fn host_triple() -> Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .context("cannot run rustc -vV")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .context("rustc -vV printed no host triple")
}

/// A running server whose stderr is being collected.
pub struct Running {
    child: Child,
    /// The port from the start-up line.
    pub port: u16,
    stderr: thread::JoinHandle<String>,
}

/// Starts `server ARGS` and waits (bounded) for its `listening on ADDR` line.
pub fn start_server(server: &PathBuf, args: &[&str]) -> Result<Running> {
    let mut child = Command::new(server)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", server.display()))?;
    let (stdout, stderr) = match (child.stdout.take(), child.stderr.take()) {
        (Some(o), Some(e)) => (o, e),
        _ => bail!("no pipes to the server"),
    };
    let stderr = thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut s);
        s
    });
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = match rx.recv_timeout(WAIT) {
        Ok(l) if !l.is_empty() => l.trim_end().to_string(),
        _ => {
            let _ = child.kill();
            let _ = child.wait();
            let err = stderr.join().unwrap_or_default();
            bail!("hello-server {args:?} printed no start-up line within {WAIT:?}; stderr: {err}");
        }
    };
    let port = line
        .strip_prefix("listening on ")
        .and_then(|a| a.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("unexpected start-up line {line:?}"))?;
    Ok(Running { child, port, stderr })
}

impl Running {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Where to reach it: 127.0.0.1 and the port of its start-up line (servers started
    /// here listen on 127.0.0.1 or every address).
    pub fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// SIGTERM, then waits (bounded) for exit; returns the exit status and all stderr.
    pub fn stop(mut self) -> Result<(ExitStatus, String)> {
        // SAFETY: kill(2) on our own child, which has not been reaped.
        let rc = unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        if rc != 0 {
            bail!("cannot signal the server: {}", std::io::Error::last_os_error());
        }
        let until = Instant::now() + WAIT;
        let status = loop {
            if let Some(s) = self.child.try_wait()? {
                break s;
            }
            if Instant::now() >= until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!("the server did not exit within {WAIT:?} of SIGTERM");
            }
            thread::sleep(Duration::from_millis(5));
        };
        let stderr = self.stderr.join().unwrap_or_default();
        Ok((status, stderr))
    }
}

/// Output of a finished command.
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs a command to its end, killing it after `limit`.
pub fn run_bounded_for(mut cmd: Command, limit: Duration) -> Result<Finished> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start command")?;
    let mut out = child.stdout.take().context("no stdout pipe")?;
    let mut err = child.stderr.take().context("no stderr pipe")?;
    let out_t = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err_t = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let until = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if Instant::now() >= until {
            let _ = child.kill();
            let _ = child.wait();
            bail!("command did not finish within {limit:?}");
        }
        thread::sleep(Duration::from_millis(2));
    };
    let stdout = String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
    Ok(Finished {
        status,
        stdout,
        stderr,
    })
}
