//! Token signing (as `aws-sdk-dsql` does it) and verification.
//!
//! A DSQL token is `GET https://<host>/?Action=<action>` presigned with SigV4
//! for service `dsql`, without the scheme. Verification recomputes the
//! signature from the token's own claims and the configured secret, and
//! compares it in constant time. Neither the token nor a signature is ever
//! logged, returned in an error, or shown by `Debug`.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{self, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
use aws_sigv4::sign::v4;
use dsql_auth::clock::SharedClock;
use dsql_auth::{Action, Endpoint, MAX_TOKEN_DURATION, TokenClaims};
use subtle::ConstantTimeEq;

use crate::config::AccessKey;
use crate::stats::RefusalReason;

const SERVICE: &str = "dsql";
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far in the future `X-Amz-Date` may be (clock skew), as in AWS.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);
/// Account id used in the ARNs of hints.
const ACCOUNT_ID: &str = "000000000000";

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

type SignedParams = Vec<(&'static str, String)>;

/// Presigns `GET https://<host>/?Action=<action>`; returns the URL, the query
/// parameters to add and the signature.
///
/// The signer's own trace events would show the canonical query, session
/// token included: they are silenced.
fn presign(request: &TokenRequest<'_>) -> Result<(String, SignedParams, String), SignError> {
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

/// An accepted token: who signed it.
#[derive(Clone, Debug)]
pub(crate) struct Verified {
    pub(crate) access_key_id: String,
    pub(crate) action: Action,
}

/// A refused token: the reason (for the stats) and DSQL's hint.
#[derive(Clone, Debug)]
pub(crate) struct AuthFailure {
    pub(crate) reason: RefusalReason,
    pub(crate) hint: String,
}

/// Checks tokens against the endpoint, the key table and the clock.
pub(crate) struct Verifier {
    endpoint: Endpoint,
    keys: HashMap<String, AccessKey>,
    allow_unknown: bool,
    clock: SharedClock,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("endpoint", &self.endpoint.host())
            .field("keys", &self.keys.len())
            .field("allow_unknown", &self.allow_unknown)
            .finish_non_exhaustive()
    }
}

/// The parameters `TokenClaims` does not keep.
struct Secrets<'a> {
    algorithm: Option<&'a str>,
    signature: Option<&'a str>,
    session_token: Option<String>,
}

impl<'a> Secrets<'a> {
    fn of(token: &'a str) -> Self {
        let mut secrets = Self {
            algorithm: None,
            signature: None,
            session_token: None,
        };
        let query = token.split_once("/?").map_or("", |(_, q)| q);
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "X-Amz-Algorithm" => secrets.algorithm = Some(value),
                "X-Amz-Signature" => secrets.signature = Some(value),
                "X-Amz-Security-Token" => {
                    secrets.session_token = Some(
                        percent_encoding::percent_decode_str(&value.replace('+', " "))
                            .decode_utf8_lossy()
                            .into_owned(),
                    );
                }
                _ => {}
            }
        }
        secrets
    }
}

impl Verifier {
    pub(crate) fn new(
        endpoint: Endpoint,
        keys: &[AccessKey],
        allow_unknown: bool,
        clock: SharedClock,
    ) -> Self {
        Self {
            endpoint,
            keys: keys
                .iter()
                .map(|k| (k.access_key_id().to_owned(), k.clone()))
                .collect(),
            allow_unknown,
            clock,
        }
    }

    fn principal(&self, access_key_id: &str) -> String {
        // IAM user names cannot be derived from a key; name the key instead.
        format!("arn:aws:iam::{ACCOUNT_ID}:user/{}", sanitize(access_key_id))
    }

    fn resource(&self) -> String {
        let id = match self.endpoint.kind() {
            dsql_auth::EndpointKind::Cluster { id } => id.clone(),
            _ => self.endpoint.host().to_owned(),
        };
        format!(
            "arn:aws:dsql:{}:{ACCOUNT_ID}:cluster/{id}",
            self.endpoint.region()
        )
    }

    /// The hint DSQL gives when IAM refuses the action.
    pub(crate) fn not_authorized_hint(&self, access_key_id: &str, action: Action) -> String {
        format!(
            "User: {} is not authorized to perform: dsql:{} on resource: {} because no identity-based \
             policy allows the dsql:{} action",
            self.principal(access_key_id),
            action,
            self.resource(),
            action,
        )
    }

    /// Checks `token` as the password of `user`.
    pub(crate) fn verify(&self, token: &str, user: &str) -> Result<Verified, AuthFailure> {
        let fail = |reason, hint: String| Err(AuthFailure { reason, hint });
        let claims = match TokenClaims::parse(token) {
            Ok(claims) => claims,
            Err(e) => {
                return fail(
                    RefusalReason::MalformedToken,
                    format!("The password is not a DSQL authentication token: {e}"),
                );
            }
        };
        let secrets = Secrets::of(token);
        if secrets.algorithm != Some(ALGORITHM) {
            return fail(
                RefusalReason::UnsupportedAlgorithm,
                format!("Unsupported signing algorithm: only {ALGORITHM} is supported."),
            );
        }
        if claims.signed_headers != "host" {
            return fail(
                RefusalReason::UnsupportedSignedHeaders,
                "The token must sign exactly the header 'host'.".to_owned(),
            );
        }
        if claims.service != SERVICE {
            return fail(
                RefusalReason::WrongService,
                format!("Credential should be scoped to correct service: '{SERVICE}'."),
            );
        }
        if claims.region != self.endpoint.region() {
            return fail(
                RefusalReason::WrongRegion,
                format!(
                    "Credential should be scoped to a valid region, not '{}'.",
                    sanitize(&claims.region)
                ),
            );
        }
        if !claims.host.eq_ignore_ascii_case(self.endpoint.host()) {
            return fail(
                RefusalReason::WrongHost,
                format!(
                    "User: {} is not authorized to access this resource",
                    self.principal(&claims.access_key_id)
                ),
            );
        }
        let action = Action::for_user(user);
        if claims.action != action.as_str() {
            return fail(
                RefusalReason::WrongAction,
                format!(
                    "Wrong user to action mapping. user: {}, action: {}",
                    sanitize(user),
                    sanitize(&claims.action)
                ),
            );
        }
        if claims.expires_in > MAX_TOKEN_DURATION {
            return fail(
                RefusalReason::ExpiresTooLong,
                format!(
                    "X-Amz-Expires must be less than a week (in seconds) that is {}",
                    MAX_TOKEN_DURATION.as_secs()
                ),
            );
        }
        match self.keys.get(&claims.access_key_id) {
            None if self.allow_unknown => {}
            None => {
                return fail(
                    RefusalReason::UnknownAccessKey,
                    "The security token included in the request is invalid.".to_owned(),
                );
            }
            Some(key) => {
                let session_ok = match (key.session_token(), &secrets.session_token) {
                    (None, None) => true,
                    (Some(expected), Some(given)) => bool::from(expected.as_bytes().ct_eq(given.as_bytes())),
                    _ => false,
                };
                if !session_ok {
                    return fail(
                        RefusalReason::InvalidSessionToken,
                        "The security token included in the request is invalid.".to_owned(),
                    );
                }
                let request = TokenRequest {
                    host: &claims.host,
                    region: &claims.region,
                    action,
                    access_key_id: key.access_key_id(),
                    secret_access_key: key.secret_access_key(),
                    session_token: key.session_token(),
                    signed_at: claims.issued_at,
                    expires_in: claims.expires_in,
                };
                let matches = match presign(&request) {
                    Ok((_, _, expected)) => secrets
                        .signature
                        .is_some_and(|given| bool::from(given.as_bytes().ct_eq(expected.as_bytes()))),
                    Err(_) => false,
                };
                if !matches {
                    return fail(
                        RefusalReason::SignatureMismatch,
                        "The request signature we calculated does not match the signature you provided. \
                         Check your AWS Secret Access Key and signing method."
                            .to_owned(),
                    );
                }
            }
        }
        let now = self.clock.now();
        let expires_at = claims.expires_at();
        if now >= expires_at {
            return fail(
                RefusalReason::Expired,
                format!(
                    "Signature expired: {} is now earlier than {}",
                    amz_date(expires_at),
                    amz_date(now)
                ),
            );
        }
        if claims.issued_at > now + MAX_CLOCK_SKEW {
            return fail(
                RefusalReason::NotYetValid,
                format!(
                    "Signature not yet current: {} is still later than {} ({} + 5 min.)",
                    amz_date(claims.issued_at),
                    amz_date(now + MAX_CLOCK_SKEW),
                    amz_date(now)
                ),
            );
        }
        Ok(Verified {
            access_key_id: claims.access_key_id,
            action,
        })
    }
}

/// Keeps echoed token fields short and printable.
fn sanitize(s: &str) -> String {
    s.chars()
        .take(64)
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect()
}

/// `YYYYMMDD'T'HHMMSS'Z'`, SigV4's date format.
fn amz_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use dsql_auth::clock::ManualClock;

    use super::*;

    const HOST: &str = "peccy.dsql.us-east-1.on.aws";
    const VECTOR: &str = "peccy.dsql.us-east-1.on.aws/?Action=DbConnect&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=akid%2F20240827%2Fus-east-1%2Fdsql%2Faws4_request&X-Amz-Date=20240827T000000Z&X-Amz-Expires=450&X-Amz-SignedHeaders=host&X-Amz-Signature=f5f2ad764ca5df44045d4ab6ccecba0eef941b0007e5765885a0b6ed3702a3f8";
    const ADMIN_SIGNATURE: &str = "267cf8d04d84444f7a62d5bdb40c44bfc6cb13dd6c64fa7f772df6bbaa90fff1";

    fn signed_at() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_724_716_800)
    }

    fn verifier(clock: &ManualClock) -> Verifier {
        let endpoint = Endpoint::custom(HOST, "us-east-1").expect("valid host");
        Verifier::new(
            endpoint,
            &[AccessKey::new("akid", "secret")],
            false,
            Arc::new(clock.clone()),
        )
    }

    fn refusal(result: Result<Verified, AuthFailure>) -> AuthFailure {
        match result {
            Ok(_) => panic!("accepted"),
            Err(failure) => failure,
        }
    }

    #[test]
    fn signs_the_known_answer_vectors() {
        let key = AccessKey::new("akid", "secret");
        let mut request = TokenRequest::new(HOST, "us-east-1", Action::DbConnect, &key);
        request.signed_at = signed_at();
        request.expires_in = Duration::from_secs(450);
        assert_eq!(sign_token(&request).expect("signs"), VECTOR);
        request.action = Action::DbConnectAdmin;
        let admin = sign_token(&request).expect("signs");
        assert!(admin.contains("?Action=DbConnectAdmin&"));
        assert!(admin.ends_with(ADMIN_SIGNATURE));
        assert!(!format!("{request:?}").contains("secret\""));
    }

    #[test]
    fn accepts_the_known_answer_vector_until_it_expires() {
        let clock = ManualClock::new(signed_at());
        let verifier = verifier(&clock);
        let verified = verifier.verify(VECTOR, "reader").expect("vector accepted");
        assert_eq!(verified.access_key_id, "akid");
        assert_eq!(verified.action, Action::DbConnect);

        clock.advance(Duration::from_secs(449));
        assert!(verifier.verify(VECTOR, "reader").is_ok());
        clock.advance(Duration::from_secs(1));
        let failure = refusal(verifier.verify(VECTOR, "reader"));
        assert_eq!(failure.reason, RefusalReason::Expired);
        assert_eq!(
            failure.hint,
            "Signature expired: 20240827T000730Z is now earlier than 20240827T000730Z"
        );
    }

    #[test]
    fn refuses_with_dsql_hints() {
        let clock = ManualClock::new(signed_at());
        let verifier = verifier(&clock);

        let failure = refusal(verifier.verify(VECTOR, "admin"));
        assert_eq!(failure.reason, RefusalReason::WrongAction);
        assert_eq!(
            failure.hint,
            "Wrong user to action mapping. user: admin, action: DbConnect"
        );

        let tampered = VECTOR.replace("f5f2ad", "f5f2ae");
        let failure = refusal(verifier.verify(&tampered, "reader"));
        assert_eq!(failure.reason, RefusalReason::SignatureMismatch);
        assert!(
            failure
                .hint
                .starts_with("The request signature we calculated does not match")
        );

        let longer = VECTOR.replace("X-Amz-Expires=450", "X-Amz-Expires=451");
        assert_eq!(
            refusal(verifier.verify(&longer, "reader")).reason,
            RefusalReason::SignatureMismatch
        );

        let week = VECTOR.replace("X-Amz-Expires=450", "X-Amz-Expires=604801");
        let failure = refusal(verifier.verify(&week, "reader"));
        assert_eq!(failure.reason, RefusalReason::ExpiresTooLong);

        let unknown = VECTOR.replace("Credential=akid", "Credential=other");
        let failure = refusal(verifier.verify(&unknown, "reader"));
        assert_eq!(failure.reason, RefusalReason::UnknownAccessKey);
        assert_eq!(
            failure.hint,
            "The security token included in the request is invalid."
        );

        let region = VECTOR.replace("%2Fus-east-1%2F", "%2Feu-west-1%2F");
        let failure = refusal(verifier.verify(&region, "reader"));
        assert_eq!(failure.reason, RefusalReason::WrongRegion);
        assert_eq!(
            failure.hint,
            "Credential should be scoped to a valid region, not 'eu-west-1'."
        );

        let service = VECTOR.replace("%2Fdsql%2F", "%2Frds%2F");
        assert_eq!(
            refusal(verifier.verify(&service, "reader")).reason,
            RefusalReason::WrongService
        );

        let host = VECTOR.replace("peccy.", "other.");
        let failure = refusal(verifier.verify(&host, "reader"));
        assert_eq!(failure.reason, RefusalReason::WrongHost);
        assert!(
            failure
                .hint
                .ends_with("is not authorized to access this resource")
        );

        let algorithm = VECTOR.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256");
        assert_eq!(
            refusal(verifier.verify(&algorithm, "reader")).reason,
            RefusalReason::UnsupportedAlgorithm
        );

        let headers = VECTOR.replace("SignedHeaders=host", "SignedHeaders=host%3Bx-amz-date");
        assert_eq!(
            refusal(verifier.verify(&headers, "reader")).reason,
            RefusalReason::UnsupportedSignedHeaders
        );

        let failure = refusal(verifier.verify("hunter2", "reader"));
        assert_eq!(failure.reason, RefusalReason::MalformedToken);

        let session = format!("{VECTOR}&X-Amz-Security-Token=abc");
        assert_eq!(
            refusal(verifier.verify(&session, "reader")).reason,
            RefusalReason::InvalidSessionToken
        );

        clock.set(signed_at() - Duration::from_secs(301));
        assert_eq!(
            refusal(verifier.verify(VECTOR, "reader")).reason,
            RefusalReason::NotYetValid
        );
    }

    #[test]
    fn hints_never_contain_the_signature() {
        let clock = ManualClock::new(signed_at() + Duration::from_secs(3600));
        let verifier = verifier(&clock);
        for (token, user) in [(VECTOR, "reader"), (VECTOR, "admin")] {
            let failure = refusal(verifier.verify(token, user));
            assert!(!failure.hint.contains("f5f2ad"), "{failure:?}");
        }
    }

    #[test]
    fn temporary_credentials_need_their_session_token() {
        let key = AccessKey::new("ASIATEMP", "secret").with_session_token("FwoGZXIvYXdzE+/token==");
        let clock = ManualClock::new(signed_at());
        let endpoint = Endpoint::custom(HOST, "us-east-1").expect("valid host");
        let verifier = Verifier::new(endpoint, std::slice::from_ref(&key), false, Arc::new(clock));
        let mut request = TokenRequest::new(HOST, "us-east-1", Action::DbConnectAdmin, &key);
        request.signed_at = signed_at();
        let token = sign_token(&request).expect("signs");
        assert!(token.contains("X-Amz-Security-Token="));
        assert!(verifier.verify(&token, "admin").is_ok());

        let other = AccessKey::new("ASIATEMP", "secret").with_session_token("another");
        let request = TokenRequest {
            signed_at: signed_at(),
            ..TokenRequest::new(HOST, "us-east-1", Action::DbConnectAdmin, &other)
        };
        let token = sign_token(&request).expect("signs");
        assert_eq!(
            refusal(verifier.verify(&token, "admin")).reason,
            RefusalReason::InvalidSessionToken
        );
    }

    #[test]
    fn amz_dates() {
        assert_eq!(amz_date(signed_at()), "20240827T000000Z");
        assert_eq!(
            amz_date(UNIX_EPOCH + Duration::from_secs(951_868_799)),
            "20000229T235959Z"
        );
    }
}
