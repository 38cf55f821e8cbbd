//! Notifications: the events fleetd tells people about, the rules that choose who hears of
//! which, and how messages are worded. Pure: storage routes and records, the dispatcher sends.

pub mod address;
pub mod rule;
pub mod template;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use address::AddressError;
pub use rule::{FieldError, LocalMoment, Params, QuietHours, Rule, Schedule, Scope, VehicleScope};
pub use template::{
    event_link, local_time_text, render, render_test, MessageInput, Rendered, WebhookDevice,
    WebhookPayload,
};

/// What happened, as rules name it. Alarms are grouped by their class (the vendor's type code is
/// in the facts, and a rule can narrow to codes with [`Params::alarm_types`]); the rest fleetd
/// derives itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventKind {
    /// SOS, collision, rollover, fatigue.
    #[serde(rename = "alarm.safety")]
    AlarmSafety,
    /// Vibration, tamper, displacement, jamming.
    #[serde(rename = "alarm.security")]
    AlarmSecurity,
    /// Power cut, low battery, power off.
    #[serde(rename = "alarm.power")]
    AlarmPower,
    /// Overspeed and harsh driving as the tracker reports them.
    #[serde(rename = "alarm.driving")]
    AlarmDriving,
    /// Geofence alarms raised by the tracker or the vendor platform.
    #[serde(rename = "alarm.geofence")]
    AlarmGeofence,
    /// Tracker state changes: boot, SIM change, ignition.
    #[serde(rename = "alarm.device")]
    AlarmDevice,
    #[serde(rename = "alarm.other")]
    AlarmOther,
    /// The vehicle entered a geofence (derived from its fixes).
    #[serde(rename = "geofence.enter")]
    GeofenceEnter,
    #[serde(rename = "geofence.exit")]
    GeofenceExit,
    /// Above the speed limit for a sustained time (derived).
    #[serde(rename = "overspeed")]
    Overspeed,
    /// Ignition on or movement outside shift hours.
    #[serde(rename = "after_hours")]
    AfterHours,
    /// Idling (engine on, not moving) for longer than the rule's limit.
    #[serde(rename = "idling")]
    Idling,
    /// No data from the tracker for longer than the rule's limit.
    #[serde(rename = "offline")]
    Offline,
    /// The tracker reported again after an offline event.
    #[serde(rename = "online")]
    Online,
    /// The vehicle has not moved today by the rule's time of day.
    #[serde(rename = "not_moved")]
    NotMoved,
    /// External power dropped away (wire cut, battery disconnected).
    #[serde(rename = "power_lost")]
    PowerLost,
}

impl EventKind {
    pub const ALL: &'static [EventKind] = &[
        EventKind::AlarmSafety,
        EventKind::AlarmSecurity,
        EventKind::AlarmPower,
        EventKind::AlarmDriving,
        EventKind::AlarmGeofence,
        EventKind::AlarmDevice,
        EventKind::AlarmOther,
        EventKind::GeofenceEnter,
        EventKind::GeofenceExit,
        EventKind::Overspeed,
        EventKind::AfterHours,
        EventKind::Idling,
        EventKind::Offline,
        EventKind::Online,
        EventKind::NotMoved,
        EventKind::PowerLost,
    ];

    /// The name stored in `fleet.notify_events.kind` and used by the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventKind::AlarmSafety => "alarm.safety",
            EventKind::AlarmSecurity => "alarm.security",
            EventKind::AlarmPower => "alarm.power",
            EventKind::AlarmDriving => "alarm.driving",
            EventKind::AlarmGeofence => "alarm.geofence",
            EventKind::AlarmDevice => "alarm.device",
            EventKind::AlarmOther => "alarm.other",
            EventKind::GeofenceEnter => "geofence.enter",
            EventKind::GeofenceExit => "geofence.exit",
            EventKind::Overspeed => "overspeed",
            EventKind::AfterHours => "after_hours",
            EventKind::Idling => "idling",
            EventKind::Offline => "offline",
            EventKind::Online => "online",
            EventKind::NotMoved => "not_moved",
            EventKind::PowerLost => "power_lost",
        }
    }

    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.iter().copied().find(|k| k.as_str() == name)
    }

    /// The event kind of a stored alarm of `class`.
    pub fn of_alarm(class: crate::AlarmClass) -> EventKind {
        use crate::AlarmClass as C;
        match class {
            C::Safety => EventKind::AlarmSafety,
            C::Security => EventKind::AlarmSecurity,
            C::Power => EventKind::AlarmPower,
            C::Driving => EventKind::AlarmDriving,
            C::Geofence => EventKind::AlarmGeofence,
            C::Device => EventKind::AlarmDevice,
            C::Other => EventKind::AlarmOther,
        }
    }

    pub fn is_alarm(&self) -> bool {
        self.as_str().starts_with("alarm.")
    }
}

/// How urgent a rule's messages are. Critical ones reach people in their quiet hours too
/// (unless they opted out of that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub const ALL: &'static [Severity] = &[Severity::Info, Severity::Warning, Severity::Critical];

    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn from_name(name: &str) -> Option<Severity> {
        Severity::ALL.iter().copied().find(|s| s.as_str() == name)
    }
}

/// How a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Telegram,
    Webhook,
    /// The bell in FleetNow and FleetOps.
    InApp,
}

impl Channel {
    pub const ALL: &'static [Channel] =
        &[Channel::Email, Channel::Sms, Channel::Telegram, Channel::Webhook, Channel::InApp];

    pub fn as_str(&self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Telegram => "telegram",
            Channel::Webhook => "webhook",
            Channel::InApp => "in_app",
        }
    }

    pub fn from_name(name: &str) -> Option<Channel> {
        Channel::ALL.iter().copied().find(|c| c.as_str() == name)
    }

    /// Channels a person keeps a contact point for.
    pub fn is_personal(&self) -> bool {
        matches!(self, Channel::Email | Channel::Sms | Channel::Telegram)
    }
}

/// One notifiable event: what the writer, the trip builder or the sweep derived, before it is
/// stored. `key` is stable: deriving the same happening again yields the same key, so storing
/// it twice is a no-op.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub key: String,
    pub device_id: i32,
    pub time: DateTime<Utc>,
    pub kind: EventKind,
    pub facts: Facts,
}

/// What is known about an event; every field optional, each kind fills its own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Facts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speed_kmh: Option<f64>,
    /// The vendor's alarm type code (alarms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_type: Option<String>,
    /// The alarm's readable name (alarms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geofence_id: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geofence_name: Option<String>,
    /// How long the condition lasted or has lasted (overspeed, idling, offline), seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<i64>,
    /// The limit that was exceeded (overspeed: km/h, the greater of the vehicle's configured
    /// limit and the speed the rule asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_kmh: Option<f64>,
    /// Overspeed: the speed rules asked for (`params.overspeed_kmh`) that this run was measured
    /// above, with the configured limit; absent: the configured limit alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked_kmh: Option<f64>,
    /// The highest speed seen (overspeed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_speed_kmh: Option<f64>,
    /// The last fix before the tracker fell silent (offline), or the first after (online).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fix: Option<DateTime<Utc>>,
    /// The rule threshold a clock-derived event was raised for: offline, seconds of silence;
    /// not moved, seconds after local midnight of the deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_s: Option<i64>,
    /// External power voltage before it dropped away (power lost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_v: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::from_name(k.as_str()), Some(*k));
            assert_eq!(serde_json::to_value(k).expect("json"), k.as_str());
        }
        for c in Channel::ALL {
            assert_eq!(Channel::from_name(c.as_str()), Some(*c));
            assert_eq!(serde_json::to_value(c).expect("json"), c.as_str());
        }
        for s in Severity::ALL {
            assert_eq!(Severity::from_name(s.as_str()), Some(*s));
            assert_eq!(serde_json::to_value(s).expect("json"), s.as_str());
        }
        assert_eq!(EventKind::from_name("alarm"), None);
        assert!(EventKind::AlarmSafety.is_alarm() && !EventKind::Offline.is_alarm());
        assert_eq!(EventKind::of_alarm(crate::AlarmClass::Power), EventKind::AlarmPower);
    }
}
