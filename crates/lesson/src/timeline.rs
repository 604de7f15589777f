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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use hello_proto::kernel::TcpSocket;
use hello_proto::trace::record::Record;

use crate::line::{Act, act};
use crate::packets::{Carried, Packet, flag};

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

/// TCP sockets as `sock_diag` showed them at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// When they were sampled, µs since the Unix epoch (the trace's and the capture's
    /// clock).
    pub t_us: u64,
    /// The exchange's sockets then.
    pub sockets: Vec<TcpSocket>,
}

/// What the kernel showed of an exchange, for [`build_seen`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kernel {
    /// The server's port (or the closed port a datagram went to): which end of a packet
    /// is the server.
    pub port: u16,
    /// Every packet of the exchange, in the order captured; `None` when they were not
    /// all captured (capture off, refused, or some lost): the arrows are then inferred.
    pub packets: Option<Vec<Packet>>,
    /// The sockets sampled, in time order.
    pub samples: Vec<Sample>,
}

/// Something the kernel showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A packet captured on `lo`.
    Packet(Packet),
    /// The sockets sampled.
    Sockets(Sample),
}

impl Seen {
    /// When the kernel stamped it.
    pub fn t_us(&self) -> u64 {
        match self {
            Seen::Packet(p) => p.t_us,
            Seen::Sockets(s) => s.t_us,
        }
    }
}

/// Something the kernel showed, placed among the calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// What it was.
    pub seen: Seen,
    /// The row it is drawn just before (`rows.len()`: after the last).
    pub before: usize,
}

/// One step of the picture, top to bottom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// Something the kernel showed; for a packet, what it is.
    Seen(&'a Seen, Carries),
    /// A call.
    Call(At),
}

/// What a captured packet is to the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carries {
    /// A TCP segment of connection `k` (the client's port) going `dir`: its flags and
    /// the stream offsets of its payload, `[start, end)` (0 is the first byte after the
    /// SYN; 0 and 0 for a segment whose SYN was not seen).
    Segment {
        /// The connection.
        k: u16,
        /// Its direction.
        dir: Dir,
        /// Its flags.
        flags: u8,
        /// The offset of its first byte.
        start: u64,
        /// The offset after its last byte.
        end: u64,
        /// A SYN sent again with the same number: the first got no answer.
        again: bool,
    },
    /// A UDP datagram from port to port, of so many bytes.
    Datagram(u16, u16, u64),
    /// An ICMP port unreachable quoting a datagram from port to port.
    Unreachable(u16, u16),
    /// Anything else.
    Other,
}

/// What each captured packet is, for an exchange whose server (or closed port) is
/// `port`: TCP offsets counted from each direction's SYN.
pub fn carries(packets: &[Packet], port: u16) -> Vec<Carries> {
    let mut isn: HashMap<(u16, Dir), u32> = HashMap::new();
    packets
        .iter()
        .map(|p| match p.carried {
            Carried::Tcp { flags, seq, .. } => {
                let (k, dir) = if p.dst.port() == port {
                    (p.src.port(), Dir::Up)
                } else {
                    (p.dst.port(), Dir::Down)
                };
                let mut again = false;
                if flags & flag::SYN != 0 {
                    again = isn.insert((k, dir), seq) == Some(seq);
                }
                let (start, end) = match isn.get(&(k, dir)) {
                    Some(&first) if flags & flag::SYN == 0 => {
                        let start = u64::from(seq.wrapping_sub(first).wrapping_sub(1));
                        (start, start + u64::from(p.len))
                    }
                    _ => (0, 0),
                };
                Carries::Segment {
                    k,
                    dir,
                    flags,
                    start,
                    end,
                    again,
                }
            }
            Carried::Udp => Carries::Datagram(p.src.port(), p.dst.port(), u64::from(p.len)),
            Carried::PortUnreachable { from, to } => Carries::Unreachable(from.port(), to.port()),
            Carried::Icmp { .. } => Carries::Other,
        })
        .collect()
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

/// A socket of one process, as the calls on its descriptor reveal it.
#[derive(Debug, Default, Clone, Copy)]
struct Socket {
    udp: bool,
    /// TCP: the client's port (the connection's name); UDP: its own port.
    port: Option<u16>,
    /// The last `setsockopt(SO_LINGER 0)`: the close sends RST, not FIN.
    reset: bool,
    /// `listen()` was called on it.
    listening: bool,
}

/// Whether `earlier`, a call its process traced before `call`, comes before it: it had
/// returned when `call` began. (One thread's calls never overlap; calls of one process
/// that do are its threads', which the trace does not tell apart.)
fn before_in_process(earlier: &Record, call: &Record) -> bool {
    earlier.end() <= call.t_us
}

/// The process a call's `who` names a child of: `server` for `server[4242]`.
fn parent_of(who: &str) -> Option<&str> {
    who.strip_suffix(']')
        .and_then(|w| w.rsplit_once('['))
        .map(|(parent, _)| parent)
}

/// Works out what each call of a lane means: which socket each descriptor is at each
/// call (descriptors are reused after `close()`, and a fork model child starts with a
/// copy of its parent's), then each socket's port; and what each readiness report found.
fn meanings(lane: &Lane) -> (Vec<Sem>, Vec<Vec<Wake>>) {
    let acts: Vec<Act> = lane.calls.iter().map(act).collect();
    let mut sockets: Vec<Socket> = Vec::new();
    // Per call: the socket it acts on; for an accept, also the listening socket.
    let mut on: Vec<Option<usize>> = vec![None; lane.calls.len()];
    let mut listener: Vec<Option<usize>> = vec![None; lane.calls.len()];
    // Per readiness report: the sockets found ready to read.
    let mut ready: Vec<Vec<usize>> = vec![Vec::new(); lane.calls.len()];
    // The descriptor tables, per process.
    let mut tables: HashMap<&str, HashMap<i32, usize>> = HashMap::new();
    // A parent's table at each fork, by the child's name (`server[4242]`).
    let mut at_fork: HashMap<String, HashMap<i32, usize>> = HashMap::new();
    // The close just after a fork closes a copy: no FIN.
    let mut copy_close: Vec<bool> = vec![false; lane.calls.len()];
    let mut after_fork: HashMap<&str, bool> = HashMap::new();
    // Parents first: a child starts with its parent's table as it was at the fork.
    let mut order: Vec<usize> = (0..lane.calls.len()).collect();
    order.sort_by_key(|&i| parent_of(&lane.calls[i].who).is_some());
    for i in order {
        let call = &lane.calls[i];
        let who = call.who.as_str();
        if !tables.contains_key(who) {
            let inherited = at_fork.remove(who).unwrap_or_default();
            tables.insert(who, inherited);
        }
        let Some(table) = tables.get_mut(who) else {
            continue;
        };
        let act = &acts[i];
        let fork_before = after_fork.insert(who, matches!(act, Act::Forked { .. } | Act::InChild));
        match *act {
            Act::Socket { fd, udp } => {
                sockets.push(Socket {
                    udp,
                    ..Socket::default()
                });
                table.insert(fd, sockets.len() - 1);
                on[i] = Some(sockets.len() - 1);
            }
            Act::Accept {
                listener: from,
                fd,
                peer,
            } => {
                listener[i] = table.get(&from).copied();
                sockets.push(Socket {
                    port: Some(peer),
                    ..Socket::default()
                });
                table.insert(fd, sockets.len() - 1);
                on[i] = Some(sockets.len() - 1);
            }
            Act::Forked { child } => {
                at_fork.insert(format!("{who}[{child}]"), table.clone());
            }
            Act::Close { fd } => {
                on[i] = table.remove(&fd);
                copy_close[i] = fork_before == Some(true);
            }
            Act::Listen { fd }
            | Act::Bind { fd, .. }
            | Act::Connect { fd, .. }
            | Act::LocalPort { fd, .. }
            | Act::Send { fd, .. }
            | Act::Receive { fd, .. }
            | Act::Eof { fd }
            | Act::Reset { fd }
            | Act::Shutdown { fd }
            | Act::Linger0 { fd }
            | Act::SendTo { fd, .. }
            | Act::RecvFrom { fd, .. } => on[i] = table.get(&fd).copied(),
            Act::Ready { ref fds } => {
                ready[i] = fds.iter().filter_map(|fd| table.get(fd).copied()).collect();
            }
            Act::Refused { fd } => on[i] = table.get(&fd).copied(),
            Act::InChild | Act::Exit | Act::Interrupted | Act::Reaped { .. } | Act::Other => {}
        }
        // A socket's port, as its calls reveal it.
        if let Some(s) = on[i].and_then(|s| sockets.get_mut(s)) {
            match *act {
                Act::Bind { port, .. } | Act::LocalPort { port, .. } if s.port.is_none() => {
                    s.port = Some(port)
                }
                Act::Linger0 { .. } => s.reset = true,
                Act::Listen { .. } => s.listening = true,
                _ => {}
            }
        }
    }
    let (out, into) = match lane.side {
        Side::Client => (Dir::Up, Dir::Down),
        Side::Server => (Dir::Down, Dir::Up),
    };
    let sems = lane
        .calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            match acts[i] {
                Act::Exit if parent_of(&call.who).is_some() => return Sem::Exit,
                Act::Interrupted => return Sem::Interrupted,
                Act::Reaped { child } => return Sem::Reaped(child),
                _ => {}
            }
            let Some(s) = on[i].and_then(|s| sockets.get(s)) else {
                return Sem::Local;
            };
            let Some(port) = s.port else {
                return Sem::Local;
            };
            let from_port = listener[i].and_then(|s| sockets.get(s)).and_then(|s| s.port);
            match (&acts[i], s.udp) {
                (Act::Connect { port: to, .. }, false) => Sem::Connect(port, *to),
                (Act::Accept { .. }, false) => Sem::Accept(port, from_port),
                (Act::Send { n, .. }, false) => Sem::Send(port, out, *n),
                (Act::Receive { n, .. }, false) => Sem::Receive(port, into, *n),
                (Act::Eof { .. }, false) => Sem::Eof(port, into),
                (Act::Shutdown { .. }, false) => Sem::Fin(port, out),
                (Act::Close { .. }, false) if copy_close[i] => Sem::Local,
                (Act::Close { .. }, false) if s.reset => Sem::Reset(port, out),
                (Act::Close { .. }, false) => Sem::Fin(port, out),
                (Act::Reset { .. }, false) => Sem::ResetSeen(port, into),
                (Act::SendTo { port: to, n, .. }, true) => Sem::DatagramOut(port, *to, *n),
                (Act::RecvFrom { port: from, n, .. }, true) => Sem::DatagramIn(*from, port, *n),
                (Act::Refused { .. }, true) => Sem::Refused(port),
                _ => Sem::Local,
            }
        })
        .collect();
    // A readiness report counts for a socket when the process's next call on it takes
    // what was ready: an accept from a listening socket, a receive (bytes, end of
    // stream, a reset) on a connection. (A listening socket shut down at a stop is
    // readable too, with nothing to accept.)
    let wakes = (0..lane.calls.len())
        .map(|i| {
            let who = &lane.calls[i].who;
            ready[i]
                .iter()
                .filter_map(|&sock| {
                    let s = sockets.get(sock)?;
                    let port = s.port?;
                    let next = (i + 1..lane.calls.len()).find(|&j| {
                        lane.calls[j].who == *who && (on[j] == Some(sock) || listener[j] == Some(sock))
                    })?;
                    match acts[next] {
                        Act::Accept { .. } if s.listening && listener[next] == Some(sock) => {
                            Some(Wake::Queue(port))
                        }
                        Act::Receive { .. } | Act::Eof { .. } | Act::Reset { .. }
                            if !s.udp && !s.listening =>
                        {
                            Some(Wake::Data(port, into))
                        }
                        _ => None,
                    }
                })
                .collect()
        })
        .collect();
    (sems, wakes)
}

/// Per lane: the child exits a call interrupted by a signal comes after (see the module's
/// doc), as `(interrupted call, exit)` pairs of call indexes.
fn interruptions(lane: &Lane, sems: &[Sem]) -> Vec<(usize, usize)> {
    let mut taken = vec![false; lane.calls.len()];
    let mut pairs = Vec::new();
    for (i, call) in lane.calls.iter().enumerate() {
        if sems[i] != Sem::Interrupted {
            continue;
        }
        for (j, exit) in lane.calls.iter().enumerate() {
            if sems[j] == Sem::Exit
                && !taken[j]
                && parent_of(&exit.who) == Some(call.who.as_str())
                && exit.t_us <= call.end()
            {
                taken[j] = true;
                pairs.push((i, j));
            }
        }
    }
    pairs
}

/// Per lane: each `waitpid()` and the `_exit()` of the child it reaped, as `(waitpid,
/// exit)` pairs of call indexes.
fn reapings(lane: &Lane, sems: &[Sem]) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for (i, call) in lane.calls.iter().enumerate() {
        let Sem::Reaped(child) = sems[i] else {
            continue;
        };
        let who = format!("{}[{child}]", call.who);
        if let Some(j) = (0..lane.calls.len()).find(|&j| sems[j] == Sem::Exit && lane.calls[j].who == who) {
            pairs.push((i, j));
        }
    }
    pairs
}

/// A packet a call needed before it could return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// The handshake's last ACK of connection `k`.
    Handshake(u16),
    /// The segment carrying the byte at this offset.
    Byte(u16, Dir, u64),
    /// The FIN.
    Fin(u16, Dir),
    /// The RST.
    Rst(u16, Dir),
    /// Something to receive after so many bytes: the segment with the next byte, else
    /// the FIN, else the RST.
    Ready(u16, Dir, u64),
    /// The n-th datagram from port to port.
    Datagram(u16, u16, usize),
    /// The ICMP port unreachable for a datagram from this port.
    Unreachable(u16),
}

/// What the calls send, found by one walk: each connection's `connect()`, each
/// direction's sends (row, total bytes after it), first FIN and first RST, and the
/// datagrams from port to port.
#[derive(Default)]
struct Senders {
    connects: HashMap<u16, At>,
    sends: HashMap<(u16, Dir), Vec<(At, u64)>>,
    fins: HashMap<(u16, Dir), At>,
    resets: HashMap<(u16, Dir), At>,
    datagrams: HashMap<(u16, u16), Vec<At>>,
}

impl Senders {
    fn of(sems: &[Vec<Sem>]) -> Senders {
        let mut s = Senders::default();
        for (lane, sem) in sems.iter().enumerate() {
            for (i, x) in sem.iter().enumerate() {
                let at = (lane, i);
                match *x {
                    Sem::Connect(k, _) => {
                        s.connects.entry(k).or_insert(at);
                    }
                    Sem::Send(k, d, n) => {
                        let list = s.sends.entry((k, d)).or_default();
                        let before = list.last().map_or(0, |(_, total)| *total);
                        list.push((at, before + n));
                    }
                    Sem::Fin(k, d) => {
                        s.fins.entry((k, d)).or_insert(at);
                    }
                    Sem::Reset(k, d) => {
                        s.resets.entry((k, d)).or_insert(at);
                    }
                    Sem::DatagramOut(from, to, _) => s.datagrams.entry((from, to)).or_default().push(at),
                    _ => {}
                }
            }
        }
        s
    }

    /// The send of the byte before `end` in that direction (the first whose total
    /// reaches it).
    fn send_of(&self, k: u16, d: Dir, end: u64) -> Option<At> {
        self.sends
            .get(&(k, d))
            .and_then(|list| list.iter().find(|(_, total)| *total >= end))
            .map(|(at, _)| *at)
    }
}

/// What crosses between the lanes: the arrows of the picture (each also an edge), the
/// edges into each readiness report from what made its socket ready, and the packets
/// each call needed.
struct Crossings {
    arrows: Vec<Arrow>,
    readies: Vec<(At, At)>,
    needs: Vec<(Need, At)>,
}

/// The edges between calls of different lanes (what happened before what across the
/// network), and the arrows of the picture that go with them; then the edges into each
/// readiness report from what made its socket ready; and what packet each call needed.
fn crossings(sems: &[Vec<Sem>], wakes: &[Vec<Vec<Wake>>], senders: &Senders) -> Crossings {
    let Senders {
        connects,
        sends,
        fins,
        resets,
        datagrams,
    } = senders;
    let mut arrows = Vec::new();
    let mut readies = Vec::new();
    let mut needs = Vec::new();
    let mut received: HashMap<(u16, Dir), u64> = HashMap::new();
    let mut taken: HashMap<(u16, u16), usize> = HashMap::new();
    for (lane, sem) in sems.iter().enumerate() {
        for (i, s) in sem.iter().enumerate() {
            let to = (lane, i);
            for wake in &wakes[lane][i] {
                let cause = match *wake {
                    // The connection its process accepts next from that listener.
                    Wake::Queue(port) => {
                        let k = sem[i + 1..].iter().find_map(|s| match *s {
                            Sem::Accept(k, Some(p)) if p == port => Some(k),
                            _ => None,
                        });
                        if let Some(k) = k {
                            needs.push((Need::Handshake(k), to));
                        }
                        k.and_then(|k| connects.get(&k).copied())
                    }
                    // The send of the first byte not yet received, else the FIN or RST.
                    Wake::Data(k, d) => {
                        let got = received.get(&(k, d)).copied().unwrap_or(0);
                        needs.push((Need::Ready(k, d, got), to));
                        let send = sends
                            .get(&(k, d))
                            .and_then(|list| list.iter().find(|(_, total)| *total > got))
                            .map(|(at, _)| *at);
                        send.or_else(|| fins.get(&(k, d)).copied())
                            .or_else(|| resets.get(&(k, d)).copied())
                    }
                };
                if let Some(from) = cause {
                    readies.push((from, to));
                }
            }
            let mut link = |from: Option<At>, wire: Wire| {
                if let Some(from) = from {
                    arrows.push(Arrow { from, to, wire });
                }
            };
            match *s {
                Sem::Accept(k, _) => {
                    needs.push((Need::Handshake(k), to));
                    link(connects.get(&k).copied(), Wire::Handshake);
                }
                Sem::Receive(k, d, n) => {
                    let got = received.entry((k, d)).or_insert(0);
                    let first = *got;
                    *got += n;
                    let last = *got;
                    if n > 0 {
                        needs.push((Need::Byte(k, d, last - 1), to));
                    }
                    // Every send with bytes in [first, last) is drawn; the one with the
                    // last byte is the edge that matters.
                    let mut start = 0;
                    for &(from, total) in sends.get(&(k, d)).into_iter().flatten() {
                        if total > first && start < last {
                            link(Some(from), Wire::Data(total.min(last) - start.max(first)));
                        }
                        start = total;
                    }
                }
                Sem::Eof(k, d) => {
                    needs.push((Need::Fin(k, d), to));
                    link(fins.get(&(k, d)).copied(), Wire::Fin);
                }
                Sem::ResetSeen(k, d) => {
                    needs.push((Need::Rst(k, d), to));
                    link(resets.get(&(k, d)).copied(), Wire::Rst);
                }
                Sem::DatagramIn(from_port, to_port, n) => {
                    let k = taken.entry((from_port, to_port)).or_insert(0);
                    needs.push((Need::Datagram(from_port, to_port, *k), to));
                    let sent = datagrams.get(&(from_port, to_port)).and_then(|v| v.get(*k));
                    link(sent.copied(), Wire::Datagram(n));
                    *k += 1;
                }
                Sem::Refused(port) => needs.push((Need::Unreachable(port), to)),
                _ => {}
            }
        }
    }
    Crossings {
        arrows,
        readies,
        needs,
    }
}

/// The captured packet a need names, by index.
fn needed(c: &[Carries], need: Need) -> Option<usize> {
    let seg = |want: &dyn Fn(u16, Dir, u8, u64, u64) -> bool| {
        c.iter().position(|x| match *x {
            Carries::Segment {
                k,
                dir,
                flags,
                start,
                end,
                ..
            } => want(k, dir, flags, start, end),
            _ => false,
        })
    };
    match need {
        Need::Handshake(want) => {
            seg(&|k, d, f, _, _| k == want && d == Dir::Up && f & flag::ACK != 0 && f & flag::SYN == 0)
        }
        Need::Byte(want, wd, at) => {
            seg(&|k, d, f, s, e| k == want && d == wd && f & flag::SYN == 0 && s <= at && at < e)
        }
        Need::Fin(want, wd) => seg(&|k, d, f, _, _| k == want && d == wd && f & flag::FIN != 0),
        Need::Rst(want, wd) => seg(&|k, d, f, _, _| k == want && d == wd && f & flag::RST != 0),
        Need::Ready(k, d, got) => needed(c, Need::Byte(k, d, got))
            .or_else(|| needed(c, Need::Fin(k, d)))
            .or_else(|| needed(c, Need::Rst(k, d))),
        Need::Datagram(from, to, n) => c
            .iter()
            .enumerate()
            .filter(|(_, x)| matches!(**x, Carries::Datagram(a, b, _) if a == from && b == to))
            .nth(n)
            .map(|(j, _)| j),
        Need::Unreachable(port) => c
            .iter()
            .position(|x| matches!(*x, Carries::Unreachable(from, _) if from == port)),
    }
}

/// The calls that caused each captured packet (the packet comes after each began).
fn causes(c: &[Carries], senders: &Senders) -> Vec<Vec<At>> {
    let mut nth: HashMap<(u16, u16), usize> = HashMap::new();
    c.iter()
        .map(|x| {
            let mut from = Vec::new();
            match *x {
                Carries::Segment {
                    k,
                    dir,
                    flags,
                    start,
                    end,
                    ..
                } => {
                    if flags & flag::SYN != 0 && dir == Dir::Up {
                        from.extend(senders.connects.get(&k));
                    }
                    if end > start {
                        from.extend(senders.send_of(k, dir, end));
                    }
                    if flags & flag::FIN != 0 {
                        from.extend(senders.fins.get(&(k, dir)));
                    }
                    if flags & flag::RST != 0 {
                        from.extend(senders.resets.get(&(k, dir)).or(senders.fins.get(&(k, dir))));
                    }
                }
                Carries::Datagram(a, b, _) => {
                    let n = nth.entry((a, b)).or_insert(0);
                    from.extend(senders.datagrams.get(&(a, b)).and_then(|v| v.get(*n)));
                    *n += 1;
                }
                Carries::Unreachable(..) | Carries::Other => {}
            }
            from
        })
        .collect()
}

/// Orders the lanes' calls causally (see the module's doc). An error if the traces
/// contradict themselves (a cycle: a call that would have to come before its own cause).
pub fn build(lanes: Vec<Lane>) -> Result<Timeline, String> {
    build_seen(lanes, &Kernel::default())
}

/// [`build`], with what the kernel showed placed among the calls: the packets captured
/// (when all were) after the calls that caused them and before the calls that needed
/// them, the socket samples where their times put them.
pub fn build_seen(lanes: Vec<Lane>, kernel: &Kernel) -> Result<Timeline, String> {
    let (sems, wakes): (Vec<Vec<Sem>>, Vec<Vec<Vec<Wake>>>) = lanes.iter().map(meanings).unzip();
    let senders = Senders::of(&sems);
    let Crossings {
        arrows,
        readies,
        needs,
    } = crossings(&sems, &wakes, &senders);
    let index = |(lane, i): At| -> usize { lanes[..lane].iter().map(|l| l.calls.len()).sum::<usize>() + i };
    let total: usize = lanes.iter().map(|l| l.calls.len()).sum();
    // What the kernel showed, in its time order: the packets (all or none) of the
    // connections and datagrams the calls name, then the samples, merged; node
    // `total + j` is `seen[j]`.
    let all: &[Packet] = kernel.packets.as_deref().unwrap_or_default();
    let connection = |k: u16| {
        sems.iter()
            .flatten()
            .any(|s| matches!(*s, Sem::Connect(p, _) | Sem::Accept(p, _) if p == k))
    };
    // A datagram, or the one an ICMP error quotes, that a call sent from port to port.
    let sent = |from: u16, to: u16| {
        sems.iter()
            .flatten()
            .any(|s| matches!(*s, Sem::DatagramOut(a, b, _) if a == from && b == to))
    };
    let packets: Vec<Packet> = all
        .iter()
        .zip(carries(all, kernel.port))
        .filter(|(_, c)| match *c {
            Carries::Segment { k, .. } => connection(k),
            Carries::Datagram(a, b, _) | Carries::Unreachable(a, b) => sent(a, b),
            Carries::Other => false,
        })
        .map(|(p, _)| *p)
        .collect();
    let foreign = all.len() - packets.len();
    let mut seen: Vec<Seen> = packets.iter().copied().map(Seen::Packet).collect();
    seen.extend(kernel.samples.iter().cloned().map(Seen::Sockets));
    seen.sort_by_key(Seen::t_us);
    let packet_node: Vec<usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Seen::Packet(_)))
        .map(|(j, _)| total + j)
        .collect();
    let nodes = total + seen.len();
    let mut after: Vec<Vec<usize>> = vec![Vec::new(); nodes];
    let mut waiting: Vec<usize> = vec![0; nodes];
    let mut edge = |from: usize, to: usize, after: &mut Vec<Vec<usize>>| {
        after[from].push(to);
        waiting[to] += 1;
    };
    for (l, lane) in lanes.iter().enumerate() {
        // Each process's own order: a call after each earlier call of its process that
        // had returned when it began (calls of one process that overlap in time are its
        // threads', in no order); a child's first call after its parent's fork().
        let mut forks: HashMap<String, usize> = HashMap::new();
        for (i, call) in lane.calls.iter().enumerate() {
            if let Act::Forked { child } = act(call) {
                forks.insert(format!("{}[{child}]", call.who), i);
            }
        }
        for (i, call) in lane.calls.iter().enumerate() {
            let mine: Vec<usize> = (0..i).filter(|&j| lane.calls[j].who == call.who).collect();
            for &j in mine.iter().filter(|&&j| before_in_process(&lane.calls[j], call)) {
                edge(index((l, j)), index((l, i)), &mut after);
            }
            if mine.is_empty() {
                if let Some(&fork) = forks.get(&call.who) {
                    edge(index((l, fork)), index((l, i)), &mut after);
                }
            }
        }
        // A signal's cause before the call it interrupted; a child's exit before the
        // waitpid() that reaped it.
        for (call, exit) in interruptions(lane, &sems[l])
            .into_iter()
            .chain(reapings(lane, &sems[l]))
        {
            edge(index((l, exit)), index((l, call)), &mut after);
        }
    }
    for a in &arrows {
        edge(index(a.from), index(a.to), &mut after);
    }
    for &(from, to) in &readies {
        edge(index(from), index(to), &mut after);
    }
    for j in 1..seen.len() {
        edge(total + j - 1, total + j, &mut after);
    }
    let c = carries(&packets, kernel.port);
    for (j, from) in causes(&c, &senders).into_iter().enumerate() {
        for at in from {
            edge(index(at), packet_node[j], &mut after);
        }
    }
    for &(need, to) in &needs {
        if let Some(j) = needed(&c, need) {
            edge(packet_node[j], index(to), &mut after);
        }
    }
    let mut at_of: Vec<At> = Vec::with_capacity(total);
    for (l, lane) in lanes.iter().enumerate() {
        at_of.extend((0..lane.calls.len()).map(|i| (l, i)));
    }
    let key = |n: usize| -> u64 {
        match at_of.get(n) {
            Some(&(l, i)) => lanes[l].calls[i].t_us,
            None => seen[n - total].t_us(),
        }
    };
    let mut ready: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    for (n, _) in waiting.iter().enumerate().filter(|(_, w)| **w == 0) {
        ready.push(Reverse((key(n), n)));
    }
    let mut rows = Vec::with_capacity(total);
    let mut placed = Vec::with_capacity(seen.len());
    while let Some(Reverse((_, n))) = ready.pop() {
        match at_of.get(n) {
            Some(&at) => rows.push(at),
            None => placed.push(Placed {
                seen: seen[n - total].clone(),
                before: rows.len(),
            }),
        }
        for &next in &after[n] {
            let w = &mut waiting[next];
            *w -= 1;
            if *w == 0 {
                ready.push(Reverse((key(next), next)));
            }
        }
    }
    if rows.len() + placed.len() != nodes {
        return Err(format!(
            "the traces contradict themselves: {} of {nodes} calls and packets could not be ordered",
            nodes - rows.len() - placed.len()
        ));
    }
    Ok(Timeline {
        lanes,
        sems,
        wakes,
        rows,
        arrows,
        port: kernel.port,
        captured: kernel.packets.is_some(),
        seen: placed,
        foreign,
    })
}

/// What [`check`] has counted of the calls shown so far.
#[derive(Default)]
struct ByCalls {
    /// Per direction of a connection: bytes sent, bytes received.
    sent: HashMap<(u16, Dir), u64>,
    received: HashMap<(u16, Dir), u64>,
    /// Per direction: a FIN sent, an RST sent.
    fin: HashMap<(u16, Dir), bool>,
    reset: HashMap<(u16, Dir), bool>,
    /// Connections whose connect() was shown.
    connected: HashMap<u16, bool>,
    /// Per server port: connects shown, accepts shown.
    queued: HashMap<u16, (u64, u64)>,
    /// Datagrams sent and received, from port to port.
    dgrams: HashMap<(u16, u16), i64>,
    dgrams_in: HashMap<(u16, u16), i64>,
}

/// What [`check`] has counted of the packets shown so far.
#[derive(Default)]
struct OnWire {
    /// Per direction of a connection: the offset after the last payload byte shown.
    carried: HashMap<(u16, Dir), u64>,
    /// Connections whose handshake's last ACK was shown.
    handshakes: HashMap<u16, bool>,
    /// Per listening port: handshakes shown.
    queued: HashMap<u16, u64>,
    fins: HashMap<(u16, Dir), bool>,
    rsts: HashMap<(u16, Dir), bool>,
    /// Datagrams shown, from port to port.
    datagrams: HashMap<(u16, u16), i64>,
    /// Ports an ICMP port unreachable was shown for.
    unreachable: HashMap<u16, bool>,
}

impl OnWire {
    /// A captured packet shown, what it is: an error if the call that caused it was not
    /// shown yet; counted.
    fn shown(&mut self, kind: Carries, port: u16, calls: &ByCalls) -> Result<(), String> {
        let bad = |why: &str| Err(format!("a captured packet ({kind:?}) drawn before {why}"));
        let yes = |m: &HashMap<(u16, Dir), bool>, key| m.get(&key).copied().unwrap_or(false);
        match kind {
            Carries::Segment {
                k,
                dir,
                flags,
                start,
                end,
                ..
            } => {
                if flags & flag::SYN != 0
                    && dir == Dir::Up
                    && !calls.connected.get(&k).copied().unwrap_or(false)
                {
                    return bad(&format!("the connect() of connection {k}"));
                }
                let had = calls.sent.get(&(k, dir)).copied().unwrap_or(0);
                if end > start && had < end {
                    return bad(&format!("its bytes were sent: {had} of {end} shown sent"));
                }
                let closed = yes(&calls.fin, (k, dir)) || yes(&calls.reset, (k, dir));
                if flags & (flag::FIN | flag::RST) != 0 && !closed {
                    return bad(&format!("the close of connection {k} {dir:?}"));
                }
                let c = self.carried.entry((k, dir)).or_insert(0);
                *c = (*c).max(end);
                if flags & flag::FIN != 0 {
                    self.fins.insert((k, dir), true);
                }
                if flags & flag::RST != 0 {
                    self.rsts.insert((k, dir), true);
                }
                let last_ack = dir == Dir::Up && flags & flag::ACK != 0 && flags & flag::SYN == 0;
                if last_ack && !self.handshakes.insert(k, true).unwrap_or(false) {
                    *self.queued.entry(port).or_default() += 1;
                }
            }
            Carries::Datagram(a, b, _) => {
                let shown = self.datagrams.entry((a, b)).or_insert(0);
                *shown += 1;
                if *shown > calls.dgrams.get(&(a, b)).copied().unwrap_or(0) {
                    return bad(&format!("its sendto() from port {a} to port {b}"));
                }
            }
            Carries::Unreachable(a, b) => {
                if self.datagrams.get(&(a, b)).copied().unwrap_or(0) == 0 {
                    return bad(&format!("the datagram from port {a} to port {b} it answers"));
                }
                self.unreachable.insert(a, true);
            }
            Carries::Other => {}
        }
        Ok(())
    }
}

/// Checks an order by walking it, independently of how [`build`] made it: no receive
/// before the bytes it got were sent, no end of stream before the FIN, no `accept()`
/// before its `connect()` began, no datagram received before one was sent from that
/// port to that port, each process's calls in their own order; no readiness report
/// before something was there to take (a connection not yet accepted, bytes not yet
/// received, a FIN, an RST); no interrupted call before the exits of its process's
/// children that began before it returned, no `waitpid()` before its child's exit. And
/// the packets shown: none before the call that caused it began (a SYN before its
/// `connect()`, a segment before the send of its bytes, a FIN or RST before the close,
/// a datagram before its `sendto()`), and, when every packet was captured, no call
/// returned before what it needed was shown (an `accept()` before the handshake's last
/// ACK, a receive before the segment of its bytes, an end of stream before the FIN, an
/// ECONNRESET before the RST, a datagram before it was captured, ECONNREFUSED before
/// the ICMP). Says what is wrong.
pub fn check(t: &Timeline) -> Result<(), String> {
    let mut calls_seen = ByCalls::default();
    let mut seen = vec![Vec::new(); t.lanes.len()];
    let mut wire = OnWire::default();
    // Exits whose SIGCHLD an interrupted call shown already took.
    let mut signalled = vec![Vec::new(); t.lanes.len()];
    for (l, lane) in t.lanes.iter().enumerate() {
        seen[l] = vec![false; lane.calls.len()];
        signalled[l] = vec![false; lane.calls.len()];
    }
    let mut last_time = 0;
    for step in t.steps() {
        let (l, i) = match step {
            Step::Call(at) => at,
            Step::Seen(shown, kind) => {
                if shown.t_us() < last_time {
                    return Err(format!(
                        "what the kernel showed at {} µs is drawn after what it showed later",
                        shown.t_us()
                    ));
                }
                last_time = shown.t_us();
                if matches!(shown, Seen::Packet(_)) {
                    wire.shown(kind, t.port, &calls_seen)?;
                }
                continue;
            }
        };
        let call = &t.lanes[l].calls[i];
        let what = || format!("{} {:?}", t.lanes[l].label, call.c);
        // Each process's calls in their order: every earlier call of it that had returned
        // when this one began already shown.
        let calls = &t.lanes[l].calls;
        let skipped =
            (0..i).any(|j| calls[j].who == call.who && before_in_process(&calls[j], call) && !seen[l][j]);
        if skipped {
            return Err(format!("{} shown before its own earlier call", what()));
        }
        seen[l][i] = true;
        let captured = t.captured;
        for wake in &t.wakes[l][i] {
            let there = match *wake {
                Wake::Queue(port) => {
                    let (connects, accepts) = calls_seen.queued.get(&port).copied().unwrap_or((0, 0));
                    connects > accepts
                        && (!captured || wire.queued.get(&port).copied().unwrap_or(0) > accepts)
                }
                Wake::Data(k, d) => {
                    let got = calls_seen.received.get(&(k, d)).copied().unwrap_or(0);
                    let by_calls = calls_seen.sent.get(&(k, d)).copied().unwrap_or(0) > got
                        || calls_seen.fin.get(&(k, d)).copied().unwrap_or(false)
                        || calls_seen.reset.get(&(k, d)).copied().unwrap_or(false);
                    let by_packets = wire.carried.get(&(k, d)).copied().unwrap_or(0) > got
                        || wire.fins.get(&(k, d)).copied().unwrap_or(false)
                        || wire.rsts.get(&(k, d)).copied().unwrap_or(false);
                    by_calls && (!captured || by_packets)
                }
            };
            if !there {
                let cause = match *wake {
                    Wake::Queue(port) => format!("a connect() to port {port} not yet accepted"),
                    Wake::Data(k, d) => {
                        format!("bytes, a FIN or an RST of connection {k} {d:?} not yet received")
                    }
                };
                return Err(format!("{} shown before what made it ready: {cause}", what()));
            }
        }
        let unseen = |why: &str| Err(format!("{} shown before the captured {why}", what()));
        match t.sems[l][i] {
            Sem::Connect(k, port) => {
                calls_seen.connected.insert(k, true);
                calls_seen.queued.entry(port).or_default().0 += 1;
            }
            Sem::Accept(k, _) if !calls_seen.connected.get(&k).copied().unwrap_or(false) => {
                return Err(format!("{} shown before the connect() it accepts", what()));
            }
            Sem::Accept(k, _) if captured && !wire.handshakes.get(&k).copied().unwrap_or(false) => {
                return unseen("handshake's last ACK");
            }
            Sem::Accept(_, Some(port)) => calls_seen.queued.entry(port).or_default().1 += 1,
            Sem::Send(k, d, n) => *calls_seen.sent.entry((k, d)).or_insert(0) += n,
            Sem::Receive(k, d, n) => {
                let got = calls_seen.received.entry((k, d)).or_insert(0);
                *got += n;
                let had = calls_seen.sent.get(&(k, d)).copied().unwrap_or(0);
                if *got > had {
                    return Err(format!("{} shown when only {had} of its bytes were sent", what()));
                }
                if captured && wire.carried.get(&(k, d)).copied().unwrap_or(0) < *got {
                    return unseen("segment of its bytes");
                }
            }
            Sem::Fin(k, d) => {
                calls_seen.fin.insert((k, d), true);
            }
            Sem::Eof(k, d) if !calls_seen.fin.get(&(k, d)).copied().unwrap_or(false) => {
                return Err(format!("{} shown before the FIN that ends the stream", what()));
            }
            Sem::Eof(k, d) if captured && !wire.fins.get(&(k, d)).copied().unwrap_or(false) => {
                return unseen("FIN");
            }
            Sem::Reset(k, d) => {
                calls_seen.reset.insert((k, d), true);
            }
            Sem::ResetSeen(k, d) if !calls_seen.reset.get(&(k, d)).copied().unwrap_or(false) => {
                return Err(format!("{} shown before the RST that caused it", what()));
            }
            Sem::ResetSeen(k, d) if captured && !wire.rsts.get(&(k, d)).copied().unwrap_or(false) => {
                return unseen("RST");
            }
            Sem::DatagramOut(a, b, _) => *calls_seen.dgrams.entry((a, b)).or_insert(0) += 1,
            Sem::DatagramIn(a, b, _) => {
                let took = calls_seen.dgrams_in.entry((a, b)).or_insert(0);
                *took += 1;
                if *took > calls_seen.dgrams.get(&(a, b)).copied().unwrap_or(0) {
                    return Err(format!("{} shown before its datagram was sent", what()));
                }
                if captured && *took > wire.datagrams.get(&(a, b)).copied().unwrap_or(0) {
                    return unseen("datagram");
                }
            }
            Sem::Refused(port) if captured && !wire.unreachable.get(&port).copied().unwrap_or(false) => {
                return unseen("ICMP port unreachable");
            }
            Sem::Reaped(child) => {
                let who = format!("{}[{child}]", call.who);
                let exit = (0..calls.len()).find(|&j| t.sems[l][j] == Sem::Exit && calls[j].who == who);
                if exit.is_some_and(|j| !seen[l][j]) {
                    return Err(format!("{} shown before the exit of {who} it reaped", what()));
                }
            }
            Sem::Interrupted => {
                // Every exit of a child of this process that began before this call
                // returned, and whose signal no earlier interruption took, is shown.
                for (j, exit) in calls.iter().enumerate() {
                    let cause = t.sems[l][j] == Sem::Exit
                        && !signalled[l][j]
                        && parent_of(&exit.who) == Some(call.who.as_str())
                        && exit.t_us <= call.end();
                    if cause && !seen[l][j] {
                        return Err(format!(
                            "{} shown before the exit of {} whose SIGCHLD interrupted it",
                            what(),
                            exit.who
                        ));
                    }
                    if cause {
                        signalled[l][j] = true;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The order the old demo used, for comparison: every call by the time it returned.
pub fn by_return_time(lanes: &[Lane]) -> Vec<At> {
    let mut rows: Vec<At> = lanes
        .iter()
        .enumerate()
        .flat_map(|(l, lane)| (0..lane.calls.len()).map(move |i| (l, i)))
        .collect();
    rows.sort_by_key(|&(l, i)| lanes[l].calls[i].end());
    rows
}

/// The tests' exchange: a client connects, the server accepts and writes `data`, the
/// client reads it; each record made by the programs' own writer, explained in `lang`.
#[cfg(test)]
pub(crate) fn one_exchange(lang: hello_proto::trace::Lang, data: &[u8]) -> Vec<Lane> {
    use hello_proto::trace::{Event, Family, Kind};
    let at = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let record = |who: &str, t, took, e: Event<'_>| Record::of(who, lang, t, took, &e);
    let socket = Event::Socket {
        family: Family::Inet,
        kind: Kind::Stream,
        fd: 3,
    };
    let connect = Event::Connect {
        fd: 3,
        addr: at(9190),
        kind: Kind::Stream,
    };
    let accept = Event::Accept {
        listener: 3,
        fd: 4,
        peer: at(5555),
    };
    vec![
        Lane {
            label: "client".into(),
            side: Side::Client,
            calls: vec![
                record("client", 100, 0, socket),
                record("client", 200, 10, connect),
                record(
                    "client",
                    300,
                    0,
                    Event::Ephemeral {
                        fd: 3,
                        addr: at(5555),
                    },
                ),
                record("client", 400, 100, Event::Read { fd: 3, data }),
            ],
        },
        Lane {
            label: "server".into(),
            side: Side::Server,
            calls: vec![
                record("server", 50, 200, accept),
                record("server", 450, 2, Event::Write { fd: 4, data }),
            ],
        },
    ]
}

/// A TCP segment of [`one_exchange`] (client port 5555, server 9190), captured at `t_us`.
#[cfg(test)]
pub(crate) fn segment(t_us: u64, up: bool, flags: u8, seq: u32, len: u32) -> Packet {
    let (c, s) = (
        std::net::SocketAddr::from(([127, 0, 0, 1], 5555)),
        std::net::SocketAddr::from(([127, 0, 0, 1], 9190)),
    );
    let (src, dst) = if up { (c, s) } else { (s, c) };
    Packet {
        t_us,
        src,
        dst,
        carried: Carried::Tcp { flags, seq, ack: 0 },
        len,
    }
}

/// [`one_exchange`]'s packets: the handshake while the client's connect() (200, +10)
/// runs and before the server's accept() returns (250), the 3 bytes after the server's
/// write() began (450) and before the client's read() returned (500); then a sample of
/// the sockets: the server's in TIME_WAIT.
#[cfg(test)]
pub(crate) fn one_exchange_kernel() -> Kernel {
    use crate::packets::flag::{ACK, PSH, SYN};
    use hello_proto::kernel::TcpState;
    let at = |port| std::net::SocketAddr::from(([127, 0, 0, 1], port));
    Kernel {
        port: 9190,
        packets: Some(vec![
            segment(203, true, SYN, 1000, 0),
            segment(204, false, SYN | ACK, 7000, 0),
            segment(205, true, ACK, 1001, 0),
            segment(455, false, PSH | ACK, 7001, 3),
            segment(456, true, ACK, 1001, 0),
        ]),
        samples: vec![Sample {
            t_us: 600,
            sockets: vec![TcpSocket {
                state: TcpState::TimeWait,
                local: at(9190),
                peer: at(5555),
                rqueue: 0,
                wqueue: 0,
                inode: 0,
            }],
        }],
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::net::SocketAddr;

    use hello_proto::error::Step;
    use hello_proto::trace::{Event, Family, Kind, Readiness};

    use super::*;
    use crate::line::record;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn tcp(fd: i32) -> Event<'static> {
        Event::Socket {
            family: Family::Inet,
            kind: Kind::Stream,
            fd,
        }
    }

    fn udp(fd: i32) -> Event<'static> {
        Event::Socket {
            family: Family::Inet,
            kind: Kind::Dgram,
            fd,
        }
    }

    fn connect(fd: i32, port: u16) -> Event<'static> {
        Event::Connect {
            fd,
            addr: addr(port),
            kind: Kind::Stream,
        }
    }

    fn accept(listener: i32, fd: i32, peer: u16) -> Event<'static> {
        Event::Accept {
            listener,
            fd,
            peer: addr(peer),
        }
    }

    fn ephemeral(fd: i32, port: u16) -> Event<'static> {
        Event::Ephemeral { fd, addr: addr(port) }
    }

    /// A client's first calls: `socket()` at `at`, `connect()` to port 9190 made 10 µs
    /// later and taking `took`, then `getsockname()` naming its port 5555.
    fn connected<'a>(at: u64, took: u64) -> Vec<(u64, u64, Event<'a>)> {
        vec![
            (at, 0, tcp(3)),
            (at + 10, took, connect(3, 9190)),
            (at + 15 + took, 0, ephemeral(3, 5555)),
        ]
    }

    /// The client's lane: [`connected`] at `at` with a `connect()` taking `took`, then
    /// `rest`.
    fn client_lane(at: u64, took: u64, rest: Vec<(u64, u64, Event<'_>)>) -> Lane {
        let mut calls = connected(at, took);
        calls.extend(rest);
        lane_of("client", Side::Client, "client", calls)
    }

    /// A lane of `(start µs, took µs, event)` made by `who`.
    fn lane_of(label: &str, side: Side, who: &str, calls: Vec<(u64, u64, Event<'_>)>) -> Lane {
        Lane {
            label: label.to_string(),
            side,
            calls: calls
                .into_iter()
                .map(|(t, took, e)| record(who, t, took, e))
                .collect(),
        }
    }

    /// One client and the server, ordered and checked.
    fn checked(client: Lane, server: Lane) -> Timeline {
        let t = build(vec![client, server]).unwrap();
        check(&t).unwrap();
        t
    }

    /// Where the call whose C rendering starts with `c` (made by `who`) was put.
    fn pos(t: &Timeline, who: &str, c: &str) -> usize {
        t.rows
            .iter()
            .position(|&(l, i)| t.lanes[l].calls[i].c.starts_with(c) && t.lanes[l].calls[i].who == who)
            .unwrap_or_else(|| panic!("no {who} {c}"))
    }

    /// An echo exchange as it was once printed wrong: the server's read() returned
    /// before the client's write() did, and the server's accept() before the client's
    /// connect() (times are when each call was made, and how long it took).
    fn racy() -> Vec<Lane> {
        let server = lane_of(
            "server",
            Side::Server,
            "server",
            vec![
                (100, 0, tcp(3)),
                (
                    110,
                    0,
                    Event::Bind {
                        fd: 3,
                        addr: addr(9190),
                    },
                ),
                (120, 0, Event::Listen { fd: 3, backlog: 4096 }),
                (130, 900, accept(3, 4, 5555)),
                (
                    1040,
                    300,
                    Event::Read {
                        fd: 4,
                        data: b"hello\0",
                    },
                ),
                (
                    1350,
                    5,
                    Event::SendMore {
                        fd: 4,
                        data: b"5 : hello\0",
                    },
                ),
                (1360, 1, Event::ShutdownWrite { fd: 4 }),
                (1370, 2, Event::Read { fd: 4, data: b"" }),
                (1380, 1, Event::Close { fd: 4 }),
            ],
        );
        let client = client_lane(
            890,
            200,
            vec![
                (
                    1200,
                    300,
                    Event::Write {
                        fd: 3,
                        data: b"hello\0",
                    },
                ),
                (1340, 1, Event::ShutdownWrite { fd: 3 }),
                (
                    1345,
                    20,
                    Event::Read {
                        fd: 3,
                        data: b"5 : hello\0",
                    },
                ),
                (1390, 1, Event::Read { fd: 3, data: b"" }),
                (1400, 1, Event::Close { fd: 3 }),
            ],
        );
        vec![client, server]
    }

    #[test]
    fn the_causal_order_puts_every_receive_after_its_send() {
        let t = build(racy()).unwrap();
        check(&t).unwrap();
        assert!(pos(&t, "client", "connect(") < pos(&t, "server", "accept("));
        assert!(pos(&t, "client", "write(") < pos(&t, "server", "read(4) = 6"));
        assert!(pos(&t, "server", "send(") < pos(&t, "client", "read(3) = 10"));
        assert!(pos(&t, "client", "shutdown(") < pos(&t, "server", "read(4) = 0"));
        assert_eq!(t.arrows.iter().filter(|a| a.wire == Wire::Handshake).count(), 1);
        assert!(t.arrows.iter().any(|a| a.wire == Wire::Data(6)));
        assert!(t.arrows.iter().any(|a| a.wire == Wire::Data(10)));
        assert_eq!(t.arrows.iter().filter(|a| a.wire == Wire::Fin).count(), 2);
    }

    #[test]
    fn the_check_catches_what_the_return_time_order_got_wrong() {
        let lanes = racy();
        let t = build(lanes.clone()).unwrap();
        let old = Timeline {
            rows: by_return_time(&lanes),
            ..t
        };
        let e = check(&old).unwrap_err();
        assert!(e.contains("before"), "{e}");
    }

    #[test]
    fn a_read_that_got_two_writes_comes_after_both_and_datagrams_pair_up() {
        let client = client_lane(
            190,
            10,
            vec![
                (400, 1, Event::Write { fd: 3, data: b"hel" }),
                (900, 1, Event::Write { fd: 3, data: b"lo\0" }),
                (2000, 0, udp(4)),
                (
                    2100,
                    5,
                    Event::SendTo {
                        fd: 4,
                        peer: addr(9191),
                        data: b"x",
                    },
                ),
                (
                    2110,
                    0,
                    Event::BoundBySendto {
                        fd: 4,
                        addr: addr(6666),
                    },
                ),
                (
                    2120,
                    50,
                    Event::RecvFrom {
                        fd: 4,
                        peer: addr(9191),
                        data: b"y",
                    },
                ),
            ],
        );
        let server = lane_of(
            "server",
            Side::Server,
            "server",
            vec![
                (50, 0, tcp(3)),
                (60, 300, accept(3, 4, 5555)),
                (
                    500,
                    100,
                    Event::Read {
                        fd: 4,
                        data: b"hello\0",
                    },
                ),
                (70, 0, udp(5)),
                (
                    80,
                    0,
                    Event::Bind {
                        fd: 5,
                        addr: addr(9191),
                    },
                ),
                (
                    90,
                    2100,
                    Event::RecvFrom {
                        fd: 5,
                        peer: addr(6666),
                        data: b"x",
                    },
                ),
                (
                    2150,
                    1,
                    Event::SendTo {
                        fd: 5,
                        peer: addr(6666),
                        data: b"y",
                    },
                ),
            ],
        );
        let t = checked(client, server);
        assert!(pos(&t, "client", "write(3, \"lo") < pos(&t, "server", "read(4)"));
        assert!(pos(&t, "client", "sendto(4") < pos(&t, "server", "recvfrom(5)"));
        assert!(pos(&t, "server", "sendto(5") < pos(&t, "client", "recvfrom(4)"));
        let data: Vec<Wire> = t
            .arrows
            .iter()
            .map(|a| a.wire)
            .filter(|w| matches!(w, Wire::Data(_)))
            .collect();
        assert_eq!(data, vec![Wire::Data(3), Wire::Data(3)]);
        assert_eq!(
            t.arrows
                .iter()
                .filter(|a| matches!(a.wire, Wire::Datagram(1)))
                .count(),
            2
        );
    }

    #[test]
    fn a_reset_comes_before_the_error_it_causes() {
        let reset = io::Error::from_raw_os_error(libc::ECONNRESET);
        let server = lane_of(
            "server",
            Side::Server,
            "server",
            vec![
                (100, 100, accept(3, 4, 5555)),
                (
                    300,
                    1,
                    Event::Write {
                        fd: 4,
                        data: b"12 : aaaa",
                    },
                ),
                (900, 1, Event::Linger0 { fd: 4 }),
                (910, 1, Event::Close { fd: 4 }),
            ],
        );
        let client = client_lane(
            50,
            30,
            vec![
                (
                    400,
                    1,
                    Event::Read {
                        fd: 3,
                        data: b"12 : aaaa",
                    },
                ),
                (
                    500,
                    600,
                    Event::Failed {
                        step: Step::Read,
                        fd: Some(3),
                        err: &reset,
                    },
                ),
            ],
        );
        let t = checked(client, server);
        assert_eq!(
            t.sems[1][3],
            Sem::Reset(5555, Dir::Down),
            "linger 0, then close: RST, no FIN"
        );
        let rst = t.arrows.iter().find(|a| a.wire == Wire::Rst).unwrap();
        assert_eq!((rst.from, rst.to), ((1, 3), (0, 4)));
        let old = Timeline {
            rows: by_return_time(&t.lanes),
            ..t.clone()
        };
        assert!(check(&old).is_ok(), "returns happen to be in order here");
        let mut wrong = t.clone();
        let last = wrong.rows.iter().position(|&r| r == (0, 4)).unwrap();
        let reset_row = wrong.rows.iter().position(|&r| r == (1, 3)).unwrap();
        wrong.rows.swap(last, reset_row);
        assert!(check(&wrong).unwrap_err().contains("RST"));
    }

    /// A fork model exchange: the parent accepts, forks and closes its copy; the child
    /// serves and exits; the parent's accept() waiting for the next client is
    /// interrupted by the child's SIGCHLD.
    fn forked() -> (Lane, Lane) {
        let server = Lane {
            label: "server".into(),
            side: Side::Server,
            calls: vec![
                record("server", 100, 100, accept(3, 4, 5555)),
                record(
                    "server",
                    210,
                    50,
                    Event::Fork {
                        child: 4242,
                        in_child: false,
                    },
                ),
                record(
                    "server",
                    270,
                    1,
                    Event::CloseCopy {
                        fd: 4,
                        in_child: false,
                    },
                ),
                record(
                    "server[4242]",
                    250,
                    0,
                    Event::Fork {
                        child: 4242,
                        in_child: true,
                    },
                ),
                record("server[4242]", 300, 2, Event::SendMore { fd: 4, data: b"hi\0" }),
                record("server[4242]", 310, 2, Event::ShutdownWrite { fd: 4 }),
                record("server[4242]", 400, 1, Event::Exit { code: 0 }),
                // Made at 280, before the child's exit at 400; returned at 1280, after.
                record(
                    "server",
                    280,
                    1000,
                    Event::Failed {
                        step: Step::Accept,
                        fd: Some(3),
                        err: &io::Error::from_raw_os_error(libc::EINTR),
                    },
                ),
            ],
        };
        let client = client_lane(
            50,
            30,
            vec![
                (97, 300, Event::Read { fd: 3, data: b"hi\0" }),
                (400, 3, Event::Read { fd: 3, data: b"" }),
            ],
        );
        (client, server)
    }

    #[test]
    fn a_fork_model_child_starts_with_its_parents_descriptors() {
        let (client, server) = forked();
        let t = checked(client, server);
        assert_eq!(
            t.sems[1][2],
            Sem::Local,
            "the parent's close of its copy sends no FIN"
        );
        assert_eq!(t.sems[1][4], Sem::Send(5555, Dir::Down, 3));
        let fin = t.arrows.iter().find(|a| a.wire == Wire::Fin).unwrap();
        assert_eq!(fin.from, (1, 5), "the FIN is the child's shutdown()");
    }

    #[test]
    fn an_interrupted_accept_comes_after_the_exit_whose_signal_interrupted_it() {
        let (client, server) = forked();
        let t = checked(client, server);
        assert_eq!((t.sems[1][6], t.sems[1][7]), (Sem::Exit, Sem::Interrupted));
        assert!(pos(&t, "server[4242]", "_exit(") < pos(&t, "server", "accept(3) = -1 EINTR"));
        // The EINTR (made at 280) before the exit (made at 400), as by start time.
        let mut rows = t.rows.clone();
        let exit = rows.remove(pos(&t, "server[4242]", "_exit("));
        rows.push(exit);
        let wrong = Timeline { rows, ..t.clone() };
        let e = check(&wrong).unwrap_err();
        assert!(e.contains("SIGCHLD") && e.contains("server[4242]"), "{e}");
        // An EINTR with no child exited before it returned (a stop's signal) has no
        // cause to wait for.
        let (client, mut server) = forked();
        server.calls[7].t_us = 280;
        server.calls[7].dur_us = 10;
        let t = checked(client, server);
        assert!(pos(&t, "server", "accept(3) = -1 EINTR") < pos(&t, "server[4242]", "_exit("));
    }

    /// An epoll server: each epoll_wait() is made before what it will report (the
    /// client's connect, then its write) and returns after it.
    fn epoll_lanes() -> Vec<Lane> {
        let readable = Readiness {
            readable: true,
            ..Readiness::default()
        };
        let listener_ready = [(3, readable)];
        let client_ready = [(5, readable)];
        let wait = |ready| Event::EpollWait {
            epfd: 4,
            max: 64,
            timeout_ms: -1,
            ready,
        };
        let server = Lane {
            label: "server".into(),
            side: Side::Server,
            calls: vec![
                record("server", 10, 0, tcp(3)),
                record(
                    "server",
                    20,
                    0,
                    Event::Bind {
                        fd: 3,
                        addr: addr(9190),
                    },
                ),
                record("server", 30, 0, Event::Listen { fd: 3, backlog: 4096 }),
                record("server", 40, 0, Event::EpollCreate { epfd: 4 }),
                record("server", 100, 150, wait(&listener_ready)),
                record("server", 260, 5, accept(3, 5, 5555)),
                record("server", 270, 200, wait(&client_ready)),
                record("server", 480, 5, Event::Read { fd: 5, data: b"hi\0" }),
            ],
        };
        let client = client_lane(190, 10, vec![(400, 2, Event::Write { fd: 3, data: b"hi\0" })]);
        vec![client, server]
    }

    #[test]
    fn a_readiness_report_comes_after_what_made_the_socket_ready() {
        let t = build(epoll_lanes()).unwrap();
        check(&t).unwrap();
        assert_eq!(t.wakes[1][4], vec![Wake::Queue(9190)]);
        assert_eq!(t.wakes[1][6], vec![Wake::Data(5555, Dir::Up)]);
        let listener = pos(&t, "server", "epoll_wait(4, events, 64, -1) = 1: {3 ");
        let client = pos(&t, "server", "epoll_wait(4, events, 64, -1) = 1: {5 ");
        assert!(pos(&t, "client", "connect(") < listener);
        assert!(pos(&t, "client", "write(") < client);
        // By start time, both reports come before their causes; the check says so.
        let mut by_start: Vec<At> = t.rows.clone();
        by_start.sort_by_key(|&(l, i)| t.lanes[l].calls[i].t_us);
        let wrong = Timeline {
            rows: by_start,
            ..t.clone()
        };
        let e = check(&wrong).unwrap_err();
        assert!(
            e.contains("epoll_wait") && e.contains("connect() to port 9190"),
            "{e}"
        );
        // Only the data's report out of place: caught too.
        let mut rows = t.rows.clone();
        let write = pos(&t, "client", "write(");
        let moved = rows.remove(client);
        rows.insert(write, moved);
        let wrong = Timeline { rows, ..t.clone() };
        let e = check(&wrong).unwrap_err();
        assert!(e.contains("connection 5555 Up"), "{e}");
    }

    #[test]
    fn a_report_not_followed_by_taking_what_was_ready_ties_to_nothing() {
        let mut lanes = epoll_lanes();
        // The server stops instead of reading: the report is not tied to the write.
        lanes[1].calls.truncate(7);
        let t = build(lanes).unwrap();
        check(&t).unwrap();
        assert!(t.wakes[1][6].is_empty());
    }

    #[test]
    fn captured_packets_sit_after_their_cause_and_before_the_call_that_needed_them() {
        use hello_proto::trace::Lang;
        let t = build_seen(one_exchange(Lang::En, b"hi\0"), &one_exchange_kernel()).unwrap();
        check(&t).unwrap();
        assert!(t.captured);
        assert_eq!(t.seen.len(), 6);
        let before = |j: usize| t.seen[j].before;
        let connect = pos(&t, "client", "connect(");
        let accept = pos(&t, "server", "accept(");
        let write = pos(&t, "server", "write(");
        let read = pos(&t, "client", "read(");
        assert!(
            before(0) > connect && before(2) <= accept,
            "the handshake before accept() returns"
        );
        assert!(
            before(3) > write && before(3) <= read,
            "the data after write(), before read()"
        );
        assert_eq!(before(5), t.rows.len(), "the sample last");
        // The check catches each packet out of place.
        let moved = |j: usize, to: usize| {
            let mut wrong = t.clone();
            for p in wrong.seen.iter_mut().skip(j) {
                p.before = p.before.max(to);
            }
            for p in wrong.seen.iter_mut().take(j + 1) {
                p.before = p.before.min(to);
            }
            check(&wrong)
        };
        let e = moved(0, connect).unwrap_err();
        assert!(e.contains("connect() of connection 5555"), "{e}");
        let e = moved(3, write).unwrap_err();
        assert!(e.contains("its bytes were sent"), "{e}");
        let e = moved(2, accept + 1).unwrap_err();
        assert!(e.contains("handshake's last ACK"), "{e}");
        let e = moved(3, read + 1).unwrap_err();
        assert!(e.contains("segment of its bytes"), "{e}");
        // Another connection's SYN on the port (its number taken again) is left out.
        let mut kernel = one_exchange_kernel();
        if let Some(p) = kernel.packets.as_mut() {
            let mut stray = segment(700, true, crate::packets::flag::SYN, 1, 0);
            stray.src.set_port(6000);
            p.push(stray);
        }
        let t = build_seen(one_exchange(Lang::En, b"hi\0"), &kernel).unwrap();
        check(&t).unwrap();
        assert_eq!((t.foreign, t.seen.len()), (1, 6));
        // Without the packets, the same order holds and nothing is drawn from them.
        let t = build(one_exchange(Lang::En, b"hi\0")).unwrap();
        assert!(!t.captured && t.seen.is_empty());
    }

    #[test]
    fn a_syn_sent_again_is_marked_and_a_datagram_meets_its_icmp() {
        use crate::packets::flag::{ACK, SYN};
        let c = carries(
            &[
                segment(1, true, SYN, 1000, 0),
                segment(1_000_001, true, SYN, 1000, 0),
                segment(1_000_002, false, SYN | ACK, 7000, 0),
                segment(1_000_003, false, ACK, 7001, 13),
            ],
            9190,
        );
        assert!(matches!(c[0], Carries::Segment { again: false, .. }));
        assert!(matches!(c[1], Carries::Segment { again: true, .. }));
        assert!(matches!(
            c[3],
            Carries::Segment {
                start: 0,
                end: 13,
                dir: Dir::Down,
                ..
            }
        ));
        // A connected UDP client's datagram to a closed port, the ICMP, its ECONNREFUSED.
        let refused = io::Error::from_raw_os_error(libc::ECONNREFUSED);
        let client = lane_of(
            "client",
            Side::Client,
            "client",
            vec![
                (10, 0, udp(3)),
                (
                    20,
                    1,
                    Event::Connect {
                        fd: 3,
                        addr: addr(9),
                        kind: Kind::Dgram,
                    },
                ),
                (30, 0, ephemeral(3, 6666)),
                (
                    40,
                    2,
                    Event::SendTo {
                        fd: 3,
                        peer: addr(9),
                        data: b"x",
                    },
                ),
                (
                    50,
                    100,
                    Event::Failed {
                        step: Step::Recvfrom,
                        fd: Some(3),
                        err: &refused,
                    },
                ),
            ],
        );
        let datagram = Packet {
            t_us: 41,
            src: addr(6666),
            dst: addr(9),
            carried: Carried::Udp,
            len: 1,
        };
        let icmp = Packet {
            t_us: 42,
            src: addr(0),
            dst: addr(0),
            carried: Carried::PortUnreachable {
                from: addr(6666),
                to: addr(9),
            },
            len: 29,
        };
        let kernel = Kernel {
            port: 9,
            packets: Some(vec![datagram, icmp]),
            samples: Vec::new(),
        };
        let t = build_seen(vec![client.clone()], &kernel).unwrap();
        assert_eq!(t.sems[0][4], Sem::Refused(6666));
        check(&t).unwrap();
        // Another program's client that took port 9 as its own and met a closed port
        // too: its ICMP quotes port 9 as the source; not this exchange's.
        let mut stray = kernel.clone();
        if let Some(p) = stray.packets.as_mut() {
            p.push(Packet {
                t_us: 43,
                carried: Carried::PortUnreachable {
                    from: addr(9),
                    to: addr(7777),
                },
                ..icmp
            });
        }
        let with_stray = build_seen(vec![client], &stray).unwrap();
        check(&with_stray).unwrap();
        assert_eq!(with_stray.foreign, 1);
        let mut wrong = t.clone();
        wrong.seen[1].before = 5;
        let e = check(&wrong).unwrap_err();
        assert!(e.contains("ICMP port unreachable"), "{e}");
        wrong.seen[0].before = 3;
        let e = check(&wrong).unwrap_err();
        assert!(e.contains("sendto()"), "{e}");
    }

    #[test]
    fn a_waitpid_comes_after_the_exit_of_the_child_it_reaped() {
        let (client, mut server) = forked();
        // The parent reaps the child; its waitpid() was made before the child's exit
        // was traced (a child's trace line can come late).
        server.calls.push(record(
            "server",
            390,
            1,
            Event::Waitpid {
                pid: 4242,
                code: Some(0),
                signal: None,
            },
        ));
        server.calls[7].t_us = 280;
        server.calls[7].dur_us = 10;
        let t = checked(client, server);
        assert_eq!(t.sems[1][8], Sem::Reaped(4242));
        assert!(pos(&t, "server[4242]", "_exit(") < pos(&t, "server", "waitpid("));
        let mut rows = t.rows.clone();
        let exit = rows.remove(pos(&t, "server[4242]", "_exit("));
        rows.push(exit);
        let e = check(&Timeline { rows, ..t.clone() }).unwrap_err();
        assert!(e.contains("it reaped"), "{e}");
    }

    /// Two threads of one server (the trace names both `server`): each process's order
    /// binds only calls that did not overlap, or the packets would make a cycle (thread
    /// 1's read, traced first, returns after thread 2's send began).
    #[test]
    fn a_process_s_overlapping_calls_are_its_threads_in_no_order() {
        use crate::packets::flag::{ACK, PSH, SYN};
        let server = lane_of(
            "server",
            Side::Server,
            "server",
            vec![
                (10, 40, accept(3, 4, 5555)),
                (60, 40, accept(3, 5, 6666)),
                (110, 500, Event::Read { fd: 4, data: b"a" }),
                (300, 5, Event::Write { fd: 5, data: b"b" }),
            ],
        );
        let one = client_lane(0, 20, vec![(540, 2, Event::Write { fd: 3, data: b"a" })]);
        let mut two = client_lane(30, 20, vec![(320, 50, Event::Read { fd: 3, data: b"b" })]);
        two.label = "client 2".into();
        for c in &mut two.calls {
            if c.call == "getsockname" {
                c.local = Some(addr(6666));
            }
        }
        let at = |port| addr(port);
        let packet = |t_us, from: u16, to: u16, flags, seq, len| Packet {
            t_us,
            src: at(from),
            dst: at(to),
            carried: Carried::Tcp { flags, seq, ack: 0 },
            len,
        };
        let kernel = Kernel {
            port: 9190,
            packets: Some(vec![
                packet(12, 5555, 9190, SYN, 100, 0),
                packet(13, 9190, 5555, SYN | ACK, 500, 0),
                packet(14, 5555, 9190, ACK, 101, 0),
                packet(42, 6666, 9190, SYN, 200, 0),
                packet(43, 9190, 6666, SYN | ACK, 600, 0),
                packet(44, 6666, 9190, ACK, 201, 0),
                packet(305, 9190, 6666, PSH | ACK, 601, 1),
                packet(545, 5555, 9190, PSH | ACK, 101, 1),
            ]),
            samples: Vec::new(),
        };
        let t = build_seen(vec![one, two, server], &kernel).unwrap();
        check(&t).unwrap();
        assert!(pos(&t, "server", "write(5") < pos(&t, "server", "read(4)"));
    }
}
