//! DSQL's asynchronous DDL: `CREATE [UNIQUE] INDEX ASYNC …` and `ALTER
//! TABLE ASYNC … VALIDATE CONSTRAINT …` answer their command tag with a
//! one-row result holding a `job_id`; `sys.jobs` lists the jobs and `CALL
//! sys.wait_for_job(id)` waits for one.
//!
//! Here the DDL runs at once, upstream, inside the statement (so the index
//! really exists afterwards, and the transaction rules hold as for any
//! DDL): the statement becomes [`statement`], a call that runs it as the
//! session's role and records a `completed` job. The relay puts DSQL's
//! command tag on its reply. Job ids are 26 lowercase characters, as DSQL's.

use crate::dialect::{AsyncDdl, REFUSAL_MARKER};

/// What replaces an asynchronous DDL statement (`ddl`: its text without
/// `ASYNC`).
#[cfg_attr(not(feature = "dialect"), allow(dead_code))]
pub(crate) fn statement(ddl: &str, job: &AsyncDdl) -> String {
    format!(
        "SELECT sys.dsql_local_run_async({}, {}, {}) AS job_id",
        literal(ddl),
        literal(job.job_type),
        literal(&job.table)
    )
}

/// `text` as a dollar-quoted literal whose tag it does not contain.
#[cfg_attr(not(feature = "dialect"), allow(dead_code))]
fn literal(text: &str) -> String {
    let mut tag = String::from("dsql_local");
    while text.contains(&format!("${tag}$")) {
        tag.push('_');
    }
    format!("${tag}${text}${tag}$")
}

pub(super) fn install_sql() -> String {
    format!(
        r#"
CREATE SCHEMA IF NOT EXISTS sys;
GRANT USAGE ON SCHEMA sys TO PUBLIC;
CREATE TABLE IF NOT EXISTS sys.jobs (
  job_id text PRIMARY KEY,
  status text NOT NULL,
  details text,
  job_type text NOT NULL,
  class_id oid,
  object_id oid,
  object_name text,
  start_time timestamptz NOT NULL,
  update_time timestamptz NOT NULL
);
GRANT SELECT ON sys.jobs TO PUBLIC;
CREATE OR REPLACE FUNCTION sys.dsql_local_record_job(job_type text, target regclass) RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog AS $fn$
  INSERT INTO sys.jobs
  SELECT substr(md5(random()::text || clock_timestamp()::text), 1, 26), 'completed', NULL, job_type,
         target, newest.oid, newest.relname, now(), clock_timestamp()
  FROM (SELECT NULL) AS one
  LEFT JOIN LATERAL (
    SELECT c.oid, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = target AND job_type = 'INDEX_BUILD'
    ORDER BY c.oid DESC LIMIT 1
  ) AS newest ON true
  RETURNING job_id
$fn$;
GRANT EXECUTE ON FUNCTION sys.dsql_local_record_job(text, regclass) TO PUBLIC;
CREATE OR REPLACE FUNCTION sys.dsql_local_run_async(ddl text, job_type text, target text) RETURNS text
LANGUAGE plpgsql AS $fn$
BEGIN
  EXECUTE ddl;
  RETURN sys.dsql_local_record_job(job_type, target::regclass);
END
$fn$;
CREATE OR REPLACE PROCEDURE sys.wait_for_job(job_id text)
LANGUAGE plpgsql SET search_path = pg_catalog AS $fn$
BEGIN
  IF job_id IS NULL OR job_id !~ '^[a-z0-9]{{26}}$' THEN
    RAISE EXCEPTION USING ERRCODE = '22P02', MESSAGE = 'Unable to convert text to UUID',
      DETAIL = '{REFUSAL_MARKER}';
  END IF;
END
$fn$;
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ddl_is_a_literal_whatever_it_holds() {
        let job = AsyncDdl {
            tag: "CREATE INDEX",
            job_type: "INDEX_BUILD",
            table: "\"t\"".to_owned(),
        };
        let sql = statement("CREATE INDEX i ON t ((c || '$dsql_local$'))", &job);
        assert!(
            sql.starts_with("SELECT sys.dsql_local_run_async($dsql_local_$CREATE INDEX"),
            "{sql}"
        );
        assert!(sql.ends_with("AS job_id"), "{sql}");
    }
}
