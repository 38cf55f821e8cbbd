//! The JSON API under `/api/v1`. Routes are registered through utoipa-axum's `routes!`, so
//! the router and the OpenAPI document come from the same list and cannot drift apart; each
//! handler's `#[utoipa::path]` documents its parameters, body, responses and errors.

mod auth;
mod devices;
pub mod extract;
mod live;
pub(crate) mod live_snapshots;
// paging, validation and content negotiation shared by the routes
mod negotiate;
mod paging;
mod validate;
// live stream
mod stream;
mod tokens;
mod users;

// trips, stops, tracks and a vehicle's day
mod export;
pub mod export_limit;
mod tracks;
mod trips;
// operations: alarms, geofences, analytics settings, KPIs and ingest health
mod alarm_summary;
mod alarms;
mod geofences;
mod health;
mod kpis;
// notifications: rules, webhooks, the delivery log, people's own settings and the bell
pub mod notifications;
mod reconciliation;
mod settings;

use std::sync::OnceLock;

use axum::http::{header, HeaderValue, Method};
use axum::response::IntoResponse;
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{LoginRequest, Me};
pub use devices::{Device, DevicePage, UpdateDevice};
pub use live::{LiveFeature, LiveFleet, LiveProperties, LiveStatus, LiveSummary};
pub use tokens::{CreateToken, CreatedToken, TokenList};
pub use users::{CreateUser, UpdateUser, UserList};

// trips, stops, tracks and a vehicle's day
pub use tracks::{DayReport, DayTotals, Fix};
pub use trips::{Stop, StopPage, Trip, TripPage, TripTrack};
// operations
pub use alarms::{AckAlarm, Alarm, AlarmPage};
pub use geofences::{Center, CreateGeofence, Geofence, GeofenceKind, GeofenceList, UpdateGeofence};
pub use health::DeviceHealthPage;
pub use kpis::{IdleVehicle, KpiDailyPage, KpiRows, LeaderboardRow, UtilisationDay};
pub use settings::{AnalyticsConfig, SettingsRow, SettingsValues};

use crate::{ApiError, AppState};

/// Where the API is mounted.
pub const PREFIX: &str = "/api/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "fleetd API",
        description = "Fleet telematics for Jimi IoT / Concox GPS trackers: vehicles and their live state, trips and stops, tracks, alarms, daily KPIs, geofences, analytics settings, ingest health, users and tokens. \
            Authenticate with the session cookie from `POST /api/v1/auth/login` (`fleetd_session`, or `__Host-fleetd_session` over HTTPS) or with `Authorization: Bearer <token>`. \
            POST, PUT, PATCH and DELETE without a bearer token are refused (403) when the browser marks them cross-site or same-site (`Sec-Fetch-Site`) or, without that header, their `Origin` names another host than the request's; configured CORS origins are let through. \
            Errors are `application/problem+json` with a stable `type` URI (`https://fleetd.dev/problems/<kind>`).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Logging in and out"),
        (name = "users", description = "People who sign in (admins only)"),
        (name = "tokens", description = "Bearer tokens for integrations (admins only)"),
        (name = "devices", description = "The vehicle registry"),
        (name = "fleet", description = "The live fleet"),
        (name = "trips", description = "Trips, stops, tracks and a vehicle's day"),
        (name = "meta", description = "This document"),
        (name = "alarms", description = "Alarms and their acknowledgement (operators)"),
        (name = "geofences", description = "Named areas for trips and enter/exit events (admins edit)"),
        (name = "settings", description = "Analytics thresholds, global and overrides (admins edit)"),
        (name = "kpis", description = "Daily KPIs, rollups, rankings and idling vehicles"),
        (name = "health", description = "Ingest health of jobs and devices"),
        (name = "live", description = "The fleet's changes as Server-Sent Events"),
        (name = "notifications", description = "Notification rules, webhooks and the delivery log (admins); each user's contact points, quiet hours, mutes and in-app notifications"),
    ),
    components(schemas(
        crate::stream::PositionEvent,
        crate::stream::StatusEvent,
        crate::stream::AlarmStreamEvent,
        crate::stream::ResetEvent,
        notifications::Notification,
        fleet_core::notification::template::WebhookPayload,
        kpis::GroupBy
    ))
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::session::COOKIE,
                "Session cookie set by POST /api/v1/auth/login: `fleetd_session` over plain HTTP, \
                 `__Host-fleetd_session` (Secure) over HTTPS; either is accepted. POST, PUT, \
                 PATCH and DELETE with it must come from fleetd's own pages or a configured \
                 CORS origin (`Sec-Fetch-Site`, else `Origin`), or they are refused with 403.",
            ))),
        );
        let bearer = Http::builder()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("fltd_…")
            .description(Some(
                "API token created by an admin (POST /api/v1/tokens or `fleetd token create`)",
            ))
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
    }
}

/// Every API route with its documentation, relative to [`PREFIX`].
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(users::get_user, users::update_user, users::delete_user))
        .routes(routes!(tokens::list_tokens, tokens::create_token))
        .routes(routes!(tokens::revoke_token))
        .routes(routes!(devices::list_devices))
        .routes(routes!(devices::get_device, devices::update_device))
        .routes(routes!(live::live))
        // trips, stops, tracks and a vehicle's day
        .routes(routes!(trips::list_trips))
        .routes(routes!(trips::get_trip))
        .routes(routes!(trips::trip_track))
        .routes(routes!(trips::list_stops))
        .routes(routes!(tracks::device_track))
        .routes(routes!(tracks::device_day))
        // live stream
        .routes(routes!(stream::stream))
        .routes(routes!(openapi_json))
        // operations: alarms, geofences, analytics settings, KPIs and ingest health
        .routes(routes!(alarms::list_alarms))
        .routes(routes!(alarms::ack_alarm))
        .routes(routes!(alarm_summary::alarm_summary))
        .routes(routes!(geofences::list_geofences, geofences::create_geofence))
        .routes(routes!(
            geofences::get_geofence,
            geofences::update_geofence,
            geofences::delete_geofence
        ))
        .routes(routes!(settings::get_settings))
        .routes(routes!(settings::put_global))
        .routes(routes!(settings::put_override, settings::delete_override))
        .routes(routes!(kpis::daily))
        .routes(routes!(kpis::rollup))
        .routes(routes!(kpis::utilisation_trend))
        .routes(routes!(kpis::leaderboard))
        .routes(routes!(kpis::not_moved_today))
        .routes(routes!(kpis::idle))
        .routes(routes!(reconciliation::reconciliation))
        .routes(routes!(health::ingest))
        .routes(routes!(health::devices))
        // notifications
        .routes(routes!(notifications::kinds))
        .routes(routes!(notifications::rules::list_rules, notifications::rules::create_rule))
        .routes(routes!(
            notifications::rules::get_rule,
            notifications::rules::update_rule,
            notifications::rules::delete_rule
        ))
        .routes(routes!(notifications::rules::test_rule))
        .routes(routes!(
            notifications::webhooks::list_webhooks,
            notifications::webhooks::create_webhook
        ))
        .routes(routes!(
            notifications::webhooks::update_webhook,
            notifications::webhooks::delete_webhook
        ))
        .routes(routes!(notifications::webhooks::rotate_webhook))
        .routes(routes!(notifications::deliveries::list_deliveries))
        .routes(routes!(notifications::deliveries::retry_delivery))
        .routes(routes!(notifications::me::list_contacts, notifications::me::create_contact))
        .routes(routes!(notifications::me::delete_contact))
        .routes(routes!(notifications::me::test_contact))
        .routes(routes!(notifications::me::get_quiet_hours, notifications::me::put_quiet_hours))
        .routes(routes!(notifications::me::list_mutes))
        .routes(routes!(notifications::me::put_mute, notifications::me::delete_mute))
        .routes(routes!(notifications::inbox::list_notifications))
        .routes(routes!(notifications::inbox::read_notification))
        .routes(routes!(notifications::inbox::read_all))
}

/// The OpenAPI 3.1 document of the API, paths including [`PREFIX`].
pub fn openapi() -> Document {
    let mut doc = OpenApiRouter::<AppState>::new().nest(PREFIX, routes()).into_openapi();
    add_common_problems(&mut doc);
    doc
}

/// Adds the errors any route can answer with: 500 and 503 wherever the database is used
/// (everything but this document), 413 wherever a body is read, 403 for a cross-site change.
fn add_common_problems(doc: &mut Document) {
    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                crate::error::PROBLEM_JSON,
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
            .build()
    };
    for item in doc.paths.paths.values_mut() {
        let operations =
            [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for op in operations.into_iter().flatten() {
            let meta = op.tags.as_ref().is_some_and(|t| t.iter().any(|t| t == "meta"));
            let responses = &mut op.responses.responses;
            if op.request_body.is_some() {
                responses.insert("413".into(), problem("The body is larger than 2 MiB").into());
            }
            if !meta {
                responses.insert(
                    "500".into(),
                    problem("Internal error (details are in fleetd's log)").into(),
                );
                responses.insert(
                    "503".into(),
                    problem("The database is unavailable; retry after Retry-After seconds").into(),
                );
            }
        }
        for op in
            [&mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
        {
            op.responses.responses.entry("403".into()).or_insert_with(|| {
                problem("A browser's cross-site request (Origin or Sec-Fetch-Site) without a bearer token").into()
            });
        }
    }
}

/// The API router, to be nested at [`PREFIX`]: unknown paths and methods answer with problems,
/// cross-site changes are refused, and browsers from the configured origins may call it (CORS).
pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let (router, _) = routes().split_for_parts();
    let router = router.fallback(not_found).method_not_allowed_fallback(method_not_allowed).layer(
        axum::middleware::from_fn_with_state(state.clone(), crate::auth::origin::refuse_cross_site),
    );
    if state.cors_origins.is_empty() {
        return router;
    }
    router.layer(cors(&state.cors_origins))
}

/// CORS for the allow-listed origins, with credentials (the session cookie) allowed.
fn cors(origins: &[HeaderValue]) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins.iter().cloned()))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .expose_headers([header::LOCATION, header::RETRY_AFTER])
        .max_age(std::time::Duration::from_secs(3600))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("there is no such API route; see /api/v1/openapi.json".to_owned())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed("this route does not accept that method".to_owned())
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
pub(crate) async fn openapi_json() -> impl IntoResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    let json = DOC.get_or_init(|| {
        openapi().to_pretty_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "the OpenAPI document does not serialise");
            "{}".to_owned()
        })
    });
    ([(header::CONTENT_TYPE, "application/json")], json.as_str())
}
