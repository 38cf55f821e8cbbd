//! The enabled rules as routing and the derivers read them: loaded once per flush, pass or sweep.

use fleet_core::notification::rule::{same_kmh, Address, Recipients, DEFAULT_OFFLINE_MIN};
use fleet_core::notification::{Channel, EventKind, Params, Rule, Schedule, Scope, Severity};
use sqlx::PgConnection;

/// An enabled rule with its id.
#[derive(Debug, Clone)]
pub struct StoredRule {
    pub rule_id: i32,
    pub rule: Rule,
}

/// The enabled rules, loaded once per flush, pass or sweep.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<StoredRule>,
}

impl Rules {
    /// Every enabled rule. A stored rule that no longer parses (a kind or channel this build
    /// does not know) is skipped and logged: one bad rule must not stop ingest.
    pub async fn load(conn: &mut PgConnection) -> Result<Rules, sqlx::Error> {
        let rows = sqlx::query!(
            r#"select rule_id, name, kinds, scope, schedule, throttle_s, params, user_ids,
                      addresses, webhook_ids, channels, severity
               from fleet.notify_rules where enabled order by rule_id"#
        )
        .fetch_all(&mut *conn)
        .await?;
        let mut rules = Vec::with_capacity(rows.len());
        for r in rows {
            let parsed = (|| -> Result<Rule, String> {
                let kinds = r
                    .kinds
                    .iter()
                    .map(|k| EventKind::from_name(k).ok_or(format!("unknown kind {k}")))
                    .collect::<Result<Vec<_>, _>>()?;
                let channels = r
                    .channels
                    .iter()
                    .map(|c| Channel::from_name(c).ok_or(format!("unknown channel {c}")))
                    .collect::<Result<Vec<_>, _>>()?;
                let scope: Scope = serde_json::from_value(r.scope).map_err(|e| e.to_string())?;
                let schedule: Option<Schedule> = r
                    .schedule
                    .map(serde_json::from_value)
                    .transpose()
                    .map_err(|e| e.to_string())?;
                let params: Params = serde_json::from_value(r.params).map_err(|e| e.to_string())?;
                let addresses: Vec<Address> =
                    serde_json::from_value(r.addresses).map_err(|e| e.to_string())?;
                let severity = Severity::from_name(&r.severity)
                    .ok_or(format!("unknown severity {}", r.severity))?;
                Ok(Rule {
                    name: r.name,
                    enabled: true,
                    kinds,
                    scope,
                    schedule,
                    throttle_s: i64::from(r.throttle_s),
                    params,
                    recipients: Recipients {
                        user_ids: r.user_ids,
                        addresses,
                        webhook_ids: r.webhook_ids,
                    },
                    channels,
                    severity,
                })
            })();
            match parsed {
                Ok(rule) => rules.push(StoredRule { rule_id: r.rule_id, rule }),
                Err(e) => {
                    tracing::warn!(rule_id = r.rule_id, error = %e, "notification rule skipped")
                }
            }
        }
        Ok(Rules { rules })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether any enabled rule names `kind`.
    pub fn wants(&self, kind: EventKind) -> bool {
        self.rules.iter().any(|r| r.rule.kinds.contains(&kind))
    }

    pub fn iter(&self) -> impl Iterator<Item = &StoredRule> {
        self.rules.iter()
    }

    /// Distinct thresholds (seconds) that enabled offline rules ask for. A rule wanting `online`
    /// needs the offline edge too (back online is told only of a vehicle marked offline), so
    /// with one the default threshold is tracked even when no offline rule exists.
    pub fn offline_thresholds(&self) -> Vec<i64> {
        let mut t: Vec<i64> = self
            .rules
            .iter()
            .filter(|r| r.rule.kinds.contains(&EventKind::Offline))
            .map(|r| r.rule.params.offline_s())
            .collect();
        if self.wants(EventKind::Online) {
            t.push(DEFAULT_OFFLINE_MIN * 60);
        }
        t.sort_unstable();
        t.dedup();
        t
    }

    /// Distinct (duration in seconds, speed in km/h) pairs enabled overspeed rules ask for;
    /// `None`: above the vehicle's configured limit alone.
    pub fn overspeed_thresholds(&self) -> Vec<(i64, Option<f64>)> {
        let mut t: Vec<(i64, Option<f64>)> = Vec::new();
        for p in self
            .rules
            .iter()
            .filter(|r| r.rule.kinds.contains(&EventKind::Overspeed))
            .map(|r| &r.rule.params)
        {
            let ask = (p.overspeed_for_s(), p.overspeed_kmh);
            if !t.iter().any(|(s, k)| *s == ask.0 && same_kmh(*k, ask.1)) {
                t.push(ask);
            }
        }
        t.sort_by(|a, b| {
            (a.0, a.1.unwrap_or(-1.0))
                .partial_cmp(&(b.0, b.1.unwrap_or(-1.0)))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        t
    }

    /// Distinct idling limits (seconds) enabled idling rules ask for.
    pub fn idle_thresholds(&self) -> Vec<i64> {
        self.thresholds(EventKind::Idling, |p| Some(p.idle_s()))
    }

    fn thresholds(&self, kind: EventKind, of: impl Fn(&Params) -> Option<i64>) -> Vec<i64> {
        let mut t: Vec<i64> = self
            .rules
            .iter()
            .filter(|r| r.rule.kinds.contains(&kind))
            .filter_map(|r| of(&r.rule.params))
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    }

    /// Distinct not-moved deadlines (seconds after local midnight) enabled rules ask for.
    pub fn not_moved_deadlines(&self) -> Vec<i64> {
        let mut t: Vec<i64> = self
            .rules
            .iter()
            .filter(|r| r.rule.kinds.contains(&EventKind::NotMoved))
            .filter_map(|r| r.rule.params.not_moved_s())
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    }
}
