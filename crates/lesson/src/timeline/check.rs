//! The independent check of an order: a walk down the rows that counts what each side
//! has shown (bytes sent and received, FINs, RSTs, connects, datagrams, exits, and the
//! packets drawn) and fails at the first effect shown before its cause.

use std::collections::HashMap;

use super::meaning::{before_in_process, parent_of};
use super::{Carries, Dir, Seen, Sem, Step, Timeline, Wake};
use crate::packets::flag;

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

/// Checks an order by walking it, independently of how [`build`](super::build) made it: no receive
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

#[cfg(test)]
mod tests {
    use super::super::fixtures::{by_return_time, epoll_lanes, pos, racy};
    use super::super::{At, Dir, Timeline, Wake, build};
    use super::*;

    #[test]
    fn the_check_catches_what_the_return_time_order_got_wrong() {
        let t = build(racy()).unwrap();
        check(&t).unwrap();
        let e = check(&by_return_time(&t)).unwrap_err();
        assert!(
            e.contains("accept(3) = 4") && e.contains("before the connect() it accepts"),
            "{e}"
        );
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
}
