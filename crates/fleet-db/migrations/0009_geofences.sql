create table fleet.geofences (
    geofence_id      integer generated always as identity primary key,
    name             text not null unique check (length(name) between 1 and 200),
    kind             text not null check (kind in ('circle', 'polygon')),
    center_lat       double precision check (center_lat between -90 and 90),
    center_lon       double precision check (center_lon between -180 and 180),
    radius_m         double precision check (radius_m > 0),
    polygon          jsonb,
    speed_limit_kmh  real check (speed_limit_kmh > 0),
    active           boolean not null default true,
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    check (
        (kind = 'circle' and center_lat is not null and center_lon is not null and radius_m is not null and polygon is null)
        or (kind = 'polygon' and polygon is not null and jsonb_typeof(polygon) = 'array'
            and jsonb_array_length(polygon) >= 3 and radius_m is null)
    )
);

create trigger geofences_touch before update on fleet.geofences
    for each row execute function fleet.touch_updated_at();

comment on table fleet.geofences is 'Named areas for trip start/end names and enter/exit events: circles (centre and radius) or polygons.';
comment on column fleet.geofences.polygon is 'Polygon ring as a JSON array of [lon, lat] pairs (GeoJSON order), at least three.';
comment on column fleet.geofences.radius_m is 'Circle radius, metres.';
comment on column fleet.geofences.speed_limit_kmh is 'Speed limit inside the geofence, km/h; overrides analytics_config there.';
