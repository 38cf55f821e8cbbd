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
use crate::error::VendorError;
use crate::time::format_time;
use crate::wire::json_kind;

/// Most IMEIs one call takes (`location.get`, `alarm.list`; assumed for `track.mileage`).
pub const MAX_IMEIS_PER_CALL: usize = 100;
/// Longest range of one `track.list` call.
pub const TRACK_WINDOW: TimeDelta = TimeDelta::days(7);
/// Oldest history asked for: a day inside the vendor's three months, so that neither a retry a
/// little later nor a vendor clock a little ahead turns the start into a refused request.
pub const TRACK_MAX_AGE: TimeDelta = TimeDelta::days(89);
/// Ranges end this far before the local clock: the vendor wants `end_time` before its own now,
/// and the clocks may differ by some seconds. Polls overlap, so nothing is missed.
pub const END_MARGIN: TimeDelta = TimeDelta::seconds(30);
/// An alarm window that reaches the vendor's row cap is halved down to this length before the
/// IMEIs are split instead.
pub const ALARM_MIN_WINDOW: TimeDelta = TimeDelta::minutes(10);
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
    pub async fn device_list(&self, target: Option<&str>) -> Result<Vec<DeviceItem>, VendorError> {
        let target = target.unwrap_or(&self.config.user_id).to_owned();
        let timeout = self.config.request_timeout;
        decode(DEVICE_LIST, self.rows(DEVICE_LIST, &[("target", target)], timeout).await?)
    }

    /// The latest position of every device of `target` (default: the login account). Devices
    /// that never reported are missing from the answer.
    pub async fn location_list(
        &self,
        target: Option<&str>,
    ) -> Result<Vec<LocationItem>, VendorError> {
        let target = target.unwrap_or(&self.config.user_id).to_owned();
        let timeout = self.config.request_timeout;
        decode(LOCATION_LIST, self.rows(LOCATION_LIST, &[("target", target)], timeout).await?)
    }

    /// The latest positions of `imeis`, asked [`MAX_IMEIS_PER_CALL`] at a time.
    pub async fn location_get(&self, imeis: &[Imei]) -> Result<Vec<LocationItem>, VendorError> {
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
    ) -> Result<Vec<TrackPoint>, VendorError> {
        let (begin, end) = servable(begin, end);
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

    /// The vendor's trips of `imeis` between `begin` and `end` (clipped as for the track), asked
    /// [`MAX_IMEIS_PER_CALL`] IMEIs at a time and paged by `start_row` until a short page.
    pub async fn track_mileage(
        &self,
        imeis: &[Imei],
        begin: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<MileageTrip>, VendorError> {
        let (begin, end) = servable(begin, end);
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

    /// The alarms of `imeis` between `begin` and `end` (clipped as for the track):
    /// [`MAX_IMEIS_PER_CALL`] IMEIs per call, windows of [`ALARM_WINDOW`], pages of
    /// [`ALARM_PAGE_SIZE`] until a short page or a page identical to the one before. The vendor
    /// returns at most [`ALARM_MAX_ROWS_PER_WINDOW`] rows per query, so a window that reaches
    /// the cap is asked again in halves (down to [`ALARM_MIN_WINDOW`], then with half the
    /// IMEIs) until every part fits; only a single device with more alarms than the cap in ten
    /// minutes can still be cut short, and that is logged.
    pub async fn alarm_list(
        &self,
        imeis: &[Imei],
        begin: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<AlarmItem>, VendorError> {
        let (begin, end) = servable(begin, end);
        let mut alarms = Vec::new();
        for chunk in imeis.chunks(MAX_IMEIS_PER_CALL) {
            // depth-first over (imeis, window), so results come in time order per chunk
            let mut todo: Vec<(Vec<Imei>, DateTime<Utc>, DateTime<Utc>)> =
                windows(begin, end, ALARM_WINDOW)
                    .into_iter()
                    .rev()
                    .map(|(f, t)| (chunk.to_vec(), f, t))
                    .collect();
            while let Some((ids, from, to)) = todo.pop() {
                let (rows, capped) = self.alarm_window(&ids, from, to).await?;
                if capped && to - from > ALARM_MIN_WINDOW {
                    let mid = from + (to - from) / 2;
                    todo.push((ids.clone(), mid, to));
                    todo.push((ids, from, mid));
                    continue;
                }
                if capped && ids.len() > 1 {
                    let (a, b) = ids.split_at(ids.len() / 2);
                    todo.push((b.to_vec(), from, to));
                    todo.push((a.to_vec(), from, to));
                    continue;
                }
                if capped {
                    warn!(
                        imei = %ids[0],
                        from = %from,
                        to = %to,
                        "one device has more than {ALARM_MAX_ROWS_PER_WINDOW} alarms in ten minutes; \
                         later alarms of that window may be missing"
                    );
                }
                alarms.extend(decode::<AlarmItem>(ALARM_LIST, rows)?);
            }
        }
        Ok(alarms)
    }

    /// The rows of one alarm query, and whether it reached the vendor's row cap.
    async fn alarm_window(
        &self,
        imeis: &[Imei],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<(Vec<Value>, bool), VendorError> {
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
                return Ok((rows, full));
            }
            if !full {
                break;
            }
            previous = Some(page);
        }
        Ok((rows, false))
    }

    /// The rows of a list method's payload; no payload is no rows.
    async fn rows(
        &self,
        method: &'static str,
        params: &[(&'static str, String)],
        timeout: Duration,
    ) -> Result<Vec<Value>, VendorError> {
        match self.call(method, params, timeout).await? {
            None => Ok(Vec::new()),
            Some(Value::Array(rows)) => Ok(rows),
            Some(other) => Err(VendorError::Decode {
                method: method.to_owned(),
                message: format!("expected a list, got {}", json_kind(&other)),
            }),
        }
    }
}

fn decode<T: DeserializeOwned>(method: &str, rows: Vec<Value>) -> Result<Vec<T>, VendorError> {
    rows.into_iter()
        .enumerate()
        .map(|(i, row)| {
            serde_json::from_value(row).map_err(|e| VendorError::Decode {
                method: method.to_owned(),
                message: format!("row {i}: {e}"),
            })
        })
        .collect()
}

/// `[begin, end]` narrowed to what the vendor serves: not older than [`TRACK_MAX_AGE`], ending
/// [`END_MARGIN`] before now. Computed once per call, so retries and later windows of the same
/// call ask for the same times.
fn servable(begin: DateTime<Utc>, end: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let now = Utc::now();
    (begin.max(now - TRACK_MAX_AGE), end.min(now - END_MARGIN))
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
