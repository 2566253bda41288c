use std::io;

use super::*;

/// Each row of the facts table, with DSQL's own texts.
#[test]
fn dsql_table_row_by_row() {
    let rows: &[(&str, &str, Option<&str>, ErrorClass)] = &[
        (
            "40001",
            "change conflicts with another transaction, please retry: (OC000)",
            None,
            ErrorClass::Conflict,
        ),
        (
            "40001",
            "change conflicts with another transaction (OC000)",
            None,
            ErrorClass::Conflict,
        ),
        (
            "40001",
            "schema has been updated by another transaction, please retry: (OC001)",
            None,
            ErrorClass::Conflict,
        ),
        ("40P01", "deadlock detected", None, ErrorClass::Conflict),
        (
            "08006",
            "unable to accept connection, access denied",
            Some("Signature expired: 20240827T001500Z is now earlier than 20240827T002000Z"),
            ErrorClass::Reauthenticate,
        ),
        (
            "08006",
            "unable to accept connection, access denied",
            Some("Wrong user to action mapping. user: admin, action: DbConnect"),
            ErrorClass::Fatal,
        ),
        (
            "08006",
            "unable to accept connection, access denied",
            Some("User: arn:aws:iam::123456789012:user/x is not authorized to perform: dsql:DbConnectAdmin"),
            ErrorClass::Reauthenticate,
        ),
        ("08006", "connection failure", None, ErrorClass::Reconnect),
        ("08000", "connection exception", None, ErrorClass::Reconnect),
        ("08003", "connection does not exist", None, ErrorClass::Reconnect),
        ("08001", "unable to connect", None, ErrorClass::Reconnect),
        (
            "57P01",
            "terminating connection due to administrator command",
            None,
            ErrorClass::Reconnect,
        ),
        (
            "53300",
            "Unable to accept connection, too many open connections.",
            None,
            ErrorClass::Throttled,
        ),
        (
            "53400",
            "Unable to accept connection, rate exceeded.",
            None,
            ErrorClass::Throttled,
        ),
        (
            "57P03",
            "the database system is starting up",
            None,
            ErrorClass::Throttled,
        ),
        (
            "54000",
            "transaction size limit exceeded",
            None,
            ErrorClass::Fatal,
        ),
        (
            "42601",
            "syntax error at or near \"SELEC\"",
            None,
            ErrorClass::Fatal,
        ),
        (
            "42P01",
            "relation \"nope\" does not exist",
            None,
            ErrorClass::Fatal,
        ),
        (
            "23505",
            "duplicate key value violates unique constraint",
            None,
            ErrorClass::Fatal,
        ),
        ("0A000", "feature not supported", None, ErrorClass::Fatal),
        ("XX000", "internal error", None, ErrorClass::Fatal),
    ];
    for (code, message, hint, class) in rows {
        assert_eq!(
            classify_server_error(code, message, *hint),
            *class,
            "{code} {message} {hint:?}"
        );
    }
}

#[test]
fn lost_connections_are_reconnects_and_bad_input_is_fatal() {
    for kind in [
        io::ErrorKind::ConnectionRefused,
        io::ErrorKind::ConnectionReset,
        io::ErrorKind::ConnectionAborted,
        io::ErrorKind::BrokenPipe,
        io::ErrorKind::UnexpectedEof,
        io::ErrorKind::TimedOut,
    ] {
        assert_eq!(
            DsqlClassifier.classify(&io::Error::from(kind)),
            ErrorClass::Reconnect,
            "{kind:?}"
        );
    }
    assert_eq!(
        DsqlClassifier.classify(&io::Error::from(io::ErrorKind::InvalidInput)),
        ErrorClass::Fatal
    );
    let tls = io::Error::new(
        io::ErrorKind::InvalidData,
        rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
    );
    assert_eq!(DsqlClassifier.classify(&tls), ErrorClass::Fatal);
}

#[test]
fn token_errors_and_unknown_errors() {
    let credentials = dsql_auth::TokenError::provider("IMDS timed out");
    assert_eq!(DsqlClassifier.classify(&credentials), ErrorClass::Reauthenticate);
    let expired = dsql_auth::TokenError::Expired {
        expired_at: std::time::SystemTime::UNIX_EPOCH,
    };
    assert_eq!(DsqlClassifier.classify(&expired), ErrorClass::Fatal);

    #[derive(Debug)]
    struct Mystery;
    impl std::fmt::Display for Mystery {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("mystery")
        }
    }
    impl StdError for Mystery {}
    assert_eq!(DsqlClassifier.classify(&Mystery), ErrorClass::Fatal);
}

#[test]
fn the_chain_is_walked() {
    #[derive(Debug)]
    struct Wrapper(io::Error);
    impl std::fmt::Display for Wrapper {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("query failed")
        }
    }
    impl StdError for Wrapper {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }
    let wrapped = Wrapper(io::Error::from(io::ErrorKind::ConnectionReset));
    assert_eq!(DsqlClassifier.classify(&wrapped), ErrorClass::Reconnect);
}
