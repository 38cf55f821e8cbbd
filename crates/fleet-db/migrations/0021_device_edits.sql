-- Operators correct a vehicle's name, plate or driver through the API; the vendor's device list
-- must not undo that at the next sync. The fields an operator set are remembered here and the
-- sync leaves them alone (cost centre and city were always the operators' own).
alter table fleet.devices
    add column edited_fields text[] not null default '{}'
        check (edited_fields <@ array['name', 'plate', 'driver_name', 'driver_phone']::text[]);

comment on column fleet.devices.edited_fields is 'Vendor-listed registry fields an operator set through PATCH /api/v1/devices/{id} (name, plate, driver_name, driver_phone): the device sync keeps the operator''s values for these.';
