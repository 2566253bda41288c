//! Which authentication methods dsql-local accepts from the upstream: the
//! upstream URL's `require_auth`, with libpq's syntax and meaning
//! (PostgreSQL 16).
//!
//! Without it the upstream decides how the password travels, and anything
//! that answers at the upstream address can ask for it in cleartext over
//! the plain TCP connection. So when the URL holds a password the default
//! refuses cleartext (`require_auth=!password`); `require_auth=password`
//! allows it again, `require_auth=scram-sha-256` accepts nothing weaker.

use std::fmt;

use crate::error::ConfigError;

/// An authentication method the upstream can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AuthMethod {
    /// No exchange at all: the upstream trusts the connection.
    None,
    /// The password in cleartext.
    Password,
    /// md5 of password and role name, salted.
    Md5,
    /// SCRAM-SHA-256 (the server proves it knows the verifier too).
    ScramSha256,
}

impl AuthMethod {
    const ALL: [Self; 4] = [Self::None, Self::Password, Self::Md5, Self::ScramSha256];

    /// libpq's name for the method.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Password => "password",
            Self::Md5 => "md5",
            Self::ScramSha256 => "scram-sha-256",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// The set of methods the upstream may use.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequireAuth {
    allowed: u8,
}

impl RequireAuth {
    /// The default: every method but cleartext when the URL has a password
    /// (it would cross plain TCP), every method otherwise (there is nothing
    /// to leak).
    pub(crate) fn default_for(has_password: bool) -> Self {
        let all = Self::ALL_ALLOWED;
        if has_password {
            Self {
                allowed: all.allowed & !AuthMethod::Password.bit(),
            }
        } else {
            all
        }
    }

    const ALL_ALLOWED: Self = Self { allowed: 0b1111 };

    /// Parses libpq's syntax: a comma-separated list of methods that are
    /// allowed (`scram-sha-256,md5`), or of methods that are not, each with
    /// a `!` (`!password,!none`); the two forms do not mix.
    pub(crate) fn parse(value: &str) -> Result<Self, ConfigError> {
        let invalid = |why: String| ConfigError::upstream(format!("invalid require_auth `{value}`: {why}"));
        let mut listed = 0_u8;
        let mut negated = None;
        for item in value.split(',') {
            let (negative, name) = match item.strip_prefix('!') {
                Some(name) => (true, name),
                None => (false, item),
            };
            if *negated.get_or_insert(negative) != negative {
                return Err(invalid(
                    "negative and positive methods cannot be mixed".to_owned(),
                ));
            }
            let method = AuthMethod::ALL
                .into_iter()
                .find(|m| m.name() == name)
                .ok_or_else(|| {
                    invalid(match name {
                        "gss" | "sspi" => format!("dsql-local does not support {name} authentication"),
                        _ => {
                            format!("unknown method `{name}` (expected password, md5, scram-sha-256 or none)")
                        }
                    })
                })?;
            if listed & method.bit() != 0 {
                return Err(invalid(format!("`{name}` is listed twice")));
            }
            listed |= method.bit();
        }
        let allowed = if negated == Some(true) {
            Self::ALL_ALLOWED.allowed & !listed
        } else {
            listed
        };
        if allowed == 0 {
            return Err(invalid("it allows no method".to_owned()));
        }
        Ok(Self { allowed })
    }

    /// Whether the upstream may authenticate with `method`.
    pub(crate) fn allows(self, method: AuthMethod) -> bool {
        self.allowed & method.bit() != 0
    }
}

impl fmt::Display for RequireAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for method in AuthMethod::ALL.into_iter().filter(|&m| self.allows(m)) {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(method.name())?;
        }
        Ok(())
    }
}

impl fmt::Debug for RequireAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RequireAuth({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libpqs_syntax() {
        let cases = [
            ("scram-sha-256", "scram-sha-256"),
            ("scram-sha-256,md5", "md5,scram-sha-256"),
            ("!password", "none,md5,scram-sha-256"),
            ("!password,!none", "md5,scram-sha-256"),
            ("none", "none"),
        ];
        for (input, allowed) in cases {
            assert_eq!(
                RequireAuth::parse(input).expect(input).to_string(),
                allowed,
                "{input}"
            );
        }
        for bad in [
            "",
            "scram",
            "md5,!password",
            "md5,md5",
            "gss",
            "!none,!password,!md5,!scram-sha-256",
        ] {
            let error = RequireAuth::parse(bad).expect_err(bad).to_string();
            assert!(error.contains("require_auth"), "{bad}: {error}");
        }
    }

    #[test]
    fn cleartext_is_refused_by_default_only_when_there_is_a_password_to_leak() {
        assert!(!RequireAuth::default_for(true).allows(AuthMethod::Password));
        assert!(RequireAuth::default_for(true).allows(AuthMethod::Md5));
        assert!(RequireAuth::default_for(false).allows(AuthMethod::Password));
    }
}
