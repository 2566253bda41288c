//! Signing tokens with AWS credentials (feature `aws`).

mod credentials;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_dsql::auth_token::{AuthTokenGenerator, Config as GeneratorConfig};
use aws_smithy_async::time::{SharedTimeSource, TimeSource};
use tracing::Instrument;

use self::credentials::CredentialsCache;
use crate::clock::{self, SharedClock};
use crate::token::DisplayTime;
use crate::{Action, AuthToken, DsqlConfig, TokenError, TokenProvider, TokenScope};

/// Credentials are refreshed this long before they expire.
const DEFAULT_CREDENTIALS_REFRESH_BUFFER: Duration = Duration::from_secs(300);

/// Signs a fresh token on every call, with `aws-sdk-dsql`'s token generator:
/// `DbConnectAdmin` for `admin`, `DbConnect` for every other user.
///
/// Signing is local (an HMAC); the credentials behind it are resolved once
/// and cached until shortly before they expire, with concurrent callers
/// sharing one resolution. A token never outlives its credentials: its
/// validity is capped at their expiry. Wrap it in a
/// [`CachingProvider`](crate::CachingProvider) to reuse tokens as well.
///
/// ```
/// use aws_credential_types::Credentials;
/// use dsql_auth::{DsqlConfig, SigningProvider, TokenProvider};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config: DsqlConfig = "postgres://admin@abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws".parse()?;
/// // With static credentials nothing leaves the machine; `SigningProvider::load`
/// // uses the AWS default credential chain instead.
/// let credentials = Credentials::new("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", None, None, "example");
/// let provider = SigningProvider::builder(&config).credentials_provider(credentials).build();
/// let token = provider.token().await?;
/// assert!(token.expose_secret().contains("Action=DbConnectAdmin"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SigningProvider {
    inner: Arc<Inner>,
}

struct Inner {
    host: String,
    region: Region,
    user: String,
    scope: TokenScope,
    action: Action,
    duration: Duration,
    credentials: CredentialsCache,
    clock: SharedClock,
    sdk_config: SdkConfig,
}

impl SigningProvider {
    /// A builder for `config`'s endpoint, user and token duration.
    pub fn builder(config: &DsqlConfig) -> SigningProviderBuilder {
        SigningProviderBuilder {
            host: config.endpoint().host().to_owned(),
            region: config.endpoint().region().to_owned(),
            user: config.user().to_owned(),
            duration: config.token_duration(),
            credentials: None,
            clock: clock::system(),
            refresh_buffer: DEFAULT_CREDENTIALS_REFRESH_BUFFER,
        }
    }

    /// A provider that uses the AWS default credential chain (environment,
    /// profile — `config`'s profile if set —, SSO, web identity, ECS, IMDS).
    /// Nothing is resolved until the first token is requested.
    pub async fn load(config: &DsqlConfig) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new(config.endpoint().region().to_owned()));
        if let Some(profile) = config.profile() {
            loader = loader.profile_name(profile);
        }
        Self::from_sdk_config(config, &loader.load().await)
    }

    /// A provider that uses the credentials of an existing `SdkConfig`.
    ///
    /// # Panics
    /// Never; an `SdkConfig` without credentials yields a
    /// [`TokenError::Credentials`] from [`token`](TokenProvider::token).
    pub fn from_sdk_config(config: &DsqlConfig, sdk_config: &SdkConfig) -> Self {
        let mut builder = Self::builder(config);
        builder.credentials = sdk_config.credentials_provider();
        builder.build()
    }

    /// The host tokens are signed for.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// The action tokens authorize.
    pub fn action(&self) -> Action {
        self.inner.action
    }

    /// Signs a token now, without caching it.
    async fn sign(&self) -> Result<AuthToken, TokenError> {
        let inner = &*self.inner;
        let credentials = inner.credentials.get().await?;
        let now = inner.clock.now();
        let expires_in = match credentials.expiry() {
            None => inner.duration,
            Some(expiry) => {
                // Whole seconds, like X-Amz-Expires: a token must not outlive
                // the credentials that signed it.
                let left = Duration::from_secs(expiry.duration_since(now).unwrap_or_default().as_secs());
                if left.is_zero() {
                    return Err(TokenError::CredentialsExpired { expires_at: expiry });
                }
                inner.duration.min(left)
            }
        };
        // X-Amz-Date is the generator's reading of the same clock, in whole
        // seconds, taken after `now`: flooring `now` gives the same second or
        // an earlier one, so the expiry computed here is never later than the
        // one signed, and no parsing of the token is needed.
        let issued_at = floor_to_second(now);
        let expires_at = issued_at
            .checked_add(expires_in)
            .filter(|_| signable(now))
            .ok_or_else(|| {
                TokenError::signing(
                    format!(
                        "the clock reads {}, a time a SigV4 signature cannot carry (years 1970 to 9999)",
                        DisplayTime(now)
                    )
                    .into(),
                )
            })?;
        let generator = AuthTokenGenerator::new(
            GeneratorConfig::builder()
                .hostname(&inner.host)
                .region(inner.region.clone())
                .credentials(credentials)
                .expires_in(expires_in.as_secs())
                .build()
                .map_err(TokenError::signing)?,
        );
        let signing = async {
            match inner.action {
                Action::DbConnect => generator.db_connect_auth_token(&inner.sdk_config).await,
                Action::DbConnectAdmin => generator.db_connect_admin_auth_token(&inner.sdk_config).await,
            }
        };
        let signed = untraced(signing)
            .ok_or_else(|| TokenError::signing("the token generator did not complete at once".into()))?
            .map_err(TokenError::signing)?;
        Ok(AuthToken::new(signed.as_str(), issued_at, expires_at))
    }
}

impl TokenProvider for SigningProvider {
    fn token(&self) -> impl Future<Output = Result<AuthToken, TokenError>> + Send {
        let span = tracing::debug_span!(
            "dsql.token.sign",
            host = %self.inner.host,
            user = %self.inner.user,
            action = %self.inner.action,
        );
        #[cfg(feature = "metrics")]
        let signing = async move {
            let result = self.sign().await;
            crate::metrics::token_signed(&self.inner.host, &result);
            result
        };
        #[cfg(not(feature = "metrics"))]
        let signing = self.sign();
        signing.instrument(span)
    }

    /// The configuration's endpoint host and user: always known.
    fn scope(&self) -> Option<TokenScope> {
        Some(self.inner.scope.clone())
    }
}

impl fmt::Debug for SigningProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningProvider")
            .field("host", &self.inner.host)
            .field("region", &self.inner.region.as_ref())
            .field("user", &self.inner.user)
            .field("action", &self.inner.action)
            .field("duration", &self.inner.duration)
            .field("credentials", &self.inner.credentials)
            .finish()
    }
}

/// Builds a [`SigningProvider`].
pub struct SigningProviderBuilder {
    host: String,
    region: String,
    user: String,
    duration: Duration,
    credentials: Option<SharedCredentialsProvider>,
    clock: SharedClock,
    refresh_buffer: Duration,
}

impl SigningProviderBuilder {
    /// The AWS credentials to sign with (static keys, or any provider of the
    /// AWS SDK). Without it, [`build`](Self::build) gives a provider whose
    /// tokens fail with [`TokenError::Credentials`]; use
    /// [`SigningProvider::load`] for the default chain.
    pub fn credentials_provider(mut self, provider: impl ProvideCredentials + 'static) -> Self {
        self.credentials = Some(SharedCredentialsProvider::new(provider));
        self
    }

    /// The clock used for `X-Amz-Date` and credential expiry (default: the
    /// system clock).
    pub fn clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// How long before their expiry credentials are resolved again (default
    /// 5 minutes; at most half of their remaining lifetime).
    pub fn credentials_refresh_buffer(mut self, buffer: Duration) -> Self {
        self.refresh_buffer = buffer;
        self
    }

    /// Builds the provider.
    pub fn build(self) -> SigningProvider {
        let provider = self
            .credentials
            .unwrap_or_else(|| SharedCredentialsProvider::new(NoCredentials));
        let time_source = SharedTimeSource::new(ClockTimeSource(Arc::clone(&self.clock)));
        let sdk_config = SdkConfig::builder().time_source(time_source).build();
        SigningProvider {
            inner: Arc::new(Inner {
                action: Action::for_user(&self.user),
                region: Region::new(self.region),
                scope: TokenScope::new(&self.host, &self.user),
                host: self.host,
                user: self.user,
                duration: self.duration,
                credentials: CredentialsCache::new(provider, Arc::clone(&self.clock), self.refresh_buffer),
                clock: self.clock,
                sdk_config,
            }),
        }
    }
}

impl fmt::Debug for SigningProviderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningProviderBuilder")
            .field("host", &self.host)
            .field("region", &self.region)
            .field("user", &self.user)
            .field("duration", &self.duration)
            .field("credentials", &self.credentials.is_some())
            .finish_non_exhaustive()
    }
}

/// Whether `X-Amz-Date` (`YYYYMMDD'T'HHMMSS'Z'`) can hold `at`: the SDK's
/// date formatting panics on years past 9999, so an injected clock set there
/// must be refused before signing.
fn signable(at: SystemTime) -> bool {
    /// 10000-01-01T00:00:00Z.
    const END: Duration = Duration::from_secs(253_402_300_800);
    at.duration_since(SystemTime::UNIX_EPOCH)
        .is_ok_and(|since| since < END)
}

fn floor_to_second(at: SystemTime) -> SystemTime {
    match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs()),
        Err(_) => at,
    }
}

/// Runs the SDK's token generator with tracing switched off on this thread.
///
/// aws-sigv4 traces the canonical request at TRACE level, query string
/// included: with temporary credentials that is the session token. The
/// generator is given resolved credentials, so it completes on its first
/// poll (HMACs only); `None` if it ever did not.
fn untraced<F: Future>(future: F) -> Option<F::Output> {
    // `Dispatch::none` is a static no-op subscriber: nothing is allocated.
    tracing::dispatcher::with_default(&tracing::Dispatch::none(), || {
        let mut future = std::pin::pin!(future);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        }
    })
}

#[derive(Debug)]
struct ClockTimeSource(SharedClock);

impl TimeSource for ClockTimeSource {
    fn now(&self) -> SystemTime {
        self.0.now()
    }
}

#[derive(Debug)]
struct NoCredentials;

impl ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(&'a self) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no AWS credentials were configured for the DSQL signer",
            ),
        ))
    }
}
