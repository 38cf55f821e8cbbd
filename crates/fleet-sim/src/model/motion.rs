//! Kinematics of one leg of a drive (intersection to intersection): accelerate from rest,
//! cruise, brake to a stop where the vehicle must stop; constant speed where it carries on.

use fleet_core::LatLon;

/// One leg of a drive.
#[derive(Debug, Clone, PartialEq)]
pub struct Leg {
    pub from: LatLon,
    pub to: LatLon,
    /// Leg start, unix seconds (fractional).
    pub start: f64,
    pub length_m: f64,
    /// Cruise speed, m/s.
    pub cruise: f64,
    /// Acceleration and braking, m/s².
    pub accel: f64,
    pub starts_from_rest: bool,
    pub ends_at_rest: bool,
    /// Seconds stationary (engine running) at the end of the leg, e.g. a red light.
    pub halt_s: f64,
    /// Heading from `from` to `to`, degrees.
    pub bearing: f64,
}

impl Leg {
    /// Peak speed actually reached (a short leg may not reach cruise), m/s.
    fn peak(&self) -> f64 {
        let ramps =
            f64::from(u8::from(self.starts_from_rest)) + f64::from(u8::from(self.ends_at_rest));
        if ramps == 0.0 {
            return self.cruise;
        }
        // distance to reach v with `ramps` ramps: ramps * v² / 2a
        let v_max = (2.0 * self.accel * self.length_m / ramps).sqrt();
        self.cruise.min(v_max)
    }

    fn ramp_s(&self) -> f64 {
        self.peak() / self.accel
    }

    /// Seconds spent moving along the leg (without the halt).
    pub fn travel_s(&self) -> f64 {
        let v = self.peak();
        let t_ramp = self.ramp_s();
        let n_ramps =
            f64::from(u8::from(self.starts_from_rest)) + f64::from(u8::from(self.ends_at_rest));
        let ramp_dist = n_ramps * v * t_ramp / 2.0;
        n_ramps * t_ramp + (self.length_m - ramp_dist).max(0.0) / v
    }

    /// When the leg including its halt is over.
    pub fn end(&self) -> f64 {
        self.start + self.travel_s() + self.halt_s
    }

    /// Distance covered (m) and speed (m/s) `tau` seconds into the leg.
    pub fn state_at(&self, tau: f64) -> (f64, f64) {
        let v = self.peak();
        let t_ramp = self.ramp_s();
        let travel = self.travel_s();
        if tau >= travel {
            return (self.length_m, 0.0_f64.max(if self.ends_at_rest { 0.0 } else { v }));
        }
        let tau = tau.max(0.0);
        let a = self.accel;
        let accel_phase = if self.starts_from_rest { t_ramp } else { 0.0 };
        let brake_start = if self.ends_at_rest { travel - t_ramp } else { travel };
        if tau < accel_phase {
            (0.5 * a * tau * tau, a * tau)
        } else if tau < brake_start {
            let before = if self.starts_from_rest { 0.5 * v * t_ramp } else { 0.0 };
            (before + v * (tau - accel_phase), v)
        } else {
            let left = travel - tau;
            (self.length_m - 0.5 * a * left * left, a * left)
        }
    }

    /// Position `tau` seconds into the leg (linear interpolation between the intersections).
    pub fn position_at(&self, tau: f64) -> LatLon {
        let (d, _) = self.state_at(tau);
        let f = if self.length_m > 0.0 { (d / self.length_m).clamp(0.0, 1.0) } else { 1.0 };
        let lat = self.from.lat() + (self.to.lat() - self.from.lat()) * f;
        let lon = self.from.lon() + (self.to.lon() - self.from.lon()) * f;
        LatLon::new(lat, lon).unwrap_or(self.to)
    }
}

/// Initial bearing from `a` to `b`, degrees clockwise from north in `[0, 360)`.
pub fn bearing(a: LatLon, b: LatLon) -> f64 {
    let (p1, p2) = (a.lat().to_radians(), b.lat().to_radians());
    let dl = (b.lon() - a.lon()).to_radians();
    let y = dl.sin() * p2.cos();
    let x = p1.cos() * p2.sin() - p1.sin() * p2.cos() * dl.cos();
    (y.atan2(x).to_degrees() + 360.0) % 360.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leg(rest_start: bool, rest_end: bool) -> Leg {
        let from = LatLon::new(-1.28, 36.80).expect("valid");
        let to = LatLon::new(-1.28, 36.8054).expect("valid");
        Leg {
            from,
            to,
            start: 0.0,
            length_m: from.distance_m(&to),
            cruise: 15.0,
            accel: 1.5,
            starts_from_rest: rest_start,
            ends_at_rest: rest_end,
            halt_s: 0.0,
            bearing: bearing(from, to),
        }
    }

    #[test]
    fn a_leg_from_rest_to_rest_covers_its_length_with_speed_zero_at_both_ends() {
        let l = leg(true, true);
        let t = l.travel_s();
        assert_eq!(l.state_at(0.0), (0.0, 0.0));
        let (d, v) = l.state_at(t);
        assert!((d - l.length_m).abs() < 1e-6 && v == 0.0);
        let (mid_d, mid_v) = l.state_at(t / 2.0);
        assert!((mid_v - 15.0).abs() < 1e-9 && mid_d > 0.0 && mid_d < l.length_m);
    }

    #[test]
    fn distance_never_decreases_along_a_leg() {
        for (a, b) in [(true, true), (true, false), (false, true), (false, false)] {
            let l = leg(a, b);
            let mut last = -1.0;
            for k in 0..=200 {
                let (d, v) = l.state_at(l.travel_s() * k as f64 / 200.0);
                assert!(d >= last - 1e-9 && v >= 0.0 && v <= l.cruise + 1e-9);
                last = d;
            }
        }
    }

    #[test]
    fn heading_east_is_ninety_degrees() {
        let l = leg(false, false);
        assert!((l.bearing - 90.0).abs() < 0.5, "{}", l.bearing);
    }
}
