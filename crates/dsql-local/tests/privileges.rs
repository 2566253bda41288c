//! What a client of dsql-local can do upstream: what DSQL's `admin` can, and
//! nothing that reaches the database host. Sessions run as an unprivileged
//! upstream role named after the DSQL role, client startup parameters are
//! filtered, the database is always the configured one, and the public test
//! key is refused off loopback. Needs the PostgreSQL on 127.0.0.1:5432 (its
//! user `postgres`, a superuser, creates the roles).
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use dsql_local::{ConfigError, Dialect, DsqlLocal, RefusalReason, StartError};
use dsql_testkit::local::{connect, connect_with, db_error, pg_config, sign, start};
use dsql_testkit::{direct, tls, unique};

/// Under the PostgreSQL dialect, so that every statement below reaches the
/// upstream's privilege checks (DSQL's dialect refuses some of them first,
/// which would hide a privilege that is too wide).
#[tokio::test]
async fn admin_runs_as_an_unprivileged_admin_role() {
    let local = start(DsqlLocal::builder().dialect(Dialect::Postgres)).await;
    let admin = connect(&local, "admin").await.expect("connects");
    let user: String = admin
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(user, "admin");

    // What DSQL's admin can do.
    let table = unique("privileges");
    let schema = unique("schema");
    for sql in [
        format!("CREATE TABLE {table} (id int PRIMARY KEY, v text)"),
        format!("CREATE INDEX {table}_v ON {table} (v)"),
        format!("CREATE VIEW {table}_view AS SELECT id FROM {table}"),
        format!("INSERT INTO {table} VALUES (1, 'one')"),
        format!("CREATE SCHEMA {schema}"),
        format!("CREATE TABLE {schema}.t (id int)"),
        format!("DROP SCHEMA {schema} CASCADE"),
    ] {
        admin.batch_execute(&sql).await.expect(&sql);
    }
    let v: String = admin
        .query_one(
            &format!("SELECT v FROM {table}_view JOIN {table} USING (id)"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "one");

    // Nothing that reaches the database host or another role's power.
    // (COPY FROM PROGRAM into admin's own table: no temporary table on DSQL.)
    let copy_from_program = format!("COPY {table} (v) FROM PROGRAM 'id'");
    for sql in [
        "COPY (SELECT 1) TO PROGRAM 'true'",
        "COPY (SELECT 1) TO '/tmp/dsql-local-escalation'",
        copy_from_program.as_str(),
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT pg_ls_dir('/')",
        "ALTER SYSTEM SET work_mem = '1MB'",
        "GRANT pg_execute_server_program TO admin",
        "GRANT pg_read_server_files TO admin",
        "CREATE ROLE escalation_x SUPERUSER",
        "CREATE ROLE escalation_y",
        "ALTER ROLE admin SUPERUSER",
        "SET ROLE postgres",
        "SET SESSION AUTHORIZATION postgres",
        "CREATE DATABASE escalation",
        "SET session_replication_role = replica",
    ] {
        let error = admin.batch_execute(sql).await.expect_err(sql);
        let code = db_error(&error).code().code().to_owned();
        assert!(code == "42501", "{sql}: {code} {:?}", db_error(&error).message());
        let _ = admin.batch_execute("ROLLBACK").await;
    }
    let still: String = admin
        .query_one("SELECT current_user::text", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(still, "admin");

    // Seen from the superuser: admin holds no privileged attribute or role.
    let check = direct().await;
    let row = check
        .query_one(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, \
             (SELECT count(*) FROM pg_roles r WHERE pg_has_role('admin', r.oid, 'MEMBER') \
              AND r.rolname <> 'admin') \
             FROM pg_roles WHERE rolname = 'admin'",
            &[],
        )
        .await
        .unwrap();
    for i in 0..5 {
        assert!(!row.get::<_, bool>(i), "attribute {i}");
    }
    assert_eq!(row.get::<_, i64>(5), 0, "admin belongs to other roles");
    check
        .batch_execute(&format!("DROP TABLE {table} CASCADE"))
        .await
        .unwrap();
    drop(admin);
    local.shutdown().await;
}

#[tokio::test]
async fn other_roles_run_as_themselves_and_privileged_roles_are_refused() {
    let local = start(DsqlLocal::builder()).await;
    let reader = connect(&local, "reader").await.expect("connects");
    let row = reader
        .query_one(
            "SELECT current_user::text, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "reader");
    assert!(!row.get::<_, bool>(1));
    drop(reader);

    // A DSQL role named like the upstream superuser is not that superuser.
    let error = connect(&local, "postgres").await.expect_err("a superuser");
    let db = db_error(&error);
    assert_eq!((db.code().code(), db.severity()), ("28000", "FATAL"), "{db:?}");
    assert!(db.message().contains("privileges"), "{db:?}");
    assert_eq!(
        local
            .stats()
            .snapshot()
            .refused
            .get(RefusalReason::PrivilegedRole),
        1
    );
    local.shutdown().await;

    // Nor is a role mapped to it.
    let mapped = start(DsqlLocal::builder().map_role("admin", "postgres")).await;
    let error = connect(&mapped, "admin").await.expect_err("a superuser");
    assert_eq!(db_error(&error).code().code(), "28000");
    mapped.shutdown().await;
}

#[tokio::test]
async fn only_harmless_startup_parameters_reach_the_upstream() {
    let local = start(DsqlLocal::builder()).await;
    let config = local.client_config("admin").unwrap();
    let token = sign(&config, local.credentials(), None).await;
    let app = unique("params");
    let mut pg = pg_config(&config, &token);
    pg.application_name(&app)
        .options("-c work_mem=1234kB -c statement_timeout=4321");
    let client = connect_with(&pg, tls::verify_full(local.ca_pem()))
        .await
        .expect("connects");
    let row = client
        .query_one(
            "SELECT current_setting('application_name'), current_setting('work_mem'), \
             current_setting('statement_timeout')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), app);
    assert_ne!(row.get::<_, String>(1), "1234kB", "options was forwarded");
    assert_ne!(row.get::<_, String>(2), "4321ms", "options was forwarded");
    drop(client);
    local.shutdown().await;
}

#[tokio::test]
async fn the_database_is_always_the_configured_one() {
    let local = start(DsqlLocal::builder().upstream("postgres://postgres@127.0.0.1:5432/postgres")).await;
    for (asked, accepted) in [("postgres", true), ("template1", false), ("test", false)] {
        let config = local
            .client_config("admin")
            .unwrap()
            .to_builder()
            .database(asked)
            .build()
            .unwrap();
        let token = sign(&config, local.credentials(), None).await;
        let result = connect_with(&pg_config(&config, &token), tls::verify_full(local.ca_pem())).await;
        if accepted {
            let db: String = result
                .expect("connects")
                .query_one("SELECT current_database()::text", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(db, "postgres");
        } else {
            let error = result.expect_err(asked);
            let db = db_error(&error);
            assert_eq!((db.code().code(), db.severity()), ("3D000", "FATAL"), "{db:?}");
            assert!(db.message().contains(asked), "{db:?}");
            assert!(
                db.hint().unwrap_or_default().contains("dbname=postgres"),
                "{db:?}"
            );
        }
    }
    assert_eq!(
        local
            .stats()
            .snapshot()
            .refused
            .get(RefusalReason::UnknownDatabase),
        2
    );
    local.shutdown().await;
}

#[tokio::test]
async fn the_public_test_key_stays_on_loopback() {
    let any: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let error = DsqlLocal::builder()
        .listen(any)
        .start()
        .await
        .expect_err("the public key on 0.0.0.0");
    assert!(
        matches!(
            error,
            StartError::Config(ConfigError::PublicKeyOffLoopback { listen }) if listen == any
        ),
        "{error}"
    );
    let message = error.to_string();
    assert!(message.contains("access_key"), "{message}");
    assert!(message.contains("--allow-public-key-off-loopback"), "{message}");

    // Unknown keys (signatures unchecked) are as public.
    let error = DsqlLocal::builder()
        .listen(any)
        .without_default_key()
        .allow_unknown_access_keys(true)
        .build()
        .expect_err("unknown keys on 0.0.0.0");
    assert!(
        matches!(error, ConfigError::PublicKeyOffLoopback { .. }),
        "{error}"
    );

    // Your own key, or an explicit opt-in, may listen anywhere.
    let own = DsqlLocal::builder()
        .listen(any)
        .without_default_key()
        .access_key(dsql_local::AccessKey::new("AKIDMINE", "my-own-secret"))
        .build()
        .expect("own key");
    assert!(!own.public_key_off_loopback());
    let allowed = DsqlLocal::builder()
        .listen(any)
        .allow_public_key_off_loopback(true)
        .build()
        .expect("opted in");
    assert!(allowed.public_key_off_loopback());
    // IPv6 and IPv4-mapped loopback are loopback.
    for addr in ["[::1]:0", "[::ffff:127.0.0.1]:0", "127.0.0.2:0"] {
        DsqlLocal::builder()
            .listen(addr.parse().unwrap())
            .build()
            .unwrap_or_else(|e| panic!("{addr}: {e}"));
    }
}
