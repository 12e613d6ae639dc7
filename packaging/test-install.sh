#!/usr/bin/env bash
# Installs, upgrades, removes and purges gdx-agent and gdx-hub inside a
# throwaway Debian root, checking each step; stops at the first failure
# with one sentence saying what is wrong.
#
#   packaging/test-install.sh ROOT_DIR DEB_DIR
#
# ROOT_DIR: a root made by `debootstrap --variant=minbase bookworm ROOT_DIR
# MIRROR` (it is changed: use a copy). DEB_DIR: the .debs of
# packaging/build-debs.sh; with two versions of each package the older is
# installed first and the newer is the upgrade, with one the upgrade
# reinstalls it. Needs root. The packages' dependencies are installed in
# the root from the Debian archive with apt-get. See packaging/README.md.

# A && B || fail is meant: fail unless both hold. '${Version}' is dpkg-query's.
# shellcheck disable=SC2015,SC2016
set -euo pipefail

fail() {
    echo "test-install: FAIL: $*" >&2
    exit 1
}
step() {
    step_started=$(date +%s.%N)
    echo "test-install: $*"
}
timings=()
done_step() {
    local took
    took=$(awk -v a="$step_started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    timings+=("$1: ${took}s")
}

[ $# -eq 2 ] || { echo "usage: packaging/test-install.sh ROOT_DIR DEB_DIR" >&2; exit 2; }
root=$(cd "$1" && pwd) || fail "ROOT_DIR $1 does not exist; make it with debootstrap --variant=minbase bookworm $1"
deb_dir=$(cd "$2" && pwd) || fail "DEB_DIR $2 does not exist; build the packages with packaging/build-debs.sh $2"
[ "$(id -u)" = 0 ] || fail "this test must run as root (it uses chroot and mount); run it with sudo"
[ -x "$root/usr/bin/dpkg" ] && [ -x "$root/usr/bin/apt-get" ] ||
    fail "$root is not a Debian root; make it with debootstrap --variant=minbase bookworm $root"

# The versions to install, then to upgrade to.
versions() {
    local pkg=$1
    for deb in "$deb_dir/${pkg}"_*.deb; do
        [ -f "$deb" ] && dpkg-deb -f "$deb" Version
    done | sort -u | sort -V
}
debs_of() { # PACKAGE VERSION -> the file's name
    local deb
    for deb in "$deb_dir/${1}"_*.deb; do
        if [ "$(dpkg-deb -f "$deb" Version)" = "$2" ]; then
            basename "$deb"
            return
        fi
    done
}
for pkg in gdx-agent gdx-hub; do
    [ -n "$(versions $pkg)" ] || fail "no $pkg .deb in $deb_dir; build them with packaging/build-debs.sh $deb_dir"
done
old_version=$(versions gdx-hub | head -n 1)
new_version=$(versions gdx-hub | tail -n 1)
[ "$(versions gdx-agent)" = "$(versions gdx-hub)" ] ||
    fail "$deb_dir holds other versions of gdx-agent than of gdx-hub; build both with the same packaging/build-debs.sh run"

# In the root: /proc mounted, the debs copied, a clean environment.
mounted=""
cleanup() {
    if [ -n "$mounted" ]; then umount "$root/proc" || true; fi
    rm -rf "$root/tmp/gdx-debs"
}
trap cleanup EXIT
if ! mountpoint -q "$root/proc"; then
    mount -t proc proc "$root/proc"
    mounted=1
fi
rm -rf "$root/tmp/gdx-debs"
mkdir -p "$root/tmp/gdx-debs"
cp "$deb_dir"/*.deb "$root/tmp/gdx-debs/"
chmod -R a+rX "$root/tmp/gdx-debs"

in_root() {
    chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@"
}
as_gdx() {
    in_root runuser -u gdx -- "$@"
}
# PATH MODE OWNER GROUP
expect_mode() {
    local got
    got=$(in_root stat -c '%a %U %G' "$1" 2>/dev/null) || fail "$1 does not exist in the root"
    [ "$got" = "$2 $3 $4" ] || fail "$1 is $got (mode owner group); expected $2 $3 $4"
}
expect_absent() {
    [ ! -e "$root$1" ] && [ ! -L "$root$1" ] || fail "$1 is still there; $2"
}
status_of() {
    in_root dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || echo not-installed
}
data_digest() {
    (cd "$root/var/lib" && find gdx-hub gdx-agent -type f -print0 2>/dev/null | sort -z | xargs -0r sha256sum | sha256sum)
}

agent_old=$(debs_of gdx-agent "$old_version")
hub_old=$(debs_of gdx-hub "$old_version")
agent_new=$(debs_of gdx-agent "$new_version")
hub_new=$(debs_of gdx-hub "$new_version")
[ "$(status_of gdx-agent)" = not-installed ] && [ "$(status_of gdx-hub)" = not-installed ] ||
    fail "$root already has gdx-agent or gdx-hub installed; start from a fresh debootstrap root"

# 1. Dependencies, from the Debian archive.
step "installing the dependencies of $agent_old and $hub_old with apt-get"
deps="$(dpkg-deb -f "$deb_dir/$agent_old" Depends), $(dpkg-deb -f "$deb_dir/$hub_old" Depends)"
out=$(in_root apt-get update -qq 2>&1) ||
    fail "apt-get update failed in the root; check its /etc/apt/sources.list and that the Debian archive is reachable: $out"
out=$(in_root apt-get satisfy -y -qq "$deps" 2>&1) ||
    fail "apt-get could not install the packages' dependencies ($deps) in the root; check that the Debian archive is reachable: $out"
done_step "dependencies (apt-get update and satisfy)"

# 2. A first install with dpkg -i.
step "installing $old_version with dpkg -i"
out=$(in_root dpkg -i "/tmp/gdx-debs/$agent_old" "/tmp/gdx-debs/$hub_old" 2>&1) ||
    fail "dpkg -i of $old_version failed: $out"
[ "$(status_of gdx-agent)" = installed ] && [ "$(status_of gdx-hub)" = installed ] ||
    fail "after dpkg -i the packages are $(status_of gdx-agent) and $(status_of gdx-hub), not installed"
grep -q "enroll --token" <<<"$out" || fail "the first install did not print how to enrol the agent; dpkg said: $out"
grep -q "gdx-hub --data /var/lib/gdx-hub init" <<<"$out" || fail "the first install did not print how to create the hub; dpkg said: $out"
done_step "dpkg -i of both packages"

step "checking the user, directories and files"
passwd=$(in_root getent passwd gdx) || fail "the user gdx was not created"
IFS=: read -r _ _ uid gid _ home shell <<<"$passwd"
[ "$uid" -lt 1000 ] || fail "gdx has uid $uid; a system user's uid is below 1000"
[ "$shell" = /usr/sbin/nologin ] || fail "gdx's shell is $shell; expected /usr/sbin/nologin"
case "$home" in /var/lib/gdx-agent | /var/lib/gdx-hub) ;; *) fail "gdx's home is $home; expected its data directory" ;; esac
group=$(in_root getent group gdx) || fail "the group gdx was not created"
[ "$(cut -d: -f3 <<<"$group")" = "$gid" ] || fail "gdx's primary group is not the group gdx"
expect_mode /var/lib/gdx-agent 700 gdx gdx
expect_mode /var/lib/gdx-hub 700 gdx gdx
expect_mode /etc/gdx 750 root gdx
for pkg in gdx-agent gdx-hub; do
    expect_mode "/usr/bin/$pkg" 755 root root
    expect_mode "/lib/systemd/system/$pkg.service" 644 root root
    expect_mode "/usr/share/doc/$pkg/copyright" 644 root root
    got=$(in_root "$pkg" --version) || fail "$pkg --version failed in the root"
    [ "$got" = "$pkg ${old_version%-*}" ] || fail "$pkg --version says '$got'; expected '$pkg ${old_version%-*}'"
    [ -z "$(in_root dpkg --verify "$pkg")" ] || fail "dpkg --verify $pkg finds files that differ from the package: $(in_root dpkg --verify "$pkg")"
done
[ -z "$(in_root dpkg --audit)" ] || fail "dpkg --audit reports a problem: $(in_root dpkg --audit)"
done_step "checks after install"

# 3. The hub made as gdx; the shipped examples read by the binaries.
step "running gdx-hub init as gdx"
out=$(as_gdx gdx-hub --data /var/lib/gdx-hub init --division 630000 --name 测试 \
    --listen 127.0.0.1:27443 --advertise 127.0.0.1:27443 --http 127.0.0.1:28443 2>&1) ||
    fail "gdx-hub init as gdx failed: $out"
[ "$(in_root stat -c %U /var/lib/gdx-hub/hub.toml)" = gdx ] || fail "hub.toml made by init as gdx is not owned by gdx"
expect_mode /var/lib/gdx-hub/ca.key 600 gdx gdx
grep -q '^name = "测试"' "$root/var/lib/gdx-hub/hub.toml" || fail "hub.toml does not hold the name given to init"
out=$(as_gdx gdx-hub --data /var/lib/gdx-hub nodes 2>&1) || fail "gdx-hub nodes as gdx failed: $out"
done_step "gdx-hub init and nodes as gdx"

step "reading the shipped examples with the binaries"
ex=/usr/share/doc/gdx-hub/examples
as_gdx sh -c "umask 077 && cp $ex/evaluation.toml $ex/bases.toml /var/lib/gdx-hub/" ||
    fail "could not copy the hub's examples into /var/lib/gdx-hub as gdx"
out=$(as_gdx gdx-hub --data /var/lib/gdx-hub report --period 2026-11 2>&1) ||
    fail "gdx-hub report refuses the example evaluation.toml: $out"
out=$(as_gdx gdx-hub --data /var/lib/gdx-hub base list 2>&1) ||
    fail "gdx-hub base list refuses the example bases.toml: $out"
grep -q renkou <<<"$out" || fail "gdx-hub base list does not show the example's base renkou: $out"
as_gdx rm /var/lib/gdx-hub/evaluation.toml /var/lib/gdx-hub/bases.toml
ex=/usr/share/doc/gdx-agent/examples
as_gdx sh -c "umask 077 && mkdir -p /tmp/gdx-example/catalog && cp $ex/agent.toml /tmp/gdx-example/ && cp $ex/catalog-hukou.toml /tmp/gdx-example/catalog/hukou.toml" ||
    fail "could not copy the agent's examples as gdx"
out=$(as_gdx gdx-agent --data /tmp/gdx-example catalog list 2>&1) ||
    fail "gdx-agent refuses the example agent.toml: $out"
grep -q "101001/000001" <<<"$out" || fail "gdx-agent catalog list does not show the example's entry 101001/000001: $out"
rm -rf "$root/tmp/gdx-example"
done_step "examples read by the binaries"

# 3b. The packaged agent enrols at the packaged hub, both run as gdx, and syncs.
hub_pid=""
start_hub() {
    in_root runuser -u gdx -- gdx-hub --data /var/lib/gdx-hub run >"$root/tmp/gdx-hub.log" 2>&1 &
    hub_pid=$!
    for _ in $(seq 1 100); do
        grep -q "listening on" "$root/tmp/gdx-hub.log" 2>/dev/null && return
        sleep 0.2
    done
    fail "the packaged gdx-hub did not start within 20 s: $(cat "$root/tmp/gdx-hub.log")"
}
stop_hub() {
    if [ -n "$hub_pid" ]; then
        pkill -TERM -f "gdx-hub --data /var/lib/gdx-hub run" || true
        wait "$hub_pid" 2>/dev/null || true
        hub_pid=""
    fi
}
trap 'stop_hub; cleanup' EXIT
# PEOPLE: rows of a CSV export the agent syncs
sync_rows() {
    printf 'id,name\n%s' "$1" >"$root/var/lib/gdx-agent/drop/people.csv"
    in_root chown gdx:gdx /var/lib/gdx-agent/drop/people.csv
    out=$(as_gdx gdx-agent --data /var/lib/gdx-agent sync 2>&1) || fail "gdx-agent sync as gdx failed: $out"
    grep -q "all acknowledged by the hub" <<<"$out" || fail "gdx-agent sync did not end acknowledged: $out"
}
step "enrolling the packaged agent at the packaged hub and syncing"
start_hub
token=$(as_gdx gdx-hub --data /var/lib/gdx-hub token --node 630000/gongan --role agent --ttl 1h 2>&1 | grep -o 'GDX2[^ ]*' | head -n 1) ||
    fail "gdx-hub token printed no token"
out=$(printf '%s' "$token" | in_root runuser -u gdx -- gdx-agent --data /var/lib/gdx-agent enroll --token - 2>&1) ||
    fail "gdx-agent enroll as gdx failed: $out"
as_gdx mkdir -p /var/lib/gdx-agent/drop
cat >>"$root/var/lib/gdx-agent/agent.toml" <<'TOML'

[[resource]]
code = "people"
key = ["id"]
source = { kind = "csv", dir = "/var/lib/gdx-agent/drop" }
TOML
sync_rows $'1,卓玛\n2,才让\n'
vault=$root/var/lib/gdx-hub/vaults/630000-gongan.db
[ -f "$vault" ] || fail "the hub holds no vault for 630000/gongan after the sync"
stop_hub
done_step "enrol and sync between the packages"

digest=$(data_digest)

# 4. The upgrade.
step "upgrading to $new_version with dpkg -i"
out=$(in_root dpkg -i "/tmp/gdx-debs/$agent_new" "/tmp/gdx-debs/$hub_new" 2>&1) ||
    fail "dpkg -i of $new_version over $old_version failed: $out"
for pkg in gdx-agent gdx-hub; do
    got=$(in_root dpkg-query -W -f='${Version}' "$pkg")
    [ "$got" = "$new_version" ] || fail "after the upgrade $pkg is at $got; expected $new_version"
done
[ "$(in_root getent passwd gdx | cut -d: -f3)" = "$uid" ] || fail "the upgrade changed gdx's uid"
expect_mode /var/lib/gdx-agent 700 gdx gdx
expect_mode /var/lib/gdx-hub 700 gdx gdx
expect_mode /etc/gdx 750 root gdx
[ "$(data_digest)" = "$digest" ] || fail "the upgrade changed files in /var/lib/gdx-hub or /var/lib/gdx-agent"
[ "$old_version" != "$new_version" ] || echo "test-install: note: one version in $deb_dir, so the upgrade reinstalled $old_version"
# the upgraded hub serves the agent enrolled before, with the data kept
start_hub
sync_rows $'1,卓玛\n2,才让措\n3,马秀兰\n'
stop_hub
rows=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT group_concat(name) FROM (SELECT name FROM people ORDER BY id)").fetchone()[0])' "$vault") ||
    fail "cannot read the hub's vault $vault"
[ "$rows" = "卓玛,才让措,马秀兰" ] || fail "the hub's vault holds $rows after the upgrade's sync; expected 卓玛,才让措,马秀兰"
digest=$(data_digest)
done_step "dpkg -i upgrade, then a sync"

# 5. Remove: programs gone, data and user kept.
step "removing with dpkg -r"
out=$(in_root dpkg -r gdx-agent gdx-hub 2>&1) || fail "dpkg -r failed: $out"
for pkg in gdx-agent gdx-hub; do
    expect_absent "/usr/bin/$pkg" "dpkg -r should remove the program"
    expect_absent "/lib/systemd/system/$pkg.service" "dpkg -r should remove the unit"
    case "$(status_of "$pkg")" in config-files | not-installed) ;; *) fail "after dpkg -r $pkg is $(status_of "$pkg")" ;; esac
done
[ "$(data_digest)" = "$digest" ] || fail "dpkg -r changed the data in /var/lib/gdx-*"
in_root getent passwd gdx >/dev/null || fail "dpkg -r removed the user gdx, which owns the kept data"
done_step "dpkg -r"

# 6. Purge: the data, its owner and /etc/gdx's files stay; a hint says so.
step "purging with dpkg -P"
out=$(in_root dpkg -P gdx-agent gdx-hub 2>&1) || fail "dpkg -P failed: $out"
for pkg in gdx-agent gdx-hub; do
    [ "$(status_of "$pkg")" = not-installed ] || fail "after dpkg -P $pkg is $(status_of "$pkg")"
    grep -q "the data in /var/lib/$pkg is kept" <<<"$out" || fail "dpkg -P $pkg did not say where its data is kept; it said: $out"
done
[ "$(data_digest)" = "$digest" ] || fail "dpkg -P changed or deleted the data in /var/lib/gdx-*; purge must keep it"
expect_mode /var/lib/gdx-hub 700 gdx gdx
in_root getent passwd gdx >/dev/null || fail "dpkg -P removed the user gdx although it owns the kept data"
expect_absent /etc/gdx "purge removes /etc/gdx when it is empty"
done_step "dpkg -P (data kept)"

# 7. A reinstall finds the kept hub; a purge after the data is deleted
# removes the user and group.
step "reinstalling over the kept data, then purging without data"
out=$(in_root dpkg -i "/tmp/gdx-debs/$agent_new" "/tmp/gdx-debs/$hub_new" 2>&1) ||
    fail "dpkg -i over the kept data failed: $out"
grep -q "/var/lib/gdx-hub holds a hub" <<<"$out" || fail "a reinstall over a kept hub did not say so; dpkg said: $out"
[ "$(data_digest)" = "$digest" ] || fail "reinstalling changed the kept data"
out=$(as_gdx gdx-hub --data /var/lib/gdx-hub nodes 2>&1) || fail "the kept hub does not work after a reinstall: $out"
rm -rf "$root/var/lib/gdx-agent" "$root/var/lib/gdx-hub"
out=$(in_root dpkg -P gdx-agent gdx-hub 2>&1) || fail "dpkg -P failed: $out"
in_root getent passwd gdx >/dev/null && fail "dpkg -P of both packages with no data left kept the user gdx"
in_root getent group gdx >/dev/null && fail "dpkg -P of both packages with no data left kept the group gdx"
expect_absent /etc/gdx "purge removes /etc/gdx when it is empty"
done_step "reinstall, purge without data"

echo "test-install: all checks passed ($old_version -> $new_version)"
for t in "${timings[@]}"; do
    echo "  $t"
done
