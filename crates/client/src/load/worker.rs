//! One hello-load thread: an epoll loop (mio) with its share of the exchanges in flight,
//! each a non-blocking socket from `hello_proto::sys::untraced`.
//!
//! An exchange: `socket()` + `connect()` (non-blocking) → with a message, `send()` it and
//! `shutdown(SHUT_WR)` → `read()` until end of stream → compare → `close()`; with
//! `--connect-only`, `socket()` + `connect()` → writable (connected) → `close()`. The loop
//! registers each socket once, for everything it will wait for, and never deregisters
//! (`close()` removes it from epoll): per exchange that is one `epoll_ctl()` and no more.
//!
//! Over UDP a slot keeps its connected socket from one exchange to the next (send a
//! datagram, read the reply): per exchange that is two calls and an `epoll_wait()`, as a
//! client with a socket of its own makes, so that what is measured is the server. A slot
//! whose exchange failed (a timeout: its reply may still come) starts again with a new
//! socket.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hello_proto::sys::process::set_timer_slack;
use hello_proto::sys::untraced::{Conn, Peer, Timer, would_block};
use hello_proto::wire::{display_reply, echo_reply};
use hello_proto::{Error, Step};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

use super::summary::{Class, Tally};
use super::{Config, Expect, Share};

/// How often exchanges are checked against their timeout: the poll never sleeps longer.
const SCAN: Duration = Duration::from_millis(50);
/// Events taken from one `epoll_wait()`.
const EVENTS: usize = 1024;
/// The most bytes of a reply kept for an `--expect` comparison; more is a mismatch.
const MAX_SHOWN_REPLY: usize = 1 << 20;
/// The bytes of each reply kept to show the first mismatch: enough for the
/// [`crate::QUOTED_REPLY`] characters an error line quotes, however they are written.
const HEAD: usize = crate::QUOTED_REPLY * 4;
/// Read buffer: a whole datagram fits.
const BUF: usize = 65536;
/// The token of the open loop's timer; exchange tokens are a slot index and a generation,
/// each under 2^32.
const TIMER: Token = Token(usize::MAX);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Free,
    /// Connecting, and nothing more (`--connect-only`).
    Connecting,
    /// Connecting, or sending the message.
    Sending,
    /// Reading the reply.
    Reading,
}

/// One exchange in flight (or a free place for one).
#[derive(Debug)]
struct Slot {
    conn: Option<Conn>,
    /// Bumped at each start, and part of the epoll token: an event left over from the
    /// slot's previous exchange is told from one for this exchange.
    generation: u32,
    phase: Phase,
    /// Where latency counts from: just before `socket()`, or the scheduled start.
    origin: Instant,
    deadline: Instant,
    sent: usize,
    /// The message of this exchange, with [`Config::numbered`](super::Config::numbered).
    message: Vec<u8>,
    reply: Reply,
}

impl Slot {
    /// The epoll token of the slot at index `i` in its current generation.
    fn token(&self, i: usize) -> Token {
        Token((self.generation as usize) << 32 | i)
    }
}

/// What came of a reply so far.
#[derive(Debug, Default)]
struct Reply {
    /// Bytes received.
    got: usize,
    /// A byte differed from the one expected.
    bad: bool,
    /// The bytes, kept only for an `--expect` comparison.
    bytes: Vec<u8>,
    /// The first [`HEAD`] bytes, to show the first mismatch.
    head: Vec<u8>,
    /// Known to be wrong before its end, which was not awaited.
    cut: bool,
    /// The reply expected, for an [`Expect::Echo`] whose message is the exchange's own.
    want: Vec<u8>,
}

impl Slot {
    fn new(now: Instant) -> Slot {
        Slot {
            conn: None,
            generation: 0,
            phase: Phase::Free,
            origin: now,
            deadline: now,
            sent: 0,
            message: Vec::new(),
            reply: Reply::default(),
        }
    }
}

/// When the next exchange may start.
enum Due {
    /// Now; latency counts from this instant (the scheduled start in an open loop).
    Now(Instant),
    /// Not before this instant (open loop).
    At(Instant),
    /// No more exchanges to start.
    Done,
}

/// One thread's loop, made on the spawning thread so that a failure to create the epoll
/// instance is reported before any load starts.
pub(super) struct Worker {
    poll: Poll,
    /// Open loop: wakes the loop when the next exchange is due.
    timer: Option<Timer>,
    peer: Peer,
    udp: bool,
    connect_only: bool,
    payload: Vec<u8>,
    /// This thread's number, in each message with `numbered`.
    index: usize,
    numbered: bool,
    expect: Expect,
    timeout: Duration,
    share: Share,
    t0: Instant,
    end: Option<Instant>,
}

impl Worker {
    /// What an exchange sends: its own `message` with `numbered`, else the one payload.
    fn to_send<'a>(&'a self, message: &'a [u8]) -> &'a [u8] {
        if self.numbered { message } else { &self.payload }
    }

    pub(super) fn new(
        config: &Config,
        index: usize,
        share: Share,
        t0: Instant,
        end: Option<Instant>,
    ) -> Result<Worker, Error> {
        let poll = Poll::new().map_err(|e| Error::new(Step::EpollCreate, "epoll", e))?;
        // Without a timer (it could not be made) the poll's own timeout wakes the loop
        // for the next start instead, only up to a millisecond late: a worse schedule,
        // which the start lag in the report shows, not a reason to refuse the run.
        let timer = share.schedule.and_then(|_| {
            let t = Timer::new().ok()?;
            poll.registry()
                .register(&mut SourceFd(&t.as_raw_fd()), TIMER, Interest::READABLE)
                .ok()?;
            Some(t)
        });
        Ok(Worker {
            poll,
            timer,
            peer: Peer::new(config.addr),
            udp: config.udp,
            connect_only: config.connect_only,
            payload: config.payload.clone(),
            index,
            numbered: config.numbered,
            // The same message each time: the echo reply is known now.
            expect: match &config.expect {
                Expect::Echo if !config.numbered => Expect::Bytes(echo_reply(text(&config.payload), 0)),
                other => other.clone(),
            },
            timeout: config.timeout,
            share,
            t0,
            end,
        })
    }

    /// When exchange number `k` of this thread is due, seen at `now`.
    fn due(&self, k: u64, now: Instant) -> Due {
        if self.share.count.is_some_and(|n| k >= n) {
            return Due::Done;
        }
        let Some((first, every)) = self.share.schedule else {
            return match self.end {
                Some(end) if now >= end => Due::Done,
                _ => Due::Now(Instant::now()),
            };
        };
        let at = self.scheduled(k, first, every);
        match self.end {
            // A run for a duration stops starting at its end, however late its schedule
            // is: what is due then and not started is counted as such (see `missed`).
            Some(end) if at >= end || now >= end => Due::Done,
            _ if at <= now => Due::Now(at),
            _ => Due::At(at),
        }
    }

    /// When start number `k` is scheduled. k × interval in floating point: exact enough
    /// for any run shorter than a day, and free of the drift a running sum would collect.
    fn scheduled(&self, k: u64, first: Duration, every: Duration) -> Instant {
        self.t0 + first + Duration::from_secs_f64(every.as_secs_f64() * k as f64)
    }

    /// Open loop for a duration: the starts scheduled before its end that were never made
    /// (no place was free until then), given that `started` were.
    fn missed(&self, started: u64) -> u64 {
        let (Some((first, every)), Some(end), None) = (self.share.schedule, self.end, self.share.count)
        else {
            return 0;
        };
        let span = end.saturating_duration_since(self.t0 + first).as_secs_f64();
        let mut due = (span / every.as_secs_f64()).ceil() as u64;
        // Bounded: the estimate is off by at most one either way (floating point).
        while due > 0 && self.scheduled(due - 1, first, every) >= end {
            due -= 1;
        }
        while self.scheduled(due, first, every) < end {
            due += 1;
        }
        due.saturating_sub(started)
    }

    /// Runs this thread's share to its end; `done` counts finished exchanges for the
    /// progress bar.
    pub(super) fn run(mut self, done: &AtomicU64) -> Result<Tally, Error> {
        if self.timer.is_some() {
            // The timer's expiry may otherwise be put off by 50 µs to group wake-ups,
            // which every scheduled start would then show as lag. A failure only leaves
            // the default.
            let _ = set_timer_slack(Duration::from_micros(1));
        }
        let mut tally = Tally::new();
        let mut events = Events::with_capacity(EVENTS);
        let now = Instant::now();
        let mut slots: Vec<Slot> = (0..self.share.slots).map(|_| Slot::new(now)).collect();
        let mut free: Vec<usize> = (0..self.share.slots).rev().collect();
        let mut buf = vec![0u8; BUF];
        let mut started = 0u64;
        let mut next_scan = now + SCAN;
        let mut armed = None;
        let mut more_to_start = true;
        // Bounded: exchanges are started only while the plan allows, every exchange
        // ends by its timeout, and the loop ends when none is left to start or in flight.
        loop {
            let now = Instant::now();
            let mut wake = None;
            let mut more = true;
            while let Some(&i) = free.last() {
                match self.due(started, now) {
                    Due::Now(origin) => {
                        free.pop();
                        started += 1;
                        let late = Instant::now().saturating_duration_since(origin);
                        if self.share.schedule.is_some() {
                            tally.lag(late);
                        }
                        if let Err(class) = self.start(&mut slots[i], i, started, origin, late) {
                            tally.failed(class);
                            free.push(i);
                        }
                    }
                    Due::At(at) => {
                        wake = Some(at);
                        break;
                    }
                    Due::Done => {
                        if more_to_start {
                            more_to_start = false;
                            tally.not_started(self.missed(started));
                        }
                        more = false;
                        break;
                    }
                }
            }
            if !more && free.len() == slots.len() {
                break;
            }
            let mut limit = next_scan.saturating_duration_since(now);
            if let Some(at) = wake {
                let set = match &self.timer {
                    Some(_) if armed == Some(at) => true,
                    Some(timer) => timer.set(at.saturating_duration_since(now)).is_ok(),
                    None => false,
                };
                if set {
                    armed = Some(at);
                } else {
                    limit = limit.min(at.saturating_duration_since(now));
                }
            }
            match self.poll.poll(&mut events, Some(limit)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::new(Step::EpollWait, "epoll", e)),
            }
            for event in events.iter() {
                if event.token() == TIMER {
                    continue;
                }
                let token = event.token().0;
                let i = token & 0xffff_ffff;
                let Some(slot) = slots.get_mut(i) else { continue };
                if slot.phase == Phase::Free || (token >> 32) as u32 != slot.generation {
                    continue;
                }
                let (error, closed) = (event.is_error(), event.is_read_closed());
                if let Some(end) = self.step(slot, &mut buf, error, closed && !error) {
                    finish(slot, end, &mut tally, self.udp);
                    free.push(i);
                }
            }
            let now = Instant::now();
            if now >= next_scan {
                next_scan = now + SCAN;
                for (i, slot) in slots.iter_mut().enumerate() {
                    if slot.phase != Phase::Free && now >= slot.deadline {
                        finish(slot, End::Failed(Class::Timeout), &mut tally, false);
                        free.push(i);
                    }
                }
            }
            done.store(tally.exchanges(), Ordering::Relaxed);
        }
        done.store(tally.exchanges(), Ordering::Relaxed);
        Ok(tally)
    }

    /// Starts exchange number `k` of this thread in slot `i`, due at `origin` and started
    /// `late` after it (open loop). `Err(class)`: it failed at once (the slot stays free).
    fn start(
        &mut self,
        slot: &mut Slot,
        i: usize,
        k: u64,
        origin: Instant,
        late: Duration,
    ) -> Result<(), Class> {
        // Latency counts from the scheduled start; the timeout from the real one.
        slot.origin = origin;
        slot.deadline = origin + late + self.timeout;
        if self.numbered {
            self.number(slot, k);
        }
        if let Some(kept) = slot.conn.take() {
            return self.start_again(slot, i, kept);
        }
        slot.generation = slot.generation.wrapping_add(1);
        let conn = if self.udp {
            Conn::connect_udp(&self.peer)
        } else {
            Conn::connect_tcp(&self.peer)
        };
        let conn = conn.map_err(|e| Class::of(&e))?;
        slot.sent = 0;
        slot.reply.got = 0;
        slot.reply.bad = false;
        slot.reply.bytes.clear();
        slot.reply.head.clear();
        slot.reply.cut = false;
        if self.connect_only {
            // Writable once connected; a refusal or a reset shows as an error event.
            slot.phase = Phase::Connecting;
            let token = slot.token(i);
            self.poll
                .registry()
                .register(&mut SourceFd(&conn.as_raw_fd()), token, Interest::WRITABLE)
                .map_err(|e| Class::of(&e))?;
            slot.conn = Some(conn);
            return Ok(());
        }
        // Send at once when there is something to send: over loopback the handshake is
        // usually done by the time connect() returns, and then the socket need only be
        // waited on for the reply. Otherwise (EAGAIN: still connecting) it is waited on
        // for both, and the message goes when it is writable.
        let mut interest = Interest::READABLE;
        slot.phase = Phase::Reading;
        let payload = self.to_send(&slot.message);
        let wants_send = self.udp || !payload.is_empty();
        if wants_send && !send_rest(&conn, payload, &mut slot.sent, self.udp).map_err(|e| Class::of(&e))? {
            interest = Interest::READABLE | Interest::WRITABLE;
            slot.phase = Phase::Sending;
        }
        let token = slot.token(i);
        self.poll
            .registry()
            .register(&mut SourceFd(&conn.as_raw_fd()), token, interest)
            .map_err(|e| Class::of(&e))?;
        slot.conn = Some(conn);
        Ok(())
    }

    /// Starts the next UDP exchange on the slot's kept socket, registered already (with
    /// the token of this generation): one `send()`, and the reply is waited for. A full
    /// socket buffer (rare) waits for room too.
    fn start_again(&mut self, slot: &mut Slot, i: usize, conn: Conn) -> Result<(), Class> {
        slot.sent = 0;
        slot.reply.got = 0;
        slot.reply.bad = false;
        slot.reply.bytes.clear();
        slot.phase = Phase::Reading;
        let payload = self.to_send(&slot.message);
        if !send_rest(&conn, payload, &mut slot.sent, true).map_err(|e| Class::of(&e))? {
            slot.phase = Phase::Sending;
            let token = slot.token(i);
            self.poll
                .registry()
                .reregister(
                    &mut SourceFd(&conn.as_raw_fd()),
                    token,
                    Interest::READABLE | Interest::WRITABLE,
                )
                .map_err(|e| Class::of(&e))?;
        }
        slot.conn = Some(conn);
        Ok(())
    }

    /// Makes exchange number `k` (from 1) of this thread its own message: the payload's
    /// text, ` <thread> <k>`, its NUL; and, for [`Expect::Echo`], the reply to it.
    fn number(&self, slot: &mut Slot, k: u64) {
        use std::io::Write as _;
        slot.message.clear();
        slot.message.extend_from_slice(text(&self.payload));
        // Writing to a Vec cannot fail.
        let _ = write!(slot.message, " {} {k}", self.index);
        slot.reply.want = echo_reply(&slot.message, 0);
        slot.message.push(0);
    }

    /// Moves an exchange on after an event, which said whether the socket has an error,
    /// and whether the peer's end of stream had arrived (and no error). `Some(end)` when
    /// the exchange is over.
    fn step(&self, slot: &mut Slot, buf: &mut [u8], error: bool, peer_ended: bool) -> Option<End> {
        let conn = slot.conn.as_ref()?;
        if slot.phase == Phase::Connecting {
            // The event says the handshake ended; SO_ERROR says how.
            return Some(match conn.take_error() {
                Ok(None) if !error => End::Ok(Instant::now()),
                Ok(Some(e)) | Err(e) => End::Failed(Class::of(&e)),
                Ok(None) => End::Failed(Class::Other(None)),
            });
        }
        if slot.phase == Phase::Sending {
            let payload = self.to_send(&slot.message);
            match send_rest(conn, payload, &mut slot.sent, self.udp) {
                Ok(true) => slot.phase = Phase::Reading,
                Ok(false) if !error => return None,
                // An error with nothing to report yet: SO_ERROR says why.
                Ok(false) => {
                    return Some(End::Failed(match conn.take_error() {
                        Ok(Some(e)) | Err(e) => Class::of(&e),
                        Ok(None) => Class::Other(None),
                    }));
                }
                Err(e) => return Some(End::Failed(Class::of(&e))),
            }
        }
        // Bounded: each pass reads bytes, and a reply longer than expected ends the
        // exchange as a mismatch.
        loop {
            match conn.read(buf) {
                Ok(n) if self.udp => {
                    self.take(&mut slot.reply, &buf[..n]);
                    return Some(self.verdict(&slot.reply));
                }
                Ok(0) => return Some(self.verdict(&slot.reply)),
                Ok(n) => {
                    if !self.take(&mut slot.reply, &buf[..n]) {
                        slot.reply.cut = true;
                        return Some(End::Failed(Class::Mismatch));
                    }
                    // The peer's FIN had arrived before this read, so everything it sent
                    // was queued ahead of it, and a read that did not fill the buffer
                    // took all of it: this is the end of the stream, and the read() that
                    // would return 0 can be spared (one call in six per exchange).
                    if peer_ended && n < buf.len() {
                        return Some(self.verdict(&slot.reply));
                    }
                }
                Err(e) if would_block(&e) => return None,
                Err(e) => return Some(End::Failed(Class::of(&e))),
            }
        }
    }

    /// Compares the bytes that came with what is expected. False when the reply is
    /// already known to be wrong by its length (the exchange can end now).
    fn take(&self, reply: &mut Reply, bytes: &[u8]) -> bool {
        let at = reply.got;
        reply.got += bytes.len();
        if reply.head.len() < HEAD {
            let room = HEAD - reply.head.len();
            reply.head.extend_from_slice(&bytes[..bytes.len().min(room)]);
        }
        let want = match &self.expect {
            Expect::Any => return true,
            Expect::Bytes(want) => want,
            Expect::Echo => &reply.want,
            Expect::Shown(_) if reply.got > MAX_SHOWN_REPLY => return false,
            Expect::Shown(_) => {
                reply.bytes.extend_from_slice(bytes);
                return true;
            }
        };
        match want.get(at..reply.got) {
            Some(w) => {
                reply.bad |= w != bytes;
                true
            }
            None => false,
        }
    }

    /// The reply is whole: is it the one expected?
    fn verdict(&self, reply: &Reply) -> End {
        let ok = match &self.expect {
            Expect::Bytes(want) => !reply.bad && reply.got == want.len(),
            Expect::Echo => !reply.bad && reply.got == reply.want.len(),
            Expect::Any => reply.got > 0,
            Expect::Shown(text) => display_reply(&reply.bytes) == *text,
        };
        if ok {
            End::Ok(Instant::now())
        } else {
            End::Failed(Class::Mismatch)
        }
    }
}

/// A payload's text: its bytes without the NUL that ends them.
fn text(payload: &[u8]) -> &[u8] {
    payload.strip_suffix(b"\0").unwrap_or(payload)
}

/// How an exchange ended.
enum End {
    /// Whole and as expected, at this instant.
    Ok(Instant),
    /// Failed, of this class.
    Failed(Class),
}

/// Sends what is left of `payload`, then half-closes (TCP). `Ok(true)`: all sent;
/// `Ok(false)`: the socket is not ready (still connecting, or its buffer is full).
fn send_rest(conn: &Conn, payload: &[u8], sent: &mut usize, udp: bool) -> io::Result<bool> {
    if udp {
        // One datagram, the empty one included; a full socket buffer waits for room.
        return match conn.send(payload) {
            Ok(_) => Ok(true),
            Err(e) if would_block(&e) => Ok(false),
            Err(e) => Err(e),
        };
    }
    // Bounded: each pass sends at least a byte, or returns.
    while *sent < payload.len() {
        match conn.send(&payload[*sent..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => *sent += n,
            Err(e) if would_block(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    // The server may have answered and closed already (a hello server does not read):
    // a failed half-close is not the exchange's failure; the reply will tell.
    let _ = conn.shutdown_write();
    Ok(true)
}

/// Closes the exchange's socket (or, over UDP, keeps it for the slot's next exchange,
/// with `keep_udp`, when this one succeeded) and counts how it ended.
fn finish(slot: &mut Slot, end: End, tally: &mut Tally, keep_udp: bool) {
    if !(keep_udp && matches!(end, End::Ok(_))) {
        slot.conn = None;
    }
    slot.phase = Phase::Free;
    match end {
        End::Ok(at) => tally.ok(at.saturating_duration_since(slot.origin)),
        End::Failed(Class::Mismatch) => {
            let r = &slot.reply;
            tally.mismatch(Instant::now(), &r.head, r.got, !r.cut);
        }
        End::Failed(class) => tally.failed(class),
    }
}
