//! Running the project's binaries from xtask: build them (debug, release, release without
//! the trace); start a server, read its start-up line and stop it, or run a command to
//! its end, through `hello-harness`, every wait bounded.

use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use anyhow::{Context, Result, bail};
pub use hello_harness::{Done, WAIT};
use hello_harness::{Pipe, Program};

use crate::{cargo, project_root};

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

/// A running server, started by `hello-harness` (its output collected); killed if
/// dropped without [`Running::stop`].
pub struct Running {
    program: Program,
    /// The port from the start-up line.
    pub port: u16,
}

/// Starts `server ARGS` and waits (bounded) for its `listening on ADDR` line.
pub fn start_server(server: &PathBuf, args: &[&str]) -> Result<Running> {
    let mut cmd = Command::new(server);
    cmd.args(args);
    let program = Program::start(cmd)?;
    let port = program.listening(Pipe::Stdout, WAIT)?.addr.port();
    Ok(Running { program, port })
}

impl Running {
    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.program.pid()
    }

    /// Where to reach it: 127.0.0.1 and the port of its start-up line (servers started
    /// here listen on 127.0.0.1 or every address).
    pub fn addr(&self) -> std::net::SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    /// Sends it `signal` (SIGSTOP, SIGCONT).
    pub fn signal(&self, signal: i32) -> Result<()> {
        self.program.signal(signal)
    }

    /// SIGTERM, then waits (bounded) for exit; returns the exit status and all stderr.
    pub fn stop(self) -> Result<(ExitStatus, String)> {
        let done = self.program.stop(WAIT)?;
        Ok((done.status, done.stderr))
    }
}

/// Runs a command to its end, killing it after `limit`.
pub fn run_bounded_for(cmd: Command, limit: Duration) -> Result<Done> {
    hello_harness::run(cmd, limit)
}
