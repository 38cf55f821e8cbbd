# Shared by the benchmarks that drive a running `fleetd serve`: starts it on a fresh embedded
# cluster in a work directory, waits until it is ready, and stops it (and its cluster) again.
# Source it after setting `repo` and `say`; it defines `work`, `data`, `fleetd`, `token`,
# `addr`, `fleetd_pid`, `start_fleetd`, `stop_fleetd`, `cleanup` (also the EXIT trap, chained
# to `extra_cleanup` when a script defines one), `psql_bin`, `pgroot` and `q` (psql as the
# cluster's superuser, PGHOST/PGPORT/PGUSER/PGPASSWORD exported).

psql_bin=$(command -v psql || true)
if [ -z "$psql_bin" ]; then
    psql_bin=$(ls -1d /usr/lib/postgresql/*/bin/psql 2>/dev/null | sort -V | tail -n 1 || true)
fi
[ -x "$psql_bin" ] || { echo "psql not found: install the PostgreSQL client" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl not found" >&2; exit 2; }

fleetd="$repo/target/release/fleetd"
work=$(mktemp -d -t fleetd-bench.XXXXXX)
# as root the cluster runs as postgres, which must be able to enter the data directory
chmod 755 "$work"
data="$work/data"
fleetd_pid=""
sampler_pid=""
token="bench-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

stop_fleetd() {
    [ -n "$fleetd_pid" ] || return 0
    if kill -0 "$fleetd_pid" 2>/dev/null; then
        kill -TERM "$fleetd_pid"
        for _ in $(seq 1 300); do
            kill -0 "$fleetd_pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    wait "$fleetd_pid" 2>/dev/null || true
    fleetd_pid=""
    # fleetd stops its cluster on SIGTERM; if it could not, stop that postmaster (fast shutdown)
    local pidfile="$data/postgres/pgdata/postmaster.pid"
    if [ -f "$pidfile" ]; then
        local pm
        pm=$(head -n 1 "$pidfile")
        if [ -n "$pm" ] && kill -0 "$pm" 2>/dev/null; then
            kill -INT "$pm" || true
            for _ in $(seq 1 100); do
                kill -0 "$pm" 2>/dev/null || break
                sleep 0.1
            done
        fi
    fi
}

cleanup() {
    if declare -F extra_cleanup >/dev/null; then extra_cleanup; fi
    if [ -n "$sampler_pid" ]; then kill "$sampler_pid" 2>/dev/null || true; fi
    stop_fleetd
    rm -rf "$work"
}
trap cleanup EXIT

# fleetd runs from the work directory so no .env of the checkout applies, on its embedded
# cluster (no DATABASE_URL) and without pollers (no Tracksolid credentials); settings of the
# caller's environment (FLEETD_WRITER_*, ...) pass through
start_fleetd() {
    say "starting fleetd serve on a fresh embedded cluster in $data"
    (
        cd "$work"
        exec env -u DATABASE_URL -u FLEETD_TRACKSOLID_URL -u FLEETD_TRACKSOLID_APP_KEY \
            -u FLEETD_TRACKSOLID_APP_SECRET -u FLEETD_TRACKSOLID_USER -u FLEETD_TRACKSOLID_PASSWORD \
            FLEETD_DATA_DIR="$data" FLEETD_PUSH_TOKEN="$token" FLEETD_LOG="${FLEETD_LOG:-warn}" \
            "$fleetd" serve --data-dir "$data" --listen 127.0.0.1:0
    ) >"$work/fleetd.out" 2>"$work/fleetd.log" &
    fleetd_pid=$!

    addr=""
    for _ in $(seq 1 1200); do
        addr=$(sed -n 's|^fleetd listening on http://||p' "$work/fleetd.out" | head -n 1)
        [ -n "$addr" ] && break
        kill -0 "$fleetd_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$addr" ]; then
        echo "fleetd did not start; its log:" >&2
        cat "$work/fleetd.log" >&2
        exit 1
    fi
    for attempt in $(seq 1 600); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/readyz")" = 200 ] && break
        if ! kill -0 "$fleetd_pid" 2>/dev/null || [ "$attempt" = 600 ]; then
            echo "fleetd did not become ready; its log:" >&2
            cat "$work/fleetd.log" >&2
            exit 1
        fi
        sleep 0.2
    done
    say "fleetd ready at http://$addr (pid $fleetd_pid)"

    # the same server, as its superuser
    pgroot="$data/postgres"
    [ -f "$pgroot/port" ] || { echo "no $pgroot/port: the cluster lives elsewhere" >&2; exit 1; }
    export PGHOST=127.0.0.1 PGPORT PGUSER=fleetd PGPASSWORD
    PGPORT=$(cat "$pgroot/port")
    PGPASSWORD=$(cat "$pgroot/superuser.password")
}

q() { "$psql_bin" -X -q -v ON_ERROR_STOP=1 "$@"; }
