//! The programs of a scenario as child processes: their output collected as it comes,
//! every wait bounded, and nothing left running when a scenario ends; and the pages of
//! a run written to files.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hello_proto::trace::Lang;

use crate::page;
use crate::scenario::Part;

/// Bound on every wait for a program (a client may wait its whole `--timeout`).
pub const WAIT: Duration = Duration::from_secs(30);

/// A program running, its stdout and stderr collected as they come.
pub struct Proc {
    name: String,
    child: Option<Child>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

/// What a program printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Done {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error: the trace, and an error line last if it failed.
    pub stderr: String,
}

/// Collects what `from` writes into `into`, until it closes.
fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    thread::spawn(move || {
        let mut chunk = [0u8; 8192];
        while let Ok(n) = from.read(&mut chunk) {
            if n == 0 {
                break;
            }
            into.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(&chunk[..n]);
        }
    })
}

fn text(of: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&of.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
}

/// Waits (bounded by `within`) until `of` holds `needle`; whether it did.
fn wait_for(of: &Mutex<Vec<u8>>, needle: &str, within: Duration) -> bool {
    let until = Instant::now() + within;
    while !text(of).contains(needle) {
        if Instant::now() >= until {
            return false;
        }
        thread::sleep(Duration::from_millis(2));
    }
    true
}

impl Proc {
    /// Starts `program ARGS` with no locale variables (the trace's language comes from
    /// `--lang` alone) and no input.
    pub fn spawn(program: &Path, args: &[String]) -> Result<Proc> {
        Proc::spawn_with(program, args, &[])
    }

    /// [`Proc::spawn`] with the variables `env` set as well.
    pub fn spawn_with(program: &Path, args: &[String], env: &[(&str, &Path)]) -> Result<Proc> {
        let name = program.file_name().map_or_else(
            || program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for v in ["LANG", "LC_ALL", "LC_MESSAGES"] {
            cmd.env_remove(v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", program.display()))?;
        let (stdout, stderr) = (Arc::default(), Arc::default());
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(collect(out, Arc::clone(&stdout)));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(collect(err, Arc::clone(&stderr)));
        }
        Ok(Proc {
            name,
            child: Some(child),
            stdout,
            stderr,
            readers,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// What it has written to stderr so far.
    pub fn stderr(&self) -> String {
        text(&self.stderr)
    }

    /// Waits (bounded) for its first line on stdout.
    pub fn first_line(&self) -> Result<String> {
        let until = Instant::now() + WAIT;
        loop {
            let out = text(&self.stdout);
            if let Some((line, _)) = out.split_once('\n') {
                return Ok(line.to_string());
            }
            if Instant::now() >= until {
                bail!(
                    "{} printed no line within {WAIT:?}; stderr: {}",
                    self.name,
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// What it has written to stdout so far.
    pub fn stdout(&self) -> String {
        text(&self.stdout)
    }

    /// Waits (bounded by `within`) until its stderr holds `needle`; whether it did.
    pub fn wait_stderr(&self, needle: &str, within: Duration) -> bool {
        wait_for(&self.stderr, needle, within)
    }

    /// Waits (bounded by `within`) until its stdout holds `needle`; whether it did.
    pub fn wait_stdout(&self, needle: &str, within: Duration) -> bool {
        wait_for(&self.stdout, needle, within)
    }

    /// Whether it has exited (it is reaped by [`Proc::finish`]).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().is_ok_and(|s| s.is_some()))
    }

    /// Sends it `signal`.
    pub fn signal(&self, signal: i32) -> Result<()> {
        let pid = libc::pid_t::try_from(self.pid()).context("pid out of range")?;
        // SAFETY: kill(2) on our own child, which has not been reaped.
        if unsafe { libc::kill(pid, signal) } != 0 {
            bail!("cannot signal {}: {}", self.name, std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits (bounded) for it to exit and for its output to end; kills it if it does
    /// not exit in time.
    pub fn finish(mut self) -> Result<Done> {
        let Some(mut child) = self.child.take() else {
            bail!("{} finished twice", self.name);
        };
        let until = Instant::now() + WAIT;
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() >= until {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "{} still running after {WAIT:?}; stderr: {}",
                    self.name,
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(1));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Ok(Done {
            status,
            stdout: text(&self.stdout),
            stderr: text(&self.stderr),
        })
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

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
