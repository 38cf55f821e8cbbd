//! The notify sweep: events only a clock can notice (a tracker silent longer than a rule's
//! limit, a vehicle not moved by a time of day), derived, stored and routed in one transaction.
//! The dispatcher runs it under its lease, so one process sweeps per database.

use chrono::Utc;
use fleet_db::changes::ChangeNotice;
use fleet_db::notifications::route::Rules;
use fleet_db::notifications::{derive, events};
use fleet_db::notify::NotifyKey;
use sqlx::PgPool;

/// What a sweep told.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    /// Events derived and stored now (each routed once).
    pub events: usize,
    /// Outbox rows written.
    pub outbox: usize,
}

/// One sweep; in-app notifications it writes are announced on the change notice signed with
/// `key`. Without enabled offline or not-moved rules it reads only the rules.
pub async fn sweep(pool: &PgPool, key: &NotifyKey) -> Result<SweepReport, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let rules = Rules::load(&mut tx).await?;
    let thresholds = rules.offline_thresholds();
    let deadlines = rules.not_moved_deadlines();
    if thresholds.is_empty() && deadlines.is_empty() {
        return Ok(SweepReport::default());
    }
    let mut found = derive::offline_due(&mut tx, &thresholds).await?;
    found.extend(derive::not_moved_due(&mut tx, &deadlines).await?);
    let recorded = events::record(&mut tx, &rules, &found, Utc::now()).await?;
    if !recorded.routed.inbox.is_empty() {
        let notice =
            ChangeNotice { inbox: recorded.routed.inbox.clone(), ..ChangeNotice::default() };
        notice.notify(&mut tx, key).await?;
    }
    tx.commit().await?;
    Ok(SweepReport { events: recorded.event_ids.len(), outbox: recorded.routed.outbox })
}
