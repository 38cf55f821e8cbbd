//! `/notifications/rules`: admins list, create, change, delete and test the rules. A rule is
//! checked as a whole by `fleet_core`'s `Rule::validate` (the 422 names the first bad field),
//! then every id it names is looked up (unknown users, webhooks, vehicles or geofences are a
//! 422 naming the list). Changing a rule never re-sends past events: routing happens once,
//! when an event is stored.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use fleet_core::notification::rule::Rule as CoreRule;
use fleet_core::notification::{Channel, EventKind, Severity};
use fleet_core::text::excerpt;
use fleet_db::notifications::delivery_log::{TestMessage, TestSubject};
use fleet_db::notifications::rules::RuleRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rule_parts::{RuleParams, RuleRecipients, RuleSchedule, RuleScope};
use crate::api::extract::{JsonBody, Path};
use crate::auth::Admin;
use crate::error::FieldError;
use crate::{ApiError, AppState, Problem};

/// A stored rule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Rule {
    pub rule_id: i32,
    pub name: String,
    pub enabled: bool,
    pub kinds: Vec<EventKind>,
    pub scope: RuleScope,
    /// When the rule is active, in the fleet's timezone; null: always.
    pub schedule: Option<RuleSchedule>,
    /// At most one message per vehicle in this many seconds (0: no throttle).
    pub throttle_s: i64,
    pub params: RuleParams,
    pub recipients: RuleRecipients,
    pub channels: Vec<Channel>,
    pub severity: Severity,
    /// The admin who created it; null once that user is deleted.
    pub created_by: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<RuleRow> for Rule {
    fn from(r: RuleRow) -> Self {
        let c = r.rule;
        Rule {
            rule_id: r.rule_id,
            name: c.name,
            enabled: c.enabled,
            kinds: c.kinds,
            scope: c.scope.into(),
            schedule: c.schedule.map(RuleSchedule::from),
            throttle_s: c.throttle_s,
            params: c.params.into(),
            recipients: c.recipients.into(),
            channels: c.channels,
            severity: c.severity,
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Every rule.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RuleList {
    pub items: Vec<Rule>,
}

/// A rule as an admin writes it (creating, or replacing it whole).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleBody {
    /// 1-200 characters.
    pub name: String,
    /// Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// At least one.
    pub kinds: Vec<EventKind>,
    /// Absent or empty lists: the whole fleet.
    #[serde(default)]
    pub scope: RuleScope,
    /// Days (1 = Monday … 7 = Sunday) and a window in the fleet's timezone; null: always.
    #[serde(default)]
    pub schedule: Option<RuleSchedule>,
    /// 0 to 604800 seconds; default 0.
    #[serde(default)]
    pub throttle_s: i64,
    #[serde(default)]
    pub params: RuleParams,
    /// Users, bare addresses and webhooks; at least one.
    pub recipients: RuleRecipients,
    /// At least one.
    pub channels: Vec<Channel>,
    /// Default warning. Critical messages reach people in their quiet hours too.
    #[serde(default = "warning")]
    pub severity: Severity,
}

fn yes() -> bool {
    true
}

fn warning() -> Severity {
    Severity::Warning
}

impl RuleBody {
    fn into_rule(self) -> CoreRule {
        CoreRule {
            name: self.name.trim().to_owned(),
            enabled: self.enabled,
            kinds: self.kinds,
            scope: self.scope.into(),
            schedule: self.schedule.map(Into::into),
            throttle_s: self.throttle_s,
            params: self.params.into(),
            recipients: self.recipients.into(),
            channels: self.channels,
            severity: self.severity,
        }
    }
}

/// What "send test" queued.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TestSent {
    /// Outbox messages (see GET /notifications/deliveries).
    pub deliveries: Vec<i64>,
    /// In-app notifications written.
    pub notifications: Vec<i64>,
}

/// Checks a rule and the ids it names; the rule with its addresses normalised.
async fn checked(db: &mut sqlx::PgConnection, body: RuleBody) -> Result<CoreRule, ApiError> {
    let mut rule = body.into_rule();
    rule.validate().map_err(|e| ApiError::invalid(e.field, e.message))?;
    // names stored as JSON: PostgreSQL's jsonb cannot hold NUL, and no name holds a control
    let names = [
        ("scope.cost_centres", &rule.scope.cost_centres),
        ("scope.cities", &rule.scope.cities),
        ("params.alarm_types", &rule.params.alarm_types),
    ];
    for (field, list) in names {
        if list.iter().any(|t| t.chars().count() > 200 || t.chars().any(char::is_control)) {
            return Err(ApiError::invalid(
                field,
                "names of at most 200 characters, no control characters",
            ));
        }
    }
    for a in &mut rule.recipients.addresses {
        // validate() accepted it, so it normalises
        if let Ok(n) = fleet_core::notification::address::normalise(a.channel, &a.to) {
            a.to = n;
        }
    }
    let unknown = fleet_db::notifications::rules::unknown_references(db, &rule).await?;
    if !unknown.is_empty() {
        let mut errors: Vec<FieldError> = Vec::new();
        for (field, id) in unknown {
            match errors.iter_mut().find(|e| e.field == field) {
                Some(e) => e.message.push_str(&format!(", {id}")),
                None => errors.push(FieldError::new(field, format!("no such id: {id}"))),
            }
        }
        return Err(ApiError::Validation(errors));
    }
    Ok(rule)
}

fn not_found(id: i32) -> ApiError {
    ApiError::NotFound(format!("there is no notification rule {id}"))
}

/// List rules.
#[utoipa::path(
    get,
    path = "/notifications/rules",
    tag = "notifications",
    description = "Requires role: admin. Every rule, by id.",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The rules", body = RuleList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_rules(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<RuleList>, ApiError> {
    let mut db = state.pool.acquire().await?;
    let rows = fleet_db::notifications::rules::list(&mut db).await?;
    Ok(Json(RuleList { items: rows.into_iter().map(Rule::from).collect() }))
}

/// Create a rule.
#[utoipa::path(
    post,
    path = "/notifications/rules",
    tag = "notifications",
    description = "Requires role: admin. The rule applies to events stored from now on.",
    security(("session" = []), ("bearer" = [])),
    request_body = RuleBody,
    responses(
        (status = 201, description = "The new rule", body = Rule,
            headers(("Location" = String, description = "/api/v1/notifications/rules/{id}"))),
        (status = 400, description = "The body is not valid JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (unknown kinds, no recipients, a bad address, unknown ids…)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_rule(
    State(state): State<AppState>,
    Admin(who): Admin,
    JsonBody(body): JsonBody<RuleBody>,
) -> Result<impl IntoResponse, ApiError> {
    let mut tx = state.pool.begin().await?;
    let rule = checked(&mut tx, body).await?;
    let row = fleet_db::notifications::rules::insert(&mut tx, &rule, Some(who.user_id)).await?;
    tx.commit().await?;
    tracing::info!(rule.id = row.rule_id, rule.name = %excerpt(&row.rule.name), by = %who.username, "notification rule created");
    let location = format!("/api/v1/notifications/rules/{}", row.rule_id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(Rule::from(row))))
}

/// Get a rule.
#[utoipa::path(
    get,
    path = "/notifications/rules/{id}",
    tag = "notifications",
    description = "Requires role: admin.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Rule id")),
    responses(
        (status = 200, description = "The rule", body = Rule),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_rule(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i32>,
) -> Result<Json<Rule>, ApiError> {
    let mut db = state.pool.acquire().await?;
    let row = fleet_db::notifications::rules::get(&mut db, id, false).await?;
    row.map(|r| Json(Rule::from(r))).ok_or_else(|| not_found(id))
}

/// Replace a rule.
#[utoipa::path(
    put,
    path = "/notifications/rules/{id}",
    tag = "notifications",
    description = "Requires role: admin. The body replaces the rule whole; past events are not sent again.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Rule id")),
    request_body = RuleBody,
    responses(
        (status = 200, description = "The changed rule", body = Rule),
        (status = 400, description = "The body is not valid JSON or the id not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn update_rule(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<i32>,
    JsonBody(body): JsonBody<RuleBody>,
) -> Result<Json<Rule>, ApiError> {
    let mut tx = state.pool.begin().await?;
    let rule = checked(&mut tx, body).await?;
    let row = fleet_db::notifications::rules::update(&mut tx, id, &rule)
        .await?
        .ok_or_else(|| not_found(id))?;
    tx.commit().await?;
    tracing::info!(rule.id = id, by = %who.username, "notification rule changed");
    Ok(Json(Rule::from(row)))
}

/// Delete a rule.
#[utoipa::path(
    delete,
    path = "/notifications/rules/{id}",
    tag = "notifications",
    description = "Requires role: admin. Messages already queued are still sent; the delivery log keeps them.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Rule id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn delete_rule(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<i32>,
) -> Result<StatusCode, ApiError> {
    let mut db = state.pool.acquire().await?;
    if !fleet_db::notifications::rules::delete(&mut db, id).await? {
        return Err(not_found(id));
    }
    tracing::info!(rule.id = id, by = %who.username, "notification rule deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Send a rule's test messages.
#[utoipa::path(
    post,
    path = "/notifications/rules/{id}/test",
    tag = "notifications",
    description = "Requires role: admin. Queues one test message per recipient address and channel of the rule (users' own contact points for the rule's channels, its bare addresses, its webhooks) and, when the rule has the in_app channel, an in-app test notification to each of its users. Quiet hours and mutes do not hold tests back. Test messages are marked as tests in the delivery log.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Rule id")),
    responses(
        (status = 202, description = "Queued", body = TestSent),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such rule", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn test_rule(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<i32>,
) -> Result<(StatusCode, Json<TestSent>), ApiError> {
    let mut tx = state.pool.begin().await?;
    let row = fleet_db::notifications::rules::get(&mut tx, id, false)
        .await?
        .ok_or_else(|| not_found(id))?;
    let rule = &row.rule;
    let mut messages = Vec::new();
    let personal: Vec<String> =
        rule.channels.iter().filter(|c| c.is_personal()).map(|c| c.as_str().to_owned()).collect();
    let contacts =
        fleet_db::notifications::contacts::of_users(&mut tx, &rule.recipients.user_ids, &personal)
            .await?;
    for c in contacts {
        messages.push(TestMessage {
            rule_id: Some(id),
            channel: c.channel,
            user_id: Some(c.user_id),
            address: c.address,
            webhook_id: None,
        });
    }
    for a in &rule.recipients.addresses {
        messages.push(TestMessage {
            rule_id: Some(id),
            channel: a.channel.as_str().to_owned(),
            user_id: None,
            address: a.to.clone(),
            webhook_id: None,
        });
    }
    if rule.channels.contains(&Channel::Webhook) {
        for w in &rule.recipients.webhook_ids {
            if let Some(hook) = fleet_db::notifications::webhooks::get(&mut tx, *w).await? {
                messages.push(TestMessage {
                    rule_id: Some(id),
                    channel: "webhook".to_owned(),
                    user_id: None,
                    address: hook.url,
                    webhook_id: Some(hook.webhook_id),
                });
            }
        }
    }
    let subject = TestSubject { who: who.username.clone(), what: format!("rule {:?}", rule.name) };
    let deliveries =
        fleet_db::notifications::delivery_log::enqueue_tests(&mut tx, &messages, &subject).await?;
    let mut notifications = Vec::new();
    if rule.channels.contains(&Channel::InApp) {
        // users deleted since the rule was saved stay in it until it is edited: skip them
        let gone: Vec<i32> = fleet_db::notifications::rules::unknown_references(&mut tx, rule)
            .await?
            .into_iter()
            .filter(|(field, _)| *field == "recipients.user_ids")
            .map(|(_, id)| id)
            .collect();
        for user in rule.recipients.user_ids.iter().filter(|u| !gone.contains(u)) {
            let title = format!("Test of the rule {}", rule.name);
            let body = format!(
                "{} sent a test of this rule; this is how its alerts arrive.",
                who.username
            );
            let n = fleet_db::notifications::inbox::insert_test(
                &mut tx,
                *user,
                Some(id),
                &title,
                &body,
            )
            .await?;
            notifications.push((*user, n));
        }
    }
    super::inbox::announce(&state, &mut tx, &notifications).await?;
    tx.commit().await?;
    tracing::info!(rule.id = id, messages = deliveries.len(), in_app = notifications.len(), by = %who.username, "notification rule test queued");
    Ok((
        StatusCode::ACCEPTED,
        Json(TestSent {
            deliveries,
            notifications: notifications.into_iter().map(|p| p.1).collect(),
        }),
    ))
}
