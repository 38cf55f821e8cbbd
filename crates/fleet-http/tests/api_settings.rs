//! Analytics settings over real HTTP: the global row and overrides, validation naming the
//! field (overrides merged with the global row), admins only, and the rebuild marks the
//! analytics_config trigger makes.

mod support;

use fleet_core::AnalyticsSettings;
use fleet_http::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};
use support::{kind, App, As};

async fn seeded() -> (App, As, As) {
    let app = App::start().await;
    sqlx::query(
        "insert into fleet.devices (imei, name, city, cost_centre) values
             ('868120303990001', 'Van 1', 'Nairobi', 'Logistics'),
             ('868120303990002', 'Van 2', 'Mombasa', 'Sales')",
    )
    .execute(&app.db.pool)
    .await
    .expect("devices");
    app.user("vic", Role::Viewer).await;
    app.user("ada", Role::Admin).await;
    let viewer = As::Session(app.login("vic").await);
    let admin = As::Session(app.login("ada").await);
    (app, viewer, admin)
}

fn defaults() -> Value {
    serde_json::to_value(AnalyticsSettings::default()).expect("json")
}

fn field(problem: &Value) -> &str {
    problem["errors"][0]["field"].as_str().unwrap_or_default()
}

async fn marked(app: &App) -> Vec<String> {
    sqlx::query_scalar(
        "select d.name from fleet.analytics_backlog b join fleet.devices d using (device_id)
         order by d.name",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("backlog")
}

async fn clear_marks(app: &App) {
    sqlx::query("delete from fleet.analytics_backlog").execute(&app.db.pool).await.expect("clear");
}

#[tokio::test]
async fn everyone_reads_the_global_row_and_the_overrides() {
    let (app, viewer, _) = seeded().await;
    let (status, body) = app.get("/settings/analytics", &viewer).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["overrides"], json!([]));
    let global = &body["global"];
    assert_eq!((global["scope"].as_str(), global["key"].as_str()), (Some("global"), Some("")));
    for (k, v) in defaults().as_object().expect("object") {
        assert_eq!(&global[k], v, "{k}");
    }
}

#[tokio::test]
async fn admins_replace_the_global_settings_validated_by_fleet_core() {
    let (app, viewer, admin) = seeded().await;
    let path = "/settings/analytics/global";
    let (status, body) = app.send(Method::PUT, path, &viewer, defaults()).await;
    assert_eq!((status, kind(&body)), (403, "forbidden"));

    let mut bad = defaults();
    bad["long_gap_s"] = json!(300); // not longer than work_stop_min_s (300)
    let (status, body) = app.send(Method::PUT, path, &admin, bad).await;
    assert_eq!((status, field(&body)), (422, "long_gap_s"), "{body}");
    for (key, value, want) in [
        ("timezone", json!("Mars/Olympus"), "timezone"),
        ("currency", json!("kes"), "currency"),
        ("shift_end", json!("07:00:00"), "shift_end"),
        ("shift_weekdays", json!([0, 1]), "shift_weekdays"),
        ("speed_limit_kmh", json!("fast"), "speed_limit_kmh"),
        ("shift_start", json!("8 o'clock"), "shift_start"),
    ] {
        let mut bad = defaults();
        bad[key] = value;
        let (status, body) = app.send(Method::PUT, path, &admin, bad).await;
        assert_eq!((status, field(&body)), (422, want), "{key}: {body}");
    }
    let mut incomplete = defaults();
    incomplete.as_object_mut().expect("object").remove("idle_min_s");
    let (status, body) = app.send(Method::PUT, path, &admin, incomplete).await;
    assert_eq!((status, field(&body)), (422, "idle_min_s"), "{body}");

    clear_marks(&app).await;
    let mut good = defaults();
    good["speed_limit_kmh"] = json!(70.0);
    good["shift_start"] = json!("07:30");
    let (status, row) = app.send(Method::PUT, path, &admin, good).await;
    assert_eq!(status, 200, "{row}");
    assert_eq!(row["speed_limit_kmh"], 70.0);
    assert_eq!(row["shift_start"], "07:30:00");
    assert!(row["updated_by"].is_number());
    assert_eq!(marked(&app).await, ["Van 1", "Van 2"], "a global change applies to every device");
    let (_, body) = app.get("/settings/analytics", &viewer).await;
    assert_eq!(body["global"]["speed_limit_kmh"], 70.0);
}

#[tokio::test]
async fn admins_set_and_remove_overrides_validated_merged_with_the_global_row() {
    let (app, viewer, admin) = seeded().await;
    clear_marks(&app).await;
    let (status, body) = app
        .send(
            Method::PUT,
            "/settings/analytics/city/Nairobi",
            &viewer,
            json!({"speed_limit_kmh": 60}),
        )
        .await;
    assert_eq!(status, 403, "{body}");

    for (path, body, want) in [
        // the global work_stop_min_s is 300
        ("/settings/analytics/city/Nairobi", json!({"long_gap_s": 200}), "long_gap_s"),
        ("/settings/analytics/city/Nairobi", json!({"work_stop_min_s": 4000}), "long_gap_s"),
        ("/settings/analytics/city/Nairobi", json!({}), "body"),
        ("/settings/analytics/city/Nairobi", json!({"speed_limit_kmh": 500}), "speed_limit_kmh"),
        ("/settings/analytics/city/Nairobi", json!({"speed": 50}), "speed"),
        ("/settings/analytics/region/Coast", json!({"speed_limit_kmh": 60}), "scope"),
        ("/settings/analytics/device/123", json!({"speed_limit_kmh": 60}), "key"),
        ("/settings/analytics/city/%20Nairobi", json!({"speed_limit_kmh": 60}), "key"),
    ] {
        let (status, problem) = app.send(Method::PUT, path, &admin, body.clone()).await;
        assert_eq!((status, field(&problem)), (422, want), "{path} {body}: {problem}");
    }
    assert!(marked(&app).await.is_empty(), "nothing stored, nothing marked");

    let (status, row) = app
        .send(
            Method::PUT,
            "/settings/analytics/city/Nairobi",
            &admin,
            json!({"speed_limit_kmh": 60}),
        )
        .await;
    assert_eq!(status, 200, "{row}");
    assert_eq!((row["scope"].as_str(), row["key"].as_str()), (Some("city"), Some("Nairobi")));
    assert_eq!(row["speed_limit_kmh"], 60.0);
    assert!(row["long_gap_s"].is_null(), "inherited");
    assert_eq!(marked(&app).await, ["Van 1"], "only the city's devices");

    let (status, row) = app
        .send(
            Method::PUT,
            "/settings/analytics/device/868120303990002",
            &admin,
            json!({"work_stop_min_s": 600, "long_gap_s": 3600, "currency": "USD"}),
        )
        .await;
    assert_eq!(status, 200, "{row}");
    // replacing an override drops the values it no longer sets
    let (status, row) = app
        .send(Method::PUT, "/settings/analytics/city/Nairobi", &admin, json!({"idle_min_s": 120}))
        .await;
    assert_eq!(status, 200, "{row}");
    assert!(row["speed_limit_kmh"].is_null(), "{row}");

    let (_, body) = app.get("/settings/analytics", &viewer).await;
    let scopes: Vec<(&str, &str)> = body["overrides"]
        .as_array()
        .expect("overrides")
        .iter()
        .map(|o| (o["scope"].as_str().unwrap_or_default(), o["key"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(scopes, [("city", "Nairobi"), ("device", "868120303990002")]);
    let applied: (i32, String) = sqlx::query_as(
        "select long_gap_s, currency from reporting.v_device_analytics_settings
         where imei = '868120303990002'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("settings");
    assert_eq!(applied, (3600, "USD".to_owned()));

    clear_marks(&app).await;
    let (status, _) = app.bare(Method::DELETE, "/settings/analytics/city/Nairobi", &admin).await;
    assert_eq!(status, 204);
    assert_eq!(marked(&app).await, ["Van 1"]);
    let (status, body) = app.bare(Method::DELETE, "/settings/analytics/city/Nairobi", &admin).await;
    assert_eq!((status, kind(&body)), (404, "not-found"));
    let (status, body) = app.bare(Method::DELETE, "/settings/analytics/global/x", &admin).await;
    assert_eq!((status, field(&body)), (422, "scope"));
    let (status, _) = app.bare(Method::DELETE, "/settings/analytics/city/Nairobi", &viewer).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_change_that_breaks_a_devices_combined_settings_is_refused() {
    let (app, _, admin) = seeded().await;
    // Van 1 is in Nairobi: its trips end after 1700 s stopped, gaps after 1800 s (global)
    let (status, row) = app
        .send(
            Method::PUT,
            "/settings/analytics/city/Nairobi",
            &admin,
            json!({"work_stop_min_s": 1700}),
        )
        .await;
    assert_eq!(status, 200, "{row}");
    // valid over the global row alone, not with the city's value
    let (status, body) = app
        .send(
            Method::PUT,
            "/settings/analytics/device/868120303990001",
            &admin,
            json!({"long_gap_s": 1600}),
        )
        .await;
    assert_eq!((status, field(&body)), (422, "long_gap_s"), "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("868120303990001"), "{message}");
    let mut global = defaults();
    global["long_gap_s"] = json!(1500);
    let (status, body) = app.send(Method::PUT, "/settings/analytics/global", &admin, global).await;
    assert_eq!((status, field(&body)), (422, "long_gap_s"), "{body}");
    // nothing was stored
    let stored: (i64, i32) = sqlx::query_as(
        "select (select count(*) from fleet.analytics_config where scope = 'device'),
                (select long_gap_s from fleet.analytics_config where scope = 'global')",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("config");
    assert_eq!(stored, (0, 1800));
}
