//! `/me/notifications`: the caller's in-app notifications (the bell), newest first, with the
//! unread count; marking one or all read. New ones also arrive live as `notification` events
//! on `/stream`, each only to its user.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use fleet_db::changes::ChangeNotice;
use fleet_db::notifications::inbox::{self, InboxItem};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::extract::{Path, Query};
use crate::api::{paging, validate};
use crate::auth::Viewer;
use crate::{ApiError, AppState, Problem};

/// One in-app notification (also the data of the stream's `notification` event).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    pub notification_id: i64,
    /// The rule that sent it; null once deleted.
    pub rule_id: Option<i32>,
    /// The vehicle it is about; null for tests.
    pub device_id: Option<i32>,
    /// The vehicle's name (or plate).
    pub device_name: Option<String>,
    /// When it happened.
    pub event_time: DateTime<Utc>,
    /// The event kind (`alarm.safety`, `offline`, …), or `test`.
    pub kind: String,
    /// info, warning or critical.
    pub severity: String,
    pub title: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// Null: unread.
    pub read_at: Option<DateTime<Utc>>,
    /// FleetNow on the vehicle at that moment (`/now/?device=<id>&at=<time>`); null for tests.
    pub url: Option<String>,
}

impl From<InboxItem> for Notification {
    fn from(i: InboxItem) -> Self {
        let url = i.device_id.map(|d| {
            format!(
                "/now/?device={d}&at={}",
                i.event_time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        });
        Notification {
            notification_id: i.notification_id,
            rule_id: i.rule_id,
            device_id: i.device_id,
            device_name: i.device_name,
            event_time: i.event_time,
            kind: i.kind,
            severity: i.severity,
            title: i.title,
            body: i.body,
            created_at: i.created_at,
            read_at: i.read_at,
            url,
        }
    }
}

/// A page of the caller's notifications.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InboxPage {
    pub items: Vec<Notification>,
    /// Pass as `after` for the next (older) page; null on the last.
    pub next_after: Option<String>,
    /// How many of the caller's notifications are unread (all pages).
    pub unread: i64,
}

/// What marking read changed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReadAll {
    /// Notifications marked read by this request.
    pub marked: u64,
    /// Unread now.
    pub unread: i64,
}

/// Which notifications to list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Only unread ones.
    #[serde(default)]
    pub unread: bool,
    /// `next_after` of the previous page.
    pub after: Option<String>,
    /// 1-200, default 50.
    pub limit: Option<i64>,
}

/// Announces in-app notifications written in `tx` on the live stream (heard when it commits).
pub(crate) async fn announce(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    pairs: &[(i32, i64)],
) -> Result<(), ApiError> {
    if pairs.is_empty() {
        return Ok(());
    }
    let key = fleet_db::notify::NotifyKey::load(&state.pool).await?;
    let notice = ChangeNotice { inbox: pairs.to_vec(), ..ChangeNotice::default() };
    notice.notify(tx, &key).await?;
    Ok(())
}

/// My notifications.
#[utoipa::path(
    get,
    path = "/me/notifications",
    tag = "notifications",
    description = "Requires role: viewer. The caller's in-app notifications, newest first, and their unread count. New ones arrive live as `notification` events on /stream.",
    security(("session" = []), ("bearer" = [])),
    params(InboxQuery),
    responses(
        (status = 200, description = "A page of notifications", body = InboxPage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_notifications(
    State(state): State<AppState>,
    Viewer(who): Viewer,
    Query(q): Query<InboxQuery>,
) -> Result<Json<InboxPage>, ApiError> {
    let mut errors = Vec::new();
    let limit = validate::limit(q.limit, 50, 200, &mut errors);
    let after: Option<i64> = paging::after(q.after.as_deref(), &mut errors);
    validate::finish(errors)?;
    let mut db = state.pool.acquire().await?;
    let mut rows = inbox::list(&mut db, who.user_id, q.unread, after, limit).await?;
    let next_after = paging::next_after(&mut rows, limit, |r| r.notification_id);
    let unread = inbox::unread_count(&mut db, who.user_id).await?;
    Ok(Json(InboxPage {
        items: rows.into_iter().map(Notification::from).collect(),
        next_after,
        unread,
    }))
}

/// Mark one of my notifications read.
#[utoipa::path(
    post,
    path = "/me/notifications/{id}/read",
    tag = "notifications",
    description = "Requires role: viewer. Marking a read one again keeps the first time.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i64, Path, description = "Notification id")),
    responses(
        (status = 200, description = "Marked; the unread count now", body = ReadAll),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The caller has no such notification", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn read_notification(
    State(state): State<AppState>,
    Viewer(who): Viewer,
    Path(id): Path<i64>,
) -> Result<Json<ReadAll>, ApiError> {
    let mut db = state.pool.acquire().await?;
    inbox::mark_read(&mut db, who.user_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("you have no notification {id}")))?;
    let unread = inbox::unread_count(&mut db, who.user_id).await?;
    Ok(Json(ReadAll { marked: 1, unread }))
}

/// Mark all my notifications read.
#[utoipa::path(
    post,
    path = "/me/notifications/read-all",
    tag = "notifications",
    description = "Requires role: viewer.",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Marked", body = ReadAll),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn read_all(
    State(state): State<AppState>,
    Viewer(who): Viewer,
) -> Result<Json<ReadAll>, ApiError> {
    let mut db = state.pool.acquire().await?;
    let marked = inbox::mark_all_read(&mut db, who.user_id).await?;
    let unread = inbox::unread_count(&mut db, who.user_id).await?;
    Ok(Json(ReadAll { marked, unread }))
}
