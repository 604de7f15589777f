//! `cargo xtask <task>`: the project's tasks — `demo` (the whole socket flow in one
//! command), `ci` (every check CI runs), `dist` (what is shipped: the release binaries
//! with their completions and man pages, in a tarball), `bench` (every server model
//! beside reference servers, from a clone alone), `paired` (a bench run's paired ratios),
//! `models` (the textbook's five models compared), `soak` (the long run) and `cluster`
//! (instances behind HAProxy, restarted under load). The command line is [`Cli`], in
//! clap derive: each task's options are its module's `Args`.

mod bench;
mod ci;
mod cluster;
mod demo;
mod dist;
mod models;
mod process;
mod procfs;
mod soak;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};

/// What `cargo xtask --help` ends with.
const EXIT_STATUS: &str = "\
Exit status: 0 when the task is done; 1 when it failed (one line says why); 2 for a bad
command line (one line says what is wrong; `cargo xtask TASK --help` says what is right).";

/// `cargo xtask`'s command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "The project's tasks: the demo, CI's checks, the release tarball, the benchmark and the long runs",
    after_help = EXIT_STATUS,
    arg_required_else_help = true
)]
struct Cli {
    /// The task.
    #[command(subcommand)]
    task: Task,
}

/// The tasks.
#[derive(Debug, clap::Subcommand)]
enum Task {
    /// Build both programs and run a scenario traced: both sides' calls in one causal
    /// timeline, the packets captured on lo and the sockets' states.
    Demo(demo::Args),
    /// Every check CI runs, in order: cargo fmt --check, clippy -D warnings, the tests,
    /// the docs with -D warnings, the demo (what .ci/run calls).
    Ci,
    /// What is shipped: the release binaries with bash, zsh and fish completions, man
    /// pages, README, ARCHITECTURE.md, docs/, licenses and systemd units, in target/dist/
    /// and a .tar.gz.
    Dist(dist::Args),
    /// Every server model beside reference servers (C, tokio, nginx when installed),
    /// driven by hello-load; tables and SVG charts in target/bench/RUN/, then `models`.
    Bench(bench::Args),
    /// Paired ratios from one bench run's runs.tsv: the median over repeats of A's rate
    /// and server CPU over B's, at each concurrency.
    Paired(bench::PairedArgs),
    /// The textbook's five server models side by side: CPU per client, memory per idle
    /// client, clients held at once, what one silent client does to the others.
    Models(models::Args),
    /// Three instances behind HAProxy (agent checks, PROXY v2), looping clients, rolling
    /// restarts under load: no exchange may fail.
    Cluster(cluster::Args),
    /// The long run: each model serves a million connections (or runs 5 minutes);
    /// descriptors, memory and threads must stay flat.
    Soak(soak::Args),
}

/// Parses `cargo xtask`'s arguments (`argv[0]` first) with what clap cannot say in
/// attributes (a demo scenario that has no `--step`, the cluster's fork model) checked
/// too: a usage error either way.
fn parse<I, T>(argv: I) -> Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = Cli::try_parse_from(argv)?;
    let checked = match &cli.task {
        Task::Demo(args) => args.check(),
        Task::Cluster(args) => args.check(),
        _ => Ok(()),
    };
    match checked {
        Ok(()) => Ok(cli),
        Err(why) => Err(Cli::command().error(clap::error::ErrorKind::ArgumentConflict, why)),
    }
}

/// The options of `task` in `args`, checked as [`parse`] checks them (for the tasks'
/// tests).
#[cfg(test)]
fn parse_task<A: clap::FromArgMatches>(task: &str, args: &[&str]) -> Result<A, clap::Error> {
    let argv: Vec<&str> = ["cargo xtask", task].iter().chain(args).copied().collect();
    parse(&argv)?;
    let matches = Cli::command().try_get_matches_from(&argv)?;
    match matches.subcommand() {
        Some((_, options)) => A::from_arg_matches(options),
        None => Err(Cli::command().error(clap::error::ErrorKind::MissingSubcommand, "no task")),
    }
}

/// A usage error as one line: clap's message without its usage and hint lines.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let kept: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .collect();
    kept.join(" ").trim_start_matches("error: ").to_string()
}

/// The environment variable a rejected value may have come from: the one the option
/// named in the error reads, when `is_set` says it is set.
fn from_environment(e: &clap::Error, is_set: impl Fn(&str) -> bool) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let cli = Cli::command();
    let name = cli
        .get_subcommands()
        .flat_map(|sub| sub.get_arguments())
        .filter(|a| {
            a.get_long()
                .is_some_and(|l| arg.split(' ').next() == Some(&format!("--{l}")))
        })
        .find_map(|a| a.get_env().and_then(|e| e.to_str()).filter(|e| is_set(e)))?;
    Some(name.to_string())
}

fn main() -> ExitCode {
    let cli = match parse(std::env::args_os()) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            return match e.kind() {
                // --help, and `cargo xtask` alone (the help, on stderr, exit 2).
                ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
                _ => {
                    let from = from_environment(&e, |name| std::env::var_os(name).is_some());
                    let from = from.map_or(String::new(), |name| format!(" (from the environment: {name})"));
                    eprintln!("xtask: {}{from}", one_line(&e));
                    ExitCode::from(2)
                }
            };
        }
    };
    let result = match cli.task {
        Task::Demo(args) => demo::run(args),
        Task::Ci => ci::run(),
        Task::Dist(args) => dist::run(args),
        Task::Bench(args) => bench::run(args),
        Task::Paired(args) => bench::paired_report(args),
        Task::Soak(args) => soak::run(args),
        Task::Models(args) => models::run(args),
        Task::Cluster(args) => cluster::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives in `<root>/xtask`).
fn project_root() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent().map(PathBuf::from).unwrap_or(dir)
}

/// The cargo that runs us (`$CARGO`), so that the same toolchain builds everything.
fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `cargo xtask …` command line the docs show, with the file it is in: the
    /// inline code spans of the Markdown files (a span may wrap onto the next line), the
    /// lines of their code blocks, `.ci/run`'s commands and the spans of its comments, and
    /// the GitHub workflow's `run:` steps.
    fn documented_commands() -> Vec<(String, String)> {
        let root = project_root();
        let mut files = vec![
            root.join("README.md"),
            root.join("ARCHITECTURE.md"),
            root.join(".ci/run"),
            root.join(".github/workflows/ci.yml"),
        ];
        let docs = std::fs::read_dir(root.join("docs")).expect("docs/");
        let mut md: Vec<PathBuf> = docs
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        md.sort();
        files.extend(md);
        let mut found = Vec::new();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let name = file.strip_prefix(&root).unwrap_or(&file).display().to_string();
            let shell = name == ".ci/run";
            let yaml = name.ends_with(".yml");
            let mut prose = String::new();
            let mut fenced = false;
            for line in text.lines() {
                if line.trim_start().starts_with("```") {
                    fenced = !fenced;
                    continue;
                }
                let comment = line.trim_start().starts_with('#');
                if yaml {
                    // A step's command; its name and the comments are prose.
                    if let Some(run) = line.trim_start().strip_prefix("run: ") {
                        found.push((name.clone(), run.trim().to_string()));
                    }
                } else if (fenced || (shell && !comment)) && line.contains("cargo xtask") {
                    // A command line; a comment after it (` # …`) is not part of it.
                    let command = line.split(" #").next().unwrap_or(line);
                    found.push((name.clone(), command.trim().trim_start_matches("$ ").to_string()));
                } else if !fenced {
                    prose.push_str(line);
                    prose.push('\n');
                }
            }
            for (k, span) in prose.split('`').enumerate() {
                if k % 2 == 1 && span.contains("cargo xtask") {
                    found.push((
                        name.clone(),
                        span.split_whitespace().collect::<Vec<_>>().join(" "),
                    ));
                }
            }
        }
        found
    }

    /// A command line's words, as a shell splits them (quotes kept out).
    fn words(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let (mut word, mut quote, mut any) = (String::new(), None, false);
        for c in line.chars() {
            match (quote, c) {
                (None, '"' | '\'') => (quote, any) = (Some(c), true),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => {
                    if any {
                        out.push(std::mem::take(&mut word));
                    }
                    any = false;
                }
                (_, c) => {
                    word.push(c);
                    any = true;
                }
            }
        }
        if any {
            out.push(word);
        }
        out
    }

    /// Checks one documented command line against [`Cli`]: a synopsis
    /// (`demo [SCENARIO] [--lang en|ko]`, `demo | ci | dist`) by the tasks and options it
    /// names; a command by parsing it, each `NAME=VALUE` before it given as the option
    /// that reads `NAME` from the environment. `Err` says what is wrong.
    fn check_documented(line: &str) -> Result<(), String> {
        let all = words(line);
        let Some(at) = all.windows(2).position(|w| w == ["cargo", "xtask"]) else {
            return Err("no `cargo xtask` in it".into());
        };
        let env = &all[..at];
        let args: Vec<&str> = all[at + 2..]
            .iter()
            .map(String::as_str)
            .filter(|w| !matches!(*w, "…" | "..."))
            .collect();
        let Some(&task) = args.first() else {
            return Ok(()); // `cargo xtask` named, not run.
        };
        let cli = Cli::command();
        let synopsis = args.iter().any(|w| w.contains(['[', '|', '<']));
        if synopsis {
            if args.contains(&"|") && !args.iter().any(|w| w.starts_with('-')) {
                for t in args.iter().filter(|w| **w != "|") {
                    cli.find_subcommand(t).ok_or(format!("no task {t}"))?;
                }
                return Ok(());
            }
            let sub = cli.find_subcommand(task).ok_or(format!("no task {task}"))?;
            for flag in args.iter().flat_map(|w| w.split(['[', ']', '|', '='])) {
                if let Some(long) = flag.strip_prefix("--") {
                    sub.get_arguments()
                        .find(|a| a.get_long() == Some(long))
                        .ok_or(format!("cargo xtask {task} has no --{long}"))?;
                }
            }
            return Ok(());
        }
        let sub = cli.find_subcommand(task).ok_or(format!("no task {task}"))?;
        let mut argv: Vec<String> = vec!["cargo xtask".into()];
        argv.extend(args.iter().map(|a| a.to_string()));
        for assignment in env {
            let (name, value) = assignment
                .split_once('=')
                .ok_or(format!("{assignment}: not NAME=VALUE before cargo xtask"))?;
            let arg = sub
                .get_arguments()
                .find(|a| a.get_env().is_some_and(|e| e == name))
                .ok_or(format!("cargo xtask {task} reads no {name}"))?;
            let long = arg
                .get_long()
                .ok_or(format!("{name}'s option has no long name"))?;
            argv.extend([format!("--{long}"), value.to_string()]);
        }
        match parse(&argv) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => Ok(()),
            // The task named (`cargo xtask paired` prints them), not run.
            Err(e) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument && args.len() == 1 => {
                Ok(())
            }
            Err(e) => Err(one_line(&e)),
        }
    }

    #[test]
    fn every_cargo_xtask_command_in_the_docs_parses() {
        let found = documented_commands();
        let wrong: Vec<String> = found
            .iter()
            .filter(|(_, line)| line.contains("cargo xtask"))
            .filter_map(|(file, line)| {
                check_documented(line)
                    .err()
                    .map(|e| format!("{file}: `{line}`: {e}"))
            })
            .collect();
        assert!(
            wrong.is_empty(),
            "documented commands that do not parse:\n{}",
            wrong.join("\n")
        );
        // The docs' commands are found: the one CI runs, the README's demo, development.md's quick bench.
        for expected in ["cargo xtask ci", "cargo xtask demo", "cargo xtask bench --quick"] {
            assert!(
                found.iter().any(|(_, l)| l.ends_with(expected)),
                "no `{expected}` found"
            );
        }
        assert!(
            found
                .iter()
                .any(|(_, l)| l.starts_with("ONLY=") && l.contains("cargo xtask bench")),
            "no bench run with knobs found"
        );
    }

    #[test]
    fn a_documented_command_that_names_what_does_not_exist_fails() {
        for good in [
            "cargo xtask demo all --lang ko --html pages",
            "REPEATS=5 ONLY=\"c_epoll_2 epoll\" UDP_CONCS=\"\" cargo xtask bench",
            "cargo xtask demo [SCENARIO] [--lang en|ko] [--step | --textbook]",
            "cargo xtask demo | ci | dist",
            "cargo xtask paired runs.tsv A/B …",
            "cargo xtask paired",
            "cargo xtask cluster --help",
            "cargo xtask",
        ] {
            assert_eq!(check_documented(good), Ok(()), "{good}");
        }
        for bad in [
            "cargo xtask demo --colour",
            "cargo xtask demo [--colour]",
            "cargo xtask demo | lint",
            "REPEAT=5 cargo xtask bench",
            "REPEATS=0 cargo xtask bench",
            "cargo xtask soak --model poll",
            "cargo xtask bench --quick extra",
        ] {
            assert!(check_documented(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_rejected_value_from_the_environment_is_named() {
        let e = parse(["cargo xtask", "bench", "--concs", ""]).unwrap_err();
        assert_eq!(from_environment(&e, |n| n == "CONCS").as_deref(), Some("CONCS"));
        assert_eq!(from_environment(&e, |_| false), None);
        let e = parse(["cargo xtask", "demo", "--lang", "fr"]).unwrap_err();
        assert_eq!(from_environment(&e, |_| true), None);
    }

    #[test]
    fn a_bad_command_line_is_one_line() {
        for bad in [
            &["demo", "nope"][..],
            &["demo", "--html"],
            &["frob"],
            &["cluster", "--model", "fork"],
        ] {
            let e = parse(["cargo xtask"].iter().chain(bad)).unwrap_err();
            let line = one_line(&e);
            assert!(
                !line.is_empty() && !line.contains('\n') && !line.starts_with("error"),
                "{line}"
            );
        }
    }
}
