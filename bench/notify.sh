#!/usr/bin/env bash
# The notification benchmark of docs/BENCHMARKS.md: alarms pushed at a steady rate across a large
# fleet with many rules, each telling a webhook this benchmark receives; prints the time from an
# event's commit in fleetd to the webhook's arrival (p50/p90/p99, bar p99 < 2 s), checks every
# message arrived exactly once, and measures what notifications cost ingest: the push-load rate
# of the same amount of fixes without any rule (baseline, first) and while the alarms, rules and
# deliveries run (second), in one run on one fleetd. Exits 1 when a bar is missed.
#
# Knobs (environment): BENCH_VEHICLES (10000), BENCH_RULES (200), BENCH_PER_MIN (1000),
# BENCH_MINUTES (3), BENCH_INGEST_VEHICLES (1000), BENCH_INGEST_HOURS (6), BENCH_SEED (1).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

vehicles=${BENCH_VEHICLES:-10000}
rules=${BENCH_RULES:-200}
per_min=${BENCH_PER_MIN:-1000}
minutes=${BENCH_MINUTES:-3}
ingest_vehicles=${BENCH_INGEST_VEHICLES:-1000}
ingest_hours=${BENCH_INGEST_HOURS:-6}
seed=${BENCH_SEED:-1}
concurrency=64

say() { printf '[bench] %s\n' "$*" >&2; }

# derived data is paused, as in the ingest benchmark: the comparison is about the ingest path
export FLEETD_TRIPS_INTERVAL_S=${FLEETD_TRIPS_INTERVAL_S:-86400}
export FLEETD_KPI_INTERVAL_S=${FLEETD_KPI_INTERVAL_S:-86400}
export FLEETD_HTTP_UPLOADS_PER_ADDRESS=${FLEETD_HTTP_UPLOADS_PER_ADDRESS:-$concurrency}

say "building release binaries"
cargo build --release --quiet -p fleetd -p fleet-bench
push_load="$repo/target/release/push-load"
notify_load="$repo/target/release/notify-load"

source "$repo/bench/lib/serve.sh"
notify_pid=""
extra_cleanup() { if [ -n "$notify_pid" ]; then kill "$notify_pid" 2>/dev/null || true; fi; }
start_fleetd

# three windows of fixes of the same size, a day apart, so every run's rows are new: a warm-up
# (registers the vehicles, fills caches), then the two measured runs
now=$(date -u +%s)
end0=$((now / 86400 * 86400 - 86400 + 9 * 3600))
end1=$((end0 - 86400))
end2=$((end1 - 86400))
ingest() {
    "$push_load" --url "http://$addr/push" --token "$token" --vehicles "$ingest_vehicles" \
        --hours "$ingest_hours" --seed "$seed" --end "$1" --concurrency "$concurrency" \
        2>"$work/push-$2.err" | tee "$work/push-$2.out" >&2
    sed -n 's/.*items_per_s=\([0-9.]*\).*/\1/p' "$work/push-$2.out"
}

say "ingest warm-up"
ingest "$end0" warm >/dev/null
say "ingest without notifications"
rate0=$(ingest "$end1" quiet)

say "notifications: $vehicles vehicles, $rules rules, $per_min alarms/min for $minutes min"
DATABASE_URL="postgres://fleetd:$PGPASSWORD@127.0.0.1:$PGPORT/fleetd" \
    "$notify_load" --url "http://$addr/push" --token "$token" --vehicles "$vehicles" \
    --rules "$rules" --per-min "$per_min" --minutes "$minutes" --seed "$seed" \
    >"$work/notify.out" 2>"$work/notify.err" &
notify_pid=$!
until grep -q '^notify-load: sending' "$work/notify.err"; do
    if ! kill -0 "$notify_pid" 2>/dev/null; then cat "$work/notify.err" >&2; exit 1; fi
    sleep 0.2
done
# let the deliveries reach a steady state before ingest runs beside them
sleep 10
say "ingest while notifications run"
rate1=$(ingest "$end2" busy)
if ! wait "$notify_pid"; then
    cat "$work/notify.err" >&2
    exit 1
fi
notify_pid=""
cat "$work/notify.err" >&2
result=$(cat "$work/notify.out")
field() { sed -n "s/.*\b$1=\([0-9.a-zN]*\).*/\1/p" <<<"$result"; }
stop_fleetd

ratio=$(awk -v a="$rate1" -v b="$rate0" 'BEGIN { printf "%.3f", a / b }')
verdict() { if [ "$1" = 1 ]; then echo PASS; else echo FAIL; fi; }
p99_ok=$(awk -v p="$(field p99_ms)" 'BEGIN { print (p + 0 < 2000 && p != "NaN") ? 1 : 0 }')
ratio_ok=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.9) ? 1 : 0 }')
once_ok=0
if [ "$(field missing)" = 0 ] && [ "$(field duplicates)" = 0 ] && [ "$(field deliveries)" -gt 0 ]; then
    once_ok=1
fi

cat <<EOF

fleetd notification benchmark  $(date -u +%Y-%m-%dT%H:%MZ)  $(nproc) cores
  load             $(field alarms) alarms at $per_min/min over $vehicles vehicles, $rules rules, one webhook receiver
  events           $(field events) events, $(field deliveries) webhook deliveries, $(field received) received
  latency          commit -> webhook received: p50 $(field p50_ms) ms, p90 $(field p90_ms) ms, p99 $(field p99_ms) ms, max $(field max_ms) ms (bar p99 < 2000 ms): $(verdict "$p99_ok")
  exactly once     missing $(field missing), duplicates $(field duplicates), not sent $(field not_sent): $(verdict "$once_ok")
  ingest           $rate0 fixes/s without notifications, $rate1 fixes/s with them ($ingest_vehicles vehicles, ${ingest_hours} h each)
  ratio            $ratio with / without (bar >= 0.90): $(verdict "$ratio_ok")
EOF
[ "$p99_ok" = 1 ] && [ "$ratio_ok" = 1 ] && [ "$once_ok" = 1 ]
