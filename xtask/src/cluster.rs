//! `cargo xtask cluster [--runs N] [--clients C,C] [--model M]`: three hello-server
//! instances on 127.0.0.2–4 behind HAProxy (docs/haproxy.cfg: agent checks, PROXY v2),
//! looping clients through it, and N rolling restarts at each client count; prints the
//! spread of sessions per instance and the failed exchanges (there must be none). It runs
//! the end-to-end test `tests/tests/cluster.rs` for longer, on the release build, so the
//! two cannot drift apart. Needs HAProxy (Debian package haproxy).

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{cargo, project_root};

/// Runs the cluster.
pub fn run(args: &[String]) -> Result<()> {
    let (mut runs, mut clients, mut model) = ("10".to_string(), "16,64".to_string(), "epoll".to_string());
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--runs" if value.parse::<u32>().is_ok_and(|n| n > 0) => runs.clone_from(value),
            "--clients" if value.split(',').all(|c| c.parse::<u32>().is_ok_and(|n| n > 0)) => {
                clients.clone_from(value);
            }
            "--model" if ["iterative", "threads", "epoll"].contains(&value.as_str()) => {
                model.clone_from(value)
            }
            _ => bail!(
                "usage: cargo xtask cluster [--runs N] [--clients C[,C...]] [--model iterative|threads|epoll]"
            ),
        }
    }
    if Command::new("haproxy").arg("-v").output().is_err() {
        bail!("cargo xtask cluster needs HAProxy: apt-get install haproxy");
    }
    eprintln!(
        "xtask cluster: {runs} rolling restarts at {clients} clients, model {model} (release build) ..."
    );
    let status = Command::new(cargo())
        .current_dir(project_root())
        .args([
            "test",
            "--quiet",
            "--release",
            "-p",
            "hello-tests",
            "--test",
            "cluster",
            "--",
            "--nocapture",
        ])
        .env("CLUSTER_RUNS", &runs)
        .env("CLUSTER_CLIENTS", &clients)
        .env("CLUSTER_MODEL", &model)
        .status()
        .context("cannot run cargo test")?;
    if !status.success() {
        bail!("the cluster run failed ({status})");
    }
    Ok(())
}
