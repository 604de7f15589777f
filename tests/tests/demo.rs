//! `cargo xtask demo`'s scenarios end to end (hello_lesson::scenario), with the real
//! programs: the causal order of the two-column timeline over a hundred runs, checked by
//! `timeline::check` and, for the hello exchanges, on the text a reader sees; every scenario in both languages; and the HTML pages rendered
//! by headless Chromium (skipped, loudly, where there is none).

// Test code: a panic with a message is how it reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use hello_lesson::observe::{self, Capturing};
use hello_lesson::scenario::{self, Part, Programs, Scenario};
use hello_lesson::wire_view::Note;
use hello_lesson::{run, text, timeline};
use hello_proto::sys::capture::Limits;
use hello_proto::trace::Lang;
use hello_tests::bins;

fn programs() -> Programs {
    Programs {
        server: bins().server.clone(),
        client: bins().client.clone(),
    }
}

/// A call row of the two-column text: which side, and the call.
fn rows_of(rendered: &str) -> Vec<(bool, String)> {
    let mut rows = Vec::new();
    for line in rendered.lines() {
        let Some(bar) = line.find('│') else {
            continue;
        };
        let (left, right) = (&line[..bar], &line[bar + '│'.len_utf8()..]);
        for (client, half) in [(true, left), (false, right)] {
            for mark in ["● ", "○ "] {
                if let Some(i) = half.find(mark) {
                    let call = half[i + mark.len()..].trim();
                    // A lane label (`[client 2] `) before the call.
                    let call = match call.strip_prefix('[') {
                        Some(rest) => rest.split_once("] ").map_or(call, |(_, c)| c),
                        None => call,
                    };
                    rows.push((client, call.to_string()));
                }
            }
        }
    }
    rows
}

/// The byte count a call line reports: `read(3) = 13 "…"` → 13, `write(3, …) = 6` → 6.
fn count(call: &str) -> Option<u64> {
    let (_, result) = call.rsplit_once(") = ")?;
    result.split([' ', '(']).next()?.parse().ok()
}

/// Checks the order a reader sees, from the two-column text alone, for an exchange of
/// one client and one server: bytes are never read before they were sent, end of stream
/// never before a FIN, accept() never before connect(), a datagram never received before
/// it was sent.
fn check_text(rendered: &str) -> Result<(), String> {
    let mut sent: HashMap<bool, u64> = HashMap::new();
    let mut got: HashMap<bool, u64> = HashMap::new();
    let mut fin: HashMap<bool, bool> = HashMap::new();
    let mut datagrams: HashMap<bool, i64> = HashMap::new();
    let mut connected = false;
    for (client, call) in rows_of(rendered) {
        let peer = !client;
        let name = call.split('(').next().unwrap_or_default();
        match name {
            "connect" if call.contains(" = 0") => connected = true,
            "accept" if call.contains(", peer ") && !connected => {
                return Err(format!("accept shown before connect: {call}"));
            }
            "write" | "send" if !call.contains("= -1") => {
                *sent.entry(client).or_default() += count(&call).unwrap_or(0);
            }
            "shutdown" | "close" => {
                fin.insert(client, true);
            }
            "read" | "recv" if !call.contains("= -1") => match count(&call) {
                Some(0) if !fin.get(&peer).copied().unwrap_or(false) => {
                    return Err(format!("end of stream shown before the FIN: {call}"));
                }
                Some(n) => {
                    let g = got.entry(client).or_default();
                    *g += n;
                    let s = sent.get(&peer).copied().unwrap_or(0);
                    if *g > s {
                        return Err(format!("{call} shown when the peer had sent {s} bytes"));
                    }
                }
                None => {}
            },
            "sendto" if !call.contains("= -1") => *datagrams.entry(client).or_default() += 1,
            "recvfrom" if !call.contains("= -1") => {
                let d = datagrams.entry(peer).or_default();
                *d -= 1;
                if *d < 0 {
                    return Err(format!("{call} shown before its datagram was sent"));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Every scenario (`models` with its select(), epoll_wait() and fork model's EINTR
/// included) a hundred times: each page's order passes `timeline::check`, whose walk
/// holds the readiness and signal rules beside the byte, FIN and connect ones — and,
/// where this process may capture on `lo`, the packets captured placed among the calls
/// (none drawn before the call that caused it, no call returned before the packet it
/// needed), every one of them placed. Each page's calls ordered again without the
/// packets (the order `--no-capture` draws) pass it too. And the hello scenario's four
/// exchanges a run are checked on the text a reader sees, with the packets and without,
/// by `check_text`, which knows nothing of the timeline's rules (merging by the time each
/// call returned, as an earlier demo did, showed a read before its write often enough on
/// real traces). The runs mostly wait (a held client, a retransmitted SYN), so they go
/// several at once; each has its own servers on ports of their own.
#[test]
fn every_scenario_is_in_causal_order_with_readiness_and_signals_in_100_runs() {
    const RUNS: usize = 100;
    const AT_ONCE: usize = 20;
    let programs = programs();
    let (capturing, _clock) = match observe::probe() {
        Ok(clock) => (Capturing::On(Limits::default()), Some(clock)),
        Err(e) => {
            hello_tests::skip(&format!(
                "every_scenario_is_in_causal_order_with_readiness_and_signals_in_100_runs: the packets part: {e}"
            ));
            (Capturing::Off, None)
        }
    };
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, RunChecked)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..AT_ONCE {
            scope.spawn(|| {
                loop {
                    let run = next.fetch_add(1, Ordering::Relaxed);
                    if run >= RUNS {
                        break;
                    }
                    let got = one_run_checked(&programs, capturing);
                    results.lock().unwrap().push((run, got));
                }
            });
        }
    });
    let results = results.into_inner().unwrap();
    assert_eq!(results.len(), RUNS);
    let (mut pages, mut waits, mut packets, mut texts) = (0, 0, 0, 0);
    let mut bad = Vec::new();
    for (run, got) in results {
        match got {
            Ok(c) => {
                pages += c.pages;
                waits += c.waits;
                packets += c.packets;
                texts += c.texts;
            }
            Err(e) => bad.push(format!("run {run}: {e}")),
        }
    }
    eprintln!(
        "every scenario: causal order {}/{RUNS} runs ({pages} pages, {waits} readiness reports and interrupted calls the rules applied to, {packets} captured packets placed, {texts} hello texts checked) in {:.1} s, {AT_ONCE} runs at once",
        RUNS - bad.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        bad.is_empty(),
        "{} of {RUNS} runs failed:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert!(
        waits > 0,
        "no readiness report or interruption was tied to a cause"
    );
    assert!(
        capturing == Capturing::Off || packets > 0,
        "captured, yet no packet placed"
    );
    assert_eq!(
        texts,
        RUNS * 4 * 2,
        "the hello exchanges' texts checked, with the packets and without"
    );
}

/// What one run of every scenario found, or what was wrong.
type RunChecked = Result<Checked, String>;

/// What one run of every scenario was checked on.
struct Checked {
    /// Its pages.
    pages: usize,
    /// The readiness reports and interrupted calls among them that a rule applied to.
    waits: usize,
    /// The captured packets placed.
    packets: usize,
    /// The hello exchanges' texts checked by `check_text`.
    texts: usize,
}

/// One run of every scenario, each page checked; with `capturing`, every page's packets
/// placed (a capture that lost packets excepted: its arrows are inferred, and a note
/// says so).
fn one_run_checked(programs: &Programs, capturing: Capturing) -> RunChecked {
    let parts = scenario::run_watched("all", programs, Lang::En, capturing).map_err(|e| format!("{e:#}"))?;
    let (mut waits, mut packets, mut texts) = (0, 0, 0);
    for part in &parts {
        let t = &part.timeline;
        timeline::check(t).map_err(|e| format!("{}: {e}\n{}", part.slug, text::render(t, Lang::En)))?;
        let calls_only = timeline::build(t.lanes.clone()).map_err(|e| format!("{}: {e}", part.slug))?;
        timeline::check(&calls_only).map_err(|e| {
            format!(
                "{} without the packets: {e}\n{}",
                part.slug,
                text::render(&calls_only, Lang::En)
            )
        })?;
        if part.slug.starts_with("hello-") {
            for shown in [t, &calls_only] {
                let rendered = text::render(shown, Lang::En);
                let calls: usize = shown.lanes.iter().map(|l| l.calls.len()).sum();
                if rows_of(&rendered).len() != calls {
                    return Err(format!("{}: not every call shown once:\n{rendered}", part.slug));
                }
                check_text(&rendered).map_err(|e| format!("{}: {e}\n{rendered}", part.slug))?;
                texts += 1;
            }
        }
        if let Some(o) = part.observed.as_ref().filter(|_| capturing != Capturing::Off) {
            if o.notes.iter().any(|n| matches!(n, Note::Unplaced(_))) {
                let notes: Vec<String> = o.notes.iter().map(|n| n.render(Lang::En)).collect();
                return Err(format!(
                    "{}: {}\npackets: {:#?}\n{}",
                    part.slug,
                    notes.join("\n"),
                    o.packets,
                    text::render(t, Lang::En)
                ));
            }
            let lost = o
                .notes
                .iter()
                .any(|n| matches!(n, Note::Lost { .. } | Note::NoCapture(_)));
            if !t.captured && !lost {
                return Err(format!("{}: the packets were captured but not drawn", part.slug));
            }
            packets += t
                .seen
                .iter()
                .filter(|p| matches!(p.seen, timeline::Seen::Packet(_)))
                .count();
        }
        waits += t.wakes.iter().flatten().filter(|w| !w.is_empty()).count();
        waits += t
            .sems
            .iter()
            .flatten()
            .filter(|s| **s == timeline::Sem::Interrupted)
            .count();
    }
    if !parts.iter().any(|p| p.slug.starts_with("models")) {
        return Err("no models pages".into());
    }
    Ok(Checked {
        pages: parts.len(),
        waits,
        packets,
        texts,
    })
}

/// The text check itself catches an effect shown before its cause.
#[test]
fn the_text_check_fails_on_a_read_before_its_write() {
    let bad = "\
      0.000 ms  ● connect(3, 127.0.0.1:9) = 0 (+1µs)                  │
      0.010 ms                                                          │ ● accept(3) = 4, peer 127.0.0.1:5 (+1µs)
      0.020 ms                                                          │ ● read(4) = 6 \"hello\\0\" (+1µs)
      0.030 ms  ● write(3, \"hello\\0\") = 6 (+1µs)                       │
";
    assert!(check_text(bad).unwrap_err().contains("read(4)"));
    let good = bad
        .replace("read(4)", "XXX")
        .replace("write(3", "read(3")
        .replace("XXX", "write(4");
    assert!(
        check_text(&good).is_err(),
        "a read before the server's write is caught too"
    );
}

/// Every scenario runs in both languages and ends well: what it shows happened.
#[test]
fn every_scenario_runs_in_both_languages() {
    let programs = programs();
    for lang in [Lang::En, Lang::Ko] {
        for &name in Scenario::all() {
            let parts = scenario::run(&name.to_string(), &programs, lang)
                .unwrap_or_else(|e| panic!("{name} {lang:?}: {e:#}"));
            assert!(!parts.is_empty(), "{name}: no pages");
            if name == Scenario::Models {
                models_compare(&parts, lang);
            }
            let last = parts.last().unwrap();
            assert!(
                last.predict
                    .first()
                    .is_some_and(|l| l.starts_with("1. ") && l.ends_with('?')),
                "{name} {lang:?}: no question at the end: {:?}",
                last.predict
            );
            assert!(
                last.predict.iter().any(|l| l.trim_start().starts_with("$ ")),
                "{name}: no experiment"
            );
            for part in &parts {
                timeline::check(&part.timeline).unwrap_or_else(|e| panic!("{}: {e}", part.slug));
                assert!(!part.notice.is_empty(), "{}: nothing to notice", part.slug);
                // The commands as a reader types them: the trace as text.
                for c in part.commands.iter().filter(|c| c.starts_with("$ ")) {
                    assert!(
                        c.contains(" --trace") && !c.contains("--trace-format"),
                        "{}: {c}",
                        part.slug
                    );
                }
                let rendered = text::render(&part.timeline, lang);
                let hangul = rendered.chars().any(|c| ('\u{AC00}'..='\u{D7A3}').contains(&c));
                assert_eq!(
                    hangul,
                    lang == Lang::Ko,
                    "{} {lang:?}: language of the text",
                    part.slug
                );
            }
        }
    }
}

/// The models side by side: five columns within the width given (none where a column
/// would be too narrow), each model's calls in its column, the costs under them: the
/// iterative model alone lets the silent client hold up client 2, the fork model runs
/// in several processes; the same costs as a table under the last model.
fn models_compare(parts: &[Part], lang: Lang) {
    use hello_lesson::compare;
    let wide = compare::columns(parts, lang, 230).expect("five columns fit in 230");
    for line in wide.lines() {
        assert!(text::width(line) <= 230, "wider than 230: {line}");
    }
    let head = wide.lines().next().unwrap();
    for model in scenario::models() {
        assert!(head.contains(&format!("--model {model}")), "{head}");
    }
    assert!(
        wide.contains("epoll_wait(") && wide.contains("select(") && wide.contains("fork()"),
        "{wide}"
    );
    assert!(
        compare::columns(parts, lang, 100).is_none(),
        "five columns of 18 are too narrow"
    );
    let costs = compare::costs(parts);
    assert_eq!(costs.len(), 5);
    for c in &costs {
        assert_eq!(c.held_up(), c.model == "iterative", "{c:?}");
        assert!(c.setup >= 3 && c.serving >= 6, "{c:?}");
    }
    assert!(
        costs.iter().find(|c| c.model == "fork").unwrap().processes >= 3,
        "{costs:?}"
    );
    let (waited, held) = match lang {
        Lang::En => ("client 2 waited", "a silent client holds up the rest"),
        Lang::Ko => ("클라이언트 2 대기", "조용한 클라이언트가 나머지를 붙잡음"),
    };
    assert!(wide.contains(waited) && wide.matches(held).count() == 1, "{wide}");
    let table = compare::costs_table(parts, lang);
    assert_eq!(table.lines().count(), 6, "{table}");
    let last = parts.last().unwrap();
    assert!(
        table.lines().all(|l| last.extra.iter().any(|e| e == l)),
        "{:?}",
        last.extra
    );
}

/// Headless Chromium, if the machine has it.
fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome", "headless_shell"]
        .iter()
        .find_map(|name| hello_tests::which(name))
}

/// Runs Chromium headless on `page` with `what` (`--screenshot=…` or `--dump-dom`),
/// bounded; its stdout.
fn run_chromium(browser: &Path, what: &[String], page: &Path) -> String {
    let profile = std::env::temp_dir().join(format!("hello-chromium-{}", std::process::id()));
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--window-size=1200,1600",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(what)
    .arg(format!("file://{}", page.display()));
    let (status, out, err) = hello_tests::run_bounded(&mut cmd);
    assert!(
        status.success(),
        "chromium {what:?} failed: {status}\n{}",
        String::from_utf8_lossy(&err)
    );
    String::from_utf8_lossy(&out).into_owned()
}

/// Decodes a PNG: (width, height, pixels as RGBA rows).
fn pixels(png_path: &Path) -> (u32, u32, Vec<[u8; 4]>) {
    let file = std::fs::File::open(png_path).expect("screenshot written");
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("PNG size")];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    let channels = info.color_type.samples();
    let px = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|c| match c.len() {
            4 => [c[0], c[1], c[2], c[3]],
            3 => [c[0], c[1], c[2], 255],
            _ => [c[0], c[0], c[0], 255],
        })
        .collect();
    (info.width, info.height, px)
}

/// What a page measures of itself once laid out in a 1200 px window, added to a copy of
/// it (the pages have no script): whether the document is wider than the window, whether
/// the picture is, every label of the picture that reaches outside it (clipped), and in
/// a Korean page the English words left outside the commands, the code and what the
/// programs printed.
const MEASURE: &str = r#"<script>
window.addEventListener('load', () => {
  const b = document.body;
  const svg = document.querySelector('svg');
  const vb = svg.viewBox.baseVal;
  const out = [];
  for (const t of svg.querySelectorAll('text')) {
    const r = t.getBBox();
    if (r.x < -0.5 || r.x + r.width > vb.width + 0.5) out.push(t.textContent.slice(0, 60));
  }
  b.setAttribute('data-page-wider', String(document.documentElement.scrollWidth > window.innerWidth));
  b.setAttribute('data-svg-wider', String(svg.getBoundingClientRect().right > window.innerWidth));
  b.setAttribute('data-clipped', out.join(' | '));
  const copy = b.cloneNode(true);
  copy.querySelectorAll('pre.commands, pre.outputs, pre.predict, code, tspan.textbook, tspan.added, script').forEach(e => e.remove());
  const english = (copy.textContent.match(/\b(client|server|captured|inferred|waiting|dropped|accept queue|more times|exchanges?)\b/g) || []);
  b.setAttribute('data-english', english.join(' '));
});
</script>"#;

/// The measures [`MEASURE`] left on the body of a dumped document.
fn measured<'a>(dom: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=\"");
    let at = dom
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} in the dumped page"))
        + key.len();
    &dom[at..at + dom[at..].find('"').unwrap()]
}

/// The pages render in a real browser, in both languages, in a 1200 px window: each
/// screenshot is not blank (a good share of it is drawn, in many colours), nothing is
/// wider than the window and no label of the picture reaches outside it, a Korean page
/// has no English words outside its commands and code, and every traced call is in the
/// rendered document, in the timeline's order.
#[test]
fn html_pages_render_in_chromium_in_both_languages() {
    let Some(browser) = chromium() else {
        hello_tests::skip(
            "no chromium on this machine: the HTML pages were not rendered (apt-get install chromium fonts-nanum)",
        );
        return;
    };
    let programs = programs();
    let dir = std::env::temp_dir().join(format!("hello-pages-{}", std::process::id()));
    for lang in [Lang::En, Lang::Ko] {
        // Every page of the hello scenario, and in Korean the backlog's too.
        let scenarios: &[&str] = if lang == Lang::Ko {
            &["hello", "backlog"]
        } else {
            &["hello"]
        };
        let parts: Vec<Part> = scenarios
            .iter()
            .flat_map(|s| scenario::run(s, &programs, lang).expect("scenario"))
            .collect();
        let out = dir.join(format!("{lang:?}"));
        run::write_pages(&out, &parts, lang).expect("pages written");
        for part in &parts {
            let path = out.join(format!("{}.html", part.slug));
            let shot = out.join(format!("{}.png", part.slug));
            run_chromium(&browser, &[format!("--screenshot={}", shot.display())], &path);
            let (w, h, px) = pixels(&shot);
            assert!(w >= 1000 && h >= 1000, "{}: screenshot {w}x{h}", part.slug);
            let background = px[0];
            let drawn = px.iter().filter(|p| **p != background).count();
            let mut colours: Vec<[u8; 4]> = px.clone();
            colours.sort_unstable();
            colours.dedup();
            assert!(
                drawn * 50 > px.len() && colours.len() > 20,
                "{} {lang:?}: a blank screenshot ({drawn} of {} pixels drawn, {} colours)",
                part.slug,
                px.len(),
                colours.len()
            );
            let measuring = out.join(format!("{}-measured.html", part.slug));
            let page = std::fs::read_to_string(&path).unwrap();
            std::fs::write(&measuring, page.replace("</body>", &format!("{MEASURE}</body>"))).unwrap();
            let dom = run_chromium(
                &browser,
                &["--dump-dom".to_string(), "--virtual-time-budget=2000".to_string()],
                &measuring,
            );
            assert_eq!(
                measured(&dom, "data-page-wider"),
                "false",
                "{} {lang:?}: the page is wider than 1200 px",
                part.slug
            );
            assert_eq!(
                measured(&dom, "data-svg-wider"),
                "false",
                "{} {lang:?}: the picture is wider than the window",
                part.slug
            );
            assert_eq!(
                measured(&dom, "data-clipped"),
                "",
                "{} {lang:?}: labels outside the picture",
                part.slug
            );
            if lang == Lang::Ko {
                assert_eq!(
                    measured(&dom, "data-english"),
                    "",
                    "{}: English in a Korean page",
                    part.slug
                );
            }
            // The measured page is the page with the measuring script after the rest of
            // its body: its document holds the page's table and picture as they are.
            let table = &dom[dom.find("<table").expect("the calls table rendered")..];
            let mut at = 0;
            for &(l, i) in &part.timeline.rows {
                // How a serialized DOM writes text: only &, < and > escaped.
                let call = part.timeline.lanes[l].calls[i]
                    .call
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;");
                let found = table[at..].find(&call).unwrap_or_else(|| {
                    panic!("{} {lang:?}: {call} not in the rendered page in order", part.slug)
                });
                at += found + call.len();
            }
            let svg = &dom[dom.find("<svg").expect("the picture rendered")..];
            assert!(
                svg.contains("<line") && svg.contains("<tspan"),
                "{}: an empty picture",
                part.slug
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--textbook`: the tutorials' programs' calls, numbered with their C lines, then the
/// real exchange's calls paired with them: every call the textbook's program makes is
/// made by the real one too (under its number), but the server's `close(serv_sock)`
/// (the real server exits and the kernel closes it); `write()` is made as `send()`; the
/// calls real software adds are marked, each with what it buys.
#[test]
fn the_textbook_programs_pair_with_the_real_exchanges() {
    let programs = programs();
    let made = hello_lesson::textbook::run(&programs, Lang::En).expect("the textbook programs ran");
    let parts = scenario::run("hello", &programs, Lang::En).expect("hello");
    assert_eq!(made.len(), parts.len());
    for (m, part) in made.iter().zip(&parts) {
        let text = hello_lesson::pairing::render(&m.records, &part.timeline, Lang::En);
        assert!(m.output.starts_with("Message from server: "), "{}", m.output);
        let (textbook, real) = text.split_at(text.find("The same exchange made the real way").unwrap());
        // Every textbook call is numbered, with its C line; all but getsockname() are
        // the textbook's.
        for (n, r) in m.records.iter().enumerate() {
            let src = r.src.as_deref().expect("a textbook record has its C line");
            assert!(
                textbook.contains(&format!("[{:>2}] ", n + 1)) && textbook.contains(src),
                "{text}"
            );
        }
        let not_made = real.matches("not made: ").count();
        for (n, r) in m.records.iter().enumerate().filter(|(_, r)| r.mark == "textbook") {
            let paired = real.contains(&format!("    [{:>2}] ", n + 1));
            let closes_listener = r.src.as_deref() == Some("close(serv_sock);");
            assert!(
                paired || (closes_listener && real.contains(&format!("not made: [{}] close()", n + 1))),
                "{}: textbook call [{}] {} not in the real exchange:\n{text}",
                part.slug,
                n + 1,
                r.call
            );
        }
        assert!(not_made <= 1, "{text}");
        assert!(real.contains("       + setsockopt(3, SOL_SOCKET, SO_"), "{text}");
        assert!(real.contains("calls added by real software"), "{text}");
    }
    let hello = hello_lesson::pairing::render(&made[0].records, &parts[0].timeline, Lang::En);
    assert!(
        hello.contains("write(clnt_sock, message, sizeof(message));"),
        "{hello}"
    );
    assert!(
        hello.contains("] write → send(6, \"Hello World!\\0\", MSG_MORE) = 13"),
        "{hello}"
    );
    assert!(
        hello.contains(
            "       + recv(6, MSG_DONTWAIT) = -1 EAGAIN\n           nothing unread yet: half-close"
        ),
        "{hello}"
    );
}

/// Every predict-then-run experiment runs as shown (the programs on `PATH`, its port a
/// free one instead of 9190, in a folder of its own) and its output gives the answer the
/// scenario teaches; each scenario's last page asks its questions, in both languages.
#[test]
fn every_predict_then_run_experiment_gives_its_answer() {
    use hello_lesson::predict;
    let bin = bins().server.parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    std::thread::scope(|scope| {
        let mut runs = Vec::new();
        for &name in Scenario::all() {
            for (k, q) in predict::questions(name).iter().enumerate() {
                if let Some(missing) = q.needs.iter().find(|t| hello_tests::which(t).is_none()) {
                    hello_tests::skip(&format!(
                        "every_predict_then_run_experiment_gives_its_answer: {name}'s needs {missing}"
                    ));
                    continue;
                }
                let path = path.clone();
                runs.push((
                    name,
                    scope.spawn(move || {
                        let port = std::net::TcpListener::bind("127.0.0.1:0")
                            .unwrap()
                            .local_addr()
                            .unwrap()
                            .port();
                        let dir = std::env::temp_dir()
                            .join(format!("hello-predict-{}-{name}-{k}", std::process::id()));
                        std::fs::create_dir_all(&dir).unwrap();
                        let script = q.run.join("\n").replace("9190", &port.to_string());
                        // Bounded: timeout ends its whole process group (the shell and its
                        // jobs) after 25 s, so the output ends by then too.
                        let bounded = format!("trap 'kill $(jobs -p) 2>/dev/null' EXIT\n{script}");
                        let mut cmd = Command::new("timeout");
                        cmd.args(["-k", "2", "25", "bash", "-c", &bounded])
                            .stdin(std::process::Stdio::null())
                            .current_dir(&dir)
                            .env("PATH", &path);
                        let done = cmd.output().expect("run timeout bash");
                        let (out, err) = (done.stdout, done.stderr);
                        let _ = std::fs::remove_dir_all(&dir);
                        let all = format!(
                            "{}{}",
                            String::from_utf8_lossy(&out),
                            String::from_utf8_lossy(&err)
                        );
                        ((q.answered)(&all), script, all)
                    }),
                ));
            }
        }
        for (name, run) in runs {
            let (answered, script, all) = run.join().unwrap();
            assert!(
                answered,
                "{name}: the experiment did not give its answer:\n{script}\n---\n{all}"
            );
        }
    });
}

/// `xtask` as built beside the programs (`cargo build -p xtask`), run with `CARGO=/bin/true`
/// so that its build step does nothing and it takes the programs bins() built; `None`
/// (after a SKIP line) where the programs are not a debug build.
fn built_xtask(test: &str) -> Option<PathBuf> {
    let dir = bins().server.parent().unwrap().to_path_buf();
    if !dir.ends_with("debug") {
        hello_tests::skip(&format!("{test}: the programs are not a debug build"));
        return None;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .current_dir(hello_tests::workspace_root())
        .args(["build", "--quiet", "-p", "xtask"])
        .output()
        .expect("run cargo");
    assert!(built.status.success(), "cargo build -p xtask failed: {built:?}");
    Some(dir.join("xtask"))
}

#[test]
fn step_without_a_terminal_is_a_one_line_usage_error() {
    let Some(xtask) = built_xtask("step_without_a_terminal_is_a_one_line_usage_error") else {
        return;
    };
    let out = Command::new(xtask)
        .args(["demo", "--step"])
        .env("CARGO", "/bin/true")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run xtask");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    hello_tests::assert_one_line("xtask demo --step without a terminal", &stderr);
    assert!(
        stderr.contains("--step") && stderr.contains("terminal"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// A bad `cargo xtask` command line, in its arguments or in a knob's environment
/// variable, is one line naming what is wrong, and exit 2 (`cargo xtask --help`); no task
/// starts (nothing on stdout).
#[test]
fn a_bad_xtask_command_line_is_one_line_and_exit_2() {
    let Some(xtask) = built_xtask("a_bad_xtask_command_line_is_one_line_and_exit_2") else {
        return;
    };
    // The arguments, an environment variable to set, and what the line must name.
    type Case = (
        &'static [&'static str],
        Option<(&'static str, &'static str)>,
        &'static str,
    );
    let cases: [Case; 5] = [
        (&["demo", "nope"], None, "'nope'"),
        (&["demo", "udp", "--step"], None, "--step"),
        (&["soak", "--model", "poll"], None, "'poll'"),
        (&["cluster", "--model", "fork"], None, "fork"),
        (&["bench"], Some(("REPEATS", "0")), "REPEATS"),
    ];
    for (args, env, says) in cases {
        let mut cmd = Command::new(&xtask);
        cmd.args(args).env("CARGO", "/bin/true");
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run xtask");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        hello_tests::assert_one_line(&format!("xtask {args:?}"), &stderr);
        assert!(
            stderr.starts_with("xtask: ") && stderr.contains(says),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// A tmux server of the test's own (`tmux -L NAME`), killed when dropped.
struct Tmux(String);

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.0])
            .args(args)
            .output()
            .expect("run tmux");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The whole pane, scrollback too, wrapped lines joined.
    fn pane(&self) -> String {
        self.run(&["capture-pane", "-p", "-J", "-S", "-2000", "-t", "step"])
    }

    /// Waits (bounded) until the pane holds `n` stops, or `needle`; the pane.
    fn wait(&self, what: &str, mut ok: impl FnMut(&str) -> bool) -> String {
        let mut pane = String::new();
        let held = hello_tests::wait_until(std::time::Duration::from_secs(60), || {
            pane = self.pane();
            ok(&pane)
        });
        assert!(held, "the step walk never showed {what}; the pane:\n{pane}");
        pane
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["-L", &self.0, "kill-server"]).output();
    }
}

/// The text from the last stop shown (`▶ …`) to the end.
fn last_stop(pane: &str) -> &str {
    pane.rfind('▶').map_or(pane, |i| &pane[i..])
}

#[test]
fn step_walks_the_textbook_programs_call_by_call_under_tmux() {
    let test = "step_walks_the_textbook_programs_call_by_call_under_tmux";
    if hello_tests::which("tmux").is_none() {
        hello_tests::skip(&format!("{test}: no tmux"));
        return;
    }
    let Some(xtask) = built_xtask(test) else {
        return;
    };
    let tmux = Tmux(format!("hello-step-{}", std::process::id()));
    let command = format!(
        "env CARGO=/bin/true {} demo --step; echo EXIT=$?; sleep 120",
        xtask.display()
    );
    tmux.run(&[
        "new-session",
        "-d",
        "-s",
        "step",
        "-x",
        "200",
        "-y",
        "60",
        &command,
    ]);
    // Stops shown whole: the last one down to its prompt.
    let stops = |pane: &str| {
        let n = pane.matches("is about to call").count();
        if last_stop(pane).contains("[q] quit >") {
            n
        } else {
            n.saturating_sub(1)
        }
    };
    let pane = tmux.wait("the server's first call", |p| stops(p) >= 1);
    assert!(
        last_stop(&pane).contains("server is about to call socket()")
            && last_stop(&pane).contains("C: serv_sock = socket(PF_INET, SOCK_STREAM, 0);"),
        "{pane}"
    );
    // socket, bind, listen, getsockname; the client's socket, connect, read: then the
    // server's accept(), with the client already connected, waiting in the queue.
    let mut pane = pane;
    for n in 2..=8 {
        tmux.run(&["send-keys", "-t", "step", "Enter"]);
        pane = tmux.wait(&format!("stop {n}"), |p| stops(p) >= n);
    }
    let stop = last_stop(&pane);
    assert!(
        stop.contains("server is about to call accept()")
            && stop.contains("C: clnt_sock = accept(serv_sock, (struct sockaddr *)&clnt_addr, &addr_size);"),
        "{pane}"
    );
    assert!(
        stop.contains("LISTEN") && stop.contains("accept queue: 1 waiting (backlog 5)"),
        "{pane}"
    );
    assert!(stop.contains("client ESTABLISHED"), "{pane}");
    let before = &pane[..pane.rfind('▶').unwrap()];
    assert!(before.contains("client ✓ connect(3, 127.0.0.1:"), "{pane}");
    assert!(!before.contains("server ✓ accept("), "{pane}");
    let port: u16 = pane
        .lines()
        .find_map(|l| l.strip_prefix("$ hello-client --textbook --trace 127.0.0.1 "))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no client command line with a port:\n{pane}"));
    // The command a reader types: the trace as text, no JSON option.
    assert!(!pane.contains("--trace-format"), "{pane}");
    tmux.run(&["send-keys", "-t", "step", "Enter"]);
    let pane = tmux.wait("the server's write()", |p| stops(p) >= 9);
    let stop = last_stop(&pane);
    assert!(
        stop.contains("server is about to call write()")
            && stop.contains("C: write(clnt_sock, message, sizeof(message));")
            && stop.contains("accept queue: 0 waiting"),
        "{pane}"
    );
    assert!(pane.contains("server ✓ accept(3) = 4"), "{pane}");
    // q: both programs stopped, exit 0.
    tmux.run(&["send-keys", "-t", "step", "q", "Enter"]);
    let pane = tmux.wait("the end after q", |p| p.contains("EXIT="));
    assert!(
        pane.contains("stopped: both programs ended.") && pane.contains("EXIT=0"),
        "{pane}"
    );
    let (left, _) = hello_proto::sys::sockdiag::tcp_sockets(&[port]).unwrap();
    assert!(
        !left
            .iter()
            .any(|s| s.state == hello_proto::kernel::TcpState::Listen),
        "the server still listens on {port} after q: {left:?}"
    );
}
