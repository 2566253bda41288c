//! DSQL's limits on what one transaction writes, enforced inside PostgreSQL:
//! 3,000 rows (at the statement that crosses the cap) and 10 MiB (at
//! `COMMIT`).
//!
//! A proxy sees a statement's row count only in its `CommandComplete`, after
//! the rows are written (and, in autocommit, committed): too late. So
//! PostgreSQL counts them itself: statement-level triggers with transition
//! tables on every table add each statement's rows and bytes to
//! transaction-local settings. The statement that crosses the row cap
//! raises DSQL's error, so that its rows are discarded with it (and an
//! explicit transaction is aborted), exactly where DSQL fails it. The one
//! that crosses the size cap instead marks the transaction (a row in
//! `dsql_local.oversized`), and a deferred constraint trigger on that table
//! fails the `COMMIT`, where DSQL checks size. An event trigger attaches the
//! counting triggers to every table created; tables made before are covered
//! at start.
//!
//! Bytes are the rows' text form (`octet_length(row::text)`) of inserted and
//! updated rows: independent of PostgreSQL's compression, close to what a
//! client sent. How DSQL measures its 10 MiB is not documented, and its
//! message is a best guess ([`TRANSACTION_SIZE`](crate::dialect::rules::TRANSACTION_SIZE)).
//!
//! The triggers count only in sessions that carry [`ROW_CAP_SETTING`] and
//! [`BYTE_CAP_SETTING`], which dsql-local sets under
//! [`Dialect::Dsql`](crate::Dialect::Dsql): other clients of the same
//! database, and `Dialect::Postgres`, are not limited. Installing needs a
//! superuser (event triggers); without one the limits are not enforced, and
//! a warning says so.

use dsql_auth::limits::{TRANSACTION_BYTES, TRANSACTION_ROWS};

/// The transaction-local counts (custom settings, reset at transaction end).
const ROWS_WRITTEN: &str = "dsql_local.rows_written";
const BYTES_WRITTEN: &str = "dsql_local.bytes_written";
/// The session's caps; absent means no cap.
pub(super) const ROW_CAP_SETTING: &str = "dsql_local.row_cap";
pub(super) const BYTE_CAP_SETTING: &str = "dsql_local.byte_cap";

/// The caps, as the settings' values.
pub(super) fn row_cap() -> String {
    TRANSACTION_ROWS.to_string()
}
pub(super) fn byte_cap() -> String {
    TRANSACTION_BYTES.to_string()
}

pub(super) fn install_sql() -> String {
    use crate::dialect::rules::{ROW_LIMIT, TRANSACTION_SIZE};
    let (row_code, row_message) = (ROW_LIMIT.code, ROW_LIMIT.message);
    let (size_code, size_message) = (TRANSACTION_SIZE.code, TRANSACTION_SIZE.message);
    let marker = crate::dialect::REFUSAL_MARKER;
    format!(
        r#"
CREATE SCHEMA IF NOT EXISTS dsql_local;
GRANT USAGE ON SCHEMA dsql_local TO PUBLIC;
CREATE OR REPLACE FUNCTION dsql_local.count_rows() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
DECLARE
  cap bigint := nullif(current_setting('{ROW_CAP_SETTING}', true), '')::bigint;
  byte_cap bigint := nullif(current_setting('{BYTE_CAP_SETTING}', true), '')::bigint;
  written bigint;
  bytes bigint := 0;
  total bigint;
  bytes_before bigint;
BEGIN
  IF cap IS NULL THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN
    SELECT count(*) INTO written FROM old_rows;
  ELSIF byte_cap IS NULL THEN
    SELECT count(*) INTO written FROM new_rows;
  ELSE
    SELECT count(*), coalesce(sum(octet_length(r::text)), 0) INTO written, bytes FROM new_rows r;
  END IF;
  total := coalesce(nullif(current_setting('{ROWS_WRITTEN}', true), '')::bigint, 0) + written;
  IF total > cap THEN
    RAISE EXCEPTION USING ERRCODE = '{row_code}', MESSAGE = '{row_message}', DETAIL = '{marker}';
  END IF;
  PERFORM set_config('{ROWS_WRITTEN}', total::text, true);
  IF bytes > 0 THEN
    bytes_before := coalesce(nullif(current_setting('{BYTES_WRITTEN}', true), '')::bigint, 0);
    PERFORM set_config('{BYTES_WRITTEN}', (bytes_before + bytes)::text, true);
    -- Crossing the cap marks the transaction once; its COMMIT fails.
    IF bytes_before <= byte_cap AND bytes_before + bytes > byte_cap THEN
      INSERT INTO dsql_local.oversized DEFAULT VALUES;
    END IF;
  END IF;
  RETURN NULL;
END
$fn$;
CREATE TABLE IF NOT EXISTS dsql_local.oversized (marked_at timestamptz NOT NULL DEFAULT now());
GRANT INSERT ON dsql_local.oversized TO PUBLIC;
CREATE OR REPLACE FUNCTION dsql_local.refuse_oversized() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
BEGIN
  RAISE EXCEPTION USING ERRCODE = '{size_code}', MESSAGE = '{size_message}', DETAIL = '{marker}';
END
$fn$;
DO $do$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'dsql_local_size_at_commit') THEN
    CREATE CONSTRAINT TRIGGER dsql_local_size_at_commit AFTER INSERT ON dsql_local.oversized
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION dsql_local.refuse_oversized();
  END IF;
END
$do$;
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
