//! `/trips`, `/trips/{device_id}/{start_time}` (and its track) and `/stops` over a real
//! database: filters, empty ranges, keyset pages and their edges, CSV exports.

mod support;

use std::collections::BTreeSet;

use fleet_http::auth::Role;
use reqwest::Method;
use serde_json::Value;
use support::{kind, App, As};

async fn viewer(app: &App) -> As {
    let id = app.user("viewer", Role::Viewer).await;
    As::Bearer(app.token(id).await)
}

/// A device with a plate, driver, cost centre and city.
async fn vehicle(app: &App, imei: &str, name: &str, cost_centre: &str, city: &str) -> i32 {
    let id = app.device(imei, name).await;
    sqlx::query(
        "update fleet.devices set plate = 'KDA ' || device_id, driver_name = 'Driver ' || device_id,
             cost_centre = $2, city = $3 where device_id = $1",
    )
    .bind(id)
    .bind(cost_centre)
    .bind(city)
    .execute(&app.db.pool)
    .await
    .expect("vehicle");
    id
}

/// A trip of `minutes` from `start` (RFC 3339).
async fn trip(app: &App, device: i32, start: &str, minutes: i32, reason: &str) {
    sqlx::query(
        "insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat,
             end_lon, distance_m, duration_s, moving_s, idle_s, max_speed_kmh, avg_speed_kmh,
             overspeed_count, overspeed_s, point_count, gap_s, end_reason, start_geofence)
         values ($1, $2::timestamptz, $2::timestamptz + make_interval(mins => $3), -1.28, 36.82,
             -1.30, 36.80, $3 * 500.0, $3 * 60, $3 * 50, $3 * 10, 72.5, 30, 1, 12, $3 * 6, 0, $4,
             'Depot')",
    )
    .bind(device)
    .bind(start)
    .bind(minutes)
    .bind(reason)
    .execute(&app.db.pool)
    .await
    .expect("trip");
}

async fn stop(app: &App, device: i32, start: &str, minutes: i32, kind: &str) {
    sqlx::query(
        "insert into fleet.stops (device_id, start_time, end_time, lat, lon, kind, duration_s,
             idle_s, geofence)
         values ($1, $2::timestamptz, $2::timestamptz + make_interval(mins => $3), -1.28, 36.82,
             $4, $3 * 60, case when $4 = 'idling' then $3 * 60 else 0 end, 'Yard')",
    )
    .bind(device)
    .bind(start)
    .bind(minutes)
    .bind(kind)
    .execute(&app.db.pool)
    .await
    .expect("stop");
}

/// (device_id, start_time) of each item.
fn keys(body: &Value) -> Vec<(i64, String)> {
    body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("items: {body}"))
        .iter()
        .map(|i| {
            (i["device_id"].as_i64().expect("id"), i["start_time"].as_str().expect("t").into())
        })
        .collect()
}

/// Three vehicles and six trips on 2026-03-01 (two start at the same instant).
async fn seed(app: &App) -> (i32, i32, i32) {
    let a = vehicle(app, "868120303960001", "Van A", "North", "Nairobi").await;
    let b = vehicle(app, "868120303960002", "Van B", "South", "Mombasa").await;
    let c = vehicle(app, "868120303960003", "Truck, C", "South", "Nairobi").await;
    trip(app, a, "2026-03-01T06:00:00Z", 30, "work_stop").await;
    trip(app, a, "2026-03-01T09:00:00Z", 20, "long_gap").await;
    trip(app, a, "2026-03-01T12:00:00Z", 10, "work_stop").await;
    trip(app, b, "2026-03-01T06:00:00Z", 40, "day_end").await;
    trip(app, b, "2026-03-01T10:00:00Z", 15, "open").await;
    trip(app, c, "2026-03-02T07:00:00Z", 25, "work_stop").await;
    (a, b, c)
}

#[tokio::test]
async fn trips_are_filtered_by_device_group_time_and_end_reason() {
    let app = App::start().await;
    let who = viewer(&app).await;
    let (a, b, c) = seed(&app).await;

    let (status, all) = app.get("/trips", &who).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        keys(&all),
        [
            (c as i64, "2026-03-02T07:00:00Z".to_owned()),
            (a as i64, "2026-03-01T12:00:00Z".to_owned()),
            (b as i64, "2026-03-01T10:00:00Z".to_owned()),
            (a as i64, "2026-03-01T09:00:00Z".to_owned()),
            (a as i64, "2026-03-01T06:00:00Z".to_owned()),
            (b as i64, "2026-03-01T06:00:00Z".to_owned()),
        ],
        "newest first, ties by device id"
    );
    assert!(all["next_after"].is_null());
    let item = &all["items"][1];
    assert_eq!(item["imei"], "868120303960001");
    assert_eq!(item["name"], "Van A");
    assert_eq!(item["plate"], format!("KDA {a}"));
    assert_eq!(item["driver_name"], format!("Driver {a}"));
    assert_eq!(item["end_time"], "2026-03-01T12:10:00Z");
    assert_eq!(item["distance_m"], 5000.0);
    assert_eq!(item["duration_s"], 600);
    assert_eq!((item["moving_s"].as_i64(), item["idle_s"].as_i64()), (Some(500), Some(100)));
    assert_eq!(
        (item["max_speed_kmh"].as_f64(), item["avg_speed_kmh"].as_f64()),
        (Some(72.5), Some(30.0))
    );
    assert_eq!(
        (item["overspeed_count"].as_i64(), item["overspeed_s"].as_i64()),
        (Some(1), Some(12))
    );
    assert_eq!((item["point_count"].as_i64(), item["gap_s"].as_i64()), (Some(60), Some(0)));
    assert_eq!(item["end_reason"], "work_stop");
    assert_eq!(item["start_geofence"], "Depot");
    assert!(item["end_geofence"].is_null());
    for key in ["start_lat", "start_lon", "end_lat", "end_lon"] {
        assert!(item[key].is_f64(), "{key}: {item}");
    }

    let count = |body: &Value| body["items"].as_array().map_or(0, Vec::len);
    for (query, want) in [
        (format!("device_id={a}"), 3),
        (format!("device_id={a}&device_id={b}"), 5),
        (format!("device_id={a},{b}"), 5),
        (format!("device_id={c}&cost_centre=north"), 0),
        ("cost_centre=north".to_owned(), 3),
        ("city=NAIROBI".to_owned(), 4),
        ("from=2026-03-01T09:00:00Z".to_owned(), 4),
        ("from=2026-03-01T06:00:00Z&to=2026-03-01T10:00:00Z".to_owned(), 3),
        ("to=2026-03-01T06:00:00.000001Z".to_owned(), 2),
        ("from=2026-03-01T12:00:00%2B03:00&to=2026-03-01T13:00:00%2B03:00".to_owned(), 1),
        ("end_reason=long_gap,open".to_owned(), 2),
        ("end_reason=work_stop&city=Nairobi".to_owned(), 3),
        ("from=2027-01-01T00:00:00Z".to_owned(), 0),
    ] {
        let (status, body) = app.get(&format!("/trips?{query}"), &who).await;
        assert_eq!((status, count(&body)), (200, want), "{query}: {body}");
        assert!(body["next_after"].is_null(), "{query}");
    }

    for (query, field) in [
        ("from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", "to"),
        ("from=2026-03-01T00:00:00Z&to=2026-03-01T00:00:00Z", "to"),
        ("from=yesterday", "from"),
        ("end_reason=crashed", "end_reason"),
        ("device_id=1,x", "device_id"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("format=xml", "format"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = app.get(&format!("/trips?{query}"), &who).await;
        assert_eq!((status, kind(&body)), (422, "validation"), "{query}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
}

#[tokio::test]
async fn trip_pages_follow_the_cursor_to_the_last_page() {
    let app = App::start().await;
    let who = viewer(&app).await;
    seed(&app).await;
    let (_, all) = app.get("/trips?limit=1000", &who).await;
    let all = keys(&all);
    assert_eq!(all.len(), 6);

    for limit in [1, 2, 3, 4, 5, 6, 7] {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &after {
                Some(a) => format!("/trips?limit={limit}&after={a}"),
                None => format!("/trips?limit={limit}"),
            };
            let (status, body) = app.get(&path, &who).await;
            assert_eq!(status, 200, "{path}: {body}");
            pages += 1;
            let got = keys(&body);
            assert!(got.len() <= limit);
            seen.extend(got);
            match body["next_after"].as_str() {
                Some(next) => {
                    assert_eq!(body["items"].as_array().map(Vec::len), Some(limit), "full page");
                    after = Some(next.to_owned());
                }
                None => break,
            }
            assert!(pages < 10, "no end");
        }
        assert_eq!(seen, all, "limit {limit}");
        // an exact boundary (6 rows in pages of 2, 3 or 6) ends without an empty page
        assert_eq!(pages, all.len().div_ceil(limit), "limit {limit}");
    }

    // paging within a filter
    let (_, first) = app.get("/trips?city=nairobi&limit=3", &who).await;
    let next = first["next_after"].as_str().expect("more").to_owned();
    let (_, second) = app.get(&format!("/trips?city=nairobi&limit=3&after={next}"), &who).await;
    assert_eq!(keys(&second).len(), 1);
    assert!(second["next_after"].is_null());

    for bad in ["garbage!", "MTIz", "bm90LmEuY3Vyc29y"] {
        let (status, body) = app.get(&format!("/trips?after={bad}"), &who).await;
        assert_eq!((status, kind(&body)), (422, "validation"), "{bad}: {body}");
        assert_eq!(body["errors"][0]["field"], "after");
    }
}

async fn text(app: &App, path: &str, who: &As, accept: Option<&str>) -> (u16, String, String) {
    let mut req = app.call(Method::GET, path, who);
    if let Some(a) = accept {
        req = req.header("accept", a);
    }
    let resp = req.send().await.expect("request");
    let ct = resp.headers().get("content-type").map(|v| v.to_str().expect("ascii").to_owned());
    (resp.status().as_u16(), ct.unwrap_or_default(), resp.text().await.expect("body"))
}

#[tokio::test]
async fn trips_export_as_csv_with_a_header_for_the_whole_filtered_range() {
    let app = App::start().await;
    let who = viewer(&app).await;
    let (a, _, _) = seed(&app).await;
    // more than one page's worth: CSV ignores paging
    for i in 0..150 {
        let start = format!("2026-02-{:02}T{:02}:{:02}:00Z", 1 + i / 24 % 28, i % 24, i % 60);
        trip(&app, a, &start, 5, "work_stop").await;
    }
    let (status, ct, body) = text(&app, "/trips?format=csv&limit=2", &who, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ct, "text/csv; charset=utf-8");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 1 + 156, "header and every trip");
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(header.len(), 24);
    assert_eq!(&header[..3], ["device_id", "imei", "name"]);
    assert!(header.contains(&"end_reason") && header.contains(&"end_geofence"));
    assert!(body.ends_with("\r\n"));
    assert!(lines[1].contains(",\"Truck, C\","), "quoted: {}", lines[1]);
    assert!(lines[1].contains(",2026-03-02T07:00:00Z,2026-03-02T07:25:00Z,"), "{}", lines[1]);

    let (status, ct, body) = text(
        &app,
        &format!("/trips?device_id={a}&from=2026-03-01T00:00:00Z"),
        &who,
        Some("text/csv"),
    )
    .await;
    assert_eq!((status, ct.as_str()), (200, "text/csv; charset=utf-8"));
    assert_eq!(body.lines().count(), 1 + 3);

    let (status, _, body) =
        text(&app, "/trips?format=csv&from=2030-01-01T00:00:00Z", &who, None).await;
    assert_eq!(status, 200);
    assert_eq!(body.lines().count(), 1, "an empty range is the header alone");

    let (status, ct, _) = text(&app, "/trips", &who, Some("application/json, text/csv")).await;
    assert_eq!((status, ct.as_str()), (200, "application/json"));
}

#[tokio::test]
async fn one_trip_and_its_track() {
    let app = App::start().await;
    let who = viewer(&app).await;
    let (a, b, _) = seed(&app).await;
    // fixes every minute from 05:50 to 06:40: the trip of a (06:00-06:30) holds 31 of them
    sqlx::query(
        "insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, source)
         select $1, t, -1.28 + n * 0.001, 36.82 + n * 0.001, n, 'track'
         from generate_series(0, 50) n,
              lateral (select '2026-03-01T05:50:00Z'::timestamptz + make_interval(mins => n) t) x",
    )
    .bind(a)
    .execute(&app.db.pool)
    .await
    .expect("fixes");

    let (status, t) = app.get(&format!("/trips/{a}/2026-03-01T06:00:00Z"), &who).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(
        (t["device_id"].as_i64(), t["end_reason"].as_str()),
        (Some(a as i64), Some("work_stop"))
    );
    assert_eq!(t["end_time"], "2026-03-01T06:30:00Z");
    let (status, same) = app.get(&format!("/trips/{a}/2026-03-01T09:00:00%2B03:00"), &who).await;
    assert_eq!(
        (status, same["start_time"].as_str()),
        (200, Some("2026-03-01T06:00:00Z")),
        "offsets"
    );

    let (status, body) = app.get(&format!("/trips/{a}/2026-03-01T06:00:01Z"), &who).await;
    assert_eq!((status, kind(&body)), (404, "not-found"), "{body}");
    let (status, body) = app.get(&format!("/trips/{b}/2026-03-01T09:00:00Z"), &who).await;
    assert_eq!((status, kind(&body)), (404, "not-found"), "{body}");
    let (status, body) = app.get(&format!("/trips/{a}/yesterday"), &who).await;
    assert_eq!((status, kind(&body)), (400, "bad-request"), "{body}");

    let resp = app
        .call(Method::GET, &format!("/trips/{a}/2026-03-01T06:00:00Z/track"), &who)
        .send()
        .await
        .expect("track");
    assert_eq!(resp.headers()["content-type"], "application/geo+json");
    let (status, track) = support::json(resp).await;
    assert_eq!(status, 200, "{track}");
    assert_eq!(track["type"], "Feature");
    assert_eq!(track["geometry"]["type"], "LineString");
    let coords = track["geometry"]["coordinates"].as_array().expect("coordinates");
    assert_eq!(coords.len(), 31);
    let (lon, lat) = (coords[0][0].as_f64().expect("lon"), coords[0][1].as_f64().expect("lat"));
    assert!((lon - 36.83).abs() < 1e-9 && (lat + 1.27).abs() < 1e-9, "{}", coords[0]);
    let times = track["properties"]["times"].as_array().expect("times");
    assert_eq!(times.len(), 31);
    assert_eq!(
        (times[0].as_str(), times[30].as_str()),
        (Some("2026-03-01T06:00:00Z"), Some("2026-03-01T06:30:00Z"))
    );
    assert_eq!(track["properties"]["speeds_kmh"][0], 10.0);

    // a trip without fixes has no line
    let (status, empty) = app.get(&format!("/trips/{b}/2026-03-01T06:00:00Z/track"), &who).await;
    assert_eq!(status, 200);
    assert!(empty["geometry"].is_null(), "{empty}");
    assert_eq!(empty["properties"]["times"], serde_json::json!([]));
    let (status, body) = app.get(&format!("/trips/{a}/2026-03-05T06:00:00Z/track"), &who).await;
    assert_eq!((status, kind(&body)), (404, "not-found"));
}

#[tokio::test]
async fn stops_are_filtered_paged_and_exported() {
    let app = App::start().await;
    let who = viewer(&app).await;
    let a = vehicle(&app, "868120303960011", "Van A", "North", "Nairobi").await;
    let b = vehicle(&app, "868120303960012", "Van B", "South", "Mombasa").await;
    stop(&app, a, "2026-03-01T05:00:00Z", 60, "parked").await;
    stop(&app, a, "2026-03-01T06:30:00Z", 10, "idling").await;
    stop(&app, b, "2026-03-01T06:30:00Z", 20, "parked").await;
    stop(&app, b, "2026-03-01T08:00:00Z", 30, "idling").await;

    let (status, all) = app.get("/stops", &who).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        keys(&all),
        [
            (b as i64, "2026-03-01T08:00:00Z".to_owned()),
            (a as i64, "2026-03-01T06:30:00Z".to_owned()),
            (b as i64, "2026-03-01T06:30:00Z".to_owned()),
            (a as i64, "2026-03-01T05:00:00Z".to_owned()),
        ]
    );
    let s = &all["items"][0];
    assert_eq!(
        (s["kind"].as_str(), s["duration_s"].as_i64(), s["idle_s"].as_i64()),
        (Some("idling"), Some(1800), Some(1800))
    );
    assert_eq!(
        (s["geofence"].as_str(), s["imei"].as_str()),
        (Some("Yard"), Some("868120303960012"))
    );
    assert_eq!(s["end_time"], "2026-03-01T08:30:00Z");

    let count = |body: &Value| body["items"].as_array().map_or(0, Vec::len);
    for (query, want) in [
        ("kind=idling".to_owned(), 2),
        ("kind=parked,idling".to_owned(), 4),
        (format!("device_id={a}"), 2),
        ("city=mombasa&kind=parked".to_owned(), 1),
        ("from=2026-03-01T06:30:00Z&to=2026-03-01T08:00:00Z".to_owned(), 2),
        ("to=2026-03-01T00:00:00Z".to_owned(), 0),
    ] {
        let (status, body) = app.get(&format!("/stops?{query}"), &who).await;
        assert_eq!((status, count(&body)), (200, want), "{query}: {body}");
    }
    let (status, body) = app.get("/stops?kind=moving", &who).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("kind")));
    let (status, body) = app.get("/stops?end_reason=open", &who).await;
    assert_eq!(status, 422, "stops have no end reason: {body}");

    let mut seen = BTreeSet::new();
    let (_, p1) = app.get("/stops?limit=2", &who).await;
    let next = p1["next_after"].as_str().expect("more");
    let (_, p2) = app.get(&format!("/stops?limit=2&after={next}"), &who).await;
    assert!(p2["next_after"].is_null(), "4 stops in pages of 2: {p2}");
    seen.extend(keys(&p1));
    seen.extend(keys(&p2));
    assert_eq!(seen.len(), 4);

    let (status, ct, body) = text(&app, "/stops?format=csv", &who, None).await;
    assert_eq!((status, ct.as_str()), (200, "text/csv; charset=utf-8"));
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 5);
    assert!(lines[0].starts_with("device_id,imei,name,plate,driver_name,start_time,end_time"));
    assert!(lines[1].ends_with(",idling,1800,1800,Yard"), "{}", lines[1]);
}

#[tokio::test]
async fn the_document_describes_the_filters_and_both_media_types() {
    let app = App::start().await;
    let (status, doc) = app.get("/openapi.json", &As::Anonymous).await;
    assert_eq!(status, 200);
    for (path, params) in [
        (
            "/api/v1/trips",
            &[
                "device_id",
                "cost_centre",
                "city",
                "from",
                "to",
                "end_reason",
                "limit",
                "after",
                "format",
            ][..],
        ),
        (
            "/api/v1/stops",
            &["device_id", "cost_centre", "city", "from", "to", "kind", "limit", "after", "format"]
                [..],
        ),
        ("/api/v1/devices/{id}/track", &["id", "from", "to", "format"][..]),
        ("/api/v1/devices/{id}/day", &["id", "date"][..]),
        ("/api/v1/trips/{device_id}/{start_time}", &["device_id", "start_time"][..]),
    ] {
        let op = &doc["paths"][path]["get"];
        assert_eq!(op["tags"][0], "trips", "{path}");
        let names: BTreeSet<&str> = op["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {op}"))
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, params.iter().copied().collect(), "{path}");
    }
    let content = |path: &str| -> BTreeSet<String> {
        doc["paths"][path]["get"]["responses"]["200"]["content"]
            .as_object()
            .expect("content")
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(
        content("/api/v1/trips"),
        ["application/json".to_owned(), "text/csv".to_owned()].into()
    );
    assert_eq!(content("/api/v1/devices/{id}/track").len(), 4);
}

#[tokio::test]
async fn the_document_lists_the_end_reasons_and_stop_kinds() {
    let app = App::start().await;
    let (status, doc) = app.get("/openapi.json", &As::Anonymous).await;
    assert_eq!(status, 200);
    // a property's schema, following a $ref into the components
    let resolve = |schema: &Value| -> Value {
        match schema["$ref"].as_str() {
            Some(r) => {
                doc["components"]["schemas"][r.rsplit('/').next().unwrap_or_default()].clone()
            }
            None => schema.clone(),
        }
    };
    for (schema, property, values) in [
        ("Trip", "end_reason", &["work_stop", "long_gap", "day_end", "open"][..]),
        ("TripTrackProperties", "end_reason", &["work_stop", "long_gap", "day_end", "open"][..]),
        ("Stop", "kind", &["parked", "idling"][..]),
    ] {
        let found = resolve(&doc["components"]["schemas"][schema]["properties"][property]);
        let listed: Vec<&str> = found["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema}.{property}: {found}"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(listed, values, "{schema}.{property}");
    }
}
