//! The timeline as two columns for a terminal: clients on the left, the server on the
//! right, each call with its time, its mark (● the textbook's call, ○ one real software
//! adds) and its explanation, and between the columns what crossed the network.
//!
//! Pure: a timeline in, text out. Widths count a Hangul syllable as two columns.

use hello_proto::trace::Lang;

use crate::timeline::{Arrow, At, Side, Timeline, Wire};

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
        (Wire::Data(n), Lang::En) => format!("data: {}", hello_proto::addr::counted(n, "byte")),
        (Wire::Data(n), Lang::Ko) => format!("데이터 {n}바이트"),
        (Wire::Fin, Lang::En) => "FIN: end of stream".into(),
        (Wire::Fin, Lang::Ko) => "FIN: EOF 전달".into(),
        (Wire::Rst, Lang::En) => "RST: the connection is reset".into(),
        (Wire::Rst, Lang::Ko) => "RST: 연결을 강제로 끊음".into(),
        (Wire::Datagram(n), Lang::En) => {
            format!("one datagram, {}", hello_proto::addr::counted(n, "byte"))
        }
        (Wire::Datagram(n), Lang::Ko) => format!("데이터그램 하나, {n}바이트"),
    }
}

/// The legend printed above a timeline.
pub fn legend(lang: Lang) -> &'static str {
    match lang {
        Lang::En => {
            "● the textbook's program makes this call   ○ real software adds it (the line says why)\n\
             ms: when the call was made, from the first call; (+N µs): how long it took\n\
             arrows: what crossed the network, inferred from both sides' calls (the packets captured, if any, are listed under the exchange)\n\
             order: nothing is shown before what caused it (a receive after the send of its bytes)"
        }
        Lang::Ko => {
            "● 교재의 프로그램도 하는 호출   ○ 실제 소프트웨어가 더하는 호출 (이유는 설명에)\n\
             ms: 첫 호출부터 잰, 호출을 시작한 시각   (+N µs): 호출에 걸린 시간\n\
             화살표: 양쪽의 호출로 추정한 네트워크 위의 흐름 (캡처한 패킷은 교환 아래에 따로 나열)\n\
             순서: 원인보다 결과를 먼저 보이지 않습니다 (수신은 그 바이트를 보낸 송신 뒤에)"
        }
    }
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
    for &(l, i) in &t.rows {
        for a in t.arrows.iter().filter(|a| a.to == (l, i)) {
            out.push_str(&arrow_line(t, a, lang));
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
            let (left, right) = match lane.side {
                Side::Client => (line.as_str(), ""),
                Side::Server => ("", line.as_str()),
            };
            out.push_str(&format!("{time:>12}  {}│ {right}\n", pad(left, WIDTH)).replace(" \n", "\n"));
        }
    }
    out
}

/// One arrow between the columns, pointing into the receiving side.
fn arrow_line(t: &Timeline, a: &Arrow, lang: Lang) -> String {
    let words = format!(" {} ", wire_words(a.wire, lang));
    let side = |(l, _): At| t.lanes[l].side;
    let fill = |n: usize| "┄".repeat(n);
    let body_w = WIDTH.saturating_sub(width(&words) + 1);
    match (side(a.from), side(a.to)) {
        (Side::Client, Side::Server) => {
            format!(
                "{:>12}  {}{words}{}▶│\n",
                "",
                fill(2),
                fill(body_w.saturating_sub(2))
            )
        }
        (Side::Server, Side::Client) => {
            format!(
                "{:>12}  {}│◀{}{words}{}\n",
                "",
                pad("", WIDTH),
                fill(2),
                fill(body_w.saturating_sub(2))
            )
        }
        _ => format!("{:>12}  {}\n", "", words.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{build, one_exchange};

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
}
