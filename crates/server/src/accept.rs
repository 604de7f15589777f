//! What to do when `accept(2)` fails: retry at once, back off, or give up.

use std::io;
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::Duration;

use hello_proto::trace::{Event, Tracer};
use hello_proto::{Error, Step};

use crate::report;

/// How long to wait before accepting again when the process or system is out of
/// descriptors or memory: long enough not to spin a core, short enough to recover soon.
pub const BACKOFF: Duration = Duration::from_millis(50);

/// The response to a failed `accept()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptFailure {
    /// Nothing to accept (non-blocking socket): wait for readiness.
    WouldBlock,
    /// The connection died in the queue or a signal interrupted: accept again now.
    Retry,
    /// Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM): wait [`BACKOFF`],
    /// then accept again; descriptors free up as clients finish.
    Backoff,
    /// The listening socket itself is unusable (shut down, closed, not listening).
    Fatal,
}

/// Classifies an `accept()` error. Linux reports a new connection's pending network
/// errors through `accept()` (`accept(2)`, "Error handling"); those are retried.
pub fn classify(err: &io::Error) -> AcceptFailure {
    if err.kind() == io::ErrorKind::WouldBlock {
        return AcceptFailure::WouldBlock;
    }
    match err.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => AcceptFailure::Backoff,
        Some(libc::EBADF | libc::EINVAL | libc::ENOTSOCK | libc::EFAULT | libc::EOPNOTSUPP) => {
            AcceptFailure::Fatal
        }
        _ => AcceptFailure::Retry,
    }
}

/// How every model handles a failed `accept()`: traced, classified, and an exhaustion
/// (EMFILE, ENFILE, ...) reported once per episode (until an accept succeeds again), not
/// once per attempt.
pub struct AcceptFailures<'t> {
    local: SocketAddr,
    listener: RawFd,
    tracer: &'t Tracer,
    starved: bool,
}

impl<'t> AcceptFailures<'t> {
    /// For the listening socket `listener`, bound to `local`.
    pub fn new(local: SocketAddr, listener: RawFd, tracer: &'t Tracer) -> Self {
        AcceptFailures {
            local,
            listener,
            tracer,
            starved: false,
        }
    }

    /// An `accept()` succeeded: the next exhaustion starts a new episode.
    pub fn recovered(&mut self) {
        self.starved = false;
    }

    /// Traces and classifies `err`, and reports an exhaustion that starts an episode.
    /// A fatal failure comes back as the server's error.
    pub fn handle(&mut self, err: io::Error) -> Result<AcceptFailure, Error> {
        let class = classify(&err);
        if self.tracer.on() && class != AcceptFailure::WouldBlock {
            self.tracer.emit(Event::Failed {
                step: Step::Accept,
                fd: Some(self.listener),
                err: &err,
            });
        }
        match class {
            AcceptFailure::Fatal => return Err(Error::new(Step::Accept, self.local, err)),
            AcceptFailure::Backoff if !self.starved => {
                self.starved = true;
                report(&Error::new(Step::Accept, self.local, err));
            }
            _ => {}
        }
        Ok(class)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let c = |e| classify(&io::Error::from_raw_os_error(e));
        assert_eq!(c(libc::ECONNABORTED), AcceptFailure::Retry);
        assert_eq!(c(libc::EINTR), AcceptFailure::Retry);
        assert_eq!(c(libc::EPROTO), AcceptFailure::Retry);
        assert_eq!(c(libc::EMFILE), AcceptFailure::Backoff);
        assert_eq!(c(libc::ENFILE), AcceptFailure::Backoff);
        assert_eq!(c(libc::ENOBUFS), AcceptFailure::Backoff);
        assert_eq!(c(libc::EAGAIN), AcceptFailure::WouldBlock);
        assert_eq!(c(libc::EINVAL), AcceptFailure::Fatal);
        assert_eq!(c(libc::EBADF), AcceptFailure::Fatal);
    }
}
