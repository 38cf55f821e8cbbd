//! `fleet.notify_events`: storing events (each once, by its stable key) and routing the new ones.
