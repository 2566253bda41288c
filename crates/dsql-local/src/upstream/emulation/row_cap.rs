//! DSQL's cap on the rows one transaction writes (3,000), enforced inside
//! PostgreSQL.
//!
//! A proxy sees a statement's row count only in its `CommandComplete`, after
//! the rows are written (and, in autocommit, committed): too late. So
//! PostgreSQL counts them itself: statement-level triggers with transition
//! tables on every table add each statement's rows to a transaction-local
//! setting, and the statement that crosses the cap raises DSQL's error, so
//! that its rows are discarded with it (and an explicit transaction is
//! aborted), exactly where DSQL fails it. An event trigger attaches the
//! triggers to every table created; tables made before are covered at start.
//!
//! The triggers count only in sessions that carry `dsql_local.row_cap`,
//! which dsql-local sets under [`Dialect::Dsql`](crate::Dialect::Dsql):
//! other clients of the same database, and `Dialect::Postgres`, are not
//! limited. Installing needs a superuser (event triggers); without one the
//! cap is not enforced, and a warning says so.

use dsql_auth::limits::TRANSACTION_ROWS;

/// The transaction-local count (a custom setting, reset at transaction end).
const COUNTER: &str = "dsql_local.rows_written";
/// The session's cap; absent means no cap.
pub(super) const CAP: &str = "dsql_local.row_cap";

/// The cap, as the setting's value.
pub(super) const ROW_CAP: &str = {
    assert!(TRANSACTION_ROWS == 3_000);
    "3000"
};

pub(super) fn install_sql() -> String {
    let message = crate::dialect::rules::ROW_LIMIT.message;
    let code = crate::dialect::rules::ROW_LIMIT.code;
    let marker = crate::dialect::REFUSAL_MARKER;
    format!(
        r#"
CREATE SCHEMA IF NOT EXISTS dsql_local;
GRANT USAGE ON SCHEMA dsql_local TO PUBLIC;
CREATE OR REPLACE FUNCTION dsql_local.count_rows() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
DECLARE
  cap bigint := nullif(current_setting('{CAP}', true), '')::bigint;
  written bigint;
  total bigint;
BEGIN
  IF cap IS NULL THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN
    SELECT count(*) INTO written FROM old_rows;
  ELSE
    SELECT count(*) INTO written FROM new_rows;
  END IF;
  total := coalesce(nullif(current_setting('{COUNTER}', true), '')::bigint, 0) + written;
  IF total > cap THEN
    RAISE EXCEPTION USING ERRCODE = '{code}', MESSAGE = '{message}', DETAIL = '{marker}';
  END IF;
  PERFORM set_config('{COUNTER}', total::text, true);
  RETURN NULL;
END
$fn$;
CREATE OR REPLACE FUNCTION dsql_local.attach(rel regclass) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = rel AND tgname = 'dsql_local_rows_insert')
     OR (SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = rel) IN ('sys', 'dsql_local') THEN
    RETURN;
  END IF;
  EXECUTE format('CREATE TRIGGER dsql_local_rows_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dsql_local.count_rows()', rel);
  EXECUTE format('CREATE TRIGGER dsql_local_rows_update AFTER UPDATE ON %s REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dsql_local.count_rows()', rel);
  EXECUTE format('CREATE TRIGGER dsql_local_rows_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dsql_local.count_rows()', rel);
END
$fn$;
CREATE OR REPLACE FUNCTION dsql_local.attach_to_new_tables() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
DECLARE
  created record;
BEGIN
  FOR created IN
    SELECT objid FROM pg_event_trigger_ddl_commands()
    WHERE command_tag = 'CREATE TABLE' AND object_type = 'table'
  LOOP
    PERFORM dsql_local.attach(created.objid::regclass);
  END LOOP;
END
$fn$;
DO $do$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'dsql_local_row_cap') THEN
    CREATE EVENT TRIGGER dsql_local_row_cap ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
      EXECUTE FUNCTION dsql_local.attach_to_new_tables();
  END IF;
END
$do$;
SELECT dsql_local.attach(c.oid::regclass)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'dsql_local', 'sys')
  AND n.nspname NOT LIKE 'pg\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname = 'dsql_local_rows_insert');
"#
    )
}
