//! The simulator's OpenAPI on the wire: request checks, limits, and the vendor's wire types,
//! probed with hand-built signed requests.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use fleet_sim::server::default_credentials;
use fleet_sim::{Fleet, SimClock, SimConfig, SimState};
use fleet_tracksolid::sign::{md5_lower, sign};
use fleet_tracksolid::time::format_time;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

struct Sim {
    state: Arc<SimState>,
    url: String,
    _stop: tokio_util::sync::DropGuard,
}

async fn start_sim() -> Sim {
    start_sim_at(Utc::now().timestamp()).await
}

/// A simulator whose clock stands still at `t`.
async fn start_sim_at(t: i64) -> Sim {
    let config = SimConfig { clock: SimClock::starting_at(t, 0.0), ..SimConfig::default() };
    let state = SimState::new(Arc::new(Fleet::new(5, 40)), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/route/rest", listener.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    tokio::spawn(fleet_sim::serve(listener, state.clone(), stop.clone().cancelled_owned()));
    Sim { state, url, _stop: stop.drop_guard() }
}

/// Posts `method` with `private` params, signed, with the given timestamp offset (seconds).
async fn call(
    sim: &Sim,
    method: &str,
    private: &[(&str, String)],
    skew_s: i64,
    version: &str,
) -> Value {
    call_signed(sim, method, private, skew_s, version, None).await
}

/// As [`call`], with `forced_sign` sent instead of the real signature when given.
async fn call_signed(
    sim: &Sim,
    method: &str,
    private: &[(&str, String)],
    skew_s: i64,
    version: &str,
    forced_sign: Option<&str>,
) -> Value {
    let c = default_credentials();
    let mut p: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in [
        ("method", method.to_owned()),
        ("timestamp", format_time(Utc::now() + TimeDelta::seconds(skew_s))),
        ("app_key", c.app_key.clone()),
        ("sign_method", "md5".to_owned()),
        ("v", version.to_owned()),
        ("format", "json".to_owned()),
    ] {
        p.insert(k.to_owned(), v);
    }
    for (k, v) in private {
        p.insert((*k).to_owned(), v.clone());
    }
    let s = forced_sign.map_or_else(|| sign(&p, c.app_secret.expose()), str::to_owned);
    p.insert("sign".to_owned(), s);
    let resp = reqwest::Client::new().post(&sim.url).form(&p).send().await.expect("request");
    assert_eq!(resp.status().as_u16(), 200, "errors travel in the body, as the vendor does");
    resp.json().await.expect("json")
}

async fn token(sim: &Sim) -> String {
    let c = default_credentials();
    let r = call(
        sim,
        "jimi.oauth.token.get",
        &[
            ("user_id", c.user.clone()),
            ("user_pwd_md5", md5_lower(c.password.expose())),
            ("expires_in", "7200".to_owned()),
        ],
        0,
        "1.0",
    )
    .await;
    assert_eq!(r["code"], 0, "{r}");
    r["result"]["accessToken"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn stale_timestamps_and_unsigned_requests_are_refused_and_v09_needs_no_signature() {
    let sim = start_sim().await;
    let t = token(&sim).await;
    let target = ("target", default_credentials().user);
    let stale = call(
        &sim,
        "jimi.user.device.list",
        &[("access_token", t.clone()), target.clone()],
        -1200,
        "1.0",
    )
    .await;
    assert_eq!(stale["code"], 1001, "{stale}");
    let fine = call(
        &sim,
        "jimi.user.device.list",
        &[("access_token", t.clone()), target.clone()],
        -300,
        "1.0",
    )
    .await;
    assert_eq!(fine["code"], 0, "five minutes of skew is tolerated: {fine}");
    let no_token =
        call(&sim, "jimi.user.device.list", std::slice::from_ref(&target), 0, "1.0").await;
    assert_eq!(no_token["code"], 1004);
    let bogus =
        call(&sim, "jimi.user.device.list", &[("access_token", "0".repeat(32)), target], 0, "1.0")
            .await;
    assert_eq!(bogus["code"], 1004);
    let wrong_target = call(
        &sim,
        "jimi.user.device.list",
        &[("access_token", t.clone()), ("target", "someone".into())],
        0,
        "1.0",
    )
    .await;
    assert_eq!(wrong_target["code"], 1002);
    let args = [("access_token", t), ("target", default_credentials().user)];
    let forged = call_signed(
        &sim,
        "jimi.user.device.list",
        &args,
        0,
        "1.0",
        Some("0123456789ABCDEF0123456789ABCDEF"),
    )
    .await;
    assert_eq!(
        (forged["code"].as_i64(), forged["message"].as_str()),
        (Some(1001), Some("Illegal sign"))
    );
    let unsigned = call_signed(&sim, "jimi.user.device.list", &args, 0, "0.9", Some("-")).await;
    assert_eq!(unsigned["code"], 0, "v=0.9 skips signature checks: {unsigned}");
}

#[tokio::test]
async fn locations_use_strings_where_the_vendor_sends_strings() {
    let sim = start_sim().await;
    let t = token(&sim).await;
    let r = call(
        &sim,
        "jimi.user.device.location.list",
        &[("access_token", t), ("target", default_credentials().user)],
        0,
        "1.0",
    )
    .await;
    let first = &r["result"][0];
    for field in ["speed", "gpsNum", "direction", "status", "currentMileage", "gpsTime"] {
        assert!(first[field].is_string(), "{field} is a string: {first}");
    }
    assert!(first["lat"].is_number() && first["lng"].is_number(), "{first}");
    assert!(first["accStatus"].is_string() || first["accStatus"].is_null());
}

#[tokio::test]
async fn track_points_use_numbers_and_on_off_and_the_documented_limits_hold() {
    let sim = start_sim().await;
    let t = token(&sim).await;
    let v = sim
        .state
        .fleet
        .vehicles()
        .iter()
        .find(|v| v.reports_gps && v.has_acc)
        .expect("vehicle")
        .clone();
    let now = Utc::now();
    let range = |days: i64, ago: i64| {
        vec![
            ("access_token", t.clone()),
            ("imei", v.imei.to_string()),
            ("begin_time", format_time(now - TimeDelta::days(ago))),
            ("end_time", format_time(now - TimeDelta::days(ago - days))),
        ]
    };
    let r = call(&sim, "jimi.device.track.list", &range(1, 1), 0, "1.0").await;
    assert_eq!(r["code"], 0, "{r}");
    let p = &r["result"][0];
    assert!(
        p["posType"].is_number() && p["gpsSpeed"].is_number() && p["direction"].is_number(),
        "{p}"
    );
    assert!(matches!(p["ignition"].as_str(), Some("ON") | Some("OFF")), "{p}");
    assert!(r["data"]["mileage"].is_number());

    assert_eq!(
        call(&sim, "jimi.device.track.list", &range(8, 9), 0, "1.0").await["code"],
        1001,
        "over 7 days"
    );
    assert_eq!(
        call(&sim, "jimi.device.track.list", &range(1, 100), 0, "1.0").await["code"],
        1001,
        "older than 3 months"
    );
    let mut future = range(1, 1);
    future[3] = ("end_time", format_time(now + TimeDelta::hours(2)));
    assert_eq!(
        call(&sim, "jimi.device.track.list", &future, 0, "1.0").await["code"],
        1001,
        "end after now"
    );
    let unknown = vec![
        ("access_token", t.clone()),
        ("imei", "359339075099999".to_owned()),
        ("begin_time", format_time(now - TimeDelta::hours(1))),
        ("end_time", format_time(now)),
    ];
    let r = call(&sim, "jimi.device.track.list", &unknown, 0, "1.0").await;
    assert_eq!(
        (r["code"].as_i64(), r["message"].as_str()),
        (Some(1002), Some("IMEI does not exist{359339075099999}"))
    );

    let many: Vec<String> = (0..101).map(|i| format!("8600000000{:05}", i)).collect();
    let r = call(
        &sim,
        "jimi.device.location.get",
        &[("access_token", t), ("imeis", many.join(","))],
        0,
        "1.0",
    )
    .await;
    assert_eq!(r["code"], 1001, "more than 100 IMEIs: {r}");
}

#[tokio::test]
async fn alarm_list_pages_are_bounded_and_ranges_over_a_month_are_refused() {
    let sim = start_sim().await;
    let t = token(&sim).await;
    let imeis: Vec<String> =
        sim.state.fleet.vehicles().iter().map(|v| v.imei.to_string()).collect();
    let now = Utc::now();
    let q = |days: i64, page: &str, size: &str| {
        vec![
            ("access_token", t.clone()),
            ("imeis", imeis.join(",")),
            ("begin_time", format_time(now - TimeDelta::days(days))),
            ("end_time", format_time(now)),
            ("page_no", page.to_owned()),
            ("page_size", size.to_owned()),
        ]
    };
    let r = call(&sim, "jimi.device.alarm.list", &q(14, "1", "20"), 0, "1.0").await;
    assert_eq!(r["result"].as_array().map(Vec::len), Some(20), "{r}");
    let a = &r["result"][0];
    assert!(
        a["alertTypeId"].is_string() && a["alarmTypeName"].is_string() && a["speed"].is_string(),
        "{a}"
    );
    assert_eq!(
        call(&sim, "jimi.device.alarm.list", &q(40, "1", "20"), 0, "1.0").await["code"],
        1001
    );
    assert_eq!(
        call(&sim, "jimi.device.alarm.list", &q(14, "1", "101"), 0, "1.0").await["code"],
        1001
    );
}

#[tokio::test]
async fn the_reported_odometer_never_goes_back_across_midnight() {
    let midnight_utc = Utc::now().timestamp() / 86_400 * 86_400 - 86_400;
    let mut previous: Option<Vec<f64>> = None;
    // local midnight (21:00 UTC) and UTC midnight, a minute either side of each
    for t in [
        midnight_utc - 3 * 3600 - 60,
        midnight_utc - 3 * 3600 + 60,
        midnight_utc - 60,
        midnight_utc + 60,
    ] {
        let sim = start_sim_at(t).await;
        let tok = token(&sim).await;
        let r = call(
            &sim,
            "jimi.user.device.location.list",
            &[("access_token", tok), ("target", default_credentials().user)],
            0,
            "1.0",
        )
        .await;
        let mut by_imei: Vec<(String, f64)> = r["result"]
            .as_array()
            .expect("list")
            .iter()
            .map(|l| {
                (
                    l["imei"].as_str().unwrap_or_default().to_owned(),
                    l["currentMileage"].as_str().and_then(|m| m.parse().ok()).expect("mileage"),
                )
            })
            .collect();
        by_imei.sort_by(|a, b| a.0.cmp(&b.0));
        let km: Vec<f64> = by_imei.into_iter().map(|(_, k)| k).collect();
        if let Some(before) = &previous {
            for (a, b) in before.iter().zip(&km) {
                assert!(b >= a, "odometer went back from {a} to {b} around {t}");
            }
        }
        previous = Some(km);
    }
}
