//! `/devices/{id}/track`: a device's fixes over a time range, streamed as JSON, GeoJSON, GPX or
//! CSV; and `/devices/{id}/day`: a vehicle's local day in one document (reporting time, totals,
//! trips and stops).

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use futures_util::stream::{self, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::export::{self, rfc3339, Csv, CsvRow};
use super::extract::{Path, Query};
use super::trips::{Stop, Trip};
use super::validate;
use crate::auth::Viewer;
use crate::error::FieldError;
use crate::{ApiError, AppState, Problem};
pub use fleet_db::tracks::Fix;
use fleet_db::trips::{StopFilter, TripFilter};

/// The longest range one track request may cover.
pub const MAX_TRACK_DAYS: i64 = 31;

impl Csv for Fix {
    const HEADER: &'static str =
        "gps_time,lat,lon,speed_kmh,course_deg,altitude_m,ignition,satellites,fix_kind";

    fn row(&self, out: &mut String) {
        let mut w = CsvRow::new(out);
        w.time(self.gps_time);
        w.num(self.lat);
        w.num(self.lon);
        w.opt_num(self.speed_kmh);
        w.opt_num(self.course_deg);
        w.opt_num(self.altitude_m);
        w.opt_num(self.ignition);
        w.opt_num(self.satellites);
        w.text(&self.fix_kind);
        w.end();
    }
}

/// The range and format of a track.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrackQuery {
    /// Fixes at or after this time (RFC 3339).
    pub from: DateTime<Utc>,
    /// Fixes before this time (RFC 3339); after `from`, at most 31 days later.
    pub to: DateTime<Utc>,
    /// `json` (default: an array of fixes), `geojson` (a FeatureCollection with one
    /// LineString), `gpx` (GPX 1.1) or `csv`.
    #[param(example = "gpx")]
    pub format: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    GeoJson,
    Gpx,
    Csv,
}

impl Format {
    fn parse(s: Option<&str>) -> Option<Format> {
        Some(match s.map(str::trim) {
            None | Some("") | Some("json") => Format::Json,
            Some("geojson") => Format::GeoJson,
            Some("gpx") => Format::Gpx,
            Some("csv") => Format::Csv,
            Some(_) => return None,
        })
    }

    fn media_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::GeoJson => super::live::GEO_JSON,
            Format::Gpx => "application/gpx+xml",
            Format::Csv => export::CSV,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::GeoJson => "geojson",
            Format::Gpx => "gpx",
            Format::Csv => "csv",
        }
    }
}

/// The device a route is about.
async fn device_info(
    pool: &sqlx::PgPool,
    id: i32,
) -> Result<fleet_db::devices::DeviceRecord, ApiError> {
    fleet_db::devices::get(pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no device {id}")))
}

/// Get a device's track.
#[utoipa::path(
    get,
    path = "/devices/{id}/track",
    tag = "trips",
    description = "Requires role: viewer. The device's fixes in [from, to), oldest first, streamed as they are read \
        (a long range is never held in memory), offered as a download named `track-<imei>-<from date>-<to date>.<ext>`. \
        GeoJSON's one Feature has a null geometry when the range holds fewer than two fixes (a LineString needs two). \
        GPX carries each fix's time, its speed as `<desc>` (km/h) and in the Garmin TrackPointExtension (m/s) and course. \
        A few exports run at once per user and per server (429 beyond); a client that stops reading for \
        FLEETD_EXPORT_STALL_TIMEOUT_MS has its transfer cut short.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Device id"), TrackQuery),
    responses(
        (status = 200, description = "The fixes in the chosen format", content(
            (Vec<Fix> = "application/json"),
            (Object = "application/geo+json"),
            (String = "application/gpx+xml"),
            (String = "text/csv")
        )),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such device", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters (also `from` not before `to`, a range over 31 days)", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "The user or the server already runs as many exports as allowed; see Retry-After", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn device_track(
    State(state): State<AppState>,
    Viewer(who): Viewer,
    Path(id): Path<i32>,
    Query(query): Query<TrackQuery>,
) -> Result<Response, ApiError> {
    let mut errors = Vec::new();
    if validate::times(Some(query.from), Some(query.to), &mut errors)
        && query.to - query.from > TimeDelta::days(MAX_TRACK_DAYS)
    {
        errors.push(FieldError::new("to", format!("at most {MAX_TRACK_DAYS} days after `from`")));
    }
    let format = Format::parse(query.format.as_deref());
    if format.is_none() {
        errors.push(FieldError::new("format", "must be json, geojson, gpx or csv"));
    }
    validate::finish(errors)?;
    let format = format.unwrap_or(Format::Json);
    let device = device_info(&state.pool, id).await?;
    let (from, to) = (query.from, query.to);
    let fixes =
        export::fetch_owned(&state, &who, move |pool| fleet_db::tracks::track(pool, id, from, to))?;
    let filename = format!(
        "track-{}-{}-{}.{}",
        device.imei,
        query.from.format("%Y%m%d"),
        query.to.format("%Y%m%d"),
        format.extension()
    );
    let body = match format {
        Format::Csv => return Ok(export::csv_response(fixes, &filename)),
        Format::Json => export::stream_body(fixes, "[".into(), "]".into(), |fix, first, out| {
            if !first {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(fix).unwrap_or_else(|_| "null".into()));
        }),
        Format::GeoJson => {
            let properties = serde_json::json!({
                "device_id": id,
                "imei": device.imei,
                "name": device.name,
                "from": rfc3339(query.from),
                "to": rfc3339(query.to),
            });
            let head = format!(
                r#"{{"type":"FeatureCollection","features":[{{"type":"Feature","properties":{properties},"geometry":"#
            );
            // a LineString needs two positions: look at the first two fixes before streaming
            let mut fixes = fixes;
            let mut first_two = Vec::with_capacity(2);
            while first_two.len() < 2 {
                match fixes.next().await {
                    Some(fix) => first_two.push(fix.map_err(ApiError::from)?),
                    None => break,
                }
            }
            if first_two.len() < 2 {
                let body = format!("{head}null}}]}}");
                return Ok(export::download(body.into(), format.media_type(), &filename));
            }
            let fixes = stream::iter(first_two.into_iter().map(Ok)).chain(fixes).boxed();
            let head = format!(r#"{head}{{"type":"LineString","coordinates":["#);
            export::stream_body(fixes, head, "]}}]}".into(), |fix, first, out| {
                if !first {
                    out.push(',');
                }
                out.push_str(&format!("[{},{}]", fix.lon, fix.lat));
            })
        }
        Format::Gpx => {
            let name = xml_escape(&format!("{} {}", device.name, device.plate.unwrap_or_default()));
            let head = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                 <gpx version=\"1.1\" creator=\"fleetd\" xmlns=\"http://www.topografix.com/GPX/1/1\" \
                 xmlns:gpxtpx=\"http://www.garmin.com/xmlschemas/TrackPointExtension/v2\">\n\
                 <metadata><name>{name}</name><time>{}</time></metadata>\n\
                 <trk><name>{name}</name><desc>IMEI {} from {} to {}</desc><trkseg>\n",
                rfc3339(Utc::now()),
                device.imei,
                rfc3339(query.from),
                rfc3339(query.to)
            );
            export::stream_body(fixes, head, "</trkseg></trk>\n</gpx>\n".into(), |fix, _, out| {
                gpx_point(fix, out)
            })
        }
    };
    Ok(export::download(body, format.media_type(), &filename))
}

/// One `<trkpt>` (GPX 1.1 child order: ele, time, desc, sat, extensions).
fn gpx_point(fix: &Fix, out: &mut String) {
    out.push_str(&format!("<trkpt lat=\"{}\" lon=\"{}\">", fix.lat, fix.lon));
    if let Some(ele) = fix.altitude_m {
        out.push_str(&format!("<ele>{ele}</ele>"));
    }
    out.push_str(&format!("<time>{}</time>", rfc3339(fix.gps_time)));
    if let Some(speed) = fix.speed_kmh {
        out.push_str(&format!("<desc>{speed} km/h</desc>"));
    }
    if let Some(sat) = fix.satellites {
        out.push_str(&format!("<sat>{sat}</sat>"));
    }
    if fix.speed_kmh.is_some() || fix.course_deg.is_some() {
        out.push_str("<extensions><gpxtpx:TrackPointExtension>");
        if let Some(speed) = fix.speed_kmh {
            let ms = f64::from(speed) / 3.6;
            out.push_str(&format!("<gpxtpx:speed>{:.2}</gpxtpx:speed>", ms));
        }
        if let Some(course) = fix.course_deg {
            out.push_str(&format!("<gpxtpx:course>{course}</gpxtpx:course>"));
        }
        out.push_str("</gpxtpx:TrackPointExtension></extensions>");
    }
    out.push_str("</trkpt>\n");
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.trim().chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Which day.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DayQuery {
    /// The local day (YYYY-MM-DD) in the device's time zone; default today there.
    #[param(example = "2026-11-20")]
    pub date: Option<NaiveDate>,
}

/// A vehicle's day: when it started, how much it drove, its trips and its stops.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DayReport {
    pub device_id: i32,
    pub imei: String,
    pub name: String,
    pub plate: Option<String>,
    pub driver_name: Option<String>,
    /// The local day.
    pub date: NaiveDate,
    /// The device's time zone (its analytics settings), in which the day is taken.
    pub timezone: String,
    /// Start of the local day.
    pub from: DateTime<Utc>,
    /// End of the local day (the next day's start).
    pub to: DateTime<Utc>,
    /// First fix of the day with the ignition on; null without ignition data or when it never
    /// came on.
    pub reporting_time: Option<DateTime<Utc>>,
    pub totals: DayTotals,
    /// Trips that started that day, oldest first (a trip crossing midnight is listed on its
    /// start day), with their end reasons.
    pub trips: Vec<Trip>,
    /// Stops overlapping the day, oldest first (the night's stop included).
    pub stops: Vec<Stop>,
}

/// The day's totals. From the daily KPIs (`fleet.kpi_daily`) when the trip builder computed
/// them, else from the day's trips and stops; trips and stops crossing midnight count with the
/// part inside the day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DayTotals {
    /// `kpi_daily` or `computed`.
    pub source: String,
    /// Trips that started that day.
    pub trips: i32,
    pub distance_km: f64,
    /// Moving time, minutes.
    pub driving_min: f64,
    /// Engine on and stationary, minutes; null without ignition data.
    pub idle_min: Option<f64>,
    /// Stopped with the engine off, minutes.
    pub stopped_min: f64,
}

/// Seconds to minutes, to 0.1 min.
fn minutes(s: f64) -> f64 {
    (s / 6.0).round() / 10.0
}

/// Get a vehicle's day.
#[utoipa::path(
    get,
    path = "/devices/{id}/day",
    tag = "trips",
    description = "Requires role: viewer. The local day in the device's time zone: reporting time, totals, trips and stops.",
    security(("session" = []), ("bearer" = [])),
    params(("id" = i32, Path, description = "Device id"), DayQuery),
    responses(
        (status = 200, description = "The vehicle's day", body = DayReport),
        (status = 400, description = "The id is not a number", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such device", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn device_day(
    State(state): State<AppState>,
    _: Viewer,
    Path(id): Path<i32>,
    Query(query): Query<DayQuery>,
) -> Result<Json<DayReport>, ApiError> {
    let mut tx = state.pool.begin().await?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    let device = fleet_db::day::subject(&mut tx, id).await?;
    let Some(fleet_db::day::DaySubject { imei, name, plate, driver_name, timezone, today }) =
        device
    else {
        return Err(ApiError::NotFound(format!("there is no device {id}")));
    };
    let date = query.date.unwrap_or(today);
    let (from, to) = fleet_db::day::bounds(&mut tx, date, &timezone).await?;
    // the lists come newest first; the day reads oldest first
    let day_trips = TripFilter {
        device_ids: Some(vec![id]),
        from: Some(from),
        to: Some(to),
        ..TripFilter::default()
    };
    let mut trips: Vec<Trip> = fleet_db::trips::trips(&mut *tx, &day_trips).await?;
    trips.reverse();
    // every stop overlapping the day
    let day_stops = StopFilter {
        device_ids: Some(vec![id]),
        to: Some(to),
        ends_after: Some(from),
        ..StopFilter::default()
    };
    let mut stops: Vec<Stop> = fleet_db::trips::stops(&mut *tx, &day_stops).await?;
    stops.reverse();
    let kpi = fleet_db::day::kpi_totals(&mut tx, id, date).await?;
    let (source, totals) = match kpi {
        Some(k) => ("kpi_daily", k),
        None => ("computed", fleet_db::day::computed_totals(&mut tx, id, from, to).await?),
    };
    tx.commit().await?;
    let fleet_db::day::DayTotals {
        trips: trip_count,
        distance_m,
        driving_s,
        idle_s,
        parked_s,
        reporting_time,
    } = totals;
    Ok(Json(DayReport {
        device_id: id,
        imei,
        name,
        plate,
        driver_name,
        date,
        timezone,
        from,
        to,
        reporting_time,
        totals: DayTotals {
            source: source.to_owned(),
            trips: trip_count,
            distance_km: (distance_m).round() / 1000.0,
            driving_min: minutes(driving_s),
            idle_min: idle_s.map(minutes),
            stopped_min: minutes(parked_s),
        },
        trips,
        stops,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_name_their_files() {
        assert_eq!(Format::parse(None), Some(Format::Json));
        assert_eq!(Format::parse(Some("gpx")).map(Format::extension), Some("gpx"));
        assert_eq!(Format::parse(Some("kml")), None);
    }

    #[test]
    fn gpx_points_carry_time_and_speed() {
        let fix = Fix {
            gps_time: DateTime::from_timestamp(1_790_000_000, 0).expect("time"),
            lat: -1.28,
            lon: 36.82,
            speed_kmh: Some(36.0),
            course_deg: Some(90.0),
            altitude_m: None,
            ignition: Some(true),
            satellites: Some(9),
            fix_kind: "gps".into(),
        };
        let mut out = String::new();
        gpx_point(&fix, &mut out);
        assert!(out.starts_with("<trkpt lat=\"-1.28\" lon=\"36.82\"><time>2026-"), "{out}");
        assert!(out.contains("<desc>36 km/h</desc><sat>9</sat>"), "{out}");
        assert!(out.contains("<gpxtpx:speed>10.00</gpxtpx:speed>"), "{out}");
        assert_eq!(xml_escape("Van <1> & \"2\""), "Van &lt;1&gt; &amp; &quot;2&quot;");
    }

    #[test]
    fn minutes_round_to_a_tenth() {
        assert_eq!(minutes(90.0), 1.5);
        assert_eq!(minutes(100.0), 1.7);
    }
}
