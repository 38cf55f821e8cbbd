//! Alarms over real HTTP with seeded rows: order, filters, keyset pages and their edges, and
//! acknowledgement (operators only, once).

mod support;

use fleet_http::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};
use support::{kind, App, As};

/// (device index, time, type, class)
const ALARMS: [(usize, &str, &str, &str); 6] = [
    (0, "2026-11-20T08:00:00Z", "1", "safety"),
    (1, "2026-11-20T08:00:00Z", "1", "safety"),
    (1, "2026-11-20T08:00:00Z", "6", "driving"),
    (0, "2026-11-20T09:30:00.250Z", "41", "driving"),
    (2, "2026-11-19T23:59:59Z", "4", "power"),
    (0, "2026-11-18T12:00:00Z", "1", "safety"),
];

struct Seeded {
    app: App,
    devices: Vec<i32>,
    viewer: As,
    operator: As,
    admin: As,
}

async fn seeded() -> Seeded {
    let app = App::start().await;
    let mut devices = Vec::new();
    for i in 0..3 {
        devices.push(app.device(&format!("86812030397000{i}"), &format!("Van {i}")).await);
    }
    for (d, time, ty, class) in ALARMS {
        sqlx::query(
            "insert into fleet.alarms (device_id, alarm_time, alarm_type, alarm_name, alarm_class,
                 lat, lon, speed_kmh, source)
             values ($1, $2::timestamptz, $3, 'alarm ' || $3, $4, -1.3, 36.8, 12.5, 'push')",
        )
        .bind(devices[d])
        .bind(time)
        .bind(ty)
        .bind(class)
        .execute(&app.db.pool)
        .await
        .expect("alarm");
    }
    app.user("vic", Role::Viewer).await;
    app.user("olga", Role::Operator).await;
    app.user("ada", Role::Admin).await;
    let viewer = As::Session(app.login("vic").await);
    let operator = As::Session(app.login("olga").await);
    let admin = As::Session(app.login("ada").await);
    Seeded { app, devices, viewer, operator, admin }
}

/// (device_id, alarm_time, alarm_type) of each item.
fn keys(page: &Value) -> Vec<(i64, String, String)> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|a| {
            (
                a["device_id"].as_i64().expect("id"),
                a["alarm_time"].as_str().expect("time").to_owned(),
                a["alarm_type"].as_str().expect("type").to_owned(),
            )
        })
        .collect()
}

/// The same order from SQL.
async fn expected(app: &App, filter: &str) -> Vec<(i64, String, String)> {
    let rows: Vec<(i32, chrono::DateTime<chrono::Utc>, String)> = sqlx::query_as(&format!(
        "select device_id, alarm_time, alarm_type from fleet.alarms where {filter}
         order by alarm_time desc, device_id, alarm_type"
    ))
    .fetch_all(&app.db.pool)
    .await
    .expect("alarms");
    rows.into_iter()
        .map(|(d, t, ty)| {
            let t = serde_json::to_value(t).expect("time").as_str().expect("str").to_owned();
            (i64::from(d), t, ty)
        })
        .collect()
}

#[tokio::test]
async fn alarms_are_listed_newest_first_and_page_by_keyset() {
    let s = seeded().await;
    let (status, all) = s.app.get("/alarms", &s.viewer).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(keys(&all), expected(&s.app, "true").await);
    assert_eq!(all["items"].as_array().expect("items").len(), ALARMS.len());
    assert!(all["next_after"].is_null());
    let first = &all["items"][0];
    assert_eq!(first["alarm_type"], "41");
    assert_eq!(first["device_name"], "Van 0");
    assert_eq!(first["acknowledged"], false);
    assert_eq!(first["alarm_class"], "driving");

    // pages of 2 (the three alarms at 08:00 straddle a page boundary) give the same list
    for limit in [1, 2, 4, 5] {
        let mut got = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let q = match &after {
                Some(a) => format!("/alarms?limit={limit}&after={a}"),
                None => format!("/alarms?limit={limit}"),
            };
            let (status, page) = s.app.get(&q, &s.viewer).await;
            assert_eq!(status, 200, "{page}");
            got.extend(keys(&page));
            pages += 1;
            match page["next_after"].as_str() {
                Some(a) => after = Some(a.to_owned()),
                None => break,
            }
        }
        assert_eq!(got, keys(&all), "limit {limit}");
        assert_eq!(pages, ALARMS.len().div_ceil(limit), "limit {limit}: no empty last page");
    }
    // a page exactly as long as the list has no next page
    let (_, page) = s.app.get("/alarms?limit=6", &s.viewer).await;
    assert!(page["next_after"].is_null(), "{page}");
}

#[tokio::test]
async fn alarms_filter_by_device_type_class_time_and_acknowledgement() {
    let s = seeded().await;
    let d0 = s.devices[0];
    let cases = [
        (format!("device_id={d0}"), format!("device_id = {d0}")),
        ("type=1".to_owned(), "alarm_type = '1'".to_owned()),
        ("class=driving".to_owned(), "alarm_class = 'driving'".to_owned()),
        (
            "from=2026-11-20T00:00:00Z&to=2026-11-20T09:00:00Z".to_owned(),
            "alarm_time >= '2026-11-20T00:00:00Z' and alarm_time < '2026-11-20T09:00:00Z'"
                .to_owned(),
        ),
        (
            format!("device_id={d0}&class=safety"),
            format!("device_id = {d0} and alarm_class = 'safety'"),
        ),
        ("acknowledged=false".to_owned(), "acknowledged_at is null".to_owned()),
        ("acknowledged=true".to_owned(), "acknowledged_at is not null".to_owned()),
    ];
    for (query, filter) in cases {
        let (status, page) = s.app.get(&format!("/alarms?{query}"), &s.viewer).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(keys(&page), expected(&s.app, &filter).await, "{query}");
    }
    // an empty range and an unknown device: empty pages
    for query in ["from=2027-01-01T00:00:00Z", "device_id=999999", "type=nope"] {
        let (status, page) = s.app.get(&format!("/alarms?{query}"), &s.viewer).await;
        assert_eq!(status, 200);
        assert_eq!(page["items"], json!([]), "{query}");
        assert!(page["next_after"].is_null());
    }
    for (query, field) in [
        ("class=bogus", "class"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("after=garbage", "after"),
        ("from=2026-11-21T00:00:00Z&to=2026-11-20T00:00:00Z", "to"),
        ("from=yesterday", "from"),
        ("acknowledged=maybe", "acknowledged"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = s.app.get(&format!("/alarms?{query}"), &s.viewer).await;
        assert_eq!((status, kind(&body)), (422, "validation"), "{query}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
}

fn ack_path(device: i32, time: &str, ty: &str) -> String {
    format!("/alarms/{device}/{time}/{ty}/ack")
}

#[tokio::test]
async fn operators_acknowledge_an_alarm_once() {
    let s = seeded().await;
    let d0 = s.devices[0];
    let path = ack_path(d0, "2026-11-20T09:30:00.250Z", "41");

    let (status, body) = s.app.send(Method::POST, &path, &s.viewer, json!({"note": "x"})).await;
    assert_eq!((status, kind(&body)), (403, "forbidden"), "{body}");

    let (status, long) =
        s.app.send(Method::POST, &path, &s.operator, json!({"note": "x".repeat(1001)})).await;
    assert_eq!((status, long["errors"][0]["field"].as_str()), (422, Some("note")), "{long}");

    let (status, alarm) =
        s.app.send(Method::POST, &path, &s.operator, json!({"note": "driver called"})).await;
    assert_eq!(status, 200, "{alarm}");
    assert_eq!(alarm["acknowledged"], true);
    assert_eq!(alarm["acknowledged_by_username"], "olga");
    assert_eq!(alarm["ack_note"], "driver called");
    assert!(alarm["acknowledged_at"].is_string());

    let (status, body) = s.app.send(Method::POST, &path, &s.admin, json!({})).await;
    assert_eq!((status, kind(&body)), (409, "conflict"), "{body}");
    assert!(body["detail"].as_str().unwrap_or_default().contains("olga"), "{body}");

    // it left the open list and joined the acknowledged one
    let (_, open) = s.app.get("/alarms?acknowledged=false", &s.viewer).await;
    assert_eq!(open["items"].as_array().expect("items").len(), ALARMS.len() - 1);
    assert!(!keys(&open).iter().any(|(d, _, ty)| *d == i64::from(d0) && ty == "41"));
    let (_, done) = s.app.get("/alarms?acknowledged=true", &s.viewer).await;
    assert_eq!(keys(&done).len(), 1);
    assert_eq!(done["items"][0]["ack_note"], "driver called");

    // stored as the schema says
    let (by, note): (Option<i32>, Option<String>) = sqlx::query_as(
        "select acknowledged_by, ack_note from fleet.alarms
         where device_id = $1 and alarm_type = '41'",
    )
    .bind(d0)
    .fetch_one(&s.app.db.pool)
    .await
    .expect("row");
    assert!(by.is_some());
    assert_eq!(note.as_deref(), Some("driver called"));

    // an admin may acknowledge too, without a note; the time in another offset is the same alarm
    let (status, alarm) = s
        .app
        .send(Method::POST, &ack_path(d0, "2026-11-18T15:00:00%2B03:00", "1"), &s.admin, json!({}))
        .await;
    assert_eq!(status, 200, "{alarm}");
    assert!(alarm["ack_note"].is_null());

    for path in [
        ack_path(d0, "2026-11-20T09:30:00Z", "41"),
        ack_path(999_999, "2026-11-20T09:30:00.250Z", "41"),
        ack_path(d0, "2026-11-20T09:30:00.250Z", "42"),
    ] {
        let (status, body) = s.app.send(Method::POST, &path, &s.operator, json!({})).await;
        assert_eq!((status, kind(&body)), (404, "not-found"), "{path}: {body}");
    }
    let (status, body) =
        s.app.send(Method::POST, &ack_path(d0, "not-a-time", "41"), &s.operator, json!({})).await;
    assert_eq!((status, kind(&body)), (400, "bad-request"), "{body}");
}

#[tokio::test]
async fn the_document_names_the_query_parameters_as_sent() {
    let app = App::start().await;
    let (_, doc) = app.get("/openapi.json", &As::Anonymous).await;
    let params: Vec<&str> = doc["paths"]["/api/v1/alarms"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(
        params,
        ["device_id", "type", "class", "from", "to", "acknowledged", "limit", "after"]
    );
    let ack = &doc["paths"]["/api/v1/alarms/{device_id}/{alarm_time}/{alarm_type}/ack"]["post"];
    assert!(ack["responses"]["409"].is_object(), "{ack}");
}

#[tokio::test]
async fn the_summary_counts_alarms_per_class_by_local_day_with_the_open_ones() {
    let s = seeded().await;
    // 19 Nov 23:59:59 UTC is 20 Nov 02:59 in Nairobi, the devices' time zone: it counts on the 20th
    let (status, body) =
        s.app.get("/alarms/summary?from=2026-11-20&to=2026-11-20", &s.viewer).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["items"],
        json!([
            {"alarm_class": "driving", "alarms": 2, "open": 2},
            {"alarm_class": "safety", "alarms": 2, "open": 2},
            {"alarm_class": "power", "alarms": 1, "open": 1},
        ])
    );
    let ack = format!("/alarms/{}/2026-11-20T08:00:00Z/1/ack", s.devices[0]);
    let (status, _) = s.app.send(Method::POST, &ack, &s.operator, json!({})).await;
    assert_eq!(status, 200);
    let (_, body) = s.app.get("/alarms/summary?from=2026-11-18&to=2026-11-20", &s.viewer).await;
    assert_eq!(
        body["items"],
        json!([
            {"alarm_class": "safety", "alarms": 3, "open": 2},
            {"alarm_class": "driving", "alarms": 2, "open": 2},
            {"alarm_class": "power", "alarms": 1, "open": 1},
        ])
    );
    sqlx::query(
        "update fleet.devices set cost_centre = 'Depot', city = 'Kisumu' where device_id = $1",
    )
    .bind(s.devices[2])
    .execute(&s.app.db.pool)
    .await
    .expect("cost centre");
    for filter in ["cost_centre=depot", "city=Kisumu"] {
        let (_, body) = s
            .app
            .get(&format!("/alarms/summary?from=2026-11-18&to=2026-11-20&{filter}"), &s.viewer)
            .await;
        assert_eq!(body["items"], json!([{"alarm_class": "power", "alarms": 1, "open": 1}]));
    }
    let (_, none) = s.app.get("/alarms/summary?from=2026-11-21&to=2026-11-30", &s.admin).await;
    assert_eq!(none["items"], json!([]));
    let (status, body) =
        s.app.get("/alarms/summary?from=2026-11-21&to=2026-11-01", &s.viewer).await;
    assert_eq!((status, kind(&body)), (422, "validation"));
}
