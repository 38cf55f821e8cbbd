//! Payloads of the vendor's two push interfaces, parsed from form fields the HTTP receiver has
//! already decoded: the OpenAPI push (`msgType` + `data`) and Data Push (`data_list` per path).
//!
//! Parsing checks structure only (JSON, shape, an IMEI to file the item under) and never
//! panics; whether an item's values make a usable record is `convert`'s judgement.

mod data;
mod open;

use serde_json::{Map, Value};

use crate::wire::json_kind;

pub use data::{
    parse_data_items, parse_data_list, AlarmDataPush, DataPushKind, EventPush, GpsPush,
    HeartbeatPush, ItemOutcome, LbsPush, OpaquePush, PushItem, SessionEvent, DATA_PUSH_REPLY,
    MAX_DATA_LIST_ITEMS,
};
pub use open::{
    parse_open_push, AlarmPush, OpenPush, OPEN_PUSH_ALARM, OPEN_PUSH_RAW, OPEN_PUSH_REPLY,
};

/// Why a push payload was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("not JSON: {reason}")]
    NotJson { reason: String },
    #[error("expected a JSON array, found {found}")]
    NotAnArray { found: &'static str },
    #[error("expected a JSON object, found {found}")]
    NotAnObject { found: &'static str },
    #[error("{count} items are more than the {max} accepted in one push")]
    TooManyItems { count: usize, max: usize },
    #[error("item {index} is invalid: {reason}")]
    InvalidItem { index: usize, reason: Box<PushError> },
    #[error("unknown msgType {msg_type:?}")]
    UnknownMsgType { msg_type: String },
    #[error("required field {field} is missing or blank")]
    MissingField { field: &'static str },
    #[error("field {field} is malformed: {reason}")]
    Malformed { field: &'static str, reason: String },
}

fn parse_json(text: &str) -> Result<Value, PushError> {
    serde_json::from_str(text).map_err(|e| PushError::NotJson { reason: e.to_string() })
}

fn into_object(value: Value) -> Result<Map<String, Value>, PushError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(PushError::NotAnObject { found: json_kind(&other) }),
    }
}
