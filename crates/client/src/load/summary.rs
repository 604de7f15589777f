//! What hello-load counts and reports: exchanges by how they ended, latencies in HDR
//! histograms (microseconds, 3 significant digits), and the report, as text or JSON.

use std::fmt::Write as _;
use std::io;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use hello_proto::words::counted;
use serde::{Deserialize, Serialize};

use super::Outcome;

/// Longest latency told apart, in microseconds (a day: the longest `--timeout`); longer
/// ones count as this.
const MAX_US: u64 = 86_400_000_000;

/// How a failed exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// ECONNREFUSED: nothing listening (or, over UDP, an ICMP "port unreachable").
    Refused,
    /// ECONNRESET, EPIPE, ECONNABORTED: the connection was reset.
    Reset,
    /// No whole reply within `--timeout` (or ETIMEDOUT).
    Timeout,
    /// A whole reply, not the one expected.
    Mismatch,
    /// Anything else, with the error's message (EMFILE, EADDRNOTAVAIL, …).
    Other(Option<String>),
}

impl Class {
    /// The class of a failed call.
    pub fn of(e: &io::Error) -> Class {
        match e.kind() {
            io::ErrorKind::ConnectionRefused => Class::Refused,
            io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionAborted => {
                Class::Reset
            }
            io::ErrorKind::TimedOut => Class::Timeout,
            _ => Class::Other(Some(e.to_string())),
        }
    }
}

/// Failed exchanges by class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Errors {
    /// Refused.
    pub refused: u64,
    /// Reset.
    pub reset: u64,
    /// Timed out.
    pub timeout: u64,
    /// Wrong reply.
    pub mismatch: u64,
    /// Open loop for a duration: due before its end, but not started, for want of a free
    /// place (all of `--concurrency` in flight until then).
    pub not_started: u64,
    /// Anything else.
    pub other: u64,
}

impl Errors {
    /// All of them.
    pub fn total(&self) -> u64 {
        self.refused + self.reset + self.timeout + self.mismatch + self.not_started + self.other
    }
}

/// What one thread (or, merged, the whole run) counted.
#[derive(Debug)]
pub struct Tally {
    /// Exchanges that ended whole and as expected.
    pub ok: u64,
    /// The others.
    pub errors: Errors,
    /// The message of the last `other` failure.
    pub last_other: Option<String>,
    /// When the first mismatch came, and its reply as an error line quotes it.
    pub first_mismatch: Option<(Instant, String)>,
    /// Latency of each ok exchange (µs). `None` only if the histogram could not be made.
    latency: Option<Histogram<u64>>,
    /// Open loop: how late each exchange started after its scheduled time (µs).
    lag: Option<Histogram<u64>>,
}

fn histogram() -> Option<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_US, 3).ok()
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

impl Default for Tally {
    fn default() -> Tally {
        Tally::new()
    }
}

impl Tally {
    /// Nothing counted yet.
    pub fn new() -> Tally {
        Tally {
            ok: 0,
            errors: Errors::default(),
            last_other: None,
            first_mismatch: None,
            latency: histogram(),
            lag: histogram(),
        }
    }

    /// Exchanges ended, well or not.
    pub fn exchanges(&self) -> u64 {
        self.ok + self.errors.total()
    }

    /// An exchange that ended well after `latency`.
    pub fn ok(&mut self, latency: Duration) {
        self.ok += 1;
        if let Some(h) = &mut self.latency {
            h.saturating_record(micros(latency));
        }
    }

    /// An exchange that started `late` after its scheduled time (open loop).
    pub fn lag(&mut self, late: Duration) {
        if let Some(h) = &mut self.lag {
            // 0 is a valid lag, but not a value this histogram holds (its lowest is 1).
            h.saturating_record(u64::try_from(late.as_micros()).unwrap_or(u64::MAX).max(1));
        }
    }

    /// An exchange whose reply, `len` bytes starting with `head` (and more if not
    /// `whole`), was not the one expected, at `at`.
    pub fn mismatch(&mut self, at: Instant, head: &[u8], len: usize, whole: bool) {
        self.errors.mismatch += 1;
        if self.first_mismatch.is_none() {
            self.first_mismatch = Some((at, crate::quoted_head(head, len, whole)));
        }
    }

    /// Exchanges due (open loop for a duration) that were never started.
    pub fn not_started(&mut self, n: u64) {
        self.errors.not_started += n;
    }

    /// An exchange that failed.
    pub fn failed(&mut self, class: Class) {
        let e = &mut self.errors;
        match class {
            Class::Refused => e.refused += 1,
            Class::Reset => e.reset += 1,
            Class::Timeout => e.timeout += 1,
            Class::Mismatch => e.mismatch += 1,
            Class::Other(why) => {
                e.other += 1;
                if why.is_some() {
                    self.last_other = why;
                }
            }
        }
    }

    /// Adds another thread's counts to these.
    pub fn merge(&mut self, other: Tally) {
        self.ok += other.ok;
        let (a, b) = (&mut self.errors, other.errors);
        a.refused += b.refused;
        a.reset += b.reset;
        a.timeout += b.timeout;
        a.mismatch += b.mismatch;
        a.not_started += b.not_started;
        a.other += b.other;
        if other.last_other.is_some() {
            self.last_other = other.last_other;
        }
        match (&self.first_mismatch, other.first_mismatch) {
            (Some((mine, _)), Some(theirs)) if theirs.0 < *mine => self.first_mismatch = Some(theirs),
            (None, theirs) => self.first_mismatch = theirs,
            _ => {}
        }
        for (mine, theirs) in [(&mut self.latency, other.latency), (&mut self.lag, other.lag)] {
            if let (Some(m), Some(t)) = (mine.as_mut(), theirs) {
                // Same bounds on both sides: adding cannot fail.
                let _ = m.add(t);
            }
        }
    }

    /// Latency percentiles of the ok exchanges.
    pub fn latency(&self) -> Option<Percentiles> {
        self.latency.as_ref().and_then(Percentiles::of)
    }

    /// Start-lag percentiles (open loop).
    pub fn start_lag(&self) -> Option<Percentiles> {
        self.lag.as_ref().and_then(Percentiles::of)
    }
}

/// A distribution in microseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

impl Percentiles {
    /// `None` for an empty histogram.
    fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        Some(Percentiles {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            max: h.max(),
            mean: (h.mean() * 10.0).round() / 10.0,
        })
    }

    fn line(&self) -> String {
        format!(
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {:.1})",
            self.p50, self.p90, self.p99, self.p99_9, self.max, self.mean
        )
    }
}

/// The report of a run: `--json` prints it as one object, otherwise as lines of text.
/// `cargo xtask bench` reads the object back into this same type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// `HOST:PORT` as given.
    pub target: String,
    /// The address the load went to.
    pub address: String,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Whether an exchange was only a connection (`--connect-only`).
    pub connect_only: bool,
    /// `closed` (as many in flight as `--concurrency`) or `open` (`--rate`).
    #[serde(rename = "loop")]
    pub mode: String,
    /// The rate asked for (open loop).
    pub rate_asked: Option<f64>,
    /// Exchanges in flight (closed loop), or at most in flight (open loop).
    pub concurrency: usize,
    /// Threads used.
    pub threads: usize,
    /// Exchanges made: `ok` + `failed`.
    pub exchanges: u64,
    /// Exchanges that ended whole and as expected.
    pub ok: u64,
    /// The others: the sum of `errors`.
    pub failed: u64,
    /// Failed exchanges by class.
    pub errors: Errors,
    /// The message of the last failure of class `other`.
    pub last_other_error: Option<String>,
    /// The reply of the first mismatch, quoted as hello-client's error line quotes it.
    pub first_mismatch: Option<String>,
    /// From the first start to the last end.
    pub seconds: f64,
    /// Ok exchanges (connections) per second.
    pub rate: f64,
    /// Latency of the ok exchanges, whole exchanges, µs (from the scheduled start in an
    /// open loop).
    pub latency_us: Option<Percentiles>,
    /// Open loop: how late exchanges started after their scheduled time, µs.
    pub start_lag_us: Option<Percentiles>,
    /// hello-load's own CPU time (user + system, all threads) per exchange, µs.
    pub cpu_us_per_exchange: Option<f64>,
    /// hello-load's CPU time in user mode, seconds.
    pub cpu_user_seconds: Option<f64>,
    /// hello-load's CPU time in the kernel, seconds.
    pub cpu_system_seconds: Option<f64>,
}

/// How the run was set up, for the report.
#[derive(Debug, Clone)]
pub struct Setup {
    /// `HOST:PORT` as given.
    pub target: String,
    /// The address used.
    pub address: String,
    /// Datagrams.
    pub udp: bool,
    /// `--connect-only`.
    pub connect_only: bool,
    /// `--rate`.
    pub rate: Option<f64>,
    /// `--concurrency`.
    pub concurrency: usize,
}

fn round(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

impl Summary {
    /// The report of `outcome`.
    pub fn new(setup: &Setup, outcome: &Outcome) -> Summary {
        let t = &outcome.tally;
        let secs = outcome.elapsed.as_secs_f64();
        let exchanges = t.exchanges();
        let cpu_per = outcome
            .cpu
            .filter(|_| exchanges > 0)
            .map(|(u, s)| round((u + s).as_secs_f64() * 1e6 / exchanges as f64, 2));
        Summary {
            target: setup.target.clone(),
            address: setup.address.clone(),
            protocol: if setup.udp { "udp" } else { "tcp" }.into(),
            connect_only: setup.connect_only,
            mode: if setup.rate.is_some() { "open" } else { "closed" }.into(),
            rate_asked: setup.rate,
            concurrency: setup.concurrency,
            threads: outcome.threads,
            exchanges,
            ok: t.ok,
            failed: t.errors.total(),
            errors: t.errors,
            last_other_error: t.last_other.clone(),
            first_mismatch: t.first_mismatch.as_ref().map(|(_, r)| r.clone()),
            seconds: round(secs, 6),
            rate: if secs > 0.0 {
                round(t.ok as f64 / secs, 1)
            } else {
                0.0
            },
            latency_us: t.latency(),
            start_lag_us: setup.rate.and_then(|_| t.start_lag()),
            cpu_us_per_exchange: cpu_per,
            cpu_user_seconds: outcome.cpu.map(|(u, _)| round(u.as_secs_f64(), 6)),
            cpu_system_seconds: outcome.cpu.map(|(_, s)| round(s.as_secs_f64(), 6)),
        }
    }

    /// hello-load's CPU over the run, in cores (near its thread count: the generator
    /// was the limit).
    pub fn cores(&self) -> Option<f64> {
        let cpu = self.cpu_user_seconds? + self.cpu_system_seconds?;
        (self.seconds > 0.0).then(|| cpu / self.seconds)
    }

    /// The report as one line of JSON.
    pub fn json(&self) -> String {
        // Plain numbers, strings and options: serializing cannot fail.
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| "{}".into());
        s.push('\n');
        s
    }

    /// The report as lines of text.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let how = match self.rate_asked {
            Some(r) => format!(
                "open loop at {r} per second, at most {} in flight",
                self.concurrency
            ),
            None => format!("closed loop, {} in flight", self.concurrency),
        };
        let _ = writeln!(
            s,
            "target       {} ({}, {}{}), {how}, {}",
            self.target,
            self.address,
            self.protocol,
            if self.connect_only { ", connect only" } else { "" },
            counted(self.threads as u64, "thread")
        );
        let _ = writeln!(
            s,
            "exchanges    {}: {} ok, {} failed, in {:.3} s",
            self.exchanges, self.ok, self.failed, self.seconds
        );
        let _ = writeln!(s, "rate         {:.0} connections per second", self.rate);
        let lat = self
            .latency_us
            .as_ref()
            .map_or("no exchange ended well".into(), Percentiles::line);
        let from = if self.rate_asked.is_some() {
            "from the scheduled start"
        } else if self.protocol == "udp" {
            // A slot's socket is kept from one datagram to the next (worker.rs).
            "from send()"
        } else {
            "from socket()"
        };
        let _ = writeln!(s, "latency µs   {lat}, {from}");
        if let Some(lag) = &self.start_lag_us {
            let _ = writeln!(s, "start lag µs {}", lag.line());
        }
        let e = &self.errors;
        let _ = write!(
            s,
            "errors       refused {}  reset {}  timeout {}  mismatch {}  not started {}  other {}",
            e.refused, e.reset, e.timeout, e.mismatch, e.not_started, e.other
        );
        match &self.last_other_error {
            Some(why) => {
                let _ = writeln!(s, " (last: {why})");
            }
            None => s.push('\n'),
        }
        if let Some(reply) = &self.first_mismatch {
            let _ = writeln!(s, "mismatch     first reply not as expected: {reply}");
        }
        if let (Some(per), Some(u), Some(k)) = (
            self.cpu_us_per_exchange,
            self.cpu_user_seconds,
            self.cpu_system_seconds,
        ) {
            let _ = writeln!(
                s,
                "cpu          {per:.1} µs per exchange (user {u:.3} s, system {k:.3} s)"
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_spread() {
        let mut t = Tally::new();
        for us in 1..=1000u64 {
            t.ok(Duration::from_micros(us));
        }
        let p = t.latency().unwrap();
        assert_eq!((p.p50, p.p90, p.p99, p.p99_9, p.max), (500, 900, 990, 999, 1000));
        assert!((p.mean - 500.5).abs() < 0.11, "{}", p.mean);
        assert_eq!(Tally::new().latency(), None, "nothing ended well");
    }

    #[test]
    fn counts_add_up_across_threads() {
        let mut a = Tally::new();
        a.ok(Duration::from_micros(10));
        a.failed(Class::Refused);
        a.failed(Class::Other(Some("Too many open files (os error 24)".into())));
        let mut b = Tally::new();
        b.ok(Duration::from_micros(30));
        b.ok(Duration::from_micros(20));
        b.failed(Class::Mismatch);
        b.failed(Class::Timeout);
        b.failed(Class::Reset);
        a.merge(b);
        assert_eq!(a.ok, 3);
        assert_eq!(
            a.errors,
            Errors {
                refused: 1,
                reset: 1,
                timeout: 1,
                mismatch: 1,
                not_started: 0,
                other: 1
            }
        );
        assert_eq!(a.exchanges(), 8);
        assert_eq!(a.latency().unwrap().max, 30);
        assert_eq!(a.last_other.as_deref(), Some("Too many open files (os error 24)"));
    }

    #[test]
    fn errors_are_classed_by_their_kind() {
        let os = io::Error::from_raw_os_error;
        assert_eq!(Class::of(&os(libc_errno::ECONNREFUSED)), Class::Refused);
        assert_eq!(Class::of(&os(libc_errno::ECONNRESET)), Class::Reset);
        assert_eq!(Class::of(&os(libc_errno::EPIPE)), Class::Reset);
        assert_eq!(Class::of(&os(libc_errno::ETIMEDOUT)), Class::Timeout);
        assert!(matches!(
            Class::of(&os(libc_errno::EMFILE)),
            Class::Other(Some(_))
        ));
    }

    /// Linux's numbers, so that the test needs no libc.
    mod libc_errno {
        pub const EPIPE: i32 = 32;
        pub const EMFILE: i32 = 24;
        pub const ECONNRESET: i32 = 104;
        pub const ETIMEDOUT: i32 = 110;
        pub const ECONNREFUSED: i32 = 111;
    }

    #[test]
    fn the_report_counts_add_up_and_has_every_field() {
        let mut tally = Tally::new();
        for us in [100, 200, 300] {
            tally.ok(Duration::from_micros(us));
        }
        tally.failed(Class::Mismatch);
        tally.lag(Duration::from_micros(7));
        let outcome = Outcome {
            tally,
            elapsed: Duration::from_millis(500),
            cpu: Some((Duration::from_millis(1), Duration::from_millis(3))),
            threads: 2,
        };
        let setup = Setup {
            target: "localhost:9190".into(),
            address: "127.0.0.1:9190".into(),
            udp: false,
            connect_only: false,
            rate: Some(8.0),
            concurrency: 4,
        };
        let s = Summary::new(&setup, &outcome);
        assert_eq!((s.exchanges, s.ok, s.failed), (4, 3, 1));
        assert_eq!(s.rate, 6.0);
        assert_eq!(s.cpu_us_per_exchange, Some(1000.0));
        assert_eq!(s.cores(), Some(0.008), "4 ms of CPU in 0.5 s");
        assert_eq!(s.start_lag_us.as_ref().map(|p| p.max), Some(7));
        let v: serde_json::Value = serde_json::from_str(&s.json()).unwrap();
        let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "address",
                "concurrency",
                "connect_only",
                "cpu_system_seconds",
                "cpu_us_per_exchange",
                "cpu_user_seconds",
                "errors",
                "exchanges",
                "failed",
                "first_mismatch",
                "last_other_error",
                "latency_us",
                "loop",
                "ok",
                "protocol",
                "rate",
                "rate_asked",
                "seconds",
                "start_lag_us",
                "target",
                "threads"
            ]
        );
        let back: Summary = serde_json::from_str(&s.json()).unwrap();
        assert_eq!(back, s, "the JSON reads back into the same report");
        assert_eq!(v["loop"], "open");
        assert_eq!(v["errors"]["mismatch"], 1);
        assert_eq!(v["latency_us"]["p50"], 200);
        let text = s.text();
        assert!(text.contains("4: 3 ok, 1 failed"), "{text}");
        assert!(text.contains("from the scheduled start"), "{text}");
        assert!(text.contains("mismatch 1"), "{text}");
    }
}
