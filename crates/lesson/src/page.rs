//! The timeline as a self-contained HTML page: the picture is an inline SVG sequence
//! diagram (the client's lifeline left, the server's right, every call in causal order
//! with its real arguments and result; arrows for what crossed the network — each packet
//! captured on `lo` at its place among the calls, solid and marked captured, or, where
//! none could be captured, dashed arrows marked inferred; and the sockets' states, ◆, the
//! accept queue's length among them), followed by the same calls as a table. Each client
//! has its own lane; the accept queue is a band of the kernel's between the clients and
//! the server; a SYN the full queue dropped ends in ✕, an ICMP error is red. The picture
//! scales to the window (`viewBox`, `width="100%"`), every label has a background, and
//! the time stamps have a column of their own. No scripts, no fonts or images fetched:
//! code renders in NanumGothicCoding (`fonts-nanum-coding`) or DejaVu Sans Mono, prose in
//! DejaVu Sans with Hangul from NanumGothic (`fonts-nanum`).
//!
//! Pure: a timeline in, HTML out (`run::write_pages` writes the files).

use std::fmt::Write as _;

use hello_proto::trace::Lang;

use crate::packets::flag;
use crate::scenario::Part;
use crate::text::{legend, packet_arrow_of, sample_lines, source_word, wire_words, wrap};
use crate::timeline::{Carries, Dir, Sample, Seen, Side, Step, Timeline, Wire};
use hello_proto::kernel::TcpState;

/// Picture geometry, in SVG units. The picture is as wide as its lanes need and scales
/// to the window (`viewBox`, `width="100%"`).
const TOP_GAP: usize = 24;
const LINE: usize = 15;
/// Columns of text beside a lifeline.
const TEXT_COLUMNS: usize = 56;
/// SVG units per column of 12-unit monospace text (a Hangul syllable is two columns).
const COLUMN: f64 = 7.4;
/// The time stamps' column, left of everything.
const TIME_WIDTH: usize = 100;
/// Between two client lanes.
const LANE_GAP: usize = 44;
/// Between the first client lane and the server's, at least: room for a packet's words.
const SPAN: usize = 330;
/// The accept queue's band, between the clients and the server: its width.
const BAND: usize = 56;

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

/// Where each lane is drawn.
struct Layout {
    /// Each lane's lifeline, by lane.
    x: Vec<usize>,
    /// The client lanes, left to right (lane indices).
    clients: Vec<usize>,
    /// The first client lifeline: client text ends left of it.
    first_client: usize,
    /// The server lifeline: server text starts right of it.
    server: usize,
    /// The accept queue's band, where there is a listening socket to show.
    band: Option<usize>,
    /// The whole width.
    width: usize,
    /// Where the lifelines start (below the lane titles).
    top: usize,
}

fn text_px(columns: usize) -> usize {
    (columns as f64 * COLUMN).ceil() as usize
}

fn layout(t: &Timeline) -> Layout {
    let clients: Vec<usize> = (0..t.lanes.len())
        .filter(|&l| t.lanes[l].side == Side::Client)
        .collect();
    let first_client = TIME_WIDTH + text_px(TEXT_COLUMNS) + 16;
    let last_client = first_client + LANE_GAP * clients.len().saturating_sub(1);
    let listening = t.seen.iter().any(|p| match &p.seen {
        Seen::Sockets(s) => s.sockets.iter().any(|x| x.state == TcpState::Listen),
        Seen::Packet(_) => false,
    });
    let band_room = if listening { BAND + 40 } else { 0 };
    let server = (first_client + SPAN).max(last_client + 120 + band_room);
    let band = listening.then(|| server - 28 - BAND / 2);
    let x = t
        .lanes
        .iter()
        .enumerate()
        .map(|(l, lane)| match lane.side {
            Side::Client => first_client + LANE_GAP * clients.iter().position(|&c| c == l).unwrap_or(0),
            Side::Server => server,
        })
        .collect();
    Layout {
        x,
        first_client,
        server,
        band,
        width: server + 16 + text_px(TEXT_COLUMNS) + 16,
        top: TOP_GAP + 18 * clients.len().max(1) + 16,
        clients,
    }
}

/// What the picture draws, from top to bottom.
enum Drawn {
    /// A captured packet's arrow: its y, from the lane's x to the server's (or back),
    /// whether it goes to the server, its words, its kind.
    Packet {
        y: usize,
        client_x: usize,
        up: bool,
        words: String,
        mark: Mark,
    },
    /// A state line beside a side's lifelines.
    State(usize, Side, String),
    /// The accept queue as the band shows it: its y, connections waiting, the backlog.
    Queue(usize, u32, u32),
}

/// How a packet's arrow ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    /// It arrived.
    Arrived,
    /// A SYN the server's kernel dropped (its accept queue full): no SYN-ACK came before
    /// the client sent it again.
    Dropped,
    /// An ICMP error (port unreachable).
    Icmp,
}

/// Which of the captured packets are SYNs that were dropped: a client's SYN followed by
/// the same SYN sent again, with no SYN-ACK between.
fn dropped_syns(steps: &[Step<'_>]) -> Vec<bool> {
    let segs: Vec<Option<(u16, Dir, u8)>> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Seen(Seen::Packet(_), kind) => Some(match *kind {
                Carries::Segment { k, dir, flags, .. } => Some((k, dir, flags)),
                _ => None,
            }),
            _ => None,
        })
        .collect();
    let syn = |f: u8| f & flag::SYN != 0 && f & flag::ACK == 0;
    segs.iter()
        .enumerate()
        .map(|(i, seg)| {
            let Some((k, Dir::Up, f)) = *seg else {
                return false;
            };
            if !syn(f) {
                return false;
            }
            for later in segs[i + 1..].iter().flatten() {
                let (k2, dir2, f2) = *later;
                if k2 != k {
                    continue;
                }
                if dir2 == Dir::Down {
                    return false;
                }
                if syn(f2) {
                    return true;
                }
            }
            false
        })
        .collect()
}

/// A `<text>` with a background the size of its box (the `#bg` filter), so that lines
/// and arrows under it never cross its words.
fn label(s: &mut String, x: usize, y: usize, class: &str, anchor: &str, words: &str) {
    let _ = writeln!(
        s,
        "<text x=\"{x}\" y=\"{y}\" class=\"{class}\" text-anchor=\"{anchor}\" filter=\"url(#bg)\">{}</text>",
        escape(words)
    );
}

/// The inline SVG of a timeline.
pub fn svg(t: &Timeline, lang: Lang) -> String {
    let at = layout(t);
    let steps = t.steps();
    let dropped = dropped_syns(&steps);
    // Each row's lines (call, then explanation) and its top; what the kernel showed,
    // each with its top, between them.
    let mut tops = Vec::with_capacity(t.rows.len());
    let mut y = at.top + 10;
    let mut rows = Vec::with_capacity(t.rows.len());
    let mut samples: Vec<&Sample> = Vec::new();
    let mut drawn = Vec::new();
    let mut packet = 0;
    let mut queue = None;
    for step in &steps {
        let (l, i) = match *step {
            Step::Call(at) => at,
            Step::Seen(Seen::Packet(p), kind) => {
                let (up, k, words) = packet_arrow_of(t, p, kind, lang);
                let mark = if matches!(kind, Carries::Unreachable(..)) {
                    Mark::Icmp
                } else if dropped.get(packet).copied().unwrap_or(false) {
                    Mark::Dropped
                } else {
                    Mark::Arrived
                };
                packet += 1;
                let client_x = k
                    .and_then(|k| t.client_lane(k))
                    .map_or(at.first_client, |l| at.x[l]);
                drawn.push(Drawn::Packet {
                    y: y + 18,
                    client_x,
                    up,
                    words,
                    mark,
                });
                // A dropped SYN says why below its line.
                y += if mark == Mark::Dropped { 50 } else { 34 };
                continue;
            }
            Step::Seen(Seen::Sockets(sample), _) => {
                // The queue where its length changed, as the state lines say it.
                if let Some(l) = sample.listener(t.port).filter(|l| queue != Some(l.rqueue)) {
                    queue = Some(l.rqueue);
                    drawn.push(Drawn::Queue(y + 8, l.rqueue, l.wqueue));
                }
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
        rows.push((l, call, head, note));
    }
    let height = y + 20;
    let width = at.width;
    let origin = t.origin();
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img">
<defs>
<marker id="head" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="context-stroke"/></marker>
<filter id="bg" x="-0.02" y="-0.1" width="1.04" height="1.2"><feFlood flood-color="#fffdf8"/><feComposite in="SourceGraphic" operator="over"/></filter>
</defs>
<rect x="0" y="0" width="{width}" height="{height}" fill="#fffdf8"/>
"##
    );
    let bottom = height - 10;
    // The accept queue's band: the kernel's, between the clients and the server.
    if let Some(b) = at.band {
        let _ = writeln!(
            s,
            "<rect x=\"{}\" y=\"{}\" width=\"{BAND}\" height=\"{}\" class=\"band\"/>",
            b - BAND / 2,
            at.top - 6,
            bottom - at.top + 6
        );
    }
    // Lifelines and their titles: each client lane its own, stacked so none covers another.
    for (n, &l) in at.clients.iter().enumerate() {
        let x = at.x[l];
        let _ = writeln!(
            s,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{bottom}\" class=\"life\"/>",
            TOP_GAP + 18 * n + 6
        );
        label(
            &mut s,
            x,
            TOP_GAP + 18 * n,
            "lane",
            "end",
            &client_title(&t.lanes[l].label, at.clients.len(), lang),
        );
    }
    let server_title = if t.lanes.iter().any(|l| l.side == Side::Server) {
        say(lang, "server", "서버")
    } else {
        say(
            lang,
            "closed port (the kernel answers)",
            "닫힌 포트 (커널이 응답)",
        )
    };
    let _ = writeln!(
        s,
        "<line x1=\"{x}\" y1=\"{y}\" x2=\"{x}\" y2=\"{bottom}\" class=\"life\"/>",
        x = at.server,
        y = TOP_GAP + 6
    );
    label(&mut s, at.server, TOP_GAP, "lane", "start", server_title);
    if let Some(b) = at.band {
        let words = say(lang, "accept queue (kernel)", "연결요청 대기 큐 (커널)");
        label(&mut s, b, at.top - 12, "band", "middle", words);
    }
    // Inferred arrows, where no packet was captured, under everything else.
    for a in t.arrows.iter().filter(|_| !t.captured) {
        let (Some(from), Some(to)) = (
            t.rows.iter().position(|&r| r == a.from),
            t.rows.iter().position(|&r| r == a.to),
        ) else {
            continue;
        };
        let (x1, x2) = (at.x[a.from.0], at.x[a.to.0]);
        if t.lanes[a.from.0].side == t.lanes[a.to.0].side {
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
        let words = format!("{} ({})", wire_words(a.wire, lang), source_word(false, lang));
        let _ = writeln!(
            s,
            "<line x1=\"{x1}\" y1=\"{y1}\" x2=\"{x2}\" y2=\"{y2}\" class=\"arrow {class}\" marker-end=\"url(#head)\"/>"
        );
        label(
            &mut s,
            (x1 + x2) / 2,
            (y1 + y2) / 2 + 4,
            &format!("wire {class}"),
            "middle",
            &words,
        );
    }
    // What the kernel showed: captured packets as solid arrows at their places, states
    // beside their sockets' lifelines, the queue in its band.
    for d in &drawn {
        match d {
            Drawn::Packet {
                y,
                client_x,
                up,
                words,
                mark,
            } => {
                let (x1, x2) = if *up {
                    (*client_x, at.server)
                } else {
                    (at.server, *client_x)
                };
                let class = match mark {
                    Mark::Arrived => "packet",
                    Mark::Dropped => "packet dropped",
                    Mark::Icmp => "packet icmp",
                };
                match mark {
                    Mark::Dropped => {
                        // The SYN reaches the server's kernel and goes no further.
                        let stop = at.band.map_or(at.server - 20, |b| b - BAND / 2 - 4);
                        label(&mut s, (x1 + stop) / 2, y - 7, class, "middle", words);
                        // A cross of two strokes (a font may lack ✕), over the words'
                        // background.
                        let _ = writeln!(
                            s,
                            "<line x1=\"{x1}\" y1=\"{y}\" x2=\"{stop}\" y2=\"{y}\" class=\"{class}\"/>\n<path d=\"M{},{} L{},{} M{},{} L{},{}\" class=\"cross\"/>",
                            stop - 6,
                            y - 6,
                            stop + 6,
                            y + 6,
                            stop - 6,
                            y + 6,
                            stop + 6,
                            y - 6
                        );
                        let why = say(
                            lang,
                            "dropped: accept queue full",
                            "버려짐: 연결요청 대기 큐가 가득 참",
                        );
                        label(&mut s, stop - 10, y + 20, "packet dropped", "end", why);
                    }
                    _ => {
                        let _ = writeln!(
                            s,
                            "<line x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" class=\"{class}\" marker-end=\"url(#head)\"/>"
                        );
                        if *mark == Mark::Icmp {
                            // Where the error comes from: a red dot on the lifeline.
                            let _ = writeln!(s, "<circle cx=\"{x1}\" cy=\"{y}\" r=\"5\" class=\"cross\"/>");
                        }
                        label(&mut s, (x1 + x2) / 2, y - 5, class, "middle", words);
                    }
                }
            }
            Drawn::State(top, side, words) => {
                let (x, anchor) = match side {
                    Side::Client => (at.first_client - 12, "end"),
                    Side::Server => (at.server + 12, "start"),
                };
                label(&mut s, x, *top, "state", anchor, words);
            }
            Drawn::Queue(y, waiting, backlog) => {
                let Some(b) = at.band else {
                    continue;
                };
                // One square a connection waiting, and the empty places up to backlog + 1
                // where they fit.
                const MOST: u32 = 6;
                let shown = (*waiting).min(MOST);
                let places = if *backlog < MOST { *backlog + 1 } else { shown }.max(shown);
                let left = b - (places as usize * 10) / 2;
                for k in 0..places {
                    let class = if k < shown { "slot full" } else { "slot" };
                    let _ = writeln!(
                        s,
                        "<rect x=\"{}\" y=\"{}\" width=\"8\" height=\"8\" class=\"{class}\"/>",
                        left + k as usize * 10,
                        y - 8
                    );
                }
                label(&mut s, b, y + 12, "queue", "middle", &waiting.to_string());
            }
        }
    }
    for (k, (l, call, head, note)) in rows.iter().enumerate() {
        let top = tops[k];
        let side = t.lanes[*l].side;
        let dot = at.x[*l];
        let (x, anchor) = match side {
            Side::Client => (at.first_client - 12, "end"),
            Side::Server => (at.server + 12, "start"),
        };
        let class = if call.textbook() {
            "call textbook"
        } else {
            "call added"
        };
        if side == Side::Client && dot != at.first_client {
            // A later client's call: its words sit with the others', a leader to its lane.
            let _ = writeln!(
                s,
                "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" class=\"leader\"/>",
                at.first_client - 8,
                top + 5,
                dot - 5,
                top + 5
            );
        }
        let ms = call.t_us.saturating_sub(origin) as f64 / 1000.0;
        let _ = write!(
            s,
            "<circle cx=\"{dot}\" cy=\"{}\" r=\"4\" class=\"{class}\"/>\n<text x=\"8\" y=\"{}\" class=\"time\">{ms:.3} ms +{}µs</text>\n<text x=\"{x}\" y=\"{}\" text-anchor=\"{anchor}\" filter=\"url(#bg)\">",
            top + 5,
            top + 9,
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

/// A client lane's title: its label where there are several, else `client`.
fn client_title(label: &str, clients: usize, lang: Lang) -> String {
    if clients > 1 {
        label.to_string()
    } else {
        say(lang, "client", "클라이언트").to_string()
    }
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
    s.push_str("</table>\n");
    if !part.predict.is_empty() {
        let _ = writeln!(
            s,
            "<h2>{}</h2>\n<pre class=\"predict\">{}</pre>",
            say(lang, "Predict, then run", "예측하고 실행해 보기"),
            escape(&part.predict.join("\n"))
        );
    }
    s.push_str("</body>\n</html>\n");
    s
}

/// The pages' style. Code (and the picture, which is code) is in a monospace font whose
/// backslash is a backslash: NanumGothicCoding draws Hangul and ASCII as code fonts do,
/// where NanumGothic draws `\` as `₩`; prose takes Latin from DejaVu Sans first for the
/// same reason, Hangul from NanumGothic.
const STYLE: &str = "\
body { font-family: 'DejaVu Sans', 'NanumGothic', 'Noto Sans CJK KR', 'Noto Sans KR', sans-serif; margin: 24px; color: #222; background: #fffdf8; }
pre, code, svg text { font-family: 'NanumGothicCoding', 'DejaVu Sans Mono', monospace; }
pre { background: #f4f1ea; padding: 8px 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
figure { margin: 0; }
svg { display: block; width: 100%; height: auto; }
svg text { font-size: 12px; }
svg .lane { font-size: 15px; font-weight: bold; }
svg .life { stroke: #888; stroke-width: 2; }
svg .leader { stroke: #bbb; stroke-width: 1; stroke-dasharray: 2 3; }
svg .band { fill: #f1ead8; stroke: #d8cba8; }
svg text.band { fill: #8a4b00; font-size: 11px; font-weight: bold; }
svg rect.slot { fill: #fffdf8; stroke: #8a4b00; }
svg rect.slot.full { fill: #8a4b00; }
svg text.queue { fill: #8a4b00; font-size: 11px; }
svg .time { font-size: 10px; fill: #777; }
svg tspan.textbook { fill: #111; font-weight: bold; }
svg tspan.added { fill: #2a5d8f; }
svg tspan.note { fill: #666; font-size: 11px; }
svg circle.textbook { fill: #111; }
svg circle.added { fill: #fff; stroke: #2a5d8f; stroke-width: 2; }
svg .arrow { stroke-width: 1.6; stroke-dasharray: 6 4; fill: none; }
svg line.packet { stroke: #1f6fb2; stroke-width: 1.4; }
svg text.packet { fill: #1f6fb2; font-size: 11px; }
svg line.dropped { stroke: #c0262d; stroke-dasharray: 4 3; }
svg text.dropped { fill: #c0262d; }
svg line.icmp { stroke: #c0262d; }
svg text.icmp { fill: #c0262d; }
svg path.cross { stroke: #c0262d; stroke-width: 2.5; fill: none; }
svg circle.cross { fill: #c0262d; }
svg text.state { fill: #8a4b00; font-size: 11px; font-style: italic; }
svg .wire { font-size: 11px; }
svg .handshake { stroke: #1f6fb2; fill: #1f6fb2; }
svg .data { stroke: #2e8b3e; fill: #2e8b3e; }
svg .fin { stroke: #c86b00; fill: #c86b00; }
svg .datagram { stroke: #7a3db8; fill: #7a3db8; }
svg .rst { stroke: #c0262d; fill: #c0262d; }
svg text.wire { stroke: none; }
table.calls { border-collapse: collapse; font-size: 13px; width: 100%; }
table.calls td, table.calls th { border-bottom: 1px solid #ddd; padding: 3px 8px; vertical-align: top; text-align: left; overflow-wrap: anywhere; }
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
    use crate::timeline::fixtures::{one_exchange, one_exchange_kernel};
    use crate::timeline::{Sample, build, build_seen};
    use hello_proto::kernel::{TcpSocket, TcpState};

    fn part() -> Part {
        let t = build(one_exchange(Lang::Ko, b"<&>")).unwrap();
        Part {
            scenario: crate::scenario::Scenario::Hello,
            slug: "x".into(),
            title: "제목 <b>".into(),
            commands: vec!["$ hello-server 0".into()],
            outputs: vec![],
            notice: vec!["보세요".into()],
            extra: vec![],
            timeline: t,
            observed: None,
            predict: vec![
                "1. 무엇이 될까요?".into(),
                "     $ hello-client 127.0.0.1 9".into(),
            ],
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
        assert!(
            page.contains("<h2>예측하고 실행해 보기</h2>") && page.contains("$ hello-client 127.0.0.1 9")
        );
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
        assert_eq!(
            picture.matches("class=\"packet\" marker-end").count(),
            5,
            "{picture}"
        );
        assert!(picture.contains("SYN-ACK: TCP [S.] 길이 0 (캡처됨)"));
        assert!(picture.contains("◆ 연결요청 대기 큐: 1개 (backlog 4)"));
        assert!(
            !picture.contains("(추정)"),
            "no inferred arrow where packets were captured"
        );
        let picture = svg(&t, Lang::En);
        assert!(picture.contains("◆ accept queue: 1 waiting (backlog 4)"));
        // The accept queue's band: one full place of backlog + 1 = 5, and its count.
        assert!(picture.contains("accept queue (kernel)"), "{picture}");
        assert_eq!(picture.matches("class=\"slot full\"").count(), 1, "{picture}");
        assert_eq!(picture.matches("class=\"slot\"").count(), 4, "{picture}");
    }

    #[test]
    fn the_picture_fits_its_window_and_every_label_has_a_background() {
        let t = build(one_exchange(Lang::Ko, b"hi")).unwrap();
        let picture = svg(&t, Lang::Ko);
        assert!(picture.contains("width=\"100%\""), "{picture}");
        let head = &picture[..picture.find('>').unwrap()];
        let viewbox = head.split("viewBox=\"0 0 ").nth(1).unwrap();
        let width: usize = viewbox.split(' ').next().unwrap().parse().unwrap();
        assert!(
            !head.contains(&format!("width=\"{width}\"")),
            "a fixed width: {head}"
        );
        // Every text but the time stamps and the marks has a background.
        for text in picture.split("<text").skip(1) {
            let open = &text[..text.find('>').unwrap()];
            assert!(
                open.contains("filter=\"url(#bg)\"") || open.contains("class=\"time\""),
                "a label without a background: <text{open}>"
            );
        }
        // Time stamps in their own column, left of everything, off the arrows.
        for text in picture
            .split("<text")
            .skip(1)
            .filter(|t| t.contains("class=\"time\""))
        {
            assert!(text.starts_with(" x=\"8\""), "{text}");
        }
    }

    #[test]
    fn a_syn_sent_again_before_any_syn_ack_was_dropped() {
        let packets = one_exchange_kernel().packets.unwrap();
        let (syn, syn_ack) = (Seen::Packet(packets[0]), Seen::Packet(packets[1]));
        let segment = |dir, flags, again| Carries::Segment {
            k: 5555,
            dir,
            flags,
            start: 0,
            end: 0,
            again,
        };
        let first = Step::Seen(&syn, segment(Dir::Up, flag::SYN, false));
        let again = Step::Seen(&syn, segment(Dir::Up, flag::SYN, true));
        let answer = Step::Seen(&syn_ack, segment(Dir::Down, flag::SYN | flag::ACK, false));
        assert_eq!(dropped_syns(&[first, again, answer]), vec![true, false, false]);
        assert_eq!(dropped_syns(&[first, answer, again]), vec![false, false, false]);
        assert_eq!(
            dropped_syns(&[first, Step::Call((0, 0)), answer]),
            vec![false, false]
        );
    }
}
