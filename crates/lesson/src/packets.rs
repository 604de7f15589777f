//! Captured frames taken apart: an Ethernet frame as `lo` carries it, IPv4 or IPv6, and
//! TCP, UDP or ICMP(v6) in it, into a small [`Packet`]: when, from where to where, the TCP
//! flags and numbers, the payload's length, and for an ICMP "port unreachable" the ports
//! of the datagram it quotes. The lengths come from the headers, so a frame cut to the
//! snap length still says how much it carried. Pure.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hello_proto::kernel::Transport;

/// TCP header flags, as the header holds them.
pub mod flag {
    /// No more data from the sender.
    pub const FIN: u8 = 0x01;
    /// Synchronize sequence numbers: opens a connection.
    pub const SYN: u8 = 0x02;
    /// Reset.
    pub const RST: u8 = 0x04;
    /// Push the data to the application.
    pub const PSH: u8 = 0x08;
    /// The acknowledgement number is valid.
    pub const ACK: u8 = 0x10;
    /// Urgent.
    pub const URG: u8 = 0x20;
    /// ECN echo.
    pub const ECE: u8 = 0x40;
    /// Congestion window reduced.
    pub const CWR: u8 = 0x80;
}

/// What a packet carried above IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carried {
    /// A TCP segment.
    Tcp {
        /// Its flags ([`flag`]).
        flags: u8,
        /// Its sequence number.
        seq: u32,
        /// Its acknowledgement number.
        ack: u32,
    },
    /// A UDP datagram.
    Udp,
    /// An ICMP or ICMPv6 "port unreachable", quoting the datagram that had no taker.
    PortUnreachable {
        /// The quoted datagram's source.
        from: SocketAddr,
        /// The quoted datagram's destination: the closed port.
        to: SocketAddr,
    },
    /// Another ICMP or ICMPv6 message.
    Icmp {
        /// Its type.
        kind: u8,
        /// Its code.
        code: u8,
    },
}

/// One packet, as tcpdump would summarize it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// When it was captured, µs since the Unix epoch.
    pub t_us: u64,
    /// Its source (port 0 for ICMP).
    pub src: SocketAddr,
    /// Its destination (port 0 for ICMP).
    pub dst: SocketAddr,
    /// What it carried.
    pub carried: Carried,
    /// The payload's length: TCP or UDP data, or the whole ICMP message (tcpdump's
    /// `length`).
    pub len: u32,
}

impl Packet {
    /// Whether it belongs to an exchange over `transport` with an end at `at`: a segment
    /// or datagram of that transport from or to `at`, or (UDP) an ICMP error quoting one.
    pub fn concerns(&self, at: SocketAddr, transport: Transport) -> bool {
        match (self.carried, transport) {
            (Carried::Tcp { .. }, Transport::Tcp) | (Carried::Udp, Transport::Udp) => {
                self.src == at || self.dst == at
            }
            (Carried::PortUnreachable { from, to }, Transport::Udp) => from == at || to == at,
            _ => false,
        }
    }

    /// Its TCP flags, if it is a segment.
    pub fn tcp_flags(&self) -> Option<u8> {
        match self.carried {
            Carried::Tcp { flags, .. } => Some(flags),
            _ => None,
        }
    }
}

/// TCP flags as tcpdump writes them: `S`, `S.`, `.`, `P.`, `FP.`, `R.` (`.` is ACK).
pub struct Flags(pub u8);

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (bit, letter) in [
            (flag::FIN, 'F'),
            (flag::SYN, 'S'),
            (flag::RST, 'R'),
            (flag::PSH, 'P'),
            (flag::ACK, '.'),
            (flag::URG, 'U'),
            (flag::ECE, 'E'),
            (flag::CWR, 'W'),
        ] {
            if self.0 & bit != 0 {
                write!(f, "{letter}")?;
            }
        }
        if self.0 == 0 {
            write!(f, "none")?;
        }
        Ok(())
    }
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// An IP header: the two addresses, the protocol above it, where that begins and how
/// many bytes it has (from the header's length fields, not from what was captured).
struct Ip {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    start: usize,
    len: u32,
}

/// The IP header at `at` of `b` (IPv4, or IPv6 without extension headers); `None` for
/// another version, a fragment after the first, or too few bytes.
fn ip(b: &[u8], at: usize) -> Option<Ip> {
    match b.get(at)? >> 4 {
        4 => {
            let ihl = usize::from(b.get(at)? & 0x0f) * 4;
            let total = u32::from(u16_at(b, at + 2)?);
            if ihl < 20 || u16_at(b, at + 6)? & 0x1fff != 0 {
                return None;
            }
            let addr = |i: usize| -> Option<IpAddr> {
                let a: [u8; 4] = b.get(at + i..at + i + 4)?.try_into().ok()?;
                Some(IpAddr::V4(Ipv4Addr::from(a)))
            };
            Some(Ip {
                src: addr(12)?,
                dst: addr(16)?,
                proto: *b.get(at + 9)?,
                start: at + ihl,
                len: total.checked_sub(ihl as u32)?,
            })
        }
        6 => {
            let addr = |i: usize| -> Option<IpAddr> {
                let a: [u8; 16] = b.get(at + i..at + i + 16)?.try_into().ok()?;
                Some(IpAddr::V6(Ipv6Addr::from(a)))
            };
            Some(Ip {
                src: addr(8)?,
                dst: addr(24)?,
                proto: *b.get(at + 6)?,
                start: at + 40,
                len: u32::from(u16_at(b, at + 4)?),
            })
        }
        _ => None,
    }
}

/// The ports of the UDP or TCP header quoted at `at` by an ICMP error, with the quoted
/// IP header's addresses.
fn quoted(b: &[u8], at: usize) -> Option<(SocketAddr, SocketAddr)> {
    let q = ip(b, at)?;
    Some((
        SocketAddr::new(q.src, u16_at(b, q.start)?),
        SocketAddr::new(q.dst, u16_at(b, q.start + 2)?),
    ))
}

/// A captured Ethernet frame (as `lo` carries it) taken apart; `None` for what is not
/// IPv4 or IPv6 carrying TCP, UDP or ICMP, or is too short to tell.
pub fn parse(t_us: u64, frame: &[u8]) -> Option<Packet> {
    let ethertype = u16_at(frame, 12)?;
    if ethertype != 0x0800 && ethertype != 0x86dd {
        return None;
    }
    let ip = ip(frame, 14)?;
    let v6 = ethertype == 0x86dd;
    let at = ip.start;
    let (src_port, dst_port, carried, len) = match (ip.proto, v6) {
        (6, _) => {
            let offset = u32::from(frame.get(at + 12)? >> 4) * 4;
            let carried = Carried::Tcp {
                flags: *frame.get(at + 13)?,
                seq: u32_at(frame, at + 4)?,
                ack: u32_at(frame, at + 8)?,
            };
            (
                u16_at(frame, at)?,
                u16_at(frame, at + 2)?,
                carried,
                ip.len.checked_sub(offset)?,
            )
        }
        (17, _) => {
            let udp_len = u32::from(u16_at(frame, at + 4)?);
            (
                u16_at(frame, at)?,
                u16_at(frame, at + 2)?,
                Carried::Udp,
                udp_len.checked_sub(8)?,
            )
        }
        (1, false) | (58, true) => {
            let (kind, code) = (*frame.get(at)?, *frame.get(at + 1)?);
            // ICMP type 3 code 3; ICMPv6 type 1 code 4. The quoted datagram follows the
            // 8-byte ICMP header.
            let unreachable = if v6 {
                (kind, code) == (1, 4)
            } else {
                (kind, code) == (3, 3)
            };
            let carried = match unreachable.then(|| quoted(frame, at + 8)).flatten() {
                Some((from, to)) => Carried::PortUnreachable { from, to },
                None => Carried::Icmp { kind, code },
            };
            (0, 0, carried, ip.len)
        }
        _ => return None,
    };
    Some(Packet {
        t_us,
        src: SocketAddr::new(ip.src, src_port),
        dst: SocketAddr::new(ip.dst, dst_port),
        carried,
        len,
    })
}

/// Builds frames by hand, for the tests of this module and of the ones that show or
/// write packets.
#[cfg(test)]
pub(crate) mod build {
    use super::*;

    /// What is inside the IP packet.
    pub enum Inner<'a> {
        Tcp {
            flags: u8,
            seq: u32,
            ack: u32,
            payload: usize,
        },
        Udp {
            payload: usize,
        },
        Icmp {
            kind: u8,
            code: u8,
            quoted: &'a [u8],
        },
    }

    /// An Ethernet frame from `src` to `dst` carrying `inner`, whole (not cut).
    pub fn frame(src: SocketAddr, dst: SocketAddr, inner: Inner<'_>) -> Vec<u8> {
        let v6 = src.is_ipv6();
        let (proto, mut l4) = match inner {
            Inner::Tcp {
                flags,
                seq,
                ack,
                payload,
            } => {
                let mut h = Vec::new();
                h.extend_from_slice(&src.port().to_be_bytes());
                h.extend_from_slice(&dst.port().to_be_bytes());
                h.extend_from_slice(&seq.to_be_bytes());
                h.extend_from_slice(&ack.to_be_bytes());
                // A 32-byte header (12 bytes of options, as Linux sends with timestamps).
                h.extend_from_slice(&[8 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
                h.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
                h.resize(h.len() + payload, b'x');
                (6, h)
            }
            Inner::Udp { payload } => {
                let mut h = Vec::new();
                h.extend_from_slice(&src.port().to_be_bytes());
                h.extend_from_slice(&dst.port().to_be_bytes());
                h.extend_from_slice(&((8 + payload) as u16).to_be_bytes());
                h.extend_from_slice(&[0, 0]);
                h.resize(h.len() + payload, b'y');
                (17, h)
            }
            Inner::Icmp { kind, code, quoted } => {
                let mut h = vec![kind, code, 0, 0, 0, 0, 0, 0];
                h.extend_from_slice(quoted);
                (if v6 { 58 } else { 1 }, h)
            }
        };
        let mut f = vec![0u8; 12];
        match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => {
                f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
                f.extend_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
                f.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
            }
            (IpAddr::V6(s), IpAddr::V6(d)) => {
                f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
                f.extend_from_slice(&(l4.len() as u16).to_be_bytes());
                f.extend_from_slice(&[proto, 64]);
                f.extend_from_slice(&s.octets());
                f.extend_from_slice(&d.octets());
            }
            _ => panic!("one family"),
        }
        f.append(&mut l4);
        f
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::build::{Inner, frame};
    use super::*;
    use proptest::prelude::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_greeting_and_the_fin_in_one_segment() {
        let f = frame(
            a("127.0.0.1:5000"),
            a("127.0.0.1:40000"),
            Inner::Tcp {
                flags: flag::FIN | flag::PSH | flag::ACK,
                seq: 7,
                ack: 9,
                payload: 13,
            },
        );
        let p = parse(42, &f).unwrap();
        assert_eq!(p.len, 13);
        assert_eq!(Flags(p.tcp_flags().unwrap()).to_string(), "FP.");
        assert_eq!(
            (p.src, p.dst, p.t_us),
            (a("127.0.0.1:5000"), a("127.0.0.1:40000"), 42)
        );
        let (ours, other) = (a("127.0.0.1:5000"), a("127.0.0.2:5000"));
        assert!(p.concerns(ours, Transport::Tcp) && !p.concerns(a("127.0.0.1:5001"), Transport::Tcp));
        assert!(
            !p.concerns(other, Transport::Tcp),
            "the same port at another address"
        );
        assert!(!p.concerns(ours, Transport::Udp), "a segment is no datagram");
        // Cut to 60 bytes, as a snap length would: the length still comes from the headers.
        assert_eq!(parse(42, &f[..66]).unwrap().len, 13);
    }

    #[test]
    fn flags_are_written_as_tcpdump_writes_them() {
        for (bits, text) in [
            (flag::SYN, "S"),
            (flag::SYN | flag::ACK, "S."),
            (flag::ACK, "."),
            (flag::PSH | flag::ACK, "P."),
            (flag::RST | flag::ACK, "R."),
            (flag::RST, "R"),
            (0, "none"),
        ] {
            assert_eq!(Flags(bits).to_string(), text);
        }
    }

    #[test]
    fn port_unreachable_quotes_the_datagram_in_v4_and_v6() {
        for (client, closed, host, kind, code) in [
            ("127.0.0.1:40000", "127.0.0.1:9", "127.0.0.1:0", 3, 3),
            ("[::1]:40000", "[::1]:9", "[::1]:0", 1, 4),
        ] {
            let datagram = frame(a(client), a(closed), Inner::Udp { payload: 6 });
            let f = frame(
                a(host),
                a(host),
                Inner::Icmp {
                    kind,
                    code,
                    quoted: &datagram[14..],
                },
            );
            let p = parse(1, &f).unwrap();
            assert_eq!(
                p.carried,
                Carried::PortUnreachable {
                    from: a(client),
                    to: a(closed)
                }
            );
            assert!(p.concerns(a(closed), Transport::Udp) && !p.concerns(a(closed), Transport::Tcp));
            let q = datagram.len() - 14;
            assert_eq!(p.len, 8 + q as u32, "the ICMP message's length");
            // Another ICMP message is not port unreachable, and concerns no port.
            let echo = frame(
                a(host),
                a(host),
                Inner::Icmp {
                    kind: 8,
                    code: 0,
                    quoted: &[],
                },
            );
            assert!(matches!(parse(1, &echo).unwrap().carried, Carried::Icmp { .. }));
            assert!(!parse(1, &echo).unwrap().concerns(a(closed), Transport::Udp));
        }
    }

    #[test]
    fn what_is_not_ip_or_is_cut_short_is_none() {
        assert!(parse(0, &[]).is_none());
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(parse(0, &arp).is_none());
        let f = frame(a("127.0.0.1:1"), a("127.0.0.1:2"), Inner::Udp { payload: 0 });
        for cut in 0..f.len() - 1 {
            // Too short to hold the ports: none, never a panic.
            if cut < 14 + 20 + 6 {
                assert!(parse(0, &f[..cut]).is_none(), "cut at {cut}");
            }
        }
    }

    proptest! {
        #[test]
        fn tcp_and_udp_come_back_as_built(
            v6 in any::<bool>(),
            sport in 1u16.., dport in 1u16..,
            flags in any::<u8>(), seq in any::<u32>(), ack in any::<u32>(),
            payload in 0usize..3000, udp in any::<bool>(), t in any::<u64>(),
        ) {
            let host = if v6 { "::1" } else { "127.0.0.1" };
            let (s, d) = (SocketAddr::new(host.parse().unwrap(), sport), SocketAddr::new(host.parse().unwrap(), dport));
            let inner = if udp { Inner::Udp { payload } } else { Inner::Tcp { flags, seq, ack, payload } };
            let f = frame(s, d, inner);
            let p = parse(t, &f).unwrap();
            prop_assert_eq!((p.src, p.dst, p.len, p.t_us), (s, d, payload as u32, t));
            if udp {
                prop_assert_eq!(p.carried, Carried::Udp);
            } else {
                prop_assert_eq!(p.carried, Carried::Tcp { flags, seq, ack });
            }
            // Any cut of it parses the same or not at all, and never panics.
            let cut = (payload % f.len()).max(1);
            if let Some(q) = parse(t, &f[..cut]) {
                prop_assert_eq!(q, p);
            }
        }

        #[test]
        fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(0, &bytes);
        }
    }
}
