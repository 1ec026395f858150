#!/usr/bin/env bash
# The whole test suite: formatting, lints, the ring-only TLS check, unit
# tests and the end-to-end tests that run the real binaries. Installs what
# it needs on a fresh Debian machine. CI runs exactly this (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/toolchain.sh
. scripts/toolchain.sh
ensure_toolchain
ensure_test_tools
ensure_schemathesis
ensure_axe
# shellcheck source=scripts/test-postgres.sh
. scripts/test-postgres.sh
ensure_postgres

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all -- --check

step "lints"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "TLS uses ring only"
if cargo tree --locked --workspace -i aws-lc-rs >/dev/null 2>&1; then
    echo "error: aws-lc-rs is in the dependency graph; berth must build rustls with ring only" >&2
    cargo tree --locked --workspace -i aws-lc-rs >&2
    exit 1
fi
echo "ok: aws-lc-rs is not compiled in"

step "build the binaries the end-to-end tests run"
cargo build --locked --workspace --bins

step "a private PostgreSQL for the store tests"
start_test_postgres
trap stop_test_postgres EXIT

step "tests"
# Tests that need Docker, Caddy or network namespaces skip with a reason
# unless BERTH_REQUIRE_ALL=1, under which a skip fails (CI sets it).
export BERTH_REQUIRE_ALL="${BERTH_REQUIRE_ALL:-${CI:+1}}"
rm -f target/berth-skipped.log
cargo test --locked --workspace 2>&1 | tee target/test-output.log

step "the end-to-end tests again, every controller's store in PostgreSQL"
# Every scenario in tests/tests/*.rs; the packaging tests (tests/tests/
# packaging/) install the .deb, whose controller keeps the default store.
e2e=()
for file in tests/tests/*.rs; do
    name=$(basename "$file" .rs)
    [ "$name" = tidy ] || e2e+=(--test "$name")
done
BERTH_TEST_STORE=postgres cargo test --locked --no-fail-fast -p berth-tests "${e2e[@]}" 2>&1 |
    tee -a target/test-output.log
if [ -s target/berth-skipped.log ]; then
    echo "skipped tests:" >&2
    cat target/berth-skipped.log >&2
    if [ "${BERTH_REQUIRE_ALL:-}" = 1 ]; then
        echo "error: tests were skipped under BERTH_REQUIRE_ALL=1" >&2
        exit 1
    fi
fi
passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' target/test-output.log | awk '{s+=$4} END {print s+0}')
echo
echo "$passed passed, 0 failed"
