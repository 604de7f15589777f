//! hello-proto: what hello-server and hello-client share.
//!
//! Pure, with no I/O: [`addr`] (ports, hosts, durations as typed), [`error`] (the
//! step-tagged error), [`wire`] (the bytes of hello and echo), [`conn`] (the life of one
//! served connection, as a state machine), [`proxy`] (the PROXY protocol header a
//! balancer sends) and [`trace`] (how each socket call is worded,
//! in English and Korean). Every system call is in one module, [`sys`]: the socket
//! set-up, the traced calls on a connection, and the stderr sink of the trace.
//! ARCHITECTURE.md draws the map.

#[cfg(not(target_os = "linux"))]
compile_error!(
    "hello-sockets builds on Linux only: it relies on MSG_MORE, accept4(SOCK_NONBLOCK), \
     connect(AF_UNSPEC) as a reset, and /proc (see README.md, \"Platform\")"
);

pub mod addr;
#[cfg(feature = "cli")]
pub mod cli;
pub mod conn;
pub mod error;
pub mod proxy;
pub mod sys;
pub mod trace;
pub mod wire;

pub use error::{Cause, Error, Result, Step};
