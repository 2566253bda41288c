use super::commit::is_commit;

#[test]
fn recognizes_commits() {
    for sql in [
        "COMMIT",
        "commit;",
        "  Commit Work ; ",
        "END",
        "end transaction",
        "COMMIT AND NO CHAIN",
        "end work and no chain;",
    ] {
        assert!(is_commit(sql.as_bytes()), "{sql}");
    }
    for sql in [
        "",
        "ROLLBACK",
        "COMMIT PREPARED 'x'",
        "SELECT 'COMMIT'",
        "committed",
        "END; SELECT 1",
        "COMMIT AND CHAIN",
        "commit work and chain",
        "END TRANSACTION AND CHAIN",
        "COMMIT AND",
        "COMMIT NO CHAIN",
        "COMMIT WORK WORK",
    ] {
        assert!(!is_commit(sql.as_bytes()), "{sql}");
    }
}

mod copy_in {
    use std::collections::VecDeque;

    use super::super::upstream::skip_ignored_syncs;
    use super::super::{DropCause, Pending, Request};

    fn sync(action: Pending, copy_ends: u64, copy_start: u64) -> Request {
        Request {
            tags: super::super::TagEdits::default(),
            action,
            sync: true,
            copy_ends,
            copy_start,
        }
    }

    #[test]
    fn tokio_postgres_copy_in_is_one_reply_for_two_syncs() {
        // Bind, Execute, Sync; CopyData, CopyDone, Sync; then a query.
        let drop = Pending::DropSession(DropCause::Statement);
        let first = sync(drop, 0, 0);
        let mut pending = VecDeque::from([sync(Pending::Forward, 1, 1), Request::query(Pending::Forward, 1)]);
        assert_eq!(skip_ignored_syncs(&mut pending, first, first.action), drop);
        assert_eq!(pending, [Request::query(Pending::Forward, 1)]);
    }

    #[test]
    fn a_copy_ended_before_the_sync_ignores_nothing() {
        // Execute, CopyData, CopyDone, Sync, all in one batch.
        let current = sync(Pending::Forward, 3, 2);
        let next = sync(Pending::HideRfq, 3, 3);
        let mut pending = VecDeque::from([next]);
        assert_eq!(
            skip_ignored_syncs(&mut pending, current, current.action),
            Pending::Forward
        );
        assert_eq!(pending, [next]);
    }

    #[test]
    fn syncs_sent_during_a_simple_query_copy_are_ignored() {
        // Query COPY, CopyData, Sync, Sync, CopyDone, Sync, Query.
        let query = Request::query(Pending::Forward, 5);
        let after = [sync(Pending::Forward, 6, 6), Request::query(Pending::Forward, 6)];
        let mut pending = VecDeque::from([sync(Pending::Forward, 5, 5), sync(Pending::Forward, 5, 5)]);
        pending.extend(after);
        assert_eq!(
            skip_ignored_syncs(&mut pending, query, query.action),
            Pending::Forward
        );
        assert_eq!(pending, after);
    }
}
