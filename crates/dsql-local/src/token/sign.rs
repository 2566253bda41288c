//! Signing tokens: [`sign_token`] and the presigning the verifier shares.

use std::fmt;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{self, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
use aws_sigv4::sign::v4;
use dsql_auth::Action;

use super::SERVICE;
use crate::config::AccessKey;

/// What to sign: the parameters of [`sign_token`].
///
/// `Debug` redacts the secret and the session token.
#[derive(Clone)]
pub struct TokenRequest<'a> {
    /// The endpoint host the token is for.
    pub host: &'a str,
    /// The region of the credential scope.
    pub region: &'a str,
    /// The action (`DbConnectAdmin` for `admin`).
    pub action: Action,
    /// The access key id.
    pub access_key_id: &'a str,
    /// The secret access key.
    pub secret_access_key: &'a str,
    /// The session token of temporary credentials.
    pub session_token: Option<&'a str>,
    /// `X-Amz-Date`.
    pub signed_at: SystemTime,
    /// `X-Amz-Expires` (whole seconds; not limited here, so that tests can
    /// build tokens DSQL refuses).
    pub expires_in: Duration,
}

impl<'a> TokenRequest<'a> {
    /// A request for `host` in `region`, signed with `key`.
    pub fn new(host: &'a str, region: &'a str, action: Action, key: &'a AccessKey) -> Self {
        Self {
            host,
            region,
            action,
            access_key_id: key.access_key_id(),
            secret_access_key: key.secret_access_key(),
            session_token: key.session_token(),
            signed_at: SystemTime::now(),
            expires_in: dsql_auth::DEFAULT_TOKEN_DURATION,
        }
    }
}

impl fmt::Debug for TokenRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRequest")
            .field("host", &self.host)
            .field("region", &self.region)
            .field("action", &self.action)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.map(|_| "<redacted>"))
            .field("signed_at", &self.signed_at)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// The SigV4 signer refused its input.
#[derive(Debug, thiserror::Error)]
#[error("could not sign the token: {reason}")]
pub struct SignError {
    reason: String,
}

impl SignError {
    fn new(reason: impl fmt::Display) -> Self {
        Self {
            reason: reason.to_string(),
        }
    }
}

/// Signs a DSQL token exactly as `aws-sdk-dsql`'s `AuthTokenGenerator` does,
/// with any date and validity, including ones DSQL refuses (for tests). To
/// sign tokens in applications, use `dsql_auth::SigningProvider`.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use dsql_auth::Action;
/// use dsql_local::{sign_token, AccessKey, TokenRequest};
///
/// let key = AccessKey::new("akid", "secret");
/// let mut request = TokenRequest::new("peccy.dsql.us-east-1.on.aws", "us-east-1", Action::DbConnect, &key);
/// request.signed_at = UNIX_EPOCH + Duration::from_secs(1_724_716_800);
/// request.expires_in = Duration::from_secs(450);
/// let token = sign_token(&request)?;
/// assert!(token.ends_with("X-Amz-Signature=f5f2ad764ca5df44045d4ab6ccecba0eef941b0007e5765885a0b6ed3702a3f8"));
/// # Ok::<(), dsql_local::SignError>(())
/// ```
pub fn sign_token(request: &TokenRequest<'_>) -> Result<String, SignError> {
    let (url, params, _signature) = presign(request)?;
    let mut url = url::Url::parse(&url).map_err(SignError::new)?;
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in &params {
            query.append_pair(name, value);
        }
    }
    let mut token = url.to_string();
    Ok(token.split_off("https://".len()))
}

pub(super) type SignedParams = Vec<(&'static str, String)>;

/// Presigns `GET https://<host>/?Action=<action>`; returns the URL, the query
/// parameters to add and the signature.
///
/// The signer's own trace events would show the canonical query, session
/// token included: they are silenced.
pub(super) fn presign(request: &TokenRequest<'_>) -> Result<(String, SignedParams, String), SignError> {
    tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
        presign_quietly(request)
    })
}

fn presign_quietly(request: &TokenRequest<'_>) -> Result<(String, SignedParams, String), SignError> {
    let identity = Credentials::new(
        request.access_key_id,
        request.secret_access_key,
        request.session_token.map(str::to_owned),
        None,
        "dsql-local",
    )
    .into();
    let mut settings = SigningSettings::default();
    settings.expires_in = Some(request.expires_in);
    settings.signature_location = SignatureLocation::QueryParams;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(request.region)
        .name(SERVICE)
        .time(request.signed_at)
        .settings(settings)
        .build()
        .map_err(SignError::new)?;
    let url = format!("https://{}/?Action={}", request.host, request.action.as_str());
    let signable = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(SignError::new)?;
    let (instructions, signature) = http_request::sign(signable, &params.into())
        .map_err(SignError::new)?
        .into_parts();
    let (_headers, params) = instructions.into_parts();
    let params = params
        .into_iter()
        .map(|(name, value)| (name, value.into_owned()))
        .collect();
    Ok((url, params, signature))
}
