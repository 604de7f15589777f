//! The fork model: the textbook's multi-process server. The parent accepts; for each
//! client it calls `fork()`, closes its copy of the client's socket, and goes back to
//! `accept()`; the child closes its copy of the listening socket, serves the client with
//! blocking calls, and exits with 0 (served) or 1 (failed). Every child that ends is
//! reaped with `waitpid()` — on each turn of the accept loop, which a `SIGCHLD` or the
//! accept timeout (100 ms) ends — so none stays a zombie. `--max-conns` bounds the children.
//!
//! `fork()` copies only the thread that calls it: a lock another thread held at that
//! moment stays locked in the child for ever. So the parent must be single-threaded at
//! every `fork()`, and is made so: the binary catches signals with flags instead of a
//! signal thread, the log writes its counts without a thread, and [`run`] refuses to
//! start if the process has more than one thread. A child could start threads of its
//! own; it starts none (see `child`).
//!
//! A stop: the parent stops taking new clients (the queue is still taken, see accept.rs),
//! sends `SIGTERM` to every child, and waits for them within the grace (and one second
//! more for the resets at its end); each child keeps the grace and resets what is left
//! at its end, with no thread (see `child`). Each child has its own memory, so
//! `--max-buffered` is per child here.
//!
//! Each child counts its own exchange (in memory shared with the parent, `metrics`); one
//! that a signal ends (kill -9, the OOM killer, the grace's SIGKILL) cannot, so the
//! parent counts it when it reaps it: `error`, or `unfinished` when the parent killed it.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use hello_proto::sys::Stream;
use hello_proto::sys::process::{self, Forked, Reaped};
use hello_proto::{Error, Step};

use crate::accept::{Acceptor, Next};
use crate::blocking::{self, Env, InFlight};
use crate::budget::Budget;
use crate::log::Relay;
use crate::{Config, Stop, Summary, report};

/// How long the parent waits for its children after the grace.
const AFTER_GRACE: Duration = Duration::from_secs(1);

/// How long the parent sleeps, at `--max-conns` children, before it looks again.
const FULL_WAIT: Duration = Duration::from_millis(10);

/// Serves each client in a child process until `stop` (or, with `--once`, one client).
pub fn run(listener: TcpListener, config: &Config, stop: &Stop) -> Result<Summary, Error> {
    let fd = std::os::fd::AsRawFd::as_raw_fd(&listener);
    let local = listener
        .local_addr()
        .map_err(|e| Error::new(Step::Getsockname, format!("listening socket {fd}"), e))?;
    check_one_thread(local)?;
    crate::log::without_threads();
    crate::metrics::share_with_children().map_err(|e| Error::new(Step::Fork, local, e))?;
    let (mut relay, to_parent) = Relay::new().map_err(|e| Error::new(Step::Socket, local, e))?;
    let mut acceptor = Acceptor::new(listener, config, stop, false)?;
    let mut children = HashMap::new();
    let mut scrapes = HashSet::new();
    let mut summary = Summary::default();
    let mut stopping = false;
    if let Some(exporter) = &config.exporter {
        exporter.for_forking()?;
    }
    loop {
        relay.relay();
        reap(&mut children, &mut summary, config, &mut scrapes, false);
        notice_stop(stop, &mut stopping, &children);
        crate::metrics::print_if_asked();
        take_scrapes(&acceptor, config, &mut scrapes);
        if children.len() >= config.max_conns.max(1) {
            std::thread::sleep(FULL_WAIT);
            continue;
        }
        let (stream, peer) = match acceptor.next(stop)? {
            Next::Accepted(stream, peer) => (stream, peer),
            // The accept timeout or a signal (SIGCHLD): reap and look for a stop first.
            Next::Empty => continue,
            Next::Backoff => {
                std::thread::sleep(crate::accept::BACKOFF);
                continue;
            }
            Next::Closed => break,
        };
        match process::fork(&config.tracer) {
            Ok(Forked::Child) => {
                drop(relay);
                crate::log::to_parent(to_parent);
                child(acceptor, stream, peer, config, stop)
            }
            Ok(Forked::Parent(pid)) => {
                stream.close_parent_copy();
                children.insert(pid, Instant::now());
                if stopping {
                    process::stop_child(pid);
                }
            }
            Err(e) => {
                let err = Error::new(Step::Fork, peer, e);
                crate::metrics::failed_before_serving(&err);
                report(&err);
                summary.count(true);
            }
        }
    }
    // No more clients will be taken: the listening socket is closed now, not when the
    // children are done, so that a client connecting during the grace is refused at once
    // instead of waiting in a queue nobody takes (and being reset at the end).
    drop(acceptor);
    wait_for_children(
        &mut children,
        &mut summary,
        config,
        stop,
        &mut stopping,
        &mut relay,
    );
    relay.relay();
    Ok(summary)
}

/// Makes sure this process has one thread, as `fork()` needs (see the module's doc): an
/// error naming `local` otherwise, or when the count cannot be read (`/proc` is not
/// mounted). The binary calls it before its start-up line ([`crate::prepare`]).
pub fn check_one_thread(local: SocketAddr) -> Result<(), Error> {
    let threads = process::thread_count().map_err(|e| {
        Error::new(
            Step::Fork,
            local,
            std::io::Error::new(
                e.kind(),
                format!(
                    "the fork model counts its threads in /proc/self/status, which cannot be read \
                     (is /proc mounted?): {e}"
                ),
            ),
        )
    })?;
    if threads != 1 {
        return Err(Error::new(
            Step::Fork,
            local,
            std::io::Error::other(format!(
                "the fork model needs a single-threaded process, this one has {threads} threads"
            )),
        ));
    }
    Ok(())
}

/// The child: closes its copy of the listening socket, serves the client, exits.
///
/// It starts no thread (a thread costs a third of a child's CPU time, measured): the
/// parent's `SIGTERM` only sets the stop flag, but it also ends the call the child waits
/// in (a call bounded by a socket timeout is never restarted), the child then sees the
/// flag, and the connection core bounds every later wait by the grace and resets the
/// connection at its end, as in the event-driven models.
fn child(acceptor: Acceptor, mut stream: Stream, peer: SocketAddr, config: &Config, stop: &Stop) -> ! {
    acceptor.close_copy_in_child();
    stream.wake_on_signal();
    let budget = Budget::new(config.max_buffered);
    let in_flight = InFlight::default();
    let env = Env {
        config,
        budget: &budget,
        stop,
        in_flight: &in_flight,
    };
    let failed = blocking::serve(stream, peer, env);
    crate::log::flush();
    process::exit_child(i32::from(failed), &config.tracer)
}

/// Reaps every child that has ended, and counts its exchange (a scrape's child counts
/// nothing). A client's child that a signal ended never counted its exchange: it is
/// counted here, `unfinished` if `killed` (the parent killed it after the grace), else
/// `error`.
fn reap(
    children: &mut HashMap<i32, Instant>,
    summary: &mut Summary,
    config: &Config,
    scrapes: &mut HashSet<i32>,
    killed: bool,
) {
    while let Some(Reaped { pid, code, .. }) = process::reap_child(&config.tracer) {
        if let Some(accepted) = children.remove(&pid) {
            summary.count(code != Some(0));
            if code.is_none() {
                let ended = if killed {
                    crate::metrics::Ended::Unfinished
                } else {
                    crate::metrics::Ended::Error
                };
                crate::metrics::exchange_ended(ended, accepted.elapsed());
            }
        } else {
            scrapes.remove(&pid);
        }
    }
}

/// Scrapes answered at once, each by a child; more wait in the exporter's backlog.
const MAX_SCRAPES: usize = 4;

/// `--metrics` in the fork model: each scrape waiting is taken and answered by a child,
/// whose copy of the counters is the snapshot it sends (the parent has no thread to
/// answer with, and must not wait on a scraper).
fn take_scrapes(acceptor: &Acceptor, config: &Config, scrapes: &mut HashSet<i32>) {
    let Some(exporter) = &config.exporter else {
        return;
    };
    while scrapes.len() < MAX_SCRAPES {
        let Some(stream) = exporter.take_forking() else {
            return;
        };
        match process::fork(&config.tracer) {
            Ok(Forked::Child) => {
                acceptor.close_listener_in_child();
                exporter.answer_in_child(stream);
                process::exit_child(0, &config.tracer)
            }
            Ok(Forked::Parent(pid)) => {
                stream.close_parent_copy();
                scrapes.insert(pid);
            }
            // No process for it: the scraper is closed and tries again at its next turn.
            Err(_) => stream.close(),
        }
    }
}

/// After the accept loop: waits for the children, within the grace after a stop (and
/// [`AFTER_GRACE`] more); a child still there then is killed and reaped.
fn wait_for_children(
    children: &mut HashMap<i32, Instant>,
    summary: &mut Summary,
    config: &Config,
    stop: &Stop,
    stopping: &mut bool,
    relay: &mut Relay,
) {
    let mut killed: Option<Instant> = None;
    let mut scrapes = HashSet::new();
    loop {
        relay.relay();
        crate::metrics::print_if_asked();
        reap(children, summary, config, &mut scrapes, killed.is_some());
        if children.is_empty() {
            return;
        }
        notice_stop(stop, stopping, children);
        let now = Instant::now();
        let over = stop
            .grace_end(config.grace)
            .filter(|_| *stopping)
            .is_some_and(|end| now >= end + AFTER_GRACE);
        match killed {
            None if over => {
                for &pid in children.keys() {
                    process::kill_child(pid);
                }
                killed = Some(now);
            }
            // Killed children are reaped at once; this bounds the loop all the same.
            Some(at) if now >= at + AFTER_GRACE => return,
            _ => {}
        }
        std::thread::sleep(FULL_WAIT);
    }
}

/// A stop seen (through the signal flag) for the first time: record its time and run the
/// wakers (the backlog is cut), and pass it on to every child.
fn notice_stop(stop: &Stop, stopping: &mut bool, children: &HashMap<i32, Instant>) {
    if stop.is_stopped() && !*stopping {
        crate::metrics::set_state(crate::metrics::State::Stopping);
        stop.stop();
        *stopping = true;
        for &pid in children.keys() {
            process::stop_child(pid);
        }
    }
}
