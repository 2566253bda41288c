//! Which statements write: a region isolated from its peers cannot commit
//! them ([`Isolation`](crate::Isolation)), so a write in autocommit fails
//! there before it reaches PostgreSQL.
//!
//! Under [`Dialect::Dsql`](crate::Dialect::Dsql) the statement's parse tree
//! says it ([`writes`]); under [`Dialect::Postgres`](crate::Dialect::Postgres)
//! nothing is parsed, and the first keyword of each statement says it
//! ([`by_keyword`]). Either way a function that writes (`SELECT
//! nextval(…)`) is not seen: the kind of statement decides.

use super::Kind;

/// Whether a parsed statement writes (or may: `CALL`, `EXECUTE`, `DO` and
/// anything not known to only read count as writes).
#[cfg(feature = "dialect")]
pub(super) fn writes(node: &pg_query::NodeEnum) -> bool {
    use pg_query::NodeEnum as N;
    match node {
        N::SelectStmt(select) => {
            select.into_clause.is_some()
                || select
                    .with_clause
                    .as_ref()
                    .is_some_and(|with| with.ctes.iter().any(cte_writes))
        }
        N::CopyStmt(copy) => copy.is_from,
        N::ExplainStmt(explain) => explain
            .query
            .as_ref()
            .and_then(|q| q.node.as_ref())
            .is_none_or(writes),
        N::TransactionStmt(_)
        | N::VariableSetStmt(_)
        | N::VariableShowStmt(_)
        | N::PrepareStmt(_)
        | N::DeallocateStmt(_)
        | N::DiscardStmt(_)
        | N::ConstraintsSetStmt(_)
        | N::LockStmt(_)
        | N::ListenStmt(_)
        | N::UnlistenStmt(_)
        | N::FetchStmt(_)
        | N::ClosePortalStmt(_)
        | N::DeclareCursorStmt(_) => false,
        _ => true,
    }
}

/// A data-modifying `WITH` entry (`WITH moved AS (DELETE … RETURNING …)`).
#[cfg(feature = "dialect")]
fn cte_writes(cte: &pg_query::protobuf::Node) -> bool {
    use pg_query::NodeEnum as N;
    let Some(N::CommonTableExpr(cte)) = cte.node.as_ref() else {
        return false;
    };
    matches!(
        cte.ctequery.as_ref().and_then(|q| q.node.as_ref()),
        Some(N::InsertStmt(_) | N::UpdateStmt(_) | N::DeleteStmt(_) | N::MergeStmt(_))
    )
}

/// The statements of `sql` without parsing it: for each `;`-separated part,
/// its transaction control ([`Kind::Begin`], [`Kind::Commit`],
/// [`Kind::Rollback`], [`Kind::Chain`], else [`Kind::Neutral`]) and whether
/// it may write, by its first keyword. Comments, quoted strings and quoted
/// names are skipped. Conservative: a keyword not known to only read is a
/// write, and a `;` inside a dollar-quoted body splits it (the rest counts
/// as one more statement, a write unless it starts like a read).
pub(crate) fn by_keyword(sql: &[u8]) -> Vec<(Kind, bool)> {
    statements(&String::from_utf8_lossy(sql))
        .iter()
        .filter_map(|part| {
            let words: Vec<&str> = part
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| !w.is_empty())
                .collect();
            let first = *words.first()?;
            let has = |word: &str| words.contains(&word);
            let chain = has("chain") && !has("no");
            Some(match first {
                "begin" | "start" => (Kind::Begin, false),
                "commit" | "end" if has("prepared") => (Kind::Neutral, true),
                "commit" | "end" if chain => (Kind::Chain, false),
                "commit" | "end" => (Kind::Commit, false),
                "rollback" | "abort" if has("to") || has("prepared") => (Kind::Neutral, false),
                "rollback" | "abort" if chain => (Kind::Chain, false),
                "rollback" | "abort" => (Kind::Rollback, false),
                "select" | "values" | "table" => (Kind::Neutral, has("into")),
                "with" => (
                    Kind::Neutral,
                    ["insert", "update", "delete", "merge", "into"]
                        .iter()
                        .any(|w| has(w)),
                ),
                "explain" => (Kind::Neutral, has("analyze") || has("analyse")),
                "show" | "set" | "reset" | "fetch" | "move" | "close" | "declare" | "deallocate"
                | "discard" | "prepare" | "listen" | "unlisten" | "savepoint" | "release" => {
                    (Kind::Neutral, false)
                }
                _ => (Kind::Neutral, true),
            })
        })
        .collect()
}

/// What follows the first `end` in `after` (nothing if it never ends).
fn skip_to<'a>(after: &'a str, end: &str) -> &'a str {
    after.split_once(end).map_or("", |(_, next)| next)
}

/// `sql` lowercased, split at its `;`s, with comments, quoted strings and
/// quoted names replaced by a space.
fn statements(sql: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut part = String::new();
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        rest = if let Some(after) = rest.strip_prefix("--") {
            part.push(' ');
            skip_to(after, "\n")
        } else if let Some(after) = rest.strip_prefix("/*") {
            part.push(' ');
            skip_to(after, "*/")
        } else if c == '\'' || c == '"' {
            part.push(' ');
            // A doubled quote inside reads as the end and a new start:
            // both halves are skipped alike.
            skip_to(&rest[1..], if c == '"' { "\"" } else { "'" })
        } else if c == ';' {
            parts.push(std::mem::take(&mut part));
            &rest[1..]
        } else {
            part.push(c.to_ascii_lowercase());
            &rest[c.len_utf8()..]
        };
    }
    parts.push(part);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyword(sql: &str) -> Vec<(Kind, bool)> {
        by_keyword(sql.as_bytes())
    }

    #[test]
    fn keywords_say_what_reads_and_what_writes() {
        use Kind::*;
        assert_eq!(keyword("SELECT 1"), [(Neutral, false)]);
        assert_eq!(keyword("  -- note\n/* x */ (select 1)"), [(Neutral, false)]);
        assert_eq!(keyword("INSERT INTO t VALUES (1)"), [(Neutral, true)]);
        assert_eq!(keyword("select * into t2 from t"), [(Neutral, true)]);
        assert_eq!(
            keyword("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d"),
            [(Neutral, true)]
        );
        assert_eq!(
            keyword("WITH a AS (SELECT 1) SELECT * FROM a"),
            [(Neutral, false)]
        );
        assert_eq!(
            keyword("BEGIN; UPDATE t SET v = 1; COMMIT;"),
            [(Begin, false), (Neutral, true), (Commit, false)]
        );
        assert_eq!(keyword("commit and chain"), [(Chain, false)]);
        assert_eq!(keyword("COMMIT AND NO CHAIN"), [(Commit, false)]);
        assert_eq!(keyword("rollback to savepoint a"), [(Neutral, false)]);
        assert_eq!(keyword("END"), [(Commit, false)]);
        assert_eq!(keyword("EXPLAIN ANALYZE DELETE FROM t"), [(Neutral, true)]);
        assert_eq!(keyword("explain select 1"), [(Neutral, false)]);
        assert_eq!(keyword("CREATE TABLE t (id int)"), [(Neutral, true)]);
        assert_eq!(keyword("-1"), [(Neutral, true)], "not a read keyword");
        assert!(keyword("").is_empty());
        assert!(keyword(" ; -- nothing").is_empty());
        assert!(keyword("\u{0}é").is_empty(), "no word, no statement");
        // Quoted text and comments are not statements.
        assert_eq!(
            keyword("SELECT ';insert', \"a;b\" -- ; delete\n/* ; drop */ FROM t"),
            [(Neutral, false)]
        );
        assert_eq!(
            keyword("select '--'; insert into t values (1)"),
            [(Neutral, false), (Neutral, true)]
        );
        assert_eq!(
            keyword("select 'it''s'; delete from t"),
            [(Neutral, false), (Neutral, true)]
        );
    }

    #[cfg(feature = "dialect")]
    #[test]
    fn parse_trees_say_what_writes() {
        let writes = |sql: &str| {
            crate::dialect::analyze::analyze(sql)
                .statements
                .iter()
                .map(|s| s.writes)
                .collect::<Vec<_>>()
        };
        assert_eq!(writes("SELECT 1; SELECT * FROM t FOR UPDATE"), [false, false]);
        assert_eq!(
            writes("INSERT INTO t VALUES (1); UPDATE t SET a = 1; DELETE FROM t"),
            [true, true, true]
        );
        assert_eq!(
            writes("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d"),
            [true]
        );
        assert_eq!(writes("WITH a AS (SELECT 1) SELECT * FROM a"), [false]);
        assert_eq!(writes("COPY t FROM STDIN; COPY t TO STDOUT"), [true, false]);
        assert_eq!(writes("CREATE TABLE t (id uuid PRIMARY KEY)"), [true]);
        assert_eq!(writes("BEGIN; SET x = 1; SHOW x; COMMIT"), [false; 4]);
        assert_eq!(writes("EXPLAIN SELECT 1; EXPLAIN DELETE FROM t"), [false, true]);
        assert_eq!(writes("CALL sys.wait_for_job('x')"), [true]);
    }
}
