//! The io_uring model: one thread, one ring (`hello_proto::sys::uring`). The connection
//! cores' calls are queued in the ring instead of being made, and one `io_uring_enter()`
//! submits what every connection has queued and reaps what completed.
//!
//! - Accepts are queued one per free slot (at most [`ACCEPT_DEPTH`] at once; one with
//!   `--once`), each holding its slot until it completes: the ring never takes a client
//!   beyond `--max-conns` (a multishot accept would take every client queued, with no
//!   bound). Out of descriptors, the ring queues no accept until the queue has been
//!   taken to its end by the one accept step (`accept::Acceptor::take`), which ends the
//!   episode.
//! - A reply that fits [`LINK_MAX`] is queued as a chain: the send (`MSG_MORE`) and, for
//!   the hello service, the check for unread input the core asks for next if it goes
//!   whole (`Connection::next_if_done`), linked after it: it runs only if the send
//!   succeeded whole, so a reply not sent whole never gets its FIN. A longer reply is sent call by call, each partial send fed
//!   back, so that the idle deadline sees its progress. What follows the check depends
//!   on what it found, which no link can express: the half-close (whose FIN takes the
//!   held reply out) is the one call made directly (`shutdown()`): io_uring would run it
//!   on a kernel worker thread, a thread wake-up per client; the core's `Close` or
//!   `Abort` is queued with the next submission.
//! - Reads take a provided buffer, chosen by the kernel when data comes.
//! - Deadlines are the shared timer heap (`exchanges`); the nearest bounds the wait in
//!   `io_uring_enter()`. A connection whose deadline passes with a call pending has that
//!   call cancelled first (`IORING_OP_ASYNC_CANCEL`), and its core is told of the
//!   deadline only once the call has completed: the core never changes (nor frees a
//!   reply) while the kernel may still read it, and no call is pending on a socket when
//!   it is closed.
//! - A stop cancels the queued accepts, then takes what the accept queue holds with the
//!   one accept step (`accept::Acceptor`), as the other models do; connections the ring
//!   had already accepted are served too.
//! - What a queued call returned becomes the core's input through `drive` (`Call`,
//!   `Exchange::complete`), as a call made at once does: the ring only decides how the
//!   calls wait.
//!
//! Keys (`user_data`) name the call and the connection's slab slot and generation
//! (`key()`), so that a late completion can never be taken for a later connection's.

use std::net::{SocketAddr, TcpListener};
use std::time::Instant;

use hello_proto::Error;
use hello_proto::Step;
use hello_proto::sys::Stream;
use hello_proto::sys::uring::{Completion, RESERVED, Ring};

use crate::accept::{Acceptor, Next, Taken};
use crate::budget::Budget;
use crate::drive::{Call, Queued};
use crate::exchanges::{Exchanges, GENERATION_MASK};
use crate::slots::Slots;
use crate::{Config, Stop, Summary};

/// Longest reply sent as one call with the next linked after it. A linked send goes on until
/// every byte is out (`MSG_WAITALL`), which hides its progress from the idle deadline:
/// only a reply that fits the send buffer of a new connection at once is sent that way.
pub const LINK_MAX: usize = 4096;

/// Accepts queued at once at most, each with a free slot: enough for a burst of clients
/// to be taken several per `io_uring_enter()`.
pub const ACCEPT_DEPTH: usize = 16;

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

    /// The connection's call this op queues, as `drive` knows it.
    fn call(self) -> Option<Call> {
        match self {
            Op::Send => Some(Call::Send),
            Op::Check => Some(Call::CheckUnread),
            Op::Read => Some(Call::Read),
            Op::Accept | Op::Close => None,
        }
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

/// The key of call `op` of the connection of `generation` in `slot` (an accept's slot
/// is its place among the accepts queued): op (bits 56..63) | generation (32..56) | slot
/// (0..32). Always below [`RESERVED`].
fn key(op: Op, slot: usize, generation: u32) -> u64 {
    let slot = u64::try_from(slot).unwrap_or(u64::MAX) & 0xFFFF_FFFF;
    ((op as u64) << 56) | (u64::from(generation & GENERATION_MASK) << 32) | slot
}

/// [`key`] taken apart: the call, the slot and the generation.
fn parse(key: u64) -> Option<(Op, usize, u32)> {
    if key >= RESERVED {
        return None;
    }
    let op = Op::from_bits(key >> 56)?;
    let generation = u32::try_from((key >> 32) & u64::from(GENERATION_MASK)).ok()?;
    let slot = usize::try_from(key & 0xFFFF_FFFF).ok()?;
    Some((op, slot, generation))
}

/// What the ring model keeps of a connection besides its exchange.
#[derive(Default)]
struct Calls {
    /// Its calls queued or in the kernel.
    pending: Pending,
    /// Its deadline passed while a call was pending: that call is being cancelled, and
    /// the core hears of the deadline once it is back.
    due: bool,
}

/// The accepts queued in the ring, one bit per place (`0..ACCEPT_DEPTH`), each holding a
/// slot until its completion.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Accepts {
    queued: u32,
    cancelled: u32,
}

impl Accepts {
    fn count(self) -> usize {
        self.queued.count_ones() as usize
    }

    /// The first free place, if fewer than `depth` are queued.
    fn free(self, depth: usize) -> Option<usize> {
        (self.count() < depth).then(|| (!self.queued).trailing_zeros() as usize)
    }

    fn add(&mut self, place: usize) {
        self.queued |= 1 << place;
    }

    /// The accept in `place` completed (for the last time): whether it was queued.
    fn done(&mut self, place: usize) -> bool {
        let bit = 1u32
            .checked_shl(u32::try_from(place).unwrap_or(u32::MAX))
            .unwrap_or(0);
        let was = self.queued & bit != 0;
        self.queued &= !bit;
        self.cancelled &= !bit;
        was
    }

    /// The places queued and not yet cancelled, now marked cancelled.
    fn mark_cancelled(&mut self) -> impl Iterator<Item = usize> + use<> {
        let todo = self.queued & !self.cancelled;
        self.cancelled |= todo;
        (0..32).filter(move |p| todo & (1 << p) != 0)
    }
}

/// The loop's state.
struct Loop<'c> {
    config: &'c Config,
    slots: &'c Slots,
    ring: Ring,
    exchanges: Exchanges<'c, Calls>,
    /// `None` once no more clients are taken.
    acceptor: Option<Acceptor>,
    /// The ring's accepts.
    accepts: Accepts,
    /// Connections whose read found no free buffer: read again after the next wait.
    starved: Vec<(usize, u32)>,
    /// A deadline's last look at a socket reads here (see `Exchange::expire`): the ring's
    /// reads take provided buffers.
    buf: Vec<u8>,
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
/// thread, which must be the one that uses it) until a stop has emptied the queue and
/// the last exchange has ended.
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
        slots: &slots,
        ring,
        exchanges: Exchanges::new(config, &budget),
        acceptor: Some(acceptor),
        accepts: Accepts::default(),
        starved: Vec::new(),
        buf: vec![0u8; 16 * 1024],
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
            let catching_up = self.acceptor.as_ref().is_some_and(Acceptor::starved);
            if self.stopping || catching_up {
                self.take_the_queue(stop)?;
            } else {
                self.queue_accepts();
            }
            if self.acceptor.is_none() && self.accepts.count() == 0 && self.exchanges.is_empty() {
                return Ok(self.summary);
            }
            let now = Instant::now();
            let resting = self.acceptor.as_ref().and_then(Acceptor::resting_until);
            let timeout = [self.exchanges.next_deadline(), resting]
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
            for (slot, generation) in std::mem::take(&mut self.starved) {
                if self
                    .exchanges
                    .of_generation(slot, generation)
                    .is_some_and(|c| c.state.pending.is_empty())
                {
                    self.advance(slot);
                }
            }
            self.expire(Instant::now());
        }
    }

    /// Queues an accept for each free slot (at most [`ACCEPT_DEPTH`], one with `--once`)
    /// while clients may be taken: not stopping, not resting or catching up after
    /// running out of descriptors.
    fn queue_accepts(&mut self) {
        let Some(acceptor) = &self.acceptor else {
            return;
        };
        if !acceptor.may_take() {
            return;
        }
        let depth = if self.config.once { 1 } else { ACCEPT_DEPTH };
        while let Some(place) = self.accepts.free(depth) {
            if !self.slots.try_take() {
                return;
            }
            self.ring.accept(acceptor.fd(), key(Op::Accept, place, 0));
            self.accepts.add(place);
        }
    }

    /// Asks the ring to stop accepting (a stop, or no more clients to take).
    fn cancel_accepts(&mut self) {
        let Some(acceptor) = &self.acceptor else {
            return;
        };
        for place in self.accepts.mark_cancelled() {
            self.ring.cancel(key(Op::Accept, place, 0), acceptor.fd());
        }
    }

    /// Takes no more clients: the queued accepts are cancelled, the listening socket
    /// closed (the kernel keeps it for the accepts until they are back).
    fn close_acceptor(&mut self) {
        self.cancel_accepts();
        self.acceptor = None;
    }

    /// A stop: the ring takes no more clients; every exchange now ends by the grace's end.
    fn begin_stop(&mut self, stop: &Stop) {
        self.stopping = true;
        self.cancel_accepts();
        self.exchanges.stop(stop);
    }

    /// The clients the kernel has queued, taken by the one accept step (non-blocking
    /// `accept()`) as slots allow: while stopping, once the ring's accepts are over, and
    /// then the listening socket is closed; or after running out of descriptors, until
    /// the queue is found empty (which ends the episode: the ring accepts again).
    fn take_the_queue(&mut self, stop: &Stop) -> Result<(), Error> {
        if self.stopping && self.accepts.count() > 0 {
            return Ok(());
        }
        loop {
            let Some(acceptor) = &mut self.acceptor else {
                return Ok(());
            };
            match acceptor.take(self.slots, stop)? {
                Taken::Accepted(stream, peer) => self.start(stream, Some(peer)),
                Taken::Empty | Taken::Full | Taken::Resting => return Ok(()),
                Taken::Closed => self.close_acceptor(),
            }
        }
    }

    /// A completion: of an accept, or of a connection's call.
    fn complete(&mut self, c: Completion, stop: &Stop) -> Result<(), Error> {
        let Some((op, slot, generation)) = parse(c.key) else {
            return Ok(());
        };
        if op == Op::Accept {
            return self.accept_done(slot, c, stop);
        }
        let Some(entry) = self.exchanges.of_generation(slot, generation) else {
            return Ok(());
        };
        entry.state.pending.remove(op);
        // A cancelled call made nothing: there is nothing to feed.
        if !c.cancelled() {
            if op == Op::Read && c.out_of_buffers() {
                self.starved.push((slot, generation));
            } else if let Some(call) = op.call() {
                let data = self.ring.received(&c);
                entry.exchange.complete(call, c.io_result(), data, Instant::now());
            }
        }
        if entry.state.pending.is_empty() && !self.starved.contains(&(slot, generation)) {
            self.advance(slot);
        }
        Ok(())
    }

    /// A completion of the ring's accept in `place`: a client (its slot was taken when
    /// the accept was queued), or why none (the slot is given back).
    fn accept_done(&mut self, place: usize, c: Completion, stop: &Stop) -> Result<(), Error> {
        if !self.accepts.done(place) {
            return Ok(());
        }
        if c.cancelled() {
            self.slots.release();
            return Ok(());
        }
        match self.ring.accepted(c) {
            Ok(stream) => {
                if let Some(acceptor) = &mut self.acceptor {
                    acceptor.accepted();
                }
                self.start(stream, None);
                if self.config.once {
                    // `--once`: exactly one client, then nobody listens.
                    self.close_acceptor();
                }
            }
            Err(e) => {
                self.slots.release();
                let Some(acceptor) = &mut self.acceptor else {
                    return Ok(());
                };
                // Out of descriptors, the acceptor rests and then takes the queue itself.
                match acceptor.failed(e, stop) {
                    None | Some(Ok(Next::Empty | Next::Accepted(..) | Next::Backoff)) => {}
                    Some(Ok(Next::Closed)) => self.close_acceptor(),
                    Some(Err(e)) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// A new client, its slot taken: its first calls are queued.
    fn start(&mut self, stream: Stream, peer: Option<SocketAddr>) {
        let exchange = self.exchanges.begin(stream, peer);
        let slot = self.exchanges.insert(exchange, Calls::default());
        self.advance(slot);
    }

    /// The connection has no call pending: its core hears of a deadline that passed,
    /// then its next calls are queued, or it ends.
    fn advance(&mut self, slot: usize) {
        let Some(entry) = self.exchanges.get_mut(slot) else {
            return;
        };
        if std::mem::take(&mut entry.state.due) {
            entry.exchange.expire(Instant::now(), &mut self.buf);
        }
        // The half-close is made here, at once: the kernel would run an
        // IORING_OP_SHUTDOWN on a worker thread, a thread wake-up per client. (It is the
        // one call the ring model makes itself; the core then asks for the discard or the
        // close.)
        if entry.exchange.core().poll() == hello_proto::conn::Action::HalfClose {
            let _ = entry.exchange.step(&mut []);
        }
        let generation = entry.generation;
        let ring = &mut self.ring;
        let stream = entry.exchange.stream();
        let at = |op| key(op, slot, generation);
        let _ = ring.reserve(2);
        let pending = &mut entry.state.pending;
        match entry.exchange.queued_call() {
            // After a short reply, the hello service's check for unread input goes in the
            // same submission, linked: it runs only if the send took the whole reply. What
            // follows is not linked: whether to close or discard depends on what the check
            // finds.
            Some(Queued::Send { bytes, then_check }) => {
                let linked = bytes.len() <= LINK_MAX && then_check;
                // SAFETY: the bytes are the core's reply, on the heap or in the config:
                // the core does not change until this call's completion is fed back (a
                // deadline waits for it: see `expire`).
                unsafe { ring.send(stream, bytes, linked, at(Op::Send)) };
                pending.add(Op::Send);
                if linked {
                    ring.check_unread(stream, at(Op::Check));
                    pending.add(Op::Check);
                }
            }
            Some(Queued::CheckUnread) => {
                ring.check_unread(stream, at(Op::Check));
                pending.add(Op::Check);
            }
            Some(Queued::Read) => {
                ring.recv(stream, at(Op::Read));
                pending.add(Op::Read);
            }
            // Close or abort (the half-close was made above).
            None => {
                self.end(slot);
                return;
            }
        }
        self.exchanges.schedule(slot);
    }

    /// Ends the exchange as its core asks: `close()` or an abort, queued in the ring;
    /// reported; its slot freed.
    fn end(&mut self, slot: usize) {
        let Some(entry) = self.exchanges.remove(slot) else {
            return;
        };
        let close_key = key(Op::Close, slot, entry.generation);
        let ring = &mut self.ring;
        let failed = entry.exchange.end_with(|stream, abort| {
            if abort {
                ring.abort(stream, close_key);
            } else {
                ring.close(stream, close_key);
            }
        });
        self.summary.count(failed);
        self.slots.release();
    }

    /// The connections whose deadline has passed: a pending call is cancelled first (the
    /// core hears of the deadline when it is back); else the core decides now.
    fn expire(&mut self, now: Instant) {
        while let Some(slot) = self.exchanges.next_due(now) {
            let Some(entry) = self.exchanges.get_mut(slot) else {
                continue;
            };
            entry.state.due = true;
            if entry.state.pending.is_empty() {
                self.advance(slot);
                continue;
            }
            let fd = entry.exchange.stream().fd();
            let generation = entry.generation;
            for op in entry.state.pending.ops() {
                self.ring.cancel(key(op, slot, generation), fd);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn accepts_take_free_places_up_to_the_depth_and_are_cancelled_once() {
        let mut a = Accepts::default();
        assert_eq!(a.free(2), Some(0));
        a.add(0);
        assert_eq!(a.free(2), Some(1));
        a.add(1);
        assert_eq!(a.free(2), None, "at the depth");
        assert!(a.done(0));
        assert!(!a.done(0), "a place completes once");
        assert_eq!(a.free(2), Some(0));
        assert_eq!(a.mark_cancelled().collect::<Vec<_>>(), [1]);
        assert_eq!(a.mark_cancelled().count(), 0, "each cancelled once");
        a.add(0);
        assert_eq!(a.mark_cancelled().collect::<Vec<_>>(), [0]);
        assert!(a.done(1) && a.done(0));
        assert_eq!(a.count(), 0);
        assert_eq!(a.free(ACCEPT_DEPTH), Some(0));
        assert!(!a.done(40), "no such place");
    }

    #[test]
    fn keys_name_the_call_the_slot_and_the_generation() {
        for op in [Op::Send, Op::Check, Op::Read, Op::Close, Op::Accept] {
            for (slot, generation) in [(0, 0), (1, 1), (4_000_000_000, GENERATION_MASK), (12, 77)] {
                let k = key(op, slot, generation);
                assert!(k < RESERVED, "{k:x} is the ring's own");
                assert_eq!(parse(k), Some((op, slot, generation)));
            }
        }
        assert_eq!(parse(key(Op::Accept, 15, 0)), Some((Op::Accept, 15, 0)));
        // A generation past 24 bits wraps, and never reaches the op's bits.
        assert_eq!(
            parse(key(Op::Read, 5, GENERATION_MASK + 2)),
            Some((Op::Read, 5, 1))
        );
        assert_eq!(parse(RESERVED), None);
        assert_eq!(parse(u64::MAX), None);
        assert_eq!(parse(0), None, "no call has op 0");
    }
}
