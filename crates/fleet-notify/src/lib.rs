//! fleetd notifications: the dispatcher that delivers queued messages and the channels it
//! delivers them by.

pub mod channels;
