# shellcheck shell=bash
# A private PostgreSQL server for the test suite (sourced by
# scripts/test.sh): Debian's postgresql, its own data directory under
# target/, a free port on 127.0.0.1, trust authentication on loopback
# only. The engine tests (controller/src/store/kv/tests.rs) use it, and the
# end-to-end suite runs a second time with every controller's store there.
# Its log stays in target/postgres/server.log.

ensure_postgres() {
    if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
        apt_install postgresql postgresql-client
    fi
    command -v psql >/dev/null 2>&1 || apt_install postgresql-client
}

# start_test_postgres: starts the server and exports BERTH_TEST_POSTGRES.
start_test_postgres() {
    local bin dir port
    bin=$(dirname "$(compgen -G '/usr/lib/postgresql/*/bin/initdb' | sort -V | tail -n1)")
    dir="$PWD/target/postgres"
    stop_test_postgres
    rm -rf "$dir"
    mkdir -p "$dir"
    # PostgreSQL refuses to run as root: its own user runs it.
    local user=postgres
    if [ "$(id -u)" != 0 ]; then user=$(id -un); fi
    chown "$user" "$dir"
    if ! runuser -u "$user" -- test -w "$dir" 2>/dev/null && [ "$user" != "$(id -un)" ]; then
        # A parent of the checkout is closed to that user.
        dir=$(mktemp -d /tmp/berth-test-postgres.XXXXXX)
        chown "$user" "$dir"
    fi
    run_as() { if [ "$user" = "$(id -un)" ]; then "$@"; else runuser -u "$user" -- "$@"; fi; }
    run_as "$bin/initdb" -D "$dir/data" -A trust -U postgres --no-sync >"$dir/initdb.log" 2>&1 || {
        echo "error: initdb failed; see $dir/initdb.log" >&2
        return 1
    }
    free_port port
    run_as "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=1000 -c fsync=on -c synchronous_commit=on" \
        start >/dev/null || {
        echo "error: PostgreSQL did not start; see $dir/server.log" >&2
        return 1
    }
    TEST_POSTGRES_CTL="$bin/pg_ctl"
    TEST_POSTGRES_DIR="$dir"
    TEST_POSTGRES_USER="$user"
    # Through its Unix socket: controllers inside the tests' network
    # namespaces share the file system, not the host's loopback.
    export BERTH_TEST_POSTGRES="postgres://postgres@${dir//\//%2F}:$port/postgres?sslmode=disable"
    echo "PostgreSQL for the tests on 127.0.0.1:$port and $dir/.s.PGSQL.$port (log: $dir/server.log)"
}

stop_test_postgres() {
    if [ -n "${TEST_POSTGRES_DIR:-}" ] && [ -f "$TEST_POSTGRES_DIR/data/postmaster.pid" ]; then
        if [ "$TEST_POSTGRES_USER" = "$(id -un)" ]; then
            "$TEST_POSTGRES_CTL" -D "$TEST_POSTGRES_DIR/data" -m fast stop >/dev/null 2>&1 || true
        else
            runuser -u "$TEST_POSTGRES_USER" -- "$TEST_POSTGRES_CTL" -D "$TEST_POSTGRES_DIR/data" -m fast stop >/dev/null 2>&1 || true
        fi
    fi
}

# free_port VAR: a TCP port on 127.0.0.1 nothing listens on.
free_port() {
    local candidate
    for _ in $(seq 1 500); do
        candidate=$((20000 + RANDOM % 12000))
        if [ -n "$(ss -Htln "sport = :$candidate" 2>/dev/null)" ]; then
            continue
        fi
        if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$candidate" 2>/dev/null; then
            continue
        fi
        printf -v "$1" '%s' "$candidate"
        return 0
    done
    echo "error: found no free TCP port between 20000 and 31999" >&2
    return 1
}
