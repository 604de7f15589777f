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
    /// The echo service's reply to the message this exchange sent (the payload without
    /// its NUL): its length, ` : `, the message and a NUL. With [`Config::numbered`],
    /// each exchange's own, so that a reply meant for another exchange is a mismatch.
    Echo,
}

/// How many exchanges to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// This many in all (`--count`).
    Count(u64),
    /// Start exchanges for this long (`--duration`); those in flight then are finished.
    For(Duration),
    /// This many in all, unless this long passes first: then no more start, and those in
    /// flight are finished (`cargo xtask soak`: a million connections or five minutes).
    CountWithin(u64, Duration),
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
    /// Each exchange sends a message of its own: the payload's text, then its thread
    /// and its number in that thread (from 1), then the NUL: `soak 1 17` where the
    /// payload is `soak`.
    pub numbered: bool,
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
        if let Plan::Count(n) | Plan::CountWithin(n, _) = self.plan {
            t = t.min(usize::try_from(n).unwrap_or(usize::MAX).max(1));
        }
        t
    }

    /// Thread `i`'s share of `threads`. Open loop: thread `i` takes every `threads`-th
    /// start, offset by `i` intervals, so that together they keep the rate evenly.
    fn share(&self, i: usize, threads: usize) -> Share {
        let (i64_, t64) = (i as u64, threads as u64);
        let count = match self.plan {
            Plan::Count(n) | Plan::CountWithin(n, _) => Some(split(n, t64, i64_)),
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
        Plan::For(d) | Plan::CountWithin(_, d) => Some(t0 + d),
        Plan::Count(_) => None,
    };
    let (finished_tx, finished) = mpsc::channel::<Instant>();
    let mut handles = Vec::with_capacity(threads);
    for i in 0..threads {
        let share = config.share(i, threads);
        let worker = worker::Worker::new(config, i, share, t0, end)?;
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
            numbered: false,
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

    /// An echo server on a thread, on 127.0.0.1 port 0, for `most` requests or until
    /// `until`: each request is read to its NUL, kept, and answered with
    /// `answer(request)`. The requests come back from the thread's handle.
    fn echo_server(
        until: Instant,
        most: usize,
        answer: fn(&[u8]) -> Vec<u8>,
    ) -> (SocketAddr, std::thread::JoinHandle<Vec<Vec<u8>>>) {
        use std::io::{Read as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let server = std::thread::spawn(move || {
            let mut requests = Vec::new();
            // Bounded by `until`.
            while Instant::now() < until && requests.len() < most {
                let mut s = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(1));
                        continue;
                    }
                };
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut request = Vec::new();
                let mut byte = [0u8];
                while s.read(&mut byte).unwrap_or(0) == 1 && byte[0] != 0 {
                    request.push(byte[0]);
                }
                let _ = s.write_all(&answer(&request));
                requests.push(request);
            }
            requests
        });
        (addr, server)
    }

    fn numbered(addr: SocketAddr, plan: Plan) -> Config {
        Config {
            addr,
            payload: hello_proto::wire::greeting("soak"),
            numbered: true,
            expect: Expect::Echo,
            timeout: Duration::from_secs(5),
            ..config(plan, 4, 2, None)
        }
    }

    #[test]
    fn numbered_messages_are_each_exchanges_own_and_so_is_the_reply_checked() {
        let until = Instant::now() + Duration::from_secs(2);
        let (addr, server) = echo_server(until, 40, |m| hello_proto::wire::echo_reply(m, 0));
        let outcome = run(&numbered(addr, Plan::Count(40)), |_, _| {}).unwrap();
        assert_eq!((outcome.tally.ok, outcome.tally.errors.total()), (40, 0));
        let mut requests: Vec<String> = server
            .join()
            .unwrap()
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect();
        requests.sort();
        requests.dedup();
        assert_eq!(requests.len(), 40, "every message its own: {requests:?}");
        for t in 0..2 {
            for k in 1..=20 {
                assert!(requests.contains(&format!("soak {t} {k}")), "soak {t} {k}");
            }
        }
        // A server that answers every exchange with the reply meant for one of them.
        let until = Instant::now() + Duration::from_secs(2);
        let (addr, _server) = echo_server(until, 40, |_| hello_proto::wire::echo_reply(b"soak 0 1", 0));
        let outcome = run(&numbered(addr, Plan::Count(40)), |_, _| {}).unwrap();
        assert_eq!((outcome.tally.ok, outcome.tally.errors.mismatch), (1, 39));
    }

    #[test]
    fn a_count_within_a_time_ends_at_whichever_comes_first() {
        let until = Instant::now() + Duration::from_secs(6);
        let (addr, _server) = echo_server(until, usize::MAX, |m| hello_proto::wire::echo_reply(m, 0));
        let by_count = run(
            &numbered(addr, Plan::CountWithin(10, Duration::from_secs(2))),
            |_, _| {},
        )
        .unwrap();
        assert_eq!(by_count.tally.ok, 10);
        assert!(
            by_count.elapsed < Duration::from_secs(2),
            "{:?}",
            by_count.elapsed
        );
        let limit = Duration::from_millis(300);
        let by_time = run(&numbered(addr, Plan::CountWithin(1 << 40, limit)), |_, _| {}).unwrap();
        assert!(
            // Ended by the time, not by the count (which would take days): the bound
            // leaves room for a loaded machine.
            by_time.elapsed >= limit && by_time.elapsed < limit + Duration::from_secs(3),
            "{:?}",
            by_time.elapsed
        );
        assert!(by_time.tally.ok > 0 && by_time.tally.errors.total() == 0);
    }
}
