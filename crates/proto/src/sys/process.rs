//! Process-wide settings and facts, and the calls on processes and threads: how many
//! descriptors a program may open, how freed memory goes back to the system (and the
//! malloc arena cap), how much CPU time the process has used, timer slack, the terminal's
//! width, socket activation (`LISTEN_FDS`); the fork model's `fork()`, `waitpid()`,
//! `kill()`, `_exit()`, its log's `socketpair()` and the counters it shares with its
//! children (`mmap(MAP_SHARED)`); the drain delay's sleep; and the server's threads
//! (`pthread_create()` for a client's thread, after a probe that the address space has
//! room for it).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Duration;

use socket2::SockRef;

use super::Tracer;
use crate::trace::Event;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: i32 = 3;

/// `getrlimit(RLIMIT_NOFILE)`, then `setrlimit()` raising the soft limit to the hard one,
/// as nginx (`worker_rlimit_nofile`) and Go's runtime do: the soft limit (often 1024) is a
/// default for programs that never check, and an event loop holds a descriptor per client.
/// Returns the soft limit now in force (the old one, if raising it failed).
pub fn raise_nofile_limit() -> io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes one rlimit into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit(2) reads one rlimit from the struct it is given.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Ok(limit.rlim_cur)
}

/// CPU time this process has used so far, in user mode and in the kernel
/// (`getrusage(RUSAGE_SELF)`, every thread, live or ended). `None` if the call failed.
pub fn cpu_time() -> Option<(Duration, Duration)> {
    // SAFETY: rusage is plain old data, for which all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage(2) writes one rusage into the struct it is given.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let time = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    Some((time(usage.ru_utime), time(usage.ru_stime)))
}

/// `prctl(PR_SET_TIMERSLACK)` for the calling thread: how late the kernel may fire its
/// timers to group wake-ups (50 µs by default). A thread that starts work on a
/// schedule of a few hundred microseconds wants less.
pub fn set_timer_slack(slack: Duration) -> io::Result<()> {
    let ns = libc::c_ulong::try_from(slack.as_nanos())
        .unwrap_or(libc::c_ulong::MAX)
        .max(1);
    // SAFETY: prctl(2) with PR_SET_TIMERSLACK takes one integer and no pointers.
    if unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `mallopt(M_MMAP_THRESHOLD, 128 KiB)` (glibc): a buffer of that size or more gets a
/// mapping of its own, given back to the system the moment it is freed. glibc's default
/// threshold rises after each such buffer is freed, and the heaps of a thread-per-client
/// server's threads then keep every large request they ever held: setting it fixes it.
/// Nothing to do with another C library.
pub fn return_large_buffers_when_freed() {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt(3) takes two integers and changes only the allocator's settings.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
    }
}

/// Socket activation (systemd's `sd_listen_fds(3)` protocol): when `LISTEN_PID` is this
/// process and `LISTEN_FDS` is 1 or more, descriptor 3 is a listening TCP socket passed in
/// — by systemd, or by the process handing its socket to a successor — and is used
/// instead of binding (`None` when the variables do not say so). A descriptor that is not
/// a listening internet stream socket is an error. `getsockname()` on it is traced.
pub fn activated_listener(tracer: &Tracer) -> Option<io::Result<(TcpListener, SocketAddr)>> {
    let ours = std::env::var("LISTEN_PID").ok()?.parse::<u32>().ok()? == std::process::id();
    let count = std::env::var("LISTEN_FDS").ok()?.parse::<u32>().ok()?;
    if !ours || count == 0 {
        return None;
    }
    // SAFETY: the protocol hands this process descriptor 3, open, to own.
    let listener = unsafe { TcpListener::from_raw_fd(LISTEN_FDS_START) };
    Some(check_listener(listener, tracer))
}

fn check_listener(listener: TcpListener, tracer: &Tracer) -> io::Result<(TcpListener, SocketAddr)> {
    let sock = SockRef::from(&listener);
    let checked = (|| {
        let listening = sock.r#type()? == socket2::Type::STREAM && sock.is_listener()?;
        Ok::<_, io::Error>(sock.local_addr()?.as_socket().filter(|_| listening))
    })();
    let addr = match checked {
        Ok(Some(addr)) => addr,
        failed => {
            // Not ours to close, whatever it is (or is not): leave descriptor 3 alone.
            let _ = std::os::fd::IntoRawFd::into_raw_fd(listener);
            let why = failed.err().map_or(String::new(), |e| format!(": {e}"));
            return Err(io::Error::other(format!(
                "descriptor 3 (LISTEN_FDS) is not a listening TCP socket{why}"
            )));
        }
    };
    if tracer.on() {
        tracer.emit(Event::Activated {
            fd: listener.as_raw_fd(),
            addr,
        });
    }
    Ok((listener, addr))
}

/// The width in columns of the terminal on standard output (`ioctl(TIOCGWINSZ)`); `None`
/// when standard output is not a terminal. For the lesson's side-by-side columns.
pub fn terminal_columns() -> Option<usize> {
    // SAFETY: winsize is plain integers, for which all zeroes is a value.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ writes one winsize through the pointer, valid for the call.
    let ret = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) };
    (ret == 0 && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// Threads of this process (`Threads:` of `/proc/self/status`).
pub fn thread_count() -> io::Result<usize> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| io::Error::other("no Threads: line in /proc/self/status"))
}

/// The child processes of `pid`, from each of its threads' `/proc/PID/task/TID/children`
/// list; none when `pid` has gone (for the tests and the benchmark, which watch a
/// server's process tree).
pub fn child_processes(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// What `fork(2)` made of this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// This is the parent; the child has this pid.
    Parent(i32),
    /// This is the child.
    Child,
}

/// `mmap(MAP_SHARED | MAP_ANONYMOUS)`: `count` zeroed counters that every child forked
/// after this call shares with the process (the fork model's children count their
/// exchanges in them, with no system call). Never unmapped: they live as long as the
/// process. Not narrated: it carries counters, not a client.
pub fn shared_counters(count: usize) -> io::Result<&'static [std::sync::atomic::AtomicU64]> {
    let len = count.max(1) * std::mem::size_of::<std::sync::atomic::AtomicU64>();
    // SAFETY: a new anonymous mapping, at an address the kernel picks; no memory of ours
    // is touched.
    let at = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if at == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the mapping is `len` bytes, page-aligned (more than an AtomicU64's
    // alignment), zero-filled (a valid AtomicU64 is any 8 bytes), never unmapped (so
    // 'static), and reached only through atomics, in this process and its children.
    Ok(unsafe { std::slice::from_raw_parts(at.cast::<std::sync::atomic::AtomicU64>(), count) })
}

/// `socketpair(AF_UNIX, SOCK_STREAM)`, the fork model's children's error lines to the
/// parent: the parent's end (the first) made non-blocking (`fcntl(F_SETFL)`), so that
/// relaying what came never waits. Not narrated: it carries the log, not a client.
pub fn log_socketpair() -> io::Result<(std::os::unix::net::UnixStream, std::os::unix::net::UnixStream)> {
    let (parent, child) = std::os::unix::net::UnixStream::pair()?;
    parent.set_nonblocking(true)?;
    Ok((parent, child))
}

/// The drain delay before a stop (`--drain-delay`): traced, then slept in steps of at most
/// 20 ms (`nanosleep()`) until `delay` has passed or `cut_short` says to stop waiting (a
/// second signal), then traced as over.
pub fn sleep_draining(delay: Duration, tracer: &Tracer, mut cut_short: impl FnMut() -> bool) {
    if tracer.on() {
        tracer.emit(Event::Draining { delay });
    }
    let until = std::time::Instant::now() + delay;
    while std::time::Instant::now() < until && !cut_short() {
        std::thread::sleep(
            until
                .saturating_duration_since(std::time::Instant::now())
                .min(Duration::from_millis(20)),
        );
    }
    if tracer.on() {
        tracer.emit(Event::Drained);
    }
}

/// `fork(2)`, traced on both sides. Only safe in a process with one thread: the child
/// gets that thread alone, and any lock another thread held stays locked in it for ever.
/// The caller checks (see the fork model).
pub fn fork(tracer: &Tracer) -> io::Result<Forked> {
    // SAFETY: fork(2) takes no arguments; the caller has made sure the process has one
    // thread, so the child's copy of memory is consistent.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => {
            let e = io::Error::last_os_error();
            super::trace_failure(tracer, crate::error::Step::Fork, None, None, &e);
            Err(e)
        }
        0 => {
            let me = std::process::id();
            // From now on this process's lines say which child made them.
            super::tracer::in_child(me);
            if tracer.on() {
                tracer.emit(Event::Fork {
                    child: i32::try_from(me).unwrap_or(0),
                    in_child: true,
                });
            }
            Ok(Forked::Child)
        }
        child => {
            if tracer.on() {
                tracer.emit(Event::Fork {
                    child,
                    in_child: false,
                });
            }
            Ok(Forked::Parent(child))
        }
    }
}

/// How a reaped child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    /// Its pid.
    pub pid: i32,
    /// Its exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
}

/// `waitpid(-1, WNOHANG)`: a child that has ended, reaped (so it leaves no zombie), or
/// `None` when none has (or there are none).
pub fn reap_child(tracer: &Tracer) -> Option<Reaped> {
    let mut status = 0;
    // SAFETY: `status` is a valid int for waitpid(2) to write.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
    if pid <= 0 {
        return None;
    }
    let reaped = Reaped {
        pid,
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
    };
    if tracer.on() {
        tracer.emit(Event::Waitpid {
            pid,
            code: reaped.code,
            signal: reaped.signal,
        });
    }
    Some(reaped)
}

/// `kill(pid, SIGTERM)`: tells a child to stop (it keeps the grace).
pub fn stop_child(pid: i32) {
    // SAFETY: kill(2) takes two integers.
    unsafe { libc::kill(pid, libc::SIGTERM) };
}

/// `kill(pid, SIGKILL)`: ends a child that outlived the grace and its margin.
pub fn kill_child(pid: i32) {
    // SAFETY: kill(2) takes two integers.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// `close(2)` of the child's copy of the listening socket after `fork()`: the child
/// serves one client; the parent goes on accepting with its own copy.
pub fn close_copy_in_child(listener: TcpListener, tracer: &Tracer) {
    let fd = listener.as_raw_fd();
    drop(listener);
    if tracer.on() {
        tracer.emit(Event::CloseCopy { fd, in_child: true });
    }
}

/// `close(2)` of a child's copy of the listening socket when the child holds it only by
/// reference (the fork model's scrape child, which `_exit`s right after its answer),
/// traced as [`close_copy_in_child`].
pub fn close_borrowed_copy_in_child(listener: &TcpListener, tracer: &Tracer) {
    let fd = listener.as_raw_fd();
    // SAFETY: the caller is a child that ends with `_exit` (`exit_child`) without using or
    // dropping `listener` again, so the descriptor is closed once and never used after.
    unsafe { libc::close(fd) };
    if tracer.on() {
        tracer.emit(Event::CloseCopy { fd, in_child: true });
    }
}

/// `_exit(2)` after the child's exchange, traced: no destructor, no at-exit handler runs
/// (nothing of the parent's may be flushed or closed twice from here).
pub fn exit_child(code: i32, tracer: &Tracer) -> ! {
    if tracer.on() {
        tracer.emit(Event::Exit { code });
    }
    // SAFETY: _exit(2) ends the process; nothing runs after it.
    unsafe { libc::_exit(code) }
}

/// Address space a new client thread must leave free besides its stack: what the
/// server's other allocations may still need when a limit (`RLIMIT_AS`) is near.
const THREAD_HEADROOM: usize = 16 << 20;

/// `pthread_create()` of a detached thread with a `stack`-byte stack that serves the
/// client on `fd`: the thread's first act is to trace that it does, as this server's
/// thread number `number`. An error (`EAGAIN`, `ENOMEM`) means no thread was started,
/// and `serve` was dropped.
///
/// Not std's thread builder: each of its threads maps an alternate signal stack for its
/// stack-overflow message as it starts, and one that cannot (an address-space limit
/// reached meanwhile) panics where no panic can unwind, which aborts the process. Here a
/// thread starts whole or not at all; and it is not started when it would leave less than
/// 16 MiB of address space (a probe `mmap()` of that much more than its
/// stack, unmapped at once), so that the server's other allocations do not fail for it.
pub fn spawn_client_thread<F>(stack: usize, tracer: &Tracer, fd: i32, number: u64, serve: F) -> io::Result<()>
where
    F: FnOnce() + Send + 'static,
{
    let began = tracer.begin();
    let t = tracer.clone();
    let body: Box<dyn FnOnce() + Send> = Box::new(move || {
        if t.on() {
            t.emit_since(
                began,
                Event::Thread {
                    fd,
                    thread: number,
                    new: true,
                },
            );
        }
        serve();
    });
    let stack = stack.max(libc::PTHREAD_STACK_MIN);
    probe_address_space(stack + THREAD_HEADROOM)?;
    spawn_thread(c"client", stack, body)
}

/// Whether `len` bytes of address space are free: `mmap(PROT_NONE)` and `munmap()`.
fn probe_address_space(len: usize) -> io::Result<()> {
    // SAFETY: a new private anonymous mapping with no access, at an address the kernel
    // chooses; nothing else refers to it, and it is unmapped before returning.
    let probe = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if probe == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: unmaps exactly the mapping made above.
    unsafe { libc::munmap(probe, len) };
    Ok(())
}

/// `pthread_create()` of a detached thread named `name` (at most 15 bytes) with a
/// `stack`-byte stack running `body`; on failure `body` is dropped. Unlike std's
/// threads, one that cannot be made whole is an error here, never an abort (see
/// [`spawn_client_thread`]).
pub fn spawn_thread(
    name: &'static std::ffi::CStr,
    stack: usize,
    body: Box<dyn FnOnce() + Send>,
) -> io::Result<()> {
    type Body = (&'static std::ffi::CStr, Box<dyn FnOnce() + Send>);
    extern "C" fn start(arg: *mut libc::c_void) -> *mut libc::c_void {
        // SAFETY: `arg` is the box spawn_thread leaked for this thread alone.
        let (name, body) = *unsafe { Box::from_raw(arg.cast::<Body>()) };
        // SAFETY: prctl(2) with PR_SET_NAME reads a NUL-terminated name (the kernel keeps
        // its first 15 bytes).
        unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
        // A panic ends this thread only, as a std thread's does (the panic hook has
        // printed it); it must not unwind into pthread's C frames.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body));
        std::ptr::null_mut()
    }
    let stack = stack.max(libc::PTHREAD_STACK_MIN);
    let arg = Box::into_raw(Box::new((name, body)));
    // SAFETY: pthread_attr_t is plain old data, which pthread_attr_init then sets up.
    let mut attr: libc::pthread_attr_t = unsafe { std::mem::zeroed() };
    // SAFETY: the attribute calls take the attribute object initialised by the first;
    // pthread_create takes it, `start` and the leaked box, which the new thread owns from
    // then on; the object is destroyed once the thread is created (or not).
    let rc = unsafe {
        let mut rc = libc::pthread_attr_init(&mut attr);
        if rc == 0 {
            rc = libc::pthread_attr_setstacksize(&mut attr, stack);
            if rc == 0 {
                rc = libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
            }
            if rc == 0 {
                let mut thread: libc::pthread_t = 0;
                rc = libc::pthread_create(&mut thread, &attr, start, arg.cast());
            }
            libc::pthread_attr_destroy(&mut attr);
        }
        rc
    };
    if rc != 0 {
        // SAFETY: no thread was created: the box is still this function's.
        drop(unsafe { Box::from_raw(arg) });
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// `mallopt(M_ARENA_MAX, N)` (glibc): at most one malloc arena per CPU (2 at least).
/// glibc gives threads up to eight arenas per CPU, each reserving 64 MiB of address space
/// as it is made; a thread-per-client server under an address-space limit (`ulimit -v`,
/// `prlimit --as`) would spend it on arenas instead of clients. Nothing to do with
/// another C library.
pub fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    {
        let cpus = std::thread::available_parallelism().map_or(2, usize::from).max(2);
        let arenas = libc::c_int::try_from(cpus).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt(3) takes two integers and changes only the allocator's settings.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    }
}

/// A thread that was waiting for work (`pthread_cond_wait()`, through std's condition
/// variable) was handed the client on `fd`: traced from that thread.
pub fn trace_handed_over(tracer: &Tracer, fd: i32, number: u64) {
    if tracer.on() {
        tracer.emit(Event::Thread {
            fd,
            thread: number,
            new: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passed_socket_must_be_a_listening_tcp_socket() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (_, got) = check_listener(l, &Tracer::off()).unwrap();
        assert_eq!(got, addr);
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // SAFETY: the descriptor is handed from the UDP socket to the listener type only
        // to be checked; check_listener gives it back untouched on failure, and the UDP
        // socket is forgotten meanwhile so that it is closed once.
        let fake = unsafe { TcpListener::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(udp)) };
        let e = check_listener(fake, &Tracer::off()).unwrap_err();
        assert!(e.to_string().contains("not a listening TCP socket"), "{e}");
    }

    #[test]
    fn child_processes_lists_a_child_and_nothing_for_a_gone_pid() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let kids = child_processes(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(kids.contains(&child.id()), "{kids:?}");
        assert!(child_processes(u32::MAX).is_empty());
    }

    #[test]
    fn this_test_process_has_threads() {
        assert!(thread_count().unwrap() >= 1);
    }

    #[test]
    fn cpu_time_grows_with_work() {
        // Spin until the process's CPU time has grown by 10 ms; on a loaded machine that
        // takes longer than 10 ms of wall time, so the bound is generous (5 s), and a
        // cpu_time() that stood still would reach it.
        let (user0, sys0) = cpu_time().unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(5);
        let mut spins = 0u64;
        let grew = loop {
            for _ in 0..10_000 {
                spins = std::hint::black_box(spins + 1);
            }
            let (user1, sys1) = cpu_time().unwrap();
            if user1 + sys1 >= user0 + sys0 + Duration::from_millis(10) {
                break true;
            }
            if std::time::Instant::now() >= until {
                break false;
            }
        };
        assert!(grew, "CPU time did not grow in 5 s of spinning ({spins} spins)");
    }

    #[test]
    fn the_soft_descriptor_limit_ends_at_the_hard_one() {
        let soft = raise_nofile_limit().unwrap();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: as above.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
        assert_eq!(soft, limit.rlim_cur);
        assert_eq!(limit.rlim_cur, limit.rlim_max);
    }
}
