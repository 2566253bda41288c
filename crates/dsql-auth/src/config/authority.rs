//! A connection URL cut at its authority as libpq reads it: user info, then a
//! comma-separated host list (`host[:port]`, `[ipv6]:port`), then the rest.
//!
//! The `url` crate knows one host per URL: it reads `h1:5432,h2` as the host
//! `h1` with the port `5432,h2`. Several hosts are therefore found here,
//! before it parses, cutting where it cuts.

use std::borrow::Cow;

/// `scheme://[user-info@]host-list[tail]`, each part as written.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Authority<'a> {
    pub(super) scheme: &'a str,
    /// Everything before the last `@` of the authority, as the `url` crate
    /// reads it (it percent-encodes the earlier ones).
    pub(super) user_info: Option<&'a str>,
    /// The `host[:port]` items; at least one, maybe empty.
    pub(super) hosts: Vec<&'a str>,
    /// Path, query and fragment.
    pub(super) tail: &'a str,
}

impl<'a> Authority<'a> {
    /// Cuts `url` (already [`clean`]ed); `None` without `scheme://`.
    pub(super) fn split(url: &'a str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        // The `url` crate ends the authority at the first of these, even
        // inside the user info.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (user_info, hosts) = match authority.rsplit_once('@') {
            Some((user_info, hosts)) => (Some(user_info), hosts),
            None => (None, authority),
        };
        Some(Self {
            scheme,
            user_info,
            hosts: hosts.split(',').collect(),
            tail,
        })
    }
}

/// The host of a `host[:port]` item, with an IPv6 literal's brackets.
pub(super) fn host_of(item: &str) -> &str {
    if item.starts_with('[') {
        return match item.find(']') {
            Some(end) => &item[..=end],
            None => item,
        };
    }
    item.split_once(':').map_or(item, |(host, _)| host)
}

/// `url` as the `url` crate sees it: without surrounding blanks and control
/// characters, and without tabs and newlines anywhere (which it drops before
/// parsing). Checks on the text, like the password check, must see the same.
pub(super) fn clean(url: &str) -> Cow<'_, str> {
    let trimmed = url.trim().trim_matches(|c: char| c <= ' ');
    if trimmed.contains(['\t', '\n', '\r']) {
        Cow::Owned(
            trimmed
                .chars()
                .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
                .collect(),
        )
    } else {
        Cow::Borrowed(trimmed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_where_the_url_crate_cuts() {
        let cut = Authority::split("postgres://a@b@h1:1,[::1]:2,h3/db?x=1#f").unwrap();
        assert_eq!(cut.scheme, "postgres");
        assert_eq!(cut.user_info, Some("a@b"));
        assert_eq!(cut.hosts, ["h1:1", "[::1]:2", "h3"]);
        assert_eq!(cut.tail, "/db?x=1#f");
        assert_eq!(
            cut.hosts.iter().map(|h| host_of(h)).collect::<Vec<_>>(),
            ["h1", "[::1]", "h3"]
        );

        let cut = Authority::split("dsql://h?u=a@b").unwrap();
        assert_eq!((cut.user_info, cut.hosts, cut.tail), (None, vec!["h"], "?u=a@b"));
        assert_eq!(Authority::split("postgres:h1,h2"), None);
        assert_eq!(Authority::split("postgres://").map(|c| c.hosts), Some(vec![""]));
        assert_eq!(host_of("[::1"), "[::1");
    }

    #[test]
    fn cleans_as_the_url_crate_does() {
        assert_eq!(clean(" \u{1}postgres:/\t/a\n,b\r \u{0}"), "postgres://a,b");
        assert!(matches!(clean("postgres://h"), Cow::Borrowed("postgres://h")));
    }
}
