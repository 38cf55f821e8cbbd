//! Notifications' tables: events and their routing to outbox and inbox (written in the
//! transaction that stores or derives what happened), rules, webhooks, people's contact points,
//! quiet hours and mutes, the dispatcher's outbox and attempts, the delivery log and the
//! clock-derived events' sweeps.

pub mod contacts;
pub mod delivery_log;
pub mod derive;
pub mod events;
pub mod inbox;
pub mod outbox;
pub mod route;
pub mod rules;
pub mod webhooks;
