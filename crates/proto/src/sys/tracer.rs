//! Where trace events go: nowhere (the default), or one line each on stderr.

use std::io::{self, Write as _};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::trace::{Event, Lang, Role, render_as};

#[derive(Debug)]
struct Sink {
    /// Who makes the calls: `server`, `client`, or a server's worker, `server#2`.
    who: String,
    lang: Lang,
}

/// Where trace events go: nowhere (the default), or stderr. Cloning is cheap (an `Arc`).
#[derive(Debug, Clone, Default)]
pub struct Tracer(Option<Arc<Sink>>);

impl Tracer {
    /// A tracer that prints nothing.
    pub fn off() -> Tracer {
        Tracer(None)
    }

    /// A tracer that writes one line per event to stderr.
    pub fn stderr(role: Role, lang: Lang) -> Tracer {
        let who = match role {
            Role::Server => "server",
            Role::Client => "client",
        };
        Tracer(Some(Arc::new(Sink {
            who: who.to_string(),
            lang,
        })))
    }

    /// The same tracer for worker `n` (from 1) of a server with several: its lines say
    /// `server#n` where the others say `server`.
    pub fn for_worker(&self, n: usize) -> Tracer {
        match &self.0 {
            Some(sink) => Tracer(Some(Arc::new(Sink {
                who: format!("{}#{n}", sink.who),
                lang: sink.lang,
            }))),
            None => Tracer(None),
        }
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

    /// Prints one event (a no-op when off).
    #[inline]
    pub fn emit(&self, event: Event<'_>) {
        if let Some(sink) = &self.0 {
            let line = render_as(&sink.who, sink.lang, clock(), &event);
            // One write(2) per line keeps lines whole when threads trace at once; a closed
            // stderr is not worth failing the exchange for.
            let _ = io::stderr().lock().write_all(line.as_bytes());
        }
    }
}

/// Wall-clock time of day (UTC) with microseconds: `03:41:07.123456`. Both programs use
/// the same clock, so their lines can be merged in the order they happened.
fn clock() -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let s = now.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:06}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        now.subsec_micros()
    )
}
