//! The vendor's response envelope and error codes, and its time format.

use chrono::{DateTime, NaiveDateTime};
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
    DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// The vendor's time format to unix seconds.
pub fn parse_time(s: &str) -> Option<i64> {
    NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|d| d.and_utc().timestamp())
}
