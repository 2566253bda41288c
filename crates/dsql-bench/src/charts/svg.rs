//! A tiny SVG writer: elements appended to a string, every text escaped,
//! every number finite.

use std::fmt::Write as _;

/// Fonts a browser or librsvg finds on most systems.
const FONT_FAMILY: &str = "Helvetica, Arial, 'DejaVu Sans', sans-serif";

/// Escapes `text` for XML content and attribute values. Control
/// characters, which XML 1.0 does not allow, become spaces.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A coordinate or length, to a tenth: 0 for NaN or infinity, so that no
/// value can make the document invalid.
pub(crate) fn num(x: f64) -> String {
    if !x.is_finite() {
        return "0".to_owned();
    }
    let tenths = (x * 10.0).round();
    if tenths % 10.0 == 0.0 {
        format!("{}", (tenths / 10.0) as i64)
    } else {
        format!("{:.1}", tenths / 10.0)
    }
}

/// The width `text` takes at `size` px, estimated (a sans-serif glyph is
/// about 0.6 em wide on average; wide enough for DejaVu Sans).
pub(crate) fn text_width(text: &str, size: f64) -> f64 {
    text.chars().count() as f64 * size * 0.6
}

/// Where a text's `x` is.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Anchor {
    Start,
    Middle,
    End,
}

/// How a text looks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Font {
    pub(crate) size: f64,
    pub(crate) bold: bool,
    pub(crate) fill: &'static str,
    pub(crate) anchor: Anchor,
}

impl Font {
    pub(crate) const fn new(size: f64, fill: &'static str, anchor: Anchor) -> Self {
        Self {
            size,
            bold: false,
            fill,
            anchor,
        }
    }

    pub(crate) const fn bold(self) -> Self {
        Self { bold: true, ..self }
    }
}

/// A stroke: colour, width and an optional dash pattern.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stroke {
    pub(crate) colour: &'static str,
    pub(crate) width: f64,
    pub(crate) dash: Option<&'static str>,
}

impl Stroke {
    pub(crate) const fn new(colour: &'static str, width: f64) -> Self {
        Self {
            colour,
            width,
            dash: None,
        }
    }

    pub(crate) const fn dashed(self, dash: &'static str) -> Self {
        Self {
            dash: Some(dash),
            ..self
        }
    }

    fn attributes(&self) -> String {
        let mut out = format!(
            r#"stroke="{}" stroke-width="{}""#,
            escape(self.colour),
            num(self.width)
        );
        if let Some(dash) = self.dash {
            let _ = write!(out, r#" stroke-dasharray="{}""#, escape(dash));
        }
        out
    }
}

/// An SVG document being written.
#[derive(Debug)]
pub(crate) struct Svg {
    out: String,
}

impl Svg {
    /// A `width` × `height` document on a white ground (readable on a dark
    /// page too), titled `title` for screen readers and tooltips.
    pub(crate) fn new(width: f64, height: f64, title: &str) -> Self {
        let (w, h) = (num(width), num(height));
        let title = escape(title);
        let mut out = String::new();
        let _ = writeln!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{title}" font-family="{FONT_FAMILY}">"#
        );
        let _ = writeln!(out, "<title>{title}</title>");
        let _ = writeln!(
            out,
            r##"<rect x="0.5" y="0.5" width="{}" height="{}" rx="6" fill="#ffffff" stroke="#d0d7de"/>"##,
            num(width - 1.0),
            num(height - 1.0)
        );
        Self { out }
    }

    /// A filled rectangle, with a tooltip if `tip` is given.
    pub(crate) fn rect(&mut self, x: f64, y: f64, width: f64, height: f64, fill: &str, tip: Option<&str>) {
        let _ = write!(
            self.out,
            r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}""#,
            num(x),
            num(y),
            num(width.max(0.0)),
            num(height.max(0.0)),
            escape(fill)
        );
        self.close("rect", tip);
    }

    pub(crate) fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), stroke: Stroke) {
        let _ = writeln!(
            self.out,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" {}/>"#,
            num(x1),
            num(y1),
            num(x2),
            num(y2),
            stroke.attributes()
        );
    }

    /// An open line through `points`; nothing for fewer than two.
    pub(crate) fn polyline(&mut self, points: &[(f64, f64)], stroke: Stroke) {
        if points.len() < 2 {
            return;
        }
        let points: Vec<String> = points
            .iter()
            .map(|&(x, y)| format!("{},{}", num(x), num(y)))
            .collect();
        let _ = writeln!(
            self.out,
            r#"<polyline points="{}" fill="none" {} stroke-linejoin="round" stroke-linecap="round"/>"#,
            points.join(" "),
            stroke.attributes()
        );
    }

    /// A dot with a white rim, with a tooltip if `tip` is given.
    pub(crate) fn dot(&mut self, (x, y): (f64, f64), radius: f64, fill: &str, tip: Option<&str>) {
        let _ = write!(
            self.out,
            r##"<circle cx="{}" cy="{}" r="{}" fill="{}" stroke="#ffffff" stroke-width="1""##,
            num(x),
            num(y),
            num(radius),
            escape(fill)
        );
        self.close("circle", tip);
    }

    pub(crate) fn text(&mut self, (x, y): (f64, f64), font: Font, content: &str) {
        self.text_rotated((x, y), 0.0, font, content);
    }

    /// A text turned by `degrees` (clockwise) about its anchor point.
    pub(crate) fn text_rotated(&mut self, (x, y): (f64, f64), degrees: f64, font: Font, content: &str) {
        let anchor = match font.anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        let _ = write!(
            self.out,
            r#"<text x="{}" y="{}" font-size="{}" fill="{}" text-anchor="{anchor}""#,
            num(x),
            num(y),
            num(font.size),
            escape(font.fill)
        );
        if font.bold {
            self.out.push_str(r#" font-weight="bold""#);
        }
        if degrees != 0.0 {
            let _ = write!(
                self.out,
                r#" transform="rotate({} {} {})""#,
                num(degrees),
                num(x),
                num(y)
            );
        }
        let _ = writeln!(self.out, ">{}</text>", escape(content));
    }

    /// The document, closed.
    pub(crate) fn finish(mut self) -> String {
        self.out.push_str("</svg>\n");
        self.out
    }

    /// Ends the `element` begun by `rect` or `dot`: empty, or holding a
    /// `<title>` (a tooltip in browsers).
    fn close(&mut self, element: &str, tip: Option<&str>) {
        match tip {
            Some(tip) => {
                let _ = writeln!(self.out, "><title>{}</title></{element}>", escape(tip));
            }
            None => self.out.push_str("/>\n"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(
            escape(r#"a & <b> "c" 'd'"#),
            "a &amp; &lt;b&gt; &quot;c&quot; &#39;d&#39;"
        );
        assert_eq!(escape("a\u{0}b\nc"), "a b c");
    }

    #[test]
    fn numbers_are_finite_and_short() {
        assert_eq!(num(f64::NAN), "0");
        assert_eq!(num(f64::INFINITY), "0");
        assert_eq!(num(12.0), "12");
        assert_eq!(num(12.04), "12");
        assert_eq!(num(12.25), "12.3");
        assert_eq!(num(-0.01), "0");
    }

    #[test]
    fn a_tooltip_closes_its_own_element() {
        let mut svg = Svg::new(10.0, 10.0, "t");
        svg.rect(0.0, 0.0, 1.0, 1.0, "#000", Some("a < b"));
        svg.dot((1.0, 1.0), 2.0, "#000", Some("x"));
        let out = svg.finish();
        assert!(out.contains("<title>a &lt; b</title></rect>"));
        assert!(out.contains("<title>x</title></circle>"));
    }
}
