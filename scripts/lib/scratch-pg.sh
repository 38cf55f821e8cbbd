# Sourced by scripts that need a throwaway PostgreSQL cluster (scripts/sqlx-prepare,
# scripts/schema-dump). `scratch_pg_start NAME` initialises and starts one in a temp directory,
# listening only on a Unix socket there, and stops and removes it when the script exits. It
# sets SCRATCH_PG_BIN (the server's bin directory), SCRATCH_PG_AS_OWNER (the prefix that runs a
# command as the cluster's owner) and SCRATCH_PG_URL (the database NAME on it, not yet created).

scratch_pg_start() {
    local name=$1
    bash "$(dirname "${BASH_SOURCE[0]}")/../ensure-postgres-binaries"
    SCRATCH_PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -n "$SCRATCH_PG_BIN" ] || SCRATCH_PG_BIN=$(dirname "$(command -v initdb)")
    _scratch_pg_dir=$(mktemp -d "${TMPDIR:-/tmp}/fleetd-$name.XXXXXX")
    SCRATCH_PG_AS_OWNER=()
    if [ "$(id -u)" -eq 0 ]; then
        # PostgreSQL refuses to run as root
        chown postgres "$_scratch_pg_dir"
        SCRATCH_PG_AS_OWNER=(runuser -u postgres --)
    fi
    trap _scratch_pg_stop EXIT
    "${SCRATCH_PG_AS_OWNER[@]}" "$SCRATCH_PG_BIN/initdb" -D "$_scratch_pg_dir/data" -U postgres \
        --auth=trust -E UTF8 >/dev/null
    "${SCRATCH_PG_AS_OWNER[@]}" "$SCRATCH_PG_BIN/pg_ctl" -D "$_scratch_pg_dir/data" -w \
        -l "$_scratch_pg_dir/log" -o "-c listen_addresses= -k $_scratch_pg_dir -c fsync=off" \
        start >/dev/null
    SCRATCH_PG_URL="postgres://postgres@localhost/$name?host=$_scratch_pg_dir"
}

_scratch_pg_stop() {
    "${SCRATCH_PG_AS_OWNER[@]}" "$SCRATCH_PG_BIN/pg_ctl" -D "$_scratch_pg_dir/data" \
        -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$_scratch_pg_dir"
}
