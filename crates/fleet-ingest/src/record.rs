//! What producers hand the writer: validated domain records, and the rejects that failed
//! validation (kept with their reason and raw form, never dropped).

use fleet_core::{
    AlarmEvent, CellFix, DeviceEvent, Heartbeat, Imei, PositionFix, SensorReading, VendorTrip,
};

/// Most bytes of a rejected record's raw form kept in `fleet.ingest_rejects`.
pub const MAX_REJECT_RAW_BYTES: usize = 64 * 1024;

/// One record for the writer.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Position(PositionFix),
    Alarm(AlarmEvent),
    Heartbeat(Heartbeat),
    Event(DeviceEvent),
    Cell(CellFix),
    Sensor(SensorReading),
    /// A vendor trip; `pushed` tells a pushed trip report from a polled one.
    VendorTrip {
        trip: VendorTrip,
        pushed: bool,
    },
    Reject(Reject),
}

impl Record {
    /// The device the record belongs to (rejects may have none).
    pub fn imei(&self) -> Option<&Imei> {
        match self {
            Record::Position(r) => Some(&r.imei),
            Record::Alarm(r) => Some(&r.imei),
            Record::Heartbeat(r) => Some(&r.imei),
            Record::Event(r) => Some(&r.imei),
            Record::Cell(r) => Some(&r.imei),
            Record::Sensor(r) => Some(&r.imei),
            Record::VendorTrip { trip, .. } => Some(&trip.imei),
            Record::Reject(_) => None,
        }
    }
}

/// A record that failed validation.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    /// Why, in words an operator understands.
    pub reason: String,
    /// The IMEI as received, when one could be read.
    pub imei: Option<String>,
    /// The record as received (truncated to [`MAX_REJECT_RAW_BYTES`] when stored).
    pub raw: String,
}

impl Reject {
    pub fn new(reason: impl Into<String>, imei: Option<String>, raw: impl Into<String>) -> Self {
        Self { reason: reason.into(), imei, raw: raw.into() }
    }

    /// The raw form cut to [`MAX_REJECT_RAW_BYTES`] on a character boundary.
    pub fn stored_raw(&self) -> &str {
        if self.raw.len() <= MAX_REJECT_RAW_BYTES {
            return &self.raw;
        }
        let mut end = MAX_REJECT_RAW_BYTES;
        while !self.raw.is_char_boundary(end) {
            end -= 1;
        }
        &self.raw[..end]
    }
}
