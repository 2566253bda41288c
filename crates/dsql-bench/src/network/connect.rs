//! Connect time with `SSLRequest` against direct TLS, through dsql-tower's
//! connector (the only one here that offers ALPN `postgresql`, which direct
//! TLS requires).

use std::time::{Duration, Instant};

use dsql_auth::SslNegotiation;
use dsql_tower::connect::Connector;
use serde::Serialize;
use tower::ServiceExt;

use crate::BoxError;
use crate::server::LocalProcess;

/// One negotiation's figures.
#[derive(Debug, Serialize)]
pub(super) struct ConnectFigures {
    pub(super) negotiation: &'static str,
    pub(super) connects: u32,
    pub(super) median_ms: f64,
    pub(super) round_trips_per_connect: f64,
}

/// `connects` connects of each negotiation, interleaved (one of each in
/// turn); each timed from the first byte to the session ready for queries.
pub(super) async fn measure(
    local: &mut LocalProcess,
    connects: u32,
    settle: Duration,
) -> Result<Vec<ConnectFigures>, BoxError> {
    let negotiations = [
        ("SSLRequest", SslNegotiation::Postgres),
        ("direct TLS", SslNegotiation::Direct),
    ];
    let mut prepared = Vec::new();
    for (_, negotiation) in negotiations {
        let config = local
            .config("admin", "dsql-bench")?
            .to_builder()
            .ssl_negotiation(negotiation)
            .build()?;
        // Signed once, outside the timed connects.
        let pg = local.signed_pg_config(&config).await?;
        prepared.push((Connector::new(&config)?, pg));
    }
    super::quiet(local, settle).await?;
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut turns = [0_u64; 2];
    for _ in 0..connects {
        for (i, (connector, pg)) in prepared.iter().enumerate() {
            let before = super::round_trips(local).await?;
            let started = Instant::now();
            let connection = connector.clone().oneshot(pg.clone()).await?;
            times[i].push(started.elapsed());
            // Before the client's Terminate, which would count as a turn.
            turns[i] += super::round_trips(local).await? - before;
            drop(connection);
            // Let the goodbye (close_notify, Terminate) pass, so that the
            // next connect's count is its own.
            super::quiet(local, settle).await?;
        }
    }
    Ok(negotiations
        .iter()
        .zip(times)
        .zip(turns)
        .map(|(((name, _), mut times), turns)| {
            times.sort();
            ConnectFigures {
                negotiation: name,
                connects,
                median_ms: times[times.len() / 2].as_secs_f64() * 1000.0,
                round_trips_per_connect: turns as f64 / f64::from(connects),
            }
        })
        .collect())
}
