#!/usr/bin/env bash
# berth's main job on one machine: build; start a controller on the
# embedded store with one local agent (berth-controller dev); deploy the
# script bundle in examples/hello and the web app in examples/web, which
# runs in a Docker container behind Caddy; show it answering through
# Caddy, and what runs where. Installs what it needs (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/toolchain.sh
. scripts/toolchain.sh
ensure_toolchain
ensure_test_tools

echo "== building berth (release)"
cargo build --locked --release --bins
bin="$PWD/target/release"

work=$(mktemp -d -t berth-demo-XXXXXX)
pids=()
docker_host=""
cleanup() {
    if [ -n "$docker_host" ]; then
        # The demo's containers (the dev agent is called "local").
        ids=$(docker -H "$docker_host" ps -aq --filter label=berth.host=local 2>/dev/null || true)
        [ -z "$ids" ] || docker -H "$docker_host" rm -f $ids >/dev/null 2>&1 || true
    fi
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[$i]}" 2>/dev/null || true
        wait "${pids[$i]}" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
    local seconds=$1 what=$2
    shift 2
    for _ in $(seq 1 $((seconds * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "error: $what did not happen within ${seconds}s" >&2
    return 1
}

echo "== Docker"
if docker version >/dev/null 2>&1; then
    docker_host="unix:///var/run/docker.sock"
    echo "using the running Docker daemon"
else
    dockerd --host "unix://$work/docker.sock" --data-root "$work/docker" --exec-root "$work/docker-exec" \
        --pidfile "$work/docker.pid" >"$work/dockerd.log" 2>&1 &
    pids+=($!)
    docker_host="unix://$work/docker.sock"
    wait_for 60 "the private dockerd starting" docker -H "$docker_host" version
    echo "started a private dockerd on $docker_host"
fi
mkdir -p "$work/rootfs/bin" "$work/rootfs/www"
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in sh httpd ls cat; do ln -s busybox "$work/rootfs/bin/$applet"; done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
docker -H "$docker_host" import "$work/rootfs.tar" berth-demo/busybox:1 >/dev/null
echo "built the image berth-demo/busybox:1 from Debian's static busybox"

echo "== Caddy"
admin_port=20190 http_port=18080
mkdir -p "$work/caddy"
printf '{"admin":{"listen":"127.0.0.1:%s"}}' "$admin_port" >"$work/caddy.json"
HOME="$work/caddy" XDG_CONFIG_HOME="$work/caddy/config" XDG_DATA_HOME="$work/caddy/data" \
    caddy run --config "$work/caddy.json" >"$work/caddy.log" 2>&1 &
pids+=($!)
wait_for 30 "Caddy's admin API answering" curl -sf "http://127.0.0.1:$admin_port/config/"
echo "Caddy's admin API on 127.0.0.1:$admin_port; berth's routes will be served on port $http_port"

echo "== starting a controller and a local agent (berth-controller dev)"
DOCKER_HOST="$docker_host" BERTH_CADDY_ADMIN="http://127.0.0.1:$admin_port" BERTH_PROXY_HTTP_PORT="$http_port" \
    "$bin/berth-controller" dev --listen 127.0.0.1:0 --data-dir "$work/dev" >"$work/dev.out" 2>"$work/dev.log" &
pids+=($!)
wait_for 60 "the local agent connecting" grep -q "connected to the controller" "$work/dev.log" || { cat "$work/dev.log" >&2; exit 1; }
cat "$work/dev.out"
export BERTH_CONFIG="$work/dev/controller/admin.conf"
berth() { "$bin/berth" "$@"; }

echo
echo "== berth agents ls"
berth agents ls
echo
echo "== berth deploy --bundle examples/hello   (setup scripts)"
berth deploy --bundle examples/hello
hello=$(berth ls --app hello --limit 1 -o json | sed -n 's/.*"id": "\([0-9A-Z]*\)".*/\1/p' | head -n1)
echo
echo "== berth logs $hello"
berth logs "$hello"
echo
echo "== berth deploy --bundle examples/web   (a container behind Caddy, health-checked)"
berth deploy --bundle examples/web
echo
echo "== curl -H 'Host: web.localhost' http://127.0.0.1:$http_port/"
answer=$(curl -sf -H 'Host: web.localhost' "http://127.0.0.1:$http_port/")
echo "$answer"
echo
echo "== berth inspect"
berth inspect
echo
echo "== berth status"
berth status
echo
echo "== berth ls"
berth ls
echo
if [ "$answer" = "$(cat examples/web/index.html)" ]; then
    echo "berth works: the script bundle ran, and the web app answers through Caddy from its container."
else
    echo "error: the web app did not answer through Caddy as expected" >&2
    exit 1
fi
