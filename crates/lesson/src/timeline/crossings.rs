//! What crossed between the programs, as the calls tell it: the [`Arrow`]s of the
//! picture (a connect to its accept, each send to the receives that got its bytes, a FIN
//! to its end of stream, an RST to its ECONNRESET, a datagram to its `recvfrom()`), the
//! edges into each readiness report from what made its socket ready, and the packet each
//! call needed before it could return.

use std::collections::HashMap;

use super::{Arrow, At, Dir, Sem, Wake, Wire};

/// A packet a call needed before it could return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Need {
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
pub(super) struct Senders {
    pub(super) connects: HashMap<u16, At>,
    pub(super) sends: HashMap<(u16, Dir), Vec<(At, u64)>>,
    pub(super) fins: HashMap<(u16, Dir), At>,
    pub(super) resets: HashMap<(u16, Dir), At>,
    pub(super) datagrams: HashMap<(u16, u16), Vec<At>>,
}

impl Senders {
    pub(super) fn of(sems: &[Vec<Sem>]) -> Senders {
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
    pub(super) fn send_of(&self, k: u16, d: Dir, end: u64) -> Option<At> {
        self.sends
            .get(&(k, d))
            .and_then(|list| list.iter().find(|(_, total)| *total >= end))
            .map(|(at, _)| *at)
    }
}

/// What crosses between the lanes: the arrows of the picture (each also an edge), the
/// edges into each readiness report from what made its socket ready, and the packets
/// each call needed.
pub(super) struct Crossings {
    pub(super) arrows: Vec<Arrow>,
    pub(super) readies: Vec<(At, At)>,
    pub(super) needs: Vec<(Need, At)>,
}

/// The edges between calls of different lanes (what happened before what across the
/// network), and the arrows of the picture that go with them; then the edges into each
/// readiness report from what made its socket ready; and what packet each call needed.
pub(super) fn crossings(sems: &[Vec<Sem>], wakes: &[Vec<Vec<Wake>>], senders: &Senders) -> Crossings {
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

#[cfg(test)]
mod tests {
    use std::io;

    use hello_proto::error::Step;
    use hello_proto::trace::Event;

    use super::super::fixtures::{
        accept, addr, by_return_time, checked, client_lane, lane_of, pos, tcp, udp,
    };
    use super::super::{Dir, Sem, Side, Wire, check};

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
        assert!(
            check(&by_return_time(&t)).is_ok(),
            "returns happen to be in order here"
        );
        let mut wrong = t.clone();
        let last = wrong.rows.iter().position(|&r| r == (0, 4)).unwrap();
        let reset_row = wrong.rows.iter().position(|&r| r == (1, 3)).unwrap();
        wrong.rows.swap(last, reset_row);
        assert!(check(&wrong).unwrap_err().contains("RST"));
    }
}
