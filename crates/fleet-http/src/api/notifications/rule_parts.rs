//! The parts of a rule as the API reads and writes them: the same fields as `fleet_core`'s
//! scope, schedule, per-kind settings and recipients, but refusing unknown fields (a 422 naming
//! the field, like every other body of the API) and documented as closed objects.

use chrono::NaiveTime;
use fleet_core::notification::rule::{Address, Recipients};
use fleet_core::notification::{Channel, Params, Schedule, Scope};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Which vehicles and places a rule covers. Empty lists: the whole fleet. Vehicle selectors
/// (vehicles, cost centres, cities) add up; a geofence list narrows the rule to events that
/// name one of those geofences.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleScope {
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSchedule {
    pub days: Vec<u8>,
    #[schema(value_type = String, example = "18:00")]
    pub from: NaiveTime,
    #[schema(value_type = String, example = "06:00")]
    pub to: NaiveTime,
}

/// Per-kind settings of a rule (`GET /notifications/kinds` says which apply to which kind).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleParams {
    /// Alarms: only these vendor type codes (empty: every alarm of the chosen classes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alarm_types: Vec<String>,
    /// Overspeed: sustained at least this long, seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overspeed_for_s: Option<i64>,
    /// Overspeed: above this speed, km/h (and above the vehicle's configured limit), for
    /// `overspeed_for_s` (default: above the configured limit).
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
    #[schema(value_type = Option<String>, example = "09:00")]
    pub not_moved_by: Option<NaiveTime>,
}

/// A bare address: e-mail, a phone number in E.164 form, or a Telegram chat id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleAddress {
    /// email, sms or telegram (and among the rule's channels).
    pub channel: Channel,
    pub to: String,
}

/// Who hears of a rule's events; at least one user, address or webhook.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleRecipients {
    /// Users: reached on their own contact points for the rule's channels, and in the apps.
    #[serde(default)]
    pub user_ids: Vec<i32>,
    /// Bare addresses (people without a login, a control-room mailbox).
    #[serde(default)]
    pub addresses: Vec<RuleAddress>,
    /// Webhooks (`/notifications/webhooks`); they need the webhook channel.
    #[serde(default)]
    pub webhook_ids: Vec<i32>,
}

impl From<RuleScope> for Scope {
    fn from(s: RuleScope) -> Self {
        Scope {
            device_ids: s.device_ids,
            cost_centres: s.cost_centres,
            cities: s.cities,
            geofence_ids: s.geofence_ids,
        }
    }
}

impl From<Scope> for RuleScope {
    fn from(s: Scope) -> Self {
        RuleScope {
            device_ids: s.device_ids,
            cost_centres: s.cost_centres,
            cities: s.cities,
            geofence_ids: s.geofence_ids,
        }
    }
}

impl From<RuleSchedule> for Schedule {
    fn from(s: RuleSchedule) -> Self {
        Schedule { days: s.days, from: s.from, to: s.to }
    }
}

impl From<Schedule> for RuleSchedule {
    fn from(s: Schedule) -> Self {
        RuleSchedule { days: s.days, from: s.from, to: s.to }
    }
}

impl From<RuleParams> for Params {
    fn from(p: RuleParams) -> Self {
        Params {
            alarm_types: p.alarm_types,
            overspeed_for_s: p.overspeed_for_s,
            overspeed_kmh: p.overspeed_kmh,
            idle_min: p.idle_min,
            offline_min: p.offline_min,
            not_moved_by: p.not_moved_by,
        }
    }
}

impl From<Params> for RuleParams {
    fn from(p: Params) -> Self {
        RuleParams {
            alarm_types: p.alarm_types,
            overspeed_for_s: p.overspeed_for_s,
            overspeed_kmh: p.overspeed_kmh,
            idle_min: p.idle_min,
            offline_min: p.offline_min,
            not_moved_by: p.not_moved_by,
        }
    }
}

impl From<RuleRecipients> for Recipients {
    fn from(r: RuleRecipients) -> Self {
        Recipients {
            user_ids: r.user_ids,
            addresses: r
                .addresses
                .into_iter()
                .map(|a| Address { channel: a.channel, to: a.to })
                .collect(),
            webhook_ids: r.webhook_ids,
        }
    }
}

impl From<Recipients> for RuleRecipients {
    fn from(r: Recipients) -> Self {
        RuleRecipients {
            user_ids: r.user_ids,
            addresses: r
                .addresses
                .into_iter()
                .map(|a| RuleAddress { channel: a.channel, to: a.to })
                .collect(),
            webhook_ids: r.webhook_ids,
        }
    }
}
