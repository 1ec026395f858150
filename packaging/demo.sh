#!/usr/bin/env bash
# berth's main job on one machine: build; start a controller (init, serve)
# on the embedded store and one local agent (join, run); deploy the script
# bundle in examples/hello and the web app in examples/web, whose image the
# agent builds from the bundle's Dockerfile and runs in a Docker container
# behind Caddy; show it answering through Caddy, and what runs where.
# Installs what it needs (as root).
#
# Every port it uses (the controller's, Caddy's admin API and the HTTP and
# HTTPS ports of berth's routes) is picked free when it starts. It uses the
# Docker daemon at DOCKER_HOST (else /var/run/docker.sock) when one answers
# there, and otherwise starts a private dockerd with its own socket, data
# root, exec root, pid file and bridge, and no iptables rules, so another
# daemon on this machine neither confuses it nor is touched by it.
# On success it stops and removes everything it started; on failure it
# keeps its work folder and prints the end of every log with its path.
#
# usage: packaging/demo.sh [--keep] [--bin-dir DIR]
#   --keep         leave everything running at the end, until Ctrl-C
#   --bin-dir DIR  use berth binaries already built in DIR instead of
#                  building them (cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n 's/^# \{0,1\}//; /^usage:/,/^[^ ]/p' "$0" | sed '$d' >&2; }
keep=0
bin=""
while [ $# -gt 0 ]; do
    case $1 in
    --keep) keep=1 ;;
    --bin-dir)
        [ $# -ge 2 ] || { echo "error: --bin-dir needs a directory" >&2; exit 2; }
        bin=$(cd "$2" && pwd)
        shift
        ;;
    -h | --help) usage; exit 0 ;;
    *) echo "error: unknown argument $1" >&2; usage; exit 2 ;;
    esac
    shift
done

# shellcheck source=scripts/toolchain.sh
. scripts/toolchain.sh
if [ -z "$bin" ]; then
    ensure_toolchain
fi
ensure_test_tools

step="setting up"
work=$(mktemp -d -t berth-demo-XXXXXX)
# A name of this run's own, so the demo only ever removes its own
# containers, even from a Docker daemon others use.
agent_name="demo-$(basename "$work" | sed 's/.*-//' | tr '[:upper:]' '[:lower:]')"
pids=()
docker_host=""
private_dockerd=0
bridge=""
finished=0
admin_port="" http_port="" https_port="" controller_port="" api_port=""

# The end of every log, with its path, so a failure says why.
show_logs() {
    local log
    for log in "$work/controller.log" "$work/agent.log" "$work/caddy.log" "$work/dockerd.log"; do
        [ -f "$log" ] || continue
        printf '\n--- %s (last 40 lines)\n' "$log" >&2
        tail -n 40 "$log" >&2
    done
    if [ -n "$docker_host" ] && [ "$private_dockerd" = 0 ]; then
        printf '\n--- the Docker daemon at %s is not the demo'"'"'s; its log: journalctl -u docker\n' "$docker_host" >&2
    fi
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    [ "$finished" = 1 ] && status=0
    if [ "$status" != 0 ]; then
        echo >&2
        echo "error: the demo failed while $step (exit status $status)" >&2
        show_logs
    fi
    if [ -n "$docker_host" ]; then
        ids=$(docker -H "$docker_host" ps -aq --filter "label=berth.host=$agent_name" 2>/dev/null || true)
        # shellcheck disable=SC2086 # one id per word
        [ -z "$ids" ] || docker -H "$docker_host" rm -f $ids >/dev/null 2>&1 || true
    fi
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[$i]}" 2>/dev/null || true
        wait "${pids[$i]}" 2>/dev/null || true
    done
    if [ -n "$bridge" ]; then
        ip link delete "$bridge" 2>/dev/null || true
    fi
    if [ "$status" = 0 ]; then
        rm -rf "$work"
    else
        echo >&2
        echo "kept the work folder $work (logs, data directories); remove it with: rm -rf $work" >&2
        if [ -f "$work/controller/admin.conf" ]; then
            echo "to read the deployments' records and logs, start the controller again and ask it:" >&2
            echo "  $bin/berth-controller serve --data-dir $work/controller --listen 127.0.0.1:$controller_port &" >&2
            echo "  BERTH_CONFIG=$work/controller/admin.conf $bin/berth ls; ... berth logs ID" >&2
        fi
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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

# free_port VAR: a TCP port nothing listens on (on any address) and
# nothing answers on at 127.0.0.1 (which also catches a port another
# Docker daemon forwards), not handed out before in this run.
taken_ports=" "
free_port() {
    local port
    for _ in $(seq 1 500); do
        port=$((20000 + RANDOM % 12000))
        case $taken_ports in *" $port "*) continue ;; esac
        if [ -n "$(ss -Htln "sport = :$port" 2>/dev/null)" ]; then
            continue
        fi
        if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
            continue
        fi
        taken_ports="$taken_ports$port "
        printf -v "$1" '%s' "$port"
        return 0
    done
    echo "error: found no free TCP port between 20000 and 31999; free some and run again" >&2
    return 1
}

if [ -z "$bin" ]; then
    step="building berth"
    echo "== building berth (release)"
    cargo build --locked --release --bins
    bin="$PWD/target/release"
fi
for program in berth berth-controller berth-agent; do
    [ -x "$bin/$program" ] || { echo "error: $bin/$program is missing; build it with cargo build --release --bins" >&2; exit 1; }
done

step="starting Docker"
echo "== Docker"
candidate="${DOCKER_HOST:-unix:///var/run/docker.sock}"
if docker -H "$candidate" version >/dev/null 2>&1; then
    docker_host="$candidate"
    echo "using the running Docker daemon at $docker_host"
else
    # A bridge of its own in 198.18.0.0/15 (the benchmarking range), on a
    # /24 no interface uses yet.
    bridge="bd-${agent_name#demo-}"
    subnet=""
    for _ in $(seq 1 50); do
        candidate_net="198.19.$((RANDOM % 250 + 1))"
        if ! ip -4 route show | grep -q "^$candidate_net\."; then
            subnet="$candidate_net"
            break
        fi
    done
    [ -n "$subnet" ] || { echo "error: found no free /24 in 198.19.0.0/16 for the private dockerd's bridge" >&2; exit 1; }
    ip link add name "$bridge" type bridge
    ip addr add "$subnet.1/24" dev "$bridge"
    ip link set "$bridge" up
    dockerd --host "unix://$work/docker.sock" --data-root "$work/docker" --exec-root "$work/docker-exec" \
        --pidfile "$work/docker.pid" --bridge "$bridge" --iptables=false --ip-masq=false \
        >"$work/dockerd.log" 2>&1 &
    pids+=($!)
    private_dockerd=1
    docker_host="unix://$work/docker.sock"
    wait_for 60 "the private dockerd answering on $docker_host" docker -H "$docker_host" version
    echo "started a private dockerd on $docker_host (bridge $bridge, $subnet.0/24; log $work/dockerd.log)"
fi
mkdir -p "$work/rootfs/bin" "$work/rootfs/www"
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in sh httpd ls cat; do ln -s busybox "$work/rootfs/bin/$applet"; done
tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
docker -H "$docker_host" import "$work/rootfs.tar" berth-demo/busybox:1 >/dev/null
echo "made the base image berth-demo/busybox:1 from Debian's static busybox"

step="starting Caddy"
echo "== Caddy"
free_port admin_port
free_port http_port
free_port https_port
mkdir -p "$work/caddy"
printf '{"admin":{"listen":"127.0.0.1:%s"}}' "$admin_port" >"$work/caddy.json"
HOME="$work/caddy" XDG_CONFIG_HOME="$work/caddy/config" XDG_DATA_HOME="$work/caddy/data" \
    caddy run --config "$work/caddy.json" >"$work/caddy.log" 2>&1 &
pids+=($!)
wait_for 30 "Caddy's admin API answering on 127.0.0.1:$admin_port" curl -sf "http://127.0.0.1:$admin_port/config/"
echo "Caddy's admin API on 127.0.0.1:$admin_port; berth's routes will be served on ports $http_port (HTTP) and $https_port (HTTPS)"

step="starting the controller"
echo "== a controller (berth-controller init, serve)"
free_port controller_port
free_port api_port
"$bin/berth-controller" init --data-dir "$work/controller" --name 127.0.0.1 --port "$controller_port" \
    >"$work/init.log" 2>&1 || { cat "$work/init.log" >&2; exit 1; }
"$bin/berth-controller" serve --data-dir "$work/controller" --listen "127.0.0.1:$controller_port" \
    --http-listen "127.0.0.1:$api_port" >"$work/controller.log" 2>&1 &
pids+=($!)
export BERTH_CONFIG="$work/controller/admin.conf"
berth() { "$bin/berth" "$@"; }
wait_for 30 "the controller answering on 127.0.0.1:$controller_port" berth whoami
echo "the controller serves on 127.0.0.1:$controller_port, its HTTP API on http://127.0.0.1:$api_port (log $work/controller.log)"

step="starting the agent"
echo "== an agent (berth-agent join, run)"
token=$(berth token create --labels role=web --uses 1 2>/dev/null)
BERTH_JOIN_TOKEN="$token" "$bin/berth-agent" join --controller "https://127.0.0.1:$controller_port" \
    --data-dir "$work/agent" --name "$agent_name" --labels role=web >"$work/join.log" 2>&1 ||
    { cat "$work/join.log" >&2; exit 1; }
"$bin/berth-agent" run --data-dir "$work/agent" --docker-host "$docker_host" \
    --caddy-admin "http://127.0.0.1:$admin_port" --proxy-http-port "$http_port" --proxy-https-port "$https_port" \
    >"$work/agent.log" 2>&1 &
pids+=($!)
wait_for 60 "the agent connecting" grep -q "connected to the controller" "$work/agent.log"
echo "the agent $agent_name is connected (log $work/agent.log)"

echo
echo "== berth agents ls"
berth agents ls
echo
step="deploying examples/hello"
echo "== berth deploy --bundle examples/hello   (setup scripts)"
berth deploy --bundle examples/hello
hello=$(berth ls --app hello --limit 1 -o json | sed -n 's/.*"id": "\([0-9A-Z]*\)".*/\1/p' | head -n1)
echo
echo "== berth logs $hello"
berth logs "$hello"
echo
step="deploying examples/web"
echo "== berth deploy --bundle examples/web   (an image built on the agent, a container behind Caddy, health-checked)"
berth deploy --bundle examples/web
echo
step="asking the web app through Caddy"
echo "== curl -H 'Host: web.localhost' http://127.0.0.1:$http_port/"
code=$(curl -sS --max-time 10 -H 'Host: web.localhost' -o "$work/answer.html" -w '%{http_code}' \
    "http://127.0.0.1:$http_port/" 2>"$work/curl.err") || true
answer=$(cat "$work/answer.html" 2>/dev/null || true)
echo "$answer"
cat "$work/curl.err" >&2
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
if [ "$code" != 200 ] || [ "$answer" != "$(cat examples/web/index.html)" ]; then
    echo "error: the web app did not answer through Caddy as expected: HTTP status $code from http://127.0.0.1:$http_port/ (Host: web.localhost), wanted 200 and the page in examples/web/index.html" >&2
    exit 1
fi
echo "berth works: the script bundle ran, and the web app answers through Caddy from its container."

echo
echo "== where things are"
echo "work folder:  $work"
echo "controller:   https://127.0.0.1:$controller_port, data $work/controller, log $work/controller.log"
echo "credential:   export BERTH_CONFIG=$BERTH_CONFIG"
echo "agent:        $agent_name, data $work/agent, log $work/agent.log"
if [ "$private_dockerd" = 1 ]; then
    echo "docker:       private dockerd at $docker_host (bridge $bridge), log $work/dockerd.log"
else
    echo "docker:       $docker_host (containers labelled berth.host=$agent_name)"
fi
echo "caddy:        admin API http://127.0.0.1:$admin_port, log $work/caddy.log"
echo "web app:      curl -H 'Host: web.localhost' http://127.0.0.1:$http_port/"
setup_link=$(berth users setup-link admin 2>/dev/null || true)
echo "dashboard:    http://127.0.0.1:$api_port/ (sign in as admin: open ${setup_link:-the link \`berth users setup-link admin\` prints} to choose a password)"
finished=1
if [ "$keep" = 1 ]; then
    echo
    echo "everything keeps running; press Ctrl-C to stop it and remove $work"
    while true; do sleep 3600; done
fi
echo
echo "stopping everything and removing $work (packaging/demo.sh --keep leaves it running)"
