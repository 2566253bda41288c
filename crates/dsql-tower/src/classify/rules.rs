//! DSQL's server errors and what each means for a client: the one table.

use super::ErrorClass;

/// One row of the table: a SQLSTATE (or a two-character SQLSTATE class), an
/// optional text the message or hint must contain (case-insensitive), and
/// the class it maps to. The first matching row wins.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Rule {
    /// Five-character SQLSTATE, or a two-character class such as `08`.
    pub code: &'static str,
    /// Text the message must contain, lowercase.
    pub message: Option<&'static str>,
    /// Text the hint must contain, lowercase.
    pub hint: Option<&'static str>,
    /// The class of matching errors.
    pub class: ErrorClass,
    /// Why, for readers of the table.
    pub why: &'static str,
}

impl Rule {
    const fn code(code: &'static str, class: ErrorClass, why: &'static str) -> Self {
        Self {
            code,
            message: None,
            hint: None,
            class,
            why,
        }
    }

    const fn with_message(mut self, text: &'static str) -> Self {
        self.message = Some(text);
        self
    }

    const fn with_hint(mut self, text: &'static str) -> Self {
        self.hint = Some(text);
        self
    }

    /// Whether an error with this code, message and hint matches the row.
    pub fn matches(&self, code: &str, message: &str, hint: &str) -> bool {
        let code_matches = if self.code.len() == 2 {
            code.starts_with(self.code)
        } else {
            code == self.code
        };
        code_matches
            && self
                .message
                .is_none_or(|text| contains_ignore_case(message, text))
            && self.hint.is_none_or(|text| contains_ignore_case(hint, text))
    }
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack.to_ascii_lowercase().contains(needle)
}

/// What DSQL's server errors mean for a client (see the project's
/// `dsql-facts.md`). Codes not listed are [`ErrorClass::Fatal`].
pub const DSQL_RULES: &[Rule] = &[
    Rule::code(
        "40001",
        ErrorClass::Conflict,
        "OC000 data conflict or OC001 schema change: replay the transaction",
    ),
    Rule::code(
        "40P01",
        ErrorClass::Conflict,
        "deadlock (PostgreSQL behind dsql-local): the transaction was rolled back",
    ),
    Rule::code(
        "08006",
        ErrorClass::Fatal,
        "the role does not match the token's action (admin needs DbConnectAdmin): configuration error",
    )
    .with_hint("wrong user to action mapping"),
    Rule::code(
        "08006",
        ErrorClass::Reauthenticate,
        "token expired, or IAM denied it: sign a new one and reconnect, a few times",
    )
    .with_message("access denied"),
    Rule::code(
        "28000",
        ErrorClass::Reauthenticate,
        "authentication refused: new token, a few times",
    ),
    Rule::code(
        "28P01",
        ErrorClass::Reauthenticate,
        "password (token) refused: new token, a few times",
    ),
    Rule::code(
        "53300",
        ErrorClass::Throttled,
        "too many open connections: back off",
    ),
    Rule::code(
        "53400",
        ErrorClass::Throttled,
        "connection rate exceeded: back off",
    ),
    Rule::code("57P03", ErrorClass::Throttled, "cannot connect now: back off"),
    Rule::code(
        "57P01",
        ErrorClass::Reconnect,
        "admin shutdown (session lifetime, failover): reconnect",
    ),
    Rule::code("57P02", ErrorClass::Reconnect, "crash shutdown: reconnect"),
    Rule::code(
        "25P03",
        ErrorClass::Reconnect,
        "idle-in-transaction timeout ended the session: reconnect",
    ),
    Rule::code("08", ErrorClass::Reconnect, "connection exception: reconnect"),
];

/// Classifies a server error from its parts, for errors that do not come as
/// a `tokio_postgres::error::DbError` (another driver, a log line).
///
/// ```
/// use dsql_tower::classify::{classify_server_error, ErrorClass};
///
/// let class = classify_server_error(
///     "40001",
///     "change conflicts with another transaction, please retry: (OC000)",
///     None,
/// );
/// assert_eq!(class, ErrorClass::Conflict);
/// ```
pub fn classify_server_error(code: &str, message: &str, hint: Option<&str>) -> ErrorClass {
    DSQL_RULES
        .iter()
        .find(|rule| rule.matches(code, message, hint.unwrap_or("")))
        .map_or(ErrorClass::Fatal, |rule| rule.class)
}
