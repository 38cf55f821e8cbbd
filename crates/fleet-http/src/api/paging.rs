//! Keyset paging shared by the list routes: one opaque cursor format, base64url of a JSON
//! array `[version, key]` where the key is the sort key of a page's last row. Clients pass
//! `next_after` back as `after` unchanged; the version lets the format change without a
//! stale cursor being read as a different key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::FieldError;

/// The cursor format written now; cursors of other versions are refused.
const VERSION: u8 = 1;

/// The cursor naming the row with sort key `key`.
pub(crate) fn encode<K: Serialize>(key: &K) -> String {
    // a tuple of plain values always serialises
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&(VERSION, key)).unwrap_or_default())
}

/// The sort key in a cursor from [`encode`]; `None` for anything else.
pub(crate) fn decode<K: DeserializeOwned>(cursor: &str) -> Option<K> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).ok()?;
    let (version, key): (u8, K) = serde_json::from_slice(&bytes).ok()?;
    (version == VERSION).then_some(key)
}

/// The `after` parameter's key; a cursor that is not one adds the 422 error on `after`.
pub(crate) fn after<K: DeserializeOwned>(
    after: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Option<K> {
    let key = decode(after?);
    if key.is_none() {
        errors.push(FieldError::new("after", "not a cursor from `next_after`"));
    }
    key
}

/// Keeps the first `limit` of `items` (read with one row more than a page) and returns the
/// cursor after the last one kept, or `None` when this was the last page.
pub(crate) fn next_after<T, K: Serialize>(
    items: &mut Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> K,
) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(0);
    if items.len() <= limit {
        return None;
    }
    items.truncate(limit);
    items.last().map(|last| encode(&key(last)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_anything_else_is_refused() {
        let key = (1_790_000_000_123_456_i64, 42);
        assert_eq!(decode::<(i64, i32)>(&encode(&key)), Some(key));
        let old_version = URL_SAFE_NO_PAD.encode("[0,[12,3]]");
        let wrong_shape = URL_SAFE_NO_PAD.encode("[1,[12,\"x\"]]");
        for bad in ["", "x", "!!!", &URL_SAFE_NO_PAD.encode("12.3"), &old_version, &wrong_shape] {
            let mut errors = Vec::new();
            assert_eq!(after::<(i64, i32)>(Some(bad), &mut errors), None, "{bad}");
            assert_eq!(errors[0].field, "after", "{bad}");
        }
        let mut errors = Vec::new();
        assert_eq!(after::<(i64, i32)>(None, &mut errors), None);
        assert!(errors.is_empty());
    }

    #[test]
    fn a_page_keeps_limit_rows_and_points_past_the_last() {
        let mut items = vec![5, 4, 3];
        let next = next_after(&mut items, 2, |i| *i);
        assert_eq!(items, [5, 4]);
        assert_eq!(next.as_deref().and_then(decode::<i32>), Some(4));
        let mut last = vec![2, 1];
        assert_eq!(next_after(&mut last, 2, |i| *i), None);
        assert_eq!(last, [2, 1]);
    }
}
