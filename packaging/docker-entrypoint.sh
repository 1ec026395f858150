#!/bin/sh
# The controller image's entrypoint.
#   (no arguments) or serve flags: `init` on the first start (an empty data
#                  volume), then `serve`, with any arguments passed to serve
#   init|serve|dev ...: that berth-controller subcommand, as given
#   healthcheck:   the image's HEALTHCHECK
# BERTH_CONTROLLER_NAME (default: the container's hostname) and
# BERTH_CONTROLLER_SANS (space-separated extra names/addresses) go to init;
# BERTH_PORT (7443) and BERTH_LISTEN_HOST (0.0.0.0) make serve's --listen.
set -eu

data=${BERTH_DATA_DIR:-/var/lib/berth-controller}
port=${BERTH_PORT:-7443}
host=${BERTH_LISTEN_HOST:-0.0.0.0}

healthcheck() {
    # With the admin credential in the volume: a full mTLS call through the
    # store, unhealthy while the store cannot be written (a full disk).
    # Without it (moved out for safety): the listener accepts TCP.
    if [ -r "$data/admin.conf" ]; then
        exec berth --config "$data/admin.conf" --controller "https://127.0.0.1:$port" health >/dev/null
    fi
    exec bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
}

first_start() {
    [ ! -e "$data/pki/ca.pem" ] || return 0
    if [ -n "$(ls -A "$data" 2>/dev/null)" ]; then
        echo "berth-entrypoint: $data is not empty but holds no CA (pki/ca.pem); refusing to initialize over it" >&2
        exit 1
    fi
    name=${BERTH_CONTROLLER_NAME:-$(cat /etc/hostname)}
    set -- init --data-dir "$data" --name "$name" --port "$port"
    for san in ${BERTH_CONTROLLER_SANS:-}; do
        set -- "$@" --san "$san"
    done
    echo "berth-entrypoint: first start: berth-controller $*" >&2
    berth-controller "$@"
    echo "berth-entrypoint: the admin credential is $data/admin.conf (docker exec CONTAINER cat $data/admin.conf)" >&2
}

case "${1:-}" in
    healthcheck) healthcheck ;;
    init | serve | dev | help | --help | -h | --version | -V) exec berth-controller "$@" ;;
esac
first_start
exec berth-controller serve --data-dir "$data" --listen "$host:$port" "$@"
