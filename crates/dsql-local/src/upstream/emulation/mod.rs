//! What PostgreSQL itself runs so that dsql-local answers like DSQL where a
//! proxy cannot: objects installed once per database (by the upstream URL's
//! user, which must be a superuser for event triggers) and settings carried
//! by each session.
//!
//! - [`row_cap`]: the 3,000-row cap per transaction;
//! - [`jobs`]: `sys.jobs` and `sys.wait_for_job` for DSQL's asynchronous
//!   DDL, and the statement a `CREATE INDEX ASYNC` becomes;
//! - [`surface`]: the version and settings a session reports.

pub(crate) mod jobs;
mod row_cap;
pub(crate) mod surface;

use super::roles::{query, terminate};
use super::{Password, connect};
use crate::config::LocalConfig;
use crate::dialect::Dialect;

/// Serializes installs across `dsql-local` processes on one database.
const LOCK_KEY: i64 = 0x6473_716c_5f65_6d75; // "dsql_emu"

/// What dsql-local sets in each upstream session it opens, given the
/// client's startup parameters (a client's own `TimeZone` wins).
pub(crate) fn session_settings(
    config: &LocalConfig,
    client_params: &[(String, String)],
) -> Vec<(&'static str, String)> {
    let mut settings = Vec::new();
    if config.dialect == Dialect::Dsql {
        settings.push((row_cap::CAP, row_cap::ROW_CAP.to_owned()));
        if !client_params
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("timezone"))
        {
            settings.push(("TimeZone", crate::dialect::surface::TIME_ZONE.to_owned()));
        }
    }
    if let Some(wait) = config.never_wait {
        // Milliseconds, at least 1 (0 would mean wait forever).
        settings.push(("lock_timeout", wait.as_millis().max(1).to_string()));
    }
    settings
}

/// Installs what the DSQL dialect needs upstream (idempotent, under an
/// advisory lock, in one transaction).
pub(crate) async fn install(config: &LocalConfig) -> Result<(), String> {
    if config.dialect != Dialect::Dsql {
        return Ok(());
    }
    let user = config.upstream.user.as_str();
    let mut admin = connect(
        &config.upstream,
        user,
        Password::FromUrl,
        config.database(),
        &[],
        &[],
    )
    .await
    .map_err(|e| e.to_string())?;
    let result = async {
        query(
            &mut admin,
            &format!(
                "SET search_path = pg_catalog; BEGIN ISOLATION LEVEL READ COMMITTED; \
                 SELECT pg_catalog.pg_advisory_xact_lock({LOCK_KEY})"
            ),
        )
        .await?;
        let sql = format!(
            "{}\n{}\n{}",
            jobs::install_sql(),
            surface::install_sql(),
            row_cap::install_sql()
        );
        match query(&mut admin, &sql).await {
            Ok(_) => query(&mut admin, "COMMIT").await.map(drop),
            Err(e) => {
                let _ = query(&mut admin, "ROLLBACK").await;
                Err(e)
            }
        }
    }
    .await;
    let _ = terminate(&mut admin).await;
    result
}
