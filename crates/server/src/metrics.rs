//! The server's counters: connections accepted, exchanges by how they ended and how long
//! they took, datagrams answered, the server's state. Always kept (SIGUSR1 prints them
//! without `--metrics`), so they must cost nothing measurable: each thread counts in a
//! `Shard` of its own — written only by that thread, with a plain load and store (no
//! locked instruction, no cache line shared with another counting thread) — and a reader
//! sums the shards ([`snapshot`]). A thread that ends folds its shard into the retired
//! counts, so the registry holds only live threads (the threads model's come and go).
//!
//! A fork model child's counts would die with it: the fork model counts exchanges in
//! memory it shares with its children instead ([`share_with_children`]; a locked add per
//! exchange, which only the children's ends contend for). A message up the log's pipe
//! per exchange was tried first: it cost a measured 15 % of the fork model's CPU per
//! connection (docs/performance.md).
//!
//! The words: [`Snapshot::exposition`] (Prometheus text format 0.0.4, for `--metrics`)
//! and [`Snapshot::line`] (the SIGUSR1 line). Neither does I/O; `exporter` serves the first.

use std::cell::OnceCell;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hello_proto::conn::Outcome;
use hello_proto::{Cause, Error};

/// How an exchange ended, as the `outcome` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The whole reply went out and the connection was closed.
    Ok,
    /// The client left before the end without it mattering.
    PeerGone,
    /// Idle or request timeout.
    Timeout,
    /// The peer reset the connection (or the pipe broke).
    Reset,
    /// Answered "server busy" (`--max-buffered`).
    Busy,
    /// A PROXY header missing, invalid or from a peer not believed.
    Proxy,
    /// Still unfinished when the stop's grace ran out (reset).
    Unfinished,
    /// Any other failure (a `fork()` that failed, a refused call).
    Error,
}

/// Every [`Ended`], in the order the exposition lists them.
pub const ENDINGS: [Ended; 8] = [
    Ended::Ok,
    Ended::PeerGone,
    Ended::Timeout,
    Ended::Reset,
    Ended::Busy,
    Ended::Proxy,
    Ended::Unfinished,
    Ended::Error,
];

impl Ended {
    /// The `outcome` label.
    pub fn label(self) -> &'static str {
        match self {
            Ended::Ok => "ok",
            Ended::PeerGone => "peer_gone",
            Ended::Timeout => "timeout",
            Ended::Reset => "reset",
            Ended::Busy => "busy",
            Ended::Proxy => "proxy",
            Ended::Unfinished => "unfinished",
            Ended::Error => "error",
        }
    }

    /// How the core's outcome counts.
    pub fn of(outcome: &Outcome) -> Ended {
        match outcome {
            Outcome::Served => Ended::Ok,
            Outcome::PeerGone => Ended::PeerGone,
            Outcome::Failed { cause, .. } => Ended::of_cause(cause),
        }
    }

    /// How a failure's cause counts.
    pub fn of_cause(cause: &Cause) -> Ended {
        match cause {
            Cause::TimedOut(_) | Cause::RequestTimedOut(_) => Ended::Timeout,
            Cause::Busy => Ended::Busy,
            Cause::ProxyHeader(_) => Ended::Proxy,
            Cause::Unfinished => Ended::Unfinished,
            Cause::Os(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ECONNRESET | libc::EPIPE | libc::ECONNABORTED)
                ) =>
            {
                Ended::Reset
            }
            _ => Ended::Error,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The histogram's upper bounds, in seconds (a hello exchange on loopback takes tens of
/// microseconds; a trickling echo request up to the request timeout).
pub const BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The bounds in nanoseconds, for the counting side.
const BUCKET_NANOS: [u64; 16] = {
    let mut out = [0u64; 16];
    let micros = [
        100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
        2_500_000, 5_000_000, 10_000_000,
    ];
    let mut i = 0;
    while i < 16 {
        out[i] = micros[i] * 1_000;
        i += 1;
    }
    out
};

/// Where each count is in a [`Shard`]: connections accepted, then the exchanges by
/// [`ENDINGS`], per duration bucket (not cumulative; the last above every bound), their
/// durations summed in nanoseconds, the datagrams answered and those whose reply failed.
const ACCEPTED: usize = 0;
const ENDED: usize = ACCEPTED + 1;
const BUCKETED: usize = ENDED + ENDINGS.len();
const NANOS: usize = BUCKETED + BUCKETS.len() + 1;
const DATAGRAMS_OK: usize = NANOS + 1;
const DATAGRAMS_FAILED: usize = DATAGRAMS_OK + 1;
/// Counts in a shard.
const COUNTS: usize = DATAGRAMS_FAILED + 1;

/// One thread's counts (laid out as [`ACCEPTED`] and the rest say). Only its thread writes
/// it; readers load.
pub(crate) struct Shard([AtomicU64; COUNTS]);

impl Default for Shard {
    fn default() -> Self {
        Shard(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// A count only its own thread writes: a load and a store (no locked read-modify-write).
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

/// A count several processes write (the fork model's children): a locked add.
fn add(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// Adds the counts of `counts` (a shard's, or the shared ones) into `into`.
fn sum(counts: &[AtomicU64], into: &mut [u64; COUNTS]) {
    for (sum, n) in into.iter_mut().zip(counts) {
        *sum = sum.wrapping_add(n.load(Ordering::Relaxed));
    }
}

/// The live threads' shards.
struct Registry {
    live: Vec<Arc<Shard>>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry { live: Vec::new() });
/// What ended threads counted (added under the registry's lock).
static RETIRED: std::sync::LazyLock<Shard> = std::sync::LazyLock::new(Shard::default);
/// The fork model's counts of exchanges, in memory its children share
/// ([`share_with_children`]).
static SHARED: std::sync::OnceLock<&'static [AtomicU64]> = std::sync::OnceLock::new();

fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A thread's shard, registered on its first count and retired when the thread ends.
struct Local(Arc<Shard>);

impl Drop for Local {
    fn drop(&mut self) {
        let mut reg = registry();
        for (to, from) in RETIRED.0.iter().zip(&self.0.0) {
            add(to, from.load(Ordering::Relaxed));
        }
        reg.live.retain(|s| !Arc::ptr_eq(s, &self.0));
    }
}

thread_local! {
    static LOCAL: OnceCell<Local> = const { OnceCell::new() };
}

/// Runs `count` on this thread's shard (registering it the first time).
fn with_shard(count: impl FnOnce(&[AtomicU64])) {
    // A thread being torn down has no shard any more: its last counts are lost rather
    // than a panic (it counts nothing by then).
    let _ = LOCAL.try_with(|cell| {
        let local = cell.get_or_init(|| {
            let shard = Arc::new(Shard::default());
            registry().live.push(Arc::clone(&shard));
            Local(shard)
        });
        count(&local.0.0);
    });
}

/// The fork model, before its first child: connections and exchanges are counted from now on in memory
/// shared with the children (`sys::process::shared_counters`), each child adding its own
/// exchange there when it ends — no system call, no message to the parent.
pub fn share_with_children() -> std::io::Result<()> {
    if SHARED.get().is_none() {
        let _ = SHARED.set(hello_proto::sys::process::shared_counters(COUNTS)?);
    }
    Ok(())
}

/// A connection was accepted (in the fork model, counted in the shared memory too: the
/// parent's own pages are shared copy-on-write with its children, and a count written
/// there after each `fork()` would copy a page).
pub fn accepted() {
    match SHARED.get() {
        Some(shared) => add(&shared[ACCEPTED], 1),
        None => with_shard(|s| bump(&s[ACCEPTED], 1)),
    }
}

/// An exchange ended as `ended`, `took` after its accept.
pub fn exchange_ended(ended: Ended, took: Duration) {
    let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
    let bucket = BUCKETED
        + BUCKET_NANOS
            .iter()
            .position(|&b| nanos <= b)
            .unwrap_or(BUCKETS.len());
    let count = |s: &[AtomicU64], bump: fn(&AtomicU64, u64)| {
        bump(&s[ENDED + ended.index()], 1);
        bump(&s[bucket], 1);
        bump(&s[NANOS], nanos);
    };
    match SHARED.get() {
        Some(shared) => count(shared, add),
        None => with_shard(|s| count(s, bump)),
    }
}

/// A datagram was answered (`failed`: its reply could not be sent).
pub fn datagram(failed: bool) {
    with_shard(|s| bump(&s[if failed { DATAGRAMS_FAILED } else { DATAGRAMS_OK }], 1));
}

/// The server's state, as `hello_server_state` says it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum State {
    /// Serving.
    #[default]
    Up,
    /// The drain delay: serving, the agent saying "drain".
    Draining,
    /// Stopping: no new client is taken, the exchanges in flight finish.
    Stopping,
}

static STATE: AtomicU8 = AtomicU8::new(0);

/// The server is now in `state`.
pub fn set_state(state: State) {
    STATE.store(state as u8, Ordering::Relaxed);
}

fn state() -> State {
    match STATE.load(Ordering::Relaxed) {
        0 => State::Up,
        1 => State::Draining,
        _ => State::Stopping,
    }
}

/// At most one SIGUSR1 line this often: the signals that come in between are answered by
/// one line when it is up, with the counters then (a flood of signals is not a flood of
/// lines, and the last signal still has its line).
pub const LINE_EVERY: Duration = Duration::from_millis(100);

/// Set by SIGUSR1 ([`ask`], or the signal handler itself in the fork model's parent, which
/// prints the line on its loop's next turn); cleared when the line is printed.
static ASKED: std::sync::LazyLock<Arc<AtomicBool>> = std::sync::LazyLock::new(Arc::default);

/// When the last SIGUSR1 line was printed.
static PRINTED: Mutex<Option<Instant>> = Mutex::new(None);

/// The thread that prints the lines a signal thread asks for ([`start_printer`]).
static PRINTER: std::sync::OnceLock<std::thread::Thread> = std::sync::OnceLock::new();

/// The flag SIGUSR1 sets where no thread waits for signals.
pub fn asked_flag() -> Arc<AtomicBool> {
    Arc::clone(&ASKED)
}

/// SIGUSR1, received by a signal thread: the printer prints the line at once, or when
/// [`LINE_EVERY`] has passed since the last one.
pub fn ask() {
    ASKED.store(true, Ordering::Relaxed);
    if let Some(printer) = PRINTER.get() {
        printer.unpark();
    }
}

/// Prints the counters' line on stderr if SIGUSR1 asked for it since the last line and
/// [`LINE_EVERY`] has passed since then; otherwise says how long until it may (`None`:
/// nothing asked, or printed now).
pub fn print_if_asked() -> Option<Duration> {
    if !ASKED.load(Ordering::Relaxed) {
        return None;
    }
    let now = Instant::now();
    {
        let mut printed = PRINTED.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(since) = printed.map(|at| now.saturating_duration_since(at))
            && since < LINE_EVERY
        {
            return Some(LINE_EVERY - since);
        }
        *printed = Some(now);
        ASKED.store(false, Ordering::Relaxed);
    }
    print_line();
    None
}

/// Starts the thread that prints the lines [`ask`] asks for, so that the signal thread
/// never waits out [`LINE_EVERY`] (a stop signal is taken at once, whatever came before).
pub fn start_printer() -> std::io::Result<()> {
    hello_proto::sys::process::spawn_thread(
        c"counters",
        64 << 10,
        Box::new(|| {
            let _ = PRINTER.set(std::thread::current());
            loop {
                match print_if_asked() {
                    Some(wait) => std::thread::sleep(wait),
                    None => std::thread::park(),
                }
            }
        }),
    )
}

/// The counters as one line on stderr (SIGUSR1), in one `write()`; with `--log-format
/// json`, a record whose `counters` are the line's fields.
pub fn print_line() {
    let (now, labels) = (snapshot(), labels());
    let mut fields = serde_json::Map::new();
    fields.insert("counters".into(), now.json(&labels).into());
    crate::log::say(crate::log::Level::Info, "counters", &now.line(&labels), fields);
}

/// The counts of every thread, now.
pub fn snapshot() -> Snapshot {
    let mut counts = [0u64; COUNTS];
    {
        let reg = registry();
        sum(&RETIRED.0, &mut counts);
        for shard in &reg.live {
            sum(&shard.0, &mut counts);
        }
    }
    if let Some(shared) = SHARED.get() {
        sum(shared, &mut counts);
    }
    let mut out = Snapshot {
        accepted: counts[ACCEPTED],
        duration_nanos: counts[NANOS],
        datagrams_ok: counts[DATAGRAMS_OK],
        datagrams_failed: counts[DATAGRAMS_FAILED],
        state: state(),
        ..Snapshot::default()
    };
    out.ended.copy_from_slice(&counts[ENDED..BUCKETED]);
    out.buckets.copy_from_slice(&counts[BUCKETED..NANOS]);
    out
}

static LABELS: std::sync::OnceLock<Labels> = std::sync::OnceLock::new();

/// Says what the server is, once, before it serves (the exposition and the line say it).
pub fn set_labels(labels: Labels) {
    let _ = LABELS.set(labels);
}

/// What [`set_labels`] said (a library user that never said: a TCP hello server).
pub fn labels() -> Labels {
    LABELS.get().cloned().unwrap_or(Labels {
        service: "hello",
        model: "epoll".into(),
        transport: "tcp",
        version: "",
        started: 0.0,
    })
}

/// What the exposition says about the server itself.
#[derive(Debug, Clone)]
pub struct Labels {
    /// `hello` or `echo`.
    pub service: &'static str,
    /// The `--model`, lowercase.
    pub model: String,
    /// `tcp` or `udp`.
    pub transport: &'static str,
    /// The version `--version` prints.
    pub version: &'static str,
    /// When the server started, seconds since the epoch.
    pub started: f64,
}

/// The counters summed at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Connections accepted.
    pub accepted: u64,
    /// Exchanges ended, by [`ENDINGS`]' order.
    pub ended: [u64; ENDINGS.len()],
    /// Exchanges per duration bucket (not cumulative; the last above every bound).
    pub buckets: [u64; BUCKETS.len() + 1],
    /// The exchanges' durations summed, in nanoseconds.
    pub duration_nanos: u64,
    /// Datagrams answered.
    pub datagrams_ok: u64,
    /// Datagrams whose reply could not be sent.
    pub datagrams_failed: u64,
    /// The server's state.
    pub state: State,
}

/// One field of the SIGUSR1 line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Field<'a> {
    /// A count.
    Count(u64),
    /// A duration in seconds (printed with microseconds).
    Seconds(f64),
    /// A word: the state, a label.
    Word(&'a str),
}

impl Snapshot {
    /// Exchanges ended, whatever the end.
    pub fn exchanges(&self) -> u64 {
        self.ended.iter().sum()
    }

    /// Connections accepted and not yet ended.
    pub fn open(&self) -> u64 {
        self.accepted.saturating_sub(self.exchanges())
    }

    /// The SIGUSR1 line's fields, in its order: the line and its JSON record both say these.
    pub fn fields<'a>(&self, labels: &'a Labels) -> Vec<(&'static str, Field<'a>)> {
        let mut out = vec![
            ("state", Field::Word(state_label(self.state))),
            ("accepted", Field::Count(self.accepted)),
            ("open", Field::Count(self.open())),
            ("exchanges", Field::Count(self.exchanges())),
        ];
        for (ended, n) in ENDINGS.iter().zip(self.ended) {
            out.push((ended.label(), Field::Count(n)));
        }
        out.extend([
            ("seconds", Field::Seconds(self.duration_nanos as f64 / 1e9)),
            ("datagrams", Field::Count(self.datagrams_ok)),
            ("datagrams_failed", Field::Count(self.datagrams_failed)),
            ("service", Field::Word(labels.service)),
            ("model", Field::Word(&labels.model)),
        ]);
        out
    }

    /// The SIGUSR1 line (without the program's name): `counters: state=up accepted=41 …`.
    pub fn line(&self, labels: &Labels) -> String {
        let mut out = String::from("counters:");
        for (name, field) in self.fields(labels) {
            let _ = match field {
                Field::Count(n) => write!(out, " {name}={n}"),
                Field::Seconds(s) => write!(out, " {name}={s:.6}"),
                Field::Word(w) => write!(out, " {name}={w}"),
            };
        }
        out
    }

    /// The SIGUSR1 line's fields as one JSON object (numbers as numbers).
    pub fn json(&self, labels: &Labels) -> serde_json::Map<String, serde_json::Value> {
        self.fields(labels)
            .into_iter()
            .map(|(name, field)| {
                let value = match field {
                    Field::Count(n) => n.into(),
                    Field::Seconds(s) => s.into(),
                    Field::Word(w) => w.into(),
                };
                (name.to_string(), value)
            })
            .collect()
    }

    /// The Prometheus text exposition (format 0.0.4): HELP and TYPE for every family.
    pub fn exposition(&self, labels: &Labels) -> String {
        let service = labels.service;
        let mut out = String::with_capacity(4096);
        family(
            &mut out,
            "hello_connections_accepted_total",
            "counter",
            "TCP connections accepted.",
        );
        let _ = writeln!(out, "hello_connections_accepted_total {}", self.accepted);
        family(
            &mut out,
            "hello_connections_open",
            "gauge",
            "TCP connections accepted whose exchange has not ended yet.",
        );
        let _ = writeln!(out, "hello_connections_open {}", self.open());
        family(
            &mut out,
            "hello_exchanges_total",
            "counter",
            "TCP exchanges ended, by how they ended.",
        );
        for (ended, n) in ENDINGS.iter().zip(self.ended) {
            let _ = writeln!(
                out,
                "hello_exchanges_total{{service=\"{service}\",outcome=\"{}\"}} {n}",
                ended.label()
            );
        }
        family(
            &mut out,
            "hello_exchange_duration_seconds",
            "histogram",
            "Time from a TCP connection's accept to its close, in seconds.",
        );
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(self.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "hello_exchange_duration_seconds_bucket{{service=\"{service}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let count: u64 = self.buckets.iter().sum();
        let _ = writeln!(
            out,
            "hello_exchange_duration_seconds_bucket{{service=\"{service}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "hello_exchange_duration_seconds_sum{{service=\"{service}\"}} {}",
            self.duration_nanos as f64 / 1e9
        );
        let _ = writeln!(
            out,
            "hello_exchange_duration_seconds_count{{service=\"{service}\"}} {count}"
        );
        family(
            &mut out,
            "hello_datagrams_total",
            "counter",
            "UDP datagrams answered, by whether the reply could be sent.",
        );
        for (outcome, n) in [("ok", self.datagrams_ok), ("error", self.datagrams_failed)] {
            let _ = writeln!(
                out,
                "hello_datagrams_total{{service=\"{service}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        family(
            &mut out,
            "hello_server_state",
            "gauge",
            "1 for the state the server is in: up, draining (the drain delay) or stopping.",
        );
        for state in [State::Up, State::Draining, State::Stopping] {
            let _ = writeln!(
                out,
                "hello_server_state{{state=\"{}\"}} {}",
                state_label(state),
                u8::from(state == self.state)
            );
        }
        family(
            &mut out,
            "hello_server_info",
            "gauge",
            "Always 1: the server's version, model, transport and service as labels.",
        );
        let _ = writeln!(
            out,
            "hello_server_info{{version=\"{}\",model=\"{}\",transport=\"{}\",service=\"{service}\"}} 1",
            escape(labels.version),
            labels.model,
            labels.transport
        );
        family(
            &mut out,
            "hello_server_start_time_seconds",
            "gauge",
            "When the server started, in seconds since the Unix epoch.",
        );
        let _ = writeln!(out, "hello_server_start_time_seconds {:.3}", labels.started);
        out
    }
}

/// A family's HELP and TYPE lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn state_label(state: State) -> &'static str {
    match state {
        State::Up => "up",
        State::Draining => "draining",
        State::Stopping => "stopping",
    }
}

/// A label value as the text format wants it: backslash, quote and newline escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counts a failure that ended an exchange before it had a core (a `fork()` that failed).
pub fn failed_before_serving(err: &Error) {
    exchange_ended(Ended::of_cause(&err.cause), Duration::ZERO);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Labels {
        Labels {
            service: "hello",
            model: "epoll".into(),
            transport: "tcp",
            version: "0.1.0 (git \"x\")",
            started: 1.5,
        }
    }

    #[test]
    fn threads_count_apart_and_a_reader_sums_them_also_after_they_end() {
        let before = snapshot();
        let workers: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..1000 {
                        accepted();
                        exchange_ended(Ended::Ok, Duration::from_micros(50));
                    }
                    exchange_ended(Ended::Timeout, Duration::from_secs(20));
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        let after = snapshot();
        // Other tests of this binary count too: at least ours are there.
        assert!(after.accepted >= before.accepted + 4000);
        assert!(after.ended[Ended::Ok.index()] >= before.ended[Ended::Ok.index()] + 4000);
        assert!(
            after.buckets[0] >= before.buckets[0] + 4000,
            "50 µs is in the first bucket"
        );
        assert!(
            after.buckets[BUCKETS.len()] >= before.buckets[BUCKETS.len()] + 4,
            "20 s is above all"
        );
        // The threads ended: their shards were retired, not kept.
        assert!(registry().live.len() < 4 + 8, "{}", registry().live.len());
    }

    #[test]
    fn endings_follow_the_cause() {
        let reset = Cause::Os(std::io::Error::from_raw_os_error(libc::ECONNRESET));
        assert_eq!(Ended::of_cause(&reset), Ended::Reset);
        assert_eq!(Ended::of_cause(&Cause::Busy), Ended::Busy);
        assert_eq!(Ended::of_cause(&Cause::TimedOut(Duration::ZERO)), Ended::Timeout);
        assert_eq!(Ended::of(&Outcome::Served), Ended::Ok);
        for (i, e) in ENDINGS.iter().enumerate() {
            assert_eq!(e.index(), i, "{}", e.label());
        }
    }

    #[test]
    fn the_exposition_has_help_type_and_a_cumulative_histogram() {
        let mut s = Snapshot {
            accepted: 5,
            ..Snapshot::default()
        };
        s.ended[Ended::Ok.index()] = 3;
        s.ended[Ended::Reset.index()] = 1;
        s.buckets[0] = 2;
        s.buckets[3] = 2;
        let text = s.exposition(&labels());
        assert!(text.contains("hello_connections_open 1\n"), "{text}");
        assert!(text.contains("le=\"0.0001\"} 2\n") && text.contains("le=\"0.001\"} 4\n"));
        assert!(text.contains("le=\"+Inf\"} 4\n"));
        assert!(text.contains("version=\"0.1.0 (git \\\"x\\\")\""), "{text}");
        let families = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        assert_eq!(families, text.lines().filter(|l| l.starts_with("# HELP")).count());
        assert_eq!(families, 8);
        let line = s.line(&labels());
        assert!(
            line.starts_with("counters: state=up accepted=5 open=1 exchanges=4 ok=3"),
            "{line}"
        );
        assert!(!line.contains('\n'));
        // The JSON record's counters are the line's fields, numbers as numbers.
        let json = s.json(&labels());
        assert_eq!(json.len(), line.split(' ').count() - 1, "{json:?}");
        assert_eq!(
            (json["accepted"].as_u64(), json["open"].as_u64()),
            (Some(5), Some(1))
        );
        assert_eq!(json["state"], "up");
        assert!(json["seconds"].is_f64());
    }
}
