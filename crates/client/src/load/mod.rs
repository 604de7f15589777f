//! hello-load's engine: many exchanges with one server, from a few threads, each an
//! epoll loop with many connections in flight (docs/contract.md#hello-load).
//!
//! Closed loop (the default): each thread keeps its share of `--concurrency` exchanges in
//! flight, starting the next as soon as one ends; latency runs from just before
//! `socket()` to the end of the reply. Open loop (`--rate`): exchanges start on a fixed
//! schedule whatever happens to the others, and latency runs from each one's *scheduled*
//! start, so a server that stalls shows in the latency of every exchange it held up, not
//! only of the one it stalled on (coordinated omission).

pub mod cli;
pub mod summary;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hello_proto::sys::process::cpu_time;
use hello_proto::{Error, Step};

pub use summary::{Summary, Tally};

/// How often the progress callback is called.
const TICK: Duration = Duration::from_millis(100);

/// What a reply must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// Exactly these bytes (the default: the greeting and its NUL, or the echo reply).
    Bytes(Vec<u8>),
    /// This text, compared with the reply as hello-client prints it (`--expect`).
    Shown(String),
    /// Any reply of at least a byte that ends in end of stream (`--expect-any`): load
    /// against any service that speaks first, or answers what is sent.
    Any,
}

/// How many exchanges to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// This many in all (`--count`).
    Count(u64),
    /// Start exchanges for this long (`--duration`); those in flight then are finished.
    For(Duration),
}

/// A load run.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server.
    pub addr: SocketAddr,
    /// Datagrams instead of connections.
    pub udp: bool,
    /// An exchange is a connection made, and closed at once: nothing sent or read
    /// (`--connect-only`; TCP).
    pub connect_only: bool,
    /// What each exchange sends (the message and its NUL), before half-closing; empty:
    /// nothing (over UDP, an empty datagram).
    pub payload: Vec<u8>,
    /// What each reply must be.
    pub expect: Expect,
    /// Bound on each exchange, from its start.
    pub timeout: Duration,
    /// How many exchanges.
    pub plan: Plan,
    /// Closed loop: exchanges kept in flight. Open loop: the most in flight at once; an
    /// exchange due while that many are in flight starts late (and its latency shows it).
    pub concurrency: usize,
    /// Open loop: exchanges started per second, all threads together.
    pub rate: Option<f64>,
    /// Threads, each with its own epoll loop and share of the work.
    pub threads: usize,
}

/// What a run came to.
#[derive(Debug)]
pub struct Outcome {
    /// Every thread's counts and latencies, merged.
    pub tally: Tally,
    /// From the start until the last exchange ended.
    pub elapsed: Duration,
    /// CPU time used meanwhile, user and system (`None` if it could not be read).
    pub cpu: Option<(Duration, Duration)>,
    /// Threads used (never more than the concurrency).
    pub threads: usize,
}

/// One thread's share of the run.
#[derive(Debug, Clone, Copy)]
struct Share {
    /// Exchanges to make (count plan), or none to count (duration plan).
    count: Option<u64>,
    /// Slots: exchanges in flight at most.
    slots: usize,
    /// Open loop: the first start, from the run's start, and the interval between starts.
    schedule: Option<(Duration, Duration)>,
}

/// `total` split into `parts` shares as even as can be; share `i`.
fn split(total: u64, parts: u64, i: u64) -> u64 {
    total / parts + u64::from(i < total % parts)
}

impl Config {
    /// Threads used: no more than the exchanges in flight, nor than a count of exchanges.
    fn thread_count(&self) -> usize {
        let mut t = self.threads.clamp(1, self.concurrency.max(1));
        if let Plan::Count(n) = self.plan {
            t = t.min(usize::try_from(n).unwrap_or(usize::MAX).max(1));
        }
        t
    }

    /// Thread `i`'s share of `threads`. Open loop: thread `i` takes every `threads`-th
    /// start, offset by `i` intervals, so that together they keep the rate evenly.
    fn share(&self, i: usize, threads: usize) -> Share {
        let (i64_, t64) = (i as u64, threads as u64);
        let count = match self.plan {
            Plan::Count(n) => Some(split(n, t64, i64_)),
            Plan::For(_) => None,
        };
        let mut slots = split(self.concurrency as u64, t64, i64_).max(1) as usize;
        if let Some(n) = count {
            slots = slots.min(usize::try_from(n).unwrap_or(usize::MAX).max(1));
        }
        let schedule = self.rate.map(|r| {
            let interval = 1.0 / r;
            (
                Duration::from_secs_f64(interval * i as f64),
                Duration::from_secs_f64(interval * threads as f64),
            )
        });
        Share {
            count,
            slots,
            schedule,
        }
    }
}

/// Runs the load and merges what each thread counted. `tick` is called about every
/// 100 ms with the exchanges finished so far (for a progress bar). Fails only when a
/// thread or its epoll instance cannot be made.
pub fn run(config: &Config, mut tick: impl FnMut(u64, Duration)) -> Result<Outcome, Error> {
    let threads = config.thread_count();
    let done: Arc<Vec<AtomicU64>> = Arc::new((0..threads).map(|_| AtomicU64::new(0)).collect());
    let cpu0 = cpu_time();
    let t0 = Instant::now();
    let end = match config.plan {
        Plan::For(d) => Some(t0 + d),
        Plan::Count(_) => None,
    };
    let (finished_tx, finished) = mpsc::channel::<Instant>();
    let mut handles = Vec::with_capacity(threads);
    for i in 0..threads {
        let share = config.share(i, threads);
        let worker = worker::Worker::new(config, share, t0, end)?;
        let (done, finished_tx) = (Arc::clone(&done), finished_tx.clone());
        let handle = std::thread::Builder::new()
            .name(format!("hello-load-{i}"))
            .spawn(move || {
                let tally = worker.run(&done[i]);
                // The receiver outlives every worker; a send cannot fail while it waits.
                let _ = finished_tx.send(Instant::now());
                tally
            })
            .map_err(|e| Error::new(Step::Spawn, format!("thread {i}"), e))?;
        handles.push(handle);
    }
    drop(finished_tx);
    // Bounded: each worker ends by itself (every exchange has a timeout), and its end is
    // received here, or its sender is dropped if it panicked.
    let mut last_end = t0;
    let mut ended = 0;
    while ended < threads {
        match finished.recv_timeout(TICK) {
            Ok(at) => {
                ended += 1;
                last_end = last_end.max(at);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                tick(done.iter().map(|d| d.load(Ordering::Relaxed)).sum(), t0.elapsed());
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let mut tally = Tally::new();
    for (i, h) in handles.into_iter().enumerate() {
        let part = h.join().map_err(|_| {
            Error::new(
                Step::Spawn,
                format!("thread {i}"),
                std::io::Error::other("panicked"),
            )
        })??;
        tally.merge(part);
    }
    let cpu = cpu0
        .zip(cpu_time())
        .map(|((u0, s0), (u1, s1))| (u1.saturating_sub(u0), s1.saturating_sub(s0)));
    Ok(Outcome {
        tally,
        elapsed: last_end - t0,
        cpu,
        threads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(plan: Plan, concurrency: usize, threads: usize, rate: Option<f64>) -> Config {
        Config {
            addr: "127.0.0.1:9".parse().unwrap(),
            udp: false,
            connect_only: false,
            payload: Vec::new(),
            expect: Expect::Bytes(b"Hello World!\0".to_vec()),
            timeout: Duration::from_secs(1),
            plan,
            concurrency,
            rate,
            threads,
        }
    }

    #[test]
    fn the_work_is_split_evenly_and_adds_up() {
        let c = config(Plan::Count(10), 5, 2, None);
        assert_eq!(c.thread_count(), 2);
        let shares: Vec<Share> = (0..2).map(|i| c.share(i, 2)).collect();
        assert_eq!(shares.iter().map(|s| s.count.unwrap()).sum::<u64>(), 10);
        assert_eq!(shares.iter().map(|s| s.slots).sum::<usize>(), 5);
        assert_eq!((shares[0].slots, shares[1].slots), (3, 2));
        // Never more threads than exchanges in flight, nor than exchanges.
        assert_eq!(config(Plan::Count(10), 1, 8, None).thread_count(), 1);
        assert_eq!(config(Plan::Count(3), 64, 8, None).thread_count(), 3);
        let s = config(Plan::Count(2), 64, 1, None).share(0, 1);
        assert_eq!(s.slots, 2, "no slot that could never be used");
    }

    #[test]
    fn an_open_loop_interleaves_the_threads_starts() {
        let c = config(Plan::For(Duration::from_secs(1)), 100, 4, Some(1000.0));
        let s: Vec<(Duration, Duration)> = (0..4).map(|i| c.share(i, 4).schedule.unwrap()).collect();
        // Thread i starts at i ms, then every 4 ms: together one start a millisecond.
        for (i, (first, every)) in s.iter().enumerate() {
            assert_eq!(first.as_micros(), i as u128 * 1000);
            assert_eq!(every.as_micros(), 4000);
        }
    }
}
