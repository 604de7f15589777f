//! One load run: hello-load started as a program ([`Generator`], also the rate step of
//! `cargo xtask models`), its `--json` report read back into hello-load's own type
//! ([`Report`]), with the server's CPU time over the run (its whole process tree, reaped
//! children included) measured from outside.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hello_client::load::{Plan, Summary};
use hello_proto::sys::process::end_with_parent;

use crate::process::run_bounded_for;
use crate::procfs::{Tree, tick_us};

/// hello-load's `--json` report (docs/contract.md#hello-load): the type hello-load
/// prints, read back.
pub type Report = Summary;

/// The report in the last line of hello-load's stdout.
pub fn parse(stdout: &str) -> Result<Report> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .context("hello-load printed nothing")?;
    serde_json::from_str(line).with_context(|| format!("hello-load's report {line:?}"))
}

/// One run against one server: the report and the server's CPU per ok connection (µs).
pub struct Measured {
    /// hello-load's report.
    pub report: Report,
    /// The server's CPU time (all its processes, reaped children included) over the
    /// run, per ok connection, µs.
    pub server_cpu_us: Option<f64>,
}

/// How hello-load is run.
pub struct Generator<'a> {
    /// The binary.
    pub binary: &'a Path,
    /// `--threads`.
    pub threads: u32,
    /// hello-load is killed after this long (it bounds each exchange by 5 s itself).
    pub limit: Duration,
}

impl Generator<'_> {
    /// `n` hello exchanges (datagrams with `udp`), `c` in flight, against
    /// 127.0.0.1:`port`, while the CPU time of the server `pid` is read before and after.
    pub fn run(&self, port: u16, pid: u32, n: u64, c: u32, udp: bool) -> Result<Measured> {
        let before = Tree::of(pid)?.cpu_ticks;
        let report = self.report(port, Plan::Count(n), c, udp)?;
        let after = Tree::of(pid)?.cpu_ticks;
        let server_cpu_us =
            (report.ok > 0).then(|| after.saturating_sub(before) as f64 * tick_us() / report.ok as f64);
        Ok(Measured {
            report,
            server_cpu_us,
        })
    }

    /// hello-load's report of the hello exchanges of `plan` (a count or a duration),
    /// `c` in flight, against 127.0.0.1:`port`.
    pub fn report(&self, port: u16, plan: Plan, c: u32, udp: bool) -> Result<Report> {
        let mut cmd = Command::new(self.binary);
        if udp {
            cmd.arg("--udp");
        }
        cmd.args(["--json", "--timeout", "5s", "--threads"])
            .arg(self.threads.to_string());
        match plan {
            Plan::Count(n) => cmd.arg("-n").arg(n.to_string()),
            Plan::For(d) => cmd.arg("-d").arg(format!("{}ms", d.as_millis())),
            Plan::CountWithin(..) => bail!("hello-load's command line has no count within a time"),
        };
        cmd.arg("-c")
            .arg(c.to_string())
            .args(["127.0.0.1", &port.to_string()]);
        end_with_parent(&mut cmd);
        let done = run_bounded_for(cmd, self.limit)?;
        parse(&done.stdout)
            .with_context(|| format!("hello-load exited {}: {}", done.status, done.stderr.trim_end()))
    }
}

#[cfg(test)]
mod tests {
    use hello_client::load::summary::Errors;

    use super::*;

    /// A report as hello-load prints it (docs/contract.md#hello-load).
    const REPORT: &str = r#"{"target":"127.0.0.1:9190","address":"127.0.0.1:9190","protocol":"tcp","connect_only":false,"loop":"closed","rate_asked":null,"concurrency":64,"threads":2,"exchanges":20000,"ok":19990,"failed":10,"errors":{"refused":0,"reset":4,"timeout":6,"mismatch":0,"not_started":0,"other":0},"last_other_error":null,"first_mismatch":null,"seconds":0.5,"rate":39980.0,"latency_us":{"p50":670,"p90":2955,"p99":8647,"p99_9":12807,"max":13135,"mean":1184.1},"start_lag_us":null,"cpu_us_per_exchange":25.0,"cpu_user_seconds":0.1,"cpu_system_seconds":0.4}"#;

    #[test]
    fn hello_loads_json_report_is_read() {
        let r = parse(&format!("{REPORT}\n")).unwrap();
        assert_eq!((r.ok, r.failed), (19990, 10));
        assert_eq!(
            r.errors,
            Errors {
                reset: 4,
                timeout: 6,
                ..Errors::default()
            }
        );
        let lat = r.latency_us.as_ref().unwrap();
        assert_eq!((lat.p50, lat.p99, lat.max), (670, 8647, 13135));
        assert!((r.cores().unwrap() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_run_with_no_ok_exchange_has_no_latency_and_no_report_is_an_error() {
        let none = REPORT.replace(
            r#""latency_us":{"p50":670,"p90":2955,"p99":8647,"p99_9":12807,"max":13135,"mean":1184.1}"#,
            r#""latency_us":null"#,
        );
        assert!(parse(&none).unwrap().latency_us.is_none());
        assert!(parse("").is_err());
        assert!(parse("hello-load: connect() error").is_err());
    }
}
