//! The trip builder worker: turns stored fixes into trips, stops, geofence events and daily
//! KPIs, incrementally.
//!
//! The ingest writer marks each device with new data in `fleet.analytics_backlog`, in the
//! transaction that stores the data. A pass walks the backlog in chunks of devices; for each
//! device it continues the in-memory [`fleet_core::TripBuilder`] with the new fixes, or, when
//! fixes arrived older than what the builder has read (or the builder is not in memory),
//! re-derives from the start of the stop before them. The result replaces the stored segments
//! from that point, the touched local days are queued in `fleet.kpi_backlog`, and the mark is
//! cleared — one transaction per chunk. A slower KPI step ([`refresh_kpis`]) recomputes the
//! queued days with `fleet.refresh_kpi_daily`. Exactly one
//! process builds trips per database, holding the `trip-builder` lease.

mod kpi;
mod notify;
mod pass;
mod rebuild;
mod worker;

pub use kpi::{refresh_queued as refresh_kpis, KpiReport};
pub use pass::{BuilderCache, ChunkStats};
pub use worker::{
    backlog_size, mark_rebuild, PassReport, RebuildError, TripWorker, TripWorkerConfig,
};
