//! The libpq multi-host connection URL of the regional endpoints.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::server::DsqlLocal;

/// Everything but RFC 3986's unreserved characters is encoded in the user
/// name: more than needed, always valid.
const USERINFO: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `postgres://<user>@<host>:<port>,<host>:<port>/postgres?hostaddr=<ip>,<ip>&sslrootcert=<ca>`:
/// libpq's multi-host form, hosts in order, with the parameters
/// [`DsqlLocal::connection_url`] gives one endpoint, but `region`: each
/// DSQL host name carries its own.
pub(super) fn multi_host_url<'a>(
    endpoints: impl Iterator<Item = &'a DsqlLocal> + Clone,
    user: &str,
    ca_path: &str,
) -> String {
    let hosts: Vec<String> = endpoints
        .clone()
        .map(|local| format!("{}:{}", local.host(), local.port()))
        .collect();
    // IP addresses need no encoding, and the list reads as libpq's with
    // its commas as they are.
    let addrs: Vec<String> = endpoints.map(|local| local.addr().ip().to_string()).collect();
    let ca: String = url::form_urlencoded::byte_serialize(ca_path.as_bytes()).collect();
    format!(
        "postgres://{}@{}/postgres?hostaddr={}&sslrootcert={ca}",
        utf8_percent_encode(user, USERINFO),
        hosts.join(","),
        addrs.join(","),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_encoded() {
        assert_eq!(utf8_percent_encode("admin", USERINFO).to_string(), "admin");
        assert_eq!(
            utf8_percent_encode("a@b:c/d é", USERINFO).to_string(),
            "a%40b%3Ac%2Fd%20%C3%A9"
        );
    }
}
