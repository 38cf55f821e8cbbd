//! The typed OpenAPI methods, with the vendor's limits on IMEIs per call, time windows and
//! paging applied so callers can ask for any range and set of devices.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use fleet_core::Imei;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tracing::warn;

use super::TracksolidClient;
use crate::dto::{AlarmItem, DeviceItem, LocationItem, MileageTrip, TrackPoint};
use crate::error::ApiError;
use crate::time::format_time;
use crate::wire::json_kind;

/// Most IMEIs one call takes (`location.get`, `alarm.list`; assumed for `track.mileage`).
pub const MAX_IMEIS_PER_CALL: usize = 100;
/// Longest range of one `track.list` call.
pub const TRACK_WINDOW: TimeDelta = TimeDelta::days(7);
/// Oldest track history the vendor serves.
pub const TRACK_MAX_AGE: TimeDelta = TimeDelta::days(90);
/// Longest range of one `alarm.list` call (the vendor says one month).
pub const ALARM_WINDOW: TimeDelta = TimeDelta::days(30);
/// `page_size` of `alarm.list`, the largest the vendor accepts.
pub const ALARM_PAGE_SIZE: usize = 100;
/// Most alarms the vendor returns for one query, however it is paged.
pub const ALARM_MAX_ROWS_PER_WINDOW: usize = 1000;
/// `page_size` of `track.mileage`.
pub const MILEAGE_PAGE_SIZE: usize = 100;
/// Bound on `track.mileage` pages per IMEI chunk, should the vendor page forever.
const MILEAGE_MAX_PAGES: usize = 1000;

const DEVICE_LIST: &str = "jimi.user.device.list";
const LOCATION_LIST: &str = "jimi.user.device.location.list";
const LOCATION_GET: &str = "jimi.device.location.get";
const TRACK_LIST: &str = "jimi.device.track.list";
const TRACK_MILEAGE: &str = "jimi.device.track.mileage";
const ALARM_LIST: &str = "jimi.device.alarm.list";

impl TracksolidClient {
    /// The devices of `target` (default: the login account).
    pub async fn device_list(&self, target: Option<&str>) -> Result<Vec<DeviceItem>, ApiError> {
        let target = target.unwrap_or(&self.config.user_id).to_owned();
        let timeout = self.config.request_timeout;
        decode(DEVICE_LIST, self.rows(DEVICE_LIST, &[("target", target)], timeout).await?)
    }

    /// The latest position of every device of `target` (default: the login account). Devices
    /// that never reported are missing from the answer.
    pub async fn location_list(&self, target: Option<&str>) -> Result<Vec<LocationItem>, ApiError> {
        let target = target.unwrap_or(&self.config.user_id).to_owned();
        let timeout = self.config.request_timeout;
        decode(LOCATION_LIST, self.rows(LOCATION_LIST, &[("target", target)], timeout).await?)
    }

    /// The latest positions of `imeis`, asked [`MAX_IMEIS_PER_CALL`] at a time.
    pub async fn location_get(&self, imeis: &[Imei]) -> Result<Vec<LocationItem>, ApiError> {
        let mut items = Vec::with_capacity(imeis.len());
        for chunk in imeis.chunks(MAX_IMEIS_PER_CALL) {
            let params = [("imeis", join(chunk))];
            let rows = self.rows(LOCATION_GET, &params, self.config.request_timeout).await?;
            items.extend(decode::<LocationItem>(LOCATION_GET, rows)?);
        }
        Ok(items)
    }

    /// The track of one device between `begin` and `end`, sorted by GPS time without repeated
    /// times. The range is clipped to what the vendor serves (the last [`TRACK_MAX_AGE`], up to
    /// now) and asked in windows of at most [`TRACK_WINDOW`].
    pub async fn track_list(
        &self,
        imei: &Imei,
        begin: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<TrackPoint>, ApiError> {
        let now = Utc::now();
        let begin = begin.max(now - TRACK_MAX_AGE);
        let end = end.min(now);
        let mut points: Vec<TrackPoint> = Vec::new();
        for (from, to) in windows(begin, end, TRACK_WINDOW) {
            let params = [
                ("imei", imei.to_string()),
                ("begin_time", format_time(from)),
                ("end_time", format_time(to)),
            ];
            let rows = self.rows(TRACK_LIST, &params, self.config.track_request_timeout).await?;
            points.extend(decode::<TrackPoint>(TRACK_LIST, rows)?);
        }
        // windows share their boundary second, so a point there comes twice; the sort is stable
        // and points without a readable time sort first, for conversion to reject
        points.sort_by_key(|p| p.gps_time.value());
        points.dedup_by(|later, earlier| {
            later.gps_time.value().is_some() && later.gps_time == earlier.gps_time
        });
        Ok(points)
    }

    /// The vendor's trips of `imeis` between `begin` and `end` (clipped to now), asked
    /// [`MAX_IMEIS_PER_CALL`] IMEIs at a time and paged by `start_row` until a short page.
    pub async fn track_mileage(
        &self,
        imeis: &[Imei],
        begin: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<MileageTrip>, ApiError> {
        let end = end.min(Utc::now());
        let mut trips = Vec::new();
        if begin >= end {
            return Ok(trips);
        }
        for chunk in imeis.chunks(MAX_IMEIS_PER_CALL) {
            let mut start_row = 0;
            let mut previous: Option<Vec<Value>> = None;
            for _ in 0..MILEAGE_MAX_PAGES {
                let params = [
                    ("imeis", join(chunk)),
                    ("begin_time", format_time(begin)),
                    ("end_time", format_time(end)),
                    ("start_row", start_row.to_string()),
                    ("page_size", MILEAGE_PAGE_SIZE.to_string()),
                ];
                let timeout = self.config.track_request_timeout;
                let page = self.rows(TRACK_MILEAGE, &params, timeout).await?;
                // a vendor ignoring `start_row` repeats the first page forever
                if previous.as_ref() == Some(&page) {
                    break;
                }
                let len = page.len();
                trips.extend(decode::<MileageTrip>(TRACK_MILEAGE, page.clone())?);
                if len < MILEAGE_PAGE_SIZE {
                    break;
                }
                start_row += len;
                previous = Some(page);
            }
        }
        Ok(trips)
    }

    /// The alarms of `imeis` between `begin` and `end`: [`MAX_IMEIS_PER_CALL`] IMEIs per call,
    /// windows of [`ALARM_WINDOW`], pages of [`ALARM_PAGE_SIZE`] until a short page or a page
    /// identical to the one before, at most [`ALARM_MAX_ROWS_PER_WINDOW`] per window (the
    /// vendor's own cap; a warning says when a window reached it).
    pub async fn alarm_list(
        &self,
        imeis: &[Imei],
        begin: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<AlarmItem>, ApiError> {
        let mut alarms = Vec::new();
        for chunk in imeis.chunks(MAX_IMEIS_PER_CALL) {
            for (from, to) in windows(begin, end, ALARM_WINDOW) {
                let rows = self.alarm_window(chunk, from, to).await?;
                alarms.extend(decode::<AlarmItem>(ALARM_LIST, rows)?);
            }
        }
        Ok(alarms)
    }

    async fn alarm_window(
        &self,
        imeis: &[Imei],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<Value>, ApiError> {
        let mut rows: Vec<Value> = Vec::new();
        let mut previous: Option<Vec<Value>> = None;
        for page_no in 1u32.. {
            let params = [
                ("imeis", join(imeis)),
                ("begin_time", format_time(from)),
                ("end_time", format_time(to)),
                ("page_no", page_no.to_string()),
                ("page_size", ALARM_PAGE_SIZE.to_string()),
            ];
            let page = self.rows(ALARM_LIST, &params, self.config.request_timeout).await?;
            // servers that ignore `page_no` answer the same page again
            if previous.as_ref() == Some(&page) {
                break;
            }
            let full = page.len() >= ALARM_PAGE_SIZE;
            let room = ALARM_MAX_ROWS_PER_WINDOW - rows.len();
            rows.extend(page.iter().take(room).cloned());
            if rows.len() >= ALARM_MAX_ROWS_PER_WINDOW {
                if full {
                    warn!(
                        imeis = imeis.len(),
                        from = %from,
                        to = %to,
                        "alarm window reached the vendor's cap of {ALARM_MAX_ROWS_PER_WINDOW} rows; \
                         later alarms of this window may be missing"
                    );
                }
                break;
            }
            if !full {
                break;
            }
            previous = Some(page);
        }
        Ok(rows)
    }

    /// The rows of a list method's payload; no payload is no rows.
    async fn rows(
        &self,
        method: &'static str,
        params: &[(&'static str, String)],
        timeout: Duration,
    ) -> Result<Vec<Value>, ApiError> {
        match self.call(method, params, timeout).await? {
            None => Ok(Vec::new()),
            Some(Value::Array(rows)) => Ok(rows),
            Some(other) => Err(ApiError::Decode {
                method: method.to_owned(),
                message: format!("expected a list, got {}", json_kind(&other)),
            }),
        }
    }
}

fn decode<T: DeserializeOwned>(method: &str, rows: Vec<Value>) -> Result<Vec<T>, ApiError> {
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| {
            serde_json::from_value(row).map_err(|e| ApiError::Decode {
                method: method.to_owned(),
                message: format!("row {i}: {e}"),
            })
        })
        .collect()
}

fn join(imeis: &[Imei]) -> String {
    imeis.iter().map(Imei::as_str).collect::<Vec<_>>().join(",")
}

/// `[begin, end)` cut into consecutive windows of at most `len`; empty when `begin >= end`.
pub(crate) fn windows(
    begin: DateTime<Utc>,
    end: DateTime<Utc>,
    len: TimeDelta,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::new();
    let mut from = begin;
    while from < end {
        // checked: a caller's extreme range must not overflow the calendar
        let to = from.checked_add_signed(len).map_or(end, |t| t.min(end));
        out.push((from, to));
        from = to;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, day, 0, 0, 0).single().expect("valid")
    }

    #[test]
    fn twenty_days_are_cut_into_two_full_weeks_and_the_rest() {
        let w = windows(at(1), at(21), TRACK_WINDOW);
        assert_eq!(w, vec![(at(1), at(8)), (at(8), at(15)), (at(15), at(21))]);
    }

    #[test]
    fn an_empty_or_reversed_range_has_no_windows() {
        assert!(windows(at(5), at(5), TRACK_WINDOW).is_empty());
        assert!(windows(at(6), at(5), TRACK_WINDOW).is_empty());
    }
}
