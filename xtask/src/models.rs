//! `cargo xtask models [--clients N] [--repeats R] [--out DIR]`: the textbook's five server models side by side on
//! what the textbook compares them by, measured in one run on this machine:
//!
//! - **cost per client**: server CPU per hello connection (the process and its reaped
//!   children: `utime + stime + cutime + cstime`) and the rate hello-load reaches with 16
//!   connections in flight, as medians over R repeats whose model order rotates, and as
//!   paired ratios to the epoll model within each repeat;
//! - **memory per idle client**: N echo clients connect and send nothing; the proportional
//!   set size (PSS, so that pages the fork model's children share with the parent are
//!   counted once) of the server and all its processes, before and after, over the
//!   clients the server took (kernel socket buffers are not in it, for any model);
//! - **how far it scales**: how many of those N clients the server holds at once (the
//!   rest wait in the listen backlog), with the processes and threads it took;
//! - **what one slow client does to the others**: one client connects and stays silent,
//!   then 20 echo exchanges are made one after another; the time to the first reply and
//!   the median.
//!
//! The table is printed and written (with the raw samples) to `target/bench/models-*/`,
//! or `--out` (`$OUT`). `cargo xtask bench` runs this after its own steps, into the same folder.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hello_client::load::Plan;
use hello_server::Model;

use crate::bench::Generator;
use crate::process::{Running, build_dist, start_server};
use crate::procfs::{Tree, cpu_ticks, raise_nofile, settle, tick_us};
use crate::project_root;

/// The models compared: the server's in the textbook's order
/// ([`Model::in_textbook_order`]) but io_uring, as the textbook compares them (the bench's
/// load and idle steps measure io_uring beside the others).
fn models() -> Vec<Model> {
    Model::in_textbook_order()
        .into_iter()
        .filter(|m| *m != Model::Uring)
        .collect()
}
/// Connections in flight in the rate step.
const RATE_CONC: u32 = 16;
/// hello-load's threads (the bench's default `LOAD_THREADS`).
const LOAD_THREADS: u32 = 2;
/// Hello connections made before the rate is measured, one at a time.
const WARM_UP: u64 = 200;
/// How long each rate measurement lasts.
const RATE_TIME: Duration = Duration::from_secs(3);
/// Exchanges made behind the silent client.
const BEHIND_SLOW: usize = 20;
/// The idle timeout the slow-client step gives the server.
const SLOW_IDLE: &str = "2s";
/// How long the counts of the hold step must stay the same to be taken as settled.
const SETTLE: Duration = Duration::from_secs(1);
/// The most the hold step waits in all.
const HOLD_LIMIT: Duration = Duration::from_secs(30);

/// `cargo xtask models`' command line.
#[derive(Debug, PartialEq, Eq, clap::Args)]
pub struct Args {
    /// Silent clients held against each model.
    #[arg(long, value_name = "N", default_value_t = 3000,
          value_parser = clap::value_parser!(u64).range(1..=50_000))]
    clients: u64,
    /// Repeats of the rate step, the model order rotating between them.
    #[arg(long, value_name = "R", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    repeats: u64,
    /// Where the table and the raw samples go [default: target/bench/models-TIME].
    #[arg(long, value_name = "DIR", env = "OUT")]
    out: Option<PathBuf>,
}

/// Runs the measurement as a task of its own.
pub fn run(args: Args) -> Result<()> {
    eprintln!("xtask models: building the release binaries (cargo xtask dist) ...");
    let dist = build_dist()?;
    let server = dist.join("hello-server");
    let generator = Generator {
        binary: &dist.join("hello-load"),
        threads: LOAD_THREADS,
        limit: RATE_TIME + Duration::from_secs(60),
    };
    let out = args.out.unwrap_or_else(|| {
        project_root()
            .join("target")
            .join("bench")
            .join(format!("models-{}", crate::bench::stamp()))
    });
    measure(
        &server,
        &generator,
        args.clients as usize,
        args.repeats as usize,
        &out,
    )
}

/// Measures every model with `server`, loaded by `generator`, and writes `models.md` and
/// `models.tsv` to `out`.
pub fn measure(
    server: &Path,
    generator: &Generator<'_>,
    clients: usize,
    repeats: usize,
    out: &Path,
) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    let limit = raise_nofile()?;
    // Each client socket here, and the server's side of it, take a descriptor.
    if (limit as usize) < clients + 64 {
        bail!("the descriptor limit ({limit}) is too low for {clients} clients");
    }
    let mut tsv = String::from("step\tmodel\trepeat\tvalue\tunit\n");
    let models = models();
    let mut rates: Vec<Vec<Rate>> = vec![Vec::new(); models.len()];
    for rep in 0..repeats {
        for k in 0..models.len() {
            let i = (k + rep) % models.len();
            let model = &*models[i].to_string();
            eprintln!("xtask models: rate, repeat {}/{repeats}, {model}", rep + 1);
            let r = rate(server, generator, model).with_context(|| format!("rate of the {model} model"))?;
            let _ = writeln!(tsv, "rate\t{model}\t{rep}\t{:.0}\tconn/s", r.per_sec);
            let _ = writeln!(tsv, "cpu\t{model}\t{rep}\t{:.1}\tus/conn", r.cpu_us);
            rates[i].push(r);
        }
    }
    let mut holds = Vec::new();
    let mut slows = Vec::new();
    for model in &models {
        let model = &*model.to_string();
        eprintln!("xtask models: {clients} idle clients, {model}");
        let h = hold(server, model, clients).with_context(|| format!("idle clients of the {model} model"))?;
        let _ = writeln!(tsv, "held\t{model}\t0\t{}\tclients", h.held);
        let _ = writeln!(tsv, "pss\t{model}\t0\t{:.1}\tKiB/client", h.kib_per_client());
        holds.push(h);
        eprintln!("xtask models: one slow client, {model}");
        let s = slow(server, model).with_context(|| format!("slow client with the {model} model"))?;
        let _ = writeln!(tsv, "first\t{model}\t0\t{:.3}\tms", ms(s.first));
        let _ = writeln!(tsv, "median\t{model}\t0\t{:.3}\tms", ms(s.median));
        slows.push(s);
    }
    let table = table(&models, &rates, &holds, &slows, clients, repeats);
    std::fs::write(out.join("models.tsv"), tsv).context("write models.tsv")?;
    std::fs::write(out.join("models.md"), &table).context("write models.md")?;
    println!("{table}");
    eprintln!("xtask models: written to {}", out.join("models.md").display());
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The markdown table.
fn table(
    models: &[Model],
    rates: &[Vec<Rate>],
    holds: &[Hold],
    slows: &[Slow],
    clients: usize,
    repeats: usize,
) -> String {
    let epoll = models.iter().position(|m| *m == Model::Epoll).unwrap_or(0);
    let mut t = format!(
        "| model | CPU per hello connection | rate, {RATE_CONC} in flight | \
         of {clients} idle clients, held at once | memory per idle client (PSS) | \
         processes / threads holding them | first reply behind a silent client | \
         median reply behind it |\n|---|---|---|---|---|---|---|---|\n"
    );
    for (i, model) in models.iter().enumerate() {
        let cpu = median(rates[i].iter().map(|r| r.cpu_us));
        let rate = median(rates[i].iter().map(|r| r.per_sec));
        // Paired within a repeat: the same minutes of the machine.
        let cpu_ratio = median(
            rates[i]
                .iter()
                .zip(&rates[epoll])
                .map(|(a, b)| a.cpu_us / b.cpu_us),
        );
        let rate_ratio = median(
            rates[i]
                .iter()
                .zip(&rates[epoll])
                .map(|(a, b)| a.per_sec / b.per_sec),
        );
        let h = &holds[i];
        let s = &slows[i];
        let _ = writeln!(
            t,
            "| {model} | {cpu:.1} µs (×{cpu_ratio:.2}) | {rate:.0}/s (×{rate_ratio:.2}) | {} | {:.1} KiB | {} / {} | {:.1} ms | {:.2} ms |",
            h.held,
            h.kib_per_client(),
            h.processes,
            h.threads,
            ms(s.first),
            ms(s.median),
        );
    }
    let _ = write!(
        t,
        "\n×: the median over {repeats} repeats of the ratio to the epoll model in the same \
         repeat. The silent client is dropped by the server's idle timeout ({SLOW_IDLE} here).\n"
    );
    t
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    crate::bench::median(values.filter(|x| x.is_finite())).unwrap_or(f64::NAN)
}

/// One rate measurement.
#[derive(Clone, Copy)]
struct Rate {
    per_sec: f64,
    cpu_us: f64,
}

/// hello-load makes hello connections, [`RATE_CONC`] in flight, for [`RATE_TIME`]
/// after [`WARM_UP`] unmeasured ones; every reply must be the greeting.
fn rate(server: &Path, generator: &Generator<'_>, model: &str) -> Result<Rate> {
    let running = start(server, &["--model", model, "--max-conns", "4096"])?;
    let port = running.addr().port();
    let pid = running.pid();
    // A few connections first, so that nothing is measured cold.
    let warm = generator.report(port, Plan::Count(WARM_UP), 1, false)?;
    if warm.failed > 0 {
        bail!(
            "warm-up: {} of {} hello connections failed",
            warm.failed,
            warm.exchanges
        );
    }
    let cpu0 = cpu_ticks(pid)?;
    let r = generator.report(port, Plan::For(RATE_TIME), RATE_CONC, false)?;
    // The fork model's last children are counted once reaped: give it the time.
    thread::sleep(Duration::from_millis(300));
    let cpu1 = cpu_ticks(pid)?;
    stop_clean(running)?;
    if r.failed > 0 || r.ok == 0 {
        bail!("{} of {} hello connections failed", r.failed, r.exchanges);
    }
    Ok(Rate {
        per_sec: r.rate,
        cpu_us: (cpu1 - cpu0) as f64 * tick_us() / r.ok as f64,
    })
}

/// What the hold step found.
struct Hold {
    held: usize,
    pss_grew_kib: u64,
    processes: usize,
    threads: u64,
}

impl Hold {
    fn kib_per_client(&self) -> f64 {
        if self.held == 0 {
            return f64::NAN;
        }
        self.pss_grew_kib as f64 / self.held as f64
    }
}

/// `clients` echo clients connect and stay silent; how many the server takes, and the
/// memory that costs it.
fn hold(server: &Path, model: &str, clients: usize) -> Result<Hold> {
    let mut args = vec!["--model", model];
    args.extend(crate::bench::HOLD_ECHO);
    let running = start(server, &args)?;
    let addr = running.addr();
    let pid = running.pid();
    for _ in 0..50 {
        echo(addr, "warm").context("warm-up exchange")?;
    }
    // The threads model keeps a finished thread a while for the next client: let the
    // ones the warm-up made go, so that the baseline is the idle server.
    thread::sleep(Duration::from_secs(6));
    let base = Tree::of(pid)?;
    let mut held_open = Vec::with_capacity(clients);
    for _ in 0..clients {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).context("connect")?;
        held_open.push(s);
    }
    // Once the server has taken all it will take (the rest wait in the backlog), the
    // count of its connections, processes and threads stops changing: a model that
    // hands each client to a new thread or process has its socket before the thread.
    let last = settle(pid, SETTLE, HOLD_LIMIT)?;
    let held = last.sockets.difference(&base.sockets).count();
    // The first client is served by every model: it proves the held ones are live.
    let first = held_open.first_mut().context("no client")?;
    first.write_all(b"held\n").context("write to a held client")?;
    first
        .set_read_timeout(Some(Duration::from_secs(5)))
        .context("set a read timeout")?;
    let mut reply = Vec::new();
    first
        .read_to_end(&mut reply)
        .context("read the held client's reply")?;
    if reply != b"4 : held\n" {
        bail!("a held client got {reply:?}");
    }
    drop(held_open);
    stop_clean(running)?;
    Ok(Hold {
        held,
        pss_grew_kib: last.pss_kib.saturating_sub(base.pss_kib),
        processes: last.processes,
        threads: last.threads,
    })
}

/// One echo exchange; the reply must be `"<len> : <msg>\n"`.
fn echo(addr: SocketAddr, msg: &str) -> std::io::Result<Duration> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(format!("{msg}\n").as_bytes())?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply)?;
    if reply != format!("{} : {msg}\n", msg.len()).as_bytes() {
        return Err(std::io::Error::other(format!("reply {reply:?}")));
    }
    Ok(t0.elapsed())
}

/// What the slow-client step found.
struct Slow {
    first: Duration,
    median: Duration,
}

/// A silent client first, then [`BEHIND_SLOW`] exchanges one after another.
fn slow(server: &Path, model: &str) -> Result<Slow> {
    let running = start(
        server,
        &["--model", model, "--service", "echo", "--idle-timeout", SLOW_IDLE],
    )?;
    let addr = running.addr();
    let pid = running.pid();
    echo(addr, "warm").context("warm-up exchange")?;
    let base = Tree::of(pid)?;
    let silent = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).context("connect")?;
    // Measure only once the server has taken the silent client.
    let t0 = Instant::now();
    while Tree::of(pid)?.sockets.difference(&base.sockets).count() == 0 {
        if t0.elapsed() >= Duration::from_secs(5) {
            bail!("the server did not take the silent client within 5 s");
        }
        thread::sleep(Duration::from_millis(5));
    }
    let mut times = Vec::with_capacity(BEHIND_SLOW);
    for i in 0..BEHIND_SLOW {
        times.push(echo(addr, &format!("behind {i}")).context("an exchange behind the silent client")?);
    }
    drop(silent);
    stop_clean(running)?;
    let first = times[0];
    times.sort();
    Ok(Slow {
        first,
        median: times[times.len() / 2],
    })
}

fn start(server: &Path, args: &[&str]) -> Result<Running> {
    let mut all = args.to_vec();
    all.extend(["--bind", "127.0.0.1", "0"]);
    start_server(&server.to_path_buf(), &all)
}

/// Stops the server; it must exit 0 with nothing on stderr but its own counts.
fn stop_clean(running: Running) -> Result<()> {
    let (status, stderr) = running.stop()?;
    if !status.success() {
        bail!("the server exited with {status}: {}", stderr.trim_end());
    }
    Ok(())
}
