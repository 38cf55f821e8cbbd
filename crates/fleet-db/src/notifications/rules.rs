//! `fleet.notify_rules`: the rules admins keep.
