//! The timeline as two columns for a terminal: clients on the left, the server on the
//! right, each call with its time, its mark (● the textbook's call, ○ one real software
//! adds) and its explanation; between the columns what crossed the network — the packets
//! captured on `lo` at their capture times, or, where none were, the arrows inferred from
//! the calls — each arrow saying which; and the sockets' states the kernel showed (◆).
//!
//! Pure: a timeline in, text out. Widths count a Hangul syllable as two columns.

use hello_proto::kernel::TcpState;
use hello_proto::trace::Lang;

use crate::packets::{Carried, Flags, Packet, flag};
use crate::timeline::{Arrow, At, Carries, Dir, Sample, Seen, Side, Step, Timeline, Wire};

/// Width of each column.
const WIDTH: usize = 62;

/// Terminal columns a character takes: two for Hangul and other wide East Asian text.
fn char_width(c: char) -> usize {
    let wide = matches!(c as u32,
        0x1100..=0x115F | 0x2E80..=0xA4CF | 0xAC00..=0xD7A3 | 0xF900..=0xFAFF | 0xFE30..=0xFE4F | 0xFF00..=0xFF60 | 0xFFE0..=0xFFE6);
    if wide { 2 } else { 1 }
}

/// Terminal columns a string takes.
pub fn width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// `s` padded with spaces to `w` columns.
fn pad(s: &str, w: usize) -> String {
    let mut out = s.to_string();
    for _ in width(s)..w {
        out.push(' ');
    }
    out
}

/// Words of `s` in lines of at most `w` columns (a longer word is cut).
pub fn wrap(s: &str, w: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in s.split(' ') {
        let need = if line.is_empty() {
            width(word)
        } else {
            width(&line) + 1 + width(word)
        };
        if need > w && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        for c in word.chars() {
            if width(&line) + char_width(c) > w {
                lines.push(std::mem::take(&mut line));
            }
            line.push(c);
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Milliseconds since `origin`, as the left margin shows them.
fn since(origin: u64, t: u64) -> String {
    let us = t.saturating_sub(origin);
    format!("{:>5}.{:03} ms", us / 1000, us % 1000)
}

/// The words for what crossed the network.
pub fn wire_words(wire: Wire, lang: Lang) -> String {
    match (wire, lang) {
        (Wire::Handshake, Lang::En) => "SYN, SYN-ACK, ACK: the 3-way handshake".into(),
        (Wire::Handshake, Lang::Ko) => "SYN, SYN-ACK, ACK: 3-way handshake".into(),
        (Wire::Data(n), Lang::En) => format!("data: {}", hello_proto::words::counted(n, "byte")),
        (Wire::Data(n), Lang::Ko) => format!("데이터 {n}바이트"),
        (Wire::Fin, Lang::En) => "FIN: end of stream".into(),
        (Wire::Fin, Lang::Ko) => "FIN: EOF 전달".into(),
        (Wire::Rst, Lang::En) => "RST: the connection is reset".into(),
        (Wire::Rst, Lang::Ko) => "RST: 연결을 강제로 끊음".into(),
        (Wire::Datagram(n), Lang::En) => {
            format!("one datagram, {}", hello_proto::words::counted(n, "byte"))
        }
        (Wire::Datagram(n), Lang::Ko) => format!("데이터그램 하나, {n}바이트"),
    }
}

/// The legend printed above a timeline.
pub fn legend(lang: Lang) -> &'static str {
    match lang {
        Lang::En => {
            "● the textbook's program makes this call   ○ real software adds it (the line says why)\n\
             ms: when the call was made (a packet: when it was captured), from the first call; (+N µs): how long the call took\n\
             arrows (captured): a packet captured on lo, with its TCP flags as tcpdump writes them (S SYN, . ACK, P push, F FIN, R RST) and its payload length\n\
             arrows (inferred): where no packet could be captured, what crossed, worked out from both sides' calls\n\
             ◆ a socket's state as the kernel showed it then (sock_diag, as `ss` reads it): the accept queue, TIME_WAIT ...\n\
             order: nothing is shown before what caused it (a receive after the send of its bytes)"
        }
        Lang::Ko => {
            "● 교재의 프로그램도 하는 호출   ○ 실제 소프트웨어가 더하는 호출 (이유는 설명에)\n\
             ms: 첫 호출부터 잰, 호출을 시작한 시각 (패킷은 캡처된 시각)   (+N µs): 호출에 걸린 시간\n\
             화살표 (캡처됨): lo에서 캡처한 패킷. tcpdump처럼 쓴 TCP 플래그(S SYN, . ACK, P push, F FIN, R RST)와 데이터 길이\n\
             화살표 (추정): 패킷을 캡처할 수 없을 때, 양쪽의 호출로 추정한 네트워크 위의 흐름\n\
             ◆ 그 시점에 커널이 보여 준 소켓 상태 (sock_diag, `ss`가 읽는 것): 연결요청 대기 큐, TIME_WAIT 등\n\
             순서: 원인보다 결과를 먼저 보이지 않습니다 (수신은 그 바이트를 보낸 송신 뒤에)"
        }
    }
}

/// How an arrow was found: `captured` or `inferred`, in `lang`.
pub fn source_word(captured: bool, lang: Lang) -> &'static str {
    match (captured, lang) {
        (true, Lang::En) => "captured",
        (true, Lang::Ko) => "캡처됨",
        (false, Lang::En) => "inferred",
        (false, Lang::Ko) => "추정",
    }
}

/// What a captured packet was, for a learner, then as tcpdump says it:
/// `SYN: TCP [S] length 0`, `data + FIN: TCP [FP.] length 13`, `datagram: UDP length 6`.
pub fn packet_words(p: &Packet, kind: Carries, lang: Lang) -> String {
    let ko = lang == Lang::Ko;
    let length = if ko { "길이" } else { "length" };
    match (p.carried, kind) {
        (Carried::Tcp { flags, .. }, Carries::Segment { again, .. }) => {
            let has = |f: u8| flags & f != 0;
            let name = if has(flag::RST) {
                "RST".to_string()
            } else if has(flag::SYN) && has(flag::ACK) {
                "SYN-ACK".to_string()
            } else if has(flag::SYN) && again {
                (if ko { "SYN 재전송" } else { "SYN again" }).to_string()
            } else if has(flag::SYN) {
                "SYN".to_string()
            } else {
                let data = if ko { "데이터" } else { "data" };
                match (p.len > 0, has(flag::FIN)) {
                    (true, true) => format!("{data} + FIN"),
                    (true, false) => data.to_string(),
                    (false, true) => "FIN".to_string(),
                    (false, false) => "ACK".to_string(),
                }
            };
            format!("{name}: TCP [{}] {length} {}", Flags(flags), p.len)
        }
        (Carried::Udp, _) => format!(
            "{}: UDP {length} {}",
            if ko { "데이터그램" } else { "datagram" },
            p.len
        ),
        (Carried::PortUnreachable { .. }, _) => format!("ICMP port unreachable, {length} {}", p.len),
        (Carried::Icmp { kind, code }, _) => format!("ICMP type {kind} code {code}, {length} {}", p.len),
        (Carried::Tcp { flags, .. }, _) => format!("TCP [{}] {length} {}", Flags(flags), p.len),
    }
}

/// The gloss of a TCP state worth a word.
pub fn state_gloss(state: TcpState, lang: Lang) -> Option<&'static str> {
    Some(match (state, lang) {
        (TcpState::TimeWait, Lang::En) => "closed first: waits 2 MSL (60 s on Linux) for late segments",
        (TcpState::TimeWait, Lang::Ko) => {
            "먼저 닫은 쪽: 늦게 오는 세그먼트에 대비해 2 MSL(리눅스 60초) 동안 기다림"
        }
        (TcpState::CloseWait, Lang::En) => "the peer has closed; this side has not called close() yet",
        (TcpState::CloseWait, Lang::Ko) => "상대가 닫았고, 이쪽은 아직 close()하지 않음",
        (TcpState::FinWait1, Lang::En) => "closed first; its FIN not yet acknowledged",
        (TcpState::FinWait1, Lang::Ko) => "먼저 닫았고, 자신의 FIN이 아직 확인되지 않음",
        (TcpState::FinWait2, Lang::En) => "closed first; waiting for the peer's FIN",
        (TcpState::FinWait2, Lang::Ko) => "먼저 닫았고, 상대의 FIN을 기다림",
        (TcpState::LastAck, Lang::En) => "closed second; waiting for the ACK of its FIN",
        (TcpState::LastAck, Lang::Ko) => "나중에 닫았고, 자신의 FIN에 대한 ACK를 기다림",
        (TcpState::SynSent, Lang::En) => "its SYN has had no answer: not in the accept queue",
        (TcpState::SynSent, Lang::Ko) => "SYN에 아직 응답이 없음: 연결요청 대기 큐에 들지 못함",
        _ => return None,
    })
}

/// What one sample shows that the samples before it did not: the listening socket's
/// accept queue when it changed (and at first), and each connection's state worth a
/// word when it changed; each with the side it is drawn on and its text.
pub fn sample_lines(t: &Timeline, sample: &Sample, before: &[&Sample], lang: Lang) -> Vec<(Side, String)> {
    let ko = lang == Lang::Ko;
    let mut lines = Vec::new();
    if let Some(l) = sample.listener(t.port) {
        let last = before.iter().rev().find_map(|s| s.listener(t.port));
        if last.is_none_or(|p| p.rqueue != l.rqueue) {
            let backlog = if l.wqueue > 0 {
                format!(" (backlog {})", l.wqueue)
            } else {
                String::new()
            };
            lines.push((
                Side::Server,
                if ko {
                    format!("◆ 연결요청 대기 큐: {}개{backlog}", l.rqueue)
                } else {
                    format!("◆ accept queue: {} waiting{backlog}", l.rqueue)
                },
            ));
        }
    }
    for s in sample.sockets.iter().filter(|s| s.state != TcpState::Listen) {
        let Some(gloss) = state_gloss(s.state, lang) else {
            continue;
        };
        let last = before.iter().rev().find_map(|b| {
            b.sockets
                .iter()
                .find(|x| x.local == s.local && x.peer == s.peer)
                .map(|x| x.state)
        });
        if last == Some(s.state) {
            continue;
        }
        let server = s.local.port() == t.port;
        let k = if server { s.peer.port() } else { s.local.port() };
        let who = t.client_label(k).map(|w| format!("{w}, ")).unwrap_or_default();
        let end = if server {
            if ko {
                format!("서버 쪽 소켓({who}:{k})")
            } else {
                format!("server's socket ({who}:{k})")
            }
        } else if ko {
            format!("클라이언트 소켓({who}:{k})")
        } else {
            format!("client's socket ({who}:{k})")
        };
        lines.push((
            if server { Side::Server } else { Side::Client },
            format!("◆ {end} {}: {gloss}", s.state.name()),
        ));
    }
    lines
}

/// The two-column text of a timeline.
pub fn render(t: &Timeline, lang: Lang) -> String {
    let origin = t.origin();
    let mut out = String::new();
    let head = |s: &str| pad(s, WIDTH);
    let (c, s) = match lang {
        Lang::En => ("client", "server"),
        Lang::Ko => ("클라이언트", "서버"),
    };
    out.push_str(&format!("{:>12}  {}│ {}\n", "", head(c), s));
    out.push_str(&format!(
        "{:>12}  {}┼{}\n",
        "",
        "─".repeat(WIDTH),
        "─".repeat(WIDTH + 1)
    ));
    let mut samples: Vec<&Sample> = Vec::new();
    for step in t.steps() {
        let (l, i) = match step {
            Step::Call(at) => at,
            Step::Seen(Seen::Packet(packet), kind) => {
                let time = since(origin, packet.t_us);
                let (up, words) = packet_arrow(t, packet, kind, lang);
                out.push_str(&arrow(&time, up, &words));
                continue;
            }
            Step::Seen(Seen::Sockets(sample), _) => {
                let time = since(origin, sample.t_us);
                for (side, line) in sample_lines(t, sample, &samples, lang) {
                    for (k, piece) in wrap(&line, WIDTH - 1).iter().enumerate() {
                        let time = if k == 0 { time.as_str() } else { "" };
                        out.push_str(&column_line(time, side, piece));
                    }
                }
                samples.push(sample);
                continue;
            }
        };
        if !t.captured {
            for a in t.arrows.iter().filter(|a| a.to == (l, i)) {
                out.push_str(&arrow_line(t, a, lang));
            }
        }
        let lane = &t.lanes[l];
        let call = &lane.calls[i];
        let label = t.label((l, i)).map(|w| format!("[{w}] ")).unwrap_or_default();
        let mark = if call.textbook() { "●" } else { "○" };
        let text = format!("{mark} {label}{} (+{}µs)", call.c, call.dur_us);
        let mut lines = wrap(&text, WIDTH - 1);
        lines.extend(wrap(&call.text, WIDTH - 3).into_iter().map(|e| format!("  {e}")));
        for (k, line) in lines.iter().enumerate() {
            let time = if k == 0 {
                since(origin, call.t_us)
            } else {
                String::new()
            };
            out.push_str(&column_line(&time, lane.side, line));
        }
    }
    out
}

/// One line of a column, with the time in the margin.
fn column_line(time: &str, side: Side, line: &str) -> String {
    let (left, right) = match side {
        Side::Client => (line, ""),
        Side::Server => ("", line),
    };
    format!("{time:>12}  {}│ {right}\n", pad(left, WIDTH)).replace(" \n", "\n")
}

/// An arrow between the columns saying `words`, pointing into the server's column
/// (`up`) or the client's, with `time` in the margin.
fn arrow(time: &str, up: bool, words: &str) -> String {
    let words = format!(" {words} ");
    let fill = |n: usize| "┄".repeat(n);
    let body_w = WIDTH.saturating_sub(width(&words) + 1);
    if up {
        format!(
            "{time:>12}  {}{words}{}▶│\n",
            fill(2),
            fill(body_w.saturating_sub(2))
        )
    } else {
        format!(
            "{time:>12}  {}│◀{}{words}{}\n",
            pad("", WIDTH),
            fill(2),
            fill(body_w.saturating_sub(2))
        )
    }
}

/// One inferred arrow, pointing into the receiving side.
fn arrow_line(t: &Timeline, a: &Arrow, lang: Lang) -> String {
    let words = format!("{} ({})", wire_words(a.wire, lang), source_word(false, lang));
    let side = |(l, _): At| t.lanes[l].side;
    match (side(a.from), side(a.to)) {
        (Side::Client, Side::Server) => arrow("", true, &words),
        (Side::Server, Side::Client) => arrow("", false, &words),
        _ => format!("{:>12}  {words}\n", ""),
    }
}

/// A captured packet's arrow: whether it goes to the server, and its words (which
/// client's, where the column holds several; what it was; `captured`).
pub fn packet_arrow(t: &Timeline, p: &Packet, kind: Carries, lang: Lang) -> (bool, String) {
    let (up, _, words) = packet_arrow_of(t, p, kind, lang);
    (up, words)
}

/// [`packet_arrow`] with the client's port the packet belongs to, where it has one (the
/// picture draws the arrow from that client's lane).
pub fn packet_arrow_of(t: &Timeline, p: &Packet, kind: Carries, lang: Lang) -> (bool, Option<u16>, String) {
    let (up, k) = match kind {
        Carries::Segment { k, dir, .. } => (dir == Dir::Up, Some(k)),
        Carries::Datagram(from, to, _) => (to == t.port, Some(if to == t.port { from } else { to })),
        Carries::Unreachable(from, _) => (false, Some(from)),
        Carries::Other => (p.dst.port() == t.port, None),
    };
    let who = k
        .and_then(|k| t.client_label(k))
        .map(|w| format!("{w}: "))
        .unwrap_or_default();
    let words = format!(
        "{who}{} ({})",
        packet_words(p, kind, lang),
        source_word(true, lang)
    );
    (up, k, words)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::fixtures::{one_exchange, one_exchange_kernel};
    use crate::timeline::{build, build_seen};

    #[test]
    fn wrapping_counts_hangul_as_two_columns() {
        assert_eq!(width("한a"), 3);
        assert_eq!(wrap("aaa bbb ccc", 7), vec!["aaa bbb", "ccc"]);
        assert_eq!(wrap("한글한글", 4), vec!["한글", "한글"]);
        assert_eq!(wrap("", 4), vec![""]);
    }

    #[test]
    fn clients_left_server_right_and_arrows_between() {
        let text = render(&build(one_exchange(Lang::En, b"hi\0")).unwrap(), Lang::Ko);
        let lines: Vec<&str> = text.lines().collect();
        let at = |s: &str| lines.iter().position(|l| l.contains(s)).unwrap();
        assert!(lines[0].contains("클라이언트") && lines[0].contains("서버"));
        assert!(at("● accept(3)") > at("● connect(3"), "{text}");
        assert!(at("데이터 3바이트") < at("● read(3)"), "{text}");
        assert!(at("◀") < at("● read(3)"), "{text}");
        let read = lines[at("● read(3)")];
        assert!(
            read.find("read").unwrap() < read.find('│').unwrap(),
            "client on the left: {read}"
        );
        let write = lines[at("● write(4")];
        assert!(
            write.find("write").unwrap() > write.find('│').unwrap(),
            "server on the right: {write}"
        );
    }

    #[test]
    fn captured_packets_are_the_arrows_and_states_show_beside_their_sockets() {
        let t = build_seen(one_exchange(Lang::En, b"hi\0"), &one_exchange_kernel()).unwrap();
        let text = render(&t, Lang::En);
        let lines: Vec<&str> = text.lines().collect();
        let at = |s: &str| {
            lines
                .iter()
                .position(|l| l.contains(s))
                .unwrap_or_else(|| panic!("{s}: {text}"))
        };
        assert!(!text.contains("(inferred)"), "{text}");
        assert!(at("● connect(3") < at("SYN: TCP [S] length 0 (captured)"));
        assert!(at("SYN-ACK: TCP [S.] length 0 (captured)") < at("● accept(3)"));
        assert!(lines[at("SYN: TCP [S]")].contains("▶│") && lines[at("SYN-ACK")].contains("│◀"));
        assert!(at("● write(4") < at("data: TCP [P.] length 3 (captured)"));
        assert!(at("data: TCP [P.]") < at("● read(3)"));
        let state = lines[at("◆ server's socket (:5555) TIME_WAIT: closed first")];
        assert!(
            state.starts_with("    0.550 ms") && state.find('◆') > state.find('│'),
            "{state}"
        );
        let ko = render(&t, Lang::Ko);
        assert!(
            ko.contains("데이터: TCP [P.] 길이 3 (캡처됨)") && ko.contains("◆ 서버 쪽 소켓(:5555) TIME_WAIT"),
            "{ko}"
        );
        // Without packets: the inferred arrows, marked so.
        let t = build(one_exchange(Lang::En, b"hi\0")).unwrap();
        let text = render(&t, Lang::En);
        assert!(
            text.contains("data: 3 bytes (inferred)") && !text.contains("(captured)"),
            "{text}"
        );
    }
}
