//! The timeline as a self-contained HTML page: the picture is an inline SVG sequence
//! diagram (the client's lifeline left, the server's right, every call in causal order
//! with its real arguments and result; arrows for what crossed the network — each packet
//! captured on `lo` at its place among the calls, solid and marked captured, or, where
//! none could be captured, dashed arrows marked inferred; and the sockets' states, ◆, the
//! accept queue's length among them), followed by the same calls as a table. No scripts, no fonts or
//! images fetched: Korean renders with whatever of NanumGothic or Noto Sans CJK KR the
//! machine has (`fonts-nanum`, `fonts-noto-cjk`).
//!
//! Pure: a timeline in, HTML out (`run::write_pages` writes the files).

use std::fmt::Write as _;

use hello_proto::trace::Lang;

use crate::scenario::Part;
use crate::text::{legend, packet_arrow, sample_lines, source_word, wire_words, wrap};
use crate::timeline::{Sample, Seen, Side, Step, Timeline, Wire};

/// Picture geometry, in SVG units.
const PICTURE_WIDTH: usize = 1280;
const CLIENT_X: usize = 470;
const SERVER_X: usize = 810;
const TOP: usize = 60;
const LINE: usize = 15;
/// Columns of text beside a lifeline.
const TEXT_COLUMNS: usize = 64;

/// Text made safe for HTML and SVG.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn say(lang: Lang, en: &'static str, ko: &'static str) -> &'static str {
    match lang {
        Lang::En => en,
        Lang::Ko => ko,
    }
}

/// What the kernel showed, as the picture draws it: a packet's arrow (its top, whether it
/// goes to the server, its words) or a sample's lines (top, side, words).
enum Drawn {
    Packet(usize, bool, String),
    State(usize, Side, String),
}

/// The inline SVG of a timeline.
pub fn svg(t: &Timeline, lang: Lang) -> String {
    // Each row's lines (call, then explanation) and its top; what the kernel showed,
    // each with its top, between them.
    let mut tops = Vec::with_capacity(t.rows.len());
    let mut y = TOP;
    let mut rows = Vec::with_capacity(t.rows.len());
    let mut samples: Vec<&Sample> = Vec::new();
    let mut drawn = Vec::new();
    for step in t.steps() {
        let (l, i) = match step {
            Step::Call(at) => at,
            Step::Seen(Seen::Packet(packet), kind) => {
                let (up, words) = packet_arrow(t, packet, kind, lang);
                drawn.push(Drawn::Packet(y + 14, up, words));
                y += 30;
                continue;
            }
            Step::Seen(Seen::Sockets(sample), _) => {
                for (side, line) in sample_lines(t, sample, &samples, lang) {
                    for piece in wrap(&line, TEXT_COLUMNS) {
                        drawn.push(Drawn::State(y + 10, side, piece));
                        y += LINE;
                    }
                    y += 4;
                }
                samples.push(sample);
                continue;
            }
        };
        let lane = &t.lanes[l];
        let call = &lane.calls[i];
        let who = t.label((l, i)).map(|w| format!("[{w}] ")).unwrap_or_default();
        let mark = if call.textbook() { "●" } else { "○" };
        let head = wrap(&format!("{mark} {who}{}", call.c), TEXT_COLUMNS);
        let note = wrap(&call.text, TEXT_COLUMNS);
        tops.push(y);
        y += (head.len() + note.len()) * LINE + 12;
        rows.push((lane.side, call, head, note));
    }
    let height = y + 20;
    let origin = t.origin();
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {PICTURE_WIDTH} {height}" width="{PICTURE_WIDTH}" height="{height}" role="img">
<defs>
<marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker>
</defs>
<rect x="0" y="0" width="{PICTURE_WIDTH}" height="{height}" fill="#fffdf8"/>
<text x="{CLIENT_X}" y="28" class="lane" text-anchor="end">{}</text>
<text x="{SERVER_X}" y="28" class="lane">{}</text>
<line x1="{CLIENT_X}" y1="40" x2="{CLIENT_X}" y2="{}" class="life"/>
<line x1="{SERVER_X}" y1="40" x2="{SERVER_X}" y2="{}" class="life"/>
"##,
        say(lang, "client", "클라이언트"),
        say(lang, "server", "서버"),
        height - 10,
        height - 10,
    );
    // What the kernel showed: captured packets as solid arrows at their places, states
    // beside their sockets' lifelines.
    for d in &drawn {
        match d {
            Drawn::Packet(top, up, words) => {
                let (x1, x2) = if *up {
                    (CLIENT_X, SERVER_X)
                } else {
                    (SERVER_X, CLIENT_X)
                };
                let _ = write!(
                    s,
                    "<line x1=\"{x1}\" y1=\"{}\" x2=\"{x2}\" y2=\"{}\" class=\"packet\" marker-end=\"url(#head)\"/>\n\
                     <text x=\"{}\" y=\"{}\" class=\"wire packet\" text-anchor=\"middle\">{}</text>\n",
                    top + 2,
                    top + 8,
                    (CLIENT_X + SERVER_X) / 2,
                    top.saturating_sub(1),
                    escape(words)
                );
            }
            Drawn::State(top, side, words) => {
                let (x, anchor) = match side {
                    Side::Client => (CLIENT_X - 12, "end"),
                    Side::Server => (SERVER_X + 12, "start"),
                };
                let _ = writeln!(
                    s,
                    "<text x=\"{x}\" y=\"{top}\" class=\"state\" text-anchor=\"{anchor}\">{}</text>",
                    escape(words)
                );
            }
        }
    }
    // Inferred arrows, where no packet was captured, under the text.
    for a in t.arrows.iter().filter(|_| !t.captured) {
        let (Some(from), Some(to)) = (
            t.rows.iter().position(|&r| r == a.from),
            t.rows.iter().position(|&r| r == a.to),
        ) else {
            continue;
        };
        let x = |side: Side| if side == Side::Client { CLIENT_X } else { SERVER_X };
        let (x1, x2) = (x(t.lanes[a.from.0].side), x(t.lanes[a.to.0].side));
        if x1 == x2 {
            continue;
        }
        let (y1, y2) = (tops[from] + 5, tops[to] + 5);
        let class = match a.wire {
            Wire::Handshake => "handshake",
            Wire::Data(_) => "data",
            Wire::Fin => "fin",
            Wire::Rst => "rst",
            Wire::Datagram(_) => "datagram",
        };
        let label = format!("{} ({})", wire_words(a.wire, lang), source_word(false, lang));
        let (mx, my) = ((x1 + x2) / 2, (y1 + y2) / 2);
        let _ = write!(
            s,
            "<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" class=\"arrow {class}\" marker-end=\"url(#head)\"/>\n\
             <text x=\"{mx}\" y=\"{}\" class=\"wire {class}\" text-anchor=\"middle\">{}</text>\n",
            my.saturating_sub(4),
            escape(&label)
        );
    }
    for (k, (side, call, head, note)) in rows.iter().enumerate() {
        let top = tops[k];
        let (x, anchor, dot) = match side {
            Side::Client => (CLIENT_X - 12, "end", CLIENT_X),
            Side::Server => (SERVER_X + 12, "start", SERVER_X),
        };
        let class = if call.textbook() {
            "call textbook"
        } else {
            "call added"
        };
        let ms = call.t_us.saturating_sub(origin) as f64 / 1000.0;
        let _ = write!(
            s,
            "<circle cx=\"{dot}\" cy=\"{}\" r=\"4\" class=\"{class}\"/>\n<text x=\"{}\" y=\"{}\" class=\"time\" text-anchor=\"{}\">{ms:.3} ms +{}µs</text>\n<text x=\"{x}\" y=\"{}\" text-anchor=\"{anchor}\">",
            top + 5,
            if *side == Side::Client {
                CLIENT_X + 8
            } else {
                SERVER_X - 8
            },
            top + 2,
            if *side == Side::Client { "start" } else { "end" },
            call.dur_us,
            top + 10
        );
        for (j, line) in head.iter().enumerate() {
            let _ = write!(
                s,
                "<tspan x=\"{x}\" dy=\"{}\" class=\"{class}\">{}</tspan>",
                if j == 0 { 0 } else { LINE },
                escape(line)
            );
        }
        for line in note {
            let _ = write!(
                s,
                "<tspan x=\"{x}\" dy=\"{LINE}\" class=\"note\">{}</tspan>",
                escape(line)
            );
        }
        s.push_str("</text>\n");
    }
    s.push_str("</svg>\n");
    s
}

/// The page of one part.
pub fn html(part: &Part, lang: Lang, index: Option<&str>) -> String {
    let t = &part.timeline;
    let mut s = String::new();
    let code = match lang {
        Lang::En => "en",
        Lang::Ko => "ko",
    };
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n",
        title = escape(&part.title)
    );
    if let Some(index) = index {
        let _ = writeln!(
            s,
            "<p><a href=\"{}\">{}</a></p>",
            escape(index),
            say(lang, "all exchanges", "모든 교환")
        );
    }
    let _ = writeln!(
        s,
        "<pre class=\"commands\">{}</pre>",
        escape(&part.commands.join("\n"))
    );
    let _ = writeln!(
        s,
        "<h2>{}</h2>\n<ol class=\"notice\">",
        say(lang, "What to notice", "눈여겨볼 점")
    );
    for point in &part.notice {
        let _ = writeln!(s, "<li>{}</li>", escape(point));
    }
    s.push_str("</ol>\n");
    let _ = writeln!(s, "<pre class=\"legend\">{}</pre>", escape(legend(lang)));
    s.push_str("<figure>\n");
    s.push_str(&svg(t, lang));
    s.push_str("</figure>\n");
    if !part.outputs.is_empty() || !part.extra.is_empty() {
        let mut shown = part.outputs.clone();
        shown.extend(part.extra.iter().cloned());
        let _ = writeln!(s, "<pre class=\"outputs\">{}</pre>", escape(&shown.join("\n")));
    }
    let _ = writeln!(
        s,
        "<h2>{}</h2>\n<table class=\"calls\">\n<tr><th>ms</th><th>{}</th><th>{}</th><th></th></tr>",
        say(lang, "Every call, in order", "모든 호출, 순서대로"),
        say(lang, "client", "클라이언트"),
        say(lang, "server", "서버")
    );
    let origin = t.origin();
    for &(l, i) in &t.rows {
        let lane = &t.lanes[l];
        let call = &lane.calls[i];
        let cell = format!(
            "<code class=\"{}\">{}</code><br><span class=\"who\">{}</span>",
            &call.mark,
            escape(&call.c),
            escape(&format!(
                "{} · +{} µs",
                if call.who.contains(['[', '#']) {
                    &call.who
                } else {
                    &lane.label
                },
                call.dur_us
            ))
        );
        let (left, right) = match lane.side {
            Side::Client => (cell, String::new()),
            Side::Server => (String::new(), cell),
        };
        let _ = writeln!(
            s,
            "<tr><td class=\"ms\">{:.3}</td><td>{left}</td><td>{right}</td><td class=\"note\">[{}] {}</td></tr>",
            call.t_us.saturating_sub(origin) as f64 / 1000.0,
            hello_proto::trace::tag(call.textbook(), lang),
            escape(&call.text)
        );
    }
    s.push_str("</table>\n</body>\n</html>\n");
    s
}

const STYLE: &str = "\
body { font-family: 'NanumGothic', 'Noto Sans CJK KR', 'Noto Sans KR', sans-serif; margin: 24px; color: #222; background: #fffdf8; }
pre, code, svg text { font-family: 'NanumGothicCoding', 'Noto Sans Mono CJK KR', 'DejaVu Sans Mono', monospace; }
pre { background: #f4f1ea; padding: 8px 12px; white-space: pre-wrap; }
svg text { font-size: 12px; }
svg .lane { font-size: 16px; font-weight: bold; }
svg .life { stroke: #888; stroke-width: 2; }
svg .time { font-size: 10px; fill: #777; }
svg tspan.textbook { fill: #111; font-weight: bold; }
svg tspan.added { fill: #2a5d8f; }
svg tspan.note { fill: #666; font-size: 11px; }
svg circle.textbook { fill: #111; }
svg circle.added { fill: #fff; stroke: #2a5d8f; stroke-width: 2; }
svg .arrow { stroke-width: 1.6; stroke-dasharray: 6 4; fill: none; }
svg line.packet { stroke: #1f6fb2; stroke-width: 1.4; }
svg text.packet { fill: #1f6fb2; font-size: 11px; }
svg text.state { fill: #8a4b00; font-size: 11px; font-style: italic; }
svg .wire { font-size: 11px; }
svg .handshake { stroke: #1f6fb2; fill: #1f6fb2; }
svg .data { stroke: #2e8b3e; fill: #2e8b3e; }
svg .fin { stroke: #c86b00; fill: #c86b00; }
svg .datagram { stroke: #7a3db8; fill: #7a3db8; }
svg .rst { stroke: #c0262d; fill: #c0262d; }
svg text.wire { stroke: none; }
table.calls { border-collapse: collapse; font-size: 13px; }
table.calls td, table.calls th { border-bottom: 1px solid #ddd; padding: 3px 8px; vertical-align: top; text-align: left; }
code.added { color: #2a5d8f; }
code.textbook { font-weight: bold; }
.who, .ms { color: #777; font-size: 11px; }
.note { color: #555; }
";

/// The index page of a demo run.
pub fn index(parts: &[Part], lang: Lang) -> String {
    let code = match lang {
        Lang::En => "en",
        Lang::Ko => "ko",
    };
    let title = say(lang, "hello-sockets: the exchanges", "hello-sockets: 교환 모음");
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n<ol>\n"
    );
    for p in parts {
        let _ = writeln!(
            s,
            "<li><a href=\"{}.html\">{}</a></li>",
            escape(&p.slug),
            escape(&p.title)
        );
    }
    s.push_str("</ol>\n</body>\n</html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{Sample, build, build_seen, one_exchange, one_exchange_kernel};
    use hello_proto::kernel::{TcpSocket, TcpState};

    fn part() -> Part {
        let t = build(one_exchange(Lang::Ko, b"<&>")).unwrap();
        Part {
            scenario: "hello",
            slug: "x".into(),
            title: "제목 <b>".into(),
            commands: vec!["$ hello-server 0".into()],
            outputs: vec![],
            notice: vec!["보세요".into()],
            extra: vec![],
            timeline: t,
            observed: None,
        }
    }

    #[test]
    fn a_page_holds_every_call_in_order_escaped_and_fetches_nothing() {
        let page = html(&part(), Lang::Ko, None);
        assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<html lang=\"ko\">"));
        assert!(page.contains("<svg") && page.contains("제목 &lt;b&gt;"));
        assert!(!page.contains("<b>"));
        // The only address is the SVG namespace's name: nothing is fetched.
        assert_eq!(page.matches("http").count(), 1);
        assert!(page.contains("xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(!page.contains("<script") && !page.contains("<link") && !page.contains("src="));
        let table = &page[page.find("<table").unwrap()..];
        let order = [
            "socket(",
            "connect(",
            "accept(",
            "getsockname(",
            "write(4, &quot;&lt;&amp;&gt;&quot;)",
            "read(3)",
        ];
        let mut at = 0;
        for call in order {
            let found = table[at..]
                .find(call)
                .unwrap_or_else(|| panic!("{call} not in order in {table}"));
            at += found;
        }
        assert!(
            page.contains("데이터 3바이트 (추정)"),
            "the data arrow is labelled and marked inferred"
        );
        assert!(page.contains("3-way handshake"));
    }

    #[test]
    fn the_picture_draws_the_captured_packets_and_the_queue() {
        let mut kernel = one_exchange_kernel();
        let listening = TcpSocket {
            state: TcpState::Listen,
            local: "127.0.0.1:9190".parse().unwrap(),
            peer: "0.0.0.0:0".parse().unwrap(),
            rqueue: 1,
            wqueue: 4,
            inode: 1,
        };
        kernel.samples.insert(
            0,
            Sample {
                t_us: 206,
                sockets: vec![listening],
            },
        );
        let t = build_seen(one_exchange(Lang::Ko, b"hi"), &kernel).unwrap();
        let picture = svg(&t, Lang::Ko);
        assert_eq!(picture.matches("class=\"packet\"").count(), 5, "{picture}");
        assert!(picture.contains("SYN-ACK: TCP [S.] 길이 0 (캡처됨)"));
        assert!(picture.contains("◆ 연결요청 대기 큐: 1개 (backlog 4)"));
        assert!(
            !picture.contains("(추정)"),
            "no inferred arrow where packets were captured"
        );
        let picture = svg(&t, Lang::En);
        assert!(picture.contains("◆ accept queue: 1 waiting (backlog 4)"));
    }
}
