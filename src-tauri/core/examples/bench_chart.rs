//! Times `chart::render_svg` on a day of 5 s points (17,280) and on 20,000 points.
//! Run with `cargo run --release -p flightdeck-core --example bench_chart`.

use std::time::Instant;

use flightdeck_core::chart::{ChartSpec, render_svg};
use flightdeck_core::series::{Point, Unit};

fn main() -> Result<(), flightdeck_core::Error> {
    for n in [17_280usize, 20_000] {
        let points: Vec<Point> = (0..n)
            .map(|i| Point {
                t_ms: 1_700_000_000_000 + i as i64 * 5000,
                v: ((i as f64) / 40.0).sin().abs() * 25.0 + (i % 13) as f64,
            })
            .collect();
        let spec = ChartSpec {
            threshold: Some(30.0),
            ..ChartSpec::new("Latency p99", Unit::Seconds)
        };
        render_svg(&points, &spec)?;
        let runs = 50;
        let mut times = Vec::with_capacity(runs);
        let mut bytes = 0;
        for _ in 0..runs {
            let t = Instant::now();
            bytes = render_svg(&points, &spec)?.len();
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "{n} points: median {:?}, p95 {:?}, max {:?}, {bytes} bytes of SVG",
            times[runs / 2],
            times[runs * 95 / 100],
            times[runs - 1]
        );
    }
    Ok(())
}
