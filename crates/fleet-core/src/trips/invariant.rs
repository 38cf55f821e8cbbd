//! The incremental builder equals a full rebuild, whatever the chunking and arrival order.
//!
//! The worker model ([`Worker`]) receives a synthetic day's fixes split into batches delivered
//! in a shuffled order; its segments plus its builder's tail must equal [`rebuild`] of all fixes.

use chrono::Duration;
use proptest::prelude::*;

use super::testdata::{Acc, Rng, Track, Worker};
use super::{rebuild, Segment, TripPoint};
use crate::AnalyticsSettings;

/// One stretch of a synthetic day.
#[derive(Debug, Clone)]
enum Episode {
    Park {
        secs: i64,
        every: i64,
    },
    Drive {
        secs: i64,
        every: i64,
        kmh: f64,
    },
    Idle {
        secs: i64,
        every: i64,
    },
    /// A red light or a drop-off.
    Halt {
        secs: i64,
        every: i64,
        engine: bool,
    },
    Silent {
        secs: i64,
        moved_m: f64,
    },
}

fn episode() -> impl Strategy<Value = Episode> {
    prop_oneof![
        3 => (60i64..7200, 30i64..300).prop_map(|(secs, every)| Episode::Park { secs, every }),
        4 => (30i64..1800, 5i64..30, 8.0f64..120.0)
            .prop_map(|(secs, every, kmh)| Episode::Drive { secs, every, kmh }),
        1 => (30i64..1200, 10i64..60).prop_map(|(secs, every)| Episode::Idle { secs, every }),
        2 => (5i64..420, 5i64..30, any::<bool>())
            .prop_map(|(secs, every, engine)| Episode::Halt { secs, every, engine }),
        1 => (120i64..10_800, prop_oneof![Just(0.0), 0.0f64..20_000.0])
            .prop_map(|(secs, moved_m)| Episode::Silent { secs, moved_m }),
    ]
}

fn settings() -> impl Strategy<Value = AnalyticsSettings> {
    (
        prop_oneof![Just(120), Just(300), Just(600)],
        prop_oneof![Just(900), Just(1800), Just(3600)],
        prop_oneof![Just(0.0), Just(200.0)],
        prop_oneof![Just(0), Just(120)],
        prop_oneof![Just(200.0), Just(500.0)],
    )
        .prop_map(|(work_stop, long_gap, min_m, min_s, confirm_m)| AnalyticsSettings {
            work_stop_min_s: work_stop,
            long_gap_s: long_gap,
            min_trip_distance_m: min_m,
            min_trip_duration_s: min_s,
            motion_confirm_distance_m: confirm_m,
            ..Default::default()
        })
}

fn acc() -> impl Strategy<Value = Acc> {
    prop_oneof![Just(Acc::Wired), Just(Acc::Absent), Just(Acc::Patchy)]
}

fn track(
    episodes: &[Episode],
    acc: Acc,
    jitter_m: f64,
    speed_missing: f64,
    seed: u64,
) -> Vec<TripPoint> {
    let mut t = Track::new(acc).noisy(jitter_m, speed_missing, seed);
    for e in episodes {
        match *e {
            Episode::Park { secs, every } => t.park(secs, every),
            Episode::Drive { secs, every, kmh } => t.drive(secs, every, kmh),
            Episode::Idle { secs, every } => t.idle(secs, every),
            Episode::Halt { secs, every, engine } => t.stand(secs, every, engine),
            Episode::Silent { secs, moved_m } => t.silent(secs, moved_m),
        };
    }
    t.points
}

/// Fixes with no story: random intervals (sometimes beyond any gap threshold), random hops,
/// speeds and ignition states, each missing at random.
fn chaos(steps: &[(i64, f64, Option<f32>, Option<bool>)]) -> Vec<TripPoint> {
    let mut t = Track::new(Acc::Absent);
    for &(dt, hop_m, speed, ignition) in steps {
        t.raw(dt, hop_m, speed, ignition);
    }
    t.points
}

fn chaos_step() -> impl Strategy<Value = (i64, f64, Option<f32>, Option<bool>)> {
    (
        prop_oneof![8 => 1i64..60, 3 => 60i64..700, 1 => 700i64..8000],
        prop_oneof![Just(0.0), 0.0f64..30.0, 0.0f64..1500.0],
        prop_oneof![
            Just(None),
            Just(Some(0.0)),
            (0.0f32..10.0).prop_map(Some),
            (0.0f32..130.0).prop_map(Some)
        ],
        prop_oneof![Just(None), Just(Some(true)), Just(Some(false))],
    )
}

/// Splits `points` into `n` batches, either random subsets or runs of consecutive fixes, and
/// shuffles the delivery order.
fn batches(points: &[TripPoint], n: usize, runs: bool, rng: &mut Rng) -> Vec<Vec<TripPoint>> {
    let n = n.max(1);
    let mut out = vec![Vec::new(); n];
    if runs {
        let mut cuts: Vec<usize> = (1..n).map(|_| rng.below(points.len() + 1)).collect();
        cuts.sort_unstable();
        let mut from = 0;
        for (k, cut) in cuts.into_iter().chain([points.len()]).enumerate() {
            out[k] = points[from..cut.max(from)].to_vec();
            from = cut.max(from);
        }
    } else {
        for p in points {
            out[rng.below(n)].push(*p);
        }
    }
    for k in (1..n).rev() {
        out.swap(k, rng.below(k + 1));
    }
    out
}

/// Segments alternate, touch end to start, and cover the fixes from first to last.
fn check_shape(segments: &[Segment], points: &[TripPoint]) -> Result<(), TestCaseError> {
    for pair in segments.windows(2) {
        prop_assert_eq!(pair[0].end(), pair[1].start(), "segments must touch");
        prop_assert_ne!(pair[0].as_trip().is_some(), pair[1].as_trip().is_some(), "must alternate");
    }
    for s in segments {
        prop_assert!(s.end() >= s.start());
        if let Segment::Trip(t) = s {
            prop_assert!(t.distance_m >= 0.0 && t.moving_s >= 0 && t.idle_s >= 0);
            prop_assert!(t.moving_s + t.idle_s <= t.duration_s + 2);
            prop_assert!(t.overspeed_s <= t.duration_s + 1 && t.gap_s <= t.duration_s + 1);
        }
    }
    let first = points.iter().map(|p| p.time).min();
    let last = points.iter().map(|p| p.time).max();
    if let (Some(first), Some(last), Some(a), Some(z)) =
        (first, last, segments.first(), segments.last())
    {
        prop_assert_eq!(a.start(), first);
        prop_assert_eq!(z.end(), last);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn incremental_building_in_any_chunking_and_order_equals_a_full_rebuild(
        episodes in prop::collection::vec(episode(), 1..24),
        acc in acc(),
        jitter_m in prop_oneof![Just(0.0), 5.0f64..50.0],
        speed_missing in prop_oneof![Just(0.0), Just(0.3), Just(1.0)],
        settings in settings(),
        seed in any::<u64>(),
        n_batches in 1usize..9,
        runs in any::<bool>(),
        ends_long_after in any::<bool>(),
    ) {
        let points = track(&episodes, acc, jitter_m, speed_missing, seed);
        let Some(last) = points.last().map(|p| p.time) else { return Ok(()) };
        let data_end =
            if ends_long_after { last + Duration::seconds(i64::from(settings.long_gap_s) + 1) } else { last };

        let expected = rebuild(&points, &settings, data_end);
        check_shape(&expected, &points)?;

        let mut rng = Rng::new(seed ^ 0x5EED);
        let mut worker = Worker::new(&settings);
        for batch in batches(&points, n_batches, runs, &mut rng) {
            worker.deliver(&batch);
        }
        prop_assert_eq!(worker.result(data_end), expected);
    }

    #[test]
    fn the_equality_holds_for_fixes_with_no_story_too(
        steps in prop::collection::vec(chaos_step(), 0..300),
        settings in settings(),
        seed in any::<u64>(),
        n_batches in 1usize..9,
        runs in any::<bool>(),
        ends_long_after in any::<bool>(),
    ) {
        let points = chaos(&steps);
        let Some(last) = points.last().map(|p| p.time) else { return Ok(()) };
        let data_end =
            if ends_long_after { last + Duration::seconds(i64::from(settings.long_gap_s) + 1) } else { last };
        let expected = rebuild(&points, &settings, data_end);
        check_shape(&expected, &points)?;
        let mut rng = Rng::new(seed);
        let mut worker = Worker::new(&settings);
        for batch in batches(&points, n_batches, runs, &mut rng) {
            worker.deliver(&batch);
        }
        prop_assert_eq!(worker.result(data_end), expected);
    }

    #[test]
    fn pushing_in_time_order_in_any_chunking_never_needs_a_restart(
        episodes in prop::collection::vec(episode(), 1..16),
        acc in acc(),
        settings in settings(),
        seed in any::<u64>(),
        n_batches in 1usize..12,
    ) {
        let points = track(&episodes, acc, 30.0, 0.1, seed);
        let Some(last) = points.last().map(|p| p.time) else { return Ok(()) };
        let mut rng = Rng::new(seed);
        let mut cuts: Vec<usize> = (1..n_batches).map(|_| rng.below(points.len() + 1)).collect();
        cuts.sort_unstable();
        let mut worker = Worker::new(&settings);
        let mut from = 0;
        for cut in cuts.into_iter().chain([points.len()]) {
            worker.deliver(&points[from..cut.max(from)]);
            from = cut.max(from);
        }
        prop_assert_eq!(worker.restarts, 0);
        prop_assert_eq!(worker.result(last), rebuild(&points, &settings, last));
    }
}

/// The trip worker's algorithm: after each batch it stores its emitted segments plus the tail
/// as of that batch's newest fix, and its builder may be lost between batches (a restart, a
/// lease change, eviction). A cold start re-derives from `restart_point` over the *stored*
/// segments, tail included; a warm one pushes onto its builder.
fn storing_worker(
    points_in_batches: &[Vec<TripPoint>],
    settings: &AnalyticsSettings,
    cold: &[bool],
) -> Vec<Segment> {
    use std::collections::BTreeMap;

    use super::{restart_point, TripBuilder};

    let mut fixes: BTreeMap<_, TripPoint> = BTreeMap::new();
    let mut stored: Vec<Segment> = Vec::new();
    let mut settled = 0usize; // stored[..settled] were emitted, the rest is the tail
    let mut builder: Option<TripBuilder> = None;
    for (k, batch) in points_in_batches.iter().enumerate() {
        let fresh: Vec<TripPoint> =
            batch.iter().filter(|p| !fixes.contains_key(&p.time)).copied().collect();
        for p in &fresh {
            fixes.entry(p.time).or_insert(*p);
        }
        let Some(earliest) = fresh.iter().map(|p| p.time).min() else { continue };
        if cold.get(k).copied().unwrap_or(false) {
            builder = None;
        }
        let warm = builder.as_mut().filter(|b| b.last_time().is_none_or(|t| t < earliest));
        let emitted = match warm {
            Some(b) => {
                stored.truncate(settled);
                b.push(&fresh).expect("newer than the builder's last fix")
            }
            None => {
                let from = restart_point(&stored, earliest);
                stored.retain(|s| s.start() < from);
                let mut b = TripBuilder::new(settings);
                let replay: Vec<TripPoint> = fixes.range(from..).map(|(_, p)| *p).collect();
                let emitted = b.push(&replay).expect("a new builder takes any fixes");
                builder = Some(b);
                emitted
            }
        };
        stored.extend(emitted);
        settled = stored.len();
        let newest = *fixes.keys().next_back().expect("fixes were stored");
        stored.extend(builder.as_ref().expect("set above").tail(newest));
    }
    stored
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_worker_storing_tails_and_losing_its_builder_equals_a_full_rebuild(
        episodes in prop::collection::vec(episode(), 1..20),
        acc in acc(),
        jitter_m in prop_oneof![Just(0.0), 5.0f64..50.0],
        settings in settings(),
        seed in any::<u64>(),
        n_batches in 1usize..9,
        runs in any::<bool>(),
        cold in prop::collection::vec(any::<bool>(), 9),
    ) {
        let points = track(&episodes, acc, jitter_m, 0.2, seed);
        let Some(last) = points.last().map(|p| p.time) else { return Ok(()) };
        let mut rng = Rng::new(seed ^ 0xC01D);
        let delivered = batches(&points, n_batches, runs, &mut rng);
        // the worker's final tail is as of the newest fix, so compare with that data end
        prop_assert_eq!(storing_worker(&delivered, &settings, &cold), rebuild(&points, &settings, last));
    }
}
