//! PostgreSQL's binary COPY format for the positions staging table. Binary rather than text
//! because the writer stages every fix it stores: the text form cost a timestamp and several
//! floats formatted here and parsed again by the server for each row.
//!
//! The format: a fixed header, then per row the field count and each field as a big-endian
//! length (-1 for NULL) followed by the value in the type's binary send form, then a trailer.

use fleet_core::PositionFix;

/// Columns of the staging table, in COPY order; [`StageRows::push`] writes them in this order
/// with these types.
pub const STAGE_COLUMNS: &str =
    "sub, device_id, gps_time, lat, lon, speed_kmh, course_deg, altitude_m, ignition, \
     satellites, fix_kind, battery_pct, external_v, odometer_m, source, extra";
const FIELDS: i16 = 16;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01T00:00:00Z).
const PG_EPOCH_US: i64 = 946_684_800_000_000;
/// The version byte a binary jsonb value starts with.
const JSONB_VERSION: u8 = 1;

/// Staging rows in COPY binary form, ready for `COPY … FROM STDIN (FORMAT binary)`.
#[derive(Debug)]
pub struct StageRows {
    buf: Vec<u8>,
    rows: usize,
}

impl Default for StageRows {
    fn default() -> Self {
        Self::new()
    }
}

impl StageRows {
    pub fn new() -> Self {
        let mut buf = Vec::with_capacity(64 * 1024);
        buf.extend_from_slice(SIGNATURE);
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        Self { buf, rows: 0 }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one staging row: the submission index, the device id and the fix. Values that
    /// are not finite are stored as NULL.
    pub fn push(&mut self, sub: usize, device_id: i32, p: &PositionFix) {
        self.rows += 1;
        self.buf.extend_from_slice(&FIELDS.to_be_bytes());
        self.value(&(sub as i32).to_be_bytes());
        self.value(&device_id.to_be_bytes());
        // timestamptz: microseconds since 2000-01-01 UTC (sub-microsecond digits dropped)
        self.value(&(p.gps_time.timestamp_micros() - PG_EPOCH_US).to_be_bytes());
        self.value(&p.location.lat().to_be_bytes());
        self.value(&p.location.lon().to_be_bytes());
        self.real(p.speed_kmh);
        self.real(p.course_deg);
        self.real(p.altitude_m);
        self.opt(p.ignition.map(|b| [u8::from(b)]));
        self.opt(p.satellites.map(i16::to_be_bytes));
        self.value(p.fix_kind.as_str().as_bytes());
        self.real(p.battery_pct);
        self.real(p.external_v);
        self.opt(p.odometer_m.filter(|v| v.is_finite()).map(f64::to_be_bytes));
        self.value(p.source.as_str().as_bytes());
        match &p.extra {
            Some(v) if !v.is_null() => {
                // the length is known once the JSON is written: reserve it, then fill it in
                let at = self.buf.len();
                self.buf.extend_from_slice(&0i32.to_be_bytes());
                self.buf.push(JSONB_VERSION);
                serde_json::to_writer(&mut self.buf, v).expect("a JSON value serialises");
                let len = (self.buf.len() - at - 4) as i32;
                self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
            }
            _ => self.null(),
        }
    }

    /// The COPY data: the rows and the trailer.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }

    fn value(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }

    fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    fn opt<const N: usize>(&mut self, v: Option<[u8; N]>) {
        match v {
            Some(bytes) => self.value(&bytes),
            None => self.null(),
        }
    }

    fn real(&mut self, v: Option<f32>) {
        self.opt(v.filter(|v| v.is_finite()).map(f32::to_be_bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use fleet_core::{FixKind, Imei, LatLon, PositionSource};

    fn fix() -> PositionFix {
        PositionFix {
            imei: Imei::parse("358899051234567").expect("imei"),
            gps_time: Utc.timestamp_opt(946_684_801, 500_000_999).single().expect("time"),
            location: LatLon::new(-1.25, 36.75).expect("location"),
            speed_kmh: Some(f32::NAN),
            course_deg: None,
            altitude_m: Some(1.5),
            ignition: Some(true),
            satellites: Some(7),
            fix_kind: FixKind::Gps,
            battery_pct: None,
            external_v: None,
            odometer_m: None,
            source: PositionSource::Push,
            extra: None,
        }
    }

    /// Reads COPY binary data back, field by field.
    struct Reader {
        bytes: Vec<u8>,
        at: usize,
    }

    impl Reader {
        fn take(&mut self, n: usize) -> Vec<u8> {
            let s = self.bytes[self.at..self.at + n].to_vec();
            self.at += n;
            s
        }

        fn field(&mut self) -> Option<Vec<u8>> {
            let len = i32::from_be_bytes(self.take(4).try_into().expect("4 bytes"));
            (len >= 0).then(|| self.take(len as usize))
        }
    }

    #[test]
    fn a_row_is_framed_field_by_field_in_send_form() {
        let mut rows = StageRows::new();
        rows.push(2, 9, &fix());
        assert_eq!(rows.len(), 1);
        let mut r = Reader { bytes: rows.finish(), at: 0 };
        assert_eq!(r.take(SIGNATURE.len()), SIGNATURE);
        assert_eq!(r.take(8), [0; 8], "no flags, no header extension");
        assert_eq!(r.take(2), 16i16.to_be_bytes());
        assert_eq!(r.field(), Some(2i32.to_be_bytes().to_vec()));
        assert_eq!(r.field(), Some(9i32.to_be_bytes().to_vec()));
        // 1.5 s after PostgreSQL's epoch, the nanoseconds beyond the microsecond dropped
        assert_eq!(r.field(), Some(1_500_000i64.to_be_bytes().to_vec()));
        assert_eq!(r.field(), Some((-1.25f64).to_be_bytes().to_vec()));
        assert_eq!(r.field(), Some(36.75f64.to_be_bytes().to_vec()));
        assert_eq!(r.field(), None, "a speed that is not a number is NULL");
        assert_eq!(r.field(), None);
        assert_eq!(r.field(), Some(1.5f32.to_be_bytes().to_vec()));
        assert_eq!(r.field(), Some(vec![1]));
        assert_eq!(r.field(), Some(7i16.to_be_bytes().to_vec()));
        assert_eq!(r.field(), Some(b"gps".to_vec()));
        for _ in 0..3 {
            assert_eq!(r.field(), None);
        }
        assert_eq!(r.field(), Some(b"push".to_vec()));
        assert_eq!(r.field(), None);
        assert_eq!(r.take(2), (-1i16).to_be_bytes(), "the trailer");
        assert_eq!(r.at, r.bytes.len());
    }
}
