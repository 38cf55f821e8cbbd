//! `/users`: admins list, create, change and delete the people who sign in.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use fleet_accounts::users::{self, NewUser, User, UserChanges};

use super::extract::{JsonBody, Path};
use crate::auth::{Admin, Role};
use crate::error::FieldError;
use crate::{ApiError, AppState, Problem};

/// Every user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    pub items: Vec<User>,
}

/// A user to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// 1-64 of letters, digits and `_ . @ -`; unique ignoring case.
    pub username: String,
    /// At least 8 characters.
    #[schema(format = Password)]
    pub password: String,
    #[schema(value_type = Role)]
    pub role: String,
    /// Name shown in the apps; at most 100 characters.
    #[serde(default)]
    pub display_name: String,
}

/// Changes to a user; absent fields stay as they are. A new password or `active: false` ends
/// the user's sessions.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[schema(value_type = Option<Role>)]
    pub role: Option<String>,
    pub active: Option<bool>,
    #[schema(format = Password)]
    pub password: Option<String>,
    pub display_name: Option<String>,
}

fn parse_role(role: &str) -> Result<Role, FieldError> {
    Role::parse(role)
        .ok_or_else(|| FieldError::new("role", "must be one of admin, operator, viewer"))
}

/// List users.
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    description = "Requires role: admin.",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "Every user, by id", body = UserList),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<UserList>, ApiError> {
    Ok(Json(UserList { items: users::list(&state.pool).await? }))
}

/// Create a user.
#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    description = "Requires role: admin.",
    security(("session" = []), ("bearer" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, description = "Created", body = User,
            headers(("Location" = String, description = "/api/v1/users/{id}"))),
        (status = 400, description = "The body is not valid JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The username is taken", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_user(
    State(state): State<AppState>,
    Admin(who): Admin,
    JsonBody(body): JsonBody<CreateUser>,
) -> Result<impl IntoResponse, ApiError> {
    let role = match parse_role(&body.role) {
        Ok(role) => role,
        Err(e) => {
            let mut errors: Vec<FieldError> =
                users::check_new(&body.username, &body.display_name, &body.password)
                    .into_iter()
                    .map(FieldError::from)
                    .collect();
            errors.push(e);
            return Err(ApiError::Validation(errors));
        }
    };
    let new = NewUser {
        username: body.username,
        display_name: body.display_name,
        role,
        password: body.password,
    };
    let user = users::create(&state.pool, new).await?;
    tracing::info!(
        user.name = %user.username, user.role = %user.role, by = %who.username, "user created"
    );
    let location = format!("/api/v1/users/{}", user.user_id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(user)))
}

/// Get a user.
#[utoipa::path(
    get,
    path = "/users/{id}",
    tag = "users",
    description = "Requires role: admin.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = User),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_user(
    State(state): State<AppState>,
    _: Admin,
    Path(id): Path<i32>,
) -> Result<Json<User>, ApiError> {
    Ok(Json(users::get(&state.pool, id).await?))
}

/// Change a user's role, active flag, password or display name.
#[utoipa::path(
    patch,
    path = "/users/{id}",
    tag = "users",
    description = "Requires role: admin. A change that would leave no active admin is refused with 409.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "User id")),
    request_body = UpdateUser,
    responses(
        (status = 200, description = "The changed user", body = User),
        (status = 400, description = "The body is not valid JSON or the id not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It would leave no active admin", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn update_user(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<i32>,
    JsonBody(body): JsonBody<UpdateUser>,
) -> Result<Json<User>, ApiError> {
    let role = match body.role.as_deref().map(parse_role) {
        Some(Err(e)) => return Err(ApiError::Validation(vec![e])),
        Some(Ok(r)) => Some(r),
        None => None,
    };
    let changes = UserChanges {
        display_name: body.display_name,
        role,
        active: body.active,
        password: body.password,
    };
    let user = users::update(&state.pool, id, changes).await?;
    tracing::info!(
        user.name = %user.username,
        user.role = %user.role,
        user.active = user.active,
        by = %who.username,
        "user changed"
    );
    Ok(Json(user))
}

/// Delete a user, with their sessions and tokens.
#[utoipa::path(
    delete,
    path = "/users/{id}",
    tag = "users",
    description = "Requires role: admin. Deleting the last active admin is refused with 409; deactivating (`active: false`) keeps the user's name on their history.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "User id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The last active admin", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path(id): Path<i32>,
) -> Result<StatusCode, ApiError> {
    users::delete(&state.pool, id).await?;
    tracing::info!(user.id = id, by = %who.username, "user deleted");
    Ok(StatusCode::NO_CONTENT)
}
