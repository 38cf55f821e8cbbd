//! The client against a fake vendor endpoint: request format and signing, the token lifecycle,
//! retries, error mapping, and how IMEI sets and time ranges are split into calls.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use fleet_core::Imei;
use fleet_tracksolid::{
    format_time, md5_lower, parse_time, sign, TracksolidClient, VendorError, ALARM_WINDOW,
    MAX_IMEIS_PER_CALL, TRACK_MAX_AGE, TRACK_WINDOW,
};
use serde_json::{json, Value};
use support::{config_for, grant, token_methods, FakeApi, Recorded, Reply, APP_KEY, APP_SECRET};

fn imeis(n: usize) -> Vec<Imei> {
    (0..n).map(|i| Imei::parse(&format!("8681201452{i:05}")).expect("imei")).collect()
}

fn client(fake: &FakeApi) -> TracksolidClient {
    TracksolidClient::new(fake.config()).expect("client")
}

/// A script that logs in normally and answers every other method with `reply`.
fn answering(
    reply: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
) -> impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static {
    move |request, nth| token_methods(request, nth).unwrap_or_else(|| reply(request, nth))
}

fn device(imei: &str) -> Value {
    json!({"imei": imei, "deviceName": imei, "enabledFlag": 1})
}

fn window_of(request: &Recorded) -> (DateTime<Utc>, DateTime<Utc>) {
    let begin = parse_time(request.param("begin_time")).expect("begin_time");
    let end = parse_time(request.param("end_time")).expect("end_time");
    (begin, end)
}

#[tokio::test]
async fn requests_are_form_encoded_with_every_common_parameter_and_a_sign_that_verifies() {
    let fake =
        FakeApi::start(answering(|_, _| Reply::ok(json!([device("868120145233604")])))).await;
    let devices = client(&fake).device_list(None).await.expect("device list");
    assert_eq!(devices.len(), 1);
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
        assert!(request.repeated.is_empty(), "{:?}", request.repeated);
        assert_eq!(request.param("app_key"), APP_KEY);
        assert_eq!(request.param("sign_method"), "md5");
        assert_eq!(request.param("v"), "1.0");
        assert_eq!(request.param("format"), "json");
        let sent = parse_time(request.param("timestamp")).expect("UTC timestamp");
        assert!((Utc::now() - sent).num_seconds().abs() <= 5, "timestamp {sent}");
        let unsigned: BTreeMap<String, String> = request
            .params
            .iter()
            .filter(|(k, _)| *k != "sign")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        assert_eq!(request.param("sign"), sign(&unsigned, APP_SECRET));
    }
    let (login, list) = (&requests[0], &requests[1]);
    assert_eq!(login.method(), "jimi.oauth.token.get");
    assert_eq!(login.param("user_id"), "demo");
    assert_eq!(login.param("user_pwd_md5"), md5_lower("secret123"));
    assert_eq!(login.param("expires_in"), "7200");
    assert!(!login.params.contains_key("access_token"));
    assert_eq!(list.method(), "jimi.user.device.list");
    assert_eq!(list.param("access_token"), "token-0");
    assert_eq!(list.param("target"), "demo");
}

#[tokio::test]
async fn the_token_is_fetched_once_for_many_calls_sequential_and_concurrent() {
    let fake = FakeApi::start(answering(|_, _| Reply::ok(json!([])))).await;
    let client = Arc::new(client(&fake));
    let concurrent: Vec<_> = (0..10)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.location_list(Some("sub-account")).await })
        })
        .collect();
    for task in concurrent {
        task.await.expect("join").expect("location list");
    }
    for _ in 0..5 {
        client.device_list(None).await.expect("device list");
    }
    assert_eq!(fake.calls_of("jimi.oauth.token.get").len(), 1);
    assert_eq!(fake.calls_of("jimi.user.device.location.list").len(), 10);
    assert_eq!(fake.calls_of("jimi.user.device.list").len(), 5);
    assert!(fake
        .calls_of("jimi.user.device.location.list")
        .iter()
        .all(|r| r.param("target") == "sub-account"));
}

#[tokio::test]
async fn a_rejected_token_is_fetched_again_once_and_the_call_then_succeeds() {
    let fake = FakeApi::start(answering(|_, nth| match nth {
        0 => Reply::code(1004, "Illegal access, token exception!"),
        _ => Reply::ok(json!([device("868120145233604")])),
    }))
    .await;
    let devices = client(&fake).device_list(None).await.expect("succeeds after a new login");
    assert_eq!(devices.len(), 1);
    assert_eq!(fake.calls_of("jimi.oauth.token.get").len(), 2);
    let calls = fake.calls_of("jimi.user.device.list");
    assert_eq!(calls.len(), 2);
    assert_eq!(
        (calls[0].param("access_token"), calls[1].param("access_token")),
        ("token-0", "token-1")
    );
}

#[tokio::test]
async fn a_token_rejected_again_after_a_new_login_surfaces_as_token_invalid() {
    let fake =
        FakeApi::start(answering(|_, _| Reply::code(1004, "Illegal access, token exception!")))
            .await;
    let err = client(&fake).device_list(None).await.expect_err("fails");
    assert!(matches!(err, VendorError::TokenInvalid { .. }), "{err:?}");
    assert_eq!(fake.calls_of("jimi.oauth.token.get").len(), 2);
    assert_eq!(fake.calls_of("jimi.user.device.list").len(), 2);
}

#[tokio::test]
async fn a_rate_limited_call_is_retried_with_growing_backoff_and_then_succeeds() {
    let fake = FakeApi::start(answering(|_, nth| match nth {
        0 | 1 => Reply::code(1006, "Illegal access, too frequently request!"),
        _ => Reply::ok(json!([])),
    }))
    .await;
    client(&fake).device_list(None).await.expect("succeeds on the third attempt");
    let calls = fake.calls_of("jimi.user.device.list");
    assert_eq!(calls.len(), 3);
    // base 10 ms: the first pause is 5–10 ms, the second 10–20 ms
    assert!(calls[1].at - calls[0].at >= Duration::from_millis(5));
    assert!(calls[2].at - calls[1].at >= Duration::from_millis(10));
    assert_eq!(fake.calls_of("jimi.oauth.token.get").len(), 1);
}

#[tokio::test]
async fn a_token_close_to_expiry_is_renewed_with_the_refresh_token() {
    let fake = FakeApi::start(|request: &Recorded, nth| match request.method() {
        // a six-second token is renewed in its last three seconds (the margin is capped at half
        // the lifetime); the second call comes 3.2 s in on the client's clock
        "jimi.oauth.token.get" => grant(nth, json!("6")),
        _ => token_methods(request, nth).unwrap_or_else(|| Reply::ok(json!([]))),
    })
    .await;
    let client = client(&fake);
    client.device_list(None).await.expect("first call");
    // move tokio's clock on while nothing is in flight, then let it run again for the call
    tokio::time::pause();
    tokio::time::advance(Duration::from_millis(3200)).await;
    tokio::time::resume();
    client.device_list(None).await.expect("second call");
    assert_eq!(fake.calls_of("jimi.oauth.token.get").len(), 1);
    let refresh = fake.calls_of("jimi.oauth.token.refresh");
    assert_eq!(refresh.len(), 1);
    assert_eq!(refresh[0].param("access_token"), "token-0");
    assert_eq!(refresh[0].param("refresh_token"), "refresh-0");
    assert_eq!(refresh[0].param("expires_in"), "7200");
    let calls = fake.calls_of("jimi.user.device.list");
    assert_eq!(
        (calls[0].param("access_token"), calls[1].param("access_token")),
        ("token-0", "refreshed-0")
    );
}

/// Runs the client method that reaches `method` against a fake answering it with `reply`, and
/// returns the error and how often `method` was asked.
async fn failure(method: &'static str, reply: Reply) -> (VendorError, usize) {
    let fake = FakeApi::start(move |request: &Recorded, nth| {
        if request.method() == method {
            reply.clone()
        } else {
            token_methods(request, nth).unwrap_or_else(|| Reply::ok(json!([])))
        }
    })
    .await;
    let mut config = fake.config();
    config.request_timeout = Duration::from_millis(200);
    config.track_request_timeout = Duration::from_millis(200);
    let client = TracksolidClient::new(config).expect("client");
    let imei = Imei::parse("868120145233604").expect("imei");
    let outcome = match method {
        "jimi.device.location.get" => client.location_get(&[imei]).await.map(|_| ()),
        "jimi.device.track.list" => {
            let now = Utc::now();
            client.track_list(&imei, now - TimeDelta::hours(1), now).await.map(|_| ())
        }
        _ => client.device_list(None).await.map(|_| ()),
    };
    (outcome.expect_err("the call fails"), fake.calls_of(method).len())
}

#[tokio::test]
async fn every_vendor_failure_surfaces_as_its_api_error_and_only_transient_ones_are_retried() {
    let login = "jimi.oauth.token.get";
    let list = "jimi.user.device.list";
    let (err, n) = failure(login, Reply::code(1002, "Illegal user")).await;
    assert!(matches!(err, VendorError::BadCredentials { .. }) && n == 1, "{err:?} after {n}");
    let (err, n) = failure(
        login,
        Reply::json(json!({"code": "xxx", "message": "Incorrect user name or password"})),
    )
    .await;
    assert!(matches!(err, VendorError::BadCredentials { .. }) && n == 1, "{err:?} after {n}");
    for code in [1001, 1003, 1007, 1008, 1114] {
        let (err, n) = failure(list, Reply::code(code, "Parameter error")).await;
        assert!(
            matches!(err, VendorError::BadRequest { code: c, .. } if c == code) && n == 1,
            "{err:?} after {n}"
        );
    }
    let (err, n) =
        failure(list, Reply::code(1005, "Illegal access, IP access exceeds limit!")).await;
    assert!(matches!(err, VendorError::IpLimit { .. }) && n == 1, "{err:?} after {n}");
    let (err, n) =
        failure(list, Reply::code(1006, "Illegal access, too frequently request!")).await;
    assert!(matches!(err, VendorError::RateLimited { .. }) && n == 4, "{err:?} after {n}");
    for code in [-1, 1100] {
        let (err, n) = failure(list, Reply::code(code, "The system is busy")).await;
        assert!(
            matches!(err, VendorError::VendorBusy { code: c, .. } if c == code) && n == 4,
            "{err:?} after {n}"
        );
    }
    let (err, n) = failure("jimi.device.location.get", Reply::code(1002, "Illegal device")).await;
    assert!(matches!(err, VendorError::IllegalDevice { .. }) && n == 1, "{err:?} after {n}");
    let (err, n) = failure(
        "jimi.device.track.list",
        Reply::code(1001, "IMEI does not exist{868120145233604}"),
    )
    .await;
    assert!(matches!(err, VendorError::IllegalDevice { .. }) && n == 1, "{err:?} after {n}");
    let (err, n) = failure(list, Reply::raw(500, "Internal Server Error")).await;
    assert!(matches!(err, VendorError::Http { status: 500 }) && n == 1, "{err:?} after {n}");
    let (err, n) = failure(list, Reply::raw(503, "Service Unavailable")).await;
    assert!(matches!(err, VendorError::Http { status: 503 }) && n == 4, "{err:?} after {n}");
    let (err, n) = failure(list, Reply::raw(200, "<html>maintenance</html>")).await;
    assert!(matches!(err, VendorError::Decode { .. }) && n == 1, "{err:?} after {n}");
    let (err, n) = failure(list, Reply::ok(json!({"not": "a list"}))).await;
    assert!(matches!(err, VendorError::Decode { .. }) && n == 1, "{err:?} after {n}");
    let (err, n) = failure(list, Reply::ok(json!([])).after(Duration::from_secs(2))).await;
    assert!(matches!(err, VendorError::Timeout { .. }) && n == 4, "{err:?} after {n}");
}

#[tokio::test]
async fn an_unreachable_vendor_is_a_transport_error_after_the_retries() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let client =
        TracksolidClient::new(config_for(&format!("http://{addr}/route/rest"))).expect("client");
    let err = client.device_list(None).await.expect_err("unreachable");
    assert!(matches!(err, VendorError::Transport(_)), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn an_invalid_configuration_is_refused_and_secrets_never_show_in_debug_output() {
    let fake = FakeApi::start(answering(|_, _| Reply::ok(json!([])))).await;
    let mut short_token = fake.config();
    short_token.token_ttl_s = 30;
    assert!(matches!(TracksolidClient::new(short_token), Err(VendorError::InvalidConfig { .. })));
    assert!(matches!(
        TracksolidClient::new(config_for("ftp://example.com/route/rest")),
        Err(VendorError::InvalidConfig { .. })
    ));
    let client = client(&fake);
    client.device_list(None).await.expect("logged in");
    let debug = format!("{client:?}");
    for secret in [APP_SECRET, "secret123", "token-0", "refresh-0"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}

#[tokio::test]
async fn location_get_with_250_imeis_makes_three_calls_of_at_most_100() {
    let fake = FakeApi::start(answering(|request, _| {
        let rows: Vec<Value> = request
            .param("imeis")
            .split(',')
            .map(|imei| json!({"imei": imei, "lat": 1, "lng": 1}))
            .collect();
        Reply::ok(Value::Array(rows))
    }))
    .await;
    let wanted = imeis(250);
    let items = client(&fake).location_get(&wanted).await.expect("locations");
    let calls = fake.calls_of("jimi.device.location.get");
    let sizes: Vec<usize> = calls.iter().map(|c| c.param("imeis").split(',').count()).collect();
    assert_eq!(sizes, vec![MAX_IMEIS_PER_CALL, MAX_IMEIS_PER_CALL, 50]);
    let got: Vec<&str> = items.iter().filter_map(|i| i.imei.as_deref()).collect();
    let expected: Vec<&str> = wanted.iter().map(Imei::as_str).collect();
    assert_eq!(got, expected);
    assert!(client(&fake).location_get(&[]).await.expect("nothing asked").is_empty());
    assert_eq!(fake.calls_of("jimi.device.location.get").len(), 3);
}

/// Track points at both ends and the middle of the asked window, newest first.
fn track_points(request: &Recorded, _: usize) -> Reply {
    let (begin, end) = window_of(request);
    let middle = begin + (end - begin) / 2;
    let rows: Vec<Value> = [end, middle, begin]
        .iter()
        .map(|t| json!({"lat": 1.0, "lng": 2.0, "gpsTime": fleet_tracksolid::format_time(*t), "posType": 1}))
        .collect();
    Reply::json(json!({"code": 0, "message": "success", "result": rows, "data": {"mileage": 0}}))
}

#[tokio::test]
async fn track_list_over_20_days_makes_three_calls_with_windows_of_at_most_7_days() {
    let fake = FakeApi::start(answering(track_points)).await;
    let imei = Imei::parse("868120145233604").expect("imei");
    let end = Utc::now() - TimeDelta::hours(1);
    let begin = end - TimeDelta::days(20);
    let points = client(&fake).track_list(&imei, begin, end).await.expect("track");
    let calls = fake.calls_of("jimi.device.track.list");
    assert_eq!(calls.len(), 3);
    let windows: Vec<_> = calls.iter().map(window_of).collect();
    for (i, (from, to)) in windows.iter().enumerate() {
        assert!(*to - *from <= TRACK_WINDOW, "window {i}: {from} .. {to}");
        if i > 0 {
            assert_eq!(windows[i - 1].1, *from, "windows are contiguous");
        }
    }
    assert!(calls.iter().all(|c| c.param("imei") == "868120145233604"));
    // three windows share two boundaries: 9 points, 7 distinct times, in order
    let times: Vec<_> = points.iter().map(|p| p.gps_time.value().expect("time")).collect();
    assert_eq!(times.len(), 7);
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
}

#[tokio::test]
async fn track_list_clips_the_range_to_the_last_90_days_and_to_now() {
    let fake = FakeApi::start(answering(|_, _| Reply::ok(json!([])))).await;
    let imei = Imei::parse("868120145233604").expect("imei");
    let now = Utc::now();
    let points = client(&fake)
        .track_list(&imei, now - TimeDelta::days(200), now + TimeDelta::days(5))
        .await
        .expect("track");
    assert!(points.is_empty());
    let calls = fake.calls_of("jimi.device.track.list");
    let (first_begin, _) = window_of(&calls[0]);
    let (_, last_end) = window_of(calls.last().expect("calls"));
    assert!((first_begin - (now - TRACK_MAX_AGE)).num_seconds().abs() <= 5, "{first_begin}");
    assert!(last_end <= Utc::now(), "{last_end}");
    assert_eq!(calls.len(), 13, "90 days in 7-day windows");
}

fn alarm_rows(page_no: usize, count: usize) -> Value {
    let rows: Vec<Value> = (0..count)
        .map(|i| json!({"imei": "868120145233604", "alertTypeId": "1", "alertTime": "2026-03-01 00:00:00", "n": page_no * 1000 + i}))
        .collect();
    Value::Array(rows)
}

#[tokio::test]
async fn alarm_list_pages_until_a_short_page() {
    let fake = FakeApi::start(answering(|request, _| {
        let page: usize = request.param("page_no").parse().expect("page_no");
        Reply::ok(alarm_rows(page, if page < 3 { 100 } else { 30 }))
    }))
    .await;
    let end = Utc::now();
    let alarms =
        client(&fake).alarm_list(&imeis(2), end - TimeDelta::days(10), end).await.expect("alarms");
    assert_eq!(alarms.len(), 230);
    let calls = fake.calls_of("jimi.device.alarm.list");
    let pages: Vec<&str> = calls.iter().map(|c| c.param("page_no")).collect();
    assert_eq!(pages, vec!["1", "2", "3"]);
    assert!(calls
        .iter()
        .all(|c| c.param("page_size") == "100" && c.param("imeis").split(',').count() == 2));
}

#[tokio::test]
async fn alarm_list_stops_when_the_vendor_repeats_a_page() {
    let fake = FakeApi::start(answering(|_, _| Reply::ok(alarm_rows(1, 100)))).await;
    let end = Utc::now();
    let alarms =
        client(&fake).alarm_list(&imeis(1), end - TimeDelta::days(3), end).await.expect("alarms");
    assert_eq!(alarms.len(), 100);
    assert_eq!(fake.calls_of("jimi.device.alarm.list").len(), 2);
}

/// A vendor with one alarm per device every 30 minutes, paging as documented and returning at
/// most 1,000 rows per query.
fn half_hourly_alarms(request: &Recorded) -> Reply {
    let (from, to) = window_of(request);
    let page: usize = request.param("page_no").parse().expect("page_no");
    let size: usize = request.param("page_size").parse().expect("page_size");
    let imeis: Vec<&str> = request.param("imeis").split(',').collect();
    let first = from.timestamp() + (1800 - from.timestamp().rem_euclid(1800)) % 1800;
    let mut rows = Vec::new();
    for t in (first..=to.timestamp()).step_by(1800) {
        for imei in &imeis {
            let at = DateTime::from_timestamp(t, 0).expect("time");
            rows.push(json!({"imei": imei, "alertTypeId": "3", "alertTime": format_time(at)}));
        }
    }
    rows.truncate(1000);
    Reply::ok(Value::Array(rows.into_iter().skip((page - 1) * size).take(size).collect()))
}

#[tokio::test]
async fn alarm_list_splits_windows_that_reach_the_vendors_row_cap_until_every_alarm_arrives() {
    let fake = FakeApi::start(answering(|request, _| half_hourly_alarms(request))).await;
    let end = Utc::now() - TimeDelta::hours(1);
    let begin = end - TimeDelta::days(45);
    let alarms = client(&fake).alarm_list(&imeis(3), begin, end).await.expect("alarms");
    let mut keys: Vec<(String, String)> = alarms
        .iter()
        .map(|a| {
            (
                a.imei.clone().unwrap_or_default(),
                a.alert_time.value().map(|t| t.to_rfc3339()).unwrap_or_default(),
            )
        })
        .collect();
    keys.sort();
    keys.dedup();
    let half_hours = (begin.timestamp()..=end.timestamp()).filter(|t| t % 1800 == 0).count();
    assert_eq!(keys.len(), 3 * half_hours, "every alarm of every device, none cut off by the cap");
    let calls = fake.calls_of("jimi.device.alarm.list");
    assert!(calls.iter().all(|c| {
        let (from, to) = window_of(c);
        to - from <= ALARM_WINDOW
    }));
    assert!(calls.len() < 400, "halving converges quickly: {} calls", calls.len());
}

#[tokio::test]
async fn track_mileage_pages_by_start_row_until_a_short_page() {
    let fake = FakeApi::start(answering(|request, _| {
        let start: usize = request.param("start_row").parse().expect("start_row");
        let count = if start == 0 { 100 } else { 20 };
        let trips: Vec<Value> = (0..count)
            .map(|i| json!({"imei": "868120145233604", "startTime": "2026-03-01 00:00:00", "endTime": "2026-03-01 00:10:00", "distance": 1.5, "n": start + i}))
            .collect();
        Reply::json(json!({"code": 0, "message": "success", "result": trips, "data": [{"imei": "868120145233604", "totalMileage": 151.5}]}))
    }))
    .await;
    let end = Utc::now();
    let trips =
        client(&fake).track_mileage(&imeis(3), end - TimeDelta::days(2), end).await.expect("trips");
    assert_eq!(trips.len(), 120);
    let calls = fake.calls_of("jimi.device.track.mileage");
    let rows: Vec<&str> = calls.iter().map(|c| c.param("start_row")).collect();
    assert_eq!(rows, vec!["0", "100"]);
    assert!(calls.iter().all(|c| c.param("page_size") == "100"));
}

#[tokio::test]
async fn a_refused_login_is_not_repeated_by_the_calls_that_follow_it() {
    let fake = FakeApi::start(|request: &Recorded, _| match request.method() {
        "jimi.oauth.token.get" => {
            Reply::json(json!({"code": 1002, "message": "Incorrect user name or password"}))
        }
        _ => Reply::ok(json!([])),
    })
    .await;
    let client = client(&fake);
    for _ in 0..5 {
        let err = client.device_list(None).await.expect_err("refused");
        assert!(matches!(err, VendorError::BadCredentials { .. }), "{err:?}");
    }
    assert_eq!(fake.calls_of("jimi.oauth.token.get").len(), 1, "one login attempt, remembered");
    assert!(fake.calls_of("jimi.user.device.list").is_empty());
}
