//! Clock-derived events (offline longer than a rule's limit, not moved by a time of day) and the
//! per-vehicle edges in `fleet.notify_device_state` (back online, external power lost).
