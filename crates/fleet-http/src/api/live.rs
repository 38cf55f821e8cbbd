//! `/fleet/live`: every active vehicle's newest fix and status as GeoJSON, read from
//! `fleet.device_latest` (one row per device, never `fleet.positions`), with a summary by
//! status for the live map's counters.
//!
//! Status is `fleet.device_status`: device_latest's motion state (moving, idling, parked), or
//! offline when the newest fix is older than the vehicle's `offline_after_s` (overrides
//! applied), the one rule every reader of a device's status uses.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::Query;
use super::live_snapshots::{accepts_gzip, not_modified, Loaded, Snapshot, SnapshotKey};
use crate::auth::Viewer;
use crate::error::FieldError;
use crate::{ApiError, AppState, Problem};

/// Media type of the response.
pub const GEO_JSON: &str = "application/geo+json";

/// Unacknowledged alarms younger than this many hours put a vehicle in alarm on the live map;
/// older ones are for the alarm list, not the map.
pub const OPEN_ALARM_WINDOW_H: i32 = 24;

/// A vehicle's status on the live map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LiveStatus {
    Moving,
    Idling,
    Parked,
    /// The newest fix is older than the vehicle's `offline_after_s` (default 3600 s).
    Offline,
}

impl LiveStatus {
    pub const ALL: [LiveStatus; 4] =
        [LiveStatus::Moving, LiveStatus::Idling, LiveStatus::Parked, LiveStatus::Offline];

    pub fn as_str(self) -> &'static str {
        match self {
            LiveStatus::Moving => "moving",
            LiveStatus::Idling => "idling",
            LiveStatus::Parked => "parked",
            LiveStatus::Offline => "offline",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl TryFrom<String> for LiveStatus {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        LiveStatus::parse(&s).ok_or_else(|| format!("unknown status {s:?}"))
    }
}

/// Filters of the live view.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LiveQuery {
    /// Only this cost centre (case does not matter).
    pub cost_centre: Option<String>,
    /// Only this city (case does not matter).
    pub city: Option<String>,
    /// Only these statuses, comma-separated: `moving,idling`. The summary ignores this filter.
    #[param(example = "moving,idling")]
    pub status: Option<String>,
    /// Only vehicles whose newest fix has the ignition on (`true`) or off (`false`).
    pub ignition: Option<bool>,
}

/// The live fleet: a GeoJSON FeatureCollection with a summary.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LiveFleet {
    #[schema(value_type = String, example = "FeatureCollection")]
    #[serde(rename = "type")]
    pub type_: String,
    pub features: Vec<LiveFeature>,
    pub summary: LiveSummary,
    /// When this answer was computed (fix ages are relative to it).
    pub generated_at: DateTime<Utc>,
}

/// One vehicle: a GeoJSON Point Feature, `id` = device id.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LiveFeature {
    #[schema(value_type = String, example = "Feature")]
    #[serde(rename = "type")]
    pub type_: String,
    pub id: i32,
    pub geometry: PointGeometry,
    pub properties: LiveProperties,
}

/// A GeoJSON Point: `[longitude, latitude]` in WGS 84 degrees.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PointGeometry {
    #[schema(value_type = String, example = "Point")]
    #[serde(rename = "type")]
    pub type_: String,
    pub coordinates: [f64; 2],
}

/// What the live map shows of a vehicle.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LiveProperties {
    pub device_id: i32,
    pub imei: String,
    pub name: String,
    pub plate: Option<String>,
    pub driver_name: Option<String>,
    pub cost_centre: Option<String>,
    pub city: Option<String>,
    pub status: LiveStatus,
    /// When the device entered its motion state (moving, idling or parked).
    pub state_since: DateTime<Utc>,
    pub speed_kmh: Option<f32>,
    /// Heading, degrees clockwise from north.
    pub course_deg: Option<f32>,
    pub ignition: Option<bool>,
    /// GPS time of the newest fix.
    pub gps_time: DateTime<Utc>,
    /// When fleetd stored it.
    pub received_at: DateTime<Utc>,
    /// Age of the newest fix, seconds.
    pub fix_age_s: i64,
    /// gps, lbs (cell tower) or wifi.
    pub fix_kind: String,
    /// Tracker battery, percent.
    pub battery_pct: Option<f32>,
    /// Vehicle supply voltage, volts.
    pub external_v: Option<f32>,
    /// Alarms of the last [`OPEN_ALARM_WINDOW_H`] hours not acknowledged yet; above zero the
    /// vehicle is shown in alarm.
    pub open_alarms: i64,
    #[serde(skip)]
    #[schema(ignore)]
    pub lat: f64,
    #[serde(skip)]
    #[schema(ignore)]
    pub lon: f64,
}

/// Vehicles by status, over the vehicles matching every filter except `status`.
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LiveSummary {
    /// Vehicles with a fix: moving + idling + parked + offline.
    pub total: i64,
    pub moving: i64,
    pub idling: i64,
    pub parked: i64,
    pub offline: i64,
    /// Vehicles (of any status) with open alarms.
    pub in_alarm: i64,
    /// Active vehicles that never reported a fix (not among the features).
    pub no_fix: i64,
}

/// The live fleet map.
#[utoipa::path(
    get,
    path = "/fleet/live",
    tag = "fleet",
    description = "Requires role: viewer. Reads one row per vehicle from device_latest, never the positions history. \
        Conditional: the answer carries a weak `ETag` over what the map shows (every vehicle's fields and the summary, not the clock-driven `generated_at` and `fix_age_s`); \
        a request whose `If-None-Match` names it gets `304 Not Modified` without a body. Clients polling the map should send it (browsers do, from their cache). \
        Requests with the same filters that arrive while the view is being read share the next read, which always starts after they arrived.",
    security(("session" = []), ("bearer" = [])),
    params(
        LiveQuery,
        ("If-None-Match" = Option<String>, Header, description = "Entity tags of the copies the client holds (`W/\"live-…\"`); `*` matches any."),
    ),
    responses(
        (status = 200, description = "Every active vehicle with a fix", body = LiveFleet, content_type = "application/geo+json",
            headers(("ETag" = String, description = "Weak entity tag of this answer"))),
        (status = 304, description = "Not modified: the copy named in If-None-Match still shows the fleet as it is",
            headers(("ETag" = String, description = "Weak entity tag of this answer"))),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn live(
    State(state): State<AppState>,
    _: Viewer,
    headers: HeaderMap,
    Query(query): Query<LiveQuery>,
) -> Result<Response, ApiError> {
    let statuses = match query.status.as_deref().map(parse_statuses).transpose() {
        Ok(s) => s,
        Err(m) => return Err(ApiError::Validation(vec![FieldError::new("status", m)])),
    };
    let key = SnapshotKey::new(query.cost_centre.as_deref(), query.city.as_deref(), query.ignition);
    let snap = state.live.get(key, || fetch(&state.pool, &query)).await?;
    let rendered = snap.rendered(statuses.as_deref());
    // revalidate on every use: the map is live, but an unchanged one need not be sent again
    let cache = [
        (header::ETAG, rendered.etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache")),
        (header::VARY, HeaderValue::from_static("accept-encoding")),
    ];
    if not_modified(&headers, &rendered.etag) {
        return Ok((StatusCode::NOT_MODIFIED, cache).into_response());
    }
    let body = rendered.body(|| render(&snap, statuses.as_deref()));
    let content_type = (header::CONTENT_TYPE, HeaderValue::from_static(GEO_JSON));
    if accepts_gzip(&headers) {
        // compressed once per snapshot, not per request (the compression layer leaves an
        // answer that names its encoding alone)
        if let Some(gzipped) = rendered.gzipped(body.clone()).await {
            let encoding = (header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            return Ok((cache, [content_type, encoding], gzipped).into_response());
        }
    }
    Ok((cache, [content_type], body).into_response())
}

/// The clock, the vehicles with a fix and the count of those without, from one snapshot.
async fn fetch(pool: &sqlx::PgPool, query: &LiveQuery) -> Result<Loaded, ApiError> {
    let filter = fleet_db::live::LiveFilter {
        cost_centre: query.cost_centre.as_deref().map(str::trim),
        city: query.city.as_deref().map(str::trim),
        ignition: query.ignition,
    };
    let snap = fleet_db::live::snapshot(pool, filter, OPEN_ALARM_WINDOW_H).await?;
    let rows = snap
        .vehicles
        .into_iter()
        .map(LiveProperties::try_from)
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal)?;
    Ok(Loaded { generated_at: snap.now, rows, no_fix: snap.no_fix })
}

impl TryFrom<fleet_db::live::LiveVehicle> for LiveProperties {
    type Error = String;

    fn try_from(v: fleet_db::live::LiveVehicle) -> Result<Self, String> {
        Ok(LiveProperties {
            status: LiveStatus::try_from(v.status)?,
            device_id: v.device_id,
            imei: v.imei,
            name: v.name,
            plate: v.plate,
            driver_name: v.driver_name,
            cost_centre: v.cost_centre,
            city: v.city,
            state_since: v.state_since,
            speed_kmh: v.speed_kmh,
            course_deg: v.course_deg,
            ignition: v.ignition,
            gps_time: v.gps_time,
            received_at: v.received_at,
            fix_age_s: v.fix_age_s,
            fix_kind: v.fix_kind,
            battery_pct: v.battery_pct,
            external_v: v.external_v,
            open_alarms: v.open_alarms,
            lat: v.lat,
            lon: v.lon,
        })
    }
}

/// The GeoJSON body of a snapshot's vehicles that match the status filter.
fn render(snap: &Snapshot, statuses: Option<&[LiveStatus]>) -> Bytes {
    let body = LiveFleetRef {
        type_: "FeatureCollection",
        features: snap.matching(statuses).map(LiveFeatureRef::from).collect(),
        summary: &snap.summary,
        generated_at: snap.generated_at,
    };
    Bytes::from(serde_json::to_vec(&body).expect("the live fleet serialises"))
}

/// [`LiveFleet`] borrowed from a snapshot, serialised the same way.
#[derive(Serialize)]
struct LiveFleetRef<'a> {
    #[serde(rename = "type")]
    type_: &'static str,
    features: Vec<LiveFeatureRef<'a>>,
    summary: &'a LiveSummary,
    generated_at: DateTime<Utc>,
}

/// [`LiveFeature`] borrowed from a snapshot.
#[derive(Serialize)]
struct LiveFeatureRef<'a> {
    #[serde(rename = "type")]
    type_: &'static str,
    id: i32,
    geometry: PointGeometry,
    properties: &'a LiveProperties,
}

impl<'a> From<&'a LiveProperties> for LiveFeatureRef<'a> {
    fn from(p: &'a LiveProperties) -> Self {
        LiveFeatureRef {
            type_: "Feature",
            id: p.device_id,
            geometry: PointGeometry { type_: "Point".to_owned(), coordinates: [p.lon, p.lat] },
            properties: p,
        }
    }
}

/// `moving,idling` into statuses; the message names what is wrong.
fn parse_statuses(s: &str) -> Result<Vec<LiveStatus>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            LiveStatus::parse(p).ok_or_else(|| {
                format!("{p:?} is not a status; use moving, idling, parked or offline")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_from_a_comma_separated_list() {
        assert_eq!(
            parse_statuses("moving, offline").expect("ok"),
            [LiveStatus::Moving, LiveStatus::Offline]
        );
        assert!(parse_statuses("moving,asleep").expect_err("bad").contains("asleep"));
    }
}
