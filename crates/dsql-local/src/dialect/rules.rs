//! DSQL's SQL rules, as data: one entry per behaviour, stamped with the date
//! it was observed on a real cluster.
//!
//! DSQL changes (foreign keys became supported in August 2026): a DSQL
//! release that lifts a restriction is an edit here, setting `refused` to
//! `false` and restamping `observed`; the matching code asks the entry
//! whether it still refuses. Messages are DSQL's, verbatim; `{}` stands for
//! the name a message carries (a type, a column, an isolation level).
//!
//! Entries marked `observed: ASSUMED` were not in the recordings: they
//! extend an observed rule to a close variant (e.g. `RELEASE SAVEPOINT`
//! next to `SAVEPOINT`), and say so.

use std::borrow::Cow;

/// When the recordings behind most entries were made.
pub(crate) const SEPTEMBER_2026: &str = "2026-09";
/// An entry inferred from an observed one, not recorded itself.
pub(crate) const ASSUMED: &str = "assumed";

/// `feature_not_supported`.
const NOT_SUPPORTED: &str = "0A000";

/// One behaviour of DSQL's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    /// A short stable name, for logs and tests.
    pub(crate) id: &'static str,
    /// When it was observed (`YYYY-MM`), or [`ASSUMED`].
    pub(crate) observed: &'static str,
    /// Whether DSQL still refuses it.
    pub(crate) refused: bool,
    pub(crate) code: &'static str,
    /// The message, with `{}` for the name it carries, if any.
    pub(crate) message: &'static str,
}

/// What a client is told instead of running a statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) rule: &'static Rule,
    pub(crate) message: Cow<'static, str>,
}

impl Refusal {
    pub(crate) fn code(&self) -> &'static str {
        self.rule.code
    }
}

impl Rule {
    /// The refusal, if DSQL still refuses this.
    pub(crate) fn refuse(&'static self) -> Option<Refusal> {
        self.refused.then_some(Refusal {
            rule: self,
            message: Cow::Borrowed(self.message),
        })
    }

    /// The refusal naming `name` in place of `{}`, if DSQL still refuses
    /// this.
    pub(crate) fn refuse_naming(&'static self, name: &str) -> Option<Refusal> {
        self.refused.then(|| Refusal {
            rule: self,
            message: Cow::Owned(self.message.replacen("{}", name, 1)),
        })
    }
}

const fn refused(id: &'static str, code: &'static str, message: &'static str) -> Rule {
    Rule {
        id,
        observed: SEPTEMBER_2026,
        refused: true,
        code,
        message,
    }
}

const fn assumed(id: &'static str, code: &'static str, message: &'static str) -> Rule {
    Rule {
        id,
        observed: ASSUMED,
        refused: true,
        code,
        message,
    }
}

// ---- statements refused outright ----

pub(crate) const TRUNCATE: Rule = refused("truncate", NOT_SUPPORTED, "unsupported statement: Truncate");
pub(crate) const CREATE_EXTENSION: Rule = refused(
    "create_extension",
    NOT_SUPPORTED,
    "unsupported statement: CreateExtension",
);
pub(crate) const CREATE_TRIGGER: Rule =
    refused("create_trigger", NOT_SUPPORTED, "CREATE TRIGGER not supported");
pub(crate) const CREATE_DATABASE: Rule = refused(
    "create_database",
    NOT_SUPPORTED,
    "unsupported statement: Createdb",
);
pub(crate) const TEMPORARY_TABLE: Rule = refused(
    "temporary_table",
    NOT_SUPPORTED,
    "TEMPORARY or TEMP table not supported for CREATE TABLE",
);
pub(crate) const UNLOGGED_TABLE: Rule = refused(
    "unlogged_table",
    NOT_SUPPORTED,
    "UNLOGGED table not supported for CREATE TABLE",
);
pub(crate) const CREATE_TABLE_AS: Rule = refused(
    "create_table_as",
    NOT_SUPPORTED,
    "unsupported statement: CreateTableAs",
);
pub(crate) const CREATE_ENUM: Rule = refused("create_enum", NOT_SUPPORTED, "CREATE TYPE not supported");
pub(crate) const CREATE_COMPOSITE_TYPE: Rule = refused(
    "create_composite_type",
    NOT_SUPPORTED,
    "unsupported statement: CompositeType",
);
pub(crate) const CREATE_RANGE_TYPE: Rule = refused(
    "create_range_type",
    NOT_SUPPORTED,
    "unsupported statement: CreateRange",
);
pub(crate) const ALTER_TYPE: Rule = refused("alter_type", NOT_SUPPORTED, "ALTER TYPE not supported");
pub(crate) const RENAME_TYPE: Rule = refused(
    "rename_type",
    NOT_SUPPORTED,
    "unsupported object in RENAME statement",
);
pub(crate) const DROP_TYPE: Rule =
    refused("drop_type", NOT_SUPPORTED, "unsupported object in DROP statement");
pub(crate) const CREATE_TABLESPACE: Rule = refused(
    "create_tablespace",
    NOT_SUPPORTED,
    "unsupported statement: CreateTableSpace",
);
pub(crate) const CREATE_FOREIGN_TABLE: Rule = refused(
    "create_foreign_table",
    NOT_SUPPORTED,
    "unsupported statement: CreateForeignTable",
);
pub(crate) const VACUUM: Rule = refused("vacuum", NOT_SUPPORTED, "unsupported VACUUM statement");
pub(crate) const LISTEN: Rule = refused("listen", NOT_SUPPORTED, "unsupported statement: Listen");
pub(crate) const NOTIFY: Rule = refused("notify", NOT_SUPPORTED, "unsupported statement: Notify");
pub(crate) const UNLISTEN: Rule = refused("unlisten", NOT_SUPPORTED, "unsupported statement: Unlisten");
pub(crate) const ALTER_SYSTEM: Rule = refused(
    "alter_system",
    NOT_SUPPORTED,
    "unsupported statement: AlterSystem",
);
pub(crate) const MERGE: Rule = refused("merge", NOT_SUPPORTED, "unsupported statement type: MERGE");
pub(crate) const TABLESAMPLE: Rule =
    refused("tablesample", NOT_SUPPORTED, "TABLESAMPLE clause not supported");
pub(crate) const PLPGSQL_FUNCTION: Rule = refused(
    "plpgsql_function",
    NOT_SUPPORTED,
    "CREATE FUNCTION with language plpgsql not supported",
);
pub(crate) const SERIAL: Rule = refused("serial", "42704", "type \"{}\" does not exist");

// ---- transactions ----

pub(crate) const SAVEPOINT: Rule = refused(
    "savepoint",
    NOT_SUPPORTED,
    "unsupported transaction statement: SAVEPOINT",
);
pub(crate) const ROLLBACK_TO_SAVEPOINT: Rule = refused(
    "rollback_to_savepoint",
    NOT_SUPPORTED,
    "unsupported transaction statement: ROLLBACK TO",
);
pub(crate) const RELEASE_SAVEPOINT: Rule = assumed(
    "release_savepoint",
    NOT_SUPPORTED,
    "unsupported transaction statement: RELEASE",
);
pub(crate) const ISOLATION_LEVEL: Rule = refused(
    "isolation_level",
    NOT_SUPPORTED,
    "Unsupported isolation level: {}",
);
pub(crate) const SET_TRANSACTION: Rule = refused(
    "set_transaction",
    NOT_SUPPORTED,
    "setting configuration parameter \"TRANSACTION\" not supported",
);
pub(crate) const SET_DEFAULT_ISOLATION: Rule = refused(
    "set_default_transaction_isolation",
    NOT_SUPPORTED,
    "setting configuration parameter \"default_transaction_isolation\" not supported",
);
pub(crate) const MULTIPLE_DDL: Rule = refused(
    "multiple_ddl",
    NOT_SUPPORTED,
    "multiple ddl statements not supported in a transaction",
);
pub(crate) const DDL_AND_DML: Rule = refused(
    "ddl_and_dml",
    NOT_SUPPORTED,
    "ddl and dml are not supported in the same transaction",
);
pub(crate) const LOCKING_CLAUSE: Rule = refused(
    "locking_clause",
    NOT_SUPPORTED,
    "locking clauses other than FOR UPDATE/FOR KEY SHARE are not supported",
);

/// Enforced upstream (see `upstream/emulation/write_limits.rs`), at the
/// statement that crosses the cap.
pub(crate) const ROW_LIMIT: Rule = refused("row_limit", "54000", "transaction row limit exceeded");
/// 10 MiB written in one transaction, checked at `COMMIT` (enforced
/// upstream, like the row cap). DSQL's code is documented, its text is not:
/// the message is a best guess, worded like the row cap's.
pub(crate) const TRANSACTION_SIZE: Rule =
    assumed("transaction_size", "54000", "transaction size limit exceeded");

// ---- sequences and identity columns ----

pub(crate) const SEQUENCE_CACHE: Rule = refused(
    "sequence_cache",
    NOT_SUPPORTED,
    "CREATE SEQUENCE is not supported without an explicit cache size. please define CACHE greater \
     than or equal to 65536 or equal to 1",
);
pub(crate) const IDENTITY_CACHE: Rule = refused(
    "identity_cache",
    NOT_SUPPORTED,
    "identity column is not supported without an explicit cache size. please define CACHE greater \
     than or equal to 65536 or equal to 1",
);
pub(crate) const IDENTITY_TYPE: Rule = refused(
    "identity_type",
    NOT_SUPPORTED,
    "datatype {} not supported, identity column type must be bigint",
);

// ---- ALTER TABLE ----

pub(crate) const ADD_CONSTRAINT: Rule = refused(
    "alter_table_add_constraint",
    NOT_SUPPORTED,
    "unsupported ALTER TABLE ADD CONSTRAINT statement",
);
pub(crate) const ADD_COLUMN_WITH_CONSTRAINT: Rule = refused(
    "alter_table_add_column_constraint",
    NOT_SUPPORTED,
    "ALTER TABLE ADD COLUMN with constraint not supported",
);
pub(crate) const ALTER_COLUMN_TYPE: Rule = refused(
    "alter_table_alter_column_type",
    NOT_SUPPORTED,
    "unsupported ALTER TABLE ALTER COLUMN ... SET DATA TYPE statement",
);
/// Not enforced yet: whether a column is in the primary key is in the
/// catalog, not in the statement.
#[allow(dead_code)]
pub(crate) const DROP_PRIMARY_KEY_COLUMN: Rule = refused(
    "alter_table_drop_primary_key_column",
    NOT_SUPPORTED,
    "cannot drop primary key column {}",
);
pub(crate) const VALIDATE_CONSTRAINT: Rule = refused(
    "alter_table_validate_constraint",
    NOT_SUPPORTED,
    "unsupported ALTER TABLE VALIDATE CONSTRAINT statement",
);

// ---- types and indexes ----

pub(crate) const DATATYPE: Rule = refused("datatype", NOT_SUPPORTED, "datatype {} not supported");
pub(crate) const TEXT_SEARCH_CONFIGURATION: Rule = refused(
    "text_search_configuration",
    "42704",
    "text search configuration \"{}\" does not exist",
);
pub(crate) const CREATE_INDEX_SYNC: Rule = refused(
    "create_index_without_async",
    NOT_SUPPORTED,
    "unsupported mode. please use CREATE INDEX ASYNC.",
);
pub(crate) const UNRECOGNIZED_PARAMETER: Rule = refused(
    "unrecognized_parameter",
    "42704",
    "unrecognized configuration parameter \"{}\"",
);

/// Every entry.
#[cfg(test)]
pub(crate) const ALL: &[&Rule] = &[
    &TRUNCATE,
    &CREATE_EXTENSION,
    &CREATE_TRIGGER,
    &CREATE_DATABASE,
    &TEMPORARY_TABLE,
    &UNLOGGED_TABLE,
    &CREATE_TABLE_AS,
    &CREATE_ENUM,
    &CREATE_COMPOSITE_TYPE,
    &CREATE_RANGE_TYPE,
    &ALTER_TYPE,
    &RENAME_TYPE,
    &DROP_TYPE,
    &CREATE_TABLESPACE,
    &CREATE_FOREIGN_TABLE,
    &VACUUM,
    &LISTEN,
    &NOTIFY,
    &UNLISTEN,
    &ALTER_SYSTEM,
    &MERGE,
    &TABLESAMPLE,
    &PLPGSQL_FUNCTION,
    &SERIAL,
    &SAVEPOINT,
    &ROLLBACK_TO_SAVEPOINT,
    &RELEASE_SAVEPOINT,
    &ISOLATION_LEVEL,
    &SET_TRANSACTION,
    &SET_DEFAULT_ISOLATION,
    &MULTIPLE_DDL,
    &DDL_AND_DML,
    &LOCKING_CLAUSE,
    &ROW_LIMIT,
    &TRANSACTION_SIZE,
    &SEQUENCE_CACHE,
    &IDENTITY_CACHE,
    &IDENTITY_TYPE,
    &ADD_CONSTRAINT,
    &ADD_COLUMN_WITH_CONSTRAINT,
    &ALTER_COLUMN_TYPE,
    &DROP_PRIMARY_KEY_COLUMN,
    &VALIDATE_CONSTRAINT,
    &DATATYPE,
    &TEXT_SEARCH_CONFIGURATION,
    &CREATE_INDEX_SYNC,
    &UNRECOGNIZED_PARAMETER,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_codes_are_sqlstates() {
        let mut ids: Vec<_> = ALL.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), ALL.len());
        for rule in ALL {
            assert!(
                rule.code.len() == 5 && rule.code.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{rule:?}"
            );
            assert!(
                rule.observed == SEPTEMBER_2026 || rule.observed == ASSUMED,
                "{rule:?}"
            );
            assert!(rule.message.matches("{}").count() <= 1, "{rule:?}");
        }
    }

    #[test]
    fn a_lifted_restriction_refuses_nothing() {
        static LIFTED: Rule = Rule {
            refused: false,
            ..TRUNCATE
        };
        assert_eq!(LIFTED.refuse(), None);
        assert_eq!(
            DATATYPE.refuse_naming("money").map(|r| r.message),
            Some("datatype money not supported".into())
        );
    }
}
