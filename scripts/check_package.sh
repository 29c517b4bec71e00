#!/usr/bin/env bash
# check_package.sh - build the Debian package from this tree and check what it installs,
# without a running systemd. In a copy of the tree under a temporary directory (so that
# neither the tree nor its parent gets build files; all of it is removed at the end):
#   1. dpkg-buildpackage -us -uc -b (the unit tests run inside it);
#   2. lintian: no errors (warnings and the rest are printed);
#   3. the .deb's files (dpkg-deb -c): daemon, simulator, man pages, unit, sysusers file,
#      example config, /etc/bms2mqtt.yaml; its conffiles and Depends (dpkg-deb -I/-f);
#   4. the maintainer scripts (dpkg-deb -e): valid sh, the user created, the service not
#      enabled on install, the config's group set, purge cleaning up;
#   5. the unit: systemd-analyze verify clean, systemd-analyze security --offline=yes at
#      most 2.0, ExecStart and Documentation= pointing at files in the package, and still
#      the lines that let the daemon open serial ports, reach the network, keep its state;
#      Type=notify with its watchdog and NotifyAccess=main, and ExecReload sending SIGHUP;
#   6. the man pages render without warnings at 80 and 120 columns, with no raw Markdown;
#   7. the sysusers file, applied by systemd-sysusers --root to a scratch /etc, makes the
#      user bms2mqtt with its own group and in dialout;
#   8. as root, where bms2mqtt is neither installed nor a user yet: dpkg -i, check the user,
#      the config's owner and mode and that the service is disabled, dpkg --purge, and
#      remove the user again. Skipped (and said so) otherwise, or with --no-install.
# Prints one line per check and ends with "N passed, N failed". Usage:
#   scripts/check_package.sh [--no-install] [--keep DIR]   (--keep: also copy the .deb to DIR)
set -uo pipefail
cd "$(dirname "$0")/.."

install_check=1
keep=""
while [ $# -gt 0 ]; do
    case $1 in
    --no-install) install_check=0 ;;
    --keep) keep=$2; shift ;;
    *) echo "usage: $0 [--no-install] [--keep DIR]" >&2; exit 2 ;;
    esac
    shift
done

passed=0
failed=0
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAILED: $*"; failed=$((failed + 1)); }
check() { # check DESCRIPTION CMD...
    local what=$1
    shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
    exit
}

for tool in dpkg-buildpackage dh lintian pandoc systemd-analyze systemd-sysusers man; do
    command -v "$tool" >/dev/null || { bad "$tool is not installed (scripts/deps.sh)"; finish; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/bms2mqtt-pkg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
src="$tmp/src/bms2mqtt"
mkdir -p "$src"
start=$(date +%s)

# The tree as git sees it (tracked and new files, not ignored ones, not the build dirs).
git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
    tar --null -T - -cf - | tar -xf - -C "$src"

# Victron's register files lie in ../shared beside the tree, as on a developer's machine: the
# package build embeds them the same way (without them it reads the GX's core set alone, and
# its unit tests check that instead).
[ -d ../shared/protocols/victron ] && ln -s "$(cd ../shared && pwd)" "$tmp/src/shared"

# 1. Build.
if (cd "$src" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1; then
    ok "dpkg-buildpackage -us -uc -b ($(($(date +%s) - start)) s)"
else
    tail -n 40 "$tmp/build.log"
    bad "dpkg-buildpackage -us -uc -b"
    finish
fi
grep -E '^ *[0-9]+/[0-9]+ .*(OK|FAIL|SKIP)|^Ok:|^Fail:' "$tmp/build.log" | tail -n 3
grep -m 1 'Victron files embedded' "$tmp/build.log"
deb=$(ls "$tmp"/src/bms2mqtt_*.deb 2>/dev/null | grep -v dbgsym | head -n 1)
changes=$(ls "$tmp"/src/bms2mqtt_*.changes | head -n 1)
[ -n "$deb" ] || { bad "no .deb was built"; finish; }
echo "package: $(basename "$deb") ($(du -k "$deb" | cut -f1) KiB)"
[ -n "$keep" ] && cp "$deb" "$keep"/

# 2. lintian.
lintian --fail-on error --display-level '>=info' "$changes" >"$tmp/lintian.log" 2>&1
lintian_rc=$?
sed 's/^/  lintian: /' "$tmp/lintian.log"
check "lintian: no errors" test "$lintian_rc" -eq 0

# 3. Contents.
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|; s|/$||' >"$tmp/files"
for f in /usr/bin/bms2mqtt /usr/bin/bms-sim \
    /usr/share/man/man8/bms2mqtt.8.gz /usr/share/man/man5/bms2mqtt.yaml.5.gz \
    /usr/share/man/man1/bms-sim.1.gz /lib/systemd/system/bms2mqtt.service \
    /usr/lib/sysusers.d/bms2mqtt.conf /usr/share/doc/bms2mqtt/bms2mqtt.yaml.example \
    /usr/share/doc/bms2mqtt/README.Debian /usr/share/doc/bms2mqtt/copyright \
    /etc/bms2mqtt.yaml; do
    check "the package has $f" grep -qxF "$f" "$tmp/files"
done
dpkg-deb -e "$deb" "$tmp/control"
check "/etc/bms2mqtt.yaml is a conffile" grep -qxF /etc/bms2mqtt.yaml "$tmp/control/conffiles"
check "conffiles lists nothing else" test "$(wc -l <"$tmp/control/conffiles")" -eq 1
depends=$(dpkg-deb -f "$deb" Depends)
echo "  Depends: $depends"
check "Depends has the libraries and systemd-sysusers" \
    bash -c '[[ $1 == *libmosquitto1* && $1 == *libmodbus5* && $1 == *libsystemd0* &&
               $1 == *libmicrohttpd12* &&
               $1 == *"systemd | systemd-standalone-sysusers"* ]]' _ "$depends"

# 4. Maintainer scripts.
for s in "$tmp"/control/{preinst,postinst,prerm,postrm}; do
    [ -f "$s" ] && check "$(basename "$s") is valid sh" sh -n "$s"
done
post="$tmp/control/postinst"
check "postinst creates the user (systemd-sysusers bms2mqtt.conf)" \
    grep -q 'systemd-sysusers .*bms2mqtt\.conf' "$post"
check "postinst does not enable the service on install (dh_installsystemd --no-enable)" \
    bash -c 'grep -qE "if deb-systemd-helper debian-installed .?bms2mqtt.service" "$1" &&
             ! grep -q "new installations run enable" "$1"' _ "$post"
check "postinst makes the config root:bms2mqtt 0640 (dpkg-statoverride)" \
    grep -q 'dpkg-statoverride --update --add root bms2mqtt 0640 /etc/bms2mqtt.yaml' "$post"
check "postinst sets the config's group after the user exists" \
    bash -c '[ "$(grep -n systemd-sysusers "$1" | head -n1 | cut -d: -f1)" -lt \
               "$(grep -n "dpkg-statoverride --update" "$1" | cut -d: -f1)" ]' _ "$post"
check "postrm on purge removes the override, the state and the unit's state" \
    bash -c 'grep -q "dpkg-statoverride --remove /etc/bms2mqtt.yaml" "$1" &&
             grep -q "rm -rf /var/lib/bms2mqtt" "$1" && grep -q "deb-systemd-helper purge" "$1"' _ \
    "$tmp/control/postrm"

# 5. The unit, from the package.
root="$tmp/root"
dpkg-deb -x "$deb" "$root"
unit="$root/lib/systemd/system/bms2mqtt.service"
exec_path=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$unit")
check "ExecStart ($exec_path) is in the package" test -x "$root$exec_path"
check "Documentation= names the man pages" grep -qx 'Documentation=man:bms2mqtt(8) man:bms2mqtt.yaml(5)' "$unit"
# verify runs the ExecStart binary's path and man(1) for Documentation=: point both at
# the unpacked package, as systemd-analyze verify --root wants a whole system.
mkdir -p "$tmp/verify"
sed "s|^ExecStart=/|ExecStart=$root/|" "$unit" >"$tmp/verify/bms2mqtt.service"
verify_out=$(MANPATH="$root/usr/share/man" systemd-analyze verify "$tmp/verify/bms2mqtt.service" 2>&1)
verify_rc=$?
[ -n "$verify_out" ] && sed 's/^/  verify: /' <<<"$verify_out"
check "systemd-analyze verify is clean" test "$verify_rc" -eq 0 -a -z "$verify_out"
score=$(systemd-analyze security --offline=yes "$unit" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "  systemd-analyze security --offline=yes: ${score:-?}"
check "systemd-analyze security --offline=yes <= 2.0" \
    bash -c 'systemd-analyze security --offline=yes --threshold=20 "$1" >/dev/null 2>&1' _ "$unit"

# What the hardening must leave the daemon (live-tested once under systemd 252: a pty
# behind a symlink, a broker on 127.0.0.1, the state file; ttyS refused without its line).
for line in 'DeviceAllow=char-ttyUSB rw' 'DeviceAllow=char-ttyACM rw' 'DeviceAllow=char-ttyS rw' \
    'DeviceAllow=char-ttyAMA rw' 'PrivateDevices=no' 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' \
    'StateDirectory=bms2mqtt' 'User=bms2mqtt' 'SupplementaryGroups=dialout'; do
    check "the unit keeps $line" grep -qxF "$line" "$unit"
done
# The daemon's side of these (sd_notify READY/STATUS/WATCHDOG, SIGHUP) is tested in
# tests/integration/test_systemd.py.
for line in 'Type=notify' 'NotifyAccess=main' 'WatchdogSec=60s' 'ExecReload=/bin/kill -HUP $MAINPID'; do
    check "the unit has $line" grep -qxF "$line" "$unit"
done
check "the unit has no PrivateNetwork= or IPAddressDeny=" bash -c '! grep -qE "^(PrivateNetwork=yes|IPAddressDeny=)" "$1"' _ "$unit"

# 6. Man pages.
for page in "$root"/usr/share/man/man*/*.gz; do
    name=$(basename "$page" .gz)
    warnings=""
    for width in 80 120; do
        warnings+=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=$width man --warnings -E UTF-8 -l -Tutf8 -Z "$page" 2>&1 >/dev/null)
    done
    [ -n "$warnings" ] && sed 's/^/  man: /' <<<"$warnings"
    check "man $name renders without warnings" test -z "$warnings"
    text=$(LC_ALL=C.UTF-8 MANWIDTH=80 man -l "$page" 2>/dev/null)
    check "man $name has NAME and no raw Markdown" \
        bash -c 'grep -q "^NAME" <<<"$1" && ! grep -qE "^ *#+ |\`\`\`|\|---|\]\(" <<<"$1"' _ "$text"
done

# 7. The sysusers file in a scratch /etc.
sys="$tmp/sysroot"
mkdir -p "$sys/etc"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$sys/etc/passwd"
printf 'root:x:0:\ndialout:x:20:\n' >"$sys/etc/group"
: >"$sys/etc/shadow"
: >"$sys/etc/gshadow"
systemd-sysusers --root="$sys" "$root/usr/lib/sysusers.d/bms2mqtt.conf" >/dev/null 2>&1
check "sysusers: system user bms2mqtt with its own group" \
    bash -c 'u=$(grep "^bms2mqtt:" "$1/etc/passwd") && g=$(grep "^bms2mqtt:" "$1/etc/group") &&
             [ "$(cut -d: -f4 <<<"$u")" = "$(cut -d: -f3 <<<"$g")" ] && [ "$(cut -d: -f3 <<<"$u")" -lt 1000 ]' _ "$sys"
check "sysusers: bms2mqtt is in dialout" grep -qE '^dialout:x:20:(.*,)?bms2mqtt(,|$)' "$sys/etc/group"

# 8. Install and purge for real, where that changes nothing that was there.
if [ "$install_check" -eq 0 ]; then
    echo "skipped: dpkg -i / --purge (--no-install)"
elif [ "$(id -u)" -ne 0 ]; then
    echo "skipped: dpkg -i / --purge (not root)"
elif dpkg-query -W -f='${Status}' bms2mqtt 2>/dev/null | grep -q installed || getent passwd bms2mqtt >/dev/null ||
    getent group bms2mqtt >/dev/null || [ -e /etc/bms2mqtt.yaml ]; then
    echo "skipped: dpkg -i / --purge (bms2mqtt is installed here or its user or config exists)"
else
    if dpkg -i "$deb" >"$tmp/install.log" 2>&1; then
        ok "dpkg -i"
        check "installed: user bms2mqtt is in dialout" bash -c 'id -nG bms2mqtt | tr " " "\n" | grep -qx dialout'
        check "installed: /etc/bms2mqtt.yaml is root:bms2mqtt 640" \
            test "$(stat -c %U:%G:%a /etc/bms2mqtt.yaml)" = root:bms2mqtt:640
        enabled=$(systemctl is-enabled bms2mqtt.service 2>&1)
        check "installed: the service is $enabled (disabled expected)" test "$enabled" = disabled
    else
        cat "$tmp/install.log"
        bad "dpkg -i"
    fi
    if dpkg --purge bms2mqtt >>"$tmp/install.log" 2>&1; then
        ok "dpkg --purge"
        check "purged: no config, no override, no unit" \
            bash -c '! [ -e /etc/bms2mqtt.yaml ] && ! dpkg-statoverride --list /etc/bms2mqtt.yaml >/dev/null &&
                     ! [ -e /lib/systemd/system/bms2mqtt.service ]'
    else
        cat "$tmp/install.log"
        bad "dpkg --purge"
    fi
    # The user stays after a purge, as Debian keeps system users; this test made it.
    getent passwd bms2mqtt >/dev/null && userdel bms2mqtt
    getent group bms2mqtt >/dev/null && groupdel bms2mqtt
fi

echo "package check took $(($(date +%s) - start)) s"
finish
