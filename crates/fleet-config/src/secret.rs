//! A wrapper that keeps secrets out of `Debug`, `Display` and logs.

use std::fmt;

/// A secret value. Its `Debug` and `Display` print `[redacted]`; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself. Call this only where the value is handed to what needs it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Secret<String> {
    /// Whether `sent` (what a client presented) is this secret, compared so that the time
    /// taken shows neither how much of it matched nor its length: both sides are hashed to
    /// digests of one length first, then every byte is compared.
    pub fn matches(&self, sent: &str) -> bool {
        use sha2::{Digest, Sha256};
        let (a, b) = (Sha256::digest(sent.as_bytes()), Sha256::digest(self.0.as_bytes()));
        a.iter().zip(b.iter()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// A PostgreSQL URL with its password replaced by `[redacted]`, for printing.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "[redacted]".to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let redacted_query = redact_query_password(tail);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => {
                format!("{scheme}://{user}:[redacted]@{host}{redacted_query}")
            }
            None => format!("{scheme}://{userinfo}@{host}{redacted_query}"),
        },
        None => format!("{scheme}://{authority}{redacted_query}"),
    }
}

/// libpq also accepts `?password=…` in the query string.
fn redact_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=[redacted]"),
            _ => p.to_owned(),
        })
        .collect();
    format!("{path}?{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn a_secret_matches_only_itself_whole() {
        let s = Secret::new("push-token".to_owned());
        assert!(s.matches("push-token"));
        for wrong in ["", "push-toke", "push-token!", "PUSH-TOKEN"] {
            assert!(!s.matches(wrong), "{wrong:?}");
        }
    }

    #[test]
    fn url_passwords_are_redacted_in_userinfo_and_query() {
        assert_eq!(
            redact_url("postgres://fleet:s3cr%40t@db.local:5432/fleet?sslmode=require"),
            "postgres://fleet:[redacted]@db.local:5432/fleet?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://fleet@db/fleet?password=abc&sslmode=disable"),
            "postgres://fleet@db/fleet?password=[redacted]&sslmode=disable"
        );
        assert_eq!(redact_url("postgres://localhost/fleet"), "postgres://localhost/fleet");
        assert_eq!(redact_url("not a url with pass"), "[redacted]");
    }
}
