//! A statement's *shape*: its text with numbers and string literals
//! replaced by `?`, so that `… WHERE k = 1` and `… WHERE k = 2` share one
//! cached decision.
//!
//! Only where the decision cannot depend on a literal's value: a single
//! query or write statement ([`Analysis::reusable`](super::Analysis)) that
//! nothing refused or rewrote. (`CREATE SEQUENCE … CACHE 100` and `CACHE
//! 1` have one shape and different answers: DDL is never reused.) Texts the
//! lexer is unsure of (escape strings, dollar quotes, comments) have no
//! shape, and are read in full.

/// The shape of `sql`, or `None` when the lexer is unsure of it.
pub(crate) fn shape(sql: &str) -> Option<String> {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\'' => {
                // E'…' escapes and U&'…' would need more than this.
                if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'&') {
                    return None;
                }
                i += 1;
                loop {
                    match bytes.get(i)? {
                        b'\'' if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                        b'\'' => break,
                        _ => i += 1,
                    }
                }
                i += 1;
                out.push('?');
            }
            b'"' => {
                let end = i + 1 + sql.get(i + 1..)?.find('"')?;
                out.push_str(sql.get(i..=end)?);
                i = end + 1;
            }
            b'$' | b'\\' => return None,
            b'-' if bytes.get(i + 1) == Some(&b'-') => return None,
            b'/' if bytes.get(i + 1) == Some(&b'*') => return None,
            b'0'..=b'9' if i == 0 || !is_word(bytes[i - 1]) => {
                while i < bytes.len() && (is_word(bytes[i]) || bytes[i] == b'.') {
                    i += 1;
                }
                out.push('?');
            }
            _ => {
                let next = sql.get(i..)?.chars().next()?;
                out.push(next);
                i += next.len_utf8();
            }
        }
    }
    Some(out)
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_become_placeholders() {
        assert_eq!(
            shape("SELECT v FROM kv WHERE k = 123 AND s = 'it''s' AND x1 = 2.5e3").as_deref(),
            Some("SELECT v FROM kv WHERE k = ? AND s = ? AND x1 = ?")
        );
        assert_eq!(
            shape("SELECT \"a'1\" FROM t2").as_deref(),
            Some("SELECT \"a'1\" FROM t2")
        );
        for unsure in [
            "SELECT E'\\n'",
            "SELECT $$x$$",
            "SELECT 1 -- c",
            "SELECT /* c */ 1",
            "SELECT 'open",
        ] {
            assert_eq!(shape(unsure), None, "{unsure}");
        }
    }
}
