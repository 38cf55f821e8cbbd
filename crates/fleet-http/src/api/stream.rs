//! `/stream`: the live fleet as Server-Sent Events (`position`, `status`, `alarm`,
//! `notification` (the caller's own), `reset`),
//! fed by the listener in [`crate::stream`]. Each event has an id; a client that reconnects
//! with `Last-Event-ID` gets what it missed from the hub's ring buffer, or a `reset` event
//! when that is no longer kept. A comment line every 15 s keeps idle connections open.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use utoipa::IntoParams;

use super::extract::Query;
use crate::auth::{Principal, Viewer};
use crate::stream::access::Refusal;
use crate::stream::{Scope, StreamEvent};
use crate::{ApiError, AppState, Problem};

/// Interval of the keep-alive comment lines.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// Filters of the stream; `reset` events always pass.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Only vehicles of this cost centre (case does not matter).
    pub cost_centre: Option<String>,
    /// Only vehicles in this city (case does not matter).
    pub city: Option<String>,
    /// Only this vehicle.
    pub device_id: Option<i32>,
}

/// Whether the caller may see an event: one addressed to a user (`notification`) only when it
/// is theirs; events about vehicles, every vehicle for now (the hook for per-user vehicle
/// scopes).
fn visible(who: &Principal, scope: &Scope) -> bool {
    scope.user_id.is_none_or(|u| u == who.user_id)
}

fn same(a: &Option<String>, b: &Option<String>) -> bool {
    match a {
        None => true,
        Some(want) => b.as_deref().is_some_and(|got| got.eq_ignore_ascii_case(want.trim())),
    }
}

impl StreamQuery {
    fn wants(&self, e: &StreamEvent) -> bool {
        if e.scope.device_id.is_none() {
            return true; // reset: about everything; notification: for its user, whatever vehicle
        }
        same(&self.cost_centre, &e.scope.cost_centre)
            && same(&self.city, &e.scope.city)
            && self.device_id.is_none_or(|id| e.scope.device_id == Some(id))
    }
}

/// Live changes as Server-Sent Events.
#[utoipa::path(
    get,
    path = "/stream",
    tag = "live",
    description = "Requires role: viewer. A `text/event-stream` of the fleet's changes, each event with an `id`:\n\n\
        - `position` (`PositionEvent`): a vehicle's new latest fix\n\
        - `status` (`StatusEvent`): a vehicle became moving, idling, parked or offline\n\
        - `alarm` (`AlarmStreamEvent`): a new alarm\n\
        - `notification` (`Notification`): a new in-app notification of the caller (each user receives only their own, whatever the vehicle filters)\n\
        - `reset` (`ResetEvent`): events were lost; reload the state (GET /fleet/live) and carry on\n\n\
        A comment line (`: heartbeat`) is sent every 15 s. Reconnect with `Last-Event-ID` to get the events missed meanwhile \
        (the newest 10,000 are kept); if they are no longer kept the stream starts with `reset`.\n\n\
        A user may hold a few streams open at once (FLEETD_STREAMS_PER_USER, default 20). Each stream's credential is \
        checked again every minute and at once when a token is revoked, a session ends or a user is deactivated; \
        the stream then ends.",
    security(("session" = []), ("bearer" = [])),
    params(
        StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "Id of the last event received, to resume after it"),
    ),
    responses(
        (status = 200, description = "The event stream (never ends on its own)", content_type = "text/event-stream", body = String),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many live streams open (per user, or on this server); see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn stream(
    State(state): State<AppState>,
    Viewer(who): Viewer,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let hub = state.stream.clone();
    let ticket = hub.open_streams().open(&who).map_err(refused)?;
    let hub_closed = hub.closed();
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    let sub = hub.subscribe(last);
    let first: Vec<Event> = match &sub.reset {
        Some(reason) => vec![reset_event(&sub.current, reason)],
        None => Vec::new(),
    };
    let replay: Vec<Arc<StreamEvent>> = sub.replay;
    let (who, query) = (Arc::new(who), Arc::new(query));
    let keep = {
        let (who, query) = (who.clone(), query.clone());
        move |e: &StreamEvent| visible(&who, &e.scope) && query.wants(e)
    };
    let keep_live = keep.clone();
    let hub_replay = hub.clone();
    let replayed = stream::iter(replay)
        .filter(move |e| std::future::ready(keep(e)))
        .map(move |e| Ok(to_sse(&hub_replay, &e)));
    let live = BroadcastStream::new(sub.rx).filter_map(move |r| {
        let out = match r {
            Ok(e) if keep_live(&e) => Some(Ok(to_sse(&hub, &e))),
            Ok(_) => None,
            Err(BroadcastStreamRecvError::Lagged(n)) => Some(Ok(Event::default()
                .event("reset")
                .data(format!(r#"{{"reason":"this client fell behind by {n} events"}}"#)))),
        };
        std::future::ready(out)
    });
    // ends at shutdown, or when the credential is revoked (the ticket is re-checked)
    let ended = ticket.ended.clone().cancelled_owned();
    let closed = async move {
        tokio::select! {
            _ = hub_closed => {}
            _ = ended => {}
        }
    };
    let events = stream::iter(first.into_iter().map(Ok))
        .chain(replayed)
        .chain(live)
        .take_until(closed)
        // the ticket lives as long as the stream: dropping the stream frees its place
        .map(move |e| {
            let _ = &ticket;
            e
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat")))
}

fn refused(r: Refusal) -> ApiError {
    let detail = match r {
        Refusal::PerUser(n) => {
            format!("at most {n} live streams per user are open at once; close one first")
        }
        Refusal::Total(n) => format!("the server has its {n} live streams open; try again later"),
    };
    ApiError::TooBusy { detail, retry_after: Duration::from_secs(10) }
}

fn to_sse(hub: &crate::stream::StreamHub, e: &StreamEvent) -> Event {
    Event::default().id(hub.id(e.seq)).event(e.kind).data(&e.data)
}

fn reset_event(id: &str, reason: &str) -> Event {
    let data = serde_json::json!({ "reason": reason }).to_string();
    Event::default().id(id).event("reset").data(data)
}
