//! DSQL's transaction rules: one DDL statement per transaction, and no DDL
//! with DML. Followed statement by statement as the client sends them; the
//! transaction ends at `COMMIT`/`ROLLBACK`, or, outside `BEGIN`, at the end
//! of the simple query or extended-protocol batch (an implicit transaction).

use super::Kind;
use super::rules::{self, Refusal};

/// What the current transaction has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TransactionRules {
    /// Inside `BEGIN … COMMIT`.
    explicit: bool,
    ddl: bool,
    dml: bool,
}

impl TransactionRules {
    /// Checks a statement against what the transaction did so far, and
    /// records it unless refused.
    pub(crate) fn admit(&mut self, kind: Kind) -> Option<Refusal> {
        match kind {
            // `BEGIN` inside a transaction is only a warning.
            Kind::Begin if self.explicit => None,
            Kind::Begin => {
                *self = Self {
                    explicit: true,
                    ..Self::default()
                };
                None
            }
            Kind::Commit | Kind::Rollback => {
                *self = Self::default();
                None
            }
            Kind::Chain => {
                *self = Self {
                    explicit: self.explicit,
                    ..Self::default()
                };
                None
            }
            Kind::Ddl if self.ddl => rules::MULTIPLE_DDL.refuse(),
            Kind::Ddl if self.dml => rules::DDL_AND_DML.refuse(),
            Kind::Ddl => {
                self.ddl = true;
                None
            }
            Kind::Dml if self.ddl => rules::DDL_AND_DML.refuse(),
            Kind::Dml => {
                self.dml = true;
                None
            }
            Kind::Neutral => None,
        }
    }

    /// The end of a simple query or of an extended-protocol batch: outside
    /// `BEGIN`, its implicit transaction is over.
    pub(crate) fn end_implicit(&mut self) {
        if !self.explicit {
            *self = Self::default();
        }
    }

    /// The backend reports no transaction open while nothing is in flight
    /// (e.g. a `BEGIN` that failed): start afresh.
    pub(crate) fn reset(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(kinds: &[Kind]) -> Option<&'static str> {
        let mut rules = TransactionRules::default();
        kinds.iter().find_map(|&k| rules.admit(k)).map(|r| r.rule.id)
    }

    #[test]
    fn one_ddl_and_no_mixing_per_transaction() {
        use Kind::*;
        assert_eq!(refused(&[Begin, Ddl, Ddl]), Some("multiple_ddl"));
        assert_eq!(refused(&[Begin, Ddl, Dml]), Some("ddl_and_dml"));
        assert_eq!(refused(&[Begin, Dml, Ddl]), Some("ddl_and_dml"));
        assert_eq!(refused(&[Begin, Ddl, Neutral, Commit, Begin, Ddl, Commit]), None);
        assert_eq!(refused(&[Begin, Ddl, Chain, Dml]), None);
        assert_eq!(refused(&[Begin, Dml, Dml, Neutral, Commit]), None);
        // Autocommit: each implicit transaction on its own.
        let mut rules = TransactionRules::default();
        assert_eq!(rules.admit(Ddl), None);
        rules.end_implicit();
        assert_eq!(rules.admit(Dml), None);
        // …but one implicit transaction is one transaction.
        assert!(rules.admit(Ddl).is_some());
    }
}
