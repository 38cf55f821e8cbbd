//! Geofences through the data layer: what is stored comes back as saved, every change marks
//! the devices for a trip rebuild, and the trip builder gets only the usable active areas.

use fleet_core::LatLon;
use fleet_db::geofences::{self, GeofenceInput, StoredShape};
use fleet_testkit::TestDb;

fn at(lat: f64, lon: f64) -> LatLon {
    LatLon::new(lat, lon).expect("point")
}

async fn marked(db: &TestDb) -> i64 {
    sqlx::query_scalar("select count(*) from fleet.analytics_backlog")
        .fetch_one(&db.pool)
        .await
        .expect("backlog")
}

#[tokio::test]
async fn stored_shapes_round_trip_and_only_usable_active_ones_reach_the_builder() {
    let db = TestDb::migrated().await;
    sqlx::query("insert into fleet.devices (imei) values ('359339075012345')")
        .execute(&db.pool)
        .await
        .expect("device");
    let mut conn = db.pool.acquire().await.expect("connection");
    // a closed ring is kept as given, closing vertex included
    let ring = vec![[36.8, -1.3], [36.9, -1.3], [36.9, -1.4], [36.8, -1.3]];
    let depot = GeofenceInput {
        name: "Depot".into(),
        shape: StoredShape::Polygon(ring.clone()),
        speed_limit_kmh: Some(30.0),
        active: true,
    };
    let stored = geofences::insert(&mut conn, &depot).await.expect("insert");
    assert_eq!(
        (stored.shape.clone(), stored.speed_limit_kmh),
        (StoredShape::Polygon(ring), Some(30.0))
    );
    assert_eq!(marked(&db).await, 1, "a new geofence marks every device");
    let yard = GeofenceInput {
        name: "Yard".into(),
        shape: StoredShape::Circle { lat: -1.0, lon: 36.0, radius_m: 200.0 },
        speed_limit_kmh: None,
        active: false,
    };
    let yard = geofences::insert(&mut conn, &yard).await.expect("insert");
    let again = geofences::get(&mut conn, yard.geofence_id, false).await.expect("get");
    assert_eq!(
        again.map(|g| g.shape),
        Some(StoredShape::Circle { lat: -1.0, lon: 36.0, radius_m: 200.0 })
    );
    // the table's checks do not look inside the ring: a latitude of 200 gets stored
    sqlx::query(
        "insert into fleet.geofences (name, kind, polygon)
         values ('Nowhere', 'polygon', '[[0, 200], [1, 1], [2, 0]]')",
    )
    .execute(&db.pool)
    .await
    .expect("unusable ring");
    let names: Vec<String> =
        geofences::list(&mut conn).await.expect("list").into_iter().map(|g| g.name).collect();
    assert_eq!(names, ["Depot", "Nowhere", "Yard"]);

    let fences = geofences::active(&mut conn).await.expect("active");
    assert_eq!(fences.name_at(&at(-1.35, 36.85)), Some("Depot"));
    assert_eq!(fences.name_at(&at(-1.0, 36.0)), None, "inactive");
    assert_eq!(fences.ids_at(&at(1.0, 1.0)).len(), 0, "the unusable ring is skipped");

    let renamed = GeofenceInput { name: "Main depot".into(), ..depot };
    let updated = geofences::update(&mut conn, stored.geofence_id, &renamed).await.expect("update");
    assert_eq!(updated.map(|g| g.name).as_deref(), Some("Main depot"));
    assert_eq!(geofences::update(&mut conn, -1, &renamed).await.expect("update"), None);
    assert!(geofences::delete(&mut conn, yard.geofence_id).await.expect("delete"));
    assert!(!geofences::delete(&mut conn, yard.geofence_id).await.expect("delete again"));
}
