//! PostgreSQL's COPY text format for the positions staging table: tab-separated columns,
//! `\N` for NULL, backslash escapes for the characters that would break a line.

use std::fmt::Write;

use fleet_core::PositionFix;

/// Columns of the staging table, in COPY order.
pub const STAGE_COLUMNS: &str =
    "sub, device_id, gps_time, lat, lon, speed_kmh, course_deg, altitude_m, ignition, \
     satellites, fix_kind, battery_pct, external_v, odometer_m, source, extra";

fn opt<T: std::fmt::Display>(out: &mut String, v: Option<T>) {
    match v {
        Some(v) => {
            let _ = write!(out, "{v}");
        }
        None => out.push_str("\\N"),
    }
}

fn text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

/// Appends one staging row: the submission index, the device id and the fix.
pub fn stage_row(out: &mut String, sub: usize, device_id: i32, p: &PositionFix) {
    let _ = write!(out, "{sub}\t{device_id}\t{}\t", p.gps_time.format("%Y-%m-%d %H:%M:%S%.6f+00"));
    let _ = write!(out, "{}\t{}\t", p.location.lat(), p.location.lon());
    opt(out, p.speed_kmh.filter(|v| v.is_finite()));
    out.push('\t');
    opt(out, p.course_deg.filter(|v| v.is_finite()));
    out.push('\t');
    opt(out, p.altitude_m.filter(|v| v.is_finite()));
    out.push('\t');
    opt(out, p.ignition.map(|b| if b { "t" } else { "f" }));
    out.push('\t');
    opt(out, p.satellites);
    out.push('\t');
    out.push_str(p.fix_kind.as_str());
    out.push('\t');
    opt(out, p.battery_pct.filter(|v| v.is_finite()));
    out.push('\t');
    opt(out, p.external_v.filter(|v| v.is_finite()));
    out.push('\t');
    opt(out, p.odometer_m.filter(|v| v.is_finite()));
    out.push('\t');
    out.push_str(p.source.as_str());
    out.push('\t');
    match &p.extra {
        Some(v) if !v.is_null() => text(out, &v.to_string()),
        _ => out.push_str("\\N"),
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_escapes_the_characters_copy_reserves() {
        let mut out = String::new();
        text(&mut out, "a\tb\nc\\d\re");
        assert_eq!(out, "a\\tb\\nc\\\\d\\re");
    }
}
