//! [`TagEdits`]: the command tags of a reply that DSQL words differently
//! (an asynchronous DDL statement, or a `SHOW` of a setting DSQL reports
//! differently, runs upstream as a `SELECT`, but DSQL answers `CREATE
//! INDEX`, `ALTER TABLE` or `SHOW`).
//!
//! A reply holds one completion (`CommandComplete`, `PortalSuspended` or
//! `EmptyQueryResponse`) per statement of a simple query, or per `Execute`
//! of an extended-protocol batch, in order, up to the first error: the
//! edits are indexed by that order.

/// The tags DSQL answers where PostgreSQL's differ.
const TAGS: [&str; 3] = ["CREATE INDEX", "ALTER TABLE", "SHOW"];

/// Tags to put on the completions of one reply, by index (the first 64):
/// one bit mask per tag of [`TAGS`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct TagEdits {
    masks: [u64; TAGS.len()],
}

impl TagEdits {
    /// Tags the `index`-th completion `tag` (one of [`TAGS`]; any other
    /// tag, or an index past 64, is left alone).
    pub(super) fn set(&mut self, index: u32, tag: &str) {
        let Some(bit) = 1_u64.checked_shl(index) else {
            return;
        };
        if let Some(slot) = TAGS.iter().position(|&t| t == tag) {
            self.masks[slot] |= bit;
        }
    }

    /// The tag for the `index`-th completion, if it is edited.
    pub(super) fn get(&self, index: u32) -> Option<&'static str> {
        let bit = 1_u64.checked_shl(index)?;
        TAGS.iter()
            .zip(self.masks)
            .find_map(|(&tag, mask)| (mask & bit != 0).then_some(tag))
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.masks.iter().all(|&m| m == 0)
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
        edits.set(4, "SHOW");
        assert_eq!(
            (0..5).map(|i| edits.get(i)).collect::<Vec<_>>(),
            [
                Some("CREATE INDEX"),
                None,
                None,
                Some("ALTER TABLE"),
                Some("SHOW")
            ]
        );
        assert_eq!(edits.get(64), None);
    }
}
