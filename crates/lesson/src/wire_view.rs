//! What the kernel showed of one exchange, as text under its timeline: the packets
//! captured on `lo` (time, direction, TCP flags as tcpdump writes them, payload length;
//! ICMP) and the TCP sockets' states sampled by `sock_diag` (the listener's accept queue
//! and backlog when the server came up, each connection's state after the exchange:
//! TIME_WAIT on the side that closed first). English or Korean. Pure.

use std::net::SocketAddr;

use hello_proto::kernel::{Frame, TcpSocket, TcpState};
use hello_proto::trace::Lang;

use crate::packets::{Carried, Flags, Packet};

/// What the kernel showed of one exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The exchange's port: the server's, or the closed port a datagram went to.
    pub port: u16,
    /// Whether packets were captured at all (the demo may not capture).
    pub captured: bool,
    /// The frames kept, in the order captured: what a pcap file of the exchange holds.
    pub frames: Vec<Frame>,
    /// Those frames taken apart, one packet each.
    pub packets: Vec<Packet>,
    /// Lines about what is missing: packets not kept, states not sampled.
    pub notes: Vec<String>,
    /// The listening socket as the server came up.
    pub listening: Option<TcpSocket>,
    /// The exchange's TCP sockets once it was over (a listener's, if still open, too).
    pub after: Vec<TcpSocket>,
}

impl Observed {
    /// An end of the exchange: `server:PORT` for its port, `client:PORT` otherwise.
    fn end(&self, a: SocketAddr, lang: Lang) -> String {
        let role = match (a.port() == self.port, lang) {
            (true, Lang::En) => "server",
            (true, Lang::Ko) => "서버",
            (false, Lang::En) => "client",
            (false, Lang::Ko) => "클라이언트",
        };
        format!("{role}:{}", a.port())
    }
}

/// The gloss of a state worth a word.
fn gloss(state: TcpState, lang: Lang) -> Option<&'static str> {
    Some(match (state, lang) {
        (TcpState::TimeWait, Lang::En) => "closed first: waits 2 MSL (60 s on Linux) for late segments",
        (TcpState::TimeWait, Lang::Ko) => {
            "먼저 닫은 쪽: 늦게 오는 세그먼트에 대비해 2 MSL(리눅스 60초) 동안 기다림"
        }
        (TcpState::CloseWait, Lang::En) => "the peer has closed; this side has not called close() yet",
        (TcpState::CloseWait, Lang::Ko) => "상대가 닫았고, 이쪽은 아직 close()하지 않음",
        (TcpState::FinWait2, Lang::En) => "closed first; waiting for the peer's FIN",
        (TcpState::FinWait2, Lang::Ko) => "먼저 닫았고, 상대의 FIN을 기다림",
        (TcpState::LastAck, Lang::En) => "closed second; waiting for the ACK of its FIN",
        (TcpState::LastAck, Lang::Ko) => "나중에 닫았고, 자신의 FIN에 대한 ACK를 기다림",
        _ => return None,
    })
}

/// One packet as a listing line: time since the first packet, who to whom, what.
fn packet_line(w: &Observed, p: &Packet, first: u64, lang: Lang) -> String {
    let t = p.t_us.saturating_sub(first);
    let when = format!("+{}.{:03} ms", t / 1000, t % 1000);
    let length = match lang {
        Lang::En => "length",
        Lang::Ko => "길이",
    };
    match p.carried {
        Carried::Tcp { flags, .. } => format!(
            "{when:>13}  {} → {}  TCP [{}] {length} {}",
            w.end(p.src, lang),
            w.end(p.dst, lang),
            Flags(flags),
            p.len
        ),
        Carried::Udp => format!(
            "{when:>13}  {} → {}  UDP {length} {}",
            w.end(p.src, lang),
            w.end(p.dst, lang),
            p.len
        ),
        Carried::PortUnreachable { from, to } => format!(
            "{when:>13}  {} → {}  ICMP port unreachable ({} → {} UDP), {length} {}",
            p.src.ip(),
            p.dst.ip(),
            w.end(from, lang),
            w.end(to, lang),
            p.len
        ),
        Carried::Icmp { kind, code } => format!(
            "{when:>13}  {} → {}  ICMP type {kind} code {code}, {length} {}",
            p.src.ip(),
            p.dst.ip(),
            p.len
        ),
    }
}

/// The listing under an exchange's timeline.
pub fn render(w: &Observed, lang: Lang) -> String {
    let ko = lang == Lang::Ko;
    let mut out = String::new();
    if w.captured {
        out.push_str(&if ko {
            format!(
                "lo에서 캡처한 패킷 {}개 (커널 시각, 첫 패킷 기준):\n",
                w.packets.len()
            )
        } else {
            format!(
                "captured on lo: {} (kernel times, from the first):\n",
                hello_proto::addr::counted(w.packets.len() as u64, "packet")
            )
        });
        let first = w.packets.first().map_or(0, |p| p.t_us);
        for p in &w.packets {
            out.push_str("  ");
            out.push_str(&packet_line(w, p, first, lang));
            out.push('\n');
        }
    }
    if let Some(l) = &w.listening {
        out.push_str(&if ko {
            format!(
                "소켓 상태(sock_diag): 서버가 시작될 때 {} LISTEN, 연결요청 대기 큐 {}개, backlog {}\n",
                l.local, l.rqueue, l.wqueue
            )
        } else {
            format!(
                "socket states (sock_diag): as the server came up, {} LISTEN, accept queue {}, backlog {}\n",
                l.local, l.rqueue, l.wqueue
            )
        });
    }
    let connections: Vec<&TcpSocket> = w.after.iter().filter(|s| s.state != TcpState::Listen).collect();
    if !w.after.is_empty() || w.listening.is_some() {
        out.push_str(if ko {
            "교환이 끝난 뒤 남은 TCP 소켓:"
        } else {
            "TCP sockets left after the exchange:"
        });
        if connections.is_empty() {
            out.push_str(if ko { " 없음\n" } else { " none\n" });
        } else {
            out.push('\n');
        }
        for s in connections {
            let gloss = gloss(s.state, lang)
                .map(|g| format!(" ({g})"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {} ↔ {}  {}{gloss}\n",
                w.end(s.local, lang),
                w.end(s.peer, lang),
                s.state.name()
            ));
        }
    }
    for n in &w.notes {
        out.push_str(n);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::packets::build::{Inner, frame};
    use crate::packets::{flag, parse};

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn hello_observed() -> Observed {
        let (c, s) = (a("127.0.0.1:40000"), a("127.0.0.1:5000"));
        let tcp = |src, dst, flags, payload, t| {
            parse(
                t,
                &frame(
                    src,
                    dst,
                    Inner::Tcp {
                        flags,
                        seq: 0,
                        ack: 0,
                        payload,
                    },
                ),
            )
            .unwrap()
        };
        Observed {
            port: 5000,
            captured: true,
            frames: Vec::new(),
            packets: vec![
                tcp(c, s, flag::SYN, 0, 1_000_000),
                tcp(s, c, flag::SYN | flag::ACK, 0, 1_000_021),
                tcp(s, c, flag::FIN | flag::PSH | flag::ACK, 13, 1_001_500),
            ],
            notes: vec!["capture: 2 more packets not kept".into()],
            listening: Some(TcpSocket {
                state: TcpState::Listen,
                local: s,
                peer: a("0.0.0.0:0"),
                rqueue: 0,
                wqueue: 128,
                inode: 1,
            }),
            after: vec![TcpSocket {
                state: TcpState::TimeWait,
                local: s,
                peer: c,
                rqueue: 0,
                wqueue: 0,
                inode: 0,
            }],
        }
    }

    #[test]
    fn the_listing_says_who_sent_what_when() {
        let text = render(&hello_observed(), Lang::En);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "captured on lo: 3 packets (kernel times, from the first):"
        );
        assert_eq!(
            lines[1].trim(),
            "+0.000 ms  client:40000 → server:5000  TCP [S] length 0"
        );
        assert_eq!(
            lines[2].trim(),
            "+0.021 ms  server:5000 → client:40000  TCP [S.] length 0"
        );
        assert_eq!(
            lines[3].trim(),
            "+1.500 ms  server:5000 → client:40000  TCP [FP.] length 13"
        );
        assert!(lines[4].contains("127.0.0.1:5000 LISTEN, accept queue 0, backlog 128"));
        assert!(lines[6].starts_with("  server:5000 ↔ client:40000  TIME_WAIT (closed first"));
        assert_eq!(lines[7], "capture: 2 more packets not kept");
    }

    #[test]
    fn korean_and_no_capture() {
        let mut w = hello_observed();
        let ko = render(&w, Lang::Ko);
        assert!(ko.starts_with("lo에서 캡처한 패킷 3개"));
        assert!(ko.contains("클라이언트:40000 → 서버:5000  TCP [S] 길이 0"));
        assert!(ko.contains("TIME_WAIT (먼저 닫은 쪽"));
        w.captured = false;
        w.after.clear();
        let en = render(&w, Lang::En);
        assert!(!en.contains("captured on lo"));
        assert!(en.contains("TCP sockets left after the exchange: none"));
    }

    #[test]
    fn icmp_port_unreachable_names_the_quoted_ports() {
        let datagram = frame(a("127.0.0.1:40000"), a("127.0.0.1:9"), Inner::Udp { payload: 6 });
        let icmp = frame(
            a("127.0.0.1:0"),
            a("127.0.0.1:0"),
            Inner::Icmp {
                kind: 3,
                code: 3,
                quoted: &datagram[14..],
            },
        );
        let w = Observed {
            port: 9,
            captured: true,
            packets: vec![parse(5, &datagram).unwrap(), parse(9, &icmp).unwrap()],
            ..Observed::default()
        };
        let text = render(&w, Lang::En);
        assert!(
            text.contains("+0.000 ms  client:40000 → server:9  UDP length 6"),
            "{text}"
        );
        assert!(
            text.contains("+0.004 ms  127.0.0.1 → 127.0.0.1  ICMP port unreachable (client:40000 → server:9 UDP), length 42"),
            "{text}"
        );
    }
}
