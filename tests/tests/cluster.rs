//! Past one machine (docs/contract.md#behind-a-balancer): three instances behind HAProxy
//! with agent checks and PROXY v2, clients looping through it, and a rolling restart of
//! every instance: no exchange may fail. Skips loudly where HAProxy is not installed;
//! `cargo xtask cluster` runs the same for longer (CLUSTER_RUNS, CLUSTER_CLIENTS).

// Test code: a panic with a message is how it reports.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use hello_tests::cluster::{Cluster, Load};
use hello_tests::{WAIT, wait_until};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn a_rolling_restart_behind_haproxy_fails_no_exchange() {
    let runs = knob("CLUSTER_RUNS", 1);
    let clients: Vec<usize> = std::env::var("CLUSTER_CLIENTS")
        .ok()
        .map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![16]);
    let model = std::env::var("CLUSTER_MODEL").unwrap_or_else(|_| "epoll".into());
    let Some(mut cluster) = Cluster::start(&model) else {
        return;
    };
    for &c in &clients {
        for run in 1..=runs {
            let load = Load::start(cluster.frontend, c);
            // Let the load settle before the first restart.
            std::thread::sleep(Duration::from_millis(300));
            let before = load.ok();
            let took = cluster.rolling_restart().unwrap();
            std::thread::sleep(Duration::from_millis(300));
            let tally = load.stop();
            let states = cluster.states();
            eprintln!(
                "cluster: {model}, {c} clients, run {run}/{runs}: {} exchanges ({} during the restart), \
                 {} failed; restarts took {:?} s; sessions per instance {:?}",
                tally.ok,
                tally.ok - before,
                tally.failed,
                took.iter()
                    .map(|t| (t * 100.0).round() / 100.0)
                    .collect::<Vec<_>>(),
                states
                    .iter()
                    .map(|s| (s.name.as_str(), s.sessions))
                    .collect::<Vec<_>>()
            );
            assert_eq!(tally.failed, 0, "{c} clients, run {run}: {:?}", tally.failures);
            assert!(tally.ok > before, "no exchange during the restart");
            assert!(
                states.iter().all(|s| s.sessions > 0),
                "every instance served: {states:?}"
            );
        }
    }
}

#[test]
fn through_haproxy_the_trace_names_the_real_client() {
    let Some(cluster) = Cluster::start_with("epoll", &["--trace", "--lang", "en"]) else {
        return;
    };
    let mut s = TcpStream::connect(cluster.frontend).unwrap();
    let me = s.local_addr().unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    assert_eq!(reply, b"Hello World!\0");
    // The instance's peer is HAProxy; the PROXY v2 header names this client, port and all.
    let wanted = format!("client {me},");
    assert!(
        wait_until(WAIT, || cluster.stderr().contains(&wanted)),
        "no {wanted:?} in the instances' traces"
    );
}
