use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dsql_auth::clock::ManualClock;
use dsql_auth::{Action, Endpoint};

use super::verify::{AuthFailure, Verified, Verifier, amz_date};
use super::{TokenRequest, sign_token};
use crate::config::AccessKey;
use crate::stats::RefusalReason;

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

    assert!(!failure.for_other_host, "a token for this host");

    let host = VECTOR.replace("peccy.", "other.");
    let failure = refusal(verifier.verify(&host, "reader"));
    assert_eq!(failure.reason, RefusalReason::WrongHost);
    assert!(failure.for_other_host);
    assert!(
        failure
            .hint
            .ends_with("is not authorized to access this resource")
    );
    // Another region's peer: refused for its region first, still counted
    // as a token for another host.
    let peer = host.replace("%2Fus-east-1%2F", "%2Fus-east-2%2F");
    let failure = refusal(verifier.verify(&peer, "reader"));
    assert_eq!(failure.reason, RefusalReason::WrongRegion);
    assert!(failure.for_other_host);

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

/// Whether `hint` is one of the catalog's hints for `ACCESS_DENIED`: the
/// same text up to its first variable part (a date, a name, a number).
fn in_catalog(hint: &str) -> bool {
    let fixed = |s: &str| -> String {
        s.chars()
            .take_while(|c| !c.is_ascii_digit() && !matches!(c, '\'' | ':' | '.'))
            .collect()
    };
    crate::catalog::ACCESS_DENIED
        .client_classes
        .iter()
        .filter_map(|c| c.hint)
        .any(|known| fixed(known) == fixed(hint))
}

#[test]
fn every_refusal_hint_is_in_the_catalog() {
    let clock = ManualClock::new(signed_at());
    let verifier = verifier(&clock);
    let mut hints = vec![
        verifier.not_authorized_hint("akid", Action::DbConnectAdmin),
        refusal(verifier.verify(VECTOR, "admin")).hint,
        refusal(verifier.verify("hunter2", "reader")).hint,
        "The password is not a DSQL authentication token.".to_owned(),
    ];
    for (from, to) in [
        ("f5f2ad", "f5f2ae"),
        ("X-Amz-Expires=450", "X-Amz-Expires=604801"),
        ("Credential=akid", "Credential=other"),
        ("%2Fus-east-1%2F", "%2Feu-west-1%2F"),
        ("%2Fdsql%2F", "%2Frds%2F"),
        ("peccy.", "other."),
        ("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"),
        ("SignedHeaders=host", "SignedHeaders=host%3Bx-amz-date"),
    ] {
        hints.push(refusal(verifier.verify(&VECTOR.replace(from, to), "reader")).hint);
    }
    clock.advance(Duration::from_secs(3600));
    hints.push(refusal(verifier.verify(VECTOR, "reader")).hint);
    clock.set(signed_at() - Duration::from_secs(301));
    hints.push(refusal(verifier.verify(VECTOR, "reader")).hint);
    for hint in hints {
        assert!(in_catalog(&hint), "not in catalog::ACCESS_DENIED: {hint}");
    }
}
