//! Where trace events go: nowhere (the default), or one line each on stderr, stamped with
//! the time the call was made and how long it took: text for a reader, or a JSON object
//! for a program (`--trace-format json`). A lesson may also ask a traced program to stop
//! before each call it makes (`HELLO_STEP`, see [`STEP_VAR`]).

use std::collections::BTreeMap;
use std::io::{self, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::trace::record::{self, Record};
use crate::trace::{Event, Format, Lang, Role, Selection, call_name, left_out_line, render, textbook};

#[derive(Debug)]
struct Sink {
    /// Who makes the calls: `server`, `client`, or a server's worker, `server#2`.
    who: String,
    lang: Lang,
    shown: Selection,
    format: Format,
    /// The lines, when they are collected instead of written (see [`Tracer::collect`]).
    collected: Option<Arc<Mutex<String>>>,
    /// With [`Selection::Textbook`]: the calls left out, by name, for [`Tracer::finish`]
    /// (shared by a server's workers).
    left_out: Arc<Mutex<BTreeMap<String, u64>>>,
    /// With [`STEP_VAR`] set: the lesson's control socket, told of each call before it is
    /// made (shared by a server's workers; dropped when the lesson goes away).
    step: Option<Arc<Mutex<Option<UnixStream>>>>,
}

/// The environment variable that makes a traced program stop before each call that
/// [`Tracer::before`] announces (the `--textbook` calls): the path of a Unix stream
/// socket the lesson (`cargo xtask demo --step`) listens on. The program connects once,
/// when its tracer is made; before each such call it writes one line,
/// `step\tWHO\tCALL\tC-LINE\n` (`step\tserver\taccept\tclnt_sock = accept(…);`), and waits
/// for one byte back before it makes the call. If the socket cannot be reached, or the
/// lesson closes it, the program says so once and runs on without stopping.
pub const STEP_VAR: &str = "HELLO_STEP";

/// The lowest descriptor the control socket may have: far above the program's own, so
/// that its sockets get the numbers they get in the C program (`serv_sock` is 3).
const STEP_FD_FLOOR: libc::c_int = 100;

/// `socket` moved to a descriptor of at least [`STEP_FD_FLOOR`] (`fcntl(F_DUPFD_CLOEXEC)`),
/// its low one closed.
fn out_of_the_way(socket: UnixStream) -> io::Result<UnixStream> {
    use std::os::fd::{AsRawFd as _, FromRawFd as _};
    // SAFETY: F_DUPFD_CLOEXEC on an open descriptor we own takes no pointer.
    let fd = unsafe { libc::fcntl(socket.as_raw_fd(), libc::F_DUPFD_CLOEXEC, STEP_FD_FLOOR) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just made by fcntl(2), so it is open and ours alone; `socket`
    // (the low descriptor) is closed when it is dropped here.
    Ok(unsafe { UnixStream::from_raw_fd(fd) })
}

/// Connects to the lesson's control socket if [`STEP_VAR`] names one.
fn step_socket() -> Option<Arc<Mutex<Option<UnixStream>>>> {
    let path = std::env::var_os(STEP_VAR)?;
    match UnixStream::connect(&path).and_then(out_of_the_way) {
        Ok(s) => Some(Arc::new(Mutex::new(Some(s)))),
        Err(e) => {
            write_line(&format!(
                "{STEP_VAR}={}: {e}; running without stopping\n",
                path.to_string_lossy()
            ));
            None
        }
    }
}

fn role_who(role: Role) -> String {
    crate::trace::role_name(role).to_string()
}

/// The process id of a child made by `fork()`, once this process is one (0: it is not):
/// its lines then name it, `server[4242]`, since parent and child write to one stderr.
static CHILD: AtomicU32 = AtomicU32::new(0);

/// Called in a child just after `fork()`: its trace lines name it from now on.
pub(super) fn in_child(pid: u32) {
    CHILD.store(pid, Ordering::Relaxed);
}

/// Where trace events go: nowhere (the default), or stderr. Cloning is cheap (an `Arc`).
#[derive(Debug, Clone, Default)]
pub struct Tracer(Option<Arc<Sink>>);

/// When a traced call was made: taken by [`Tracer::begin`] just before the call, handed to
/// [`Tracer::emit_since`] with its result. Nothing (no clock read) when tracing is off.
#[derive(Debug, Clone, Copy)]
pub struct Began(Option<SystemTime>);

impl Tracer {
    /// A tracer that prints nothing.
    pub fn off() -> Tracer {
        Tracer(None)
    }

    /// A tracer that writes one line per event to stderr: every call, or with
    /// [`Selection::Textbook`] only the calls the textbook's program makes (the others are
    /// counted, and [`Tracer::finish`] says how many), as text or JSON.
    pub fn stderr(role: Role, lang: Lang, shown: Selection, format: Format) -> Tracer {
        Tracer(Some(Arc::new(Sink {
            who: role_who(role),
            lang,
            shown,
            format,
            collected: None,
            left_out: Arc::default(),
            step: step_socket(),
        })))
    }

    /// The same tracer for worker `n` (from 1) of a server with several: its lines say
    /// `server#n` where the others say `server`.
    pub fn for_worker(&self, n: usize) -> Tracer {
        match &self.0 {
            Some(sink) => Tracer(Some(Arc::new(Sink {
                who: format!("{}#{n}", sink.who),
                lang: sink.lang,
                shown: sink.shown,
                format: sink.format,
                collected: sink.collected.clone(),
                left_out: Arc::clone(&sink.left_out),
                step: sink.step.clone(),
            }))),
            None => Tracer(None),
        }
    }

    /// A tracer that keeps its lines (every call) in memory instead of writing them, for a
    /// program that traces a socket of its own beside the real programs' traces (`cargo
    /// xtask demo`'s silent client). The lines are the same as on stderr in `format`.
    pub fn collect(role: Role, lang: Lang, format: Format) -> (Tracer, Arc<Mutex<String>>) {
        let lines = Arc::new(Mutex::new(String::new()));
        let tracer = Tracer(Some(Arc::new(Sink {
            who: role_who(role),
            lang,
            shown: Selection::All,
            format,
            collected: Some(Arc::clone(&lines)),
            left_out: Arc::default(),
            step: None,
        })));
        (tracer, lines)
    }

    /// Whether events are printed; call sites check this before building an event.
    ///
    /// Built with `--cfg hello_no_trace` it is a constant `false`, so the compiler removes
    /// every hook: `cargo xtask bench` measures that build beside the normal one to show
    /// what the hooks cost when tracing is off.
    #[inline]
    pub fn on(&self) -> bool {
        !cfg!(hello_no_trace) && self.0.is_some()
    }

    /// The time a call is being made, for [`Tracer::emit_since`]; no clock is read when
    /// tracing is off.
    #[inline]
    pub fn begin(&self) -> Began {
        Began(self.on().then(SystemTime::now))
    }

    /// [`Tracer::begin`] of `call`, which the textbook's C program makes on line `src`:
    /// when a lesson steps through the program ([`STEP_VAR`]), it is told of the call first
    /// and the call waits until it says go on. Off, or not stepping, this is `begin()`.
    pub fn before(&self, call: &str, src: &str) -> Began {
        if let Some(step) = self
            .0
            .as_ref()
            .and_then(|sink| sink.step.as_ref().map(|s| (sink, s)))
        {
            let (sink, socket) = step;
            let mut held = socket.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(s) = held.as_mut() {
                let line = format!("step\t{}\t{call}\t{src}\n", sink.who);
                let mut go = [0u8; 1];
                let told = s.write_all(line.as_bytes()).and_then(|()| s.read_exact(&mut go));
                if let Err(e) = told {
                    write_line(&format!("{STEP_VAR}: {e}; running on without stopping\n"));
                    *held = None;
                }
            }
        }
        self.begin()
    }

    /// Prints one event of a call that took no time worth telling (made and returned
    /// now). A no-op when off.
    #[inline]
    pub fn emit(&self, event: Event<'_>) {
        if self.on() {
            self.emit_since(self.begin(), event);
        }
    }

    /// Prints one event of a call made at `began` that has just returned: the line shows
    /// when the call was made and how long it took. A no-op when off.
    pub fn emit_since(&self, began: Began, event: Event<'_>) {
        self.emit_line(began, event, None);
    }

    /// [`Tracer::emit_since`] of a call the textbook's C program makes on line `src`
    /// (`write(clnt_sock, message, sizeof(message));`): the line shows it beside the call
    /// (the JSON record in `src`).
    pub fn emit_from(&self, began: Began, event: Event<'_>, src: &str) {
        self.emit_line(began, event, Some(src));
    }

    fn emit_line(&self, began: Began, event: Event<'_>, src: Option<&str>) {
        let Some(sink) = &self.0 else {
            return;
        };
        let now = SystemTime::now();
        let start = began.0.unwrap_or(now);
        let took = now.duration_since(start).unwrap_or(Duration::ZERO);
        if sink.shown == Selection::Textbook && !textbook(&event) {
            let mut left_out = sink.left_out.lock().unwrap_or_else(PoisonError::into_inner);
            *left_out.entry(call_name(&event)).or_insert(0) += 1;
            return;
        }
        let child;
        let who = match CHILD.load(Ordering::Relaxed) {
            0 => sink.who.as_str(),
            pid => {
                child = format!("{}[{pid}]", sink.who);
                child.as_str()
            }
        };
        let line = match sink.format {
            Format::Text => render(who, sink.lang, &clock(start), took, &event, src),
            Format::Json => {
                let since = start.duration_since(UNIX_EPOCH).unwrap_or_default();
                let t_us = u64::try_from(since.as_micros()).unwrap_or(u64::MAX);
                let dur_us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
                let mut record = Record::of(who, sink.lang, t_us, dur_us, &event);
                record.src = src.map(str::to_string);
                record.line()
            }
        };
        if let Some(lines) = &sink.collected {
            lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push_str(&line);
            return;
        }
        write_line(&line);
    }

    /// At the end of the program: with [`Selection::Textbook`], one line counting the calls
    /// that were left out, by name (nothing if none were).
    pub fn finish(&self) {
        let Some(sink) = &self.0 else {
            return;
        };
        let left_out = sink.left_out.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(line) = left_out_line(&sink.who, sink.lang, &left_out) {
            match sink.format {
                Format::Text => write_line(&line),
                Format::Json => write_line(&record::left_out(&sink.who, &left_out, &line)),
            }
        }
    }
}

/// Writes one whole line to stderr with one `write(2)`: stderr is unbuffered, and
/// `write_all` of the whole line makes one call for any line a pipe takes at once (up to
/// `PIPE_BUF`, 4096 bytes; a trace line is far shorter), so lines stay whole when threads
/// or a fork model's processes trace at once and a reader never sees half a line. A
/// closed stderr is not worth failing the exchange for.
fn write_line(line: &str) {
    let _ = io::stderr().lock().write_all(line.as_bytes());
}

/// Wall-clock time of day (UTC) with microseconds: `03:41:07.123456`. Both programs use
/// the same clock, so their lines can be merged in the order they happened.
fn clock(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let s = since.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        since.subsec_micros()
    )
}
