//! Geofences: named circles and polygons, which one a point is in, and when a vehicle enters or
//! leaves them.
//!
//! Polygons are tested by ray casting on longitude/latitude treated as planar coordinates, which
//! is exact enough for the depot- and site-sized areas fleets draw (edges of a few kilometres:
//! the error of a straight edge in degrees against the geodesic is centimetres). Circles use the
//! same haversine distance as trips.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::trips::TripPoint;
use crate::{geo::EARTH_RADIUS_M, LatLon};

/// A named area.
#[derive(Debug, Clone, PartialEq)]
pub struct Geofence {
    pub id: i32,
    pub name: String,
    pub shape: GeofenceShape,
}

#[derive(Debug, Clone, PartialEq)]
pub enum GeofenceShape {
    Circle {
        center: LatLon,
        radius_m: f64,
    },
    /// The ring's vertices in order; closing it (repeating the first) is optional.
    Polygon(Vec<LatLon>),
}

/// A polygon ring that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GeofenceError {
    #[error("a polygon needs at least three distinct vertices")]
    TooFewVertices,
    #[error("a circle's radius must be a positive number of metres")]
    BadRadius,
}

impl GeofenceShape {
    /// A circle, validated.
    pub fn circle(center: LatLon, radius_m: f64) -> Result<Self, GeofenceError> {
        if radius_m.is_finite() && radius_m > 0.0 {
            Ok(Self::Circle { center, radius_m })
        } else {
            Err(GeofenceError::BadRadius)
        }
    }

    /// A polygon, validated: a closing vertex equal to the first is dropped.
    pub fn polygon(mut ring: Vec<LatLon>) -> Result<Self, GeofenceError> {
        if ring.len() > 1 && ring.first() == ring.last() {
            ring.pop();
        }
        if ring.len() < 3 {
            return Err(GeofenceError::TooFewVertices);
        }
        Ok(Self::Polygon(ring))
    }

    pub fn contains(&self, p: &LatLon) -> bool {
        match self {
            Self::Circle { center, radius_m } => center.distance_m(p) <= *radius_m,
            Self::Polygon(ring) => ring_contains(ring, p),
        }
    }

    /// Approximate area, square metres: used to prefer the most specific of nested geofences.
    pub fn area_m2(&self) -> f64 {
        match self {
            Self::Circle { radius_m, .. } => std::f64::consts::PI * radius_m * radius_m,
            Self::Polygon(ring) => ring_area_m2(ring),
        }
    }
}

/// Even-odd ray casting along increasing longitude.
fn ring_contains(ring: &[LatLon], p: &LatLon) -> bool {
    let (x, y) = (p.lon(), p.lat());
    let mut inside = false;
    let mut j = ring.len() - 1;
    for i in 0..ring.len() {
        let (xi, yi) = (ring[i].lon(), ring[i].lat());
        let (xj, yj) = (ring[j].lon(), ring[j].lat());
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Shoelace area on an equirectangular projection around the ring's mean latitude.
fn ring_area_m2(ring: &[LatLon]) -> f64 {
    let mean_lat = ring.iter().map(LatLon::lat).sum::<f64>() / ring.len() as f64;
    let kx = EARTH_RADIUS_M * mean_lat.to_radians().cos() * std::f64::consts::PI / 180.0;
    let ky = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
    let twice: f64 = (0..ring.len())
        .map(|i| {
            let (a, b) = (&ring[i], &ring[(i + 1) % ring.len()]);
            a.lon() * kx * b.lat() * ky - b.lon() * kx * a.lat() * ky
        })
        .sum();
    twice.abs() / 2.0
}

/// A set of geofences, smallest first so the first match is the most specific.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Geofences {
    fences: Vec<Geofence>,
}

impl Geofences {
    pub fn new(mut fences: Vec<Geofence>) -> Self {
        fences
            .sort_by(|a, b| a.shape.area_m2().total_cmp(&b.shape.area_m2()).then(a.id.cmp(&b.id)));
        Self { fences }
    }

    pub fn is_empty(&self) -> bool {
        self.fences.is_empty()
    }

    /// The smallest geofence containing `p` (ties: the lowest id).
    pub fn name_at(&self, p: &LatLon) -> Option<&str> {
        self.fences.iter().find(|f| f.shape.contains(p)).map(|f| f.name.as_str())
    }

    /// The name of geofence `id`, if it is in the set.
    pub fn name_of(&self, id: i32) -> Option<&str> {
        self.fences.iter().find(|f| f.id == id).map(|f| f.name.as_str())
    }

    /// Ids of every geofence containing `p`.
    pub fn ids_at(&self, p: &LatLon) -> BTreeSet<i32> {
        self.fences.iter().filter(|f| f.shape.contains(p)).map(|f| f.id).collect()
    }

    /// Enter and exit events along `points` (in time order). `before` is the set the vehicle was
    /// in at the fix before the first point, `None` when the first point is the device's first
    /// fix: a vehicle first seen inside a geofence has not entered it. Events at one fix are
    /// ordered exits first, then by geofence id.
    pub fn crossings(
        &self,
        before: Option<BTreeSet<i32>>,
        points: &[TripPoint],
    ) -> Vec<GeofenceEvent> {
        let mut events = Vec::new();
        if self.fences.is_empty() {
            // no geofence to cross (the full rebuild walks millions of fixes through here)
            return events;
        }
        let mut current = before;
        for p in points {
            let now = self.ids_at(&p.location);
            if let Some(prev) = &current {
                let event = |geofence_id: i32, kind| GeofenceEvent {
                    geofence_id,
                    time: p.time,
                    kind,
                    location: p.location,
                };
                events.extend(prev.difference(&now).map(|&id| event(id, CrossingKind::Exit)));
                events.extend(now.difference(prev).map(|&id| event(id, CrossingKind::Enter)));
            }
            current = Some(now);
        }
        events
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrossingKind {
    Enter,
    Exit,
}

impl CrossingKind {
    /// The name stored in `fleet.geofence_events.event`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Enter => "enter",
            Self::Exit => "exit",
        }
    }
}

/// A vehicle crossing a geofence's boundary: the first fix on the new side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeofenceEvent {
    pub geofence_id: i32,
    pub time: DateTime<Utc>,
    pub kind: CrossingKind,
    pub location: LatLon,
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(lat: f64, lon: f64) -> LatLon {
        LatLon::new(lat, lon).unwrap()
    }

    fn depot() -> Geofence {
        // a 0.01° square (about 1.1 km) around Nairobi CBD
        let ring = vec![at(-1.29, 36.81), at(-1.29, 36.82), at(-1.28, 36.82), at(-1.28, 36.81)];
        Geofence { id: 1, name: "Depot".into(), shape: GeofenceShape::polygon(ring).unwrap() }
    }

    fn gate() -> Geofence {
        let shape = GeofenceShape::circle(at(-1.285, 36.815), 100.0).unwrap();
        Geofence { id: 2, name: "Gate".into(), shape }
    }

    fn point(minute: u32, loc: LatLon) -> TripPoint {
        let time = Utc.with_ymd_and_hms(2026, 3, 2, 8, minute, 0).unwrap();
        TripPoint { time, location: loc, speed_kmh: Some(20.0), ignition: Some(true) }
    }

    #[test]
    fn a_polygon_contains_points_inside_and_not_outside() {
        let d = depot();
        assert!(d.shape.contains(&at(-1.285, 36.815)));
        assert!(!d.shape.contains(&at(-1.295, 36.815)));
        assert!(!d.shape.contains(&at(-1.285, 36.825)));
    }

    #[test]
    fn a_circle_contains_points_within_its_radius() {
        let g = gate();
        assert!(g.shape.contains(&at(-1.285, 36.8155))); // ~56 m east
        assert!(!g.shape.contains(&at(-1.285, 36.817))); // ~223 m east
    }

    #[test]
    fn the_smallest_containing_geofence_names_a_point() {
        let fences = Geofences::new(vec![depot(), gate()]);
        assert_eq!(fences.name_at(&at(-1.285, 36.815)), Some("Gate"));
        assert_eq!(fences.name_at(&at(-1.281, 36.811)), Some("Depot"));
        assert_eq!(fences.name_at(&at(-1.0, 36.0)), None);
    }

    #[test]
    fn polygon_area_is_close_to_the_squares_size() {
        // 0.01° of latitude is 1,113 m; of longitude at 1.285° S, 1,113 m × cos(1.285°)
        let area = depot().shape.area_m2();
        let expected = 1113.19 * 1113.19 * 1.285_f64.to_radians().cos();
        assert!((area - expected).abs() / expected < 0.001, "{area} vs {expected}");
    }

    #[test]
    fn degenerate_shapes_are_refused() {
        assert_eq!(
            GeofenceShape::polygon(vec![at(1.0, 1.0), at(1.0, 2.0), at(1.0, 1.0)]),
            Err(GeofenceError::TooFewVertices)
        );
        assert_eq!(GeofenceShape::circle(at(1.0, 1.0), 0.0), Err(GeofenceError::BadRadius));
    }

    #[test]
    fn driving_through_a_geofence_enters_then_exits_it() {
        let fences = Geofences::new(vec![depot()]);
        let points = [
            point(0, at(-1.295, 36.815)),
            point(1, at(-1.285, 36.815)),
            point(2, at(-1.284, 36.815)),
            point(3, at(-1.275, 36.815)),
        ];
        let events = fences.crossings(None, &points);
        let kinds: Vec<_> =
            events.iter().map(|e| (e.kind, e.time.format("%M").to_string())).collect();
        assert_eq!(
            kinds,
            vec![(CrossingKind::Enter, "01".into()), (CrossingKind::Exit, "03".into())]
        );
    }

    #[test]
    fn a_vehicle_first_seen_inside_has_not_entered_but_one_known_outside_has() {
        let fences = Geofences::new(vec![depot()]);
        let inside = [point(0, at(-1.285, 36.815))];
        assert!(fences.crossings(None, &inside).is_empty());
        let events = fences.crossings(Some(BTreeSet::new()), &inside);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, CrossingKind::Enter);
    }
}
