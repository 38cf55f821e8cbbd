//! `/geofences`: named circles and polygons that name trip starts and ends and raise enter/exit
//! events. Everyone reads them; admins manage them. Trip geofence names are derived from them,
//! so every change marks every device for a trip rebuild in the same transaction
//! (`fleet.mark_analytics_rebuild`): the trip builder then re-derives trips, stops, geofence
//! events and KPIs with the new areas.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use fleet_core::text::excerpt;
use fleet_core::{GeofenceShape, LatLon};
use fleet_db::geofences::{GeofenceInput, GeofenceRow, StoredShape};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::extract::{JsonBody, Path};
use crate::auth::{Admin, Viewer};
use crate::error::FieldError;
use crate::{ApiError, AppState, Problem};

/// A geofence's shape kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GeofenceKind {
    Circle,
    Polygon,
}

/// A point in decimal degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Center {
    pub lat: f64,
    pub lon: f64,
}

/// A geofence.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Geofence {
    pub geofence_id: i32,
    pub name: String,
    pub kind: GeofenceKind,
    /// The centre of a circle; null for polygons.
    pub center: Option<Center>,
    /// The radius of a circle, metres; null for polygons.
    pub radius_m: Option<f64>,
    /// The ring of a polygon as `[lon, lat]` pairs (GeoJSON order); null for circles.
    pub polygon: Option<Vec<[f64; 2]>>,
    /// Speed limit inside the geofence, km/h; null: the analytics setting applies.
    pub speed_limit_kmh: Option<f64>,
    /// Inactive geofences are kept but not used.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<GeofenceRow> for Geofence {
    fn from(r: GeofenceRow) -> Self {
        let (kind, center, radius_m, polygon) = match r.shape {
            StoredShape::Circle { lat, lon, radius_m } => {
                (GeofenceKind::Circle, Some(Center { lat, lon }), Some(radius_m), None)
            }
            StoredShape::Polygon(ring) => (GeofenceKind::Polygon, None, None, Some(ring)),
        };
        Geofence {
            geofence_id: r.geofence_id,
            name: r.name,
            kind,
            center,
            radius_m,
            polygon,
            speed_limit_kmh: r.speed_limit_kmh.map(f64::from),
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Every geofence, active or not.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct GeofenceList {
    pub items: Vec<Geofence>,
}

/// A new geofence: a circle (`center` and `radius_m`) or a polygon (`polygon`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGeofence {
    /// 1-200 characters, unique.
    pub name: String,
    pub kind: GeofenceKind,
    /// Circles only.
    pub center: Option<Center>,
    /// Circles only: metres, more than 0 and at most 100 km.
    pub radius_m: Option<f64>,
    /// Polygons only: at least three distinct `[lon, lat]` vertices; closing the ring is optional.
    pub polygon: Option<Vec<[f64; 2]>>,
    /// km/h, more than 0 and at most 300; null or absent: none.
    pub speed_limit_kmh: Option<f64>,
    /// Default true.
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// Changes to a geofence: absent fields stay. Changing `kind` needs the new shape's fields.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateGeofence {
    pub name: Option<String>,
    pub kind: Option<GeofenceKind>,
    pub center: Option<Center>,
    pub radius_m: Option<f64>,
    pub polygon: Option<Vec<[f64; 2]>>,
    /// `null` removes the speed limit.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>)]
    pub speed_limit_kmh: Option<Option<f64>>,
    pub active: Option<bool>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Checks a complete geofence, naming every invalid field; the shape is validated by
/// `fleet_core::GeofenceShape`, the one the trip builder uses.
fn validate(g: CreateGeofence) -> Result<GeofenceInput, ApiError> {
    let mut errors = Vec::new();
    let name = g.name.trim().to_owned();
    if name.is_empty() {
        errors.push(FieldError::new("name", "must not be empty"));
    } else if let Err(e) = fleet_core::text::check_name(&name, 200) {
        errors.push(FieldError::new("name", e.to_string()));
    }
    if let Some(v) = g.speed_limit_kmh {
        if !(v.is_finite() && v > 0.0 && v <= 300.0) {
            errors.push(FieldError::new(
                "speed_limit_kmh",
                "must be more than 0 and at most 300 km/h",
            ));
        }
    }
    match g.kind {
        GeofenceKind::Circle => {
            if g.polygon.is_some() {
                errors.push(FieldError::new("polygon", "only polygons have one"));
            }
            let center = match g.center {
                None => {
                    errors.push(FieldError::new("center", "a circle needs its centre {lat, lon}"));
                    None
                }
                Some(c) => match LatLon::new(c.lat, c.lon) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        errors.push(FieldError::new("center", e.to_string()));
                        None
                    }
                },
            };
            match g.radius_m {
                None => errors.push(FieldError::new("radius_m", "a circle needs its radius")),
                Some(r) if r > 100_000.0 => {
                    errors.push(FieldError::new("radius_m", "at most 100000 metres"))
                }
                Some(r) => {
                    let at = center.unwrap_or_else(|| LatLon::new(1.0, 1.0).expect("valid"));
                    if let Err(e) = GeofenceShape::circle(at, r) {
                        errors.push(FieldError::new("radius_m", e.to_string()));
                    }
                }
            }
        }
        GeofenceKind::Polygon => {
            if g.center.is_some() {
                errors.push(FieldError::new("center", "only circles have one"));
            }
            if g.radius_m.is_some() {
                errors.push(FieldError::new("radius_m", "only circles have one"));
            }
            match &g.polygon {
                None => errors.push(FieldError::new(
                    "polygon",
                    "a polygon needs its ring of [lon, lat] vertices",
                )),
                Some(ring) => {
                    let mut points = Vec::with_capacity(ring.len());
                    let mut bad = false;
                    for (i, [lon, lat]) in ring.iter().enumerate() {
                        match LatLon::new(*lat, *lon) {
                            Ok(p) => points.push(p),
                            Err(e) => {
                                bad = true;
                                errors
                                    .push(FieldError::new(format!("polygon[{i}]"), e.to_string()));
                            }
                        }
                    }
                    if !bad {
                        let mut distinct: Vec<[u64; 2]> =
                            ring.iter().map(|[a, b]| [a.to_bits(), b.to_bits()]).collect();
                        distinct.sort_unstable();
                        distinct.dedup();
                        let shape = GeofenceShape::polygon(points);
                        if let Err(e) = shape {
                            errors.push(FieldError::new("polygon", e.to_string()));
                        } else if distinct.len() < 3 {
                            errors.push(FieldError::new(
                                "polygon",
                                "a polygon needs at least three distinct vertices",
                            ));
                        } else if ring.len() > 10_000 {
                            errors.push(FieldError::new("polygon", "at most 10000 vertices"));
                        }
                    }
                }
            }
        }
    }
    super::validate::finish(errors)?;
    let shape = match (g.kind, g.center, g.radius_m, g.polygon) {
        (GeofenceKind::Circle, Some(c), Some(radius_m), _) => {
            StoredShape::Circle { lat: c.lat, lon: c.lon, radius_m }
        }
        (GeofenceKind::Polygon, _, _, Some(ring)) => StoredShape::Polygon(ring),
        // the checks above refused a shape without its fields
        _ => return Err(ApiError::Validation(vec![FieldError::new("kind", "incomplete shape")])),
    };
    Ok(GeofenceInput {
        name,
        shape,
        speed_limit_kmh: g.speed_limit_kmh.map(|v| v as f32),
        active: g.active,
    })
}

/// The stored geofence with the changes applied; the shape fields of the old kind are dropped
/// when the kind changes.
fn merge(old: Geofence, body: UpdateGeofence) -> CreateGeofence {
    let kind = body.kind.unwrap_or(old.kind);
    let same = kind == old.kind;
    CreateGeofence {
        name: body.name.unwrap_or(old.name),
        kind,
        center: body.center.or(if same { old.center } else { None }),
        radius_m: body.radius_m.or(if same { old.radius_m } else { None }),
        polygon: body.polygon.or(if same { old.polygon } else { None }),
        speed_limit_kmh: body.speed_limit_kmh.unwrap_or(old.speed_limit_kmh),
        active: body.active.unwrap_or(old.active),
    }
}

fn not_found(id: i32) -> ApiError {
    ApiError::NotFound(format!("there is no geofence {id}"))
}

/// 23505 on the name: another geofence has it.
fn name_taken(e: sqlx::Error, name: &str) -> ApiError {
    match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => {
            ApiError::Conflict(format!("a geofence named {name:?} exists"))
        }
        _ => e.into(),
    }
}

async fn fetch(db: &mut sqlx::PgConnection, id: i32, lock: bool) -> Result<Geofence, ApiError> {
    let row = fleet_db::geofences::get(db, id, lock).await?;
    row.map(Geofence::from).ok_or_else(|| not_found(id))
}

/// List geofences.
#[utoipa::path(
    get,
    path = "/geofences",
    tag = "geofences",
    description = "Requires role: viewer. Every geofence, active or not, by name.",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The geofences", body = GeofenceList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_geofences(
    State(state): State<AppState>,
    _: Viewer,
) -> Result<Json<GeofenceList>, ApiError> {
    let mut db = state.pool.acquire().await?;
    let rows = fleet_db::geofences::list(&mut db).await?;
    Ok(Json(GeofenceList { items: rows.into_iter().map(Geofence::from).collect() }))
}

/// Get a geofence.
#[utoipa::path(
    get,
    path = "/geofences/{id}",
    tag = "geofences",
    description = "Requires role: viewer.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Geofence id")),
    responses(
        (status = 200, description = "The geofence", body = Geofence),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such geofence", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_geofence(
    State(state): State<AppState>,
    _: Viewer,
    Path(id): Path<i32>,
) -> Result<Json<Geofence>, ApiError> {
    let mut db = state.pool.acquire().await?;
    fetch(&mut db, id, false).await.map(Json)
}

/// Create a geofence.
#[utoipa::path(
    post,
    path = "/geofences",
    tag = "geofences",
    description = "Requires role: admin. Every device is marked for a trip rebuild in the same transaction (trips are named after the geofences they start and end in).",
    security(("session" = []), ("bearer" = [])),
    request_body = CreateGeofence,
    responses(
        (status = 201, description = "The new geofence", body = Geofence),
        (status = 400, description = "The body is not valid JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_geofence(
    State(state): State<AppState>,
    Admin(who): Admin,
    JsonBody(body): JsonBody<CreateGeofence>,
) -> Result<(StatusCode, Json<Geofence>), ApiError> {
    let valid = validate(body)?;
    let mut tx = state.pool.begin().await?;
    let g = fleet_db::geofences::insert(&mut tx, &valid)
        .await
        .map(Geofence::from)
        .map_err(|e| name_taken(e, &valid.name))?;
    tx.commit().await?;
    tracing::info!(geofence.id = g.geofence_id, geofence.name = %excerpt(&g.name), by = %who.username, "geofence created");
    Ok((StatusCode::CREATED, Json(g)))
}

/// Edit a geofence.
#[utoipa::path(
    patch,
    path = "/geofences/{id}",
    tag = "geofences",
    description = "Requires role: admin. The result is validated as a whole; every device is marked for a trip rebuild in the same transaction.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Geofence id")),
    request_body = UpdateGeofence,
    responses(
        (status = 200, description = "The changed geofence", body = Geofence),
        (status = 400, description = "The body is not valid JSON or the id not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such geofence", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn update_geofence(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<i32>,
    JsonBody(body): JsonBody<UpdateGeofence>,
) -> Result<Json<Geofence>, ApiError> {
    let mut tx = state.pool.begin().await?;
    // locked, so that concurrent edits apply one after the other
    let old = fetch(&mut tx, id, true).await?;
    let valid = validate(merge(old, body))?;
    let g = fleet_db::geofences::update(&mut tx, id, &valid)
        .await
        .map_err(|e| name_taken(e, &valid.name))?
        .map(Geofence::from)
        .ok_or_else(|| not_found(id))?;
    tx.commit().await?;
    tracing::info!(geofence.id = id, by = %who.username, "geofence edited");
    Ok(Json(g))
}

/// Delete a geofence.
#[utoipa::path(
    delete,
    path = "/geofences/{id}",
    tag = "geofences",
    description = "Requires role: admin. Its enter/exit events go with it; every device is marked for a trip rebuild in the same transaction.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Geofence id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such geofence", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn delete_geofence(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<i32>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.pool.begin().await?;
    if !fleet_db::geofences::delete(&mut tx, id).await? {
        return Err(not_found(id));
    }
    tx.commit().await?;
    tracing::info!(geofence.id = id, by = %who.username, "geofence deleted");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> CreateGeofence {
        serde_json::from_str(json).expect("parses")
    }

    fn fields(r: Result<GeofenceInput, ApiError>) -> Vec<String> {
        r.expect_err("invalid").problem().errors.into_iter().map(|f| f.field).collect()
    }

    #[test]
    fn circles_and_polygons_are_checked_field_by_field() {
        assert!(validate(body(
            r#"{"name": "Depot", "kind": "circle", "center": {"lat": -1.3, "lon": 36.8}, "radius_m": 200}"#
        ))
        .is_ok());
        assert_eq!(
            fields(validate(body(
                r#"{"name": " ", "kind": "circle", "center": {"lat": 91, "lon": 0}, "radius_m": -1}"#
            ))),
            ["name", "center", "radius_m"]
        );
        assert_eq!(
            fields(validate(body(
                r#"{"name": "P", "kind": "polygon", "polygon": [[36.8, -1.3], [36.9, -1.3], [36.8, -1.3]]}"#
            ))),
            ["polygon"]
        );
        assert_eq!(
            fields(validate(body(
                r#"{"name": "P", "kind": "polygon", "polygon": [[36.8, -1.3], [200, -1.3], [36.8, -1.4]]}"#
            ))),
            ["polygon[1]"]
        );
        assert!(validate(body(
            r#"{"name": "P", "kind": "polygon", "polygon": [[36.8, -1.3], [36.9, -1.3], [36.9, -1.4], [36.8, -1.3]]}"#
        ))
        .is_ok());
    }
}
