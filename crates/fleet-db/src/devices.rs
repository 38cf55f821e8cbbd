//! The vehicle registry, `fleet.devices`: as the API reads and edits it (search and keyset
//! pages by device id, one device, an operator's edit of the fields people own), and as the
//! vendor's device sync refreshes it. The ingest writer registers unknown IMEIs itself.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

/// A device (tracker and the vehicle carrying it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    pub device_id: i32,
    pub imei: String,
    pub name: String,
    pub plate: Option<String>,
    pub driver_name: Option<String>,
    pub driver_phone: Option<String>,
    pub cost_centre: Option<String>,
    pub city: Option<String>,
    pub vehicle_type: Option<String>,
    pub model: Option<String>,
    pub sim: Option<String>,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
}

/// What the device list looks for; `None` matches everything.
#[derive(Debug, Clone, Copy)]
pub struct DeviceSearch<'a> {
    pub active: bool,
    /// Part of the name, plate (spaces ignored), IMEI or driver name; case does not matter and
    /// LIKE wildcards match literally.
    pub text: Option<&'a str>,
    /// Case does not matter.
    pub cost_centre: Option<&'a str>,
    /// Case does not matter.
    pub city: Option<&'a str>,
    /// Devices with a greater id only (the keyset cursor).
    pub after: Option<i32>,
    pub limit: i64,
}

/// Up to `search.limit` devices matching `search`, by id.
pub async fn search(
    pool: &PgPool,
    search: DeviceSearch<'_>,
) -> Result<Vec<DeviceRecord>, sqlx::Error> {
    let pattern = search.text.map(|q| format!("%{}%", escape_like(q)));
    let compact = search.text.map(|q| format!("%{}%", escape_like(&q.replace(' ', ""))));
    sqlx::query_as!(
        DeviceRecord,
        "select device_id, imei, name, plate, driver_name, driver_phone, cost_centre,
                city, vehicle_type, model, sim, active, created_at, updated_at, deactivated_at
         from fleet.devices d
         where d.active = $1
           and ($2::text is null
                or d.name ilike $2 or d.imei like $2 or d.driver_name ilike $2
                or replace(d.plate, ' ', '') ilike $3)
           and ($4::text is null or lower(d.cost_centre) = lower($4))
           and ($5::text is null or lower(d.city) = lower($5))
           and ($6::int is null or d.device_id > $6)
         order by d.device_id
         limit $7",
        search.active,
        pattern,
        compact,
        search.cost_centre,
        search.city,
        search.after,
        search.limit,
    )
    .fetch_all(pool)
    .await
}

/// Escapes `%`, `_` and `\` so user text matches literally in LIKE.
fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The device with this id.
pub async fn get(pool: &PgPool, device_id: i32) -> Result<Option<DeviceRecord>, sqlx::Error> {
    sqlx::query_as!(
        DeviceRecord,
        "select device_id, imei, name, plate, driver_name, driver_phone, cost_centre,
                city, vehicle_type, model, sim, active, created_at, updated_at, deactivated_at
         from fleet.devices where device_id = $1",
        device_id,
    )
    .fetch_optional(pool)
    .await
}

/// One field's edit: `None` leaves it, `Some(None)` clears it, `Some(Some(v))` sets it.
pub type Change = Option<Option<String>>;

/// An operator's edit of the fields people own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceEdit {
    pub name: Change,
    pub plate: Change,
    pub driver_name: Change,
    pub driver_phone: Change,
    pub cost_centre: Change,
    pub city: Change,
}

impl DeviceEdit {
    /// Whether the edit changes nothing.
    pub fn is_empty(&self) -> bool {
        [
            &self.name,
            &self.plate,
            &self.driver_name,
            &self.driver_phone,
            &self.cost_centre,
            &self.city,
        ]
        .iter()
        .all(|c| c.is_none())
    }

    /// The fields the vendor's device sync also writes that this edit sets: the sync leaves
    /// them as the operator set them from then on (`fleet.devices.edited_fields`).
    fn vendor_fields(&self) -> Vec<&'static str> {
        [
            ("name", &self.name),
            ("plate", &self.plate),
            ("driver_name", &self.driver_name),
            ("driver_phone", &self.driver_phone),
        ]
        .into_iter()
        .filter(|(_, c)| c.is_some())
        .map(|(f, _)| f)
        .collect()
    }
}

/// Applies `edit` to the device; `None` when there is no such device.
pub async fn update(
    pool: &PgPool,
    device_id: i32,
    edit: DeviceEdit,
) -> Result<Option<DeviceRecord>, sqlx::Error> {
    let vendor_fields: Vec<String> = edit.vendor_fields().into_iter().map(String::from).collect();
    let set = |c: &Change| c.is_some();
    sqlx::query_as!(
        DeviceRecord,
        "update fleet.devices set
             name = case when $2 then $3 else name end,
             plate = case when $4 then $5 else plate end,
             driver_name = case when $6 then $7 else driver_name end,
             driver_phone = case when $8 then $9 else driver_phone end,
             cost_centre = case when $10 then $11 else cost_centre end,
             city = case when $12 then $13 else city end,
             edited_fields = array(select distinct f from unnest(edited_fields || $14::text[]) f
                                   order by f)
         where device_id = $1
         returning device_id, imei, name, plate, driver_name, driver_phone, cost_centre,
                city, vehicle_type, model, sim, active, created_at, updated_at, deactivated_at",
        device_id,
        set(&edit.name),
        edit.name.clone().flatten(),
        set(&edit.plate),
        edit.plate.clone().flatten(),
        set(&edit.driver_name),
        edit.driver_name.clone().flatten(),
        set(&edit.driver_phone),
        edit.driver_phone.clone().flatten(),
        set(&edit.cost_centre),
        edit.cost_centre.clone().flatten(),
        set(&edit.city),
        edit.city.clone().flatten(),
        &vendor_fields,
    )
    .fetch_optional(pool)
    .await
}

/// What the registry knows of a listed device before the vendor's device sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDevice {
    pub imei: String,
    pub active: bool,
    /// Fields an operator edited through the API; the sync leaves them alone.
    pub edited_fields: Vec<String>,
}

/// The registered devices among `imeis`.
pub async fn known_by_imei(
    conn: &mut PgConnection,
    imeis: &[&str],
) -> Result<Vec<KnownDevice>, sqlx::Error> {
    sqlx::query_as!(
        KnownDevice,
        "select imei, active, edited_fields from fleet.devices where imei = any($1)",
        imeis as &[&str],
    )
    .fetch_all(&mut *conn)
    .await
}

/// The vendor's device list, a column per field, a row per device. `None` (absent, empty or
/// edited by an operator) keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct ListedDevices<'a> {
    pub imeis: Vec<&'a str>,
    pub name: Vec<Option<&'a str>>,
    pub plate: Vec<Option<&'a str>>,
    pub driver_name: Vec<Option<&'a str>>,
    pub driver_phone: Vec<Option<&'a str>>,
    pub model: Vec<Option<&'a str>>,
    pub sim: Vec<Option<&'a str>>,
    pub vehicle_type: Vec<Option<&'a str>>,
    /// The vendor's group, which fills `city` only while it is empty.
    pub group: Vec<Option<&'a str>>,
    pub enabled: Vec<bool>,
}

/// Inserts new devices and refreshes known ones. A field given as `None` keeps the stored
/// value; the vendor's group fills `city` only while it is empty; a name the vendor does not
/// give (the profile falls back to the IMEI) keeps the stored one. Rows whose fields did not
/// change are not touched, so `updated_at` tells when the vendor last changed something.
pub async fn upsert_listed(
    conn: &mut PgConnection,
    listed: &ListedDevices<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into fleet.devices as d (imei, name, plate, driver_name,
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
           coalesce(d.city, excluded.city), excluded.active)",
        &listed.imeis as &[&str],
        &listed.name as &[Option<&str>],
        &listed.plate as &[Option<&str>],
        &listed.driver_name as &[Option<&str>],
        &listed.driver_phone as &[Option<&str>],
        &listed.model as &[Option<&str>],
        &listed.sim as &[Option<&str>],
        &listed.vehicle_type as &[Option<&str>],
        &listed.group as &[Option<&str>],
        &listed.enabled,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deactivates the active devices not among `imeis` (those that left the vendor account);
/// returns how many.
pub async fn deactivate_unlisted(
    conn: &mut PgConnection,
    imeis: &[&str],
) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        "update fleet.devices set active = false, deactivated_at = now()
             where active and not (imei = any($1))",
        imeis as &[&str],
    )
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Registers devices for `imeis` not known yet, named by their IMEI (the ingest writer, for
/// trackers that report before the device sync lists them).
pub async fn register_imeis(conn: &mut PgConnection, imeis: &[String]) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into fleet.devices (imei, name) select i, i from unnest($1::text[]) i
             on conflict (imei) do nothing",
        imeis,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The device ids of the registered devices among `imeis`.
pub async fn ids_by_imei(
    conn: &mut PgConnection,
    imeis: &[String],
) -> Result<Vec<(String, i32)>, sqlx::Error> {
    let rows =
        sqlx::query!("select imei, device_id from fleet.devices where imei = any($1)", imeis,)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows.into_iter().map(|r| (r.imei, r.device_id)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_match_literally() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }

    #[test]
    fn only_the_fields_the_vendor_also_writes_are_marked_edited() {
        let edit = DeviceEdit {
            plate: Some(None),
            city: Some(Some("Nairobi".to_owned())),
            ..DeviceEdit::default()
        };
        assert_eq!(edit.vendor_fields(), ["plate"]);
        assert!(!edit.is_empty());
        assert!(DeviceEdit::default().is_empty());
    }
}
