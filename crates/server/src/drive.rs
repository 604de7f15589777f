//! Carries out the connection core's actions with the traced calls of `hello_proto::sys`:
//! the one place where an [`Action`] becomes a system call and its result an [`Input`],
//! and where an exchange's end is carried out and reported. Every model uses these; none
//! of them knows what a hello or echo exchange is.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use hello_proto::conn::{Action, Connection, Input, Outcome, Unread};
use hello_proto::sys::Stream;
use hello_proto::{Cause, Error};

use crate::report;

/// What the socket must become before the next call can go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Readable: input, end of stream or an error.
    Readable,
    /// Writable: room in the send buffer.
    Writable,
}

/// What [`step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// A call was made and its result fed to the core.
    Continue,
    /// The call would block (or, on a blocking socket, its socket timeout ran out).
    Wait(Wait),
    /// The core asks for the last call, close or abort: see [`end`].
    End,
}

/// What the call the core asked for returned, before it is fed back.
#[derive(Debug)]
pub(crate) enum Called {
    /// The call returned; feed this with [`feed`] (a read's bytes are in the buffer).
    Returned(Returned),
    /// The call would block (or its socket timeout ran out): nothing to feed.
    Wait(Wait),
    /// The core asks for the last call, close or abort: see [`end`].
    End,
}

/// A returned call, as [`Input`] without the borrow of the read buffer.
#[derive(Debug)]
pub(crate) enum Returned {
    Sent(usize),
    Received(usize),
    HalfClosed,
    Unread(Unread),
    Failed(io::Error),
}

/// Makes the call `core` asks for on `stream`, reading into `buf`.
pub(crate) fn call(core: &Connection<'_>, stream: &Stream, buf: &mut [u8]) -> Called {
    let returned = match core.poll() {
        Action::Send { bytes, more } => match stream.send(bytes, more) {
            Ok(n) => Returned::Sent(n),
            Err(e) if would_block(&e) => return Called::Wait(Wait::Writable),
            Err(e) => Returned::Failed(e),
        },
        Action::Read => match stream.read(buf) {
            Ok(n) => Returned::Received(n),
            Err(e) if would_block(&e) => return Called::Wait(Wait::Readable),
            Err(e) => Returned::Failed(e),
        },
        Action::HalfClose => match stream.shutdown_write() {
            Ok(()) => Returned::HalfClosed,
            Err(e) => Returned::Failed(e),
        },
        Action::CheckUnread => match stream.check_unread() {
            Ok(0) => Returned::Unread(Unread::Eof),
            Ok(n) => Returned::Unread(Unread::Data(n)),
            Err(e) if would_block(&e) => Returned::Unread(Unread::Nothing),
            Err(e) => Returned::Failed(e),
        },
        Action::Close | Action::Abort => return Called::End,
    };
    Called::Returned(returned)
}

/// Feeds a call's result to the core, as of `now`, when the call returned.
pub(crate) fn feed(core: &mut Connection<'_>, returned: Returned, buf: &[u8], now: Instant) {
    let input = match returned {
        Returned::Sent(n) => Input::Sent(n),
        Returned::Received(n) => Input::Received(&buf[..n.min(buf.len())]),
        Returned::HalfClosed => Input::HalfClosed,
        Returned::Unread(answer) => Input::Unread(answer),
        Returned::Failed(e) => Input::Failed(e),
    };
    core.handle(input, now);
}

/// Makes the call the core asks for and feeds back its result.
pub(crate) fn step(core: &mut Connection<'_>, stream: &Stream, buf: &mut [u8]) -> Next {
    match call(core, stream, buf) {
        Called::Returned(returned) => {
            feed(core, returned, buf, Instant::now());
            Next::Continue
        }
        Called::Wait(wait) => Next::Wait(wait),
        Called::End => Next::End,
    }
}

/// Makes calls until the core must wait for the socket (`Some`) or is over (`None`).
/// Each call either moves the exchange on or ends it, so this ends.
pub(crate) fn advance(core: &mut Connection<'_>, stream: &Stream, buf: &mut [u8]) -> Option<Wait> {
    loop {
        match step(core, stream, buf) {
            Next::Continue => {}
            Next::Wait(wait) => return Some(wait),
            Next::End => return None,
        }
    }
}

/// The event loop's timer for this connection ran out at `now`: the core decides, and a
/// wait that timed out is traced as the call that was waiting.
pub(crate) fn expire(core: &mut Connection<'_>, stream: &Stream, now: Instant) {
    core.on_timeout(now);
    if let Some(Outcome::Failed {
        step,
        cause: Cause::TimedOut(_),
    }) = core.ending()
    {
        stream.trace_deadline(*step);
    }
}

/// Carries out the end the core asked for — `close()`, or an abort with RST — and
/// reports a failed exchange in one line. A connection ended before the core asked is
/// aborted, and counts as unfinished. Returns whether the exchange failed.
pub(crate) fn end(core: Connection<'_>, stream: Stream, peer: SocketAddr) -> bool {
    match core.poll() {
        Action::Close => stream.close(),
        _ => stream.abort(),
    }
    match core.finish() {
        Outcome::Served | Outcome::PeerGone => false,
        Outcome::Failed { step, cause } => {
            report(&Error::new(step, peer, cause));
            true
        }
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}
