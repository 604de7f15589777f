//! The order itself: every call, packet and sample a node, every "happened before" an
//! edge (each process's own order, a fork before its child, a signal's exit before its
//! EINTR, the crossings, each packet after its cause and before the call that needed
//! it), then a topological sort that takes, of the nodes free to come next, the one made
//! first.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::crossings::{Crossings, Senders, crossings};
use super::meaning::{before_in_process, interruptions, meanings, reapings};
use super::seen::{Carries, Kernel, Placed, Seen, carries, causes, needed};
use super::{At, Lane, Sem, Timeline, Wake};
use crate::line::{Act, act};
use crate::packets::Packet;

/// Orders the lanes' calls causally (the rules are [`timeline`](super)'s). An error if the traces
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
    // What each kept packet carries is what it carried among all: `carries` keeps its
    // state per connection and direction, and whole connections are kept or left out.
    let (packets, c): (Vec<Packet>, Vec<Carries>) = all
        .iter()
        .copied()
        .zip(carries(all, kernel.port))
        .filter(|(_, c)| match *c {
            Carries::Segment { k, .. } => connection(k),
            Carries::Datagram(a, b, _) | Carries::Unreachable(a, b) => sent(a, b),
            Carries::Other => false,
        })
        .unzip();
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

#[cfg(test)]
mod tests {
    use hello_proto::trace::Event;

    use super::super::fixtures::{
        accept, addr, checked, client_lane, forked, lane_of, one_exchange, one_exchange_kernel, pos, racy,
        segment,
    };
    use super::super::{Kernel, Sem, Side, Timeline, Wire, check};
    use super::*;
    use crate::line::record;
    use crate::packets::{Carried, Packet};

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
