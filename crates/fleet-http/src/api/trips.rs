//! `/trips` and `/stops`: what the trip builder derived (`fleet.trips`, `fleet.stops`), filtered
//! by vehicle, cost centre, city and time, paged by keyset on (start time descending, device
//! id), or exported whole as CSV; and one trip with its track from `fleet.positions`.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use fleet_core::{EndReason, StopKind};
use fleet_db::trips::{SegmentFilter, StopFilter, TripFilter};
pub use fleet_db::trips::{Stop, Trip};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::export::{self, Csv};
use super::extract::Path;
use super::live::GEO_JSON;
use super::{negotiate, paging, validate};
use crate::auth::Viewer;
use crate::error::FieldError;
use crate::{ApiError, AppState, Problem};

/// Default page size of the trip and stop lists.
pub const DEFAULT_LIMIT: i64 = 100;
/// Largest page size of the trip and stop lists.
pub const MAX_LIMIT: i64 = 1000;

impl Csv for Trip {
    const HEADER: &'static str = "device_id,imei,name,plate,driver_name,start_time,end_time,\
         start_lat,start_lon,end_lat,end_lon,distance_m,duration_s,moving_s,idle_s,\
         max_speed_kmh,avg_speed_kmh,overspeed_count,overspeed_s,point_count,gap_s,end_reason,\
         start_geofence,end_geofence";

    fn row(&self, out: &mut String) {
        let mut w = export::CsvRow::new(out);
        w.num(self.device_id);
        w.text(&self.imei);
        w.text(&self.name);
        w.opt_text(self.plate.as_deref());
        w.opt_text(self.driver_name.as_deref());
        w.time(self.start_time);
        w.time(self.end_time);
        w.num(self.start_lat);
        w.num(self.start_lon);
        w.num(self.end_lat);
        w.num(self.end_lon);
        w.num(self.distance_m);
        w.num(self.duration_s);
        w.num(self.moving_s);
        w.num(self.idle_s);
        w.opt_num(self.max_speed_kmh);
        w.opt_num(self.avg_speed_kmh);
        w.num(self.overspeed_count);
        w.num(self.overspeed_s);
        w.num(self.point_count);
        w.num(self.gap_s);
        w.text(self.end_reason.as_str());
        w.opt_text(self.start_geofence.as_deref());
        w.opt_text(self.end_geofence.as_deref());
        w.end();
    }
}

impl Csv for Stop {
    const HEADER: &'static str = "device_id,imei,name,plate,driver_name,start_time,end_time,\
         lat,lon,kind,duration_s,idle_s,geofence";

    fn row(&self, out: &mut String) {
        let mut w = export::CsvRow::new(out);
        w.num(self.device_id);
        w.text(&self.imei);
        w.text(&self.name);
        w.opt_text(self.plate.as_deref());
        w.opt_text(self.driver_name.as_deref());
        w.time(self.start_time);
        w.time(self.end_time);
        w.num(self.lat);
        w.num(self.lon);
        w.text(self.kind.as_str());
        w.num(self.duration_s);
        w.num(self.idle_s);
        w.opt_text(self.geofence.as_deref());
        w.end();
    }
}

/// One page of trips, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TripPage {
    pub items: Vec<Trip>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<String>,
}

/// One page of stops, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct StopPage {
    pub items: Vec<Stop>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<String>,
}

/// Filters and paging of the trip list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TripQuery {
    /// Only these devices: repeat the parameter or separate ids with commas (`device_id=1,2`).
    #[param(example = "1,2")]
    #[allow(dead_code)] // documents the parameter; parse_query takes it out, repeated or not
    pub device_id: Option<String>,
    /// Only this cost centre (case does not matter).
    pub cost_centre: Option<String>,
    /// Only this city (case does not matter).
    pub city: Option<String>,
    /// Trips starting at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Trips starting before this time (RFC 3339); after `from`.
    pub to: Option<DateTime<Utc>>,
    /// Only these end reasons, comma-separated: work_stop, long_gap, day_end, open.
    #[param(example = "work_stop,long_gap")]
    pub end_reason: Option<String>,
    /// Page size, 1-1000 (default 100). Ignored by CSV, which holds every matching trip.
    pub limit: Option<i64>,
    /// Cursor: the `next_after` of the previous page. Ignored by CSV.
    pub after: Option<String>,
    /// `json` (default) or `csv`; `Accept: text/csv` also asks for CSV.
    pub format: Option<String>,
}

/// Filters and paging of the stop list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StopQuery {
    /// Only these devices: repeat the parameter or separate ids with commas (`device_id=1,2`).
    #[param(example = "1,2")]
    #[allow(dead_code)] // documents the parameter; parse_query takes it out, repeated or not
    pub device_id: Option<String>,
    /// Only this cost centre (case does not matter).
    pub cost_centre: Option<String>,
    /// Only this city (case does not matter).
    pub city: Option<String>,
    /// Stops starting at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Stops starting before this time (RFC 3339); after `from`.
    pub to: Option<DateTime<Utc>>,
    /// Only this kind: parked or idling (comma-separated for both).
    pub kind: Option<String>,
    /// Page size, 1-1000 (default 100). Ignored by CSV, which holds every matching stop.
    pub limit: Option<i64>,
    /// Cursor: the `next_after` of the previous page. Ignored by CSV.
    pub after: Option<String>,
    /// `json` (default) or `csv`; `Accept: text/csv` also asks for CSV.
    pub format: Option<String>,
}

/// Parses a query string in which `device_id` may repeat (the rest as `T`), naming the
/// offending field on failure.
fn parse_query<T: DeserializeOwned>(raw: Option<&str>) -> Result<(T, Vec<String>), ApiError> {
    let mut ids = Vec::new();
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if k == "device_id" {
            ids.push(v.into_owned());
        } else {
            rest.append_pair(&k, &v);
        }
    }
    let rest = rest.finish();
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(rest.as_bytes()));
    let query = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        ApiError::Validation(vec![FieldError::new(
            super::extract::field_of(&path, &message),
            message,
        )])
    })?;
    Ok((query, ids))
}

/// The filters trips and stops share, checked in the order the parameters are documented;
/// `kinds` checks the end reasons or kinds. Also whether CSV was asked for, which reads every
/// matching row where JSON reads a page and one row more.
#[allow(clippy::too_many_arguments)]
fn filter<K>(
    ids: &[String],
    cost_centre: Option<String>,
    city: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    kinds: impl FnOnce(&mut Vec<FieldError>) -> Option<Vec<K>>,
    limit: Option<i64>,
    after: Option<&str>,
    format: Option<&str>,
    headers: &HeaderMap,
) -> Result<(SegmentFilter<K>, i64, bool), ApiError> {
    let mut errors = Vec::new();
    let device_ids = validate::ids("device_id", ids, &mut errors);
    validate::times(from, to, &mut errors);
    let kinds = kinds(&mut errors);
    let limit = validate::limit(limit, DEFAULT_LIMIT, MAX_LIMIT, &mut errors);
    let after = paging::after::<(i64, i32)>(after, &mut errors)
        .and_then(|(micros, id)| Some((DateTime::from_timestamp_micros(micros)?, id)));
    let csv = negotiate::wants_csv(format, headers, &mut errors);
    validate::finish(errors)?;
    let filter = SegmentFilter {
        device_ids,
        cost_centre: validate::text(cost_centre),
        city: validate::text(city),
        from,
        to,
        kinds,
        after,
        limit: (!csv).then_some(limit + 1),
        ..SegmentFilter::default()
    };
    Ok((filter, limit, csv))
}

/// The cursor key of a row: its start time in microseconds and its device.
fn key(start: DateTime<Utc>, device_id: i32) -> (i64, i32) {
    (start.timestamp_micros(), device_id)
}

/// List trips.
#[utoipa::path(
    get,
    path = "/trips",
    tag = "trips",
    description = "Requires role: viewer. Newest first, ordered by (start_time descending, device_id); \
        follow `next_after` until it is null. With `format=csv` (or `Accept: text/csv`) every matching \
        trip is streamed as CSV with a header row, without paging.",
    security(("session" = []), ("bearer" = [])),
    params(TripQuery),
    responses(
        (status = 200, description = "One page of trips, or all of them as CSV", content(
            (TripPage = "application/json"),
            (String = "text/csv")
        )),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters (also `from` not before `to`, a bad cursor)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "CSV: the user or the server already runs as many exports as allowed; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_trips(
    State(state): State<AppState>,
    Viewer(who): Viewer,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (q, ids): (TripQuery, _) = parse_query(raw.as_deref())?;
    let end_reason = q.end_reason.as_deref();
    let (f, limit, csv): (TripFilter, _, _) = filter(
        &ids,
        q.cost_centre,
        q.city,
        q.from,
        q.to,
        |e| validate::names("end_reason", end_reason, &EndReason::ALL, EndReason::as_str, e),
        q.limit,
        q.after.as_deref(),
        q.format.as_deref(),
        &headers,
    )?;
    if csv {
        let rows =
            export::fetch_owned(&state, &who, move |pool| fleet_db::trips::trip_stream(pool, f))?;
        return Ok(export::csv_response(rows, "trips.csv"));
    }
    let mut items = fleet_db::trips::trips(&state.pool, &f).await?;
    let next_after = paging::next_after(&mut items, limit, |t| key(t.start_time, t.device_id));
    Ok(Json(TripPage { items, next_after }).into_response())
}

/// List stops.
#[utoipa::path(
    get,
    path = "/stops",
    tag = "trips",
    description = "Requires role: viewer. Newest first, ordered by (start_time descending, device_id); \
        follow `next_after` until it is null. With `format=csv` (or `Accept: text/csv`) every matching \
        stop is streamed as CSV with a header row, without paging.",
    security(("session" = []), ("bearer" = [])),
    params(StopQuery),
    responses(
        (status = 200, description = "One page of stops, or all of them as CSV", content(
            (StopPage = "application/json"),
            (String = "text/csv")
        )),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters (also `from` not before `to`, a bad cursor)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "CSV: the user or the server already runs as many exports as allowed; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_stops(
    State(state): State<AppState>,
    Viewer(who): Viewer,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (q, ids): (StopQuery, _) = parse_query(raw.as_deref())?;
    let kind = q.kind.as_deref();
    let (f, limit, csv): (StopFilter, _, _) = filter(
        &ids,
        q.cost_centre,
        q.city,
        q.from,
        q.to,
        |e| validate::names("kind", kind, &StopKind::ALL, StopKind::as_str, e),
        q.limit,
        q.after.as_deref(),
        q.format.as_deref(),
        &headers,
    )?;
    if csv {
        let rows =
            export::fetch_owned(&state, &who, move |pool| fleet_db::trips::stop_stream(pool, f))?;
        return Ok(export::csv_response(rows, "stops.csv"));
    }
    let mut items = fleet_db::trips::stops(&state.pool, &f).await?;
    let next_after = paging::next_after(&mut items, limit, |s| key(s.start_time, s.device_id));
    Ok(Json(StopPage { items, next_after }).into_response())
}

async fn fetch_trip(
    pool: &sqlx::PgPool,
    device_id: i32,
    start: DateTime<Utc>,
) -> Result<Trip, ApiError> {
    fleet_db::trips::trip(pool, device_id, start).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "device {device_id} has no trip starting at {}",
            start.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        ))
    })
}

/// Get a trip.
#[utoipa::path(
    get,
    path = "/trips/{device_id}/{start_time}",
    tag = "trips",
    description = "Requires role: viewer. A trip is named by its device and its exact start time.",
    security(("session" = []), ("bearer" = [])),
    params(
        ("device_id" = i32, Path, description = "Device id"),
        ("start_time" = String, Path, format = DateTime, description = "The trip's start time (RFC 3339)", example = "2026-11-20T06:15:00Z"),
    ),
    responses(
        (status = 200, description = "The trip", body = Trip),
        (status = 400, description = "The id is not a number or the time not RFC 3339", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such trip", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_trip(
    State(state): State<AppState>,
    _: Viewer,
    Path((device_id, start)): Path<(i32, DateTime<Utc>)>,
) -> Result<Json<Trip>, ApiError> {
    fetch_trip(&state.pool, device_id, start).await.map(Json)
}

/// A trip's track: a GeoJSON LineString Feature.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TripTrack {
    #[schema(value_type = String, example = "Feature")]
    #[serde(rename = "type")]
    pub type_: String,
    /// Null when the trip has fewer than two fixes (a LineString needs two).
    pub geometry: Option<LineString>,
    pub properties: TripTrackProperties,
}

/// A GeoJSON LineString: `[longitude, latitude]` pairs in WGS 84 degrees.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LineString {
    #[schema(value_type = String, example = "LineString")]
    #[serde(rename = "type")]
    pub type_: String,
    pub coordinates: Vec<[f64; 2]>,
}

/// The trip and, per coordinate, its fix's time and speed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TripTrackProperties {
    pub device_id: i32,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub end_reason: EndReason,
    pub distance_m: f64,
    /// GPS time of each coordinate.
    pub times: Vec<DateTime<Utc>>,
    /// Speed at each coordinate, km/h (null when the fix had none).
    pub speeds_kmh: Vec<Option<f32>>,
}

/// Get a trip's track.
#[utoipa::path(
    get,
    path = "/trips/{device_id}/{start_time}/track",
    tag = "trips",
    description = "Requires role: viewer. The device's fixes from the trip's start to its end time, oldest first.",
    security(("session" = []), ("bearer" = [])),
    params(
        ("device_id" = i32, Path, description = "Device id"),
        ("start_time" = String, Path, format = DateTime, description = "The trip's start time (RFC 3339)", example = "2026-11-20T06:15:00Z"),
    ),
    responses(
        (status = 200, description = "The trip's track", body = TripTrack, content_type = "application/geo+json"),
        (status = 400, description = "The id is not a number or the time not RFC 3339", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such trip", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn trip_track(
    State(state): State<AppState>,
    _: Viewer,
    Path((device_id, start)): Path<(i32, DateTime<Utc>)>,
) -> Result<impl IntoResponse, ApiError> {
    let trip = fetch_trip(&state.pool, device_id, start).await?;
    let fixes =
        fleet_db::tracks::trip_points(&state.pool, device_id, trip.start_time, trip.end_time)
            .await?;
    let mut coordinates = Vec::with_capacity(fixes.len());
    let mut times = Vec::with_capacity(fixes.len());
    let mut speeds_kmh = Vec::with_capacity(fixes.len());
    for fix in fixes {
        coordinates.push([fix.lon, fix.lat]);
        times.push(fix.gps_time);
        speeds_kmh.push(fix.speed_kmh);
    }
    let body = TripTrack {
        type_: "Feature".to_owned(),
        geometry: (coordinates.len() >= 2)
            .then(|| LineString { type_: "LineString".to_owned(), coordinates }),
        properties: TripTrackProperties {
            device_id,
            start_time: trip.start_time,
            end_time: trip.end_time,
            end_reason: trip.end_reason,
            distance_m: trip.distance_m,
            times,
            speeds_kmh,
        },
    };
    Ok(([(header::CONTENT_TYPE, GEO_JSON)], Json(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trip_filter(query: &str, headers: &HeaderMap) -> Result<(TripFilter, i64, bool), ApiError> {
        let (q, ids): (TripQuery, _) = parse_query(Some(query))?;
        let end_reason = q.end_reason.as_deref();
        filter(
            &ids,
            q.cost_centre,
            q.city,
            q.from,
            q.to,
            |e| validate::names("end_reason", end_reason, &EndReason::ALL, EndReason::as_str, e),
            q.limit,
            q.after.as_deref(),
            q.format.as_deref(),
            headers,
        )
    }

    #[test]
    fn device_ids_repeat_or_come_comma_separated() {
        let (q, ids): (TripQuery, _) =
            parse_query(Some("device_id=1,2&city=Nairobi&device_id=3")).expect("ok");
        assert_eq!(ids, ["1,2", "3"]);
        assert_eq!(q.city.as_deref(), Some("Nairobi"));
        let (f, _, _) = trip_filter("device_id=1,2&device_id=3", &HeaderMap::new()).expect("valid");
        assert_eq!(f.device_ids, Some(vec![1, 2, 3]));
        let e = parse_query::<TripQuery>(Some("from=yesterday")).expect_err("bad time");
        assert_eq!(e.problem().errors[0].field, "from");
    }

    #[test]
    fn a_page_cursor_brings_back_the_row_it_names() {
        let t = DateTime::from_timestamp_micros(1_790_000_000_123_456).expect("time");
        let after = paging::encode(&key(t, 42));
        let (f, limit, csv) =
            trip_filter(&format!("after={after}&limit=5"), &HeaderMap::new()).expect("valid");
        assert_eq!((f.after, f.limit, limit, csv), (Some((t, 42)), Some(6), 5, false));
        let e = trip_filter("after=MTIuNDI&end_reason=parked", &HeaderMap::new()).expect_err("bad");
        let fields: Vec<String> = e.problem().errors.into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["end_reason", "after"]);
    }
}
