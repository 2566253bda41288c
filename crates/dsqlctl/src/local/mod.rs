//! `dsqlctl local`: a DSQL-compatible endpoint over a PostgreSQL
//! (`dsql-local`), until Ctrl-C.

mod args;
mod banner;
mod served;
mod signals;

use std::time::Duration;

use dsql_local::{DsqlLocal, Latency, StatsSnapshot};
use tokio::time::{Instant, Interval, MissedTickBehavior, interval_at};

pub(crate) use self::args::LocalArgs;
use self::banner::{banner, regions_banner};
use self::served::Served;
use self::signals::Signals;
use crate::Failure;

/// The user the printed connection commands log in as.
const USER: &str = "admin";

pub(crate) async fn run(args: LocalArgs) -> Result<(), Failure> {
    let custom_key = args.access_key()?;
    let shows_secret = custom_key.is_none();
    let regions = args.regions(custom_key.clone())?;
    let config = args.config(custom_key)?;
    if config.public_key_off_loopback() {
        eprintln!(
            "dsqlctl: WARNING: listening on {} with the public test key (--allow-public-key-off-loopback): \
             anyone who reaches this address can sign tokens and use the upstream database. \
             Prefer --access-key-id with DSQL_LOCAL_SECRET_ACCESS_KEY.",
            config.listen()
        );
    }
    // Without its password.
    let upstream = config.upstream();
    // Before anything is printed: a signal that arrives once the user sees
    // the banner must stop the server cleanly, not kill the process.
    let mut signals = Signals::new().map_err(|e| Failure::Runtime(format!("cannot handle signals: {e}")))?;
    let served = match regions {
        None => Served::One(
            DsqlLocal::start(config)
                .await
                .map_err(|e| Failure::Runtime(e.to_string()))?,
        ),
        Some(regions) => Served::Regions(
            regions
                .start()
                .await
                .map_err(|e| Failure::Runtime(e.to_string()))?,
        ),
    };

    for local in served.endpoints() {
        let faults = local.faults();
        if let Some(window) = args.refuse_auth_for {
            faults.refuse_auth_for(window);
        }
        if let Some(p) = args.commit_conflict_probability {
            faults.inject_commit_conflicts(p);
        }
        if let Some(delay) = args.latency.filter(|d| !d.is_zero()) {
            faults.set_latency(Latency::PerQuery(delay));
        }
    }
    let persistent_ca = args.ca_dir.is_some();
    match &served {
        Served::One(local) => print!("{}", banner(local, &upstream, persistent_ca, shows_secret)),
        Served::Regions(regions) => print!(
            "{}",
            regions_banner(regions, &upstream, persistent_ca, shows_secret)
        ),
    }

    let mut stats_tick = every(args.stats_every);
    let mut drop_tick = args.drop_sessions_every.map(every);
    let signal = loop {
        tokio::select! {
            signal = signals.recv() => break signal,
            _ = stats_tick.tick() => served.log_stats("stats"),
            _ = async {
                match drop_tick.as_mut() {
                    Some(tick) => tick.tick().await,
                    None => std::future::pending().await,
                }
            } => {
                let dropped: usize = served.endpoints().iter().map(|local| local.faults().drop_all_sessions()).sum();
                tracing::info!(dropped, "dropped every open session (--drop-sessions-every)");
            }
        }
    };
    tracing::info!(signal, "stopping: closing every session");
    let stats = served.stats();
    served.shutdown().await;
    for (region, stats) in stats {
        log_stats(&stats.snapshot(), "final stats", region.as_deref());
    }
    Ok(())
}

/// Logs the counters, in a `region` span when there are several regions.
fn log_stats(s: &StatsSnapshot, message: &str, region: Option<&str>) {
    let span = region.map(|region| tracing::info_span!("region", region = %region));
    let _entered = span.as_ref().map(tracing::Span::enter);
    tracing::info!(
        accepted = s.accepted,
        refused = s.refused.total(),
        refused_by_reason = ?s.refused,
        handshakes_failed = s.handshakes_failed,
        sessions_open = s.current_sessions,
        sessions_opened = s.sessions_opened,
        sessions_expired = s.sessions_expired,
        sessions_dropped_by_faults = s.sessions_dropped_by_faults,
        transactions_timed_out = s.transactions_timed_out,
        conflicts = s.conflicts(),
        cancels_relayed = s.cancels_relayed,
        bytes_from_clients = s.bytes_from_clients,
        bytes_to_clients = s.bytes_to_clients,
        "{message}"
    );
}

/// Ticks every `period`, the first time one period from now. The flags bound
/// periods to a year; a longer one still never overflows `Instant` (it used to
/// panic): its first tick is then as far away as tokio's timer goes.
fn every(period: Duration) -> Interval {
    let now = Instant::now();
    // tokio's own cap on a timer's delay (about 30 years).
    let start = now
        .checked_add(period)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30));
    let mut tick = interval_at(start, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn periods_too_long_for_instant_do_not_panic() {
        for period in [
            Duration::MAX,
            Duration::from_secs(u64::MAX / 2),
            Duration::from_secs(1),
        ] {
            let mut tick = every(period);
            let first = tokio::time::timeout(Duration::from_millis(10), tick.tick()).await;
            assert!(first.is_err(), "{period:?}: no tick before one period");
        }
    }
}
