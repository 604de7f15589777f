//! hello-proto: the vocabulary shared by hello-server and hello-client — addresses, the
//! step-tagged error, the wire format (pure, no I/O), the socket builders and the trace.

pub mod addr;
pub mod error;
pub mod sock;
pub mod trace;
pub mod wire;

pub use error::{Cause, Error, Result, Step};
