//! Checks of query parameters shared by the API's routes. Each adds a `FieldError` naming the
//! parameter to the request's list, so one 422 reports every invalid field; [`finish`] turns
//! a non-empty list into the error.

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::FieldError;
use crate::ApiError;

/// Ok when nothing was wrong, else the 422 naming every invalid field.
pub(crate) fn finish(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// A page size: `default` when absent, 1 to `max`.
pub(crate) fn limit(
    value: Option<i64>,
    default: i64,
    max: i64,
    errors: &mut Vec<FieldError>,
) -> i64 {
    let limit = value.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        errors.push(FieldError::new("limit", format!("must be between 1 and {max}")));
    }
    limit
}

/// A half-open time range: `to` after `from` when both are given. Returns whether it is.
pub(crate) fn times(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    errors: &mut Vec<FieldError>,
) -> bool {
    match (from, to) {
        (Some(f), Some(t)) if f >= t => {
            errors.push(FieldError::new("to", "must be after `from`"));
            false
        }
        _ => true,
    }
}

/// A range of local days, both ends included: `from ≤ to`, at most `max_days` days.
pub(crate) fn days(from: NaiveDate, to: NaiveDate, max_days: i64, errors: &mut Vec<FieldError>) {
    if from > to {
        errors.push(FieldError::new("to", "must not be before from"));
    } else if (to - from).num_days() + 1 > max_days {
        errors.push(FieldError::new("to", format!("the range is at most {max_days} days")));
    }
}

/// A comma-separated list of names out of `all` (spelled by `name`); `None` when absent or
/// empty.
pub(crate) fn names<K: Copy>(
    field: &'static str,
    value: Option<&str>,
    all: &[K],
    name: fn(&K) -> &'static str,
    errors: &mut Vec<FieldError>,
) -> Option<Vec<K>> {
    let mut list = Vec::new();
    for part in value?.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match all.iter().find(|k| name(k) == part) {
            Some(k) => list.push(*k),
            None => {
                let allowed: Vec<&str> = all.iter().map(name).collect();
                errors.push(FieldError::new(
                    field,
                    format!("{part:?} is not one of {}", allowed.join(", ")),
                ));
            }
        }
    }
    Some(list).filter(|l| !l.is_empty())
}

/// One value out of `allowed`: "must be a, b or c" otherwise.
pub(crate) fn choice(
    field: &'static str,
    value: &str,
    allowed: &[&str],
    errors: &mut Vec<FieldError>,
) {
    if allowed.contains(&value) {
        return;
    }
    let listed = match allowed.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    errors.push(FieldError::new(field, format!("must be {listed}")));
}

/// Ids given as repeated parameters, each possibly comma-separated; `None` when there are none.
pub(crate) fn ids(
    field: &'static str,
    values: &[String],
    errors: &mut Vec<FieldError>,
) -> Option<Vec<i32>> {
    let mut ids = Vec::new();
    for part in values.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
        match part.parse::<i32>() {
            Ok(id) => ids.push(id),
            Err(_) => errors.push(FieldError::new(field, format!("{part:?} is not an id"))),
        }
    }
    Some(ids).filter(|i| !i.is_empty())
}

/// A text filter, trimmed; `None` when absent or blank.
pub(crate) fn text(value: Option<String>) -> Option<String> {
    value.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use fleet_core::EndReason;

    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn day_ranges_are_ordered_and_bounded() {
        let mut e = Vec::new();
        days(date("2024-01-01"), date("2024-12-31"), 366, &mut e);
        assert!(e.is_empty(), "366 days of a leap year");
        days(date("2025-01-01"), date("2026-01-02"), 366, &mut e);
        days(date("2025-01-02"), date("2025-01-01"), 366, &mut e);
        assert_eq!(e.len(), 2);
    }

    #[test]
    fn names_ids_and_limits_name_the_bad_field() {
        let mut e = Vec::new();
        let reasons =
            names("end_reason", Some("open, day_end"), &EndReason::ALL, EndReason::as_str, &mut e);
        assert_eq!(reasons, Some(vec![EndReason::Open, EndReason::DayEnd]));
        assert_eq!(ids("device_id", &["1,2".into(), "3".into()], &mut e), Some(vec![1, 2, 3]));
        assert_eq!(limit(None, 100, 1000, &mut e), 100);
        assert!(e.is_empty());
        names("end_reason", Some("parked"), &EndReason::ALL, EndReason::as_str, &mut e);
        ids("device_id", &["x".into()], &mut e);
        limit(Some(0), 100, 1000, &mut e);
        let fields: Vec<&str> = e.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["end_reason", "device_id", "limit"]);
        assert_eq!(e[0].message, "\"parked\" is not one of work_stop, long_gap, day_end, open");
        let mut e = Vec::new();
        choice("scope", "city", &["cost_centre", "city", "device"], &mut e);
        assert!(e.is_empty());
        choice("scope", "town", &["cost_centre", "city", "device"], &mut e);
        assert_eq!(e[0].message, "must be cost_centre, city or device");
    }
}
