//! The upstream role each DSQL role's sessions run as.
//!
//! A DSQL role `r` (or the upstream role [mapped](crate::LocalConfigBuilder::map_role)
//! to it) runs upstream as a role of that name, never as the upstream URL's
//! user, which is usually a superuser. Connected as that user, `dsql-local`
//! creates the role on first use (idempotently, under an advisory lock so
//! that concurrent starts do not race) with `LOGIN NOSUPERUSER NOCREATEDB
//! NOCREATEROLE NOREPLICATION NOBYPASSRLS`, and grants the DSQL `admin`
//! role what DSQL's `admin` can do in the one database: `CONNECT`, `CREATE`
//! and `TEMPORARY` on it and `USAGE, CREATE` on schema `public` (PostgreSQL
//! 15 no longer grants `CREATE` on `public` to `PUBLIC`), plus default
//! privileges to read and write (not `TRIGGER`) the tables and sequences the
//! upstream URL's user creates in `public` later. Other roles get
//! nothing beyond `PUBLIC`'s defaults; as in DSQL, `admin` grants them the
//! rest.
//!
//! `CREATEROLE` is never given: on PostgreSQL 15 it lets a role grant itself
//! any non-superuser role, `pg_execute_server_program` included.
//!
//! An existing role is used only if neither it nor any role it belongs to is
//! a superuser or has `CREATEROLE`, `CREATEDB`, `REPLICATION`, `BYPASSRLS`,
//! or is one of [`DANGEROUS_ROLES`]; otherwise its sessions are refused. So
//! a client that logs in as `postgres` gets a refusal, not a superuser.
//!
//! Sessions log in upstream as the role itself (trust, as on loopback in CI).
//! When the upstream asks a password for it, `dsql-local` has none (the
//! upstream URL's password is its user's), and falls back to the upstream
//! URL's user with a loud warning: a documented limitation. When the upstream
//! URL's user is not a superuser, roles cannot be created: sessions run as
//! an existing unprivileged role of that name, or else as that user.

use std::collections::HashMap;
use std::fmt::Write as _;

use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::{Password, UpstreamError, UpstreamSession, connect};
use crate::config::LocalConfig;
use crate::protocol::{self, error_field};

/// Predefined roles that reach the server's files or programs, or every
/// table: a role that belongs to one is refused.
pub(crate) const DANGEROUS_ROLES: &[&str] = &[
    "pg_execute_server_program",
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_read_all_data",
    "pg_write_all_data",
];

/// The DSQL role with DSQL's admin privileges.
const ADMIN: &str = "admin";
/// PostgreSQL's longest identifier (`NAMEDATALEN - 1`).
const MAX_NAME_LEN: usize = 63;
/// The advisory lock that serializes role creation across `dsql-local`
/// processes sharing an upstream (`CREATE ROLE` and `GRANT` race otherwise).
const LOCK_KEY: i64 = 0x6473_716c_6c6f_6361; // "dsqlloca"

/// Who a session logs in upstream as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SessionRole {
    pub(crate) name: String,
    pub(crate) password: Password,
}

/// Why a DSQL role cannot be served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RoleError {
    /// The upstream could not be reached as its URL's user.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The role would run with privileges beyond DSQL's `admin`.
    #[error("role \"{role}\" is not served by dsql-local: {reason}")]
    Refused { role: String, reason: String },
    /// Preparing the role failed.
    #[error("could not prepare the upstream role \"{role}\": {reason}")]
    Setup { role: String, reason: String },
}

/// The upstream roles prepared so far, by DSQL role.
#[derive(Debug, Default)]
pub(crate) struct Roles {
    ready: Mutex<HashMap<String, SessionRole>>,
}

impl Roles {
    /// The upstream role `client_role`'s sessions log in as, created first if
    /// needed.
    pub(crate) async fn resolve(
        &self,
        config: &LocalConfig,
        client_role: &str,
    ) -> Result<SessionRole, RoleError> {
        let mut ready = self.ready.lock().await;
        if let Some(role) = ready.get(client_role) {
            return Ok(role.clone());
        }
        let role = prepare(config, client_role).await?;
        ready.insert(client_role.to_owned(), role.clone());
        Ok(role)
    }

    /// Prepares the roles served from the start (`admin` and the mapped
    /// ones), so that tables the upstream URL's user creates afterwards are
    /// already covered by `admin`'s default privileges. A failure is logged:
    /// the upstream may come up later, and sessions retry.
    pub(crate) async fn prepare_at_start(&self, config: &LocalConfig) {
        let served = std::iter::once(ADMIN).chain(config.role_map.keys().map(String::as_str));
        for client_role in served {
            let prepared =
                tokio::time::timeout(config.upstream_connect_timeout, self.resolve(config, client_role))
                    .await;
            match prepared {
                Ok(Ok(role)) => tracing::debug!(client_role, upstream_role = role.name, "role ready"),
                Ok(Err(e)) => tracing::warn!(error = %e, client_role, "could not prepare the upstream role"),
                Err(_) => tracing::warn!(client_role, "timed out preparing the upstream role"),
            }
        }
    }

    /// Forgets `client_role` (its login failed: the role may have been
    /// dropped), so that the next session prepares it again.
    pub(crate) async fn forget(&self, client_role: &str) {
        self.ready.lock().await.remove(client_role);
    }

    /// The upstream asked a password for `client_role`'s own role: its
    /// sessions run as the upstream URL's user from now on, loudly.
    pub(crate) async fn fall_back(
        &self,
        config: &LocalConfig,
        client_role: &str,
        refused: &str,
    ) -> SessionRole {
        let user = config.upstream.user.clone();
        tracing::warn!(
            dsql_role = client_role,
            upstream_role = refused,
            fallback = %user,
            "the upstream PostgreSQL asks a password for role `{refused}` and dsql-local only has the \
             upstream URL user's: sessions of `{client_role}` run as `{user}` instead, with all its \
             privileges (a superuser can run programs on the database host). Allow trust \
             authentication for `{refused}` from dsql-local's address in pg_hba.conf to fix this"
        );
        let role = SessionRole {
            name: user,
            password: Password::FromUrl,
        };
        self.ready
            .lock()
            .await
            .insert(client_role.to_owned(), role.clone());
        role
    }
}

/// `value` as an SQL string literal (the session sets
/// `standard_conforming_strings`).
fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// `name` as an SQL identifier.
pub(crate) fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Checks a role name before it reaches any SQL.
fn check_name(role: &str) -> Result<(), String> {
    if role.is_empty() || role.len() > MAX_NAME_LEN || role.contains('\0') {
        return Err(format!(
            "a role name must have 1 to {MAX_NAME_LEN} bytes, without NUL"
        ));
    }
    if role
        .as_bytes()
        .get(..3)
        .is_some_and(|p| p.eq_ignore_ascii_case(b"pg_"))
    {
        return Err("names starting with pg_ are reserved by PostgreSQL".to_owned());
    }
    Ok(())
}

async fn prepare(config: &LocalConfig, client_role: &str) -> Result<SessionRole, RoleError> {
    let wanted = config
        .role_map
        .get(client_role)
        .map_or(client_role, String::as_str);
    let refused = |reason: String| RoleError::Refused {
        role: wanted.to_owned(),
        reason,
    };
    check_name(wanted).map_err(refused)?;
    let user = config.upstream.user.as_str();
    let database = config.database();
    let mut admin = connect(&config.upstream, user, Password::FromUrl, database, &[], &[]).await?;
    let result = prepare_with(&mut admin, config, client_role, wanted).await;
    let _ = terminate(&mut admin).await;
    let setup = |reason: String| RoleError::Setup {
        role: wanted.to_owned(),
        reason,
    };
    let prepared = result.map_err(setup)?;
    match prepared {
        Prepared::Ready | Prepared::Created => Ok(SessionRole {
            name: wanted.to_owned(),
            password: if wanted == user {
                Password::FromUrl
            } else {
                Password::Never
            },
        }),
        Prepared::Privileged(roles) => Err(refused(format!(
            "it has privileges beyond DSQL's admin upstream (through {roles}): superuser, \
             CREATEROLE, CREATEDB, REPLICATION, BYPASSRLS or server file and program access"
        ))),
        Prepared::Missing => {
            tracing::warn!(
                dsql_role = client_role,
                upstream_role = wanted,
                fallback = user,
                "the upstream URL's user `{user}` is not a superuser, so dsql-local cannot create \
                 role `{wanted}`: sessions of `{client_role}` run as `{user}`"
            );
            Ok(SessionRole {
                name: user.to_owned(),
                password: Password::FromUrl,
            })
        }
    }
}

enum Prepared {
    /// The role exists and is unprivileged.
    Ready,
    /// The role was created just now, unprivileged.
    Created,
    /// The role, or roles it belongs to, are privileged (their names).
    Privileged(String),
    /// The role does not exist and cannot be created.
    Missing,
}

async fn prepare_with(
    session: &mut UpstreamSession,
    config: &LocalConfig,
    client_role: &str,
    wanted: &str,
) -> Result<Prepared, String> {
    let superuser = query(
        session,
        // Only pg_catalog on the search path: `admin` may create functions
        // and operators in `public`, which this superuser session must
        // never pick up.
        "SET standard_conforming_strings = on; SET search_path = pg_catalog; \
         SELECT rolsuper::text FROM pg_catalog.pg_roles WHERE rolname = current_user",
    )
    .await?;
    let superuser = matches!(superuser.first(), Some(Some(s)) if s == "true");
    if superuser {
        query(
            session,
            // Read committed (the session defaults to repeatable read): the
            // check below must see a role another process created while
            // this one waited for the lock.
            &format!(
                "BEGIN ISOLATION LEVEL READ COMMITTED; \
                 SELECT pg_catalog.pg_advisory_xact_lock({LOCK_KEY})"
            ),
        )
        .await?;
        let result = create_and_grant(session, config, client_role, wanted).await;
        let ready = matches!(result, Ok(Prepared::Ready | Prepared::Created));
        let ended = query(session, if ready { "COMMIT" } else { "ROLLBACK" }).await;
        if !ready {
            return result;
        }
        ended?;
        if client_role == ADMIN && matches!(result, Ok(Prepared::Created)) {
            // Tables made before the role and its default privileges (a
            // benchmark's set-up on a fresh database); once, when the role
            // is created: rewriting every table's ACL at each start races
            // with other sessions' DDL. Outside the locked transaction and
            // best effort: concurrent DDL on some table ("tuple concurrently
            // updated") must not fail the session.
            let name = ident(wanted);
            let existing = format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES ON ALL TABLES IN SCHEMA public TO {name}; \
                 GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {name}"
            );
            if let Err(error) = query(session, &existing).await {
                tracing::debug!(%error, "could not grant admin the existing tables");
            }
        }
    }
    check(session, wanted).await
}

/// Inside the locked transaction: creates `wanted` unless it exists (an
/// existing privileged role is left alone), then grants DSQL's admin
/// privileges if `client_role` is `admin`.
async fn create_and_grant(
    session: &mut UpstreamSession,
    config: &LocalConfig,
    client_role: &str,
    wanted: &str,
) -> Result<Prepared, String> {
    let (name, db) = (ident(wanted), ident(config.database()));
    let mut sql = String::new();
    let created = match check(session, wanted).await? {
        Prepared::Missing => {
            tracing::info!(role = wanted, "creating the upstream role");
            let _ = write!(
                sql,
                "CREATE ROLE {name} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION \
                 NOBYPASSRLS; "
            );
            true
        }
        Prepared::Ready | Prepared::Created => false,
        privileged @ Prepared::Privileged(_) => return Ok(privileged),
    };
    if client_role == ADMIN {
        // What DSQL's admin can do in its one database: create schemas and
        // objects, use `public`, and read and write the tables the upstream
        // URL's user creates there (test set-ups create tables directly).
        // Not TRIGGER: a trigger on a superuser's table runs as whoever
        // writes to it.
        let owner = ident(&config.upstream.user);
        let _ = write!(
            sql,
            "GRANT CONNECT, CREATE, TEMPORARY ON DATABASE {db} TO {name}; \
             GRANT USAGE, CREATE ON SCHEMA public TO {name}; \
             ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public \
             GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES ON TABLES TO {name}; \
             ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public \
             GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {name}; "
        );
    }
    if !sql.is_empty() {
        query(session, &sql).await?;
    }
    Ok(if created {
        Prepared::Created
    } else {
        Prepared::Ready
    })
}

/// Whether `role` exists, and whether it or a role it belongs to is
/// privileged.
async fn check(session: &mut UpstreamSession, role: &str) -> Result<Prepared, String> {
    let dangerous = DANGEROUS_ROLES
        .iter()
        .map(|r| literal(r))
        .collect::<Vec<_>>()
        .join(", ");
    let rows = query(
        session,
        &format!(
            "SELECT (SELECT pg_catalog.string_agg(r.rolname, ', ' ORDER BY r.rolname) \
             FROM pg_catalog.pg_roles r \
             WHERE pg_catalog.pg_has_role(me.oid, r.oid, 'MEMBER') \
             AND (r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication \
             OR r.rolbypassrls OR r.rolname IN ({dangerous}))) \
             FROM pg_catalog.pg_roles me WHERE me.rolname = {}",
            literal(role)
        ),
    )
    .await?;
    Ok(match rows.first() {
        None => Prepared::Missing,
        Some(None) => Prepared::Ready,
        Some(Some(roles)) => Prepared::Privileged(roles.clone()),
    })
}

/// Runs `sql` (simple query protocol) and returns the first column of each
/// row; an error is returned as its message, once the server is ready again.
pub(super) async fn query(session: &mut UpstreamSession, sql: &str) -> Result<Vec<Option<String>>, String> {
    let mut out = Vec::new();
    protocol::put_query(&mut out, sql);
    session.stream.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    let mut error = None;
    loop {
        let Some(frame) = session.reader.next_frame().map_err(|e| e.to_string())? else {
            match session.reader.fill(&mut session.stream).await {
                Ok(0) => return Err("the upstream closed the connection".to_owned()),
                Ok(_) => continue,
                Err(e) => return Err(e.to_string()),
            }
        };
        let body = session.reader.body(&frame);
        match frame.tag {
            b'D' => rows.push(first_column(body)),
            b'E' if error.is_none() => {
                let field = |f| error_field(body, f).map(|v| String::from_utf8_lossy(v).into_owned());
                error = Some(format!(
                    "{} ({})",
                    field(b'M').unwrap_or_default(),
                    field(b'C').unwrap_or_default()
                ));
            }
            b'Z' => return error.map_or(Ok(rows), Err),
            _ => {}
        }
    }
}

/// The first column of a `DataRow`, `None` for NULL.
fn first_column(body: &[u8]) -> Option<String> {
    let columns = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
    if columns == 0 {
        return None;
    }
    let len = i32::from_be_bytes(body.get(2..6)?.try_into().ok()?);
    let len = usize::try_from(len).ok()?;
    body.get(6..6 + len)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

pub(super) async fn terminate(session: &mut UpstreamSession) -> std::io::Result<()> {
    session.stream.write_all(b"X\0\0\0\x04").await?;
    session.stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_and_checked() {
        assert_eq!(ident("admin"), "\"admin\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
        assert!(check_name("admin").is_ok());
        assert!(check_name("pg_execute_server_program").is_err());
        assert!(check_name("PG_x").is_err());
        assert!(check_name("").is_err());
        assert!(check_name(&"a".repeat(64)).is_err());
    }

    #[test]
    fn data_rows_are_read() {
        let mut row = vec![0, 1];
        row.extend_from_slice(&4_i32.to_be_bytes());
        row.extend_from_slice(b"true");
        assert_eq!(first_column(&row).as_deref(), Some("true"));
        let mut null = vec![0, 1];
        null.extend_from_slice(&(-1_i32).to_be_bytes());
        assert_eq!(first_column(&null), None);
    }
}
