//! `cargo xtask demo [SCENARIO] [--lang en|ko] [--html DIR] [--pcap DIR] [--no-capture]`:
//! builds both programs and runs a scenario of `hello_lesson::scenario` (`hello` by
//! default, `all` for every one): the real programs with `--trace`, both sides' calls in
//! one causal two-column timeline, what the kernel showed (the packets captured on `lo`,
//! the sockets' states) and what to notice. With `--html DIR`, one self-contained page per
//! exchange as well; with `--pcap DIR`, one pcap file per exchange. With `--step`, the
//! hello scenario's textbook programs one call at a time (`hello_lesson::step`), Enter
//! to make each call, `q` to stop. With `--textbook`, each hello exchange is made by the
//! tutorials' programs first, call by call with their C lines, then the real way, each
//! real call paired with the textbook's or marked added with what it buys. Where capture is not
//! possible, one line says why and the demo runs on without packets. A scenario whose
//! point did not happen is an error (exit 1).

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use hello_lesson::observe::{self, Capturing};
use hello_lesson::scenario::{self, Part, Programs, SCENARIOS};
use hello_lesson::{compare, pairing, run, step, text, textbook, wire_view};
use hello_proto::sys::capture::Limits;
use hello_proto::sys::netns;
use hello_proto::trace::Lang;

use crate::process::build_dev;

/// What the command line asked for.
#[derive(Debug, PartialEq, Eq)]
struct Asked {
    scenario: String,
    lang: Lang,
    html: Option<PathBuf>,
    pcap: Option<PathBuf>,
    capture: bool,
    /// `--step`: the textbook's programs one call at a time (`hello_lesson::step`).
    step: bool,
    /// `--textbook`: the textbook's programs, then the same exchanges the real way
    /// (`hello_lesson::pairing`).
    textbook: bool,
}

fn usage() -> String {
    format!(
        "usage: cargo xtask demo [SCENARIO] [--lang en|ko] [--html DIR] [--pcap DIR] [--no-capture] [--step | --textbook]\nscenarios: {}, all (default: hello)",
        SCENARIOS.join(", ")
    )
}

fn parse(args: &[String]) -> Result<Asked> {
    let mut asked = Asked {
        scenario: "hello".into(),
        lang: Lang::En,
        html: None,
        pcap: None,
        capture: true,
        step: false,
        textbook: false,
    };
    let mut named = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--lang" => {
                let l = it.next().with_context(usage)?;
                asked.lang = Lang::parse(l).map_err(anyhow::Error::msg).with_context(usage)?;
            }
            "--html" => asked.html = Some(PathBuf::from(it.next().with_context(usage)?)),
            "--pcap" => asked.pcap = Some(PathBuf::from(it.next().with_context(usage)?)),
            "--no-capture" => asked.capture = false,
            "--step" => asked.step = true,
            "--textbook" => asked.textbook = true,
            s if !named && (SCENARIOS.contains(&s) || s == "all") => {
                asked.scenario = s.to_string();
                named = true;
            }
            other => bail!("unknown argument '{other}'\n{}", usage()),
        }
    }
    if asked.step && asked.scenario != "hello" {
        bail!(
            "--step walks through the hello scenario's textbook programs; '{}' has no walk",
            asked.scenario
        );
    }
    if asked.step && (asked.html.is_some() || asked.pcap.is_some()) {
        bail!(
            "--step writes no pages or pcap files (it runs its own exchanges): leave out --html and --pcap"
        );
    }
    if asked.textbook && asked.step {
        bail!("--step already runs the textbook's programs: give one of --step and --textbook");
    }
    if asked.textbook && !matches!(asked.scenario.as_str(), "hello" | "all") {
        bail!(
            "--textbook sets the tutorials' programs beside the hello scenario's exchanges; '{}' has no textbook program",
            asked.scenario
        );
    }
    Ok(asked)
}

/// Runs the demo.
pub fn run(args: &[String]) -> Result<()> {
    let asked = parse(args)?;
    if asked.step && !std::io::stdin().is_terminal() {
        bail!("--step waits for Enter before each call: run it in a terminal (stdin is not one)");
    }
    eprintln!("xtask demo: building hello-server and hello-client ...");
    let dir = build_dev()?;
    let programs = Programs {
        server: dir.join("hello-server"),
        client: dir.join("hello-client"),
    };
    if !asked.capture && asked.pcap.is_some() {
        bail!(
            "--pcap needs the capture that --no-capture turns off\n{}",
            usage()
        );
    }
    if asked.step {
        let dir = std::env::temp_dir().join("hello-lesson-step");
        let stdin = std::io::stdin();
        let ended = step::walk(
            &programs,
            asked.lang,
            &dir,
            &mut stdin.lock(),
            &mut std::io::stdout(),
        )?;
        if ended == step::Ended::Done {
            println!(
                "\n{}",
                if asked.lang == Lang::Ko {
                    "끝: 네 교환의 모든 호출을 하나씩 보았습니다."
                } else {
                    "done: every call of the four exchanges, one at a time."
                }
            );
        }
        return Ok(());
    }
    let limits = Limits::default();
    let (capturing, _clock) = if asked.capture {
        capturing(limits)
    } else {
        (Capturing::Off, None)
    };
    let parts = scenario::run_watched(&asked.scenario, &programs, asked.lang, capturing)?;
    let ko = asked.lang == Lang::Ko;
    let made = if asked.textbook {
        textbook::run(&programs, asked.lang)?
    } else {
        Vec::new()
    };
    println!("{}", text::legend(asked.lang));
    // The models side by side where the terminal is wide enough; else one after the
    // other, with their costs in a table under the last.
    let models: Vec<Part> = parts.iter().filter(|p| p.scenario == "models").cloned().collect();
    let side_by_side =
        hello_proto::sys::process::terminal_columns().and_then(|w| compare::columns(&models, asked.lang, w));
    for (i, part) in parts.iter().enumerate() {
        if part.scenario == "models" {
            let first = parts[..i].iter().all(|p| p.scenario != "models");
            match &side_by_side {
                Some(columns) if first => show_models(&models, columns, i + 1, parts.len(), asked.lang),
                Some(_) => {}
                // The costs' table is the last model's (`compare::costs_table`).
                None => show(part, i + 1, parts.len(), asked.lang),
            }
            continue;
        }
        match made.get(i).filter(|_| part.scenario == "hello") {
            Some(m) => show_textbook(m, part, i + 1, parts.len(), asked.lang),
            None => show(part, i + 1, parts.len(), asked.lang),
        }
    }
    if let Some(dir) = &asked.pcap {
        let written = observe::write_pcaps(dir, &parts, &limits)?;
        say_written(if ko { "pcap 파일:" } else { "pcap files:" }, &written);
    }
    if let Some(dir) = &asked.html {
        let written = run::write_pages(dir, &parts, asked.lang)?;
        say_written(if ko { "HTML 페이지:" } else { "HTML pages:" }, &written);
    }
    println!(
        "\n{}",
        if ko {
            format!(
                "데모 완료: 교환 {}개를 모두 확인했습니다. 보여 준 일은 실제로 일어난 일입니다.",
                parts.len()
            )
        } else {
            format!(
                "demo passed: {}, each checked: what they show really happened.",
                hello_proto::words::counted(parts.len() as u64, "exchange")
            )
        }
    );
    Ok(())
}

/// One line naming the files written.
fn say_written(label: &str, written: &[PathBuf]) {
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    println!("\n{label} {}", names.join(", "));
}

/// Whether the demo can capture: as it is (root, or `CAP_NET_RAW`), else in a private
/// user and network namespace of its own (xtask has one thread here, as `unshare()`
/// needs: the build's `cargo` has exited). If neither, one line says why and the demo
/// runs on without packets. The probe's capture is kept for the run (`observe::Clock`).
fn capturing(limits: Limits) -> (Capturing, Option<observe::Clock>) {
    let refused = match observe::probe() {
        Ok(clock) => return (Capturing::On(limits), Some(clock)),
        Err(e) => e,
    };
    let permission = matches!(refused.err.raw_os_error(), Some(libc::EPERM | libc::EACCES));
    if permission {
        match netns::enter_private() {
            Ok(()) => match observe::probe() {
                Ok(clock) => {
                    eprintln!(
                        "xtask demo: capturing in a private user and network namespace (no root needed)"
                    );
                    return (Capturing::On(limits), Some(clock));
                }
                Err(e) => eprintln!("xtask demo: {e}; the demo runs without packets"),
            },
            Err(e) => eprintln!("xtask demo: {refused}; {e}; the demo runs without packets"),
        }
    } else {
        eprintln!("xtask demo: {refused}; the demo runs without packets");
    }
    (Capturing::Off, None)
}

/// The models side by side: their server calls in columns, their costs under them, and
/// what to notice of each.
fn show_models(models: &[Part], columns: &str, n: usize, total: usize, lang: Lang) {
    let last = n + models.len() - 1;
    let title = match lang {
        Lang::En => "the five models side by side: the server's calls for the same two clients",
        Lang::Ko => "다섯 모델을 나란히: 같은 두 클라이언트에 대한 서버의 호출",
    };
    println!("\n=== {n}-{last}/{total}  {title} ===");
    if let Some(first) = models.first() {
        for c in &first.commands {
            println!("{c}");
        }
    }
    println!();
    print!("{columns}");
    println!(
        "\n{}",
        match lang {
            Lang::En => "What to notice:",
            Lang::Ko => "눈여겨볼 점:",
        }
    );
    for part in models {
        for point in &part.notice {
            println!("  {}: {point}", part.slug.trim_start_matches("models-"));
        }
    }
    if let Some(last) = models.last() {
        show_predict(last, lang);
    }
}

/// One hello exchange with `--textbook`: the tutorials' programs call by call, then the
/// same exchange the real way paired with them, then the real exchange's timeline.
fn show_textbook(made: &textbook::Made, part: &Part, n: usize, total: usize, lang: Lang) {
    println!("\n=== {n}/{total}  {} ===", made.title);
    for c in &made.commands {
        println!("{c}");
    }
    println!("{}\n", made.output);
    print!("{}", pairing::render(&made.records, &part.timeline, lang));
    show(part, n, total, lang);
}

fn show(part: &Part, n: usize, total: usize, lang: Lang) {
    println!("\n=== {n}/{total}  {} ===", part.title);
    for c in &part.commands {
        println!("{c}");
    }
    println!();
    print!("{}", text::render(&part.timeline, lang));
    println!();
    for o in &part.outputs {
        println!("{o}");
    }
    for e in &part.extra {
        println!("{e}");
    }
    if let Some(observed) = &part.observed {
        println!();
        print!("{}", wire_view::render(observed, lang));
    }
    println!(
        "\n{}",
        match lang {
            Lang::En => "What to notice:",
            Lang::Ko => "눈여겨볼 점:",
        }
    );
    for (k, point) in part.notice.iter().enumerate() {
        println!("  {}. {point}", k + 1);
    }
    show_predict(part, lang);
}

/// A scenario's predict-then-run questions, after its last page.
fn show_predict(part: &Part, lang: Lang) {
    if part.predict.is_empty() {
        return;
    }
    println!(
        "\n{}",
        match lang {
            Lang::En => "Predict, then run:",
            Lang::Ko => "예측하고 실행해 보기:",
        }
    );
    for line in &part.predict {
        println!("  {line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line() {
        let a = |v: &[&str]| parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(a(&[]).unwrap().scenario, "hello");
        let got = a(&["backlog", "--lang", "ko", "--html", "out"]).unwrap();
        assert_eq!(
            got,
            Asked {
                scenario: "backlog".into(),
                lang: Lang::Ko,
                html: Some(PathBuf::from("out")),
                pcap: None,
                capture: true,
                step: false,
                textbook: false,
            }
        );
        let got = a(&["udp", "--pcap", "caps", "--no-capture"]).unwrap();
        assert_eq!((got.pcap, got.capture), (Some(PathBuf::from("caps")), false));
        assert!(a(&["--pcap"]).is_err());
        assert_eq!(a(&["--lang", "en", "all"]).unwrap().scenario, "all");
        assert!(a(&["nope"]).is_err());
        assert!(a(&["--lang", "fr"]).is_err());
        assert!(a(&["--html"]).is_err());
        assert!(a(&["hello", "udp"]).is_err());
        assert!(a(&["--step"]).unwrap().step);
        assert!(a(&["backlog", "--step"]).is_err());
        assert!(a(&["--step", "--html", "out"]).is_err());
        assert!(a(&["--textbook"]).unwrap().textbook);
        assert!(a(&["all", "--textbook"]).unwrap().textbook);
        assert!(a(&["udp", "--textbook"]).is_err());
        assert!(a(&["--textbook", "--step"]).is_err());
    }
}
