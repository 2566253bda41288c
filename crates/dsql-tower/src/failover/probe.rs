//! What a probe runs on a fresh connection to an unhealthy endpoint.

use std::fmt;
use std::sync::Arc;

use crate::connect::PgConnection;
use crate::error::BoxError;
use crate::operation::BoxFuture;

type ProbeFn = dyn for<'a> Fn(&'a PgConnection, &'a str) -> BoxFuture<'a, Result<(), BoxError>> + Send + Sync;

/// The operation that tells whether an endpoint serves again, run on a new
/// connection to it (the connect itself is part of the probe).
///
/// An isolated region may accept connects and answer reads while it cannot
/// commit, so a probe that proves anything must commit a write:
/// [`heartbeat`](Self::heartbeat) upserts one row per endpoint. The
/// default, [`transaction`](Self::transaction), commits an empty
/// transaction, which needs no table but proves less.
///
/// ```
/// use dsql_tower::failover::Probe;
///
/// // CREATE TABLE heartbeat (endpoint text PRIMARY KEY, at timestamptz NOT NULL)
/// let probe = Probe::heartbeat("heartbeat");
/// let custom = Probe::from_fn(|client, _host| Box::pin(async move {
///     client.batch_execute("SELECT 1").await?;
///     Ok(())
/// }));
/// # let _ = (probe, custom);
/// ```
#[derive(Clone)]
pub struct Probe {
    run: Arc<ProbeFn>,
    name: &'static str,
}

impl Probe {
    /// `BEGIN; SELECT 1; COMMIT` (the default).
    pub fn transaction() -> Self {
        Self {
            run: Arc::new(|client, _| {
                Box::pin(async move {
                    client.batch_execute("BEGIN; SELECT 1; COMMIT").await?;
                    Ok(())
                })
            }),
            name: "transaction",
        }
    }

    /// Upserts the endpoint's row of `table` (columns `endpoint text
    /// PRIMARY KEY, at timestamptz`): a committed write, as an isolated
    /// region cannot make. `table` may be schema-qualified; each part is
    /// quoted.
    pub fn heartbeat(table: &str) -> Self {
        let table = table
            .split('.')
            .map(quote_identifier)
            .collect::<Vec<_>>()
            .join(".");
        let sql: Arc<str> = format!(
            "INSERT INTO {table} (endpoint, at) VALUES ($1, now()) \
             ON CONFLICT (endpoint) DO UPDATE SET at = excluded.at"
        )
        .into();
        Self {
            run: Arc::new(move |client, host| {
                let sql = Arc::clone(&sql);
                Box::pin(async move {
                    client.execute(&*sql, &[&host]).await?;
                    Ok(())
                })
            }),
            name: "heartbeat",
        }
    }

    /// Any operation: given the connection and the endpoint's host.
    pub fn from_fn<F>(f: F) -> Self
    where
        F: for<'a> Fn(&'a PgConnection, &'a str) -> BoxFuture<'a, Result<(), BoxError>>
            + Send
            + Sync
            + 'static,
    {
        Self {
            run: Arc::new(f),
            name: "custom",
        }
    }

    pub(crate) fn run<'a>(
        &'a self,
        client: &'a PgConnection,
        host: &'a str,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        (self.run)(client, host)
    }
}

impl Default for Probe {
    fn default() -> Self {
        Self::transaction()
    }
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Probe").field(&self.name).finish()
    }
}

fn quote_identifier(part: &str) -> String {
    format!("\"{}\"", part.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_part_by_part() {
        assert_eq!(quote_identifier("heart\"beat"), "\"heart\"\"beat\"");
        assert_eq!(
            format!("{:?}", Probe::heartbeat("ops.heartbeat")),
            "Probe(\"heartbeat\")"
        );
    }
}
