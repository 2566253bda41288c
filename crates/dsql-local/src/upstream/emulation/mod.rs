//! What PostgreSQL itself runs so that dsql-local answers like DSQL where a
//! proxy cannot: objects installed once per database (by the upstream URL's
//! user, which must be a superuser for event triggers) and settings carried
//! by each session.
//!
//! - [`write_limits`]: the 3,000-row and 10 MiB caps per transaction;
//! - [`jobs`]: `sys.jobs` and `sys.wait_for_job` for DSQL's asynchronous
//!   DDL, and the statement a `CREATE INDEX ASYNC` becomes;
//! - [`surface`]: the version and settings a session reports.

pub(crate) mod jobs;
pub(crate) mod surface;
mod write_limits;

use super::roles::{query, terminate};
use super::{Password, connect};
use crate::config::LocalConfig;
use crate::dialect::Dialect;

/// Serializes installs across `dsql-local` processes on one database.
const LOCK_KEY: i64 = 0x6473_716c_5f65_6d75; // "dsql_emu"

/// FNV-1a, 64 bits: a version stamp of the installed SQL.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What dsql-local sets in each upstream session it opens, given the
/// client's startup parameters (a client's own `TimeZone` wins).
pub(crate) fn session_settings(
    config: &LocalConfig,
    client_params: &[(String, String)],
) -> Vec<(&'static str, String)> {
    let mut settings = Vec::new();
    if config.dialect == Dialect::Dsql {
        settings.push((write_limits::ROW_CAP_SETTING, write_limits::row_cap()));
        settings.push((write_limits::BYTE_CAP_SETTING, write_limits::byte_cap()));
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
            write_limits::install_sql()
        );
        // Installed already (by this version): change nothing. Rewriting
        // catalog rows at every start races with other sessions' DDL
        // ("tuple concurrently updated").
        let version = format!("dsql-local emulation {:016x}", fnv1a(sql.as_bytes()));
        let installed = query(
            &mut admin,
            "SELECT pg_catalog.obj_description(oid, 'pg_namespace') FROM pg_catalog.pg_namespace \
             WHERE nspname = 'dsql_local'",
        )
        .await?;
        if matches!(installed.first(), Some(Some(v)) if *v == version) {
            return query(&mut admin, "COMMIT").await.map(drop);
        }
        let sql = format!("{sql}\nCOMMENT ON SCHEMA dsql_local IS '{version}';");
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
