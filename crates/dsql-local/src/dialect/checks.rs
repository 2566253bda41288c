//! One statement against DSQL's rules: its [`Kind`] for the transaction
//! rules, and the refusal DSQL answers it with, if any.
//!
//! A deny-list of observed forms: a statement no rule names passes, never
//! "unknown, so refused".

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterTableCmd, AlterTableType, ColumnDef, ConstrType, Constraint, CreateStmt, DefElem,
    LockClauseStrength, ObjectType, TransactionStmtKind,
};
use serde_json::Value;

use super::Kind;
use super::analyze::contains_word;
use super::rules::{self, Refusal};
use super::types;

/// Classifies and checks one parsed statement (`text`: its text);
/// `is_async`: it carried DSQL's `ASYNC` keyword.
pub(super) fn check(node: &NodeEnum, text: &str, is_async: bool) -> (Kind, Option<Refusal>) {
    use NodeEnum as N;
    match node {
        N::TransactionStmt(t) => transaction(t),
        N::VariableSetStmt(set) => {
            let refusal = match set.name.as_str() {
                // An isolation level DSQL lacks is named first.
                "TRANSACTION" | "SESSION CHARACTERISTICS" => {
                    isolation(&set.args).or_else(|| rules::SET_TRANSACTION.refuse())
                }
                "default_transaction_isolation" => rules::SET_DEFAULT_ISOLATION.refuse(),
                _ => None,
            };
            (Kind::Neutral, refusal)
        }
        N::VariableShowStmt(show) => (Kind::Neutral, unrecognized_parameter(&show.name)),
        N::SelectStmt(select) => {
            if select.into_clause.is_some() {
                return (Kind::Ddl, rules::CREATE_TABLE_AS.refuse());
            }
            query(node, text)
        }
        N::InsertStmt(_) | N::UpdateStmt(_) | N::DeleteStmt(_) => {
            let (_, refusal) = query(node, text);
            (Kind::Dml, refusal)
        }
        N::MergeStmt(_) => (Kind::Dml, rules::MERGE.refuse()),
        N::ExplainStmt(explain) => match explain.query.as_ref().and_then(|q| q.node.as_ref()) {
            Some(inner) => check(inner, text, false),
            None => (Kind::Neutral, None),
        },
        N::CopyStmt(_) | N::ExecuteStmt(_) => (Kind::Dml, None),
        N::CallStmt(_)
        | N::PrepareStmt(_)
        | N::DeallocateStmt(_)
        | N::DiscardStmt(_)
        | N::LockStmt(_)
        | N::CheckPointStmt(_)
        | N::LoadStmt(_)
        | N::ConstraintsSetStmt(_) => (Kind::Neutral, None),
        ddl => (Kind::Ddl, refuse_ddl(ddl, is_async)),
    }
}

fn transaction(t: &pg_query::protobuf::TransactionStmt) -> (Kind, Option<Refusal>) {
    use TransactionStmtKind as T;
    match T::try_from(t.kind).unwrap_or(T::Undefined) {
        T::TransStmtBegin | T::TransStmtStart => (Kind::Begin, isolation(&t.options)),
        T::TransStmtCommit if t.chain => (Kind::Chain, None),
        T::TransStmtRollback if t.chain => (Kind::Chain, None),
        T::TransStmtCommit => (Kind::Commit, None),
        T::TransStmtRollback => (Kind::Rollback, None),
        T::TransStmtSavepoint => (Kind::Neutral, rules::SAVEPOINT.refuse()),
        T::TransStmtRollbackTo => (Kind::Neutral, rules::ROLLBACK_TO_SAVEPOINT.refuse()),
        T::TransStmtRelease => (Kind::Neutral, rules::RELEASE_SAVEPOINT.refuse()),
        _ => (Kind::Neutral, None),
    }
}

/// `BEGIN ISOLATION LEVEL …`: only repeatable read.
fn isolation(options: &[pg_query::protobuf::Node]) -> Option<Refusal> {
    options.iter().find_map(|option| {
        let def = def_elem(option)?;
        if def.defname != "transaction_isolation" {
            return None;
        }
        let level = string_arg(def)?;
        (level != "repeatable read").then(|| rules::ISOLATION_LEVEL.refuse_naming(&level.to_uppercase()))?
    })
}

/// Settings PostgreSQL 16 no longer has (DSQL runs on 16).
fn unrecognized_parameter(name: &str) -> Option<Refusal> {
    matches!(name, "lc_collate" | "lc_ctype").then(|| rules::UNRECOGNIZED_PARAMETER.refuse_naming(name))?
}

/// Words without which a query holds nothing [`query`]'s walk refuses.
const QUERY_REFUSAL_WORDS: &[&str] = &["for", "tablesample", "line", "circle", "ts", "current_setting"];

/// A query (or the query part of an `INSERT`/`UPDATE`/`DELETE`): a read of
/// tables is DML for the transaction rules; a constant `SELECT` is not.
fn query(node: &NodeEnum, text: &str) -> (Kind, Option<Refusal>) {
    // The walk below serializes the whole tree: most queries (a point
    // read, an insert) hold none of the words it looks for, and whether
    // they read tables is whether they say FROM (or are a write).
    if !QUERY_REFUSAL_WORDS.iter().any(|w| contains_word(text, w)) {
        let reads = contains_word(text, "from")
            || contains_word(text, "table")
            || !matches!(node, NodeEnum::SelectStmt(_));
        return (if reads { Kind::Dml } else { Kind::Neutral }, None);
    }
    let Ok(tree) = serde_json::to_value(node) else {
        return (Kind::Dml, None);
    };
    let mut reads_tables = false;
    let mut refusal = None;
    walk(&tree, &mut |key, value| {
        if refusal.is_some() {
            return;
        }
        match key {
            "RangeVar" => reads_tables = true,
            "LockingClause" => {
                let strength = value.get("strength").and_then(Value::as_i64).unwrap_or(0);
                if strength == LockClauseStrength::LcsForshare as i64
                    || strength == LockClauseStrength::LcsFornokeyupdate as i64
                {
                    refusal = rules::LOCKING_CLAUSE.refuse();
                }
            }
            "RangeTableSample" => refusal = rules::TABLESAMPLE.refuse(),
            "FuncCall" => refusal = function_call(value),
            _ => {}
        }
    });
    let kind = if reads_tables { Kind::Dml } else { Kind::Neutral };
    (kind, refusal)
}

/// Calls DSQL refuses: the geometric constructors of refused types, text
/// search with a named configuration (DSQL has none), settings PostgreSQL 16
/// dropped.
fn function_call(call: &Value) -> Option<Refusal> {
    let name = call
        .get("funcname")?
        .as_array()?
        .last()?
        .pointer("/node/String/sval")?
        .as_str()?;
    let first_string_arg = || {
        call.get("args")?
            .as_array()?
            .first()?
            .pointer("/node/AConst/val/Sval/sval")?
            .as_str()
    };
    let arg_count = call.get("args").and_then(Value::as_array).map_or(0, Vec::len);
    match name {
        "line" | "circle" => rules::DATATYPE.refuse_naming(name),
        "to_tsvector" | "to_tsquery" | "websearch_to_tsquery" | "plainto_tsquery" | "phraseto_tsquery"
            if arg_count == 2 =>
        {
            rules::TEXT_SEARCH_CONFIGURATION.refuse_naming(first_string_arg()?)
        }
        "current_setting" => unrecognized_parameter(first_string_arg()?),
        _ => None,
    }
}

fn walk(value: &Value, visit: &mut impl FnMut(&str, &Value)) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                visit(key, child);
                walk(child, visit);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| walk(item, visit)),
        _ => {}
    }
}

/// DDL DSQL refuses.
fn refuse_ddl(node: &NodeEnum, is_async: bool) -> Option<Refusal> {
    use NodeEnum as N;
    match node {
        N::TruncateStmt(_) => rules::TRUNCATE.refuse(),
        N::CreateExtensionStmt(_) => rules::CREATE_EXTENSION.refuse(),
        N::CreateTrigStmt(_) => rules::CREATE_TRIGGER.refuse(),
        N::CreatedbStmt(_) => rules::CREATE_DATABASE.refuse(),
        N::CreateStmt(create) => create_table(create),
        N::CreateTableAsStmt(_) => rules::CREATE_TABLE_AS.refuse(),
        N::CreateEnumStmt(_) => rules::CREATE_ENUM.refuse(),
        N::CompositeTypeStmt(_) => rules::CREATE_COMPOSITE_TYPE.refuse(),
        N::CreateRangeStmt(_) => rules::CREATE_RANGE_TYPE.refuse(),
        N::AlterEnumStmt(_) => rules::ALTER_TYPE.refuse(),
        N::RenameStmt(rename) if rename.rename_type == ObjectType::ObjectType as i32 => {
            rules::RENAME_TYPE.refuse()
        }
        N::DropStmt(drop) if drop.remove_type == ObjectType::ObjectType as i32 => rules::DROP_TYPE.refuse(),
        N::CreateTableSpaceStmt(_) => rules::CREATE_TABLESPACE.refuse(),
        N::CreateForeignTableStmt(_) => rules::CREATE_FOREIGN_TABLE.refuse(),
        N::VacuumStmt(vacuum) if vacuum.is_vacuumcmd => rules::VACUUM.refuse(),
        N::ListenStmt(_) => rules::LISTEN.refuse(),
        N::NotifyStmt(_) => rules::NOTIFY.refuse(),
        N::UnlistenStmt(_) => rules::UNLISTEN.refuse(),
        N::AlterSystemStmt(_) => rules::ALTER_SYSTEM.refuse(),
        N::CreateFunctionStmt(function) => {
            let plpgsql = function.options.iter().filter_map(def_elem).any(|d| {
                d.defname == "language" && string_arg(d).is_some_and(|l| l.eq_ignore_ascii_case("plpgsql"))
            });
            plpgsql.then(|| rules::PLPGSQL_FUNCTION.refuse())?
        }
        N::CreateSeqStmt(sequence) => {
            (!cache_allowed(&sequence.options)).then(|| rules::SEQUENCE_CACHE.refuse())?
        }
        N::IndexStmt(_) => (!is_async).then(|| rules::CREATE_INDEX_SYNC.refuse())?,
        N::AlterTableStmt(alter) => alter.cmds.iter().find_map(|cmd| match cmd.node.as_ref()? {
            N::AlterTableCmd(cmd) => alter_table(cmd, is_async),
            _ => None,
        }),
        _ => None,
    }
}

fn create_table(create: &CreateStmt) -> Option<Refusal> {
    match create.relation.as_ref().map(|r| r.relpersistence.as_str()) {
        Some("t") => return rules::TEMPORARY_TABLE.refuse(),
        Some("u") => return rules::UNLOGGED_TABLE.refuse(),
        _ => {}
    }
    create
        .table_elts
        .iter()
        .find_map(|element| match element.node.as_ref()? {
            NodeEnum::ColumnDef(column) => column_definition(column),
            _ => None,
        })
}

/// A column in `CREATE TABLE`: its type, and identity's cache and type.
fn column_definition(column: &ColumnDef) -> Option<Refusal> {
    let type_name = column.type_name.as_ref()?;
    if let Some(refusal) = types::refuse_column_type(type_name) {
        return Some(refusal);
    }
    let identity =
        constraints(&column.constraints).find(|c| c.contype == ConstrType::ConstrIdentity as i32)?;
    if !cache_allowed(&identity.options) {
        return rules::IDENTITY_CACHE.refuse();
    }
    (!types::is_bigint(type_name))
        .then(|| rules::IDENTITY_TYPE.refuse_naming(&types::canonical(type_name)))?
}

fn alter_table(cmd: &AlterTableCmd, is_async: bool) -> Option<Refusal> {
    use AlterTableType as A;
    match A::try_from(cmd.subtype).unwrap_or(A::Undefined) {
        A::AtAddColumn => {
            let Some(NodeEnum::ColumnDef(column)) = cmd.def.as_ref()?.node.as_ref() else {
                return None;
            };
            if let Some(refusal) = types::refuse_column_type(column.type_name.as_ref()?) {
                return Some(refusal);
            }
            let attached =
                !column.constraints.is_empty() || column.raw_default.is_some() || column.is_not_null;
            attached.then(|| rules::ADD_COLUMN_WITH_CONSTRAINT.refuse())?
        }
        A::AtAddConstraint => {
            let Some(NodeEnum::Constraint(constraint)) = cmd.def.as_ref()?.node.as_ref() else {
                return None;
            };
            (!constraint_addable(constraint)).then(|| rules::ADD_CONSTRAINT.refuse())?
        }
        A::AtAlterColumnType => rules::ALTER_COLUMN_TYPE.refuse(),
        A::AtValidateConstraint if !is_async => rules::VALIDATE_CONSTRAINT.refuse(),
        _ => None,
    }
}

/// `ADD CONSTRAINT` forms DSQL accepts: a key adopting an existing index
/// (`USING INDEX`), a foreign key or check added `NOT VALID`.
fn constraint_addable(constraint: &Constraint) -> bool {
    use ConstrType as C;
    match C::try_from(constraint.contype).unwrap_or(C::Undefined) {
        C::ConstrPrimary | C::ConstrUnique => !constraint.indexname.is_empty(),
        C::ConstrForeign | C::ConstrCheck => constraint.skip_validation,
        _ => false,
    }
}

/// `CACHE 1` or `CACHE` ≥ 65,536, stated.
fn cache_allowed(options: &[pg_query::protobuf::Node]) -> bool {
    options.iter().filter_map(def_elem).any(|d| {
        d.defname == "cache"
            && match d.arg.as_ref().and_then(|a| a.node.as_ref()) {
                Some(NodeEnum::Integer(i)) => i.ival == 1 || i.ival >= 65_536,
                Some(NodeEnum::Float(f)) => f.fval.parse::<f64>().is_ok_and(|v| v >= 65_536.0),
                _ => false,
            }
    })
}

fn constraints(nodes: &[pg_query::protobuf::Node]) -> impl Iterator<Item = &Constraint> {
    nodes.iter().filter_map(|n| match n.node.as_ref()? {
        NodeEnum::Constraint(c) => Some(&**c),
        _ => None,
    })
}

fn def_elem(node: &pg_query::protobuf::Node) -> Option<&DefElem> {
    match node.node.as_ref()? {
        NodeEnum::DefElem(d) => Some(d),
        _ => None,
    }
}

/// A `DefElem`'s argument as text (a string constant, or a bare word).
fn string_arg(def: &DefElem) -> Option<String> {
    match def.arg.as_ref()?.node.as_ref()? {
        NodeEnum::String(s) => Some(s.sval.clone()),
        NodeEnum::AConst(c) => match c.val.as_ref()? {
            pg_query::protobuf::a_const::Val::Sval(s) => Some(s.sval.clone()),
            _ => None,
        },
        _ => None,
    }
}
