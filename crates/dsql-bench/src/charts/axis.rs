//! Axis ticks (linear from zero, and decades for a log scale) and the
//! numbers written on them.

/// Ticks from 0 to at least `max`, about `count` intervals of a round step
/// (1, 2, 2.5 or 5 × a power of ten, the one nearest `max / count`). A
/// `max` that is not above zero (or not finite) gives the ticks of 0 to 10.
pub(crate) fn linear_ticks(max: f64, count: usize) -> Vec<f64> {
    let max = if max.is_finite() && max > 0.0 { max } else { 10.0 };
    let raw = max / count.max(1) as f64;
    let magnitude = 10_f64.powf(raw.log10().floor());
    let distance = |step: &f64| (step / raw).ln().abs();
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .min_by(|a, b| distance(a).total_cmp(&distance(b)))
        .unwrap_or(magnitude);
    let steps = (max / step).ceil().clamp(1.0, 100.0) as usize;
    (0..=steps).map(|i| i as f64 * step).collect()
}

/// A linear tick's label: whole numbers with thousands separated, others
/// to two places at most (`0.25`, `0.6`).
pub(crate) fn tick_label(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        return thousands(value, 0);
    }
    let text = thousands(value, 2);
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A tick of a log scale: `mantissa` × 10^`exponent`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct LogTick {
    pub(crate) value: f64,
    /// Whether it is a power of ten (drawn stronger).
    pub(crate) decade: bool,
    pub(crate) label: String,
}

/// The decades that hold every value in `values` that is finite and above
/// zero, as exponents (`low < high`); 10^-1 to 10^1 when there is none.
pub(crate) fn decades(values: impl IntoIterator<Item = f64>) -> (i32, i32) {
    let (mut min, mut max) = (f64::INFINITY, 0.0_f64);
    for v in values.into_iter().filter(|v| v.is_finite() && *v > 0.0) {
        min = min.min(v);
        max = max.max(v);
    }
    if !min.is_finite() {
        return (-1, 1);
    }
    // Clamped so that a stray value cannot ask for thousands of ticks.
    let low = (min.log10().floor() as i32).clamp(-9, 9);
    let high = (max.log10().ceil() as i32).clamp(low + 1, 12);
    (low, high)
}

/// Ticks of a log scale over 10^`low`..10^`high`: each decade, and 2 and 5
/// within it when the range is short enough for them to stay apart.
pub(crate) fn log_ticks(low: i32, high: i32) -> Vec<LogTick> {
    let spans = high - low;
    let mantissas: &[u32] = if spans <= 3 { &[1, 2, 5] } else { &[1] };
    let mut ticks = Vec::new();
    for exponent in low..=high {
        for &mantissa in mantissas {
            if exponent == high && mantissa > 1 {
                break;
            }
            ticks.push(LogTick {
                value: f64::from(mantissa) * 10_f64.powi(exponent),
                decade: mantissa == 1,
                label: decimal(mantissa, exponent),
            });
        }
    }
    ticks
}

/// `mantissa` × 10^`exponent` written out: `0.05`, `2`, `1,000`.
fn decimal(mantissa: u32, exponent: i32) -> String {
    if exponent >= 0 {
        thousands(f64::from(mantissa) * 10_f64.powi(exponent), 0)
    } else {
        let places = exponent.unsigned_abs() as usize;
        format!("{:.places$}", f64::from(mantissa) * 10_f64.powi(exponent))
    }
}

/// `value` with `decimals` places and a comma between thousands
/// (`24,840`, `1,016.8`); `—` for NaN or infinity.
pub(crate) fn thousands(value: f64, decimals: usize) -> String {
    if !value.is_finite() {
        return "—".to_owned();
    }
    let text = format!("{:.decimals$}", value.abs());
    let (whole, fraction) = text
        .split_once('.')
        .map_or((&text[..], None), |(w, f)| (w, Some(f)));
    let mut out = String::new();
    if value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
        out.push('-');
    }
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if let Some(fraction) = fraction {
        out.push('.');
        out.push_str(fraction);
    }
    out
}

/// A latency in milliseconds, with as many places as its size deserves.
pub(crate) fn ms(value: f64) -> String {
    match value {
        v if v < 10.0 => thousands(v, 3),
        v if v < 1000.0 => thousands(v, 1),
        v => thousands(v, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_ticks_are_round_and_cover_the_maximum() {
        assert_eq!(
            linear_ticks(27_757.0, 5),
            [0.0, 5000.0, 10000.0, 15000.0, 20000.0, 25000.0, 30000.0]
        );
        assert_eq!(linear_ticks(9.0, 5), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(linear_ticks(0.0, 5), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        assert_eq!(linear_ticks(f64::NAN, 5), linear_ticks(0.0, 5));
        let labels: Vec<String> = linear_ticks(0.9, 3).into_iter().map(tick_label).collect();
        assert_eq!(labels, ["0", "0.25", "0.5", "0.75", "1"]);
        assert!(linear_ticks(1e12, 0).iter().all(|t| t.is_finite()));
    }

    #[test]
    fn decades_hold_the_values() {
        assert_eq!(decades([0.25, 4.0, 3506.6]), (-1, 4));
        assert_eq!(decades([1.0]), (0, 1));
        assert_eq!(decades([0.0, f64::NAN, -3.0]), (-1, 1));
        assert_eq!(decades([]), (-1, 1));
    }

    #[test]
    fn log_ticks_are_labelled_plainly() {
        let labels: Vec<String> = log_ticks(-2, 0).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"]);
        let labels: Vec<String> = log_ticks(-1, 4).into_iter().map(|t| t.label).collect();
        assert_eq!(labels, ["0.1", "1", "10", "100", "1,000", "10,000"]);
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(24_840.4, 0), "24,840");
        assert_eq!(thousands(1_016.784, 1), "1,016.8");
        assert_eq!(thousands(999.0, 0), "999");
        assert_eq!(thousands(1_234_567.0, 0), "1,234,567");
        assert_eq!(thousands(-1_234.0, 0), "-1,234");
        assert_eq!(thousands(-0.001, 0), "0");
        assert_eq!(thousands(f64::NAN, 0), "—");
        assert_eq!(ms(0.2194), "0.219");
        assert_eq!(ms(3506.6), "3,507");
    }
}
