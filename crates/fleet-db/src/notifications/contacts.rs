//! `fleet.notify_contacts`, `fleet.notify_prefs` and `fleet.notify_mutes`: each user's own
//! contact points, quiet hours and muted rules.
