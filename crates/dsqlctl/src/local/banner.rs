//! What `dsqlctl local` prints at start, with shell quoting.

use std::borrow::Cow;

use dsql_local::{DEFAULT_ACCESS_KEY_ID, DsqlLocal, Regions};

use super::USER;

/// What is printed on stdout at start: where the endpoint is and how to
/// connect to it.
pub(super) fn banner(local: &DsqlLocal, upstream: &str, persistent_ca: bool, shows_secret: bool) -> String {
    let ca_note = if persistent_ca {
        ""
    } else {
        " (temporary: removed at exit; --ca-dir keeps one)"
    };
    format!(
        "dsql-local is running; stop it with Ctrl-C.\n{}",
        endpoint(local, upstream, ca_note, shows_secret, &Names::ONE)
    )
}

/// What is printed on stdout at start with `--regions`: each region as
/// [`banner`] shows one endpoint, then the multi-host URL of them all.
pub(super) fn regions_banner(
    regions: &Regions,
    upstream: &str,
    persistent_ca: bool,
    shows_secret: bool,
) -> String {
    let ca_note = if persistent_ca {
        " (shared by every region)"
    } else {
        " (shared by every region; temporary: removed at exit; --ca-dir keeps one)"
    };
    let mut out = format!(
        "dsql-local is running {} regions of one cluster over one database; stop it with Ctrl-C.\n",
        regions.iter().count()
    );
    for (index, local) in regions.iter().enumerate() {
        let region = local.endpoint().region();
        let names = Names {
            title: format!("\nRegion {region}{}:\n", if index == 0 { " (local)" } else { "" }),
            of: format!(" to {region}"),
            url_of: format!(" of {region}"),
            url_var: format!("DSQL_LOCAL_URL_{}", region.to_ascii_uppercase().replace('-', "_")),
        };
        out.push_str(&endpoint(local, upstream, ca_note, shows_secret, &names));
    }
    out.push_str(&format!(
        "\nMulti-host connection URL, the local region first (dsql_auth::ClusterSet::from_url):\n\
         \x20 export DSQL_LOCAL_URL={}\n",
        sh_quote(&regions.connection_url(USER)),
    ));
    out
}

/// The words that tell one region's lines from another's.
struct Names {
    /// The line before the endpoint's fields.
    title: String,
    /// After "Connect".
    of: String,
    /// After "Connection URL".
    url_of: String,
    /// The environment variable of the URL.
    url_var: String,
}

impl Names {
    /// One endpoint: no names.
    const ONE: Names = Names {
        title: String::new(),
        of: String::new(),
        url_of: String::new(),
        url_var: String::new(),
    };
}

/// One endpoint's fields, `psql` command and URL.
fn endpoint(local: &DsqlLocal, upstream: &str, ca_note: &str, shows_secret: bool, names: &Names) -> String {
    let key = local.access_key();
    let ca = local.ca_path().display().to_string();
    let (secret_line, secret_env) = if shows_secret {
        (
            format!(
                "{} (dsql-local's public test key, not an AWS secret: shown on purpose)",
                key.secret_access_key()
            ),
            sh_quote(key.secret_access_key()).into_owned(),
        )
    } else {
        (
            "the one given (not shown)".to_owned(),
            "<your --secret-access-key>".to_owned(),
        )
    };
    let token_command = format!(
        "AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={secret_env} AWS_SESSION_TOKEN= \
         dsqlctl token --host {} --region {} --user {USER}",
        sh_quote(key.access_key_id()),
        sh_quote(local.host()),
        sh_quote(local.endpoint().region()),
    );
    let key_note = if key.access_key_id() == DEFAULT_ACCESS_KEY_ID {
        "the test key above"
    } else {
        "the key above"
    };
    let url_var = if names.url_var.is_empty() {
        "DSQL_LOCAL_URL"
    } else {
        &names.url_var
    };
    format!(
        "{title}\
         \x20 endpoint host:     {host}\n\
         \x20 region:            {region}\n\
         \x20 address:           {addr}\n\
         \x20 upstream:          {upstream}\n\
         \x20 CA certificate:    {ca}{ca_note}\n\
         \x20 access key id:     {key_id}\n\
         \x20 secret access key: {secret_line}\n\
         \n\
         Connect{of} with psql (the token is signed with {key_note}, not your AWS credentials, \
         and is valid for 15 minutes):\n\
         \x20 export PGPASSWORD=\"$({token_command})\"\n\
         \x20 psql {conninfo}\n\
         \n\
         Connection URL{url_of} (dsql_auth::DsqlConfig::from_url):\n\
         \x20 export {url_var}={url}\n",
        title = names.title,
        of = names.of,
        url_of = names.url_of,
        host = local.host(),
        region = local.endpoint().region(),
        addr = local.addr(),
        key_id = key.access_key_id(),
        conninfo = sh_double_quote(&local.libpq_conninfo(USER)),
        url = sh_quote(&local.connection_url(USER)),
    )
}

/// `value` as one shell word: as is when it is safe, else single-quoted.
fn sh_quote(value: &str) -> Cow<'_, str> {
    let safe = |b: u8| b.is_ascii_alphanumeric() || b"-_./:@%+=,".contains(&b);
    if !value.is_empty() && value.bytes().all(safe) {
        Cow::Borrowed(value)
    } else {
        Cow::Owned(format!("'{}'", value.replace('\'', r"'\''")))
    }
}

/// `value` in double quotes, for a shell.
fn sh_double_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting() {
        assert_eq!(sh_quote("AKIDLOCAL"), "AKIDLOCAL");
        assert_eq!(
            sh_quote("dsql-local/test/secret/not-a-real-aws-key"),
            "dsql-local/test/secret/not-a-real-aws-key"
        );
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_double_quote(r#"a'b "$x" \ `y`"#), r#""a'b \"\$x\" \\ \`y\`""#);
    }
}
