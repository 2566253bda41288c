//! Configuration from environment variables.

use std::path::PathBuf;

use super::{DsqlConfig, parse_hostaddr, parse_port, parse_secs};
use crate::ConfigError;

impl DsqlConfig {
    /// Reads the configuration from the environment.
    ///
    /// The variables of AWS's manual-token example come first, libpq's
    /// `PG*` variables fill the gaps:
    ///
    /// | setting | variables, by precedence |
    /// |---|---|
    /// | host or cluster id | `CLUSTER_ENDPOINT`, `PGHOST` |
    /// | user | `CLUSTER_USER`, `PGUSER` |
    /// | region | `REGION`, `AWS_REGION`, `AWS_DEFAULT_REGION` (`REGION` and `AWS_REGION` must agree) |
    /// | port | `DB_PORT`, `PGPORT` |
    /// | database | `DB_NAME`, `PGDATABASE` |
    /// | token duration (s) | `TOKEN_EXPIRY_SECS` |
    /// | AWS profile | `AWS_PROFILE` |
    /// | connect address | `PGHOSTADDR` |
    /// | CA file | `PGSSLROOTCERT` |
    /// | application name | `PGAPPNAME` |
    /// | connect timeout (s; 0: none) | `PGCONNECT_TIMEOUT` |
    ///
    /// Empty variables count as unset. `PGSSLMODE` is ignored: connections
    /// always verify the certificate and host name. The peers of a
    /// multi-region cluster (`CLUSTER_PEER_ENDPOINTS`) are read by
    /// [`ClusterSet::from_env`](crate::ClusterSet::from_env).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_env_with(|name| std::env::var_os(name))
    }

    /// Like [`from_env`](Self::from_env), but `Ok(None)` unless
    /// `CLUSTER_ENDPOINT` is set: a stray `PGHOST` pointing at some other
    /// PostgreSQL never makes a program believe a DSQL cluster is configured.
    pub fn cluster_from_env() -> Result<Option<Self>, ConfigError> {
        Self::cluster_from_env_with(|name| std::env::var_os(name))
    }

    /// [`cluster_from_env`](Self::cluster_from_env) over any variable lookup.
    pub fn cluster_from_env_with(
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Option<Self>, ConfigError> {
        let env = Env(&lookup);
        if env.get("CLUSTER_ENDPOINT")?.is_none() {
            return Ok(None);
        }
        Self::from_env_with(lookup).map(Some)
    }

    /// [`from_env`](Self::from_env) over any variable lookup (a map in tests,
    /// a secrets store).
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use dsql_auth::DsqlConfig;
    ///
    /// let vars = HashMap::from([
    ///     ("CLUSTER_ENDPOINT", "abcdefghijklmnopqrstuvwxyz"),
    ///     ("REGION", "us-west-2"),
    ///     ("CLUSTER_USER", "app"),
    /// ]);
    /// let config = DsqlConfig::from_env_with(|name| vars.get(name).map(Into::into))?;
    /// assert_eq!(config.endpoint().host(), "abcdefghijklmnopqrstuvwxyz.dsql.us-west-2.on.aws");
    /// assert_eq!(config.user(), "app");
    /// # Ok::<(), dsql_auth::ConfigError>(())
    /// ```
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let mut builder = Self::builder();
        if let Some(host) = env.first(&["CLUSTER_ENDPOINT", "PGHOST"])? {
            builder = builder.host(host.1);
        }
        if let Some(region) = region(&env)? {
            builder = builder.region(region);
        }
        if let Some((_, user)) = env.first(&["CLUSTER_USER", "PGUSER"])? {
            builder = builder.user(user);
        }
        if let Some((name, port)) = env.first(&["DB_PORT", "PGPORT"])? {
            builder = builder.port(parse_port(name, &port)?);
        }
        if let Some((_, database)) = env.first(&["DB_NAME", "PGDATABASE"])? {
            builder = builder.database(database);
        }
        if let Some(secs) = env.get("TOKEN_EXPIRY_SECS")? {
            builder = builder.token_duration(parse_secs("TOKEN_EXPIRY_SECS", &secs)?);
        }
        if let Some(profile) = env.get("AWS_PROFILE")? {
            builder = builder.profile(profile);
        }
        if let Some(addr) = env.get("PGHOSTADDR")? {
            builder = builder.hostaddr(parse_hostaddr("PGHOSTADDR", &addr)?);
        }
        if let Some(path) = env.get("PGSSLROOTCERT")? {
            builder = builder.ssl_root_cert(PathBuf::from(path));
        }
        if let Some(name) = env.get("PGAPPNAME")? {
            builder = builder.application_name(name);
        }
        if let Some(secs) = env.get("PGCONNECT_TIMEOUT")? {
            builder = builder.connect_timeout(parse_secs("PGCONNECT_TIMEOUT", &secs)?);
        }
        builder.build()
    }
}

fn region(env: &Env<'_>) -> Result<Option<String>, ConfigError> {
    let explicit = env.get("REGION")?;
    let aws = env.first(&["AWS_REGION", "AWS_DEFAULT_REGION"])?;
    match (explicit, aws) {
        (Some(explicit), Some((name, aws))) if !explicit.trim().eq_ignore_ascii_case(aws.trim()) => {
            Err(ConfigError::RegionConflict {
                first: "REGION",
                first_value: explicit,
                second: name,
                second_value: aws,
            })
        }
        (Some(explicit), _) => Ok(Some(explicit)),
        (None, aws) => Ok(aws.map(|(_, region)| region)),
    }
}

/// Variables read through a lookup; empty ones count as unset.
pub(super) struct Env<'a>(pub(super) &'a dyn Fn(&str) -> Option<std::ffi::OsString>);

impl Env<'_> {
    pub(super) fn get(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        match (self.0)(name) {
            None => Ok(None),
            Some(value) if value.is_empty() => Ok(None),
            Some(value) => value
                .into_string()
                .map(Some)
                .map_err(|_| ConfigError::NotUnicode { name }),
        }
    }

    fn first(&self, names: &[&'static str]) -> Result<Option<(&'static str, String)>, ConfigError> {
        for name in names {
            if let Some(value) = self.get(name)? {
                return Ok(Some((name, value)));
            }
        }
        Ok(None)
    }
}
