//! A synthetic vehicle day, delivered through the real ingest writer, and readers of what the
//! trip builder stored.

use chrono::{DateTime, Duration, TimeZone, Utc};
use fleet_core::trips::rebuild;
use fleet_core::{
    AnalyticsSettings, FixKind, Imei, LatLon, PositionFix, PositionSource, Segment, TripPoint,
};
use fleet_ingest::{Record, Writer, WriterConfig};
use fleet_testkit::TestDb;
use tokio_util::sync::CancellationToken;

pub fn imei(n: u32) -> Imei {
    Imei::parse(&format!("8612345679{n:05}")).expect("imei")
}

pub fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, h, m, 0).single().expect("time")
}

/// Where the day starts: Nairobi CBD.
pub const HOME: (f64, f64) = (-1.2860, 36.8170);

/// One stretch of the day.
#[derive(Debug, Clone, Copy)]
pub enum Leg {
    /// Standing with the engine off, one fix every `every` seconds.
    Park { mins: i64, every: i64 },
    /// Driving east at `kmh` with the engine on, a fix every 15 s.
    Drive { mins: i64, kmh: f64 },
    /// Standing with the engine on.
    Idle { mins: i64 },
}

/// The fixes of `legs` from `start`, at `lat0/lon0`, moving east when driving.
pub fn day(start: DateTime<Utc>, legs: &[Leg]) -> Vec<TripPoint> {
    let (lat, mut lon) = HOME;
    let mut t = start;
    let mut out = Vec::new();
    let mut push = |t: DateTime<Utc>, lon: f64, kmh: f32, ign: bool| {
        out.push(TripPoint {
            time: t,
            location: LatLon::new(lat, lon).expect("valid"),
            speed_kmh: Some(kmh),
            ignition: Some(ign),
        })
    };
    for leg in legs {
        match *leg {
            Leg::Park { mins, every } => {
                let end = t + Duration::minutes(mins);
                while t < end {
                    push(t, lon, 0.0, false);
                    t += Duration::seconds(every);
                }
            }
            Leg::Idle { mins } => {
                let end = t + Duration::minutes(mins);
                while t < end {
                    push(t, lon, 0.0, true);
                    t += Duration::seconds(30);
                }
            }
            Leg::Drive { mins, kmh } => {
                let end = t + Duration::minutes(mins);
                while t < end {
                    push(t, lon, kmh as f32, true);
                    let metres = kmh / 3.6 * 15.0;
                    lon += metres / (111_319.49 * lat.to_radians().cos());
                    t += Duration::seconds(15);
                }
            }
        }
    }
    out
}

/// A working day: parked, a 15-minute drive, a 40-minute delivery, a 10-minute drive, parked.
pub fn working_day() -> Vec<TripPoint> {
    day(
        at(5, 0),
        &[
            Leg::Park { mins: 20, every: 60 },
            Leg::Drive { mins: 15, kmh: 40.0 },
            Leg::Park { mins: 40, every: 60 },
            Leg::Idle { mins: 3 },
            Leg::Drive { mins: 10, kmh: 50.0 },
            Leg::Park { mins: 30, every: 60 },
        ],
    )
}

pub fn records(device: u32, points: &[TripPoint]) -> Vec<Record> {
    points
        .iter()
        .map(|p| {
            Record::Position(PositionFix {
                imei: imei(device),
                gps_time: p.time,
                location: p.location,
                speed_kmh: p.speed_kmh,
                course_deg: Some(90.0),
                altitude_m: None,
                ignition: p.ignition,
                satellites: Some(9),
                fix_kind: FixKind::Gps,
                battery_pct: None,
                external_v: Some(12.4),
                odometer_m: None,
                source: PositionSource::Push,
                extra: None,
            })
        })
        .collect()
}

/// A writer on the test database, as `fleetd serve` runs one.
pub fn writer(db: &TestDb) -> (Writer, CancellationToken) {
    let stop = CancellationToken::new();
    let (w, _task) = Writer::spawn(db.pool.clone(), WriterConfig::default(), stop.clone());
    (w, stop)
}

pub async fn deliver(w: &Writer, device: u32, points: &[TripPoint]) {
    w.write("push.test", records(device, points)).await.expect("written");
}

/// A stored segment in comparable form: kind, start, end, distance (mm), end reason or stop kind.
pub type Row = (String, DateTime<Utc>, DateTime<Utc>, i64, String);

pub async fn stored(db: &TestDb, device: u32) -> Vec<Row> {
    let mut rows: Vec<Row> = sqlx::query_as(
        "select 'trip', start_time, end_time, round(distance_m * 1000)::int8, end_reason
         from fleet.trips t join fleet.devices d using (device_id) where d.imei = $1
         union all
         select 'stop', start_time, end_time, 0::int8, kind
         from fleet.stops s join fleet.devices d using (device_id) where d.imei = $1
         order by 2",
    )
    .bind(imei(device).as_str())
    .fetch_all(&db.pool)
    .await
    .expect("stored segments");
    rows.sort_by_key(|r| r.1);
    rows
}

/// What a full rebuild of `points` gives, in the same form.
pub fn expected(points: &[TripPoint], settings: &AnalyticsSettings) -> Vec<Row> {
    rebuild(points, settings, Utc::now())
        .into_iter()
        .map(|s| match s {
            Segment::Trip(t) => (
                "trip".to_owned(),
                t.start,
                t.end,
                (t.distance_m * 1000.0).round() as i64,
                t.end_reason.as_str().to_owned(),
            ),
            Segment::Stop(s) => ("stop".to_owned(), s.start, s.end, 0, s.kind.as_str().to_owned()),
        })
        .collect()
}

/// Two 150 m circles: "Depot" around the start of [`working_day`] (every vehicle leaves it) and
/// "Customer" around where its first drive ends (10 km east), so crossings are recorded too.
pub async fn depot_and_customer(db: &TestDb) {
    let first_end = working_day().into_iter().rfind(|p| p.time < at(5, 36)).expect("fix").location;
    sqlx::query(
        "insert into fleet.geofences (name, kind, center_lat, center_lon, radius_m)
         values ('Depot', 'circle', $1, $2, 150), ('Customer', 'circle', $3, $4, 150)",
    )
    .bind(HOME.0)
    .bind(HOME.1)
    .bind(first_end.lat())
    .bind(first_end.lon())
    .execute(&db.pool)
    .await
    .expect("geofences");
}
