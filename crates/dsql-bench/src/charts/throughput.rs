//! Throughput of each client at each concurrency of one scenario: bars
//! grouped by task count, one colour per client.

use super::Row;
use super::axis::{linear_ticks, thousands, tick_label};
use super::layout::{self, GRID, Key, PLOT_BOTTOM, PLOT_HEIGHT, PLOT_LEFT, PLOT_WIDTH, Series, TICK};
use super::svg::{Anchor, Font, Stroke, text_width};

/// Widest a bar gets, however few clients there are.
const MAX_BAR: f64 = 48.0;

/// The chart of `rows` (one scenario's), a bar per client of `series` at
/// each task count; `scenario` and `pool` go in the title.
pub(crate) fn chart(scenario: &str, pool: &str, rows: &[&Row], series: &[Series<'_>]) -> String {
    let title = format!("Throughput — {scenario}");
    let subtitle = format!("{pool}; successful operations per second (higher is better)");
    let mut svg = layout::start(&title, &subtitle, series);

    let ops = |client: &str, tasks: usize| {
        rows.iter()
            .find(|r| r.client == client && r.tasks == tasks)
            .and_then(|r| r.ops_per_sec)
            .filter(|v| v.is_finite() && *v >= 0.0)
    };
    let mut tasks: Vec<usize> = rows.iter().map(|r| r.tasks).collect();
    tasks.sort_unstable();
    tasks.dedup();
    let highest = tasks
        .iter()
        .flat_map(|&t| series.iter().filter_map(move |s| ops(s.name, t)))
        .fold(0.0, f64::max);

    let ticks = linear_ticks(highest, 5);
    let top = ticks.last().copied().filter(|t| *t > 0.0).unwrap_or(1.0);
    let y = |v: f64| PLOT_BOTTOM - PLOT_HEIGHT * (v / top).clamp(0.0, 1.0);
    for &tick in &ticks {
        if tick > 0.0 {
            svg.line(
                (PLOT_LEFT, y(tick)),
                (PLOT_LEFT + PLOT_WIDTH, y(tick)),
                Stroke::new(GRID, 1.0),
            );
        }
        svg.text((PLOT_LEFT - 8.0, y(tick) + 4.0), TICK, &tick_label(tick));
    }
    layout::y_title(&mut svg, "operations per second");
    layout::x_title(&mut svg, "concurrent tasks");

    if tasks.is_empty() || series.is_empty() {
        layout::no_data(&mut svg, "no results");
    }
    let group = PLOT_WIDTH / tasks.len().max(1) as f64;
    let bar = (group * 0.8 / series.len().max(1) as f64).min(MAX_BAR);
    let label_size = (bar * 0.8 - 2.0).min(10.0);
    for (g, &t) in tasks.iter().enumerate() {
        let centre = PLOT_LEFT + group * (g as f64 + 0.5);
        let left = centre - bar * series.len() as f64 / 2.0;
        for (i, s) in series.iter().enumerate() {
            let Some(value) = ops(s.name, t) else { continue };
            let x = left + bar * i as f64;
            let tip = format!(
                "{}, {t} {}: {} ops/s",
                s.name,
                if t == 1 { "task" } else { "tasks" },
                thousands(value, 0)
            );
            svg.rect(
                x + bar * 0.06,
                y(value),
                bar * 0.88,
                PLOT_BOTTOM - y(value),
                s.colour,
                Some(&tip),
            );
            if label_size >= 7.0 {
                bar_label(
                    &mut svg,
                    (x + bar / 2.0, y(value)),
                    label_size,
                    s.colour,
                    &thousands(value, 0),
                );
            }
        }
        let label = Font::new(12.0, layout::INK, Anchor::Middle);
        svg.text((centre, PLOT_BOTTOM + 18.0), label, &t.to_string());
    }
    layout::axes(&mut svg);
    layout::legend(&mut svg, series, Key::Bar);
    svg.finish()
}

/// A bar's value, written upwards: inside the bar's top if it is tall
/// enough, else just above it.
fn bar_label(
    svg: &mut super::svg::Svg,
    (centre, top): (f64, f64),
    size: f64,
    fill: &'static str,
    text: &str,
) {
    let length = text_width(text, size);
    // Turned text's glyphs stand left of its baseline: centre them.
    let x = centre + size * 0.35;
    if PLOT_BOTTOM - top >= length + 8.0 {
        let font = Font::new(size, layout::ink_on(fill), Anchor::End);
        svg.text_rotated((x, top + 4.0), -90.0, font, text);
    } else {
        let font = Font::new(size, layout::INK, Anchor::Start);
        svg.text_rotated((x, top - 4.0), -90.0, font, text);
    }
}
