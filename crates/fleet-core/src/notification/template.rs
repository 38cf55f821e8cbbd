//! How messages are worded: one place for every channel's form of an event.
