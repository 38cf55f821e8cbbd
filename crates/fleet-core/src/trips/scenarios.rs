//! Hand-built days, each proving one rule of the trip builder.

use chrono::{DateTime, Duration, Utc};

use super::testdata::{at, Acc, Track, Worker};
use super::{
    rebuild, reports_ignition, restart_point, EndReason, LateData, Segment, Stop, StopKind, Trip,
    TripBuilder, TripPoint,
};
use crate::AnalyticsSettings;

fn settings() -> AnalyticsSettings {
    AnalyticsSettings::default()
}

/// Segments of `points` as of their last fix.
fn build(points: &[TripPoint]) -> Vec<Segment> {
    let last = points.iter().map(|p| p.time).max().expect("points");
    rebuild(points, &settings(), last)
}

fn trips(segments: &[Segment]) -> Vec<&Trip> {
    segments.iter().filter_map(Segment::as_trip).collect()
}

fn stops(segments: &[Segment]) -> Vec<&Stop> {
    segments.iter().filter_map(Segment::as_stop).collect()
}

fn kinds(segments: &[Segment]) -> String {
    segments.iter().map(|s| if s.as_trip().is_some() { 'T' } else { 'S' }).collect()
}

#[test]
fn a_red_light_does_not_split_a_trip() {
    let mut t = Track::new(Acc::Wired);
    t.park(600, 60).drive(300, 10, 40.0).idle(60, 10).drive(300, 10, 40.0).park(1200, 60);
    let segments = build(&t.points);
    assert_eq!(kinds(&segments), "STS");
    let trip = trips(&segments)[0];
    assert_eq!(trip.end_reason, EndReason::WorkStop);
    assert_eq!(trip.idle_s, 50, "the legs between the six stationary fixes at the light");
}

#[test]
fn a_quick_drop_off_with_the_engine_off_does_not_split_a_trip() {
    let mut t = Track::new(Acc::Wired);
    t.park(600, 60).drive(300, 10, 40.0).park(180, 30).drive(300, 10, 40.0).park(1200, 60);
    let segments = build(&t.points);
    assert_eq!(kinds(&segments), "STS");
    assert_eq!(trips(&segments)[0].idle_s, 0, "the engine was off, so that was no idling");
}

#[test]
fn a_long_delivery_stop_with_the_engine_off_splits_a_trip() {
    let mut t = Track::new(Acc::Wired);
    t.park(600, 60).drive(600, 10, 40.0).park(480, 30).drive(600, 10, 40.0).park(1200, 60);
    let segments = build(&t.points);
    assert_eq!(kinds(&segments), "STSTS");
    let trips = trips(&segments);
    assert!(trips.iter().all(|t| t.end_reason == EndReason::WorkStop));
    let delivery = stops(&segments)[1];
    // from the first stationary fix (1230) to the departure, the last one (1680)
    assert_eq!((delivery.start, delivery.end), (at(1230), at(1680)));
    assert_eq!(delivery.kind, StopKind::Parked);
}

#[test]
fn a_data_gap_ends_the_trip_with_long_gap() {
    let mut t = Track::new(Acc::Wired);
    t.park(600, 60).drive(600, 10, 50.0).silent(2700, 5000.0).drive(600, 10, 50.0).park(1200, 60);
    let segments = build(&t.points);
    assert_eq!(kinds(&segments), "STSTS");
    let (trips, stops) = (trips(&segments), stops(&segments));
    assert_eq!(trips[0].end_reason, EndReason::LongGap);
    assert_eq!(trips[0].end, at(1200), "the last fix before the gap");
    // the gap belongs to the stop, which ends where the fixes resume
    assert_eq!((stops[1].start, stops[1].end), (at(1200), at(3910)));
    assert_eq!(trips[1].start, at(3910));
    assert_eq!(trips[0].gap_s, 0);
}

#[test]
fn a_shorter_gap_inside_a_trip_is_counted_in_gap_s_not_split() {
    let mut t = Track::new(Acc::Wired);
    t.park(600, 60).drive(600, 10, 50.0).silent(600, 8000.0).drive(600, 10, 50.0).park(1200, 60);
    let segments = build(&t.points);
    assert_eq!(kinds(&segments), "STS");
    assert_eq!(trips(&segments)[0].gap_s, 610, "the one leg far longer than 10 s");
}

#[test]
fn jitter_while_parked_makes_no_trip() {
    for acc in [Acc::Wired, Acc::Absent] {
        for speed_missing in [0.0, 1.0] {
            for every in [10, 30] {
                for seed in 0..8 {
                    let mut t = Track::new(acc).noisy(50.0, speed_missing, seed);
                    t.park(12 * 3600, every);
                    let segments = build(&t.points);
                    assert_eq!(
                        kinds(&segments),
                        "S",
                        "{acc:?}, speed missing {speed_missing}, every {every} s, seed {seed}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_device_without_acc_gets_trips_from_motion_with_hysteresis() {
    let mut t = Track::new(Acc::Absent);
    // 300 m in a minute, then parked again: neither 500 m nor five minutes of motion
    t.park(1800, 60).drive(60, 10, 18.0).park(900, 60);
    let departure = t.now;
    t.drive(900, 10, 40.0).park(1200, 60);
    let segments = build(&t.points);
    assert_eq!(kinds(&segments), "STS");
    let trip = trips(&segments)[0];
    assert_eq!(trip.start, at(departure), "back-dated to the departure, not the confirmation");
    assert_eq!(trip.end_reason, EndReason::WorkStop);
    assert_eq!(trip.idle_s, 0, "without ignition there is no idling");
}

#[test]
fn slow_motion_without_acc_is_confirmed_by_time_once_it_leaves_the_spot() {
    let mut t = Track::new(Acc::Absent);
    // 7 km/h for six minutes: 700 m, confirmed by time before the distance
    t.park(1800, 60);
    let departure = t.now;
    t.drive(360, 10, 7.0).park(1200, 60);
    let segments = build(&t.points);
    assert_eq!(kinds(&segments), "STS");
    assert_eq!(trips(&segments)[0].start, at(departure));
}

#[test]
fn idle_inside_a_trip_is_measured_not_split() {
    let mut t = Track::new(Acc::Wired);
    t.park(600, 60).drive(300, 10, 40.0).idle(720, 30).drive(300, 10, 40.0).park(1200, 60);
    let segments = build(&t.points);
    assert_eq!(kinds(&segments), "STS");
    let trip = trips(&segments)[0];
    assert_eq!(trip.idle_s, 690, "from the first to the last stationary fix");
    assert_eq!(trip.moving_s + trip.idle_s, trip.duration_s);
}

#[test]
fn the_trip_starts_at_ignition_on_and_counts_warm_up_as_idle() {
    let mut t = Track::new(Acc::Wired);
    t.park(600, 60).idle(180, 30).drive(600, 10, 40.0).park(1200, 60);
    let segments = build(&t.points);
    assert_eq!(kinds(&segments), "STS");
    let trip = trips(&segments)[0];
    assert_eq!(trip.start, at(630), "the first fix with the ignition on");
    assert_eq!(trip.idle_s, 150);
}

#[test]
fn overspeed_is_counted_in_stretches_and_seconds() {
    let mut t = Track::new(Acc::Wired);
    t.park(600, 60);
    for kmh in [[60.0; 6], [95.0; 6], [60.0; 6]].concat().into_iter().chain([100.0; 3]) {
        t.fix(10, kmh / 3.6 * 10.0, kmh, true);
    }
    t.drive(120, 10, 60.0).park(1200, 60);
    let segments = build(&t.points);
    assert_eq!(kinds(&segments), "STS");
    let trip = trips(&segments)[0];
    assert_eq!(trip.overspeed_count, 2);
    assert_eq!(trip.overspeed_s, 60 + 30, "each fix above the limit holds until the next");
    assert_eq!(trip.max_speed_kmh, 100.0);
}

#[test]
fn the_stop_starts_at_the_halt_not_at_confirmation() {
    let mut t = Track::new(Acc::Wired);
    t.park(600, 60).drive(600, 10, 40.0);
    let arrival = t.location();
    t.park(1800, 60);
    let segments = build(&t.points);
    assert_eq!(kinds(&segments), "STS");
    let (trip, stop) = (trips(&segments)[0], stops(&segments)[1]);
    // the halt is the first stationary fix at 1260; the stop was confirmed at 1560
    assert_eq!(trip.end, at(1260));
    assert_eq!(stop.start, at(1260));
    assert_eq!(stop.location, arrival);
    assert_eq!(trip.end_location, arrival);
}

#[test]
fn short_trips_are_dropped_into_the_surrounding_stop() {
    let mut t = Track::new(Acc::Wired);
    // 330 m from departure to halt in 100 s: long enough, but shorter than two minutes
    t.park(1800, 60).drive(40, 10, 30.0).park(1800, 60);
    let segments = build(&t.points);
    assert_eq!(kinds(&segments), "S");
    assert_eq!((segments[0].start(), segments[0].end()), (at(60), at(3640)));
}

#[test]
fn a_stop_where_the_engine_ran_most_of_the_time_is_idling() {
    let mut t = Track::new(Acc::Wired);
    t.park(600, 60).drive(600, 10, 40.0).idle(900, 30).park(360, 30).drive(600, 10, 40.0);
    t.park(1200, 60);
    let segments = build(&t.points);
    assert_eq!(kinds(&segments), "STSTS");
    let waiting = stops(&segments)[1];
    assert_eq!(waiting.kind, StopKind::Idling);
    assert_eq!(waiting.idle_s, 900);
    assert_eq!(stops(&segments)[0].kind, StopKind::Parked);
}

#[test]
fn the_final_trip_is_open_until_the_data_ends_then_day_end() {
    let mut t = Track::new(Acc::Wired);
    t.park(600, 60).drive(600, 10, 40.0);
    let last = at(t.now);
    let s = settings();
    let open = rebuild(&t.points, &s, last + Duration::seconds(600));
    assert_eq!(trips(&open)[0].end_reason, EndReason::Open);
    assert_eq!(trips(&open)[0].end, last);
    let ended = rebuild(&t.points, &s, last + Duration::hours(2));
    assert_eq!(kinds(&ended), "ST");
    assert_eq!(trips(&ended)[0].end_reason, EndReason::DayEnd);

    // halted when the data ends: the trip ends at the halt and a stop follows
    t.park(120, 30);
    let ended = rebuild(&t.points, &s, at(t.now) + Duration::hours(2));
    assert_eq!(kinds(&ended), "STS");
    assert_eq!(trips(&ended)[0].end, at(1230));
}

#[test]
fn a_trip_across_local_midnight_is_not_split() {
    let mut t = Track::new(Acc::Wired);
    // base is 08:00 in Nairobi; driving from 23:40 to 00:20
    t.park(15 * 3600 + 2400, 300).drive(2400, 10, 50.0).park(1800, 60);
    let segments = build(&t.points);
    assert_eq!(kinds(&segments), "STS");
    let midnight_in_nairobi = at(16 * 3600);
    let trip = trips(&segments)[0];
    assert!(trip.start < midnight_in_nairobi && midnight_in_nairobi < trip.end);
}

#[test]
fn fixes_sharing_a_time_keep_the_first_given() {
    let mut a = Track::new(Acc::Wired);
    a.park(600, 60);
    let mut b = Track::new(Acc::Wired);
    b.silent(0, 3000.0).park(600, 60);
    let mut first_a = a.points.clone();
    first_a.extend(b.points.iter().copied());
    let mut first_b = b.points.clone();
    first_b.extend(a.points.iter().copied());
    assert_eq!(stops(&build(&first_a))[0].location, a.points[0].location);
    assert_eq!(stops(&build(&first_b))[0].location, b.points[0].location);
}

#[test]
fn a_batch_older_than_the_last_fix_is_refused_whole() {
    let mut t = Track::new(Acc::Wired);
    t.park(300, 60);
    let mut builder = TripBuilder::new(&settings());
    assert_eq!(builder.push(&t.points[2..]), Ok(Vec::new()));
    let late = [t.points[0], t.points[4]];
    assert_eq!(builder.push(&late), Err(LateData { earliest: at(60), last: at(300) }));
    assert_eq!(builder.last_time(), Some(at(300)));
}

/// Three trips; the middle of the third arrives late.
fn three_trips() -> (Vec<TripPoint>, DateTime<Utc>, DateTime<Utc>) {
    let mut t = Track::new(Acc::Wired);
    t.park(3600, 60).drive(1200, 10, 40.0).park(1800, 60).drive(1200, 10, 40.0).park(1800, 60);
    let late_from = at(t.now + 300);
    let late_to = at(t.now + 900);
    t.drive(1200, 10, 40.0).park(3600, 60);
    (t.points, late_from, late_to)
}

#[test]
fn a_late_batch_in_the_middle_of_a_closed_trip_rederives_it_like_a_full_rebuild() {
    let (points, late_from, late_to) = three_trips();
    let (late, on_time): (Vec<TripPoint>, Vec<TripPoint>) =
        points.iter().partition(|p| (late_from..late_to).contains(&p.time));
    let last = points.last().map(|p| p.time).expect("points");
    let mut worker = Worker::new(&settings());
    for chunk in on_time.chunks(100) {
        worker.deliver(chunk);
    }
    let before = worker.result(last);
    assert_eq!(trips(&before)[2].gap_s, 610, "the hole shows as a gap inside the third trip");

    worker.deliver(&late);
    let after = worker.result(last);
    assert_eq!(after, build(&points));
    assert_eq!(trips(&after)[2].gap_s, 0);
    assert!(trips(&after)[2].distance_m > trips(&before)[2].distance_m);
    // re-derived from the stop before the second trip: the first stop and trip were kept
    assert_eq!(worker.restarts, 1);
    assert_eq!(worker.last_restart, Some(trips(&after)[0].end));
}

#[test]
fn restart_point_is_the_latest_stop_whose_next_trip_ended_before_the_late_fix() {
    let (points, _, _) = three_trips();
    let segments = build(&points);
    assert_eq!(kinds(&segments), "STSTSTS");
    let second_trip = &segments[3];
    // inside the second trip: its stop's confirmation may lie after the late fix
    let inside = second_trip.start() + Duration::seconds(60);
    assert_eq!(restart_point(&segments, inside), segments[0].start());
    // after the second trip ended: the stop before it is safe
    let after = second_trip.end() + Duration::seconds(60);
    assert_eq!(restart_point(&segments, after), segments[2].start());
    // before any trip ended: from the beginning
    assert_eq!(restart_point(&segments, at(30)), DateTime::<Utc>::MIN_UTC);
}

#[test]
fn a_device_reports_ignition_when_any_fix_carries_it() {
    let mut wired = Track::new(Acc::Wired);
    wired.park(300, 60);
    let mut bare = Track::new(Acc::Absent);
    bare.park(300, 60);
    assert!(reports_ignition(&wired.points));
    assert!(!reports_ignition(&bare.points));
}

#[test]
fn segments_round_trip_through_json() {
    let mut t = Track::new(Acc::Wired);
    t.park(600, 60).drive(600, 10, 40.0).park(1200, 60);
    let segments = build(&t.points);
    let json = serde_json::to_string(&segments).expect("serialises");
    assert!(json.contains(r#""segment":"trip""#) && json.contains(r#""end_reason":"work_stop""#));
    let back: Vec<Segment> = serde_json::from_str(&json).expect("parses");
    assert_eq!(back, segments);
}
