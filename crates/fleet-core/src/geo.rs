//! Coordinates and distances on the WGS-84 sphere approximation trackers use.

use serde::{Deserialize, Serialize};

/// Earth radius used for haversine distances, in metres. The WGS-84 equatorial radius, as
/// established trackers use, so fleetd's distances are comparable with theirs.
pub const EARTH_RADIUS_M: f64 = 6_378_137.0;

/// A validated latitude/longitude pair in decimal degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatLon {
    lat: f64,
    lon: f64,
}

/// Why a coordinate pair is not a usable fix.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum CoordinateError {
    #[error("latitude {0} is outside -90..=90")]
    LatitudeOutOfRange(f64),
    #[error("longitude {0} is outside -180..=180")]
    LongitudeOutOfRange(f64),
    #[error("coordinate is not a finite number")]
    NotFinite,
    #[error("(0, 0) is the null fix trackers send without a position")]
    NullIsland,
}

impl LatLon {
    /// Validates a pair. (0, 0) is rejected: trackers send it when they have no fix, and no
    /// vehicle of a land fleet is ever there.
    pub fn new(lat: f64, lon: f64) -> Result<Self, CoordinateError> {
        if !lat.is_finite() || !lon.is_finite() {
            return Err(CoordinateError::NotFinite);
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(CoordinateError::LatitudeOutOfRange(lat));
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(CoordinateError::LongitudeOutOfRange(lon));
        }
        if lat == 0.0 && lon == 0.0 {
            return Err(CoordinateError::NullIsland);
        }
        Ok(Self { lat, lon })
    }

    pub fn lat(&self) -> f64 {
        self.lat
    }

    pub fn lon(&self) -> f64 {
        self.lon
    }

    /// Great-circle distance to `other` in metres (haversine, radius [`EARTH_RADIUS_M`]).
    pub fn distance_m(&self, other: &LatLon) -> f64 {
        let (phi1, phi2) = (self.lat.to_radians(), other.lat.to_radians());
        let dphi = (other.lat - self.lat).to_radians();
        let dlambda = (other.lon - self.lon).to_radians();
        let a =
            (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().atan2((1.0 - a).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn out_of_range_and_null_fixes_are_rejected() {
        assert_eq!(LatLon::new(91.0, 10.0), Err(CoordinateError::LatitudeOutOfRange(91.0)));
        assert_eq!(LatLon::new(1.0, -180.5), Err(CoordinateError::LongitudeOutOfRange(-180.5)));
        assert_eq!(LatLon::new(f64::NAN, 1.0), Err(CoordinateError::NotFinite));
        assert_eq!(LatLon::new(0.0, 0.0), Err(CoordinateError::NullIsland));
    }

    #[test]
    fn one_degree_of_longitude_at_the_equator_is_about_111_km() {
        let a = LatLon::new(0.0, 36.0).expect("valid");
        let b = LatLon::new(0.0, 37.0).expect("valid");
        let d = a.distance_m(&b);
        assert!((d - 111_319.5).abs() < 1.0, "got {d}");
    }

    #[test]
    fn nairobi_to_mombasa_is_about_440_km_as_the_crow_flies() {
        let nairobi = LatLon::new(-1.2864, 36.8172).expect("valid");
        let mombasa = LatLon::new(-4.0435, 39.6682).expect("valid");
        let km = nairobi.distance_m(&mombasa) / 1000.0;
        assert!((435.0..445.0).contains(&km), "got {km}");
    }

    proptest! {
        #[test]
        fn distance_is_symmetric_and_non_negative(
            a in (-89.0f64..89.0, -179.0f64..179.0),
            b in (-89.0f64..89.0, -179.0f64..179.0),
        ) {
            prop_assume!(a != (0.0, 0.0) && b != (0.0, 0.0));
            let p = LatLon::new(a.0, a.1).expect("valid");
            let q = LatLon::new(b.0, b.1).expect("valid");
            prop_assert!(p.distance_m(&q) >= 0.0);
            prop_assert!((p.distance_m(&q) - q.distance_m(&p)).abs() < 1e-6);
        }
    }
}
