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

use anyhow::{Result, bail};
use clap::builder::{PossibleValue, PossibleValuesParser};
use hello_lesson::observe::{self, Capturing};
use hello_lesson::scenario::{self, Part, Programs, Scenario};
use hello_lesson::{compare, pairing, run, step, text, textbook, wire_view};
use hello_proto::sys::capture::Limits;
use hello_proto::sys::netns;
use hello_proto::trace::Lang;

use crate::process::build_dev;

/// `cargo xtask demo`'s command line.
#[derive(Debug, PartialEq, Eq, clap::Args)]
#[command(
    after_help = "Where capture is not possible, one line says why and the demo runs on \
without packets. A scenario whose point did not happen is an error (exit 1)."
)]
pub struct Args {
    /// The scenario to run, or `all` for every one in turn.
    #[arg(default_value = "hello", value_parser = scenario_names())]
    scenario: String,
    /// The language of the timelines and what to notice.
    #[arg(long, value_name = "en|ko", default_value = "en", value_parser = hello_proto::cli::lang_parser())]
    lang: Lang,
    /// Also write one self-contained HTML page per exchange into DIR (DIR/index.html).
    #[arg(long, value_name = "DIR")]
    html: Option<PathBuf>,
    /// Also write one pcap file per exchange into DIR.
    #[arg(long, value_name = "DIR")]
    pcap: Option<PathBuf>,
    /// Capture no packets (the arrows between the two sides are then inferred).
    #[arg(long)]
    no_capture: bool,
    /// Walk through the hello scenario with the textbook's programs one call at a time
    /// (in a terminal: Enter makes the next call, q stops).
    #[arg(long)]
    step: bool,
    /// The tutorials' programs first, call by call with their C lines, then the same
    /// exchanges the real way, each real call paired with the textbook's or marked added.
    #[arg(long)]
    textbook: bool,
}

/// The scenarios `cargo xtask demo` takes: the lesson's ([`Scenario`]), and `all`.
fn scenario_names() -> PossibleValuesParser {
    let named = Scenario::all()
        .iter()
        .filter_map(clap::ValueEnum::to_possible_value);
    PossibleValuesParser::new(named.chain([PossibleValue::new("all").help("Every scenario, in this order")]))
}

impl Args {
    /// What the attributes cannot say: which scenarios `--step` and `--textbook` go with,
    /// and which options they exclude.
    pub fn check(&self) -> Result<(), String> {
        if self.step && self.scenario != "hello" {
            return Err(format!(
                "--step walks through the hello scenario's textbook programs; '{}' has no walk",
                self.scenario
            ));
        }
        if self.step && (self.html.is_some() || self.pcap.is_some()) {
            return Err(
                "--step writes no pages or pcap files (it runs its own exchanges): leave out --html and --pcap".into(),
            );
        }
        if self.textbook && self.step {
            return Err(
                "--step already runs the textbook's programs: give one of --step and --textbook".into(),
            );
        }
        if self.textbook && !matches!(self.scenario.as_str(), "hello" | "all") {
            return Err(format!(
                "--textbook sets the tutorials' programs beside the hello scenario's exchanges; '{}' has no textbook program",
                self.scenario
            ));
        }
        if self.no_capture && self.pcap.is_some() {
            return Err("--pcap needs the capture that --no-capture turns off".into());
        }
        Ok(())
    }
}

/// Runs the demo.
pub fn run(asked: Args) -> Result<()> {
    if asked.step && !std::io::stdin().is_terminal() {
        bail!("--step waits for Enter before each call: run it in a terminal (stdin is not one)");
    }
    eprintln!("xtask demo: building hello-server and hello-client ...");
    let dir = build_dev()?;
    let programs = Programs {
        server: dir.join("hello-server"),
        client: dir.join("hello-client"),
    };
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
    let (capturing, _clock) = if !asked.no_capture {
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
    let models: Vec<Part> = parts
        .iter()
        .filter(|p| p.scenario == Scenario::Models)
        .cloned()
        .collect();
    let side_by_side =
        hello_proto::sys::process::terminal_columns().and_then(|w| compare::columns(&models, asked.lang, w));
    for (i, part) in parts.iter().enumerate() {
        if part.scenario == Scenario::Models {
            let first = parts[..i].iter().all(|p| p.scenario != Scenario::Models);
            match &side_by_side {
                Some(columns) if first => show_models(&models, columns, i + 1, parts.len(), asked.lang),
                Some(_) => {}
                // The costs' table is the last model's (`compare::costs_table`).
                None => show(part, i + 1, parts.len(), asked.lang),
            }
            continue;
        }
        match made.get(i).filter(|_| part.scenario == Scenario::Hello) {
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

    fn demo(v: &[&str]) -> Result<Args, clap::Error> {
        crate::parse_task("demo", v)
    }

    /// The docs' table of scenarios (`| scenario | what it shows |`, in README.md or
    /// docs/) lists the scenarios `cargo xtask demo` takes, in their order.
    #[test]
    fn the_docs_table_of_scenarios_lists_the_scenarios() {
        let root = crate::project_root();
        let mut files = vec![root.join("README.md")];
        files.extend(
            std::fs::read_dir(root.join("docs"))
                .unwrap()
                .filter_map(|e| Some(e.ok()?.path())),
        );
        let mut tables = Vec::new();
        for file in files.iter().filter(|f| f.extension().is_some_and(|x| x == "md")) {
            let text = std::fs::read_to_string(file).unwrap();
            let mut lines = text
                .lines()
                .skip_while(|l| !l.starts_with("| scenario | what it shows |"));
            if lines.next().is_none() {
                continue;
            }
            let names: Vec<String> = lines
                .skip(1)
                .take_while(|l| l.starts_with('|'))
                .filter_map(|l| Some(l.split('`').nth(1)?.to_string()))
                .collect();
            tables.push(names);
        }
        let mut want: Vec<String> = Scenario::all().iter().map(Scenario::to_string).collect();
        want.push("all".into());
        assert_eq!(tables, [want], "the docs' tables of scenarios");
    }

    #[test]
    fn the_command_line() {
        assert_eq!(demo(&[]).unwrap().scenario, "hello");
        let got = demo(&["backlog", "--lang", "ko", "--html", "out"]).unwrap();
        assert_eq!(
            got,
            Args {
                scenario: "backlog".into(),
                lang: Lang::Ko,
                html: Some(PathBuf::from("out")),
                pcap: None,
                no_capture: false,
                step: false,
                textbook: false,
            }
        );
        let got = demo(&["udp", "--pcap", "caps"]).unwrap();
        assert_eq!((got.pcap, got.no_capture), (Some(PathBuf::from("caps")), false));
        assert!(demo(&["udp", "--pcap", "caps", "--no-capture"]).is_err());
        assert!(demo(&["--pcap"]).is_err());
        assert_eq!(demo(&["--lang", "en", "all"]).unwrap().scenario, "all");
        for &s in Scenario::all() {
            assert_eq!(demo(&[&s.to_string()]).unwrap().scenario, s.to_string());
        }
        assert!(demo(&["nope"]).is_err());
        assert!(demo(&["--lang", "fr"]).is_err());
        assert!(demo(&["--html"]).is_err());
        assert!(demo(&["hello", "udp"]).is_err());
        assert!(demo(&["--step"]).unwrap().step);
        assert!(demo(&["backlog", "--step"]).is_err());
        assert!(demo(&["--step", "--html", "out"]).is_err());
        assert!(demo(&["--textbook"]).unwrap().textbook);
        assert!(demo(&["all", "--textbook"]).unwrap().textbook);
        assert!(demo(&["udp", "--textbook"]).is_err());
        assert!(demo(&["--textbook", "--step"]).is_err());
    }
}
