//! The vendor's response envelope and error codes, and its time format.

use chrono::DateTime;
use serde_json::{json, Value};

/// A vendor error: code and message, answered with HTTP 200 like the real service.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiFault {
    pub code: i64,
    pub message: String,
}

impl ApiFault {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn param(message: impl Into<String>) -> Self {
        Self::new(1001, message)
    }

    pub fn into_envelope(self) -> Value {
        json!({ "code": self.code, "message": self.message, "result": null })
    }
}

/// A success envelope.
pub fn ok(result: Value) -> Value {
    json!({ "code": 0, "message": "success", "result": result })
}

/// A success envelope with both `result` and `data` (track list, mileage).
pub fn ok_with_data(result: Value, data: Value) -> Value {
    json!({ "code": 0, "message": "success", "result": result, "data": data })
}

/// Unix seconds as the vendor's UTC `yyyy-MM-dd HH:mm:ss`.
pub fn format_time(t: i64) -> String {
    DateTime::from_timestamp(t, 0).map(fleet_tracksolid::time::format_time).unwrap_or_default()
}

/// The vendor's time format to unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    fleet_tracksolid::time::parse_time(s).ok().map(|d| d.timestamp())
}
