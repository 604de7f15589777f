//! `--agent-port`: answers HAProxy's agent check (`agent-check` in HAProxy's manual), so
//! that a balancer stops sending new clients before the server stops taking them. Each
//! connection gets one line and is closed: `up ready` while serving, `drain` once a stop
//! has begun (HAProxy then sends no new connection, and lets the ones it has finish).
//!
//! The agent has its own listening socket and thread. Its calls are not traced (a check
//! every 100 ms would bury the trace); the moment it starts saying `drain` is.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use hello_proto::sys::{self, Tracer};
use hello_proto::{Error, Step};

/// The agent's answer while the server serves: operational (`up`) and taking new
/// connections (`ready`, which also ends a `drain` an earlier instance reported).
pub const SERVING: &[u8] = b"up ready\n";
/// The agent's answer once a stop has begun.
pub const DRAINING: &[u8] = b"drain\n";

/// The running agent.
pub struct Agent {
    local: SocketAddr,
    draining: Arc<AtomicBool>,
}

impl Agent {
    /// Binds `addr`, listens with `backlog` (the server's `--backlog`: a balancer's checks
    /// come in bursts as its clients do), and answers on a thread of its own for as long
    /// as the process lives.
    pub fn start(addr: SocketAddr, backlog: i32) -> Result<Agent, Error> {
        let listener = sys::listen_tcp(addr, backlog, &Tracer::off())?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::new(Step::Getsockname, addr, e))?;
        let draining = Arc::new(AtomicBool::new(false));
        let state = Arc::clone(&draining);
        thread::Builder::new()
            .name("agent".into())
            .spawn(move || answer(&listener, &state))
            .map_err(|e| Error::new(Step::Spawn, local, e))?;
        Ok(Agent { local, draining })
    }

    /// The address the agent answers on.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// From now on, answer `drain`.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }
}

/// One line per connection, for ever. A check that cannot be answered is the balancer's
/// to retry; nothing here ends the server.
fn answer(listener: &TcpListener, draining: &AtomicBool) {
    let quiet = Tracer::off();
    loop {
        let Ok((stream, _)) = sys::accept(listener, false, &quiet) else {
            // Out of descriptors, or a connection that died in the queue.
            thread::sleep(Duration::from_millis(50));
            continue;
        };
        let line = if draining.load(Ordering::SeqCst) {
            DRAINING
        } else {
            SERVING
        };
        // A line this short always fits an idle socket's buffer; a peer that is gone does
        // not matter.
        let _ = stream.send(line, true);
        let _ = stream.shutdown_write();
        stream.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpStream;

    fn ask(addr: SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut line = String::new();
        s.read_to_string(&mut line).unwrap();
        line
    }

    #[test]
    fn up_ready_then_drain() {
        let agent = Agent::start("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        assert_eq!(ask(agent.local()), "up ready\n");
        agent.drain();
        assert_eq!(ask(agent.local()), "drain\n");
        assert_eq!(ask(agent.local()), "drain\n");
    }
}
