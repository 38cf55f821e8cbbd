//! End to end: an SOS alarm pushed to the real `fleetd serve` through `/pushalarm` reaches a
//! real SMTP server (aiosmtpd), an Africa's Talking stand-in and a webhook receiver that checks
//! the signature, each exactly once — and pushing the same alarm again sends nothing more.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use fleet_notify::channels::{verify_signature, SIGNATURE_TOLERANCE};
use fleet_testkit::{eventually, TestDb};
use serde_json::json;
use support::{fleetd, free_port, Running};

const PUSH_TOKEN: &str = "push-token-0123456789";
const SMS_USERNAME: &str = "sandbox";
const SMS_API_KEY: &str = "atsk_test_key_0123456789";
const WEBHOOK_SECRET: &str = "whsec-test-0123456789";
const EMAIL: &str = "control@example.com";
const PHONE: &str = "+254712345678";
const IMEI: &str = "861234567800007";
const VEHICLE: &str = "Lorry 7";
const PLATE: &str = "KBX 123A";

/// The aiosmtpd server of fleet-notify's tests (plain SMTP), writing each message it receives
/// to a directory; stopped when dropped.
struct SmtpSink {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Fails the test, never skips it, when Python or aiosmtpd is missing; `FLEETD_TEST_PYTHON`
    /// names the interpreter (default python3).
    fn start() -> SmtpSink {
        let python = std::env::var("FLEETD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let check = Command::new(&python).args(["-c", "import aiosmtpd"]).output();
        assert!(
            check.as_ref().is_ok_and(|o| o.status.success()),
            "this test needs a real SMTP server: Python 3 with aiosmtpd ({python}); \
             pip install aiosmtpd==1.4.6 or set FLEETD_TEST_PYTHON"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fleet-notify/tests/support/smtp_sink.py");
        let mut child = Command::new(&python)
            .arg(script)
            .arg("--dir")
            .arg(dir.path())
            .arg("--port")
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the SMTP sink's first line");
        assert_eq!(line.trim(), format!("READY {port}"), "the SMTP sink did not start");
        SmtpSink { child, port, dir }
    }

    /// The messages received so far: (envelope facts, raw message).
    fn received(&self) -> Vec<(serde_json::Value, String)> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .filter_map(|eml| {
                // the message is written before its envelope facts: count it once both are there
                let meta = std::fs::read_to_string(eml.with_extension("json")).ok()?;
                let meta = serde_json::from_str(&meta).ok()?;
                Some((meta, std::fs::read_to_string(&eml).expect("message")))
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a stand-in received: headers (lowercase names) and body.
type Log = Arc<Mutex<Vec<(HashMap<String, String>, Bytes)>>>;

fn record(log: &Log, headers: &HeaderMap, body: &Bytes) {
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    log.lock().expect("log").push((headers, body.clone()));
}

/// Serves `router` on a free local port; returns its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("stand-in") });
    url
}

/// Africa's Talking's `POST /version1/messaging` as documented: 401 without the API key,
/// otherwise 201 with the recipient's status 101 Success.
async fn africastalking(log: Log) -> String {
    serve(Router::new().route(
        "/version1/messaging",
        post(move |headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                record(&log, &headers, &body);
                if headers.get("apikey").and_then(|v| v.to_str().ok()) != Some(SMS_API_KEY) {
                    let refused = "The supplied authentication is invalid";
                    return (StatusCode::UNAUTHORIZED, refused.to_owned());
                }
                let form: HashMap<String, String> =
                    serde_urlencoded::from_bytes(&body).unwrap_or_default();
                let to = form.get("to").cloned().unwrap_or_default();
                let answer = json!({"SMSMessageData": {
                    "Message": "Sent to 1/1 Total Cost: KES 0.8000",
                    "Recipients": [{"statusCode": 101, "number": to, "status": "Success",
                                    "cost": "KES 0.8000", "messageId": "ATXid_e2e1"}]}});
                (StatusCode::CREATED, answer.to_string())
            }
        }),
    ))
    .await
}

/// A receiver that answers 200 only to a request signed with the webhook's secret.
async fn webhook_receiver(log: Log) -> String {
    let base = serve(Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                record(&log, &headers, &body);
                let signature =
                    headers.get("x-fleetd-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
                let now = chrono::Utc::now().timestamp();
                match verify_signature(WEBHOOK_SECRET, signature, &body, now, SIGNATURE_TOLERANCE) {
                    Ok(()) => (StatusCode::OK, "accepted".to_owned()),
                    Err(e) => (StatusCode::UNAUTHORIZED, e.to_string()),
                }
            }
        }),
    ))
    .await;
    format!("{base}/hook")
}

/// One SOS alarm of the vehicle in the Tracksolid Data Push form.
fn sos_form(alarm_time: &str) -> String {
    let item = json!({
        "type": "DEVICE", "msgClass": 0, "gateTime": alarm_time,
        "msg": {"deviceImei": IMEI, "alertType": "1", "alarmName": "SOS",
                "alarmTime": alarm_time, "lat": -1.2921, "lng": 36.8219, "gpsSpeed": 40}
    });
    serde_urlencoded::to_string([("token", PUSH_TOKEN), ("data_list", &json!([item]).to_string())])
        .expect("form")
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&db.pool).await.expect(sql)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sos_alarm_pushed_to_fleetd_reaches_email_sms_and_a_webhook_once() {
    let db = TestDb::migrated().await;
    let smtp = SmtpSink::start();
    let sms_log: Log = Log::default();
    let sms_url = africastalking(sms_log.clone()).await;
    let hook_log: Log = Log::default();
    let hook_url = webhook_receiver(hook_log.clone()).await;

    let device: i32 = sqlx::query_scalar(
        "insert into fleet.devices (imei, name, plate) values ($1, $2, $3) returning device_id",
    )
    .bind(IMEI)
    .bind(VEHICLE)
    .bind(PLATE)
    .fetch_one(&db.pool)
    .await
    .expect("device");
    sqlx::query(
        "with w as (insert into fleet.notify_webhooks (name, url, secret)
                    values ('control room', $1, $2) returning webhook_id)
         insert into fleet.notify_rules (name, kinds, addresses, webhook_ids, channels, severity)
         select 'SOS everywhere', '{alarm.safety}', $3, array[webhook_id],
                '{email,sms,webhook}', 'critical' from w",
    )
    .bind(&hook_url)
    .bind(WEBHOOK_SECRET)
    .bind(json!([{"channel": "email", "to": EMAIL}, {"channel": "sms", "to": PHONE}]))
    .execute(&db.pool)
    .await
    .expect("rule");

    let mut cmd = fleetd();
    cmd.args([
        "serve",
        "--database-url",
        db.url(),
        "--listen",
        &format!("127.0.0.1:{}", free_port()),
    ])
    .env("FLEETD_LOG", "warn")
    .env("FLEETD_PUSH_TOKEN", PUSH_TOKEN)
    .env("FLEETD_PUBLIC_URL", "https://fleet.example.com")
    .env("FLEETD_SMTP_HOST", "127.0.0.1")
    .env("FLEETD_SMTP_PORT", smtp.port.to_string())
    .env("FLEETD_SMTP_SECURITY", "plain")
    .env("FLEETD_SMTP_FROM", "fleetd <fleet@example.com>")
    .env("FLEETD_SMS_URL", &sms_url)
    .env("FLEETD_SMS_USERNAME", SMS_USERNAME)
    .env("FLEETD_SMS_API_KEY", SMS_API_KEY);
    let (server, base) = Running::serve(&mut cmd);

    let http = reqwest::Client::new();
    let alarm_time = chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let push = async || {
        let r = http
            .post(format!("{base}/push/pushalarm"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(sos_form(&alarm_time))
            .send()
            .await
            .expect("push");
        let status = r.status();
        assert!(status.is_success(), "{status}: {}", r.text().await.unwrap_or_default());
    };
    push().await;

    let delivered = async || {
        let emails = smtp.received();
        let sms = sms_log.lock().expect("sms").len();
        let hooks = hook_log.lock().expect("hooks").len();
        let sent =
            count(&db, "select count(*) from fleet.notify_outbox where state = 'sent'").await;
        (emails.len(), sms, hooks, sent)
    };
    eventually("e-mail, SMS and webhook delivered", Duration::from_secs(60), async || {
        delivered().await == (1, 1, 1, 3)
    })
    .await;

    let emails = smtp.received();
    let (meta, raw) = &emails[0];
    assert_eq!(meta["rcpt_tos"], json!([EMAIL]));
    assert!(raw.contains(VEHICLE) && raw.contains(PLATE), "names the vehicle: {raw}");
    assert!(raw.contains("SOS"), "{raw}");

    let (headers, body) = sms_log.lock().expect("sms")[0].clone();
    assert_eq!(headers["apikey"], SMS_API_KEY);
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).expect("form");
    assert_eq!(form["username"], SMS_USERNAME);
    assert_eq!(form["to"], PHONE);
    assert!(form["message"].contains(VEHICLE), "{form:?}");

    let (headers, body) = hook_log.lock().expect("hooks")[0].clone();
    let signature = &headers["x-fleetd-signature"];
    let now = chrono::Utc::now().timestamp();
    verify_signature(WEBHOOK_SECRET, signature, &body, now, SIGNATURE_TOLERANCE)
        .expect("a valid signature");
    let payload: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(payload["kind"], "alarm.safety", "{payload}");
    assert_eq!(payload["device"]["id"], device, "{payload}");

    let outbox: Vec<(String, String, i32)> =
        sqlx::query_as("select channel, state, attempts from fleet.notify_outbox order by channel")
            .fetch_all(&db.pool)
            .await
            .expect("outbox");
    assert_eq!(
        outbox,
        [("email", "sent", 1), ("sms", "sent", 1), ("webhook", "sent", 1)].map(|(c, s, a)| (
            c.to_owned(),
            s.to_owned(),
            a
        ))
    );

    // the same alarm again: stored once, so no new event and nothing more sent — checked over a
    // few seconds of dispatcher rounds (it polls the outbox far more often)
    push().await;
    let since = Instant::now();
    eventually("nothing more sent for the repeated alarm", Duration::from_secs(30), async || {
        assert_eq!(delivered().await, (1, 1, 1, 3), "the repeated alarm was sent again");
        since.elapsed() >= Duration::from_secs(3)
    })
    .await;
    assert_eq!(count(&db, "select count(*) from fleet.notify_outbox").await, 3);

    server.stop(Duration::from_secs(30));
}
