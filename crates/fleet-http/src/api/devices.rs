//! `/devices`: the vehicle registry. Everyone reads it; operators and admins edit the fields
//! people own (name, plate, driver, cost centre, city). The device sync keeps cost centre and
//! city as operators set them.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use fleet_db::devices::{self, Change, DeviceRecord};

use super::extract::{JsonBody, Path, Query};
use crate::auth::{Operator, Viewer};
use crate::error::FieldError;
use crate::{ApiError, AppState, Problem};

/// Default page size of the device list.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size of the device list.
pub const MAX_LIMIT: i64 = 500;

/// A device (tracker and the vehicle carrying it).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Device {
    pub device_id: i32,
    /// Tracker IMEI, 14-17 digits.
    pub imei: String,
    pub name: String,
    pub plate: Option<String>,
    pub driver_name: Option<String>,
    pub driver_phone: Option<String>,
    /// Business unit the vehicle is charged to; KPIs roll up by it.
    pub cost_centre: Option<String>,
    /// City or operating group; KPIs roll up by it.
    pub city: Option<String>,
    pub vehicle_type: Option<String>,
    /// Tracker model, e.g. JC400P.
    pub model: Option<String>,
    pub sim: Option<String>,
    /// False once the device left the vendor account.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
}

impl From<DeviceRecord> for Device {
    fn from(d: DeviceRecord) -> Self {
        Device {
            device_id: d.device_id,
            imei: d.imei,
            name: d.name,
            plate: d.plate,
            driver_name: d.driver_name,
            driver_phone: d.driver_phone,
            cost_centre: d.cost_centre,
            city: d.city,
            vehicle_type: d.vehicle_type,
            model: d.model,
            sim: d.sim,
            active: d.active,
            created_at: d.created_at,
            updated_at: d.updated_at,
            deactivated_at: d.deactivated_at,
        }
    }
}

/// One page of devices, by id.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DevicePage {
    pub items: Vec<Device>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<i32>,
}

/// Search, filters and paging of the device list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeviceQuery {
    /// Part of the name, plate (spaces ignored), IMEI or driver name; case does not matter.
    pub q: Option<String>,
    /// Only this cost centre (case does not matter).
    pub cost_centre: Option<String>,
    /// Only this city (case does not matter).
    pub city: Option<String>,
    /// Active devices (default) or, with `false`, those that left the vendor account.
    pub active: Option<bool>,
    /// Page size, 1-500 (default 50).
    pub limit: Option<i64>,
    /// Cursor: the `next_after` of the previous page (devices with a greater id).
    pub after: Option<i32>,
}

/// List devices.
#[utoipa::path(
    get,
    path = "/devices",
    tag = "devices",
    description = "Requires role: viewer. Keyset pagination by device id: follow `next_after` until it is null.",
    security(("session" = []), ("bearer" = [])),
    params(DeviceQuery),
    responses(
        (status = 200, description = "One page of devices", body = DevicePage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_devices(
    State(state): State<AppState>,
    _: Viewer,
    Query(query): Query<DeviceQuery>,
) -> Result<Json<DevicePage>, ApiError> {
    let mut errors = Vec::new();
    let limit = super::validate::limit(query.limit, DEFAULT_LIMIT, MAX_LIMIT, &mut errors);
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > 100) {
        errors.push(FieldError::new("q", "at most 100 characters"));
    }
    super::validate::finish(errors)?;
    let search = devices::DeviceSearch {
        active: query.active.unwrap_or(true),
        text: q,
        cost_centre: query.cost_centre.as_deref().map(str::trim),
        city: query.city.as_deref().map(str::trim),
        after: query.after,
        limit: limit + 1,
    };
    let mut items: Vec<Device> =
        devices::search(&state.pool, search).await?.into_iter().map(Device::from).collect();
    let next_after = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|d| d.device_id)
    } else {
        None
    };
    Ok(Json(DevicePage { items, next_after }))
}

/// Get a device.
#[utoipa::path(
    get,
    path = "/devices/{id}",
    tag = "devices",
    description = "Requires role: viewer.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Device id")),
    responses(
        (status = 200, description = "The device", body = Device),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such device", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_device(
    State(state): State<AppState>,
    _: Viewer,
    Path(id): Path<i32>,
) -> Result<Json<Device>, ApiError> {
    devices::get(&state.pool, id).await?.map(|d| Json(Device::from(d))).ok_or_else(|| not_found(id))
}

fn not_found(id: i32) -> ApiError {
    ApiError::NotFound(format!("there is no device {id}"))
}

/// Changes to a device. An absent field stays as it is; `null` or `""` clears it (except
/// `name`, which cannot be empty).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateDevice {
    /// 1-100 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// At most 20 letters, digits, spaces and hyphens.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub plate: Option<Option<String>>,
    /// At most 100 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub driver_name: Option<Option<String>>,
    /// Digits with optional leading `+`, spaces, hyphens, dots and parentheses; 5-20 digits.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub driver_phone: Option<Option<String>>,
    /// At most 64 characters. Changing it re-derives the device's trips and KPIs (its
    /// analytics overrides may change).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub cost_centre: Option<Option<String>>,
    /// At most 64 characters. Changing it re-derives the device's trips and KPIs.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub city: Option<Option<String>>,
}

/// A field that is present: `null` is `Some(None)`, absence is `None` (via `default`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The validated changes, in column order: name, plate, driver_name, driver_phone,
/// cost_centre, city.
fn validate(body: UpdateDevice) -> Result<[Change; 6], ApiError> {
    let mut errors = Vec::new();
    let mut check = |field: &str, value: Change, rule: fn(&str) -> Result<(), String>| {
        let value = value.map(|v| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()));
        if let Some(Some(s)) = &value {
            if let Err(m) = rule(s) {
                errors.push(FieldError::new(field, m));
            }
        }
        value
    };
    let name = check("name", body.name, |s| text(s, 100));
    let plate = check("plate", body.plate, plate);
    let driver_name = check("driver_name", body.driver_name, |s| text(s, 100));
    let driver_phone = check("driver_phone", body.driver_phone, phone);
    let cost_centre = check("cost_centre", body.cost_centre, |s| text(s, 64));
    let city = check("city", body.city, |s| text(s, 64));
    if name == Some(None) {
        errors.insert(0, FieldError::new("name", "must not be empty"));
    }
    super::validate::finish(errors)?;
    Ok([name, plate, driver_name, driver_phone, cost_centre, city])
}

/// The rule for names people read: bounded, no control or invisible formatting characters.
fn text(s: &str, max: usize) -> Result<(), String> {
    fleet_core::text::check_name(s, max).map_err(|e| e.to_string())
}

fn plate(s: &str) -> Result<(), String> {
    text(s, 20)?;
    if s.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-') {
        Ok(())
    } else {
        Err("only letters, digits, spaces and hyphens".to_owned())
    }
}

fn phone(s: &str) -> Result<(), String> {
    let body = s.strip_prefix('+').unwrap_or(s);
    if !body.chars().all(|c| c.is_ascii_digit() || " -.()".contains(c)) {
        return Err("only digits, a leading +, spaces, hyphens, dots and parentheses".to_owned());
    }
    let digits = body.chars().filter(char::is_ascii_digit).count();
    if !(5..=20).contains(&digits) {
        return Err("must have 5 to 20 digits".to_owned());
    }
    text(s, 32)
}

/// Edit a device's name, plate, driver, cost centre or city.
#[utoipa::path(
    patch,
    path = "/devices/{id}",
    tag = "devices",
    description = "Requires role: operator.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Device id")),
    request_body = UpdateDevice,
    responses(
        (status = 200, description = "The changed device", body = Device),
        (status = 400, description = "The body is not valid JSON or the id not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "A viewer", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such device", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn update_device(
    State(state): State<AppState>,
    Operator(who): Operator,
    Path(id): Path<i32>,
    JsonBody(body): JsonBody<UpdateDevice>,
) -> Result<Json<Device>, ApiError> {
    let changes = validate(body)?;
    if changes.iter().all(Option::is_none) {
        return get_device(State(state), Viewer(who), Path(id)).await;
    }
    let [name, plate, driver_name, driver_phone, cost_centre, city] = changes;
    let edit = devices::DeviceEdit { name, plate, driver_name, driver_phone, cost_centre, city };
    let device =
        Device::from(devices::update(&state.pool, id, edit).await?.ok_or_else(|| not_found(id))?);
    tracing::info!(device.id = id, device.imei = %device.imei, by = %who.username, "device edited");
    Ok(Json(device))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> UpdateDevice {
        serde_json::from_str(json).expect("parses")
    }

    #[test]
    fn absent_null_and_empty_are_told_apart() {
        let [name, plate, driver, ..] =
            validate(body(r#"{"name": " Van 7 ", "plate": null, "driver_name": ""}"#)).expect("ok");
        assert_eq!(name, Some(Some("Van 7".to_owned())), "trimmed");
        assert_eq!(plate, Some(None), "null clears");
        assert_eq!(driver, Some(None), "empty clears");
        let all = validate(body("{}")).expect("ok");
        assert!(all.iter().all(Option::is_none));
    }

    #[test]
    fn every_invalid_field_is_reported() {
        let e = validate(body(
            r#"{"name": null, "plate": "KB#1", "driver_phone": "call me", "city": "x\u0007"}"#,
        ))
        .expect_err("invalid");
        let fields: Vec<_> = e.problem().errors.into_iter().map(|f| f.field).collect();
        assert_eq!(fields, ["name", "plate", "driver_phone", "city"]);
    }

    #[test]
    fn phones_and_plates() {
        for ok in ["+254 712 345678", "(020) 123-4567", "0712345678"] {
            assert!(phone(ok).is_ok(), "{ok}");
        }
        for bad in ["12", "+254+712", "0712 ext 5", &"1".repeat(21)] {
            assert!(phone(bad).is_err(), "{bad}");
        }
        assert!(plate("KDA 123X").is_ok());
        assert!(plate("KDA/123").is_err());
    }
}
