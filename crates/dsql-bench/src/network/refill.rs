//! The time to refill a pool after all its sessions are cut.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::BoxError;
use crate::clients::Client;
use crate::scenario::Scenario;
use crate::server::LocalProcess;

/// Attempts per task before the refill is declared failed.
const MAX_ATTEMPTS: u64 = 1_000;

/// One refill.
#[derive(Clone, Copy, Debug, Serialize)]
pub(super) struct Refill {
    /// From the cut until `tasks` concurrent `SELECT 1` have all succeeded.
    pub(super) ms: f64,
    /// Failed attempts the callers saw on the way.
    pub(super) failures: u64,
}

/// Cuts every session of `local`, then runs `tasks` tasks that each repeat
/// `SELECT 1` until it succeeds.
pub(super) async fn measure(
    client: &Client,
    local: &mut LocalProcess,
    tasks: u32,
) -> Result<Refill, BoxError> {
    local.command("drop-all").await?;
    let cut = Instant::now();
    let failures = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let (client, failures) = (client.clone(), Arc::clone(&failures));
            tokio::spawn(async move {
                for _ in 0..MAX_ATTEMPTS {
                    match client.execute(Scenario::SelectOne, "SELECT 1").await {
                        Ok(()) => return true,
                        Err(_) => {
                            failures.fetch_add(1, Ordering::Relaxed);
                            // Some clients fail fast on a dead connection.
                            tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                    }
                }
                false
            })
        })
        .collect();
    for worker in workers {
        if !worker.await? {
            return Err(format!("a task failed {MAX_ATTEMPTS} times after the cut").into());
        }
    }
    Ok(Refill {
        ms: cut.elapsed().as_secs_f64() * 1000.0,
        failures: failures.load(Ordering::Relaxed),
    })
}
