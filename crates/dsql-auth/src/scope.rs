//! What a token is bound to: the endpoint host it is signed for and the
//! database role it logs in as.

use std::fmt;

use crate::DsqlConfig;

/// Who a token is for: the endpoint host it is signed for and the role it logs in as.
///
/// A DSQL token is valid for one (host, user) pair only: the host is signed
/// into it, and the user decides its action (`DbConnectAdmin` for `admin`,
/// `DbConnect` otherwise). Host names compare case-insensitively (the host is
/// stored in lowercase); users compare exactly, as PostgreSQL role names do.
///
/// ```
/// use dsql_auth::{DsqlConfig, TokenScope};
///
/// let config: DsqlConfig = "postgres://reader@abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws".parse()?;
/// let scope = TokenScope::of(&config);
/// assert_eq!(scope, TokenScope::new("ABCDEFGHIJKLMNOPQRSTUVWXYZ.dsql.us-east-1.on.aws", "reader"));
/// assert_eq!(scope.to_string(), "reader@abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws");
/// # Ok::<(), dsql_auth::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TokenScope {
    host: String,
    user: String,
}

impl TokenScope {
    /// The scope of tokens signed for `host` that log in as `user`. The host
    /// is lowercased, so that scopes compare case-insensitively on it.
    pub fn new(host: impl Into<String>, user: impl Into<String>) -> Self {
        let mut host = host.into();
        host.make_ascii_lowercase();
        Self {
            host,
            user: user.into(),
        }
    }

    /// The endpoint host, in lowercase.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The database role.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The scope of a configuration: its endpoint host and user.
    pub fn of(config: &DsqlConfig) -> Self {
        Self::new(config.endpoint().host(), config.user())
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.host)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    const HOST: &str = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws";

    #[test]
    fn hosts_compare_case_insensitively_users_exactly() {
        let scope = TokenScope::new(HOST.to_ascii_uppercase(), "admin");
        assert_eq!(scope.host(), HOST);
        assert_eq!(scope.user(), "admin");
        assert_eq!(scope, TokenScope::new(HOST, "admin"));
        assert_ne!(scope, TokenScope::new(HOST, "Admin"));
        assert_ne!(scope, TokenScope::new(HOST, "reader"));
        assert_ne!(
            scope,
            TokenScope::new("zyxwvutsrqponmlkjihgfedcba.dsql.us-east-1.on.aws", "admin")
        );
        let set: HashSet<_> = [
            TokenScope::new("LOCALHOST", "u"),
            TokenScope::new("localhost", "u"),
        ]
        .into();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn display_is_user_at_host() {
        assert_eq!(TokenScope::new("LocalHost", "app").to_string(), "app@localhost");
    }

    #[test]
    fn of_a_config() {
        let config = DsqlConfig::builder()
            .host(HOST.to_ascii_uppercase())
            .user("reader")
            .build()
            .unwrap();
        let scope = TokenScope::of(&config);
        assert_eq!((scope.host(), scope.user()), (HOST, "reader"));
        let admin = DsqlConfig::builder().host(HOST).build().unwrap();
        assert_eq!(TokenScope::of(&admin), TokenScope::new(HOST, "admin"));
    }
}
