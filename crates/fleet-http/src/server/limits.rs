//! The HTTP server's transport limits and the open-files budget they have to fit in.

use std::time::Duration;

/// What one fleetd process lets its HTTP clients hold. Every limit exists because a client
/// that does not need a login could otherwise exhaust the resource it guards:
///
/// - `max_connections`: each connection is an open file. Without a ceiling, a thousand
///   clients sending half a request head fill the process's open-files limit, and then
///   nothing, not even a push from the vendor or the database pool, can open a file.
/// - `header_timeout`: how long a connection may take to send a complete request head, and
///   how long a keep-alive connection may sit idle between requests. Without it a half-sent
///   head holds its connection forever.
/// - `body_timeout`: the total time allowed to receive a request body, counted from the end
///   of its head. A total deadline, not one per frame, so a client dripping a byte a second
///   cannot hold its connection (and the body buffered so far) indefinitely.
/// - `body_memory`: bytes of request bodies being received that may be buffered at once beyond
///   the first [`FREE_BODY_BYTES`](super::body::FREE_BODY_BYTES) of each. Without it, clients
///   sending most of a large body and stalling hold up to `max_in_flight` times the largest
///   body allowed until the body deadline; with it, their bodies wait (unread, so TCP slows the
///   sender) while small requests, pushes included, go on.
/// - `send_timeout`: how long a response write may make no progress. A client that stops
///   reading would otherwise keep its request in flight (and its response buffered) for ever;
///   a slow client that keeps reading is not affected, nor a quiet live stream.
/// - `max_in_flight`: requests being handled at once, long-lived ones (the live stream,
///   exports) included until their response ends. Requests over it are answered 503 at once
///   rather than queued, so load cannot build up unseen.
/// - `priority_reserve`: the part of `max_in_flight` only `/push/*` and `/healthz` may use,
///   so a flood of API requests cannot starve ingest or make an orchestrator restart fleetd;
///   its last [`HEALTH_ONLY_PLACES`](super::HEALTH_ONLY_PLACES) (at most half of it) only
///   `/healthz` may use.
/// - `uploads_per_address`: requests from one client address that may be receiving their body
///   at once. A request holds its in-flight place while its body arrives, and neither a push
///   nor a login can be refused before its body is read, so without it one address sending
///   heads with no body took every place. The client address is found as auth finds it, with
///   `trusted_proxies`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub body_memory: usize,
    pub send_timeout: Duration,
    pub max_in_flight: usize,
    pub priority_reserve: usize,
    pub uploads_per_address: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`FLEETD_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for Limits {
    /// The defaults of the `FLEETD_HTTP_*` settings (fleet-config's table).
    fn default() -> Self {
        Self {
            max_connections: 8192,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            body_memory: 64 << 20,
            send_timeout: Duration::from_secs(60),
            max_in_flight: 1024,
            priority_reserve: 64,
            uploads_per_address: 32,
            trusted_proxies: Vec::new(),
        }
    }
}

/// Open files fleetd needs besides its HTTP connections and database connections: the
/// listener, logs, the embedded cluster's pipes, backup files, the TLS roots of webhooks.
pub const OTHER_FILES: u64 = 128;

impl Limits {
    /// The general share of `max_in_flight`: what requests other than pushes and health checks
    /// may use.
    pub fn general_in_flight(&self) -> usize {
        self.max_in_flight.saturating_sub(self.priority_reserve)
    }

    /// These limits with `max_connections` lowered, where needed, so that the connections,
    /// `db_connections` and [`OTHER_FILES`] fit in `open_files` descriptors.
    pub fn fit_open_files(mut self, open_files: u64, db_connections: u64) -> Self {
        let room = open_files.saturating_sub(db_connections + OTHER_FILES).max(1);
        let room = usize::try_from(room).unwrap_or(usize::MAX);
        self.max_connections = self.max_connections.min(room);
        self
    }

    /// For a serving process: raises the open-files limit as far as allowed, fits
    /// `max_connections` under it and logs what was chosen.
    pub fn for_process(self, db_connections: u32) -> Self {
        let open_files = match raise_open_files_limit() {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the open-files limit; assuming 1024");
                1024
            }
        };
        let fitted = self.clone().fit_open_files(open_files, u64::from(db_connections));
        if fitted.max_connections < self.max_connections {
            tracing::warn!(
                open_files,
                http.max_connections = fitted.max_connections,
                configured = self.max_connections,
                "the open-files limit is too low for FLEETD_HTTP_MAX_CONNECTIONS; lowered it \
                 (raise LimitNOFILE / ulimit -n)"
            );
        }
        tracing::info!(
            open_files,
            http.max_connections = fitted.max_connections,
            http.max_in_flight = fitted.max_in_flight,
            http.priority_reserve = fitted.priority_reserve,
            http.uploads_per_address = fitted.uploads_per_address,
            http.header_timeout_s = fitted.header_timeout.as_secs_f64(),
            http.body_timeout_s = fitted.body_timeout.as_secs_f64(),
            http.body_memory_bytes = fitted.body_memory,
            http.send_timeout_s = fitted.send_timeout.as_secs_f64(),
            "HTTP limits"
        );
        fitted
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard one; returns the soft limit now in force.
pub fn raise_open_files_limit() -> nix::Result<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= hard {
        return Ok(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => Ok(hard),
        Err(e) => {
            tracing::warn!(error = %e, soft, hard, "cannot raise the open-files limit");
            Ok(soft)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_lowered_to_leave_room_for_the_pool_and_other_files() {
        let fitted = Limits::default().fit_open_files(1024, 10);
        assert_eq!(fitted.max_connections, 1024 - 10 - OTHER_FILES as usize);
        let roomy = Limits::default().fit_open_files(65_536, 10);
        assert_eq!(roomy.max_connections, Limits::default().max_connections);
    }

    #[test]
    fn a_tiny_budget_still_leaves_one_connection() {
        assert_eq!(Limits::default().fit_open_files(50, 100).max_connections, 1);
    }
}
