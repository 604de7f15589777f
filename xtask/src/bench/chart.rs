//! The benchmark's pictures, as SVG (plotters' SVG backend, no font library: the text is
//! SVG text, drawn by whatever shows the file): connections per second and p99 latency
//! against concurrency, one line per server; each server's ratio to a reference with its
//! spread over the repeats; and memory per idle connection.

use plotters::coord::Shift;
use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::summary::{Cell, Idle};

/// Width and height of every chart, pixels.
const SIZE: (u32, u32) = (960, 540);
/// Width of the legend beside a line chart, pixels.
const LEGEND: u32 = 200;
const FONT: &str = "sans-serif";

/// Twelve colours that stay apart from each other (after Tableau's and ColorBrewer's).
const COLOURS: [RGBColor; 12] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 0),
    RGBColor(255, 187, 120),
];

fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

/// One server's line: (concurrency, value) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The server's name.
    pub name: String,
    /// Its points, by concurrency.
    pub points: Vec<(u32, f64)>,
}

/// One series per server, in the cells' order, of `value` (cells without one are left
/// out, and so is a server with no point at all).
pub fn series(cells: &[Cell], value: impl Fn(&Cell) -> Option<f64>) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for c in cells {
        let Some(v) = value(c) else { continue };
        match out.last_mut() {
            Some(s) if s.name == c.server => s.points.push((c.conc, v)),
            _ => out.push(Series {
                name: c.server.clone(),
                points: vec![(c.conc, v)],
            }),
        }
    }
    out
}

/// What drawing a chart can fail with.
pub type Error = Box<dyn std::error::Error>;

/// One server's ratios to a reference: at each concurrency the median over the repeats
/// and the least and most of the per-repeat ratios.
#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    /// The server's name.
    pub name: String,
    /// (concurrency, median, least, most).
    pub points: Vec<(u32, f64, f64, f64)>,
}

/// Each server's ratio to the reference (a flat line at 1, drawn dashed), against
/// concurrency: a line through the medians and a whisker from the least to the most
/// repeat at each point, so that a difference smaller than the spread reads as one.
pub fn ratios(title: &str, y_desc: &str, spreads: &[Spread]) -> Result<String, Error> {
    let mut concs: Vec<u32> = spreads
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    concs.sort_unstable();
    concs.dedup();
    let hi = spreads
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.3))
        .fold(1.0, f64::max);
    if concs.is_empty() || !hi.is_finite() {
        return Err("nothing to draw".into());
    }
    let x_lo = f64::from(concs[0]) / 1.5;
    let x_hi = f64::from(concs[concs.len() - 1]) * 1.5;
    let ticks: Vec<f64> = concs.iter().map(|&c| f64::from(c)).collect();
    let lines: Vec<Series> = spreads
        .iter()
        .map(|s| Series {
            name: s.name.clone(),
            points: s.points.iter().map(|p| (p.0, p.1)).collect(),
        })
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let (area, legend) = root.split_horizontally(SIZE.0 - LEGEND);
        let x = (x_lo..x_hi).log_scale().with_key_points(ticks);
        let mut chart = ChartBuilder::on(&area)
            .caption(title, (FONT, 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(72)
            .build_cartesian_2d(x, 0.0..hi * 1.08)?;
        chart
            .configure_mesh()
            .x_desc("in flight (log scale)")
            .y_desc(y_desc)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.2}"))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .draw()?;
        chart.draw_series(DashedLineSeries::new(
            vec![(x_lo, 1.0), (x_hi, 1.0)],
            6,
            4,
            BLACK.stroke_width(1),
        ))?;
        for (i, s) in spreads.iter().enumerate() {
            let c = colour(i);
            // Nudged sideways a little per server, so that whiskers at one point do not
            // hide each other.
            let nudge = 1.0 + 0.025 * (i as f64 - spreads.len() as f64 / 2.0);
            let pts: Vec<(f64, f64)> = s.points.iter().map(|p| (f64::from(p.0) * nudge, p.1)).collect();
            chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))?;
            chart.draw_series(s.points.iter().map(|p| {
                let x = f64::from(p.0) * nudge;
                PathElement::new(vec![(x, p.2), (x, p.3)], c.stroke_width(1))
            }))?;
        }
        legend_box(&legend, &lines)?;
        root.present()?;
    }
    Ok(svg)
}

/// A line chart of `series` against concurrency (a log axis with a tick at each
/// concurrency measured); the y axis is logarithmic when `log_y`.
pub fn lines(title: &str, y_desc: &str, series: &[Series], log_y: bool) -> Result<String, Error> {
    let mut concs: Vec<u32> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    concs.sort_unstable();
    concs.dedup();
    let values = || series.iter().flat_map(|s| s.points.iter().map(|p| p.1));
    let (lo, hi) = (
        values().fold(f64::INFINITY, f64::min),
        values().fold(0.0, f64::max),
    );
    if concs.is_empty() || !hi.is_finite() || hi <= 0.0 {
        return Err("nothing to draw".into());
    }
    let x_lo = f64::from(concs[0]) / 1.5;
    let x_hi = f64::from(concs[concs.len() - 1]) * 1.5;
    let ticks: Vec<f64> = concs.iter().map(|&c| f64::from(c)).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let (area, legend) = root.split_horizontally(SIZE.0 - LEGEND);
        let x = (x_lo..x_hi).log_scale().with_key_points(ticks);
        let mut builder = ChartBuilder::on(&area);
        builder
            .caption(title, (FONT, 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(72);
        if log_y {
            let lo = (lo / 2.0).max(1.0);
            plot(&mut builder, x, (lo..hi * 2.0).log_scale(), y_desc, series)?;
        } else {
            plot(&mut builder, x, 0.0..hi * 1.08, y_desc, series)?;
        }
        legend_box(&legend, series)?;
        root.present()?;
    }
    Ok(svg)
}

/// The axes, the grid and a line with a dot at each point per series.
fn plot<Y>(
    builder: &mut ChartBuilder<'_, '_, SVGBackend<'_>>,
    x: WithKeyPoints<LogCoord<f64>>,
    y: Y,
    y_desc: &str,
    series: &[Series],
) -> Result<(), Error>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut chart = builder.build_cartesian_2d(x, y)?;
    chart
        .configure_mesh()
        .x_desc("concurrent connections (log scale)")
        .y_desc(y_desc)
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| short(*v))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .draw()?;
    for (i, s) in series.iter().enumerate() {
        let c = colour(i);
        let pts: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (f64::from(x), y)).collect();
        chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
        chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, c.filled())))?;
    }
    Ok(())
}

/// The names beside a line chart, each with its colour.
fn legend_box(area: &DrawingArea<SVGBackend<'_>, Shift>, series: &[Series]) -> Result<(), Error> {
    for (i, s) in series.iter().enumerate() {
        let y = 60 + 24 * i as i32;
        let c = colour(i);
        area.draw(&PathElement::new(vec![(8, y), (36, y)], c.stroke_width(3)))?;
        area.draw(&Circle::new((22, y), 3, c.filled()))?;
        area.draw(&Text::new(s.name.clone(), (44, y - 7), (FONT, 14).into_font()))?;
    }
    Ok(())
}

/// `12k`, `1.5M`, `800`: axis labels.
fn short(v: f64) -> String {
    if v >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if v >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_string)
}

/// Bytes per idle connection, a horizontal bar per server on a log axis, with the value
/// written at the end of each bar.
pub fn idle_bars(title: &str, rows: &[Idle]) -> Result<String, Error> {
    let bars: Vec<(String, f64)> = rows
        .iter()
        .filter_map(|r| r.bytes_per_conn().map(|b| (r.server.clone(), b.max(1.0))))
        .collect();
    if bars.is_empty() {
        return Err("nothing to draw".into());
    }
    let hi = bars.iter().map(|b| b.1).fold(1.0, f64::max) * 4.0;
    // From the power of ten below half the smallest, so that every bar has a length.
    let lo = 10f64.powf(
        (bars.iter().map(|b| b.1).fold(f64::INFINITY, f64::min) / 2.0)
            .log10()
            .floor(),
    );
    let n = bars.len() as i32;
    // Segment 0 is at the bottom: the first server goes on top.
    let at = |i: usize| n - 1 - i as i32;
    let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let mut svg = String::new();
    {
        let height = 120 + 44 * bars.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (SIZE.0, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 20))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(120)
            .build_cartesian_2d((lo..hi).log_scale(), (0..n - 1).into_segmented())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("bytes of server memory (PSS) per idle connection, log scale")
            .x_label_formatter(&|v| short(*v))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 15))
            .y_labels(bars.len())
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get((n - 1 - *i) as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()?;
        chart.draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
            let mut r = Rectangle::new(
                [
                    (lo, SegmentValue::Exact(at(i))),
                    (*v, SegmentValue::Exact(at(i) + 1)),
                ],
                colour(i).filled(),
            );
            r.set_margin(8, 8, 0, 0);
            r
        }))?;
        let label = TextStyle::from((FONT, 14).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        chart.draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
            Text::new(
                format!(" {v:.0} B"),
                (*v, SegmentValue::CenterOf(at(i))),
                label.clone(),
            )
        }))?;
        root.present()?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(server: &str, conc: u32, rate: f64, p99: Option<f64>) -> Cell {
        Cell {
            server: server.into(),
            conc,
            rate,
            rate_min: rate,
            rate_max: rate,
            ratios: vec![],
            cpu_ratios: vec![],
            p50: None,
            p99,
            failed: 0,
            server_cpu_us: None,
            load_cores: None,
        }
    }

    /// Whether the SVG writes `text` as one text element (plotters puts it on a line of
    /// its own).
    fn has_text(svg: &str, text: &str) -> bool {
        svg.contains(&format!(">\n{text}\n</text>"))
    }

    #[test]
    fn a_series_per_server_in_order_without_missing_points() {
        let cells = [
            cell("a", 1, 10.0, Some(5.0)),
            cell("a", 16, 20.0, None),
            cell("b", 1, 30.0, Some(7.0)),
            cell("c", 1, 40.0, None),
        ];
        let rate = series(&cells, |c| Some(c.rate));
        assert_eq!(rate.len(), 3);
        assert_eq!(rate[0].points, [(1, 10.0), (16, 20.0)]);
        let p99 = series(&cells, |c| c.p99);
        assert_eq!(
            p99,
            [
                Series {
                    name: "a".into(),
                    points: vec![(1, 5.0)]
                },
                Series {
                    name: "b".into(),
                    points: vec![(1, 7.0)]
                }
            ]
        );
    }

    #[test]
    fn a_ratio_chart_names_every_server_and_draws_the_reference_line() {
        let spreads = [
            Spread {
                name: "udp".into(),
                points: vec![(1, 1.1, 1.0, 1.2), (64, 0.5, 0.45, 0.6)],
            },
            Spread {
                name: "c_udp".into(),
                points: vec![(1, 0.9, 0.8, 1.0)],
            },
        ];
        let svg = ratios("CPU per datagram over nginx's", "ratio", &spreads).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("udp") && svg.contains("c_udp"));
        assert!(
            svg.contains("stroke-dasharray") || svg.matches("<polyline").count() >= 3,
            "the line at 1"
        );
        assert!(ratios("t", "y", &[]).is_err());
    }

    #[test]
    fn line_charts_are_svg_with_every_server_named() {
        let cells = [
            cell("c_iterative", 1, 9000.0, Some(150.0)),
            cell("c_iterative", 1024, 3800.0, Some(1_025_000.0)),
            cell("epoll", 1, 10500.0, Some(140.0)),
            cell("epoll", 1024, 35000.0, Some(50000.0)),
        ];
        for (svg, log) in [
            (
                lines("rate", "conn/s", &series(&cells, |c| Some(c.rate)), false),
                false,
            ),
            (lines("p99", "µs", &series(&cells, |c| c.p99), true), true),
        ] {
            let svg = svg.unwrap();
            assert!(svg.starts_with("<svg"), "log {log}");
            assert!(has_text(&svg, "c_iterative") && has_text(&svg, "epoll"));
            assert!(
                has_text(&svg, "1024") && has_text(&svg, "1"),
                "a tick at each concurrency"
            );
        }
        assert!(lines("none", "", &[], false).is_err());
    }

    #[test]
    fn the_idle_chart_names_each_server_and_its_bytes() {
        let rows = [
            Idle {
                server: "c_epoll_1".into(),
                held: 1000,
                pss_before_kib: 1000,
                pss_held_kib: 1047,
            },
            Idle {
                server: "threads".into(),
                held: 1000,
                pss_before_kib: 1000,
                pss_held_kib: 18_600,
            },
        ];
        let svg = idle_bars("idle", &rows).unwrap();
        assert!(has_text(&svg, "c_epoll_1") && has_text(&svg, "threads"));
        assert!(has_text(&svg, " 48 B") && has_text(&svg, " 18022 B"), "{svg}");
        assert_eq!(
            svg.matches("<rect").count(),
            1 + 2,
            "the background and a bar each"
        );
    }

    #[test]
    fn axis_labels_are_short() {
        assert_eq!(short(12_000.0), "12k");
        assert_eq!(short(1_500_000.0), "1.5M");
        assert_eq!(short(800.0), "800");
        assert_eq!(short(2500.0), "2.5k");
    }
}
