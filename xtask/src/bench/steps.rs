//! The two steps of the benchmark besides the load: start-up time (exec to the first
//! complete reply) and memory per idle connection (silent echo clients held open).

use std::net::TcpStream;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::live::{Live, echo_on, free_port, hello, spawn, start};
use super::servers::{Mode, Spec, Tools};
use super::summary::{Idle, Startup};
use crate::procfs::{Tree, settle};

/// The longest a start may take before the sample counts as failed.
const START_LIMIT: Duration = Duration::from_secs(5);
/// How often a starting server is tried.
const POLL: Duration = Duration::from_micros(50);

/// `samples` starts of `spec`, each on a free port chosen for it: the time from just
/// before the spawn (fork and exec) to the end of the first complete, correct reply.
pub fn startup(spec: &Spec, tools: &Tools, logs: &Path, samples: usize) -> Result<Startup> {
    let log = logs.join(format!("{}.startup.log", spec.name));
    let mut out = Startup {
        server: spec.name.to_string(),
        samples_ms: Vec::with_capacity(samples),
        tries: 0,
    };
    for _ in 0..samples {
        out.tries += 1;
        let port = free_port()?;
        let launch = spec.command(tools, Mode::Hello, port, logs)?;
        let t0 = Instant::now();
        let child = spawn(&launch, &log, false)?;
        let mut live = Live::adopt(child, spec.name, port);
        let addr = live.addr();
        let took = loop {
            if hello(addr, Duration::from_secs(1)).is_ok() {
                break Some(t0.elapsed());
            }
            if t0.elapsed() >= START_LIMIT || live.exited() {
                break None;
            }
            thread::sleep(POLL);
        };
        live.stop();
        if let Some(t) = took {
            out.samples_ms.push(t.as_secs_f64() * 1000.0);
        }
    }
    Ok(out)
}

/// `clients` connections to `spec`'s echo mode that send nothing: how many it holds, and
/// the PSS of its processes before and with them.
pub fn idle(spec: &Spec, tools: &Tools, logs: &Path, clients: usize) -> Result<Idle> {
    let live = start(spec, tools, Mode::Echo, logs)?;
    let (addr, pid) = (live.addr(), live.pid);
    // The readiness exchange may have left a thread waiting for the next client (the
    // threads model keeps one 5 s): the baseline is the server with nothing to do.
    thread::sleep(Duration::from_secs(6));
    let base = Tree::of(pid)?;
    let mut held = Vec::with_capacity(clients);
    for i in 0..clients {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connect {} of {clients}", i + 1))?;
        held.push(s);
    }
    let with = settle(pid, Duration::from_secs(1), Duration::from_secs(30))?;
    let count = with.sockets.difference(&base.sockets).count();
    // The clients are live: the first one gets its echo reply.
    let first = held.first_mut().context("no client")?;
    echo_on(first, Duration::from_secs(5)).context("the first held client's exchange")?;
    drop(held);
    live.stop();
    if count == 0 {
        bail!("{} took none of the {clients} clients", spec.name);
    }
    Ok(Idle {
        server: spec.name.to_string(),
        held: count,
        pss_before_kib: base.pss_kib,
        pss_held_kib: with.pss_kib,
    })
}
