//! Cities and their road-like networks: a jittered grid of intersections, arterial roads every
//! fourth row and column (faster, with traffic lights where two arterials cross), streets in
//! between. Routes follow the grid, so vehicles drive along plausible roads, not straight lines.

use fleet_core::LatLon;

use super::rng::{hash, mix, tag, unit};

/// A city vehicles are based in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct City {
    pub name: &'static str,
    pub lat: f64,
    pub lon: f64,
    /// Share of the fleet based here.
    pub weight: f64,
    /// Registration plate prefix (Kenyan "KC", Ugandan "UA").
    pub plate_prefix: &'static str,
}

/// The default cities: most of the fleet in Nairobi.
pub const CITIES: [City; 3] = [
    City { name: "Nairobi", lat: -1.2864, lon: 36.8172, weight: 0.6, plate_prefix: "KC" },
    City { name: "Mombasa", lat: -4.0435, lon: 39.6682, weight: 0.25, plate_prefix: "KC" },
    City { name: "Kampala", lat: 0.3476, lon: 32.5825, weight: 0.15, plate_prefix: "UA" },
];

/// Grid spacing between intersections, degrees (about 600 m).
const SPACING_DEG: f64 = 0.0055;
/// Largest grid index from the centre in each direction (about 8 km).
pub const GRID_RADIUS: i32 = 14;
/// Every n-th row and column is an arterial road.
const ARTERIAL_EVERY: i32 = 4;

/// An intersection of a city's grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Node {
    pub i: i32,
    pub j: i32,
}

impl Node {
    pub fn clamp(self) -> Node {
        Node {
            i: self.i.clamp(-GRID_RADIUS, GRID_RADIUS),
            j: self.j.clamp(-GRID_RADIUS, GRID_RADIUS),
        }
    }
}

impl City {
    /// Where intersection `n` is; jittered so the grid does not look ruled.
    pub fn position(&self, seed: u64, city_idx: usize, n: Node) -> LatLon {
        let h = hash(&[seed, tag::ROADS, city_idx as u64, n.i as u64, n.j as u64]);
        let jitter_lat = (unit(h) - 0.5) * SPACING_DEG * 0.4;
        let jitter_lon = (unit(mix(h)) - 0.5) * SPACING_DEG * 0.4;
        let lat = self.lat + n.j as f64 * SPACING_DEG + jitter_lat;
        let lon = self.lon + n.i as f64 * SPACING_DEG + jitter_lon;
        LatLon::new(lat, lon)
            .unwrap_or_else(|_| unreachable!("city grids are far from the poles and from (0, 0)"))
    }
}

/// Whether the road between two neighbouring intersections is an arterial.
pub fn is_arterial(a: Node, b: Node) -> bool {
    if a.j == b.j {
        a.j % ARTERIAL_EVERY == 0
    } else {
        a.i % ARTERIAL_EVERY == 0
    }
}

/// Whether an intersection has traffic lights (two arterials cross).
pub fn has_lights(n: Node) -> bool {
    n.i % ARTERIAL_EVERY == 0 && n.j % ARTERIAL_EVERY == 0
}

/// The intersections from `from` to `to` (both included): along the first axis, then the
/// second; which axis goes first alternates so trips do not all look alike.
pub fn route(from: Node, to: Node, columns_first: bool) -> Vec<Node> {
    let mut path = vec![from];
    let mut cur = from;
    let step = |a: i32, b: i32| (b - a).signum();
    let walk_i = |cur: &mut Node, path: &mut Vec<Node>| {
        while cur.i != to.i {
            cur.i += step(cur.i, to.i);
            path.push(*cur);
        }
    };
    let walk_j = |cur: &mut Node, path: &mut Vec<Node>| {
        while cur.j != to.j {
            cur.j += step(cur.j, to.j);
            path.push(*cur);
        }
    };
    if columns_first {
        walk_i(&mut cur, &mut path);
        walk_j(&mut cur, &mut path);
    } else {
        walk_j(&mut cur, &mut path);
        walk_i(&mut cur, &mut path);
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_moves_one_intersection_at_a_time_from_start_to_end() {
        let r = route(Node { i: 0, j: 0 }, Node { i: 3, j: -2 }, true);
        assert_eq!(r.first(), Some(&Node { i: 0, j: 0 }));
        assert_eq!(r.last(), Some(&Node { i: 3, j: -2 }));
        assert_eq!(r.len(), 6);
        for w in r.windows(2) {
            assert_eq!((w[0].i - w[1].i).abs() + (w[0].j - w[1].j).abs(), 1);
        }
    }

    #[test]
    fn intersections_are_a_few_hundred_metres_apart() {
        let c = CITIES[0];
        let a = c.position(7, 0, Node { i: 0, j: 0 });
        let b = c.position(7, 0, Node { i: 1, j: 0 });
        let d = a.distance_m(&b);
        assert!((300.0..900.0).contains(&d), "{d}");
    }
}
