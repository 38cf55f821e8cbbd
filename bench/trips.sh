#!/usr/bin/env bash
# The trips benchmark of DESIGN.md §9: fleetd's trip builder (full rebuild; incremental pass after
# 1 % new fixes, warm and after a restart) against a full refresh of a gaps-and-islands
# materialized view over the same positions, on the same PostgreSQL server, in one run, and the
# full rebuild against a bare binary COPY of exactly the fixes it reads (bar: within 1.6×).
# Prints the timings and ratios; exits 1 when a bar is missed.
#
# Knobs (environment): BENCH_VEHICLES (1000), BENCH_FIXES per vehicle (10000), BENCH_REPEAT
# baseline refreshes (2), BENCH_SERVER_URL (default: a private cluster in a temporary directory,
# started from the machine's PostgreSQL server binaries). RUST_LOG=fleet_analytics=debug shows
# each chunk's load / build / write time.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p fleet-bench --bin trips-bench
args=(--vehicles "${BENCH_VEHICLES:-1000}" --fixes "${BENCH_FIXES:-10000}" --repeat "${BENCH_REPEAT:-2}")
if [ -n "${BENCH_SERVER_URL:-}" ]; then args+=(--server-url "$BENCH_SERVER_URL"); fi
exec target/release/trips-bench "${args[@]}"
