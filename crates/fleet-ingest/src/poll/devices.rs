//! `poll.devices`: the vendor account's device list into `fleet.devices`. The vendor owns the
//! registry fields it lists; operators own `cost_centre` and `city` (see the module docs of
//! `poll`). The list is fetched first and stored after, in one short transaction.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use fleet_core::{text, DeviceProfile};
use fleet_tracksolid::convert;
use serde_json::json;

use super::jobs::{record, PollJobs};
use super::store::Run;
use super::{DbContext, Job, PollError};
use crate::{Record, WriteReport};

/// Inserts new devices and refreshes known ones. A vendor field that is empty, or that an
/// operator edited through the API (`edited_fields`), keeps the stored value; the vendor's group fills `city` only while it is empty; a name the vendor does not
/// give (the profile falls back to the IMEI) keeps the stored one. Rows whose fields did not
/// change are not touched, so `updated_at` tells when the vendor last changed something.
const UPSERT: &str = "insert into fleet.devices as d (imei, name, plate, driver_name,
        driver_phone, model, sim, vehicle_type, city, active, deactivated_at)
    select imei, coalesce(name, imei), plate, driver_name, driver_phone, model, sim, vehicle_type, grp, enabled,
        case when enabled then null else now() end
    from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
        $7::text[], $8::text[], $9::text[], $10::bool[])
        as t(imei, name, plate, driver_name, driver_phone, model, sim, vehicle_type, grp, enabled)
    on conflict (imei) do update set
        name = case when excluded.name = excluded.imei then d.name else excluded.name end,
        plate = coalesce(excluded.plate, d.plate),
        driver_name = coalesce(excluded.driver_name, d.driver_name),
        driver_phone = coalesce(excluded.driver_phone, d.driver_phone),
        model = coalesce(excluded.model, d.model),
        sim = coalesce(excluded.sim, d.sim),
        vehicle_type = coalesce(excluded.vehicle_type, d.vehicle_type),
        city = coalesce(d.city, excluded.city),
        active = excluded.active,
        deactivated_at = case when excluded.active then null
                              else coalesce(d.deactivated_at, now()) end
    where (d.name, d.plate, d.driver_name, d.driver_phone, d.model, d.sim, d.vehicle_type,
           d.city, d.active)
        is distinct from
          (case when excluded.name = excluded.imei then d.name else excluded.name end,
           coalesce(excluded.plate, d.plate), coalesce(excluded.driver_name, d.driver_name),
           coalesce(excluded.driver_phone, d.driver_phone), coalesce(excluded.model, d.model),
           coalesce(excluded.sim, d.sim), coalesce(excluded.vehicle_type, d.vehicle_type),
           coalesce(d.city, excluded.city), excluded.active)";

/// Drops control and invisible formatting characters (bidi overrides, zero-width characters)
/// from the vendor's texts: the API refuses them in names people edit, and a vendor name must not
/// make one vehicle look like another either, but the device is still registered. Logs each
/// device changed; returns how many.
fn strip_hidden_characters<'a>(profiles: impl Iterator<Item = &'a mut DeviceProfile>) -> usize {
    let mut changed_devices = 0;
    for p in profiles {
        let mut changed: Vec<&str> = Vec::new();
        let mut clean = |field: &'static str, value: &mut String| {
            if let Cow::Owned(clean) = text::strip_hidden(value) {
                *value = clean;
                changed.push(field);
            }
        };
        clean("name", &mut p.name);
        for (field, value) in [
            ("plate", &mut p.plate),
            ("driver_name", &mut p.driver_name),
            ("driver_phone", &mut p.driver_phone),
            ("model", &mut p.model),
            ("sim", &mut p.sim),
            ("vehicle_type", &mut p.vehicle_type),
            ("group", &mut p.group),
        ] {
            if let Some(v) = value.as_mut() {
                clean(field, v);
            }
        }
        if !changed.is_empty() {
            changed_devices += 1;
            tracing::warn!(
                device.imei = %p.imei,
                device.fields = ?changed,
                "the vendor listed texts with control or invisible formatting characters; stored without them"
            );
        }
    }
    changed_devices
}

pub(super) async fn sync(jobs: &PollJobs, run: &mut Run) -> Result<(), PollError> {
    let items = jobs.client.device_list(None).await?;
    let mut profiles: BTreeMap<String, DeviceProfile> = BTreeMap::new();
    let mut rejects: Vec<Record> = Vec::new();
    for item in &items {
        match convert::device_profile(item) {
            // the vendor listing an IMEI twice must not fail the upsert; the first one wins
            Ok(p) => {
                profiles.entry(p.imei.to_string()).or_insert(p);
            }
            Err(e) => rejects.push(record(Err(e), item, item.imei.clone())),
        }
    }
    let stripped = strip_hidden_characters(profiles.values_mut());
    if stripped > 0 {
        run.detail("hidden_characters_stripped", json!(stripped));
    }
    let rejected = if rejects.is_empty() {
        0
    } else {
        jobs.writer.write(Job::Devices.name(), rejects).await?.rejected
    };
    run.set_devices(profiles.len());

    let listed: Vec<&DeviceProfile> = profiles.values().collect();
    let imeis: Vec<&str> = listed.iter().map(|p| p.imei.as_str()).collect();
    let mut tx = jobs.pool.begin().await.context("starting the device sync")?;
    // active flag and the fields operators edited (fleet.devices.edited_fields)
    let known: HashMap<String, (bool, Vec<String>)> =
        sqlx::query_as::<_, (String, bool, Vec<String>)>(
            "select imei, active, edited_fields from fleet.devices where imei = any($1)",
        )
        .bind(&imeis)
        .fetch_all(&mut *tx)
        .await
        .context("reading the known devices")?
        .into_iter()
        .map(|(imei, active, edited)| (imei, (active, edited)))
        .collect();
    let edited = |p: &DeviceProfile, field: &str| {
        known.get(p.imei.as_str()).is_some_and(|(_, e)| e.iter().any(|f| f == field))
    };
    // a field an operator edited is sent as absent, which the upsert reads as "keep the stored"
    let text = |field: &str, f: fn(&DeviceProfile) -> Option<&str>| -> Vec<Option<&str>> {
        listed
            .iter()
            .map(|p| f(p).map(str::trim).filter(|v| !v.is_empty() && !edited(p, field)))
            .collect()
    };
    sqlx::query(UPSERT)
        .bind(&imeis)
        .bind(text("name", |p| Some(p.name.as_str())))
        .bind(text("plate", |p| p.plate.as_deref()))
        .bind(text("driver_name", |p| p.driver_name.as_deref()))
        .bind(text("driver_phone", |p| p.driver_phone.as_deref()))
        .bind(text("model", |p| p.model.as_deref()))
        .bind(text("sim", |p| p.sim.as_deref()))
        .bind(text("vehicle_type", |p| p.vehicle_type.as_deref()))
        .bind(text("group", |p| p.group.as_deref()))
        .bind(listed.iter().map(|p| p.enabled).collect::<Vec<bool>>())
        .execute(&mut *tx)
        .await
        .context("storing the listed devices")?;
    // an empty list is far more likely a vendor glitch than an account emptied overnight
    let deactivated = if listed.is_empty() {
        run.problem("the vendor listed no devices; none was deactivated".to_owned());
        0
    } else {
        sqlx::query(
            "update fleet.devices set active = false, deactivated_at = now()
             where active and not (imei = any($1))",
        )
        .bind(&imeis)
        .execute(&mut *tx)
        .await
        .context("deactivating unlisted devices")?
        .rows_affected()
    };
    tx.commit().await.context("committing the device sync")?;

    let new = listed.iter().filter(|p| !known.contains_key(p.imei.as_str())).count();
    let reactivated = listed
        .iter()
        .filter(|p| p.enabled && known.get(p.imei.as_str()).is_some_and(|k| !k.0))
        .count();
    let disabled = listed.iter().filter(|p| !p.enabled).count();
    run.set_counts(WriteReport {
        received: items.len(),
        new,
        duplicate: listed.len() - new,
        rejected,
    });
    run.detail("deactivated", json!(deactivated));
    run.detail("reactivated", json!(reactivated));
    run.detail("listed_disabled", json!(disabled));
    if new > 0 || deactivated > 0 || reactivated > 0 {
        tracing::info!(new, deactivated, reactivated, "device registry changed");
    }
    Ok(())
}
