//! Per-client error lines on stderr, at most [`PER_SECOND`] a second: past that, one line
//! a second says how many more there were and of which kinds. Any peer can make the
//! server fail its exchange (a reset, a spoofed UDP source), so without a bound any peer
//! could flood the log. Start-up errors are not client errors and never pass through here,
//! and a report marked as one that must be seen (the first out-of-descriptors line) is
//! never held back.

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

/// Reports a failure that ends one client's exchange, not the server: one line on stderr,
/// unless the second's lines are used up.
pub fn report(err: &Error) {
    CLIENT_ERRORS.report(err, Instant::now(), false, &mut io::stderr().lock());
}

/// Reports a failure that must be seen whatever the rate (it still counts in the rate).
pub fn report_always(err: &Error) {
    CLIENT_ERRORS.report(err, Instant::now(), true, &mut io::stderr().lock());
}

struct Window {
    start: Option<Instant>,
    printed: u32,
    /// Lines held back in this window, by kind.
    suppressed: BTreeMap<String, u64>,
    /// A thread wakes each second to say what was held back, while there is any.
    flusher: bool,
}

/// The rate limit, with the time and the output passed in (so a test can drive it).
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

    /// Prints `err`'s line, or counts it when this second's lines are used up.
    pub(crate) fn report(&'static self, err: &Error, now: Instant, always: bool, out: &mut dyn Write) {
        let mut w = self.lock();
        roll(&mut w, now, out);
        if always || w.printed < PER_SECOND {
            w.printed += 1;
            let _ = out.write_all(format!("hello-server: {err}\n").as_bytes());
            return;
        }
        *w.suppressed.entry(kind(err)).or_default() += 1;
        if !w.flusher && std::ptr::eq(self, &CLIENT_ERRORS) {
            w.flusher = true;
            let spawned = thread::Builder::new()
                .name("log".into())
                .spawn(move || self.flush_each_second());
            if spawned.is_err() {
                // Without the thread, the count comes out with the next line instead.
                w.flusher = false;
            }
        }
    }

    /// Says each second what was held back, until a second passes with nothing held back.
    fn flush_each_second(&self) {
        loop {
            thread::sleep(WINDOW);
            let mut w = self.lock();
            let nothing = w.suppressed.is_empty();
            roll(&mut w, Instant::now(), &mut io::stderr().lock());
            if nothing {
                w.flusher = false;
                return;
            }
        }
    }
}

/// Starts a new window when the current one is over, first saying what it held back.
fn roll(w: &mut Window, now: Instant, out: &mut dyn Write) {
    let over = w
        .start
        .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW);
    if !over {
        return;
    }
    if !w.suppressed.is_empty() {
        let total: u64 = w.suppressed.values().sum();
        let kinds: Vec<String> = w.suppressed.iter().map(|(k, n)| format!("{n} × {k}")).collect();
        let line = format!(
            "hello-server: {total} more client error lines in the last second not shown: {}\n",
            kinds.join(", ")
        );
        let _ = out.write_all(line.as_bytes());
        w.suppressed.clear();
    }
    w.start = Some(now);
    w.printed = 0;
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
    fn ten_lines_a_second_then_one_line_with_the_count() {
        static LIMITER: Limiter = Limiter::new();
        let t0 = Instant::now();
        let mut out = Vec::new();
        for i in 0..25 {
            LIMITER.report(&reset(), t0 + Duration::from_millis(i), false, &mut out);
        }
        let text = String::from_utf8(out.clone()).unwrap();
        assert_eq!(text.lines().count(), 10, "{text}");
        // The next second's first line is preceded by the count of the first second.
        let mut out = Vec::new();
        LIMITER.report(&reset(), t0 + Duration::from_millis(1100), false, &mut out);
        let text = String::from_utf8(out).unwrap();
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
        let mut out = Vec::new();
        for i in 0..PER_SECOND {
            LIMITER.report(
                &reset(),
                t0 + Duration::from_millis(u64::from(i)),
                false,
                &mut out,
            );
        }
        LIMITER.report(&reset(), t0 + Duration::from_millis(20), true, &mut out);
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 11);
    }
}
