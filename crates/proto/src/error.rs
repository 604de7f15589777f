//! The one error type of the socket flow: which call failed, on which address, and why.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::addr::HumanDuration;

/// A step of the BSD socket flow, named the way the textbook programs name it in their
/// `error_handling("bind() error")` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Host name resolution (`getaddrinfo(3)`).
    Resolve,
    /// `socket(2)`.
    Socket,
    /// `setsockopt(2)`.
    Setsockopt,
    /// `bind(2)`.
    Bind,
    /// `listen(2)`.
    Listen,
    /// `accept(2)`.
    Accept,
    /// `connect(2)`.
    Connect,
    /// `read(2)`.
    Read,
    /// `write(2)`.
    Write,
    /// `shutdown(2)`.
    Shutdown,
    /// `sendto(2)` (and `send(2)` on a connected datagram socket).
    Sendto,
    /// `recvfrom(2)`.
    Recvfrom,
    /// `sendmmsg(2)`: several datagrams in one call.
    Sendmmsg,
    /// `recvmmsg(2)`: several datagrams in one call.
    Recvmmsg,
    /// `getsockname(2)`.
    Getsockname,
    /// `fcntl(2)`: duplicating a descriptor, or switching it to (non-)blocking mode.
    Fcntl,
    /// `epoll_create1(2)`.
    EpollCreate,
    /// `epoll_ctl(2)`.
    EpollCtl,
    /// `epoll_wait(2)`.
    EpollWait,
    /// `eventfd(2)`: how an event loop is woken from another thread.
    Eventfd,
    /// `pthread_create(3)`: starting a thread.
    Spawn,
    /// `select(2)`.
    Select,
    /// `fork(2)`.
    Fork,
    /// `waitpid(2)`.
    Waitpid,
    /// `io_uring_setup(2)`: the uring model's ring.
    UringSetup,
    /// `io_uring_enter(2)`: submitting to the ring and waiting for completions.
    UringEnter,
}

impl Step {
    /// The name as it appears in messages: `bind()`, `connect()`, `name resolution`.
    pub fn name(self) -> &'static str {
        match self {
            Step::Resolve => "name resolution",
            Step::Socket => "socket()",
            Step::Setsockopt => "setsockopt()",
            Step::Bind => "bind()",
            Step::Listen => "listen()",
            Step::Accept => "accept()",
            Step::Connect => "connect()",
            Step::Read => "read()",
            Step::Write => "write()",
            Step::Shutdown => "shutdown()",
            Step::Sendto => "sendto()",
            Step::Recvfrom => "recvfrom()",
            Step::Sendmmsg => "sendmmsg()",
            Step::Recvmmsg => "recvmmsg()",
            Step::Getsockname => "getsockname()",
            Step::Fcntl => "fcntl()",
            Step::EpollCreate => "epoll_create1()",
            Step::EpollCtl => "epoll_ctl()",
            Step::EpollWait => "epoll_wait()",
            Step::Eventfd => "eventfd()",
            Step::Spawn => "pthread_create()",
            Step::Select => "select()",
            Step::Fork => "fork()",
            Step::Waitpid => "waitpid()",
            Step::UringSetup => "io_uring_setup()",
            Step::UringEnter => "io_uring_enter()",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// The operating system refused the call. Transparent: the message is the OS error's
    /// own, and it is not repeated as a separate source.
    #[error(transparent)]
    Os(#[from] io::Error),
    /// The call did not finish within the allowed time.
    #[error("timed out after {}", HumanDuration(*.0))]
    TimedOut(Duration),
    /// The peer closed the connection before sending anything.
    #[error("connection closed before any data")]
    ClosedEarly,
    /// The peer sent more than the allowed number of bytes.
    #[error("reply longer than {0} bytes")]
    TooLong(usize),
    /// An echo reply ended (cleanly) before the message its length announced.
    #[error("reply cut short: {announced} bytes announced, {received} received")]
    CutShort {
        /// The `<len>` of `"<len> : <msg>"`.
        announced: usize,
        /// The bytes of `<msg>` that came.
        received: usize,
    },
    /// A host name resolved to no address of a usable family.
    #[error("no address found")]
    NoAddress,
    /// The whole request did not arrive within the request timeout, however steadily it
    /// trickled in.
    #[error("request not complete within {}", HumanDuration(*.0))]
    RequestTimedOut(Duration),
    /// The server's budget for buffered requests (`--max-buffered`) was spent: the client
    /// was told the server is busy.
    #[error("server busy: the memory for buffered requests is in use (--max-buffered)")]
    Busy,
    /// The connection was to start with a PROXY protocol header and did not.
    #[error("{0}")]
    ProxyHeader(crate::proxy::Invalid),
    /// The server stopped and the exchange was still unfinished when the grace ran out:
    /// the connection was reset.
    #[error("unfinished when the server stopped (connection reset)")]
    Unfinished,
}

impl Cause {
    /// The cause of a failed call that was bounded by `limit` (a socket timeout, a connect
    /// timeout): giving up (EAGAIN, ETIMEDOUT) reads `timed out after LIMIT`.
    pub fn within(err: io::Error, limit: Duration) -> Cause {
        if matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
            Cause::TimedOut(limit)
        } else {
            Cause::Os(err)
        }
    }
}

/// A failed socket step: `bind() error: 0.0.0.0:9190: Address already in use (os error 98)`.
///
/// The message already ends with the cause, so the cause is not also exposed as the
/// error's `source()`: printing the chain (`{:#}` in anyhow) stays one line with the
/// reason once.
#[derive(Debug, thiserror::Error)]
#[error("{step} error: {target}: {cause}")]
pub struct Error {
    /// The call that failed.
    pub step: Step,
    /// The address (or `host:port` as typed, or the descriptor) the call was about.
    pub target: String,
    /// What went wrong.
    pub cause: Cause,
}

impl Error {
    /// Builds an error for `step` on `target`.
    pub fn new(step: Step, target: impl fmt::Display, cause: impl Into<Cause>) -> Self {
        Error {
            step,
            target: target.to_string(),
            cause: cause.into(),
        }
    }
}

/// Result with the step-tagged [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_step_address_and_os_reason() {
        let e = Error::new(
            Step::Bind,
            "0.0.0.0:9190",
            io::Error::from_raw_os_error(libc::EADDRINUSE),
        );
        assert_eq!(
            e.to_string(),
            "bind() error: 0.0.0.0:9190: Address already in use (os error 98)"
        );
    }

    #[test]
    fn the_chain_of_causes_repeats_nothing() {
        use std::error::Error as _;
        let e = Error::new(
            Step::Bind,
            "0.0.0.0:1",
            io::Error::from_raw_os_error(libc::EADDRINUSE),
        );
        assert!(e.source().is_none(), "the cause is already in the message");
    }

    #[test]
    fn timeout_message_uses_human_duration() {
        let e = Error::new(
            Step::Read,
            "127.0.0.1:9190",
            Cause::TimedOut(Duration::from_secs(5)),
        );
        assert_eq!(e.to_string(), "read() error: 127.0.0.1:9190: timed out after 5s");
        let e = Error::new(
            Step::Connect,
            "[::1]:1",
            Cause::TimedOut(Duration::from_millis(500)),
        );
        assert_eq!(e.to_string(), "connect() error: [::1]:1: timed out after 500ms");
    }
}
