//! Every API route: the role matrix (each role and anonymous against each route, with a token
//! and with a session), and the OpenAPI document against the router: the same routes, each
//! answered, each documented with its security, parameters and error bodies.

mod support;

use std::collections::BTreeSet;

use fleet_http::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};
use support::{kind, password_of, App, As};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Viewer,
    Operator,
    Admin,
}

const WHO: [Who; 4] = [Who::Anonymous, Who::Viewer, Who::Operator, Who::Admin];

/// One route and the status each caller gets: [anonymous, viewer, operator, admin].
struct Row {
    method: Method,
    /// As documented, with `{id}`.
    path: &'static str,
    expect: [u16; 4],
}

const ACK: &str = "/api/v1/alarms/{device_id}/{alarm_time}/{alarm_type}/ack";
const OVERRIDE: &str = "/api/v1/settings/analytics/{scope}/{key}";
const ALARM_TIME: &str = "2026-11-20T08:00:00Z";

/// The role matrix. Ordered so that what a row destroys (a user, a token, the caller's
/// session) is not needed by later rows.
fn matrix() -> Vec<Row> {
    let row = |method: Method, path: &'static str, expect: [u16; 4]| Row { method, path, expect };
    vec![
        row(Method::GET, "/api/v1/openapi.json", [200, 200, 200, 200]),
        row(Method::GET, "/api/v1/auth/me", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/devices", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/devices/{id}", [401, 200, 200, 200]),
        row(Method::PATCH, "/api/v1/devices/{id}", [401, 403, 200, 200]),
        row(Method::GET, "/api/v1/fleet/live", [401, 200, 200, 200]),
        // trips, stops, tracks and a vehicle's day
        row(Method::GET, "/api/v1/trips", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/trips/{device_id}/{start_time}", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/trips/{device_id}/{start_time}/track", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/stops", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/devices/{id}/track", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/devices/{id}/day", [401, 200, 200, 200]),
        // operations: alarms, geofences, analytics settings, KPIs and ingest health
        row(Method::GET, "/api/v1/alarms", [401, 200, 200, 200]),
        row(Method::POST, ACK, [401, 403, 200, 200]),
        row(Method::GET, "/api/v1/alarms/summary", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/geofences", [401, 200, 200, 200]),
        row(Method::POST, "/api/v1/geofences", [401, 403, 403, 201]),
        row(Method::GET, "/api/v1/geofences/{id}", [401, 200, 200, 200]),
        row(Method::PATCH, "/api/v1/geofences/{id}", [401, 403, 403, 200]),
        row(Method::DELETE, "/api/v1/geofences/{id}", [401, 403, 403, 204]),
        row(Method::GET, "/api/v1/settings/analytics", [401, 200, 200, 200]),
        row(Method::PUT, "/api/v1/settings/analytics/global", [401, 403, 403, 200]),
        row(Method::PUT, OVERRIDE, [401, 403, 403, 200]),
        row(Method::DELETE, OVERRIDE, [401, 403, 403, 204]),
        row(Method::GET, "/api/v1/kpis/daily", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/kpis/rollup", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/kpis/utilisation-trend", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/kpis/leaderboard", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/kpis/not-moved-today", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/fleet/idle", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/kpis/reconciliation", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/health/ingest", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/health/devices", [401, 200, 200, 200]),
        // notifications: admins' rules, webhooks and delivery log
        row(Method::GET, "/api/v1/notifications/kinds", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/notifications/rules", [401, 403, 403, 200]),
        row(Method::POST, "/api/v1/notifications/rules", [401, 403, 403, 201]),
        row(Method::GET, "/api/v1/notifications/rules/{id}", [401, 403, 403, 200]),
        row(Method::PUT, "/api/v1/notifications/rules/{id}", [401, 403, 403, 200]),
        row(Method::POST, "/api/v1/notifications/rules/{id}/test", [401, 403, 403, 202]),
        row(Method::DELETE, "/api/v1/notifications/rules/{id}", [401, 403, 403, 204]),
        row(Method::GET, "/api/v1/notifications/webhooks", [401, 403, 403, 200]),
        row(Method::POST, "/api/v1/notifications/webhooks", [401, 403, 403, 201]),
        row(Method::PUT, "/api/v1/notifications/webhooks/{id}", [401, 403, 403, 200]),
        row(Method::POST, "/api/v1/notifications/webhooks/{id}/rotate", [401, 403, 403, 200]),
        row(Method::DELETE, "/api/v1/notifications/webhooks/{id}", [401, 403, 403, 204]),
        row(Method::GET, "/api/v1/notifications/deliveries", [401, 403, 403, 200]),
        row(Method::POST, "/api/v1/notifications/deliveries/{id}/retry", [401, 403, 403, 200]),
        // everyone's own notification settings and bell
        row(Method::GET, "/api/v1/me/contacts", [401, 200, 200, 200]),
        row(Method::POST, "/api/v1/me/contacts", [401, 201, 201, 201]),
        row(Method::POST, "/api/v1/me/contacts/{id}/test", [401, 202, 202, 202]),
        row(Method::DELETE, "/api/v1/me/contacts/{id}", [401, 204, 204, 204]),
        row(Method::GET, "/api/v1/me/quiet-hours", [401, 200, 200, 200]),
        row(Method::PUT, "/api/v1/me/quiet-hours", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/me/mutes", [401, 200, 200, 200]),
        row(Method::PUT, "/api/v1/me/mutes/{id}", [401, 200, 200, 200]),
        row(Method::DELETE, "/api/v1/me/mutes/{id}", [401, 204, 204, 204]),
        row(Method::GET, "/api/v1/me/notifications", [401, 200, 200, 200]),
        row(Method::POST, "/api/v1/me/notifications/{id}/read", [401, 200, 200, 200]),
        row(Method::POST, "/api/v1/me/notifications/read-all", [401, 200, 200, 200]),
        // live stream
        row(Method::GET, "/api/v1/stream", [401, 200, 200, 200]),
        row(Method::GET, "/api/v1/users", [401, 403, 403, 200]),
        row(Method::POST, "/api/v1/users", [401, 403, 403, 201]),
        row(Method::GET, "/api/v1/users/{id}", [401, 403, 403, 200]),
        row(Method::PATCH, "/api/v1/users/{id}", [401, 403, 403, 200]),
        row(Method::GET, "/api/v1/tokens", [401, 403, 403, 200]),
        row(Method::POST, "/api/v1/tokens", [401, 403, 403, 201]),
        row(Method::DELETE, "/api/v1/tokens/{id}", [401, 403, 403, 204]),
        row(Method::DELETE, "/api/v1/users/{id}", [401, 403, 403, 204]),
        row(Method::POST, "/api/v1/auth/logout", [401, 204, 204, 204]),
        // last: logging in ends the session the request carries
        row(Method::POST, "/api/v1/auth/login", [200, 200, 200, 200]),
    ]
}

/// Ids the rows act on, fresh for each pass.
struct Targets {
    device: i32,
    user: i32,
    token: i32,
    geofence: i32,
    rule: i32,
    /// A rule each caller mutes and unmutes.
    muted_rule: i32,
    webhook: i32,
    /// A dead letter to retry.
    delivery: i64,
    /// Each caller's own contact point and notification (anonymous: none).
    contacts: [i32; 4],
    notifications: [i64; 4],
}

/// Start time of the trip `targets` gives the device.
const TRIP_START: &str = "2026-03-02T06:00:00Z";

async fn targets(app: &App, pass: &str, callers: &[i32]) -> Targets {
    let device = app.device(&format!("86812030396{:04}", pass.len()), "Van").await;
    let user = app.user(&format!("target-{pass}"), Role::Viewer).await;
    let token = fleet_accounts::token::create(&app.db.pool, user, "target", None)
        .await
        .expect("token")
        .info
        .token_id;
    sqlx::query(
        "insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat,
             end_lon, distance_m, duration_s, point_count, end_reason)
         values ($1, $2::timestamptz, $2::timestamptz + interval '20 minutes', -1.28, 36.82,
             -1.3, 36.8, 5000, 1200, 10, 'work_stop')",
    )
    .bind(device)
    .bind(TRIP_START)
    .execute(&app.db.pool)
    .await
    .expect("trip");
    // one alarm per caller, so that each acknowledgement finds it open
    for who in WHO {
        sqlx::query(
            "insert into fleet.alarms (device_id, alarm_time, alarm_type, source)
             values ($1, $2::timestamptz, $3, 'push')",
        )
        .bind(device)
        .bind(ALARM_TIME)
        .bind(format!("probe-{who:?}"))
        .execute(&app.db.pool)
        .await
        .expect("alarm");
    }
    let geofence = sqlx::query_scalar(
        "insert into fleet.geofences (name, kind, center_lat, center_lon, radius_m)
         values ($1, 'circle', -1.3, 36.8, 100) returning geofence_id",
    )
    .bind(format!("target-{pass}"))
    .fetch_one(&app.db.pool)
    .await
    .expect("geofence");
    let rule = |name: String| {
        sqlx::query_scalar::<_, i32>(
            "insert into fleet.notify_rules (name, kinds, channels, addresses)
             values ($1, '{alarm.safety}', '{email}',
                     '[{\"channel\": \"email\", \"to\": \"ops@example.com\"}]')
             returning rule_id",
        )
        .bind(name)
        .fetch_one(&app.db.pool)
    };
    let (rule, muted_rule) = (
        rule(format!("target-{pass}")).await.expect("rule"),
        rule(format!("muted-{pass}")).await.expect("rule"),
    );
    let webhook = sqlx::query_scalar(
        "insert into fleet.notify_webhooks (name, url, secret)
         values ($1, 'https://example.com/hook', repeat('s', 64)) returning webhook_id",
    )
    .bind(format!("target-{pass}"))
    .fetch_one(&app.db.pool)
    .await
    .expect("webhook");
    let delivery = sqlx::query_scalar(
        "insert into fleet.notify_outbox (channel, address, state, idempotency_key, is_test)
         values ('email', 'ops@example.com', 'dead', gen_random_uuid()::text, true)
         returning delivery_id",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("dead letter");
    let (mut contacts, mut notifications) = ([0; 4], [0; 4]);
    for (i, user) in callers.iter().enumerate() {
        contacts[i + 1] = sqlx::query_scalar(
            "insert into fleet.notify_contacts (user_id, channel, address)
             values ($1, 'email', $2) returning contact_id",
        )
        .bind(user)
        .bind(format!("target-{pass}-{i}@example.com"))
        .fetch_one(&app.db.pool)
        .await
        .expect("contact");
        notifications[i + 1] = sqlx::query_scalar(
            "insert into fleet.notify_inbox (user_id, event_time, kind, severity, title, body)
             values ($1, now(), 'test', 'info', 'target', 'target') returning notification_id",
        )
        .bind(user)
        .fetch_one(&app.db.pool)
        .await
        .expect("notification");
    }
    Targets {
        device,
        user,
        token,
        geofence,
        rule,
        muted_rule,
        webhook,
        delivery,
        contacts,
        notifications,
    }
}

/// The concrete path of a row for one caller, with its query string.
fn ops_path(path: &str, t: &Targets, who: Who) -> String {
    let query = match path {
        "/api/v1/kpis/daily"
        | "/api/v1/kpis/rollup"
        | "/api/v1/kpis/utilisation-trend"
        | "/api/v1/kpis/leaderboard"
        | "/api/v1/kpis/reconciliation"
        | "/api/v1/alarms/summary" => "?from=2026-11-01&to=2026-11-30",
        _ => "",
    };
    let own = WHO.iter().position(|w| *w == who).unwrap_or(0);
    let path = if path.starts_with("/api/v1/me/contacts/") {
        path.replace("{id}", &t.contacts[own].to_string())
    } else if path.starts_with("/api/v1/me/notifications/") {
        path.replace("{id}", &t.notifications[own].to_string())
    } else {
        path.to_owned()
    };
    path.replace("{device_id}", &t.device.to_string())
        .replace("{alarm_time}", ALARM_TIME)
        .replace("{alarm_type}", &format!("probe-{who:?}"))
        .replace("{scope}", "city")
        .replace("{key}", "Nairobi")
        + query
}

fn body_for(row: &Row, pass: &str, who: Who) -> Option<Value> {
    match (row.method.as_str(), row.path) {
        ("POST", "/api/v1/auth/login") => {
            Some(json!({"username": "login-probe", "password": password_of("login-probe")}))
        }
        ("PATCH", "/api/v1/devices/{id}") => Some(json!({"name": format!("Van {who:?}")})),
        ("POST", "/api/v1/users") => Some(json!({
            "username": format!("new-{pass}-{who:?}"), "password": "long enough", "role": "viewer"
        })),
        ("PATCH", "/api/v1/users/{id}") => Some(json!({"display_name": "changed"})),
        ("POST", "/api/v1/tokens") => Some(json!({"name": format!("{pass}-{who:?}")})),
        ("POST", ACK) => Some(json!({"note": "seen"})),
        ("POST", "/api/v1/geofences") => Some(json!({
            "name": format!("g-{pass}-{who:?}"), "kind": "circle",
            "center": {"lat": -1.29, "lon": 36.82}, "radius_m": 150
        })),
        ("PATCH", "/api/v1/geofences/{id}") => Some(json!({"speed_limit_kmh": 50})),
        ("PUT", "/api/v1/settings/analytics/global") => {
            Some(serde_json::to_value(fleet_core::AnalyticsSettings::default()).expect("json"))
        }
        ("PUT", OVERRIDE) => Some(json!({"speed_limit_kmh": 60})),
        ("POST" | "PUT", "/api/v1/notifications/rules" | "/api/v1/notifications/rules/{id}") => {
            Some(json!({
                "name": format!("r-{pass}-{who:?}"), "kinds": ["alarm.safety"],
                "channels": ["email"],
                "recipients": {"addresses": [{"channel": "email", "to": "ops@example.com"}]}
            }))
        }
        (
            "POST" | "PUT",
            "/api/v1/notifications/webhooks" | "/api/v1/notifications/webhooks/{id}",
        ) => Some(json!({"name": format!("w-{pass}-{who:?}"), "url": "https://example.com/h"})),
        ("POST", "/api/v1/me/contacts") => {
            Some(json!({"channel": "email", "address": format!("{pass}-{who:?}@example.com")}))
        }
        ("PUT", "/api/v1/me/quiet-hours") => Some(json!({"from": "22:00", "to": "06:00"})),
        ("PUT", "/api/v1/me/mutes/{id}") => Some(json!({})),
        _ => None,
    }
}

#[tokio::test]
async fn every_role_gets_the_documented_status_on_every_route_with_tokens_and_sessions() {
    let app = App::start().await;
    app.user("login-probe", Role::Viewer).await;
    let mut ids = Vec::new();
    for (name, role) in
        [("viewer", Role::Viewer), ("operator", Role::Operator), ("admin", Role::Admin)]
    {
        ids.push(app.user(name, role).await);
    }
    for pass in ["token", "session"] {
        let callers: Vec<As> = if pass == "token" {
            let mut c = vec![As::Anonymous];
            for id in &ids {
                c.push(As::Bearer(app.token(*id).await));
            }
            c
        } else {
            vec![
                As::Anonymous,
                As::Session(app.login("viewer").await),
                As::Session(app.login("operator").await),
                As::Session(app.login("admin").await),
            ]
        };
        let t = targets(&app, pass, &ids).await;
        let mut failures = Vec::new();
        for row in matrix() {
            let id = match row.path {
                p if p.starts_with("/api/v1/devices/") => t.device.to_string(),
                p if p.starts_with("/api/v1/users/") => t.user.to_string(),
                p if p.starts_with("/api/v1/geofences/") => t.geofence.to_string(),
                p if p.starts_with("/api/v1/notifications/rules/") => t.rule.to_string(),
                p if p.starts_with("/api/v1/me/mutes/") => t.muted_rule.to_string(),
                p if p.starts_with("/api/v1/notifications/webhooks/") => t.webhook.to_string(),
                p if p.starts_with("/api/v1/notifications/deliveries/") => t.delivery.to_string(),
                // each caller's own contact point or notification: replaced per caller
                p if p.starts_with("/api/v1/me/") => "{id}".to_owned(),
                _ => t.token.to_string(),
            };
            let mut path = row.path.replace("{id}", &id);
            path = path
                .replace("{device_id}", &t.device.to_string())
                .replace("{start_time}", TRIP_START);
            if row.path.ends_with("/track") && row.path.starts_with("/api/v1/devices/") {
                path.push_str("?from=2026-03-02T00:00:00Z&to=2026-03-03T00:00:00Z");
            }
            for (i, who) in WHO.iter().enumerate() {
                let path = ops_path(&path, &t, *who);
                let mut req = app.call(row.method.clone(), &path, &callers[i]);
                if let Some(body) = body_for(&row, pass, *who) {
                    req = req.json(&body);
                }
                let resp = req.send().await.expect("request");
                let got = resp.status().as_u16();
                if got != row.expect[i] {
                    let body = resp.text().await.unwrap_or_default();
                    failures.push(format!(
                        "{pass}: {who:?} {} {path}: {got} (want {}) {body}",
                        row.method, row.expect[i]
                    ));
                } else if got >= 400 {
                    let (_, body) = support::json(resp).await;
                    let want = if got == 401 { "unauthenticated" } else { "forbidden" };
                    assert_eq!(kind(&body), want, "{body}");
                }
            }
        }
        assert!(failures.is_empty(), "role matrix:\n{}", failures.join("\n"));
    }
}

async fn document(app: &App) -> Value {
    let (status, doc) = app.get("/openapi.json", &As::Anonymous).await;
    assert_eq!(status, 200);
    doc
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "patch", "delete", "head", "options", "trace"]
                .contains(&method.as_str())
            {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_openapi_document_lists_exactly_the_routes_of_the_role_matrix() {
    let app = App::start().await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap_or_default().starts_with("3.1"), "{}", doc["openapi"]);
    let documented = operations(&doc);
    let tested: BTreeSet<(String, String)> =
        matrix().iter().map(|r| (r.method.to_string(), r.path.to_owned())).collect();
    assert_eq!(documented, tested, "documented vs role-matrix routes");
    assert_eq!(doc, serde_json::to_value(fleet_http::openapi()).expect("doc"), "served = built");
}

#[tokio::test]
async fn the_router_answers_every_documented_route_and_only_documented_methods() {
    let app = App::start().await;
    let doc = document(&app).await;
    let documented = operations(&doc);
    for (method, path) in &documented {
        let concrete = path.replace("{id}", "1");
        let (status, body) = app
            .bare(Method::from_bytes(method.as_bytes()).expect("method"), &concrete, &As::Anonymous)
            .await;
        let fallback = status == 405
            || (status == 404
                && body["detail"].as_str().unwrap_or_default().contains("no such API route"));
        assert!(!fallback, "{method} {path} is documented but not routed: {status} {body}");
    }
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    for path in paths {
        let concrete = path.replace("{id}", "1");
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            if documented.contains(&(method.to_owned(), path.clone())) {
                continue;
            }
            let (status, body) = app
                .bare(
                    Method::from_bytes(method.as_bytes()).expect("method"),
                    &concrete,
                    &As::Anonymous,
                )
                .await;
            assert_eq!(
                (status, kind(&body)),
                (405, "method-not-allowed"),
                "{method} {path} is routed but not documented"
            );
        }
    }
    let (status, body) = app.get("/api/v1/undocumented", &As::Anonymous).await;
    assert_eq!((status, kind(&body)), (404, "not-found"));
}

#[tokio::test]
async fn every_operation_documents_its_security_parameters_body_and_problems() {
    let app = App::start().await;
    let doc = document(&app).await;
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["session"]["type"], "apiKey");
    assert_eq!(
        (schemes["session"]["in"].as_str(), schemes["session"]["name"].as_str()),
        (Some("cookie"), Some("fleetd_session"))
    );
    assert_eq!(
        (schemes["bearer"]["type"].as_str(), schemes["bearer"]["scheme"].as_str()),
        (Some("http"), Some("bearer"))
    );
    let public = ["/api/v1/openapi.json", "/api/v1/auth/login"];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let what = format!("{method} {path}");
            let responses = op["responses"].as_object().expect("responses");
            let security = op["security"].as_array().cloned().unwrap_or_default();
            if public.contains(&path.as_str()) {
                assert!(security.is_empty(), "{what} is public");
            } else {
                let names: BTreeSet<String> = security
                    .iter()
                    .flat_map(|s| s.as_object().expect("req").keys().cloned())
                    .collect();
                assert_eq!(names, ["bearer".to_owned(), "session".to_owned()].into(), "{what}");
                assert!(responses.contains_key("401"), "{what} documents 401");
                let role = op["description"].as_str().unwrap_or_default();
                if role.contains("role: operator") || role.contains("role: admin") {
                    assert!(responses.contains_key("403"), "{what} documents 403");
                }
            }
            if path != "/api/v1/openapi.json" {
                for code in ["500", "503"] {
                    assert!(responses.contains_key(code), "{what} documents {code}");
                }
            }
            if op.get("requestBody").is_some() {
                for code in ["400", "413", "415", "422"] {
                    assert!(responses.contains_key(code), "{what} documents {code}");
                }
            }
            if path.contains("{id}") {
                let params = op["parameters"].as_array().expect("parameters");
                assert!(
                    params.iter().any(|p| p["name"] == "id" && p["in"] == "path"),
                    "{what}: {params:?}"
                );
                assert!(responses.contains_key("404"), "{what} documents 404");
            }
            for (code, response) in responses {
                let content = response["content"].as_object();
                if code.starts_with('4') || code.starts_with('5') {
                    let ct: Vec<&String> = content.expect("error body").keys().collect();
                    assert_eq!(ct, ["application/problem+json"], "{what} {code}");
                    let schema = &response["content"]["application/problem+json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/Problem", "{what} {code}");
                } else if code != "204" && code != "304" {
                    assert!(content.is_some_and(|c| !c.is_empty()), "{what} {code} has a body");
                }
            }
        }
    }
}
