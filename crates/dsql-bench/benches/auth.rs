//! Token signing and caching against `aws-sdk-dsql`'s `AuthTokenGenerator`
//! called directly, in the same run.
//!
//! `cargo bench -p dsql-bench --bench auth`
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Duration;

use aws_config::{Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sdk_dsql::auth_token::{AuthTokenGenerator, Config};
use aws_smithy_async::time::SharedTimeSource;
use criterion::{Criterion, criterion_group, criterion_main};
use dsql_auth::{CachingProvider, DsqlConfig, SigningProvider, TokenProvider};

const HOST: &str = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws";

fn credentials() -> Credentials {
    Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        None,
        None,
        "bench",
    )
}

fn tokens(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut group = c.benchmark_group("token");
    group.measurement_time(Duration::from_secs(5));

    // Baseline: the SDK's generator, as its documentation shows it.
    let sdk_config = SdkConfig::builder()
        .credentials_provider(SharedCredentialsProvider::new(credentials()))
        .region(Region::new("us-east-1"))
        .time_source(SharedTimeSource::default())
        .build();
    let generator = AuthTokenGenerator::new(Config::builder().hostname(HOST).build().unwrap());
    group.bench_function("aws_sdk_generator", |b| {
        b.to_async(&runtime)
            .iter(|| async { generator.db_connect_admin_auth_token(&sdk_config).await.unwrap() })
    });

    let config = DsqlConfig::builder().host(HOST).build().unwrap();
    let signer = SigningProvider::builder(&config)
        .credentials_provider(credentials())
        .build();
    group.bench_function("signing_provider", |b| {
        b.to_async(&runtime)
            .iter(|| async { signer.token().await.unwrap() })
    });

    let caching = CachingProvider::new(signer.clone());
    runtime.block_on(caching.token()).unwrap();
    group.bench_function("caching_provider_hit", |b| {
        b.to_async(&runtime)
            .iter(|| async { caching.token().await.unwrap() })
    });
    group.finish();
}

criterion_group!(benches, tokens);
criterion_main!(benches);
