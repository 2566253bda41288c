//! The latency distribution of each client at one concurrency: a line per
//! client over its percentiles, on a log scale of milliseconds.

use super::axis::{decades, log_ticks, ms};
use super::layout::{
    self, GRID, GRID_MINOR, Key, PLOT_BOTTOM, PLOT_HEIGHT, PLOT_LEFT, PLOT_WIDTH, Series, TICK,
};
use super::svg::{Anchor, Font, Stroke};
use super::{PERCENTILES, Row};

/// The chart of `rows` (one scenario's, at `tasks` tasks), a line per
/// client of `series`; `scenario` and `pool` go in the title.
pub(crate) fn chart(
    scenario: &str,
    pool: &str,
    tasks: usize,
    rows: &[&Row],
    series: &[Series<'_>],
) -> String {
    let title = format!(
        "Latency — {scenario}, {tasks} concurrent {}",
        if tasks == 1 { "task" } else { "tasks" }
    );
    let subtitle = format!("{pool}; per operation, checkout included, ms on a log scale (lower is better)");
    let mut svg = layout::start(&title, &subtitle, series);

    let percentiles = |client: &str| {
        rows.iter()
            .find(|r| r.client == client && r.tasks == tasks)
            .map(|r| r.percentiles().map(|v| v.filter(|v| v.is_finite() && *v > 0.0)))
    };
    let values: Vec<f64> = series
        .iter()
        .filter_map(|s| percentiles(s.name))
        .flat_map(|p| p.into_iter().flatten())
        .collect();
    let (low, high) = decades(values.iter().copied());
    let span = f64::from(high - low);
    let y = |v: f64| PLOT_BOTTOM - PLOT_HEIGHT * ((v.log10() - f64::from(low)) / span).clamp(0.0, 1.0);
    let label_every_tick = high - low <= 2;
    for tick in log_ticks(low, high) {
        let grid = if tick.decade { GRID } else { GRID_MINOR };
        if tick.value > 10_f64.powi(low) {
            svg.line(
                (PLOT_LEFT, y(tick.value)),
                (PLOT_LEFT + PLOT_WIDTH, y(tick.value)),
                Stroke::new(grid, 1.0),
            );
        }
        if tick.decade || label_every_tick {
            svg.text((PLOT_LEFT - 8.0, y(tick.value) + 4.0), TICK, &tick.label);
        }
    }
    layout::y_title(&mut svg, "milliseconds (log scale)");
    layout::x_title(&mut svg, "percentile of operations");

    let step = PLOT_WIDTH / PERCENTILES.len() as f64;
    let x = |i: usize| PLOT_LEFT + step * (i as f64 + 0.5);
    for (i, name) in PERCENTILES.iter().enumerate() {
        let label = Font::new(12.0, layout::INK, Anchor::Middle);
        svg.text((x(i), PLOT_BOTTOM + 18.0), label, name);
    }
    if values.is_empty() {
        layout::no_data(&mut svg, "no latency recorded");
    }
    for s in series {
        let Some(points) = percentiles(s.name) else {
            continue;
        };
        // A line through each run of consecutive values; a gap breaks it.
        let mut run = Vec::new();
        for (i, value) in points.iter().enumerate() {
            match value {
                Some(v) => run.push((x(i), y(*v))),
                None => svg.polyline(&std::mem::take(&mut run), s.stroke(2.5)),
            }
        }
        svg.polyline(&run, s.stroke(2.5));
        for (i, value) in points.iter().enumerate() {
            if let Some(v) = value {
                let tip = format!("{}, {}: {} ms", s.name, PERCENTILES[i], ms(*v));
                svg.dot((x(i), y(*v)), 4.0, s.colour, Some(&tip));
            }
        }
    }
    layout::axes(&mut svg);
    layout::legend(&mut svg, series, Key::Line);
    svg.finish()
}
