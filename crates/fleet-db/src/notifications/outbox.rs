//! `fleet.notify_outbox` and `fleet.notify_attempts` as the dispatcher uses them: claiming due
//! messages, recording each attempt before and after the send, retries and dead letters.
