#!/usr/bin/env bash
# The API benchmark: fleetd serve on a fresh embedded cluster seeded by SQL with BENCH_DEVICES
# vehicles (each with a device_latest row), BENCH_POSITIONS rows in fleet.positions (spread
# over the vehicles, the last days) and one vehicle-day of trips, then GET load (api-load:
# BENCH_CONNECTIONS keep-alive connections for BENCH_SECONDS per route) on the live map
# (GET /api/v1/fleet/live, every vehicle: downloaded without Accept-Encoding, then as the apps'
# browsers fetch it, gzip accepted, downloaded and revalidated with If-None-Match), the device list (GET /api/v1/devices, one page,
# and a filtered page) and one vehicle-day (GET /api/v1/devices/1/day, GET /api/v1/trips of
# that day). Prints the api-load lines and the live map's bar (p99 < 300 ms for the whole fleet,
# full downloads and revalidations). Not a test: timings are reported, never asserted in tests.
#
# Knobs: BENCH_DEVICES (10000), BENCH_POSITIONS (10000000), BENCH_CONNECTIONS (16),
# BENCH_SECONDS (15).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

devices=${BENCH_DEVICES:-10000}
positions=${BENCH_POSITIONS:-10000000}
connections=${BENCH_CONNECTIONS:-16}
seconds=${BENCH_SECONDS:-15}
say() { printf '[bench] %s\n' "$*" >&2; }

say "building release binaries"
cargo build --release --quiet -p fleetd -p fleet-bench
api_load="$repo/target/release/api-load"

source "$repo/bench/lib/serve.sh"
start_fleetd
export PGDATABASE=fleetd
# the CLI runs as serve does: from the work directory, on its cluster
fenv=(env -u DATABASE_URL -u FLEETD_TRACKSOLID_URL -u FLEETD_TRACKSOLID_APP_KEY
    -u FLEETD_TRACKSOLID_APP_SECRET -u FLEETD_TRACKSOLID_USER -u FLEETD_TRACKSOLID_PASSWORD
    FLEETD_DATA_DIR="$data" FLEETD_LOG="${FLEETD_LOG:-warn}")

say "seeding $devices vehicles with a latest fix"
t0=$(date +%s)
q -v devices="$devices" <<'SQL'
insert into fleet.devices (imei, name, plate, cost_centre, city)
select lpad((860000000000000 + i)::text, 15, '0'), 'Vehicle ' || i, 'KB' || lpad(i::text, 5, '0'),
       'CC-' || (i % 20), (array['Nairobi', 'Mombasa', 'Kisumu', 'Nakuru'])[1 + i % 4]
from generate_series(1, :devices) i;
insert into fleet.device_latest (device_id, gps_time, received_at, lat, lon, speed_kmh,
    course_deg, ignition, source, motion_state, state_since)
select device_id, now() - (device_id % 7200) * interval '1 second', now(),
       -1.29 + (device_id % 100) * 0.01, 36.82 + (device_id % 97) * 0.01,
       (device_id % 3) * 30, device_id % 360, device_id % 3 <> 2, 'push',
       (array['moving', 'idling', 'parked'])[1 + device_id % 3], now() - interval '1 hour'
from fleet.devices;
SQL
say "seeding $positions positions (the last days, spread over the vehicles)"
q -v positions="$positions" -v devices="$devices" <<'SQL'
set synchronous_commit = off;
insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, course_deg, ignition,
    fix_kind, source)
select 1 + (i % :devices), now() - interval '3 days' + (i / :devices) * interval '10 seconds',
       -1.29 + (i % 1000) * 0.0001, 36.82 + (i % 997) * 0.0001, (i % 60)::real, (i % 360)::real,
       true, 'gps', 'push'
from generate_series(0, :positions - 1) i
on conflict do nothing;
analyze fleet.positions;
SQL
say "seeding one vehicle-day of trips"
q <<'SQL'
insert into fleet.trips (device_id, start_time, end_time, start_lat, start_lon, end_lat, end_lon,
    distance_m, duration_s, moving_s, point_count, end_reason)
select 1, d + h * interval '1 hour', d + h * interval '1 hour' + interval '40 minutes',
       -1.29, 36.82, -1.30, 36.83, 12000, 2400, 2100, 240, 'work_stop'
from (select date_trunc('day', now()) - interval '1 day' as d) x, generate_series(6, 17) h;
SQL
say "seeded in $(( $(date +%s) - t0 )) s"

password="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
(cd "$work" && echo "$password" | "${fenv[@]}" "$fleetd" user add bench --role viewer \
    --password-stdin --data-dir "$data" >/dev/null)
token=$(cd "$work" && "${fenv[@]}" "$fleetd" token create --user bench --name api-bench \
    --data-dir "$data")

say "load: $connections connections, $seconds s per route"
out="$work/api-load.out"
API_LOAD_TOKEN="$token" "$api_load" --base "http://$addr" --connections "$connections" \
    --seconds "$seconds" \
    --path /api/v1/fleet/live \
    --path '/api/v1/fleet/live?city=Kisumu&status=moving' \
    --path '/api/v1/devices?limit=100' \
    --path '/api/v1/devices?q=vehicle%2099&limit=50' \
    --path /api/v1/devices/5000 \
    --path "/api/v1/devices/1/day?date=$(date -u -d yesterday +%F)" \
    --path "/api/v1/trips?device_id=1&from=$(date -u -d yesterday +%F)T00:00:00Z&to=$(date -u +%F)T00:00:00Z" | tee "$out"
# the live map as the apps' browsers fetch it: gzip accepted, downloaded every time, and each
# client revalidating its copy (If-None-Match); the first run above sends no Accept-Encoding
API_LOAD_TOKEN="$token" "$api_load" --base "http://$addr" --connections "$connections" \
    --seconds "$seconds" --gzip --path /api/v1/fleet/live | tee -a "$out"
API_LOAD_TOKEN="$token" "$api_load" --base "http://$addr" --connections "$connections" \
    --seconds "$seconds" --gzip --conditional --path /api/v1/fleet/live | tee -a "$out"

# bar: the whole fleet's live map answers in p99 < 300 ms under the connections given, whether
# clients revalidate or download it every time
python3 - "$out" "$devices" "$connections" <<'PY'
import json, sys
out, devices, connections = sys.argv[1], sys.argv[2], sys.argv[3]
for line in open(out):
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if r["path"] != "/api/v1/fleet/live":
        continue
    mode = "revalidating" if r["conditional"] else "full downloads"
    mode += ", gzip" if r.get("gzip") else ", uncompressed"
    verdict = "PASS" if r["p99_ms"] < 300 and r["errors"] == 0 else "FAIL"
    print(f"bar: /fleet/live, {devices} vehicles, {connections} connections, {mode}: "
          f"p99 {r['p99_ms']:.1f} ms < 300 ms: {verdict}")
PY
