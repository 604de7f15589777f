//! hello-client as a library: one exchange with a server, over TCP or UDP, with the
//! reply's raw bytes and what the exchange took (attempts, addresses, times), or only a
//! connection (`--connect-only`); retried until a deadline when asked to wait for the
//! server; several servers at once.
//!
//! ```text
//! terminal 1: hello-server 9190
//! terminal 2: hello-client 127.0.0.1 9190      # Message from server: Hello World!
//! ```

pub mod args;
pub mod cli;
pub mod load;
pub mod output;
pub mod textbook;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hello_proto::addr::Host;
use hello_proto::conn::peer_gone;
use hello_proto::sys::{self, Stream, Tracer};
use hello_proto::wire::{display_reply, escaped_when_shown, write_display, write_escaped};
use hello_proto::{Cause, Error, Step};
use regex::Regex;

/// Default `--timeout`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default bound on a reply (`--max-reply`).
pub const DEFAULT_MAX_REPLY: usize = 1024 * 1024;
/// Most targets checked at once, a thread each; more wait for a free thread.
pub const MAX_PARALLEL: usize = 64;
/// Bound on the last attempt made at the `--wait` deadline (see [`run`]).
pub const LAST_TRY: Duration = Duration::from_millis(50);
/// Most characters of a reply an error line quotes; a longer one is cut there, and its
/// length in bytes is given.
pub const QUOTED_REPLY: usize = 200;
/// Read buffer of a TCP reply.
const READ_BUF: usize = 64 * 1024;

/// The check a reply must pass, on its display form ([`display_reply`]).
#[derive(Debug, Clone)]
pub enum Expect {
    /// The whole reply is this (`--expect`).
    Exact(String),
    /// The reply starts with this (`--expect-prefix`).
    Prefix(String),
    /// The reply holds a match for this (`--expect-regex`).
    Regex(Regex),
}

impl Expect {
    /// The option that asked for it, as error lines name the failed step.
    pub fn option(&self) -> &'static str {
        match self {
            Expect::Exact(_) => "--expect",
            Expect::Prefix(_) => "--expect-prefix",
            Expect::Regex(_) => "--expect-regex",
        }
    }

    /// What was expected, in words: `"Hello World!"`, `a reply starting with "HTTP/1."`,
    /// `a match for /^2\d\d/`.
    pub fn wanted(&self) -> String {
        match self {
            Expect::Exact(text) => quoted(text),
            Expect::Prefix(text) => format!("a reply starting with {}", quoted(text)),
            Expect::Regex(re) => format!("a match for /{}/", quoted(re.as_str()).trim_matches('"')),
        }
    }

    /// Whether `reply` passes. The exact and prefix checks compare the display form as it
    /// is formed, stopping at the first difference, so a large reply is never shown in
    /// memory whole; a regular expression searches the whole display form.
    pub fn passes(&self, reply: &[u8]) -> bool {
        let (want, whole) = match self {
            Expect::Exact(text) => (text, true),
            Expect::Prefix(text) => (text, false),
            Expect::Regex(re) => return re.is_match(&display_reply(reply)),
        };
        let mut cmp = Compare {
            want: want.as_bytes(),
            at: 0,
            differs: false,
            longer: false,
        };
        // An error only stops the comparison early; the fields say why.
        let _ = write_display(reply, &mut cmp);
        !cmp.differs && cmp.at == want.len() && !(whole && cmp.longer)
    }
}

/// Compares a display form, as it is written, with the text wanted.
struct Compare<'a> {
    want: &'a [u8],
    /// Bytes of `want` matched so far.
    at: usize,
    /// A byte differed.
    differs: bool,
    /// All of `want` matched and more came.
    longer: bool,
}

impl fmt::Write for Compare<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let rest = &self.want[self.at..];
        let s = s.as_bytes();
        if rest.starts_with(s) {
            self.at += s.len();
            return Ok(());
        }
        if s.starts_with(rest) {
            self.at = self.want.len();
            self.longer = true;
        } else {
            self.differs = true;
        }
        Err(fmt::Error)
    }
}

/// A reply's display form as an error line quotes it: in double quotes, at most
/// [`QUOTED_REPLY`] characters, then `…` and the reply's length when it was longer.
pub fn quoted_reply(reply: &[u8]) -> String {
    quoted_head(reply, reply.len(), true)
}

/// [`quoted_reply`] of a reply of `len` bytes of which only the first, `head`, were kept
/// (at least `4 ×` [`QUOTED_REPLY`] of them, or all); not `whole` when the reply was
/// still coming (its length is then only a floor).
pub fn quoted_head(head: &[u8], len: usize, whole: bool) -> String {
    let mut cut = Cut {
        text: String::new(),
        left: QUOTED_REPLY,
        cut: false,
    };
    // An error is the cut, which the field records.
    let _ = write_display(head, &mut cut);
    if !whole {
        format!("\"{}…\" (more than {len} bytes)", cut.text)
    } else if cut.cut || len > head.len() {
        format!("\"{}…\" ({len} bytes)", cut.text)
    } else {
        format!("\"{}\"", cut.text)
    }
}

/// Keeps the first `left` characters written.
struct Cut {
    text: String,
    left: usize,
    cut: bool,
}

impl fmt::Write for Cut {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.left == 0 {
                self.cut = true;
                return Err(fmt::Error);
            }
            self.text.push(c);
            self.left -= 1;
        }
        Ok(())
    }
}

/// One exchange to make.
#[derive(Debug, Clone)]
pub struct Request {
    /// The server.
    pub host: Host,
    /// Its port.
    pub port: u16,
    /// Text to send (with a NUL); `None` just reads (over UDP: sends an empty datagram).
    pub message: Option<String>,
    /// Only connect (TCP): ready once the connection is made; nothing sent or read.
    pub connect_only: bool,
    /// Datagram instead of stream.
    pub udp: bool,
    /// With `udp`: the textbook's first UDP client, with no `connect()` (its address comes
    /// at the first `sendto()`, and a datagram from anyone is taken as the reply).
    pub unconnected: bool,
    /// Bound on connecting, and again on reading the whole reply.
    pub timeout: Duration,
    /// Bound on the reply's size.
    pub max_reply: usize,
    /// The check the reply must pass (`--expect`, `--expect-prefix`, `--expect-regex`).
    pub expect: Option<Expect>,
    /// Where socket calls are narrated.
    pub tracer: Tracer,
}

impl Request {
    /// A plain hello request with the documented defaults
    /// (docs/contract.md#client-options).
    pub fn new(host: Host, port: u16) -> Request {
        Request {
            host,
            port,
            message: None,
            connect_only: false,
            udp: false,
            unconnected: false,
            timeout: DEFAULT_TIMEOUT,
            max_reply: DEFAULT_MAX_REPLY,
            expect: None,
            tracer: Tracer::off(),
        }
    }

    /// The bytes sent: the message and its NUL, as the textbook client writes a C string.
    fn payload(&self) -> Vec<u8> {
        self.message
            .as_deref()
            .map(hello_proto::wire::c_string)
            .unwrap_or_default()
    }
}

/// Why an exchange failed: a socket step, or a reply other than the one expected.
#[derive(Debug)]
pub enum Failure {
    /// A call failed, timed out, or the reply was malformed (docs/contract.md's error lines).
    Step(Error),
    /// The reply came whole but did not pass the check.
    Mismatch {
        /// The server's address.
        addr: SocketAddr,
        /// The option that asked (`--expect`, `--expect-prefix`, `--expect-regex`).
        option: &'static str,
        /// What it asked for, in words ([`Expect::wanted`]).
        expected: String,
        /// What came, as [`quoted_reply`] quotes it.
        received: String,
    },
}

impl Failure {
    /// The step that failed, as the error line names it: `connect()`, `--expect`.
    pub fn step(&self) -> &'static str {
        match self {
            Failure::Step(e) => e.step.name(),
            Failure::Mismatch { option, .. } => option,
        }
    }

    /// The reason alone, without step and address.
    pub fn reason(&self) -> String {
        match self {
            Failure::Step(e) => e.cause.to_string(),
            Failure::Mismatch {
                expected, received, ..
            } => format!("expected {expected}, received {received}"),
        }
    }
}

impl fmt::Display for Failure {
    /// `connect() error: 127.0.0.1:9190: Connection refused (os error 111)`, or
    /// `--expect error: 127.0.0.1:9190: expected "Bye", received "Hello World!"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Step(e) => e.fmt(f),
            Failure::Mismatch { addr, option, .. } => write!(f, "{option} error: {addr}: {}", self.reason()),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Step(e)
    }
}

/// `text` in double quotes, with the characters a command-line argument may hold escaped
/// as in a displayed reply, so that the error stays one line.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c != '\t' && escaped_when_shown(c) {
            // Writing to a String cannot fail.
            let _ = write_escaped(c, &mut out);
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

/// What one exchange with one server came to: the reply and every figure `--json` prints.
/// Times count from the start of the attempt that made the exchange (its name
/// resolution included); `waited` is how long the attempts before it took.
#[derive(Debug)]
pub struct Report {
    /// The server address the exchange was made with (or last tried).
    pub addr: Option<SocketAddr>,
    /// This end's address: the ephemeral port the kernel chose at `connect()`.
    pub local: Option<SocketAddr>,
    /// Bytes of the request sent (the message and its NUL).
    pub sent: usize,
    /// The reply's bytes, exactly as received.
    pub reply: Vec<u8>,
    /// Attempts made: 1, or more with `--wait`.
    pub attempts: u32,
    /// From the first attempt's start to the last one's.
    pub waited: Duration,
    /// From the first attempt's start to the end of the last: the whole probe.
    pub elapsed: Duration,
    /// Until the connection was made (TCP) or the socket connected (UDP).
    pub connect: Option<Duration>,
    /// Until the first byte of the reply.
    pub first_byte: Option<Duration>,
    /// Until the exchange ended, well or not.
    pub total: Duration,
    /// How it ended.
    pub outcome: Result<(), Failure>,
}

impl Report {
    fn new() -> Report {
        Report {
            addr: None,
            local: None,
            sent: 0,
            reply: Vec::new(),
            attempts: 0,
            waited: Duration::ZERO,
            elapsed: Duration::ZERO,
            connect: None,
            first_byte: None,
            total: Duration::ZERO,
            outcome: Ok(()),
        }
    }

    /// Whether the exchange succeeded.
    pub fn ok(&self) -> bool {
        self.outcome.is_ok()
    }

    /// Forgets what the attempt before found, for the next one.
    fn start_attempt(&mut self) {
        self.addr = None;
        self.local = None;
        self.sent = 0;
        self.reply.clear();
        self.connect = None;
        self.first_byte = None;
        self.outcome = Ok(());
    }
}

/// The pauses between attempts while waiting for a server: 50 ms, doubling each time,
/// never more than 1 s (50, 100, 200, 400, 800, 1000, 1000, … ms). Short at first, since
/// a server that is starting is usually up within a few hundred milliseconds; bounded,
/// so that one that takes long is still noticed within a second.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    /// The first pause.
    pub const FIRST: Duration = Duration::from_millis(50);
    /// The longest pause.
    pub const MAX: Duration = Duration::from_secs(1);

    /// A schedule starting at [`Backoff::FIRST`].
    pub fn new() -> Backoff {
        Backoff { next: Backoff::FIRST }
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let pause = self.next;
        self.next = (pause * 2).min(Backoff::MAX);
        Some(pause)
    }
}

/// Makes the exchange and returns the reply's bytes exactly as received.
pub fn exchange(req: &Request) -> Result<Vec<u8>, Failure> {
    let report = run(req, None);
    report.outcome.map(|()| report.reply)
}

/// Makes the exchange, and reports it. Without `wait` (or with 0), one attempt. With
/// it, every failed attempt (refused, reset, closed before any data, timed out, not as
/// expected) is followed by another until `wait` has passed: each is bounded, its
/// connection and its exchange alike, by `--timeout` and by the time left, tries every
/// address of the name, and is followed by a pause from [`Backoff`]. A pause that would
/// end past the deadline ends at it instead, and one last attempt is made there, bounded
/// by [`LAST_TRY`]: so the server gets the whole `wait`, and the probe ends at most about
/// 50 ms after it, whatever `--timeout` says.
pub fn run(req: &Request, wait: Option<Duration>) -> Report {
    let first = Instant::now();
    let deadline = wait.filter(|w| !w.is_zero()).map(|w| first + w);
    let mut pauses = Backoff::new();
    let mut last_try = false;
    let mut report = Report::new();
    // Bounded: every failed attempt is followed by a pause of at least 50 ms, or ends the
    // loop, and the pauses stop at the deadline.
    loop {
        report.attempts += 1;
        report.start_attempt();
        let start = if report.attempts == 1 {
            first
        } else {
            Instant::now()
        };
        report.waited = start - first;
        let until = match deadline {
            Some(_) if last_try => Some(start + LAST_TRY),
            d => d,
        };
        let got = if req.udp {
            udp_attempt(req, start, until, &mut report)
        } else {
            tcp_attempt(req, start, until, &mut report)
        };
        let got = got.and_then(|()| check_expected(req, &report));
        let now = Instant::now();
        report.total = now - start;
        report.elapsed = now - first;
        let Err(failure) = got else {
            return report;
        };
        let left = deadline.map_or(Duration::ZERO, |d| d.saturating_duration_since(now));
        if last_try || left.is_zero() {
            report.outcome = Err(failure);
            return report;
        }
        let pause = pauses.next().unwrap_or(Backoff::MAX);
        if pause >= left {
            last_try = true;
        }
        std::thread::sleep(pause.min(left));
    }
}

/// Checks a whole reply against `--expect`, `--expect-prefix` or `--expect-regex`.
fn check_expected(req: &Request, report: &Report) -> Result<(), Failure> {
    let (Some(expect), Some(addr)) = (&req.expect, report.addr) else {
        return Ok(());
    };
    if expect.passes(&report.reply) {
        return Ok(());
    }
    Err(Failure::Mismatch {
        addr,
        option: expect.option(),
        expected: expect.wanted(),
        received: quoted_reply(&report.reply),
    })
}

/// The bound on a call made at `now`: `--timeout`, cut to what is left until `until`.
fn bound(req: &Request, until: Option<Instant>, now: Instant) -> Duration {
    until.map_or(req.timeout, |u| req.timeout.min(u.saturating_duration_since(now)))
}

/// A bound as an error line names it: `--timeout` as given, and a bound cut to the time
/// left rounded (to the millisecond, or to a tenth of a second from 1 s on), so that it
/// reads `3s`, not `2.999997635s`.
fn shown(req: &Request, d: Duration) -> Duration {
    if d == req.timeout { d } else { rounded(d) }
}

/// [`shown`]'s rounding.
fn rounded(d: Duration) -> Duration {
    let ms = d.as_millis();
    let ms = if ms >= 1000 {
        (ms + 50) / 100 * 100
    } else {
        ms.max(1)
    };
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// A duration as messages show it to people: `250ms`, `3.0s`, `2m5s`, `1h30m`.
pub fn for_people(d: Duration) -> String {
    let secs = d.as_secs();
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m{}s", secs / 60, secs % 60)
    } else {
        format!("{}h{}m", secs / 3600, secs % 3600 / 60)
    }
}

/// Each of several targets checked in parallel, at most [`MAX_PARALLEL`] at once; the
/// reports in the order of `reqs`.
pub fn run_all(reqs: &[Request], wait: Option<Duration>) -> Vec<Report> {
    if let [one] = reqs {
        return vec![run(one, wait)];
    }
    let next = AtomicUsize::new(0);
    let done: Vec<Mutex<Option<Report>>> = reqs.iter().map(|_| Mutex::new(None)).collect();
    let work = || {
        // Bounded by the number of targets: each pass takes one.
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(req) = reqs.get(i) else { break };
            let report = run(req, wait);
            *done[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(report);
        }
    };
    std::thread::scope(|s| {
        for _ in 1..reqs.len().min(MAX_PARALLEL) {
            // A thread that cannot be started leaves its share to the others (this one
            // included), which only makes the checks less parallel.
            if std::thread::Builder::new().spawn_scoped(s, work).is_err() {
                break;
            }
        }
        work();
    });
    done.into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(Report::new)
        })
        .collect()
}

/// One TCP attempt: resolve, connect to each address in turn until one takes, then the
/// whole exchange (or, with `connect_only`, nothing more).
fn tcp_attempt(
    req: &Request,
    start: Instant,
    until: Option<Instant>,
    report: &mut Report,
) -> Result<(), Failure> {
    let addrs = sys::resolve(&req.host, req.port)?;
    let (stream, addr) = connect(req, &addrs, until, report)?;
    report.connect = Some(start.elapsed());
    if req.connect_only {
        stream.close();
        return Ok(());
    }
    tcp_exchange(req, stream, addr, start, until, report).map_err(Failure::Step)
}

/// Tries each address in turn, as `nc` does, and keeps the first connection made.
fn connect(
    req: &Request,
    addrs: &[SocketAddr],
    until: Option<Instant>,
    report: &mut Report,
) -> Result<(Stream, SocketAddr), Error> {
    let mut last = None;
    for &addr in addrs {
        let limit = bound(req, until, Instant::now());
        if limit.is_zero() {
            break;
        }
        report.addr = Some(addr);
        match sys::connect_tcp(addr, limit, &req.tracer) {
            Ok((s, local)) => {
                report.local = local;
                return Ok((s, addr));
            }
            Err(mut e) => {
                if let Cause::TimedOut(d) = e.cause {
                    e.cause = Cause::TimedOut(shown(req, d));
                }
                last = Some(e);
            }
        }
    }
    let target = report
        .addr
        .map_or_else(|| req.host.with_port(req.port), |a| a.to_string());
    Err(last.unwrap_or_else(|| Error::new(Step::Connect, target, Cause::TimedOut(req.timeout))))
}

fn tcp_exchange(
    req: &Request,
    stream: Stream,
    addr: SocketAddr,
    start: Instant,
    until: Option<Instant>,
    report: &mut Report,
) -> Result<(), Error> {
    let now = Instant::now();
    let limit = bound(req, until, now);
    let deadline = now + limit;
    let fail = |step, e| Error::new(step, addr, Cause::within(e, shown(req, limit)));
    // A server may answer and close before it reads the message (the hello service
    // never reads): a send that fails because the peer is gone ends the sending, and the
    // reply is still read. The failure is reported only if no reply came.
    let send_failure = match &req.message {
        Some(_) => send_message(req, &stream, deadline, &mut report.sent)
            .map_err(|(step, e)| fail(step, e))?
            .map(|(step, e)| fail(step, e)),
        None => None,
    };
    let got = read_reply(req, &stream, deadline, start, report);
    stream.close();
    match got {
        // The reply passed `--expect-prefix` before its end, which was not awaited.
        Ok(Read::Settled) => Ok(()),
        Ok(Read::Whole) if req.message.is_some() => match cut_short(&report.reply) {
            Some((announced, received)) => Err(Error::new(
                Step::Read,
                addr,
                Cause::CutShort { announced, received },
            )),
            None if report.reply.is_empty() => {
                Err(send_failure.unwrap_or_else(|| Error::new(Step::Read, addr, Cause::ClosedEarly)))
            }
            None => Ok(()),
        },
        Ok(Read::Whole) if !report.reply.is_empty() => Ok(()),
        Ok(Read::Whole) => {
            Err(send_failure.unwrap_or_else(|| Error::new(Step::Read, addr, Cause::ClosedEarly)))
        }
        Err(ReadFailure::Os(e)) => Err(send_failure.unwrap_or_else(|| fail(Step::Read, e))),
        Err(ReadFailure::TooLong) => Err(Error::new(Step::Read, addr, Cause::TooLong(req.max_reply))),
    }
}

/// Writes the message and its NUL, then half-closes (`shutdown(SHUT_WR)`): the server
/// sees end of stream and can still answer. `Ok(Some(_))`: the server is already gone,
/// which only matters if no reply comes. `sent` counts the bytes written.
fn send_message(
    req: &Request,
    stream: &Stream,
    deadline: Instant,
    sent: &mut usize,
) -> Result<Option<(Step, io::Error)>, (Step, io::Error)> {
    let payload = req.payload();
    let mut rest = &payload[..];
    while !rest.is_empty() {
        set_timeout(deadline, |t| stream.set_write_timeout(t)).map_err(|e| (Step::Write, e))?;
        match stream.write(rest) {
            Ok(0) => return Err((Step::Write, io::ErrorKind::WriteZero.into())),
            Ok(n) => {
                *sent += n;
                rest = &rest[n..];
            }
            Err(e) if peer_gone(&e) => return Ok(Some((Step::Write, e))),
            Err(e) if slice_ended(&e, deadline) => {}
            Err(e) => return Err((Step::Write, e)),
        }
    }
    match stream.shutdown_write() {
        Ok(()) => Ok(None),
        Err(e) if peer_gone(&e) => Ok(Some((Step::Shutdown, e))),
        Err(e) => Err((Step::Shutdown, e)),
    }
}

enum ReadFailure {
    Os(io::Error),
    TooLong,
}

/// How reading a reply ended well.
enum Read {
    /// At end of stream: the reply is whole.
    Whole,
    /// Before it: what came already passed `--expect-prefix`, and more cannot change that.
    Settled,
}

/// Whether `reply`, so far, already passes `--expect-prefix`: its display form starts
/// with the text, which more bytes can only follow. So a service that greets and then
/// waits for its client (SSH, SMTP, MySQL) passes without its end of stream. A text
/// holding U+FFFD is left to the whole reply: an incomplete character at the end of
/// what came shows as one until the rest of it comes.
fn settled(req: &Request, reply: &[u8]) -> bool {
    match &req.expect {
        Some(e @ Expect::Prefix(text)) => !text.contains(char::REPLACEMENT_CHARACTER) && e.passes(reply),
        _ => false,
    }
}

/// Reads until end of stream (TCP has no message boundaries) into `report.reply`, noting
/// when the first byte came, or until the reply is [`settled`].
fn read_reply(
    req: &Request,
    stream: &Stream,
    deadline: Instant,
    start: Instant,
    report: &mut Report,
) -> Result<Read, ReadFailure> {
    let mut buf = vec![0u8; READ_BUF];
    loop {
        set_timeout(deadline, |t| stream.set_read_timeout(t)).map_err(ReadFailure::Os)?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(Read::Whole),
            Ok(n) if report.reply.len() + n > req.max_reply => return Err(ReadFailure::TooLong),
            Ok(n) => {
                if report.first_byte.is_none() {
                    report.first_byte = Some(start.elapsed());
                }
                report.reply.extend_from_slice(&buf[..n]);
                if settled(req, &report.reply) {
                    return Ok(Read::Settled);
                }
            }
            Err(e) if slice_ended(&e, deadline) => {}
            // A reset is never taken for the end of a reply: the reply may be cut short
            // (docs/contract.md#what-the-client-prints).
            Err(e) => return Err(ReadFailure::Os(e)),
        }
    }
}

/// The longest socket timeout set at once. The kernel keeps a socket timeout on its timer
/// wheel, whose granularity grows with the timeout: one of 3 s may fire 0.25 s late, one
/// of a minute 2 s late. Waiting in slices of at most a second keeps a deadline to within
/// a few milliseconds (tests/tests/probe.rs measures `--wait`'s).
const SLICE: Duration = Duration::from_secs(1);

/// Sets a socket timeout to what is left until `deadline`, a [`SLICE`] at most; a passed
/// deadline is a timeout.
fn set_timeout(deadline: Instant, set: impl Fn(Option<Duration>) -> io::Result<()>) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::ErrorKind::TimedOut.into());
    }
    set(Some(left.min(SLICE)))
}

/// Whether a call timed out at the end of a [`SLICE`] while the deadline is still ahead:
/// then it is made again.
fn slice_ended(e: &io::Error, deadline: Instant) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) && Instant::now() < deadline
}

/// One UDP attempt: a datagram and its reply.
fn udp_attempt(
    req: &Request,
    start: Instant,
    until: Option<Instant>,
    report: &mut Report,
) -> Result<(), Failure> {
    let addrs = sys::resolve(&req.host, req.port)?;
    // A datagram has no handshake to tell a dead address from a live one: use the first.
    let addr = addrs[0];
    report.addr = Some(addr);
    let (socket, local) = if req.unconnected {
        // The textbook's first UDP client: no connect(); its address comes at sendto().
        (sys::unconnected_udp(addr, &req.tracer)?, None)
    } else {
        sys::connect_udp(addr, &req.tracer)?
    };
    report.local = local;
    report.connect = Some(start.elapsed());
    let limit = bound(req, until, Instant::now());
    let fail = |step, e| Error::new(step, addr, Cause::within(e, shown(req, limit)));
    // sendto() with the address, as the textbook UDP client does (and as traced); on the
    // connected socket it goes to the same server.
    let payload = req.payload();
    let got = match socket.send_to(&payload, addr) {
        Ok(n) => {
            report.sent = n;
            receive(&socket, Instant::now() + limit).map_err(|e| fail(Step::Recvfrom, e))
        }
        Err(e) => Err(fail(Step::Sendto, e)),
    };
    socket.close();
    let reply = got?;
    report.first_byte = Some(start.elapsed());
    let too_long = reply.len() > req.max_reply;
    report.reply = reply;
    if too_long {
        return Err(Error::new(Step::Recvfrom, addr, Cause::TooLong(req.max_reply)).into());
    }
    Ok(())
}

/// The first datagram from the server before `deadline`.
fn receive(socket: &sys::Dgram, deadline: Instant) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    // Bounded by `deadline`: each pass sets a timeout of what is left of it, a slice at
    // most, and a passed deadline ends the loop.
    loop {
        set_timeout(deadline, |t| socket.set_read_timeout(t))?;
        // Only a shutdown gives no sender, and nothing shuts this socket down: go on.
        match socket.recv_from(&mut buf) {
            Ok(Some((n, _))) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Ok(None) => {}
            Err(e) if slice_ended(&e, deadline) => {}
            Err(e) => return Err(e),
        }
    }
}

/// An echo reply `"<len> : <msg>"` whose message is shorter than its `<len>`: the bytes
/// announced and received. A reply that ended early in a clean end of stream (a server
/// that gave up and closed) is told apart this way; anything not of that form is left
/// alone.
pub fn cut_short(reply: &[u8]) -> Option<(usize, usize)> {
    let digits = reply.iter().take_while(|b| b.is_ascii_digit()).count();
    let rest = reply[digits..].strip_prefix(b" : ")?;
    let announced: usize = std::str::from_utf8(&reply[..digits]).ok()?.parse().ok()?;
    let msg = match rest.last() {
        Some(0 | b'\n') => &rest[..rest.len() - 1],
        _ => rest,
    };
    (msg.len() < announced).then_some((announced, msg.len()))
}

/// The note a failed `--wait` adds to its error line: the attempts and the time they
/// took, measured (`; 12 attempts in 5.0s`).
pub fn attempts_note(report: &Report) -> String {
    format!(
        "; {} in {}",
        hello_proto::words::counted(report.attempts.into(), "attempt"),
        for_people(report.elapsed)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_echo_reply_shorter_than_its_length_is_cut_short() {
        assert_eq!(cut_short(b"4000000 : yyy"), Some((4_000_000, 3)));
        assert_eq!(cut_short(b"5 : hel"), Some((5, 3)));
        assert_eq!(cut_short(b"5 : hello\0"), None);
        assert_eq!(cut_short(b"2 : hi\n"), None);
        assert_eq!(cut_short(b"0 : \0"), None);
        assert_eq!(cut_short(b"Hello World!\0"), None, "not an echo reply");
        assert_eq!(cut_short(b"error: message longer than 8 bytes\0"), None);
        assert_eq!(cut_short(b"99999999999999999999999 : x"), None, "no such length");
    }

    #[test]
    fn the_backoff_starts_at_50ms_and_doubles_up_to_1s() {
        let ms: Vec<u128> = Backoff::new().take(8).map(|d| d.as_millis()).collect();
        assert_eq!(ms, [50, 100, 200, 400, 800, 1000, 1000, 1000]);
    }

    #[test]
    fn a_mismatch_line_quotes_both_sides_on_one_line() {
        let req = Request {
            expect: Some(Expect::Exact("two\nlines\u{202e}".into())),
            ..Request::new(Host::parse("127.0.0.1").unwrap(), 9190)
        };
        let mut report = Report::new();
        report.addr = Some("127.0.0.1:9190".parse().unwrap());
        report.reply = b"Hello World!\0".to_vec();
        let f = check_expected(&req, &report).unwrap_err();
        assert_eq!(
            f.to_string(),
            r#"--expect error: 127.0.0.1:9190: expected "two\nlines\u{202e}", received "Hello World!""#
        );
        assert_eq!(f.step(), "--expect");
        // A long reply is quoted only in part, with its length.
        report.reply = vec![b'y'; 100_000];
        let line = check_expected(&req, &report).unwrap_err().to_string();
        assert!(
            line.ends_with(&format!("\"{}…\" (100000 bytes)", "y".repeat(QUOTED_REPLY))),
            "{line}"
        );
    }

    #[test]
    fn each_check_passes_and_fails_on_the_display_form() {
        let exact = Expect::Exact("Hello World!".into());
        let prefix = Expect::Prefix("HTTP/1.1 2".into());
        let re = Expect::Regex(Regex::new(r"^HTTP/1\.[01] 200 .*\\r\\nServer").unwrap());
        assert!(exact.passes(b"Hello World!\0"));
        for no in [&b"Hello World"[..], b"Hello World!!", b"", b"Hello\nWorld!"] {
            assert!(!exact.passes(no), "{no:?}");
        }
        assert!(prefix.passes(b"HTTP/1.1 204 No Content\r\n\r\n"));
        assert!(prefix.passes(b"HTTP/1.1 2"));
        assert!(!prefix.passes(b"HTTP/1.1 "), "shorter than the prefix");
        assert!(!prefix.passes(b"HTTP/1.1 404 Not Found\r\n"));
        // The pattern sees the reply as printed: a CR LF inside is the text \r\n.
        assert!(re.passes(b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\n"));
        assert!(!re.passes(b"HTTP/1.0 404 Not Found\r\nServer: x\r\n"));
        assert_eq!(exact.option(), "--expect");
        assert_eq!(prefix.wanted(), r#"a reply starting with "HTTP/1.1 2""#);
        assert_eq!(re.option(), "--expect-regex");
    }

    #[test]
    fn durations_are_rounded_for_people() {
        let ms = Duration::from_millis;
        assert_eq!(for_people(ms(250)), "250ms");
        assert_eq!(for_people(Duration::from_nanos(2_999_997_635)), "3.0s");
        assert_eq!(for_people(ms(125_000)), "2m5s");
        assert_eq!(for_people(ms(5_400_000)), "1h30m");
        assert_eq!(rounded(Duration::from_nanos(2_999_997_635)), ms(3000));
        assert_eq!(rounded(Duration::from_micros(249_700)), ms(249));
        // --timeout itself is named as given; only a bound cut to the time left is rounded.
        let req = Request {
            timeout: ms(2250),
            ..Request::new(Host::parse("127.0.0.1").unwrap(), 9)
        };
        assert_eq!(shown(&req, ms(2250)), ms(2250));
        assert_eq!(shown(&req, Duration::from_nanos(1_999_999_001)), ms(2000));
    }

    #[test]
    fn waiting_for_a_closed_port_gives_up_at_the_deadline_with_every_attempt_counted() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let req = Request::new(Host::parse("127.0.0.1").unwrap(), port);
        let t0 = Instant::now();
        let report = run(&req, Some(Duration::from_millis(400)));
        let took = t0.elapsed();
        // Attempts at 0, 50, 150 ms, then 350 ms; the pause of 400 ms is cut at the
        // deadline, where the last one is made. (A machine too busy to end the 200 ms pause
        // within 50 ms of its time makes the fourth attempt at the deadline, and the last.)
        assert!((4..=5).contains(&report.attempts), "{report:?}");
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_millis(520),
            "{took:?}"
        );
        assert!(report.elapsed <= took && report.elapsed >= Duration::from_millis(400));
        assert_eq!(report.outcome.as_ref().unwrap_err().step(), "connect()");
        assert_eq!(
            attempts_note(&report),
            format!("; {} attempts in {}", report.attempts, for_people(report.elapsed))
        );
    }
}
