#!/usr/bin/env bash
# The packages' end-to-end test, as CI runs it (needs root, debootstrap,
# lintian and the Debian archive): builds the release binaries (with
# GDX_PACKAGE_PROFILE=dev, as CI runs it, the development build), makes the
# two packages at this version and at the next Debian revision, checks them
# with lintian, makes a throwaway Debian root with debootstrap, and runs
# packaging/test-install.sh in it (install, enrol and sync between the
# packaged agent and hub, upgrade, sync again, remove, purge).
#
#   packaging/ci.sh
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "packaging/ci.sh: run it as root (debootstrap and chroot need it)" >&2; exit 1; }
for tool in debootstrap lintian dpkg-deb; do
    command -v "$tool" >/dev/null || { echo "packaging/ci.sh: $tool is missing; apt-get install debootstrap lintian dpkg-dev" >&2; exit 1; }
done

work=$(mktemp -d /tmp/gdx-packaging.XXXXXX)
cleanup() {
    mountpoint -q "$work/root/proc" 2>/dev/null && umount "$work/root/proc"
    rm -rf "$work"
}
trap cleanup EXIT

# The packages' layout, scripts and lintian's verdict do not depend on how
# the binaries were optimised: CI packs the development build its tests
# made (a release build of its own took 5.5 of CI's minutes). Packages to
# ship are built from the release binaries (packaging/README.md).
profile=${GDX_PACKAGE_PROFILE:-release}
# (as the test harness builds them, so nothing is built again)
cargo build --profile "$profile" --locked --bins -p gdx-hub -p gdx-agent

# this version, and the next Debian revision to upgrade to
packaging/build-debs.sh --profile "$profile" "$work/debs"
current=$(dpkg-deb -f "$work"/debs/gdx-hub_*.deb Version)
packaging/build-debs.sh --profile "$profile" --version "${current%-*}-$((${current##*-} + 1))" "$work/debs"
lintian --fail-on error,warning --info --pedantic "$work"/debs/*.deb

# the Debian release and archive this machine uses
. /etc/os-release
mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "packaging/ci.sh: no Debian archive in this machine's apt sources" >&2; exit 1; }
debootstrap --variant=minbase "$VERSION_CODENAME" "$work/root" "$mirror" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log" >&2; echo "packaging/ci.sh: debootstrap failed" >&2; exit 1; }

packaging/test-install.sh "$work/root" "$work/debs"
