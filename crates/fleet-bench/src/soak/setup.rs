//! What a live fleet's operator has set up before the soak starts: the vehicles (imported with
//! their cost centres and cities), depot and city-centre geofences, a webhook and notification
//! rules on alarms, overspeed, geofences, idling and after-hours driving.

use anyhow::Context;
use fleet_sim::model::city::CITIES;
use fleet_sim::Fleet;
use serde_json::{json, Value};
use sqlx::PgPool;

/// Registers the fleet's vehicles as an operator's import would; returns how many.
pub async fn register_vehicles(pool: &PgPool, fleet: &Fleet) -> anyhow::Result<usize> {
    let vehicles = fleet.vehicles();
    for chunk in vehicles.chunks(1000) {
        let imeis: Vec<String> = chunk.iter().map(|v| v.imei.to_string()).collect();
        let names: Vec<String> = chunk.iter().map(|v| v.name.clone()).collect();
        let plates: Vec<String> = chunk.iter().map(|v| v.plate.clone()).collect();
        let cost_centres: Vec<String> = chunk.iter().map(|v| v.cost_centre.to_owned()).collect();
        let cities: Vec<String> = chunk.iter().map(|v| CITIES[v.city].name.to_owned()).collect();
        sqlx::query(
            "insert into fleet.devices (imei, name, plate, cost_centre, city)
             select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])",
        )
        .bind(&imeis)
        .bind(&names)
        .bind(&plates)
        .bind(&cost_centres)
        .bind(&cities)
        .execute(pool)
        .await
        .context("registering the vehicles")?;
    }
    Ok(vehicles.len())
}

/// Circles of 1.5 km round each city's centre and of 400 m at a few busy junctions, so trips
/// cross them all day; returns their ids.
pub async fn create_geofences(pool: &PgPool) -> anyhow::Result<Vec<i32>> {
    let mut ids = Vec::new();
    for city in CITIES.iter() {
        let fences = [
            (format!("{} centre", city.name), city.lat, city.lon, 1500.0),
            (format!("{} north junction", city.name), city.lat + 0.022, city.lon, 400.0),
            (format!("{} east junction", city.name), city.lat, city.lon + 0.022, 400.0),
        ];
        for (name, lat, lon, radius) in fences {
            let id: i32 = sqlx::query_scalar(
                "insert into fleet.geofences (name, kind, center_lat, center_lon, radius_m)
                 values ($1, 'circle', $2, $3, $4) returning geofence_id",
            )
            .bind(&name)
            .bind(lat)
            .bind(lon)
            .bind(radius)
            .fetch_one(pool)
            .await
            .context("creating a geofence")?;
            ids.push(id);
        }
    }
    Ok(ids)
}

/// One rule: kinds, scope, params, throttle seconds.
type RuleSpec = (Vec<&'static str>, Value, Value, i32);

/// `count` rules (at least the 12 base ones): the base set an operator starts with, then
/// variations per cost centre and city.
pub fn rule_specs(count: usize, geofences: &[i32]) -> Vec<RuleSpec> {
    let mut rules: Vec<RuleSpec> = vec![
        (vec!["alarm.safety"], json!({}), json!({}), 0),
        (vec!["alarm.power"], json!({}), json!({}), 0),
        (vec!["alarm.security"], json!({}), json!({}), 300),
        (vec!["alarm.driving"], json!({}), json!({"alarm_types": ["6"]}), 600),
        (vec!["alarm.driving"], json!({}), json!({"alarm_types": ["41", "48"]}), 0),
        (vec!["alarm.geofence"], json!({}), json!({}), 0),
        (vec!["geofence.enter", "geofence.exit"], json!({}), json!({}), 0),
        (vec!["geofence.enter"], json!({"geofence_ids": geofences}), json!({}), 0),
        (vec!["overspeed"], json!({}), json!({"overspeed_for_s": 30}), 0),
        (vec!["overspeed"], json!({}), json!({"overspeed_kmh": 100, "overspeed_for_s": 10}), 0),
        (vec!["idling"], json!({}), json!({"idle_min": 10}), 0),
        (vec!["after_hours"], json!({}), json!({}), 3600),
    ];
    let cost_centres = fleet_sim::model::vehicle::COST_CENTRES;
    let mut i = 0;
    while rules.len() < count {
        let scope = if i % 2 == 0 {
            json!({"cost_centres": [cost_centres[(i / 2) % cost_centres.len()]]})
        } else {
            json!({"cities": [CITIES[(i / 2) % CITIES.len()].name]})
        };
        let kinds = match i % 4 {
            0 => vec!["alarm.safety", "alarm.power"],
            1 => vec!["overspeed"],
            2 => vec!["geofence.exit"],
            _ => vec!["alarm.driving"],
        };
        rules.push((kinds, scope, json!({}), if i % 3 == 0 { 900 } else { 0 }));
        i += 1;
    }
    rules.truncate(count.max(1));
    rules
}

/// A webhook to `url` and the rules telling it; returns the webhook's id.
pub async fn create_rules(
    pool: &PgPool,
    url: &str,
    count: usize,
    geofences: &[i32],
) -> anyhow::Result<i32> {
    let secret = format!("{:032x}", rand::random::<u128>());
    let webhook: i32 = sqlx::query_scalar(
        "insert into fleet.notify_webhooks (name, url, secret) values ('soak receiver', $1, $2)
         returning webhook_id",
    )
    .bind(url)
    .bind(&secret)
    .fetch_one(pool)
    .await
    .context("creating the webhook")?;
    for (i, (kinds, scope, params, throttle)) in rule_specs(count, geofences).iter().enumerate() {
        sqlx::query(
            "insert into fleet.notify_rules (name, kinds, scope, params, throttle_s, channels,
                    webhook_ids, severity)
             values ($1, $2, $3, $4, $5, array['webhook'], array[$6], 'warning')",
        )
        .bind(format!("soak rule {i}: {}", kinds.join(", ")))
        .bind(kinds)
        .bind(scope)
        .bind(params)
        .bind(throttle)
        .bind(webhook)
        .execute(pool)
        .await
        .with_context(|| format!("creating rule {i}"))?;
    }
    Ok(webhook)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_set_has_the_size_asked_and_covers_alarms_overspeed_and_geofences() {
        for n in [5, 12, 20, 40] {
            assert_eq!(rule_specs(n, &[1, 2]).len(), n);
        }
        let kinds: Vec<&str> = rule_specs(20, &[1]).into_iter().flat_map(|r| r.0).collect();
        for k in ["alarm.safety", "alarm.driving", "overspeed", "geofence.enter", "geofence.exit"] {
            assert!(kinds.contains(&k), "{k} missing");
        }
    }
}
