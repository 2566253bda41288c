//! The transaction timeout: a transaction open longer than
//! [`transaction_timeout`](crate::LocalConfigBuilder::transaction_timeout)
//! is rolled back at the next request boundary.

use tokio::time::Instant;

use super::client::ClientSide;
use super::{Pending, Request};
use crate::protocol;
use crate::stats::bump;

/// Sent upstream when a transaction outlives the transaction timeout: the
/// transaction is rolled back (releasing its locks) and replaced by an
/// aborted one, so that the client's next statements fail (`25P02`, shown as
/// the timeout error) until it ends the transaction.
const TIMEOUT_SQL: &str = "ROLLBACK; BEGIN; DO $dsql_local$BEGIN RAISE EXCEPTION \
    'dsql-local: transaction timeout' USING ERRCODE = '54000'; END$dsql_local$";

impl ClientSide<'_> {
    /// When the open transaction times out, if the session is idle.
    pub(super) fn transaction_deadline(&self) -> Option<Instant> {
        if self.batch_open || self.discard_until_sync {
            return None;
        }
        let shared = self.state.lock();
        if shared.idle() && !shared.timed_out && shared.status != b'I' {
            shared
                .txn_started
                .and_then(|t| t.checked_add(self.ctx.config.transaction_timeout))
        } else {
            None
        }
    }

    /// At a request boundary: rolls back a transaction older than the
    /// transaction timeout.
    pub(super) fn check_transaction_age(&mut self) {
        if self.batch_open || self.discard_until_sync {
            return;
        }
        let timeout = self.ctx.config.transaction_timeout;
        let mut shared = self.state.lock();
        let too_old = shared
            .txn_started
            .and_then(|t| t.checked_add(timeout))
            .is_some_and(|deadline| Instant::now() >= deadline);
        if too_old && shared.idle() && !shared.timed_out && shared.status != b'I' {
            shared.timed_out = true;
            shared
                .pending
                .push_back(Request::query(Pending::Swallow, self.copy_ends()));
            drop(shared);
            protocol::put_query(&mut self.out, TIMEOUT_SQL);
            bump(&self.ctx.stats.counters.transactions_timed_out);
            tracing::info!(
                timeout_secs = timeout.as_secs_f64(),
                "transaction timed out and was rolled back"
            );
        }
    }
}
