# Sourced by scripts/test.sh and packaging/demo.sh: makes sure this machine
# can build berth (a C compiler for ring, and Rust 1.95 or newer), installing
# what is missing with apt-get and rustup. Needs root only when it installs.

BERTH_MIN_RUST="1.95"

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "error: $1 is missing and installing it needs root; run as root or install it yourself" >&2
        exit 1
    fi
}

apt_install() {
    need_root "$*"
    echo "installing $* with apt-get" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "$@" >/dev/null
}

version_at_least() {
    # version_at_least HAVE WANT: true when HAVE >= WANT (dotted numbers).
    [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

ensure_toolchain() {
    command -v cc >/dev/null 2>&1 || apt_install build-essential
    command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
    if [ -f "$HOME/.cargo/env" ]; then
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "installing Rust with rustup (minimal profile)" >&2
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component rustfmt,clippy
        # shellcheck disable=SC1091
        . "$HOME/.cargo/env"
    fi
    local have
    have=$(rustc --version | awk '{print $2}')
    if ! version_at_least "$have" "$BERTH_MIN_RUST"; then
        if command -v rustup >/dev/null 2>&1; then
            rustup toolchain install stable --profile minimal --component rustfmt,clippy
            rustup default stable
        else
            echo "error: rustc $have is older than $BERTH_MIN_RUST and rustup is not available to update it" >&2
            exit 1
        fi
    fi
}

# What the end-to-end tests need beyond Rust: Docker and Caddy (the tests
# start private instances themselves), curl and jq, a static busybox for the
# test image, pebble, a test ACME server for automatic HTTPS, ip
# (iproute2) for the hosts built as network namespaces, iptables,
# faketime, and Chromium with chromedriver for the web dashboard's
# real-browser tests.
ensure_test_tools() {
    local wanted=()
    command -v dockerd >/dev/null 2>&1 || wanted+=(docker.io)
    command -v caddy >/dev/null 2>&1 || wanted+=(caddy)
    command -v curl >/dev/null 2>&1 || wanted+=(curl)
    # The HTTP API tests run the README's CI snippet, which uses jq.
    command -v jq >/dev/null 2>&1 || wanted+=(jq)
    command -v pebble >/dev/null 2>&1 || wanted+=(pebble)
    command -v ip >/dev/null 2>&1 || wanted+=(iproute2)
    # Partitions between hosts (iptables DROP), and a skewed clock for one
    # process (libfaketime).
    command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || wanted+=(iptables)
    command -v faketime >/dev/null 2>&1 || wanted+=(faketime)
    # berth-chaos failover: PostgreSQL under Patroni with etcd (its etcd3
    # client needs python3-etcd).
    command -v patroni >/dev/null 2>&1 || wanted+=(patroni)
    command -v etcd >/dev/null 2>&1 || wanted+=(etcd-server)
    /usr/bin/python3 -c "import etcd" 2>/dev/null || wanted+=(python3-etcd)
    # The real-browser tests (tests/src/browser.rs) run these two paths.
    [ -x /usr/bin/chromium ] || wanted+=(chromium)
    [ -x /usr/bin/chromedriver ] || wanted+=(chromium-driver)
    # The packaging tests: a Debian chroot, unit checks, script lints.
    command -v debootstrap >/dev/null 2>&1 || wanted+=(debootstrap)
    command -v systemd-analyze >/dev/null 2>&1 || wanted+=(systemd)
    command -v shellcheck >/dev/null 2>&1 || wanted+=(shellcheck)
    # The booted-machine packaging test: systemd-nspawn, and nsenter.
    command -v systemd-nspawn >/dev/null 2>&1 || wanted+=(systemd-container)
    command -v nsenter >/dev/null 2>&1 || wanted+=(util-linux)
    if ! { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }; then
        wanted+=(busybox-static)
    fi
    if [ ${#wanted[@]} -gt 0 ]; then
        apt_install "${wanted[@]}"
    fi
}

# The fuzzer of the HTTP API (tests/tests/http_fuzz.rs) from PyPI, pinned,
# in a virtualenv of its own under target/ (where the test looks for it);
# quick when that version is there already. Run from the workspace root.
BERTH_SCHEMATHESIS_VERSION="4.32.5"

ensure_schemathesis() {
    local venv=target/venv-schemathesis
    if "$venv/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $BERTH_SCHEMATHESIS_VERSION"; then
        return
    fi
    local wanted=()
    command -v python3 >/dev/null 2>&1 || wanted+=(python3)
    python3 -c 'import ensurepip' >/dev/null 2>&1 || wanted+=(python3-venv)
    if [ ${#wanted[@]} -gt 0 ]; then
        apt_install "${wanted[@]}"
    fi
    echo "installing schemathesis $BERTH_SCHEMATHESIS_VERSION into $venv" >&2
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$BERTH_SCHEMATHESIS_VERSION"
}

# axe-core, the accessibility checker the real-browser tests inject into
# each dashboard page (tests/src/browser/a11y.rs), from the npm registry,
# pinned, under target/axe (where the tests look for it); quick when that
# version is there already. Only the tests use it: berth builds without it.
# Run from the workspace root.
BERTH_AXE_VERSION="4.14.1"

ensure_axe() {
    local prefix=target/axe
    local package=$prefix/node_modules/axe-core/package.json
    if [ -f "$package" ] && grep -q "\"version\": \"$BERTH_AXE_VERSION\"" "$package"; then
        return
    fi
    command -v npm >/dev/null 2>&1 || apt_install npm
    echo "installing axe-core $BERTH_AXE_VERSION into $prefix" >&2
    rm -rf "$prefix"
    mkdir -p "$prefix"
    npm install --silent --no-save --no-audit --no-fund --ignore-scripts \
        --prefix "$prefix" "axe-core@$BERTH_AXE_VERSION"
}
