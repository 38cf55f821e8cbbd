//! fleetd's domain: the types every other crate speaks, validated once at the edge.
//!
//! Nothing here performs IO; storage, vendor clients and HTTP convert into and out of these types.

pub mod analytics;
pub mod device;
pub mod geo;
pub mod geofence;
pub mod notification;
pub mod position;
pub mod record;
pub mod settings_values;
pub mod text;
pub mod trips;

pub use analytics::{AnalyticsSettings, SettingsError};
pub use device::{Imei, ImeiError};
pub use geo::{CoordinateError, LatLon};
pub use geofence::{CrossingKind, Geofence, GeofenceEvent, GeofenceShape, Geofences};
pub use position::{FixKind, PositionSource};
pub use record::{
    AlarmClass, AlarmEvent, CellFix, DeviceEvent, DeviceProfile, Heartbeat, PositionFix,
    SensorKind, SensorReading, SessionEventKind, VendorTrip,
};
pub use settings_values::SettingsValues;
pub use trips::{EndReason, LateData, Segment, Span, Stop, StopKind, Trip, TripBuilder, TripPoint};
