//! The vehicle registry, `fleet.devices`, as the API reads and edits it: search and keyset pages
//! by device id, one device, and an operator's edit of the fields people own.

use chrono::{DateTime, Utc};
use sqlx::PgPool;

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
