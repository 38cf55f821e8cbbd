//! The benchmark's fixes as CSV for the baseline (`psql \copy` into a staging table). Each item
//! goes through the same parsing and conversion as fleetd's push receiver, so the baseline
//! stores exactly the values fleetd stores; only the work differs.

use std::io::Write;

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use fleet_core::PositionFix;
use fleet_tracksolid::convert::{push_item_record, PushRecord};
use fleet_tracksolid::push::{parse_data_items, DataPushKind};

/// The header row; the staging table's columns have these names.
pub const HEADER: &str = "imei,gps_time,lat,lon,speed_kmh,course_deg,altitude_m,ignition,\
     satellites,fix_kind,battery_pct,external_v,odometer_m,source,extra";

/// Writes a header and one row per item of the `data_lists` (as sent to `/pushgps`); returns
/// the number of rows. An item fleetd would reject is an error: the benchmark sends none.
pub fn write(out: &mut impl Write, data_lists: &[(usize, String)]) -> anyhow::Result<usize> {
    writeln!(out, "{HEADER}")?;
    let now = Utc::now();
    let mut rows = 0;
    for (_, list) in data_lists {
        for outcome in parse_data_items(DataPushKind::Gps, list).context("a data_list")? {
            let item = outcome.parsed.with_context(|| format!("item {}", outcome.raw))?;
            match push_item_record(&item, now) {
                Ok(PushRecord::Position(fix)) => {
                    row(out, &fix)?;
                    rows += 1;
                }
                Ok(_) => bail!("item {} is not a position", outcome.raw),
                Err(e) => bail!("item {} would be rejected: {e}", outcome.raw),
            }
        }
    }
    out.flush()?;
    Ok(rows)
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}

/// A CSV field in quotes, inner quotes doubled.
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// One row; an empty unquoted field is NULL in PostgreSQL's CSV format. Numbers print as
/// fleetd's COPY prints them, so both sides store identical values.
fn row(out: &mut impl Write, p: &PositionFix) -> std::io::Result<()> {
    let extra = match &p.extra {
        Some(v) if !v.is_null() => quoted(&v.to_string()),
        _ => String::new(),
    };
    writeln!(
        out,
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
        p.imei.as_str(),
        time(p.gps_time),
        p.location.lat(),
        p.location.lon(),
        opt(p.speed_kmh.filter(|v| v.is_finite())),
        opt(p.course_deg.filter(|v| v.is_finite())),
        opt(p.altitude_m.filter(|v| v.is_finite())),
        opt(p.ignition),
        opt(p.satellites),
        p.fix_kind.as_str(),
        opt(p.battery_pct.filter(|v| v.is_finite())),
        opt(p.external_v.filter(|v| v.is_finite())),
        opt(p.odometer_m.filter(|v| v.is_finite())),
        p.source.as_str(),
        extra,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixes::{data_lists, default_end, gps_items};

    #[test]
    fn every_item_becomes_one_row_with_its_json_quoted() {
        let end = default_end(1_790_000_000);
        let items = gps_items(5, 10, end - 3600, end, 1);
        let mut out = Vec::new();
        let rows = write(&mut out, &data_lists(&items, 50)).unwrap_or_default();
        assert_eq!(rows, items.len());
        let text = String::from_utf8(out).unwrap_or_default();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(HEADER));
        let first = lines.next().unwrap_or_default();
        assert!(first.starts_with(&format!("{},", items[0].imei)), "{first}");
        assert!(first.contains(",push,\"{\"\""), "{first}");
        assert_eq!(lines.count(), items.len() - 1);
    }
}
