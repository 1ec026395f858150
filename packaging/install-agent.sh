#!/bin/sh
# install-agent.sh: install berth-agent on this server, join it to a berth
# controller, and start it. Run as root:
#
#   BERTH_JOIN_TOKEN=bt1.... sh install-agent.sh \
#       --controller https://ctl.example.com:7443 --deb berth-agent_VERSION_ARCH.deb
#
# The agent comes from --deb FILE (a berth-agent package), --binary FILE (a
# berth-agent executable, installed as PREFIX/bin/berth-agent) or --url URL
# (either, downloaded with curl; give --sha256 to check it). Without any of
# them an installed berth-agent is used.
#
# Every input is checked before anything on the system changes, and the join
# (which asks the controller) comes before anything is installed: a bad
# token, address or file changes nothing. Running it again changes nothing:
# an agent that has joined is reported as "already joined as NAME".
#
# Options:
#   --controller URL   the controller, https://HOST[:PORT] (port 7443 by default)
#   --token TOKEN      the join token (better: BERTH_JOIN_TOKEN, which stays
#                      out of the process list)
#   --name NAME        the agent's name (default: this host's name)
#   --labels k=v,...   labels for the agent (on top of the token's)
#   --deb FILE | --binary FILE | --url URL
#   --sha256 HEX       the SHA-256 the --deb, --binary or --url file must have
#   --with-docker      install Docker (Debian's docker.io) if it is missing
#   --with-caddy       install Caddy (Debian's caddy) if it is missing, run it
#                      with its admin API on 127.0.0.1:2019 (caddy-api.service)
#                      and set net.ipv4.tcp_migrate_req = 1
#   --no-start         install, join and enable, but do not start
#   --prefix DIR       where --binary/--url installs bin/berth-agent (/usr/local)
#   --data-dir DIR     the agent's data directory (/var/lib/berth-agent)
#   --config-dir DIR   where agent.env goes (/etc/berth)
#   --unit-dir DIR     where the systemd unit goes (/etc/systemd/system)
#   --user USER        the user the agent runs as (berth-agent; created if missing)
#   --print-unit       print the systemd unit it would write, and exit
#   --print-config     print the agent.env it would write, and exit
#   -h, --help         this text
set -eu

prog=install-agent.sh
default_data_dir=/var/lib/berth-agent
nl='
'

controller=""
token=${BERTH_JOIN_TOKEN:-}
token_from_argv=0
name=""
labels=""
deb=""
binary=""
url=""
sha256=""
with_docker=0
with_caddy=0
no_start=0
prefix=/usr/local
data_dir=$default_data_dir
config_dir=/etc/berth
unit_dir=/etc/systemd/system
user=berth-agent
print=""
# Set once we know where the binary goes (--deb: /usr/bin).
packaged=0

say() { printf '%s\n' "$*"; }
warn() { printf '%s: warning: %s\n' "$prog" "$*" >&2; }

# fail WHAT FIX: the error, and how to fix it; exits 1.
fail() {
    printf '%s: error: %s\n' "$prog" "$1" >&2
    if [ -n "${2:-}" ]; then
        printf '  fix: %s\n' "$2" >&2
    fi
    exit 1
}

usage_error() {
    printf '%s: %s (see --help)\n' "$prog" "$1" >&2
    exit 2
}

usage() {
    # The comment at the top of this file (not readable under `curl | sh`).
    if [ -r "$0" ] && grep -q '^# install-agent.sh:' "$0"; then
        sed -n '2,/^set -eu$/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
    else
        say "usage: sh $prog --controller URL [--deb FILE | --binary FILE | --url URL] [--name NAME] [--labels k=v,...]; see the top of install-agent.sh"
    fi
}

# matches VALUE REGEX: VALUE is one line matching the extended REGEX whole.
matches() {
    case "$1" in *"$nl"*) return 1 ;; esac
    printf '%s\n' "$1" | grep -Eqx -- "$2"
}

parse_args() {
    while [ $# -gt 0 ]; do
        arg=$1
        shift
        has_value=0
        case "$arg" in
            --*=*) value=${arg#*=}; arg=${arg%%=*}; has_value=1 ;;
        esac
        case "$arg" in
            --controller | --token | --name | --labels | --deb | --binary | --url | --sha256 | \
                --prefix | --data-dir | --config-dir | --unit-dir | --user)
                if [ "$has_value" = 0 ]; then
                    [ $# -gt 0 ] || usage_error "$arg needs a value"
                    value=$1
                    shift
                fi
                ;;
            *) [ "$has_value" = 0 ] || usage_error "$arg takes no value" ;;
        esac
        case "$arg" in
            --controller) controller=$value ;;
            --token) token=$value; token_from_argv=1 ;;
            --name) name=$value ;;
            --labels) labels=$value ;;
            --deb) deb=$value ;;
            --binary) binary=$value ;;
            --url) url=$value ;;
            --sha256) sha256=$value ;;
            --prefix) prefix=$value ;;
            --data-dir) data_dir=$value ;;
            --config-dir) config_dir=$value ;;
            --unit-dir) unit_dir=$value ;;
            --user) user=$value ;;
            --with-docker) with_docker=1 ;;
            --with-caddy) with_caddy=1 ;;
            --no-start) no_start=1 ;;
            --print-unit) print=unit ;;
            --print-config) print=config ;;
            -h | --help) usage; exit 0 ;;
            *) usage_error "unknown option $arg" ;;
        esac
    done
}

# --- what gets written ------------------------------------------------------

# The unit, as packaging/systemd/berth-agent.service ships it (a test checks
# they agree); render_unit puts this install's paths in.
unit_template() {
    cat <<'EOF'
# berth-agent: dials out to the berth controller over mTLS and runs the
# deployment stages it is assigned (setup scripts, Docker containers,
# Caddy routes, health checks).
#
# Join first (install-agent.sh does it), then start:
#   berth-agent join --controller https://HOST:7443 --data-dir /var/lib/berth-agent
#   systemctl start berth-agent
# Options: /etc/berth/agent.env. Local changes: `systemctl edit berth-agent`
# (examples in /usr/share/doc/berth-agent/examples/).
#
# Setup and stop scripts run as the berth-agent user inside this sandbox:
# they may write only /var/lib/berth-agent (their work directory is below
# it) and a private /tmp, and cannot gain privileges (no sudo). Docker is
# reached through the docker group (root-equivalent: anyone who can use
# Docker's socket can become root). Long-running processes belong in
# containers or units of their own: whatever a script leaves running is
# stopped with the agent.
[Unit]
Description=berth agent (runs deployments assigned by the berth controller)
Documentation=file:/usr/share/doc/berth-agent/README.md
After=network-online.target docker.service caddy.service caddy-api.service
Wants=network-online.target
# Not joined yet: skip rather than fail (see install-agent.sh).
ConditionPathExists=/var/lib/berth-agent/agent.toml

[Service]
Type=exec
User=berth-agent
Group=berth-agent
# The docker group (when the host has one) comes from the group database:
# User= initializes the supplementary groups from it. SupplementaryGroups=
# would make the unit fail to start on a host without a docker group.
EnvironmentFile=-/etc/berth/agent.env
ExecStart=/usr/bin/berth-agent run --data-dir /var/lib/berth-agent $BERTH_AGENT_ARGS
Restart=on-failure
RestartSec=5s
# Exit status 3: the controller refused this agent for good (revoked, or a
# protocol version it does not serve); restarting would not help.
RestartPreventExitStatus=3
# SIGTERM to the agent only: it stops its tasks' process groups itself
# (SIGTERM, then SIGKILL after 5 s) and waits up to 10 s; the rest of the
# cgroup is killed after TimeoutStopSec.
KillMode=mixed
TimeoutStopSec=30s
SyslogIdentifier=berth-agent

StateDirectory=berth-agent
StateDirectoryMode=0700
LimitNOFILE=65536

# Sandbox. Setup scripts inherit all of it, so nothing here may break
# ordinary shell scripts, Docker's CLI or package builds.
NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictRealtime=yes
LockPersonality=yes
SystemCallArchitectures=native
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK

[Install]
WantedBy=multi-user.target
EOF
}

render_unit() {
    if [ "$data_dir" = "$default_data_dir" ]; then
        state='StateDirectory=berth-agent'
        state_mode='StateDirectoryMode=0700'
    else
        # StateDirectory= only names directories below /var/lib.
        state="ReadWritePaths=$data_dir"
        state_mode=''
    fi
    unit_template | sed \
        -e "s|^StateDirectoryMode=.*|$state_mode|" \
        -e "s|^ExecStart=/usr/bin/berth-agent |ExecStart=$bin_path |" \
        -e "s|/var/lib/berth-agent|$data_dir|g" \
        -e "s|/etc/berth/agent.env|$config_dir/agent.env|g" \
        -e "s|^User=.*|User=$user|" \
        -e "s|^Group=.*|Group=$group|" \
        -e "s|^StateDirectory=.*|$state|"
}

# agent.env, as packaging/config/agent.env ships it (a test checks).
config_template() {
    cat <<'EOF'
# Options for berth-agent.service (read as an EnvironmentFile; the package
# never overwrites your changes). Restart after editing:
#   systemctl restart berth-agent
#
# Extra `berth-agent run` flags (see `berth-agent run --help`). The data
# directory is /var/lib/berth-agent, set in the unit.
#   --slots N             tasks run at once (default 4)
#   --docker-host URL     Docker's address (default DOCKER_HOST, else
#                         unix:///var/run/docker.sock)
#   --controller URL      another controller address than the one joined
BERTH_AGENT_ARGS=""

# Caddy's admin API and the ports on which Caddy serves berth's routes.
#BERTH_CADDY_ADMIN=http://127.0.0.1:2019
#BERTH_PROXY_HTTP_PORT=80
#BERTH_PROXY_HTTPS_PORT=443

# Log filter (error, warn, info, debug, trace; per module too).
#RUST_LOG=info
EOF
}

render_config() {
    config_template | sed -e "s|/var/lib/berth-agent|$data_dir|g"
}

# --- checks (nothing changes here) ------------------------------------------

problems=""
problem() { problems="$problems  - $1$nl"; }

check_path() { # check_path OPTION VALUE
    matches "$2" '/[A-Za-z0-9._/-]*' ||
        problem "$1 '$2' must be an absolute path of letters, digits, '.', '_', '-' and '/'"
}

check_source() {
    sources=0
    for given in "$deb" "$binary" "$url"; do
        [ -z "$given" ] || sources=$((sources + 1))
    done
    if [ "$sources" -gt 1 ]; then
        problem "give only one of --deb, --binary and --url"
    fi
    if [ -n "$sha256" ] && ! matches "$sha256" '[0-9A-Fa-f]{64}'; then
        problem "--sha256 '$sha256' is not a SHA-256 (64 hex digits); copy it again from the release's SHA256SUMS"
    fi
    if [ -n "$sha256" ] && ! command -v sha256sum >/dev/null 2>&1; then
        problem "--sha256 needs sha256sum, which is missing; install coreutils"
    fi
    if [ -n "$deb" ]; then
        check_deb "$deb" "--deb $deb"
    elif [ -n "$binary" ]; then
        check_binary "$binary"
    elif [ -n "$url" ]; then
        check_url
    elif existing=$(installed_agent); then
        say "using the installed $existing"
        if [ "$existing" = /usr/bin/berth-agent ] &&
            dpkg-query -W -f='${Status}' berth-agent 2>/dev/null | grep -q 'ok installed'; then
            packaged=1
        fi
    else
        problem "no berth-agent to install: pass --deb FILE (a berth-agent package), --binary FILE or --url URL"
    fi
}

installed_agent() {
    for candidate in "$prefix/bin/berth-agent" /usr/bin/berth-agent; do
        if [ -x "$candidate" ]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

check_deb() { # check_deb FILE WHAT
    if [ ! -f "$1" ] || [ ! -r "$1" ]; then
        problem "$2: no such readable file; give the path of the berth-agent .deb"
        return
    fi
    if ! command -v dpkg-deb >/dev/null 2>&1; then
        problem "$2: installing a .deb needs dpkg, which is missing here; use --binary instead"
        return
    fi
    package=$(dpkg-deb --field "$1" Package 2>/dev/null) || package=""
    if [ "$package" != berth-agent ]; then
        problem "$2 is not a berth-agent package (it says '${package:-not a .deb}'); use berth-agent_VERSION_ARCH.deb"
        return
    fi
    want=$(dpkg --print-architecture)
    have=$(dpkg-deb --field "$1" Architecture)
    if [ "$have" != "$want" ] && [ "$have" != all ]; then
        problem "$2 is built for $have, but this host is $want; use berth-agent_VERSION_$want.deb"
    fi
    packaged=1
}

check_binary() {
    if [ ! -f "$binary" ] || [ ! -r "$binary" ]; then
        problem "--binary $binary: no such readable file; give the path of the berth-agent executable"
    elif [ "$(od -An -tx1 -N4 "$binary" | tr -d ' \n')" != 7f454c46 ]; then
        problem "--binary $binary is not a Linux executable (ELF); give the berth-agent binary, or use --deb for a package"
    fi
}

check_url() {
    case "$url" in
        https://?*) ;;
        http://?* | file://?*)
            [ -n "$sha256" ] || problem "--url $url is not https; give --sha256 so the download can be checked, or use an https URL"
            ;;
        *) problem "--url '$url' must start with https:// (or http:// or file:// together with --sha256)" ;;
    esac
    case "$url" in *"$nl"* | *' '*) problem "--url must be one URL without spaces" ;; esac
    command -v curl >/dev/null 2>&1 || problem "--url needs curl, which is missing; install it (apt-get install curl) or copy the file and use --deb/--binary"
}

check_identity() {
    joined_name=""
    joined_controller=""
    if [ -f "$data_dir/agent.toml" ]; then
        joined_name=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$data_dir/agent.toml")
        joined_controller=$(sed -n 's/^controller = "\(.*\)"$/\1/p' "$data_dir/agent.toml")
    fi
}

check_controller() {
    if [ -z "$controller" ]; then
        [ -n "$joined_name" ] ||
            problem "--controller is missing; give the controller's address, e.g. --controller https://ctl.example.com:7443"
        return
    fi
    if ! matches "$controller" 'https://([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?'; then
        problem "--controller '$controller' is not a controller address; write https://HOST or https://HOST:PORT (no path)"
        return
    fi
    port=$(printf '%s\n' "$controller" | sed -n 's|.*[^:]:\([0-9]*\)/\{0,1\}$|\1|p')
    if [ -n "$port" ] && { [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; }; then
        problem "--controller '$controller' has port $port; ports go from 1 to 65535"
    fi
}

check_token() {
    if [ -z "$token" ]; then
        [ -n "$joined_name" ] ||
            problem "the join token is missing; set BERTH_JOIN_TOKEN (or --token) to the token \`berth token create\` printed"
        return
    fi
    if ! matches "$token" 'bt1\.[A-Za-z0-9]{1,32}\.[A-Za-z0-9_-]{32,128}\.[0-9A-Fa-f]{64}(\.[A-Za-z0-9_-]+)?'; then
        problem "the join token is garbled (a token looks like bt1.<id>.<secret>.<pin>, then .<controllers>); copy it again from \`berth token create\`, or make a new one"
    fi
}

check_name_and_labels() {
    if [ -n "$name" ] && ! matches "$name" '[A-Za-z0-9._-]{1,63}'; then
        problem "--name '$name' must be 1 to 63 letters, digits, '.', '_' or '-'"
    fi
    old_ifs=$IFS
    IFS=,
    for pair in $labels; do
        matches "$pair" '[A-Za-z0-9._/-]{1,63}=[A-Za-z0-9._-]{1,63}' ||
            problem "--labels: '$pair' is not a label; write key=value with letters, digits, '.', '_' and '-' (keys may also hold '/')"
    done
    IFS=$old_ifs
}

check_paths() {
    check_path --prefix "$prefix"
    check_path --data-dir "$data_dir"
    check_path --config-dir "$config_dir"
    check_path --unit-dir "$unit_dir"
    check_packaged_paths
    matches "$user" '[a-z_][a-z0-9_-]{0,31}' || problem "--user '$user' is not a user name"
    if ! getent passwd "$user" >/dev/null 2>&1 && [ "$packaged" = 0 ] &&
        ! command -v adduser >/dev/null 2>&1 && ! command -v useradd >/dev/null 2>&1; then
        problem "creating the user $user needs adduser or useradd; install adduser"
    fi
}

check_packaged_paths() {
    [ "$packaged" = 1 ] || return 0
    [ "$prefix" = /usr/local ] || problem "--prefix does not apply to a package (it installs /usr/bin/berth-agent)"
    [ "$data_dir" = "$default_data_dir" ] || problem "--data-dir does not apply to a package (its unit uses $default_data_dir)"
    [ "$config_dir" = /etc/berth ] || problem "--config-dir does not apply to a package (its config is /etc/berth/agent.env)"
}

check_extras() {
    if [ "$with_docker" = 1 ] && ! command -v dockerd >/dev/null 2>&1 && ! command -v apt-get >/dev/null 2>&1; then
        problem "--with-docker installs Debian's docker.io with apt-get, which is missing here; install Docker yourself and drop --with-docker"
    fi
    if [ "$with_caddy" = 1 ] && ! command -v caddy >/dev/null 2>&1 && ! command -v apt-get >/dev/null 2>&1; then
        problem "--with-caddy installs Debian's caddy with apt-get, which is missing here; install Caddy yourself and drop --with-caddy"
    fi
}

check_all() {
    if [ "$(id -u)" != 0 ]; then
        fail "$prog must run as root: it installs a system service and creates the $user user" \
            "run it with sudo, keeping the token in the environment: sudo BERTH_JOIN_TOKEN=... sh $prog ..."
    fi
    check_source
    check_identity
    check_controller
    check_token
    check_name_and_labels
    check_paths
    check_extras
    if [ -n "$problems" ]; then
        printf '%s: error: nothing was changed, because:\n%s' "$prog" "$problems" >&2
        exit 1
    fi
    if [ "$token_from_argv" = 1 ]; then
        warn "--token puts the token in the process list; BERTH_JOIN_TOKEN=... keeps it out"
    fi
}

# --- fetching the agent into a scratch directory (still no change) ---------

verify_sha256() { # verify_sha256 FILE WHAT
    [ -n "$sha256" ] || return 0
    actual=$(sha256sum "$1" | cut -d' ' -f1)
    want=$(printf '%s' "$sha256" | tr 'A-F' 'a-f')
    if [ "$actual" != "$want" ]; then
        fail "$2 has SHA-256 $actual, not the $want given with --sha256; nothing was changed" \
            "download it again, or check the --sha256 value against the release"
    fi
}

fetch_agent() {
    if [ -n "$url" ]; then
        say "downloading $url"
        scheme=${url%%://*}
        curl --fail --silent --show-error --location --proto "=$scheme" \
            --output "$scratch/download" -- "$url" ||
            fail "downloading $url failed; nothing was changed" "check the URL and that this host can reach it"
        verify_sha256 "$scratch/download" "$url"
        if [ "$(od -An -tx1 -N4 "$scratch/download" | tr -d ' \n')" = 7f454c46 ]; then
            binary="$scratch/download"
        else
            deb="$scratch/berth-agent.deb"
            mv "$scratch/download" "$deb"
            check_deb "$deb" "the file at $url"
            check_packaged_paths
            if [ -n "$problems" ]; then
                printf '%s: error: nothing was changed, because:\n%s' "$prog" "$problems" >&2
                exit 1
            fi
        fi
    fi
    if [ -n "$deb" ]; then
        verify_sha256 "$deb" "$deb"
        dpkg-deb -x "$deb" "$scratch/deb" || fail "cannot unpack $deb; nothing was changed" "download it again"
        agent="$scratch/deb/usr/bin/berth-agent"
        deb_version=$(dpkg-deb --field "$deb" Version)
    elif [ -n "$binary" ]; then
        [ "$binary" = "$scratch/download" ] || verify_sha256 "$binary" "$binary"
        # Install exactly the bytes that were checked.
        cp "$binary" "$scratch/berth-agent"
        chmod 0755 "$scratch/berth-agent"
        agent="$scratch/berth-agent"
    else
        agent=$(installed_agent)
    fi
    agent_version=$("$agent" --version 2>/dev/null) ||
        fail "the berth-agent binary does not run on this host ($(uname -m)); nothing was changed" \
            "use the build for this architecture"
    case "$agent_version" in
        "berth-agent "*) ;;
        *) fail "the binary given is not berth-agent (it says '$agent_version'); nothing was changed" "give the berth-agent binary" ;;
    esac
}

# --- changes ----------------------------------------------------------------

changed=""
note_change() {
    changed="$changed  - $1$nl"
    say "$1"
}

join_controller() {
    if [ -n "$joined_name" ]; then
        say "already joined $joined_controller as $joined_name; not joining again"
        if [ -n "$name" ] && [ "$name" != "$joined_name" ]; then
            warn "--name $name ignored: this host joined as $joined_name (to join again: berth agents revoke $joined_name, remove $data_dir, run this again)"
        fi
        if [ -n "$controller" ] && [ "${controller%/}" != "${joined_controller%/}" ]; then
            warn "--controller $controller ignored: this host joined $joined_controller"
        fi
        return
    fi
    data_existed=0
    [ ! -e "$data_dir" ] || data_existed=1
    set -- join --controller "$controller" --data-dir "$data_dir"
    [ -z "$name" ] || set -- "$@" --name "$name"
    [ -z "$labels" ] || set -- "$@" --labels "$labels"
    say "joining $controller"
    if ! BERTH_JOIN_TOKEN=$token "$agent" "$@" </dev/null >"$scratch/join.log" 2>&1; then
        # Undo what the failed join wrote, so that nothing changed.
        if [ "$data_existed" = 0 ]; then
            rm -rf "$data_dir"
        fi
        sed 's/^error: /  /' "$scratch/join.log" >&2
        fail "the controller did not let this agent join; nothing was changed" \
            "check --controller and the token (\`berth token ls\` shows whether it is used up or expired; \`berth token create\` makes a new one)"
    fi
    check_identity
    note_change "joined $joined_controller as $joined_name"
}

install_package() {
    bin_path=/usr/bin/berth-agent
    status=$(dpkg-query -W -f='${Status} ${Version}' berth-agent 2>/dev/null || true)
    if [ -z "$deb" ]; then
        say "using the packaged $bin_path ($agent_version)"
    elif [ "$status" = "install ok installed $deb_version" ]; then
        say "berth-agent $deb_version is already installed"
    else
        DEBIAN_FRONTEND=noninteractive dpkg --force-confold -i "$deb" >"$scratch/dpkg.log" 2>&1 || {
            cat "$scratch/dpkg.log" >&2
            fail "dpkg could not install $deb (the agent has joined; running this again continues)" \
                "fix what dpkg reports above (missing dependencies: apt-get -f install), then run this again"
        }
        note_change "installed berth-agent $deb_version from $deb"
    fi
}

install_binary() {
    bin_path="$prefix/bin/berth-agent"
    if [ "$agent" = "$bin_path" ] || cmp -s "$agent" "$bin_path"; then
        say "$bin_path is up to date ($agent_version)"
        return
    fi
    mkdir -p "$prefix/bin"
    cp "$agent" "$bin_path.new.$$"
    chmod 0755 "$bin_path.new.$$"
    mv -f "$bin_path.new.$$" "$bin_path"
    binary_changed=1
    note_change "installed $bin_path ($agent_version)"
}

ensure_user() {
    if ! getent passwd "$user" >/dev/null 2>&1; then
        if command -v adduser >/dev/null 2>&1; then
            getent group "$user" >/dev/null 2>&1 || addgroup --system --quiet "$user"
            adduser --system --quiet --ingroup "$user" --home "$data_dir" --no-create-home \
                --shell /usr/sbin/nologin --gecos "berth agent" "$user"
        else
            useradd --system --user-group --home-dir "$data_dir" --no-create-home \
                --shell /usr/sbin/nologin --comment "berth agent" "$user"
        fi
        note_change "created the system user $user"
    fi
    group=$(id -gn "$user")
    join_docker_group
}

join_docker_group() {
    if getent group docker >/dev/null 2>&1 && [ "$user" != root ] &&
        ! id -nG "$user" | tr ' ' '\n' | grep -qx docker; then
        if command -v adduser >/dev/null 2>&1; then
            adduser --quiet "$user" docker
        else
            usermod -aG docker "$user"
        fi
        # A running agent keeps its old groups until it restarts.
        groups_changed=1
        note_change "added $user to the docker group (it reaches Docker's socket)"
    fi
}

write_file() { # write_file PATH MODE (content on stdin): only when it differs
    cat >"$scratch/new-file"
    if [ -f "$1" ] && cmp -s "$scratch/new-file" "$1"; then
        return 1
    fi
    mkdir -p "$(dirname "$1")"
    cp "$scratch/new-file" "$1.new.$$"
    chmod "$2" "$1.new.$$"
    mv -f "$1.new.$$" "$1"
}

write_config() {
    if [ -f "$config_dir/agent.env" ]; then
        say "kept $config_dir/agent.env"
    elif render_config | write_file "$config_dir/agent.env" 0644; then
        note_change "wrote $config_dir/agent.env"
    fi
}

write_unit() {
    if [ "$packaged" = 1 ]; then
        return
    fi
    if ! command -v systemctl >/dev/null 2>&1; then
        say "systemd is not installed here, so no unit was written"
        return
    fi
    if render_unit | write_file "$unit_dir/berth-agent.service" 0644; then
        unit_changed=1
        note_change "wrote $unit_dir/berth-agent.service"
    fi
}

own_data_dir() {
    if [ "$(stat -c %U "$data_dir")" != "$user" ] ||
        [ -n "$(find "$data_dir" ! -user "$user" -print -quit)" ]; then
        chown -R "$user:$group" "$data_dir"
        note_change "gave $data_dir to $user"
    fi
    chmod 0700 "$data_dir"
}

apt_install() {
    say "installing $* with apt-get"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }; then
        fail "apt-get could not install $* (the agent has joined; running this again continues)" \
            "check that this host reaches its Debian mirror (apt-get update), then run this again"
    fi
    note_change "installed $*"
}

install_docker() {
    [ "$with_docker" = 1 ] || return 0
    command -v dockerd >/dev/null 2>&1 || apt_install docker.io
    join_docker_group
    if systemd_running && ! systemctl --quiet is-active docker.service; then
        systemctl enable --now docker.service
        note_change "started docker.service"
    fi
}

install_caddy() {
    [ "$with_caddy" = 1 ] || return 0
    caddy_new=0
    if ! command -v caddy >/dev/null 2>&1; then
        apt_install caddy
        caddy_new=1
    fi
    # Let Caddy's config reloads hand waiting connections over (the agent,
    # not being root, cannot set this itself).
    if [ "$packaged" = 0 ] && [ ! -f /etc/sysctl.d/60-berth.conf ] && [ ! -f /usr/lib/sysctl.d/60-berth.conf ]; then
        printf '# Written by install-agent.sh: Caddy reloads hand waiting connections over.\nnet.ipv4.tcp_migrate_req = 1\n' |
            write_file /etc/sysctl.d/60-berth.conf 0644 && note_change "wrote /etc/sysctl.d/60-berth.conf"
    fi
    if [ "$(cat /proc/sys/net/ipv4/tcp_migrate_req 2>/dev/null || echo 1)" != 1 ]; then
        if echo 1 >/proc/sys/net/ipv4/tcp_migrate_req 2>/dev/null; then
            note_change "set net.ipv4.tcp_migrate_req = 1"
        else
            warn "cannot set net.ipv4.tcp_migrate_req here; Caddy reloads may reset a few waiting connections"
        fi
    fi
    if systemd_running && [ "$caddy_new" = 1 ]; then
        # The agent keeps its routes in Caddy's running config through the
        # admin API (127.0.0.1:2019); caddy-api.service runs Caddy with its
        # last config (--resume) instead of the Caddyfile.
        systemctl disable --now caddy.service >/dev/null 2>&1 || true
        systemctl enable caddy-api.service >/dev/null 2>&1
        note_change "enabled caddy-api.service"
    fi
    # Started now, or by an earlier run whose start failed (a port taken,
    # say): every run starts an enabled caddy-api.service that is not
    # running, so running the script again retries it.
    if systemd_running && systemctl --quiet is-enabled caddy-api.service 2>/dev/null &&
        ! systemctl --quiet is-active caddy-api.service; then
        systemctl reset-failed caddy-api.service >/dev/null 2>&1 || true
        if systemctl start caddy-api.service; then
            note_change "started caddy-api.service (admin API on 127.0.0.1:2019, berth's routes on ports 80 and 443)"
        else
            warn "caddy-api.service did not start (see: journalctl -u caddy-api.service); fix the cause and run this script again to retry it"
        fi
    fi
    if command -v curl >/dev/null 2>&1 && ! curl -fsS -o /dev/null http://127.0.0.1:2019/config/ 2>/dev/null; then
        warn "Caddy's admin API does not answer on http://127.0.0.1:2019; [proxy] deploys need it (set BERTH_CADDY_ADMIN in $config_dir/agent.env if it is elsewhere)"
    fi
}

systemd_running() { [ -d /run/systemd/system ]; }

enable_unit() {
    # systemctl enables a unit offline too (symlinks), so the agent starts at
    # the next boot even when systemd is not running now; a unit written
    # elsewhere than systemd's own directory is left to the caller.
    command -v systemctl >/dev/null 2>&1 || return 0
    if [ "$packaged" = 0 ] && [ "$unit_dir" != /etc/systemd/system ]; then
        return 0
    fi
    if systemd_running && { [ "${unit_changed:-0}" = 1 ] || [ "$packaged" = 1 ]; }; then
        systemctl daemon-reload
    fi
    if ! systemctl --quiet is-enabled berth-agent.service 2>/dev/null; then
        systemctl --quiet enable berth-agent.service 2>/dev/null
        note_change "enabled berth-agent.service"
    fi
}

start_agent() {
    enable_unit
    if ! systemd_running; then
        say "systemd is not running on this host, so nothing was started. Start the agent under your process supervisor with:"
        say "  runuser -u $user -- sh -c 'set -a; . $config_dir/agent.env; set +a; exec $bin_path run --data-dir $data_dir \$BERTH_AGENT_ARGS'"
        return
    fi
    if [ "$no_start" = 1 ]; then
        say "not started (--no-start); start it with: systemctl start berth-agent"
        return
    fi
    if systemctl --quiet is-active berth-agent.service; then
        if [ "${binary_changed:-0}" = 1 ] || [ "${unit_changed:-0}" = 1 ] ||
            [ "${groups_changed:-0}" = 1 ]; then
            systemctl restart berth-agent.service
            note_change "restarted berth-agent.service"
        fi
    else
        since=$(date '+%Y-%m-%d %H:%M:%S')
        systemctl start berth-agent.service ||
            fail "berth-agent.service did not start" "see journalctl -u berth-agent"
        note_change "started berth-agent.service"
        wait_connected "$since"
    fi
}

wait_connected() { # wait_connected SINCE: up to 30 s for the agent's "connected" line
    tries=0
    while [ "$tries" -lt 30 ]; do
        if journalctl -u berth-agent.service --since "$1" -o cat 2>/dev/null | grep -q 'connected to the controller'; then
            say "berth-agent is connected to the controller"
            return
        fi
        if ! systemctl --quiet is-active berth-agent.service; then
            journalctl -u berth-agent.service --since "$1" -o cat -n 20 >&2 2>/dev/null || true
            fail "berth-agent.service stopped (its last lines are above)" "see journalctl -u berth-agent"
        fi
        sleep 1
        tries=$((tries + 1))
    done
    warn "berth-agent has not reported a connection within 30 s; see journalctl -u berth-agent"
}

report() {
    if [ -z "$changed" ]; then
        say "nothing changed: berth-agent is installed and joined as $joined_name"
    fi
    say ""
    say "check it:"
    say "  berth agents ls                 (on your workstation: $joined_name should be online)"
    if systemd_running; then
        say "  systemctl status berth-agent"
        say "  journalctl -u berth-agent"
    fi
}

on_exit() {
    status=$1
    rm -rf "$scratch"
    if [ "$status" != 0 ] && [ -n "$changed" ]; then
        printf '%s: changed before the failure:\n%s' "$prog" "$changed" >&2
        printf '  running %s again continues from there\n' "$prog" >&2
    fi
}

main() {
    parse_args "$@"
    case "$print" in
        unit) bin_path="$prefix/bin/berth-agent"; group=$user; render_unit; exit 0 ;;
        config) render_config; exit 0 ;;
    esac
    check_all
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/berth-install-XXXXXX")
    trap 'on_exit $?' EXIT
    trap 'exit 130' INT TERM
    fetch_agent
    join_controller
    if [ "$packaged" = 1 ]; then
        install_package
        group=$user
        ensure_user
    else
        install_binary
        ensure_user
        write_config
        write_unit
    fi
    own_data_dir
    install_docker
    install_caddy
    start_agent
    report
}

main "$@"
