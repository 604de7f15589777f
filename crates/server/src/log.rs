//! Per-client error lines on stderr, at most [`PER_SECOND`] a second: past that, one line
//! a second says how many more there were and of which kinds. Any peer can make the
//! server fail its exchange (a reset, a spoofed UDP source), so without a bound any peer
//! could flood the log. Start-up errors are not client errors and never pass through the
//! limit, and a report marked as one that must be seen (the first out-of-descriptors
//! line) is never held back.
//!
//! In the fork model each client has a process of its own, so a bound per process would
//! bound nothing: a child sends its line up a pipe to the parent instead
//! ([`to_parent`]), and the parent, reading the pipe on each turn ([`Relay`]), puts it
//! through the one limit.
//!
//! The server's other lines (SIGUSR1's counters, the drain delay's, warnings, the error
//! that ends it) are its own, never held back: [`say`] writes them in the same format.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use hello_proto::Error;

/// Client error lines printed per second before the rest are counted instead.
pub const PER_SECOND: u32 = 10;

const WINDOW: Duration = Duration::from_secs(1);

/// The one log of per-client failures, for the whole process (stderr is the process's).
static CLIENT_ERRORS: Limiter = Limiter::new();

/// Set by a process that must stay single-threaded (the fork model's parent): the count
/// of held-back lines then comes with the next line, or at exit, not from a thread.
static NO_THREADS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, this process starts no thread to write the counts.
pub fn without_threads() {
    NO_THREADS.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// In a fork model child: where its client error lines go instead of stderr.
static TO_PARENT: std::sync::OnceLock<std::os::unix::net::UnixStream> = std::sync::OnceLock::new();

/// How the server's stderr lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `hello-server: read() error: 127.0.0.1:5000: Connection reset by peer (os error 104)`.
    #[default]
    Text,
    /// One JSON object a line: `ts`, `level`, `msg`, `line`, and each kind's fields
    /// (a client's failure: `step`, `peer` or `target`, `error`).
    Json,
}

/// Set once at start (before any fork: a child inherits it).
static JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// From now on, the server's lines are written as `format` says.
pub fn set_format(format: LogFormat) {
    JSON.store(format == LogFormat::Json, std::sync::atomic::Ordering::Relaxed);
}

fn json() -> bool {
    JSON.load(std::sync::atomic::Ordering::Relaxed)
}

/// Reports a failure that ends one client's exchange, not the server: one line on stderr,
/// unless the second's lines are used up.
pub fn report(err: &Error) {
    let (kind, body) = (kind(err), body(err));
    if send_up(&kind, &body) {
        return;
    }
    let text = CLIENT_ERRORS.decide_text(&kind, &body, Instant::now(), false);
    write(&text);
}

/// In a fork model child: one line, `kind`, a tab, `body`, up the pipe. One write of one
/// short line: it arrives whole. A parent that is gone cannot take it, and nothing else
/// can.
fn send_up(kind: &str, body: &str) -> bool {
    let Some(pipe) = TO_PARENT.get() else {
        return false;
    };
    let _ = (&*pipe).write_all(format!("{kind}\t{body}\n").as_bytes());
    true
}

/// A failure's line without the program's name: the text, or the JSON object.
fn body(err: &Error) -> String {
    if !json() {
        return err.to_string();
    }
    let mut object = record(Level::Error, "client exchange failed", &err.to_string());
    // An accepted client's address, or what else the call was about.
    let peer = err.target.parse::<std::net::SocketAddr>().is_ok();
    failure_fields(err, peer, &mut object);
    serde_json::Value::Object(object).to_string()
}

/// A failed call's fields: `step`, `peer` (a client's address) or `target`, `error`.
fn failure_fields(err: &Error, peer: bool, object: &mut serde_json::Map<String, serde_json::Value>) {
    object.insert("step".into(), err.step.to_string().into());
    let field = if peer { "peer" } else { "target" };
    object.insert(field.into(), err.target.clone().into());
    object.insert("error".into(), err.cause.to_string().into());
}

/// How much a line matters, as a JSON record's `level` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// What the server was asked to say, or is doing (SIGUSR1's counters, the drain).
    Info,
    /// Something the operator should change or know (the lines held back).
    Warn,
    /// A failure: a client's exchange, or the one that ends the server.
    Error,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// The fields every JSON record has: `ts`, `level`, `msg` (what kind of line, in a few
/// fixed words) and `line` (the text form, without the program's name).
fn record(level: Level, msg: &str, line: &str) -> serde_json::Map<String, serde_json::Value> {
    let mut object = serde_json::Map::new();
    object.insert("ts".into(), rfc3339(std::time::SystemTime::now()).into());
    object.insert("level".into(), level.word().into());
    object.insert("msg".into(), msg.into());
    object.insert("line".into(), line.into());
    object
}

/// Writes one line of the server's own (not a client's, so never held back): `line` after
/// the program's name, or with `--log-format json` the record of `level`, `msg`, `line`
/// and `fields`. One `write()`.
pub fn say(level: Level, msg: &str, line: &str, fields: serde_json::Map<String, serde_json::Value>) {
    if json() {
        let mut object = record(level, msg, line);
        object.extend(fields);
        write(&format!("{}\n", serde_json::Value::Object(object)));
    } else {
        write(&format!("hello-server: {line}\n"));
    }
}

/// The error that ends the server, as [`say`] writes it: with `step`, `target` and `error`
/// when it is a failed call.
pub fn say_fatal(err: &anyhow::Error) {
    let mut fields = serde_json::Map::new();
    if let Some(failed) = err.downcast_ref::<Error>() {
        failure_fields(failed, false, &mut fields);
    }
    say(Level::Error, "server failed", &format!("{err:#}"), fields);
}

/// `2026-12-06T11:43:44.123456Z`: UTC, microseconds.
fn rfc3339(at: std::time::SystemTime) -> String {
    let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let t = hello_proto::utc::Utc::from_unix(since.as_secs());
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        since.subsec_micros()
    )
}

/// In a fork model child: from now on, client error lines go up `pipe` to the parent.
pub fn to_parent(pipe: std::os::unix::net::UnixStream) {
    let _ = TO_PARENT.set(pipe);
}

/// The parent's end of the children's pipe: reads what they sent and reports it.
pub struct Relay {
    pipe: std::os::unix::net::UnixStream,
    partial: Vec<u8>,
}

impl Relay {
    /// Both ends of a new pipe (`socketpair`), the parent's non-blocking.
    pub fn new() -> io::Result<(Relay, std::os::unix::net::UnixStream)> {
        let (read, write) = hello_proto::sys::process::log_socketpair()?;
        Ok((
            Relay {
                pipe: read,
                partial: Vec::new(),
            },
            write,
        ))
    }

    /// Reports every whole line the children have sent so far (bounded: what one call
    /// finds, and no line kept past 4 KiB); at a second's end, the count of what it held
    /// back (the parent has no thread to say it).
    pub fn relay(&mut self) {
        write(&CLIENT_ERRORS.counted(Some(Instant::now())));
        let mut buf = [0u8; 16 * 1024];
        for _ in 0..64 {
            let n = match io::Read::read(&mut &self.pipe, &mut buf) {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            self.partial.extend_from_slice(&buf[..n]);
            while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.partial.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                let (kind, text) = line.split_once('\t').unwrap_or(("", line.as_str()));
                let out = CLIENT_ERRORS.decide_text(kind, text, Instant::now(), false);
                write(&out);
            }
            if self.partial.len() > 4096 {
                self.partial.clear();
            }
        }
    }
}

/// Reports a failure that must be seen whatever the rate (it still counts in the rate).
pub fn report_always(err: &Error) {
    let text = CLIENT_ERRORS.decide_text(&kind(err), &body(err), Instant::now(), true);
    write(&text);
}

/// Says at once how many lines were held back and not yet counted (when the server
/// stops: nothing held back is lost without a word). In a fork model child, nothing: its
/// lines went to the parent, which counts them, and what the child's copy of the limit
/// holds is the parent's count at the `fork()`, not the child's.
pub fn flush() {
    if TO_PARENT.get().is_some() {
        return;
    }
    let text = CLIENT_ERRORS.counted(None);
    write(&text);
}

/// One `write(2)` to stderr, with no lock of ours held: the rate limit's lock is never
/// held while waiting for stderr, so no order of the two can deadlock.
fn write(text: &str) {
    if !text.is_empty() {
        let _ = io::stderr().write_all(text.as_bytes());
    }
}

struct Window {
    start: Option<Instant>,
    printed: u32,
    /// Lines held back in this window, by kind.
    suppressed: BTreeMap<String, u64>,
    /// A thread wakes each second to say what was held back, while there is any.
    flusher: bool,
}

/// The rate limit. It decides what to print and hands the text back; the caller prints it
/// after the lock is released.
pub(crate) struct Limiter {
    window: Mutex<Window>,
}

impl Limiter {
    pub(crate) const fn new() -> Limiter {
        Limiter {
            window: Mutex::new(Window {
                start: None,
                printed: 0,
                suppressed: BTreeMap::new(),
                flusher: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The text to print for `err` at `now`: its line (after the count of the window just
    /// over, if any), or nothing when this second's lines are used up (it is counted).
    #[cfg(test)]
    pub(crate) fn decide(&'static self, err: &Error, now: Instant, always: bool) -> String {
        self.decide_text(&kind(err), &err.to_string(), now, always)
    }

    /// [`Limiter::decide`] for a line already worded, and its kind.
    pub(crate) fn decide_text(&'static self, kind: &str, line: &str, now: Instant, always: bool) -> String {
        let mut w = self.lock();
        let mut text = roll(&mut w, now);
        if always || w.printed < PER_SECOND {
            w.printed += 1;
            if json() {
                text.push_str(&format!("{line}\n"));
            } else {
                text.push_str(&format!("hello-server: {line}\n"));
            }
            return text;
        }
        *w.suppressed.entry(kind.to_string()).or_default() += 1;
        let threads_allowed = !NO_THREADS.load(std::sync::atomic::Ordering::SeqCst);
        if !w.flusher && threads_allowed && std::ptr::eq(self, &CLIENT_ERRORS) {
            w.flusher = true;
            // A thread that cannot be made (an address-space limit) is an error here,
            // not the abort std's thread start would make of it.
            let spawned = hello_proto::sys::process::spawn_thread(
                c"log",
                64 << 10,
                Box::new(move || self.flush_each_second()),
            );
            if spawned.is_err() {
                // Without the thread, the count comes out with the next line instead.
                w.flusher = false;
            }
        }
        text
    }

    /// The count of what was held back: at a window's end (`Some(now)`), or at once.
    pub(crate) fn counted(&self, now: Option<Instant>) -> String {
        let mut w = self.lock();
        match now {
            Some(now) => roll(&mut w, now),
            None => {
                let text = count(&mut w);
                w.printed = 0;
                text
            }
        }
    }

    /// Says each second what was held back, until a second passes with nothing held back.
    fn flush_each_second(&self) {
        loop {
            thread::sleep(WINDOW);
            let (text, nothing) = {
                let mut w = self.lock();
                let nothing = w.suppressed.is_empty();
                let text = roll(&mut w, Instant::now());
                if nothing {
                    w.flusher = false;
                }
                (text, nothing)
            };
            write(&text);
            if nothing {
                return;
            }
        }
    }
}

/// Starts a new window when the current one is over: the count of what it held back.
fn roll(w: &mut Window, now: Instant) -> String {
    let over = w
        .start
        .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW);
    if !over {
        return String::new();
    }
    w.start = Some(now);
    w.printed = 0;
    count(w)
}

/// The line counting what was held back (and forgets it); empty when nothing was.
fn count(w: &mut Window) -> String {
    if w.suppressed.is_empty() {
        return String::new();
    }
    let total: u64 = w.suppressed.values().sum();
    let kinds: Vec<String> = w.suppressed.iter().map(|(k, n)| format!("{n} × {k}")).collect();
    let line = format!(
        "{} in the last second not shown: {}",
        hello_proto::words::counted(total, "more client error line"),
        kinds.join(", ")
    );
    let suppressed = std::mem::take(&mut w.suppressed);
    if json() {
        let kinds: serde_json::Map<String, serde_json::Value> =
            suppressed.into_iter().map(|(k, n)| (k, n.into())).collect();
        let mut object = record(
            Level::Warn,
            "client error lines in the last second not shown",
            &line,
        );
        object.insert("count".into(), total.into());
        object.insert("kinds".into(), kinds.into());
        return format!("{}\n", serde_json::Value::Object(object));
    }
    format!("hello-server: {line}\n")
}

/// What kind of failure a line is, for the count: the call and the reason, without the
/// address.
fn kind(err: &Error) -> String {
    format!("{} error: {}", err.step, err.cause)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hello_proto::Step;

    fn reset() -> Error {
        Error::new(
            Step::Read,
            "127.0.0.1:5000",
            io::Error::from_raw_os_error(libc::ECONNRESET),
        )
    }

    #[test]
    fn rfc3339_is_the_civil_date() {
        let at = std::time::UNIX_EPOCH + Duration::from_micros(1_796_557_424_123_456);
        assert_eq!(rfc3339(at), "2026-12-06T11:43:44.123456Z");
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let leap = std::time::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn ten_lines_a_second_then_one_line_with_the_count() {
        static LIMITER: Limiter = Limiter::new();
        let t0 = Instant::now();
        let mut out = String::new();
        for i in 0..25 {
            out += &LIMITER.decide(&reset(), t0 + Duration::from_millis(i), false);
        }
        assert_eq!(out.lines().count(), 10, "{out}");
        // The next second's first line is preceded by the count of the first second.
        let text = LIMITER.decide(&reset(), t0 + Duration::from_millis(1100), false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(
            lines[0],
            "hello-server: 15 more client error lines in the last second not shown: \
             15 × read() error: Connection reset by peer (os error 104)"
        );
        assert!(lines[1].starts_with("hello-server: read() error: 127.0.0.1:5000"));
    }

    #[test]
    fn a_line_that_must_be_seen_is_never_held_back() {
        static LIMITER: Limiter = Limiter::new();
        let t0 = Instant::now();
        let mut out = String::new();
        for i in 0..PER_SECOND {
            out += &LIMITER.decide(&reset(), t0 + Duration::from_millis(u64::from(i)), false);
        }
        out += &LIMITER.decide(&reset(), t0 + Duration::from_millis(20), true);
        assert_eq!(out.lines().count(), 11);
    }

    #[test]
    fn what_is_held_back_is_counted_at_once_when_asked() {
        static LIMITER: Limiter = Limiter::new();
        let t0 = Instant::now();
        for i in 0..12 {
            let _ = LIMITER.decide(&reset(), t0 + Duration::from_millis(i), false);
        }
        assert!(
            LIMITER
                .counted(None)
                .starts_with("hello-server: 2 more client error lines")
        );
        assert_eq!(LIMITER.counted(None), "", "counted once");
    }
}
