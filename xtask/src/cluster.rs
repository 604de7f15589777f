//! `cargo xtask cluster [--runs N] [--clients C,C] [--model MODEL]`: three hello-server
//! instances on 127.0.0.2–4 behind HAProxy (docs/haproxy.cfg: agent checks, PROXY v2),
//! looping clients through it, and N rolling restarts at each client count; prints the
//! spread of sessions per instance and the failed exchanges (there must be none). It runs
//! the end-to-end test `tests/tests/cluster.rs` for longer, on the release build, so the
//! two cannot drift apart. Needs HAProxy (Debian package haproxy).

use std::process::Command;

use anyhow::{Context, Result, bail};

use hello_server::Model;

use crate::{cargo, project_root};

/// `cargo xtask cluster`'s command line.
#[derive(Debug, clap::Args)]
#[command(after_help = format!("Every model but fork: {FORK}."))]
pub struct Args {
    /// Rolling restarts at each client count.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// The client counts, comma-separated: looping clients through HAProxy.
    #[arg(long, value_name = "C,C", default_value = "16,64", value_delimiter = ',',
          value_parser = clap::value_parser!(u32).range(1..))]
    clients: Vec<u32>,
    /// The instances' server model.
    #[arg(long, value_name = "MODEL", value_enum, default_value_t = Model::Epoll)]
    model: Model,
}

impl Args {
    /// The model must be able to run behind HAProxy's agent checks.
    pub fn check(&self) -> Result<(), String> {
        match cannot_run(self.model) {
            Some(why) => Err(format!("--model {}: {why}", self.model)),
            None => Ok(()),
        }
    }
}

/// Why the fork model cannot run in the cluster.
const FORK: &str = "the cluster's instances take --agent-port and --drain-delay (HAProxy's \
                    agent checks), which need threads the fork model's process cannot have";

/// Why `model` cannot run in the cluster, if it cannot.
fn cannot_run(model: Model) -> Option<&'static str> {
    (model == Model::Fork).then_some(FORK)
}

/// Runs the cluster.
pub fn run(args: Args) -> Result<()> {
    let runs = args.runs.to_string();
    let clients = args
        .clients
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let model = args.model.to_string();
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(v: &[&str]) -> Result<Args, clap::Error> {
        crate::parse_task("cluster", v)
    }

    #[test]
    fn the_cluster_takes_every_model_that_can_run_behind_agent_checks() {
        let args = cluster(&[]).unwrap();
        assert_eq!(
            (args.runs, args.clients, args.model),
            (10, vec![16, 64], Model::Epoll)
        );
        for model in Model::in_textbook_order() {
            let got = cluster(&["--model", &model.to_string(), "--runs", "1", "--clients", "4"]);
            match cannot_run(model) {
                Some(why) => assert!(got.unwrap_err().to_string().contains(why)),
                None => assert_eq!(got.unwrap().model, model),
            }
        }
        assert!(cannot_run(Model::Fork).is_some());
        for bad in [
            &["--runs", "0"][..],
            &["--clients", "16,x"],
            &["--clients", "0"],
            &["--model", "poll"],
        ] {
            assert!(cluster(bad).is_err(), "{bad:?}");
        }
    }
}
