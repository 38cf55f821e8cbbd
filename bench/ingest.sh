#!/usr/bin/env bash
# The ingest benchmark of DESIGN.md §9: push -> durable rows in fleetd against the plain
# PostgreSQL baseline (psql \copy into a staging table plus INSERT ... ON CONFLICT DO NOTHING)
# on the same rows, the same server and the same machine, in one run. Also samples fleetd's
# resident memory while it ingests. fleetd runs as configured by default: the trip builder and
# the KPI step work through what it stores while it is measured. Prints a summary per run and
# exits 1 when a bar is missed in any run.
#
# Knobs (environment): BENCH_VEHICLES (4000), BENCH_HOURS (6), BENCH_SEED (1),
# BENCH_CONCURRENCY (128), BENCH_END (unix seconds; default the latest 09:00 UTC), BENCH_RUNS (1:
# runs of baseline + fleetd, each on a fresh cluster), BENCH_RATIO_BAR (0.7). fleetd's own
# settings (FLEETD_WRITER_MAX_ROWS, FLEETD_WRITER_MAX_AGE_MS, FLEETD_DB_MAX_CONNECTIONS, ...)
# pass through to it, so the script also serves to try them.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

vehicles=${BENCH_VEHICLES:-4000}
hours=${BENCH_HOURS:-6}
seed=${BENCH_SEED:-1}
concurrency=${BENCH_CONCURRENCY:-128}
# one window for both sides, fixed before anything runs (push-load's default would move if the
# run crossed 09:00 UTC)
now=$(date -u +%s)
end=$((now / 86400 * 86400 + 9 * 3600))
if [ "$end" -gt "$now" ]; then end=$((end - 86400)); fi
end=${BENCH_END:-$end}

say() { printf '[bench] %s\n' "$*" >&2; }

runs=${BENCH_RUNS:-1}
ratio_bar=${BENCH_RATIO_BAR:-0.7}
# every pushing connection comes from this one address, so each may have its body on the way
export FLEETD_HTTP_UPLOADS_PER_ADDRESS=${FLEETD_HTTP_UPLOADS_PER_ADDRESS:-$concurrency}

say "building release binaries"
cargo build --release --quiet -p fleetd -p fleet-bench
push_load="$repo/target/release/push-load"

source "$repo/bench/lib/serve.sh"

# CPU accounting, to tell where a run's time went: seconds of a process, of the cluster (the
# postmaster, its live children and the children it reaped), and of the whole machine
ticks=$(getconf CLK_TCK)
cpu_of() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
pg_cpu() {
    local pm
    pm=$(head -n 1 "$pgroot/pgdata/postmaster.pid")
    {
        awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pm/stat"
        for c in $(cat /proc/"$pm"/task/*/children); do cpu_of "$c" 2>/dev/null || true; done
    } | awk '{ s += $1 } END { print s }'
}
machine_cpu() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
seconds() { awk -v a="$1" -v b="$2" -v t="$ticks" 'BEGIN { printf "%.1f", (b - a) / t }'; }
busy() { awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.0f", 100 * (y[1] - x[1]) / (y[2] - x[2]) }'; }


csv="$work/fixes.csv"
say "generating the fixes as CSV"
"$push_load" --csv "$csv" --vehicles "$vehicles" --hours "$hours" --seed "$seed" --end "$end" \
    >"$work/csv.out"
fixes=$(sed -n 's/.*fixes=\([0-9]*\).*/\1/p' "$work/csv.out")

# One run: fleetd on a fresh cluster, the baseline on the same server, then fleetd's turn; the
# cluster is removed afterwards so every run starts from nothing.
measure_once() {
    start_fleetd
    # --- baseline: a fresh database with fleetd's schema, partitions and indexes ----------------
    q -d postgres -c "create database fleetd_baseline"
    # (the URL goes through the environment, which --database-url would put in the process list)
    (cd "$work" && DATABASE_URL="postgres://fleetd:$PGPASSWORD@127.0.0.1:$PGPORT/fleetd_baseline" \
        FLEETD_LOG=warn "$fleetd" migrate >/dev/null)
    q -d fleetd_baseline -c checkpoint
    # what else the machine is doing: nothing of this run is working during this second
    m0=$(machine_cpu); sleep 1; m1=$(machine_cpu)
    idle_busy=$(busy "$m0" "$m1")
    if [ "$idle_busy" -gt 10 ]; then
        say "warning: the machine is $idle_busy% busy before the measurements; other work skews them"
    fi
    say "baseline: psql \\copy + insert ... on conflict do nothing of $fixes rows"
    pg0=$(pg_cpu); m0=$(machine_cpu)
    t0=$(date +%s.%N)
    # devices are registered from the rows in the same transaction, as fleetd's writer registers an
    # unknown IMEI on first sight (name = IMEI); neither side starts with devices
    q -d fleetd_baseline <<SQL
    begin;
    create temp table stage (
        imei text, gps_time timestamptz, lat float8, lon float8, speed_kmh real, course_deg real,
        altitude_m real, ignition bool, satellites int2, fix_kind text, battery_pct real,
        external_v real, odometer_m float8, source text, extra jsonb
    ) on commit drop;
    \copy stage from '$csv' with (format csv, header)
    insert into fleet.devices (imei, name)
        select distinct imei, imei from stage on conflict (imei) do nothing;
    insert into fleet.positions (device_id, gps_time, lat, lon, speed_kmh, course_deg, altitude_m,
            ignition, satellites, fix_kind, battery_pct, external_v, odometer_m, source, extra)
        select d.device_id, s.gps_time, s.lat, s.lon, s.speed_kmh, s.course_deg, s.altitude_m,
            s.ignition, s.satellites, s.fix_kind, s.battery_pct, s.external_v, s.odometer_m,
            s.source, s.extra
        from stage s join fleet.devices d using (imei)
        on conflict do nothing;
    commit;
SQL
    t1=$(date +%s.%N)
    m1=$(machine_cpu)
    # psql's backend exits after psql does; its time counts once the postmaster has reaped it
    sleep 1
    pg1=$(pg_cpu)
    baseline_pg_s=$(seconds "$pg0" "$pg1")
    baseline_busy=$(busy "$m0" "$m1")
    baseline_rows=$(q -d fleetd_baseline -At -c "select count(*) from fleet.positions")
    # gone before fleetd's turn, so autovacuum does not work through these rows meanwhile
    q -d postgres -c "drop database fleetd_baseline"
    baseline_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    baseline_rate=$(awk -v n="$baseline_rows" -v s="$baseline_s" 'BEGIN { printf "%.0f", n / s }')
    say "baseline: $baseline_rows rows in $baseline_s s = $baseline_rate rows/s"

    # --- fleetd: the same fixes pushed by a separate process -------------------------------------
    q -d fleetd -c checkpoint
    rss_file="$work/rss.max"
    echo 0 >"$rss_file"
    (
        # VmRSS every 0.5 s; the highest seen is kept in the file
        max=0
        while kill -0 "$fleetd_pid" 2>/dev/null; do
            rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$fleetd_pid/status" 2>/dev/null || echo 0)
            if [ "${rss:-0}" -gt "$max" ]; then max=$rss; echo "$max" >"$rss_file"; fi
            sleep 0.5
        done
    ) &
    sampler_pid=$!
    say "push-load: $fixes fixes, batches of 50, $concurrency connections"
    "$push_load" --url "http://$addr/push" --token "$token" --vehicles "$vehicles" --hours "$hours" \
        --seed "$seed" --end "$end" --concurrency "$concurrency" >"$work/load.out" 2>"$work/load.err" &
    load_pid=$!
    # the CPU counters start when push-load has generated its requests and starts sending
    until grep -q '^push-load: sending' "$work/load.err"; do
        kill -0 "$load_pid" 2>/dev/null || break
        sleep 0.05
    done
    cpu0=$(cpu_of "$fleetd_pid"); pg0=$(pg_cpu); m0=$(machine_cpu)
    if ! wait "$load_pid"; then
        cat "$work/load.err" >&2
        exit 1
    fi
    cpu1=$(cpu_of "$fleetd_pid"); pg1=$(pg_cpu); m1=$(machine_cpu)
    cat "$work/load.err" "$work/load.out" >&2
    sleep 0.6 # one more sample after the last acknowledgement
    kill "$sampler_pid" 2>/dev/null || true
    wait "$sampler_pid" 2>/dev/null || true
    sampler_pid=""
    field() { sed -n "s/.*\b$1=\([0-9.]*\).*/\1/p" "$work/load.out"; }
    acked=$(field items)
    fleetd_s=$(field seconds)
    retries=$(field retries)
    fleetd_rate=$(field items_per_s)
    fleetd_rows=$(q -d fleetd -At -c "select count(*) from fleet.positions")
    hwm_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$fleetd_pid/status")
    rss_kb=$(cat "$rss_file")
    cpu_s=$(seconds "$cpu0" "$cpu1")
    fleetd_pg_s=$(seconds "$pg0" "$pg1")
    fleetd_busy=$(busy "$m0" "$m1")
    stop_fleetd

    ratio=$(awk -v f="$fleetd_rate" -v b="$baseline_rate" 'BEGIN { printf "%.3f", f / b }')
    hwm_mb=$(awk -v k="$hwm_kb" 'BEGIN { printf "%.1f", k / 1024 }')
    rss_mb=$(awk -v k="$rss_kb" 'BEGIN { printf "%.1f", k / 1024 }')
    verdict() { if [ "$1" = 1 ]; then echo PASS; else echo FAIL; fi; }
    ratio_ok=$(awk -v r="$ratio" -v bar="$ratio_bar" 'BEGIN { print (r >= bar) ? 1 : 0 }')
    rss_ok=$(awk -v k="$hwm_kb" 'BEGIN { print (k < 200 * 1024) ? 1 : 0 }')
    rows_ok=0
    if [ "$fleetd_rows" = "$fixes" ] && [ "$baseline_rows" = "$fixes" ] && [ "$acked" = "$fixes" ]; then
        rows_ok=1
    fi
    if [ "$rows_ok" != 1 ]; then
        say "row counts differ; the end of fleetd's log:"
        tail -n 20 "$work/fleetd.log" >&2
    fi

    cat <<EOF

fleetd ingest benchmark, run $run of $runs  $(date -u +%Y-%m-%dT%H:%MZ)  $(nproc) cores, $(awk '/^MemTotal:/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo) GB
  background       machine $idle_busy% busy in the second before the measurements
  fixes            $fixes GPS fixes ($vehicles vehicles, ${hours} h to $(date -u -d "@$end" +%Y-%m-%dT%H:%MZ), seed $seed)
  baseline         $baseline_rows rows in $baseline_s s = $baseline_rate rows/s  (psql \\copy + insert ... on conflict do nothing)
                   CPU: PostgreSQL $baseline_pg_s s; machine $baseline_busy% busy
  fleetd           $fleetd_rows rows in $fleetd_s s = $fleetd_rate rows/s  (push, batches of 50, $concurrency connections, $retries retries)
                   CPU: fleetd $cpu_s s, PostgreSQL $fleetd_pg_s s; machine $fleetd_busy% busy (push-load is the rest)
  ratio            $ratio fleetd / baseline (bar >= $ratio_bar): $(verdict "$ratio_ok")
  fleetd peak RSS  $hwm_mb MB VmHWM, $rss_mb MB highest VmRSS sample (bar < 200 MB): $(verdict "$rss_ok")
  rows             generated $fixes, acknowledged $acked, fleetd $fleetd_rows, baseline $baseline_rows: $(verdict "$rows_ok")
EOF
    results+=("run $run: ratio $ratio $(verdict "$ratio_ok"), peak RSS $hwm_mb MB $(verdict "$rss_ok"), rows $(verdict "$rows_ok")")
    if [ "$ratio_ok" != 1 ] || [ "$rss_ok" != 1 ] || [ "$rows_ok" != 1 ]; then failed=1; fi
    rm -rf "$data"
}

results=()
failed=0
for run in $(seq 1 "$runs"); do
    say "run $run of $runs"
    measure_once
done
echo
echo "fleetd ingest benchmark: $runs run(s), ratio bar >= $ratio_bar, RSS bar < 200 MB"
for r in "${results[@]}"; do echo "  $r"; done
if [ "$failed" = 0 ]; then echo "  overall: PASS"; else echo "  overall: FAIL"; fi
[ "$failed" = 0 ]
