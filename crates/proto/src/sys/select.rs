//! `select(2)` and its descriptor sets, for the server's select model: the textbook's
//! I/O multiplexing; and the pipe a stop writes to wake the `select()` ([`WakePipe`]). A set is a bitmap of `FD_SETSIZE` (1024) bits, so a descriptor at or
//! above 1024 cannot be put in one: [`FdSets::watch_read`] refuses it instead of writing
//! past the bitmap.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::{Tracer, trace_failure_since};
use crate::error::Step;
use crate::trace::Event;

/// Descriptors a set can hold: `0..FD_SETSIZE`.
pub const FD_SETSIZE: usize = libc::FD_SETSIZE;

/// The read and write sets of one `select()`, and what it answered.
pub struct FdSets {
    read: libc::fd_set,
    write: libc::fd_set,
    /// What was asked for, for the trace and for `nfds`.
    read_fds: Vec<RawFd>,
    write_fds: Vec<RawFd>,
}

impl Default for FdSets {
    fn default() -> Self {
        FdSets::new()
    }
}

fn empty() -> libc::fd_set {
    // SAFETY: an fd_set is a plain bitmap; all zeroes is the empty set (what FD_ZERO makes).
    unsafe { std::mem::zeroed() }
}

fn fits(fd: RawFd) -> bool {
    usize::try_from(fd).is_ok_and(|fd| fd < FD_SETSIZE)
}

impl FdSets {
    /// Empty sets.
    pub fn new() -> FdSets {
        FdSets {
            read: empty(),
            write: empty(),
            read_fds: Vec::new(),
            write_fds: Vec::new(),
        }
    }

    /// Empties both sets (`FD_ZERO`), to be filled again for the next `select()`.
    pub fn clear(&mut self) {
        self.read = empty();
        self.write = empty();
        self.read_fds.clear();
        self.write_fds.clear();
    }

    /// `FD_SET(fd, &readfds)`; false (and nothing done) for a descriptor that does not fit.
    pub fn watch_read(&mut self, fd: RawFd) -> bool {
        if !fits(fd) {
            return false;
        }
        // SAFETY: `fd` is in 0..FD_SETSIZE, so the bit is inside the set.
        unsafe { libc::FD_SET(fd, &mut self.read) };
        self.read_fds.push(fd);
        true
    }

    /// `FD_SET(fd, &writefds)`; false for a descriptor that does not fit.
    pub fn watch_write(&mut self, fd: RawFd) -> bool {
        if !fits(fd) {
            return false;
        }
        // SAFETY: as above.
        unsafe { libc::FD_SET(fd, &mut self.write) };
        self.write_fds.push(fd);
        true
    }

    /// `select(nfds, &readfds, &writefds, NULL, timeout)`: waits until a watched
    /// descriptor is ready or `timeout` passes (`None`: no bound); the sets then hold the
    /// ready ones. Returns how many are ready. EINTR is an answer of 0 ready.
    pub fn select(&mut self, timeout: Option<Duration>, tracer: &Tracer) -> io::Result<usize> {
        let nfds = self
            .read_fds
            .iter()
            .chain(&self.write_fds)
            .max()
            .map_or(0, |fd| fd + 1);
        let mut tv = timeout.map(|t| libc::timeval {
            tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
            tv_usec: libc::suseconds_t::from(t.subsec_micros()),
        });
        let tv_ptr = tv
            .as_mut()
            .map_or(std::ptr::null_mut(), |tv| tv as *mut libc::timeval);
        let began = tracer.begin();
        // SAFETY: both sets are valid fd_sets for the whole call, the except set is NULL
        // (allowed), and `tv_ptr` is NULL or points to `tv`, alive for the whole call.
        let n = unsafe {
            libc::select(
                nfds,
                &mut self.read,
                &mut self.write,
                std::ptr::null_mut(),
                tv_ptr,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                self.read = empty();
                self.write = empty();
                return Ok(0);
            }
            trace_failure_since(tracer, began, Step::Select, None, None, &e);
            return Err(e);
        }
        if tracer.on() {
            let readable: Vec<RawFd> = self
                .read_fds
                .iter()
                .copied()
                .filter(|&fd| self.readable(fd))
                .collect();
            let writable: Vec<RawFd> = self
                .write_fds
                .iter()
                .copied()
                .filter(|&fd| self.writable(fd))
                .collect();
            tracer.emit_since(
                began,
                Event::Select {
                    nfds,
                    read: &self.read_fds,
                    write: &self.write_fds,
                    timeout,
                    readable: &readable,
                    writable: &writable,
                },
            );
        }
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// `FD_ISSET(fd, &readfds)` after [`FdSets::select`].
    pub fn readable(&self, fd: RawFd) -> bool {
        // SAFETY: a descriptor that fits is a bit inside the set; the set is not changed.
        fits(fd) && unsafe { libc::FD_ISSET(fd, &self.read) }
    }

    /// `FD_ISSET(fd, &writefds)` after [`FdSets::select`].
    pub fn writable(&self, fd: RawFd) -> bool {
        // SAFETY: as above.
        fits(fd) && unsafe { libc::FD_ISSET(fd, &self.write) }
    }
}

/// A pipe that wakes a `select()` from another thread (the self-pipe trick): the read end
/// sits in the read set, and a byte written to the other end makes it readable. Its calls
/// are the server's own plumbing and are not traced.
pub struct WakePipe {
    read: std::os::unix::net::UnixStream,
    write: std::sync::Arc<std::os::unix::net::UnixStream>,
}

impl WakePipe {
    /// `socketpair(AF_UNIX, SOCK_STREAM)`, both ends non-blocking.
    pub fn new() -> io::Result<WakePipe> {
        let (read, write) = std::os::unix::net::UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        Ok(WakePipe {
            read,
            write: std::sync::Arc::new(write),
        })
    }

    /// The descriptor to watch for reading.
    pub fn fd(&self) -> RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.read)
    }

    /// A function that wakes the `select()` from any thread (a full pipe is already awake).
    pub fn waker(&self) -> impl Fn() + Send + Sync + 'static {
        let write = std::sync::Arc::clone(&self.write);
        move || {
            let _ = io::Write::write(&mut &*write, &[1]);
        }
    }

    /// Clears the wake-up: reads its bytes away, so the next `select()` sleeps again.
    pub fn clear(&self) {
        let mut buf = [0u8; 64];
        while matches!(io::Read::read(&mut &self.read, &mut buf), Ok(n) if n > 0) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn a_descriptor_past_fd_setsize_is_refused_not_written() {
        let mut sets = FdSets::new();
        assert!(!sets.watch_read(1024));
        assert!(!sets.watch_write(5000));
        assert!(!sets.watch_read(-1));
        assert!(sets.watch_read(1023));
        assert!(!sets.readable(4096));
    }

    #[test]
    fn select_reports_what_is_ready() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sets = FdSets::new();
        sets.watch_read(l.as_raw_fd());
        assert_eq!(
            sets.select(Some(Duration::from_millis(10)), &Tracer::off())
                .unwrap(),
            0
        );
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        sets.clear();
        sets.watch_read(l.as_raw_fd());
        sets.watch_write(c.as_raw_fd());
        let n = sets.select(Some(Duration::from_secs(5)), &Tracer::off()).unwrap();
        assert_eq!(n, 2);
        assert!(sets.readable(l.as_raw_fd()) && sets.writable(c.as_raw_fd()));
        c.write_all(b"x").unwrap();
    }
}
