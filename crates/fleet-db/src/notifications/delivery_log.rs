//! The admin's view of `fleet.notify_outbox` and `fleet.notify_attempts` (every message and
//! every attempt), and the rows "send test" and "retry" actions add. The dispatcher's own use of
//! these tables is in `outbox`.
