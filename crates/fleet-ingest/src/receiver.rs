//! The push receivers under `/push`: the base URL an operator registers with the vendor, who
//! appends its own paths. `/push/notify` takes the Open API push (`msgType` + `data`), and
//! `/push/pushgps`, `/push/pushalarm`, … the Data Push (`token` + `data_list`).
//!
//! Every request must carry the shared secret (`token` in the form, or `?token=` in the
//! registered URL, which is how the Open API push, having no token field, carries it): a wrong
//! or missing one is answered 401. Bodies over the limit are answered 413. Each item is
//! validated on its own; bad items are kept as rejects with their reason, good ones stored. The
//! sender gets its success reply only after everything is durable, and 503 while the database
//! is unavailable, so it sends again: nothing acknowledged is lost.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use fleet_config::Secret;
use fleet_tracksolid::convert::{open_push_record, push_item_record, PushRecord};
use fleet_tracksolid::push::{
    parse_data_items, parse_open_push, DataPushKind, DATA_PUSH_REPLY, OPEN_PUSH_REPLY,
};
use serde_json::json;

use crate::{Record, Reject, WriteError, Writer};

/// Default largest accepted body: 50 items are a few kilobytes; a megabyte leaves room for the
/// vendor's larger kinds without letting anyone stream unbounded data in.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the receivers need.
#[derive(Debug, Clone)]
pub struct PushReceiver {
    pub writer: Writer,
    /// The shared secret; `None` refuses every push (a receiver without a secret is closed).
    pub token: Option<Secret<String>>,
    pub max_body_bytes: usize,
}

/// The `/push` routes.
pub fn routes(receiver: PushReceiver) -> Router {
    Router::new()
        .route("/push/notify", post(open_api_push))
        .route("/push/{kind}", post(data_push))
        .with_state(Arc::new(receiver))
}

fn reply(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn refusal(status: StatusCode, message: &str) -> Response {
    reply(status, json!({ "code": status.as_u16(), "msg": message }).to_string())
}

/// Reads the form (query string and body) within the size limit, and checks the secret.
async fn accept(
    r: &PushReceiver,
    channel: &str,
    query: Option<String>,
    body: Body,
) -> Result<Vec<(String, String)>, Response> {
    let mut form: Vec<(String, String)> = Vec::new();
    if let Some(q) = query {
        form.extend(url::form_urlencoded::parse(q.as_bytes()).into_owned());
    }
    // the first `token` counts, and the query comes first: a wrong one there (or no secret
    // configured) is refused before the body is read, so it holds no place while it arrives
    let in_query = form.iter().any(|(k, _)| k == "token");
    if (r.token.is_none() || in_query) && !authorised(r, &form) {
        return Err(refuse_token(r, channel));
    }
    let bytes = match to_bytes(body, r.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            r.writer.note_refused(channel);
            return Err(refusal(StatusCode::PAYLOAD_TOO_LARGE, "body too large"));
        }
    };
    form.extend(url::form_urlencoded::parse(&bytes).into_owned());
    if !authorised(r, &form) {
        return Err(refuse_token(r, channel));
    }
    Ok(form)
}

/// Whether the form's first `token` is the shared secret.
fn authorised(r: &PushReceiver, form: &[(String, String)]) -> bool {
    let sent = form.iter().find(|(k, _)| k == "token").map(|(_, v)| v.as_str());
    match (&r.token, sent) {
        (Some(secret), Some(sent)) => secret.matches(sent),
        _ => false,
    }
}

/// The 401 for a wrong or missing token, counted as refused.
fn refuse_token(r: &PushReceiver, channel: &str) -> Response {
    r.writer.note_refused(channel);
    tracing::warn!(channel, "push refused: wrong or missing token");
    refusal(StatusCode::UNAUTHORIZED, "wrong or missing token")
}

/// The form as kept with a reject, for someone diagnosing a sender: every field but the
/// shared secret. Rejects are readable by the analyst role and are in every backup, so the
/// token never goes there (only that it was sent).
fn raw_form(form: &[(String, String)]) -> String {
    form.iter()
        .map(|(k, v)| match k.as_str() {
            "token" => "token=[removed]&".to_owned(),
            _ => format!("{k}={v}&"),
        })
        .collect()
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn record_of(r: PushRecord) -> Record {
    match r {
        PushRecord::Position(x) => Record::Position(x),
        PushRecord::Alarm(x) => Record::Alarm(x),
        PushRecord::Heartbeat(x) => Record::Heartbeat(x),
        PushRecord::Event(x) => Record::Event(x),
        PushRecord::Cell(x) => Record::Cell(x),
        PushRecord::Sensor(x) => Record::Sensor(x),
        PushRecord::Trip(trip) => Record::VendorTrip { trip, pushed: true },
    }
}

/// Stores `records` and answers: `ok` once durable, 503 if the database is unavailable.
async fn store(r: &PushReceiver, channel: &str, records: Vec<Record>, ok: &str) -> Response {
    match r.writer.write(channel, records).await {
        Ok(_) => reply(StatusCode::OK, ok.to_owned()),
        Err(WriteError::Unavailable(_)) | Err(WriteError::Closed) => {
            refusal(StatusCode::SERVICE_UNAVAILABLE, "storage unavailable, send again later")
        }
    }
}

async fn data_push(
    State(r): State<Arc<PushReceiver>>,
    Path(kind): Path<String>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let Some(kind) = DataPushKind::from_path(&kind) else {
        return refusal(StatusCode::NOT_FOUND, "unknown push path");
    };
    let channel = format!("push.{}", &kind.path()[5..]);
    let form = match accept(&r, &channel, query, body).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let Some(list) = field(&form, "data_list") else {
        let reject = Record::Reject(Reject::new("no data_list field", None, raw_form(&form)));
        let _ = r.writer.write(&channel, vec![reject]).await;
        return refusal(StatusCode::BAD_REQUEST, "no data_list field");
    };
    let outcomes = match parse_data_items(kind, list) {
        Ok(o) => o,
        Err(e) => {
            // the whole list is unreadable: kept as one reject, and the sender told why
            let reject =
                Record::Reject(Reject::new(format!("data_list: {e}"), None, list.to_owned()));
            return match r.writer.write(&channel, vec![reject]).await {
                Ok(_) => refusal(StatusCode::BAD_REQUEST, &format!("data_list: {e}")),
                Err(_) => refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "storage unavailable, send again later",
                ),
            };
        }
    };
    let now = Utc::now();
    let records: Vec<Record> = outcomes
        .into_iter()
        .map(|o| {
            let converted = o
                .parsed
                .map_err(|e| e.to_string())
                .and_then(|item| push_item_record(&item, now).map_err(|e| e.to_string()));
            match converted {
                Ok(rec) => record_of(rec),
                Err(reason) => Record::Reject(Reject::new(
                    format!("item {}: {reason}", o.index),
                    o.imei,
                    o.raw,
                )),
            }
        })
        .collect();
    store(&r, &channel, records, DATA_PUSH_REPLY).await
}

async fn open_api_push(
    State(r): State<Arc<PushReceiver>>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Response {
    let channel = "push.notify";
    let form = match accept(&r, channel, query, body).await {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let msg_type = field(&form, "msgType").unwrap_or_default();
    let data = field(&form, "data").unwrap_or_default();
    let record = parse_open_push(msg_type, data)
        .map_err(|e| e.to_string())
        .and_then(|push| open_push_record(&push, Utc::now()).map_err(|e| e.to_string()));
    let records = match record {
        Ok(Some(rec)) => vec![record_of(rec)],
        // raw device data: acknowledged, not stored as a record
        Ok(None) => return reply(StatusCode::OK, OPEN_PUSH_REPLY.to_owned()),
        Err(reason) => vec![Record::Reject(Reject::new(
            reason,
            None,
            format!("msgType={msg_type}&data={data}"),
        ))],
    };
    store(&r, channel, records, OPEN_PUSH_REPLY).await
}
