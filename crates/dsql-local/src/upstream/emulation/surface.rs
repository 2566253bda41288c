//! What a session reports about itself, as DSQL reports it
//! ([`surface`](crate::dialect::surface)): the `server_version` of the
//! startup `ParameterStatus`, `version()` and `current_setting()` (the
//! relay asks `sys.`'s versions, so that result columns keep their names),
//! and `TimeZone` (set per session).

use crate::dialect::REFUSAL_MARKER;
use crate::dialect::surface::{SERVER_VERSION, SERVER_VERSION_NUM, VERSION};
use crate::protocol;

pub(super) fn install_sql() -> String {
    format!(
        r#"
CREATE SCHEMA IF NOT EXISTS sys;
GRANT USAGE ON SCHEMA sys TO PUBLIC;
CREATE OR REPLACE FUNCTION sys.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $fn$ SELECT '{VERSION}'::text $fn$;
CREATE OR REPLACE FUNCTION sys.current_setting(setting text, missing_ok boolean DEFAULT false)
RETURNS text LANGUAGE plpgsql STABLE AS $fn$
BEGIN
  CASE lower(setting)
    WHEN 'server_version' THEN RETURN '{SERVER_VERSION}';
    WHEN 'server_version_num' THEN RETURN '{SERVER_VERSION_NUM}';
    WHEN 'lc_collate', 'lc_ctype' THEN
      RAISE EXCEPTION USING ERRCODE = '42704',
        MESSAGE = format('unrecognized configuration parameter "%s"', setting),
        DETAIL = '{REFUSAL_MARKER}';
    ELSE
      RETURN pg_catalog.current_setting(setting, missing_ok);
  END CASE;
END
$fn$;
"#
    )
}

/// Rewrites the `server_version` reported in a startup greeting (a run of
/// backend messages) to DSQL's.
pub(crate) fn rewrite_greeting(greeting: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(greeting.len());
    let mut rest = greeting;
    while let Some((&tag, after)) = rest.split_first() {
        let Some(len) = after
            .get(..4)
            .and_then(|l| <[u8; 4]>::try_from(l).ok())
            .map(|l| u32::from_be_bytes(l) as usize)
            .filter(|&l| l >= 4 && l <= after.len())
        else {
            out.extend_from_slice(rest);
            break;
        };
        let (message, next) = rest.split_at(1 + len);
        let body = &message[5..];
        match protocol::cstr(body) {
            Some((b"server_version", _)) if tag == b'S' => {
                protocol::put_message(&mut out, b'S', |out| {
                    out.extend_from_slice(b"server_version\0");
                    out.extend_from_slice(SERVER_VERSION.as_bytes());
                    out.push(0);
                });
            }
            _ => out.extend_from_slice(message),
        }
        rest = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_version_changes() {
        let mut greeting = Vec::new();
        for (name, value) in [
            ("server_version", "15.19 (Debian 15.19-0+deb12u1)"),
            ("TimeZone", "UTC"),
        ] {
            protocol::put_message(&mut greeting, b'S', |out| {
                out.extend_from_slice(name.as_bytes());
                out.push(0);
                out.extend_from_slice(value.as_bytes());
                out.push(0);
            });
        }
        greeting.extend_from_slice(b"Z\0\0\0\x05I");
        let rewritten = rewrite_greeting(&greeting);
        let text = String::from_utf8_lossy(&rewritten);
        assert!(text.contains("server_version\u{0}16.15\u{0}"), "{text:?}");
        assert!(!text.contains("15.19"));
        assert!(text.contains("TimeZone\0UTC\0"));
        assert!(rewritten.ends_with(b"Z\0\0\0\x05I"));
        // Garbage passes through unharmed.
        assert_eq!(rewrite_greeting(b"S\0\0"), b"S\0\0");
    }
}
