//! `cargo xtask bench [--quick]`: puts every hello-server model beside the C reference
//! servers (and tokio, socat) in one run of the shared harness `../shared/bench/run.sh`,
//! at concurrency 1, 16, 64, 256 and 1024, with start-up time and RSS per idle connection.
//! Then `cargo xtask models` measures the five models on what the harness cannot see.
//! The harness's own knobs (`N`, `CONCS`, `REPEATS`, `ONLY`, ...) pass through from the
//! environment; see its README.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::{build_dist, build_dist_without_trace};
use crate::project_root;

/// Runs the benchmark.
pub fn run(args: &[String]) -> Result<()> {
    let quick = match args {
        [] => false,
        [q] if q == "--quick" => true,
        _ => bail!("usage: cargo xtask bench [--quick]"),
    };
    let bench = bench_dir()?;
    if Command::new("gcc").arg("--version").output().is_err() {
        bail!("the benchmark needs gcc: the load generator and the C reference servers are C");
    }
    eprintln!("xtask bench: building the release binaries (cargo xtask dist) ...");
    let server = build_dist()?.join("hello-server");
    let s = server.display();
    eprintln!("xtask bench: building the same with the trace hooks compiled out ...");
    let bare = build_dist_without_trace()?.join("hello-server");
    let b = bare.display();

    // One line per model, as run.sh's EXTRA_SERVERS expects: name=command {port}.
    let extra = format!(
        "rust_iterative={s} --model iterative {{port}}\n\
         rust_threads={s} --model threads {{port}}\n\
         rust_epoll={s} --model epoll {{port}}\n\
         rust_select={s} --model select {{port}}\n\
         rust_fork={s} --model fork --max-conns 4096 {{port}}\n\
         rust_epoll_notrace={b} --model epoll {{port}}"
    );
    // The idle-RSS step holds its connections for 30 s and needs room for all of them.
    let idle = format!(
        "rust_epoll_echo={s} --model epoll --service echo --idle-timeout 2m --max-conns 100000 {{port}}\n\
         rust_threads_echo={s} --model threads --service echo --idle-timeout 2m --max-conns 100000 {{port}}"
    );
    // Each run keeps its own folder: ratios are only comparable within one run, and a
    // second run must not overwrite the first.
    let stamp = stamp();
    let out = match std::env::var_os("OUT") {
        Some(dir) => PathBuf::from(dir),
        None => project_root()
            .join("target")
            .join("bench")
            .join(format!("{}-{stamp}", if quick { "quick" } else { "full" })),
    };
    let mut cmd = Command::new("bash");
    cmd.arg(bench.join("run.sh"))
        .env("EXTRA_SERVERS", extra)
        .env("IDLE_SERVERS", idle)
        .env("OUT", &out);
    let defaults: &[(&str, &str)] = if quick {
        &[
            ("CONCS", "1 16 64 256"),
            ("N", "5000"),
            ("N_SLOW", "500"),
            ("REPEATS", "1"),
            ("STARTUP_REPEATS", "5"),
            ("IDLE_CONNS", "1000"),
            ("SKIP_SOCAT", "1"),
        ]
    } else {
        &[("CONCS", "1 16 64 256 1024")]
    };
    for (k, v) in defaults {
        if std::env::var_os(k).is_none() {
            cmd.env(k, v);
        }
    }
    eprintln!(
        "xtask bench: running {} (results in {})",
        bench.join("run.sh").display(),
        out.display()
    );
    let status = cmd.status().context("cannot run bash")?;
    if !status.success() {
        bail!("the benchmark harness failed ({status})");
    }
    eprintln!("xtask bench: summary in {}", out.join("summary.txt").display());
    // What the harness cannot see (a server of many processes, one silent client):
    // the five models side by side, into the same folder.
    let (clients, repeats) = if quick { (1000, 1) } else { (3000, 3) };
    crate::models::measure(&server, clients, repeats, &out)
}

/// Seconds since the epoch, to name a run's folder.
pub fn stamp() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `../shared/bench` beside the project (where CI and developers have it).
fn bench_dir() -> Result<PathBuf> {
    let dir = project_root()
        .parent()
        .map(|p| p.join("shared").join("bench"))
        .context("the project has no parent folder")?;
    if !dir.join("run.sh").exists() {
        bail!("the shared benchmark harness is not at {}", dir.display());
    }
    Ok(dir)
}
