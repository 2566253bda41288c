//! Reading SQL text with PostgreSQL's own grammar (`pg_query`): which
//! statements it holds, what kind each is, and whether DSQL refuses it.
//!
//! `ASYNC` (`CREATE INDEX ASYNC`, `ALTER TABLE ASYNC … VALIDATE
//! CONSTRAINT`) is not PostgreSQL grammar: it is found on the scanner's
//! tokens and blanked out (same length, so every location still holds)
//! before parsing; the text sent upstream is the blanked one.
//!
//! Text that does not parse is passed through untouched, so that PostgreSQL
//! gives its own syntax error.

use pg_query::protobuf::Token;

use super::checks::check;
use super::{Analysis, AsyncDdl, Statement, surface};
use crate::upstream::emulation::jobs;

/// Reads `sql`.
pub(super) fn analyze(sql: &str) -> Analysis {
    let Some(asyncs) = async_keywords(sql) else {
        return Analysis::unparsed();
    };
    let blanked = if asyncs.is_empty() {
        None
    } else {
        let mut text = sql.to_owned();
        for &(start, end) in &asyncs {
            text.replace_range(start..end, &" ".repeat(end - start));
        }
        Some(text)
    };
    let text = blanked.as_deref().unwrap_or(sql);
    let Ok(parsed) = pg_query::parse(text, pg_query::ParserOptions::DEFAULT) else {
        // PostgreSQL's syntax error, but on the text without DSQL's
        // keyword, as DSQL's grammar has it (`CREATE INDEX ASYNC s.i …`
        // fails at the `.`).
        return Analysis {
            upstream_text: blanked,
            ..Analysis::unparsed()
        };
    };
    let statements: Vec<Statement> = parsed
        .protobuf
        .stmts
        .iter()
        .filter_map(|raw| {
            let node = raw.stmt.as_ref()?.node.as_ref()?;
            let start = usize::try_from(raw.stmt_location).unwrap_or(0);
            let len = usize::try_from(raw.stmt_len).unwrap_or(0);
            let end = if len == 0 { text.len() } else { start + len };
            let is_async = asyncs.iter().any(|&(a, _)| a >= start && a < end);
            let segment = text.get(start..end).unwrap_or_default();
            let (kind, refusal) = check(node, segment, is_async);
            let (rewrite, tag) = match refusal {
                Some(_) => (None, None),
                None => rewrite(node, segment, start, is_async),
            };
            Some(Statement {
                start,
                end,
                kind,
                refusal,
                rewrite,
                tag,
                writes: super::writes::writes(node),
            })
        })
        .collect();
    let reusable = blanked.is_none()
        && matches!(
            parsed.protobuf.stmts.as_slice(),
            [raw] if raw.stmt_location == 0 && matches!(
                raw.stmt.as_ref().and_then(|s| s.node.as_ref()),
                Some(
                    pg_query::NodeEnum::SelectStmt(_)
                        | pg_query::NodeEnum::InsertStmt(_)
                        | pg_query::NodeEnum::UpdateStmt(_)
                        | pg_query::NodeEnum::DeleteStmt(_)
                )
            )
        )
        && statements
            .iter()
            .all(|s: &Statement| s.refusal.is_none() && s.rewrite.is_none() && s.tag.is_none());
    Analysis {
        parsed: true,
        upstream_text: blanked,
        statements,
        reusable,
    }
}

/// What to send upstream instead of a statement DSQL answers differently
/// from PostgreSQL, and the tag DSQL gives it.
fn rewrite(
    node: &pg_query::NodeEnum,
    segment: &str,
    start: usize,
    is_async: bool,
) -> (Option<String>, Option<&'static str>) {
    if is_async && let Some(job) = async_ddl(node) {
        return (Some(jobs::statement(segment, &job)), Some(job.tag));
    }
    if let pg_query::NodeEnum::VariableShowStmt(show) = node
        && let Some(value) = surface::setting(&show.name)
    {
        let column = show.name.to_ascii_lowercase();
        return (
            Some(format!("SELECT '{value}'::text AS \"{column}\"")),
            Some("SHOW"),
        );
    }
    let calls = surface_calls(node, segment);
    if calls.is_empty() {
        return (None, None);
    }
    // `version()` becomes `sys.version()`: the column keeps its name.
    let mut text = segment.to_owned();
    for at in calls.into_iter().rev() {
        if let Some(offset) = at.checked_sub(start).filter(|&o| text.is_char_boundary(o)) {
            text.insert_str(offset, "sys.");
        }
    }
    (Some(text), None)
}

/// Where the unqualified `version()` and `current_setting(…)` calls of a
/// query start: they are answered by `sys.`'s versions, which say what DSQL
/// says.
fn surface_calls(node: &pg_query::NodeEnum, text: &str) -> Vec<usize> {
    use pg_query::NodeEnum as N;
    if !(contains_word(text, "version") || contains_word(text, "current_setting")) {
        return Vec::new();
    }
    if !matches!(
        node,
        N::SelectStmt(_) | N::InsertStmt(_) | N::UpdateStmt(_) | N::DeleteStmt(_) | N::ExplainStmt(_)
    ) {
        return Vec::new();
    }
    let Ok(tree) = serde_json::to_value(node) else {
        return Vec::new();
    };
    let mut calls = Vec::new();
    find_calls(&tree, &mut calls);
    calls.sort_unstable();
    calls
}

fn find_calls(value: &serde_json::Value, calls: &mut Vec<usize>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(call) = map.get("FuncCall") {
                let names = call.get("funcname").and_then(|n| n.as_array());
                let name = names
                    .filter(|n| n.len() == 1)
                    .and_then(|n| n[0].pointer("/node/String/sval"))
                    .and_then(|n| n.as_str());
                let args = call.get("args").and_then(|a| a.as_array()).map_or(0, Vec::len);
                let location = call.get("location").and_then(serde_json::Value::as_u64);
                if let (Some("version"), 0) | (Some("current_setting"), 1 | 2) = (name, args)
                    && let Some(at) = location.and_then(|l| usize::try_from(l).ok())
                {
                    calls.push(at);
                }
            }
            map.values().for_each(|child| find_calls(child, calls));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| find_calls(item, calls)),
        _ => {}
    }
}

/// Whether `text` holds `word` (ASCII, any case): a cheap test before work
/// that could only find something if it does.
pub(super) fn contains_word(text: &str, word: &str) -> bool {
    text.as_bytes()
        .windows(word.len())
        .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
}

/// What an `ASYNC` statement is, for its reply and its job.
fn async_ddl(node: &pg_query::NodeEnum) -> Option<AsyncDdl> {
    let qualified = |r: &pg_query::protobuf::RangeVar| {
        if r.schemaname.is_empty() {
            quote(&r.relname)
        } else {
            format!("{}.{}", quote(&r.schemaname), quote(&r.relname))
        }
    };
    match node {
        pg_query::NodeEnum::IndexStmt(index) => Some(AsyncDdl {
            tag: "CREATE INDEX",
            job_type: "INDEX_BUILD",
            table: qualified(index.relation.as_ref()?),
        }),
        pg_query::NodeEnum::AlterTableStmt(alter) => Some(AsyncDdl {
            tag: "ALTER TABLE",
            job_type: "VALIDATE_CONSTRAINT",
            table: qualified(alter.relation.as_ref()?),
        }),
        _ => None,
    }
}

/// An identifier, quoted for PostgreSQL.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Byte ranges of the `ASYNC` keywords of DSQL's asynchronous DDL: right
/// after `CREATE [UNIQUE] INDEX` or `ALTER TABLE` at the start of a
/// statement. `None` when the text does not even scan.
fn async_keywords(sql: &str) -> Option<Vec<(usize, usize)>> {
    // Scanning costs a round trip through protobuf: only when it can find
    // something.
    if !contains_word(sql, "async") {
        return Some(Vec::new());
    }
    let tokens = pg_query::scan(sql).ok()?.tokens;
    let words: Vec<(usize, usize, bool)> = tokens
        .iter()
        .filter(|t| !matches!(Token::try_from(t.token), Ok(Token::SqlComment | Token::CComment)))
        .filter_map(|t| {
            let (start, end) = (usize::try_from(t.start).ok()?, usize::try_from(t.end).ok()?);
            Some((start, end, t.token == Token::Ascii59 as i32))
        })
        .collect();
    let word = |i: usize| -> Option<&str> {
        let &(start, end, semicolon) = words.get(i)?;
        (!semicolon).then(|| sql.get(start..end)).flatten()
    };
    let is = |i: usize, expected: &str| word(i).is_some_and(|w| w.eq_ignore_ascii_case(expected));
    let mut found = Vec::new();
    for i in 0..words.len() {
        let statement_start = i == 0 || words[i - 1].2;
        if !statement_start {
            continue;
        }
        let keyword = if is(i, "create") && is(i + 1, "index") {
            Some(i + 2)
        } else if is(i, "create") && is(i + 1, "unique") && is(i + 2, "index") {
            Some(i + 3)
        } else if is(i, "alter") && is(i + 1, "table") {
            Some(i + 2)
        } else {
            None
        };
        if let Some(k) = keyword.filter(|&k| is(k, "async")) {
            found.push((words[k].0, words[k].1));
        }
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::Kind;

    fn kinds(sql: &str) -> Vec<Kind> {
        analyze(sql).statements.iter().map(|s| s.kind).collect()
    }

    fn refusal(sql: &str) -> Option<String> {
        analyze(sql)
            .statements
            .iter()
            .find_map(|s| s.refusal.as_ref().map(|r| format!("{} {}", r.code(), r.message)))
    }

    #[test]
    fn async_is_found_on_tokens_and_blanked() {
        let a = analyze("CREATE INDEX ASYNC ON t (c)");
        assert_eq!(a.upstream_text.as_deref(), Some("CREATE INDEX       ON t (c)"));
        assert_eq!(a.statements[0].tag, Some("CREATE INDEX"));
        let rewrite = a.statements[0].rewrite.as_deref().unwrap_or_default();
        assert!(
            rewrite.contains("$INDEX_BUILD$") && rewrite.contains("$\"t\"$"),
            "{rewrite}"
        );
        assert_eq!(a.statements[0].refusal, None);
        let a = analyze("create unique index async if not exists i on t (c); select 1");
        assert!(a.statements[0].tag.is_some() && a.statements[1].tag.is_none());
        // A column named async is not the keyword.
        assert!(analyze("SELECT async FROM t").upstream_text.is_none());
        assert_eq!(
            refusal("CREATE INDEX i ON t (c)").as_deref(),
            Some("0A000 unsupported mode. please use CREATE INDEX ASYNC.")
        );
    }

    #[test]
    fn dsqls_version_and_settings_are_asked_of_sys() {
        let a = analyze("SELECT version(), current_setting('server_version'), pg_catalog.version()");
        assert_eq!(
            a.statements[0].rewrite.as_deref(),
            Some("SELECT sys.version(), sys.current_setting('server_version'), pg_catalog.version()")
        );
        let a = analyze("SHOW server_version_num");
        assert_eq!(a.statements[0].tag, Some("SHOW"));
        assert_eq!(
            a.statements[0].rewrite.as_deref(),
            Some("SELECT '160015'::text AS \"server_version_num\"")
        );
        assert_eq!(analyze("SELECT 1").statements[0].rewrite, None);
    }

    #[test]
    fn only_single_unrefused_queries_are_reusable_by_shape() {
        use std::sync::Arc;
        assert!(analyze("SELECT v FROM kv WHERE k = 1").reusable);
        assert!(analyze("INSERT INTO kv VALUES (1, 2)").reusable);
        for not in [
            "CREATE SEQUENCE s CACHE 1",
            "SELECT 1; SELECT 2",
            "SELECT current_setting('work_mem')",
            "SELECT * FROM t FOR SHARE",
            "SHOW server_version",
        ] {
            assert!(!analyze(not).reusable, "{not}");
        }
        // Same shape, one read: the second text reuses the first's decision.
        let rules = crate::dialect::SqlRules::default();
        let first = rules.analyze("SELECT v FROM kv WHERE k = 1");
        let second = rules.analyze("SELECT v FROM kv WHERE k = 22");
        assert_eq!(first.statements[0].kind, second.statements[0].kind);
        assert!(Arc::ptr_eq(&first, &second));
        assert!(
            rules.analyze("CREATE SEQUENCE s CACHE 100").statements[0]
                .refusal
                .is_some()
        );
    }

    #[test]
    fn statements_are_classified() {
        assert_eq!(
            kinds("BEGIN; CREATE TABLE t (id int); INSERT INTO t VALUES (1); SELECT 1; COMMIT"),
            [Kind::Begin, Kind::Ddl, Kind::Dml, Kind::Neutral, Kind::Commit]
        );
        assert_eq!(kinds("SELECT * FROM t"), [Kind::Dml]);
        assert_eq!(kinds("COMMIT AND CHAIN; ROLLBACK"), [Kind::Chain, Kind::Rollback]);
        assert!(!analyze("SELEC 1").parsed);
        let a = analyze("CREATE INDEX ASYNC public.i ON t (c)");
        assert!(!a.parsed);
        assert_eq!(
            a.upstream_text.as_deref(),
            Some("CREATE INDEX       public.i ON t (c)")
        );
        assert_eq!(
            refusal("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE").as_deref(),
            Some("0A000 Unsupported isolation level: SERIALIZABLE")
        );
    }

    #[test]
    fn refusals_carry_dsqls_words() {
        let cases = [
            ("TRUNCATE t", "0A000 unsupported statement: Truncate"),
            (
                "CREATE TEMP TABLE t (id int)",
                "0A000 TEMPORARY or TEMP table not supported for CREATE TABLE",
            ),
            (
                "CREATE TABLE t (id serial)",
                "42704 type \"serial\" does not exist",
            ),
            (
                "CREATE TABLE t (a int[])",
                "0A000 datatype integer[] not supported",
            ),
            (
                "CREATE TABLE t (a varbit(3))",
                "0A000 datatype bit varying not supported",
            ),
            (
                "SELECT * FROM t FOR SHARE",
                "0A000 locking clauses other than FOR UPDATE/FOR KEY SHARE are not supported",
            ),
            (
                "BEGIN ISOLATION LEVEL SERIALIZABLE",
                "0A000 Unsupported isolation level: SERIALIZABLE",
            ),
            (
                "SET TRANSACTION READ ONLY",
                "0A000 setting configuration parameter \"TRANSACTION\" not supported",
            ),
            (
                "SAVEPOINT a",
                "0A000 unsupported transaction statement: SAVEPOINT",
            ),
            (
                "ROLLBACK TO SAVEPOINT a",
                "0A000 unsupported transaction statement: ROLLBACK TO",
            ),
            (
                "CREATE SEQUENCE s",
                "0A000 CREATE SEQUENCE is not supported without an explicit cache size. please define CACHE greater than or equal to 65536 or equal to 1",
            ),
            (
                "CREATE TABLE t (id int GENERATED ALWAYS AS IDENTITY (CACHE 1))",
                "0A000 datatype integer not supported, identity column type must be bigint",
            ),
            (
                "ALTER TABLE t ADD COLUMN c int NOT NULL",
                "0A000 ALTER TABLE ADD COLUMN with constraint not supported",
            ),
            (
                "ALTER TABLE t ALTER COLUMN c TYPE bigint",
                "0A000 unsupported ALTER TABLE ALTER COLUMN ... SET DATA TYPE statement",
            ),
            (
                "ALTER TABLE t VALIDATE CONSTRAINT c",
                "0A000 unsupported ALTER TABLE VALIDATE CONSTRAINT statement",
            ),
            (
                "SELECT to_tsvector('english', 'a')",
                "42704 text search configuration \"english\" does not exist",
            ),
            (
                "SELECT circle(point(0,0), 1)",
                "0A000 datatype circle not supported",
            ),
            (
                "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE",
                "0A000 unsupported statement type: MERGE",
            ),
            (
                "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END $$",
                "0A000 CREATE FUNCTION with language plpgsql not supported",
            ),
            (
                "SHOW lc_collate",
                "42704 unrecognized configuration parameter \"lc_collate\"",
            ),
        ];
        for (sql, expected) in cases {
            assert_eq!(refusal(sql).as_deref(), Some(expected), "{sql}");
        }
        for allowed in [
            "CREATE TABLE t (id uuid PRIMARY KEY, n numeric(10, 2), j jsonb, c char(3), v varchar(9))",
            "CREATE TABLE t (id bigint GENERATED BY DEFAULT AS IDENTITY (CACHE 65536))",
            "CREATE SEQUENCE s CACHE 1",
            "SELECT * FROM t FOR UPDATE",
            "SELECT * FROM t FOR KEY SHARE",
            "BEGIN ISOLATION LEVEL REPEATABLE READ",
            "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID",
            "ALTER TABLE ASYNC t VALIDATE CONSTRAINT c",
            "CREATE VIEW v AS SELECT 1",
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "SELECT string_to_array('a,b', ',')",
            "ANALYZE t",
        ] {
            assert_eq!(refusal(allowed), None, "{allowed}");
        }
    }
}
