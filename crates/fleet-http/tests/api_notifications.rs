//! Notifications over real HTTP: admins' rules (round trip, 422s naming the field), webhooks
//! (the secret shown once), test sends that queue outbox rows, the delivery log and retries;
//! each user's own contact points, quiet hours, mutes and bell, never another's; and the live
//! stream's `notification` event, to its user only.

mod support;

use fleet_http::auth::Role;
use reqwest::Method;
use serde_json::{json, Value};
use support::live::{live, Client};
use support::{kind, App, As};

async fn admin(app: &App) -> (i32, As) {
    let id = app.user("ada", Role::Admin).await;
    (id, As::Bearer(app.token(id).await))
}

fn rule_body(user: i32) -> Value {
    json!({
        "name": "SOS at night",
        "kinds": ["alarm.safety", "alarm.power"],
        "scope": {"cities": ["Nairobi"]},
        "schedule": {"days": [1, 2, 3, 4, 5], "from": "18:00", "to": "06:00"},
        "throttle_s": 300,
        "params": {"alarm_types": ["1"]},
        "recipients": {
            "user_ids": [user],
            "addresses": [{"channel": "email", "to": "Control@Example.COM"}]
        },
        "channels": ["email", "in_app"],
        "severity": "critical"
    })
}

/// The fields a 422 names.
fn fields(status: u16, body: &Value) -> Vec<String> {
    assert_eq!((status, kind(body)), (422, "validation"), "{body}");
    body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn rules_round_trip_and_bad_fields_are_422_naming_the_field() {
    let app = App::start().await;
    let (ada, who) = admin(&app).await;
    let (status, created) =
        app.send(Method::POST, "/notifications/rules", &who, rule_body(ada)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["rule_id"].as_i64().expect("id");
    assert_eq!(created["created_by"], ada);
    assert_eq!(created["kinds"], json!(["alarm.safety", "alarm.power"]));
    assert_eq!(created["schedule"]["from"], "18:00:00");
    // addresses are stored normalised
    assert_eq!(created["recipients"]["addresses"][0]["to"], "Control@example.com");
    let (status, got) = app.get(&format!("/notifications/rules/{id}"), &who).await;
    assert_eq!((status, &got), (200, &created));
    let (_, list) = app.get("/notifications/rules", &who).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));

    let mut changed = rule_body(ada);
    changed["enabled"] = json!(false);
    changed["schedule"] = Value::Null;
    let (status, put) =
        app.send(Method::PUT, &format!("/notifications/rules/{id}"), &who, changed).await;
    assert_eq!(status, 200, "{put}");
    assert_eq!((put["enabled"].clone(), put["schedule"].clone()), (json!(false), Value::Null));

    let bad = |patch: &dyn Fn(&mut Value)| {
        let mut b = rule_body(ada);
        patch(&mut b);
        b
    };
    let cases: Vec<(Value, &str)> = vec![
        (bad(&|b| b["kinds"] = json!(["alarm.sos"])), "kinds[0]"),
        (bad(&|b| b["recipients"] = json!({})), "recipients"),
        (
            bad(&|b| b["recipients"]["addresses"][0]["to"] = json!("not-an-address")),
            "recipients.addresses[0].to",
        ),
        (
            bad(&|b| {
                b["channels"] = json!(["sms"]);
                b["recipients"]["addresses"] = json!([{"channel": "sms", "to": "0712345678"}]);
            }),
            "recipients.addresses[0].to",
        ),
        (bad(&|b| b["schedule"]["days"] = json!([])), "schedule.days"),
        (bad(&|b| b["recipients"]["user_ids"] = json!([ada, 9999])), "recipients.user_ids"),
        (bad(&|b| b["scope"]["geofence_ids"] = json!([4242])), "scope.geofence_ids"),
        (bad(&|b| b["scope"]["device_ids"] = json!([4243])), "scope.device_ids"),
        (
            bad(&|b| {
                b["channels"] = json!(["webhook"]);
                b["recipients"] = json!({"webhook_ids": [77]});
            }),
            "recipients.webhook_ids",
        ),
        (bad(&|b| b["throttle_s"] = json!(-1)), "throttle_s"),
        (bad(&|b| b["scope"]["cities"] = json!(["Nai\u{0}robi"])), "scope.cities"),
        (bad(&|b| b["scope"]["town"] = json!("Nairobi")), "scope.town"),
    ];
    for (body, field) in cases {
        let (status, problem) =
            app.send(Method::POST, "/notifications/rules", &who, body.clone()).await;
        assert_eq!(fields(status, &problem), [field], "{body}");
        let (status, problem) =
            app.send(Method::PUT, &format!("/notifications/rules/{id}"), &who, body).await;
        assert_eq!(fields(status, &problem), [field]);
    }
    let (status, unchanged) = app.get(&format!("/notifications/rules/{id}"), &who).await;
    assert_eq!((status, unchanged), (200, put), "refused edits changed nothing");

    let (status, _) = app.bare(Method::DELETE, &format!("/notifications/rules/{id}"), &who).await;
    assert_eq!(status, 204);
    let (status, body) = app.get(&format!("/notifications/rules/{id}"), &who).await;
    assert_eq!((status, kind(&body)), (404, "not-found"));

    let (status, catalogue) = app.get("/notifications/kinds", &who).await;
    assert_eq!(status, 200);
    let items = catalogue["items"].as_array().expect("items");
    assert_eq!(items.len(), fleet_core::notification::EventKind::ALL.len());
    let idling = items.iter().find(|k| k["kind"] == "idling").expect("idling");
    assert_eq!(idling["params"], json!(["idle_min"]));

    // the document describes what webhooks receive and the stream's notification event
    let (_, doc) = app.get("/openapi.json", &As::Anonymous).await;
    for schema in ["WebhookPayload", "Notification", "Rule", "Delivery"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema} documented");
    }
}

#[tokio::test]
async fn a_viewer_cannot_touch_rules_but_manages_their_own_contact_points() {
    let app = App::start().await;
    let (ada, admin) = admin(&app).await;
    let vic = app.user("vic", Role::Viewer).await;
    let viewer = As::Bearer(app.token(vic).await);
    let (status, _) = app.get("/notifications/rules", &viewer).await;
    assert_eq!(status, 403);
    let (status, _) = app.send(Method::POST, "/notifications/rules", &viewer, rule_body(vic)).await;
    assert_eq!(status, 403);
    let (status, _) = app.get("/notifications/deliveries", &viewer).await;
    assert_eq!(status, 403);

    let (status, c) = app
        .send(
            Method::POST,
            "/me/contacts",
            &viewer,
            json!({"channel": "email", "address": " Vic@Example.com ", "label": "work"}),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["address"], "Vic@example.com");
    let (status, p) = app
        .send(Method::POST, "/me/contacts", &viewer, json!({"channel": "sms", "address": "0712"}))
        .await;
    assert_eq!(fields(status, &p), ["address"]);
    let (status, p) = app
        .send(Method::POST, "/me/contacts", &viewer, json!({"channel": "in_app", "address": "x"}))
        .await;
    assert_eq!(fields(status, &p), ["channel"]);
    let (status, p) = app
        .send(
            Method::POST,
            "/me/contacts",
            &viewer,
            json!({"channel": "email", "address": "Vic@EXAMPLE.com"}),
        )
        .await;
    assert_eq!((status, kind(&p)), (409, "conflict"));
    let (_, mine) = app.get("/me/contacts", &viewer).await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1));
    let (_, theirs) = app.get("/me/contacts", &admin).await;
    assert_eq!(theirs["items"], json!([]), "the admin sees only their own");
    let contact = c["contact_id"].as_i64().expect("id");
    let (status, _) = app.bare(Method::DELETE, &format!("/me/contacts/{contact}"), &admin).await;
    assert_eq!(status, 404, "another user's contact point is not found");
    let (status, _) = app.bare(Method::POST, &format!("/me/contacts/{contact}/test"), &admin).await;
    assert_eq!(status, 404);

    // the test message goes to the outbox, as a test, without an event
    let (status, sent) =
        app.bare(Method::POST, &format!("/me/contacts/{contact}/test"), &viewer).await;
    assert_eq!(status, 202, "{sent}");
    let row: (Option<i64>, bool, String, String, Option<i32>, Value) = sqlx::query_as(
        "select event_id, is_test, channel, address, user_id, test_subject
         from fleet.notify_outbox where delivery_id = $1",
    )
    .bind(sent["deliveries"][0].as_i64().expect("id"))
    .fetch_one(&app.db.pool)
    .await
    .expect("outbox row");
    assert_eq!(
        row,
        (
            None,
            true,
            "email".into(),
            "Vic@example.com".into(),
            Some(vic),
            json!({"who": "vic", "what": "contact point"})
        )
    );

    // quiet hours and mutes are the caller's own
    let (status, q) = app
        .send(Method::PUT, "/me/quiet-hours", &viewer, json!({"from": "22:00", "to": "06:30"}))
        .await;
    assert_eq!(status, 200, "{q}");
    assert_eq!(
        (q["from"].as_str(), q["days"].as_array().map(Vec::len)),
        (Some("22:00:00"), Some(7))
    );
    let (status, p) =
        app.send(Method::PUT, "/me/quiet-hours", &viewer, json!({"from": "22:00"})).await;
    assert_eq!(fields(status, &p), ["to"]);
    let (_, q) = app.get("/me/quiet-hours", &admin).await;
    assert_eq!(q["from"], Value::Null, "the admin's are unset");
    let (_, rule) = app.send(Method::POST, "/notifications/rules", &admin, rule_body(ada)).await;
    let rule = rule["rule_id"].as_i64().expect("rule");
    let (status, m) =
        app.send(Method::PUT, &format!("/me/mutes/{rule}"), &viewer, json!({"until": null})).await;
    assert_eq!((status, m["rule_name"].as_str()), (200, Some("SOS at night")), "{m}");
    let (status, _) = app.send(Method::PUT, "/me/mutes/9999", &viewer, json!({})).await;
    assert_eq!(status, 404);
    let (_, mutes) = app.get("/me/mutes", &viewer).await;
    assert_eq!(mutes["items"][0]["rule_id"], rule);
    let (_, mutes) = app.get("/me/mutes", &admin).await;
    assert_eq!(mutes["items"], json!([]));
    let (status, _) = app.bare(Method::DELETE, &format!("/me/mutes/{rule}"), &viewer).await;
    assert_eq!(status, 204);
    let (status, _) = app.bare(Method::DELETE, &format!("/me/mutes/{rule}"), &viewer).await;
    assert_eq!(status, 404);
}

async fn inbox_row(app: &App, user: i32, title: &str) -> i64 {
    sqlx::query_scalar(
        "insert into fleet.notify_inbox (user_id, event_time, kind, severity, title, body)
         values ($1, now(), 'alarm.safety', 'critical', $2, 'SOS') returning notification_id",
    )
    .bind(user)
    .bind(title)
    .fetch_one(&app.db.pool)
    .await
    .expect("inbox row")
}

#[tokio::test]
async fn users_see_and_mark_only_their_own_notifications() {
    let app = App::start().await;
    let (ada, admin) = admin(&app).await;
    let vic = app.user("vic", Role::Viewer).await;
    let viewer = As::Bearer(app.token(vic).await);
    let first = inbox_row(&app, vic, "one").await;
    let second = inbox_row(&app, vic, "two").await;
    let theirs = inbox_row(&app, ada, "admin's").await;

    let (status, page) = app.get("/me/notifications?limit=1", &viewer).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        (page["unread"].as_i64(), page["items"][0]["notification_id"].as_i64()),
        (Some(2), Some(second))
    );
    let after = page["next_after"].as_str().expect("more");
    let (_, page) = app.get(&format!("/me/notifications?limit=1&after={after}"), &viewer).await;
    assert_eq!(page["items"][0]["notification_id"].as_i64(), Some(first));
    assert_eq!(page["next_after"], Value::Null);

    let (status, _) =
        app.bare(Method::POST, &format!("/me/notifications/{theirs}/read"), &viewer).await;
    assert_eq!(status, 404, "another user's notification");
    let (status, r) =
        app.bare(Method::POST, &format!("/me/notifications/{first}/read"), &viewer).await;
    assert_eq!((status, r["unread"].as_i64()), (200, Some(1)));
    let (_, unread) = app.get("/me/notifications?unread=true", &viewer).await;
    assert_eq!(unread["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(unread["items"][0]["notification_id"].as_i64(), Some(second));
    let (status, r) = app.bare(Method::POST, "/me/notifications/read-all", &viewer).await;
    assert_eq!((status, r["marked"].as_i64(), r["unread"].as_i64()), (200, Some(1), Some(0)));
    let (_, page) = app.get("/me/notifications", &admin).await;
    assert_eq!(page["unread"], 1, "the admin's stays unread");
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    let (status, p) = app.get("/me/notifications?limit=0", &viewer).await;
    assert_eq!(fields(status, &p), ["limit"]);
}

#[tokio::test]
async fn webhook_secrets_are_shown_once_and_rule_tests_queue_one_message_per_address() {
    let app = App::start().await;
    let (ada, admin) = admin(&app).await;
    let (status, hook) = app
        .send(
            Method::POST,
            "/notifications/webhooks",
            &admin,
            json!({"name": "control room", "url": "https://example.com/fleetd"}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let secret = hook["secret"].as_str().expect("secret").to_owned();
    assert!(secret.len() == 64 && secret.chars().all(|c| c.is_ascii_hexdigit()), "{secret}");
    let (_, list) = app.get("/notifications/webhooks", &admin).await;
    assert!(list["items"][0].get("secret").is_none(), "{list}");
    let hook_id = hook["webhook_id"].as_i64().expect("id");
    let (status, rotated) =
        app.bare(Method::POST, &format!("/notifications/webhooks/{hook_id}/rotate"), &admin).await;
    assert_eq!(status, 200);
    assert_ne!(rotated["secret"].as_str(), Some(secret.as_str()));
    let (status, p) = app
        .send(
            Method::PUT,
            &format!("/notifications/webhooks/{hook_id}"),
            &admin,
            json!({"name": "x", "url": "ftp://example.com"}),
        )
        .await;
    assert_eq!(fields(status, &p), ["url"]);

    for (channel, address) in [("email", "ada@example.com"), ("sms", "+254712345678")] {
        let (status, _) = app
            .send(
                Method::POST,
                "/me/contacts",
                &admin,
                json!({"channel": channel, "address": address}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let body = json!({
        "name": "Everything",
        "kinds": ["alarm.safety"],
        "recipients": {
            "user_ids": [ada],
            "addresses": [{"channel": "telegram", "to": "@fleet_alerts"}],
            "webhook_ids": [hook_id]
        },
        "channels": ["email", "telegram", "webhook", "in_app"]
    });
    let (status, rule) = app.send(Method::POST, "/notifications/rules", &admin, body).await;
    assert_eq!(status, 201, "{rule}");
    let rule_id = rule["rule_id"].as_i64().expect("id");
    let (status, sent) =
        app.bare(Method::POST, &format!("/notifications/rules/{rule_id}/test"), &admin).await;
    assert_eq!(status, 202, "{sent}");
    // ada's e-mail (her SMS contact is not on a channel of the rule), the Telegram address and
    // the webhook; and an in-app test notification to ada
    let rows: Vec<(String, String, Option<i32>, bool)> = sqlx::query_as(
        "select channel, address, webhook_id, is_test from fleet.notify_outbox
         where rule_id = $1 and event_id is null order by channel",
    )
    .bind(i32::try_from(rule_id).expect("id"))
    .fetch_all(&app.db.pool)
    .await
    .expect("outbox");
    let hook32 = Some(i32::try_from(hook_id).expect("id"));
    assert_eq!(
        rows,
        [
            ("email".to_owned(), "ada@example.com".to_owned(), None, true),
            ("telegram".to_owned(), "@fleet_alerts".to_owned(), None, true),
            ("webhook".to_owned(), "https://example.com/fleetd".to_owned(), hook32, true),
        ]
    );
    assert_eq!(sent["deliveries"].as_array().map(Vec::len), Some(3));
    assert_eq!(sent["notifications"].as_array().map(Vec::len), Some(1));
    let (_, bell) = app.get("/me/notifications", &admin).await;
    assert_eq!(bell["unread"], 1);
    assert_eq!(bell["items"][0]["kind"], "test");
    assert_eq!(bell["items"][0]["rule_id"].as_i64(), Some(rule_id));

    // the log shows them, filtered; a dead letter can be retried, anything else not
    let (status, log) = app
        .get(&format!("/notifications/deliveries?rule_id={rule_id}&channel=webhook"), &admin)
        .await;
    assert_eq!(status, 200, "{log}");
    assert_eq!(log["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(log["items"][0]["test_subject"]["who"], "ada");
    let dead = log["items"][0]["delivery_id"].as_i64().expect("id");
    let (status, p) =
        app.bare(Method::POST, &format!("/notifications/deliveries/{dead}/retry"), &admin).await;
    assert_eq!((status, kind(&p)), (409, "conflict"), "pending is not dead");
    sqlx::query(
        "update fleet.notify_outbox set state = 'dead', attempts = 1, last_error = 'HTTP 500'
         where delivery_id = $1",
    )
    .bind(dead)
    .execute(&app.db.pool)
    .await
    .expect("dead");
    sqlx::query(
        "insert into fleet.notify_attempts (delivery_id, attempt, outcome, status_code)
         values ($1, 1, 'failed', 500)",
    )
    .bind(dead)
    .execute(&app.db.pool)
    .await
    .expect("attempt");
    let (_, log) = app.get("/notifications/deliveries?state=dead", &admin).await;
    assert_eq!(log["items"][0]["attempt_log"][0]["status_code"], 500, "{log}");
    assert_eq!(log["items"][0]["last_error"], "HTTP 500");
    let (status, retried) =
        app.bare(Method::POST, &format!("/notifications/deliveries/{dead}/retry"), &admin).await;
    assert_eq!((status, retried["state"].as_str()), (200, Some("pending")), "{retried}");
    let (status, p) = app.get("/notifications/deliveries?state=lost", &admin).await;
    assert_eq!(fields(status, &p), ["state"]);

    // a user deleted after the rule was saved is skipped by its test
    let gone = app.user("gone", Role::Viewer).await;
    let (_, both) = app
        .send(
            Method::POST,
            "/notifications/rules",
            &admin,
            json!({"name": "Both", "kinds": ["offline"], "channels": ["in_app"],
                   "recipients": {"user_ids": [ada, gone]}}),
        )
        .await;
    fleet_accounts::users::delete(&app.db.pool, gone).await.expect("deleted");
    let both = both["rule_id"].as_i64().expect("rule");
    let (status, sent) =
        app.bare(Method::POST, &format!("/notifications/rules/{both}/test"), &admin).await;
    assert_eq!((status, sent["notifications"].as_array().map(Vec::len)), (202, Some(1)), "{sent}");

    // deleting the webhook takes it out of the rule
    let (status, _) =
        app.bare(Method::DELETE, &format!("/notifications/webhooks/{hook_id}"), &admin).await;
    assert_eq!(status, 204);
    let (_, rule) = app.get(&format!("/notifications/rules/{rule_id}"), &admin).await;
    assert_eq!(rule["recipients"]["webhook_ids"], json!([]));
}

#[tokio::test]
async fn new_in_app_notifications_reach_only_their_user_on_the_stream() {
    let l = live().await;
    let (ada, admin) = admin(&l.app).await;
    let vera: i32 = sqlx::query_scalar("select user_id from fleet.users where username = 'vera'")
        .fetch_one(&l.app.db.pool)
        .await
        .expect("vera");
    let mut hers = Client::open(&l, "", None).await;
    // vehicle filters do not hold a user's notifications back
    let mut his = Client::open_as(&l.app, &admin, "?device_id=12345", None).await;
    let rule = |name: &str, user: i32| {
        json!({"name": name, "kinds": ["alarm.safety"], "channels": ["in_app"],
               "recipients": {"user_ids": [user]}})
    };
    let (_, to_vera) =
        l.app.send(Method::POST, "/notifications/rules", &admin, rule("to vera", vera)).await;
    let (_, to_ada) =
        l.app.send(Method::POST, "/notifications/rules", &admin, rule("to ada", ada)).await;
    for r in [&to_vera, &to_ada] {
        let id = r["rule_id"].as_i64().expect("rule");
        let (status, _) =
            l.app.bare(Method::POST, &format!("/notifications/rules/{id}/test"), &admin).await;
        assert_eq!(status, 202);
    }
    let n = hers.until("notification").await.pop().expect("notification");
    assert_eq!(n.data["rule_id"], to_vera["rule_id"], "{n:?}");
    assert_eq!(n.data["title"], "Test of the rule to vera");
    let n = his.until("notification").await.pop().expect("notification");
    assert_eq!(n.data["rule_id"], to_ada["rule_id"], "ada's first is her own: {n:?}");
}
