//! The soak's chart: four panels over the run's minutes — push acknowledgement latency, the
//! trip-builder and KPI lags, CPU of fleetd, PostgreSQL and the driver, fleetd's memory and
//! the database's size. Text needs a TrueType font from the system; without one the same
//! panels are drawn without any text (docs/BENCHMARKS.md lists the colours).

use std::path::Path;

use anyhow::{anyhow, Context};
use plotters::prelude::*;
use plotters::style::FontStyle;

use super::series::Sample;

/// Fonts tried for the labels, in order.
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
];

/// Registers the first font found as "sans-serif"; whether one was.
fn load_font() -> bool {
    FONTS.iter().any(|path| {
        let Ok(bytes) = std::fs::read(path) else { return false };
        // plotters keeps fonts for the life of the process
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
    })
}

/// One line of a panel: legend, colour, value of a sample.
type Line = (&'static str, RGBColor, fn(&Sample) -> f64);

/// Draws the chart of `samples` to `path` (PNG); `title` heads it. Returns whether the text
/// could be drawn.
pub fn draw(path: &Path, title: &str, samples: &[Sample]) -> anyhow::Result<bool> {
    let (width, height) = (1400, 1500);
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    let text = render(&mut rgb, (width, height), title, samples)?;
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut png = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    png.set_color(png::ColorType::Rgb);
    png.set_depth(png::BitDepth::Eight);
    let mut png = png.write_header()?;
    png.write_image_data(&rgb)?;
    png.finish()?;
    Ok(text)
}

/// Draws the chart into an RGB buffer of `size`; whether with text.
fn render(
    rgb: &mut [u8],
    size: (u32, u32),
    title: &str,
    samples: &[Sample],
) -> anyhow::Result<bool> {
    let text = load_font();
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing the chart: {e}");
    let root = BitMapBackend::with_buffer(rgb, size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root =
        if text { root.titled(title, ("sans-serif", 26)).map_err(|e| err(&e))? } else { root };
    let panels = root.split_evenly((4, 1));
    let minutes = |s: &Sample| s.t_s / 60.0;
    let specs: [(&str, &str, Vec<Line>, Option<f64>); 4] = [
        (
            "Push acknowledgement latency per 10 s",
            "ms",
            vec![
                ("p50", BLUE, |s| s.ack_p50_ms),
                ("p95", GREEN, |s| s.ack_p95_ms),
                ("p99", RED, |s| s.ack_p99_ms),
            ],
            None,
        ),
        (
            "Lag of derived data, p95 over waiting vehicles (bars: trips 30 s, KPIs 120 s)",
            "s",
            vec![
                ("trip builder", BLUE, |s| s.trip_lag_p95_s),
                ("KPI step", RED, |s| s.kpi_lag_p95_s),
            ],
            Some(30.0),
        ),
        (
            "CPU (cores; bar: fleetd + PostgreSQL below 1)",
            "cores",
            vec![
                ("fleetd", BLUE, |s| s.fleetd_cpu),
                ("PostgreSQL", RED, |s| s.postgres_cpu),
                ("fleetd + PostgreSQL", BLACK, |s| s.fleetd_cpu + s.postgres_cpu),
                ("soak driver", GREEN, |s| s.driver_cpu),
            ],
            Some(1.0),
        ),
        (
            "Memory and database (bar: fleetd RSS 300 MB)",
            "MB",
            vec![("fleetd RSS", BLUE, |s| s.fleetd_rss_mb), ("database size", RED, |s| s.db_mb)],
            Some(300.0),
        ),
    ];
    let x_max = samples.iter().map(minutes).fold(1.0, f64::max);
    for (area, (caption, unit, lines, bar)) in panels.iter().zip(specs) {
        let y_max = samples
            .iter()
            .flat_map(|s| lines.iter().map(move |(_, _, f)| f(s)))
            .chain(bar)
            .fold(1.0, f64::max)
            * 1.1;
        let mut builder = ChartBuilder::on(area);
        builder.margin(12);
        if text {
            builder
                .caption(caption, ("sans-serif", 20))
                .x_label_area_size(35)
                .y_label_area_size(60);
        }
        let mut chart = builder.build_cartesian_2d(0.0..x_max, 0.0..y_max).map_err(|e| err(&e))?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc("minutes").y_desc(unit);
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(|e| err(&e))?;
        if let Some(bar) = bar {
            chart
                .draw_series(LineSeries::new([(0.0, bar), (x_max, bar)], BLACK.mix(0.3)))
                .map_err(|e| err(&e))?;
        }
        for (name, colour, f) in lines {
            let series = chart
                .draw_series(LineSeries::new(
                    samples.iter().map(|s| (minutes(s), f(s))),
                    colour.stroke_width(2),
                ))
                .map_err(|e| err(&e))?;
            if text {
                series.label(name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                });
            }
        }
        if text {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()
                .map_err(|e| err(&e))?;
        }
    }
    root.present().map_err(|e| err(&e))?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_is_written_as_a_png() {
        let samples: Vec<Sample> = (0..30)
            .map(|i| Sample {
                t_s: f64::from(i) * 10.0,
                ack_p95_ms: 20.0 + f64::from(i % 5),
                trip_lag_p95_s: 12.0,
                fleetd_cpu: 0.2,
                postgres_cpu: 0.3,
                fleetd_rss_mb: 80.0,
                db_mb: 40.0 + f64::from(i),
                ..Sample::default()
            })
            .collect();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("soak.png");
        draw(&path, "soak test", &samples).expect("drawn");
        let png = std::fs::read(&path).expect("written");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert!(png.len() > 10_000, "a chart, not an empty image: {} bytes", png.len());
    }
}
