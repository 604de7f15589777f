//! The causal timeline: both programs' calls in one order in which nothing is shown
//! before what caused it.
//!
//! Every traced call carries when it was made and how long it took, on the clock both
//! programs share. Ordering by either time alone is wrong: a blocked `read()` starts
//! before the `write()` that ends it, and a `write()` can return after the `read()` that
//! got its bytes. So the order is built from what *happened before* what:
//!
//! - each process's calls stay in the order it made them;
//! - a `connect()` comes before the `accept()` that returned its connection;
//! - bytes are sent before they are received: a `read()` comes after the `write()` or
//!   `send()` that sent the last byte it got (TCP is a byte stream in each direction, so
//!   counting bytes on each side says which send that was);
//! - a FIN comes before the end of stream it causes (`shutdown()` or `close()` before
//!   the peer's `read() = 0`), an RST (the `close()` after `SO_LINGER` 0) before the
//!   ECONNRESET it causes, and the k-th datagram sent from one port to another before the
//!   k-th received;
//! - a fork model child's calls come after the `fork()` that made it.
//!
//! Among the calls free to come next, the one made first goes first (a topological sort
//! of those edges, earliest start first). [`check`] verifies an order independently, by
//! counting bytes, FINs, connects and datagrams as it walks the rows.
//!
//! Pure: traces in, an order out.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::line::{Act, Call};

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
    pub calls: Vec<Call>,
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
    /// `connect()` of the connection.
    Connect(u16),
    /// `accept()` of the connection.
    Accept(u16),
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
}

/// What crosses the network between two calls (all of it inferred from the calls).
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

/// Both programs' calls in causal order.
#[derive(Debug, Clone)]
pub struct Timeline {
    /// The programs.
    pub lanes: Vec<Lane>,
    /// What each call means, per lane.
    pub sems: Vec<Vec<Sem>>,
    /// The calls in order.
    pub rows: Vec<At>,
    /// What crossed between calls.
    pub arrows: Vec<Arrow>,
}

impl Timeline {
    /// When the first call of any lane was made: the picture's zero.
    pub fn origin(&self) -> u64 {
        self.lanes
            .iter()
            .flat_map(|l| l.calls.iter().map(|c| c.start))
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
}

/// A socket of one process, as the calls on its descriptor reveal it.
#[derive(Debug, Default, Clone, Copy)]
struct Socket {
    udp: bool,
    /// TCP: the client's port (the connection's name); UDP: its own port.
    port: Option<u16>,
    /// The last `setsockopt(SO_LINGER 0)`: the close sends RST, not FIN.
    reset: bool,
}

/// Works out what each call of a lane means: which socket each descriptor is at each
/// call (descriptors are reused after `close()`, and a fork model child starts with a
/// copy of its parent's), then each socket's port.
fn meanings(lane: &Lane) -> Vec<Sem> {
    let mut sockets: Vec<Socket> = Vec::new();
    // Per call: the socket it acts on.
    let mut on: Vec<Option<usize>> = vec![None; lane.calls.len()];
    // The descriptor tables, per process.
    let mut tables: HashMap<&str, HashMap<i32, usize>> = HashMap::new();
    // A parent's table at each fork, by the child's name (`server[4242]`).
    let mut at_fork: HashMap<String, HashMap<i32, usize>> = HashMap::new();
    // The close just after a fork closes a copy: no FIN.
    let mut copy_close: Vec<bool> = vec![false; lane.calls.len()];
    let mut after_fork: HashMap<&str, bool> = HashMap::new();
    // Parents first: a child starts with its parent's table as it was at the fork.
    let mut order: Vec<usize> = (0..lane.calls.len()).collect();
    order.sort_by_key(|&i| lane.calls[i].who.contains('['));
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
        let act = call.act();
        let fork_before =
            after_fork.insert(who, matches!(act, Act::Forked) || call.call.contains("in child"));
        match act {
            Act::Socket { fd, udp } => {
                sockets.push(Socket {
                    udp,
                    ..Socket::default()
                });
                table.insert(fd, sockets.len() - 1);
                on[i] = Some(sockets.len() - 1);
            }
            Act::Accept { fd, peer } => {
                sockets.push(Socket {
                    port: Some(peer),
                    ..Socket::default()
                });
                table.insert(fd, sockets.len() - 1);
                on[i] = Some(sockets.len() - 1);
            }
            Act::Forked => {
                if let Some(pid) = call.call.strip_prefix("fork() = ") {
                    at_fork.insert(format!("{}[{pid}]", who), table.clone());
                }
            }
            Act::Close { fd } => {
                on[i] = table.remove(&fd);
                copy_close[i] = fork_before == Some(true);
            }
            Act::Bind { fd, .. }
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
            Act::Other => {}
        }
        // A socket's port, as its calls reveal it.
        if let Some(s) = on[i].and_then(|s| sockets.get_mut(s)) {
            match act {
                Act::Bind { port, .. } | Act::LocalPort { port, .. } if s.port.is_none() => {
                    s.port = Some(port)
                }
                Act::Linger0 { .. } => s.reset = true,
                _ => {}
            }
        }
    }
    let (out, into) = match lane.side {
        Side::Client => (Dir::Up, Dir::Down),
        Side::Server => (Dir::Down, Dir::Up),
    };
    lane.calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let Some(s) = on[i].and_then(|s| sockets.get(s)) else {
                return Sem::Local;
            };
            let Some(port) = s.port else {
                return Sem::Local;
            };
            match (call.act(), s.udp) {
                (Act::Connect { .. }, false) => Sem::Connect(port),
                (Act::Accept { .. }, false) => Sem::Accept(port),
                (Act::Send { n, .. }, false) => Sem::Send(port, out, n),
                (Act::Receive { n, .. }, false) => Sem::Receive(port, into, n),
                (Act::Eof { .. }, false) => Sem::Eof(port, into),
                (Act::Shutdown { .. }, false) => Sem::Fin(port, out),
                (Act::Close { .. }, false) if copy_close[i] => Sem::Local,
                (Act::Close { .. }, false) if s.reset => Sem::Reset(port, out),
                (Act::Close { .. }, false) => Sem::Fin(port, out),
                (Act::Reset { .. }, false) => Sem::ResetSeen(port, into),
                (Act::SendTo { port: to, n, .. }, true) => Sem::DatagramOut(port, to, n),
                (Act::RecvFrom { port: from, n, .. }, true) => Sem::DatagramIn(from, port, n),
                _ => Sem::Local,
            }
        })
        .collect()
}

/// The edges between calls of different lanes (what happened before what across the
/// network), and the arrows of the picture that go with them.
fn crossings(sems: &[Vec<Sem>]) -> Vec<Arrow> {
    let mut connects: HashMap<u16, At> = HashMap::new();
    // Per direction of a connection: each send's row and the total bytes after it.
    let mut sends: HashMap<(u16, Dir), Vec<(At, u64)>> = HashMap::new();
    let mut fins: HashMap<(u16, Dir), At> = HashMap::new();
    let mut resets: HashMap<(u16, Dir), At> = HashMap::new();
    let mut datagrams: HashMap<(u16, u16), Vec<At>> = HashMap::new();
    for (lane, sem) in sems.iter().enumerate() {
        for (i, s) in sem.iter().enumerate() {
            let at = (lane, i);
            match *s {
                Sem::Connect(k) => {
                    connects.entry(k).or_insert(at);
                }
                Sem::Send(k, d, n) => {
                    let list = sends.entry((k, d)).or_default();
                    let before = list.last().map_or(0, |(_, total)| *total);
                    list.push((at, before + n));
                }
                Sem::Fin(k, d) => {
                    fins.entry((k, d)).or_insert(at);
                }
                Sem::Reset(k, d) => {
                    resets.entry((k, d)).or_insert(at);
                }
                Sem::DatagramOut(from, to, _) => datagrams.entry((from, to)).or_default().push(at),
                _ => {}
            }
        }
    }
    let mut arrows = Vec::new();
    let mut received: HashMap<(u16, Dir), u64> = HashMap::new();
    let mut taken: HashMap<(u16, u16), usize> = HashMap::new();
    for (lane, sem) in sems.iter().enumerate() {
        for (i, s) in sem.iter().enumerate() {
            let to = (lane, i);
            let mut link = |from: Option<At>, wire: Wire| {
                if let Some(from) = from {
                    arrows.push(Arrow { from, to, wire });
                }
            };
            match *s {
                Sem::Accept(k) => link(connects.get(&k).copied(), Wire::Handshake),
                Sem::Receive(k, d, n) => {
                    let got = received.entry((k, d)).or_insert(0);
                    let first = *got;
                    *got += n;
                    let last = *got;
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
                Sem::Eof(k, d) => link(fins.get(&(k, d)).copied(), Wire::Fin),
                Sem::ResetSeen(k, d) => link(resets.get(&(k, d)).copied(), Wire::Rst),
                Sem::DatagramIn(from_port, to_port, n) => {
                    let k = taken.entry((from_port, to_port)).or_insert(0);
                    let sent = datagrams.get(&(from_port, to_port)).and_then(|v| v.get(*k));
                    link(sent.copied(), Wire::Datagram(n));
                    *k += 1;
                }
                _ => {}
            }
        }
    }
    arrows
}

/// Orders the lanes' calls causally (see the module's doc). An error if the traces
/// contradict themselves (a cycle: a call that would have to come before its own cause).
pub fn build(lanes: Vec<Lane>) -> Result<Timeline, String> {
    let sems: Vec<Vec<Sem>> = lanes.iter().map(meanings).collect();
    let arrows = crossings(&sems);
    let index = |(lane, i): At| -> usize { lanes[..lane].iter().map(|l| l.calls.len()).sum::<usize>() + i };
    let total: usize = lanes.iter().map(|l| l.calls.len()).sum();
    let mut after: Vec<Vec<At>> = vec![Vec::new(); total];
    let mut waiting: Vec<usize> = vec![0; total];
    let mut edge = |from: At, to: At, after: &mut Vec<Vec<At>>| {
        after[index(from)].push(to);
        waiting[index(to)] += 1;
    };
    for (l, lane) in lanes.iter().enumerate() {
        // Each process's own order; a child's first call after its parent's fork().
        let mut last: HashMap<&str, usize> = HashMap::new();
        let mut forks: HashMap<String, usize> = HashMap::new();
        for (i, call) in lane.calls.iter().enumerate() {
            if let Some(pid) = call
                .call
                .strip_prefix("fork() = ")
                .filter(|r| !r.contains("in child"))
            {
                forks.insert(format!("{}[{pid}]", call.who), i);
            }
        }
        for (i, call) in lane.calls.iter().enumerate() {
            match last.insert(call.who.as_str(), i) {
                Some(prev) => edge((l, prev), (l, i), &mut after),
                None => {
                    if let Some(&fork) = forks.get(&call.who) {
                        edge((l, fork), (l, i), &mut after);
                    }
                }
            }
        }
    }
    for a in &arrows {
        edge(a.from, a.to, &mut after);
    }
    let start = |(lane, i): At| lanes[lane].calls[i].start;
    let mut ready: BinaryHeap<Reverse<(u64, usize, usize)>> = BinaryHeap::new();
    for (l, lane) in lanes.iter().enumerate() {
        for i in 0..lane.calls.len() {
            if waiting[index((l, i))] == 0 {
                ready.push(Reverse((start((l, i)), l, i)));
            }
        }
    }
    let mut rows = Vec::with_capacity(total);
    while let Some(Reverse((_, l, i))) = ready.pop() {
        rows.push((l, i));
        for &next in &after[index((l, i))] {
            let w = &mut waiting[index(next)];
            *w -= 1;
            if *w == 0 {
                ready.push(Reverse((start(next), next.0, next.1)));
            }
        }
    }
    if rows.len() != total {
        return Err(format!(
            "the traces contradict themselves: {} of {total} calls could not be ordered",
            total - rows.len()
        ));
    }
    Ok(Timeline {
        lanes,
        sems,
        rows,
        arrows,
    })
}

/// Checks an order by walking it, independently of how [`build`] made it: no receive
/// before the bytes it got were sent, no end of stream before the FIN, no `accept()`
/// before its `connect()` began, no datagram received before one was sent from that
/// port to that port, and each process's calls in their own order. Says what is wrong.
pub fn check(t: &Timeline) -> Result<(), String> {
    let mut sent: HashMap<(u16, Dir), u64> = HashMap::new();
    let mut received: HashMap<(u16, Dir), u64> = HashMap::new();
    let mut fin: HashMap<(u16, Dir), bool> = HashMap::new();
    let mut reset: HashMap<(u16, Dir), bool> = HashMap::new();
    let mut connected: HashMap<u16, bool> = HashMap::new();
    let mut dgrams: HashMap<(u16, u16), i64> = HashMap::new();
    let mut next_of: HashMap<(usize, &str), usize> = HashMap::new();
    let mut seen = vec![Vec::new(); t.lanes.len()];
    for (l, lane) in t.lanes.iter().enumerate() {
        seen[l] = vec![false; lane.calls.len()];
    }
    for &(l, i) in &t.rows {
        let call = &t.lanes[l].calls[i];
        let what = || format!("{} {:?}", t.lanes[l].label, call.call);
        // Each process's calls in their order: every earlier call of it already shown.
        let from = next_of.entry((l, call.who.as_str())).or_insert(0);
        let calls = &t.lanes[l].calls;
        let skipped = (*from..i).any(|j| calls[j].who == call.who && !seen[l][j]);
        if skipped {
            return Err(format!("{} shown before its own earlier call", what()));
        }
        *from = i;
        seen[l][i] = true;
        match t.sems[l][i] {
            Sem::Connect(k) => {
                connected.insert(k, true);
            }
            Sem::Accept(k) if !connected.get(&k).copied().unwrap_or(false) => {
                return Err(format!("{} shown before the connect() it accepts", what()));
            }
            Sem::Send(k, d, n) => *sent.entry((k, d)).or_insert(0) += n,
            Sem::Receive(k, d, n) => {
                let got = received.entry((k, d)).or_insert(0);
                *got += n;
                let had = sent.get(&(k, d)).copied().unwrap_or(0);
                if *got > had {
                    return Err(format!("{} shown when only {had} of its bytes were sent", what()));
                }
            }
            Sem::Fin(k, d) => {
                fin.insert((k, d), true);
            }
            Sem::Eof(k, d) if !fin.get(&(k, d)).copied().unwrap_or(false) => {
                return Err(format!("{} shown before the FIN that ends the stream", what()));
            }
            Sem::Reset(k, d) => {
                reset.insert((k, d), true);
            }
            Sem::ResetSeen(k, d) if !reset.get(&(k, d)).copied().unwrap_or(false) => {
                return Err(format!("{} shown before the RST that caused it", what()));
            }
            Sem::DatagramOut(a, b, _) => *dgrams.entry((a, b)).or_insert(0) += 1,
            Sem::DatagramIn(a, b, _) => {
                let left = dgrams.entry((a, b)).or_insert(0);
                *left -= 1;
                if *left < 0 {
                    return Err(format!("{} shown before its datagram was sent", what()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::line::parse;

    /// One client and the server, ordered and checked.
    fn checked(client: &str, server: &str) -> Timeline {
        let t = build(vec![
            lane("client", Side::Client, client),
            lane("server", Side::Server, server),
        ])
        .unwrap();
        check(&t).unwrap();
        t
    }

    fn lane(label: &str, side: Side, text: &str) -> Lane {
        Lane {
            label: label.to_string(),
            side,
            calls: text.lines().filter_map(parse).collect(),
        }
    }

    /// An echo exchange as it was once printed wrong: the server's read() returned
    /// before the client's write() did, and the server's accept() before the client's
    /// connect() (times are when each call was made, and how long it took).
    fn racy() -> Vec<Lane> {
        let server = "\
00:00:00.000100 +0µs server  socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3  # [textbook] a
00:00:00.000110 +0µs server  bind(3, 127.0.0.1:9190) = 0  # [textbook] a
00:00:00.000120 +0µs server  listen(3, 4096) = 0  # [textbook] a
00:00:00.000130 +900µs server  accept(3) = 4, peer 127.0.0.1:5555  # [textbook] a
00:00:00.001040 +300µs server  read(4) = 6 \"hello\\0\"  # [textbook] a
00:00:00.001350 +5µs server  send(4, \"5 : hello\\0\", MSG_MORE) = 10  # [added] a
00:00:00.001360 +1µs server  shutdown(4, SHUT_WR) = 0  # [added] a
00:00:00.001370 +2µs server  read(4) = 0  # [textbook] a
00:00:00.001380 +1µs server  close(4) = 0  # [textbook] a
";
        let client = "\
00:00:00.000800 +0µs client  socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3  # [textbook] a
00:00:00.000900 +200µs client  connect(3, 127.0.0.1:9190) = 0  # [textbook] a
00:00:00.001110 +0µs client  getsockname(3) = 127.0.0.1:5555  # [added] a
00:00:00.001200 +300µs client  write(3, \"hello\\0\") = 6  # [textbook] a
00:00:00.001340 +1µs client  shutdown(3, SHUT_WR) = 0  # [added] a
00:00:00.001345 +20µs client  read(3) = 10 \"5 : hello\\0\"  # [textbook] a
00:00:00.001390 +1µs client  read(3) = 0  # [textbook] a
00:00:00.001400 +1µs client  close(3) = 0  # [textbook] a
";
        vec![
            lane("client", Side::Client, client),
            lane("server", Side::Server, server),
        ]
    }

    #[test]
    fn the_causal_order_puts_every_receive_after_its_send() {
        let t = build(racy()).unwrap();
        check(&t).unwrap();
        let pos = |s: &str| {
            t.rows
                .iter()
                .position(|&(l, i)| t.lanes[l].calls[i].call.starts_with(s) && t.lanes[l].label == "server")
        };
        let cpos = |s: &str| {
            t.rows
                .iter()
                .position(|&(l, i)| t.lanes[l].calls[i].call.starts_with(s) && t.lanes[l].label == "client")
        };
        assert!(cpos("connect(").unwrap() < pos("accept(").unwrap());
        assert!(cpos("write(").unwrap() < pos("read(4) = 6").unwrap());
        assert!(pos("send(").unwrap() < cpos("read(3) = 10").unwrap());
        assert!(cpos("shutdown(").unwrap() < pos("read(4) = 0").unwrap());
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
        let client = "\
00:00:00.000100 +0µs client  socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3  # [textbook] a
00:00:00.000200 +10µs client  connect(3, 127.0.0.1:9190) = 0  # [textbook] a
00:00:00.000300 +0µs client  getsockname(3) = 127.0.0.1:5555  # [added] a
00:00:00.000400 +1µs client  write(3, \"hel\") = 3  # [textbook] a
00:00:00.000900 +1µs client  write(3, \"lo\\0\") = 3  # [textbook] a
00:00:00.002000 +0µs client  socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP) = 4  # [textbook] a
00:00:00.002100 +5µs client  sendto(4, \"x\", 127.0.0.1:9191) = 1  # [textbook] a
00:00:00.002110 +0µs client  getsockname(4) = 127.0.0.1:6666  # [added] a
00:00:00.002120 +50µs client  recvfrom(4) = 1 \"y\", from 127.0.0.1:9191  # [textbook] a
";
        let server = "\
00:00:00.000050 +0µs server  socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3  # [textbook] a
00:00:00.000060 +300µs server  accept(3) = 4, peer 127.0.0.1:5555  # [textbook] a
00:00:00.000500 +100µs server  read(4) = 6 \"hello\\0\"  # [textbook] a
00:00:00.000070 +0µs server  socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP) = 5  # [textbook] a
00:00:00.000080 +0µs server  bind(5, 127.0.0.1:9191) = 0  # [textbook] a
00:00:00.000090 +2100µs server  recvfrom(5) = 1 \"x\", from 127.0.0.1:6666  # [textbook] a
00:00:00.002150 +1µs server  sendto(5, \"y\", 127.0.0.1:6666) = 1  # [textbook] a
";
        let t = checked(client, server);
        let pos = |s: &str| {
            t.rows
                .iter()
                .position(|&(l, i)| t.lanes[l].calls[i].call.starts_with(s))
                .unwrap()
        };
        assert!(pos("write(3, \"lo") < pos("read(4)"));
        assert!(pos("sendto(4") < pos("recvfrom(5)"));
        assert!(pos("sendto(5") < pos("recvfrom(4)"));
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
        let server = "\
00:00:00.000100 +100µs server  accept(3) = 4, peer 127.0.0.1:5555  # [textbook] a
00:00:00.000300 +1µs server  send(4, \"12 : aaaa\", 0) = 9  # [textbook] a
00:00:00.000900 +1µs server  setsockopt(4, SOL_SOCKET, SO_LINGER, {1, 0}) = 0  # [added] a
00:00:00.000910 +1µs server  close(4) = 0  # [textbook] a
";
        let client = "\
00:00:00.000050 +0µs client  socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3  # [textbook] a
00:00:00.000060 +30µs client  connect(3, 127.0.0.1:9190) = 0  # [textbook] a
00:00:00.000095 +0µs client  getsockname(3) = 127.0.0.1:5555  # [added] a
00:00:00.000400 +1µs client  read(3) = 9 \"12 : aaaa\"  # [textbook] a
00:00:00.000500 +600µs client  read(3) = -1 ECONNRESET (Connection reset by peer)  # [textbook] a
";
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

    #[test]
    fn a_fork_model_child_starts_with_its_parents_descriptors() {
        let server = "\
00:00:00.000100 +100µs server  accept(3) = 4, peer 127.0.0.1:5555  # [textbook] a
00:00:00.000210 +50µs server  fork() = 4242  # [textbook] a
00:00:00.000270 +1µs server  close(4) = 0  # [textbook] copy
00:00:00.000250 +0µs server[4242]  fork() = 0, in child 4242  # [textbook] a
00:00:00.000300 +2µs server[4242]  send(4, \"hi\\0\", MSG_MORE) = 3  # [added] a
00:00:00.000310 +2µs server[4242]  shutdown(4, SHUT_WR) = 0  # [added] a
";
        let client = "\
00:00:00.000050 +0µs client  socket(AF_INET, SOCK_STREAM, IPPROTO_TCP) = 3  # [textbook] a
00:00:00.000060 +30µs client  connect(3, 127.0.0.1:9190) = 0  # [textbook] a
00:00:00.000095 +0µs client  getsockname(3) = 127.0.0.1:5555  # [added] a
00:00:00.000097 +300µs client  read(3) = 3 \"hi\\0\"  # [textbook] a
00:00:00.000400 +3µs client  read(3) = 0  # [textbook] a
";
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
}
