//! What every chart shares: its size, title, plot area, colours and legend.

use super::svg::{Anchor, Font, Stroke, Svg, text_width};

/// Width of every chart.
pub(crate) const WIDTH: f64 = 720.0;
/// The plot area: left of it the y labels, below it the x labels.
pub(crate) const PLOT_LEFT: f64 = 78.0;
pub(crate) const PLOT_TOP: f64 = 72.0;
pub(crate) const PLOT_WIDTH: f64 = WIDTH - PLOT_LEFT - 24.0;
pub(crate) const PLOT_HEIGHT: f64 = 260.0;
pub(crate) const PLOT_BOTTOM: f64 = PLOT_TOP + PLOT_HEIGHT;
/// Where the legend begins.
const LEGEND_TOP: f64 = PLOT_BOTTOM + 68.0;
const LEGEND_ROW: f64 = 20.0;
const LEGEND_SWATCH: f64 = 26.0;

pub(crate) const INK: &str = "#1f2328";
pub(crate) const MUTED: &str = "#57606a";
pub(crate) const GRID: &str = "#d8dee4";
pub(crate) const GRID_MINOR: &str = "#eef1f4";

pub(crate) const TITLE: Font = Font::new(16.0, INK, Anchor::Start).bold();
pub(crate) const SUBTITLE: Font = Font::new(12.0, MUTED, Anchor::Start);
pub(crate) const TICK: Font = Font::new(11.0, MUTED, Anchor::End);
pub(crate) const AXIS_TITLE: Font = Font::new(12.0, INK, Anchor::Middle);
const LEGEND: Font = Font::new(12.0, INK, Anchor::Start);

/// Colours told apart with colour-blindness too (Okabe and Ito's, then
/// Tableau's), dark enough on white; past the end they repeat, dashed.
const PALETTE: [&str; 10] = [
    "#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#332288", "#999933", "#882255",
    "#7f7f7f",
];

/// A client as charts draw it.
#[derive(Clone, Debug)]
pub(crate) struct Series<'a> {
    pub(crate) name: &'a str,
    pub(crate) colour: &'static str,
    /// A dash pattern once the palette has gone round.
    pub(crate) dash: Option<&'static str>,
}

impl<'a> Series<'a> {
    /// The client at `index` of every client of a run, so that a client
    /// keeps its colour from chart to chart.
    pub(crate) fn new(name: &'a str, index: usize) -> Self {
        Self {
            name,
            colour: PALETTE[index % PALETTE.len()],
            dash: (index >= PALETTE.len()).then_some("6 3"),
        }
    }

    pub(crate) fn stroke(&self, width: f64) -> Stroke {
        let stroke = Stroke::new(self.colour, width);
        self.dash.map_or(stroke, |dash| stroke.dashed(dash))
    }
}

/// How the legend shows a client.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Key {
    Bar,
    Line,
}

/// The height of a chart whose legend lists `series`.
pub(crate) fn height(series: &[Series<'_>]) -> f64 {
    let (_, rows) = legend_grid(series);
    LEGEND_TOP + rows as f64 * LEGEND_ROW + 8.0
}

/// A document of the chart's size, its title and subtitle written.
pub(crate) fn start(title: &str, subtitle: &str, series: &[Series<'_>]) -> Svg {
    let mut svg = Svg::new(WIDTH, height(series), title);
    svg.text((20.0, 30.0), TITLE, &fit(title, WIDTH - 40.0, TITLE.size));
    svg.text(
        (20.0, 50.0),
        SUBTITLE,
        &fit(subtitle, WIDTH - 40.0, SUBTITLE.size),
    );
    svg
}

/// `text`, cut with an ellipsis where it would be wider than `width`.
pub(crate) fn fit(text: &str, width: f64, size: f64) -> String {
    if text_width(text, size) <= width {
        return text.to_owned();
    }
    let keep = ((width / (size * 0.6)) as usize).saturating_sub(1);
    let mut out: String = text.chars().take(keep).collect();
    out.push('…');
    out
}

/// The y axis' title, turned to run up the left edge.
pub(crate) fn y_title(svg: &mut Svg, title: &str) {
    let middle = PLOT_TOP + PLOT_HEIGHT / 2.0;
    svg.text_rotated((22.0, middle), -90.0, AXIS_TITLE, title);
}

/// The x axis' title, below its labels.
pub(crate) fn x_title(svg: &mut Svg, title: &str) {
    svg.text(
        (PLOT_LEFT + PLOT_WIDTH / 2.0, PLOT_BOTTOM + 40.0),
        AXIS_TITLE,
        title,
    );
}

/// The plot area's left and bottom edges.
pub(crate) fn axes(svg: &mut Svg) {
    let ink = Stroke::new(MUTED, 1.0);
    svg.line((PLOT_LEFT, PLOT_TOP), (PLOT_LEFT, PLOT_BOTTOM), ink);
    svg.line(
        (PLOT_LEFT, PLOT_BOTTOM),
        (PLOT_LEFT + PLOT_WIDTH, PLOT_BOTTOM),
        ink,
    );
}

/// A note in the middle of an empty plot.
pub(crate) fn no_data(svg: &mut Svg, note: &str) {
    let font = Font::new(13.0, MUTED, Anchor::Middle);
    svg.text(
        (PLOT_LEFT + PLOT_WIDTH / 2.0, PLOT_TOP + PLOT_HEIGHT / 2.0),
        font,
        note,
    );
}

/// Columns and rows of the legend: as many equal columns as the longest
/// name allows.
fn legend_grid(series: &[Series<'_>]) -> (usize, usize) {
    if series.is_empty() {
        return (1, 0);
    }
    let widest = series
        .iter()
        .map(|s| text_width(s.name, LEGEND.size))
        .fold(0.0, f64::max);
    let column = LEGEND_SWATCH + widest + 24.0;
    let columns = ((WIDTH - 40.0) / column).floor().clamp(1.0, series.len() as f64) as usize;
    (columns, series.len().div_ceil(columns))
}

/// The legend, below the x axis: a swatch and the name of each client,
/// column by column.
pub(crate) fn legend(svg: &mut Svg, series: &[Series<'_>], key: Key) {
    let (columns, rows) = legend_grid(series);
    let column_width = (WIDTH - 40.0) / columns as f64;
    for (i, s) in series.iter().enumerate() {
        let (column, row) = (i / rows.max(1), i % rows.max(1));
        let x = 20.0 + column as f64 * column_width;
        let y = LEGEND_TOP + row as f64 * LEGEND_ROW;
        match key {
            Key::Bar => svg.rect(x + 4.0, y - 10.0, 16.0, 12.0, s.colour, None),
            Key::Line => {
                svg.line((x, y - 4.0), (x + 22.0, y - 4.0), s.stroke(2.5));
                svg.dot((x + 11.0, y - 4.0), 3.5, s.colour, None);
            }
        }
        let name = fit(s.name, column_width - LEGEND_SWATCH - 8.0, LEGEND.size);
        svg.text((x + LEGEND_SWATCH + 4.0, y), LEGEND, &name);
    }
}

/// Text colour that reads on `fill` (a `#rrggbb` colour): dark on light
/// fills, white on dark ones.
pub(crate) fn ink_on(fill: &str) -> &'static str {
    let channel = |at: usize| {
        fill.get(at..at + 2)
            .and_then(|hex| u8::from_str_radix(hex, 16).ok())
            .map_or(0.0, |c| f64::from(c) / 255.0)
    };
    let luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
    if luminance > 0.5 { INK } else { "#ffffff" }
}
