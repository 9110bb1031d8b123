//! Line charts of a series as SVG strings (plotters): time axis, value axis in the metric's
//! unit, an optional threshold line. Long series are reduced to min/max per pixel column
//! first, so drawing cost depends on the width, not on the number of points.

use plotters::prelude::*;
use plotters::series::DashedLineSeries;

use crate::error::{Error, Result};
use crate::series::{Point, Unit, downsample_min_max};

/// What to draw and how big.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    pub title: String,
    pub unit: Unit,
    pub width: u32,
    pub height: u32,
    /// A horizontal line (e.g. the alert threshold), in the series' unit.
    pub threshold: Option<f64>,
    /// The time span to show, unix ms; `None` fits the points.
    pub range_ms: Option<(i64, i64)>,
    /// Offset of the viewer's local time from UTC, for the time labels.
    pub utc_offset_secs: i32,
    pub dark: bool,
}

impl ChartSpec {
    pub fn new(title: impl Into<String>, unit: Unit) -> Self {
        Self {
            title: title.into(),
            unit,
            width: 640,
            height: 240,
            threshold: None,
            range_ms: None,
            utc_offset_secs: 0,
            dark: false,
        }
    }
}

struct Palette {
    background: RGBColor,
    text: RGBColor,
    grid: RGBColor,
    line: RGBColor,
    threshold: RGBColor,
}

fn palette(dark: bool) -> Palette {
    if dark {
        Palette {
            background: RGBColor(0x1e, 0x1f, 0x24),
            text: RGBColor(0xd8, 0xda, 0xe0),
            grid: RGBColor(0x3a, 0x3c, 0x44),
            line: RGBColor(0x6c, 0xb4, 0xff),
            threshold: RGBColor(0xff, 0x6b, 0x6b),
        }
    } else {
        Palette {
            background: RGBColor(0xff, 0xff, 0xff),
            text: RGBColor(0x22, 0x24, 0x2a),
            grid: RGBColor(0xe4, 0xe6, 0xeb),
            line: RGBColor(0x1f, 0x6f, 0xd1),
            threshold: RGBColor(0xc9, 0x2a, 0x2a),
        }
    }
}

/// Renders `points` (time order) as an SVG document.
pub fn render_svg(points: &[Point], spec: &ChartSpec) -> Result<String> {
    if !(64..=8192).contains(&spec.width) || !(48..=8192).contains(&spec.height) {
        return Err(Error::invalid(format!(
            "a chart must be 64-8192 px wide and 48-8192 px high, not {}×{}",
            spec.width, spec.height
        )));
    }
    let plot_columns = spec.width.saturating_sub(70) as usize;
    let finite: Vec<Point> = points.iter().copied().filter(|p| p.v.is_finite()).collect();
    let drawn = downsample_min_max(&finite, plot_columns.max(1));
    let (x0, x1) = x_range(&drawn, spec.range_ms);
    let (y0, y1) = y_range(&drawn, spec.threshold);
    let colors = palette(spec.dark);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (spec.width, spec.height)).into_drawing_area();
        draw(&root, &drawn, spec, &colors, (x0, x1), (y0, y1))
            .map_err(|e| Error::invalid(format!("the chart could not be drawn: {e}")))?;
        root.present()
            .map_err(|e| Error::invalid(format!("the chart could not be drawn: {e}")))?;
    }
    // How many points the chart draws, on its root element: what a test (or a reader of
    // the DOM) checks to tell a chart with live data from an empty one.
    if let Some(rest) = svg.strip_prefix("<svg ") {
        svg = format!("<svg data-points=\"{}\" {rest}", drawn.len());
    }
    Ok(svg)
}

type DrawResult = std::result::Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    points: &[Point],
    spec: &ChartSpec,
    colors: &Palette,
    (x0, x1): (i64, i64),
    (y0, y1): (f64, f64),
) -> DrawResult {
    root.fill(&colors.background)?;
    let text = |size: u32| ("sans-serif", size).into_font().color(&colors.text);
    let mut chart = ChartBuilder::on(root)
        .caption(&spec.title, text(14))
        .margin(8)
        .x_label_area_size(24)
        .y_label_area_size(62)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let offset = spec.utc_offset_secs;
    let span = x1 - x0;
    let x_fmt = move |t: &i64| time_label(*t, offset, span);
    let unit = spec.unit;
    let y_fmt = move |v: &f64| unit.format(*v);
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .bold_line_style(colors.grid)
        .axis_style(colors.text)
        .label_style(text(11))
        .x_labels(6)
        .y_labels(5)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .draw()?;
    if points.is_empty() {
        root.draw(&Text::new(
            "no data yet",
            (
                (spec.width / 2).saturating_sub(36) as i32,
                (spec.height / 2) as i32,
            ),
            text(13),
        ))?;
    } else if points.len() == 1 {
        chart.draw_series(std::iter::once(Circle::new(
            (points[0].t_ms, points[0].v),
            3,
            colors.line.filled(),
        )))?;
    } else {
        chart.draw_series(LineSeries::new(
            points.iter().map(|p| (p.t_ms, p.v)),
            colors.line.stroke_width(2),
        ))?;
    }
    if let Some(th) = spec.threshold.filter(|t| t.is_finite()) {
        chart.draw_series(DashedLineSeries::new(
            [(x0, th), (x1, th)],
            6,
            4,
            colors.threshold.stroke_width(1),
        ))?;
    }
    Ok(())
}

fn x_range(points: &[Point], fixed: Option<(i64, i64)>) -> (i64, i64) {
    if let Some((a, b)) = fixed
        && b > a
    {
        return (a, b);
    }
    match (points.first(), points.last()) {
        (Some(a), Some(b)) if b.t_ms > a.t_ms => (a.t_ms, b.t_ms),
        (Some(a), _) => (a.t_ms - 60_000, a.t_ms + 60_000),
        _ => (0, 300_000),
    }
}

fn y_range(points: &[Point], threshold: Option<f64>) -> (f64, f64) {
    let values = points
        .iter()
        .map(|p| p.v)
        .chain(threshold.filter(|t| t.is_finite()));
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    // Rates, latencies and counts start at zero; anything that went negative keeps room.
    let lo = lo.min(0.0);
    if hi <= lo {
        return (lo, lo + hi.abs().max(1.0));
    }
    (lo, hi + (hi - lo) * 0.08)
}

/// `HH:MM` for spans up to a day, with seconds for spans under ten minutes.
fn time_label(t_ms: i64, offset_secs: i32, span_ms: i64) -> String {
    let Some(t) = chrono::DateTime::from_timestamp_millis(t_ms) else {
        return String::new();
    };
    let Some(offset) = chrono::FixedOffset::east_opt(offset_secs) else {
        return String::new();
    };
    let local = t.with_timezone(&offset);
    if span_ms < 10 * 60_000 {
        local.format("%H:%M:%S").to_string()
    } else {
        local.format("%H:%M").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(n: usize, step_ms: i64) -> Vec<Point> {
        (0..n)
            .map(|i| Point {
                t_ms: 1_700_000_000_000 + i as i64 * step_ms,
                v: ((i as f64) / 50.0).sin() * 10.0 + 12.0,
            })
            .collect()
    }

    fn spec() -> ChartSpec {
        ChartSpec {
            threshold: Some(30.0),
            ..ChartSpec::new("Latency p99", Unit::Seconds)
        }
    }

    #[test]
    fn renders_empty_one_point_and_long_series() {
        let empty = render_svg(&[], &spec()).unwrap();
        assert!(empty.starts_with("<svg") && empty.trim_end().ends_with("</svg>"));
        assert!(empty.contains("no data yet"));
        assert!(empty.contains("Latency p99"));
        assert!(
            empty.starts_with("<svg data-points=\"0\" "),
            "{}",
            &empty[..60]
        );

        let one = render_svg(&points(1, 5000), &spec()).unwrap();
        assert!(one.contains("<circle"), "one point is a dot");
        assert!(one.starts_with("<svg data-points=\"1\" "));
        assert!(!one.contains("no data yet"));

        let many = render_svg(&points(20_000, 5000), &spec()).unwrap();
        assert!(many.contains("<polyline"), "a line");
        assert!(many.len() < 200_000, "downsampled: {} bytes", many.len());
        // The unit is on the axis labels and the threshold is drawn in its colour.
        assert!(many.contains(" s\n"), "unit labels");
        assert!(many.contains("#C92A2A"), "threshold colour");
    }

    #[test]
    fn odd_values_and_sizes() {
        let mut p = points(100, 1000);
        p[10].v = f64::NAN;
        p[20].v = f64::INFINITY;
        let svg = render_svg(&p, &ChartSpec::new("Error rate", Unit::Ratio)).unwrap();
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        let flat = vec![Point { t_ms: 0, v: 0.0 }, Point { t_ms: 1000, v: 0.0 }];
        assert!(render_svg(&flat, &ChartSpec::new("Queue", Unit::Count)).is_ok());
        let tiny = ChartSpec {
            width: 10,
            ..ChartSpec::new("x", Unit::Count)
        };
        assert_eq!(
            render_svg(&flat, &tiny).unwrap_err().code().as_str(),
            "invalid"
        );
        let dark = ChartSpec {
            dark: true,
            ..spec()
        };
        assert!(render_svg(&flat, &dark).unwrap().contains("#1E1F24"));
    }

    #[test]
    fn ranges_and_labels() {
        assert_eq!(y_range(&[], None), (0.0, 1.0));
        assert_eq!(y_range(&[Point { t_ms: 0, v: 5.0 }], None), (0.0, 5.4));
        assert_eq!(y_range(&[Point { t_ms: 0, v: 0.0 }], None), (0.0, 1.0));
        assert_eq!(
            y_range(&[Point { t_ms: 0, v: 5.0 }], Some(30.0)),
            (0.0, 32.4)
        );
        assert_eq!(
            x_range(
                &[Point {
                    t_ms: 100_000,
                    v: 1.0
                }],
                None
            ),
            (40_000, 160_000)
        );
        assert_eq!(x_range(&[], Some((5, 10))), (5, 10));
        // 2023-11-14T22:13:20Z, shown in UTC+2.
        assert_eq!(time_label(1_700_000_000_000, 7200, 3_600_000), "00:13");
        assert_eq!(time_label(1_700_000_000_000, 0, 60_000), "22:13:20");
    }

    /// 24 h at 5 s is 17,280 points; release builds take a few ms (examples/bench_chart.rs).
    #[test]
    fn a_day_of_points_renders_quickly() {
        let p = points(17_280, 5000);
        let start = std::time::Instant::now();
        let svg = render_svg(&p, &spec()).unwrap();
        let took = start.elapsed();
        assert!(svg.len() > 1000);
        assert!(took < std::time::Duration::from_millis(500), "{took:?}");
    }
}
