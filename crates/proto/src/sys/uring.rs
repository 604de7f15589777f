//! `io_uring(7)` for the server's uring model: the ring, the calls queued in it (each
//! helper named after the `IORING_OP_*` it queues), the one system call that submits them
//! and reaps completions (`io_uring_enter()`), and a trace line for each completion with
//! its real result.
//!
//! Where the textbook makes one system call per socket call, and waits in it, the ring
//! takes calls as entries in a queue shared with the kernel and gives their results back
//! in another: one `io_uring_enter()` submits the calls of many connections and reaps
//! their completions. An accept is one request per client; a receive
//! takes a buffer from a group handed to the kernel ([`BUFFERS`] of [`BUFFER_SIZE`]
//! bytes), chosen when data comes, so that an idle client holds none; linked calls
//! (`IOSQE_IO_LINK`) run one after the other, each only if the one before succeeded.
//!
//! Every call is identified by a key the driver chooses (below [`RESERVED`]); the ring's
//! own calls (the stop's wake-up, buffers given back, cancellations) use keys above it
//! and never reach the driver.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use io_uring::{IoUring, cqueue, opcode, squeue, types};

use super::{Stream, Tracer, trace_failure, trace_failure_since};
use crate::error::Step;
use crate::trace::{Event, UringOp};

/// Receive buffers handed to the kernel.
pub const BUFFERS: u16 = 256;
/// Bytes in each receive buffer.
pub const BUFFER_SIZE: usize = 4096;
/// The buffer group of the receive buffers.
const GROUP: u16 = 1;
/// How many bytes the unread-input check takes: enough to tell whether anything waits.
const UNREAD_PROBE: u32 = 64;
/// Submission queue entries; the completion queue has four times as many.
pub const ENTRIES: u32 = 1024;

/// Keys at or above this are the ring's own; a driver's keys stay below it.
pub const RESERVED: u64 = 1 << 63;
const WAKE: u64 = u64::MAX;
/// A buffer given back, whose call completes only if it fails (and is not counted).
const PROVIDE: u64 = u64::MAX - 1;
/// The buffers handed over at the start.
const PROVIDE_ALL: u64 = u64::MAX - 2;
/// A cancellation's own completion: its target's key with this bit set.
const CANCEL: u64 = 1 << 63;

/// One completion of a call the driver queued.
#[derive(Debug)]
pub struct Completion {
    /// The key the call was queued with.
    pub key: u64,
    /// The call's result: a descriptor, a byte count, 0, or `-errno`.
    pub result: i32,
    /// A multishot call that goes on (`IORING_CQE_F_MORE`): more completions will come.
    pub more: bool,
    /// The provided buffer a receive filled.
    buffer: Option<u16>,
}

impl Completion {
    /// The result as an I/O result: a count (or descriptor), or the error.
    pub fn io_result(&self) -> io::Result<usize> {
        if self.result < 0 {
            Err(io::Error::from_raw_os_error(-self.result))
        } else {
            Ok(usize::try_from(self.result).unwrap_or(0))
        }
    }

    /// -EAGAIN: the unread-input check found nothing waiting.
    pub fn would_block(&self) -> bool {
        self.result == -libc::EAGAIN
    }

    /// -ENOBUFS: a receive found every provided buffer in use; it may be made again
    /// after the next [`Ring::enter`], which gives buffers back.
    pub fn out_of_buffers(&self) -> bool {
        self.result == -libc::ENOBUFS
    }

    /// The call was cancelled (by a failed call linked before it, or by
    /// [`Ring::cancel`]) and made nothing.
    pub fn cancelled(&self) -> bool {
        self.result == -libc::ECANCELED
    }
}

/// What the trace needs of a call until its completion comes (kept only when tracing).
struct Pending {
    op: UringOp,
    fd: RawFd,
    linked: bool,
    /// The bytes a send was given (what it sent is their first `result`).
    data: Vec<u8>,
}

/// The ring, its receive buffers and the eventfd that wakes its wait.
pub struct Ring {
    ring: IoUring,
    tracer: Tracer,
    /// [`BUFFERS`] × [`BUFFER_SIZE`] bytes, handed to the kernel; never reallocated.
    pool: Vec<u8>,
    /// Buffers the last completions filled, handed back before the next wait.
    used: Vec<u16>,
    /// Written by the stop (from any thread) to end the wait.
    wake: Arc<OwnedFd>,
    /// Where the ring reads the eventfd's counter; boxed, so it never moves.
    wake_buf: Box<u64>,
    wake_armed: bool,
    /// Calls queued or in the kernel whose last completion has not come: waited for
    /// before the buffers are freed.
    in_flight: usize,
    /// The trace's view of the calls in flight, by key.
    pending: HashMap<u64, Pending>,
}

/// The setup flags tried in turn: the newest first, each kernel taking the first it knows.
const SETUPS: [(&str, u8); 3] = [
    ("IORING_SETUP_SINGLE_ISSUER|IORING_SETUP_DEFER_TASKRUN", 2),
    ("IORING_SETUP_COOP_TASKRUN", 1),
    ("", 0),
];

impl Ring {
    /// `io_uring_setup()`, then what the model needs of it: the opcodes it uses (a kernel
    /// older than 5.19 lacks some; that is EINVAL), the eventfd that wakes its wait, and
    /// the receive buffers, handed over with the first submission. A failure reads as
    /// [`setup_refused`] words it.
    ///
    /// With `IORING_SETUP_SINGLE_ISSUER`, only the thread that sets the ring up may use
    /// it.
    pub fn setup(tracer: &Tracer) -> io::Result<Ring> {
        let began = tracer.begin();
        let mut last = io::Error::from_raw_os_error(libc::EINVAL);
        let mut built = None;
        for (flags, level) in SETUPS {
            let mut b = IoUring::builder();
            b.setup_cqsize(ENTRIES * 4);
            match level {
                2 => {
                    b.setup_single_issuer().setup_defer_taskrun();
                }
                1 => {
                    b.setup_coop_taskrun();
                }
                _ => {}
            }
            match b.build(ENTRIES) {
                Ok(ring) => {
                    built = Some((ring, flags));
                    break;
                }
                // An older kernel refuses flags it does not know: try fewer.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => last = e,
                Err(e) => {
                    last = e;
                    break;
                }
            }
        }
        let Some((ring, flags)) = built else {
            let e = setup_refused(&last, io_uring_disabled());
            trace_failure_since(tracer, began, Step::UringSetup, None, None, &last);
            return Err(e);
        };
        if tracer.on() {
            tracer.emit_since(
                began,
                Event::UringSetup {
                    fd: ring.as_raw_fd(),
                    entries: ENTRIES,
                    flags,
                },
            );
        }
        if let Err(e) = has_what_is_needed(&ring) {
            trace_failure(tracer, Step::UringSetup, Some(ring.as_raw_fd()), None, &e);
            return Err(setup_refused(&e, io_uring_disabled()));
        }
        // SAFETY: eventfd(2) takes an initial value and flags and returns a new descriptor.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            let e = io::Error::last_os_error();
            trace_failure(tracer, Step::Eventfd, None, None, &e);
            return Err(e);
        }
        if tracer.on() {
            tracer.emit(Event::Eventfd { fd, ring: true });
        }
        let mut ring = Ring {
            ring,
            tracer: tracer.clone(),
            pool: vec![0u8; usize::from(BUFFERS) * BUFFER_SIZE],
            used: Vec::new(),
            // SAFETY: the descriptor is new and owned by nobody else.
            wake: Arc::new(unsafe { OwnedFd::from_raw_fd(fd) }),
            wake_buf: Box::new(0),
            wake_armed: false,
            in_flight: 0,
            pending: HashMap::new(),
        };
        let entry =
            opcode::ProvideBuffers::new(ring.pool.as_mut_ptr(), BUFFER_SIZE as i32, BUFFERS, GROUP, 0)
                .build()
                .user_data(PROVIDE_ALL);
        ring.push(entry, UringOp::ProvideBuffers, -1, false, &[]);
        Ok(ring)
    }

    /// The ring's descriptor, as the trace shows it.
    pub fn fd(&self) -> RawFd {
        self.ring.as_raw_fd()
    }

    /// A function that ends the ring's wait from any thread (a write to its eventfd; not
    /// traced: it is the stop's plumbing, made from a signal's thread).
    pub fn waker(&self) -> impl Fn() + Send + Sync + 'static {
        let fd = Arc::clone(&self.wake);
        move || {
            let one: u64 = 1;
            // SAFETY: writes the 8 bytes of `one`, alive for the whole call. A full
            // counter (EAGAIN) is a wake-up already pending.
            unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    /// Whether `n` more entries fit in the submission queue without handing it over
    /// first; a chain of linked calls must go in one submission.
    pub fn room_for(&mut self, n: usize) -> bool {
        let sq = self.ring.submission();
        sq.capacity() - sq.len() >= n
    }

    /// Makes room for `n` entries: hands the queued calls to the kernel without waiting
    /// (`io_uring_enter()` with `min_complete` 0) if they do not fit.
    pub fn reserve(&mut self, n: usize) -> io::Result<()> {
        if self.room_for(n) {
            return Ok(());
        }
        let queued = self.ring.submission().len();
        let began = self.tracer.begin();
        let submitted = match self.ring.submit() {
            Ok(n) => n,
            Err(e) => {
                trace_failure_since(&self.tracer, began, Step::UringEnter, Some(self.fd()), None, &e);
                return Err(e);
            }
        };
        if self.tracer.on() {
            self.tracer.emit_since(
                began,
                Event::UringEnter {
                    fd: self.fd(),
                    submitted: submitted.min(queued),
                    min_complete: 0,
                    timeout: None,
                    completed: 0,
                    timed_out: false,
                },
            );
        }
        Ok(())
    }

    /// `IORING_OP_ACCEPT`: one client, under `key`. The server queues one per free slot
    /// (a multishot accept would take every client queued, beyond `--max-conns`).
    pub fn accept(&mut self, listener: RawFd, key: u64) {
        let entry = opcode::Accept::new(types::Fd(listener), std::ptr::null_mut(), std::ptr::null_mut())
            .flags(libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC)
            .build()
            .user_data(key);
        self.push(entry, UringOp::Accept, listener, false, &[]);
    }

    /// The connection a completion of an accept made (its descriptor becomes the
    /// stream's), or the accept's error. The accept asks for no address:
    /// [`Stream::peer_addr`] asks for it when it is needed.
    pub fn accepted(&self, done: Completion) -> io::Result<Stream> {
        let fd = done.io_result()?;
        let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        // SAFETY: the completion of an accept carries a new descriptor that nobody else
        // owns, and a completion is taken by value, so once.
        Ok(Stream::new(
            unsafe { TcpStream::from_raw_fd(fd) },
            true,
            self.tracer.clone(),
        ))
    }

    /// `IORING_OP_SEND` of `bytes` with `MSG_MORE` (and `MSG_NOSIGNAL`): the tail waits
    /// for the FIN that follows (the close's, or a half-close's). `linked`: the next call queued runs only
    /// if this one sends every byte (`MSG_WAITALL` makes a short send go on until it has,
    /// or fail).
    ///
    /// # Safety
    ///
    /// `bytes` must stay where they are, unchanged, until this call's completion has been
    /// reaped: the kernel reads them when the socket has room, after this returns.
    pub unsafe fn send(&mut self, stream: &Stream, bytes: &[u8], linked: bool, key: u64) {
        let mut flags = libc::MSG_MORE | libc::MSG_NOSIGNAL;
        if linked {
            flags |= libc::MSG_WAITALL;
        }
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let entry = opcode::Send::new(types::Fd(stream.fd()), bytes.as_ptr(), len)
            .flags(flags)
            .build()
            .user_data(key)
            .flags(link(linked));
        self.push(entry, UringOp::Send, stream.fd(), linked, bytes);
    }

    /// `IORING_OP_SHUTDOWN` with `SHUT_WR`: the half-close.
    pub fn shutdown(&mut self, stream: &Stream, linked: bool, key: u64) {
        let entry = opcode::Shutdown::new(types::Fd(stream.fd()), libc::SHUT_WR)
            .build()
            .user_data(key)
            .flags(link(linked));
        self.push(entry, UringOp::Shutdown, stream.fd(), linked, &[]);
    }

    /// `IORING_OP_RECV` with `MSG_DONTWAIT`, once: did the client send anything that was
    /// never read? -EAGAIN: nothing; 0: it half-closed; n: n bytes were waiting (and are
    /// read away, into a provided buffer). Never waits.
    pub fn check_unread(&mut self, stream: &Stream, key: u64) {
        let entry = opcode::Recv::new(types::Fd(stream.fd()), std::ptr::null_mut(), UNREAD_PROBE)
            .flags(libc::MSG_DONTWAIT)
            .buf_group(GROUP)
            .build()
            .user_data(key)
            .flags(squeue::Flags::BUFFER_SELECT);
        self.push(entry, UringOp::CheckUnread, stream.fd(), false, &[]);
    }

    /// `IORING_OP_RECV` into a buffer the kernel picks from the provided ones when data
    /// comes ([`Ring::received`]); 0 is end of stream. -ENOBUFS: every buffer is in use,
    /// receive again after the next wait.
    pub fn recv(&mut self, stream: &Stream, key: u64) {
        let entry = opcode::Recv::new(types::Fd(stream.fd()), std::ptr::null_mut(), BUFFER_SIZE as u32)
            .buf_group(GROUP)
            .build()
            .user_data(key)
            .flags(squeue::Flags::BUFFER_SELECT);
        self.push(entry, UringOp::Recv, stream.fd(), false, &[]);
    }

    /// The bytes a receive's completion brought (empty for any other completion). They
    /// stay until the next [`Ring::enter`], which gives their buffer back to the kernel.
    pub fn received(&self, done: &Completion) -> &[u8] {
        match (done.buffer, usize::try_from(done.result)) {
            (Some(bid), Ok(n)) => {
                let start = usize::from(bid) * BUFFER_SIZE;
                self.pool
                    .get(start..start + n.min(BUFFER_SIZE))
                    .unwrap_or_default()
            }
            _ => &[],
        }
    }

    /// `IORING_OP_CLOSE`: the socket is closed by the kernel, with the other calls of the
    /// next submission. No call may be pending on it (see [`Ring::cancel`]): a pending call
    /// holds the socket open.
    pub fn close(&mut self, stream: Stream, key: u64) {
        let fd = stream.into_fd().into_raw_fd();
        let entry = opcode::Close::new(types::Fd(fd)).build().user_data(key);
        self.push(entry, UringOp::Close, fd, false, &[]);
    }

    /// `setsockopt(SO_LINGER, {1, 0})` now, then `IORING_OP_CLOSE`: the connection is reset
    /// (RST) and what is unsent dropped.
    pub fn abort(&mut self, stream: Stream, key: u64) {
        stream.linger0();
        self.close(stream, key);
    }

    /// `IORING_OP_ASYNC_CANCEL` of the call queued under `target` on `fd`: it completes
    /// with -ECANCELED (or with its result, if it was already done).
    pub fn cancel(&mut self, target: u64, fd: RawFd) {
        let key = target | CANCEL;
        let entry = opcode::AsyncCancel::new(target).build().user_data(key);
        self.push(entry, UringOp::Cancel, fd, false, &[]);
    }

    /// `io_uring_enter()`: hands the kernel every call queued since the last one, waits
    /// until at least one completes or `timeout` passes (`None`: no limit), and puts the
    /// completions of the driver's calls in `done` (the ring's own are handled here). A
    /// signal ends the wait early with nothing.
    pub fn enter(&mut self, timeout: Option<Duration>, done: &mut Vec<Completion>) -> io::Result<()> {
        self.give_back_buffers();
        self.arm_wake();
        let queued = self.ring.submission().len();
        let began = self.tracer.begin();
        let result = match timeout {
            Some(t) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(1, &args)
            }
            None => self.ring.submitter().submit_and_wait(1),
        };
        let submitted = queued.saturating_sub(self.ring.submission().len());
        let timed_out = match result {
            Ok(_) => false,
            Err(e) if e.raw_os_error() == Some(libc::ETIME) => true,
            // A signal, or completions the ring could not post yet (reaped below).
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)) => false,
            Err(e) => {
                trace_failure_since(&self.tracer, began, Step::UringEnter, Some(self.fd()), None, &e);
                return Err(e);
            }
        };
        done.clear();
        let mut reaped = Vec::new();
        for cqe in self.ring.completion() {
            reaped.push(Completion {
                key: cqe.user_data(),
                result: cqe.result(),
                more: cqueue::more(cqe.flags()),
                buffer: cqueue::buffer_select(cqe.flags()),
            });
        }
        if self.tracer.on() {
            self.tracer.emit_since(
                began,
                Event::UringEnter {
                    fd: self.fd(),
                    submitted,
                    min_complete: 1,
                    timeout,
                    completed: reaped.len(),
                    timed_out,
                },
            );
        }
        for c in reaped {
            if let Some(bid) = c.buffer {
                self.used.push(bid);
            }
            // A call with its skip-success flag (a buffer given back) completes only to
            // fail, and was never counted.
            if c.key != PROVIDE && !c.more {
                self.in_flight = self.in_flight.saturating_sub(1);
            }
            self.trace_completion(&c);
            if c.key == WAKE {
                self.wake_armed = false;
            }
            // The ring's own calls (keys with the top bit) never reach the driver.
            if c.key & CANCEL == 0 {
                done.push(c);
            }
        }
        Ok(())
    }

    /// Queues `entry`, handing the queue over first if it is full.
    fn push(&mut self, entry: squeue::Entry, op: UringOp, fd: RawFd, linked: bool, data: &[u8]) {
        let key = entry.get_user_data();
        let _ = self.reserve(1);
        // SAFETY: what the entry points to (a send's bytes, the buffer pool, the
        // eventfd's counter) stays valid until its completion: the callers' contract, and
        // `Drop`, which waits for the calls in flight before the pool is freed.
        if unsafe { self.ring.submission().push(&entry) }.is_err() {
            // Still full (the kernel took nothing): the call is lost; its connection's
            // deadline ends it.
            return;
        }
        self.in_flight += 1;
        if self.tracer.on() {
            let shown = data.len().min(128);
            self.pending.insert(
                key,
                Pending {
                    op,
                    fd,
                    linked,
                    data: data[..shown].to_vec(),
                },
            );
        }
    }

    /// Hands the buffers the last completions filled back to the kernel (each completes
    /// only if it fails: `IOSQE_CQE_SKIP_SUCCESS`).
    fn give_back_buffers(&mut self) {
        let used = std::mem::take(&mut self.used);
        for bid in used {
            let start = usize::from(bid) * BUFFER_SIZE;
            let Some(buf) = self.pool.get_mut(start..start + BUFFER_SIZE) else {
                continue;
            };
            let entry = opcode::ProvideBuffers::new(buf.as_mut_ptr(), BUFFER_SIZE as i32, 1, GROUP, bid)
                .build()
                .user_data(PROVIDE)
                .flags(squeue::Flags::SKIP_SUCCESS);
            let _ = self.reserve(1);
            // SAFETY: the buffer is part of the pool, which outlives every call (`Drop`).
            let _ = unsafe { self.ring.submission().push(&entry) };
        }
    }

    /// Keeps a read of the eventfd queued, so that the stop's write ends the wait.
    fn arm_wake(&mut self) {
        if self.wake_armed {
            return;
        }
        let buf: *mut u64 = &mut *self.wake_buf;
        let entry = opcode::Read::new(types::Fd(self.wake.as_raw_fd()), buf.cast(), 8)
            .build()
            .user_data(WAKE);
        self.wake_armed = true;
        let fd = self.wake.as_raw_fd();
        self.push(entry, UringOp::Wake, fd, false, &[]);
    }

    fn trace_completion(&mut self, c: &Completion) {
        if !self.tracer.on() {
            return;
        }
        let pending = if c.more {
            self.pending
                .get(&c.key)
                .map(|p| (p.op, p.fd, p.linked, Vec::new()))
        } else {
            self.pending
                .remove(&c.key)
                .map(|p| (p.op, p.fd, p.linked, p.data))
        };
        let Some((op, fd, linked, given)) = pending else {
            return;
        };
        let data = match op {
            UringOp::Send => {
                let sent = usize::try_from(c.result).unwrap_or(0).min(given.len());
                Some(&given[..sent])
            }
            UringOp::Recv | UringOp::CheckUnread => Some(self.received(c)),
            _ => None,
        };
        let peer = match op {
            UringOp::Accept if c.result >= 0 => peer_of(c.result),
            _ => None,
        };
        self.tracer.emit(Event::UringDone {
            op,
            fd,
            result: c.result,
            data,
            peer,
            linked,
            more: c.more,
        });
    }
}

impl Drop for Ring {
    /// With calls still in flight (the eventfd's read, always; receives, after an error),
    /// the memory they may write into is left allocated: closing the ring cancels them,
    /// but asynchronously, so freeing it could let the kernel write into freed memory.
    /// At most once per server, the pool and eight bytes.
    fn drop(&mut self) {
        if self.in_flight == 0 {
            return;
        }
        std::mem::forget(std::mem::take(&mut self.pool));
        std::mem::forget(std::mem::replace(&mut self.wake_buf, Box::new(0)));
    }
}

/// The link flag of a call that the next one depends on.
fn link(linked: bool) -> squeue::Flags {
    if linked {
        squeue::Flags::IO_LINK
    } else {
        squeue::Flags::empty()
    }
}

/// `getpeername()` of a descriptor an accept completion gave, for its trace line.
fn peer_of(fd: i32) -> Option<SocketAddr> {
    // SAFETY: the descriptor is open (the connection was just accepted and is not closed
    // before its completion is handled); it is borrowed, not owned, here.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    socket2::SockRef::from(&fd).peer_addr().ok()?.as_socket()
}

/// Whether the kernel's io_uring has what the model uses: the opcodes (`IORING_OP_SOCKET`
/// came in 5.19) and a wait bounded by a time limit
/// (`IORING_FEAT_EXT_ARG`). EINVAL if not.
fn has_what_is_needed(ring: &IoUring) -> io::Result<()> {
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    let ops = [
        opcode::Socket::CODE,
        opcode::Shutdown::CODE,
        opcode::ProvideBuffers::CODE,
        opcode::AsyncCancel::CODE,
        opcode::Send::CODE,
        opcode::Recv::CODE,
        opcode::Close::CODE,
    ];
    if ring.params().is_feature_ext_arg() && ops.iter().all(|op| probe.is_supported(*op)) {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(libc::EINVAL))
    }
}

/// `/proc/sys/kernel/io_uring_disabled`: 0 allowed, 1 only for a group, 2 disabled;
/// `None` where the kernel has no such setting (before 6.6) or it cannot be read.
fn io_uring_disabled() -> Option<u8> {
    std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Why io_uring cannot be had, in words, from `io_uring_setup()`'s error and the
/// `kernel.io_uring_disabled` setting: `io_uring is disabled on this machine (sysctl
/// kernel.io_uring_disabled = 2): Operation not permitted (os error 1)`.
pub fn setup_refused(err: &io::Error, disabled: Option<u8>) -> io::Error {
    let why = match (err.raw_os_error(), disabled) {
        (Some(libc::ENOSYS), _) => {
            "this kernel has no io_uring (it needs Linux 5.19 or later, built with CONFIG_IO_URING)"
                .to_string()
        }
        (Some(libc::EPERM), Some(2)) => {
            "io_uring is disabled on this machine (sysctl kernel.io_uring_disabled = 2)".to_string()
        }
        (Some(libc::EPERM), Some(1)) => {
            "io_uring is allowed only to the group in sysctl kernel.io_uring_group \
             (kernel.io_uring_disabled = 1)"
                .to_string()
        }
        (Some(libc::EPERM | libc::EACCES), _) => {
            "io_uring was refused although kernel.io_uring_disabled allows it: a seccomp filter \
             (a container's) blocks it"
                .to_string()
        }
        (Some(libc::ENOMEM), _) => {
            "no memory for the rings (the locked-memory limit, RLIMIT_MEMLOCK, or the cgroup's)".to_string()
        }
        (Some(libc::EINVAL), _) => {
            "this kernel's io_uring lacks what the model needs (Linux 5.19 or later)".to_string()
        }
        _ => "io_uring cannot be set up".to_string(),
    };
    io::Error::new(err.kind(), format!("{why}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn errno(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[test]
    fn a_refused_setup_names_its_cause() {
        let said = |code, disabled| setup_refused(&errno(code), disabled).to_string();
        assert_eq!(
            said(libc::EPERM, Some(2)),
            "io_uring is disabled on this machine (sysctl kernel.io_uring_disabled = 2): \
             Operation not permitted (os error 1)"
        );
        assert!(said(libc::EPERM, Some(1)).contains("io_uring_group"));
        assert!(said(libc::EPERM, Some(0)).contains("seccomp"));
        assert!(said(libc::EPERM, None).contains("seccomp"));
        assert!(said(libc::ENOSYS, None).starts_with("this kernel has no io_uring"));
        assert!(said(libc::ENOSYS, None).ends_with("(os error 38)"));
        assert!(said(libc::ENOMEM, Some(0)).contains("RLIMIT_MEMLOCK"));
        assert!(said(libc::EINVAL, Some(0)).contains("5.19"));
        assert!(said(libc::EIO, Some(0)).starts_with("io_uring cannot be set up: "));
        for code in [libc::EPERM, libc::ENOSYS, libc::ENOMEM, libc::EINVAL] {
            assert!(!said(code, Some(2)).contains('\n'), "one line");
        }
    }

    /// The ring, where the kernel allows it (else the test says so and passes: the
    /// end-to-end suite skips the model loudly on such a kernel).
    fn ring() -> Option<Ring> {
        match Ring::setup(&Tracer::off()) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("SKIP uring: io_uring_setup failed: {e}");
                None
            }
        }
    }

    /// The completion of `key`, waited for; the others of the same batches are kept in
    /// `stash`.
    fn wait(ring: &mut Ring, stash: &mut Vec<Completion>, key: u64) -> Completion {
        for _ in 0..100 {
            if let Some(i) = stash.iter().position(|c| c.key == key) {
                return stash.swap_remove(i);
            }
            let mut done = Vec::new();
            ring.enter(Some(Duration::from_millis(100)), &mut done).unwrap();
            stash.extend(done);
        }
        panic!("no completion for {key}");
    }

    #[test]
    fn a_hello_goes_out_as_send_shutdown_and_check_linked_then_close() {
        let Some(mut ring) = ring() else { return };
        let mut stash = Vec::new();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        ring.accept(l.as_raw_fd(), 1);
        let accepted = wait(&mut ring, &mut stash, 1);
        assert!(!accepted.more, "one accept, one client");
        let s = ring.accepted(accepted).unwrap();
        let hello = b"Hello World!\0".to_vec();
        // SAFETY: `hello` lives until the end of the test, past the completion.
        unsafe { ring.send(&s, &hello, true, 2) };
        ring.shutdown(&s, true, 3);
        ring.check_unread(&s, 4);
        assert_eq!(wait(&mut ring, &mut stash, 2).result, 13);
        assert_eq!(wait(&mut ring, &mut stash, 3).result, 0);
        assert_eq!(
            wait(&mut ring, &mut stash, 4).result,
            -libc::EAGAIN,
            "nothing unread"
        );
        ring.close(s, 5);
        assert_eq!(wait(&mut ring, &mut stash, 5).result, 0);
        let mut got = Vec::new();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.read_to_end(&mut got).unwrap();
        assert_eq!(got, hello);
    }

    #[test]
    fn a_failed_link_cancels_what_follows_and_a_recv_fills_a_provided_buffer() {
        let Some(mut ring) = ring() else { return };
        let mut stash = Vec::new();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        ring.accept(l.as_raw_fd(), 1);
        let got = wait(&mut ring, &mut stash, 1);
        let s = ring.accepted(got).unwrap();
        c.write_all(b"hello\0").unwrap();
        ring.recv(&s, 2);
        let got = wait(&mut ring, &mut stash, 2);
        assert_eq!(ring.received(&got), b"hello\0");
        // The client resets: the send fails, the half-close linked after it is cancelled.
        socket2::SockRef::from(&c)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(c);
        std::thread::sleep(Duration::from_millis(50));
        let reply = vec![b'x'; 100];
        // SAFETY: `reply` outlives the completion, waited for below.
        unsafe { ring.send(&s, &reply, true, 3) };
        ring.shutdown(&s, false, 4);
        assert!(wait(&mut ring, &mut stash, 3).result < 0);
        assert!(wait(&mut ring, &mut stash, 4).cancelled());
        // A pending receive is cancelled before the close.
        let l2 = TcpListener::bind("127.0.0.1:0").unwrap();
        let _c2 = std::net::TcpStream::connect(l2.local_addr().unwrap()).unwrap();
        ring.accept(l2.as_raw_fd(), 5);
        let got = wait(&mut ring, &mut stash, 5);
        let s2 = ring.accepted(got).unwrap();
        ring.recv(&s2, 6);
        ring.cancel(6, s2.fd());
        assert!(wait(&mut ring, &mut stash, 6).cancelled());
        ring.abort(s, 7);
        ring.close(s2, 8);
        assert_eq!(wait(&mut ring, &mut stash, 7).result, 0);
        assert_eq!(wait(&mut ring, &mut stash, 8).result, 0);
    }

    #[test]
    fn a_waker_ends_the_wait_from_another_thread() {
        let Some(mut ring) = ring() else { return };
        let wake = ring.waker();
        let woken = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let woke = std::sync::Arc::clone(&woken);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            woke.store(true, std::sync::atomic::Ordering::SeqCst);
            wake();
        });
        let started = std::time::Instant::now();
        let mut done = Vec::new();
        // The first wait may end with the buffers' own completion: wait again. (Not until
        // the thread has finished: it may not have, yet, when its wake-up ends the wait,
        // and the next wait would then last its whole 5 s.)
        while started.elapsed() < Duration::from_secs(5) && !woken.load(std::sync::atomic::Ordering::SeqCst) {
            ring.enter(Some(Duration::from_secs(5)), &mut done).unwrap();
        }
        ring.enter(Some(Duration::from_millis(1)), &mut done).unwrap();
        assert!(started.elapsed() < Duration::from_secs(4));
        t.join().unwrap();
        assert!(done.is_empty(), "the wake-up is the ring's own: {done:?}");
    }
}
