//! Rules: which events reach whom, when and how. Matching is pure: the caller supplies the
//! event's local time in the fleet's timezone (PostgreSQL converts it) and the vehicle's
//! attributes; the per-vehicle throttle is kept by storage.

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

use super::{address, Channel, Event, EventKind, Severity};

/// A rule as an admin writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rule {
    pub name: String,
    pub enabled: bool,
    pub kinds: Vec<EventKind>,
    pub scope: Scope,
    /// When the rule is active; `None`: always.
    pub schedule: Option<Schedule>,
    /// At most one message per vehicle in this many seconds (0: no throttle).
    pub throttle_s: i64,
    pub params: Params,
    pub recipients: Recipients,
    pub channels: Vec<Channel>,
    pub severity: Severity,
}

/// Which vehicles and places a rule covers. Empty lists: the whole fleet. Vehicle selectors
/// (vehicles, cost centres, cities) add up; a geofence list narrows the rule to events that
/// name one of those geofences.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Scope {
    #[serde(default)]
    pub device_ids: Vec<i32>,
    #[serde(default)]
    pub cost_centres: Vec<String>,
    #[serde(default)]
    pub cities: Vec<String>,
    #[serde(default)]
    pub geofence_ids: Vec<i32>,
}

/// Days (1 = Monday … 7 = Sunday) and a time window in the fleet's timezone. A window whose
/// end is not after its start runs over midnight into the next day; equal ends: all day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Schedule {
    pub days: Vec<u8>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "18:00"))]
    pub from: NaiveTime,
    #[cfg_attr(feature = "openapi", schema(value_type = String, example = "06:00"))]
    pub to: NaiveTime,
}

/// A person's quiet hours: e-mail, SMS and Telegram messages falling in them are dropped, not
/// sent later (they stay in the delivery log as `suppressed`; the in-app bell still rings),
/// except critical ones unless `except_critical` is off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    pub window: Schedule,
    pub except_critical: bool,
}

/// Per-kind settings of a rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Params {
    /// Alarms: only these vendor type codes (empty: every alarm of the chosen classes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarm_types: Vec<String>,
    /// Overspeed: sustained at least this long (default 30 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overspeed_for_s: Option<i64>,
    /// Overspeed: above this speed (and the vehicle's configured limit) for `overspeed_for_s`
    /// (default: above the configured limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overspeed_kmh: Option<f64>,
    /// Idling: longer than this many minutes (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_min: Option<i64>,
    /// Offline: silent for this many minutes (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline_min: Option<i64>,
    /// Not moved: by this local time of day (required for `not_moved`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "09:00"))]
    pub not_moved_by: Option<NaiveTime>,
}

pub const DEFAULT_OVERSPEED_FOR_S: i64 = 30;
pub const DEFAULT_IDLE_MIN: i64 = 10;
pub const DEFAULT_OFFLINE_MIN: i64 = 30;
/// The longest throttle a rule may ask for: a week.
pub const MAX_THROTTLE_S: i64 = 7 * 86_400;

impl Params {
    pub fn overspeed_for_s(&self) -> i64 {
        self.overspeed_for_s.unwrap_or(DEFAULT_OVERSPEED_FOR_S)
    }
    pub fn idle_s(&self) -> i64 {
        self.idle_min.unwrap_or(DEFAULT_IDLE_MIN) * 60
    }
    pub fn offline_s(&self) -> i64 {
        self.offline_min.unwrap_or(DEFAULT_OFFLINE_MIN) * 60
    }
    /// Seconds after local midnight of the not-moved deadline.
    pub fn not_moved_s(&self) -> Option<i64> {
        use chrono::Timelike;
        self.not_moved_by.map(|t| i64::from(t.num_seconds_from_midnight()))
    }
}

/// Who hears of a rule's events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recipients {
    /// Users: reached on their own contact points for the rule's channels, and in the apps.
    #[serde(default)]
    pub user_ids: Vec<i32>,
    /// Bare addresses (people without a login, a control-room mailbox).
    #[serde(default)]
    pub addresses: Vec<Address>,
    /// Webhooks (`/api/v1/notifications/webhooks`).
    #[serde(default)]
    pub webhook_ids: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Address {
    pub channel: Channel,
    pub to: String,
}

/// The vehicle an event is about, as scopes see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VehicleScope {
    pub device_id: i32,
    pub cost_centre: Option<String>,
    pub city: Option<String>,
}

/// A moment in the fleet's timezone: ISO weekday (1 = Monday) and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMoment {
    pub weekday: u8,
    pub time: NaiveTime,
}

/// A rejected field: its path in the rule (`recipients.addresses[1].to`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn field(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError { field: field.into(), message: message.into() }
}

impl Schedule {
    pub fn contains(&self, at: LocalMoment) -> bool {
        let day = |d: u8| self.days.contains(&d);
        let yesterday = if at.weekday == 1 { 7 } else { at.weekday - 1 };
        if self.from == self.to {
            day(at.weekday)
        } else if self.from < self.to {
            day(at.weekday) && at.time >= self.from && at.time < self.to
        } else {
            (day(at.weekday) && at.time >= self.from) || (day(yesterday) && at.time < self.to)
        }
    }

    pub fn validate(&self, path: &str) -> Result<(), FieldError> {
        if self.days.is_empty() {
            return Err(field(format!("{path}.days"), "names no day, so it never matches"));
        }
        if let Some(d) = self.days.iter().find(|d| !(1..=7).contains(*d)) {
            return Err(field(
                format!("{path}.days"),
                format!("{d} is not a day (1 = Monday … 7 = Sunday)"),
            ));
        }
        Ok(())
    }
}

impl QuietHours {
    /// Whether an external message of `severity` at `at` is dropped.
    pub fn holds(&self, at: LocalMoment, severity: Severity) -> bool {
        self.window.contains(at) && !(self.except_critical && severity == Severity::Critical)
    }
}

impl Scope {
    pub fn covers(&self, vehicle: &VehicleScope, geofence_id: Option<i32>) -> bool {
        let selects_vehicles =
            !(self.device_ids.is_empty() && self.cost_centres.is_empty() && self.cities.is_empty());
        let in_list = |list: &[String], v: &Option<String>| {
            v.as_ref().is_some_and(|v| list.iter().any(|x| x.eq_ignore_ascii_case(v)))
        };
        let vehicle_ok = !selects_vehicles
            || self.device_ids.contains(&vehicle.device_id)
            || in_list(&self.cost_centres, &vehicle.cost_centre)
            || in_list(&self.cities, &vehicle.city);
        let place_ok = self.geofence_ids.is_empty()
            || geofence_id.is_some_and(|g| self.geofence_ids.contains(&g));
        vehicle_ok && place_ok
    }
}

/// Speeds closer than this are the same (they come from JSON, the rule's and the event's).
const KMH_EPS: f64 = 1e-6;

/// Whether two asked speeds (`None`: the configured limit) are the same.
pub fn same_kmh(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).abs() < KMH_EPS,
        _ => false,
    }
}

impl Rule {
    /// Whether `event` of `vehicle`, happening at local moment `at`, is one this rule tells of
    /// (the throttle aside).
    pub fn matches(&self, event: &Event, vehicle: &VehicleScope, at: LocalMoment) -> bool {
        self.enabled
            && self.kinds.contains(&event.kind)
            && self.scope.covers(vehicle, event.facts.geofence_id)
            && self.schedule.as_ref().is_none_or(|s| s.contains(at))
            && self.params_match(event)
    }

    fn params_match(&self, event: &Event) -> bool {
        let f = &event.facts;
        let p = &self.params;
        match event.kind {
            k if k.is_alarm() => {
                p.alarm_types.is_empty()
                    || f.alarm_type.as_ref().is_some_and(|t| p.alarm_types.iter().any(|x| x == t))
            }
            // overspeed runs are measured per speed rules ask for: the event's must be this
            // rule's, and its limit at least the speed asked
            EventKind::Overspeed => {
                f.duration_s.unwrap_or(0) >= p.overspeed_for_s()
                    && same_kmh(f.asked_kmh, p.overspeed_kmh)
                    && p.overspeed_kmh.is_none_or(|x| f.limit_kmh.is_some_and(|l| l >= x - KMH_EPS))
            }
            EventKind::Idling => f.duration_s.unwrap_or(0) >= p.idle_s(),
            // clock-derived events are raised once per threshold a rule asks for
            EventKind::Offline => f.threshold_s == Some(p.offline_s()),
            EventKind::NotMoved => f.threshold_s.is_some() && f.threshold_s == p.not_moved_s(),
            _ => true,
        }
    }

    /// Checks every field; the error names the first bad one.
    pub fn validate(&self) -> Result<(), FieldError> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(field("name", "must be 1-200 characters"));
        }
        if self.kinds.is_empty() {
            return Err(field("kinds", "names no event kind"));
        }
        if self.channels.is_empty() {
            return Err(field("channels", "names no channel"));
        }
        if !(0..=MAX_THROTTLE_S).contains(&self.throttle_s) {
            return Err(field("throttle_s", format!("must be 0-{MAX_THROTTLE_S} seconds")));
        }
        if let Some(s) = &self.schedule {
            s.validate("schedule")?;
        }
        self.validate_params()?;
        self.validate_recipients()
    }

    fn validate_params(&self) -> Result<(), FieldError> {
        let p = &self.params;
        let positive = |v: Option<i64>, name: &str, max: i64| match v {
            Some(v) if !(1..=max).contains(&v) => {
                Err(field(format!("params.{name}"), format!("must be 1-{max}")))
            }
            _ => Ok(()),
        };
        positive(p.overspeed_for_s, "overspeed_for_s", 3_600)?;
        positive(p.idle_min, "idle_min", 1_440)?;
        positive(p.offline_min, "offline_min", 10_080)?;
        if let Some(v) = p.overspeed_kmh {
            if !(v.is_finite() && v > 0.0 && v < 400.0) {
                return Err(field("params.overspeed_kmh", "must be between 0 and 400 km/h"));
            }
        }
        if let Some(t) = p.alarm_types.iter().find(|t| t.trim().is_empty() || t.len() > 64) {
            return Err(field("params.alarm_types", format!("{t:?} is not a vendor alarm type")));
        }
        if self.kinds.contains(&EventKind::NotMoved) && p.not_moved_by.is_none() {
            return Err(field(
                "params.not_moved_by",
                "required for not_moved (a time of day, HH:MM)",
            ));
        }
        Ok(())
    }

    fn validate_recipients(&self) -> Result<(), FieldError> {
        let r = &self.recipients;
        if r.user_ids.is_empty() && r.addresses.is_empty() && r.webhook_ids.is_empty() {
            return Err(field("recipients", "names nobody: add users, addresses or webhooks"));
        }
        for (i, a) in r.addresses.iter().enumerate() {
            let path = format!("recipients.addresses[{i}]");
            if !a.channel.is_personal() {
                return Err(field(format!("{path}.channel"), "must be email, sms or telegram"));
            }
            if !self.channels.contains(&a.channel) {
                return Err(field(
                    format!("{path}.channel"),
                    format!("{} is not among the rule's channels", a.channel.as_str()),
                ));
            }
            address::normalise(a.channel, &a.to)
                .map_err(|e| field(format!("{path}.to"), e.to_string()))?;
        }
        if !r.webhook_ids.is_empty() && !self.channels.contains(&Channel::Webhook) {
            return Err(field("recipients.webhook_ids", "webhooks need the webhook channel"));
        }
        if self.channels.contains(&Channel::Webhook) && r.webhook_ids.is_empty() {
            return Err(field("channels", "the webhook channel needs recipients.webhook_ids"));
        }
        if r.user_ids.is_empty()
            && self.channels.contains(&Channel::InApp)
            && r.addresses.is_empty()
            && r.webhook_ids.is_empty()
        {
            return Err(field("recipients.user_ids", "in-app messages need users"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
