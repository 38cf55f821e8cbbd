//! The fixes a full rebuild reads: every marked device's fixes, in one sequential scan of
//! `fleet.positions`.
//!
//! A rebuild of many devices reads most of the table. Reading it per chunk of devices costs one
//! scan of the table per chunk (a device's rows are spread over the whole heap in arrival
//! order); reading it in windows of GPS time costs a third more than one scan (each window's
//! index lookup takes whole page ranges, whose rows outside the window are read and dropped).
//! One scan in heap order reads every row once: the heap is in arrival order, which for nearly
//! every device is time order (the rebuild re-reads the few others in time order). The scan is
//! one binary `COPY`, decoded here by hand: row decoding through the driver cost more than the
//! scan itself.

use std::future::Future;

use chrono::{DateTime, Utc};
use fleet_core::{LatLon, TripPoint};
use futures_util::StreamExt;
use sqlx::PgConnection;

/// How a scan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanEnd {
    /// Every row was read; the connection is ready for the next statement.
    Complete,
    /// The sink asked to stop: the `COPY` was left unfinished, so the connection must be closed
    /// rather than reused.
    Stopped,
}

/// Hands the usable (non-LBS) fixes of `ids` to `sink` in heap order, in batches of at least
/// `batch` fixes (as they come: not grouped by device, not sorted), as (device, fix); stops when
/// `sink` returns false.
pub async fn heap_fixes<F, Fut>(
    conn: &mut PgConnection,
    ids: &[i32],
    batch: usize,
    mut sink: F,
) -> Result<ScanEnd, sqlx::Error>
where
    F: FnMut(Vec<(i32, TripPoint)>) -> Fut,
    Fut: Future<Output = bool>,
{
    // every device asked for (`fleetd trips rebuild`): no need to test each row's device
    let devices: i64 = sqlx::query_scalar!(r#"select count(*) as "n!" from fleet.devices"#)
        .fetch_one(&mut *conn)
        .await?;
    let mut distinct = ids.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let filter = if i64::try_from(distinct.len()).is_ok_and(|n| n >= devices) {
        String::new()
    } else {
        // COPY takes no bind parameters: the statement carries the ids as literals, integers
        // formatted here, never text from outside
        let mut list = String::with_capacity(ids.len() * 6);
        for (i, id) in distinct.iter().enumerate() {
            if i > 0 {
                list.push(',');
            }
            list.push_str(&id.to_string());
        }
        format!(" and device_id = any('{{{list}}}'::int[])")
    };
    let statement = format!(
        "copy (select device_id, gps_time, lat, lon, speed_kmh, ignition from fleet.positions
               where fix_kind <> 'lbs'{filter})
         to stdout (format binary)"
    );
    // one process scanning: parallel workers would only add the cost of passing every row to
    // the leader, on a machine the rebuild's other stages keep busy
    sqlx::query("set max_parallel_workers_per_gather = 0").execute(&mut *conn).await?;
    let batch = batch.max(1);
    let mut out = Vec::with_capacity(batch.min(1 << 20));
    {
        let mut stream = conn.copy_out_raw(&statement).await?;
        let mut decoder = CopyDecoder::default();
        while let Some(chunk) = stream.next().await {
            decoder.feed(&chunk?, &mut out).map_err(sqlx::Error::Protocol)?;
            if out.len() >= batch {
                let full = std::mem::replace(&mut out, Vec::with_capacity(batch.min(1 << 20)));
                if !sink(full).await {
                    return Ok(ScanEnd::Stopped);
                }
            }
        }
        decoder.finish().map_err(sqlx::Error::Protocol)?;
    }
    sqlx::query("reset max_parallel_workers_per_gather").execute(&mut *conn).await?;
    if !out.is_empty() && !sink(out).await {
        return Ok(ScanEnd::Stopped);
    }
    Ok(ScanEnd::Complete)
}

/// PostgreSQL's binary COPY header: signature, flags, header extension length.
const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
const HEADER_LEN: usize = SIGNATURE.len() + 8;
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;

/// Decodes the binary COPY stream of (int4, timestamptz, float8, float8, float4 null, bool
/// null) rows, chunks split anywhere.
#[derive(Debug, Default)]
pub(crate) struct CopyDecoder {
    pending: Vec<u8>,
    header_read: bool,
    ended: bool,
}

impl CopyDecoder {
    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        out: &mut Vec<(i32, TripPoint)>,
    ) -> Result<(), String> {
        // decode straight from the chunk when nothing is left over from the last one
        let mut joined = std::mem::take(&mut self.pending);
        let data: &[u8] = if joined.is_empty() {
            chunk
        } else {
            joined.extend_from_slice(chunk);
            &joined
        };
        let used = self.decode(data, out)?;
        self.pending = data[used..].to_vec();
        Ok(())
    }

    /// Decodes the complete rows at the start of `data`; returns the bytes used.
    fn decode(&mut self, data: &[u8], out: &mut Vec<(i32, TripPoint)>) -> Result<usize, String> {
        let mut at = 0;
        if !self.header_read {
            if data.len() < HEADER_LEN {
                return Ok(0);
            }
            if &data[..SIGNATURE.len()] != SIGNATURE {
                return Err("binary COPY stream without its signature".to_owned());
            }
            let ext = be_i32(&data[SIGNATURE.len() + 4..]);
            let ext = usize::try_from(ext).map_err(|_| "negative COPY header extension")?;
            if data.len() < HEADER_LEN + ext {
                return Ok(0);
            }
            at = HEADER_LEN + ext;
            self.header_read = true;
        }
        while at + 2 <= data.len() {
            if self.ended {
                return Err("data after the binary COPY trailer".to_owned());
            }
            let fields = i16::from_be_bytes([data[at], data[at + 1]]);
            if fields == -1 {
                self.ended = true;
                at += 2;
                continue;
            }
            if fields != 6 {
                return Err(format!("a fix row of {fields} fields, not 6"));
            }
            match Row::parse(&data[at + 2..])? {
                Some((row, len)) => {
                    at += 2 + len;
                    if let Some(fix) = row.into_fix()? {
                        out.push(fix);
                    }
                }
                None => break,
            }
        }
        Ok(at)
    }

    pub(crate) fn finish(&self) -> Result<(), String> {
        match (self.ended, self.pending.is_empty()) {
            (true, true) => Ok(()),
            _ => Err("binary COPY stream ended early".to_owned()),
        }
    }
}

struct Row {
    device_id: i32,
    gps_time_us: i64,
    lat: f64,
    lon: f64,
    speed_kmh: Option<f32>,
    ignition: Option<bool>,
}

impl Row {
    /// A row's fields; `None` when `data` holds only part of it. Returns the bytes it took.
    fn parse(data: &[u8]) -> Result<Option<(Row, usize)>, String> {
        let mut fields: [Option<&[u8]>; 6] = [None; 6];
        let mut at = 0;
        for field in &mut fields {
            if at + 4 > data.len() {
                return Ok(None);
            }
            let len = be_i32(&data[at..]);
            at += 4;
            if len < 0 {
                continue;
            }
            let len = len as usize;
            if at + len > data.len() {
                return Ok(None);
            }
            *field = Some(&data[at..at + len]);
            at += len;
        }
        let [device_id, gps_time, lat, lon, speed, ignition] = fields;
        let row = Row {
            device_id: i32::from_be_bytes(fixed(device_id, "device_id")?),
            gps_time_us: i64::from_be_bytes(fixed(gps_time, "gps_time")?),
            lat: f64::from_be_bytes(fixed(lat, "lat")?),
            lon: f64::from_be_bytes(fixed(lon, "lon")?),
            speed_kmh: speed
                .map(|_| fixed(speed, "speed_kmh"))
                .transpose()?
                .map(f32::from_be_bytes),
            ignition: ignition
                .map(|_| fixed::<1>(ignition, "ignition"))
                .transpose()?
                .map(|b| b[0] != 0),
        };
        Ok(Some((row, at)))
    }

    /// The fix, or `None` for a coordinate the trip builder cannot use (the table's checks
    /// rule them out; the row path skipped them too).
    fn into_fix(self) -> Result<Option<(i32, TripPoint)>, String> {
        let time = self
            .gps_time_us
            .checked_add(PG_EPOCH_US)
            .and_then(DateTime::<Utc>::from_timestamp_micros)
            .ok_or_else(|| format!("device {}: a GPS time out of range", self.device_id))?;
        let Ok(location) = LatLon::new(self.lat, self.lon) else { return Ok(None) };
        Ok(Some((
            self.device_id,
            TripPoint { time, location, speed_kmh: self.speed_kmh, ignition: self.ignition },
        )))
    }
}

fn be_i32(data: &[u8]) -> i32 {
    i32::from_be_bytes([data[0], data[1], data[2], data[3]])
}

/// A non-null field of exactly `N` bytes.
fn fixed<const N: usize>(field: Option<&[u8]>, name: &str) -> Result<[u8; N], String> {
    let bytes = field.ok_or_else(|| format!("{name} is null"))?;
    bytes.try_into().map_err(|_| format!("{name} has {} bytes, not {N}", bytes.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Vec<u8> {
        let mut v = SIGNATURE.to_vec();
        v.extend_from_slice(&0i32.to_be_bytes());
        v.extend_from_slice(&0i32.to_be_bytes());
        v
    }

    fn row(
        device: i32,
        us: i64,
        lat: f64,
        lon: f64,
        speed: Option<f32>,
        ign: Option<bool>,
    ) -> Vec<u8> {
        let mut v = 6i16.to_be_bytes().to_vec();
        let mut field = |b: Option<Vec<u8>>| match b {
            Some(b) => {
                v.extend_from_slice(&(b.len() as i32).to_be_bytes());
                v.extend_from_slice(&b);
            }
            None => v.extend_from_slice(&(-1i32).to_be_bytes()),
        };
        field(Some(device.to_be_bytes().to_vec()));
        field(Some(us.to_be_bytes().to_vec()));
        field(Some(lat.to_be_bytes().to_vec()));
        field(Some(lon.to_be_bytes().to_vec()));
        field(speed.map(|s| s.to_be_bytes().to_vec()));
        field(ign.map(|b| vec![u8::from(b)]));
        v
    }

    fn stream() -> Vec<u8> {
        let mut v = header();
        v.extend(row(7, 0, -1.25, 36.5, Some(42.5), Some(true)));
        v.extend(row(8, 1_000_000, 1.0, 2.0, None, None));
        v.extend(row(9, 2_000_000, 0.0, 0.0, Some(0.0), Some(false)));
        v.extend((-1i16).to_be_bytes());
        v
    }

    #[test]
    fn rows_split_anywhere_decode_the_same() {
        let data = stream();
        let mut whole = Vec::new();
        let mut d = CopyDecoder::default();
        d.feed(&data, &mut whole).expect("decodes");
        d.finish().expect("complete");
        // the (0, 0) coordinate is no usable fix
        assert_eq!(whole.len(), 2);
        assert_eq!(whole[0].0, 7);
        assert_eq!(whole[0].1.time, DateTime::<Utc>::from_timestamp(946_684_800, 0).expect("t"));
        assert_eq!(whole[0].1.location, LatLon::new(-1.25, 36.5).expect("valid"));
        assert_eq!(whole[0].1.speed_kmh, Some(42.5));
        assert_eq!(whole[0].1.ignition, Some(true));
        assert_eq!((whole[1].1.speed_kmh, whole[1].1.ignition), (None, None));
        for split in 1..data.len() {
            for step in [1, 3, split] {
                let mut out = Vec::new();
                let mut d = CopyDecoder::default();
                for chunk in data[..split].chunks(step).chain(data[split..].chunks(step)) {
                    d.feed(chunk, &mut out).expect("decodes");
                }
                d.finish().expect("complete");
                assert_eq!(out, whole, "split at {split}, step {step}");
            }
        }
    }

    #[test]
    fn a_cut_or_malformed_stream_is_an_error_not_a_panic() {
        let data = stream();
        let mut d = CopyDecoder::default();
        d.feed(&data[..data.len() - 5], &mut Vec::new()).expect("a prefix decodes");
        assert!(d.finish().is_err(), "a stream without its trailer is incomplete");

        let mut bad = header();
        bad.extend(5i16.to_be_bytes());
        assert!(CopyDecoder::default().feed(&bad, &mut Vec::new()).is_err());

        let mut short = header();
        let mut r = row(1, 0, 1.0, 1.0, None, None);
        r[2..6].copy_from_slice(&2i32.to_be_bytes()); // device_id of 2 bytes
        r.splice(6..10, [0, 1]);
        short.extend(r);
        assert!(CopyDecoder::default().feed(&short, &mut Vec::new()).is_err());

        assert!(CopyDecoder::default()
            .feed(b"PGCOPY\nxx\r\n\0\0\0\0\0\0\0\0\0", &mut Vec::new())
            .is_err());
    }
}
