//! Tracksolid Pro (Jimi IoT) OpenAPI client: signed calls with a cached, renewed access token,
//! lenient decoding of the vendor's JSON, strict conversion into fleetd's domain records, and
//! the payloads of the vendor's two push interfaces.
//!
//! Times on the wire are UTC `yyyy-MM-dd HH:mm:ss`; speeds are km/h; distances become metres.

pub mod client;
pub mod convert;
pub mod dto;
pub mod error;
pub mod push;
pub mod sign;
pub mod time;
pub mod wire;

pub use client::{
    ClientConfig, TracksolidClient, ALARM_MAX_ROWS_PER_WINDOW, ALARM_PAGE_SIZE, ALARM_WINDOW,
    MAX_IMEIS_PER_CALL, MILEAGE_PAGE_SIZE, TRACK_MAX_AGE, TRACK_WINDOW,
};
pub use convert::{
    alarm_class, cell_fix, data_push_alarm_event, device_event, gps_push_fix, heartbeat,
    open_push_alarm_event, open_push_record, push_item_record, pushed_trip, sensor_reading,
    PushRecord, RecordError,
};
pub use dto::{AlarmItem, DeviceItem, LocationItem, MileageTrip, TokenGrant, TrackPoint};
pub use error::VendorError;
pub use push::{
    parse_data_items, parse_data_list, parse_open_push, DataPushKind, ItemOutcome, OpenPush,
    PushError, PushItem,
};
pub use sign::{md5_lower, sign};
pub use time::{format_time, parse_time, TimeFormatError};
