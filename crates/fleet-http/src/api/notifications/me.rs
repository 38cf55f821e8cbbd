//! `/me/…`: every signed-in user's own notification settings: contact points (with a test
//! message), quiet hours and muted rules. Each route acts on the caller only.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, NaiveTime, Utc};
use fleet_core::notification::address::normalise;
use fleet_core::notification::Channel;
use fleet_db::notifications::contacts::{self, Prefs};
use fleet_db::notifications::delivery_log::{TestMessage, TestSubject};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rules::TestSent;
use crate::api::extract::{JsonBody, Path};
use crate::auth::Viewer;
use crate::error::FieldError;
use crate::{ApiError, AppState, Problem};

/// One of the caller's contact points.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Contact {
    pub contact_id: i32,
    /// email, sms or telegram.
    pub channel: Channel,
    pub address: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
}

impl From<contacts::Contact> for Contact {
    fn from(c: contacts::Contact) -> Self {
        Contact {
            contact_id: c.contact_id,
            channel: Channel::from_name(&c.channel).unwrap_or(Channel::Email),
            address: c.address,
            label: c.label,
            created_at: c.created_at,
        }
    }
}

/// The caller's contact points.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContactList {
    pub items: Vec<Contact>,
}

/// A contact point to add.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateContact {
    /// email, sms or telegram.
    pub channel: Channel,
    /// An e-mail address, a phone number in E.164 form (+254712345678) or a Telegram chat id.
    pub address: String,
    /// At most 100 characters, e.g. "work phone".
    #[serde(default)]
    pub label: String,
}

/// Quiet hours: e-mail, SMS and Telegram wait them out (the in-app bell still rings); critical
/// messages get through unless `except_critical` is false. `from` and `to` null: none.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHoursBody {
    /// Days they apply (1 = Monday … 7 = Sunday); default every day.
    #[serde(default = "every_day")]
    pub days: Vec<u8>,
    /// Start, local time of the fleet ("22:00"); a window ending before it starts runs over
    /// midnight.
    #[schema(value_type = Option<String>, example = "22:00")]
    pub from: Option<NaiveTime>,
    #[schema(value_type = Option<String>, example = "06:30")]
    pub to: Option<NaiveTime>,
    /// Default true.
    #[serde(default = "yes")]
    pub except_critical: bool,
}

fn every_day() -> Vec<u8> {
    (1..=7).collect()
}

fn yes() -> bool {
    true
}

impl From<Prefs> for QuietHoursBody {
    fn from(p: Prefs) -> Self {
        QuietHoursBody {
            days: p.quiet_days.iter().filter_map(|d| u8::try_from(*d).ok()).collect(),
            from: p.quiet_from,
            to: p.quiet_to,
            except_critical: p.quiet_except_critical,
        }
    }
}

/// A rule the caller silenced.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Mute {
    pub rule_id: i32,
    pub rule_name: String,
    /// Null: for good.
    pub until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<contacts::Mute> for Mute {
    fn from(m: contacts::Mute) -> Self {
        Mute {
            rule_id: m.rule_id,
            rule_name: m.rule_name,
            until: m.until,
            created_at: m.created_at,
        }
    }
}

/// The caller's muted rules.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MuteList {
    pub items: Vec<Mute>,
}

/// How long to mute a rule.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteBody {
    /// Until this time; absent or null: for good.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

/// List my contact points.
#[utoipa::path(
    get,
    path = "/me/contacts",
    tag = "notifications",
    description = "Requires role: viewer. The caller's own e-mail addresses, phone numbers and Telegram chat ids.",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The contact points", body = ContactList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_contacts(
    State(state): State<AppState>,
    Viewer(who): Viewer,
) -> Result<Json<ContactList>, ApiError> {
    let mut db = state.pool.acquire().await?;
    let rows = contacts::list(&mut db, who.user_id).await?;
    Ok(Json(ContactList { items: rows.into_iter().map(Contact::from).collect() }))
}

/// Add a contact point.
#[utoipa::path(
    post,
    path = "/me/contacts",
    tag = "notifications",
    description = "Requires role: viewer. E-mail addresses are stored with their domain lowercased.",
    security(("session" = []), ("bearer" = [])),
    request_body = CreateContact,
    responses(
        (status = 201, description = "The new contact point", body = Contact),
        (status = 400, description = "The body is not valid JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller has this contact point already", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (a channel without addresses, an invalid address)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_contact(
    State(state): State<AppState>,
    Viewer(who): Viewer,
    JsonBody(body): JsonBody<CreateContact>,
) -> Result<(StatusCode, Json<Contact>), ApiError> {
    if !body.channel.is_personal() {
        return Err(ApiError::invalid("channel", "must be email, sms or telegram"));
    }
    let address = normalise(body.channel, &body.address)
        .map_err(|e| ApiError::invalid("address", e.to_string()))?;
    let label = body.label.trim();
    if label.chars().count() > 100 {
        return Err(ApiError::invalid("label", "at most 100 characters"));
    }
    let mut db = state.pool.acquire().await?;
    let c = contacts::insert(&mut db, who.user_id, body.channel.as_str(), &address, label)
        .await
        .map_err(|e| {
            if super::is_unique_violation(&e) {
                ApiError::Conflict(format!(
                    "you have the {} contact {address} already",
                    body.channel.as_str()
                ))
            } else {
                e.into()
            }
        })?;
    Ok((StatusCode::CREATED, Json(Contact::from(c))))
}

/// Remove a contact point.
#[utoipa::path(
    delete,
    path = "/me/contacts/{id}",
    tag = "notifications",
    description = "Requires role: viewer. Only the caller's own.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Contact point id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The caller has no such contact point", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn delete_contact(
    State(state): State<AppState>,
    Viewer(who): Viewer,
    Path(id): Path<i32>,
) -> Result<StatusCode, ApiError> {
    let mut db = state.pool.acquire().await?;
    if contacts::delete(&mut db, who.user_id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("you have no contact point {id}")))
    }
}

/// Send a test message to a contact point.
#[utoipa::path(
    post,
    path = "/me/contacts/{id}/test",
    tag = "notifications",
    description = "Requires role: viewer. Queues one test message to the caller's contact point (quiet hours do not hold it back); the dispatcher sends it within seconds.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Contact point id")),
    responses(
        (status = 202, description = "Queued", body = TestSent),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The caller has no such contact point", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn test_contact(
    State(state): State<AppState>,
    Viewer(who): Viewer,
    Path(id): Path<i32>,
) -> Result<(StatusCode, Json<TestSent>), ApiError> {
    let mut tx = state.pool.begin().await?;
    let c = contacts::get(&mut tx, who.user_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("you have no contact point {id}")))?;
    let message = TestMessage {
        rule_id: None,
        channel: c.channel,
        user_id: Some(who.user_id),
        address: c.address,
        webhook_id: None,
    };
    let subject = TestSubject { who: who.username.clone(), what: "contact point".to_owned() };
    let deliveries =
        fleet_db::notifications::delivery_log::enqueue_tests(&mut tx, &[message], &subject).await?;
    tx.commit().await?;
    Ok((StatusCode::ACCEPTED, Json(TestSent { deliveries, notifications: Vec::new() })))
}

/// My quiet hours.
#[utoipa::path(
    get,
    path = "/me/quiet-hours",
    tag = "notifications",
    description = "Requires role: viewer. `from` and `to` null: none set.",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The quiet hours", body = QuietHoursBody),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_quiet_hours(
    State(state): State<AppState>,
    Viewer(who): Viewer,
) -> Result<Json<QuietHoursBody>, ApiError> {
    let mut db = state.pool.acquire().await?;
    Ok(Json(contacts::prefs(&mut db, who.user_id).await?.into()))
}

/// Set my quiet hours.
#[utoipa::path(
    put,
    path = "/me/quiet-hours",
    tag = "notifications",
    description = "Requires role: viewer. `from` and `to` both set, or both null (no quiet hours).",
    security(("session" = []), ("bearer" = [])),
    request_body = QuietHoursBody,
    responses(
        (status = 200, description = "The quiet hours", body = QuietHoursBody),
        (status = 400, description = "The body is not valid JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put_quiet_hours(
    State(state): State<AppState>,
    Viewer(who): Viewer,
    JsonBody(body): JsonBody<QuietHoursBody>,
) -> Result<Json<QuietHoursBody>, ApiError> {
    let mut errors = Vec::new();
    match (body.from, body.to) {
        (Some(_), None) => errors.push(FieldError::new("to", "needed with from (or both null)")),
        (None, Some(_)) => errors.push(FieldError::new("from", "needed with to (or both null)")),
        _ => {}
    }
    if let Some(d) = body.days.iter().find(|d| !(1..=7).contains(*d)) {
        errors.push(FieldError::new("days", format!("{d} is not a day (1 = Monday … 7 = Sunday)")));
    } else if body.days.is_empty() && body.from.is_some() {
        errors.push(FieldError::new("days", "names no day, so the quiet hours never apply"));
    }
    crate::api::validate::finish(errors)?;
    let mut days: Vec<i16> = body.days.iter().map(|d| i16::from(*d)).collect();
    days.sort_unstable();
    days.dedup();
    let prefs = Prefs {
        quiet_days: days,
        quiet_from: body.from,
        quiet_to: body.to,
        quiet_except_critical: body.except_critical,
        updated_at: None,
    };
    let mut db = state.pool.acquire().await?;
    Ok(Json(contacts::put_prefs(&mut db, who.user_id, &prefs).await?.into()))
}

/// My muted rules.
#[utoipa::path(
    get,
    path = "/me/mutes",
    tag = "notifications",
    description = "Requires role: viewer. Rules the caller silenced for themselves (expired mutes included; they silence nothing).",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The mutes", body = MuteList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_mutes(
    State(state): State<AppState>,
    Viewer(who): Viewer,
) -> Result<Json<MuteList>, ApiError> {
    let mut db = state.pool.acquire().await?;
    let rows = contacts::mutes(&mut db, who.user_id).await?;
    Ok(Json(MuteList { items: rows.into_iter().map(Mute::from).collect() }))
}

/// Mute a rule for myself.
#[utoipa::path(
    put,
    path = "/me/mutes/{id}",
    tag = "notifications",
    description = "Requires role: viewer. The caller gets no messages of the rule (in-app included) until `until`, or for good.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Rule id")),
    request_body = MuteBody,
    responses(
        (status = 200, description = "The mute", body = Mute),
        (status = 400, description = "The body is not valid JSON or the id not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put_mute(
    State(state): State<AppState>,
    Viewer(who): Viewer,
    Path(id): Path<i32>,
    JsonBody(body): JsonBody<MuteBody>,
) -> Result<Json<Mute>, ApiError> {
    if body.until.is_some_and(|u| u <= Utc::now()) {
        return Err(ApiError::invalid("until", "must be in the future"));
    }
    let mut db = state.pool.acquire().await?;
    let m = contacts::put_mute(&mut db, who.user_id, id, body.until)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no notification rule {id}")))?;
    Ok(Json(Mute::from(m)))
}

/// Unmute a rule.
#[utoipa::path(
    delete,
    path = "/me/mutes/{id}",
    tag = "notifications",
    description = "Requires role: viewer.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Rule id")),
    responses(
        (status = 204, description = "Unmuted"),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "The caller has not muted this rule", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn delete_mute(
    State(state): State<AppState>,
    Viewer(who): Viewer,
    Path(id): Path<i32>,
) -> Result<StatusCode, ApiError> {
    let mut db = state.pool.acquire().await?;
    if contacts::delete_mute(&mut db, who.user_id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("you have not muted rule {id}")))
    }
}
