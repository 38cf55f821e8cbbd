//! Notifications: admins keep the rules (which events reach whom, when and how), the webhooks
//! and read the delivery log; every signed-in user keeps their own contact points, quiet hours
//! and mutes and reads their in-app notifications (the bell). Matching, routing and sending
//! happen elsewhere (`fleet_db::notifications::route`, the dispatcher); these routes only
//! store what people set and add test messages to the outbox.

pub(crate) mod deliveries;
pub(crate) mod inbox;
pub(crate) mod me;
pub(crate) mod rule_parts;
pub(crate) mod rules;
pub(crate) mod webhooks;

use axum::extract::State;
use axum::Json;
use fleet_core::notification::{Channel, EventKind};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Viewer;
use crate::{ApiError, AppState, Problem};

pub use deliveries::{Attempt, Delivery, DeliveryPage};
pub use inbox::{InboxPage, Notification, ReadAll};
pub use me::{Contact, ContactList, CreateContact, Mute, MuteBody, MuteList, QuietHoursBody};
pub use rule_parts::{RuleAddress, RuleParams, RuleRecipients, RuleSchedule, RuleScope};
pub use rules::{Rule, RuleBody, RuleList, TestSent};
pub use webhooks::{Webhook, WebhookBody, WebhookList, WebhookSecret, WebhookWithSecret};

/// One event kind as the rule form offers it.
#[derive(Debug, Serialize, ToSchema)]
pub struct KindInfo {
    pub kind: EventKind,
    /// For people: "SOS, collision, rollover, fatigue".
    pub label: String,
    /// The group the form shows it in: alarms, places, driving or tracker.
    pub group: &'static str,
    /// The `params` fields that apply to it.
    pub params: Vec<&'static str>,
}

/// Every event kind a rule can name, and every channel.
#[derive(Debug, Serialize, ToSchema)]
pub struct KindCatalogue {
    pub items: Vec<KindInfo>,
    pub channels: Vec<Channel>,
}

/// Label, group and params of a kind.
pub(crate) fn describe(kind: EventKind) -> (&'static str, &'static str, Vec<&'static str>) {
    use EventKind as K;
    match kind {
        K::AlarmSafety => {
            ("Safety alarm: SOS, collision, rollover, fatigue", "alarms", vec!["alarm_types"])
        }
        K::AlarmSecurity => (
            "Security alarm: vibration, tamper, displacement, jamming",
            "alarms",
            vec!["alarm_types"],
        ),
        K::AlarmPower => {
            ("Power alarm: power cut, low battery, power off", "alarms", vec!["alarm_types"])
        }
        K::AlarmDriving => (
            "Driving alarm from the tracker: overspeed, harsh driving",
            "alarms",
            vec!["alarm_types"],
        ),
        K::AlarmGeofence => {
            ("Geofence alarm from the tracker or vendor platform", "alarms", vec!["alarm_types"])
        }
        K::AlarmDevice => {
            ("Tracker alarm: boot, SIM change, ignition", "alarms", vec!["alarm_types"])
        }
        K::AlarmOther => ("Other alarm", "alarms", vec!["alarm_types"]),
        K::GeofenceEnter => ("Entered a geofence", "places", vec![]),
        K::GeofenceExit => ("Left a geofence", "places", vec![]),
        K::Overspeed => {
            ("Sustained overspeed", "driving", vec!["overspeed_for_s", "overspeed_kmh"])
        }
        K::AfterHours => ("Moving outside shift hours", "driving", vec![]),
        K::Idling => ("Idling too long", "driving", vec!["idle_min"]),
        K::Offline => ("Tracker offline", "tracker", vec!["offline_min"]),
        K::Online => ("Tracker back online", "tracker", vec![]),
        K::NotMoved => ("Not moved by a time of day", "tracker", vec!["not_moved_by"]),
        K::PowerLost => ("External power lost", "tracker", vec![]),
    }
}

/// The event kinds rules can name.
#[utoipa::path(
    get,
    path = "/notifications/kinds",
    tag = "notifications",
    description = "Requires role: viewer. Every event kind with a label, its group and the rule `params` that apply to it, and every channel.",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The catalogue", body = KindCatalogue),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn kinds(
    _: Viewer,
    State(_state): State<AppState>,
) -> Result<Json<KindCatalogue>, ApiError> {
    let items = EventKind::ALL
        .iter()
        .map(|k| {
            let (label, group, params) = describe(*k);
            KindInfo { kind: *k, label: label.to_owned(), group, params }
        })
        .collect();
    Ok(Json(KindCatalogue { items, channels: Channel::ALL.to_vec() }))
}

/// 23505: a unique constraint refused the row.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}
