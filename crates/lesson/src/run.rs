//! The programs of a scenario as child processes (`hello-harness` programs): their output
//! collected as it comes, every wait bounded, and nothing left running when a scenario
//! ends; and the pages of a run written to files.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use hello_harness::Program;
pub use hello_harness::{Done, Pipe};
use hello_proto::trace::Lang;

use crate::page;
use crate::scenario::Part;

/// Bound on every wait for a program (a client may wait its whole `--timeout`).
pub const WAIT: Duration = Duration::from_secs(30);

/// A program of a scenario running, its stdout and stderr collected as they come;
/// killed if dropped before [`Proc::finish`].
pub struct Proc(Program);

impl Proc {
    /// Starts `program ARGS` with no locale variables (the trace's language comes from
    /// `--lang` alone) and no input.
    pub fn spawn(program: &Path, args: &[String]) -> Result<Proc> {
        Proc::spawn_with(program, args, &[])
    }

    /// [`Proc::spawn`] with the variables `env` set as well.
    pub fn spawn_with(program: &Path, args: &[String], env: &[(&str, &Path)]) -> Result<Proc> {
        let mut cmd = Command::new(program);
        cmd.args(args);
        for v in ["LANG", "LC_ALL", "LC_MESSAGES"] {
            cmd.env_remove(v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        Ok(Proc(Program::start(cmd)?))
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.0.pid()
    }

    /// What it has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.0.stderr()
    }

    /// What it has written to stdout so far.
    pub fn stdout(&self) -> String {
        self.0.stdout()
    }

    /// Waits (at most `within`) for a server's start-up line on `on` (stdout;
    /// `--textbook`: stderr) and returns the address it gives.
    pub fn listening(&self, on: Pipe, within: Duration) -> Result<SocketAddr> {
        Ok(self.0.listening(on, within)?.addr)
    }

    /// Waits (bounded by `within`) until its stderr holds `needle`; whether it did.
    pub fn wait_stderr(&self, needle: &str, within: Duration) -> bool {
        self.0.wait_for(Pipe::Stderr, needle, within)
    }

    /// Waits (bounded by `within`) until its stdout holds `needle`; whether it did.
    pub fn wait_stdout(&self, needle: &str, within: Duration) -> bool {
        self.0.wait_for(Pipe::Stdout, needle, within)
    }

    /// Whether it has exited (it is reaped by [`Proc::finish`]).
    pub fn exited(&mut self) -> bool {
        self.0.exited()
    }

    /// SIGTERM, then [`Proc::finish`]'s wait (`hello_harness::Program::stop`).
    pub fn stop(self) -> Result<Done> {
        self.0.stop(WAIT)
    }

    /// Waits (at most [`WAIT`]) for it to exit and for its output to end; kills it if it
    /// does not exit in time.
    pub fn finish(self) -> Result<Done> {
        self.0.finish(WAIT)
    }
}

/// Writes `index.html` and one page per part into `dir`; the paths written.
pub fn write_pages(dir: &Path, parts: &[Part], lang: Lang) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    let index_path = dir.join("index.html");
    std::fs::write(&index_path, page::index(parts, lang))
        .with_context(|| format!("cannot write {}", index_path.display()))?;
    written.push(index_path);
    for p in parts {
        let path = dir.join(format!("{}.html", p.slug));
        std::fs::write(&path, page::html(p, lang, Some("index.html")))
            .with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}
