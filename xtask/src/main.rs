//! `cargo xtask <task>`: the project's tasks — `demo` (the whole socket flow in one
//! command), `ci` (every check CI runs), `dist` (what is shipped: the release binaries
//! with their completions and man pages, in a tarball), `bench` (every server model
//! beside reference servers, from a clone alone), `models` (the five models compared),
//! `soak` (the long run) and `cluster` (instances behind HAProxy, restarted under load).

mod bench;
mod ci;
mod cluster;
mod demo;
mod dist;
mod models;
mod process;
mod procfs;
mod soak;

use std::path::PathBuf;
use std::process::ExitCode;

const HELP: &str = "\
usage: cargo xtask <task> [options]

tasks:
  demo [SCENARIO] [--lang en|ko] [--html DIR] [--pcap DIR] [--no-capture]
                        build both programs and run a scenario traced (hello,
                        backlog, iterative, models, boundaries, udp, all): both
                        sides' calls in one causal timeline, the packets captured
                        on lo and the sockets' states; --html: the pictures;
                        --pcap: a pcap file per exchange; --no-capture: no packets
  dist [--bins DIR] [--out DIR]
                        what is shipped: the release binaries, statically linked on
                        Linux/glibc (fast start-up), with bash, zsh and fish
                        completions, man pages, README and licenses, in
                        target/dist/hello-sockets-<version>-<target>/ and its .tar.gz;
                        --bins: take the binaries from DIR instead of building them
  ci                    cargo fmt --check, clippy -D warnings, tests, docs -D warnings
  bench [--quick]       every server model beside reference servers (C, compiled
                        with cc; tokio; nginx's stream module if installed), driven
                        by hello-load; tables and SVG charts in target/bench/<run>/,
                        then `models`. --quick: a short run. Knobs in the
                        environment: REPEATS CONCS N ONLY (see the README)
  paired RUNS.TSV A/B [A/B ...]
                        paired ratios from one bench run: the median over repeats
                        of A's rate and server CPU over B's, at each concurrency
  models [--clients N] [--repeats R]
                        the five server models side by side: CPU per client, memory
                        per idle client, clients held at once (of N, 3000), what one
                        silent client does to the others
  cluster [--runs N] [--clients C,C] [--model M]
                        three instances behind HAProxy (agent checks, PROXY v2),
                        looping clients, N rolling restarts each: 0 failures
  soak [--connections N] [--minutes M] [--model NAME]
                        the long run: each model (or NAME) serves N connections (a million)
                        or M minutes (5); fds, memory and threads must stay flat
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo::run(&args[1..]),
        Some("ci") => ci::run(),
        Some("dist") => dist::run(&args[1..]),
        Some("bench") => bench::run(&args[1..]),
        Some("paired") => bench::paired_report(&args[1..]),
        Some("soak") => soak::run(&args[1..]),
        Some("models") => models::run(&args[1..]),
        Some("cluster") => cluster::run(&args[1..]),
        Some("-h" | "--help" | "help") => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Some(other) => {
            eprint!("xtask: unknown task '{other}'\n\n{HELP}");
            return ExitCode::from(2);
        }
        None => {
            eprint!("{HELP}");
            return ExitCode::from(2);
        }
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
