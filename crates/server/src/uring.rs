//! The io_uring model: one thread, one ring (`hello_proto::sys::uring`). The connection
//! cores' calls are queued in the ring instead of being made, and one `io_uring_enter()`
//! submits what every connection has queued and reaps what completed.
//!
//! - One multishot accept takes client after client; `--once` queues a single accept.
//! - A reply that fits [`LINK_MAX`] is queued as a chain: the send (`MSG_MORE`) and, for
//!   the hello service, the check for unread input the core asks for next if it goes
//!   whole (`Connection::next_if_done`), linked after it: it runs only if the send
//!   succeeded whole, so a reply not sent whole never gets its FIN. A longer reply is sent call by call, each partial send fed
//!   back, so that the idle deadline sees its progress. The core's `Close` (whose FIN
//!   takes the held reply out) or `Abort` is queued with the next submission: whether to
//!   close depends on what the check found, which no link can express. The half-close
//!   before an echo drain is the one call made directly (`shutdown()`): io_uring would
//!   run it on a kernel worker thread, a thread wake-up per client.
//! - Reads take a provided buffer, chosen by the kernel when data comes.
//! - Deadlines are a timer heap on the cores' `deadline()`; the nearest bounds the wait in
//!   `io_uring_enter()`. A connection whose deadline passes with a call pending has that
//!   call cancelled first (`IORING_OP_ASYNC_CANCEL`), and its core is told of the
//!   deadline only once the call has completed: the core never changes (nor frees a
//!   reply) while the kernel may still read it, and no call is pending on a socket when
//!   it is closed.
//! - A stop cancels the multishot accept, then takes what the accept queue holds with
//!   the one accept loop (`accept::Acceptor`), as the other models do; connections the
//!   ring had already accepted are served too.
//!
//! Keys (`user_data`) name the call and the connection's slab slot and generation
//! (`key()`), so that a late completion can never be taken for a later connection's.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::{SocketAddr, TcpListener};
use std::time::Instant;

use hello_proto::conn::Action;
use hello_proto::sys::Stream;
use hello_proto::sys::uring::{Completion, RESERVED, Ring};
use hello_proto::{Error, Step};
use slab::Slab;

use crate::accept::{Acceptor, BACKOFF, Next};
use crate::budget::Budget;
use crate::drive::{Exchange, Returned};
use crate::slots::Slots;
use crate::{Config, Stop, Summary};

/// Longest reply sent as one call with the next linked after it. A linked send goes on until
/// every byte is out (`MSG_WAITALL`), which hides its progress from the idle deadline:
/// only a reply that fits the send buffer of a new connection at once is sent that way.
pub const LINK_MAX: usize = 4096;

/// The calls a connection queues, as its keys name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Accept = 1,
    Send = 2,
    Check = 4,
    Read = 5,
    Close = 6,
}

impl Op {
    fn from_bits(bits: u64) -> Option<Op> {
        Some(match bits {
            1 => Op::Accept,
            2 => Op::Send,
            4 => Op::Check,
            5 => Op::Read,
            6 => Op::Close,
            _ => return None,
        })
    }
}

/// The calls a connection has in the ring, one bit per [`Op`]: each is queued at most once
/// at a time (the next calls are queued only once none is pending). No allocation per
/// connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Pending(u8);

impl Pending {
    fn add(&mut self, op: Op) {
        self.0 |= 1 << op as u8;
    }

    fn remove(&mut self, op: Op) {
        self.0 &= !(1 << op as u8);
    }

    fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn ops(self) -> impl Iterator<Item = Op> {
        [Op::Send, Op::Check, Op::Read]
            .into_iter()
            .filter(move |op| self.0 & (1 << *op as u8) != 0)
    }
}

/// Generations (eras) wrap at 24 bits: a slot would have to be reused 16 million times while one
/// call of its first connection is still pending to be mistaken.
const ERA_MASK: u32 = 0xFF_FFFF;

/// The key of call `op` of the connection in `slot`, generation `era`:
/// op (bits 56..63) | era (32..56) | slot (0..32). Always below [`RESERVED`].
fn key(op: Op, slot: usize, era: u32) -> u64 {
    let slot = u64::try_from(slot).unwrap_or(u64::MAX) & 0xFFFF_FFFF;
    ((op as u64) << 56) | (u64::from(era & ERA_MASK) << 32) | slot
}

/// [`key`] taken apart: the call, the slot and the generation.
fn parse(key: u64) -> Option<(Op, usize, u32)> {
    if key >= RESERVED {
        return None;
    }
    let op = Op::from_bits(key >> 56)?;
    let era = u32::try_from((key >> 32) & u64::from(ERA_MASK)).ok()?;
    let slot = usize::try_from(key & 0xFFFF_FFFF).ok()?;
    Some((op, slot, era))
}

/// The accept's key.
const ACCEPT: u64 = (Op::Accept as u64) << 56;

/// The connections' deadlines: earliest first. An entry made stale by progress is found
/// out when it comes up (the connection's own deadline is looked at again).
#[derive(Default)]
struct Timers {
    heap: BinaryHeap<Reverse<(Instant, usize, u32)>>,
}

impl Timers {
    fn push(&mut self, at: Instant, slot: usize, era: u32) {
        self.heap.push(Reverse((at, slot, era)));
    }

    /// The earliest deadline queued.
    fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _, _))| *t)
    }

    /// Drops the entries `live` says are stale once they outnumber the live ones by far,
    /// and gives back the memory a burst left: every connection queues its deadline, and
    /// at thousands of connections a second with a 10 s idle limit the stale entries
    /// would otherwise pile up until their time comes (and the heap keep its peak size).
    fn prune(&mut self, live_count: usize, live: impl Fn(Instant, usize, u32) -> bool) {
        if self.heap.len() > 2 * live_count + 1024 {
            self.heap.retain(|Reverse((t, slot, era))| live(*t, *slot, *era));
        }
        let len = self.heap.len();
        if self.heap.capacity() > 4 * len + 4096 {
            self.heap.shrink_to(2 * len + 1024);
        }
    }

    /// The earliest entry due at `now`, taken out.
    fn pop_due(&mut self, now: Instant) -> Option<(Instant, usize, u32)> {
        match self.heap.peek() {
            Some(Reverse((t, _, _))) if *t <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }
}

/// A connection being served.
struct Conn<'c> {
    exchange: Exchange<'c>,
    era: u32,
    /// Its calls queued or in the kernel.
    pending: Pending,
    /// The deadline of its entry in the timer heap, if it has one.
    queued: Option<Instant>,
    /// Its deadline passed while a call was pending: that call is being cancelled, and
    /// the core hears of the deadline once it is back.
    due: bool,
}

/// The loop's state.
struct Loop<'c> {
    config: &'c Config,
    budget: &'c Budget,
    slots: &'c Slots,
    ring: Ring,
    conns: Slab<Conn<'c>>,
    next_era: u32,
    timers: Timers,
    /// `None` once no more clients are taken.
    acceptor: Option<Acceptor>,
    /// The ring's accept is queued (until its last completion).
    accepting: bool,
    /// Its cancellation was asked for.
    accept_cancelled: bool,
    /// Connections the ring accepted while every slot was taken: served as slots free.
    waiting: VecDeque<Stream>,
    /// Connections whose read found no free buffer: read again after the next wait.
    starved: Vec<(usize, u32)>,
    backoff_until: Option<Instant>,
    grace_end: Option<Instant>,
    stopping: bool,
    summary: Summary,
    local: SocketAddr,
}

/// Sets up the ring (`io_uring_setup()`), so that a kernel that refuses io_uring is
/// known before the server says it listens. `local` names the server in the error.
pub fn prepare(config: &Config, local: SocketAddr) -> Result<Ring, Error> {
    Ring::setup(&config.tracer).map_err(|e| Error::new(Step::UringSetup, local, e))
}

/// Serves on `listener` with `ring` (from [`prepare`]; set up here if `None`, on this
/// thread, which must be the one that uses it) until the stop's drain is over and the
/// last client has ended.
pub fn run(
    listener: TcpListener,
    config: &Config,
    stop: &Stop,
    ring: Option<Ring>,
) -> Result<Summary, Error> {
    let budget = Budget::new(config.max_buffered);
    let slots = Slots::new(config.max_conns);
    let acceptor = Acceptor::new(listener, config, stop, true)?;
    let local = acceptor.local();
    let ring = match ring {
        Some(ring) => ring,
        None => prepare(config, local)?,
    };
    let _wake = stop.on_stop(ring.waker());
    let lp = Loop {
        config,
        budget: &budget,
        slots: &slots,
        ring,
        conns: Slab::new(),
        next_era: 0,
        timers: Timers::default(),
        acceptor: Some(acceptor),
        accepting: false,
        accept_cancelled: false,
        waiting: VecDeque::new(),
        starved: Vec::new(),
        backoff_until: None,
        grace_end: None,
        stopping: false,
        summary: Summary::default(),
        local,
    };
    lp.run(stop)
}

impl<'c> Loop<'c> {
    fn run(mut self, stop: &Stop) -> Result<Summary, Error> {
        let mut done: Vec<Completion> = Vec::new();
        loop {
            if stop.is_stopped() && !self.stopping {
                self.begin_stop(stop);
            }
            self.admit_waiting();
            if self.stopping {
                self.take_the_queue(stop)?;
            } else {
                self.arm_accept();
            }
            if self.acceptor.is_none() && !self.accepting && self.conns.is_empty() && self.waiting.is_empty()
            {
                return Ok(self.summary);
            }
            let now = Instant::now();
            if self.backoff_until.is_some_and(|t| now >= t) {
                self.backoff_until = None;
                continue;
            }
            let timeout = [self.timers.next(), self.backoff_until]
                .into_iter()
                .flatten()
                .min()
                .map(|t| t.saturating_duration_since(now));
            self.ring
                .enter(timeout, &mut done)
                .map_err(|e| Error::new(Step::UringEnter, self.local, e))?;
            for c in done.drain(..) {
                self.complete(c, stop)?;
            }
            for (slot, era) in std::mem::take(&mut self.starved) {
                if self
                    .conns
                    .get(slot)
                    .is_some_and(|c| c.era == era && c.pending.is_empty())
                {
                    self.advance(slot);
                }
            }
            self.expire(Instant::now());
        }
    }

    /// Queues the ring's accept when clients may be taken: not stopping, a slot free, no
    /// back-off, nobody waiting for a slot.
    fn arm_accept(&mut self) {
        let Some(acceptor) = &self.acceptor else {
            return;
        };
        if self.accepting
            || self.backoff_until.is_some()
            || !self.slots.has_room()
            || !self.waiting.is_empty()
        {
            return;
        }
        if self.config.once {
            self.ring.accept(acceptor.fd(), ACCEPT);
        } else {
            self.ring.accept_multishot(acceptor.fd(), ACCEPT);
        }
        self.accepting = true;
        self.accept_cancelled = false;
    }

    /// Asks the ring to stop accepting (a stop, or every slot taken).
    fn cancel_accept(&mut self) {
        if let (true, false, Some(acceptor)) = (self.accepting, self.accept_cancelled, &self.acceptor) {
            self.ring.cancel(ACCEPT, acceptor.fd());
            self.accept_cancelled = true;
        }
    }

    /// Serves the connections the ring accepted beyond `--max-conns`, as slots free.
    fn admit_waiting(&mut self) {
        while !self.waiting.is_empty() && self.slots.try_take() {
            if let Some(stream) = self.waiting.pop_front() {
                self.start(stream, None);
            }
        }
    }

    /// A stop: the ring takes no more clients; every exchange now ends by the grace's end.
    fn begin_stop(&mut self, stop: &Stop) {
        self.stopping = true;
        self.cancel_accept();
        self.grace_end = stop.grace_end(self.config.grace);
        let Some(grace_end) = self.grace_end else {
            return;
        };
        let slots: Vec<usize> = self.conns.iter().map(|(slot, _)| slot).collect();
        for slot in slots {
            if let Some(conn) = self.conns.get_mut(slot) {
                conn.exchange.core_mut().on_stop(grace_end);
            }
            self.schedule(slot);
        }
    }

    /// Stopping, once the ring's accept is over: the clients the kernel queued before the
    /// stop are accepted by the one accept loop, as slots allow, then the listening
    /// socket is closed.
    fn take_the_queue(&mut self, stop: &Stop) -> Result<(), Error> {
        if self.accepting {
            return Ok(());
        }
        while self.slots.has_room() && self.backoff_until.is_none() {
            let Some(acceptor) = &mut self.acceptor else {
                return Ok(());
            };
            if !self.slots.try_take() {
                return Ok(());
            }
            let next = acceptor.next(stop);
            if !matches!(next, Ok(Next::Client(..))) {
                self.slots.release();
            }
            match next? {
                Next::Client(stream, peer) => self.start(stream, Some(peer)),
                Next::Empty => return Ok(()),
                Next::Backoff => self.backoff_until = Some(Instant::now() + BACKOFF),
                Next::Closed => self.acceptor = None,
            }
        }
        Ok(())
    }

    /// A completion: of the accept, or of a connection's call.
    fn complete(&mut self, c: Completion, stop: &Stop) -> Result<(), Error> {
        let Some((op, slot, era)) = parse(c.key) else {
            return Ok(());
        };
        if op == Op::Accept {
            return self.accept_done(c, stop);
        }
        let Some(conn) = self.conns.get_mut(slot) else {
            return Ok(());
        };
        if conn.era != era {
            return Ok(());
        }
        conn.pending.remove(op);
        // A cancelled call made nothing: there is nothing to feed.
        if !c.cancelled() {
            let returned = match op {
                Op::Send => Some(match c.io_result() {
                    Ok(n) => Returned::Sent(n),
                    Err(e) => Returned::Failed(e),
                }),
                Op::Check if c.would_block() => Some(Returned::Unread(hello_proto::conn::Unread::Nothing)),
                Op::Check => Some(match c.io_result() {
                    Ok(0) => Returned::Unread(hello_proto::conn::Unread::Eof),
                    Ok(n) => Returned::Unread(hello_proto::conn::Unread::Data(n)),
                    Err(e) => Returned::Failed(e),
                }),
                Op::Read if c.out_of_buffers() => {
                    self.starved.push((slot, era));
                    None
                }
                Op::Read => Some(match c.io_result() {
                    Ok(n) => Returned::Received(n),
                    Err(e) => Returned::Failed(e),
                }),
                Op::Accept | Op::Close => None,
            };
            let asked = matches!(
                (op, conn.exchange.core().poll()),
                (Op::Send, Action::Send { .. }) | (Op::Check, Action::CheckUnread) | (Op::Read, Action::Read)
            );
            if let (Some(returned), true) = (returned, asked) {
                let data = self.ring.received(&c);
                conn.exchange.feed(returned, data, Instant::now());
            }
        }
        if conn.pending.is_empty() && !self.starved.contains(&(slot, era)) {
            self.advance(slot);
        }
        Ok(())
    }

    /// A completion of the ring's accept: a client, or why none.
    fn accept_done(&mut self, c: Completion, stop: &Stop) -> Result<(), Error> {
        if !c.more {
            self.accepting = false;
        }
        if c.cancelled() {
            return Ok(());
        }
        match self.ring.accepted(c) {
            Ok(stream) => {
                if let Some(acceptor) = &mut self.acceptor {
                    acceptor.accepted();
                }
                if self.slots.try_take() {
                    self.start(stream, None);
                } else {
                    self.waiting.push_back(stream);
                    self.cancel_accept();
                }
                if self.config.once {
                    // `--once`: exactly one client, then nobody listens.
                    self.acceptor = None;
                }
            }
            Err(e) => {
                let Some(acceptor) = &mut self.acceptor else {
                    return Ok(());
                };
                match acceptor.failed(e, stop) {
                    None | Some(Ok(Next::Empty | Next::Client(..))) => {}
                    Some(Ok(Next::Backoff)) => self.backoff_until = Some(Instant::now() + BACKOFF),
                    Some(Ok(Next::Closed)) => self.acceptor = None,
                    Some(Err(e)) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// A new client, its slot taken: its first calls are queued.
    fn start(&mut self, stream: Stream, peer: Option<SocketAddr>) {
        let mut exchange = Exchange::with_peer(self.config, self.budget, stream, peer);
        if let Some(grace_end) = self.grace_end {
            exchange.core_mut().on_stop(grace_end);
        }
        self.next_era = self.next_era.wrapping_add(1) & ERA_MASK;
        let slot = self.conns.insert(Conn {
            exchange,
            era: self.next_era,
            pending: Pending::default(),
            queued: None,
            due: false,
        });
        self.advance(slot);
    }

    /// The connection has no call pending: its core hears of a deadline that passed,
    /// then its next calls are queued, or it ends.
    fn advance(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        if std::mem::take(&mut conn.due) {
            conn.exchange.expire(Instant::now());
        }
        // The half-close before an echo drain is made here, at once: the kernel would run
        // an IORING_OP_SHUTDOWN on a worker thread, a thread wake-up per client. (It is
        // the one call the ring model makes itself; the core then asks for the drain.)
        if conn.exchange.core().poll() == Action::HalfClose {
            let _ = conn.exchange.step(&mut []);
        }
        if matches!(conn.exchange.core().poll(), Action::Close | Action::Abort) {
            self.end(slot);
            return;
        }
        let era = conn.era;
        let ring = &mut self.ring;
        let stream = conn.exchange.stream();
        let core = conn.exchange.core();
        // After a short reply, the hello service's check for unread input goes in the
        // same submission, linked: it runs only if the send took the whole reply. The
        // close is not linked: whether to close or drain depends on what the check finds.
        let next = core.next_if_done();
        let at = |op| key(op, slot, era);
        let _ = ring.reserve(2);
        match core.poll() {
            Action::Send { bytes, .. } => {
                let linked = bytes.len() <= LINK_MAX && next == Some(Action::CheckUnread);
                // SAFETY: the bytes are the core's reply, on the heap or in the config:
                // the core does not change until this call's completion is fed back (a
                // deadline waits for it: see `expire`).
                unsafe { ring.send(stream, bytes, linked, at(Op::Send)) };
                conn.pending.add(Op::Send);
                if linked {
                    ring.check_unread(stream, at(Op::Check));
                    conn.pending.add(Op::Check);
                }
            }
            Action::CheckUnread => {
                ring.check_unread(stream, at(Op::Check));
                conn.pending.add(Op::Check);
            }
            Action::Read => {
                ring.recv(stream, at(Op::Read));
                conn.pending.add(Op::Read);
            }
            // Made above (the half-close), or ended above.
            Action::HalfClose | Action::Close | Action::Abort => {}
        }
        self.schedule(slot);
    }

    /// Ends the exchange as its core asks: `close()` or an abort, queued in the ring;
    /// reported; its slot freed.
    fn end(&mut self, slot: usize) {
        let conn = self.conns.remove(slot);
        let close_key = key(Op::Close, slot, conn.era);
        let ring = &mut self.ring;
        let failed = conn.exchange.end_with(|stream, abort| {
            if abort {
                ring.abort(stream, close_key);
            } else {
                ring.close(stream, close_key);
            }
        });
        self.summary.count(failed);
        self.slots.release();
    }

    /// Queues the connection's deadline if it is earlier than its queued one.
    fn schedule(&mut self, slot: usize) {
        let Some(conn) = self.conns.get_mut(slot) else {
            return;
        };
        match conn.exchange.core().deadline() {
            Some(deadline) if conn.queued.is_none_or(|q| deadline < q) => {
                conn.queued = Some(deadline);
                self.timers.push(deadline, slot, conn.era);
            }
            _ => {}
        }
    }

    /// The connections whose deadline has passed: a pending call is cancelled first (the
    /// core hears of the deadline when it is back); else the core decides now.
    fn expire(&mut self, now: Instant) {
        let conns = &self.conns;
        self.timers.prune(conns.len(), |t, slot, era| {
            conns
                .get(slot)
                .is_some_and(|c| c.era == era && c.queued == Some(t))
        });
        while let Some((t, slot, era)) = self.timers.pop_due(now) {
            let Some(conn) = self.conns.get_mut(slot) else {
                continue;
            };
            if conn.era != era || conn.queued != Some(t) {
                continue;
            }
            conn.queued = None;
            if conn.exchange.core().deadline().is_none_or(|d| d > now) {
                self.schedule(slot);
                continue;
            }
            conn.due = true;
            if conn.pending.is_empty() {
                self.advance(slot);
                continue;
            }
            let fd = conn.exchange.stream().fd();
            for op in conn.pending.ops() {
                self.ring.cancel(key(op, slot, era), fd);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pending_calls_are_a_set() {
        let mut p = Pending::default();
        assert!(p.is_empty());
        p.add(Op::Send);
        p.add(Op::Check);
        assert_eq!(p.ops().collect::<Vec<_>>(), [Op::Send, Op::Check]);
        p.remove(Op::Send);
        p.remove(Op::Read);
        assert_eq!(p.ops().collect::<Vec<_>>(), [Op::Check]);
        p.remove(Op::Check);
        assert!(p.is_empty());
    }

    #[test]
    fn keys_name_the_call_the_slot_and_the_generation() {
        for op in [Op::Send, Op::Check, Op::Read, Op::Close, Op::Accept] {
            for (slot, era) in [(0, 0), (1, 1), (4_000_000_000, ERA_MASK), (12, 77)] {
                let k = key(op, slot, era);
                assert!(k < RESERVED, "{k:x} is the ring's own");
                assert_eq!(parse(k), Some((op, slot, era)));
            }
        }
        assert_eq!(parse(ACCEPT), Some((Op::Accept, 0, 0)));
        // A generation past 24 bits wraps, and never reaches the op's bits.
        assert_eq!(parse(key(Op::Read, 5, ERA_MASK + 2)), Some((Op::Read, 5, 1)));
        assert_eq!(parse(RESERVED), None);
        assert_eq!(parse(u64::MAX), None);
        assert_eq!(parse(0), None, "no call has op 0");
    }

    #[test]
    fn the_timer_heap_gives_due_deadlines_earliest_first() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut timers = Timers::default();
        assert_eq!(timers.next(), None);
        timers.push(ms(30), 3, 1);
        timers.push(ms(10), 1, 1);
        timers.push(ms(20), 2, 7);
        assert_eq!(timers.next(), Some(ms(10)));
        assert_eq!(timers.pop_due(ms(5)), None, "nothing due yet");
        assert_eq!(timers.pop_due(ms(25)), Some((ms(10), 1, 1)));
        assert_eq!(timers.pop_due(ms(25)), Some((ms(20), 2, 7)));
        assert_eq!(timers.pop_due(ms(25)), None);
        assert_eq!(timers.next(), Some(ms(30)));
        // Stale entries are dropped once they outnumber the live ones by far, and the
        // memory of the burst is given back.
        for slot in 0..10_000 {
            timers.push(ms(40), slot, 2);
        }
        let cap = timers.heap.capacity();
        timers.prune(1, |_, slot, _| slot == 3);
        assert_eq!(timers.heap.len(), 2, "the live entries stay: slot 3's two");
        assert!(timers.heap.capacity() < cap / 4, "shrunk");
        assert_eq!(timers.next(), Some(ms(30)));
        timers.prune(1, |_, _, _| false);
        assert_eq!(timers.heap.len(), 2, "a small heap is left alone");
    }
}
