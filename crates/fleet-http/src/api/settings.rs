//! `/settings/analytics`: the thresholds trips and KPIs are computed with
//! (`fleet.analytics_config`). One global row holds every value; cost centre, city and device
//! overrides set only some (absent = inherit). Everyone reads them; admins change them. A
//! trigger of `fleet.analytics_config` marks the devices a change applies to for a rebuild.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use fleet_core::text::excerpt;
pub use fleet_core::SettingsValues;
use fleet_core::{AnalyticsSettings, SettingsError};
pub use fleet_db::analytics_config::SettingsRow;
use fleet_db::analytics_config::{self as config, Rows};
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::{JsonBody, Path};
use super::validate;
use crate::auth::{Admin, Viewer};
use crate::error::FieldError;
use crate::{ApiError, AppState, Problem};

/// Checks the settings with fleet_core's rules, plus a time zone PostgreSQL knows.
async fn check(pool: &sqlx::PgPool, s: &AnalyticsSettings) -> Result<(), ApiError> {
    if let Err(e) = s.validate() {
        return Err(ApiError::invalid(e.field, e.problem));
    }
    if !config::timezone_known(pool, &s.timezone).await? {
        return Err(ApiError::invalid("timezone", "not an IANA time zone PostgreSQL knows"));
    }
    Ok(())
}

/// The 422 of a missing or invalid value.
fn invalid(e: SettingsError) -> ApiError {
    ApiError::invalid(e.field, e.problem)
}

/// The global settings and every override.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyticsConfig {
    pub global: SettingsRow,
    /// Overrides by scope (city, cost_centre, device) and key.
    pub overrides: Vec<SettingsRow>,
}

/// The override scopes.
const SCOPES: [&str; 3] = ["cost_centre", "city", "device"];

async fn global(pool: &sqlx::PgPool) -> Result<SettingsRow, ApiError> {
    let mut db = pool.acquire().await?;
    config::rows(&mut db, Rows::Global)
        .await?
        .pop()
        .ok_or_else(|| ApiError::internal("fleet.analytics_config has no global row"))
}

/// Read the analytics settings.
#[utoipa::path(
    get,
    path = "/settings/analytics",
    tag = "settings",
    description = "Requires role: viewer. The global row (every value) and the overrides (only the values they set; null = inherited). Precedence: device, cost centre, city, global.",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The settings", body = AnalyticsConfig),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_settings(
    State(state): State<AppState>,
    _: Viewer,
) -> Result<Json<AnalyticsConfig>, ApiError> {
    let global = global(&state.pool).await?;
    let mut db = state.pool.acquire().await?;
    let overrides = config::rows(&mut db, Rows::Overrides).await?;
    Ok(Json(AnalyticsConfig { global, overrides }))
}

/// Stores a row and checks the settings every device ends up with (its device, cost centre and
/// city overrides over the global row) in the same transaction: a combination that breaks a
/// rule is refused with a 422 naming the field and the device, and nothing is stored.
async fn upsert(
    state: &AppState,
    scope: &str,
    key: &str,
    v: &SettingsValues,
    by: i32,
) -> Result<SettingsRow, ApiError> {
    let mut tx = state.pool.begin().await?;
    let row = config::upsert(&mut tx, scope, key, v, by).await?;
    check_effective(&mut tx).await?;
    tx.commit().await?;
    Ok(row)
}

/// Validates each device's effective settings (reporting.v_device_analytics_settings).
async fn check_effective(tx: &mut sqlx::PgConnection) -> Result<(), ApiError> {
    let rows = config::effective(tx).await?;
    for (imei, values) in rows {
        let problem = match values.complete() {
            Ok(s) => s.validate().err(),
            Err(e) => Some(e),
        }
        .map(|e| (e.field, e.problem));
        if let Some((field, message)) = problem {
            return Err(ApiError::invalid(
                field,
                format!("{message} (for device {imei} with its overrides combined)"),
            ));
        }
    }
    Ok(())
}

/// Replace the global settings.
#[utoipa::path(
    put,
    path = "/settings/analytics/global",
    tag = "settings",
    description = "Requires role: admin. Every value is required; each device's settings with its overrides combined must stay valid. The devices the change applies to (all of them) are marked for a rebuild of trips (when a trip rule changed) or of KPIs.",
    security(("session" = []), ("bearer" = [])),
    request_body = SettingsValues,
    responses(
        (status = 200, description = "The new global settings", body = SettingsRow),
        (status = 400, description = "The body is not valid JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A missing or invalid value, named", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put_global(
    State(state): State<AppState>,
    Admin(who): Admin,
    JsonBody(body): JsonBody<SettingsValues>,
) -> Result<Json<SettingsRow>, ApiError> {
    let settings = body.complete().map_err(invalid)?;
    check(&state.pool, &settings).await?;
    let row = upsert(&state, "global", "", &body, who.user_id).await?;
    tracing::info!(by = %who.username, "global analytics settings changed");
    Ok(Json(row))
}

/// The validated scope and key of an override.
fn scope_key(scope: &str, key: &str) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    validate::choice("scope", scope, &SCOPES, &mut errors);
    let k = key.trim();
    if k.is_empty() || k != key {
        errors.push(FieldError::new("key", "must not be empty or start or end with spaces"));
    } else if let Err(e) = fleet_core::text::check_name(key, 64) {
        // the key is a cost centre or city name, held to the rule of those names
        errors.push(FieldError::new("key", e.to_string()));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Set an override.
#[utoipa::path(
    put,
    path = "/settings/analytics/{scope}/{key}",
    tag = "settings",
    description = "Requires role: admin. Replaces the override of a cost centre, city or device (by IMEI): the values given are set, the others inherited. The override is validated merged with the global settings, and each device's settings with all its overrides combined must stay valid. The devices it applies to are marked for a rebuild.",
    security(("session" = []), ("bearer" = [])),
    params(
        ("scope" = String, Path, description = "cost_centre, city or device"),
        ("key" = String, Path, description = "The cost centre or city name, or the device IMEI"),
    ),
    request_body = SettingsValues,
    responses(
        (status = 200, description = "The override", body = SettingsRow),
        (status = 400, description = "The body is not valid JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid scope, key or value, named", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put_override(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path((scope, key)): Path<(String, String)>,
    JsonBody(body): JsonBody<SettingsValues>,
) -> Result<Json<SettingsRow>, ApiError> {
    scope_key(&scope, &key)?;
    if body.is_empty() {
        return Err(ApiError::invalid("body", "set at least one value"));
    }
    if scope == "device" {
        let unknown =
            fleet_db::analytics::unknown_imeis(&state.pool, std::slice::from_ref(&key)).await?;
        if !unknown.is_empty() {
            return Err(ApiError::invalid("key", "no device has this IMEI"));
        }
    }
    let base = global(&state.pool).await?.values.complete().map_err(invalid)?;
    check(&state.pool, &body.over(&base)).await?;
    let row = upsert(&state, &scope, &key, &body, who.user_id).await?;
    tracing::info!(scope = %excerpt(&scope), key = %excerpt(&key), by = %who.username, "analytics override set");
    Ok(Json(row))
}

/// Remove an override.
#[utoipa::path(
    delete,
    path = "/settings/analytics/{scope}/{key}",
    tag = "settings",
    description = "Requires role: admin. The scope inherits again; the devices it applied to are marked for a rebuild.",
    security(("session" = []), ("bearer" = [])),
    params(
        ("scope" = String, Path, description = "cost_centre, city or device"),
        ("key" = String, Path, description = "The cost centre or city name, or the device IMEI"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such override", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid scope", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn delete_override(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path((scope, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    scope_key(&scope, &key)?;
    if !config::delete(&state.pool, &scope, &key).await? {
        return Err(ApiError::NotFound(format!("there is no {scope} override for {key:?}")));
    }
    tracing::info!(scope = %excerpt(&scope), key = %excerpt(&key), by = %who.username, "analytics override removed");
    Ok(StatusCode::NO_CONTENT)
}
