//! Tolerant decoding of the vendor's JSON: numbers that arrive as strings and the reverse,
//! `""` and `null` for "no value", several spellings of booleans, and the response envelope.
//!
//! Decoding never fails on a field's shape; a value that cannot be read is kept as
//! [`Lenient::Invalid`] so the conversion to domain records can reject that one record with a
//! precise reason instead of the whole response failing to decode.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::time::parse_time;

/// A field the vendor may send in several shapes, read as `T` where possible.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Lenient<T> {
    /// Absent, `null`, or a blank string.
    #[default]
    Missing,
    Value(T),
    /// Present but not readable as `T`; holds the value as text for the error message.
    Invalid(String),
}

/// How one wire scalar reads a JSON value.
pub trait WireScalar: Sized {
    fn from_json(value: &Value) -> Option<Self>;
}

impl WireScalar for f64 {
    fn from_json(value: &Value) -> Option<Self> {
        let n = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        }?;
        // `"NaN"` and `"inf"` parse as f64 but are no measurement
        n.is_finite().then_some(n)
    }
}

impl WireScalar for i64 {
    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Number(n) => n.as_i64().or_else(|| n.as_f64().and_then(whole_f64_to_i64)),
            Value::String(s) => {
                let s = s.trim();
                s.parse::<i64>().ok().or_else(|| s.parse::<f64>().ok().and_then(whole_f64_to_i64))
            }
            _ => None,
        }
    }
}

/// `7200.0` is an integer sent as a float; `1.5` is not an integer.
fn whole_f64_to_i64(f: f64) -> Option<i64> {
    let in_range = f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15;
    // whole and within ±2^53, so the cast is exact
    in_range.then_some(f as i64)
}

impl WireScalar for bool {
    fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::Bool(b) => Some(*b),
            Value::Number(n) => match n.as_i64() {
                Some(1) => Some(true),
                Some(0) => Some(false),
                _ => None,
            },
            Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "1" | "on" | "true" => Some(true),
                "0" | "off" | "false" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }
}

impl WireScalar for DateTime<Utc> {
    fn from_json(value: &Value) -> Option<Self> {
        value.as_str().and_then(|s| parse_time(s).ok())
    }
}

impl<T: WireScalar> Lenient<T> {
    /// Reads a JSON value; never fails.
    pub fn from_json(value: &Value) -> Self {
        match value {
            Value::Null => Lenient::Missing,
            Value::String(s) if s.trim().is_empty() => Lenient::Missing,
            other => match T::from_json(other) {
                Some(v) => Lenient::Value(v),
                None => Lenient::Invalid(json_text(other)),
            },
        }
    }
}

impl<T: Clone> Lenient<T> {
    /// The value if there is a readable one; `Invalid` reads as `None` here.
    pub fn value(&self) -> Option<T> {
        match self {
            Lenient::Value(v) => Some(v.clone()),
            Lenient::Missing | Lenient::Invalid(_) => None,
        }
    }

    /// The value, `None` when missing, or the unreadable text as the error.
    pub fn checked(&self) -> Result<Option<T>, &str> {
        match self {
            Lenient::Missing => Ok(None),
            Lenient::Value(v) => Ok(Some(v.clone())),
            Lenient::Invalid(raw) => Err(raw),
        }
    }

    pub fn is_missing(&self) -> bool {
        matches!(self, Lenient::Missing)
    }
}

impl<'de, T: WireScalar> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Ok(Lenient::from_json(&value))
    }
}

/// The text of a JSON value: strings as they are, anything else as JSON.
fn json_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `deserialize_with` for optional text: `null` and blank strings are `None`; numbers (IMEIs and
/// SIM numbers sometimes arrive as numbers) and other values become their JSON text.
pub fn opt_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(text_of(&Value::deserialize(deserializer)?))
}

/// A JSON value as optional text, the way [`opt_text`] reads it.
pub fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        other => Some(json_text(other)),
    }
}

/// "a string", "an object", …: what a JSON value is, for error messages.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `deserialize_with` for required text, read like [`opt_text`]; blank or `null` is an error.
pub fn text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    opt_text(deserializer)?.ok_or_else(|| serde::de::Error::custom("expected non-blank text"))
}

/// `deserialize_with` for a number that must be readable when present (number or string).
pub fn opt_f64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<f64>, D::Error> {
    strict(Lenient::<f64>::deserialize(deserializer)?, "a number")
}

/// `deserialize_with` for an integer that must be readable when present (number or string).
pub fn opt_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    strict(Lenient::<i64>::deserialize(deserializer)?, "an integer")
}

/// `deserialize_with` for a boolean in any of the vendor's spellings: `true`/`false`, `1`/`0`,
/// `"1"`/`"0"`, `"ON"`/`"OFF"`.
pub fn opt_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    strict(Lenient::<bool>::deserialize(deserializer)?, "a boolean")
}

/// `deserialize_with` for a vendor timestamp that must be readable when present.
pub fn opt_time<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    strict(Lenient::<DateTime<Utc>>::deserialize(deserializer)?, "a yyyy-MM-dd HH:mm:ss time")
}

fn strict<T: Clone, E: serde::de::Error>(value: Lenient<T>, what: &str) -> Result<Option<T>, E> {
    value.checked().map_err(|raw| E::custom(format!("{raw:?} is not {what}")))
}

/// The envelope of every response: `{code, message, result, data}`.
///
/// `code` is a number, or a string in some error samples; the payload is in `result` for older
/// methods, in `data` for newer ones, and some methods fill both.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub code: Lenient<i64>,
    #[serde(default, deserialize_with = "opt_text")]
    pub message: Option<String>,
    #[serde(default)]
    pub result: Option<Value>,
    #[serde(default)]
    pub data: Option<Value>,
}

impl Envelope {
    /// The payload: `result` when it holds something, else `data`. Where both are filled
    /// (`track.list`, `track.mileage`) `result` carries the records and `data` a summary.
    pub fn payload(&self) -> Option<&Value> {
        self.result.as_ref().or(self.data.as_ref())
    }

    /// The payload by value, chosen as in [`Envelope::payload`].
    pub fn into_payload(self) -> Option<Value> {
        self.result.or(self.data)
    }

    /// The message, or an empty string when the vendor sent none.
    pub fn message_text(&self) -> &str {
        self.message.as_deref().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_read_from_numbers_and_numeric_strings() {
        assert_eq!(Lenient::<f64>::from_json(&json!(10)), Lenient::Value(10.0));
        assert_eq!(Lenient::<f64>::from_json(&json!(" 100.12")), Lenient::Value(100.12));
        assert_eq!(Lenient::<f64>::from_json(&json!("")), Lenient::Missing);
        assert_eq!(Lenient::<f64>::from_json(&json!(null)), Lenient::Missing);
        assert_eq!(Lenient::<f64>::from_json(&json!("0.00L")), Lenient::Invalid("0.00L".into()));
        assert_eq!(Lenient::<f64>::from_json(&json!("NaN")), Lenient::Invalid("NaN".into()));
        assert_eq!(Lenient::<f64>::from_json(&json!([1])), Lenient::Invalid("[1]".into()));
    }

    #[test]
    fn integers_accept_whole_floats_but_not_fractions() {
        assert_eq!(Lenient::<i64>::from_json(&json!("7200")), Lenient::Value(7200));
        assert_eq!(Lenient::<i64>::from_json(&json!(7200.0)), Lenient::Value(7200));
        assert_eq!(Lenient::<i64>::from_json(&json!("-1")), Lenient::Value(-1));
        assert_eq!(Lenient::<i64>::from_json(&json!(1.5)), Lenient::Invalid("1.5".into()));
    }

    #[test]
    fn booleans_read_from_every_spelling_the_vendor_uses() {
        for (on, off) in [
            (json!(true), json!(false)),
            (json!(1), json!(0)),
            (json!("1"), json!("0")),
            (json!("ON"), json!("OFF")),
            (json!("on"), json!("off")),
            (json!("true"), json!("false")),
        ] {
            assert_eq!(Lenient::<bool>::from_json(&on), Lenient::Value(true), "{on}");
            assert_eq!(Lenient::<bool>::from_json(&off), Lenient::Value(false), "{off}");
        }
        assert_eq!(Lenient::<bool>::from_json(&json!(2)), Lenient::Invalid("2".into()));
        assert_eq!(Lenient::<bool>::from_json(&json!("maybe")), Lenient::Invalid("maybe".into()));
    }

    #[test]
    fn the_envelope_takes_a_string_code_and_finds_the_payload_in_result_or_data() {
        let e: Envelope =
            serde_json::from_value(json!({"code": "1004", "message": "token"})).expect("decode");
        assert_eq!((&e.code, e.payload()), (&Lenient::Value(1004), None));
        let e: Envelope = serde_json::from_value(json!({"code": 0, "result": null, "data": [1]}))
            .expect("decode");
        assert_eq!(e.payload(), Some(&json!([1])));
        let e: Envelope =
            serde_json::from_value(json!({"code": 0, "result": [2], "data": {"mileage": 0}}))
                .expect("decode");
        assert_eq!(e.payload(), Some(&json!([2])));
        let e: Envelope = serde_json::from_value(json!({"code": "xxx"})).expect("decode");
        assert_eq!(e.code, Lenient::Invalid("xxx".into()));
    }

    #[derive(Debug, Deserialize)]
    struct Strict {
        #[serde(default, deserialize_with = "opt_i64")]
        n: Option<i64>,
        #[serde(default, deserialize_with = "opt_bool")]
        b: Option<bool>,
        #[serde(default, deserialize_with = "opt_time")]
        t: Option<DateTime<Utc>>,
    }

    #[test]
    fn strict_helpers_read_lenient_shapes_and_reject_unreadable_values() {
        let s: Strict =
            serde_json::from_value(json!({"n": "60", "b": "OFF", "t": ""})).expect("decode");
        assert_eq!((s.n, s.b, s.t), (Some(60), Some(false), None));
        let err = serde_json::from_value::<Strict>(json!({"n": "sixty"})).expect_err("rejected");
        assert!(err.to_string().contains("\"sixty\" is not an integer"), "{err}");
    }
}
