//! `fleet.geofences`: the named areas, as stored (a circle's centre and radius, a polygon's ring
//! as JSON `[lon, lat]` pairs in GeoJSON order) and as the trip builder uses them
//! (`fleet_core::Geofences`). The ring's JSON is written and read here only.

use chrono::{DateTime, Utc};
use fleet_core::{Geofence, GeofenceShape, Geofences, LatLon};
use sqlx::types::Json;
use sqlx::PgConnection;

/// A geofence's area as stored: what was saved, closing vertex and all.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredShape {
    Circle {
        lat: f64,
        lon: f64,
        radius_m: f64,
    },
    /// `[lon, lat]` pairs (GeoJSON order).
    Polygon(Vec<[f64; 2]>),
}

impl StoredShape {
    /// The stored kind: `circle` or `polygon`.
    pub fn kind(&self) -> &'static str {
        match self {
            StoredShape::Circle { .. } => "circle",
            StoredShape::Polygon(_) => "polygon",
        }
    }

    /// The shape the trip builder tests points against; `None` when it cannot be used.
    pub fn to_shape(&self) -> Option<GeofenceShape> {
        match self {
            StoredShape::Circle { lat, lon, radius_m } => {
                GeofenceShape::circle(LatLon::new(*lat, *lon).ok()?, *radius_m).ok()
            }
            StoredShape::Polygon(ring) => {
                let ring = ring
                    .iter()
                    .map(|[lon, lat]| LatLon::new(*lat, *lon).ok())
                    .collect::<Option<Vec<_>>>()?;
                GeofenceShape::polygon(ring).ok()
            }
        }
    }

    fn columns(&self) -> (Option<f64>, Option<f64>, Option<f64>, Option<serde_json::Value>) {
        match self {
            StoredShape::Circle { lat, lon, radius_m } => {
                (Some(*lat), Some(*lon), Some(*radius_m), None)
            }
            StoredShape::Polygon(ring) => (None, None, None, Some(serde_json::json!(ring))),
        }
    }

    /// The shape of a row; `None` when the row's columns do not make one.
    fn from_columns(
        kind: &str,
        lat: Option<f64>,
        lon: Option<f64>,
        radius_m: Option<f64>,
        polygon: Option<serde_json::Value>,
    ) -> Option<StoredShape> {
        match kind {
            "circle" => Some(StoredShape::Circle { lat: lat?, lon: lon?, radius_m: radius_m? }),
            "polygon" => serde_json::from_value(polygon?).ok().map(StoredShape::Polygon),
            _ => None,
        }
    }
}

/// A stored geofence.
#[derive(Debug, Clone, PartialEq)]
pub struct GeofenceRow {
    pub geofence_id: i32,
    pub name: String,
    pub shape: StoredShape,
    pub speed_limit_kmh: Option<f32>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A geofence to insert or to overwrite one with.
#[derive(Debug, Clone, PartialEq)]
pub struct GeofenceInput {
    pub name: String,
    pub shape: StoredShape,
    pub speed_limit_kmh: Option<f32>,
    pub active: bool,
}

fn unusable(id: i32) -> sqlx::Error {
    sqlx::Error::Decode(format!("geofence {id} has no usable shape").into())
}

/// Every geofence (`id` None) or one, by name: the one column list of `fleet.geofences`.
async fn read(db: &mut PgConnection, id: Option<i32>) -> Result<Vec<GeofenceRow>, sqlx::Error> {
    sqlx::query!(
        r#"select geofence_id, name, kind, center_lat, center_lon, radius_m,
                  polygon as "polygon: Json<serde_json::Value>", speed_limit_kmh, active,
                  created_at, updated_at
           from fleet.geofences
           where ($1::int is null or geofence_id = $1)
           order by name, geofence_id"#,
        id
    )
    .try_map(|r| {
        let polygon = r.polygon.map(|p| p.0);
        let shape =
            StoredShape::from_columns(&r.kind, r.center_lat, r.center_lon, r.radius_m, polygon)
                .ok_or_else(|| unusable(r.geofence_id))?;
        Ok(GeofenceRow {
            geofence_id: r.geofence_id,
            name: r.name,
            shape,
            speed_limit_kmh: r.speed_limit_kmh,
            active: r.active,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    })
    .fetch_all(db)
    .await
}

/// Every geofence, active or not, by name.
pub async fn list(db: &mut PgConnection) -> Result<Vec<GeofenceRow>, sqlx::Error> {
    read(db, None).await
}

/// One geofence; `lock` takes its row lock until the transaction ends.
pub async fn get(
    db: &mut PgConnection,
    id: i32,
    lock: bool,
) -> Result<Option<GeofenceRow>, sqlx::Error> {
    if lock {
        sqlx::query!(
            "select geofence_id from fleet.geofences where geofence_id = $1 for update",
            id
        )
        .fetch_optional(&mut *db)
        .await?;
    }
    Ok(read(db, Some(id)).await?.pop())
}

/// Inserts a geofence and marks every device for a trip rebuild (trips carry the names of
/// the geofences they start and end in). A taken name fails with 23505.
pub async fn insert(db: &mut PgConnection, g: &GeofenceInput) -> Result<GeofenceRow, sqlx::Error> {
    let (lat, lon, radius_m, polygon) = g.shape.columns();
    let id = sqlx::query_scalar!(
        "insert into fleet.geofences (name, kind, center_lat, center_lon, radius_m, polygon,
             speed_limit_kmh, active)
         values ($1, $2, $3, $4, $5, $6, $7, $8)
         returning geofence_id",
        g.name,
        g.shape.kind(),
        lat,
        lon,
        radius_m,
        polygon,
        g.speed_limit_kmh,
        g.active,
    )
    .fetch_one(&mut *db)
    .await?;
    mark_rebuild(db).await?;
    read(db, Some(id)).await?.pop().ok_or(sqlx::Error::RowNotFound)
}

/// Overwrites geofence `id` and marks every device for a trip rebuild; `None` when there is
/// no such geofence. A taken name fails with 23505.
pub async fn update(
    db: &mut PgConnection,
    id: i32,
    g: &GeofenceInput,
) -> Result<Option<GeofenceRow>, sqlx::Error> {
    let (lat, lon, radius_m, polygon) = g.shape.columns();
    let updated = sqlx::query!(
        "update fleet.geofences set name = $2, kind = $3, center_lat = $4, center_lon = $5,
             radius_m = $6, polygon = $7, speed_limit_kmh = $8, active = $9
         where geofence_id = $1",
        id,
        g.name,
        g.shape.kind(),
        lat,
        lon,
        radius_m,
        polygon,
        g.speed_limit_kmh,
        g.active,
    )
    .execute(&mut *db)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(None);
    }
    mark_rebuild(db).await?;
    Ok(read(db, Some(id)).await?.pop())
}

/// Deletes a geofence (its enter/exit events go with it) and marks every device for a trip
/// rebuild; false when there is no such geofence.
pub async fn delete(db: &mut PgConnection, id: i32) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query!("delete from fleet.geofences where geofence_id = $1", id)
        .execute(&mut *db)
        .await?
        .rows_affected();
    if deleted > 0 {
        mark_rebuild(db).await?;
    }
    Ok(deleted > 0)
}

/// Marks every device for a trip rebuild.
async fn mark_rebuild(db: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "select fleet.mark_analytics_rebuild(array(select device_id from fleet.devices), true)"
    )
    .execute(db)
    .await
    .map(|_| ())
}

/// The active geofences as the trip builder uses them. A stored shape that cannot be used is
/// skipped with a warning (the table's checks do not validate each polygon vertex).
pub async fn active(db: &mut PgConnection) -> Result<Geofences, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select geofence_id, name, kind, center_lat, center_lon, radius_m,
                  polygon as "polygon: Json<serde_json::Value>"
           from fleet.geofences where active order by geofence_id"#
    )
    .fetch_all(db)
    .await?;
    let mut fences = Vec::new();
    for r in rows {
        let polygon = r.polygon.map(|p| p.0);
        let stored =
            StoredShape::from_columns(&r.kind, r.center_lat, r.center_lon, r.radius_m, polygon);
        match stored.as_ref().and_then(StoredShape::to_shape) {
            Some(shape) => fences.push(Geofence { id: r.geofence_id, name: r.name, shape }),
            None => {
                tracing::warn!(geofence = r.geofence_id, name = %r.name, "geofence shape unusable; ignored")
            }
        }
    }
    Ok(Geofences::new(fences))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_polygon_ring_round_trips_through_its_json_column() {
        let ring = vec![[36.8, -1.3], [36.9, -1.3], [36.9, -1.4], [36.8, -1.3]];
        let shape = StoredShape::Polygon(ring.clone());
        let (_, _, _, json) = shape.columns();
        let back = StoredShape::from_columns("polygon", None, None, None, json);
        assert_eq!(back, Some(StoredShape::Polygon(ring)));
        let fence = back.and_then(|s| s.to_shape()).expect("usable");
        assert!(fence.contains(&LatLon::new(-1.35, 36.85).expect("point")));
        // [lon, lat]: a latitude of 200 is no place
        let bad = StoredShape::Polygon(vec![[0.0, 200.0], [1.0, 1.0], [2.0, 0.0]]);
        assert_eq!(bad.to_shape(), None);
        assert_eq!(
            StoredShape::from_columns("polygon", None, None, None, Some(serde_json::json!("x"))),
            None
        );
    }
}
