//! The change notice: what the ingest writer tells the live stream after each flush, on
//! [`CHANGES_CHANNEL`]. One type serves both ends, so the payload the writer sends is the payload
//! the listener reads.
//!
//! A notice only names rows (devices whose `device_latest` moved, keys of new alarms); the
//! listener reads the rows themselves. On the wire it is compact JSON,
//! `{"p":[device ids],"a":[[device_id,"alarm_time","alarm_type"],…],"n":[[user_id,notification_id],…]}`
//! (`n` only when in-app notifications were written), split into payloads small
//! enough for NOTIFY's 8000-byte limit once signed ([`crate::notify`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;

use crate::notify::NotifyKey;
pub use crate::notify::CHANGES_CHANNEL;

/// The changes of one payload take at most this many bytes; with the JSON around them
/// ([`ENVELOPE`]) and the signature a payload stays below NOTIFY's 8000 bytes.
pub const MAX_PAYLOAD: usize = 7_000;
/// The bytes of a payload that are not changes.
pub const ENVELOPE: usize = r#"{"p":[],"a":[],"n":[]}"#.len();
const _: () = assert!(MAX_PAYLOAD + ENVELOPE + crate::notify::SIGNATURE_LEN < 8_000);

/// An alarm's key in `fleet.alarms`: device, alarm time, alarm type.
pub type AlarmKey = (i32, DateTime<Utc>, String);

/// What a flush changed.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeNotice {
    /// Devices whose `device_latest` row moved forward.
    #[serde(rename = "p", default)]
    pub latest: Vec<i32>,
    /// New alarms.
    #[serde(rename = "a", default)]
    pub alarms: Vec<AlarmKey>,
    /// New in-app notifications: (user id, notification id) in `fleet.notify_inbox`.
    #[serde(rename = "n", default, skip_serializing_if = "Vec::is_empty")]
    pub inbox: Vec<(i32, i64)>,
}

impl ChangeNotice {
    pub fn is_empty(&self) -> bool {
        self.latest.is_empty() && self.alarms.is_empty() && self.inbox.is_empty()
    }

    /// A payload as the listener received it (after its signature was checked).
    pub fn parse(payload: &str) -> Result<ChangeNotice, serde_json::Error> {
        serde_json::from_str(payload)
    }

    /// Adds another notice's changes (device ids are not deduplicated here).
    pub fn merge(&mut self, other: ChangeNotice) {
        self.latest.extend(other.latest);
        self.alarms.extend(other.alarms);
        self.inbox.extend(other.inbox);
    }

    /// The notice as JSON payloads of at most [`MAX_PAYLOAD`] bytes of changes each, every
    /// change in exactly one; none when nothing changed. An alarm whose key alone is too long (an absurd
    /// alarm type) is left out and logged: the alarm is stored, only not announced.
    pub fn payloads(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut part = ChangeNotice::default();
        // bytes of the items in `part`, each with its separating comma
        let mut size = 0usize;
        let mut emit = |part: &mut ChangeNotice| {
            if !part.is_empty() {
                out.push(to_json(part));
            }
            *part = ChangeNotice::default();
        };
        for id in &self.latest {
            let len = id.to_string().len() + 1;
            if size + len > MAX_PAYLOAD {
                emit(&mut part);
                size = 0;
            }
            size += len;
            part.latest.push(*id);
        }
        for alarm in &self.alarms {
            let len = to_json(alarm).len() + 1;
            if len > MAX_PAYLOAD + 1 {
                tracing::warn!(
                    device_id = alarm.0,
                    "alarm type too long to announce; not streamed"
                );
                continue;
            }
            if size + len > MAX_PAYLOAD {
                emit(&mut part);
                size = 0;
            }
            size += len;
            part.alarms.push(alarm.clone());
        }
        for item in &self.inbox {
            let len = to_json(item).len() + 1;
            if size + len > MAX_PAYLOAD {
                emit(&mut part);
                size = 0;
            }
            size += len;
            part.inbox.push(*item);
        }
        emit(&mut part);
        out
    }

    /// Signs the notice's payloads and notifies them on `conn`: inside the writer's
    /// transaction, so listeners hear only of committed changes.
    pub async fn notify(
        &self,
        conn: &mut PgConnection,
        key: &NotifyKey,
    ) -> Result<(), sqlx::Error> {
        let payloads: Vec<String> =
            self.payloads().iter().map(|p| key.sign(CHANGES_CHANNEL, p)).collect();
        if payloads.is_empty() {
            return Ok(());
        }
        // pg_notify returns void, which the query macros cannot describe: the count is what
        // they see, and counting makes every notification happen
        sqlx::query_scalar!(
            r#"with sent as (select pg_notify($1, p) from unnest($2::text[]) p)
               select count(*) as "sent!" from sent"#,
            CHANGES_CHANNEL,
            &payloads,
        )
        .fetch_one(&mut *conn)
        .await?;
        Ok(())
    }
}

fn to_json(value: &impl Serialize) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|_| unreachable!("integers, times and strings always serialise"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).expect("time")
    }

    #[test]
    fn a_notice_round_trips_in_the_compact_wire_form() {
        let notice = ChangeNotice {
            latest: vec![3, 17],
            alarms: vec![(3, at(1_700_000_000), "1".to_owned())],
            inbox: vec![],
        };
        let payloads = notice.payloads();
        // the bytes the listener has always read
        assert_eq!(payloads, [r#"{"p":[3,17],"a":[[3,"2023-11-14T22:13:20Z","1"]]}"#]);
        assert_eq!(ChangeNotice::parse(&payloads[0]).expect("parses"), notice);
        let with_inbox = ChangeNotice { inbox: vec![(2, 41)], ..notice.clone() };
        let payloads = with_inbox.payloads();
        assert_eq!(payloads, [r#"{"p":[3,17],"a":[[3,"2023-11-14T22:13:20Z","1"]],"n":[[2,41]]}"#]);
        assert_eq!(ChangeNotice::parse(&payloads[0]).expect("parses"), with_inbox);
        assert_eq!(ChangeNotice::parse("{}").expect("parses"), ChangeNotice::default());
        assert!(ChangeNotice::parse(r#"{"p":["x"]}"#).is_err());
    }

    #[test]
    fn signed_payloads_stay_under_the_notify_limit_and_keep_every_change() {
        let notice = ChangeNotice {
            latest: (1..=5_000).collect(),
            alarms: (1..=300).map(|i| (i, at(1_700_000_000), format!("type-{i}"))).collect(),
            inbox: (1..=800).map(|i| (i, i64::from(i) * 1_000_000)).collect(),
        };
        let payloads = notice.payloads();
        assert!(payloads.len() > 1);
        let key = NotifyKey::from_bytes([3; 32]);
        let mut back = ChangeNotice::default();
        for p in &payloads {
            assert!(p.len() <= MAX_PAYLOAD + ENVELOPE, "{}", p.len());
            let signed = key.sign(CHANGES_CHANNEL, p);
            assert!(signed.len() < 8_000, "{}", signed.len());
            let p = key.verify(CHANGES_CHANNEL, &signed).expect("verifies").payload;
            back.merge(ChangeNotice::parse(p).expect("parses"));
        }
        assert_eq!(back, notice);
        assert!(ChangeNotice::default().payloads().is_empty());
    }

    #[test]
    fn an_alarm_key_too_long_to_announce_is_left_out() {
        let notice = ChangeNotice {
            latest: vec![1],
            alarms: vec![(1, at(0), "x".repeat(MAX_PAYLOAD)), (2, at(0), "2".to_owned())],
            inbox: vec![],
        };
        let payloads = notice.payloads();
        assert_eq!(payloads.len(), 1);
        let back = ChangeNotice::parse(&payloads[0]).expect("parses");
        assert_eq!(back.alarms, [(2, at(0), "2".to_owned())]);
    }
}
