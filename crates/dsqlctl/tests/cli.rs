//! `dsqlctl` as a user runs it, with static example credentials (nothing
//! leaves the machine).
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use dsql_auth::{AuthToken, TokenClaims};

const HOST: &str = "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws";

fn dsqlctl(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dsqlctl"));
    command
        .args(args)
        .env_clear()
        .env("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HOME", "/nonexistent");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

fn token_of(output: &Output) -> TokenClaims {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let token = AuthToken::from_presigned(stdout.trim_end()).unwrap();
    TokenClaims::parse(token.expose_secret()).unwrap()
}

#[test]
fn token_from_flags_chooses_the_action_from_the_user() {
    let claims = token_of(&dsqlctl(&["token", "--host", HOST], &[]));
    assert_eq!(
        (claims.host.as_str(), claims.action.as_str()),
        (HOST, "DbConnectAdmin")
    );
    assert_eq!(claims.access_key_id, "AKIDEXAMPLE");
    assert_eq!(claims.expires_in.as_secs(), 900);

    let claims = token_of(&dsqlctl(
        &["token", "--host", HOST, "--user", "reader", "--expires-in", "60"],
        &[],
    ));
    assert_eq!(
        (claims.action.as_str(), claims.expires_in.as_secs()),
        ("DbConnect", 60)
    );

    let id = HOST.split('.').next().unwrap();
    let claims = token_of(&dsqlctl(
        &["token", "--host", id, "--region", "eu-west-1", "--admin"],
        &[],
    ));
    assert_eq!(claims.host, format!("{id}.dsql.eu-west-1.on.aws"));
    assert_eq!(claims.region, "eu-west-1");
}

#[test]
fn token_from_url_and_from_env() {
    let claims = token_of(&dsqlctl(
        &[
            "token",
            "--url",
            &format!("postgres://reader@{HOST}/postgres?tokenDurationSecs=120"),
        ],
        &[],
    ));
    assert_eq!(
        (claims.action.as_str(), claims.expires_in.as_secs()),
        ("DbConnect", 120)
    );

    let claims = token_of(&dsqlctl(
        &["token"],
        &[
            ("CLUSTER_ENDPOINT", HOST),
            ("CLUSTER_USER", "app"),
            ("TOKEN_EXPIRY_SECS", "30"),
        ],
    ));
    assert_eq!(
        (claims.action.as_str(), claims.expires_in.as_secs()),
        ("DbConnect", 30)
    );
}

const PEER: &str = "zyxwvutsrqponmlkjihgfedcba.dsql.us-east-2.on.aws";

/// `host token` lines, local first.
fn tokens_of(output: &Output) -> Vec<(String, TokenClaims)> {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| {
            let (host, token) = line.split_once(' ').unwrap();
            let token = AuthToken::from_presigned(token).unwrap();
            (
                host.to_owned(),
                TokenClaims::parse(token.expose_secret()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_cluster_set_gets_one_token_per_endpoint_each_for_its_host_and_region() {
    let from_flags = dsqlctl(&["token", "--host", HOST, "--peer", PEER, "--user", "app"], &[]);
    let from_url = dsqlctl(
        &[
            "token",
            "--url",
            &format!("postgres://app@{HOST},{PEER}/postgres"),
        ],
        &[],
    );
    let from_env = dsqlctl(
        &["token"],
        &[
            ("CLUSTER_ENDPOINT", HOST),
            ("CLUSTER_PEER_ENDPOINTS", PEER),
            ("CLUSTER_USER", "app"),
        ],
    );
    for output in [from_flags, from_url, from_env] {
        let tokens = tokens_of(&output);
        let seen: Vec<(&str, &str, &str, &str)> = tokens
            .iter()
            .map(|(host, c)| {
                (
                    host.as_str(),
                    c.host.as_str(),
                    c.region.as_str(),
                    c.action.as_str(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                (HOST, HOST, "us-east-1", "DbConnect"),
                (PEER, PEER, "us-east-2", "DbConnect"),
            ]
        );
    }
    // One endpoint's token alone, as a password.
    let claims = token_of(&dsqlctl(
        &["token", "--host", HOST, "--peer", PEER, "--endpoint", PEER],
        &[],
    ));
    assert_eq!(claims.host, PEER);
    let unknown = dsqlctl(
        &[
            "token",
            "--host",
            HOST,
            "--peer",
            PEER,
            "--endpoint",
            "other.example",
        ],
        &[],
    );
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("not one of the cluster's endpoints"));
}

#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    for (args, env, needle) in [
        (vec!["token"], vec![], "no DSQL endpoint"),
        (
            vec!["token", "--host", "short.dsql.us-east-1.on.aws"],
            vec![],
            "not a DSQL cluster id",
        ),
        (
            vec!["token", "--host", HOST, "--region", "eu-west-1"],
            vec![],
            "region conflict",
        ),
        (
            vec!["token", "--host", HOST, "--expires-in", "0"],
            vec![],
            "out of range",
        ),
        (
            vec!["token", "--url", "postgres://admin:pw@host"],
            vec![],
            "contains a password",
        ),
        (
            vec!["token"],
            vec![("CLUSTER_ENDPOINT", HOST), ("DB_PORT", "x")],
            "DB_PORT",
        ),
    ] {
        let output = dsqlctl(&args, &env);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn missing_credentials_fail_with_exit_code_1() {
    let output = Command::new(env!("CARGO_BIN_EXE_dsqlctl"))
        .args(["token", "--host", HOST])
        .env_clear()
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("could not resolve AWS credentials"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}
