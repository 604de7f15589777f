//! hello-harness: the one way the tests, xtask and the lesson run a program — start it,
//! collect what it prints as it comes, read its start-up line (`listening on ADDR`,
//! parsed by `hello_proto::startup`), signal it and stop it through
//! `hello_proto::sys::process` — with every wait bounded and nothing left running when
//! a [`Program`] is dropped.
//!
//! Every wait takes its bound from the caller ([`WAIT`] unless it knows better) and
//! returns at that bound at the latest, or sooner when the program has closed the
//! output awaited (nothing more can come). A program that outlives its stop is killed.

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hello_proto::startup;
use hello_proto::sys::process::signal_child;

/// The usual bound on a wait: a broken program fails a test or a task, it never hangs it.
pub const WAIT: Duration = Duration::from_secs(10);

/// How long, after a program exited, its output may take to end (a child it left behind,
/// a fork model client still being served, may hold the pipes a little longer).
const OUTPUT_WAIT: Duration = Duration::from_secs(2);

/// How often an exit is looked for (`try_wait`).
const POLL: Duration = Duration::from_millis(2);

/// One of a program's outputs, piped to the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pipe {
    /// Standard output: where `hello-server` prints its start-up lines.
    Stdout,
    /// Standard error: the trace, error lines; `--textbook`'s start-up line.
    Stderr,
}

/// What a program printed, and how it ended.
#[derive(Debug, Clone)]
pub struct Done {
    /// Its exit status.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// The start-up line a server printed: `listening on ADDR`.
#[derive(Debug, Clone)]
pub struct Listening {
    /// The address it gives, with the real port.
    pub addr: SocketAddr,
    /// The line itself, without its newline.
    pub line: String,
}

/// An output of a program, collected by a thread of its own as it comes, and how far
/// its lines have been taken ([`Program::next_line`]).
struct Collector {
    state: Mutex<Collected>,
    grew: Condvar,
}

struct Collected {
    bytes: Vec<u8>,
    /// Whether the program has closed it: nothing more will come.
    closed: bool,
    /// Where the lines not yet taken begin.
    taken: usize,
}

impl Collector {
    /// A pipe that collects what `from` gives until it ends, or (`None`: the output was
    /// not piped) one that is closed and empty.
    fn collect(from: Option<impl Read + Send + 'static>) -> Arc<Collector> {
        let pipe = Arc::new(Collector {
            state: Mutex::new(Collected {
                bytes: Vec::new(),
                closed: from.is_none(),
                taken: 0,
            }),
            grew: Condvar::new(),
        });
        if let Some(mut from) = from {
            let into = Arc::clone(&pipe);
            thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = from.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    into.lock().bytes.extend_from_slice(&chunk[..n]);
                    into.grew.notify_all();
                }
                into.lock().closed = true;
                into.grew.notify_all();
            });
        }
        pipe
    }

    fn lock(&self) -> MutexGuard<'_, Collected> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.lock().bytes).into_owned()
    }

    /// Asks `found` each time more has come, until it answers, the pipe is closed (asked
    /// once more then) or `within` has passed.
    fn wait<T>(&self, within: Duration, mut found: impl FnMut(&mut Collected) -> Option<T>) -> Option<T> {
        let until = Instant::now() + within;
        let mut state = self.lock();
        loop {
            if let Some(t) = found(&mut state) {
                return Some(t);
            }
            let left = until.saturating_duration_since(Instant::now());
            if state.closed || left.is_zero() {
                return None;
            }
            state = self
                .grew
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Collected {
    /// Takes the complete lines not yet taken up to the first that `wanted` accepts,
    /// and returns that one (without its newline).
    fn take_line(&mut self, mut wanted: impl FnMut(&str) -> bool) -> Option<String> {
        while let Some(end) = self.bytes[self.taken..].iter().position(|&b| b == b'\n') {
            let line = String::from_utf8_lossy(&self.bytes[self.taken..self.taken + end]).into_owned();
            self.taken += end + 1;
            if wanted(&line) {
                return Some(line);
            }
        }
        None
    }
}

/// A program running, its stdout and stderr (where piped) collected as they come;
/// killed (SIGKILL) and reaped when dropped.
pub struct Program {
    /// Its file name, for messages.
    name: String,
    /// Its command line, for the message that it did not start.
    command: String,
    child: Option<Child>,
    pid: u32,
    stdout: Arc<Collector>,
    stderr: Arc<Collector>,
}

impl Program {
    /// Starts `cmd` with stdin closed and stdout and stderr piped (collected here).
    pub fn start(mut cmd: Command) -> Result<Program> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Program::spawn(cmd)
    }

    /// Starts `cmd` as the caller set it up: whatever of stdout and stderr it pipes is
    /// collected here (the benchmark sends stderr to a log file).
    pub fn spawn(mut cmd: Command) -> Result<Program> {
        // Named after the spawn: the few strings are made while the program starts, not
        // before (the benchmark times starts from just before the spawn).
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", name_of(&cmd)))?;
        Ok(Program::adopt(child, name_of(&cmd), command_line(&cmd)))
    }

    /// Takes charge of a child already started, collecting its piped outputs.
    pub fn adopt(mut child: Child, name: impl Into<String>, command: impl Into<String>) -> Program {
        let stdout = Collector::collect(child.stdout.take());
        let stderr = Collector::collect(child.stderr.take());
        Program {
            name: name.into(),
            command: command.into(),
            pid: child.id(),
            child: Some(child),
            stdout,
            stderr,
        }
    }

    /// Its file name (`hello-server`), as messages call it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn collector(&self, pipe: Pipe) -> &Collector {
        match pipe {
            Pipe::Stdout => &self.stdout,
            Pipe::Stderr => &self.stderr,
        }
    }

    /// What it has written to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.text()
    }

    /// What it has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Waits (at most `within`) until `pipe` holds `needle`; whether it did.
    pub fn wait_for(&self, pipe: Pipe, needle: &str, within: Duration) -> bool {
        let needle = needle.as_bytes();
        self.collector(pipe)
            .wait(within, |c| {
                (needle.is_empty() || c.bytes.windows(needle.len()).any(|w| w == needle)).then_some(())
            })
            .is_some()
    }

    /// The next line on `pipe` not yet taken, waiting at most `within` for it.
    pub fn next_line(&self, pipe: Pipe, within: Duration) -> Option<String> {
        self.collector(pipe).wait(within, |c| c.take_line(|_| true))
    }

    /// Every complete line on `pipe` not yet taken, without waiting.
    pub fn lines_so_far(&self, pipe: Pipe) -> Vec<String> {
        let mut c = self.collector(pipe).lock();
        std::iter::from_fn(|| c.take_line(|_| true)).collect()
    }

    /// Every line on `pipe` not yet taken (the last one even without its newline),
    /// once the program has closed it; `None` if it is still open after `within`.
    pub fn lines_to_end(&self, pipe: Pipe, within: Duration) -> Option<Vec<String>> {
        self.collector(pipe).wait(within, |c| {
            if !c.closed {
                return None;
            }
            let mut lines: Vec<String> = std::iter::from_fn(|| c.take_line(|_| true)).collect();
            if c.taken < c.bytes.len() {
                lines.push(String::from_utf8_lossy(&c.bytes[c.taken..]).into_owned());
                c.taken = c.bytes.len();
            }
            Some(lines)
        })
    }

    /// Waits (at most `within`) for its start-up line: on stdout, the next line, which
    /// must be `listening on ADDR` (`hello-server`, the C peers, the benchmark's
    /// servers); on stderr, the first such line, after the trace of the calls before it
    /// (`hello-server --textbook`).
    pub fn listening(&self, on: Pipe, within: Duration) -> Result<Listening> {
        let is_it = |l: &str| {
            startup::Line::parse(l)
                .and_then(startup::Line::listening)
                .is_some()
        };
        let line = match on {
            Pipe::Stdout => self.next_line(on, within),
            Pipe::Stderr => self.collector(on).wait(within, |c| c.take_line(is_it)),
        };
        let Some(line) = line else {
            let stderr = self.stderr();
            let stderr = match stderr.trim_end() {
                "" => String::new(),
                said => format!("; stderr: {said}"),
            };
            bail!(
                "{} printed no start-up line within {within:?}{stderr}",
                self.command
            );
        };
        let Some(addr) = startup::Line::parse(&line).and_then(startup::Line::listening) else {
            bail!("unexpected start-up line {line:?} from {}", self.name);
        };
        Ok(Listening { addr, line })
    }

    /// Whether it has exited (it is reaped by [`Program::wait`], [`Program::finish`] or
    /// [`Program::stop`]).
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().is_ok_and(|s| s.is_some()))
    }

    /// Sends it `signal` (`hello_proto::sys::process::signal_child`).
    pub fn signal(&self, signal: i32) -> Result<()> {
        if self.child.is_none() {
            bail!("cannot signal {}: it has been reaped", self.name);
        }
        let pid = i32::try_from(self.pid).context("pid out of range")?;
        signal_child(pid, signal).with_context(|| format!("cannot signal {}", self.name))
    }

    /// Waits (at most `within`) for it to exit, then (at most 2 s more) for its output to
    /// end; `None`, and still running, if it did not exit in time.
    pub fn wait(&mut self, within: Duration) -> Option<ExitStatus> {
        let status = wait_exit(self.child.as_mut()?, within)?;
        self.child = None;
        // What it wrote last may still be in the pipes: read it before anyone looks.
        let until = Instant::now() + OUTPUT_WAIT;
        for output in [&self.stdout, &self.stderr] {
            let left = until.saturating_duration_since(Instant::now());
            let _ = output.wait(left, |c| c.closed.then_some(()));
        }
        Some(status)
    }

    /// Waits (at most `within`) for it to exit by itself and returns what it printed;
    /// kills it if it does not exit in time.
    pub fn finish(mut self, within: Duration) -> Result<Done> {
        let Some(status) = self.wait(within) else {
            self.kill();
            bail!(
                "{} still running after {within:?}; stderr: {}",
                self.name,
                self.stderr().trim_end()
            );
        };
        Ok(self.done(status))
    }

    /// SIGTERM (`hello_proto::sys::process::stop_child`), then [`Program::finish`]: at
    /// most `within` to exit, SIGKILL after that. A program that has exited already is
    /// only reaped.
    pub fn stop(mut self, within: Duration) -> Result<Done> {
        if !self.exited() {
            self.signal(libc::SIGTERM)?;
        }
        match self.wait(within) {
            Some(status) => Ok(self.done(status)),
            None => {
                self.kill();
                bail!("{} did not exit within {within:?} of SIGTERM: killed", self.name);
            }
        }
    }

    fn done(&self, status: ExitStatus) -> Done {
        Done {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    /// SIGKILL and reap, if it is still ours.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("command", &self.command)
            .field("pid", &self.pid)
            .field("reaped", &self.child.is_none())
            .finish()
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `cmd` to its end (stdin closed, output collected), killing it after `within`.
pub fn run(cmd: Command, within: Duration) -> Result<Done> {
    Program::start(cmd)?.finish(within)
}

/// Waits at most `within` for `child` to exit; `None` if it is still running.
pub fn wait_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + within;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= until {
            return None;
        }
        thread::sleep(POLL);
    }
}

/// The file name of the program `cmd` runs.
fn name_of(cmd: &Command) -> String {
    let program = std::path::Path::new(cmd.get_program());
    program
        .file_name()
        .unwrap_or(program.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// `cmd`'s command line as one would type it (its program's file name, then the
/// arguments).
fn command_line(cmd: &Command) -> String {
    std::iter::once(name_of(cmd))
        .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        cmd
    }

    #[test]
    fn the_start_up_line_is_read_on_stdout_or_after_the_trace_on_stderr() {
        let p = Program::start(sh(
            "echo 'listening on 127.0.0.1:40123'; echo 'agent on 127.0.0.1:7'",
        ))
        .unwrap();
        let l = p.listening(Pipe::Stdout, WAIT).unwrap();
        assert_eq!(
            (l.addr.port(), l.line.as_str()),
            (40123, "listening on 127.0.0.1:40123")
        );
        assert_eq!(
            p.next_line(Pipe::Stdout, WAIT).as_deref(),
            Some("agent on 127.0.0.1:7")
        );
        assert_eq!(p.lines_to_end(Pipe::Stdout, WAIT), Some(vec![]));

        let p = Program::start(sh(
            "echo 'socket() = 3' >&2; echo 'listening on [::1]:9' >&2; echo after >&2",
        ))
        .unwrap();
        assert_eq!(
            p.listening(Pipe::Stderr, WAIT).unwrap().addr,
            "[::1]:9".parse().unwrap()
        );
        assert!(p.wait_for(Pipe::Stderr, "after", WAIT));
        assert!(p.stderr().starts_with("socket() = 3\nlistening on"));
    }

    #[test]
    fn a_program_without_a_start_up_line_fails_at_the_bound_or_when_it_closes_its_output() {
        // Silent and running: the wait ends at its bound.
        let p = Program::start(sh("echo starting >&2; exec sleep 30")).unwrap();
        let t0 = Instant::now();
        let e = p.listening(Pipe::Stdout, Duration::from_millis(300)).unwrap_err();
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_secs(5),
            "{took:?}"
        );
        assert!(e.to_string().contains("sh -c echo starting"), "{e}");
        assert!(e.to_string().ends_with("stderr: starting"), "{e}");
        // Exited without one: the wait ends when stdout closes, long before its bound.
        let p = Program::start(sh("echo 'bind() error' >&2; exit 1")).unwrap();
        let t0 = Instant::now();
        assert!(p.listening(Pipe::Stdout, Duration::from_secs(30)).is_err());
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
        // Another first line is not taken for one.
        let p = Program::start(sh("echo 'Usage : prog <port>'")).unwrap();
        let e = p.listening(Pipe::Stdout, WAIT).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("unexpected start-up line \"Usage : prog <port>\""),
            "{e}"
        );
    }

    #[test]
    fn stop_ends_a_program_with_sigterm_and_kills_one_that_ignores_it_at_the_bound() {
        let p = Program::start(sh(
            "trap 'echo bye; exit 3' TERM; echo 'listening on 127.0.0.1:1'; while :; do sleep 0.01; done",
        ))
        .unwrap();
        p.listening(Pipe::Stdout, WAIT).unwrap();
        let done = p.stop(WAIT).unwrap();
        assert_eq!(done.status.code(), Some(3));
        assert!(done.stdout.ends_with("bye\n"), "{:?}", done.stdout);

        let p = Program::start(sh(
            "trap '' TERM; echo 'listening on 127.0.0.1:1'; while :; do sleep 0.01; done",
        ))
        .unwrap();
        p.listening(Pipe::Stdout, WAIT).unwrap();
        let pid = p.pid();
        let t0 = Instant::now();
        let e = p.stop(Duration::from_millis(300)).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert_eq!(e.to_string(), "sh did not exit within 300ms of SIGTERM: killed");
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "still there after the stop"
        );
    }

    #[test]
    fn finish_kills_a_program_still_running_at_the_bound_and_run_collects_both_outputs() {
        let p = Program::start(sh("exec sleep 30")).unwrap();
        let t0 = Instant::now();
        assert!(p.finish(Duration::from_millis(200)).is_err());
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());

        let done = run(sh("printf out; printf err >&2; exit 2"), WAIT).unwrap();
        assert_eq!(
            (done.status.code(), done.stdout.as_str(), done.stderr.as_str()),
            (Some(2), "out", "err")
        );
        let mut p = Program::start(sh("echo a; echo b; printf c")).unwrap();
        assert!(p.wait(WAIT).is_some());
        assert_eq!(p.next_line(Pipe::Stdout, WAIT).as_deref(), Some("a"));
        assert_eq!(
            p.lines_to_end(Pipe::Stdout, WAIT),
            Some(vec!["b".to_string(), "c".to_string()])
        );
        assert!(
            p.signal(libc::SIGTERM).is_err(),
            "a reaped program is not signalled"
        );
    }
}
