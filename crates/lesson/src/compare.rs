//! `cargo xtask demo models` as a reader compares them: the five models' server calls in
//! columns side by side, as wide as the terminal allows ([`columns`]), and what each
//! costs under them: the server's calls (its set-up, the clients', its stop) and per
//! client, its processes, how long client 2 waited while client 1 held the server silent
//! ([`costs`]). Where the terminal
//! is too narrow (or there is none), the demo shows the models one after the other and
//! [`costs_table`] under them.
//!
//! Pure: the scenario's parts in, text out.

use std::fmt::Write as _;

use hello_proto::trace::Lang;

use crate::scenario::{Part, Scenario};
use crate::text::width;
use crate::timeline::Side;

/// Columns a model's column needs at least, and between two columns.
const NARROWEST: usize = 26;
const GAP: &str = " │ ";

/// What one model cost in the two-clients experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Cost {
    /// The model: `iterative`, `fork`, …
    pub model: String,
    /// The server's calls, all of them.
    pub calls: usize,
    /// The server's calls up to `listen()`: its set-up.
    pub setup: usize,
    /// The server's calls for the two clients: after `listen()`, up to its last
    /// `close()`, `_exit()` or `waitpid()` (the calls after it are its stop).
    pub serving: usize,
    /// Processes that made the server's calls (the fork model's children besides).
    pub processes: usize,
    /// Client 2's longest `read()`, in µs: how long the silent client 1 held it up.
    pub waited_us: u64,
}

impl Cost {
    /// The calls after set-up that are not the stop.
    pub fn stop(&self) -> usize {
        self.calls - self.setup - self.serving
    }

    /// The calls for the clients, per client (the experiment has two).
    pub fn per_client(&self) -> f64 {
        self.serving as f64 / 2.0
    }

    /// Whether the silent client held the other up (more than 100 ms).
    pub fn held_up(&self) -> bool {
        self.waited_us > 100_000
    }
}

/// The model a part of the `models` scenario shows (`models-fork` → `fork`).
fn model_of(part: &Part) -> &str {
    part.slug.strip_prefix("models-").unwrap_or(&part.slug)
}

/// The server's calls of a part, in the timeline's order, each as the reader sees it
/// (`[4242] read(…) = 6` for a fork model's child).
fn server_calls(part: &Part) -> Vec<(String, String)> {
    let t = &part.timeline;
    t.rows
        .iter()
        .filter(|&&(l, _)| t.lanes[l].side == Side::Server)
        .map(|&(l, i)| {
            let call = &t.lanes[l].calls[i];
            let who = match t.label((l, i)) {
                Some(w) => format!("{} ", w.trim_start_matches("server")),
                None => String::new(),
            };
            (call.call.clone(), format!("{who}{}", call.c))
        })
        .collect()
}

/// What each model of the `models` scenario cost.
pub fn costs(parts: &[Part]) -> Vec<Cost> {
    parts
        .iter()
        .filter(|p| p.scenario == Scenario::Models)
        .map(|p| {
            let calls = server_calls(p);
            let listen = calls.iter().position(|(name, _)| name == "listen");
            let mut whos: Vec<&str> = p
                .timeline
                .lanes
                .iter()
                .filter(|l| l.side == Side::Server)
                .flat_map(|l| l.calls.iter().map(|c| c.who.as_str()))
                .filter(|w| !w.contains('#'))
                .collect();
            whos.sort_unstable();
            whos.dedup();
            let second = p.timeline.lanes.iter().filter(|l| l.side == Side::Client).nth(1);
            let setup = listen.map_or(0, |i| i + 1);
            let last = calls
                .iter()
                .rposition(|(name, _)| matches!(name.as_str(), "close" | "_exit" | "waitpid"))
                .filter(|&i| i >= setup)
                .map_or(setup, |i| i + 1);
            Cost {
                model: model_of(p).to_string(),
                calls: calls.len(),
                setup,
                serving: last - setup,
                processes: whos.len().max(1),
                waited_us: second
                    .map(|l| {
                        l.calls
                            .iter()
                            .filter(|c| c.call == "read")
                            .map(|c| c.dur_us)
                            .max()
                            .unwrap_or(0)
                    })
                    .unwrap_or(0),
            }
        })
        .collect()
}

/// `s` cut or padded to `w` columns (a Hangul syllable is two).
fn fit(s: &str, w: usize) -> String {
    if width(s) <= w {
        return format!("{s}{}", " ".repeat(w - width(s)));
    }
    let mut out = String::new();
    for c in s.chars() {
        if width(&out) + width(&c.to_string()) + 1 > w {
            break;
        }
        out.push(c);
    }
    out.push('…');
    format!("{out}{}", " ".repeat(w.saturating_sub(width(&out))))
}

/// The cost lines under a model's column, in `lang`.
fn cost_lines(c: &Cost, lang: Lang) -> Vec<String> {
    let ms = c.waited_us as f64 / 1000.0;
    match lang {
        Lang::En => vec![
            format!("calls: {}", c.calls),
            format!("  set-up {}, clients {}, stop {}", c.setup, c.serving, c.stop()),
            format!("per client: {:.1} calls", c.per_client()),
            match c.processes {
                1 => "1 process".to_string(),
                n => format!("{n} processes"),
            },
            format!("client 2 waited {ms:.1} ms"),
            if c.held_up() {
                "a silent client holds up the rest".to_string()
            } else {
                "a silent client holds up no one".to_string()
            },
        ],
        Lang::Ko => vec![
            format!("호출: {}개", c.calls),
            format!("  준비 {}, 클라이언트 {}, 종료 {}", c.setup, c.serving, c.stop()),
            format!("클라이언트당: {:.1}개", c.per_client()),
            format!("프로세스 {}개", c.processes),
            format!("클라이언트 2 대기 {ms:.1}ms"),
            if c.held_up() {
                "조용한 클라이언트가 나머지를 붙잡음".to_string()
            } else {
                "조용한 클라이언트가 아무도 붙잡지 않음".to_string()
            },
        ],
    }
}

/// The models' server calls in columns side by side, `columns` wide at most, with the
/// costs under them; `None` when a column would be narrower than it can be read.
pub fn columns(parts: &[Part], lang: Lang, columns: usize) -> Option<String> {
    let models: Vec<&Part> = parts.iter().filter(|p| p.scenario == Scenario::Models).collect();
    let n = models.len();
    if n == 0 {
        return None;
    }
    let w = columns.saturating_sub(width(GAP) * (n - 1)) / n;
    if w < NARROWEST {
        return None;
    }
    let calls: Vec<Vec<(String, String)>> = models.iter().map(|p| server_calls(p)).collect();
    let cost = costs(parts);
    let mut s = String::new();
    let row = |cells: Vec<String>| -> String {
        let joined: Vec<String> = cells.iter().map(|c| fit(c, w)).collect();
        format!("{}\n", joined.join(GAP).trim_end())
    };
    s.push_str(&row(models
        .iter()
        .map(|p| format!("--model {}", model_of(p)))
        .collect()));
    s.push_str(&row(vec!["─".repeat(w); n]));
    let depth = calls.iter().map(Vec::len).max().unwrap_or(0);
    for k in 0..depth {
        s.push_str(&row(calls
            .iter()
            .map(|c| c.get(k).map(|(_, line)| line.clone()).unwrap_or_default())
            .collect()));
    }
    s.push_str(&row(vec!["─".repeat(w); n]));
    let _ = writeln!(s, "{}", heading(lang));
    let lines: Vec<Vec<String>> = cost.iter().map(|c| cost_lines(c, lang)).collect();
    let tall = lines.iter().map(Vec::len).max().unwrap_or(0);
    for k in 0..tall {
        s.push_str(&row(lines
            .iter()
            .map(|l| l.get(k).cloned().unwrap_or_default())
            .collect()));
    }
    Some(s)
}

/// The line that says what the costs are.
pub fn heading(lang: Lang) -> &'static str {
    match lang {
        Lang::En => "What each model cost (the same two clients; client 1 silent for a while):",
        Lang::Ko => "모델별 비용 (같은 두 클라이언트, 클라이언트 1은 한동안 조용함):",
    }
}

/// The costs as one compact table, a model a line.
pub fn costs_table(parts: &[Part], lang: Lang) -> String {
    let mut s = String::new();
    let head = match lang {
        Lang::En => [
            "model",
            "calls",
            "set-up/clients/stop",
            "per client",
            "processes",
            "client 2 waited",
            "a silent client",
        ],
        Lang::Ko => [
            "모델",
            "호출",
            "준비/클라이언트/종료",
            "클라이언트당",
            "프로세스",
            "클라이언트 2 대기",
            "조용한 클라이언트",
        ],
    };
    let widths = [10, 6, 20, 12, 9, 17, 0];
    let line = |cells: [String; 7]| -> String {
        let mut l = String::new();
        for (c, w) in cells.iter().zip(widths) {
            if w == 0 {
                l.push_str(c);
            } else {
                l.push_str(&fit(c, w));
                l.push(' ');
            }
        }
        format!("{}\n", l.trim_end())
    };
    s.push_str(&line(head.map(String::from)));
    for c in costs(parts) {
        let effect = match (lang, c.held_up()) {
            (Lang::En, true) => "holds up the rest",
            (Lang::En, false) => "holds up no one",
            (Lang::Ko, true) => "나머지를 붙잡음",
            (Lang::Ko, false) => "아무도 붙잡지 않음",
        };
        let _ = write!(
            s,
            "{}",
            line([
                c.model.clone(),
                c.calls.to_string(),
                format!("{}/{}/{}", c.setup, c.serving, c.stop()),
                format!("{:.1}", c.per_client()),
                c.processes.to_string(),
                format!("{:.1} ms", c.waited_us as f64 / 1000.0),
                effect.to_string(),
            ])
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_cut_or_padded_to_its_column() {
        assert_eq!(fit("abc", 5), "abc  ");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(width(&fit("한글한글", 5)), 5);
        assert!(fit("한글한글", 5).starts_with("한글…"));
    }

    #[test]
    fn a_silent_client_holds_up_the_rest_past_100_ms() {
        let cost = |waited_us| Cost {
            model: "x".into(),
            calls: 10,
            setup: 2,
            serving: 7,
            processes: 1,
            waited_us,
        };
        assert!(cost(600_000).held_up() && !cost(300).held_up());
        assert!((cost(0).per_client() - 3.5).abs() < 1e-9);
        assert_eq!(cost(0).stop(), 1);
        assert!(cost_lines(&cost(600_000), Lang::En).contains(&"client 2 waited 600.0 ms".to_string()));
    }
}
