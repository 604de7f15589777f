//! The system calls: every socket call the two programs make is made here, next to the
//! line that traces it, and each helper is named after the call it makes (socket2's
//! habit). The server's models and the client do their I/O only through this module, so
//! a call and its trace line exist once (ARCHITECTURE.md, "one traced I/O layer").
//!
//! The rest of the crate is pure: this is the one module of `hello-proto` that touches a
//! socket, a clock or stderr.
//!
//! Linux only, by choice: `send(MSG_MORE)`, `accept4(SOCK_NONBLOCK)`, `epoll`, io_uring
//! and `connect(AF_UNSPEC)` as a reset from another thread are Linux's (docs/contract.md
//! says what each is for); the crate refuses to build elsewhere.

pub mod capture;
mod dgram;
pub mod epoll;
pub mod netns;
pub mod process;
mod select;
mod setup;
pub mod sockdiag;
pub mod step;
mod stream;
pub mod textbook;
mod tracer;
pub mod untraced;
pub mod uring;

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

pub use dgram::{Batch, Dgram};
pub use select::{FD_SETSIZE, FdSets, WakePipe};
pub use setup::{
    DEFAULT_BACKLOG, bind_udp, bind_udp_reuseport, connect_tcp, connect_udp, dup_listener, is_nonblocking,
    listen_tcp, listen_tcp_reuseport, resolve, set_accept_timeout, set_nonblocking, stop_listening,
    unconnected_udp, wait_readable,
};
pub use stream::{Stream, accept, accept_counting, interrupt};
pub use tracer::{Began, Tracer};

use crate::error::Step;
use crate::trace::Event;

/// Traces a failed call: shown with the address for the calls that take one (`bind()`,
/// `connect()`), as their successful lines are.
fn trace_failure(tracer: &Tracer, step: Step, fd: Option<i32>, addr: Option<SocketAddr>, err: &io::Error) {
    trace_failure_since(tracer, tracer.begin(), step, fd, addr, err);
}

/// [`trace_failure`] of a call made at `began` (a call that may have waited).
fn trace_failure_since(
    tracer: &Tracer,
    began: Began,
    step: Step,
    fd: Option<i32>,
    addr: Option<SocketAddr>,
    err: &io::Error,
) {
    if !tracer.on() {
        return;
    }
    match (step, fd, addr) {
        (Step::Bind | Step::Connect, Some(fd), Some(addr)) => {
            tracer.emit_since(began, Event::FailedAt { step, fd, addr, err })
        }
        _ => tracer.emit_since(began, Event::Failed { step, fd, err }),
    }
}

/// `close(2)`, traced (also of a socket given up on, so that the next `socket()` reusing
/// its number is no surprise).
fn close(socket: impl Into<OwnedFd>, tracer: &Tracer) {
    let socket: OwnedFd = socket.into();
    let fd = socket.as_raw_fd();
    // Stamped before the call: its FIN or RST may be on the wire before it returns.
    let began = tracer.begin();
    drop(socket);
    if tracer.on() {
        tracer.emit_since(began, Event::Close { fd });
    }
}

/// A blocking server's waits for its next client. Its `accept()` gives up every so often
/// (`SO_RCVTIMEO`) to look for a stop, and a `poll()` follows: while nobody comes the
/// same two calls repeat for ever. The trace shows the first pair, counts the others, and
/// says how many there were when a client comes.
#[derive(Debug, Default)]
pub struct IdleWaits {
    /// `accept()` calls that found nobody since the last client.
    rounds: u64,
}

impl IdleWaits {
    /// An `accept()` found nobody: whether to trace it (the first of a quiet spell; on a
    /// non-blocking listener, always: each follows a wake-up of its own).
    fn show_empty(&mut self, blocking: bool) -> bool {
        if !blocking {
            return true;
        }
        self.rounds += 1;
        self.rounds == 1
    }

    /// Whether a `poll()` that found nobody is traced: only in the first round.
    fn show_poll(&self) -> bool {
        self.rounds <= 1
    }

    /// A client came, seen by a call made at `began`: the rounds not shown are told in
    /// one line first, stamped as that call.
    fn client_came(&mut self, listener: i32, began: Began, tracer: &Tracer) {
        if self.rounds > 1 && tracer.on() {
            tracer.emit_since(
                began,
                Event::IdleRepeats {
                    listener,
                    times: self.rounds - 1,
                },
            );
        }
        self.rounds = 0;
    }
}
