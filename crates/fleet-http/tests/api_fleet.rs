//! The device registry and the live fleet over real HTTP with seeded data: search, filters and
//! keyset pages of devices, edits and their validation, and the GeoJSON live view with its
//! statuses and summary.

mod support;

use fleet_http::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};
use support::{kind, App, As};

/// (imei, name, plate, driver, cost centre, city, active)
const DEVICES: [(&str, &str, &str, &str, &str, &str, bool); 8] = [
    ("868120303960001", "Van 1", "KDA 123X", "Amina Otieno", "Logistics", "Nairobi", true),
    ("868120303960002", "Van 2", "KDB 456Y", "Brian Mwangi", "Logistics", "Mombasa", true),
    ("868120303960003", "Pickup 3", "KCC 789Z", "Carol Wanjiku", "Sales", "Nairobi", true),
    ("868120303960004", "Truck 4", "KBD 100A", "David Kamau", "Sales", "Kisumu", true),
    ("868120303960005", "Truck 5", "KBE 200B", "Esther Achieng", "Field", "Nairobi", true),
    ("868120303960006", "Bike 6", "KMEA 1C", "Felix Njoroge", "Field", "Mombasa", true),
    ("868120303960007", "50%_off van", "KDC 300D", "Grace Mutua", "Logistics", "Nairobi", true),
    ("868120303960008", "Retired 8", "KAA 001A", "Old Driver", "Logistics", "Nairobi", false),
];

async fn seeded() -> (App, Vec<i32>, As, As) {
    let app = App::start().await;
    let mut ids = Vec::new();
    for (imei, name, plate, driver, cc, city, active) in DEVICES {
        let id: i32 = sqlx::query_scalar(
            "insert into fleet.devices (imei, name, plate, driver_name, cost_centre, city, active)
             values ($1, $2, $3, $4, $5, $6, $7) returning device_id",
        )
        .bind(imei)
        .bind(name)
        .bind(plate)
        .bind(driver)
        .bind(cc)
        .bind(city)
        .bind(active)
        .fetch_one(&app.db.pool)
        .await
        .expect("device");
        ids.push(id);
    }
    app.user("vic", Role::Viewer).await;
    app.user("olga", Role::Operator).await;
    let viewer = As::Session(app.login("vic").await);
    let operator = As::Session(app.login("olga").await);
    (app, ids, viewer, operator)
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|d| d["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn devices_page_by_id_with_a_cursor_until_the_last_page() {
    let (app, ids, viewer, _) = seeded().await;
    let (status, all) = app.get("/devices", &viewer).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(names(&all).len(), 7, "active devices only");
    assert_eq!(all["next_after"], Value::Null);

    let (_, p1) = app.get("/devices?limit=3", &viewer).await;
    assert_eq!(names(&p1), ["Van 1", "Van 2", "Pickup 3"]);
    assert_eq!(p1["next_after"], ids[2]);
    let (_, p2) = app.get(&format!("/devices?limit=3&after={}", ids[2]), &viewer).await;
    assert_eq!(names(&p2), ["Truck 4", "Truck 5", "Bike 6"]);
    let (_, p3) = app.get(&format!("/devices?limit=3&after={}", p2["next_after"]), &viewer).await;
    assert_eq!(names(&p3), ["50%_off van"]);
    assert_eq!(p3["next_after"], Value::Null, "the last page says so");

    let (_, exact) = app.get("/devices?limit=7", &viewer).await;
    assert_eq!((names(&exact).len(), &exact["next_after"]), (7, &Value::Null), "a full last page");
    let (_, empty) = app.get(&format!("/devices?after={}", ids[6]), &viewer).await;
    assert_eq!((names(&empty).len(), &empty["next_after"]), (0, &Value::Null), "past the end");
    let (_, retired) = app.get("/devices?active=false", &viewer).await;
    assert_eq!(names(&retired), ["Retired 8"]);
}

#[tokio::test]
async fn devices_search_name_plate_imei_and_driver_and_filter_by_cost_centre_and_city() {
    let (app, _, viewer, _) = seeded().await;
    let search = |q: &str| {
        let app = &app;
        let viewer = &viewer;
        let q = q.to_owned();
        async move {
            let url = format!("/devices?q={}", q.replace('%', "%25").replace(' ', "%20"));
            let (status, page) = app.get(&url, viewer).await;
            assert_eq!(status, 200, "{q}: {page}");
            names(&page)
        }
    };
    assert_eq!(search("truck").await, ["Truck 4", "Truck 5"], "name, any case");
    assert_eq!(search("kda123").await, ["Van 1"], "plate, spaces ignored");
    assert_eq!(search("960006").await, ["Bike 6"], "imei");
    assert_eq!(search("wanjiku").await, ["Pickup 3"], "driver");
    assert_eq!(search("50%").await, ["50%_off van"], "% is literal");
    assert_eq!(search("_").await, ["50%_off van"], "_ is literal");
    assert!(search("Retired").await.is_empty(), "inactive devices are not listed");
    assert_eq!(search("  ").await.len(), 7, "blank q is no search");

    let (_, page) = app.get("/devices?cost_centre=logistics", &viewer).await;
    assert_eq!(names(&page), ["Van 1", "Van 2", "50%_off van"]);
    let (_, page) = app.get("/devices?cost_centre=Logistics&city=NAIROBI", &viewer).await;
    assert_eq!(names(&page), ["Van 1", "50%_off van"]);
    let (_, page) = app.get("/devices?city=Mombasa&q=bike", &viewer).await;
    assert_eq!(names(&page), ["Bike 6"]);
    let (_, page) = app.get("/devices?city=Atlantis", &viewer).await;
    assert!(names(&page).is_empty());
}

#[tokio::test]
async fn bad_device_list_parameters_are_422_naming_the_parameter() {
    let (app, _, viewer, _) = seeded().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("after=x", "after"),
        ("active=maybe", "active"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = app.get(&format!("/devices?{query}"), &viewer).await;
        assert_eq!((status, kind(&body)), (422, "validation"), "{query}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    let long = "x".repeat(101);
    let (status, body) = app.get(&format!("/devices?q={long}"), &viewer).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("q")));
    // found by the API fuzzer: PostgreSQL cannot store NUL, which must not be a 500
    for query in ["city=Nairobi%00", "q=van%00", "cost_centre=%00"] {
        let (status, body) = app.get(&format!("/devices?{query}"), &viewer).await;
        assert_eq!((status, kind(&body)), (400, "bad-request"), "{query}: {body}");
    }
}

#[tokio::test]
async fn a_device_is_read_by_id() {
    let (app, ids, viewer, _) = seeded().await;
    let (status, d) = app.get(&format!("/devices/{}", ids[0]), &viewer).await;
    assert_eq!(status, 200);
    assert_eq!(d["imei"], "868120303960001");
    assert_eq!(
        (d["plate"].as_str(), d["driver_name"].as_str()),
        (Some("KDA 123X"), Some("Amina Otieno"))
    );
    assert_eq!(d["active"], true);
    let (status, body) = app.get("/devices/424242", &viewer).await;
    assert_eq!((status, kind(&body)), (404, "not-found"));
    let (status, body) = app.get("/devices/van-1", &viewer).await;
    assert_eq!((status, kind(&body)), (400, "bad-request"));
}

#[tokio::test]
async fn operators_edit_device_fields_and_null_clears_them() {
    let (app, ids, _, operator) = seeded().await;
    let path = format!("/devices/{}", ids[1]);
    let (status, d) = app
        .send(
            Method::PATCH,
            &path,
            &operator,
            json!({
                "name": "  Van 2B ", "plate": "KDB 457Y", "driver_name": "Zawadi",
                "driver_phone": "+254 712 345678", "cost_centre": "Sales", "city": "Nakuru"
            }),
        )
        .await;
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["name"], "Van 2B", "trimmed");
    assert_eq!((d["cost_centre"].as_str(), d["city"].as_str()), (Some("Sales"), Some("Nakuru")));
    let stored: (String, Option<String>) =
        sqlx::query_as("select name, driver_phone from fleet.devices where device_id = $1")
            .bind(ids[1])
            .fetch_one(&app.db.pool)
            .await
            .expect("row");
    assert_eq!(stored, ("Van 2B".to_owned(), Some("+254 712 345678".to_owned())));

    let (status, d) =
        app.send(Method::PATCH, &path, &operator, json!({"driver_phone": null, "city": ""})).await;
    assert_eq!(status, 200, "{d}");
    assert_eq!((&d["driver_phone"], &d["city"]), (&Value::Null, &Value::Null));
    assert_eq!(d["driver_name"], "Zawadi", "absent fields stay");
    let (status, same) = app.send(Method::PATCH, &path, &operator, json!({})).await;
    assert_eq!((status, &same["name"]), (200, &d["name"]));
    // the vendor-listed fields the operator set are remembered, so the device sync keeps them
    let edited: Vec<String> =
        sqlx::query_scalar("select edited_fields from fleet.devices where device_id = $1")
            .bind(ids[1])
            .fetch_one(&app.db.pool)
            .await
            .expect("edited fields");
    assert_eq!(edited, ["driver_name", "driver_phone", "name", "plate"]);
    let other: Vec<String> =
        sqlx::query_scalar("select edited_fields from fleet.devices where device_id = $1")
            .bind(ids[0])
            .fetch_one(&app.db.pool)
            .await
            .expect("edited fields");
    assert!(other.is_empty());

    // a new cost centre re-derives the device's trips (its analytics overrides may differ)
    let marked: bool = sqlx::query_scalar(
        "select exists (select from fleet.analytics_backlog where device_id = $1)",
    )
    .bind(ids[1])
    .fetch_one(&app.db.pool)
    .await
    .expect("backlog");
    assert!(marked);
}

#[tokio::test]
async fn invalid_device_edits_are_422_with_every_field_named() {
    let (app, ids, _, operator) = seeded().await;
    let path = format!("/devices/{}", ids[0]);
    let (status, body) = app
        .send(
            Method::PATCH,
            &path,
            &operator,
            json!({
                "name": "", "plate": "KDA/123", "driver_name": "x".repeat(101),
                "driver_phone": "call me", "cost_centre": "c".repeat(65), "city": "Nai\nrobi"
            }),
        )
        .await;
    assert_eq!((status, kind(&body)), (422, "validation"), "{body}");
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["name", "plate", "driver_name", "driver_phone", "cost_centre", "city"]);
    assert_eq!(body["detail"], "6 fields are invalid");
    for (patch, field) in [
        (json!({"name": null}), "name"),
        (json!({"plate": 42}), "plate"),
        (json!({"driver": "Ann"}), "driver"),
        (json!({"imei": "868120303960099"}), "imei"),
    ] {
        let (status, body) = app.send(Method::PATCH, &path, &operator, patch.clone()).await;
        assert_eq!(
            (status, body["errors"][0]["field"].as_str()),
            (422, Some(field)),
            "{patch}: {body}"
        );
    }
    let (_, d) = app.get(&path, &operator).await;
    assert_eq!(
        (d["name"].as_str(), d["plate"].as_str()),
        (Some("Van 1"), Some("KDA 123X")),
        "unchanged"
    );
    let (status, _) =
        app.send(Method::PATCH, "/devices/424242", &operator, json!({"name": "x"})).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn names_with_bidi_overrides_or_zero_width_characters_are_422_naming_the_field() {
    let (app, ids, _, operator) = seeded().await;
    let path = format!("/devices/{}", ids[0]);
    for (field, value) in [
        ("name", "Van \u{202E}1 naV"),
        ("plate", "KDA\u{202E}X321"),
        ("driver_name", "Amina\u{200B} Otieno"),
        ("cost_centre", "Sales\u{2066}"),
        ("city", "Nai\u{FEFF}robi"),
    ] {
        let (status, body) =
            app.send(Method::PATCH, &path, &operator, json!({ field: value })).await;
        assert_eq!((status, kind(&body)), (422, "validation"), "{field}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(message.contains("invisible formatting"), "{message}");
    }
    let (_, d) = app.get(&path, &operator).await;
    assert_eq!((d["name"].as_str(), d["plate"].as_str()), (Some("Van 1"), Some("KDA 123X")));
    // letters of every script are names
    let (status, d) =
        app.send(Method::PATCH, &path, &operator, json!({"name": "Фургон 1 — Ñairobi 東"})).await;
    assert_eq!((status, d["name"].as_str()), (200, Some("Фургон 1 — Ñairobi 東")), "{d}");
}

/// (device index, minutes since the fix, motion state, ignition, speed)
const FIXES: [(usize, i32, &str, Option<bool>, f32); 5] = [
    (0, 1, "moving", Some(true), 48.5),
    (1, 2, "idling", Some(true), 0.0),
    (2, 20, "parked", Some(false), 0.0),
    // silent for two hours: offline whatever its last motion state
    (3, 120, "moving", None, 30.0),
    // inactive device: never on the live map
    (7, 1, "moving", Some(true), 60.0),
];

async fn seeded_live() -> (App, Vec<i32>, As) {
    let (app, ids, viewer, _) = seeded().await;
    for (i, minutes, state, ignition, speed) in FIXES {
        sqlx::query(
            "insert into fleet.device_latest (device_id, gps_time, received_at, lat, lon, speed_kmh,
                 course_deg, ignition, battery_pct, external_v, source, motion_state, state_since)
             values ($1, now() - make_interval(mins => $2), now() - make_interval(mins => $2),
                     -1.28 - $1 * 0.01, 36.82 + $1 * 0.01, $3, 90, $4, 87, 12.6, 'push', $5,
                     now() - make_interval(mins => $2 + 5))",
        )
        .bind(ids[i])
        .bind(minutes)
        .bind(speed)
        .bind(ignition)
        .bind(state)
        .execute(&app.db.pool)
        .await
        .expect("device_latest");
    }
    (app, ids, viewer)
}

async fn live(app: &App, query: &str, who: &As) -> Value {
    let resp =
        app.call(Method::GET, &format!("/fleet/live{query}"), who).send().await.expect("live");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/geo+json");
    resp.json().await.expect("json")
}

fn statuses(fc: &Value) -> Vec<(String, String)> {
    fc["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| {
            (
                f["properties"]["name"].as_str().expect("name").to_owned(),
                f["properties"]["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_live_fleet_is_geojson_with_statuses_and_a_summary() {
    let (app, ids, viewer) = seeded_live().await;
    let fc = live(&app, "", &viewer).await;
    assert_eq!(fc["type"], "FeatureCollection");
    assert_eq!(
        statuses(&fc),
        [("Van 1", "moving"), ("Van 2", "idling"), ("Pickup 3", "parked"), ("Truck 4", "offline")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    assert_eq!(
        fc["summary"],
        json!({"total": 4, "moving": 1, "idling": 1, "parked": 1, "offline": 1, "in_alarm": 0, "no_fix": 3})
    );
    let f = &fc["features"][0];
    assert_eq!((f["type"].as_str(), f["id"].as_i64()), (Some("Feature"), Some(ids[0] as i64)));
    assert_eq!(f["geometry"]["type"], "Point");
    let c = f["geometry"]["coordinates"].as_array().expect("coordinates");
    let (lon, lat) = (c[0].as_f64().expect("lon"), c[1].as_f64().expect("lat"));
    assert!(
        (lon - (36.82 + ids[0] as f64 * 0.01)).abs() < 1e-9
            && (lat + 1.28 + ids[0] as f64 * 0.01).abs() < 1e-9,
        "[lon, lat]: {c:?}"
    );
    let p = &f["properties"];
    assert_eq!(p["device_id"], ids[0]);
    assert_eq!(
        (p["imei"].as_str(), p["plate"].as_str(), p["driver_name"].as_str()),
        (Some("868120303960001"), Some("KDA 123X"), Some("Amina Otieno"))
    );
    assert_eq!(
        (p["cost_centre"].as_str(), p["city"].as_str()),
        (Some("Logistics"), Some("Nairobi"))
    );
    assert_eq!(
        (p["speed_kmh"].as_f64(), p["course_deg"].as_f64(), p["ignition"].as_bool()),
        (Some(48.5), Some(90.0), Some(true))
    );
    assert_eq!((p["battery_pct"].as_f64(), p["external_v"].as_f64()), (Some(87.0), Some(12.6)));
    assert_eq!(p["open_alarms"], 0);
    assert!(
        p["gps_time"].is_string() && p["state_since"].is_string() && p["received_at"].is_string()
    );
    let age = fc["features"][3]["properties"]["fix_age_s"].as_i64().expect("age");
    assert!((7200..7260).contains(&age), "{age}");
    assert!(fc["generated_at"].is_string());
}

#[tokio::test]
async fn live_filters_narrow_the_features_and_the_summary_ignores_only_the_status_filter() {
    let (app, _, viewer) = seeded_live().await;
    let fc = live(&app, "?status=offline", &viewer).await;
    assert_eq!(statuses(&fc), [("Truck 4".to_owned(), "offline".to_owned())]);
    assert_eq!(fc["summary"]["total"], 4, "the counters stay whole for the map's chips");
    let fc = live(&app, "?status=moving,idling", &viewer).await;
    assert_eq!(statuses(&fc).len(), 2);
    let fc = live(&app, "?ignition=false", &viewer).await;
    assert_eq!(statuses(&fc), [("Pickup 3".to_owned(), "parked".to_owned())]);
    assert_eq!(fc["summary"]["no_fix"], 0, "a vehicle without a fix has no ignition");
    let fc = live(&app, "?cost_centre=sales", &viewer).await;
    assert_eq!(statuses(&fc).len(), 2);
    assert_eq!(
        fc["summary"],
        json!({"total": 2, "moving": 0, "idling": 0, "parked": 1, "offline": 1, "in_alarm": 0, "no_fix": 0})
    );
    let fc = live(&app, "?city=Nairobi&cost_centre=Logistics", &viewer).await;
    assert_eq!(statuses(&fc), [("Van 1".to_owned(), "moving".to_owned())]);
    assert_eq!(fc["summary"]["no_fix"], 1, "50%_off van has no fix");
    let (status, body) = app.get("/fleet/live?status=asleep", &viewer).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("status")), "{body}");
    let (status, body) = app.get("/fleet/live?ignition=perhaps", &viewer).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("ignition")), "{body}");
}

#[tokio::test]
async fn the_offline_threshold_is_the_analytics_setting() {
    let (app, _, viewer) = seeded_live().await;
    sqlx::query("update fleet.analytics_config set offline_after_s = 600 where scope = 'global'")
        .execute(&app.db.pool)
        .await
        .expect("setting");
    let fc = live(&app, "", &viewer).await;
    assert_eq!(fc["summary"]["offline"], 2, "the 20-minute-old fix is offline now");
}

#[tokio::test]
async fn the_live_fleet_never_reads_positions() {
    let (app, _, viewer) = seeded_live().await;
    // with the positions table out of the way the live view still answers
    sqlx::query("alter table fleet.positions rename to positions_elsewhere")
        .execute(&app.db.pool)
        .await
        .expect("rename");
    let fc = live(&app, "", &viewer).await;
    assert_eq!(fc["summary"]["total"], 4);
}

#[tokio::test]
async fn vehicles_with_unacknowledged_alarms_of_the_last_day_are_in_alarm() {
    let (app, ids, viewer) = seeded_live().await;
    // Van 1: two open alarms and an acknowledged one; Van 2: an open alarm two days old
    for (i, age_h, acked) in [(0, 1, false), (0, 3, false), (0, 2, true), (1, 48, false)] {
        sqlx::query(
            "insert into fleet.alarms (device_id, alarm_time, alarm_type, alarm_name, alarm_class,
                 source, acknowledged_at, ack_note)
             values ($1, now() - make_interval(hours => $2), '1', 'SOS', 'safety', 'push',
                     case when $3 then now() end, case when $3 then 'seen' end)",
        )
        .bind(ids[i])
        .bind(age_h)
        .bind(acked)
        .execute(&app.db.pool)
        .await
        .expect("alarm");
    }
    let fc = live(&app, "", &viewer).await;
    let open: Vec<i64> = fc["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| f["properties"]["open_alarms"].as_i64().expect("open_alarms"))
        .collect();
    assert_eq!(open, [2, 0, 0, 0]);
    assert_eq!(fc["summary"]["in_alarm"], 1);
    let fc = live(&app, "?cost_centre=sales", &viewer).await;
    assert_eq!(fc["summary"]["in_alarm"], 0);
}

/// Sends GET /fleet/live with `If-None-Match: tag` (if any); returns (status, ETag, body).
async fn live_if(app: &App, who: &As, tag: Option<&str>) -> (u16, String, String) {
    let mut req = app.call(Method::GET, "/fleet/live", who);
    if let Some(tag) = tag {
        req = req.header("if-none-match", tag);
    }
    let resp = req.send().await.expect("live");
    let status = resp.status().as_u16();
    let etag = resp.headers().get("etag").map(|v| v.to_str().expect("ascii").to_owned());
    let cache = resp.headers().get("cache-control").map(|v| v.to_str().expect("ascii").to_owned());
    assert_eq!(cache.as_deref(), Some("private, no-cache"), "status {status}");
    (status, etag.expect("an ETag on every answer"), resp.text().await.expect("body"))
}

#[tokio::test]
async fn the_live_fleet_goes_gzipped_to_clients_that_accept_it() {
    use std::io::Read;
    let (app, _, viewer) = seeded_live().await;
    let plain = live(&app, "", &viewer).await;
    let get = |accept: &'static str| {
        app.call(Method::GET, "/fleet/live", &viewer).header("accept-encoding", accept).send()
    };
    let resp = get("gzip, deflate, br").await.expect("live");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    assert_eq!(resp.headers()["content-type"], "application/geo+json");
    assert_eq!(resp.headers()["vary"], "accept-encoding");
    assert!(resp.headers().contains_key("etag"));
    let z = resp.bytes().await.expect("body");
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(&z[..]).read_to_end(&mut inflated).expect("gzip");
    let fc: Value = serde_json::from_slice(&inflated).expect("GeoJSON");
    assert_eq!(statuses(&fc), statuses(&plain));
    assert_eq!(fc["summary"], plain["summary"]);

    // gzip refused: the body as it is
    let resp = get("gzip;q=0, identity").await.expect("live");
    assert!(!resp.headers().contains_key("content-encoding"));
    let fc: Value = resp.json().await.expect("plain JSON");
    assert_eq!(statuses(&fc), statuses(&plain));
}

#[tokio::test]
async fn the_live_fleet_answers_if_none_match_with_304_until_what_it_shows_changes() {
    let (app, ids, viewer) = seeded_live().await;
    let (status, tag, body) = live_if(&app, &viewer, None).await;
    assert_eq!(status, 200);
    assert!(tag.starts_with("W/\"live-"), "a weak tag: {tag}");
    assert!(body.contains("FeatureCollection"));

    let (status, again, body) = live_if(&app, &viewer, Some(&tag)).await;
    assert_eq!((status, again.as_str(), body.as_str()), (304, tag.as_str(), ""), "unchanged");
    let (status, _, _) = live_if(&app, &viewer, Some(&format!("\"other\", {tag}"))).await;
    assert_eq!(status, 304, "a list naming the tag");
    let (status, _, _) = live_if(&app, &viewer, Some("W/\"live-0000000000000000\"")).await;
    assert_eq!(status, 200, "another tag");

    // fix ages move with the clock alone: the copy a client holds is still the map
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _, _) = live_if(&app, &viewer, Some(&tag)).await;
    assert_eq!(status, 304, "only the clock moved");

    // a new fix, committed before the request, is in the very next answer
    sqlx::query(
        "update fleet.device_latest set gps_time = now(), received_at = now(), lat = lat + 0.001
         where device_id = $1",
    )
    .bind(ids[0])
    .execute(&app.db.pool)
    .await
    .expect("new fix");
    let (status, moved, body) = live_if(&app, &viewer, Some(&tag)).await;
    assert_eq!(status, 200, "a vehicle moved");
    assert_ne!(moved, tag);
    let fc: Value = serde_json::from_str(&body).expect("json");
    assert!(fc["features"][0]["properties"]["fix_age_s"].as_i64().expect("age") < 5, "{fc}");

    // an alarm changes the map (the vehicle is in alarm) and so does its acknowledgement
    sqlx::query(
        "insert into fleet.alarms (device_id, alarm_time, alarm_type, alarm_name, alarm_class, source)
         values ($1, now(), '1', 'SOS', 'safety', 'push')",
    )
    .bind(ids[1])
    .execute(&app.db.pool)
    .await
    .expect("alarm");
    let (status, in_alarm, _) = live_if(&app, &viewer, Some(&moved)).await;
    assert_eq!(status, 200, "an open alarm");
    sqlx::query("update fleet.alarms set acknowledged_at = now(), ack_note = 'seen'")
        .execute(&app.db.pool)
        .await
        .expect("ack");
    let (status, acked, _) = live_if(&app, &viewer, Some(&in_alarm)).await;
    assert_eq!((status, acked.as_str()), (200, moved.as_str()), "acknowledged: as before");

    // a renamed vehicle, and a status filter, are other answers
    sqlx::query("update fleet.devices set name = 'Van One' where device_id = $1")
        .bind(ids[0])
        .execute(&app.db.pool)
        .await
        .expect("rename");
    let (status, renamed, _) = live_if(&app, &viewer, Some(&acked)).await;
    assert_eq!(status, 200, "renamed");
    let resp = app
        .call(Method::GET, "/fleet/live?status=moving", &viewer)
        .header("if-none-match", &renamed)
        .send()
        .await
        .expect("filtered");
    assert_eq!(resp.status(), 200, "the filtered map is another representation");
}

#[tokio::test]
async fn requests_waiting_for_the_live_view_share_one_read_that_started_after_they_came() {
    let mut state = None;
    let app = App::start_with(|s| {
        state = Some(s.clone());
        s
    })
    .await;
    let state = state.expect("state");
    app.user("vic", Role::Viewer).await;
    let viewer = As::Session(app.login("vic").await);
    let id = app.device("868120303960001", "Van 1").await;
    sqlx::query(
        "insert into fleet.device_latest (device_id, gps_time, received_at, lat, lon, source,
             motion_state, state_since)
         values ($1, now(), now(), -1.28, 36.82, 'push', 'moving', now())",
    )
    .bind(id)
    .execute(&app.db.pool)
    .await
    .expect("latest");

    // hold the live view's table so the first read waits while the others queue behind it
    let mut lock = app.db.pool.begin().await.expect("tx");
    sqlx::query("lock table fleet.device_latest in access exclusive mode")
        .execute(&mut *lock)
        .await
        .expect("lock");
    let requests: Vec<_> = (0..16)
        .map(|_| {
            let req = app.call(Method::GET, "/fleet/live", &viewer);
            tokio::spawn(async move {
                let resp = req.send().await.expect("live");
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.expect("json");
                (status, body["features"][0]["properties"]["name"].as_str().map(str::to_owned))
            })
        })
        .collect();
    let queued = async || state.live_waiting() == 15;
    fleet_testkit::eventually("15 requests queued behind the first read", WAIT, queued).await;
    assert_eq!(state.live_reads(), 0, "the first read is still waiting for the table");
    lock.commit().await.expect("commit");
    for r in requests {
        let (status, name) = r.await.expect("task");
        assert_eq!((status, name.as_deref()), (200, Some("Van 1")));
    }
    // the first request's read, and one more for those that came after it had started
    assert!(state.live_reads() <= 2, "16 requests read {} times", state.live_reads());
    assert_eq!(state.live_waiting(), 0);
    // a request that comes later reads again: nothing is served from before it arrived
    let before = state.live_reads();
    assert_eq!(app.get("/fleet/live", &viewer).await.0, 200);
    assert_eq!(state.live_reads(), before + 1);
}

const WAIT: std::time::Duration = std::time::Duration::from_secs(30);
