#!/usr/bin/env bash
# Builds the Debian packages gdx-agent and gdx-hub from the release binaries
# that `cargo build --release` left in target/release (with --profile dev,
# from what `cargo build` left in target/debug: for the packages' test in
# CI, never to ship). It does not build anything itself. Needs dpkg-deb,
# strip and gzip; uses dpkg-shlibdeps and dpkg-parsechangelog (dpkg-dev)
# when present.
#
#   packaging/build-debs.sh [--target-dir DIR] [--profile release|dev] [--version VERSION] [OUT_DIR]
#
# OUT_DIR defaults to target/debian. VERSION is a whole Debian version
# (0.1.0-2); by default the workspace's version with the Debian revision of
# packaging/debian/changelog's top entry. See packaging/README.md.
set -euo pipefail

usage() {
    echo "usage: packaging/build-debs.sh [--target-dir DIR] [--profile release|dev] [--version VERSION] [OUT_DIR]" >&2
    exit 2
}
die() {
    echo "error: $*" >&2
    exit 1
}

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/.." && pwd)
target_dir="$top/target"
version=""
out_dir=""
profile_dir=release
while [ $# -gt 0 ]; do
    case "$1" in
    --target-dir) [ $# -ge 2 ] || usage; target_dir=$2; shift 2 ;;
    --target-dir=*) target_dir=${1#*=}; shift ;;
    --profile) [ $# -ge 2 ] || usage; set -- "--profile=$2" "${@:3}" ;;
    --profile=release) profile_dir=release; shift ;;
    --profile=dev) profile_dir=debug; shift ;;
    --version) [ $# -ge 2 ] || usage; version=$2; shift 2 ;;
    --version=*) version=${1#*=}; shift ;;
    -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) usage ;;
    *) [ -z "$out_dir" ] || usage; out_dir=$1; shift ;;
    esac
done
out_dir=${out_dir:-$target_dir/debian}
for pkg in gdx-agent gdx-hub; do
    [ -x "$target_dir/$profile_dir/$pkg" ] ||
        die "$target_dir/$profile_dir/$pkg is missing; build it with: cargo build$([ "$profile_dir" = release ] && echo " --release") (or pass --target-dir)"
done

for tool in dpkg-deb strip gzip; do
    command -v "$tool" >/dev/null || die "$tool is missing; install it (apt-get install dpkg binutils gzip) and run this again"
done

umask 022
export LC_ALL=C.UTF-8

# The version: [workspace.package] of Cargo.toml (each crate says
# version.workspace = true).
cargo_version=$(awk '
    /^\[/ { in_section = ($0 == "[workspace.package]") }
    in_section && /^version[[:space:]]*=/ { gsub(/.*=[[:space:]]*"|".*/, ""); print; exit }
' "$top/Cargo.toml")
[ -n "$cargo_version" ] || die "no version in [workspace.package] of $top/Cargo.toml; add version = \"X.Y.Z\" there"
grep -q '^version.workspace = true' "$top/hub/Cargo.toml" ||
    die "hub/Cargo.toml does not take its version from the workspace; make it version.workspace = true or change this script"

# The license, as the workspace says it.
license=$(awk '
    /^\[/ { in_section = ($0 == "[workspace.package]") }
    in_section && /^license[[:space:]]*=/ { gsub(/.*=[[:space:]]*"|".*/, ""); print; exit }
' "$top/Cargo.toml")

# The changelog: its top entry gives the Debian revision, the maintainer
# and the date every file gets (SOURCE_DATE_EPOCH), so that the same tree
# builds the same packages.
changelog_src="$here/debian/changelog"
changelog_field() {
    if command -v dpkg-parsechangelog >/dev/null; then
        dpkg-parsechangelog -l "$changelog_src" -S "$1"
    else
        case "$1" in
        Version) sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' "$changelog_src" ;;
        Maintainer) sed -n '0,/^ -- /s/^ -- \(.*>\)  .*/\1/p' "$changelog_src" ;;
        Timestamp) date -d "$(sed -n '0,/^ -- /s/^ -- .*>  //p' "$changelog_src")" +%s ;;
        esac
    fi
}
top_version=$(changelog_field Version)
maintainer=$(changelog_field Maintainer)
date_from_env=${SOURCE_DATE_EPOCH:-}
: "${SOURCE_DATE_EPOCH:=$(changelog_field Timestamp)}"
export SOURCE_DATE_EPOCH
[ "${top_version%-*}" = "$cargo_version" ] ||
    die "packaging/debian/changelog's top entry is $top_version but Cargo.toml says $cargo_version; add an entry for $cargo_version-1 at the top of the changelog"
if [ -z "$version" ]; then
    version=$top_version
fi
case "$version" in
*-*) ;;
*) die "--version $version has no Debian revision; give one such as $version-1" ;;
esac
if command -v dpkg >/dev/null && ! dpkg --validate-version "$version" 2>/dev/null; then
    die "--version $version is not a valid Debian version; give one such as $cargo_version-2"
fi

arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

# The changelog as shipped: the file, with an entry on top when --version
# asks for another version than its top entry.
changelog="$stage/changelog"
if [ "$version" != "$top_version" ]; then
    # A new entry has a new date: now, unless SOURCE_DATE_EPOCH was given.
    SOURCE_DATE_EPOCH=${date_from_env:-$(date +%s)}
    {
        echo "gdx ($version) unstable; urgency=medium"
        echo
        echo "  * Rebuilt as $version by packaging/build-debs.sh --version."
        echo
        echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
        echo
        cat "$changelog_src"
    } >"$changelog"
else
    cp "$changelog_src" "$changelog"
fi

# The licenses of the Rust crates Cargo.lock names, from their manifests in
# the local registry cache (best effort: nothing is downloaded).
crate_licenses() {
    local registry=${CARGO_HOME:-$HOME/.cargo}/registry/src
    [ -d "$registry" ] || return 0
    awk '/^name = /{n=$3} /^version = /{v=$3} /^source = "registry/{gsub(/"/,"",n); gsub(/"/,"",v); print n "-" v}' \
        "$top/Cargo.lock" | while read -r crate; do
        for manifest in "$registry"/*/"$crate"/Cargo.toml; do
            [ -f "$manifest" ] || continue
            sed -n 's/^license = "\(.*\)"$/\1/p' "$manifest" | head -n 1
            break
        done
    done | sed 's| */ *| OR |g' | sort | uniq -c | sort -rn | awk '{c=$1; $1=""; sub(/^ /,""); printf "%s (%d), ", $0, c}' | sed 's/, $//'
}
crates=$(crate_licenses)

copyright() {
    local pkg=$1
    local year
    year=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y)
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: GDX"
    echo "Comment: $pkg is built from the GDX workspace. The binary also holds code of"
    echo " the Rust crates named in the workspace's Cargo.lock, each under its own"
    echo " license, and of SQLCipher and SQLite (bundled by rusqlite: BSD-3-Clause and"
    echo " public domain); it links OpenSSL's libcrypto (Apache-2.0) dynamically."
    if [ -n "$crates" ]; then
        echo " The crates' licenses, with how many crates use each:"
        echo " $crates." | fold -s -w 76 | sed 's/^ *//; s/^/ /; s/ *$//'
    fi
    echo
    echo "Files: *"
    echo "Copyright: $year The GDX authors"
    if [ -n "$license" ]; then
        echo "License: $license"
    else
        echo "License: proprietary"
        echo " The workspace's Cargo.toml names no license: all rights are reserved by the"
        echo " GDX authors; ask them before copying or giving this package to others."
    fi
    case "$license" in
    Apache-2.0)
        echo
        echo "License: Apache-2.0"
        echo " Licensed under the Apache License, Version 2.0 (the \"License\"); you may not"
        echo " use this file except in compliance with the License."
        echo " ."
        echo " Unless required by applicable law or agreed to in writing, software"
        echo " distributed under the License is distributed on an \"AS IS\" BASIS, WITHOUT"
        echo " WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the"
        echo " License for the specific language governing permissions and limitations"
        echo " under the License."
        echo " ."
        echo " On Debian systems, the complete text of the Apache License, Version 2.0,"
        echo " can be found in \"/usr/share/common-licenses/Apache-2.0\"."
        ;;
    "") ;;
    *) die "the workspace's license is $license, which this script cannot describe yet; add its text to copyright() in packaging/build-debs.sh" ;;
    esac
}

# The run-time dependencies of a binary: dpkg-shlibdeps when present, else
# libc6 from the newest GLIBC symbol version it uses and the packages that
# hold its other libraries.
depends() {
    local binary=$1 pkg=$2
    if command -v dpkg-shlibdeps >/dev/null; then
        local dir="$stage/shlibdeps-$pkg"
        mkdir -p "$dir/debian"
        printf 'Source: gdx\n\nPackage: %s\nArchitecture: any\n' "$pkg" >"$dir/debian/control"
        (cd "$dir" && dpkg-shlibdeps -O "-e$binary") | sed -n 's/^shlibs:Depends=//p'
        return
    fi
    command -v objdump >/dev/null || die "neither dpkg-shlibdeps nor objdump is installed; install dpkg-dev (or binutils) and run this again"
    local glibc deps=""
    glibc=$(objdump -T "$binary" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
    deps="libc6 (>= $glibc)"
    local lib path owner
    for lib in $(objdump -p "$binary" | awk '/NEEDED/{print $2}'); do
        case "$lib" in libc.so.* | libm.so.* | ld-linux*) continue ;; esac
        path=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
        [ -n "$path" ] || die "$binary needs $lib, which is not installed here; install it and run this again"
        # dpkg knows a library by the path its package ships (on a merged
        # /usr, /lib/… or /usr/lib/…).
        owner=""
        for candidate in "$path" "$(readlink -f "$path")" "/usr${path#/usr}" "${path#/usr}"; do
            owner=$(dpkg -S "$candidate" 2>/dev/null | head -n 1 | cut -d: -f1) || true
            [ -z "$owner" ] || break
        done
        [ -n "$owner" ] || die "no package holds $path; install $lib from a package and run this again"
        deps="$deps, $owner"
    done
    echo "$deps"
}

# What differs between the packages, read through ${!name} below.
# shellcheck disable=SC2034
{
# The guides each package carries in /usr/share/doc/PKG (from docs/).
guides_gdx_agent="installer.md catalogue.md exchange.md items.md"
guides_gdx_hub="operator.md hierarchy.md catalogue.md exchange.md auditor-guide.md bases.md evaluation.md supervision.md items.md api.md security.md"
examples_gdx_agent="agent.toml catalog-hukou.toml"
examples_gdx_hub="hub.toml bases.toml supervision.toml evaluation.toml"
summary_gdx_agent="GDX agent: syncs a department's data with its exchange hub"
summary_gdx_hub="GDX hub: province or prefecture node of the data exchange"
description_gdx_agent=" The agent of GDX, a government data sharing and exchange platform. It sits
 next to a department's database and keeps one mutually authenticated QUIC
 connection to its hub, dialled out: no inbound port is needed. It reads the
 extracts the department declares (SQLite, CSV drop folders, PostgreSQL,
 MySQL, XLSX lists), sends only the changes as signed changesets through a
 durable outbox, receives the data granted to the department, and files and
 answers requests for data.
 .
 The package installs the agent, a hardened systemd unit and a system user.
 It does not start the agent: enrol it first with a token from the hub."
description_gdx_hub=" The hub of GDX, a government data sharing and exchange platform. A province
 hub holds the root CA; a prefecture hub joins it with an intermediate CA. A
 hub enrols and authenticates departments' agents and child hubs over QUIC,
 keeps each provider's data in its own vault, catalogues resources, delivers
 data only under a grant, keeps a tamper-evident audit log, and serves the
 portal and an HTTPS API.
 .
 The package installs the hub, a hardened systemd unit and a system user. It
 does not start the hub: create it first with gdx-hub init."
}

mkdir -p "$out_dir"
for pkg in gdx-agent gdx-hub; do
    var=${pkg//-/_}
    binary="$target_dir/$profile_dir/$pkg"
    case "$pkg" in gdx-agent) other=gdx-hub ;; *) other=gdx-agent ;; esac

    root="$stage/$pkg"
    doc="$root/usr/share/doc/$pkg"
    install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" \
        "$root/usr/share/man/man1" "$doc/examples"

    install -m 0755 "$binary" "$root/usr/bin/$pkg"
    strip --remove-section=.comment --remove-section=.note "$root/usr/bin/$pkg"
    install -m 0644 "$here/systemd/$pkg.service" "$root/lib/systemd/system/$pkg.service"
    gzip -9n <"$here/man/$pkg.1" >"$root/usr/share/man/man1/$pkg.1.gz"

    copyright "$pkg" >"$doc/copyright"
    gzip -9n <"$changelog" >"$doc/changelog.Debian.gz"
    install -m 0644 "$here/debian/$pkg.README.Debian" "$doc/README.Debian"
    guides="guides_$var"
    for guide in ${!guides}; do
        gzip -9n <"$top/docs/$guide" >"$doc/$guide.gz"
    done
    examples="examples_$var"
    for example in ${!examples}; do
        install -m 0644 "$here/examples/$example" "$doc/examples/$example"
    done
    if [ -f "$here/debian/$pkg.lintian-overrides" ]; then
        install -d "$root/usr/share/lintian/overrides"
        # The override of initial-upload-closes-no-bugs (its paragraph) only
        # while the changelog has one entry.
        if [ "$(grep -c '^gdx (' "$changelog")" -gt 1 ]; then
            awk -v RS= -v ORS='\n\n' '!/initial-upload-closes-no-bugs/' "$here/debian/$pkg.lintian-overrides"
        else
            cat "$here/debian/$pkg.lintian-overrides"
        fi >"$root/usr/share/lintian/overrides/$pkg"
        chmod 0644 "$root/usr/share/lintian/overrides/$pkg"
    fi

    for script in postinst prerm postrm; do
        sed -e "s/@PKG@/$pkg/g" -e "s/@OTHER@/$other/g" "$here/debian/$script.in" >"$root/DEBIAN/$script"
        chmod 0755 "$root/DEBIAN/$script"
    done

    deps=$(depends "$root/usr/bin/$pkg" "$pkg")
    [ -n "$deps" ] || die "could not work out what $pkg depends on"
    # postinst makes the user gdx with adduser.
    deps="$deps, adduser"
    summary="summary_$var"
    description="description_$var"
    # Installed-Size in KiB, as dpkg-gencontrol counts it.
    size=$(find "$root" -path "$root/DEBIAN" -prune -o -type f -printf '%s\n' |
        awk '{ s += int(($1 + 1023) / 1024) } END { print s }')
    {
        echo "Package: $pkg"
        echo "Version: $version"
        echo "Architecture: $arch"
        echo "Maintainer: $maintainer"
        echo "Installed-Size: $size"
        echo "Depends: $deps"
        echo "Section: net"
        echo "Priority: optional"
        echo "Description: ${!summary}"
        echo "${!description}"
    } >"$root/DEBIAN/control"

    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
        xargs -0 md5sum) >"$root/DEBIAN/md5sums"

    # Every file gets the changelog's date.
    find "$root" -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch --no-dereference --date="@$SOURCE_DATE_EPOCH"

    deb="$out_dir/${pkg}_${version}_${arch}.deb"
    dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
    echo "$deb"
done
