//! The per-address cap on requests still receiving their body, so one client cannot take
//! every in-flight place with bodies it never sends.
//!
//! Why: a request holds its in-flight place from the end of its head until its body has
//! arrived or the body deadline passes, and neither a push (its token is in the body) nor a
//! login can be refused before the body is read. Without a cap, a thousand connections from
//! one address sending `POST /push/pushgps` with `Content-Length: 100` and no body held every
//! place, the reserve included, for the whole body deadline.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;

use crate::auth::client::counted_network;

/// Requests still receiving their body, by client address.
#[derive(Debug)]
pub(crate) struct Uploads {
    per_address: usize,
    open: Mutex<HashMap<IpNet, usize>>,
}

impl Uploads {
    pub(crate) fn new(per_address: usize) -> Arc<Self> {
        Arc::new(Self { per_address: per_address.max(1), open: Mutex::default() })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpNet, usize>> {
        // the counts stay consistent whatever panicked while holding them
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one more body from `client`, or `None` when it has its share receiving.
    pub(crate) fn try_start(self: &Arc<Self>, client: IpAddr) -> Option<Upload> {
        // counted as the login limits count clients
        let client = counted_network(client);
        let mut open = self.lock();
        let n = open.entry(client).or_insert(0);
        if *n >= self.per_address {
            return None;
        }
        *n += 1;
        Some(Upload { uploads: self.clone(), client })
    }
}

/// One body being received; gives its place back when dropped (the body has arrived, or the
/// request ended).
#[derive(Debug)]
pub(crate) struct Upload {
    uploads: Arc<Uploads>,
    client: IpNet,
}

impl Drop for Upload {
    fn drop(&mut self) {
        let mut open = self.uploads.lock();
        if let Some(n) = open.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                // the table holds only addresses with a body on the way
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_share_given_back_when_bodies_end() {
        let uploads = Uploads::new(2);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let first = uploads.try_start(a).expect("first");
        let _second = uploads.try_start(a).expect("second");
        assert!(uploads.try_start(a).is_none(), "a third from the same address");
        assert!(uploads.try_start(b).is_some(), "another address is not affected");
        drop(first);
        assert!(uploads.try_start(a).is_some(), "a finished body frees its place");
        assert!(uploads.lock().len() <= 2);
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let uploads = Uploads::new(1);
        let _held = uploads.try_start("2001:db8:1:2::1".parse().expect("ip")).expect("first");
        assert!(uploads.try_start("2001:db8:1:2:ffff::9".parse().expect("ip")).is_none());
        assert!(uploads.try_start("2001:db8:1:3::1".parse().expect("ip")).is_some());
    }
}
