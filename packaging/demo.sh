#!/usr/bin/env bash
# berth's main job on one machine: build, start a controller on the embedded
# store with one local agent (berth-controller dev), deploy the example
# bundle in examples/hello, and show it working. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/toolchain.sh
. scripts/toolchain.sh
ensure_toolchain

echo "== building berth (release)"
cargo build --locked --release --bins
bin="$PWD/target/release"

work=$(mktemp -d -t berth-demo-XXXXXX)
dev_pid=""
cleanup() {
    if [ -n "$dev_pid" ] && kill -0 "$dev_pid" 2>/dev/null; then
        kill -TERM "$dev_pid"
        wait "$dev_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "== starting a controller and a local agent (berth-controller dev)"
"$bin/berth-controller" dev --listen 127.0.0.1:0 --data-dir "$work/dev" >"$work/dev.out" 2>"$work/dev.log" &
dev_pid=$!
for _ in $(seq 1 300); do
    grep -q "connected to the controller" "$work/dev.log" 2>/dev/null && break
    kill -0 "$dev_pid" 2>/dev/null || { cat "$work/dev.log" >&2; echo "error: berth-controller dev exited" >&2; exit 1; }
    sleep 0.1
done
grep -q "connected to the controller" "$work/dev.log" || { cat "$work/dev.log" >&2; echo "error: the agent did not connect within 30s" >&2; exit 1; }
cat "$work/dev.out"
export BERTH_CONFIG="$work/dev/controller/admin.conf"
berth() { "$bin/berth" "$@"; }

echo
echo "== berth agents ls"
berth agents ls
echo
echo "== berth deploy --bundle examples/hello"
berth deploy --bundle examples/hello
id=$(berth ls --app hello --limit 1 -o json | sed -n 's/.*"id": "\([0-9A-Z]*\)".*/\1/p' | head -n1)
echo
echo "== berth ls"
berth ls
echo
echo "== berth logs $id"
berth logs "$id"
echo
echo "== berth status"
berth status
echo
echo "berth works: the example deployed on the local agent and its logs are above."
