//! Verifying tokens: the [`Verifier`] and DSQL's refusal hints.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dsql_auth::clock::SharedClock;
use dsql_auth::{Action, Endpoint, MAX_TOKEN_DURATION, TokenClaims};
use subtle::ConstantTimeEq;

use super::sign::{TokenRequest, presign};
use super::{ALGORITHM, SERVICE};
use crate::config::AccessKey;
use crate::stats::RefusalReason;

/// How far in the future `X-Amz-Date` may be (clock skew), as in AWS.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);
/// Account id used in the ARNs of hints.
const ACCOUNT_ID: &str = "000000000000";

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
    /// The token names another endpoint host, whatever check refused it
    /// first (a peer in another region refuses it for its region): counted
    /// apart, so that a multi-region client can be shown never to send a
    /// token to the wrong peer.
    pub(crate) for_other_host: bool,
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
        let claims = match TokenClaims::parse(token) {
            Ok(claims) => claims,
            Err(e) => {
                return Err(AuthFailure {
                    reason: RefusalReason::MalformedToken,
                    hint: format!("The password is not a DSQL authentication token: {e}"),
                    for_other_host: false,
                });
            }
        };
        let for_other_host = !claims.host.eq_ignore_ascii_case(self.endpoint.host());
        self.check(token, claims, user)
            .map_err(|(reason, hint)| AuthFailure {
                reason,
                hint,
                for_other_host,
            })
    }

    /// Checks a parsed token; the refusal's reason and hint.
    fn check(
        &self,
        token: &str,
        claims: TokenClaims,
        user: &str,
    ) -> Result<Verified, (RefusalReason, String)> {
        let fail = |reason, hint: String| Err((reason, hint));
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
pub(super) fn amz_date(t: SystemTime) -> String {
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
