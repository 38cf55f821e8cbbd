//! Validated records as every source delivers them to ingest: a position fix, an alarm, a
//! device's registry entry, a vendor trip. Sources parse their wire formats into these; storage
//! writes them. Fields the domain does not model travel in `extra` so nothing is thrown away.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{FixKind, Imei, LatLon, PositionSource};

/// One position fix of one device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionFix {
    pub imei: Imei,
    pub gps_time: DateTime<Utc>,
    pub location: LatLon,
    /// Ground speed, km/h.
    pub speed_kmh: Option<f32>,
    /// Heading in degrees clockwise from north, `0..=360`; `None` when unknown.
    pub course_deg: Option<f32>,
    pub altitude_m: Option<f32>,
    /// ACC state; `None` for devices without ignition wiring or when not reported.
    pub ignition: Option<bool>,
    pub satellites: Option<i16>,
    pub fix_kind: FixKind,
    /// Tracker battery, percent.
    pub battery_pct: Option<f32>,
    /// External (vehicle) supply, volts.
    pub external_v: Option<f32>,
    /// Device odometer, metres.
    pub odometer_m: Option<f64>,
    pub source: PositionSource,
    /// Vendor fields not modelled above, verbatim (a JSON object), or `None`.
    pub extra: Option<serde_json::Value>,
}

/// Stable alarm classes KPIs count by (vendor codes map onto these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmClass {
    /// SOS, collision, rollover, fall, fatigue and distraction.
    Safety,
    /// Tamper, vibration, displacement, unauthorised door opening, jamming.
    Security,
    /// Power cut, low battery, power off, charging.
    Power,
    /// Overspeed, harsh acceleration, braking and cornering, lane changes.
    Driving,
    /// Geofence entry and exit.
    Geofence,
    /// Device state: boot, first fix, SIM change, offline, ignition on/off.
    Device,
    Other,
}

impl AlarmClass {
    pub const ALL: &'static [AlarmClass] = &[
        AlarmClass::Safety,
        AlarmClass::Security,
        AlarmClass::Power,
        AlarmClass::Driving,
        AlarmClass::Geofence,
        AlarmClass::Device,
        AlarmClass::Other,
    ];

    /// The lowercase name stored in `fleet.alarms.alarm_class`.
    pub fn as_str(&self) -> &'static str {
        match self {
            AlarmClass::Safety => "safety",
            AlarmClass::Security => "security",
            AlarmClass::Power => "power",
            AlarmClass::Driving => "driving",
            AlarmClass::Geofence => "geofence",
            AlarmClass::Device => "device",
            AlarmClass::Other => "other",
        }
    }
}

/// An alarm raised by a device or by the vendor platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmEvent {
    pub imei: Imei,
    pub alarm_time: DateTime<Utc>,
    /// The vendor's type code as text (`"1"`, `"overSpeed"`, `"ACC_ON"`).
    pub alarm_type: String,
    /// Readable name.
    pub alarm_name: String,
    pub class: AlarmClass,
    pub location: Option<LatLon>,
    pub speed_kmh: Option<f32>,
    pub source: PositionSource,
    pub extra: Option<serde_json::Value>,
}

/// A device as the vendor account lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceProfile {
    pub imei: Imei,
    pub name: String,
    pub plate: Option<String>,
    pub driver_name: Option<String>,
    pub driver_phone: Option<String>,
    /// Tracker model, e.g. `AT4`, `JC400P`, `GT06E`.
    pub model: Option<String>,
    pub sim: Option<String>,
    /// The vendor's device group; fleets often use it for the city or cost centre.
    pub group: Option<String>,
    /// Vehicle kind from the vendor's icon or use scope, e.g. `automobile`, `mtc`, `truck`.
    pub vehicle_type: Option<String>,
    pub enabled: bool,
    pub extra: Option<serde_json::Value>,
}

/// One trip from the vendor's own trip report, kept to reconcile with fleetd's trips.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VendorTrip {
    pub imei: Imei,
    pub start_time: DateTime<Utc>,
    pub end_time: DateTime<Utc>,
    pub start: Option<LatLon>,
    pub end: Option<LatLon>,
    /// Distance in metres (the vendor reports kilometres; converted at the edge).
    pub distance_m: Option<f64>,
    pub duration_s: Option<i64>,
    pub avg_speed_kmh: Option<f32>,
    pub max_speed_kmh: Option<f32>,
    pub extra: Option<serde_json::Value>,
}

/// A heartbeat: the tracker is alive (pushed by the vendor's gateway).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub imei: Imei,
    pub gate_time: DateTime<Utc>,
    pub power_level: Option<i16>,
    /// GSM signal, 0–100.
    pub gsm_signal: Option<i16>,
    pub ignition: Option<bool>,
    pub extra: Option<serde_json::Value>,
}

/// Whether a device connected to or left the vendor's gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEventKind {
    Login,
    Logout,
    Other,
}

impl SessionEventKind {
    /// The name stored in `fleet.device_events.event_type`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SessionEventKind::Login => "login",
            SessionEventKind::Logout => "logout",
            SessionEventKind::Other => "other",
        }
    }
}

/// A device's login to or logout from the vendor's gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceEvent {
    pub imei: Imei,
    pub time: DateTime<Utc>,
    pub kind: SessionEventKind,
    /// The device's zone as reported, e.g. `GMT+03:00`.
    pub timezone: Option<String>,
    pub extra: Option<serde_json::Value>,
}

/// The cell towers or Wi-Fi access points a device saw (a coarse location, not a GPS fix).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CellFix {
    pub imei: Imei,
    pub gate_time: DateTime<Utc>,
    /// `LBS` or `WIFI` as the vendor says.
    pub fix_kind: Option<String>,
    /// The towers as the vendor describes them (mcc, mnc, cell list), as JSON.
    pub cells: Option<serde_json::Value>,
    pub extra: Option<serde_json::Value>,
}

/// Kinds of sensor data the vendor pushes without documenting their fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorKind {
    Fuel,
    Temperature,
    Obd,
    Fault,
}

impl SensorKind {
    /// The name stored in `fleet.sensor_readings.kind`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SensorKind::Fuel => "fuel",
            SensorKind::Temperature => "temperature",
            SensorKind::Obd => "obd",
            SensorKind::Fault => "fault",
        }
    }
}

/// A sensor reading kept whole: its fields are not documented by the vendor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SensorReading {
    pub imei: Imei,
    pub time: DateTime<Utc>,
    pub kind: SensorKind,
    /// The item as received.
    pub item: serde_json::Value,
}
