//! The timeline as a self-contained HTML page: the picture is an inline SVG sequence
//! diagram (the client's lifeline left, the server's right, every call in causal order
//! with its real arguments and result, and arrows for what crossed the network, each
//! marked as inferred), followed by the same calls as a table. No scripts, no fonts or
//! images fetched: Korean renders with whatever of NanumGothic or Noto Sans CJK KR the
//! machine has (`fonts-nanum`, `fonts-noto-cjk`).
//!
//! Pure: a timeline in, HTML out (`run::write_pages` writes the files).

use std::fmt::Write as _;

use hello_proto::trace::Lang;

use crate::scenario::Part;
use crate::text::{legend, wire_words, wrap};
use crate::timeline::{Side, Timeline, Wire};

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

/// The inline SVG of a timeline.
pub fn svg(t: &Timeline, lang: Lang) -> String {
    // Each row's lines (call, then explanation) and its top.
    let mut tops = Vec::with_capacity(t.rows.len());
    let mut y = TOP;
    let mut rows = Vec::with_capacity(t.rows.len());
    for &(l, i) in &t.rows {
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
    // Arrows first, under the text.
    for a in &t.arrows {
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
        let label = format!(
            "{} {}",
            wire_words(a.wire, lang),
            say(lang, "(inferred)", "(추정)")
        );
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
    use crate::timeline::{build, one_exchange};

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
}
