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
