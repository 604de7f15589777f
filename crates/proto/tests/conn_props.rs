//! Property tests of the connection core (`hello_proto::conn`), held to the contract of
//! docs/contract.md#how-a-connection-ends: a simulated client and a simulated clock drive one
//! [`Connection`] through every way an exchange can go — partial and blocked sends, requests
//! cut anyhow and arriving late, idle clients, stops with any grace, early wake-ups, failed
//! calls — and every step is checked against a small model of the contract written here.
//!
//! The properties, numbered as in the failure messages:
//! 1. every exchange ends (the core asks for a close or an abort), after at most
//!    `input + reply + 64` answered calls (early wake-ups are counted apart);
//! 2. every send offers exactly the rest of the reference reply (the greeting, or
//!    `reference::stream_outcome` of the whole input when a reply is due at all), with
//!    `MSG_MORE`, and never nothing;
//! 3. a plain close ends only an exchange whose reply was never started or went out whole:
//!    a truncated reply never ends in a clean FIN; `Served` means the whole reply and a
//!    half-close after its last byte;
//! 4. `buffered()` never exceeds `max_request + 1`;
//! 5. no close while the last word on the read side was "data arrived", unless a later one
//!    said otherwise (end of stream, nothing waiting, a failure, a deadline reached while
//!    waiting to read, or a read that came after the stop's grace);
//! 6. `on_timeout` before the deadline, and an input that does not answer the call asked
//!    for, change nothing; `deadline()` is `None` exactly when the next call cannot block;
//! 7. once the stop's grace is over, the next `on_timeout` — or, as `handle` documents, the
//!    next input — ends the exchange, with an abort and `Unfinished` if the request or the
//!    reply was unfinished;
//! 8. the deadline is the last progress plus the idle timeout while the request is read or
//!    the reply sent (the discard's start plus its time while discarding), and no later than
//!    the accept plus the request timeout while the request is read, or the grace's end if
//!    earlier; an idle timeout closes a read and aborts a send, `TimedOut(idle)`, and the
//!    request timeout closes a read, `RequestTimedOut(request)`.
//!
//! Besides, each step follows the contract's flow (hello: send, check, half-close, discard;
//! echo: read, send, half-close, then discard unless the request ended at end of stream), and
//! `finish()` gives the outcome the model expects. The examples at the end walk through the
//! usual flows action by action.

#![allow(clippy::unwrap_used, clippy::expect_used)]

// Shared with `wire_props.rs` and the fuzz targets; only the echo reply and the view of a
// request part way through are used here.
#[allow(dead_code)]
mod reference;
mod strategies;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

use hello_proto::conn::{Action, Connection, DISCARD_BYTES, Input, Limits, Outcome, Unread, peer_gone};
use hello_proto::wire::{self, DEFAULT_MAX_REQUEST, Service};
use hello_proto::{Cause, Step};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{TestCaseError, TestRunner};
use reference::Prefixes;
use strategies::{any_limit, wire_input};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------------------
// Scenarios: what the client sends and when, and every choice the simulated socket makes.
// ---------------------------------------------------------------------------------------

/// Bytes shown as a byte string, so that a shrunk case reads like the wire.
#[derive(Clone, PartialEq, Eq)]
struct Bytes(Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

/// The service, in a form that prints readably.
#[derive(Debug, Clone)]
enum Svc {
    Hello(Bytes),
    Echo(usize),
}

impl Svc {
    fn build(&self) -> Service {
        match self {
            Svc::Hello(greeting) => Service::Hello {
                greeting: greeting.0.clone(),
            },
            Svc::Echo(max_request) => Service::Echo {
                max_request: *max_request,
            },
        }
    }
}

/// One piece of the client's input: it can be read (as one `read()`) from `at_ms` on.
#[derive(Debug, Clone)]
struct Piece {
    at_ms: u64,
    bytes: Bytes,
}

/// A stop announced before the `at_step`th call, with this grace.
#[derive(Debug, Clone, Copy)]
struct Stop {
    at_step: usize,
    grace_ms: u64,
    /// Announce a second, later stop at once: it must not extend the grace.
    again: bool,
}

#[derive(Debug, Clone)]
struct Scenario {
    service: Svc,
    limits: Limits,
    /// The client's input, in the pieces `read()` returns them, with when each arrives.
    pieces: Vec<Piece>,
    /// When the client half-closes (after its last piece); `None`: it stays open.
    eof_ms: Option<u64>,
    stop: Option<Stop>,
    /// Every other choice of the simulated socket and driver, in order; 0, and what comes
    /// once they run out, is the plainest choice (no failure, a whole send, no wait).
    dice: Vec<u16>,
    /// Whether calls may fail, time may pass between calls, and waits may outlast the
    /// deadline; without, the client keeps up and must be served.
    faults: bool,
}

/// The greeting's wire bytes: a short text and its NUL, the default, or arbitrary bytes
/// up to 300 (several partial sends). Never empty: see
/// `an_empty_greeting_is_never_sent_and_never_served` below.
fn any_greeting() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::vec(b' '..=b'~', 0..20).prop_map(|mut text| {
            text.push(0);
            text
        }),
        1 => Just(wire::greeting(wire::DEFAULT_GREETING)),
        2 => prop::collection::vec(any::<u8>(), 0..300),
    ]
}

/// What a hello client sends: usually nothing, sometimes some bytes.
fn hello_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(Vec::new()),
        1 => prop::collection::vec(any::<u8>(), 1..80),
        1 => wire_input(),
    ]
}

fn service_and_input() -> impl Strategy<Value = (Svc, Vec<u8>)> {
    prop_oneof![
        1 => (any_greeting(), hello_input()).prop_map(|(g, input)| (Svc::Hello(Bytes(g)), input)),
        2 => (any_limit(), wire_input()).prop_map(|(limit, input)| (Svc::Echo(limit), input)),
    ]
}

/// The idle and request timeouts and the discard bounds: small, so that every deadline is
/// reachable (the request timeout sometimes shorter than the idle one, usually longer).
fn any_limits() -> impl Strategy<Value = Limits> {
    (
        50u64..=1000,
        prop_oneof![1 => 50u64..=1000, 3 => 1000u64..=5000],
        1u64..=1000,
        prop_oneof![4 => 1usize..=200, 1 => Just(DISCARD_BYTES)],
    )
        .prop_map(|(idle, request, discard, discard_bytes)| Limits {
            idle: ms(idle),
            request: ms(request),
            discard_time: ms(discard),
            discard_bytes,
        })
}

/// The time before a piece arrives (or the end of stream): mostly at once, sometimes a
/// little later, sometimes later than any idle timeout. Calm clients are never slower than
/// the shortest idle timeout.
fn any_gap(calm: bool) -> BoxedStrategy<u64> {
    if calm {
        prop_oneof![3 => Just(0u64), 2 => 1u64..50].boxed()
    } else {
        prop_oneof![6 => Just(0u64), 3 => 1u64..50, 2 => 1u64..2500].boxed()
    }
}

fn stop_sometimes() -> BoxedStrategy<Option<Stop>> {
    prop_oneof![
        2 => Just(None),
        1 => any_stop().prop_map(Some),
    ]
    .boxed()
}

fn any_stop() -> impl Strategy<Value = Stop> {
    (
        0usize..40,
        prop_oneof![1 => Just(0u64), 4 => 1u64..1500],
        prop::bool::weighted(0.2),
    )
        .prop_map(|(at_step, grace_ms, again)| Stop {
            at_step,
            grace_ms,
            again,
        })
}

/// Cuts `input` into read pieces (none empty), byte by byte or at the given points, and
/// times their arrival.
fn timed_pieces(input: &[u8], cuts: &[Index], bytewise: bool, gaps: &[u64]) -> Vec<Piece> {
    let mut ends: Vec<usize> = if bytewise {
        (1..input.len()).collect()
    } else {
        cuts.iter().map(|cut| cut.index(input.len() + 1)).collect()
    };
    ends.push(input.len());
    ends.sort_unstable();
    ends.dedup();
    ends.retain(|&end| end > 0);
    let mut at_ms = 0;
    let mut start = 0;
    ends.iter()
        .enumerate()
        .map(|(i, &end)| {
            at_ms += gaps.get(i).copied().unwrap_or(0);
            let piece = Piece {
                at_ms,
                bytes: Bytes(input[start..end].to_vec()),
            };
            start = end;
            piece
        })
        .collect()
}

/// Whether an echo request of this whole input gets its reply without the end of stream.
fn answered_without_eof(input: &[u8], limit: usize) -> bool {
    let prefixes = Prefixes::new(input);
    prefixes.terminated_within(input.len()) || prefixes.shortest_message(input.len()) > limit
}

fn scenario(faults: bool, stop: BoxedStrategy<Option<Stop>>) -> impl Strategy<Value = Scenario> {
    (
        service_and_input(),
        any_limits(),
        prop::collection::vec(any::<Index>(), 0..12),
        prop::bool::weighted(0.1),
        prop::collection::vec(any_gap(!faults), 0..64),
        prop_oneof![3 => any_gap(!faults).prop_map(Some), 1 => Just(None)],
        stop,
        prop::collection::vec(any::<u16>(), 0..400),
    )
        .prop_map(
            move |((service, input), limits, cuts, bytewise, gaps, eof_gap, stop, dice)| {
                let pieces = timed_pieces(&input, &cuts, bytewise, &gaps);
                let last = pieces.last().map_or(0, |piece| piece.at_ms);
                let mut eof_ms = eof_gap.map(|gap| last + gap);
                // A calm echo client always ends its request, one way or the other, and
                // within the request timeout.
                let mut limits = limits;
                if let Svc::Echo(limit) = service {
                    if !faults && !answered_without_eof(&input, limit) {
                        eof_ms = Some(eof_ms.unwrap_or(last));
                    }
                }
                if !faults {
                    let done = eof_ms.unwrap_or(last).max(last);
                    limits.request = limits.request.max(ms(done + 1));
                }
                Scenario {
                    service,
                    limits,
                    pieces,
                    eof_ms,
                    stop,
                    dice,
                    faults,
                }
            },
        )
}

// ---------------------------------------------------------------------------------------
// The simulation.
// ---------------------------------------------------------------------------------------

/// How long a send that would block waits for room (unless the deadline comes first).
const WAITS: [u64; 7] = [0, 1, 10, 100, 400, 2000, 5000];
/// How late the driver wakes up after a deadline.
const LATE: [u64; 4] = [0, 0, 1, 25];
/// Time spent between two calls (only with faults).
const JITTER: [u64; 8] = [0, 0, 0, 0, 0, 1, 10, 100];

/// [`Action`], owned, so that it can be compared across calls.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Act {
    Send { bytes: Vec<u8>, more: bool },
    Read,
    HalfClose,
    CheckUnread,
    Close,
    Abort,
}

impl Act {
    fn of(conn: &Connection<'_>) -> Act {
        match conn.poll() {
            Action::Send { bytes, more } => Act::Send {
                bytes: bytes.to_vec(),
                more,
            },
            Action::Read => Act::Read,
            Action::HalfClose => Act::HalfClose,
            Action::CheckUnread => Act::CheckUnread,
            Action::Close => Act::Close,
            Action::Abort => Act::Abort,
        }
    }

    fn ends(&self) -> bool {
        matches!(self, Act::Close | Act::Abort)
    }

    fn can_block(&self) -> bool {
        matches!(self, Act::Send { .. } | Act::Read)
    }

    fn short(&self) -> String {
        match self {
            Act::Send { bytes, more } => format!("Send({} bytes, more: {more})", bytes.len()),
            other => format!("{other:?}"),
        }
    }
}

/// How the contract says an exchange ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Served,
    PeerGone,
    Os(Step, i32),
    TimedOut(Step, Duration),
    RequestTimedOut(Duration),
    Unfinished(Step),
}

impl Expect {
    fn matches(self, outcome: &Outcome) -> bool {
        match (self, outcome) {
            (Expect::Served, Outcome::Served) | (Expect::PeerGone, Outcome::PeerGone) => true,
            (
                Expect::Os(s, code),
                Outcome::Failed {
                    step,
                    cause: Cause::Os(e),
                },
            ) => *step == s && e.raw_os_error() == Some(code),
            (
                Expect::TimedOut(s, limit),
                Outcome::Failed {
                    step,
                    cause: Cause::TimedOut(t),
                },
            ) => *step == s && *t == limit,
            (
                Expect::RequestTimedOut(limit),
                Outcome::Failed {
                    step: Step::Read,
                    cause: Cause::RequestTimedOut(t),
                },
            ) => *t == limit,
            (
                Expect::Unfinished(s),
                Outcome::Failed {
                    step,
                    cause: Cause::Unfinished,
                },
            ) => *step == s,
            _ => false,
        }
    }
}

/// Where the exchange stands, by the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the echo request.
    Request,
    /// Sending the reply.
    Reply,
    /// The reply is out and the client may still send: half-close, then discard.
    HalfClose,
    /// Hello: the one check for unread input.
    Check,
    /// Discarding input after the reply.
    Discard,
    /// Over: close (or abort) now, and end so.
    Over { abort: bool, expect: Expect },
}

/// What the simulated socket has for a `read()`.
enum Got {
    Data(usize, usize),
    Eof,
    /// Nothing yet: something arrives then, or (`None`) never.
    Block(Option<Instant>),
}

/// The model's state and the simulated client, socket and clock.
struct Sim<'a> {
    sc: &'a Scenario,
    t0: Instant,
    now: Instant,
    rolls: usize,
    // The client.
    input: Vec<u8>,
    /// The end of each piece in `input`, and when it arrives.
    arrivals: Vec<(usize, Instant)>,
    eof_at: Option<Instant>,
    /// How much of `input` the server has read.
    pos: usize,
    // The reference.
    echo_limit: Option<usize>,
    /// The whole reply the contract requires, if any is due at all.
    reply: Option<Vec<u8>>,
    // The model.
    phase: Phase,
    sent: Vec<u8>,
    /// A send was asked for (the reply is started).
    send_asked: bool,
    /// A half-close succeeded after the last send.
    half_closed: bool,
    /// The half-close asked for is followed by the close, not a discard.
    then_close: bool,
    request_at_eof: bool,
    last_progress: Instant,
    discard_start: Instant,
    discarded: usize,
    grace_end: Option<Instant>,
    /// The last word on the read side was that data arrived (property 5).
    unread_known: bool,
    /// The exchange ended because a deadline passed.
    by_deadline: bool,
    handled: usize,
    spurious: usize,
    log: Vec<String>,
}

macro_rules! ensure {
    ($sim:expr, $cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($sim.fail(format!($($msg)+)));
        }
    };
}

/// What one simulated exchange came to.
#[derive(Debug)]
struct Summary {
    ending: String,
    spurious: usize,
}

/// Runs one scenario to its end, checking every step.
fn run(sc: &Scenario) -> Result<Summary, TestCaseError> {
    let service = sc.service.build();
    let t0 = Instant::now();
    let mut conn = Connection::new(&service, sc.limits, t0);
    let mut sim = Sim::new(sc, t0);
    sim.drive(&mut conn)?;
    let act = Act::of(&conn);
    sim.after_the_end(&mut conn, &act)?;
    let outcome = conn.finish();
    sim.check_end(&act, &outcome)?;
    let how = match &outcome {
        Outcome::Served => "Served".to_string(),
        Outcome::PeerGone => "PeerGone".to_string(),
        Outcome::Failed { step, cause } => {
            let cause = match cause {
                Cause::Os(_) => "Os",
                Cause::TimedOut(_) => "TimedOut",
                Cause::Unfinished => "Unfinished",
                Cause::RequestTimedOut(_) => "RequestTimedOut",
                _ => "other",
            };
            format!("Failed {step:?} {cause}")
        }
    };
    let by = if sim.by_deadline { " after a deadline" } else { "" };
    Ok(Summary {
        ending: format!("{act:?} {how}{by}"),
        spurious: sim.spurious,
    })
}

impl<'a> Sim<'a> {
    /// When the idle timeout ends, counted from the last progress.
    fn idle_due(&self) -> Instant {
        self.last_progress + self.sc.limits.idle
    }

    /// When the whole request must have arrived, counted from the accept.
    fn request_due(&self) -> Instant {
        self.t0 + self.sc.limits.request
    }

    fn new(sc: &'a Scenario, t0: Instant) -> Self {
        let input: Vec<u8> = sc.pieces.iter().flat_map(|piece| piece.bytes.0.clone()).collect();
        let mut end = 0;
        let arrivals = sc
            .pieces
            .iter()
            .map(|piece| {
                end += piece.bytes.0.len();
                (end, t0 + ms(piece.at_ms))
            })
            .collect();
        let (echo_limit, reply, phase) = match &sc.service {
            // An empty greeting has nothing to send: straight to the check.
            Svc::Hello(greeting) if greeting.0.is_empty() => (None, Some(Vec::new()), Phase::Check),
            Svc::Hello(greeting) => (None, Some(greeting.0.clone()), Phase::Reply),
            Svc::Echo(limit) => {
                let due = sc.eof_ms.is_some() || answered_without_eof(&input, *limit);
                let reply = due.then(|| match reference::stream_outcome(&input, *limit) {
                    reference::Outcome::Reply(bytes) | reference::Outcome::TooLong(bytes) => bytes,
                });
                (Some(*limit), reply, Phase::Request)
            }
        };
        Sim {
            sc,
            t0,
            now: t0,
            rolls: 0,
            input,
            arrivals,
            eof_at: sc.eof_ms.map(|at| t0 + ms(at)),
            pos: 0,
            echo_limit,
            reply,
            phase,
            sent: Vec::new(),
            send_asked: false,
            half_closed: false,
            then_close: false,
            request_at_eof: false,
            last_progress: t0,
            discard_start: t0,
            discarded: 0,
            grace_end: None,
            unread_known: false,
            by_deadline: false,
            handled: 0,
            spurious: 0,
            log: Vec::new(),
        }
    }

    fn roll(&mut self) -> u16 {
        let r = self.sc.dice.get(self.rolls).copied().unwrap_or(0);
        self.rolls += 1;
        r
    }

    fn log(&mut self, what: String) {
        let at = (self.now - self.t0).as_millis();
        self.log.push(format!("{at:>6} ms  {what}"));
    }

    fn fail(&self, what: String) -> TestCaseError {
        let start = self.log.len().saturating_sub(40);
        TestCaseError::fail(format!(
            "{what}\n  phase {:?}, {} of {} reply bytes sent; the last events:\n    {}",
            self.phase,
            self.sent.len(),
            self.reply.as_ref().map_or(0, Vec::len),
            self.log[start..].join("\n    ")
        ))
    }

    fn over(&mut self, abort: bool, expect: Expect) {
        self.phase = Phase::Over { abort, expect };
    }

    fn drive(&mut self, conn: &mut Connection<'_>) -> Result<(), TestCaseError> {
        let mut step = 0;
        loop {
            ensure!(self, step < 20_000, "the exchange never ended");
            if let Some(stop) = self.sc.stop.filter(|stop| stop.at_step == step) {
                self.stop(conn, stop);
            }
            step += 1;
            let act = Act::of(conn);
            self.check_state(conn, &act)?;
            if act.ends() {
                return Ok(());
            }
            let meta = self.roll();
            match meta % 10 {
                1 => {
                    let now = self.now;
                    self.timeout(conn, now, "an early wake-up")?;
                }
                2 => self.mismatched(conn, &act, meta)?,
                _ => {}
            }
            if Act::of(conn) != act {
                continue;
            }
            match act {
                Act::Send { bytes, .. } => self.send(conn, bytes.len())?,
                Act::Read => self.read(conn)?,
                Act::HalfClose => self.half_close(conn)?,
                Act::CheckUnread => self.check_unread(conn)?,
                Act::Close | Act::Abort => unreachable!("handled above"),
            }
            if self.sc.faults {
                self.now += ms(JITTER[usize::from(meta / 10) % JITTER.len()]);
            }
        }
    }

    fn stop(&mut self, conn: &mut Connection<'_>, stop: Stop) {
        let grace_end = self.now + ms(stop.grace_ms);
        conn.on_stop(grace_end);
        if stop.again {
            conn.on_stop(grace_end + ms(1000));
        }
        self.grace_end = Some(self.grace_end.map_or(grace_end, |g| g.min(grace_end)));
        self.log(format!("stop, grace {} ms", stop.grace_ms));
    }

    /// Checks what the core asks for against the model, before it is carried out.
    fn check_state(&self, conn: &Connection<'_>, act: &Act) -> Result<(), TestCaseError> {
        ensure!(self, Act::of(conn) == *act, "poll() changed without any input");
        ensure!(
            self,
            conn.ending().is_some() == act.ends(),
            "ending() is {:?} while asking for {}",
            conn.ending(),
            act.short()
        );
        // Property 4.
        match self.echo_limit {
            Some(limit) => ensure!(
                self,
                conn.buffered() <= limit.saturating_add(1),
                "P4: {} bytes buffered with a limit of {limit}",
                conn.buffered()
            ),
            None => ensure!(self, conn.buffered() == 0, "hello buffers {}", conn.buffered()),
        }
        // Property 6.
        ensure!(
            self,
            conn.deadline().is_some() == act.can_block(),
            "P6: deadline {:?} while asking for {}",
            conn.deadline().map(|d| d - self.t0),
            act.short()
        );
        let expected = match self.phase {
            Phase::Request | Phase::Discard => *act == Act::Read,
            Phase::Reply => matches!(act, Act::Send { .. }),
            Phase::HalfClose => *act == Act::HalfClose,
            Phase::Check => *act == Act::CheckUnread,
            Phase::Over { abort, .. } => *act == if abort { Act::Abort } else { Act::Close },
        };
        ensure!(
            self,
            expected,
            "the contract is at {:?}, the core asks for {}",
            self.phase,
            act.short()
        );
        // Property 8 (and the discard's bound): the deadline is the one the contract sets.
        let with_grace = |t: Instant| Some(self.grace_end.map_or(t, |g| g.min(t)));
        let due = match self.phase {
            Phase::Request => with_grace(self.request_due().min(self.idle_due())),
            Phase::Reply => with_grace(self.idle_due()),
            Phase::Discard => with_grace(self.discard_start + self.sc.limits.discard_time),
            _ => None,
        };
        ensure!(
            self,
            conn.deadline() == due,
            "P8: deadline at {:?}, the contract says {:?}",
            conn.deadline().map(|d| d - self.t0),
            due.map(|d| d - self.t0)
        );
        // Property 2: the reply is the reference's, offered whole, with MSG_MORE.
        if let Act::Send { bytes, more } = act {
            ensure!(
                self,
                *more,
                "a reply is sent with MSG_MORE, its FIN follows at once"
            );
            ensure!(self, !bytes.is_empty(), "a send of nothing can make no progress");
            let Some(reply) = &self.reply else {
                return Err(self.fail(format!(
                    "P2: sends {:?} although no reply is due",
                    Bytes(bytes.clone())
                )));
            };
            ensure!(
                self,
                reply.starts_with(&self.sent) && reply[self.sent.len()..] == bytes[..],
                "P2: sends {:?} after {:?}; the reference reply is {:?}",
                Bytes(bytes.clone()),
                Bytes(self.sent.clone()),
                Bytes(reply.clone())
            );
        }
        Ok(())
    }

    /// Feeds the result of the call asked for, and moves the model on by the contract.
    fn feed(&mut self, conn: &mut Connection<'_>, input: Input<'_>) -> Result<(), TestCaseError> {
        let shown = match &input {
            Input::Received(data) => format!("Received({:?})", Bytes(data.to_vec())),
            other => format!("{other:?}"),
        };
        let act = Act::of(conn);
        if self.grace_over(&act) {
            self.log(format!("{} -> {shown}, after the grace", act.short()));
            conn.handle(input, self.now);
            self.handled += 1;
            let now = self.now;
            return self.expire(conn, &act, now);
        }
        self.log(format!("{} -> {shown}", act.short()));
        match &input {
            Input::Received(data) => self.unread_known = !data.is_empty(),
            Input::Unread(unread) => self.unread_known = matches!(unread, Unread::Data(_)),
            Input::Failed(_) => self.unread_known = false,
            Input::Sent(_) | Input::HalfClosed => {}
            // Not generated here (the budget is the server's): bytes that arrived and were dropped.
            Input::OverBudget => self.unread_known = true,
        }
        let code = |e: &io::Error| e.raw_os_error().unwrap_or(0);
        match (self.phase, &input) {
            (Phase::Request, Input::Received(data)) => {
                self.last_progress = self.now;
                let limit = self.echo_limit.unwrap_or(usize::MAX);
                let prefixes = Prefixes::new(&self.input);
                if data.is_empty() {
                    self.request_at_eof = true;
                    self.phase = Phase::Reply;
                } else if prefixes.terminated_within(self.pos) || prefixes.shortest_message(self.pos) > limit
                {
                    self.phase = Phase::Reply;
                }
            }
            (Phase::Request, Input::Failed(e)) => self.over(false, Expect::Os(Step::Read, code(e))),
            (Phase::Reply, Input::Sent(n)) => {
                let reply = self.reply.as_ref().expect("checked before the send");
                let start = self.sent.len();
                self.sent.extend_from_slice(&reply[start..start + n]);
                self.half_closed = false;
                self.last_progress = self.now;
                // The whole reply is out. Hello: the check comes first; an echo request
                // that ended at end of stream: close, the FIN going with it; one that
                // ended at a terminator: half-close, then discard.
                if self.sent.len() == reply.len() {
                    if self.echo_limit.is_none() {
                        self.phase = Phase::Check;
                    } else if self.request_at_eof {
                        self.over(false, Expect::Served);
                    } else {
                        self.phase = Phase::HalfClose;
                    }
                }
            }
            // A client that left without its reply is not worth a line; another failure is.
            (Phase::Reply, Input::Failed(e)) if peer_gone(e) => self.over(true, Expect::PeerGone),
            (Phase::Reply, Input::Failed(e)) => self.over(true, Expect::Os(Step::Write, code(e))),
            (Phase::HalfClose, Input::HalfClosed) => {
                self.half_closed = true;
                if self.then_close {
                    self.over(false, Expect::Served);
                } else {
                    self.discard_start = self.now;
                    self.discard(0);
                }
            }
            // Only ENOTCONN is injected here: the peer is gone.
            (Phase::HalfClose, Input::Failed(_)) => self.over(false, Expect::PeerGone),
            // A client that reset before the FIN went: nothing to report.
            (Phase::Check, Input::Failed(e)) if peer_gone(e) => self.over(false, Expect::PeerGone),
            // A client that half-closed can send nothing more: close.
            (Phase::Check, Input::Unread(Unread::Eof)) => self.over(false, Expect::Served),
            // Nothing known unread: half-close all the same (the reply's tail goes before
            // anything arriving now could turn the close into a reset), then close.
            (Phase::Check, Input::Unread(Unread::Nothing) | Input::Failed(_)) => {
                self.then_close = true;
                self.phase = Phase::HalfClose;
            }
            // Input came: half-close, then discard what is left of the discard's bytes.
            (Phase::Check, Input::Unread(Unread::Data(n))) => {
                self.discarded += n;
                self.phase = Phase::HalfClose;
            }
            (Phase::Discard, Input::Received(data)) if !data.is_empty() => self.discard(data.len()),
            (Phase::Discard, Input::Received(_) | Input::Failed(_)) => self.over(false, Expect::Served),
            (phase, input) => {
                return Err(self.fail(format!("harness: {input:?} fed in phase {phase:?}")));
            }
        }
        conn.handle(input, self.now);
        self.handled += 1;
        Ok(())
    }

    fn discard(&mut self, n: usize) {
        self.discarded += n;
        if self.discarded >= self.sc.limits.discard_bytes {
            self.over(true, Expect::Served);
        } else {
            self.phase = Phase::Discard;
        }
    }

    /// `on_timeout(now)`: before the deadline it must change nothing (property 6); at or
    /// after it, the exchange ends the way the contract says (properties 7 and 8).
    fn timeout(&mut self, conn: &mut Connection<'_>, now: Instant, why: &str) -> Result<(), TestCaseError> {
        let act = Act::of(conn);
        let deadline = conn.deadline();
        let buffered = conn.buffered();
        let due = deadline.is_some_and(|d| now >= d);
        self.log(format!("on_timeout ({why}{})", if due { ", due" } else { "" }));
        conn.on_timeout(now);
        if !due {
            self.spurious += 1;
            ensure!(
                self,
                Act::of(conn) == act && conn.deadline() == deadline && conn.buffered() == buffered,
                "P6: on_timeout before the deadline changed {} to {}",
                act.short(),
                Act::of(conn).short()
            );
            return Ok(());
        }
        self.expire(conn, &act, now)
    }

    /// The deadline passed at `now` while the core asked for `act` (or an input came after
    /// the stop's grace, which ends the exchange the same way): it must be over, the way
    /// the contract says (properties 7 and 8).
    fn expire(&mut self, conn: &Connection<'_>, act: &Act, now: Instant) -> Result<(), TestCaseError> {
        self.by_deadline = true;
        let stopped = self.grace_end.is_some_and(|g| now >= g);
        if *act == Act::Read {
            // Nothing arrived while waiting to read, or the read came too late to count.
            self.unread_known = false;
        }
        match self.phase {
            Phase::Request if stopped => self.over(true, Expect::Unfinished(Step::Read)),
            // The request timeout, when it comes no later than the idle one.
            Phase::Request if self.request_due() <= self.idle_due() => {
                self.over(false, Expect::RequestTimedOut(self.sc.limits.request))
            }
            Phase::Request => self.over(false, Expect::TimedOut(Step::Read, self.sc.limits.idle)),
            Phase::Reply if stopped => self.over(true, Expect::Unfinished(Step::Write)),
            Phase::Reply => self.over(true, Expect::TimedOut(Step::Write, self.sc.limits.idle)),
            // A discard cut short, by its own bounds or by the stop: the reply is out.
            Phase::Discard => self.over(false, Expect::Served),
            phase => return Err(self.fail(format!("a deadline in phase {phase:?}"))),
        }
        ensure!(
            self,
            Act::of(conn).ends(),
            "P7/P8: the deadline passed (stopped: {stopped}) and the core still asks for {}",
            Act::of(conn).short()
        );
        Ok(())
    }

    /// Whether the stop's grace is over while the core asks for a call that can block: any
    /// input then ends the exchange as `on_timeout` would.
    fn grace_over(&self, act: &Act) -> bool {
        act.can_block() && self.grace_end.is_some_and(|g| self.now >= g)
    }

    /// The driver waits for the socket, until `until` or the deadline, then calls
    /// `on_timeout`.
    fn wait(&mut self, conn: &mut Connection<'_>, until: Option<Instant>) -> Result<(), TestCaseError> {
        let Some(deadline) = conn.deadline() else {
            return Err(self.fail("a blocking call with no deadline".to_string()));
        };
        match until {
            Some(t) if t < deadline => {
                self.now = self.now.max(t);
                let now = self.now;
                self.timeout(conn, now, "woken by the socket")
            }
            _ => {
                let late = ms(LATE[usize::from(self.roll()) % LATE.len()]);
                self.now = self.now.max(deadline) + late;
                let now = self.now;
                self.timeout(conn, now, "the deadline passed")
            }
        }
    }

    fn send(&mut self, conn: &mut Connection<'_>, len: usize) -> Result<(), TestCaseError> {
        self.send_asked = true;
        let r = self.roll();
        let kind = r % 100;
        if self.sc.faults && r != 0 && kind < 2 {
            // The client gone (EPIPE, ECONNRESET), or the system failing (ENOBUFS).
            let code = [libc::EPIPE, libc::ECONNRESET, libc::ENOBUFS][usize::from(r / 100) % 3];
            return self.feed(conn, Input::Failed(io::Error::from_raw_os_error(code)));
        }
        if r != 0 && kind < 27 {
            let until = self.now + ms(WAITS[usize::from(r / 100) % WAITS.len()]);
            if self.sc.faults || conn.deadline().is_some_and(|d| until < d) {
                self.log("Send would block".to_string());
                return self.wait(conn, Some(until));
            }
        }
        let r = usize::from(r);
        let n = if r == 0 || kind < 27 {
            len
        } else if (r / 100) % 2 == 0 {
            1 + (r / 200) % len
        } else {
            1 + (r / 200) % len.min(8)
        };
        self.feed(conn, Input::Sent(n))
    }

    fn peer_read(&self) -> Got {
        match self.arrivals.iter().find(|(end, _)| *end > self.pos) {
            Some(&(end, at)) if at <= self.now => Got::Data(self.pos, end),
            Some(&(_, at)) => Got::Block(Some(at)),
            None => match self.eof_at {
                Some(at) if at <= self.now => Got::Eof,
                at => Got::Block(at),
            },
        }
    }

    fn read(&mut self, conn: &mut Connection<'_>) -> Result<(), TestCaseError> {
        let got = self.peer_read();
        if let Got::Block(until) = got {
            self.log("Read would block".to_string());
            return self.wait(conn, until);
        }
        let r = self.roll();
        if self.sc.faults && r != 0 && r % 100 < 2 {
            return self.feed(
                conn,
                Input::Failed(io::Error::from_raw_os_error(libc::ECONNRESET)),
            );
        }
        let data = match got {
            Got::Data(start, end) => {
                self.pos = end;
                self.input[start..end].to_vec()
            }
            Got::Eof | Got::Block(_) => Vec::new(),
        };
        self.feed(conn, Input::Received(&data))
    }

    fn half_close(&mut self, conn: &mut Connection<'_>) -> Result<(), TestCaseError> {
        let r = self.roll();
        if self.sc.faults && r != 0 && r % 100 < 3 {
            return self.feed(conn, Input::Failed(io::Error::from_raw_os_error(libc::ENOTCONN)));
        }
        self.feed(conn, Input::HalfClosed)
    }

    /// `recv(MSG_DONTWAIT)`: up to 64 bytes that have arrived, else the end of stream if
    /// it has come, else nothing.
    fn check_unread(&mut self, conn: &mut Connection<'_>) -> Result<(), TestCaseError> {
        let r = self.roll();
        if self.sc.faults && r != 0 && r % 100 < 2 {
            return self.feed(
                conn,
                Input::Failed(io::Error::from_raw_os_error(libc::ECONNRESET)),
            );
        }
        let arrived = self
            .arrivals
            .iter()
            .filter(|(_, at)| *at <= self.now)
            .map(|(end, _)| *end)
            .max()
            .unwrap_or(0);
        let pending = arrived.saturating_sub(self.pos);
        let unread = if pending > 0 {
            let n = pending.min(64);
            self.pos += n;
            Unread::Data(n)
        } else if self.pos == self.input.len() && self.eof_at.is_some_and(|at| at <= self.now) {
            Unread::Eof
        } else {
            Unread::Nothing
        };
        self.feed(conn, Input::Unread(unread))
    }

    /// Feeds an input that does not answer the current action: it must be ignored.
    fn mismatched(&mut self, conn: &mut Connection<'_>, act: &Act, meta: u16) -> Result<(), TestCaseError> {
        let pick = (meta / 10) % 3;
        let input = match (act, pick) {
            (Act::Read, 0) | (Act::HalfClose, 0) => Input::Sent(1),
            (Act::Read, 1) | (Act::Send { .. }, 1) | (Act::CheckUnread, 2) => Input::HalfClosed,
            (Act::Read, _) => Input::Unread(Unread::Nothing),
            (Act::Send { .. }, 0) => Input::Received(b"x"),
            (Act::Send { .. }, _) => Input::Unread(Unread::Data(3)),
            (Act::HalfClose, 1) => Input::Received(b""),
            (Act::HalfClose, _) => Input::Unread(Unread::Eof),
            (Act::CheckUnread, 0) => Input::Sent(2),
            (Act::CheckUnread, _) => Input::Received(b"abc"),
            (Act::Close | Act::Abort, _) => return Ok(()),
        };
        let deadline = conn.deadline();
        let buffered = conn.buffered();
        let shown = format!("{input:?}");
        conn.handle(input, self.now);
        if self.grace_over(act) {
            self.log(format!(
                "{} -> {shown} (mismatched), after the grace",
                act.short()
            ));
            let now = self.now;
            return self.expire(conn, act, now);
        }
        ensure!(
            self,
            Act::of(conn) == *act && conn.deadline() == deadline && conn.buffered() == buffered,
            "{shown} while asking for {} was not ignored: now {}",
            act.short(),
            Act::of(conn).short()
        );
        Ok(())
    }

    /// Once the core asks to close or abort, nothing moves it any more.
    fn after_the_end(&mut self, conn: &mut Connection<'_>, act: &Act) -> Result<(), TestCaseError> {
        let now = self.now;
        conn.handle(Input::Sent(1), now);
        conn.handle(Input::Received(b"late"), now);
        conn.handle(Input::Received(b""), now);
        conn.handle(Input::HalfClosed, now);
        conn.handle(Input::Unread(Unread::Data(1)), now);
        conn.handle(Input::Failed(io::Error::from_raw_os_error(libc::ECONNRESET)), now);
        conn.on_stop(now);
        conn.on_timeout(now + Duration::from_secs(3600));
        ensure!(
            self,
            Act::of(conn) == *act && conn.deadline().is_none(),
            "after {act:?}, the core moved on to {}",
            Act::of(conn).short()
        );
        Ok(())
    }

    /// Checks how the exchange ended.
    fn check_end(&self, act: &Act, outcome: &Outcome) -> Result<(), TestCaseError> {
        let reply = self.reply.clone().unwrap_or_default();
        // Property 1.
        let bound = self.input.len() + reply.len() + 64;
        ensure!(
            self,
            self.handled <= bound,
            "P1: {} calls for {} input and {} reply bytes",
            self.handled,
            self.input.len(),
            reply.len()
        );
        let Phase::Over { expect, .. } = self.phase else {
            return Err(self.fail(format!("ended in phase {:?}", self.phase)));
        };
        ensure!(
            self,
            expect.matches(outcome),
            "the exchange ended {act:?} with {outcome:?}, the contract says {expect:?}"
        );
        if matches!(outcome, Outcome::Served) {
            ensure!(
                self,
                self.sent == reply && (self.half_closed || *act == Act::Close),
                "served without the whole reply and its FIN (a half-close's, or the close's)"
            );
        }
        if *act == Act::Close {
            // Property 3: a truncated reply never ends in a clean FIN.
            ensure!(
                self,
                !self.send_asked || self.sent == reply,
                "P3: closed after {} of {} reply bytes",
                self.sent.len(),
                reply.len()
            );
            // Property 5.
            ensure!(
                self,
                !self.unread_known,
                "P5: closed although input was known to be unread"
            );
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The properties.
// ---------------------------------------------------------------------------------------

proptest! {
    // A failing case is printed, shrunk; no regression file is written next to this one.
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Any client, any socket, any timing, an optional stop and rare failures: every step is
    /// the contract's, and every exchange ends (properties 1 to 8, in the module docs).
    #[test]
    fn every_exchange_keeps_the_contract(sc in scenario(true, stop_sometimes())) {
        run(&sc)?;
    }

    /// A stop at any point, with any grace: once time passes the grace, the next
    /// `on_timeout` ends the exchange, with an abort if the request or the reply was
    /// unfinished (property 7).
    #[test]
    fn a_stop_ends_the_exchange_by_its_grace(sc in scenario(true, any_stop().prop_map(Some).boxed())) {
        run(&sc)?;
    }

    /// A client that ends its request, keeps up with the reply and never fails, with no stop
    /// and no call ever late, is served: the whole reply, its FIN, and a close (or, after a
    /// discard past its byte budget, an abort).
    #[test]
    fn a_client_that_keeps_up_is_served(sc in scenario(false, Just(None).boxed())) {
        let summary = run(&sc)?;
        prop_assert!(
            summary.ending == "Close Served"
                || summary.ending == "Close Served after a deadline"
                || summary.ending == "Abort Served",
            "{}", summary.ending
        );
    }
}

/// The generators reach every way an exchange can end (else the properties above would
/// check less than they claim).
#[test]
fn the_generators_reach_every_ending() {
    let mut runner = TestRunner::deterministic();
    let strategy = scenario(true, stop_sometimes());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut spurious = 0;
    for _ in 0..1500 {
        let sc = strategy.new_tree(&mut runner).unwrap().current();
        let summary = run(&sc).unwrap();
        spurious += summary.spurious;
        *seen.entry(summary.ending).or_default() += 1;
    }
    for ending in [
        "Close Served",
        "Close Served after a deadline",
        "Abort Served",
        "Close PeerGone",
        "Abort PeerGone",
        "Close Failed Read Os",
        "Abort Failed Write Os",
        "Close Failed Read TimedOut after a deadline",
        "Close Failed Read RequestTimedOut after a deadline",
        "Abort Failed Write TimedOut after a deadline",
        "Abort Failed Read Unfinished after a deadline",
        "Abort Failed Write Unfinished after a deadline",
    ] {
        assert!(seen.contains_key(ending), "never: {ending}; seen {seen:#?}");
    }
    assert!(spurious > 100, "only {spurious} early wake-ups");
}

// ---------------------------------------------------------------------------------------
// The flows, step by step.
// ---------------------------------------------------------------------------------------

const IDLE: Duration = Duration::from_secs(10);

fn failed(outcome: Outcome) -> (Step, Cause) {
    match outcome {
        Outcome::Failed { step, cause } => (step, cause),
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// Hello: the greeting with `MSG_MORE`, one check for unread input, the half-close (its
/// FIN takes the greeting out in the same segment), close.
#[test]
fn hello_sends_the_greeting_checks_half_closes_and_closes() {
    let service = Service::hello("Hello World!");
    let t0 = Instant::now();
    let mut conn = Connection::new(&service, Limits::with_idle(IDLE), t0);
    assert_eq!(
        conn.poll(),
        Action::Send {
            bytes: b"Hello World!\0",
            more: true
        }
    );
    assert_eq!(conn.deadline(), Some(t0 + IDLE));
    conn.handle(Input::Sent(13), t0 + ms(1));
    assert_eq!(conn.poll(), Action::CheckUnread);
    assert_eq!(conn.deadline(), None);
    conn.handle(Input::Unread(Unread::Nothing), t0 + ms(1));
    assert_eq!(conn.poll(), Action::HalfClose);
    assert_eq!(conn.deadline(), None);
    conn.handle(Input::HalfClosed, t0 + ms(1));
    assert_eq!(conn.poll(), Action::Close);
    assert!(matches!(conn.finish(), Outcome::Served));
}

/// Hello, a slow reader: the rest of the greeting is offered after each partial send, and
/// each byte sent restarts the idle timeout.
#[test]
fn hello_sends_the_rest_after_a_partial_send() {
    let service = Service::hello("Hi");
    let t0 = Instant::now();
    let mut conn = Connection::new(&service, Limits::with_idle(IDLE), t0);
    conn.handle(Input::Sent(1), t0 + ms(5));
    assert_eq!(
        conn.poll(),
        Action::Send {
            bytes: b"i\0",
            more: true
        }
    );
    assert_eq!(conn.deadline(), Some(t0 + ms(5) + IDLE));
    conn.handle(Input::Sent(2), t0 + ms(6));
    assert_eq!(conn.poll(), Action::CheckUnread);
}

/// Hello, a client that sent something: half-close (so that it sees the end of the
/// greeting), then discard until its end of stream, then close.
#[test]
fn hello_discards_what_the_client_sent() {
    let service = Service::hello("Hi");
    let t0 = Instant::now();
    let limits = Limits::with_idle(IDLE);
    let mut conn = Connection::new(&service, limits, t0);
    conn.handle(Input::Sent(3), t0);
    conn.handle(Input::Unread(Unread::Data(5)), t0 + ms(2));
    assert_eq!(conn.poll(), Action::HalfClose);
    assert_eq!(conn.deadline(), None);
    conn.handle(Input::HalfClosed, t0 + ms(2));
    assert_eq!(conn.poll(), Action::Read);
    assert_eq!(conn.deadline(), Some(t0 + ms(2) + limits.discard_time));
    conn.handle(Input::Received(b"more"), t0 + ms(3));
    assert_eq!(conn.poll(), Action::Read);
    conn.handle(Input::Received(b""), t0 + ms(4));
    assert_eq!(conn.poll(), Action::Close);
    assert!(matches!(conn.finish(), Outcome::Served));
}

/// Echo, `hello\0` then end of stream: read, reply, half-close, discard to the end, close.
#[test]
fn echo_replies_then_discards_to_the_end_of_stream() {
    let service = Service::Echo {
        max_request: DEFAULT_MAX_REQUEST,
    };
    let t0 = Instant::now();
    let limits = Limits::with_idle(IDLE);
    let mut conn = Connection::new(&service, limits, t0);
    assert_eq!(conn.poll(), Action::Read);
    assert_eq!(conn.deadline(), Some(t0 + IDLE));
    conn.handle(Input::Received(b"hel"), t0 + ms(1));
    assert_eq!(conn.poll(), Action::Read);
    assert_eq!(conn.buffered(), 3);
    assert_eq!(conn.deadline(), Some(t0 + ms(1) + IDLE));
    conn.handle(Input::Received(b"lo\0"), t0 + ms(2));
    assert_eq!(
        conn.poll(),
        Action::Send {
            bytes: b"5 : hello\0",
            more: true
        }
    );
    assert_eq!(conn.deadline(), Some(t0 + ms(2) + IDLE));
    conn.handle(Input::Sent(10), t0 + ms(3));
    assert_eq!(conn.poll(), Action::HalfClose);
    conn.handle(Input::HalfClosed, t0 + ms(3));
    // The request ended at a NUL: the client may still send; discard for at most 500 ms.
    assert_eq!(conn.poll(), Action::Read);
    assert_eq!(conn.deadline(), Some(t0 + ms(3) + limits.discard_time));
    conn.handle(Input::Received(b""), t0 + ms(4));
    assert_eq!(conn.poll(), Action::Close);
    assert!(matches!(conn.finish(), Outcome::Served));
}

/// Echo, `hi` then end of stream: the request ends at the end of stream, so nothing more can
/// come: the close follows the reply at once, and its FIN goes with it (no half-close).
#[test]
fn echo_request_ended_by_eof_closes_at_once() {
    let service = Service::Echo {
        max_request: DEFAULT_MAX_REQUEST,
    };
    let t0 = Instant::now();
    let mut conn = Connection::new(&service, Limits::with_idle(IDLE), t0);
    conn.handle(Input::Received(b"hi"), t0);
    assert_eq!(conn.poll(), Action::Read);
    conn.handle(Input::Received(b""), t0);
    assert_eq!(
        conn.poll(),
        Action::Send {
            bytes: b"2 : hi\0",
            more: true
        }
    );
    conn.handle(Input::Sent(7), t0);
    assert_eq!(conn.poll(), Action::Close);
    assert!(matches!(conn.finish(), Outcome::Served));
}

/// Echo, CRLF split across reads, and an over-long request.
#[test]
fn echo_crlf_and_too_long() {
    let t0 = Instant::now();
    let service = Service::Echo { max_request: 8 };
    let mut conn = Connection::new(&service, Limits::with_idle(IDLE), t0);
    conn.handle(Input::Received(b"hi\r"), t0);
    assert_eq!(conn.poll(), Action::Read);
    conn.handle(Input::Received(b"\nignored"), t0);
    assert_eq!(
        conn.poll(),
        Action::Send {
            bytes: b"2 : hi\n",
            more: true
        }
    );

    let service = Service::Echo { max_request: 4 };
    let mut conn = Connection::new(&service, Limits::with_idle(IDLE), t0);
    conn.handle(Input::Received(b"hello world\n"), t0);
    assert_eq!(
        conn.poll(),
        Action::Send {
            bytes: b"error: message longer than 4 bytes\0",
            more: true
        }
    );
    assert_eq!(conn.buffered(), 0);
}

/// A silent client: an early wake-up changes nothing; at the idle deadline the connection is
/// closed (nothing was sent, so a plain close cuts nothing short).
#[test]
fn an_idle_reader_is_closed_at_the_idle_deadline() {
    let service = Service::Echo {
        max_request: DEFAULT_MAX_REQUEST,
    };
    let t0 = Instant::now();
    let mut conn = Connection::new(&service, Limits::with_idle(IDLE), t0);
    conn.handle(Input::Received(b"partial"), t0 + ms(100));
    conn.on_timeout(t0 + IDLE);
    assert_eq!(conn.poll(), Action::Read, "the deadline moved with the progress");
    conn.on_timeout(t0 + ms(100) + IDLE);
    assert_eq!(conn.poll(), Action::Close);
    assert_eq!(conn.deadline(), None);
    let (step, cause) = failed(conn.finish());
    assert_eq!(step, Step::Read);
    assert!(matches!(cause, Cause::TimedOut(d) if d == IDLE), "{cause:?}");
}

/// A client that stops reading: the unfinished reply is aborted, never closed.
#[test]
fn a_stalled_reply_is_aborted_at_the_idle_deadline() {
    let service = Service::hello("Hello World!");
    let t0 = Instant::now();
    let mut conn = Connection::new(&service, Limits::with_idle(IDLE), t0);
    conn.handle(Input::Sent(5), t0 + ms(1));
    conn.on_timeout(t0 + ms(1) + IDLE);
    assert_eq!(conn.poll(), Action::Abort);
    let (step, cause) = failed(conn.finish());
    assert_eq!(step, Step::Write);
    assert!(matches!(cause, Cause::TimedOut(d) if d == IDLE), "{cause:?}");
}

/// A stop: the deadline becomes the grace's end, whichever stop announced it, and an
/// unfinished request is aborted then; a discard is cut short with a plain close.
#[test]
fn a_stop_aborts_an_unfinished_request_and_cuts_a_discard_short() {
    let service = Service::Echo {
        max_request: DEFAULT_MAX_REQUEST,
    };
    let t0 = Instant::now();
    let mut conn = Connection::new(&service, Limits::with_idle(IDLE), t0);
    conn.on_stop(t0 + ms(200));
    conn.on_stop(t0 + ms(900));
    assert_eq!(conn.deadline(), Some(t0 + ms(200)));
    conn.on_timeout(t0 + ms(199));
    assert_eq!(conn.poll(), Action::Read);
    conn.on_timeout(t0 + ms(200));
    assert_eq!(conn.poll(), Action::Abort);
    let (step, cause) = failed(conn.finish());
    assert_eq!(step, Step::Read);
    assert!(matches!(cause, Cause::Unfinished), "{cause:?}");

    let mut conn = Connection::new(&service, Limits::with_idle(IDLE), t0);
    conn.handle(Input::Received(b"x\n"), t0);
    conn.handle(Input::Sent(6), t0);
    conn.handle(Input::HalfClosed, t0);
    conn.on_stop(t0 + ms(50));
    assert_eq!(conn.deadline(), Some(t0 + ms(50)));
    conn.handle(Input::Received(b"chatter"), t0 + ms(10));
    conn.on_timeout(t0 + ms(60));
    assert_eq!(conn.poll(), Action::Close);
    assert!(matches!(conn.finish(), Outcome::Served));
}

/// A client that goes on sending past the discard's byte budget is reset, after its reply.
#[test]
fn a_discard_past_its_budget_is_aborted() {
    let service = Service::Echo {
        max_request: DEFAULT_MAX_REQUEST,
    };
    let t0 = Instant::now();
    let limits = Limits {
        discard_bytes: 10,
        ..Limits::with_idle(IDLE)
    };
    let mut conn = Connection::new(&service, limits, t0);
    conn.handle(Input::Received(b"a\0"), t0);
    conn.handle(Input::Sent(6), t0);
    conn.handle(Input::HalfClosed, t0);
    conn.handle(Input::Received(b"123456"), t0);
    assert_eq!(conn.poll(), Action::Read);
    conn.handle(Input::Received(b"7890"), t0);
    assert_eq!(conn.poll(), Action::Abort);
    assert!(matches!(conn.finish(), Outcome::Served));
}

/// Failures: a reset while reading is one report and a close; a failed send aborts (part of
/// the reply may be out); a client gone before the half-close is no report.
#[test]
fn failed_calls_end_the_exchange() {
    let t0 = Instant::now();
    let echo = Service::Echo {
        max_request: DEFAULT_MAX_REQUEST,
    };
    let reset = || io::Error::from_raw_os_error(libc::ECONNRESET);

    let mut conn = Connection::new(&echo, Limits::with_idle(IDLE), t0);
    conn.handle(Input::Failed(reset()), t0);
    assert_eq!(conn.poll(), Action::Close);
    assert!(matches!(failed(conn.finish()), (Step::Read, Cause::Os(_))));

    let mut conn = Connection::new(&echo, Limits::with_idle(IDLE), t0);
    conn.handle(Input::Received(b"x\0"), t0);
    conn.handle(Input::Sent(2), t0);
    conn.handle(Input::Failed(io::Error::from_raw_os_error(libc::EPIPE)), t0);
    assert_eq!(conn.poll(), Action::Abort);
    assert!(
        matches!(conn.finish(), Outcome::PeerGone),
        "the client left: no line"
    );

    let mut conn = Connection::new(&echo, Limits::with_idle(IDLE), t0);
    conn.handle(Input::Received(b"x\0"), t0);
    conn.handle(Input::Failed(io::Error::from_raw_os_error(libc::ENOBUFS)), t0);
    assert_eq!(conn.poll(), Action::Abort);
    assert!(matches!(failed(conn.finish()), (Step::Write, Cause::Os(_))));

    let hello = Service::hello("Hi");
    let mut conn = Connection::new(&hello, Limits::with_idle(IDLE), t0);
    conn.handle(Input::Sent(3), t0);
    conn.handle(Input::Failed(io::Error::from_raw_os_error(libc::ENOTCONN)), t0);
    assert_eq!(conn.poll(), Action::Close);
    assert!(matches!(conn.finish(), Outcome::PeerGone));
}

/// A hello service whose greeting is empty — `Service::Hello { greeting: vec![] }`, which the
/// public field allows although `Service::hello` always appends a NUL — has nothing to send:
/// it goes straight to the check. (Found by `every_exchange_keeps_the_contract` with the
/// greeting `b""`: the core used to ask for a send of nothing, which returns 0, and abort.)
#[test]
fn an_empty_greeting_is_never_sent_and_never_served() {
    let service = Service::Hello { greeting: Vec::new() };
    let t0 = Instant::now();
    let mut conn = Connection::new(&service, Limits::with_idle(IDLE), t0);
    if let Action::Send { bytes, .. } = conn.poll() {
        assert!(!bytes.is_empty(), "asks for a send of nothing");
        // What a driver does with it: `send()` takes nothing and returns 0.
        conn.handle(Input::Sent(0), t0);
    }
    assert_eq!(
        conn.poll(),
        Action::CheckUnread,
        "an empty reply is complete at once"
    );
}
