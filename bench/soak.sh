#!/usr/bin/env bash
# The soak benchmark of docs/BENCHMARKS.md: a live fleet of SOAK_VEHICLES vehicles pushed in
# real time by the simulator into `fleetd serve` (release build, fresh embedded cluster) for
# SOAK_MINUTES, with the trip builder, KPI step, live stream and notification rules running,
# SOAK_SSE_CLIENTS live-stream viewers and a light API load. The soak driver (a separate
# process) samples every 10 s: push acknowledgement latency, trip-builder and KPI lags, CPU of
# fleetd and PostgreSQL, fleetd's RSS and the database size; it writes the series as CSV and a
# PNG chart to SOAK_OUT and prints the bars PASS/FAIL. This script adds the log bar (no WARN or
# ERROR line in fleetd's log) and exits 1 when any bar fails.
#
# Knobs (environment): SOAK_VEHICLES (10000), SOAK_MINUTES (20), SOAK_LOCAL_START (08:00,
# fleet local time the replayed day starts at; "now" for the fleet's present), SOAK_SEED (1),
# SOAK_SSE_CLIENTS (50), SOAK_API_RPS (3), SOAK_RULES (20), SOAK_OUT (docs/soak).
# Larger fleets: SOAK_VEHICLES=20000 or 50000 bash bench/soak.sh. The replayed day is the latest
# past occurrence of SOAK_LOCAL_START in fleet time; the simulated fleet stays parked on Sundays,
# so on a Sunday pick a time still ahead of the fleet's clock (Saturday is then replayed).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

vehicles=${SOAK_VEHICLES:-10000}
minutes=${SOAK_MINUTES:-20}
local_start=${SOAK_LOCAL_START:-08:00}
seed=${SOAK_SEED:-1}
sse_clients=${SOAK_SSE_CLIENTS:-50}
api_rps=${SOAK_API_RPS:-3}
rules=${SOAK_RULES:-20}
out=${SOAK_OUT:-$repo/docs/soak}
in_flight=4

say() { printf '[soak] %s\n' "$*" >&2; }

# the push receiver takes the driver's concurrent batches from one address
export FLEETD_HTTP_UPLOADS_PER_ADDRESS=${FLEETD_HTTP_UPLOADS_PER_ADDRESS:-$((in_flight * 2))}

say "building release binaries"
cargo build --release --quiet -p fleetd -p fleet-bench
soak="$repo/target/release/soak"

source "$repo/bench/lib/serve.sh"
start_fleetd
postmaster=$(head -n 1 "$data/postgres/pgdata/postmaster.pid")

# viewers: fleetd allows 20 live streams per user, so one user per 20 viewers
fenv=(env -u DATABASE_URL -u FLEETD_TRACKSOLID_URL -u FLEETD_TRACKSOLID_APP_KEY
    -u FLEETD_TRACKSOLID_APP_SECRET -u FLEETD_TRACKSOLID_USER -u FLEETD_TRACKSOLID_PASSWORD
    FLEETD_DATA_DIR="$data" FLEETD_LOG="${FLEETD_LOG:-warn}")
tokens=""
for u in $(seq 1 $(( (sse_clients + 19) / 20 > 0 ? (sse_clients + 19) / 20 : 1 ))); do
    password="soak-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
    (cd "$work" && echo "$password" | "${fenv[@]}" "$fleetd" user add "viewer$u" --role viewer \
        --password-stdin --data-dir "$data" >/dev/null)
    t=$(cd "$work" && "${fenv[@]}" "$fleetd" token create --user "viewer$u" --name soak \
        --data-dir "$data")
    tokens="${tokens:+$tokens,}$t"
done

mkdir -p "$out"
name="soak-${vehicles}v-${minutes}m"
status=0
SOAK_API_TOKENS="$tokens" DATABASE_URL="postgres://fleetd:$PGPASSWORD@127.0.0.1:$PGPORT/fleetd" \
    "$soak" --url "http://$addr" --token "$token" --vehicles "$vehicles" --minutes "$minutes" \
    --local-start "$local_start" --seed "$seed" --sse-clients "$sse_clients" \
    --api-rps "$api_rps" --rules "$rules" --in-flight "$in_flight" \
    --fleetd-pid "$fleetd_pid" --postmaster-pid "$postmaster" \
    --csv "$out/$name.csv" --chart "$out/$name.png" || status=$?

# every WARN or ERROR line of fleetd's log, but for the fresh cluster's notice at start that
# no user exists yet (the viewers are created after fleetd is up)
problems=$(grep -E '^\S+\s+(WARN|ERROR)\s' "$work/fleetd.log" | grep -v 'no users yet' || true)
count=$(printf '%s' "$problems" | grep -c . || true)
if [ "$count" = 0 ]; then
    echo "  fleetd log      no WARN or ERROR line: PASS"
else
    echo "  fleetd log      $count WARN or ERROR lines: FAIL; the first:"
    printf '%s\n' "$problems" | head -n 5 | sed 's/^/    /'
    status=1
fi
stop_fleetd
exit "$status"
