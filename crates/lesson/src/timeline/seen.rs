//! What the kernel showed of an exchange, as the timeline places it: the socket
//! [`Sample`]s and the packets captured on `lo`, what each packet [`Carries`] (TCP offsets
//! counted from each SYN), the calls that caused each packet, and which packet a call
//! needed.

use std::collections::HashMap;

use hello_proto::kernel::{TcpSocket, TcpState};

use super::crossings::{Need, Senders};
use super::{At, Dir};
use crate::packets::{Carried, Packet, flag};

/// TCP sockets as `sock_diag` showed them at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// When they were sampled, µs since the Unix epoch (the trace's and the capture's
    /// clock).
    pub t_us: u64,
    /// The exchange's sockets then.
    pub sockets: Vec<TcpSocket>,
}

impl Sample {
    /// The socket listening on `port` in this sample (its receive queue is the accept
    /// queue's length), if it was there.
    pub fn listener(&self, port: u16) -> Option<&TcpSocket> {
        self.sockets
            .iter()
            .find(|s| s.state == TcpState::Listen && s.local.port() == port)
    }
}

/// What the kernel showed of an exchange, for [`build_seen`](super::build_seen).
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
/// The captured packet a need names, by index.
pub(super) fn needed(c: &[Carries], need: Need) -> Option<usize> {
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
pub(super) fn causes(c: &[Carries], senders: &Senders) -> Vec<Vec<At>> {
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

#[cfg(test)]
mod tests {
    use std::io;

    use hello_proto::error::Step;
    use hello_proto::trace::{Event, Kind};

    use super::super::fixtures::{addr, ephemeral, lane_of, segment, udp};
    use super::super::{Dir, Sem, Side, build_seen, check};
    use super::*;

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
}
