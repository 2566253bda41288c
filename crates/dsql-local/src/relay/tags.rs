//! [`TagEdits`]: the command tags of a reply that DSQL words differently
//! (an asynchronous DDL statement runs upstream as a `SELECT`, but DSQL
//! answers `CREATE INDEX` or `ALTER TABLE`).
//!
//! A reply holds one completion (`CommandComplete`, `PortalSuspended` or
//! `EmptyQueryResponse`) per statement of a simple query, or per `Execute`
//! of an extended-protocol batch, in order, up to the first error: the
//! edits are indexed by that order.

/// Tags to put on the completions of one reply, by index (the first 64).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct TagEdits {
    create_index: u64,
    alter_table: u64,
}

impl TagEdits {
    /// Tags the `index`-th completion `tag` (`CREATE INDEX` or `ALTER
    /// TABLE`; any other tag, or an index past 64, is left alone).
    pub(super) fn set(&mut self, index: u32, tag: &str) {
        let Some(bit) = 1_u64.checked_shl(index) else {
            return;
        };
        match tag {
            "CREATE INDEX" => self.create_index |= bit,
            "ALTER TABLE" => self.alter_table |= bit,
            _ => {}
        }
    }

    /// The tag for the `index`-th completion, if it is edited.
    pub(super) fn get(&self, index: u32) -> Option<&'static str> {
        let bit = 1_u64.checked_shl(index)?;
        if self.create_index & bit != 0 {
            Some("CREATE INDEX")
        } else if self.alter_table & bit != 0 {
            Some("ALTER TABLE")
        } else {
            None
        }
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.create_index == 0 && self.alter_table == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_by_index() {
        let mut edits = TagEdits::default();
        assert!(edits.is_empty());
        edits.set(0, "CREATE INDEX");
        edits.set(3, "ALTER TABLE");
        edits.set(64, "CREATE INDEX");
        edits.set(1, "SELECT");
        assert_eq!(
            (0..5).map(|i| edits.get(i)).collect::<Vec<_>>(),
            [Some("CREATE INDEX"), None, None, Some("ALTER TABLE"), None]
        );
        assert_eq!(edits.get(64), None);
    }
}
