//! The files of a bench run, one function each: the charts (`*.svg`), the raw rows
//! (`runs.tsv`, `startup.tsv`, `idle.tsv`) and the summary (`summary.md`, also printed),
//! written by [`write()`] into the run's folder.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::summary::{self, Idle, Row, Startup};
use super::{Table, chart, say};

/// Every file of a run, written to `out`, and the summary printed. The charts come
/// first: the summary lists the ones drawn.
pub fn write(
    out: &Path,
    head: &str,
    tables: &[Table],
    rows: &[Row],
    startups: &[Startup],
    idles: &[Idle],
    problems: &[String],
) -> Result<()> {
    let charts = write_charts(out, tables, rows, idles)?;
    let summary = summary_md(head, tables, startups, idles, &charts, problems);
    std::fs::write(out.join("runs.tsv"), runs_tsv(rows))?;
    std::fs::write(out.join("startup.tsv"), startup_tsv(startups))?;
    std::fs::write(out.join("idle.tsv"), idle_tsv(idles))?;
    std::fs::write(out.join("summary.md"), &summary).context("write summary.md")?;
    println!("{summary}");
    say(&format!("summary in {}", out.join("summary.md").display()));
    Ok(())
}

/// The charts: the rate and p99 of the TCP table, memory per idle connection, and each
/// table's ratios to nginx; the names of the files written (a chart with nothing to draw
/// is left out).
fn write_charts(out: &Path, tables: &[Table], rows: &[Row], idles: &[Idle]) -> Result<Vec<String>> {
    let cells = &tables[0].cells;
    let rate = chart::lines(
        "Hello connections per second (median of repeats)",
        "connections per second",
        &chart::series(cells, |c| Some(c.rate)),
        false,
    );
    let p99 = chart::lines(
        "p99 latency of a hello exchange (median of repeats)",
        "p99, µs (log scale)",
        &chart::series(cells, |c| c.p99),
        true,
    );
    let idle = chart::idle_bars("Memory per idle connection", idles);
    let mut drawn = vec![
        ("rate.svg".to_string(), rate),
        ("p99.svg".to_string(), p99),
        ("idle.svg".to_string(), idle),
    ];
    for t in tables {
        drawn.extend(t.vs_nginx(rows));
    }
    let mut charts = Vec::new();
    for (file, svg) in drawn {
        match svg {
            Ok(svg) => {
                std::fs::write(out.join(&file), svg).with_context(|| format!("write {file}"))?;
                charts.push(file);
            }
            Err(e) if e.to_string() == "nothing to draw" => {}
            Err(e) => bail!("chart {file}: {e}"),
        }
    }
    Ok(charts)
}

/// `summary.md`: `head`, each table's section, the start-up and idle tables, the
/// `charts` drawn and the `problems` met.
fn summary_md(
    head: &str,
    tables: &[Table],
    startups: &[Startup],
    idles: &[Idle],
    charts: &[String],
    problems: &[String],
) -> String {
    let mut s = String::from(head);
    for t in tables {
        s.push_str(&t.section());
    }
    let names = &tables[0].names;
    if !startups.is_empty() {
        s.push_str(
            "\n## Start-up\n\nExec to the first complete reply on 127.0.0.1 (polled every 50 µs), ms.\n\n",
        );
        let base = if names.contains(&"c_iterative") {
            "c_iterative"
        } else {
            names[0]
        };
        s.push_str(&summary::startup_table(startups, base));
    }
    if !idles.is_empty() {
        s.push_str(
            "\n## Idle connections\n\nSilent clients held open against each server's echo mode; the \
             growth of the PSS of all its processes over the clients it took (kernel socket \
             buffers are not in it).\n\n",
        );
        s.push_str(&summary::idle_table(idles));
    }
    if !charts.is_empty() {
        s.push_str("\n## Charts\n\n");
        for c in charts {
            let _ = writeln!(s, "![{c}]({c})");
        }
    }
    if !problems.is_empty() {
        s.push_str("\n## Problems\n\n");
        for p in problems {
            let _ = writeln!(s, "- {p}");
        }
    }
    s
}

/// A TSV file: its header line, then a line each.
fn tsv(header: &str, lines: impl Iterator<Item = String>) -> String {
    format!("{header}\n{}\n", lines.collect::<Vec<_>>().join("\n"))
}

/// `runs.tsv`: a row per load run ([`Row::tsv`]).
fn runs_tsv(rows: &[Row]) -> String {
    tsv(summary::RUNS_HEADER, rows.iter().map(Row::tsv))
}

/// `startup.tsv`: a line per start that got its reply.
fn startup_tsv(startups: &[Startup]) -> String {
    tsv(
        "server\ttries\tms",
        startups.iter().flat_map(|st| {
            st.samples_ms
                .iter()
                .map(move |m| format!("{}\t{}\t{m:.3}", st.server, st.tries))
        }),
    )
}

/// `idle.tsv`: a line per server of the idle step.
fn idle_tsv(idles: &[Idle]) -> String {
    tsv(
        "server\theld\tpss_before_kib\tpss_held_kib",
        idles.iter().map(|i| {
            format!(
                "{}\t{}\t{}\t{}",
                i.server, i.held, i.pss_before_kib, i.pss_held_kib
            )
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::servers::{REFERENCES, SERVERS, Spec, UDP_REFERENCES, UDP_SERVERS};
    use crate::project_root;

    /// A saved run's measurements read back from its TSV files: the rows of `runs.tsv`,
    /// and the start-ups and idle readings of `startup.tsv` and `idle.tsv`.
    fn recorded(dir: &Path) -> (Vec<Row>, Vec<Startup>, Vec<Idle>) {
        let text = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        let rows = text("runs.tsv").lines().filter_map(Row::parse).collect();
        let mut startups: Vec<Startup> = Vec::new();
        for line in text("startup.tsv").lines().skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            let (server, tries, ms) = (f[0], f[1].parse().unwrap(), f[2].parse().unwrap());
            match startups.last_mut() {
                Some(s) if s.server == server => s.samples_ms.push(ms),
                _ => startups.push(Startup {
                    server: server.to_string(),
                    samples_ms: vec![ms],
                    tries,
                }),
            }
        }
        let idles = text("idle.tsv")
            .lines()
            .skip(1)
            .map(|line| {
                let f: Vec<&str> = line.split('\t').collect();
                Idle {
                    server: f[0].to_string(),
                    held: f[1].parse().unwrap(),
                    pss_before_kib: f[2].parse().unwrap(),
                    pss_held_kib: f[3].parse().unwrap(),
                }
            })
            .collect();
        (rows, startups, idles)
    }

    /// A table of `rows` as the run makes it, its servers in the order they come.
    fn table_of(rows: &[Row], references: &[(&'static str, &'static str)], udp: bool) -> Table {
        let mut specs: Vec<&Spec> = Vec::new();
        for r in rows {
            let spec = SERVERS
                .iter()
                .chain(UDP_SERVERS)
                .find(|s| s.name == r.server)
                .unwrap_or_else(|| panic!("no server {}", r.server));
            if !specs.iter().any(|s| s.name == spec.name) {
                specs.push(spec);
            }
        }
        Table::of(&specs, references.to_vec(), rows, udp)
    }

    /// Two saved runs (docs/bench/: a full one with start-up and idle readings and
    /// nginx, and a UDP one) written again: the raw files come out byte for byte as the
    /// bench wrote them, and the summary names every chart written.
    #[test]
    fn a_recorded_run_is_written_again_byte_for_byte() {
        let saved = project_root().join("docs/bench");
        let (tcp, startups, idles) = recorded(&saved.join("2026-11-28-full-1795849967"));
        let (udp, _, _) = recorded(&saved.join("2026-12-06-udp-1796559326"));
        assert!(!tcp.is_empty() && !udp.is_empty() && !startups.is_empty() && !idles.is_empty());
        let tables = [
            table_of(&tcp, &REFERENCES, false),
            table_of(&udp, &UDP_REFERENCES, true),
        ];
        let rows: Vec<Row> = tcp.iter().chain(&udp).cloned().collect();
        // Kept in target/ (not removed), so that two versions' files can be compared.
        let out = project_root().join("target/xtask-test-write-results");
        let _ = std::fs::remove_dir_all(&out);
        std::fs::create_dir_all(&out).unwrap();
        let problems = vec!["repeat 2, tokio at C=1024: hello-load exited 1".to_string()];
        write(&out, "# head\n", &tables, &rows, &startups, &idles, &problems).unwrap();
        let read = |p: &Path| std::fs::read_to_string(p).unwrap();
        let full = saved.join("2026-11-28-full-1795849967");
        let udp_runs = read(&saved.join("2026-12-06-udp-1796559326/runs.tsv"));
        let udp_body = udp_runs.split_once('\n').unwrap().1;
        assert_eq!(
            read(&out.join("runs.tsv")),
            read(&full.join("runs.tsv")) + udp_body
        );
        for file in ["startup.tsv", "idle.tsv"] {
            assert_eq!(read(&out.join(file)), read(&full.join(file)), "{file}");
        }
        let mut written: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        written.sort();
        assert_eq!(
            written,
            [
                "idle.svg",
                "idle.tsv",
                "p99.svg",
                "rate.svg",
                "runs.tsv",
                "startup.tsv",
                "summary.md",
                "udp_vs_nginx.svg",
                "udp_vs_nginx_rate.svg",
                "vs_nginx.svg",
                "vs_nginx_rate.svg"
            ]
        );
        let summary = read(&out.join("summary.md"));
        assert!(summary.starts_with("# head\n\n## Load\n"), "{summary}");
        for part in [
            "\n## UDP\n",
            "\n## Start-up\n",
            "| c_iterative | 1 | 21,757 | 13,080–29,569 |",
            "\n## Idle connections\n",
            "| epoll | 5000 | 2,220 | 4,228 |",
            "\n## Charts\n\n![rate.svg](rate.svg)\n![p99.svg](p99.svg)\n![idle.svg](idle.svg)\n\
             ![vs_nginx.svg](vs_nginx.svg)\n![vs_nginx_rate.svg](vs_nginx_rate.svg)\n\
             ![udp_vs_nginx.svg](udp_vs_nginx.svg)\n![udp_vs_nginx_rate.svg](udp_vs_nginx_rate.svg)\n",
            "\n## Problems\n\n- repeat 2, tokio at C=1024: hello-load exited 1\n",
        ] {
            assert!(summary.contains(part), "{part:?} not in\n{summary}");
        }
    }
}
