#!/usr/bin/env bash
# Builds the Debian packages berth-controller, berth-agent and berth (the
# CLI) with `cargo build --release` and `dpkg-deb --build --root-owner-group`
# (no cargo-deb, no debhelper). The version comes from the workspace
# Cargo.toml, the architecture from `dpkg --print-architecture`.
#
#   packaging/build-debs.sh [--out DIR] [--bin-dir DIR | --profile NAME]
#                           [--version V] [--fast]
#
#   --out DIR       where the .deb files go (default target/debian)
#   --bin-dir DIR   package the binaries already built in DIR (e.g.
#                   target/debug) instead of running cargo
#   --profile NAME  cargo profile to build (default release)
#   --version V     package version (default: the workspace version)
#   --fast          gzip -1 instead of xz (for tests)
#
# Prints the path of each package it wrote.
set -euo pipefail
umask 022
root=$(cd "$(dirname "$0")/.." && pwd)
here="$root/packaging"

die() {
    echo "build-debs: error: $*" >&2
    exit 1
}

out="$root/target/debian"
bin_dir=""
profile=release
version=""
compress=(-Zxz)
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out=${2:?--out needs a directory}; shift 2 ;;
        --bin-dir) bin_dir=${2:?--bin-dir needs a directory}; shift 2 ;;
        --profile) profile=${2:?--profile needs a name}; shift 2 ;;
        --version) version=${2:?--version needs a value}; shift 2 ;;
        --fast) compress=(-Zgzip -z1); shift ;;
        -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done

for tool in dpkg-deb dpkg; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing; install the dpkg package"
done
arch=$(dpkg --print-architecture)

if [ -z "$version" ]; then
    # The first `version = "..."` in [workspace.package].
    version=$(awk '
        /^\[/ { section = $0 }
        section == "[workspace.package]" && /^version *=/ {
            gsub(/.*= *"|".*/, ""); print; exit
        }' "$root/Cargo.toml")
    [ -n "$version" ] || die "no version in [workspace.package] of $root/Cargo.toml"
fi
case "$version" in
    [0-9]*) ;;
    *) die "version '$version' must start with a digit (Debian policy)" ;;
esac

if [ -z "$bin_dir" ]; then
    command -v cargo >/dev/null 2>&1 || die "cargo is missing (scripts/toolchain.sh installs Rust)"
    echo "build-debs: cargo build --profile $profile (berth-controller, berth, berth-agent)" >&2
    (cd "$root" && cargo build --locked --profile "$profile" \
        -p berth-controller -p berth-cli -p berth-agent --bins)
    target_dir=${CARGO_TARGET_DIR:-$root/target}
    case "$profile" in
        dev) bin_dir="$target_dir/debug" ;;
        *) bin_dir="$target_dir/$profile" ;;
    esac
fi
bin_dir=$(cd "$bin_dir" && pwd) || die "no directory $bin_dir"
for binary in berth-controller berth-agent berth; do
    [ -x "$bin_dir/$binary" ] || die "$bin_dir/$binary is missing; build it first (cargo build --release --bins)"
done

stage=$(mktemp -d -t berth-debs-XXXXXX)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out"
out=$(cd "$out" && pwd)

maintainer=${BERTH_DEB_MAINTAINER:-berth maintainers <berth@localhost>}

# shlibs PATH: the Depends entries for the shared libraries PATH links.
shlibs() {
    if command -v dpkg-shlibdeps >/dev/null 2>&1; then
        local scratch
        scratch=$(mktemp -d)
        mkdir "$scratch/debian"
        touch "$scratch/debian/control"
        (cd "$scratch" && dpkg-shlibdeps -O "$1" 2>/dev/null) |
            sed -n 's/^shlibs:Depends=//p'
        rm -rf "$scratch"
    else
        # Without dpkg-dev: the newest glibc symbol version the binary uses.
        local glibc
        glibc=$(grep -ao 'GLIBC_2\.[0-9]*' "$1" | sort -t. -k2 -n | tail -n1 | sed 's/GLIBC_//')
        printf 'libc6 (>= %s), libgcc-s1' "${glibc:-2.34}"
    fi
}

# install_file MODE DEST SOURCE: copies SOURCE to DEST (inside the stage).
install_file() {
    mkdir -p "$(dirname "$2")"
    install -m "$1" "$3" "$2"
}

# package NAME BINARY: assembles $stage/NAME (already holding its files)
# and builds the .deb.
package() {
    local name=$1 binary=$2 tree="$stage/$1"
    install_file 0644 "$tree/usr/share/doc/$name/copyright" "$here/debian/copyright"
    install_file 0644 "$tree/usr/share/doc/$name/README.md" "$here/README.md"
    mkdir -p "$tree/DEBIAN"
    local script
    for script in postinst prerm postrm; do
        if [ -f "$here/debian/$name/$script" ]; then
            install_file 0755 "$tree/DEBIAN/$script" "$here/debian/$name/$script"
        fi
    done
    if [ -f "$here/debian/$name/conffiles" ]; then
        install_file 0644 "$tree/DEBIAN/conffiles" "$here/debian/$name/conffiles"
    fi
    # md5sums of everything but the conffiles (dpkg tracks those itself).
    (cd "$tree" && find . -type f ! -path './DEBIAN/*' ! -path './etc/*' -printf '%P\n' |
        LC_ALL=C sort | xargs -r md5sum) >"$tree/DEBIAN/md5sums"
    chmod 0644 "$tree/DEBIAN/md5sums"
    local size depends
    size=$(du -sk --exclude=DEBIAN "$tree" | cut -f1)
    depends=$(shlibs "$tree/usr/bin/$binary")
    sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@SIZE@|$size|" \
        -e "s|@MAINTAINER@|$maintainer|" -e "s|@SHLIBS@|$depends|" \
        "$here/debian/$name/control" >"$tree/DEBIAN/control"
    chmod 0755 "$tree"
    local deb="$out/${name}_${version}_${arch}.deb"
    dpkg-deb "${compress[@]}" --root-owner-group --build "$tree" "$deb" >/dev/null
    echo "$deb"
}

# strip_into SOURCE DEST: the binary without debug info, when strip exists.
strip_into() {
    install_file 0755 "$2" "$1"
    if command -v strip >/dev/null 2>&1; then
        strip --strip-debug "$2"
    fi
}

tree="$stage/berth-controller"
strip_into "$bin_dir/berth-controller" "$tree/usr/bin/berth-controller"
install_file 0644 "$tree/usr/lib/systemd/system/berth-controller.service" "$here/systemd/berth-controller.service"
install_file 0644 "$tree/etc/berth/controller.env" "$here/config/controller.env"
package berth-controller berth-controller

tree="$stage/berth-agent"
strip_into "$bin_dir/berth-agent" "$tree/usr/bin/berth-agent"
install_file 0644 "$tree/usr/lib/systemd/system/berth-agent.service" "$here/systemd/berth-agent.service"
install_file 0644 "$tree/etc/berth/agent.env" "$here/config/agent.env"
install_file 0644 "$tree/usr/lib/sysctl.d/60-berth.conf" "$here/sysctl/60-berth.conf"
for example in "$here"/systemd/examples/*; do
    install_file 0644 "$tree/usr/share/doc/berth-agent/examples/$(basename "$example")" "$example"
done
package berth-agent berth-agent

tree="$stage/berth"
strip_into "$bin_dir/berth" "$tree/usr/bin/berth"
install_file 0755 "$tree/usr/share/berth/install-agent.sh" "$here/install-agent.sh"
package berth berth
