//! `epoll(7)` for the server's event loop: the instance, its registrations, the wait, and
//! the eventfd another thread writes to wake it. Each call is traced with the descriptors
//! it names, and a wait with what each ready descriptor is ready for, so that the event
//! loop's trace shows how it waits, as the textbook's `epoll` chapter draws it.
//!
//! Registrations are edge-triggered (`EPOLLET`), as mio's are: a socket is reported once
//! per change, and the loop then calls until EAGAIN.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use super::{Tracer, trace_failure, trace_failure_since};
use crate::error::Step;
use crate::trace::{Event, Readiness};

/// One ready descriptor, as `epoll_wait()` reported it: the key it was registered with
/// and what it is ready for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    /// The key given to [`Epoll::add`].
    pub key: u64,
    /// `EPOLLIN`, `EPOLLOUT`, `EPOLLHUP`/`EPOLLRDHUP`, `EPOLLERR`.
    pub readiness: Readiness,
}

/// An epoll instance and the buffer its waits fill.
pub struct Epoll {
    epfd: OwnedFd,
    tracer: Tracer,
    events: Vec<libc::epoll_event>,
    ready: Vec<Ready>,
    /// Which descriptor each key stands for, to show descriptors in the trace.
    fds: HashMap<u64, RawFd>,
}

/// The readiness bits of an `epoll_event`.
fn readiness(bits: u32) -> Readiness {
    let has = |flag: libc::c_int| bits & flag as u32 != 0;
    Readiness {
        readable: has(libc::EPOLLIN),
        writable: has(libc::EPOLLOUT),
        hangup: has(libc::EPOLLHUP) || has(libc::EPOLLRDHUP),
        error: has(libc::EPOLLERR),
        edge: has(libc::EPOLLET),
        exclusive: has(libc::EPOLLEXCLUSIVE),
    }
}

/// A wait's time limit as `epoll_wait()` takes it: milliseconds, rounded up so that a
/// deadline is never woken for early (mio does the same), -1 for none.
fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(t) => {
            let up = t.checked_add(Duration::from_nanos(999_999)).unwrap_or(t);
            libc::c_int::try_from(up.as_millis()).unwrap_or(libc::c_int::MAX)
        }
    }
}

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`, with room for `capacity` events per wait.
    pub fn new(capacity: usize, tracer: &Tracer) -> io::Result<Epoll> {
        // SAFETY: epoll_create1(2) takes a flag and returns a new descriptor or -1.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            let e = io::Error::last_os_error();
            trace_failure(tracer, Step::EpollCreate, None, None, &e);
            return Err(e);
        }
        if tracer.on() {
            tracer.emit(Event::EpollCreate { epfd });
        }
        Ok(Epoll {
            // SAFETY: the descriptor is new and owned by nobody else.
            epfd: unsafe { OwnedFd::from_raw_fd(epfd) },
            tracer: tracer.clone(),
            events: Vec::with_capacity(capacity.max(1)),
            ready: Vec::new(),
            fds: HashMap::new(),
        })
    }

    /// `epoll_ctl(EPOLL_CTL_ADD)`: watch `fd`, edge-triggered, for reading (with
    /// `EPOLLRDHUP`, the peer's half-close) and/or writing; its events come back with `key`.
    pub fn add(&mut self, fd: RawFd, key: u64, readable: bool, writable: bool) -> io::Result<()> {
        let mut bits = libc::EPOLLET as u32;
        if readable {
            bits |= (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
        }
        if writable {
            bits |= libc::EPOLLOUT as u32;
        }
        self.ctl_add(fd, key, bits)
    }

    /// `epoll_ctl(EPOLL_CTL_ADD)` with `EPOLLEXCLUSIVE`: watch a listening socket that
    /// other epoll instances (other workers) watch too, edge-triggered; a new connection
    /// wakes one of the instances waiting on it instead of every one.
    pub fn add_exclusive(&mut self, fd: RawFd, key: u64) -> io::Result<()> {
        self.ctl_add(
            fd,
            key,
            (libc::EPOLLET | libc::EPOLLIN | libc::EPOLLEXCLUSIVE) as u32,
        )
    }

    fn ctl_add(&mut self, fd: RawFd, key: u64, bits: u32) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: bits,
            u64: key,
        };
        // SAFETY: `event` is a valid epoll_event for the whole call.
        let r = unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
        if r < 0 {
            let e = io::Error::last_os_error();
            trace_failure(&self.tracer, Step::EpollCtl, Some(fd), None, &e);
            return Err(e);
        }
        self.fds.insert(key, fd);
        if self.tracer.on() {
            self.tracer.emit(Event::EpollAdd {
                epfd: self.epfd.as_raw_fd(),
                fd,
                events: readiness(bits),
            });
        }
        Ok(())
    }

    /// `epoll_ctl(EPOLL_CTL_DEL)`: no longer watch `fd` (a socket that is closed leaves
    /// the set by itself; this is for one that stays open).
    pub fn delete(&mut self, fd: RawFd) -> io::Result<()> {
        // SAFETY: EPOLL_CTL_DEL ignores the event pointer, which may be NULL since 2.6.9.
        let r = unsafe {
            libc::epoll_ctl(
                self.epfd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            trace_failure(&self.tracer, Step::EpollCtl, Some(fd), None, &e);
            return Err(e);
        }
        if self.tracer.on() {
            self.tracer.emit(Event::EpollDel {
                epfd: self.epfd.as_raw_fd(),
                fd,
            });
        }
        Ok(())
    }

    /// `epoll_wait()` for at most `timeout` (`None`: until an event): the ready
    /// descriptors. A signal that interrupts the wait is an answer of none.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<&[Ready]> {
        let ms = timeout_ms(timeout);
        let max = self.events.capacity();
        let began = self.tracer.begin();
        // SAFETY: the buffer has room for `max` events, and epoll_wait(2) writes at most
        // that many, then says how many; only those are read below.
        let n = unsafe {
            let n = libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                libc::c_int::try_from(max).unwrap_or(libc::c_int::MAX),
                ms,
            );
            if n >= 0 {
                self.events.set_len(usize::try_from(n).unwrap_or(0));
            }
            n
        };
        self.ready.clear();
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(&self.ready);
            }
            trace_failure_since(&self.tracer, began, Step::EpollWait, None, None, &e);
            return Err(e);
        }
        self.ready.extend(self.events.iter().map(|e| Ready {
            key: e.u64,
            readiness: readiness(e.events),
        }));
        if self.tracer.on() {
            let shown: Vec<(i32, Readiness)> = self
                .ready
                .iter()
                .map(|r| (self.fds.get(&r.key).copied().unwrap_or(-1), r.readiness))
                .collect();
            self.tracer.emit_since(
                began,
                Event::EpollWait {
                    epfd: self.epfd.as_raw_fd(),
                    max,
                    timeout_ms: ms,
                    ready: &shown,
                },
            );
        }
        Ok(&self.ready)
    }
}

/// An eventfd in an epoll set: a write from any thread wakes the wait.
pub struct Wakeup {
    fd: Arc<OwnedFd>,
}

impl Wakeup {
    /// `eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)`, watched by `epoll` under `key`.
    pub fn new(epoll: &mut Epoll, key: u64) -> io::Result<Wakeup> {
        // SAFETY: eventfd(2) takes an initial value and flags and returns a new descriptor.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            trace_failure(&epoll.tracer, Step::Eventfd, None, None, &e);
            return Err(e);
        }
        if epoll.tracer.on() {
            epoll.tracer.emit(Event::Eventfd { fd, ring: false });
        }
        // SAFETY: the descriptor is new and owned by nobody else.
        let fd = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        epoll.add(fd.as_raw_fd(), key, true, false)?;
        Ok(Wakeup { fd })
    }

    /// A function that wakes the wait from any thread (its own calls are not traced: they
    /// are the stop's plumbing, made from a signal's thread).
    pub fn waker(&self) -> impl Fn() + Send + Sync + 'static {
        let fd = Arc::clone(&self.fd);
        move || {
            let one: u64 = 1;
            // SAFETY: writes the 8 bytes of `one`, alive for the whole call. A full
            // counter (EAGAIN) is a wake-up already pending.
            unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    /// Clears the wake-up: reads the counter back to zero, so that the next write is a
    /// new edge.
    pub fn clear(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads at most 8 bytes into `count`; EAGAIN (nothing to read) is fine.
        unsafe { libc::read(self.fd.as_raw_fd(), (&mut count as *mut u64).cast(), 8) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn a_wait_reports_ready_sockets_by_key_and_a_wakeup_wakes_it() {
        let mut ep = Epoll::new(16, &Tracer::off()).unwrap();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        ep.add(l.as_raw_fd(), 7, true, false).unwrap();
        assert!(ep.wait(Some(Duration::from_millis(10))).unwrap().is_empty());
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let ready = ep.wait(Some(Duration::from_secs(5))).unwrap().to_vec();
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].key, 7);
        assert!(ready[0].readiness.readable);
        let wake = Wakeup::new(&mut ep, 9).unwrap();
        ep.delete(l.as_raw_fd()).unwrap();
        let waker = wake.waker();
        std::thread::spawn(waker).join().unwrap();
        let ready = ep.wait(Some(Duration::from_secs(5))).unwrap().to_vec();
        assert_eq!(ready.iter().map(|r| r.key).collect::<Vec<_>>(), vec![9]);
        wake.clear();
        c.write_all(b"x").unwrap();
    }

    #[test]
    fn time_limits_round_up_to_milliseconds() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_millis(100))), 100);
    }
}
