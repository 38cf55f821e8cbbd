//! `/alarms`: alarms raised by the trackers or derived by fleetd, newest first, and their
//! acknowledgement by operators.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use fleet_db::alarms::{self, AlarmRecord};

use super::extract::{JsonBody, Path, Query};
use super::{paging, validate};
use crate::auth::{Operator, Viewer};
use crate::error::FieldError;
use crate::{ApiError, AppState, Problem};

/// Default page size of the alarm list.
pub const DEFAULT_LIMIT: i64 = 100;
/// Largest page size of the alarm list.
pub const MAX_LIMIT: i64 = 1000;

/// The alarm classes of `fleet.alarms.alarm_class`.
pub const CLASSES: [&str; 7] =
    ["safety", "security", "power", "driving", "geofence", "device", "other"];

/// An alarm, with the vehicle it came from and its acknowledgement.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Alarm {
    pub device_id: i32,
    /// When the device raised the alarm.
    pub alarm_time: DateTime<Utc>,
    /// Vendor alarm code as text (e.g. `1` for SOS), or fleetd's own code for derived alarms.
    pub alarm_type: String,
    /// Readable alarm name.
    pub alarm_name: String,
    /// safety, security, power, driving, geofence, device or other.
    pub alarm_class: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub speed_kmh: Option<f32>,
    /// How the alarm reached fleetd: poll, push, gt06 or derived.
    pub source: String,
    pub received_at: DateTime<Utc>,
    /// The vehicle's name.
    pub device_name: String,
    pub plate: Option<String>,
    pub acknowledged: bool,
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Id of the user who acknowledged it.
    pub acknowledged_by: Option<i32>,
    /// Username of the user who acknowledged it (null once that user is deleted).
    pub acknowledged_by_username: Option<String>,
    pub ack_note: Option<String>,
}

impl From<AlarmRecord> for Alarm {
    fn from(a: AlarmRecord) -> Self {
        Alarm {
            device_id: a.device_id,
            alarm_time: a.alarm_time,
            alarm_type: a.alarm_type,
            alarm_name: a.alarm_name,
            alarm_class: a.alarm_class,
            lat: a.lat,
            lon: a.lon,
            speed_kmh: a.speed_kmh,
            source: a.source,
            received_at: a.received_at,
            device_name: a.device_name,
            plate: a.plate,
            acknowledged: a.acknowledged,
            acknowledged_at: a.acknowledged_at,
            acknowledged_by: a.acknowledged_by,
            acknowledged_by_username: a.acknowledged_by_username,
            ack_note: a.ack_note,
        }
    }
}

/// One page of alarms, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlarmPage {
    pub items: Vec<Alarm>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<String>,
}

/// Filters and paging of the alarm list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlarmQuery {
    /// Only this device.
    pub device_id: Option<i32>,
    /// Only this alarm type (code), e.g. `1`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub alarm_type: Option<String>,
    /// Only this class: safety, security, power, driving, geofence, device or other.
    pub class: Option<String>,
    /// Alarms at or after this time (RFC 3339).
    pub from: Option<DateTime<Utc>>,
    /// Alarms before this time (RFC 3339).
    pub to: Option<DateTime<Utc>>,
    /// Only open (`false`) or only acknowledged (`true`) alarms.
    pub acknowledged: Option<bool>,
    /// Page size, 1-1000 (default 100).
    pub limit: Option<i64>,
    /// Cursor: the `next_after` of the previous page.
    pub after: Option<String>,
}

/// Where a page ends: the sort key of its last alarm.
type Cursor = (DateTime<Utc>, i32, String);

/// The key of the shared opaque cursor (api/paging.rs): the alarm's time in microseconds,
/// device and type.
fn cursor_key(a: &Alarm) -> (i64, i32, String) {
    (a.alarm_time.timestamp_micros(), a.device_id, a.alarm_type.clone())
}

fn decode_cursor(s: &str) -> Option<Cursor> {
    let (micros, device, alarm_type): (i64, i32, String) = paging::decode(s)?;
    Some((DateTime::from_timestamp_micros(micros)?, device, alarm_type))
}

/// List alarms.
#[utoipa::path(
    get,
    path = "/alarms",
    tag = "alarms",
    description = "Requires role: viewer. Newest first (alarm_time descending, then device id and alarm type); keyset pagination: follow `next_after` until it is null.",
    security(("session" = []), ("bearer" = [])),
    params(AlarmQuery),
    responses(
        (status = 200, description = "One page of alarms", body = AlarmPage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_alarms(
    State(state): State<AppState>,
    _: Viewer,
    Query(query): Query<AlarmQuery>,
) -> Result<Json<AlarmPage>, ApiError> {
    let mut errors = Vec::new();
    let limit = validate::limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT, &mut errors);
    if let Some(class) = &query.class {
        if !CLASSES.contains(&class.as_str()) {
            errors.push(FieldError::new("class", format!("must be one of {}", CLASSES.join(", "))));
        }
    }
    if let (Some(from), Some(to)) = (query.from, query.to) {
        if from > to {
            errors.push(FieldError::new("to", "must not be before from"));
        }
    }
    let cursor = match query.after.as_deref() {
        None => None,
        Some(s) => match decode_cursor(s) {
            Some(c) => Some(c),
            None => {
                errors.push(FieldError::new("after", "not a cursor from next_after"));
                None
            }
        },
    };
    validate::finish(errors)?;
    let filter = alarms::AlarmFilter {
        device_id: query.device_id,
        alarm_type: query.alarm_type.as_deref(),
        class: query.class.as_deref(),
        from: query.from,
        to: query.to,
        acknowledged: query.acknowledged,
    };
    let mut items: Vec<Alarm> = alarms::list(&state.pool, &filter, cursor, limit + 1)
        .await?
        .into_iter()
        .map(Alarm::from)
        .collect();
    let next_after = paging::next_after(&mut items, limit, cursor_key);
    Ok(Json(AlarmPage { items, next_after }))
}

/// An acknowledgement.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckAlarm {
    /// What was done about the alarm; at most 1000 characters.
    pub note: Option<String>,
}

/// Acknowledge an alarm.
#[utoipa::path(
    post,
    path = "/alarms/{device_id}/{alarm_time}/{alarm_type}/ack",
    tag = "alarms",
    description = "Requires role: operator. Records who acknowledged the alarm, when, and the note. An alarm is acknowledged once: a second acknowledgement is a 409.",
    security(("session" = []), ("bearer" = [])),
    params(
        ("device_id" = i32, Path, description = "Device id"),
        ("alarm_time" = DateTime<Utc>, Path, description = "The alarm's time as listed (RFC 3339, e.g. 2026-11-26T08:00:00Z)"),
        ("alarm_type" = String, Path, description = "The alarm's type code"),
    ),
    request_body = AckAlarm,
    responses(
        (status = 200, description = "The acknowledged alarm", body = Alarm),
        (status = 400, description = "The body is not valid JSON or a path segment unreadable", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A viewer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such alarm", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already acknowledged", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn ack_alarm(
    State(state): State<AppState>,
    Operator(who): Operator,
    Path((device_id, alarm_time, alarm_type)): Path<(i32, DateTime<Utc>, String)>,
    JsonBody(body): JsonBody<AckAlarm>,
) -> Result<Json<Alarm>, ApiError> {
    let note = body.note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if note.as_ref().is_some_and(|n| n.chars().count() > 1000) {
        return Err(ApiError::invalid("note", "at most 1000 characters"));
    }
    let key = (device_id, alarm_time, alarm_type.as_str());
    let updated = alarms::acknowledge(&state.pool, key, who.user_id, note.as_deref()).await?;
    let alarm =
        alarms::get(&state.pool, device_id, alarm_time, &alarm_type).await?.map(Alarm::from);
    let Some(alarm) = alarm else {
        return Err(ApiError::NotFound(format!(
            "device {device_id} has no alarm of type {alarm_type:?} at {}",
            alarm_time.to_rfc3339()
        )));
    };
    if !updated {
        return Err(ApiError::Conflict(format!(
            "the alarm was already acknowledged{}",
            alarm
                .acknowledged_by_username
                .as_deref()
                .map(|u| format!(" by {u}"))
                .unwrap_or_default()
        )));
    }
    tracing::info!(device.id = device_id, alarm.r#type = %alarm_type, by = %who.username, "alarm acknowledged");
    Ok(Json(alarm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let time = DateTime::parse_from_rfc3339("2026-11-26T08:00:00.123456Z")
            .expect("time")
            .with_timezone(&Utc);
        let a = Alarm {
            device_id: 7,
            alarm_time: time,
            alarm_type: "a|b".into(),
            alarm_name: String::new(),
            alarm_class: "other".into(),
            lat: None,
            lon: None,
            speed_kmh: None,
            source: "push".into(),
            received_at: time,
            device_name: "Van".into(),
            plate: None,
            acknowledged: false,
            acknowledged_at: None,
            acknowledged_by: None,
            acknowledged_by_username: None,
            ack_note: None,
        };
        let cursor = paging::encode(&cursor_key(&a));
        assert_eq!(decode_cursor(&cursor), Some((time, 7, "a|b".to_owned())));
        assert_eq!(decode_cursor("not a cursor"), None);
    }
}
