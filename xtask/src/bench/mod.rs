//! `cargo xtask bench [--quick] [KNOBS]`: every hello-server model beside reference servers, from
//! a clone alone. hello-load is the generator; the references are the project's own (the
//! textbook server's code in a loop, a near-limit epoll server, the least-work server and
//! the textbook UDP loop, in C, compiled here with the system C compiler; a minimal tokio server, built here outside the workspace)
//! and nginx's stream module when nginx is installed. Without a C compiler or nginx
//! those are skipped, loudly.
//!
//! Steps, each bounded: start-up time; the load (every server at every concurrency,
//! repeated, the server order rotating between repeats so that drift hits all alike,
//! ratios paired within a repeat); the same for the hello service over UDP (the
//! textbook UDP loop, nginx's `udp` stream, hello-server --udp); memory per idle
//! connection; then the summary (`summary.md`), the raw rows (`runs.tsv`, UDP rows
//! included, `startup.tsv`, `idle.tsv`) and SVG charts (`rate.svg`, `p99.svg`, each
//! server's ratio to nginx with its spread over the repeats in `vs_nginx.svg` and
//! `udp_vs_nginx.svg`, `idle.svg`) in `target/bench/<run>/` (or `$OUT`), and last `cargo
//! xtask models` into the same folder. Knobs: see [`Args`] and docs/performance.md.

mod chart;
mod live;
mod load;
mod results;
mod servers;
mod steps;
mod summary;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use hello_client::load::summary::Errors;
pub use load::Generator;
pub use servers::HOLD_ECHO;
use servers::{Mode, REFERENCES, SERVERS, Spec, Tools, UDP_REFERENCES, UDP_SERVERS};
use summary::Row;
pub use summary::median;

use crate::process::{build_dist, build_dist_without_trace};
use crate::project_root;

/// Connections in flight during each server's warm-up.
const WARMUP_CONC: u32 = 16;

/// `cargo xtask bench`'s command line: `--quick`, and the knobs, each an option or its
/// environment variable (the names the docs and earlier runs' summaries use).
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Each knob is an option or the environment variable named beside it \
(REPEATS=5 ONLY=\"c_epoll_2 epoll\" cargo xtask bench); the defaults in brackets are a full \
run's, then --quick's. CC and NGINX name the C compiler and the nginx binary."
)]
pub struct Args {
    /// A short run: fewer repeats, concurrencies, connections, starts and idle clients.
    #[arg(long)]
    quick: bool,
    /// Repeats of the load step; the server order rotates between them [3; 1].
    #[arg(long, value_name = "R", env = "REPEATS", value_parser = clap::value_parser!(u64).range(1..=50))]
    repeats: Option<u64>,
    /// Connections in flight, space-separated [1 16 64 256 1024; 1 16 64 256].
    #[arg(long, value_name = "\"C C…\"", env = "CONCS", value_parser = |s: &str| counts(s, false))]
    concs: Option<Counts>,
    /// Connections per server and concurrency [20000; 5000].
    #[arg(long, value_name = "N", env = "N", value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    connections: Option<u64>,
    /// Unrecorded connections after each server start [1000; 200].
    #[arg(long, value_name = "N", env = "WARMUP_N", value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    warmup: Option<u64>,
    /// hello-load's threads.
    #[arg(long, value_name = "T", env = "LOAD_THREADS", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    load_threads: u32,
    /// Seconds before one hello-load run is killed.
    #[arg(long, value_name = "S", env = "RUN_LIMIT", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    run_limit: u64,
    /// Starts per server in the start-up step; 0 skips the step [20; 5].
    #[arg(long, value_name = "N", env = "STARTUP_REPEATS", value_parser = clap::value_parser!(u64).range(0..=1000))]
    startup_repeats: Option<u64>,
    /// Silent clients held per server in the idle step; 0 skips the step [5000; 1000].
    #[arg(long, value_name = "N", env = "IDLE_CONNS", value_parser = clap::value_parser!(u64).range(0..=50_000))]
    idle_conns: Option<u64>,
    /// Datagrams in flight in the UDP step, space-separated; "" skips the step [1 64 256].
    #[arg(long, value_name = "\"C C…\"", env = "UDP_CONCS", value_parser = |s: &str| counts(s, true))]
    udp_concs: Option<Counts>,
    /// Datagrams per UDP server and concurrency [200000; 50000].
    #[arg(long, value_name = "N", env = "UDP_N", value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    udp_datagrams: Option<u64>,
    /// Only these servers (names from the tables, TCP and UDP), space-separated [every one].
    #[arg(long, value_name = "\"NAME NAME…\"", env = "ONLY", value_parser = server_names)]
    only: Option<Names>,
    /// 0 leaves out the last step, `cargo xtask models`.
    #[arg(long, value_name = "0|1", env = "MODELS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    models: u8,
    /// Where the results go [default: target/bench/RUN].
    #[arg(long, value_name = "DIR", env = "OUT")]
    out: Option<PathBuf>,
}

/// Numbers from 1 to 100000, space-separated (`CONCS`, `UDP_CONCS`).
#[derive(Debug, Clone, PartialEq)]
struct Counts(Vec<u32>);

/// Server names of the bench, space-separated (`ONLY`).
#[derive(Debug, Clone, PartialEq)]
struct Names(Vec<String>);

/// Parses [`Counts`]; an empty list only where `empty` allows it.
fn counts(text: &str, empty: bool) -> Result<Counts, String> {
    let counts = text
        .split_whitespace()
        .map(|c| c.parse::<u32>().ok().filter(|c| (1..=100_000).contains(c)))
        .collect::<Option<Vec<u32>>>()
        .ok_or("want numbers from 1 to 100000, space-separated")?;
    if counts.is_empty() && !empty {
        return Err("empty: want numbers from 1 to 100000, space-separated".into());
    }
    Ok(Counts(counts))
}

/// Parses [`Names`]: each must be a server of [`SERVERS`] or [`UDP_SERVERS`].
fn server_names(text: &str) -> Result<Names, String> {
    let all: Vec<&str> = SERVERS.iter().chain(UDP_SERVERS).map(|s| s.name).collect();
    let names: Vec<String> = text.split_whitespace().map(str::to_string).collect();
    match names.iter().find(|n| !all.contains(&n.as_str())) {
        Some(n) => Err(format!("no server {n:?}; the servers are {}", all.join(" "))),
        None => Ok(Names(names)),
    }
}

/// The benchmark's knobs (defaults in parentheses: full run / `--quick`), from [`Args`].
#[derive(Debug, Clone, PartialEq)]
pub struct Knobs {
    /// `REPEATS` (3 / 1): repeats of the load step.
    pub repeats: usize,
    /// `CONCS` ("1 16 64 256 1024" / "1 16 64 256"): connections in flight.
    pub concs: Vec<u32>,
    /// `N` (20000 / 5000): connections per run.
    pub n: u64,
    /// `WARMUP_N` (1000 / 200): unrecorded connections after each server start.
    pub warmup: u64,
    /// `LOAD_THREADS` (2): hello-load's threads.
    pub threads: u32,
    /// `RUN_LIMIT` (120): seconds before one hello-load run is killed.
    pub run_limit: Duration,
    /// `STARTUP_REPEATS` (20 / 5): starts per server (0 skips the step).
    pub startup: usize,
    /// `IDLE_CONNS` (5000 / 1000): silent clients held per server (0 skips the step).
    pub idle: usize,
    /// `UDP_CONCS` ("1 64 256"; "" skips the UDP step): datagrams in flight.
    pub udp_concs: Vec<u32>,
    /// `UDP_N` (200000 / 50000): datagrams per UDP run (a datagram costs the server a
    /// microsecond or two: fewer would leave its CPU time a few clock ticks).
    pub udp_n: u64,
    /// `ONLY` (all): server names, space-separated (TCP and UDP ones alike).
    pub only: Option<Vec<String>>,
    /// `MODELS` (1): 0 leaves out the last step, `cargo xtask models`.
    pub models: bool,
}

impl Knobs {
    /// The knobs `args` set, and the defaults of a full or a `--quick` run for the rest.
    fn from(args: &Args) -> Knobs {
        let pick = |full: u64, quick: u64| if args.quick { quick } else { full };
        let concs = match &args.concs {
            Some(Counts(c)) => c.clone(),
            None if args.quick => vec![1, 16, 64, 256],
            None => vec![1, 16, 64, 256, 1024],
        };
        Knobs {
            repeats: args.repeats.unwrap_or(pick(3, 1)) as usize,
            concs,
            n: args.connections.unwrap_or(pick(20_000, 5_000)),
            warmup: args.warmup.unwrap_or(pick(1000, 200)),
            threads: args.load_threads,
            udp_concs: args.udp_concs.as_ref().map_or(vec![1, 64, 256], |c| c.0.clone()),
            udp_n: args.udp_datagrams.unwrap_or(pick(200_000, 50_000)).max(1),
            run_limit: Duration::from_secs(args.run_limit),
            startup: args.startup_repeats.unwrap_or(pick(20, 5)) as usize,
            idle: args.idle_conns.unwrap_or(pick(5000, 1000)) as usize,
            only: args.only.as_ref().map(|n| n.0.clone()),
            models: args.models == 1,
        }
    }

    fn line(&self) -> String {
        let join = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
        format!(
            "REPEATS={} CONCS=\"{}\" UDP_CONCS=\"{}\" UDP_N={} N={} WARMUP_N={} LOAD_THREADS={} RUN_LIMIT={} STARTUP_REPEATS={} IDLE_CONNS={}{}",
            self.repeats,
            join(&self.concs),
            join(&self.udp_concs),
            self.udp_n,
            self.n,
            self.warmup,
            self.threads,
            self.run_limit.as_secs(),
            self.startup,
            self.idle,
            self.only
                .as_ref()
                .map_or(String::new(), |o| format!(" ONLY=\"{}\"", o.join(" "))),
        )
    }
}

/// `cargo xtask paired`'s command line.
#[derive(Debug, clap::Args)]
pub struct PairedArgs {
    /// A bench run's runs.tsv (target/bench/RUN/runs.tsv).
    #[arg(value_name = "RUNS.TSV")]
    runs: PathBuf,
    /// Pairs of servers of the run: A's figures over B's (epoll/nginx_1).
    #[arg(value_name = "A/B", value_parser = pair)]
    pairs: Vec<Pair>,
}

/// Two server names, `A/B`.
#[derive(Debug, Clone, PartialEq)]
struct Pair(String, String);

fn pair(text: &str) -> Result<Pair, String> {
    match text.split_once('/') {
        Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains('/') => Ok(Pair(a.into(), b.into())),
        _ => Err("want two server names, A/B".into()),
    }
}

/// `cargo xtask paired RUNS.TSV A/B...`: for each pair of servers of one run, the median
/// over its repeats of each repeat's rate ratio and server-CPU ratio at every
/// concurrency (the pairing of the load table's ratio columns, [`summary::paired`]), then
/// each server's worst connection at the highest concurrency.
pub fn paired_report(args: PairedArgs) -> Result<()> {
    let path = args.runs.display();
    let text = std::fs::read_to_string(&args.runs).with_context(|| format!("cannot read {path}"))?;
    let rows: Vec<summary::Row> = text.lines().filter_map(summary::Row::parse).collect();
    if rows.is_empty() {
        bail!("{path}: no row of runs.tsv");
    }
    let mut concs: Vec<u32> = rows.iter().map(|r| r.conc).collect();
    concs.sort_unstable();
    concs.dedup();
    for Pair(a, b) in &args.pairs {
        let (a, b) = (a.as_str(), b.as_str());
        let cells: Vec<String> = concs
            .iter()
            .filter_map(|&c| {
                let rate = summary::paired(&rows, a, b, c, |r| Some(r.rate))?;
                let cpu = summary::paired(&rows, a, b, c, |r| r.server_cpu_us);
                let cpu = cpu.map_or("-".into(), |v| format!("{v:.2}"));
                Some(format!("C={c}: rate {rate:.2} cpu {cpu}"))
            })
            .collect();
        println!("{a}/{b}: {}", cells.join("; "));
    }
    let Some(&top) = concs.last() else {
        return Ok(());
    };
    let mut servers: Vec<&str> = rows.iter().map(|r| r.server.as_str()).collect();
    servers.sort_unstable();
    servers.dedup();
    for s in servers {
        let maxima: Vec<f64> = rows
            .iter()
            .filter(|r| r.server == s && r.conc == top)
            .filter_map(|r| r.max)
            .collect();
        let worst = maxima.iter().copied().fold(f64::NAN, f64::max);
        if let Some(m) = summary::median(maxima) {
            println!(
                "{s}: max_us at C={top}: median {:.1} ms, worst {:.1} ms",
                m / 1000.0,
                worst / 1000.0
            );
        }
    }
    Ok(())
}

/// Runs the benchmark.
pub fn run(args: Args) -> Result<()> {
    let quick = args.quick;
    let knobs = Knobs::from(&args);
    let id = format!("{}-{}", if quick { "quick" } else { "full" }, stamp());
    let out = args
        .out
        .unwrap_or_else(|| project_root().join("target").join("bench").join(&id));
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("create {}", logs.display()))?;
    // Servers inherit the limit; the idle step holds thousands of sockets here.
    crate::procfs::raise_nofile()?;

    say("building the release binaries (cargo xtask dist) ...");
    let dist = build_dist()?;
    say("building the same with the trace hooks compiled out ...");
    let mut tools = Tools {
        server: dist.join("hello-server"),
        bare: build_dist_without_trace()?.join("hello-server"),
        ..Tools::default()
    };
    let hello_load = dist.join("hello-load");
    say("compiling the C reference servers, building the tokio server, looking for nginx ...");
    servers::build_c(&mut tools)?;
    servers::build_tokio(&mut tools, &logs)?;
    servers::find_nginx(&mut tools);

    let mut skipped = Vec::new();
    let mut pick = |list: &'static [Spec]| -> Vec<&'static Spec> {
        let mut chosen = Vec::new();
        for spec in list {
            if knobs
                .only
                .as_ref()
                .is_some_and(|o| !o.iter().any(|n| n == spec.name))
            {
                continue;
            }
            match spec.unavailable(&tools) {
                Some(why) => skipped.push(format!("{}: {why}", spec.name)),
                None => chosen.push(spec),
            }
        }
        chosen
    };
    let specs = pick(SERVERS);
    // An empty UDP_CONCS skips the UDP step: none of its servers is looked at.
    let udp_specs = if knobs.udp_concs.is_empty() {
        Vec::new()
    } else {
        pick(UDP_SERVERS)
    };
    for s in &skipped {
        eprintln!("xtask bench: SKIPPED {s}");
    }
    if specs.is_empty() && udp_specs.is_empty() {
        bail!("no server to measure");
    }
    let all: Vec<&Spec> = specs.iter().chain(&udp_specs).copied().collect();
    let mut head = header(&id, &knobs, &all, &skipped);
    say(&format!("{} servers, results in {}", specs.len(), out.display()));

    let mut startups = Vec::new();
    if knobs.startup > 0 {
        for spec in &specs {
            say(&format!("start-up, {} starts: {}", knobs.startup, spec.name));
            startups.push(steps::startup(spec, &tools, &logs, knobs.startup)?);
        }
    }

    let generator = Generator {
        binary: &hello_load,
        threads: knobs.threads,
        limit: knobs.run_limit,
    };
    let _ = writeln!(head, "- load average before the load step: {}", loadavg());
    let mut problems = Vec::new();
    let mut step = |specs: &[&Spec], mode: Mode, concs: &[u32]| {
        load_step(
            specs,
            mode,
            concs,
            &tools,
            &generator,
            &knobs,
            &logs,
            &mut problems,
        )
    };
    let mut rows = step(&specs, Mode::Hello, &knobs.concs)?;
    let _ = writeln!(head, "- load average after it: {}", loadavg());
    let udp_rows = step(&udp_specs, Mode::Udp, &knobs.udp_concs)?;
    if !udp_specs.is_empty() {
        let _ = writeln!(head, "- load average after the UDP step: {}", loadavg());
    }

    let mut idles = Vec::new();
    if knobs.idle > 0 {
        for spec in specs.iter().filter(|s| s.idle) {
            say(&format!("{} idle clients: {}", knobs.idle, spec.name));
            match steps::idle(spec, &tools, &logs, knobs.idle) {
                Ok(i) => idles.push(i),
                Err(e) => problems.push(format!("idle step, {}: {e:#}", spec.name)),
            }
        }
    }

    let tables = [
        Table::of(&specs, REFERENCES.to_vec(), &rows, false),
        Table::of(&udp_specs, UDP_REFERENCES.to_vec(), &udp_rows, true),
    ];
    rows.extend(udp_rows);
    results::write(&out, &head, &tables, &rows, &startups, &idles, &problems)?;
    if !knobs.models {
        return Ok(());
    }
    // What the load cannot show (a server of many processes, one silent client): the
    // five models side by side, into the same folder.
    let (clients, repeats) = if quick { (1000, 1) } else { (3000, 3) };
    crate::models::measure(&tools.server, &generator, clients, repeats, &out)
}

/// The load step (over UDP with [`Mode::Udp`]): each repeat starts every server in turn
/// (the order rotated by one each repeat), warms it up, and runs hello-load at each
/// concurrency of `concs`.
#[allow(clippy::too_many_arguments)]
fn load_step(
    specs: &[&Spec],
    mode: Mode,
    concs: &[u32],
    tools: &Tools,
    generator: &Generator<'_>,
    knobs: &Knobs,
    logs: &Path,
    problems: &mut Vec<String>,
) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let udp = mode == Mode::Udp;
    let n = if udp { knobs.udp_n } else { knobs.n };
    if specs.is_empty() {
        return Ok(rows);
    }
    for rep in 1..=knobs.repeats {
        say(&format!(
            "load{}, repeat {rep}/{}, load average {}",
            if udp { " over UDP" } else { "" },
            knobs.repeats,
            loadavg()
        ));
        for k in 0..specs.len() {
            let spec = specs[(k + rep - 1) % specs.len()];
            let live = match live::start(spec, tools, mode, logs) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("xtask bench: !! {e:#}");
                    problems.push(format!("repeat {rep}: {e:#}"));
                    continue;
                }
            };
            if knobs.warmup > 0 {
                if let Err(e) = generator.run(live.port, live.pid, knobs.warmup, WARMUP_CONC, udp) {
                    problems.push(format!("repeat {rep}, {} warm-up: {e:#}", spec.name));
                }
            }
            for &c in concs {
                let row = match generator.run(live.port, live.pid, n, c, udp) {
                    Ok(m) => {
                        let r = m.report;
                        let lat = r.latency_us.as_ref();
                        Row {
                            rep,
                            server: spec.name.to_string(),
                            conc: c,
                            n,
                            ok: r.ok,
                            failed: r.failed,
                            errors: r.errors,
                            rate: r.rate,
                            p50: lat.map(|l| l.p50 as f64),
                            p99: lat.map(|l| l.p99 as f64),
                            max: lat.map(|l| l.max as f64),
                            server_cpu_us: m.server_cpu_us,
                            load_cores: r.cores(),
                        }
                    }
                    Err(e) => {
                        problems.push(format!("repeat {rep}, {} at C={c}: {e:#}", spec.name));
                        Row {
                            rep,
                            server: spec.name.to_string(),
                            conc: c,
                            n,
                            ok: 0,
                            failed: n,
                            errors: Errors::default(),
                            rate: 0.0,
                            p50: None,
                            p99: None,
                            max: None,
                            server_cpu_us: None,
                            load_cores: None,
                        }
                    }
                };
                eprintln!(
                    "xtask bench:   rep {rep} {:<14} C={c:<5} {:>8.0} conn/s  p50 {:>7} µs  p99 {:>8} µs  errors {:<5} server {} µs/conn",
                    spec.name,
                    row.rate,
                    summary::thousands(row.p50),
                    summary::thousands(row.p99),
                    row.failed,
                    row.server_cpu_us.map_or("-".into(), |v| format!("{v:.1}")),
                );
                rows.push(row);
                // Let the last run's closing connections settle.
                thread::sleep(Duration::from_millis(200));
            }
            live.stop();
        }
    }
    Ok(rows)
}

/// One load table: its servers, the references among them it divides by, and its cells.
struct Table {
    names: Vec<&'static str>,
    refs: Vec<(&'static str, &'static str)>,
    cells: Vec<summary::Cell>,
    udp: bool,
}

impl Table {
    fn of(specs: &[&Spec], references: Vec<(&'static str, &'static str)>, rows: &[Row], udp: bool) -> Table {
        let names: Vec<&'static str> = specs.iter().map(|s| s.name).collect();
        let refs: Vec<(&str, &str)> = references
            .into_iter()
            .filter(|(r, _)| names.contains(r))
            .collect();
        let ref_names: Vec<&str> = refs.iter().map(|r| r.0).collect();
        let cells = summary::cells(rows, &names, &ref_names);
        Table {
            names,
            refs,
            cells,
            udp,
        }
    }

    /// The table's section of the summary: what its columns mean, then the table.
    fn section(&self) -> String {
        let mut s = String::new();
        if self.cells.is_empty() {
            return s;
        }
        let (unit, what) = if self.udp {
            (
                "datagrams/s",
                "(each a datagram and its reply, from send() to the reply, one connected \
                 socket per datagram in flight)",
            )
        } else {
            ("conn/s", "(whole exchanges, from socket() to end of stream)")
        };
        let ref_names: Vec<&str> = self.refs.iter().map(|r| r.0).collect();
        let ref_cols: Vec<&str> = self.refs.iter().map(|r| r.1).collect();
        s.push_str(if self.udp { "\n## UDP\n\n" } else { "\n## Load\n\n" });
        let _ = writeln!(
            s,
            "{unit} (the conn/s column): median over the repeats [least–most]. {}p50, p99: \
             medians of the runs' latencies {what}. errors: failed exchanges summed over \
             the repeats. server CPU: the server's processes (reaped children included) per \
             ok exchange, median{}. hello-load cores: the generator's CPU over the run.\n",
            if ref_names.is_empty() {
                String::new()
            } else {
                format!(
                    "{}: the median of per-repeat rate ratios to {} in the same repeat. ",
                    ref_cols.join(", "),
                    ref_names.join(", ")
                )
            },
            if ref_names.is_empty() {
                String::new()
            } else {
                format!(
                    "; CPU{}: the median of per-repeat ratios of it",
                    ref_cols.join(", CPU")
                )
            }
        );
        s.push_str(&summary::load_table(&self.cells, &ref_cols));
        s
    }

    /// Each server's rate and CPU per exchange over nginx's, with the spread over the
    /// repeats: nothing when nginx was not measured.
    fn vs_nginx(&self, rows: &[Row]) -> Vec<(String, Result<String, chart::Error>)> {
        let Some(nginx) = self.refs.iter().map(|r| r.0).find(|r| r.starts_with("nginx")) else {
            return Vec::new();
        };
        let spread = |figure: fn(&Row) -> Option<f64>| -> Vec<chart::Spread> {
            let mut concs: Vec<u32> = self.cells.iter().map(|c| c.conc).collect();
            concs.sort_unstable();
            concs.dedup();
            self.names
                .iter()
                .filter(|n| **n != nginx)
                .filter_map(|n| {
                    let points: Vec<(u32, f64, f64, f64)> = concs
                        .iter()
                        .filter_map(|&c| {
                            let v = summary::per_repeat(rows, n, nginx, c, figure);
                            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
                            let hi = v.iter().copied().fold(0.0, f64::max);
                            Some((c, median(v)?, lo, hi))
                        })
                        .collect();
                    (!points.is_empty()).then(|| chart::Spread {
                        name: n.to_string(),
                        points,
                    })
                })
                .collect()
        };
        let (what, file) = if self.udp {
            ("datagram", "udp_vs_nginx")
        } else {
            ("connection", "vs_nginx")
        };
        vec![
            (
                format!("{file}.svg"),
                chart::ratios(
                    &format!("Server CPU per {what} over {nginx}'s (median, whiskers: least–most repeat)"),
                    &format!("CPU per {what} / {nginx}'s (lower is better)"),
                    &spread(|r| r.server_cpu_us),
                ),
            ),
            (
                format!("{file}_rate.svg"),
                chart::ratios(
                    &format!("Rate over {nginx}'s (median, whiskers: least–most repeat)"),
                    &format!("rate / {nginx}'s (higher is better)"),
                    &spread(|r| Some(r.rate)),
                ),
            ),
        ]
    }
}

/// The summary's opening: the run, the machine, the knobs, the servers and the skips.
fn header(id: &str, knobs: &Knobs, specs: &[&Spec], skipped: &[String]) -> String {
    let secs = stamp();
    let mut h = format!("# cargo xtask bench, run {id}\n\n");
    let _ = writeln!(h, "- date: {} (UTC)", civil_date(secs));
    let _ = writeln!(
        h,
        "- machine: {} CPUs, {} GiB, Linux {}",
        thread::available_parallelism().map_or(0, |n| n.get()),
        read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or("?".into(), |kib| format!("{:.0}", kib as f64 / 1024.0 / 1024.0)),
        read("/proc/sys/kernel/osrelease").trim(),
    );
    let _ = writeln!(h, "- code: {}", git_revision());
    let _ = writeln!(h, "- knobs: {}", knobs.line());
    let _ = writeln!(
        h,
        "- generator: hello-load, {} threads, closed loop, 5 s timeout per exchange; load \
         generator and servers share the machine's CPUs, nothing is pinned",
        knobs.threads
    );
    h.push_str("\nServers:\n\n");
    for s in specs {
        let _ = writeln!(h, "- `{}`: {}", s.name, s.what);
    }
    for s in skipped {
        let _ = writeln!(h, "- **SKIPPED** {s}");
    }
    h.push('\n');
    h
}

fn say(what: &str) {
    eprintln!("xtask bench: {what}");
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The commit measured (as `--version` names it, hello-buildinfo), `+changes` when the
/// work tree differs from it.
fn git_revision() -> String {
    match hello_buildinfo::commit(&project_root(), &["."]) {
        Some(c) if c.dirty => format!("{} +changes", c.id),
        Some(c) => c.id,
        None => "unknown (no git)".into(),
    }
}

/// Seconds since the epoch, to name a run's folder.
pub fn stamp() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `YYYY-MM-DD HH:MM` of `secs` since the epoch, UTC (Howard Hinnant's civil-from-days).
fn civil_date(secs: u64) -> String {
    let t = hello_proto::utc::Utc::from_unix(secs);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute
    )
}

#[cfg(test)]
mod tests {

    use super::*;

    fn knobs(v: &[&str]) -> Result<Knobs, clap::Error> {
        crate::parse_task("bench", v).map(|args: Args| Knobs::from(&args))
    }

    #[test]
    fn knobs_default_to_a_full_or_a_quick_run() {
        let full = knobs(&[]).unwrap();
        assert_eq!(
            (full.repeats, full.n, full.startup, full.idle),
            (3, 20_000, 20, 5000)
        );
        assert_eq!(full.concs, [1, 16, 64, 256, 1024]);
        assert_eq!(full.udp_concs, [1, 64, 256]);
        assert!(full.models && full.only.is_none());
        let quick = knobs(&["--quick"]).unwrap();
        assert_eq!((quick.repeats, quick.n), (1, 5000));
        assert_eq!(quick.concs, [1, 16, 64, 256]);
    }

    #[test]
    fn knobs_are_checked() {
        let k = knobs(&[
            "--repeats",
            "7",
            "--concs",
            "1 64",
            "--only",
            "epoll c_epoll_2",
            "--models",
            "0",
            "--udp-concs",
            "",
        ])
        .unwrap();
        assert_eq!((k.repeats, k.concs.clone(), k.models), (7, vec![1, 64], false));
        assert_eq!(k.only.unwrap(), ["epoll", "c_epoll_2"]);
        assert!(k.udp_concs.is_empty(), "UDP_CONCS=\"\" skips the UDP step");
        for bad in [
            ["--repeats", "0"],
            ["--repeats", "x"],
            ["--concs", ""],
            ["--concs", "1 0"],
            ["--only", "apache"],
            ["--connections", "-5"],
            ["--models", "2"],
        ] {
            assert!(knobs(&bad).is_err(), "{bad:?}");
        }
    }

    /// Every hello-server model is a server of the bench, by its model name, run with
    /// `--model` and its name: the bench's list starts from the server's. (It is a table
    /// and not made from `Model::in_textbook_order()`, as each model's row carries options
    /// and a description of its own, beside the references and the `--workers` variants.)
    #[test]
    fn every_model_is_a_server_of_the_bench() {
        for model in hello_server::Model::in_textbook_order() {
            let name = model.to_string();
            let spec = SERVERS.iter().find(|s| s.name == name);
            assert!(
                matches!(spec.map(|s| s.program), Some(servers::Program::Hello(args))
                    if args.starts_with(&["--model", name.as_str()])),
                "no bench server {name} running hello-server --model {name}"
            );
        }
    }

    /// docs/performance.md's table of knobs names each by its environment variable and
    /// its option: the pairs are `cargo xtask bench`'s, and every knob is in the table.
    #[test]
    fn the_knobs_table_names_the_options_and_their_variables() {
        use clap::CommandFactory as _;
        let doc = std::fs::read_to_string(project_root().join("docs/performance.md")).unwrap();
        let documented: Vec<(String, String)> = doc
            .lines()
            .filter_map(|l| {
                let cell = l.strip_prefix("| `")?.split(" |").next()?;
                let (env, long) = cell.split_once("`, `--")?;
                Some((env.to_string(), long.trim_end_matches('`').to_string()))
            })
            .collect();
        let cli = crate::Cli::command();
        let bench = cli.find_subcommand("bench").unwrap();
        let knobs: Vec<(String, String)> = bench
            .get_arguments()
            .filter_map(|a| Some((a.get_env()?.to_str()?.to_string(), a.get_long()?.to_string())))
            .collect();
        let (mut documented, mut knobs) = (documented, knobs);
        documented.sort();
        knobs.sort();
        assert_eq!(
            documented, knobs,
            "docs/performance.md's knobs against cargo xtask bench's"
        );
    }

    #[test]
    fn pairs_are_two_names() {
        assert_eq!(pair("epoll/nginx_1"), Ok(Pair("epoll".into(), "nginx_1".into())));
        for bad in ["epoll", "/x", "x/", "a/b/c"] {
            assert!(pair(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(civil_date(0), "1970-01-01 00:00");
        assert_eq!(civil_date(951_782_400), "2000-02-29 00:00");
        assert_eq!(civil_date(1_795_846_712), "2026-11-28 06:18");
    }

    #[test]
    fn the_code_line_names_the_checkouts_commit() {
        let head = std::process::Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(project_root())
            .output()
            .ok()
            .filter(|o| o.status.success());
        let Some(head) = head else {
            eprintln!("SKIP: the_code_line_names_the_checkouts_commit: no git checkout");
            return;
        };
        let rev = git_revision();
        let id = rev.split(' ').next().unwrap();
        assert!(
            id.len() >= 7 && String::from_utf8_lossy(&head.stdout).starts_with(id),
            "{rev}"
        );
        assert!(rev == id || rev == format!("{id} +changes"), "{rev}");
    }
}
