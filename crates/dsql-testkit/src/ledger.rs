//! A ledger: a table of ids with no unique constraint, so that an insert
//! applied twice shows as a duplicate row, and a keyed `{ledger}_done` table
//! in which each insert claims its id, so that a replay overtaking a lost
//! attempt's `COMMIT` conflicts instead of applying twice.
//!
//! The tables are created and read directly in the upstream PostgreSQL
//! ([`direct`](crate::direct)) and dropped with
//! [`drop_table`](crate::drop_table); the inserts run through the stack under
//! test.

use dsql_tower::Operation;

/// Creates a ledger named [`unique`](crate::unique)`(prefix)` and its
/// `_done` table, and returns its name.
pub async fn create(prefix: &str) -> String {
    let ledger = crate::unique(prefix);
    crate::direct()
        .await
        .batch_execute(&format!(
            "CREATE TABLE {ledger} (id bigint NOT NULL); CREATE TABLE {ledger}_done (id bigint PRIMARY KEY)"
        ))
        .await
        .unwrap();
    ledger
}

/// Inserts `id` into `ledger` in a transaction, unless `{ledger}_done`
/// already has it. Not marked idempotent: see [`record`].
pub fn insert(ledger: &str, id: i64) -> Operation<()> {
    let sql = format!(
        "WITH claim AS (INSERT INTO {ledger}_done (id) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id) \
         INSERT INTO {ledger} (id) SELECT id FROM claim"
    );
    Operation::transaction(move |tx| {
        let sql = sql.clone();
        Box::pin(async move {
            tx.execute(&sql, &[&id]).await?;
            Ok::<_, tokio_postgres::Error>(())
        })
    })
}

/// [`insert`], marked idempotent (the claim makes replays safe).
pub fn record(ledger: &str, id: i64) -> Operation<()> {
    insert(ledger, id).idempotent()
}

/// The rows of `ledger`, and its distinct ids: equal unless an insert was
/// applied twice.
pub async fn counts(ledger: &str) -> (i64, i64) {
    let row = crate::direct()
        .await
        .query_one(&format!("SELECT count(*), count(DISTINCT id) FROM {ledger}"), &[])
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// The rows of `ledger` with this `id`.
pub async fn rows(ledger: &str, id: i64) -> i64 {
    crate::direct()
        .await
        .query_one(&format!("SELECT count(*) FROM {ledger} WHERE id = $1"), &[&id])
        .await
        .unwrap()
        .get(0)
}
