//! hello-proto: what hello-server and hello-client share.
//!
//! Pure, with no I/O: [`addr`] (ports, hosts, durations as typed), [`error`] (the
//! step-tagged error), [`wire`] (the bytes of hello and echo), [`conn`] (the life of one
//! served connection, as a state machine), [`proxy`] (the PROXY protocol header a
//! balancer sends), [`startup`] (the server's start-up lines, written and read back),
//! [`trace`] (how each socket call is worded, in English and Korean), [`kernel`]
//! (captured frames and TCP states, as data), [`utc`] (a Unix time as a UTC date) and
//! [`words`] (a count and its noun, as English says them). Every system call is in one
//! module, [`sys`]: the socket set-up, the traced calls on a connection, the models' waits
//! (`select`, `epoll`, io_uring), processes and threads, the lesson's own calls, and the
//! stderr sink of the trace. `cli` (feature `cli`) holds the command-line options both
//! programs share.
//! ARCHITECTURE.md draws the map.

// Elsewhere the build stops here with this one message, and nothing else is compiled
// (every item below is Linux only), so it is not lost in a wall of errors.
#[cfg(not(target_os = "linux"))]
compile_error!(
    "hello-sockets builds on Linux only: it relies on send(MSG_MORE), accept4(SOCK_NONBLOCK), \
     epoll, connect(AF_UNSPEC) as a reset, and /proc (see docs/development.md, \"Platform\")"
);

#[cfg(target_os = "linux")]
pub mod addr;
#[cfg(all(target_os = "linux", feature = "cli"))]
pub mod cli;
#[cfg(target_os = "linux")]
pub mod conn;
#[cfg(target_os = "linux")]
pub mod error;
#[cfg(target_os = "linux")]
pub mod kernel;
#[cfg(target_os = "linux")]
pub mod proxy;
#[cfg(target_os = "linux")]
pub mod startup;
#[cfg(target_os = "linux")]
pub mod sys;
#[cfg(target_os = "linux")]
pub mod trace;
#[cfg(target_os = "linux")]
pub mod utc;
#[cfg(target_os = "linux")]
pub mod wire;
#[cfg(target_os = "linux")]
pub mod words;

#[cfg(target_os = "linux")]
pub use error::{Cause, Error, Result, Step};
