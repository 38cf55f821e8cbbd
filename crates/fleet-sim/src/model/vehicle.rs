//! The simulated vehicles: who they are (what the vendor's device list shows) and how they
//! behave (report interval, ignition wiring, punctuality, driving style).

use fleet_core::Imei;
use rand::Rng;

use super::city::{Node, CITIES, GRID_RADIUS};
use super::rng::{rng, tag, Draw};

/// Kind of vehicle; sets speeds, acceleration and the tracker model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VehicleKind {
    Motorcycle,
    Van,
    FourByFour,
}

impl VehicleKind {
    /// The vendor's vehicle icon key for this kind.
    pub fn icon(&self) -> &'static str {
        match self {
            VehicleKind::Motorcycle => "mtc",
            VehicleKind::Van => "automobile",
            VehicleKind::FourByFour => "truck",
        }
    }
}

/// Cost centres vehicles are charged to.
pub const COST_CENTRES: [&str; 5] =
    ["Field Service", "Installations", "Deliveries", "Sales", "Management"];

const FIRST_NAMES: [&str; 12] = [
    "John", "Mary", "Peter", "Grace", "David", "Faith", "James", "Mercy", "Brian", "Esther",
    "Kevin", "Joyce",
];
const LAST_NAMES: [&str; 12] = [
    "Otieno", "Wanjiru", "Mwangi", "Achieng", "Kamau", "Njeri", "Okello", "Nakato", "Mutua",
    "Wambui", "Ssempala", "Chebet",
];

/// One simulated vehicle and its tracker.
#[derive(Debug, Clone, PartialEq)]
pub struct Vehicle {
    pub index: usize,
    pub imei: Imei,
    pub name: String,
    pub plate: String,
    pub driver: String,
    pub driver_phone: String,
    pub kind: VehicleKind,
    /// Tracker model name as the vendor lists it.
    pub model: &'static str,
    pub sim: String,
    pub city: usize,
    pub cost_centre: &'static str,
    pub home: Node,
    /// Whether the tracker's ACC (ignition) input is wired.
    pub has_acc: bool,
    /// Some trackers never get a GPS fix (antenna fault, indoor install): they appear in the
    /// device list and nowhere else.
    pub reports_gps: bool,
    /// Seconds between fixes while driving.
    pub interval_s: i64,
    /// Minutes late (negative: early) the driver typically starts.
    pub habitual_lateness_min: f64,
    /// Drives hard: harsh braking and acceleration alarms, overspeeding.
    pub aggressive: bool,
    /// Sometimes drives outside shift hours.
    pub after_hours: bool,
    /// Has a depot geofence at home (enter/exit alarms).
    pub depot_fence: bool,
}

impl Vehicle {
    /// The `index`-th vehicle of the fleet with seed `seed`.
    pub fn generate(seed: u64, index: usize) -> Vehicle {
        let mut r = rng(&[seed, tag::VEHICLE, index as u64]);
        let kind = match r.gen_range(0..10) {
            0..=3 => VehicleKind::Motorcycle,
            4..=8 => VehicleKind::Van,
            _ => VehicleKind::FourByFour,
        };
        let model = match kind {
            VehicleKind::Motorcycle => *r.pick(&["AT4", "GT06E"]),
            VehicleKind::Van => *r.pick(&["JC400P", "X3", "GT06E"]),
            VehicleKind::FourByFour => *r.pick(&["X3", "JC400P"]),
        };
        let roll = r.gen::<f64>();
        let mut acc = 0.0;
        let city = CITIES
            .iter()
            .position(|c| {
                acc += c.weight;
                roll < acc
            })
            .unwrap_or(0);
        let serial: u64 = r.gen_range(0..1_000_000);
        let imei = Imei::parse(&format!("86{:06}{:07}", serial, index))
            .unwrap_or_else(|_| unreachable!("15 digits"));
        let letter = (b'A' + r.gen_range(0..26u8)) as char;
        let suffix = (b'A' + r.gen_range(0..26u8)) as char;
        let plate = format!(
            "{}{} {:03}{}",
            CITIES[city].plate_prefix,
            letter,
            r.gen_range(100..999),
            suffix
        );
        let driver = format!("{} {}", r.pick(&FIRST_NAMES), r.pick(&LAST_NAMES));
        let home_r = GRID_RADIUS / 2;
        Vehicle {
            index,
            name: format!("{} {}", kind_label(kind), plate),
            plate,
            driver,
            driver_phone: format!("+2547{:08}", r.gen_range(0..100_000_000u32)),
            kind,
            model,
            sim: format!("8925402{:012}", r.gen_range(0..1_000_000_000_000u64)),
            city,
            cost_centre: COST_CENTRES[r.gen_range(0..COST_CENTRES.len())],
            home: Node { i: r.gen_range(-home_r..=home_r), j: r.gen_range(-home_r..=home_r) },
            has_acc: r.chance(0.88),
            reports_gps: r.chance(0.97),
            interval_s: *r.pick(&[10, 15, 15, 30]),
            habitual_lateness_min: if r.chance(0.2) {
                r.between(10.0, 50.0)
            } else {
                r.between(-20.0, 8.0)
            },
            aggressive: r.chance(0.15),
            after_hours: r.chance(0.2),
            depot_fence: r.chance(0.5),
            imei,
        }
    }

    /// Cruise speed on a road, m/s.
    pub fn cruise_speed(&self, arterial: bool, draw: f64) -> f64 {
        let (lo, hi) = match (arterial, self.kind) {
            (true, VehicleKind::Motorcycle) => (45.0, 75.0),
            (true, _) => (45.0, 70.0),
            (false, VehicleKind::Motorcycle) => (25.0, 45.0),
            (false, _) => (20.0, 40.0),
        };
        let boost = if self.aggressive && arterial { 22.0 } else { 0.0 };
        (lo + (hi - lo) * draw + boost) / 3.6
    }

    /// Acceleration and braking, m/s².
    pub fn accel(&self) -> f64 {
        match self.kind {
            VehicleKind::Motorcycle => 2.0,
            VehicleKind::Van => 1.3,
            VehicleKind::FourByFour => 1.5,
        }
    }
}

fn kind_label(kind: VehicleKind) -> &'static str {
    match kind {
        VehicleKind::Motorcycle => "Moto",
        VehicleKind::Van => "Van",
        VehicleKind::FourByFour => "4WD",
    }
}
