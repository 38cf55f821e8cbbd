//! `/devices/{id}/track` in each format (streamed, also over a long range) and
//! `/devices/{id}/day` with a trip crossing local midnight, over a real database.

mod support;

use chrono::{TimeDelta, Utc};
use fleet_http::auth::Role;
use reqwest::Method;
use serde_json::Value;
use support::{kind, App, As};

async fn viewer(app: &App) -> As {
    let id = app.user("viewer", Role::Viewer).await;
    As::Bearer(app.token(id).await)
}

/// `n` fixes `step_s` apart from `start`, the i-th with speed i % 90 km/h.
async fn fixes(app: &App, device: i32, start: &str, n: i32, step_s: i32) {
    sqlx::query(
        "insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, course_deg,
             altitude_m, ignition, satellites, source)
         select $1, $2::timestamptz + make_interval(secs => i * $4), -1.28 + i * 1e-6,
                36.82 + i * 1e-6, i % 90, 45, 1650, true, 9, 'track'
         from generate_series(0, $3 - 1) i",
    )
    .bind(device)
    .bind(start)
    .bind(n)
    .bind(step_s)
    .execute(&app.db.pool)
    .await
    .expect("fixes");
}

struct Download {
    status: u16,
    content_type: String,
    disposition: String,
    chunked: bool,
    body: String,
}

async fn download(app: &App, path: &str, who: &As) -> Download {
    let resp = app.call(Method::GET, path, who).send().await.expect("request");
    let header = |name: &str| {
        resp.headers().get(name).map(|v| v.to_str().expect("ascii").to_owned()).unwrap_or_default()
    };
    let (content_type, disposition) = (header("content-type"), header("content-disposition"));
    let chunked = resp.headers().get("content-length").is_none();
    Download {
        status: resp.status().as_u16(),
        content_type,
        disposition,
        chunked,
        body: resp.text().await.expect("body"),
    }
}

const RANGE: &str = "from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z";

#[tokio::test]
async fn a_track_comes_as_json_geojson_gpx_or_csv_named_after_the_imei_and_dates() {
    let app = App::start().await;
    let who = viewer(&app).await;
    let dev = app.device("868120303961001", "Van <1> & co").await;
    fixes(&app, dev, "2026-03-01T06:00:00Z", 100, 30).await;
    fixes(&app, dev, "2026-03-02T06:00:00Z", 5, 30).await; // outside the range

    let d = download(&app, &format!("/devices/{dev}/track?{RANGE}"), &who).await;
    assert_eq!((d.status, d.content_type.as_str()), (200, "application/json"), "{}", d.body);
    assert_eq!(
        d.disposition,
        "attachment; filename=\"track-868120303961001-20260301-20260302.json\""
    );
    let json: Value = serde_json::from_str(&d.body).expect("JSON");
    let fixes_json = json.as_array().expect("array");
    assert_eq!(fixes_json.len(), 100);
    assert_eq!(fixes_json[0]["gps_time"], "2026-03-01T06:00:00Z");
    assert_eq!(fixes_json[99]["gps_time"], "2026-03-01T06:49:30Z");
    assert_eq!(
        (fixes_json[1]["speed_kmh"].as_f64(), fixes_json[1]["satellites"].as_i64()),
        (Some(1.0), Some(9))
    );
    assert_eq!(
        (fixes_json[1]["ignition"].as_bool(), fixes_json[1]["fix_kind"].as_str()),
        (Some(true), Some("gps"))
    );

    let d = download(&app, &format!("/devices/{dev}/track?{RANGE}&format=geojson"), &who).await;
    assert_eq!((d.status, d.content_type.as_str()), (200, "application/geo+json"));
    assert!(d.disposition.ends_with(".geojson\""), "{}", d.disposition);
    let geo: Value = serde_json::from_str(&d.body).expect("GeoJSON");
    assert_eq!(geo["type"], "FeatureCollection");
    let feature = &geo["features"][0];
    assert_eq!(
        (feature["type"].as_str(), feature["geometry"]["type"].as_str()),
        (Some("Feature"), Some("LineString"))
    );
    assert_eq!(feature["geometry"]["coordinates"].as_array().map(Vec::len), Some(100));
    assert_eq!(feature["geometry"]["coordinates"][0], serde_json::json!([36.82, -1.28]));
    assert_eq!(
        (feature["properties"]["device_id"].as_i64(), feature["properties"]["imei"].as_str()),
        (Some(dev as i64), Some("868120303961001"))
    );

    let d = download(&app, &format!("/devices/{dev}/track?{RANGE}&format=gpx"), &who).await;
    assert_eq!((d.status, d.content_type.as_str()), (200, "application/gpx+xml"));
    assert!(d.disposition.ends_with(".gpx\""), "{}", d.disposition);
    let gpx = &d.body;
    assert!(
        gpx.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gpx version=\"1.1\""),
        "{gpx}"
    );
    assert!(gpx.contains("xmlns=\"http://www.topografix.com/GPX/1/1\""));
    assert!(gpx.contains("<name>Van &lt;1&gt; &amp; co</name>"), "names are escaped");
    assert!(gpx.trim_end().ends_with("</trkseg></trk>\n</gpx>"));
    assert_eq!(gpx.matches("<trkpt ").count(), 100);
    assert_eq!(gpx.matches("</trkpt>").count(), 100);
    assert_eq!(gpx.matches("<time>").count(), 101, "each point and the metadata");
    assert!(gpx.contains("<trkpt lat=\"-1.28\" lon=\"36.82\"><ele>1650</ele><time>2026-03-01T06:00:00Z</time><desc>0 km/h</desc><sat>9</sat>"), "{gpx}");
    assert!(gpx.contains("<gpxtpx:speed>0.28</gpxtpx:speed><gpxtpx:course>45</gpxtpx:course>"));
    assert_eq!(gpx.matches('<').count(), gpx.matches('>').count(), "balanced tags");
    assert_eq!(gpx.matches("<trkseg>").count(), 1);

    let d = download(&app, &format!("/devices/{dev}/track?{RANGE}&format=csv"), &who).await;
    assert_eq!((d.status, d.content_type.as_str()), (200, "text/csv; charset=utf-8"));
    assert!(d.disposition.ends_with(".csv\""), "{}", d.disposition);
    let lines: Vec<&str> = d.body.lines().collect();
    assert_eq!(lines.len(), 101);
    assert_eq!(
        lines[0],
        "gps_time,lat,lon,speed_kmh,course_deg,altitude_m,ignition,satellites,fix_kind"
    );
    assert_eq!(lines[1], "2026-03-01T06:00:00Z,-1.28,36.82,0,45,1650,true,9,gps");

    // an empty range is a valid empty document in every format
    let empty = "from=2026-04-01T00:00:00Z&to=2026-04-02T00:00:00Z";
    let d = download(&app, &format!("/devices/{dev}/track?{empty}"), &who).await;
    assert_eq!((d.status, d.body.as_str()), (200, "[]"));
    let d = download(&app, &format!("/devices/{dev}/track?{empty}&format=geojson"), &who).await;
    let geo: Value = serde_json::from_str(&d.body).expect("GeoJSON");
    assert_eq!(d.content_type, "application/geo+json");
    assert!(geo["features"][0]["geometry"].is_null(), "no LineString without two fixes: {geo}");
    assert_eq!(geo["features"][0]["properties"]["imei"], "868120303961001");
    // one fix is not a line either; two are
    let one = "from=2026-03-01T06:00:00Z&to=2026-03-01T06:00:30Z";
    let d = download(&app, &format!("/devices/{dev}/track?{one}&format=geojson"), &who).await;
    let geo: Value = serde_json::from_str(&d.body).expect("GeoJSON");
    assert!(geo["features"][0]["geometry"].is_null(), "{geo}");
    let two = "from=2026-03-01T06:00:00Z&to=2026-03-01T06:01:00Z";
    let d = download(&app, &format!("/devices/{dev}/track?{two}&format=geojson"), &who).await;
    let geo: Value = serde_json::from_str(&d.body).expect("GeoJSON");
    assert_eq!(geo["features"][0]["geometry"]["coordinates"].as_array().map(Vec::len), Some(2));
    let d = download(&app, &format!("/devices/{dev}/track?{empty}&format=gpx"), &who).await;
    assert_eq!((d.status, d.body.matches("<trkpt").count()), (200, 0));
    assert!(d.body.contains("<trkseg>\n</trkseg>"));
    let d = download(&app, &format!("/devices/{dev}/track?{empty}&format=csv"), &who).await;
    assert_eq!(d.body.lines().count(), 1);
}

#[tokio::test]
async fn track_ranges_and_formats_are_validated() {
    let app = App::start().await;
    let who = viewer(&app).await;
    let dev = app.device("868120303961002", "Van").await;
    for (query, field) in [
        ("to=2026-03-02T00:00:00Z", "from"),
        ("from=2026-03-01T00:00:00Z", "to"),
        ("from=2026-03-02T00:00:00Z&to=2026-03-01T00:00:00Z", "to"),
        ("from=2026-03-01T00:00:00Z&to=2026-03-01T00:00:00Z", "to"),
        ("from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:01Z", "to"),
        ("from=2026-03-01&to=2026-03-02T00:00:00Z", "from"),
        ("from=2026-03-01T00:00:00Z&to=2026-03-02T00:00:00Z&format=kml", "format"),
    ] {
        let (status, body) = app.get(&format!("/devices/{dev}/track?{query}"), &who).await;
        assert_eq!((status, kind(&body)), (422, "validation"), "{query}: {body}");
        assert_eq!(body["errors"][0]["field"], field, "{query}: {body}");
    }
    // exactly 31 days is allowed
    let d = download(
        &app,
        &format!("/devices/{dev}/track?from=2026-03-01T00:00:00Z&to=2026-04-01T00:00:00Z"),
        &who,
    )
    .await;
    assert_eq!(d.status, 200);
    let (status, body) = app.get(&format!("/devices/{}/track?{RANGE}", dev + 1), &who).await;
    assert_eq!((status, kind(&body)), (404, "not-found"));
    let (status, _) = app.get(&format!("/devices/x/track?{RANGE}"), &who).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_long_range_streams_twenty_thousand_fixes() {
    let app = App::start().await;
    let who = viewer(&app).await;
    let dev = app.device("868120303961003", "Van").await;
    // 20,000 fixes 10 s apart: about 55 hours
    fixes(&app, dev, "2026-03-01T00:00:00Z", 20_000, 10).await;
    let range = "from=2026-03-01T00:00:00Z&to=2026-03-05T00:00:00Z";
    let d = download(&app, &format!("/devices/{dev}/track?{range}"), &who).await;
    assert_eq!(d.status, 200);
    assert!(d.chunked, "streamed without a content length");
    let json: Vec<Value> = serde_json::from_str(&d.body).expect("JSON");
    assert_eq!(json.len(), 20_000);
    assert_eq!(json[19_999]["gps_time"], "2026-03-03T07:33:10Z");
    let d = download(&app, &format!("/devices/{dev}/track?{range}&format=gpx"), &who).await;
    assert_eq!(d.body.matches("<trkpt ").count(), 20_000);
    let d = download(&app, &format!("/devices/{dev}/track?{range}&format=csv"), &who).await;
    assert_eq!(d.body.lines().count(), 20_001);
    let d = download(&app, &format!("/devices/{dev}/track?{range}&format=geojson"), &who).await;
    let geo: Value = serde_json::from_str(&d.body).expect("GeoJSON");
    assert_eq!(
        geo["features"][0]["geometry"]["coordinates"].as_array().map(Vec::len),
        Some(20_000)
    );
}

async fn trip(app: &App, device: i32, start: &str, end: &str, distance_m: f64, reason: &str) {
    sqlx::query(
        "insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat,
             end_lon, distance_m, duration_s, moving_s, idle_s, point_count, end_reason)
         values ($1, $2::timestamptz, $3::timestamptz, -1.28, 36.82, -1.3, 36.8, $4,
             extract(epoch from $3::timestamptz - $2::timestamptz)::int,
             extract(epoch from $3::timestamptz - $2::timestamptz)::int * 3 / 4,
             extract(epoch from $3::timestamptz - $2::timestamptz)::int / 4, 10, $5)",
    )
    .bind(device)
    .bind(start)
    .bind(end)
    .bind(distance_m)
    .bind(reason)
    .execute(&app.db.pool)
    .await
    .expect("trip");
}

async fn stop(app: &App, device: i32, start: &str, end: &str, kind: &str, idle_s: i32) {
    sqlx::query(
        "insert into fleet.stops (device_id, start_time, end_time, lat, lon, kind, duration_s, idle_s)
         values ($1, $2::timestamptz, $3::timestamptz, -1.28, 36.82, $4,
             extract(epoch from $3::timestamptz - $2::timestamptz)::int, $5)",
    )
    .bind(device)
    .bind(start)
    .bind(end)
    .bind(kind)
    .bind(idle_s)
    .execute(&app.db.pool)
    .await
    .expect("stop");
}

#[tokio::test]
async fn a_vehicles_day_lists_its_trips_on_their_start_day_with_kpi_totals() {
    let app = App::start().await;
    let who = viewer(&app).await;
    let dev = app.device("868120303961004", "Van").await;
    // the device's time zone is the global default, Africa/Nairobi (UTC+3): the local day
    // 2026-03-10 is [2026-03-09T21:00Z, 2026-03-10T21:00Z)
    stop(&app, dev, "2026-03-09T18:00:00Z", "2026-03-10T05:00:00Z", "parked", 0).await;
    trip(&app, dev, "2026-03-10T05:00:00Z", "2026-03-10T06:00:00Z", 20_000.0, "work_stop").await;
    stop(&app, dev, "2026-03-10T06:00:00Z", "2026-03-10T20:30:00Z", "idling", 1800).await;
    // 23:30 to 00:30 local: listed on the 10th only
    trip(&app, dev, "2026-03-10T20:30:00Z", "2026-03-10T21:30:00Z", 10_000.0, "long_gap").await;
    stop(&app, dev, "2026-03-10T21:30:00Z", "2026-03-11T05:00:00Z", "parked", 0).await;
    fixes(&app, dev, "2026-03-10T04:55:00Z", 10, 60).await;
    sqlx::query(
        "insert into fleet.kpi_daily (device_id, local_date, timezone, fixes, has_acc, trips,
             distance_m, driving_s, idle_s, engine_on_s, parked_s, reporting_time, shift_s,
             shift_driving_s, after_hours_driving_s, after_hours_distance_m, overspeed_count,
             overspeed_s, overspeed_alarms, harsh_events, alarms, alarms_by_class, trip_fixes,
             expected_fixes, vendor_trips, currency)
         values ($1, '2026-03-10', 'Africa/Nairobi', 10, true, 2, 25000, 4050, 3150, 7200, 51300,
             '2026-03-10T04:55:00Z', 32400, 2700, 1350, 5000, 0, 0, 0, 0, 0, '{}', 20, 20, 0, 'KES')",
    )
    .bind(dev)
    .execute(&app.db.pool)
    .await
    .expect("kpi");

    let (status, day) = app.get(&format!("/devices/{dev}/day?date=2026-03-10"), &who).await;
    assert_eq!(status, 200, "{day}");
    assert_eq!(
        (day["date"].as_str(), day["timezone"].as_str()),
        (Some("2026-03-10"), Some("Africa/Nairobi"))
    );
    assert_eq!(
        (day["from"].as_str(), day["to"].as_str()),
        (Some("2026-03-09T21:00:00Z"), Some("2026-03-10T21:00:00Z"))
    );
    assert_eq!(
        (day["imei"].as_str(), day["name"].as_str()),
        (Some("868120303961004"), Some("Van"))
    );
    assert_eq!(day["reporting_time"], "2026-03-10T04:55:00Z");
    let trips = day["trips"].as_array().expect("trips");
    let starts: Vec<&str> = trips.iter().map(|t| t["start_time"].as_str().expect("t")).collect();
    assert_eq!(starts, ["2026-03-10T05:00:00Z", "2026-03-10T20:30:00Z"]);
    assert_eq!(
        (trips[0]["end_reason"].as_str(), trips[1]["end_reason"].as_str()),
        (Some("work_stop"), Some("long_gap"))
    );
    let stops: Vec<&str> = day["stops"]
        .as_array()
        .expect("stops")
        .iter()
        .map(|s| s["start_time"].as_str().expect("t"))
        .collect();
    assert_eq!(
        stops,
        ["2026-03-09T18:00:00Z", "2026-03-10T06:00:00Z"],
        "stops overlapping the day"
    );
    assert_eq!(
        day["totals"],
        serde_json::json!({
            "source": "kpi_daily", "trips": 2, "distance_km": 25.0, "driving_min": 67.5,
            "idle_min": 52.5, "stopped_min": 855.0
        })
    );

    // the next day has no KPI row: totals come from the trips and stops, the crossing trip by
    // its half inside the day
    let (status, next) = app.get(&format!("/devices/{dev}/day?date=2026-03-11"), &who).await;
    assert_eq!(status, 200, "{next}");
    assert_eq!(next["trips"], serde_json::json!([]), "the crossing trip counts on its start day");
    assert_eq!(next["stops"].as_array().map(Vec::len), Some(1));
    assert_eq!(next["totals"]["source"], "computed");
    assert_eq!(next["totals"]["trips"], 0);
    assert_eq!(next["totals"]["distance_km"], 5.0);
    assert_eq!(next["totals"]["driving_min"], 22.5, "half of 45 min moving");
    assert!(next["totals"]["idle_min"].is_null(), "no fixes that day: no ignition data");
    assert_eq!(next["totals"]["stopped_min"], 450.0, "21:30Z to 05:00Z");
    assert!(next["reporting_time"].is_null());

    // a day without anything
    let (status, empty) = app.get(&format!("/devices/{dev}/day?date=2026-01-01"), &who).await;
    assert_eq!(status, 200);
    assert_eq!(
        (empty["trips"].as_array().map(Vec::len), empty["stops"].as_array().map(Vec::len)),
        (Some(0), Some(0))
    );
    assert_eq!(empty["totals"]["distance_km"], 0.0);

    // today in the device's time zone by default
    let (status, today) = app.get(&format!("/devices/{dev}/day"), &who).await;
    assert_eq!(status, 200, "{today}");
    let nairobi = (Utc::now() + TimeDelta::hours(3)).date_naive().to_string();
    assert_eq!(today["date"], nairobi);

    let (status, body) = app.get(&format!("/devices/{dev}/day?date=2026-13-01"), &who).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some("date")), "{body}");
    let (status, body) = app.get(&format!("/devices/{}/day", dev + 1), &who).await;
    assert_eq!((status, kind(&body)), (404, "not-found"));
}
