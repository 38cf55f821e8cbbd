//! Content negotiation of list routes that also export CSV: `format=json|csv`, or, without
//! `format`, an `Accept` header that prefers `text/csv`.

use axum::http::{header, HeaderMap};

use crate::error::FieldError;

/// Whether the response should be CSV; a `format` other than json or csv adds a 422 error.
pub(crate) fn wants_csv(
    format: Option<&str>,
    headers: &HeaderMap,
    errors: &mut Vec<FieldError>,
) -> bool {
    match format.map(str::trim) {
        None | Some("") => accepts_csv(headers),
        Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            errors.push(FieldError::new("format", format!("{other:?} is not json or csv")));
            false
        }
    }
}

/// Whether the `Accept` header prefers CSV over JSON (CSV listed, JSON not before it).
fn accepts_csv(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    for media in accept.split(',').map(|m| m.split(';').next().unwrap_or("").trim()) {
        match media.to_ascii_lowercase().as_str() {
            "text/csv" => return true,
            "application/json" => return false,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_chooses_csv_only_when_preferred() {
        let mut h = HeaderMap::new();
        for (accept, csv) in [
            ("text/csv", true),
            ("text/csv;q=0.9, */*", true),
            ("application/json, text/csv", false),
            ("*/*", false),
        ] {
            h.insert(header::ACCEPT, accept.parse().expect("value"));
            assert_eq!(accepts_csv(&h), csv, "{accept}");
        }
    }

    #[test]
    fn format_wins_over_accept_and_is_checked() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, "text/csv".parse().expect("value"));
        let mut errors = Vec::new();
        assert!(!wants_csv(Some("json"), &h, &mut errors));
        assert!(wants_csv(Some("csv"), &HeaderMap::new(), &mut errors));
        assert!(wants_csv(None, &h, &mut errors));
        assert!(errors.is_empty());
        assert!(!wants_csv(Some("xml"), &h, &mut errors));
        assert_eq!(errors[0].field, "format");
    }
}
