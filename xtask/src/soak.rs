//! `cargo xtask soak [--connections N] [--minutes M] [--model NAME]`: the long run. Each
//! server model (or the one named), as
//! shipped (`cargo xtask dist`), serves echo exchanges from hello-load's engine (four
//! threads, an exchange each in flight, every message its own) until N connections
//! (default a million) or M minutes (default 5) per model; meanwhile the
//! server's descriptors, resident memory and threads are sampled every 200 ms. A model
//! passes when every exchange was answered byte for byte and, once the load is over and
//! the server idle, it is back where it was when idle after a warm-up of 20,000
//! connections: the same descriptors and threads, and memory within 2 MiB. Each model
//! that serves clients at once also meets a crowd: 200 clients queued at once against
//! `--max-conns 10`, of which it may hold no more than 10 at any moment, and every one
//! of which is then served.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hello_client::load::{Config, Expect, Plan};
use hello_proto::wire::greeting;

use hello_server::Model;

use crate::process::{build_dist, start_server};
use crate::procfs;

/// Client threads (hello-load's), each with one exchange in flight.
const CLIENTS: usize = 4;
/// Connections made before the baseline is taken.
const WARM_UP: u64 = 20_000;
/// How long an idle server is given to settle (the threads model keeps a finished
/// thread 5 s for the next client).
const SETTLE: Duration = Duration::from_secs(7);
/// Memory growth still counted as flat.
const RSS_SLACK_KIB: u64 = 2048;

/// What the server holds at one moment.
#[derive(Debug, Clone, Copy)]
struct Sample {
    fds: usize,
    rss_kib: u64,
    threads: u64,
}

impl Sample {
    fn of(pid: u32) -> Result<Sample> {
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).context("read /proc/PID/status")?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
                .with_context(|| format!("no {name} in /proc/{pid}/status"))
        };
        Ok(Sample {
            fds: std::fs::read_dir(format!("/proc/{pid}/fd"))
                .context("read /proc/PID/fd")?
                .count(),
            rss_kib: field("VmRSS:")?,
            threads: field("Threads:")?,
        })
    }
}

impl std::fmt::Display for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "fds {:>4}  rss {:>7} KiB  threads {:>3}",
            self.fds, self.rss_kib, self.threads
        )
    }
}

/// `cargo xtask soak`'s command line.
#[derive(Debug, PartialEq, Eq, clap::Args)]
pub struct Args {
    /// Connections per model, more than the warm-up's 20,000 (or --minutes, whichever ends first).
    #[arg(long, value_name = "N", default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(WARM_UP + 1..))]
    connections: u64,
    /// Minutes per model at most.
    #[arg(long, value_name = "M", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    minutes: u64,
    /// Soak this model alone [default: every one, io_uring last].
    #[arg(long, value_name = "MODEL", value_enum)]
    model: Option<Model>,
}

/// Runs the soak.
pub fn run(args: Args) -> Result<()> {
    let Args {
        connections,
        minutes,
        model: only,
    } = args;
    eprintln!("xtask soak: building the release binaries (cargo xtask dist) ...");
    let server = build_dist()?.join("hello-server");
    let mut failed = Vec::new();
    // Every model in the textbook's order, which puts io_uring last: a kernel that
    // refuses io_uring fails it alone, after the others.
    for model in Model::in_textbook_order()
        .into_iter()
        .filter(|m| only.is_none_or(|o| o == *m))
    {
        println!("\n=== {model}: up to {connections} connections or {minutes} min ===");
        let name = model.to_string();
        let crowd = || match model {
            Model::Iterative => Ok(()),
            _ => crowd_within_max_conns(&server, &name),
        };
        if let Err(e) = soak_model(&server, &name, connections, minutes).and_then(|()| crowd()) {
            println!("FAIL {model}: {e:#}");
            failed.push(name);
        }
    }
    if !failed.is_empty() {
        bail!("soak failed for {}", failed.join(", "));
    }
    println!("\nsoak passed: every model flat");
    Ok(())
}

fn soak_model(server: &std::path::Path, model: &str, connections: u64, minutes: u64) -> Result<()> {
    let running = start_server(
        &server.to_path_buf(),
        &["--model", model, "--service", "echo", "--bind", "127.0.0.1", "0"],
    )?;
    let pid = running.pid();
    let addr = running.addr();
    let t0 = Instant::now();
    let limit = Duration::from_secs(minutes * 60);
    let warm_up = load(addr, pid, WARM_UP, limit)?;
    thread::sleep(SETTLE);
    let baseline = Sample::of(pid)?;
    println!("idle after {} warm-up connections: {baseline}", warm_up.done);
    let run = load(addr, pid, connections, limit.saturating_sub(t0.elapsed()))?;
    thread::sleep(SETTLE);
    let idle = Sample::of(pid)?;
    let (status, stderr) = running.stop()?;
    let errors = warm_up.errors + run.errors;
    println!(
        "{} connections in {:.0} s ({:.0}/s), {errors} failed",
        run.done,
        run.took.as_secs_f64(),
        run.done as f64 / run.took.as_secs_f64()
    );
    println!("peak under load: {}", run.peak);
    println!("idle after:      {idle}");
    let grew = idle.rss_kib.saturating_sub(baseline.rss_kib);
    let mut problems = Vec::new();
    if errors > 0 {
        problems.push(format!("{errors} exchanges failed"));
    }
    if idle.fds != baseline.fds {
        problems.push(format!("descriptors {} -> {}", baseline.fds, idle.fds));
    }
    if idle.threads > baseline.threads {
        problems.push(format!("threads {} -> {}", baseline.threads, idle.threads));
    }
    if grew > RSS_SLACK_KIB {
        problems.push(format!("memory grew {grew} KiB"));
    }
    if !status.success() || !stderr.is_empty() {
        problems.push(format!(
            "server exit {status}, stderr {:?}",
            stderr.lines().take(3).collect::<Vec<_>>()
        ));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("; "));
    }
    println!("flat: descriptors and threads as before the run, memory +{grew} KiB");
    Ok(())
}

/// The crowd of [`crowd_within_max_conns`]: clients queued at once, and the server's
/// `--max-conns`.
const CROWD: usize = 200;
const CROWD_SLOTS: usize = 10;

/// `--max-conns` against a crowd: the server is stopped (SIGSTOP) while [`CROWD`]
/// clients connect, so that it finds them all queued at once; once it goes on, the
/// client sockets its processes hold are counted for a second (socket descriptors beyond
/// the idle server's), and must never pass [`CROWD_SLOTS`]. Then every client sends its
/// request, and each must get its reply (the others waited in the backlog).
fn crowd_within_max_conns(server: &std::path::Path, model: &str) -> Result<()> {
    let slots = CROWD_SLOTS.to_string();
    let running = start_server(
        &server.to_path_buf(),
        &[
            "--model",
            model,
            "--service",
            "echo",
            "--max-conns",
            &slots,
            "--idle-timeout",
            "1m",
            "--bind",
            "127.0.0.1",
            "0",
        ],
    )?;
    let (pid, addr) = (running.pid(), running.addr());
    // One exchange first: the model has set up what it holds besides clients (the select
    // model's wake pipe is made after the start-up line) before the idle count.
    let mut first = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).context("connect")?;
    first.set_read_timeout(Some(Duration::from_secs(5)))?;
    first.write_all(b"first\0")?;
    let mut reply = Vec::new();
    first.read_to_end(&mut reply).context("the first exchange")?;
    if reply != b"5 : first\0" {
        bail!("the first exchange got {reply:?}");
    }
    let idle = procfs::Tree::of(pid)?.sockets;
    let signal = |sig| running.signal(sig);
    signal(libc::SIGSTOP)?;
    let crowd: Vec<std::io::Result<TcpStream>> = (0..CROWD)
        .map(|_| TcpStream::connect_timeout(&addr, Duration::from_secs(5)))
        .collect();
    signal(libc::SIGCONT)?;
    let mut crowd = crowd
        .into_iter()
        .collect::<std::io::Result<Vec<_>>>()
        .context("connect")?;
    let mut most = 0;
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        let held = procfs::Tree::of(pid)?.sockets.difference(&idle).count();
        most = most.max(held);
        thread::sleep(Duration::from_millis(20));
    }
    let mut wrong = 0;
    for (i, c) in crowd.iter_mut().enumerate() {
        let msg = format!("crowd {i}");
        let expect = format!("{} : {msg}\0", msg.len());
        let mut reply = Vec::new();
        let ok = c
            .set_read_timeout(Some(Duration::from_secs(10)))
            .and_then(|()| c.write_all(format!("{msg}\0").as_bytes()))
            .and_then(|()| c.read_to_end(&mut reply))
            .is_ok_and(|_| reply == expect.as_bytes());
        wrong += usize::from(!ok);
    }
    let (status, stderr) = running.stop()?;
    println!(
        "--max-conns {CROWD_SLOTS} against {CROWD} clients queued at once: held at most {most}, {wrong} not served"
    );
    if most > CROWD_SLOTS || wrong > 0 || !status.success() || !stderr.is_empty() {
        bail!(
            "--max-conns {CROWD_SLOTS}: held {most} client sockets, {wrong} of {CROWD} not served, exit {status}, stderr {:?}",
            stderr.lines().take(3).collect::<Vec<_>>()
        );
    }
    Ok(())
}

/// What one load phase did.
struct Load {
    done: u64,
    errors: u64,
    took: Duration,
    peak: Sample,
}

/// hello-load's engine, [`CLIENTS`] threads with an exchange each in flight, until
/// `connections` or `limit`: each exchange sends its own message (`soak <thread> <n>`
/// and a NUL) and its reply must be the echo of that message, byte for byte. The
/// server is sampled every 200 ms meanwhile, and the count printed every 10 s.
fn load(addr: SocketAddr, pid: u32, connections: u64, limit: Duration) -> Result<Load> {
    let config = Config {
        addr,
        udp: false,
        connect_only: false,
        payload: greeting("soak"),
        numbered: true,
        expect: Expect::Echo,
        timeout: Duration::from_secs(5),
        plan: Plan::CountWithin(connections, limit),
        concurrency: CLIENTS,
        rate: None,
        threads: CLIENTS,
    };
    let mut peak = Sample::of(pid)?;
    let mut failed_sample = None;
    let mut last_sample = Instant::now();
    let mut last_print = Instant::now();
    let outcome = hello_client::load::run(&config, |n, elapsed| {
        if failed_sample.is_some() || last_sample.elapsed() < Duration::from_millis(200) {
            return;
        }
        last_sample = Instant::now();
        let now = match Sample::of(pid) {
            Ok(s) => s,
            Err(e) => {
                failed_sample = Some(e);
                return;
            }
        };
        peak.fds = peak.fds.max(now.fds);
        peak.rss_kib = peak.rss_kib.max(now.rss_kib);
        peak.threads = peak.threads.max(now.threads);
        if last_print.elapsed() >= Duration::from_secs(10) {
            println!(
                "{n:>9} connections, {:>6.0}/s: {now}",
                n as f64 / elapsed.as_secs_f64()
            );
            last_print = Instant::now();
        }
    })?;
    if let Some(e) = failed_sample {
        return Err(e);
    }
    Ok(Load {
        done: outcome.tally.exchanges(),
        errors: outcome.tally.errors.total(),
        took: outcome.elapsed,
        peak,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn soak(v: &[&str]) -> Result<Args, clap::Error> {
        crate::parse_task("soak", v)
    }

    #[test]
    fn the_command_line_takes_a_model_counts_and_rejects_the_rest() {
        let args = soak(&[]).unwrap();
        assert_eq!((args.connections, args.minutes, args.model), (1_000_000, 5, None));
        let args = soak(&["--model", "uring", "--connections", "300000"]).unwrap();
        assert_eq!(
            (args.connections, args.minutes, args.model),
            (300_000, 5, Some(Model::Uring))
        );
        for m in Model::in_textbook_order() {
            assert_eq!(soak(&["--model", &m.to_string()]).unwrap().model, Some(m));
        }
        assert!(soak(&["--model", "poll"]).is_err());
        assert!(soak(&["--connections", "10"]).is_err());
        assert!(soak(&["--minutes"]).is_err());
        assert!(soak(&["--minutes", "0"]).is_err());
    }
}
