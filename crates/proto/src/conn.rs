//! The life of one served TCP connection, as a state machine with no I/O and no clock.
//!
//! Every server model drives this one machine, so what happens to a connection is written
//! once: greet, or read a request and reply; send the reply with `MSG_MORE`; check for
//! input the client sent that was never read; half-close; discard it; close — or abort with
//! RST when a reply cannot be finished. The idle deadline and the stop's grace live here
//! too, so every model applies the same deadline policy.
//!
//! A driver asks [`Connection::poll`] for the next system call, makes it, and feeds what
//! happened back with [`Connection::handle`]. When a call would block, the driver waits
//! until the socket is ready or [`Connection::deadline`] passes, then calls
//! [`Connection::on_timeout`]. A stop is announced with [`Connection::on_stop`]. After it
//! carries out [`Action::Close`] or [`Action::Abort`], [`Connection::finish`] says how the
//! exchange ended. Time comes in from the driver as `now`; nothing here reads a clock,
//! touches a socket or prints.
//!
//! The deadline policy (docs/contract.md#how-a-connection-ends):
//! - while the request is read or the reply sent, the connection may be idle — no byte
//!   read, no byte sent — for at most [`Limits::idle`]; every byte of progress restarts it;
//! - the whole request must have arrived within [`Limits::request`] of the accept, however
//!   steadily it trickles in (a byte every few seconds restarts the idle timer for ever);
//! - after the reply, unread input is discarded for at most [`Limits::discard_time`] and
//!   [`Limits::discard_bytes`], however steadily it arrives;
//! - once a stop is announced, the exchange has until the grace ends: a request or reply
//!   still unfinished then is aborted, a discard is cut short with a plain close.
//!
//! A reply that is not sent whole always ends in [`Action::Abort`] (RST), never in a plain
//! close whose FIN would make a truncated reply look complete.

use std::borrow::Cow;
use std::io;
use std::time::{Duration, Instant};

use crate::error::{Cause, Step};
use crate::proxy;
use crate::wire::{BUSY_REPLY, EchoRequest, Progress, Service};

/// Default [`Limits::idle`] (`--idle-timeout`).
pub const DEFAULT_IDLE: Duration = Duration::from_secs(10);
/// Default [`Limits::request`] (`--request-timeout`).
pub const DEFAULT_REQUEST: Duration = Duration::from_secs(30);
/// Default [`Limits::discard_time`].
pub const DISCARD_TIME: Duration = Duration::from_millis(500);
/// Default [`Limits::discard_bytes`].
pub const DISCARD_BYTES: usize = 64 * 1024;

/// The time and size bounds of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// How long the connection may make no progress while the request is read or the reply
    /// sent (`--idle-timeout`).
    pub idle: Duration,
    /// How long after the accept the whole request must have arrived
    /// (`--request-timeout`).
    pub request: Duration,
    /// How long input is discarded after the reply before `close()`.
    pub discard_time: Duration,
    /// How many bytes are discarded at most before giving up with RST.
    pub discard_bytes: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            idle: DEFAULT_IDLE,
            request: DEFAULT_REQUEST,
            discard_time: DISCARD_TIME,
            discard_bytes: DISCARD_BYTES,
        }
    }
}

impl Limits {
    /// The given idle timeout, with the other bounds' defaults.
    pub fn with_idle(idle: Duration) -> Limits {
        Limits {
            idle,
            ..Limits::default()
        }
    }
}

/// The next system call to make on the connection's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<'a> {
    /// `send(2)` these bytes, the rest of the reply; answer with [`Input::Sent`]. With
    /// `more`, pass `MSG_MORE`: the close (or the half-close) that follows at once takes
    /// the tail out with its FIN, in one segment.
    Send {
        /// The bytes not sent yet.
        bytes: &'a [u8],
        /// Whether to send with `MSG_MORE`.
        more: bool,
    },
    /// `read(2)`; answer with [`Input::Received`] (empty at end of stream).
    Read,
    /// `shutdown(SHUT_WR)`: the reply is complete; answer with [`Input::HalfClosed`].
    HalfClose,
    /// `recv(MSG_DONTWAIT)` once: did the client send anything that was never read?
    /// Answer with [`Input::Unread`].
    CheckUnread,
    /// `close(2)`: the exchange is over and nothing is known to be unread.
    Close,
    /// `SO_LINGER` {on, 0} then `close(2)`: reset the connection (RST) and drop whatever is
    /// unsent, because the reply cannot be finished or the peer will not stop sending.
    Abort,
}

/// What the call asked for returned. `EINTR` is retried and `EAGAIN` waited out by the
/// driver; neither is ever fed here.
#[derive(Debug)]
pub enum Input<'b> {
    /// `send()` took this many bytes (0 is a failure).
    Sent(usize),
    /// `read()` returned these bytes; empty is end of stream.
    Received(&'b [u8]),
    /// `shutdown(SHUT_WR)` succeeded.
    HalfClosed,
    /// The answer of the unread-input check.
    Unread(Unread),
    /// The call failed.
    Failed(io::Error),
    /// `read()` returned bytes of the request that the server has no memory left to hold
    /// (its budget for buffered requests is spent): they are dropped, and the client is
    /// told the server is busy.
    OverBudget,
}

/// The answer of `recv(MSG_DONTWAIT)` after the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unread {
    /// Nothing was waiting (EAGAIN).
    Nothing,
    /// The client had half-closed (0).
    Eof,
    /// This many bytes were waiting (and were read away by the check).
    Data(usize),
}

/// How an exchange ended.
#[derive(Debug)]
pub enum Outcome {
    /// The whole reply went out and the connection was closed.
    Served,
    /// The client hung up before the end without it mattering (it closed before the
    /// half-close): nothing to report.
    PeerGone,
    /// The exchange failed: the call that was in progress and why. Worth one log line.
    Failed {
        /// The call in progress.
        step: Step,
        /// Why it ended.
        cause: Cause,
    },
}

/// What happens once the reply is out. A client that may still send is half-closed
/// before the close: the half-close takes the reply's tail, held by `MSG_MORE`, out with
/// its FIN in one segment, where a `close()` would drop it and send a reset instead if the
/// client's input arrived just before (after the check for it). Only a client that has
/// half-closed itself gets its FIN with the `close()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// The hello service never reads: check once for input the client sent, then
    /// half-close; input found is discarded, then close.
    CheckUnread,
    /// The request ended at a terminator: the client may send more, so half-close and
    /// discard (at most this many more bytes).
    Discard(usize),
    /// The request ended at end of stream: nothing more can come, so close.
    Close,
}

/// What follows the half-close.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Then {
    /// Nothing is known to be unread: close.
    Close,
    /// Discard at most this many more bytes, then close.
    Discard(usize),
}

#[derive(Debug)]
enum State<'s> {
    /// Reading the PROXY protocol header a balancer sends first; then `next`.
    Header {
        buf: Vec<u8>,
        next: Box<State<'s>>,
    },
    Reading(EchoRequest),
    Sending {
        reply: Cow<'s, [u8]>,
        sent: usize,
        after: After,
    },
    HalfClosing(Then),
    Checking,
    Discarding {
        left: usize,
    },
    Closing(Outcome),
    Aborting(Outcome),
}

/// One accepted connection of the hello or echo service.
#[derive(Debug)]
pub struct Connection<'s> {
    state: State<'s>,
    limits: Limits,
    /// When the current wait ends: idle (restarted by progress) or the discard's end.
    wait_until: Instant,
    /// When the whole request must have arrived.
    request_until: Instant,
    /// When the stop's grace ends, once a stop was announced.
    grace_end: Option<Instant>,
    /// Why the exchange counts as failed although its last reply goes out whole (the
    /// busy reply).
    refused: Option<Outcome>,
    /// The PROXY header read, until the driver takes it.
    proxied: Option<proxy::Header>,
    /// Whether the peer is one whose PROXY header is believed (`--proxy-from`).
    proxy_trusted: bool,
}

impl<'s> Connection<'s> {
    /// A connection accepted at `now`, served with `service`.
    pub fn new(service: &'s Service, limits: Limits, now: Instant) -> Self {
        let state = match service {
            Service::Hello { greeting } => send(Cow::Borrowed(greeting), After::CheckUnread),
            Service::Echo { max_request } => State::Reading(EchoRequest::new(*max_request)),
        };
        Connection {
            state,
            limits,
            wait_until: now + limits.idle,
            request_until: now + limits.request,
            grace_end: None,
            refused: None,
            proxied: None,
            proxy_trusted: false,
        }
    }

    /// The connection starts with a PROXY protocol header (docs/contract.md#behind-a-balancer),
    /// read before the service: a connection without a valid one is closed with a line,
    /// and so is one whose peer is not `trusted` (not in `--proxy-from`), once its header
    /// is whole: nobody else may say who the client is.
    pub fn expect_proxy_header(mut self, trusted: bool) -> Self {
        self.proxy_trusted = trusted;
        let next = std::mem::replace(&mut self.state, State::Closing(Outcome::Served));
        self.state = State::Header {
            buf: Vec::new(),
            next: Box::new(next),
        };
        self
    }

    /// The PROXY header, once it has been read (given once): the client's real address.
    pub fn take_header(&mut self) -> Option<proxy::Header> {
        self.proxied.take()
    }

    /// The next call to make. Asking again without feeding anything gives the same answer.
    pub fn poll(&self) -> Action<'_> {
        match &self.state {
            State::Header { .. } | State::Reading(_) | State::Discarding { .. } => Action::Read,
            State::Sending { reply, sent, .. } => Action::Send {
                bytes: &reply[*sent..],
                more: true,
            },
            State::HalfClosing(_) => Action::HalfClose,
            State::Checking => Action::CheckUnread,
            State::Closing(_) => Action::Close,
            State::Aborting(_) => Action::Abort,
        }
    }

    /// The call that follows the one [`Connection::poll`] asks for now, if that one
    /// succeeds whole: after the reply's last send, [`Action::CheckUnread`],
    /// [`Action::Close`] or [`Action::HalfClose`] (a discard follows); after that
    /// half-close, [`Action::Read`]; `None` otherwise. For a driver that submits calls
    /// ahead of their turn, linked so that each runs only if the one before succeeded
    /// (io_uring): what it then feeds back is exactly what [`Connection::poll`] asks for in
    /// turn.
    pub fn next_if_done(&self) -> Option<Action<'static>> {
        match &self.state {
            State::Sending { after, .. } => Some(match after {
                After::CheckUnread => Action::CheckUnread,
                After::Close => Action::Close,
                After::Discard(_) => Action::HalfClose,
            }),
            State::HalfClosing(Then::Discard(_)) => Some(Action::Read),
            State::HalfClosing(Then::Close) => Some(Action::Close),
            _ => None,
        }
    }

    /// When [`Connection::on_timeout`] is due if nothing happens first; `None` while the
    /// next call cannot block.
    pub fn deadline(&self) -> Option<Instant> {
        let wait = match self.state {
            State::Header { .. } | State::Reading(_) => self.wait_until.min(self.request_until),
            State::Sending { .. } | State::Discarding { .. } => self.wait_until,
            _ => return None,
        };
        Some(self.grace_end.map_or(wait, |g| g.min(wait)))
    }

    /// Whether the next read is of the request, whose bytes are held until it is complete
    /// (a driver that keeps a memory budget reserves for them).
    pub fn reads_request(&self) -> bool {
        matches!(self.state, State::Header { .. } | State::Reading(_))
    }

    /// Bytes of memory request and reply hold: the request being framed (its buffer's
    /// capacity), then the reply being sent (a hello greeting is shared, not held per
    /// connection).
    pub fn held(&self) -> usize {
        match &self.state {
            State::Header { buf, .. } => buf.capacity(),
            State::Reading(request) => request.capacity(),
            State::Sending {
                reply: Cow::Owned(reply),
                ..
            } => reply.capacity(),
            _ => 0,
        }
    }

    /// How the exchange is ending, once the core has asked for [`Action::Close`] or
    /// [`Action::Abort`].
    pub fn ending(&self) -> Option<&Outcome> {
        match &self.state {
            State::Closing(outcome) | State::Aborting(outcome) => Some(outcome),
            _ => None,
        }
    }

    /// Request bytes held (the echo request being framed): never more than
    /// `max_request + 1`.
    pub fn buffered(&self) -> usize {
        match &self.state {
            State::Reading(request) => request.buffered(),
            _ => 0,
        }
    }

    /// Feeds the result of the call [`Connection::poll`] asked for, which returned at
    /// `now`. An input that does not answer the current action is ignored, and so is one
    /// that comes when the stop's grace is over: the exchange ends as [`on_timeout`]
    /// would end it.
    ///
    /// [`on_timeout`]: Connection::on_timeout
    pub fn handle(&mut self, input: Input<'_>, now: Instant) {
        if self.grace_end.is_some_and(|g| now >= g) && self.deadline().is_some() {
            self.on_timeout(now);
            return;
        }
        let state = std::mem::replace(&mut self.state, State::Closing(Outcome::Served));
        self.state = match (state, input) {
            (State::Header { buf, next }, input) => self.header(buf, *next, input, now),
            (State::Reading(request), input) => self.reading(request, input, now),
            (State::Sending { reply, sent, after }, input) => self.sending(reply, sent, after, input, now),
            (State::HalfClosing(then), Input::HalfClosed) => self.half_closed(then, now),
            (State::HalfClosing(_), Input::Failed(e)) if peer_gone(&e) => State::Closing(Outcome::PeerGone),
            (State::HalfClosing(_), Input::Failed(e)) => State::Closing(failed(Step::Shutdown, e)),
            // The client reset before its FIN could go: its choice, nothing to report.
            (State::Checking, Input::Failed(e)) if peer_gone(&e) => State::Closing(Outcome::PeerGone),
            // A client that half-closed can send nothing more: the FIN goes with the close.
            (State::Checking, Input::Unread(Unread::Eof)) => State::Closing(Outcome::Served),
            // Nothing came yet, or the check failed: half-close, so that input arriving
            // now cannot turn the close into a reset that drops the reply's held tail.
            (State::Checking, Input::Unread(Unread::Nothing) | Input::Failed(_)) => {
                State::HalfClosing(Then::Close)
            }
            // The client sent something: half-close (so that it sees the end of the
            // reply), then discard what is left of it.
            (State::Checking, Input::Unread(Unread::Data(n))) => {
                State::HalfClosing(Then::Discard(self.limits.discard_bytes.saturating_sub(n)))
            }
            (State::Discarding { left }, Input::Received(data)) if !data.is_empty() => {
                self.discarded(left, data.len())
            }
            // End of stream, or the socket failed: nothing is left unread.
            (State::Discarding { .. }, Input::Received(_) | Input::Failed(_)) => {
                State::Closing(Outcome::Served)
            }
            (state, _) => state,
        };
    }

    /// The deadline may have passed at `now`: ends the exchange if it has (a call before
    /// the deadline changes nothing).
    pub fn on_timeout(&mut self, now: Instant) {
        if self.deadline().is_none_or(|d| now < d) {
            return;
        }
        let stopped = self.grace_end.is_some_and(|g| now >= g);
        let state = std::mem::replace(&mut self.state, State::Closing(Outcome::Served));
        self.state = match state {
            State::Header { .. } | State::Reading(_) if stopped => State::Aborting(unfinished(Step::Read)),
            // A slow or silent client: nothing was sent, so a plain close cuts nothing short.
            State::Header { .. } | State::Reading(_)
                if now >= self.request_until && self.request_until <= self.wait_until =>
            {
                State::Closing(Outcome::Failed {
                    step: Step::Read,
                    cause: Cause::RequestTimedOut(self.limits.request),
                })
            }
            State::Header { .. } | State::Reading(_) => {
                State::Closing(timed_out(Step::Read, self.limits.idle))
            }
            State::Sending { .. } if stopped => State::Aborting(unfinished(Step::Write)),
            State::Sending { .. } => State::Aborting(timed_out(Step::Write, self.limits.idle)),
            // The reply is out: a discard cut short (by time or by the stop) is a plain close.
            State::Discarding { .. } => State::Closing(Outcome::Served),
            other => other,
        };
    }

    /// A stop was announced: the exchange must be over by `grace_end`.
    pub fn on_stop(&mut self, grace_end: Instant) {
        self.grace_end = Some(self.grace_end.map_or(grace_end, |g| g.min(grace_end)));
    }

    /// How the exchange ended; for the driver to call once it has carried out
    /// [`Action::Close`] or [`Action::Abort`]. A connection the driver gives up on before
    /// that counts as unfinished in the call it was at.
    pub fn finish(self) -> Outcome {
        match self.state {
            State::Closing(Outcome::Served) | State::Aborting(Outcome::Served) if self.refused.is_some() => {
                self.refused.unwrap_or(Outcome::Served)
            }
            State::Closing(outcome) | State::Aborting(outcome) => outcome,
            State::Header { .. } | State::Reading(_) | State::Checking | State::Discarding { .. } => {
                unfinished(Step::Read)
            }
            State::Sending { .. } => unfinished(Step::Write),
            State::HalfClosing(_) => unfinished(Step::Shutdown),
        }
    }

    /// More of the PROXY header, or what came instead. What follows the header in the
    /// same read is the client's: an echo request starts with it, and the hello service,
    /// which never reads, discards it after the greeting instead of only checking.
    fn header(&mut self, mut buf: Vec<u8>, next: State<'s>, input: Input<'_>, now: Instant) -> State<'s> {
        let bad = |invalid| {
            State::Closing(Outcome::Failed {
                step: Step::Read,
                cause: Cause::ProxyHeader(invalid),
            })
        };
        let data = match input {
            Input::Received([]) => return bad(proxy::Invalid::Truncated),
            Input::Received(data) => data,
            Input::Failed(e) => return State::Closing(failed(Step::Read, e)),
            Input::OverBudget => {
                return State::Closing(Outcome::Failed {
                    step: Step::Read,
                    cause: Cause::Busy,
                });
            }
            _ => {
                return State::Header {
                    buf,
                    next: Box::new(next),
                };
            }
        };
        self.wait_until = now + self.limits.idle;
        buf.extend_from_slice(data);
        let (header, len) = match proxy::parse(&buf) {
            proxy::Parse::Incomplete => {
                return State::Header {
                    buf,
                    next: Box::new(next),
                };
            }
            proxy::Parse::Invalid(invalid) => return bad(invalid),
            proxy::Parse::Header { .. } if !self.proxy_trusted => return bad(proxy::Invalid::Untrusted),
            proxy::Parse::Header { header, len } => (header, len),
        };
        self.proxied = Some(header);
        let rest = &buf[len..];
        match next {
            _ if rest.is_empty() => next,
            State::Reading(request) => self.reading(request, Input::Received(rest), now),
            State::Sending { reply, sent, .. } => State::Sending {
                reply,
                sent,
                after: After::Discard(self.limits.discard_bytes),
            },
            other => other,
        }
    }

    fn reading(&mut self, mut request: EchoRequest, input: Input<'_>, now: Instant) -> State<'s> {
        let data = match input {
            Input::Received(data) => data,
            Input::Failed(e) => return State::Closing(failed(Step::Read, e)),
            Input::OverBudget => {
                self.refused = Some(Outcome::Failed {
                    step: Step::Read,
                    cause: Cause::Busy,
                });
                return send(
                    Cow::Borrowed(BUSY_REPLY),
                    After::Discard(self.limits.discard_bytes),
                );
            }
            _ => return State::Reading(request),
        };
        self.wait_until = now + self.limits.idle;
        let progress = if data.is_empty() {
            request.finish()
        } else {
            request.feed(data)
        };
        let reply = match progress {
            Progress::NeedMore => return State::Reading(request),
            Progress::Reply(reply) | Progress::TooLong(reply) => reply,
            // `Done` only follows a reply, and the state left `Reading` with the reply.
            Progress::Done => return State::Closing(Outcome::Served),
        };
        let after = if data.is_empty() {
            After::Close
        } else {
            After::Discard(self.limits.discard_bytes)
        };
        send(Cow::Owned(reply), after)
    }

    fn sending(
        &mut self,
        reply: Cow<'s, [u8]>,
        sent: usize,
        after: After,
        input: Input<'_>,
        now: Instant,
    ) -> State<'s> {
        match input {
            Input::Sent(0) => State::Aborting(failed(Step::Write, io::ErrorKind::WriteZero.into())),
            Input::Sent(n) => {
                self.wait_until = now + self.limits.idle;
                let sent = sent.saturating_add(n).min(reply.len());
                if sent == reply.len() {
                    replied(after)
                } else {
                    State::Sending { reply, sent, after }
                }
            }
            // The client left without its reply: its choice, not a failure worth a line.
            Input::Failed(e) if peer_gone(&e) => State::Aborting(Outcome::PeerGone),
            // Part of the reply may be out: only a reset tells the client it is cut short.
            Input::Failed(e) => State::Aborting(failed(Step::Write, e)),
            _ => State::Sending { reply, sent, after },
        }
    }

    fn half_closed(&mut self, then: Then, now: Instant) -> State<'s> {
        match then {
            Then::Close => State::Closing(Outcome::Served),
            // The discard's bytes were used up before it began (by the check): reset, as a
            // discard that runs out does; the half-close has taken the reply out first.
            Then::Discard(0) => State::Aborting(Outcome::Served),
            Then::Discard(left) => {
                self.wait_until = now + self.limits.discard_time;
                State::Discarding { left }
            }
        }
    }

    /// `n` more bytes were read away while discarding with `left` to go. A client still
    /// sending when the budget runs out is reset: a plain close would reset it anyway
    /// (unread input), and saying so is honest.
    fn discarded(&self, left: usize, n: usize) -> State<'s> {
        match left.saturating_sub(n) {
            0 => State::Aborting(Outcome::Served),
            left => State::Discarding { left },
        }
    }
}

/// The whole reply is out: what `after` says comes next.
fn replied<'s>(after: After) -> State<'s> {
    match after {
        After::CheckUnread => State::Checking,
        After::Close => State::Closing(Outcome::Served),
        After::Discard(left) => State::HalfClosing(Then::Discard(left)),
    }
}

/// Sending `reply`, then `after`; an empty reply (a library caller's empty greeting) has
/// nothing to send and goes straight to what follows it.
fn send(reply: Cow<'_, [u8]>, after: After) -> State<'_> {
    if reply.is_empty() {
        replied(after)
    } else {
        State::Sending {
            reply,
            sent: 0,
            after,
        }
    }
}

/// The peer closed or reset the connection (ENOTCONN, ECONNRESET, EPIPE): sending more is
/// pointless, though what it sent before may still be read.
pub fn peer_gone(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotConnected | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

fn failed(step: Step, e: io::Error) -> Outcome {
    Outcome::Failed {
        step,
        cause: Cause::Os(e),
    }
}

fn timed_out(step: Step, limit: Duration) -> Outcome {
    Outcome::Failed {
        step,
        cause: Cause::TimedOut(limit),
    }
}

fn unfinished(step: Step) -> Outcome {
    Outcome::Failed {
        step,
        cause: Cause::Unfinished,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn bytes_over_the_budget_get_the_busy_reply_and_count_as_failed() {
        let echo = Service::Echo { max_request: 100 };
        let t0 = Instant::now();
        let mut conn = Connection::new(&echo, Limits::default(), t0);
        conn.handle(Input::Received(b"held"), t0);
        assert!(conn.held() >= 4);
        conn.handle(Input::OverBudget, t0);
        assert_eq!(conn.held(), 0, "the request's bytes are dropped");
        assert_eq!(
            conn.poll(),
            Action::Send {
                bytes: BUSY_REPLY,
                more: true
            }
        );
        conn.handle(Input::Sent(BUSY_REPLY.len()), t0);
        assert_eq!(conn.poll(), Action::HalfClose);
        conn.handle(Input::HalfClosed, t0);
        assert_eq!(
            conn.poll(),
            Action::Read,
            "what the client still sends is discarded"
        );
        conn.handle(Input::Received(b""), t0);
        assert_eq!(conn.poll(), Action::Close);
        assert!(matches!(
            conn.finish(),
            Outcome::Failed {
                step: Step::Read,
                cause: Cause::Busy
            }
        ));
    }

    #[test]
    fn a_trickling_request_ends_at_the_request_deadline() {
        let echo = Service::Echo { max_request: 100 };
        let limits = Limits {
            idle: ms(100),
            request: ms(250),
            ..Limits::default()
        };
        let t0 = Instant::now();
        let mut conn = Connection::new(&echo, limits, t0);
        // A byte every 80 ms keeps the idle timer from running out ...
        for i in 1..=3 {
            conn.handle(Input::Received(b"x"), t0 + ms(80 * i));
        }
        assert_eq!(
            conn.deadline(),
            Some(t0 + ms(250)),
            "the request deadline comes first"
        );
        conn.on_timeout(t0 + ms(249));
        assert_eq!(conn.poll(), Action::Read);
        // ... but not the request's.
        conn.on_timeout(t0 + ms(250));
        assert_eq!(conn.poll(), Action::Close);
        assert!(matches!(
            conn.finish(),
            Outcome::Failed {
                step: Step::Read,
                cause: Cause::RequestTimedOut(d)
            } if d == ms(250)
        ));
    }

    #[test]
    fn a_proxy_header_comes_first_and_names_the_client() {
        let src: std::net::SocketAddr = "203.0.113.7:51234".parse().unwrap();
        let dst: std::net::SocketAddr = "10.0.0.2:9190".parse().unwrap();
        let t0 = Instant::now();
        // Echo: the header and the request in one read, then in pieces.
        let echo = Service::Echo { max_request: 100 };
        let mut whole = proxy::v2_header(src, dst);
        whole.extend_from_slice(b"hi\0");
        for cut in [whole.len(), 5, 20] {
            let mut conn = Connection::new(&echo, Limits::default(), t0).expect_proxy_header(true);
            assert_eq!(conn.poll(), Action::Read);
            conn.handle(Input::Received(&whole[..cut]), t0);
            if cut < whole.len() {
                assert_eq!(conn.poll(), Action::Read);
                conn.handle(Input::Received(&whole[cut..]), t0);
            }
            let header = conn.take_header().expect("the header");
            assert_eq!(header.addresses, Some((src, dst)));
            assert_eq!(conn.take_header(), None, "given once");
            assert_eq!(
                conn.poll(),
                Action::Send {
                    bytes: b"2 : hi\0",
                    more: true
                },
                "cut at {cut}"
            );
        }
        // Hello: the greeting only once the header is read.
        let hello = Service::hello("Hi");
        let mut conn = Connection::new(&hello, Limits::default(), t0).expect_proxy_header(true);
        assert_eq!(conn.poll(), Action::Read);
        conn.handle(Input::Received(&proxy::v1_line(src, dst)), t0);
        assert!(matches!(conn.poll(), Action::Send { bytes: b"Hi\0", .. }));
    }

    #[test]
    fn a_header_from_a_peer_not_trusted_is_refused_and_names_nobody() {
        let echo = Service::Echo { max_request: 64 };
        let t0 = Instant::now();
        let src: std::net::SocketAddr = "203.0.113.7:51234".parse().unwrap();
        let dst: std::net::SocketAddr = "10.0.0.2:9190".parse().unwrap();
        let mut conn = Connection::new(&echo, Limits::default(), t0).expect_proxy_header(false);
        conn.handle(
            Input::Received(&[proxy::v1_line(src, dst), b"hello\0".to_vec()].concat()),
            t0,
        );
        assert_eq!(conn.take_header(), None, "the spoofed address is not passed on");
        assert_eq!(conn.poll(), Action::Close);
        assert!(matches!(
            conn.finish(),
            Outcome::Failed {
                step: Step::Read,
                cause: Cause::ProxyHeader(proxy::Invalid::Untrusted)
            }
        ));
    }

    #[test]
    fn a_connection_without_a_valid_proxy_header_is_closed_with_a_reason() {
        let t0 = Instant::now();
        let hello = Service::hello("Hi");
        for (bytes, invalid) in [
            (&b"hello\0"[..], proxy::Invalid::NotProxy),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", proxy::Invalid::BadLine),
            (b"", proxy::Invalid::Truncated),
        ] {
            let mut conn = Connection::new(&hello, Limits::default(), t0).expect_proxy_header(true);
            conn.handle(Input::Received(bytes), t0);
            assert_eq!(conn.poll(), Action::Close, "{bytes:?}");
            assert!(matches!(
                conn.finish(),
                Outcome::Failed { step: Step::Read, cause: Cause::ProxyHeader(i) } if i == invalid
            ));
        }
    }

    #[test]
    fn next_if_done_says_what_poll_will_ask_once_the_reply_is_out() {
        let t0 = Instant::now();
        // hello: the check (then half-close and close, or discard, as it finds); echo ended
        // at a terminator: half-close, then the discard; at end of stream: close, the FIN
        // going with it.
        let hello = Service::hello("Hi");
        let echo = Service::Echo { max_request: 100 };
        for (service, input, want) in [
            (&hello, None, vec![Action::CheckUnread]),
            (&echo, Some(&b"hi\0"[..]), vec![Action::HalfClose, Action::Read]),
            (&echo, Some(&b""[..]), vec![Action::Close]),
        ] {
            let mut conn = Connection::new(service, Limits::default(), t0);
            if let Some(data) = input {
                assert_eq!(conn.next_if_done(), None, "reading: nothing to say yet");
                if data.is_empty() {
                    conn.handle(Input::Received(b"hi"), t0);
                }
                conn.handle(Input::Received(data), t0);
            }
            let Action::Send { bytes, .. } = conn.poll() else {
                panic!("sending")
            };
            let n = bytes.len();
            assert_eq!(conn.next_if_done(), Some(want[0].clone()));
            conn.handle(Input::Sent(n), t0);
            assert_eq!(conn.poll(), want[0]);
            if want[0] == Action::HalfClose {
                assert_eq!(conn.next_if_done(), Some(want[1].clone()));
                conn.handle(Input::HalfClosed, t0);
                assert_eq!(conn.poll(), want[1]);
            }
            assert_eq!(conn.next_if_done(), None);
        }
    }

    #[test]
    fn hello_half_closes_after_the_check_and_discards_what_it_found() {
        let t0 = Instant::now();
        let hello = Service::hello("Hi");
        let limits = Limits::default();
        let whole = |conn: &mut Connection<'_>| {
            let Action::Send { bytes, .. } = conn.poll() else {
                panic!("sending")
            };
            let n = bytes.len();
            conn.handle(Input::Sent(n), t0);
        };
        // Nothing unread: half-close all the same, then close. Input arriving between the
        // check and a close() would make the close a reset that drops the greeting still
        // held by MSG_MORE; the half-close takes it out first.
        let mut conn = Connection::new(&hello, limits, t0);
        whole(&mut conn);
        assert_eq!(conn.poll(), Action::CheckUnread, "no half-close before the check");
        conn.handle(Input::Unread(Unread::Nothing), t0);
        assert_eq!(
            conn.poll(),
            Action::HalfClose,
            "the greeting goes out before the close"
        );
        assert_eq!(conn.next_if_done(), Some(Action::Close));
        conn.handle(Input::HalfClosed, t0);
        assert_eq!(conn.poll(), Action::Close);
        assert!(matches!(conn.finish(), Outcome::Served));
        // The client had half-closed: it can send nothing more, the FIN goes with the close.
        let mut conn = Connection::new(&hello, limits, t0);
        whole(&mut conn);
        conn.handle(Input::Unread(Unread::Eof), t0);
        assert_eq!(conn.poll(), Action::Close);
        // Input found: half-close, then discard.
        let mut conn = Connection::new(&hello, limits, t0);
        whole(&mut conn);
        conn.handle(Input::Unread(Unread::Data(5)), t0);
        assert_eq!(
            conn.poll(),
            Action::HalfClose,
            "the client sent something: half-close"
        );
        conn.handle(Input::HalfClosed, t0);
        assert_eq!(conn.poll(), Action::Read, "then discard");
        conn.handle(Input::Received(&vec![0; limits.discard_bytes - 6]), t0);
        assert_eq!(
            conn.poll(),
            Action::Read,
            "the check's bytes count toward the discard"
        );
        conn.handle(Input::Received(b"xy"), t0);
        assert_eq!(conn.poll(), Action::Abort, "over the discard's bytes: reset");
        // A client that reset before the FIN went: nothing to report.
        let mut conn = Connection::new(&hello, limits, t0);
        whole(&mut conn);
        conn.handle(Input::Failed(io::ErrorKind::ConnectionReset.into()), t0);
        assert_eq!(conn.poll(), Action::Close);
        assert!(matches!(conn.finish(), Outcome::PeerGone));
    }

    #[test]
    fn the_request_deadline_does_not_bound_the_reply() {
        let echo = Service::Echo { max_request: 100 };
        let limits = Limits {
            idle: ms(100),
            request: ms(150),
            ..Limits::default()
        };
        let t0 = Instant::now();
        let mut conn = Connection::new(&echo, limits, t0);
        conn.handle(Input::Received(b"hi\0"), t0 + ms(140));
        assert!(conn.held() >= b"2 : hi\0".len(), "the reply is held now");
        assert_eq!(conn.deadline(), Some(t0 + ms(240)), "sending: idle only");
        conn.handle(Input::Sent(3), t0 + ms(200));
        assert_eq!(conn.deadline(), Some(t0 + ms(300)));
    }
}
