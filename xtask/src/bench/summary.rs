//! The benchmark's figures and tables, with no I/O: medians over repeats, ratios paired
//! within a repeat, and the markdown of the summary; also the TSV rows of the raw files.

use std::fmt::Write as _;

use hello_client::load::summary::Errors;

/// One load run: one server, one concurrency, one repeat.
#[derive(Debug, Clone)]
pub struct Row {
    /// Repeat, from 1.
    pub rep: usize,
    /// The server's name.
    pub server: String,
    /// Exchanges in flight.
    pub conc: u32,
    /// Exchanges asked for.
    pub n: u64,
    /// Ok exchanges.
    pub ok: u64,
    /// Failed exchanges (all classes).
    pub failed: u64,
    /// By class.
    pub errors: Errors,
    /// Ok exchanges per second.
    pub rate: f64,
    /// Latency median and 99th percentile and largest, µs (none if nothing was ok).
    pub p50: Option<f64>,
    /// 99th percentile, µs.
    pub p99: Option<f64>,
    /// Largest, µs.
    pub max: Option<f64>,
    /// Server CPU per ok connection, µs.
    pub server_cpu_us: Option<f64>,
    /// hello-load's CPU in cores.
    pub load_cores: Option<f64>,
}

/// The header of `runs.tsv`.
pub const RUNS_HEADER: &str = "rep\tserver\tconc\tn\tok\tfailed\trefused\treset\ttimeout\tmismatch\tother\t\
                               rate\tp50_us\tp99_us\tmax_us\tserver_cpu_us_per_conn\tload_cores";

impl Row {
    /// The row of `runs.tsv`.
    pub fn tsv(&self) -> String {
        let o = |v: Option<f64>, d: usize| v.map_or("-".into(), |x| format!("{x:.d$}"));
        let e = &self.errors;
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.1}\t{}\t{}\t{}\t{}\t{}",
            self.rep,
            self.server,
            self.conc,
            self.n,
            self.ok,
            self.failed,
            e.refused,
            e.reset,
            e.timeout,
            e.mismatch,
            e.other,
            self.rate,
            o(self.p50, 0),
            o(self.p99, 0),
            o(self.max, 0),
            o(self.server_cpu_us, 2),
            o(self.load_cores, 2),
        )
    }

    /// A row of `runs.tsv` read back ([`Row::tsv`]); `None` for the header or a line
    /// that is not one.
    pub fn parse(line: &str) -> Option<Row> {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != RUNS_HEADER.split('\t').count() {
            return None;
        }
        let opt = |s: &str| {
            if s == "-" {
                Some(None)
            } else {
                s.parse().ok().map(Some)
            }
        };
        Some(Row {
            rep: f[0].parse().ok()?,
            server: f[1].to_string(),
            conc: f[2].parse().ok()?,
            n: f[3].parse().ok()?,
            ok: f[4].parse().ok()?,
            failed: f[5].parse().ok()?,
            errors: Errors {
                refused: f[6].parse().ok()?,
                reset: f[7].parse().ok()?,
                timeout: f[8].parse().ok()?,
                mismatch: f[9].parse().ok()?,
                // Not a column: a closed loop (the bench's) starts every exchange.
                not_started: 0,
                other: f[10].parse().ok()?,
            },
            rate: f[11].parse().ok()?,
            p50: opt(f[12])?,
            p99: opt(f[13])?,
            max: opt(f[14])?,
            server_cpu_us: opt(f[15])?,
            load_cores: opt(f[16])?,
        })
    }
}

/// The median (the mean of the middle two for an even count); `None` when empty. NaNs
/// are left out.
pub fn median(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

/// One server at one concurrency, over the repeats.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The server's name.
    pub server: String,
    /// Exchanges in flight.
    pub conc: u32,
    /// Rate: median, least and most over the repeats.
    pub rate: f64,
    /// Least rate.
    pub rate_min: f64,
    /// Most.
    pub rate_max: f64,
    /// For each reference: the median over repeats of this rate over the reference's
    /// rate in the same repeat.
    pub ratios: Vec<Option<f64>>,
    /// For each reference: the median over repeats of this server CPU per connection over
    /// the reference's in the same repeat.
    pub cpu_ratios: Vec<Option<f64>>,
    /// Median of the runs' latency medians, µs.
    pub p50: Option<f64>,
    /// Median of the runs' 99th percentiles, µs.
    pub p99: Option<f64>,
    /// Failed exchanges, summed over the repeats.
    pub failed: u64,
    /// Median server CPU per connection, µs.
    pub server_cpu_us: Option<f64>,
    /// Median hello-load CPU, cores.
    pub load_cores: Option<f64>,
}

/// The median over repeats of `server`'s rate over `reference`'s rate in the same repeat
/// at concurrency `conc`. A repeat in which either did not run counts for nothing; a
/// reference with no ok exchange cannot divide.
pub fn paired_ratio(rows: &[Row], server: &str, reference: &str, conc: u32) -> Option<f64> {
    paired(rows, server, reference, conc, |r| Some(r.rate))
}

/// [`paired_ratio`] of any figure of a row (`None` where a row has none, as the server
/// CPU of a run with nothing ok): the median over repeats of the per-repeat ratios.
pub fn paired(
    rows: &[Row],
    server: &str,
    reference: &str,
    conc: u32,
    figure: impl Fn(&Row) -> Option<f64>,
) -> Option<f64> {
    median(per_repeat(rows, server, reference, conc, figure))
}

/// The per-repeat ratios [`paired`] takes the median of, in the order of the repeats:
/// their spread is what a chart's whiskers show.
pub fn per_repeat(
    rows: &[Row],
    server: &str,
    reference: &str,
    conc: u32,
    figure: impl Fn(&Row) -> Option<f64>,
) -> Vec<f64> {
    rows.iter()
        .filter(|r| r.server == server && r.conc == conc)
        .filter_map(|r| {
            let base = rows
                .iter()
                .find(|b| b.server == reference && b.conc == conc && b.rep == r.rep)?;
            let (x, y) = (figure(r)?, figure(base)?);
            (y > 0.0).then(|| x / y)
        })
        .collect()
}

/// Every (server, concurrency) measured, in the order of `servers` and then of
/// concurrency, with ratios to each of `references`.
pub fn cells(rows: &[Row], servers: &[&str], references: &[&str]) -> Vec<Cell> {
    let mut concs: Vec<u32> = rows.iter().map(|r| r.conc).collect();
    concs.sort_unstable();
    concs.dedup();
    let mut out = Vec::new();
    for server in servers {
        for &conc in &concs {
            let rs: Vec<&Row> = rows
                .iter()
                .filter(|r| r.server == *server && r.conc == conc)
                .collect();
            if rs.is_empty() {
                continue;
            }
            let rates = rs.iter().map(|r| r.rate);
            out.push(Cell {
                server: server.to_string(),
                conc,
                rate: median(rates.clone()).unwrap_or(0.0),
                rate_min: rates.clone().fold(f64::INFINITY, f64::min),
                rate_max: rates.fold(0.0, f64::max),
                ratios: references
                    .iter()
                    .map(|reference| paired_ratio(rows, server, reference, conc))
                    .collect(),
                cpu_ratios: references
                    .iter()
                    .map(|reference| paired(rows, server, reference, conc, |r| r.server_cpu_us))
                    .collect(),
                p50: median(rs.iter().filter_map(|r| r.p50)),
                p99: median(rs.iter().filter_map(|r| r.p99)),
                failed: rs.iter().map(|r| r.failed).sum(),
                server_cpu_us: median(rs.iter().filter_map(|r| r.server_cpu_us)),
                load_cores: median(rs.iter().filter_map(|r| r.load_cores)),
            });
        }
    }
    out
}

/// `12,345` for 12345.4; `-` for none.
pub fn thousands(v: Option<f64>) -> String {
    let Some(v) = v else {
        return "-".into();
    };
    let digits = format!("{:.0}", v.abs());
    let mut s = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            s.push(',');
        }
        s.push(ch);
    }
    if v < -0.5 { format!("-{s}") } else { s }
}

fn fixed(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |x| format!("{x:.digits$}"))
}

/// The load table, markdown: one line per (server, concurrency).
pub fn load_table(cells: &[Cell], reference_columns: &[&str]) -> String {
    let mut t = String::from("| server | C | conn/s | [min–max] |");
    for col in reference_columns {
        let _ = write!(t, " {col} |");
    }
    t.push_str(" p50 µs | p99 µs | errors | server CPU µs/conn |");
    for col in reference_columns {
        let _ = write!(t, " CPU{col} |");
    }
    t.push_str(" hello-load cores |\n|---|---|---|---|");
    t.push_str(&"---|".repeat(2 * reference_columns.len() + 5));
    t.push('\n');
    for c in cells {
        let _ = write!(
            t,
            "| {} | {} | {} | {}–{} |",
            c.server,
            c.conc,
            thousands(Some(c.rate)),
            thousands(Some(c.rate_min)),
            thousands(Some(c.rate_max))
        );
        for r in &c.ratios {
            let _ = write!(t, " {} |", fixed(*r, 2));
        }
        let _ = write!(
            t,
            " {} | {} | {} | {} |",
            thousands(c.p50),
            thousands(c.p99),
            c.failed,
            fixed(c.server_cpu_us, 2),
        );
        for r in &c.cpu_ratios {
            let _ = write!(t, " {} |", fixed(*r, 2));
        }
        let _ = writeln!(t, " {} |", fixed(c.load_cores, 2));
    }
    t
}

/// Start-up times of one server.
#[derive(Debug, Clone)]
pub struct Startup {
    /// The server's name.
    pub server: String,
    /// Exec to first complete reply, ms, of each start that got one.
    pub samples_ms: Vec<f64>,
    /// Starts tried.
    pub tries: usize,
}

/// The start-up table, markdown, with each median over `reference`'s.
pub fn startup_table(rows: &[Startup], reference: &str) -> String {
    let base = rows
        .iter()
        .find(|r| r.server == reference)
        .and_then(|r| median(r.samples_ms.iter().copied()));
    let mut t =
        format!("| server | median ms | min ms | max ms | ok | × {reference} |\n|---|---|---|---|---|---|\n");
    for r in rows {
        let m = median(r.samples_ms.iter().copied());
        let min = r.samples_ms.iter().copied().reduce(f64::min);
        let max = r.samples_ms.iter().copied().reduce(f64::max);
        let ratio = m.zip(base).map(|(m, b)| m / b);
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {}/{} | {} |",
            r.server,
            fixed(m, 2),
            fixed(min, 2),
            fixed(max, 2),
            r.samples_ms.len(),
            r.tries,
            fixed(ratio, 2)
        );
    }
    t
}

/// The idle step's reading of one server.
#[derive(Debug, Clone)]
pub struct Idle {
    /// The server's name.
    pub server: String,
    /// Clients held: new sockets in the server's processes.
    pub held: usize,
    /// PSS of the server's processes before the clients connected, KiB.
    pub pss_before_kib: u64,
    /// And with them held.
    pub pss_held_kib: u64,
}

impl Idle {
    /// Memory per held client, bytes.
    pub fn bytes_per_conn(&self) -> Option<f64> {
        (self.held > 0)
            .then(|| self.pss_held_kib.saturating_sub(self.pss_before_kib) as f64 * 1024.0 / self.held as f64)
    }
}

/// The idle table, markdown.
pub fn idle_table(rows: &[Idle]) -> String {
    let mut t = String::from(
        "| server | clients held | PSS before, KiB | PSS with them held, KiB | bytes per held client |\n\
         |---|---|---|---|---|\n",
    );
    for r in rows {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} |",
            r.server,
            r.held,
            thousands(Some(r.pss_before_kib as f64)),
            thousands(Some(r.pss_held_kib as f64)),
            thousands(r.bytes_per_conn())
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(rep: usize, server: &str, conc: u32, rate: f64) -> Row {
        Row {
            rep,
            server: server.into(),
            conc,
            n: 100,
            ok: 100,
            failed: 0,
            errors: Errors::default(),
            rate,
            p50: Some(rate / 10.0),
            p99: Some(rate),
            max: None,
            server_cpu_us: Some(10.0),
            load_cores: None,
        }
    }

    #[test]
    fn median_of_odd_and_even_counts_and_nothing() {
        assert_eq!(median([3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median([4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median([f64::NAN, 5.0]), Some(5.0));
        assert_eq!(median(std::iter::empty()), None);
    }

    #[test]
    fn ratios_are_paired_within_a_repeat_not_medians_of_medians() {
        // The machine was twice as fast in repeat 2; the server is 1.1× the reference in
        // every repeat. Paired: 1.1. Dividing the medians would mislead.
        let rows = vec![
            row(1, "ref", 16, 100.0),
            row(1, "s", 16, 110.0),
            row(2, "ref", 16, 200.0),
            row(2, "s", 16, 220.0),
            row(3, "ref", 16, 150.0),
            row(3, "s", 16, 165.0),
            // A repeat where the reference did not run does not count.
            row(4, "s", 16, 1000.0),
        ];
        let r = paired_ratio(&rows, "s", "ref", 16).unwrap();
        assert!((r - 1.1).abs() < 1e-9, "{r}");
        assert_eq!(paired_ratio(&rows, "s", "ref", 64), None);
        // A reference with nothing ok cannot divide.
        let zero = vec![row(1, "ref", 1, 0.0), row(1, "s", 1, 5.0)];
        assert_eq!(paired_ratio(&zero, "s", "ref", 1), None);
    }

    #[test]
    fn a_row_reads_back_as_written_and_the_cpu_pairs_like_the_rate() {
        let mut r = row(3, "epoll", 64, 41_234.5);
        r.p50 = None;
        r.server_cpu_us = Some(10.5);
        let back = Row::parse(&r.tsv()).unwrap();
        assert_eq!(back.tsv(), r.tsv());
        assert!(Row::parse(RUNS_HEADER).is_none());
        assert!(Row::parse("1\tepoll\t16").is_none());
        let rows = vec![row(1, "ref", 16, 100.0), {
            let mut s = row(1, "s", 16, 50.0);
            s.server_cpu_us = Some(8.0);
            s
        }];
        let cpu = paired(&rows, "s", "ref", 16, |r| r.server_cpu_us).unwrap();
        assert!((cpu - 0.8).abs() < 1e-9, "{cpu}");
        assert_eq!(
            paired(&rows, "s", "ref", 16, |r| r.max),
            None,
            "no figure, no ratio"
        );
    }

    #[test]
    fn cells_follow_the_server_order_then_concurrency() {
        let rows = vec![
            row(1, "b", 64, 30.0),
            row(1, "a", 64, 10.0),
            row(1, "a", 1, 20.0),
            row(2, "a", 1, 40.0),
            row(2, "b", 1, 60.0),
        ];
        let cells = cells(&rows, &["b", "a"], &["a"]);
        let keys: Vec<_> = cells.iter().map(|c| (c.server.as_str(), c.conc)).collect();
        assert_eq!(keys, [("b", 1), ("b", 64), ("a", 1), ("a", 64)]);
        let a1 = &cells[2];
        assert_eq!((a1.rate, a1.rate_min, a1.rate_max), (30.0, 20.0, 40.0));
        assert_eq!(a1.ratios, [Some(1.0)]);
        assert_eq!(
            cells[0].ratios,
            [Some(1.5)],
            "b over a in repeat 2, the only one with both"
        );
        let table = load_table(&cells, &["/a"]);
        assert!(table.starts_with("| server | C | conn/s | [min–max] | /a | p50 µs |"));
        assert!(
            table.contains("| a | 1 | 30 | 20–40 | 1.00 | 3 | 30 | 0 | 10.00 | 1.00 | - |"),
            "{table}"
        );
        assert_eq!(
            cells[0].cpu_ratios,
            [Some(1.0)],
            "CPU per connection, paired as the rate"
        );
        // Every line has as many cells as the header.
        let bars = |l: &str| l.matches('|').count();
        let first = table.lines().next().unwrap();
        assert!(table.lines().all(|l| bars(l) == bars(first)));
    }

    #[test]
    fn numbers_are_shown_with_thousands_separators() {
        assert_eq!(thousands(Some(1_234_567.4)), "1,234,567");
        assert_eq!(thousands(Some(999.6)), "1,000");
        assert_eq!(thousands(Some(12.0)), "12");
        assert_eq!(thousands(None), "-");
    }

    #[test]
    fn start_up_and_idle_tables() {
        let st = vec![
            Startup {
                server: "ref".into(),
                samples_ms: vec![1.0, 2.0, 3.0],
                tries: 3,
            },
            Startup {
                server: "s".into(),
                samples_ms: vec![3.0, 3.0],
                tries: 3,
            },
        ];
        let t = startup_table(&st, "ref");
        assert!(t.contains("| s | 3.00 | 3.00 | 3.00 | 2/3 | 1.50 |"), "{t}");
        let idle = Idle {
            server: "s".into(),
            held: 1000,
            pss_before_kib: 1000,
            pss_held_kib: 1500,
        };
        assert_eq!(idle.bytes_per_conn(), Some(512.0));
        assert!(idle_table(&[idle]).contains("| s | 1000 | 1,000 | 1,500 | 512 |"));
    }
}
