//! Signed notifications: fleetd's `fleet_changes` payloads carry an HMAC-SHA256 made with the
//! key in `fleet.notify_key`, which only fleetd's own role can read. PostgreSQL lets every role
//! `pg_notify` any channel, so a listener that trusted payloads would take events from anyone
//! who can log in (the analyst role among them); with the signature it ignores them.
//!
//! A genuine payload names only rows (device ids, alarm keys) that the listener then reads
//! itself, but replayed in a loop it would make every listener re-read and republish them: so
//! each signature covers the time it was made and a random nonce, and the listener drops a
//! payload that is too old or whose signature it has already seen.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use sqlx::PgPool;

/// Channel on which every committed change to positions or alarms is announced.
pub const CHANGES_CHANNEL: &str = "fleet_changes";

/// Channel the triggers of migration 0023 notify when a credential may have ended.
pub const AUTH_CHANNEL: &str = "fleet_auth";

/// Bytes a signature adds to a payload: `<64 hex digits>.<15-digit milliseconds>.<16 hex
/// digits of nonce>.`.
pub const SIGNATURE_LEN: usize = 64 + 1 + STAMP_DIGITS + 1 + NONCE_DIGITS + 1;

const STAMP_DIGITS: usize = 15;
const NONCE_DIGITS: usize = 16;

/// A payload whose signature verified: when it was signed, and the signature itself (what a
/// replay repeats, so what the listener remembers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<'a> {
    pub payload: &'a str,
    /// Milliseconds since the Unix epoch, by the signer's clock.
    pub signed_at_ms: i64,
    pub tag: [u8; 32],
}

/// The key notifications are signed with, shared by every fleetd process on the database.
#[derive(Clone)]
pub struct NotifyKey([u8; 32]);

impl std::fmt::Debug for NotifyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NotifyKey([redacted])")
    }
}

impl NotifyKey {
    /// The database's key, created (from the OS random source) by the first process that asks.
    pub async fn load(pool: &PgPool) -> Result<NotifyKey, sqlx::Error> {
        let mut fresh = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        sqlx::query("insert into fleet.notify_key (key) values ($1) on conflict do nothing")
            .bind(fresh.as_slice())
            .execute(pool)
            .await?;
        let key: Vec<u8> =
            sqlx::query_scalar("select key from fleet.notify_key").fetch_one(pool).await?;
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| sqlx::Error::Protocol("fleet.notify_key.key is not 32 bytes".into()))?;
        Ok(NotifyKey(key))
    }

    /// A key from its bytes (tests).
    pub fn from_bytes(key: [u8; 32]) -> NotifyKey {
        NotifyKey(key)
    }

    fn mac(&self, channel: &str, stamp: &str, payload: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        // the channel is signed too, so a payload cannot be moved to another channel
        mac.update(channel.as_bytes());
        mac.update(b"\0");
        mac.update(stamp.as_bytes());
        mac.update(b"\0");
        mac.update(payload.as_bytes());
        mac
    }

    /// `<hex signature>.<ms>.<nonce>.<payload>`, [`SIGNATURE_LEN`] bytes longer than `payload`,
    /// signed now.
    pub fn sign(&self, channel: &str, payload: &str) -> String {
        self.sign_at(channel, payload, chrono::Utc::now().timestamp_millis())
    }

    /// [`NotifyKey::sign`] as if at `at_ms` (tests of the freshness window).
    pub fn sign_at(&self, channel: &str, payload: &str, at_ms: i64) -> String {
        // the nonce keeps two identical payloads signed in the same millisecond distinct, so the
        // listener's memory of seen signatures never drops a genuine one
        let stamp = format!(
            "{:0width$}.{:016x}",
            at_ms.max(0),
            rand::rngs::OsRng.next_u64(),
            width = STAMP_DIGITS
        );
        let tag = self.mac(channel, &stamp, payload).finalize().into_bytes();
        let mut out = String::with_capacity(SIGNATURE_LEN + payload.len());
        for b in tag {
            out.push_str(&format!("{b:02x}"));
        }
        out.push('.');
        out.push_str(&stamp);
        out.push('.');
        out.push_str(payload);
        out
    }

    /// The payload of a notification signed with this key, `None` when it is not.
    pub fn verify<'a>(&self, channel: &str, signed: &'a str) -> Option<Verified<'a>> {
        let sig = signed.get(..64)?;
        let stamp = signed.get(65..SIGNATURE_LEN - 1)?;
        let payload = signed.get(SIGNATURE_LEN..)?;
        if signed.as_bytes()[64] != b'.'
            || signed.as_bytes()[SIGNATURE_LEN - 1] != b'.'
            || stamp.as_bytes()[STAMP_DIGITS] != b'.'
        {
            return None;
        }
        let signed_at_ms: i64 = stamp[..STAMP_DIGITS].parse().ok()?;
        let tag: Vec<u8> = (0..32)
            .map(|i| u8::from_str_radix(&sig[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .ok()?;
        // verify_slice compares in constant time
        self.mac(channel, stamp, payload).verify_slice(&tag).ok()?;
        Some(Verified { payload, signed_at_ms, tag: tag.try_into().ok()? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_payloads_signed_with_the_key_for_the_channel_verify() {
        let key = NotifyKey::from_bytes([7; 32]);
        let signed = key.sign_at(CHANGES_CHANNEL, r#"{"p":[1]}"#, 1_700_000_000_123);
        assert_eq!(signed.len(), SIGNATURE_LEN + r#"{"p":[1]}"#.len());
        let ok = key.verify(CHANGES_CHANNEL, &signed).expect("verifies");
        assert_eq!(ok.payload, r#"{"p":[1]}"#);
        assert_eq!(ok.signed_at_ms, 1_700_000_000_123);
        assert_eq!(key.verify(AUTH_CHANNEL, &signed), None, "other channel");
        let other = NotifyKey::from_bytes([8; 32]);
        assert_eq!(other.verify(CHANGES_CHANNEL, &signed), None, "other key");
        let tampered = signed.replace("[1]", "[2]");
        assert_eq!(key.verify(CHANGES_CHANNEL, &tampered), None);
        let restamped = signed.replace(".001700000000123.", ".001799999999999.");
        assert_ne!(restamped, signed);
        assert_eq!(key.verify(CHANGES_CHANNEL, &restamped), None, "the time is signed");
        assert_eq!(key.verify(CHANGES_CHANNEL, r#"{"p":[1]}"#), None, "unsigned");
        assert_eq!(key.verify(CHANGES_CHANNEL, "zz.{}"), None);
        assert_eq!(key.verify(CHANGES_CHANNEL, &format!("{}.x", "é".repeat(32))), None);
        assert_eq!(key.verify(CHANGES_CHANNEL, &"é".repeat(100)), None, "not on a char boundary");
    }

    #[test]
    fn the_same_payload_signed_twice_gets_two_signatures() {
        let key = NotifyKey::from_bytes([7; 32]);
        let a = key.sign_at(CHANGES_CHANNEL, "{}", 5);
        let b = key.sign_at(CHANGES_CHANNEL, "{}", 5);
        assert_ne!(a, b);
    }
}
