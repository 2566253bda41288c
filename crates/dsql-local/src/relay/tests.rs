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

/// Which upstream errors become DSQL's conflict, notably the `57014` that
/// PostgreSQL 15 sometimes reports a `lock_timeout` as.
mod conflict_rewrite {
    use super::super::upstream::rewrites_conflict;

    /// An `ErrorResponse` body: severity, code, message.
    fn error(code: &str, message: &str) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, value) in [(b'S', "ERROR"), (b'V', "ERROR"), (b'C', code), (b'M', message)] {
            body.push(kind);
            body.extend_from_slice(value.as_bytes());
            body.push(0);
        }
        body.push(0);
        body
    }

    const USER_REQUEST: &str = "canceling statement due to user request";

    #[test]
    fn a_spurious_user_cancel_is_a_conflict_only_in_never_wait_without_a_cancel() {
        let body = error("57014", USER_REQUEST);
        assert!(rewrites_conflict(&body, true, || false));
        // A client's cancel was relayed to the session: it is the client's.
        assert!(!rewrites_conflict(&body, true, || true));
        // Without the never-wait mode there is no lock_timeout to blame.
        assert!(!rewrites_conflict(&body, false, || false));
        assert!(!rewrites_conflict(&body, false, || true));
    }

    #[test]
    fn other_cancels_pass_through() {
        for message in [
            "canceling statement due to statement timeout",
            "canceling statement due to lock timeout",
            "canceling autovacuum task",
            "canceling statement due to user request!",
            "",
        ] {
            let body = error("57014", message);
            assert!(!rewrites_conflict(&body, true, || false), "{message}");
        }
        // No message at all.
        assert!(!rewrites_conflict(b"C57014\0\0", true, || false));
    }

    #[test]
    fn the_cancel_state_is_asked_only_for_a_user_cancel() {
        let asked = std::cell::Cell::new(false);
        let ask = || {
            asked.set(true);
            false
        };
        assert!(rewrites_conflict(
            &error("55P03", "could not obtain lock"),
            true,
            ask
        ));
        assert!(rewrites_conflict(
            &error("40001", "could not serialize"),
            false,
            ask
        ));
        assert!(!rewrites_conflict(&error("23505", "duplicate key"), true, ask));
        assert!(!asked.get());
    }

    #[test]
    fn serialization_failures_deadlocks_and_lock_timeouts() {
        for never_wait in [false, true] {
            assert!(rewrites_conflict(
                &error("40001", "could not serialize"),
                never_wait,
                || true
            ));
            assert!(rewrites_conflict(
                &error("40P01", "deadlock detected"),
                never_wait,
                || true
            ));
            // `55P03` is the never-wait mode's lock_timeout, else a `NOWAIT`.
            assert_eq!(
                rewrites_conflict(&error("55P03", "could not obtain lock"), never_wait, || false),
                never_wait
            );
            assert!(!rewrites_conflict(
                &error("42P01", "no such table"),
                never_wait,
                || false
            ));
        }
    }
}
