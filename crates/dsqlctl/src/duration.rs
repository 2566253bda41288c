//! Durations on the command line: seconds (`30`, `0.5`) or a number with a
//! unit (`500ms`, `2s`, `5m`, `1h`).

use std::time::Duration;

/// Why a duration was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DurationError {
    #[error("a duration is needed (seconds, or a number with ms, s, m or h)")]
    Empty,
    #[error("`{0}` is not a duration: give seconds (30, 0.5) or a number with ms, s, m or h (500ms, 5m)")]
    Invalid(String),
    #[error("unknown unit `{unit}` in `{input}`: use ms, s, m or h")]
    UnknownUnit { input: String, unit: String },
    #[error("`{0}` is too long")]
    TooLong(String),
    #[error("the duration must be longer than zero")]
    Zero,
    #[error("`{0}` is longer than a year (8760h), the longest period accepted")]
    OverAYear(String),
}

/// The longest period of a periodic action (`--stats-every`,
/// `--drop-sessions-every`).
pub(crate) const MAX_PERIOD: Duration = Duration::from_secs(365 * 86_400);

/// Parses seconds (`30`, `0.5`) or a number with a unit (`500ms`, `2s`,
/// `5m`, `1h`; a space before the unit is allowed).
pub(crate) fn parse(input: &str) -> Result<Duration, DurationError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    if !number.bytes().any(|b| b.is_ascii_digit()) {
        return Err(DurationError::Invalid(text.to_owned()));
    }
    let seconds_per_unit = match unit.trim_start() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        unit => {
            return Err(DurationError::UnknownUnit {
                input: text.to_owned(),
                unit: unit.to_owned(),
            });
        }
    };
    let value: f64 = number
        .parse()
        .map_err(|_| DurationError::Invalid(text.to_owned()))?;
    Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| DurationError::TooLong(text.to_owned()))
}

/// As [`parse`], refusing zero.
pub(crate) fn parse_positive(input: &str) -> Result<Duration, DurationError> {
    match parse(input)? {
        d if d.is_zero() => Err(DurationError::Zero),
        d => Ok(d),
    }
}

/// As [`parse_positive`], refusing more than [`MAX_PERIOD`]: a period
/// schedules a timer, and a timer cannot be set arbitrarily far away.
pub(crate) fn parse_period(input: &str) -> Result<Duration, DurationError> {
    match parse_positive(input)? {
        d if d > MAX_PERIOD => Err(DurationError::OverAYear(input.trim().to_owned())),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_units() {
        for (input, expected) in [
            ("30", Duration::from_secs(30)),
            ("0.5", Duration::from_millis(500)),
            (".25", Duration::from_millis(250)),
            ("2s", Duration::from_secs(2)),
            ("500ms", Duration::from_millis(500)),
            ("1.5ms", Duration::from_micros(1500)),
            ("5m", Duration::from_secs(300)),
            ("5 min", Duration::from_secs(300)),
            ("1h", Duration::from_secs(3600)),
            (" 0 ", Duration::ZERO),
        ] {
            assert_eq!(parse(input), Ok(expected), "{input:?}");
        }
    }

    #[test]
    fn errors_are_typed() {
        assert_eq!(parse(""), Err(DurationError::Empty));
        assert_eq!(parse("-1"), Err(DurationError::Invalid("-1".to_owned())));
        assert_eq!(parse("ms"), Err(DurationError::Invalid("ms".to_owned())));
        assert_eq!(parse("1.2.3"), Err(DurationError::Invalid("1.2.3".to_owned())));
        assert_eq!(
            parse("5x"),
            Err(DurationError::UnknownUnit {
                input: "5x".to_owned(),
                unit: "x".to_owned()
            })
        );
        assert_eq!(
            parse("1e30h"),
            Err(DurationError::UnknownUnit {
                input: "1e30h".to_owned(),
                unit: "e30h".to_owned()
            })
        );
        let huge = "9".repeat(30);
        assert_eq!(parse(&huge), Err(DurationError::TooLong(huge.clone())));
        assert_eq!(parse_positive("0ms"), Err(DurationError::Zero));
        assert_eq!(parse_positive("1ms"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_period("0"), Err(DurationError::Zero));
        assert_eq!(parse_period("8760h"), Ok(MAX_PERIOD));
        assert_eq!(
            parse_period(" 8761h "),
            Err(DurationError::OverAYear("8761h".to_owned()))
        );
        let huge = "10000000000000000000";
        assert!(parse_positive(huge).is_ok(), "a valid Duration");
        assert_eq!(parse_period(huge), Err(DurationError::OverAYear(huge.to_owned())));
    }
}
