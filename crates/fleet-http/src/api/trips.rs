//! `/trips` and `/stops`: what the trip builder derived (`fleet.trips`, `fleet.stops`), filtered
//! by vehicle, cost centre, city and time, paged by keyset on (start time descending, device
//! id), or exported whole as CSV; and one trip with its track from `fleet.positions`.

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::export::{self, Csv};
use super::extract::Path;
use super::live::GEO_JSON;
use crate::auth::Viewer;
use crate::error::FieldError;
use crate::{ApiError, AppState, Problem};

/// Default page size of the trip and stop lists.
pub const DEFAULT_LIMIT: i64 = 100;
/// Largest page size of the trip and stop lists.
pub const MAX_LIMIT: i64 = 1000;

/// A trip with the vehicle that made it.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Trip {
    pub device_id: i32,
    pub imei: String,
    pub name: String,
    pub plate: Option<String>,
    pub driver_name: Option<String>,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub start_lat: f64,
    pub start_lon: f64,
    pub end_lat: f64,
    pub end_lon: f64,
    /// Distance over consecutive fixes while moving, metres.
    pub distance_m: f64,
    /// end_time - start_time, seconds.
    pub duration_s: i32,
    /// Seconds above the moving speed threshold.
    pub moving_s: i32,
    /// Seconds with the ignition on and stationary inside the trip.
    pub idle_s: i32,
    pub max_speed_kmh: Option<f32>,
    /// distance_m / moving_s, km/h.
    pub avg_speed_kmh: Option<f32>,
    /// Times the speed went above the configured limit.
    pub overspeed_count: i32,
    /// Seconds above the configured limit.
    pub overspeed_s: i32,
    /// Fixes the trip was built from.
    pub point_count: i32,
    /// Seconds inside the trip not covered by fixes.
    pub gap_s: i32,
    /// work_stop, long_gap, day_end or open (still going).
    pub end_reason: String,
    pub start_geofence: Option<String>,
    pub end_geofence: Option<String>,
}

pub(crate) const TRIP_COLUMNS: &str = "t.device_id, d.imei, d.name, d.plate, d.driver_name, \
     t.start_time, t.end_time, t.start_lat, t.start_lon, t.end_lat, t.end_lon, t.distance_m, \
     t.duration_s, t.moving_s, t.idle_s, t.max_speed_kmh, t.avg_speed_kmh, t.overspeed_count, \
     t.overspeed_s, t.point_count, t.gap_s, t.end_reason, t.start_geofence, t.end_geofence";

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
        w.text(&self.end_reason);
        w.opt_text(self.start_geofence.as_deref());
        w.opt_text(self.end_geofence.as_deref());
        w.end();
    }
}

/// A stop (the time between trips) with the vehicle.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Stop {
    pub device_id: i32,
    pub imei: String,
    pub name: String,
    pub plate: Option<String>,
    pub driver_name: Option<String>,
    /// When the vehicle halted.
    pub start_time: DateTime<Utc>,
    /// When the next trip started, or the newest fix for the current stop.
    pub end_time: DateTime<Utc>,
    pub lat: f64,
    pub lon: f64,
    /// parked, or idling when the engine ran for most of the stop.
    pub kind: String,
    pub duration_s: i32,
    /// Seconds with the ignition on.
    pub idle_s: i32,
    /// Geofence the vehicle stood in, if any.
    pub geofence: Option<String>,
}

pub(crate) const STOP_COLUMNS: &str = "s.device_id, d.imei, d.name, d.plate, d.driver_name, \
     s.start_time, s.end_time, s.lat, s.lon, s.kind, s.duration_s, s.idle_s, s.geofence";

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
        w.text(&self.kind);
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

/// The validated filters shared by trips and stops.
#[derive(Debug, Default)]
struct Filters {
    device_ids: Option<Vec<i32>>,
    cost_centre: Option<String>,
    city: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    /// end reasons (trips) or kinds (stops)
    kinds: Option<Vec<String>>,
    limit: i64,
    after: Option<(DateTime<Utc>, i32)>,
    csv: bool,
}

const END_REASONS: [&str; 4] = ["work_stop", "long_gap", "day_end", "open"];
const STOP_KINDS: [&str; 2] = ["parked", "idling"];

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

#[allow(clippy::too_many_arguments)]
fn validate(
    ids: &[String],
    cost_centre: Option<String>,
    city: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    kinds: Option<(&str, &str, &[&str])>,
    limit: Option<i64>,
    after: Option<&str>,
    format: Option<&str>,
    headers: &HeaderMap,
) -> Result<Filters, ApiError> {
    let mut errors = Vec::new();
    let mut device_ids = Vec::new();
    for part in ids.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()) {
        match part.parse::<i32>() {
            Ok(id) => device_ids.push(id),
            Err(_) => errors.push(FieldError::new("device_id", format!("{part:?} is not an id"))),
        }
    }
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            errors.push(FieldError::new("to", "must be after `from`"));
        }
    }
    let mut kind_list = None;
    if let Some((field, value, allowed)) = kinds {
        let mut list = Vec::new();
        for part in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if allowed.contains(&part) {
                list.push(part.to_owned());
            } else {
                errors.push(FieldError::new(
                    field,
                    format!("{part:?} is not one of {}", allowed.join(", ")),
                ));
            }
        }
        kind_list = Some(list).filter(|l| !l.is_empty());
    }
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        errors.push(FieldError::new("limit", format!("must be between 1 and {MAX_LIMIT}")));
    }
    let after = match after.map(decode_cursor).transpose() {
        Ok(a) => a,
        Err(()) => {
            errors.push(FieldError::new("after", "not a cursor from `next_after`"));
            None
        }
    };
    let csv = match format.map(str::trim) {
        None | Some("") => accepts_csv(headers),
        Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            errors.push(FieldError::new("format", format!("{other:?} is not json or csv")));
            false
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let clean = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    Ok(Filters {
        device_ids: Some(device_ids).filter(|d| !d.is_empty()),
        cost_centre: clean(cost_centre),
        city: clean(city),
        from,
        to,
        kinds: kind_list,
        limit,
        after,
        csv,
    })
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

/// The opaque cursor of a row: base64url of `<start time in µs>.<device id>`.
fn encode_cursor(start: DateTime<Utc>, device_id: i32) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}.{device_id}", start.timestamp_micros()))
}

fn decode_cursor(s: &str) -> Result<(DateTime<Utc>, i32), ()> {
    let bytes = URL_SAFE_NO_PAD.decode(s.trim()).map_err(|_| ())?;
    let text = String::from_utf8(bytes).map_err(|_| ())?;
    let (micros, id) = text.split_once('.').ok_or(())?;
    let time = DateTime::from_timestamp_micros(micros.parse().map_err(|_| ())?).ok_or(())?;
    Ok((time, id.parse().map_err(|_| ())?))
}

const TRIPS_SQL: &str = "select t.device_id, d.imei, d.name, d.plate, d.driver_name, \
     t.start_time, t.end_time, t.start_lat, t.start_lon, t.end_lat, t.end_lon, t.distance_m, \
     t.duration_s, t.moving_s, t.idle_s, t.max_speed_kmh, t.avg_speed_kmh, t.overspeed_count, \
     t.overspeed_s, t.point_count, t.gap_s, t.end_reason, t.start_geofence, t.end_geofence
     from fleet.trips t join fleet.devices d using (device_id)
     where ($1::int[] is null or t.device_id = any($1))
       and ($2::text is null or lower(d.cost_centre) = lower($2))
       and ($3::text is null or lower(d.city) = lower($3))
       and ($4::timestamptz is null or t.start_time >= $4)
       and ($5::timestamptz is null or t.start_time < $5)
       and ($6::text[] is null or t.end_reason = any($6))
       and ($7::timestamptz is null or t.start_time < $7 or (t.start_time = $7 and t.device_id > $8))
     order by t.start_time desc, t.device_id
     limit $9";

const STOPS_SQL: &str = "select s.device_id, d.imei, d.name, d.plate, d.driver_name, \
     s.start_time, s.end_time, s.lat, s.lon, s.kind, s.duration_s, s.idle_s, s.geofence
     from fleet.stops s join fleet.devices d using (device_id)
     where ($1::int[] is null or s.device_id = any($1))
       and ($2::text is null or lower(d.cost_centre) = lower($2))
       and ($3::text is null or lower(d.city) = lower($3))
       and ($4::timestamptz is null or s.start_time >= $4)
       and ($5::timestamptz is null or s.start_time < $5)
       and ($6::text[] is null or s.kind = any($6))
       and ($7::timestamptz is null or s.start_time < $7 or (s.start_time = $7 and s.device_id > $8))
     order by s.start_time desc, s.device_id
     limit $9";

/// The list query with the filters bound; CSV reads every row, pages one more than `limit`.
fn bind<'q, O>(
    sql: &'static str,
    f: Filters,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>
where
    O: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    let (after_time, after_id) = f.after.unzip();
    sqlx::query_as(sql)
        .bind(f.device_ids)
        .bind(f.cost_centre)
        .bind(f.city)
        .bind(f.from)
        .bind(f.to)
        .bind(f.kinds)
        .bind(after_time)
        .bind(after_id)
        .bind(if f.csv { None } else { Some(f.limit + 1) })
}

/// Keeps `limit` rows and the cursor after the last, when there were more.
fn page<T>(
    mut items: Vec<T>,
    limit: i64,
    key: impl Fn(&T) -> (DateTime<Utc>, i32),
) -> (Vec<T>, Option<String>) {
    if items.len() as i64 > limit {
        items.truncate(limit as usize);
        let next = items.last().map(|i| {
            let (t, d) = key(i);
            encode_cursor(t, d)
        });
        (items, next)
    } else {
        (items, None)
    }
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
    let f = validate(
        &ids,
        q.cost_centre,
        q.city,
        q.from,
        q.to,
        q.end_reason.as_deref().map(|v| ("end_reason", v, &END_REASONS[..])),
        q.limit,
        q.after.as_deref(),
        q.format.as_deref(),
        &headers,
    )?;
    if f.csv {
        let rows = export::fetch_owned(&state, &who, bind::<Trip>(TRIPS_SQL, f))?;
        return Ok(export::csv_response(rows, "trips.csv"));
    }
    let limit = f.limit;
    let items: Vec<Trip> = bind(TRIPS_SQL, f).fetch_all(&state.pool).await?;
    let (items, next_after) = page(items, limit, |t| (t.start_time, t.device_id));
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
    let f = validate(
        &ids,
        q.cost_centre,
        q.city,
        q.from,
        q.to,
        q.kind.as_deref().map(|v| ("kind", v, &STOP_KINDS[..])),
        q.limit,
        q.after.as_deref(),
        q.format.as_deref(),
        &headers,
    )?;
    if f.csv {
        let rows = export::fetch_owned(&state, &who, bind::<Stop>(STOPS_SQL, f))?;
        return Ok(export::csv_response(rows, "stops.csv"));
    }
    let limit = f.limit;
    let items: Vec<Stop> = bind(STOPS_SQL, f).fetch_all(&state.pool).await?;
    let (items, next_after) = page(items, limit, |s| (s.start_time, s.device_id));
    Ok(Json(StopPage { items, next_after }).into_response())
}

async fn fetch_trip(
    pool: &sqlx::PgPool,
    device_id: i32,
    start: DateTime<Utc>,
) -> Result<Trip, ApiError> {
    sqlx::query_as(&format!(
        "select {TRIP_COLUMNS} from fleet.trips t join fleet.devices d using (device_id)
         where t.device_id = $1 and t.start_time = $2"
    ))
    .bind(device_id)
    .bind(start)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| {
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
    pub end_reason: String,
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
    let fixes: Vec<(DateTime<Utc>, f64, f64, Option<f32>)> = sqlx::query_as(
        "select gps_time, lat, lon, speed_kmh from fleet.positions
         where device_id = $1 and gps_time >= $2 and gps_time <= $3
         order by gps_time",
    )
    .bind(device_id)
    .bind(trip.start_time)
    .bind(trip.end_time)
    .fetch_all(&state.pool)
    .await?;
    let mut coordinates = Vec::with_capacity(fixes.len());
    let mut times = Vec::with_capacity(fixes.len());
    let mut speeds_kmh = Vec::with_capacity(fixes.len());
    for (t, lat, lon, speed) in fixes {
        coordinates.push([lon, lat]);
        times.push(t);
        speeds_kmh.push(speed);
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

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected() {
        let t = DateTime::from_timestamp_micros(1_790_000_000_123_456).expect("time");
        assert_eq!(decode_cursor(&encode_cursor(t, 42)), Ok((t, 42)));
        for bad in ["", "x", "!!!", &URL_SAFE_NO_PAD.encode("12.x"), &URL_SAFE_NO_PAD.encode("12")]
        {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn device_ids_repeat_or_come_comma_separated() {
        let (q, ids): (TripQuery, _) =
            parse_query(Some("device_id=1,2&city=Nairobi&device_id=3")).expect("ok");
        assert_eq!(ids, ["1,2", "3"]);
        assert_eq!(q.city.as_deref(), Some("Nairobi"));
        let f = validate(&ids, None, None, None, None, None, None, None, None, &HeaderMap::new())
            .expect("valid");
        assert_eq!(f.device_ids, Some(vec![1, 2, 3]));
        let e = parse_query::<TripQuery>(Some("from=yesterday")).expect_err("bad time");
        assert_eq!(e.problem().errors[0].field, "from");
    }

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
}
