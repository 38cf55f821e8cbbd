//! `poll.devices`: the vendor account's device list into `fleet.devices` (through
//! `fleet_db::devices`). The vendor owns the registry fields it lists; operators own
//! `cost_centre` and `city` (see the module docs of `poll`). The list is fetched first and
//! stored after, in one short transaction.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use fleet_core::{text, DeviceProfile};
use fleet_db::devices;
use fleet_tracksolid::convert;
use serde_json::json;

use super::jobs::{record, PollJobs};
use super::store::Run;
use super::{DbContext, Job, PollError};
use crate::{Record, WriteReport};

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
    let known: HashMap<String, (bool, Vec<String>)> = devices::known_by_imei(&mut tx, &imeis)
        .await
        .context("reading the known devices")?
        .into_iter()
        .map(|k| (k.imei, (k.active, k.edited_fields)))
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
    let upsert = devices::ListedDevices {
        imeis: imeis.clone(),
        name: text("name", |p| Some(p.name.as_str())),
        plate: text("plate", |p| p.plate.as_deref()),
        driver_name: text("driver_name", |p| p.driver_name.as_deref()),
        driver_phone: text("driver_phone", |p| p.driver_phone.as_deref()),
        model: text("model", |p| p.model.as_deref()),
        sim: text("sim", |p| p.sim.as_deref()),
        vehicle_type: text("vehicle_type", |p| p.vehicle_type.as_deref()),
        group: text("group", |p| p.group.as_deref()),
        enabled: listed.iter().map(|p| p.enabled).collect(),
    };
    devices::upsert_listed(&mut tx, &upsert).await.context("storing the listed devices")?;
    // an empty list is far more likely a vendor glitch than an account emptied overnight
    let deactivated = if listed.is_empty() {
        run.problem("the vendor listed no devices; none was deactivated".to_owned());
        0
    } else {
        devices::deactivate_unlisted(&mut tx, &imeis)
            .await
            .context("deactivating unlisted devices")?
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
