//! The Tracksolid client against the simulator over real HTTP: every method, splitting and
//! paging, tokens, rate limiting and each error the vendor answers with.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use fleet_config::Secret;
use fleet_core::Imei;
use fleet_sim::server::default_credentials;
use fleet_sim::{Fleet, SimClock, SimConfig, SimState};
use fleet_tracksolid::client::{ClientConfig, TracksolidClient};
use fleet_tracksolid::{convert, VendorError};
use tokio_util::sync::CancellationToken;

struct Sim {
    state: Arc<SimState>,
    url: String,
    stop: CancellationToken,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A simulator whose clock stands still at the wall-clock time it started.
async fn start_sim(vehicles: usize, tweak: impl FnOnce(&mut SimConfig)) -> Sim {
    let mut config = SimConfig {
        clock: SimClock::starting_at(Utc::now().timestamp(), 0.0),
        ..SimConfig::default()
    };
    tweak(&mut config);
    let state = SimState::new(Arc::new(Fleet::new(42, vehicles)), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/route/rest", listener.local_addr().expect("addr"));
    let stop = CancellationToken::new();
    tokio::spawn(fleet_sim::serve(listener, state.clone(), stop.clone().cancelled_owned()));
    Sim { state, url, stop }
}

fn client_config(sim: &Sim) -> ClientConfig {
    let c = default_credentials();
    let mut cfg = ClientConfig::new(sim.url.clone(), c.app_key, c.app_secret, c.user, c.password);
    cfg.backoff_base = Duration::from_millis(50);
    cfg.backoff_max = Duration::from_millis(400);
    cfg
}

fn client(sim: &Sim) -> TracksolidClient {
    TracksolidClient::new(client_config(sim)).expect("client")
}

fn now(sim: &Sim) -> i64 {
    sim.state.config.clock.now()
}

fn at(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(t, 0).expect("time")
}

#[tokio::test]
async fn the_device_list_and_live_locations_match_the_simulated_fleet() {
    let sim = start_sim(30, |_| {}).await;
    let c = client(&sim);
    let devices = c.device_list(None).await.expect("device list");
    assert_eq!(devices.len(), 30);
    for d in &devices {
        let profile = convert::device_profile(d).expect("valid profile");
        let v = sim.state.fleet.vehicle(profile.imei.as_str()).expect("known vehicle");
        assert_eq!(profile.plate.as_deref(), Some(v.plate.as_str()));
    }
    let t = now(&sim);
    let locations = c.location_list(None).await.expect("location list");
    let reporting: Vec<_> = sim.state.fleet.vehicles().iter().filter(|v| v.reports_gps).collect();
    assert_eq!(
        locations.len(),
        reporting.len(),
        "trackers without a fix are left out, as the vendor does"
    );
    for l in &locations {
        let fix = convert::location_fix(l, Utc::now()).expect("valid fix");
        let v = sim.state.fleet.vehicle(fix.imei.as_str()).expect("known");
        let expected = sim.state.fleet.latest(v.index, t).expect("has a fix");
        assert_eq!(fix.gps_time.timestamp(), expected.time);
        assert_eq!(
            (fix.location.lat(), fix.location.lon()),
            (expected.position.lat(), expected.position.lon())
        );
        assert_eq!(fix.ignition, expected.ignition);
    }
    assert_eq!(sim.state.calls("jimi.oauth.token.get"), 1, "one token for all calls");
}

#[tokio::test]
async fn location_get_for_250_imeis_takes_three_calls_and_finds_every_reporting_vehicle() {
    let sim = start_sim(250, |_| {}).await;
    let imeis: Vec<Imei> = sim.state.fleet.vehicles().iter().map(|v| v.imei.clone()).collect();
    let found = client(&sim).location_get(&imeis).await.expect("locations");
    assert_eq!(sim.state.calls("jimi.device.location.get"), 3);
    assert_eq!(found.len(), sim.state.fleet.vehicles().iter().filter(|v| v.reports_gps).count());
}

#[tokio::test]
async fn twenty_days_of_track_arrive_in_seven_day_windows_equal_to_the_simulated_history() {
    let sim = start_sim(3, |_| {}).await;
    let v = sim
        .state
        .fleet
        .vehicles()
        .iter()
        .find(|v| v.reports_gps)
        .expect("reporting vehicle")
        .clone();
    let (end, begin) = (now(&sim) - 120, now(&sim) - 20 * 86_400);
    let points = client(&sim).track_list(&v.imei, at(begin), at(end)).await.expect("track");
    assert_eq!(sim.state.calls("jimi.device.track.list"), 3);
    let expected = sim.state.fleet.history(v.index, begin, end);
    assert_eq!(points.len(), expected.len());
    for (p, e) in points.iter().zip(&expected) {
        let fix = convert::track_fix(p, &v.imei, Utc::now()).expect("valid point");
        assert_eq!(fix.gps_time.timestamp(), e.time);
        assert_eq!(fix.location.lat(), e.position.lat());
        assert_eq!(fix.speed_kmh, Some(e.speed_kmh as f32));
        assert_eq!(fix.ignition, e.ignition, "ON/OFF or absent without an ACC wire");
    }
}

#[tokio::test]
async fn vendor_trips_page_through_and_convert_kilometres_to_metres() {
    let sim = start_sim(25, |_| {}).await;
    let imeis: Vec<Imei> = sim.state.fleet.vehicles().iter().map(|v| v.imei.clone()).collect();
    let (end, begin) = (now(&sim) - 120, now(&sim) - 3 * 86_400);
    let trips = client(&sim).track_mileage(&imeis, at(begin), at(end)).await.expect("mileage");
    let expected: usize = sim
        .state
        .fleet
        .vehicles()
        .iter()
        .map(|v| sim.state.fleet.trips(v.index, begin, end).len())
        .sum();
    assert_eq!(trips.len(), expected);
    assert!(expected > 200 && sim.state.calls("jimi.device.track.mileage") >= 3, "several pages");
    let v = &sim.state.fleet.vehicles()[0];
    let first = sim.state.fleet.trips(v.index, begin, end).into_iter().next().expect("a trip");
    let got = trips
        .iter()
        .map(|t| convert::vendor_trip(t, Utc::now()).expect("valid trip"))
        .find(|t| t.imei == v.imei && t.start_time.timestamp() == first.start)
        .expect("the trip is listed");
    let metres = got.distance_m.expect("distance");
    assert!((metres - first.distance_m).abs() <= 5.0, "{metres} vs {}", first.distance_m);
}

#[tokio::test]
async fn alarms_over_forty_days_come_in_monthly_windows_and_pages() {
    let sim = start_sim(6, |_| {}).await;
    let imeis: Vec<Imei> = sim.state.fleet.vehicles().iter().map(|v| v.imei.clone()).collect();
    let (end, begin) = (now(&sim) - 120, now(&sim) - 40 * 86_400);
    let alarms = client(&sim).alarm_list(&imeis, at(begin), at(end)).await.expect("alarms");
    let expected: usize = sim
        .state
        .fleet
        .vehicles()
        .iter()
        .map(|v| sim.state.fleet.alarms(v.index, begin, end).len())
        .sum();
    assert!(expected > 100, "{expected}");
    let mut keys: Vec<(String, String, i64)> = alarms
        .iter()
        .map(|a| convert::alarm_event(a, Utc::now()).expect("valid alarm"))
        .map(|a| (a.imei.to_string(), a.alarm_type, a.alarm_time.timestamp()))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), expected, "every alarm once after removing window-edge repeats");
    assert!(sim.state.calls("jimi.device.alarm.list") >= 4, "two windows of several pages");
}

#[tokio::test]
async fn an_expired_token_is_renewed_and_calls_keep_working() {
    let sim = start_sim(2, |c| c.max_token_lifetime_s = 2).await;
    let c = client(&sim);
    for _ in 0..4 {
        c.device_list(None).await.expect("call across token expiry");
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    let renewals =
        sim.state.calls("jimi.oauth.token.get") + sim.state.calls("jimi.oauth.token.refresh");
    assert!(renewals >= 2, "a 2 s token is renewed: {renewals}");
}

#[tokio::test]
async fn a_token_invalidated_by_another_login_is_fetched_again_once() {
    let sim = start_sim(2, |c| c.invalidate_on_reissue = true).await;
    let (a, b) = (client(&sim), client(&sim));
    a.device_list(None).await.expect("a logs in");
    b.device_list(None).await.expect("b logs in, invalidating a's token");
    a.device_list(None).await.expect("a gets 1004, logs in again and succeeds");
    assert_eq!(sim.state.faults(1004), 1);
    assert_eq!(sim.state.calls("jimi.oauth.token.get"), 3);
}

#[tokio::test]
async fn rate_limited_calls_back_off_and_then_succeed() {
    let sim = start_sim(2, |c| c.rate_limit_per_s = Some(2)).await;
    let mut cfg = client_config(&sim);
    cfg.backoff_base = Duration::from_millis(300);
    cfg.backoff_max = Duration::from_millis(1200);
    cfg.max_retries = 6;
    let c = TracksolidClient::new(cfg).expect("client");
    for _ in 0..6 {
        c.device_list(None).await.expect("eventually answered");
    }
    assert!(sim.state.faults(1006) > 0, "the limit was hit");
}

#[tokio::test]
async fn each_vendor_error_surfaces_as_its_variant() {
    let sim = start_sim(2, |_| {}).await;
    let mut wrong_password = client_config(&sim);
    wrong_password.password = Secret::new("not-the-password".to_owned());
    let err = TracksolidClient::new(wrong_password)
        .expect("client")
        .device_list(None)
        .await
        .expect_err("refused");
    assert!(matches!(err, VendorError::BadCredentials { .. }), "{err:?}");

    let mut wrong_secret = client_config(&sim);
    wrong_secret.app_secret = Secret::new("another-secret".to_owned());
    let err = TracksolidClient::new(wrong_secret)
        .expect("client")
        .device_list(None)
        .await
        .expect_err("refused");
    assert!(matches!(err, VendorError::BadRequest { code: 1001, .. }), "{err:?}");

    let c = client(&sim);
    let stranger = Imei::parse("359339075099999").expect("imei");
    let err = c
        .track_list(&stranger, Utc::now() - TimeDelta::hours(2), Utc::now())
        .await
        .expect_err("unknown");
    assert!(matches!(err, VendorError::IllegalDevice { .. }), "{err:?}");
    let err = c.location_get(&[stranger]).await.expect_err("unknown");
    assert!(matches!(err, VendorError::IllegalDevice { .. }), "{err:?}");
}

#[tokio::test]
async fn ten_thousand_vehicles_are_listed_with_their_live_locations() {
    let sim = start_sim(10_000, |_| {}).await;
    let c = client(&sim);
    assert_eq!(c.device_list(None).await.expect("device list").len(), 10_000);
    let locations = c.location_list(None).await.expect("location list");
    let reporting = sim.state.fleet.vehicles().iter().filter(|v| v.reports_gps).count();
    assert_eq!(locations.len(), reporting);
}
