//! Data Push (IoT-Hub style): per-path form posts whose `data_list` is a JSON array of items.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{into_object, parse_json, PushError};
use crate::wire::{json_kind, opt_text, text, text_of, Lenient, WireScalar};

/// What the receiver answers (HTTP 200) once a `data_list` is taken in.
pub const DATA_PUSH_REPLY: &str = r#"{"code":0,"msg":"success"}"#;

/// Most items accepted in one `data_list`. The vendor sends up to 50; far more is not a push
/// but an attempt to exhaust the receiver.
pub const MAX_DATA_LIST_ITEMS: usize = 1000;

/// The Data Push paths fleetd receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataPushKind {
    Gps,
    Alarm,
    Heartbeat,
    /// Login and logout of devices on the vendor's gateway.
    Event,
    Lbs,
    Oil,
    Temperature,
    Obd,
    TripReport,
    FaultInfo,
}

impl DataPushKind {
    pub const ALL: &'static [DataPushKind] = &[
        DataPushKind::Gps,
        DataPushKind::Alarm,
        DataPushKind::Heartbeat,
        DataPushKind::Event,
        DataPushKind::Lbs,
        DataPushKind::Oil,
        DataPushKind::Temperature,
        DataPushKind::Obd,
        DataPushKind::TripReport,
        DataPushKind::FaultInfo,
    ];

    /// The path the vendor posts this kind to, below the registered base URL.
    pub fn path(self) -> &'static str {
        match self {
            DataPushKind::Gps => "/pushgps",
            DataPushKind::Alarm => "/pushalarm",
            DataPushKind::Heartbeat => "/pushhb",
            DataPushKind::Event => "/pushevent",
            DataPushKind::Lbs => "/pushlbs",
            DataPushKind::Oil => "/pushoil",
            DataPushKind::Temperature => "/pushtem",
            DataPushKind::Obd => "/pushobd",
            DataPushKind::TripReport => "/pushtripreport",
            DataPushKind::FaultInfo => "/pushfaultinfo",
        }
    }

    /// The kind of a request path. Only the last segment counts, so the receiver may be
    /// mounted below any prefix (`/vendor/jimi/pushgps`); a trailing slash is ignored.
    pub fn from_path(path: &str) -> Option<Self> {
        let last = path.trim_end_matches('/').rsplit('/').next()?;
        DataPushKind::ALL.iter().copied().find(|kind| kind.path()[1..] == *last)
    }
}

/// One item of a `data_list`.
#[derive(Debug, Clone, PartialEq)]
pub enum PushItem {
    Gps(GpsPush),
    Alarm(AlarmDataPush),
    Heartbeat(HeartbeatPush),
    Event(EventPush),
    Lbs(LbsPush),
    /// Oil, temperature, OBD, trip report and fault items, whose fields are not documented.
    Opaque(OpaquePush),
}

/// A `/pushgps` item.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GpsPush {
    #[serde(rename = "deviceImei", deserialize_with = "text")]
    pub imei: String,
    pub gps_time: Lenient<DateTime<Utc>>,
    pub lat: Lenient<f64>,
    pub lng: Lenient<f64>,
    /// km/h.
    pub gps_speed: Lenient<f64>,
    /// Degrees from north.
    pub direction: Lenient<f64>,
    pub acc: Lenient<bool>,
    pub satellite_num: Lenient<i64>,
    /// `1` GPS, `2` LBS, `3` Wi-Fi.
    #[serde(deserialize_with = "opt_text")]
    pub post_type: Option<String>,
    /// Metres.
    pub altitude: Lenient<f64>,
    /// The device odometer, metres.
    pub distance: Lenient<f64>,
    /// `gateTime`, `gpsMode` (0 live, 1 re-uploaded), `status`, `temperature`, …
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A `/pushhb` heartbeat item.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HeartbeatPush {
    #[serde(rename = "deviceImei", deserialize_with = "text")]
    pub imei: String,
    pub gate_time: Lenient<DateTime<Utc>>,
    pub power_level: Lenient<f64>,
    /// GSM signal, 0–100.
    pub gsm_sign: Lenient<i64>,
    pub acc: Lenient<bool>,
    /// `oilEle`, `gpsPos`, `remoteLock`, `powerStatus`, `fortify`, …
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Whether a device connected to or left the vendor's gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    Login,
    Logout,
    /// Any other `type`, kept as sent.
    Other(String),
}

/// A `/pushevent` item.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct EventPush {
    #[serde(rename = "deviceImei", deserialize_with = "text")]
    pub imei: String,
    #[serde(rename = "type", deserialize_with = "session_event")]
    pub event: Option<SessionEvent>,
    pub gate_time: Lenient<DateTime<Utc>>,
    /// The device's zone, e.g. `GMT+08:00`; `gateTime` is UTC regardless.
    #[serde(deserialize_with = "opt_text")]
    pub timezone: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn session_event<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SessionEvent>, D::Error> {
    Ok(opt_text(d)?.map(|t| match t.trim().to_ascii_uppercase().as_str() {
        "LOGIN" => SessionEvent::Login,
        "LOGOUT" => SessionEvent::Logout,
        _ => SessionEvent::Other(t),
    }))
}

/// A `/pushlbs` item: cell towers or Wi-Fi access points the device saw.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LbsPush {
    #[serde(rename = "deviceImei", deserialize_with = "text")]
    pub imei: String,
    pub gate_time: Lenient<DateTime<Utc>>,
    /// JSON text such as `{"mcc":724,"mnc":10,"cellList":"LAC1,CI1,RSSI1;…"}`.
    #[serde(deserialize_with = "opt_text")]
    pub lbs_json: Option<String>,
    /// `WIFI` or `LBS`.
    #[serde(deserialize_with = "opt_text")]
    pub post_type: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A `/pushalarm` item, in either shape seen: the documented envelope (`type`, `msgClass`,
/// `gateTime`, and the alarm in `msg` with `deviceImei`, `alertType`, …) or the OpenAPI push's
/// flat shape (`imei`, `alarmType`, `alarmName`, …) that some accounts receive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlarmDataPush {
    pub imei: String,
    /// What identifies the device: `DEVICE`, `ICCID` or `VIN`.
    pub target_type: Option<String>,
    /// 0 Jimi protocol, 1 JT/T 808.
    pub msg_class: Lenient<i64>,
    pub gate_time: Lenient<DateTime<Utc>>,
    pub alarm_type: Option<String>,
    pub alarm_name: Option<String>,
    pub alarm_time: Lenient<DateTime<Utc>>,
    pub lat: Lenient<f64>,
    pub lng: Lenient<f64>,
    /// km/h.
    pub speed: Lenient<f64>,
    /// Unmapped fields; those of the nested `msg` object under `"msg"`.
    pub extra: Map<String, Value>,
}

/// An item of a kind whose fields the vendor does not document: kept whole, with the IMEI and
/// gateway time pulled out when present so it can be filed.
#[derive(Debug, Clone, PartialEq)]
pub struct OpaquePush {
    pub kind: DataPushKind,
    /// `deviceImei`, or `imei`.
    pub imei: Option<String>,
    /// `gateTime`, which every documented Data Push item carries.
    pub gate_time: Lenient<DateTime<Utc>>,
    pub item: Value,
}

/// One item of a `data_list`, parsed on its own so a bad item costs only itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemOutcome {
    /// Position in the list, counted from 0.
    pub index: usize,
    /// The item's JSON text as received, so a rejected item can be kept for inspection.
    pub raw: String,
    /// The IMEI the item names, if any can be found, even when the item is rejected: it tells
    /// which device's data went missing.
    pub imei: Option<String>,
    pub parsed: Result<PushItem, PushError>,
}

/// Parses the `data_list` field of a Data Push to the path of `kind`, each item on its own.
/// Only a list that cannot be read as a whole (not JSON, not an array, too many items) is an
/// error; an unreadable item is reported in its outcome and the others are kept.
pub fn parse_data_items(
    kind: DataPushKind,
    data_list: &str,
) -> Result<Vec<ItemOutcome>, PushError> {
    // each item's text as received, found by one scan of the list; a list that is no JSON
    // array is parsed again to say what it is
    let items: Vec<&RawValue> = match serde_json::from_str(data_list) {
        Ok(items) => items,
        Err(not_a_list) => {
            return Err(match parse_json(data_list)? {
                Value::Array(_) => PushError::NotJson { reason: not_a_list.to_string() },
                other => PushError::NotAnArray { found: json_kind(&other) },
            })
        }
    };
    if items.len() > MAX_DATA_LIST_ITEMS {
        return Err(PushError::TooManyItems { count: items.len(), max: MAX_DATA_LIST_ITEMS });
    }
    Ok(items
        .into_iter()
        .enumerate()
        .map(|(index, raw)| {
            // valid JSON already: this parse only builds the value
            let item = parse_json(raw.get());
            ItemOutcome {
                index,
                raw: raw.get().to_owned(),
                imei: item.as_ref().ok().and_then(item_imei),
                parsed: item.and_then(|item| parse_item(kind, item)),
            }
        })
        .collect())
}

/// Parses the `data_list` field of a Data Push to the path of `kind`. One malformed item
/// rejects the list, naming the item.
pub fn parse_data_list(kind: DataPushKind, data_list: &str) -> Result<Vec<PushItem>, PushError> {
    parse_data_items(kind, data_list)?
        .into_iter()
        .map(|outcome| {
            outcome.parsed.map_err(|reason| PushError::InvalidItem {
                index: outcome.index,
                reason: Box::new(reason),
            })
        })
        .collect()
}

/// The IMEI an item names at its top level or, for nested alarms, in its `msg` (an object or
/// JSON text of one).
fn item_imei(item: &Value) -> Option<String> {
    let named = |fields: &Map<String, Value>| {
        ["deviceImei", "imei"].iter().find_map(|k| fields.get(*k).and_then(text_of))
    };
    let fields = item.as_object()?;
    named(fields).or_else(|| match fields.get("msg")? {
        Value::Object(msg) => named(msg),
        Value::String(text) => match serde_json::from_str(text) {
            Ok(Value::Object(msg)) => named(&msg),
            _ => None,
        },
        _ => None,
    })
}

fn parse_item(kind: DataPushKind, item: Value) -> Result<PushItem, PushError> {
    let mut fields = into_object(item)?;
    match kind {
        DataPushKind::Gps => decode(&mut fields).map(PushItem::Gps),
        DataPushKind::Heartbeat => decode(&mut fields).map(PushItem::Heartbeat),
        DataPushKind::Event => decode(&mut fields).map(PushItem::Event),
        DataPushKind::Lbs => decode(&mut fields).map(PushItem::Lbs),
        DataPushKind::Alarm => parse_alarm(fields).map(PushItem::Alarm),
        DataPushKind::Oil
        | DataPushKind::Temperature
        | DataPushKind::Obd
        | DataPushKind::TripReport
        | DataPushKind::FaultInfo => Ok(PushItem::Opaque(OpaquePush {
            kind,
            imei: ["deviceImei", "imei"].iter().find_map(|k| fields.get(*k).and_then(text_of)),
            gate_time: fields.get("gateTime").map_or(Lenient::Missing, Lenient::from_json),
            item: Value::Object(fields),
        })),
    }
}

/// Decodes a documented item filed under `deviceImei`, accepting `imei` in its place.
fn decode<T: for<'de> Deserialize<'de>>(fields: &mut Map<String, Value>) -> Result<T, PushError> {
    if fields.get("deviceImei").and_then(text_of).is_none() {
        let imei =
            take_text(fields, &["imei"]).ok_or(PushError::MissingField { field: "deviceImei" })?;
        fields.insert("deviceImei".to_owned(), Value::String(imei));
    }
    T::deserialize(Value::Object(std::mem::take(fields)))
        .map_err(|e| PushError::Malformed { field: "item", reason: e.to_string() })
}

fn parse_alarm(mut fields: Map<String, Value>) -> Result<AlarmDataPush, PushError> {
    let msg = match fields.remove("msg") {
        None => None,
        Some(Value::Object(msg)) => Some(msg),
        // some gateways send the inner object as JSON text
        Some(Value::String(text)) => match serde_json::from_str(&text) {
            Ok(Value::Object(msg)) => Some(msg),
            _ => return Err(malformed_msg("text that is not a JSON object")),
        },
        Some(other) => return Err(malformed_msg(json_kind(&other))),
    };
    let nested = msg.is_some();
    let (mut alarm, mut envelope) = match msg {
        Some(msg) => (msg, fields),
        None => (fields, Map::new()),
    };
    let imei = take_text(&mut alarm, &["deviceImei", "imei"])
        .ok_or(PushError::MissingField { field: "deviceImei" })?;
    let mut parsed = AlarmDataPush {
        imei,
        alarm_type: take_text(&mut alarm, &["alertType", "alarmType"]),
        alarm_name: take_text(&mut alarm, &["alarmName"]),
        alarm_time: take_lenient(&mut alarm, &["alarmTime"]),
        lat: take_lenient(&mut alarm, &["lat"]),
        lng: take_lenient(&mut alarm, &["lng"]),
        speed: take_lenient(&mut alarm, &["gpsSpeed", "speed"]),
        ..AlarmDataPush::default()
    };
    let outer = if nested { &mut envelope } else { &mut alarm };
    parsed.target_type = take_text(outer, &["type"]);
    parsed.msg_class = take_lenient(outer, &["msgClass"]);
    parsed.gate_time = take_lenient(outer, &["gateTime"]);
    parsed.extra = if nested {
        if !alarm.is_empty() {
            envelope.insert("msg".to_owned(), Value::Object(alarm));
        }
        envelope
    } else {
        alarm
    };
    Ok(parsed)
}

fn malformed_msg(found: &str) -> PushError {
    PushError::Malformed { field: "msg", reason: format!("expected an object, found {found}") }
}

/// Removes and returns the first of `keys` holding non-blank text; blank ones stay behind.
fn take_text(fields: &mut Map<String, Value>, keys: &[&str]) -> Option<String> {
    let key = keys.iter().find(|k| fields.get(**k).and_then(text_of).is_some())?;
    fields.remove(*key).as_ref().and_then(text_of)
}

/// Removes and reads the first of `keys` holding a value; blank ones stay behind.
fn take_lenient<T: WireScalar>(fields: &mut Map<String, Value>, keys: &[&str]) -> Lenient<T> {
    let present = keys.iter().find(|k| fields.get(**k).is_some_and(|v| text_of(v).is_some()));
    match present.and_then(|k| fields.remove(*k)) {
        Some(value) => Lenient::from_json(&value),
        None => Lenient::Missing,
    }
}
