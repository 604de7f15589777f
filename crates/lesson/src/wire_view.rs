//! What the kernel showed of one exchange, as data ([`Observed`]: the frames captured on
//! `lo` and their packets, the TCP sockets sampled by `sock_diag`, what is missing), and
//! the few lines under its timeline: how many packets were captured (the timeline draws
//! each one and the sockets' states; a pcap file holds the frames), and the notes on what
//! is missing — capture refused, packets not kept, states not sampled — in English or
//! Korean. Pure.

use hello_proto::kernel::{Frame, TcpSocket};
use hello_proto::trace::Lang;
use hello_proto::words::counted;

use crate::packets::Packet;
use crate::timeline::{Kernel, Sample};

/// What is missing from what the kernel showed, said in the reader's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// The capture could not start: the line saying why (the call and the system's
    /// error, as `sys::capture` says them).
    NoCapture(String),
    /// Packets not kept: past the limits (`over`, with the limits), or dropped by the
    /// kernel with its buffer full (`dropped`).
    Lost {
        /// Seen past the limits.
        over: u64,
        /// Dropped by the kernel.
        dropped: u64,
        /// The limit on packets.
        packets: usize,
        /// The limit on bytes.
        bytes: usize,
    },
    /// Packets stamped when read, not when they came: their times are late.
    Late(usize),
    /// The sockets could not be sampled: the system's error.
    NotSampled(String),
    /// The captured packets could not be placed among the calls: why.
    Unplaced(String),
    /// Packets on the port that belong to no connection of the exchange: left out.
    Foreign(usize),
}

impl Note {
    /// The note as one line in `lang`.
    pub fn render(&self, lang: Lang) -> String {
        let ko = lang == Lang::Ko;
        match self {
            Note::NoCapture(why) if ko => {
                format!("패킷을 캡처하지 못해 화살표는 추정입니다: {why}")
            }
            Note::NoCapture(why) => format!("no packets captured, the arrows are inferred: {why}"),
            Note::Lost {
                over,
                dropped,
                packets,
                bytes,
            } => {
                let mut parts = Vec::new();
                if *over > 0 {
                    parts.push(if ko {
                        format!("{over}개는 한도(교환마다 패킷 {packets}개, {bytes}바이트)를 넘어 보관하지 않았고")
                    } else {
                        format!("{over} past the limit ({packets} packets, {bytes} bytes per exchange) were not kept")
                    });
                }
                if *dropped > 0 {
                    parts.push(if ko {
                        format!("{dropped}개는 캡처 버퍼가 가득 차 커널이 버렸습니다")
                    } else {
                        format!("{dropped} were dropped by the kernel (the capture buffer was full)")
                    });
                }
                if ko {
                    format!("캡처: 패킷 중 {}. 그래서 화살표는 추정입니다.", parts.join(", "))
                } else {
                    format!(
                        "capture: of the packets, {}; so the arrows are inferred",
                        parts.join(" and ")
                    )
                }
            }
            Note::Late(n) if ko => format!(
                "캡처: 패킷 {n}개는 도착한 때가 아니라 읽힌 때의 시각이 찍혔습니다(커널의 패킷 시계가 아직 돌지 않음): 시각이 늦습니다"
            ),
            Note::Late(n) => format!(
                "capture: {} stamped when read, not when they came (the kernel's packet clock was not running yet): their times are late",
                counted(*n as u64, "packet")
            ),
            Note::NotSampled(e) if ko => format!("소켓 상태를 읽지 못했습니다(sock_diag): {e}"),
            Note::NotSampled(e) => format!("socket states not sampled (sock_diag): {e}"),
            Note::Unplaced(why) if ko => {
                format!("캡처한 패킷을 호출 사이에 놓지 못해 화살표는 추정입니다: {why}")
            }
            Note::Unplaced(why) => {
                format!(
                    "the captured packets could not be placed among the calls, so the arrows are inferred: {why}"
                )
            }
            Note::Foreign(n) if ko => {
                format!("캡처: 포트 번호가 같은 다른 연결(다른 프로그램의 것)의 패킷 {n}개는 빼고 그렸습니다")
            }
            Note::Foreign(n) => format!(
                "capture: {} of another connection on the same port number (another program's) left out",
                counted(*n as u64, "packet")
            ),
        }
    }

    /// Whether the note means the packets are not all there.
    fn incomplete(&self) -> bool {
        matches!(self, Note::NoCapture(_) | Note::Lost { .. })
    }
}

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
    /// What is missing: packets not kept, states not sampled.
    pub notes: Vec<Note>,
    /// The exchange's TCP sockets sampled, in time order: as the server came up, where
    /// the scenario knew a state to look at, and once it was over.
    pub samples: Vec<Sample>,
}

impl Observed {
    /// The listening socket as the server came up (the first sample's).
    pub fn listening(&self) -> Option<&TcpSocket> {
        self.samples.first()?.listener(self.port)
    }

    /// The exchange's TCP sockets once it was over (the last sample's; a listener's, if
    /// still open, too).
    pub fn after(&self) -> &[TcpSocket] {
        match self.samples.as_slice() {
            [_, .., last] => &last.sockets,
            _ => &[],
        }
    }

    /// What the timeline places among the calls: every packet if none was lost, and the
    /// samples.
    pub fn kernel(&self) -> Kernel {
        let whole = self.captured && !self.notes.iter().any(Note::incomplete);
        Kernel {
            port: self.port,
            packets: whole.then(|| self.packets.clone()),
            samples: self.samples.clone(),
        }
    }
}

/// The lines under an exchange's timeline: how many packets were captured, and what is
/// missing.
pub fn render(w: &Observed, lang: Lang) -> String {
    let ko = lang == Lang::Ko;
    let mut out = String::new();
    if w.captured {
        out.push_str(&if ko {
            format!(
                "lo에서 캡처한 패킷 {}개: 위 타임라인의 (캡처됨) 화살표 (--pcap DIR로 pcap 파일에 저장)\n",
                w.packets.len()
            )
        } else {
            format!(
                "captured on lo: {}, the (captured) arrows above (--pcap DIR saves them as pcap files)\n",
                counted(w.packets.len() as u64, "packet")
            )
        });
    }
    for n in &w.notes {
        out.push_str(&n.render(lang));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::net::SocketAddr;

    use hello_proto::kernel::TcpState;

    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn socket(state: TcpState, local: &str, peer: &str) -> TcpSocket {
        TcpSocket {
            state,
            local: a(local),
            peer: a(peer),
            rqueue: 0,
            wqueue: 128,
            inode: 0,
        }
    }

    #[test]
    fn the_first_and_last_samples_are_the_listener_and_what_was_left() {
        let w = Observed {
            port: 5000,
            captured: true,
            samples: vec![
                Sample {
                    t_us: 1,
                    sockets: vec![socket(TcpState::Listen, "127.0.0.1:5000", "0.0.0.0:0")],
                },
                Sample {
                    t_us: 2,
                    sockets: vec![socket(TcpState::TimeWait, "127.0.0.1:5000", "127.0.0.1:40000")],
                },
            ],
            ..Observed::default()
        };
        assert_eq!(w.listening().unwrap().wqueue, 128);
        assert_eq!(w.after()[0].state, TcpState::TimeWait);
        assert!(w.kernel().packets.is_some());
        let en = render(&w, Lang::En);
        assert!(en.starts_with("captured on lo: 0 packets, the (captured) arrows above"));
        let one = Observed {
            samples: w.samples[..1].to_vec(),
            ..w.clone()
        };
        assert!(one.after().is_empty(), "one sample: nothing sampled after");
    }

    #[test]
    fn notes_in_both_languages_and_a_loss_means_inferred_arrows() {
        let mut w = Observed {
            port: 5000,
            captured: true,
            notes: vec![Note::Lost {
                over: 2,
                dropped: 0,
                packets: 3,
                bytes: 100,
            }],
            ..Observed::default()
        };
        let en = render(&w, Lang::En);
        assert!(en.contains("of the packets, 2 past the limit (3 packets, 100 bytes per exchange) were not kept; so the arrows are inferred"), "{en}");
        let ko = render(&w, Lang::Ko);
        assert!(ko.contains("2개는 한도") && ko.contains("화살표는 추정"), "{ko}");
        assert!(
            w.kernel().packets.is_none(),
            "a capture with a loss draws no packets"
        );
        w.notes = vec![Note::NotSampled("EPERM".into()), Note::Late(3)];
        assert!(w.kernel().packets.is_some());
        let ko = render(&w, Lang::Ko);
        assert!(
            ko.contains("소켓 상태를 읽지 못했습니다(sock_diag): EPERM") && ko.contains("패킷 3개는"),
            "{ko}"
        );
        w.captured = false;
        w.notes = vec![Note::NoCapture("socket(AF_PACKET) failed".into())];
        assert!(
            render(&w, Lang::En)
                .starts_with("no packets captured, the arrows are inferred: socket(AF_PACKET)")
        );
        assert!(w.kernel().packets.is_none());
    }
}
