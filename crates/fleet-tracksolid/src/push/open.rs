//! The OpenAPI push ("Receive Notification"): form fields `msgType` and `data`.

use chrono::{DateTime, Utc};
use fleet_core::Imei;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{into_object, parse_json, PushError};
use crate::wire::{opt_text, text, text_of, Lenient};

/// What the receiver answers (HTTP 200) once a push is taken in.
pub const OPEN_PUSH_REPLY: &str = r#"{"code":0,"message":"success"}"#;
/// `msgType` of alarm pushes.
pub const OPEN_PUSH_ALARM: &str = "jimi.push.device.alarm";
/// `msgType` of raw device data pushes.
pub const OPEN_PUSH_RAW: &str = "jimi.open.instruction.raw.receive";

/// One OpenAPI push.
#[derive(Debug, Clone, PartialEq)]
pub enum OpenPush {
    Alarm(AlarmPush),
    /// Bytes a device sent, as the vendor's hex string.
    Raw {
        imei: Imei,
        device_name: Option<String>,
        raw_data: String,
    },
}

/// The `data` of `jimi.push.device.alarm`. Its names differ from `alarm.list`'s:
/// `alarmType`/`alarmName` here, `alertTypeId`/`alarmTypeName` there.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AlarmPush {
    #[serde(deserialize_with = "text")]
    pub imei: String,
    #[serde(deserialize_with = "opt_text")]
    pub device_name: Option<String>,
    /// The same codes as `alertTypeId` of the alarm list.
    #[serde(deserialize_with = "opt_text")]
    pub alarm_type: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    pub alarm_name: Option<String>,
    /// Strings in the doc's table, numbers in its example.
    pub lat: Lenient<f64>,
    pub lng: Lenient<f64>,
    pub alarm_time: Lenient<DateTime<Utc>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Parses one OpenAPI push from its form fields.
pub fn parse_open_push(msg_type: &str, data: &str) -> Result<OpenPush, PushError> {
    let msg_type = msg_type.trim();
    if msg_type != OPEN_PUSH_ALARM && msg_type != OPEN_PUSH_RAW {
        return Err(PushError::UnknownMsgType { msg_type: msg_type.to_owned() });
    }
    let fields = into_object(parse_json(data)?)?;
    let imei = fields.get("imei").and_then(text_of);
    let Some(imei) = imei else {
        return Err(PushError::MissingField { field: "imei" });
    };
    if msg_type == OPEN_PUSH_ALARM {
        return AlarmPush::deserialize(Value::Object(fields))
            .map(OpenPush::Alarm)
            .map_err(|e| PushError::Malformed { field: "data", reason: e.to_string() });
    }
    let imei = Imei::parse(&imei)
        .map_err(|e| PushError::Malformed { field: "imei", reason: e.to_string() })?;
    let raw_data = fields
        .get("raw_data")
        .and_then(text_of)
        .ok_or(PushError::MissingField { field: "raw_data" })?;
    let device_name = fields.get("deviceName").and_then(text_of);
    Ok(OpenPush::Raw { imei, device_name, raw_data })
}
