//! `TokenScope` through every provider, and the `WrongScope` error.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use dsql_auth::provider::{self, DynTokenProvider};
use dsql_auth::{
    AuthToken, CachingProvider, DsqlConfig, SharedTokenProvider, SigningProvider, StaticProvider, TokenError,
    TokenProvider, TokenScope,
};

const HOST: &str = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws";

fn signer_for(user: &str) -> SigningProvider {
    let config = DsqlConfig::builder()
        .host(HOST.to_ascii_uppercase())
        .user(user)
        .build()
        .unwrap();
    let credentials = Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
    SigningProvider::builder(&config)
        .credentials_provider(credentials)
        .build()
}

fn static_token() -> StaticProvider {
    let now = SystemTime::now();
    StaticProvider::new(AuthToken::new("t", now, now + Duration::from_secs(60)))
}

/// Takes the provider by value, so `&P` goes through its own impl.
fn scope_by_value(provider: impl TokenProvider) -> Option<TokenScope> {
    provider.scope()
}

#[test]
fn a_signer_knows_its_scope_and_every_wrapper_forwards_it() {
    let reader = TokenScope::new(HOST, "reader");
    let signer = signer_for("reader");
    assert_eq!(signer.scope(), Some(reader.clone()));

    let caching = CachingProvider::new(signer.clone());
    assert_eq!(caching.scope(), Some(reader.clone()));
    let arc = Arc::new(caching.clone());
    assert_eq!(arc.scope(), Some(reader.clone()));
    assert_eq!(scope_by_value(&caching), Some(reader.clone()));
    let shared = SharedTokenProvider::new(caching.clone());
    assert_eq!(shared.scope(), Some(reader.clone()));
    assert_eq!(
        SharedTokenProvider::new(shared.clone()).scope(),
        Some(reader.clone())
    );
    let erased: Arc<dyn DynTokenProvider> = Arc::new(caching);
    assert_eq!(erased.scope_dyn(), Some(reader.clone()));
    assert_eq!(SharedTokenProvider::from_arc(erased).scope(), Some(reader));

    assert_eq!(signer_for("admin").scope(), Some(TokenScope::new(HOST, "admin")));
}

#[test]
fn static_and_closure_providers_cannot_know() {
    assert_eq!(static_token().scope(), None);
    let closure = provider::from_fn(|| async { Err::<AuthToken, _>(TokenError::provider("unused")) });
    assert_eq!(closure.scope(), None);
    assert_eq!(CachingProvider::new(static_token()).scope(), None);
    assert_eq!(SharedTokenProvider::new(static_token()).scope(), None);
}

#[test]
fn a_signer_scope_matches_its_config_case_insensitively() {
    let config: DsqlConfig = format!("postgres://reader@{}", HOST.to_ascii_uppercase())
        .parse()
        .unwrap();
    assert_eq!(signer_for("reader").scope(), Some(TokenScope::of(&config)));
    assert_ne!(signer_for("admin").scope(), Some(TokenScope::of(&config)));
}

#[test]
fn wrong_scope_names_both_sides() {
    let error = TokenError::WrongScope {
        provider: TokenScope::new(HOST, "admin"),
        requested: TokenScope::new(HOST, "reader"),
    };
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "signs for admin@{HOST} but the connection is for reader@{HOST}"
        )),
        "{message}"
    );
    assert!(matches!(
        error.clone(),
        TokenError::WrongScope { provider, requested } if provider.user() == "admin" && requested.user() == "reader"
    ));
}
