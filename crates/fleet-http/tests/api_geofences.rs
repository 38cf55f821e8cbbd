//! Geofences over real HTTP: create, read, edit and delete circles and polygons, validation
//! naming the field, unique names, admins only, and the trip rebuild every change asks for.

mod support;

use fleet_http::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};
use support::{kind, App, As};

async fn seeded() -> (App, As, As) {
    let app = App::start().await;
    app.device("868120303980001", "Van 1").await;
    app.device("868120303980002", "Van 2").await;
    app.user("vic", Role::Viewer).await;
    app.user("ada", Role::Admin).await;
    let viewer = As::Session(app.login("vic").await);
    let admin = As::Session(app.login("ada").await);
    (app, viewer, admin)
}

fn depot() -> Value {
    json!({"name": "Depot", "kind": "circle", "center": {"lat": -1.3, "lon": 36.8}, "radius_m": 250})
}

fn yard() -> Value {
    json!({"name": "Yard", "kind": "polygon",
           "polygon": [[36.80, -1.30], [36.81, -1.30], [36.81, -1.31], [36.80, -1.31]],
           "speed_limit_kmh": 20})
}

/// Devices marked for a full trip rebuild.
async fn marked(app: &App) -> i64 {
    sqlx::query_scalar(
        "select count(*) from fleet.analytics_backlog where positions_from = '-infinity'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("backlog")
}

async fn clear_marks(app: &App) {
    sqlx::query("delete from fleet.analytics_backlog").execute(&app.db.pool).await.expect("clear");
}

#[tokio::test]
async fn admins_create_read_edit_and_delete_geofences() {
    let (app, viewer, admin) = seeded().await;
    let (status, list) = app.get("/geofences", &viewer).await;
    assert_eq!((status, list["items"].clone()), (200, json!([])), "empty at first");

    clear_marks(&app).await;
    let (status, circle) = app.send(Method::POST, "/geofences", &admin, depot()).await;
    assert_eq!(status, 201, "{circle}");
    assert_eq!(circle["kind"], "circle");
    assert_eq!(circle["center"], json!({"lat": -1.3, "lon": 36.8}));
    assert_eq!(circle["radius_m"], 250.0);
    assert!(circle["polygon"].is_null() && circle["speed_limit_kmh"].is_null());
    assert_eq!(circle["active"], true);
    assert_eq!(marked(&app).await, 2, "every device is marked for a trip rebuild");

    let (status, poly) = app.send(Method::POST, "/geofences", &admin, yard()).await;
    assert_eq!(status, 201, "{poly}");
    assert_eq!(poly["polygon"][1], json!([36.81, -1.30]));
    assert_eq!(poly["speed_limit_kmh"], 20.0);
    assert!(poly["center"].is_null() && poly["radius_m"].is_null());

    let (status, list) = app.get("/geofences", &viewer).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|g| g["name"].as_str())
        .collect();
    assert_eq!(names, ["Depot", "Yard"]);
    let id = circle["geofence_id"].as_i64().expect("id");
    let (status, got) = app.get(&format!("/geofences/{id}"), &viewer).await;
    assert_eq!((status, &got), (200, &circle));

    let (status, body) = app.send(Method::POST, "/geofences", &admin, depot()).await;
    assert_eq!((status, kind(&body)), (409, "conflict"), "{body}");

    // edits: a circle becomes a polygon, a speed limit is set and removed
    clear_marks(&app).await;
    let (status, changed) = app
        .send(
            Method::PATCH,
            &format!("/geofences/{id}"),
            &admin,
            json!({"kind": "polygon", "polygon": [[36.0, -1.0], [36.1, -1.0], [36.1, -1.1]],
                   "speed_limit_kmh": 30}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["kind"], "polygon");
    assert!(changed["center"].is_null() && changed["radius_m"].is_null(), "{changed}");
    assert_eq!(changed["speed_limit_kmh"], 30.0);
    assert_eq!(changed["name"], "Depot");
    assert_eq!(marked(&app).await, 2);
    let (status, changed) = app
        .send(
            Method::PATCH,
            &format!("/geofences/{id}"),
            &admin,
            json!({"speed_limit_kmh": null, "active": false}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert!(changed["speed_limit_kmh"].is_null());
    assert_eq!(changed["active"], false);
    assert_eq!(changed["polygon"].as_array().map(Vec::len), Some(3), "shape kept");

    let (status, body) =
        app.send(Method::PATCH, &format!("/geofences/{id}"), &admin, json!({"name": "Yard"})).await;
    assert_eq!((status, kind(&body)), (409, "conflict"), "{body}");
    let (status, body) =
        app.send(Method::PATCH, "/geofences/999999", &admin, json!({"name": "X"})).await;
    assert_eq!((status, kind(&body)), (404, "not-found"), "{body}");
    let (status, body) = app
        .send(Method::PATCH, &format!("/geofences/{id}"), &admin, json!({"name": "Depot\u{202E}"}))
        .await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("name")), "{body}");
    // a kind change without the new shape is invalid
    let (status, body) = app
        .send(Method::PATCH, &format!("/geofences/{id}"), &admin, json!({"kind": "circle"}))
        .await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["center", "radius_m"]);

    clear_marks(&app).await;
    let (status, _) = app.bare(Method::DELETE, &format!("/geofences/{id}"), &admin).await;
    assert_eq!(status, 204);
    assert_eq!(marked(&app).await, 2);
    let (status, body) = app.get(&format!("/geofences/{id}"), &viewer).await;
    assert_eq!((status, kind(&body)), (404, "not-found"));
    let (status, _) = app.bare(Method::DELETE, &format!("/geofences/{id}"), &admin).await;
    assert_eq!(status, 404);

    // viewers read only
    let (status, _) = app.send(Method::POST, "/geofences", &viewer, depot()).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn invalid_geofences_are_422_naming_the_field() {
    let (app, _, admin) = seeded().await;
    let cases = [
        (json!({"name": "A", "kind": "square"}), vec!["kind"]),
        (json!({"kind": "circle", "center": {"lat": 1, "lon": 1}, "radius_m": 5}), vec!["name"]),
        (
            json!({"name": "A", "kind": "circle", "center": {"lat": -1.3, "lon": 36.8}}),
            vec!["radius_m"],
        ),
        (
            json!({"name": "A", "kind": "circle", "center": {"lat": -1.3, "lon": 36.8}, "radius_m": 0}),
            vec!["radius_m"],
        ),
        (
            json!({"name": "A", "kind": "circle", "center": {"lat": 95, "lon": 36.8}, "radius_m": 5}),
            vec!["center"],
        ),
        (json!({"name": "A", "kind": "circle", "radius_m": 5}), vec!["center"]),
        (
            json!({"name": "", "kind": "circle", "center": {"lat": -1.3, "lon": 36.8}, "radius_m": 5, "speed_limit_kmh": -3}),
            vec!["name", "speed_limit_kmh"],
        ),
        (json!({"name": "A", "kind": "polygon"}), vec!["polygon"]),
        (
            json!({"name": "A", "kind": "polygon", "polygon": [[36.8, -1.3], [36.9, -1.3]]}),
            vec!["polygon"],
        ),
        // three vertices, two of them the same: not three distinct
        (
            json!({"name": "A", "kind": "polygon", "polygon": [[36.8, -1.3], [36.9, -1.3], [36.9, -1.3]]}),
            vec!["polygon"],
        ),
        (
            json!({"name": "A", "kind": "polygon", "polygon": [[36.8, -1.3], [36.9, -1.3], [36.8, -1.3]]}),
            vec!["polygon"],
        ),
        (
            json!({"name": "A", "kind": "polygon", "polygon": [[36.8, -1.3], [190, -1.3], [36.9, -1.4]]}),
            vec!["polygon[1]"],
        ),
        (
            json!({"name": "A", "kind": "polygon", "polygon": [[36.8, -1.3], [36.9], [36.9, -1.4]]}),
            vec!["polygon[1]"],
        ),
        (
            json!({"name": "A", "kind": "polygon", "radius_m": 5, "polygon": [[36.8, -1.3], [36.9, -1.3], [36.9, -1.4]]}),
            vec!["radius_m"],
        ),
        (
            json!({"name": "A", "kind": "circle", "center": {"lat": -1.3, "lon": 36.8}, "radius_m": 5, "colour": "red"}),
            vec!["colour"],
        ),
    ];
    for (body, want) in cases {
        let (status, problem) = app.send(Method::POST, "/geofences", &admin, body.clone()).await;
        assert_eq!((status, kind(&problem)), (422, "validation"), "{body}: {problem}");
        let fields: Vec<&str> = problem["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        assert_eq!(fields, want, "{body}: {problem}");
    }
    let (_, list) = app.get("/geofences", &admin).await;
    assert_eq!(list["items"], json!([]), "nothing stored");
}
