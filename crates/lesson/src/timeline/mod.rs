//! The causal timeline: both programs' calls in one order in which nothing is shown
//! before what caused it.
//!
//! Every traced call carries when it was made and how long it took, on the clock both
//! programs share. Ordering by either time alone is wrong: a blocked `read()` starts
//! before the `write()` that ends it, and a `write()` can return after the `read()` that
//! got its bytes. So the order is built from what *happened before* what:
//!
//! - each process's calls stay in the order it made them (calls of one process that
//!   overlap in time are its threads', which the trace names alike: no order between them);
//! - a `connect()` comes before the `accept()` that returned its connection;
//! - bytes are sent before they are received: a `read()` comes after the `write()` or
//!   `send()` that sent the last byte it got (TCP is a byte stream in each direction, so
//!   counting bytes on each side says which send that was);
//! - a FIN comes before the end of stream it causes (`shutdown()` or `close()` before
//!   the peer's `read() = 0`), an RST (the `close()` after `SO_LINGER` 0) before the
//!   ECONNRESET it causes, and the k-th datagram sent from one port to another before the
//!   k-th received;
//! - a fork model child's calls come after the `fork()` that made it;
//! - a readiness report comes after what made the socket ready: a `select()`, `poll()`
//!   or `epoll_wait()` that finds a listening socket readable comes after the
//!   `connect()` of the connection its process then accepts, and one that finds a
//!   connection readable after the send of the first byte not yet received, or else the
//!   FIN or RST (an io_uring completion is itself a receive or an accept, so the rules
//!   above place it);
//! - a call interrupted by a signal (`accept() = -1 EINTR` in the fork model's parent)
//!   comes after the `_exit()` of each child that began to exit before the call returned
//!   and whose SIGCHLD no earlier interruption took; a `waitpid()` after the `_exit()` of
//!   the child it reaped.
//!
//! What the kernel showed goes in the same order ([`build_seen`]): each packet captured on
//! `lo` after the call that caused it began (a SYN after its `connect()`, a segment after
//! the send of its last byte, a FIN after the `shutdown()` or `close()`, a datagram after
//! its `sendto()`) and before the call that needed it returned (an `accept()` after the
//! handshake's last ACK, a receive after the segment of its last byte, an end of stream
//! after the FIN, ECONNREFUSED after the ICMP port unreachable, a readiness report after
//! what made it ready), the packets and socket samples in the order the kernel stamped
//! them.
//!
//! Among the calls (and packets, and samples) free to come next, the one made first goes
//! first (a topological sort of those edges, earliest start first). [`check`] verifies an
//! order independently, by counting bytes, FINs, connects, datagrams, exits and the
//! packets shown as it walks the rows.
//!
//! Pure: traces and packets in, an order out.
//!
//! The work is split by concern, a file each: `meaning` (what each call does to a
//! connection: the socket behind each descriptor, the readiness reports, the signals'
//! causes), `crossings` (what crossed between the programs, inferred from the calls: the
//! arrows, the readiness edges, the packets each call needed), `seen` (what the kernel
//! showed: the packets and what each carries, their causes, the socket samples), `order`
//! (the topological sort, [`build`] and [`build_seen`]) and `check` (the independent
//! walk, [`check`]). Here: the types they share and [`Timeline`]'s walk of the picture
//! ([`Timeline::steps`]).

mod check;
mod crossings;
pub(crate) mod fixtures;
mod meaning;
mod order;
mod seen;

use hello_proto::trace::record::Record;

pub use check::check;
pub use order::{build, build_seen};
pub use seen::{Carries, Kernel, Placed, Sample, Seen, carries};

use crate::packets::Packet;

/// Which column a program is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A client, left.
    Client,
    /// The server, right.
    Server,
}

/// One program's traced calls (for the server: its children's too).
#[derive(Debug, Clone)]
pub struct Lane {
    /// How the lane is named in the picture: `client`, `client 2`, `server`.
    pub label: String,
    /// Its column.
    pub side: Side,
    /// Its calls, in the order its process(es) wrote them.
    pub calls: Vec<Record>,
}

/// A direction of a TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// From the client to the server.
    Up,
    /// From the server to the client.
    Down,
}

/// What one call means for the other program. Connections are named by the client's
/// port, datagrams by the ports they go from and to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sem {
    /// Nothing the other program sees.
    Local,
    /// `connect()` of the connection, to the server's port.
    Connect(u16, u16),
    /// `accept()` of the connection, from the listening socket's port (when its calls
    /// named it).
    Accept(u16, Option<u16>),
    /// Bytes sent.
    Send(u16, Dir, u64),
    /// Bytes received.
    Receive(u16, Dir, u64),
    /// End of stream received.
    Eof(u16, Dir),
    /// A FIN sent (`shutdown()`, or the `close()` of the last descriptor).
    Fin(u16, Dir),
    /// An RST sent: the `close()` after `SO_LINGER` 0.
    Reset(u16, Dir),
    /// The peer's RST found: a call failed with ECONNRESET.
    ResetSeen(u16, Dir),
    /// A datagram sent: from port, to port, bytes.
    DatagramOut(u16, u16, u64),
    /// A datagram received: from port, to port, bytes.
    DatagramIn(u16, u16, u64),
    /// A fork model child's `_exit()`: its parent gets SIGCHLD.
    Exit,
    /// A call a signal interrupted (EINTR).
    Interrupted,
    /// `waitpid()` reaped this child of the calling process.
    Reaped(i64),
    /// A connected UDP socket on this port was told ECONNREFUSED: an ICMP port
    /// unreachable came back.
    Refused(u16),
}

/// What a readiness report (`select()`, `poll()`, `epoll_wait()`) found ready, where the
/// process's next call on that socket takes it: a connection waiting in the accept
/// queue, or bytes, a FIN or an RST to receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A listening socket on this port has a connection to accept.
    Queue(u16),
    /// A connection has something to receive in this direction.
    Data(u16, Dir),
}

/// What crosses the network between two calls, as inferred from the calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// The three-way handshake behind `connect()` and `accept()`.
    Handshake,
    /// Data segments carrying these bytes.
    Data(u64),
    /// The FIN.
    Fin,
    /// An RST: the connection reset.
    Rst,
    /// One datagram of these bytes.
    Datagram(u64),
}

/// A call of the timeline: lane and index in it.
pub type At = (usize, usize);

/// An arrow of the picture: what went from one call to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrow {
    /// The sending call.
    pub from: At,
    /// The receiving call.
    pub to: At,
    /// What crossed.
    pub wire: Wire,
}

/// One step of the picture, top to bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// Something the kernel showed; for a packet, what it is.
    Seen(&'a Seen, Carries),
    /// A call.
    Call(At),
}
/// Both programs' calls in causal order, with what the kernel showed among them.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// The programs.
    pub lanes: Vec<Lane>,
    /// What each call means, per lane.
    pub sems: Vec<Vec<Sem>>,
    /// What each readiness report found ready, per lane and call (empty for others).
    pub wakes: Vec<Vec<Vec<Wake>>>,
    /// The calls in order.
    pub rows: Vec<At>,
    /// What crossed between calls, inferred from them.
    pub arrows: Vec<Arrow>,
    /// The exchange's port (0 when the kernel was not watched).
    pub port: u16,
    /// Whether every packet of the exchange was captured: then the packets in `seen` are
    /// the arrows, and [`check`] holds the calls to them.
    pub captured: bool,
    /// The packets and socket samples, in order, each placed among the rows.
    pub seen: Vec<Placed>,
    /// Packets captured on the exchange's port that belong to no connection or datagram
    /// of its calls (another program's, on a port number freed and taken again), left
    /// out.
    pub foreign: usize,
}

impl Timeline {
    /// When the first call of any lane was made: the picture's zero.
    pub fn origin(&self) -> u64 {
        self.lanes
            .iter()
            .flat_map(|l| l.calls.iter().map(|c| c.t_us))
            .min()
            .unwrap_or(0)
    }

    /// Who made the call at `at`, where the column alone does not say: a fork model
    /// child (`server[4242]`), a worker (`server#2`), or the lane when its column holds
    /// several (`client 2`).
    pub fn label(&self, (l, i): At) -> Option<&str> {
        let lane = &self.lanes[l];
        let call = &lane.calls[i];
        if call.who.contains(['[', '#']) {
            return Some(&call.who);
        }
        let shared = self.lanes.iter().filter(|o| o.side == lane.side).count() > 1;
        shared.then_some(lane.label.as_str())
    }

    /// The picture from top to bottom: each call, with what the kernel showed before
    /// it, each packet with what it is ([`carries`]; [`Carries::Other`] for a sample).
    pub fn steps(&self) -> Vec<Step<'_>> {
        let packets: Vec<Packet> = self
            .seen
            .iter()
            .filter_map(|p| match p.seen {
                Seen::Packet(p) => Some(p),
                Seen::Sockets(_) => None,
            })
            .collect();
        let mut kinds = carries(&packets, self.port).into_iter();
        let mut placed = self.seen.iter().peekable();
        let mut steps = Vec::with_capacity(self.rows.len() + self.seen.len());
        for row in 0..=self.rows.len() {
            while let Some(p) = placed.next_if(|p| p.before <= row) {
                let kind = match p.seen {
                    Seen::Packet(_) => kinds.next().unwrap_or(Carries::Other),
                    Seen::Sockets(_) => Carries::Other,
                };
                steps.push(Step::Seen(&p.seen, kind));
            }
            if let Some(&at) = self.rows.get(row) {
                steps.push(Step::Call(at));
            }
        }
        steps
    }

    /// The label of the client lane whose socket has port `k` (a connection's, or a
    /// datagram's source), where the client column holds several lanes.
    pub fn client_label(&self, k: u16) -> Option<&str> {
        let clients = self.lanes.iter().filter(|l| l.side == Side::Client).count();
        if clients < 2 {
            return None;
        }
        self.client_lane(k).map(|l| self.lanes[l].label.as_str())
    }

    /// The client lane whose calls own connection or datagram port `k`.
    pub fn client_lane(&self, k: u16) -> Option<usize> {
        let owns = |s: &Sem| matches!(*s, Sem::Connect(p, _) | Sem::DatagramOut(p, _, _) | Sem::Refused(p) if p == k);
        self.lanes
            .iter()
            .zip(&self.sems)
            .position(|(l, sems)| l.side == Side::Client && sems.iter().any(owns))
    }
}
