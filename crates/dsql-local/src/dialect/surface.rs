//! What a DSQL session reports about itself, as observed in September 2026
//! (a PostgreSQL-16-based cluster): on every path a client reads it —
//! `ParameterStatus` at startup, `SHOW`, `current_setting()`, `version()`.

/// `server_version` (`SHOW`, `current_setting`, `ParameterStatus`).
pub(crate) const SERVER_VERSION: &str = "16.15";
/// `server_version_num`.
pub(crate) const SERVER_VERSION_NUM: &str = "160015";
/// `version()`.
pub(crate) const VERSION: &str = "PostgreSQL 16";
/// `TimeZone` of a new session (PostgreSQL's Debian packages say
/// `Etc/UTC`).
pub(crate) const TIME_ZONE: &str = "UTC";

/// DSQL's value of a setting, where it differs from the upstream's.
pub(crate) fn setting(name: &str) -> Option<&'static str> {
    match name.to_ascii_lowercase().as_str() {
        "server_version" => Some(SERVER_VERSION),
        "server_version_num" => Some(SERVER_VERSION_NUM),
        _ => None,
    }
}
