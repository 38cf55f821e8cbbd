//! KPIs, idling vehicles and ingest health over real HTTP, with fleet.kpi_daily rows seeded by
//! SQL: the API returns what the reporting views and functions return for the same rows, the
//! leaderboard ranks as docs/KPI_FRAMEWORK.md scores, and ranges, pages and filters have
//! their edges checked.

mod support;

use fleet_http::auth::Role;
use serde_json::{json, Value};
use support::{kind, App, As};

/// (device index, local date, distance m, driving s, shift s, shift driving s, overspeed count,
/// overspeed s, harsh events)
type Day = (usize, &'static str, f64, i32, i32, i32, i32, i32, i32);

const DAYS: [Day; 6] = [
    (0, "2026-11-02", 50_000.0, 3600, 32_400, 3600, 1, 0, 1),
    (0, "2026-11-03", 50_000.0, 3600, 32_400, 1800, 1, 0, 0),
    (1, "2026-11-02", 120_000.0, 7200, 32_400, 7200, 0, 0, 0),
    (1, "2026-11-04", 80_000.0, 5400, 32_400, 5400, 0, 0, 0),
    (2, "2026-11-03", 500.0, 120, 32_400, 120, 0, 0, 0),
    (3, "2026-11-02", 20_000.0, 1800, 0, 0, 0, 0, 2),
];

struct Seeded {
    app: App,
    ids: Vec<i32>,
    viewer: As,
}

async fn seeded() -> Seeded {
    let app = App::start().await;
    let mut ids = Vec::new();
    for (i, (cc, city)) in [
        ("Logistics", "Nairobi"),
        ("Logistics", "Mombasa"),
        ("Sales", "Nairobi"),
        ("Sales", "Kisumu"),
    ]
    .into_iter()
    .enumerate()
    {
        let id: i32 = sqlx::query_scalar(
            "insert into fleet.devices (imei, name, plate, cost_centre, city, created_at)
             values ($1, $2, $3, $4, $5, '2026-10-01') returning device_id",
        )
        .bind(format!("86812030391000{i}"))
        .bind(format!("Van {i}"))
        .bind(format!("KD{i} 100A"))
        .bind(cc)
        .bind(city)
        .fetch_one(&app.db.pool)
        .await
        .expect("device");
        ids.push(id);
    }
    for (d, date, dist, drive, shift, shift_drive, os, os_s, harsh) in DAYS {
        sqlx::query(
            "insert into fleet.kpi_daily (device_id, local_date, timezone, fixes, has_acc, trips,
                 distance_m, driving_s, idle_s, engine_on_s, parked_s, shift_s, shift_driving_s,
                 after_hours_driving_s, after_hours_distance_m, overspeed_count, overspeed_s,
                 overspeed_alarms, harsh_events, alarms, alarms_by_class, trip_fixes,
                 expected_fixes, vendor_trips, currency)
             values ($1, $2::date, 'Africa/Nairobi', 100, true, 2, $3, $4, 600, $4 + 600, 3600,
                     $5, $6, $4 - $6, 0, $7, $8, 0, $9, $9, jsonb_build_object('driving', $9),
                     90, 100, 0, 'KES')",
        )
        .bind(ids[d])
        .bind(date)
        .bind(dist)
        .bind(drive)
        .bind(shift)
        .bind(shift_drive)
        .bind(os)
        .bind(os_s)
        .bind(harsh)
        .execute(&app.db.pool)
        .await
        .expect("kpi row");
    }
    app.user("vic", Role::Viewer).await;
    let viewer = As::Session(app.login("vic").await);
    Seeded { app, ids, viewer }
}

async fn sql_rows(app: &App, sql: &str) -> Vec<Value> {
    sqlx::query_scalar(sql).fetch_all(&app.db.pool).await.expect(sql)
}

async fn ok(s: &Seeded, path: &str) -> Value {
    let (status, body) = s.app.get(path, &s.viewer).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

#[tokio::test]
async fn daily_rows_are_the_view_rows_filtered_and_paged() {
    let s = seeded().await;
    let all = ok(&s, "/kpis/daily?from=2026-11-01&to=2026-11-30").await;
    let want = sql_rows(
        &s.app,
        "select to_jsonb(v) from reporting.v_kpi_daily v order by local_date, device_id",
    )
    .await;
    assert_eq!(all["items"], json!(want));
    assert_eq!(want.len(), DAYS.len());
    assert!(all["next_after"].is_null());
    let first = &all["items"][0];
    assert_eq!(first["local_date"], "2026-11-02");
    assert_eq!(first["name"], "Van 0");
    assert_eq!(first["utilisation"], json!(3600.0 / 32_400.0));
    assert_eq!(first["overspeed_per_100km"], 2.0);

    for limit in [1, 2, 5, 6] {
        let mut got = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut q = format!("/kpis/daily?from=2026-11-01&to=2026-11-30&limit={limit}");
            if let Some(a) = &after {
                q.push_str(&format!("&after={a}"));
            }
            let page = ok(&s, &q).await;
            got.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_after"].as_str() {
                Some(a) => after = Some(a.to_owned()),
                None => break,
            }
        }
        assert_eq!(json!(got), all["items"], "limit {limit}");
    }

    let d0 = s.ids[0];
    for (query, filter) in [
        (format!("device_id={d0}"), format!("device_id = {d0}")),
        ("cost_centre=sales".to_owned(), "cost_centre = 'Sales'".to_owned()),
        ("city=Nairobi".to_owned(), "city = 'Nairobi'".to_owned()),
    ] {
        let page = ok(&s, &format!("/kpis/daily?from=2026-11-02&to=2026-11-03&{query}")).await;
        let want = sql_rows(
            &s.app,
            &format!(
                "select to_jsonb(v) from reporting.v_kpi_daily v
                 where local_date between '2026-11-02' and '2026-11-03' and {filter}
                 order by local_date, device_id"
            ),
        )
        .await;
        assert!(!want.is_empty());
        assert_eq!(page["items"], json!(want), "{query}");
    }
    let empty = ok(&s, "/kpis/daily?from=2025-01-01&to=2025-01-31").await;
    assert_eq!((empty["items"].clone(), empty["next_after"].clone()), (json!([]), Value::Null));
}

#[tokio::test]
async fn rollups_and_the_utilisation_trend_are_the_sql_functions() {
    let s = seeded().await;
    for group in ["fleet", "cost_centre", "city"] {
        let body =
            ok(&s, &format!("/kpis/rollup?from=2026-11-02&to=2026-11-04&group_by={group}")).await;
        let want = sql_rows(
            &s.app,
            &format!(
                "select to_jsonb(r) from reporting.kpi_rollup('2026-11-02', '2026-11-04', '{group}') r
                 order by group_key nulls last"
            ),
        )
        .await;
        assert_eq!(body["items"], json!(want), "{group}");
    }
    let fleet = ok(&s, "/kpis/rollup?from=2026-11-02&to=2026-11-04").await;
    let row = &fleet["items"][0];
    assert_eq!(row["group_key"], "fleet");
    assert_eq!(row["distance_m"], 320_500.0);
    assert_eq!(row["vehicle_days"], 12, "4 vehicles x 3 days");
    // an empty range still has every vehicle-day, offline
    let empty = ok(&s, "/kpis/rollup?from=2026-12-01&to=2026-12-01").await;
    assert_eq!(empty["items"][0]["vehicle_days_offline"], 4, "{empty}");
    assert_eq!(empty["items"][0]["distance_m"], 0.0);

    let trend = ok(&s, "/kpis/utilisation-trend?from=2026-11-01&to=2026-11-30").await;
    let days: Vec<&str> =
        trend.as_array().expect("days").iter().filter_map(|d| d["local_date"].as_str()).collect();
    assert_eq!(days, ["2026-11-02", "2026-11-03", "2026-11-04"], "first to last day with KPIs");
    let want: Vec<(Option<f64>, i64)> = sqlx::query_as(
        "select utilisation, shift_s from reporting.v_kpi_fleet_daily order by local_date",
    )
    .fetch_all(&s.app.db.pool)
    .await
    .expect("view");
    for (day, (u, shift)) in trend.as_array().expect("days").iter().zip(want) {
        assert_eq!(day["utilisation"], json!(u));
        assert_eq!(day["shift_s"], shift);
    }
    // 2 Nov: (3600 + 7200 + 0) / (32400 + 32400 + 0); Van 2 has no row, Van 3 no shift
    assert_eq!(trend[0]["utilisation"], json!(10_800.0 / 64_800.0));
    let none = ok(&s, "/kpis/utilisation-trend?from=2026-12-01&to=2026-12-31").await;
    assert_eq!(none, json!([]));
}

#[tokio::test]
async fn the_leaderboard_ranks_vehicles_by_driving_score() {
    let s = seeded().await;
    let board = ok(&s, "/kpis/leaderboard?from=2026-11-01&to=2026-11-30").await;
    let rows = board.as_array().expect("rows");
    let order: Vec<(i64, &str)> = rows
        .iter()
        .map(|r| (r["rank"].as_i64().expect("rank"), r["name"].as_str().expect("name")))
        .collect();
    // Van 1: no events, 100. Van 0: 100 km, 2 overspeed, 1 harsh: 100 - 2x2 - 4x1 = 92.
    // Van 3: 20 km, 2 harsh: 100 - 4 x 10 = 60. Van 2: under 1 km, no score, last.
    assert_eq!(order, [(1, "Van 1"), (2, "Van 0"), (3, "Van 3"), (4, "Van 2")]);
    assert_eq!(rows[0]["driving_score"], 100.0);
    assert_eq!(rows[1]["driving_score"], 92.0);
    assert_eq!(rows[1]["overspeed_per_100km"], 2.0);
    assert_eq!(rows[1]["harsh_per_100km"], 1.0);
    assert_eq!(rows[1]["days"], 2);
    assert_eq!(rows[2]["driving_score"], 60.0);
    assert!(rows[3]["driving_score"].is_null());
    // equal to the SQL function over the summed figures
    let want: Vec<Option<f64>> = sqlx::query_scalar(
        "select fleet.kpi_driving_score(sum(overspeed_count), sum(harsh_events), sum(distance_m),
                sum(overspeed_s), sum(driving_s))
         from fleet.kpi_daily group by device_id
         order by 1 desc nulls last",
    )
    .fetch_all(&s.app.db.pool)
    .await
    .expect("scores");
    let got: Vec<Option<f64>> = rows.iter().map(|r| r["driving_score"].as_f64()).collect();
    assert_eq!(got, want);
    // one day only
    let one = ok(&s, "/kpis/leaderboard?from=2026-11-03&to=2026-11-03").await;
    assert_eq!(one.as_array().map(Vec::len), Some(2));
    assert_eq!(one[0]["name"], "Van 0");
    assert_eq!(ok(&s, "/kpis/leaderboard?from=2025-11-03&to=2025-11-03").await, json!([]));
}

#[tokio::test]
async fn date_ranges_are_checked() {
    let s = seeded().await;
    for route in ["daily", "rollup", "utilisation-trend", "leaderboard"] {
        for (query, field) in [
            ("from=2026-11-05&to=2026-11-04", "to"),
            ("from=2025-01-01&to=2026-01-02", "to"),
            ("from=2026-11-01", "to"),
            ("to=2026-11-01", "from"),
            ("from=2026-13-01&to=2026-11-01", "from"),
        ] {
            let (status, body) = s.app.get(&format!("/kpis/{route}?{query}"), &s.viewer).await;
            assert_eq!((status, kind(&body)), (422, "validation"), "{route}?{query}: {body}");
            assert_eq!(body["errors"][0]["field"], field, "{route}?{query}: {body}");
        }
        let (status, _) =
            s.app.get(&format!("/kpis/{route}?from=2024-01-01&to=2024-12-31"), &s.viewer).await;
        assert_eq!(status, 200, "366 days are allowed");
    }
    for (query, field) in [("group_by=region", "group_by")] {
        let (status, body) = s
            .app
            .get(&format!("/kpis/rollup?from=2026-11-01&to=2026-11-02&{query}"), &s.viewer)
            .await;
        assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some(field)), "{body}");
    }
    for (query, field) in [("limit=0", "limit"), ("after=2026-11-02", "after")] {
        let (status, body) = s
            .app
            .get(&format!("/kpis/daily?from=2026-11-01&to=2026-11-02&{query}"), &s.viewer)
            .await;
        assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some(field)), "{body}");
    }
}

/// device_latest for device `i`: motion state, fix age and state age in minutes.
async fn latest(s: &Seeded, i: usize, state: &str, fix_min: i32, since_min: i32) {
    sqlx::query(
        "insert into fleet.device_latest (device_id, gps_time, received_at, lat, lon, speed_kmh,
             ignition, source, motion_state, state_since)
         values ($1, now() - make_interval(mins => $2), now() - make_interval(mins => $2),
                 -1.3, 36.8, 0, true, 'push', $3, now() - make_interval(mins => $4))",
    )
    .bind(s.ids[i])
    .bind(fix_min)
    .bind(state)
    .bind(since_min)
    .execute(&s.app.db.pool)
    .await
    .expect("latest");
}

#[tokio::test]
async fn idling_vehicles_not_moved_today_and_ingest_health() {
    let s = seeded().await;
    assert_eq!(ok(&s, "/fleet/idle").await, json!([]));
    latest(&s, 0, "idling", 1, 12).await;
    latest(&s, 1, "idling", 2, 40).await;
    latest(&s, 2, "moving", 1, 5).await;
    latest(&s, 3, "idling", 300, 320).await; // offline: older than offline_after_s
    let idle = ok(&s, "/fleet/idle").await;
    let names: Vec<&str> =
        idle.as_array().expect("rows").iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["Van 1", "Van 0"], "longest idling first, offline and moving left out");
    let d = idle[0]["duration_s"].as_i64().expect("duration");
    assert!((40 * 60 - 5..=40 * 60 + 60).contains(&d), "{d}");
    assert!(idle[0]["since"].is_string() && idle[0]["gps_time"].is_string());

    let not_moved = ok(&s, "/kpis/not-moved-today").await;
    let want = sql_rows(
        &s.app,
        "select to_jsonb(v) from reporting.v_vehicles_not_moved_today v order by device_id",
    )
    .await;
    assert_eq!(not_moved["items"], json!(want));
    assert_eq!(want.len(), 4, "no trips at all: every active vehicle");
    assert_eq!(not_moved["items"][3]["offline"], true);

    // ingest health: jobs
    assert_eq!(ok(&s, "/health/ingest").await["items"], json!([]));
    sqlx::query(
        "insert into fleet.ingestion_log (job, started_at, finished_at, status, rows_in, rows_new,
             detail)
         values ('poll.live', now() - interval '2 minutes', now() - interval '1 minute', 'ok',
                 10, 8, '{\"source\": \"poller\"}'),
                ('poll.track', now() - interval '2 minutes', now() - interval '1 minute', 'failed',
                 0, 0, '{\"source\": \"poller\"}')",
    )
    .execute(&s.app.db.pool)
    .await
    .expect("log");
    let jobs = ok(&s, "/health/ingest").await;
    let want =
        sql_rows(&s.app, "select to_jsonb(j) from reporting.v_ingest_health_jobs j order by job")
            .await;
    let strip = |v: &Value| {
        // lag_s ticks between the two reads
        let mut v = v.clone();
        for row in v.as_array_mut().expect("rows") {
            row.as_object_mut().expect("row").remove("lag_s");
        }
        v
    };
    assert_eq!(strip(&jobs["items"]), strip(&json!(want)));
    let statuses: Vec<(&str, &str)> = jobs["items"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|j| (j["job"].as_str().unwrap_or_default(), j["status"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(statuses, [("poll.live", "ok"), ("poll.track", "never")]);

    // ingest health: devices, filtered and paged
    s.app.device("868120303919999", "Never seen").await;
    let all = ok(&s, "/health/devices").await;
    let statuses: Vec<&str> = all["items"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|d| d["status"].as_str())
        .collect();
    assert_eq!(statuses, ["live", "live", "live", "offline", "never_seen"]);
    assert!(all["next_after"].is_null());
    let offline = ok(&s, "/health/devices?status=offline").await;
    assert_eq!(offline["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(offline["items"][0]["name"], "Van 3");
    let mut got = Vec::new();
    let mut q = "/health/devices?limit=2".to_owned();
    loop {
        let page = ok(&s, &q).await;
        got.extend(page["items"].as_array().expect("items").iter().map(|d| d["device_id"].clone()));
        match page["next_after"].as_i64() {
            Some(a) => q = format!("/health/devices?limit=2&after={a}"),
            None => break,
        }
    }
    let want: Vec<Value> =
        all["items"].as_array().expect("items").iter().map(|d| d["device_id"].clone()).collect();
    assert_eq!(got, want);
    for (query, field) in [("status=dead", "status"), ("limit=0", "limit"), ("after=x", "after")] {
        let (status, body) = s.app.get(&format!("/health/devices?{query}"), &s.viewer).await;
        assert_eq!((status, body["errors"][0]["field"].as_str()), (422, Some(field)), "{body}");
    }
}

#[tokio::test]
async fn cost_centre_and_city_filters_narrow_rollups_trend_and_leaderboard_to_their_vehicles() {
    let s = seeded().await;
    // the filtered fleet rollup is the cost centre's own row of the grouped rollup
    let grouped = ok(&s, "/kpis/rollup?from=2026-11-02&to=2026-11-04&group_by=cost_centre").await;
    let sales = grouped["items"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["group_key"] == "Sales")
        .expect("Sales row")
        .clone();
    let filtered = ok(&s, "/kpis/rollup?from=2026-11-02&to=2026-11-04&cost_centre=sales").await;
    let mut want = sales.clone();
    want["group_key"] = json!("fleet");
    assert_eq!(filtered["items"], json!([want]));
    assert_eq!(filtered["items"][0]["distance_m"], 20_500.0, "Van 2 and Van 3 only");
    // both filters: only Van 0 (Logistics, Nairobi)
    let both =
        ok(&s, "/kpis/rollup?from=2026-11-02&to=2026-11-04&cost_centre=Logistics&city=nairobi")
            .await;
    assert_eq!(both["items"][0]["vehicles"], 1);
    assert_eq!(both["items"][0]["distance_m"], 100_000.0);
    let nobody = ok(&s, "/kpis/rollup?from=2026-11-02&to=2026-11-04&city=Atlantis").await;
    assert_eq!(nobody["items"], json!([]));

    // the trend of one city: 2 Nov is Van 0 (3600 / 32400) and Van 2 (no row)
    let trend = ok(&s, "/kpis/utilisation-trend?from=2026-11-01&to=2026-11-30&city=Nairobi").await;
    assert_eq!(trend[0]["local_date"], "2026-11-02");
    assert_eq!(trend[0]["utilisation"], json!(3600.0 / 32_400.0));
    assert_eq!(trend[0]["vehicles"], 2);
    assert_eq!(trend[1]["distance_m"], 50_500.0, "3 Nov: Van 0 and Van 2");

    let board =
        ok(&s, "/kpis/leaderboard?from=2026-11-01&to=2026-11-30&cost_centre=Logistics").await;
    let mut names: Vec<&str> =
        board.as_array().expect("rows").iter().filter_map(|r| r["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["Van 0", "Van 1"]);
}

#[tokio::test]
async fn reconciliation_rows_are_the_view_rows_flagged_first_and_filtered() {
    let s = seeded().await;
    // Van 1 on 2 Nov: the vendor says 150 km against fleetd's 120 km (flagged); Van 0 on 2 Nov:
    // the vendor agrees within 10 %
    for (d, date, vendor) in [(1, "2026-11-02", 150_000.0), (0, "2026-11-02", 51_000.0)] {
        sqlx::query(
            "update fleet.kpi_daily set vendor_distance_m = $3, vendor_trips = 2
             where device_id = $1 and local_date = $2::date",
        )
        .bind(s.ids[d])
        .bind(date)
        .bind(vendor)
        .execute(&s.app.db.pool)
        .await
        .expect("vendor distance");
    }
    let all = ok(&s, "/kpis/reconciliation?from=2026-11-01&to=2026-11-30").await;
    let items = all["items"].as_array().expect("items");
    assert_eq!(items.len(), DAYS.len());
    assert_eq!(items[0]["device_id"], s.ids[1]);
    assert_eq!(items[0]["flagged"], true);
    assert_eq!(items[0]["vendor_diff_m"], 30_000.0);
    assert!(items[1..].iter().all(|r| r["flagged"] == false));
    let want = sql_rows(
        &s.app,
        "select to_jsonb(r) from reporting.v_distance_reconciliation r
         order by flagged desc, local_date desc, device_id",
    )
    .await;
    assert_eq!(all["items"], json!(want));

    let flagged = ok(&s, "/kpis/reconciliation?from=2026-11-01&to=2026-11-30&flagged=true").await;
    assert_eq!(flagged["items"].as_array().expect("items").len(), 1);
    let sales =
        ok(&s, "/kpis/reconciliation?from=2026-11-01&to=2026-11-30&cost_centre=Sales").await;
    assert!(sales["items"].as_array().expect("items").iter().all(|r| r["cost_centre"] == "Sales"));
    assert_eq!(sales["items"].as_array().expect("items").len(), 2);
    let limited = ok(&s, "/kpis/reconciliation?from=2026-11-01&to=2026-11-30&limit=2").await;
    assert_eq!(limited["items"].as_array().expect("items").len(), 2);
    let (status, body) =
        s.app.get("/kpis/reconciliation?from=2026-11-30&to=2026-11-01", &s.viewer).await;
    assert_eq!((status, kind(&body)), (422, "validation"));
}
