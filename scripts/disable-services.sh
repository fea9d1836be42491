#!/bin/sh
# Keep Debian from starting at boot the services a package install enabled.
#
#   disable-services.sh ROOT --list            print the links that start services at boot
#   disable-services.sh ROOT --new-since FILE  disable the services whose links are not in FILE
#                                              (written by --list before `apt-get install`)
#   disable-services.sh ROOT NAME...           disable these services, e.g. on a machine where
#                                              an older `make tools` left vsftpd enabled
#
# `make tools` installs vsftpd, tftpd-hpa, Kea, ISC dhcpd, nginx, PostgreSQL, dnsmasq and
# fail2ban for their programs only: the tests start their own instances on loopback. Debian
# enables each service to start at boot, through a link in
# ROOT/etc/systemd/system/<target>.wants/ (systemd) or ROOT/etc/rc[2-5].d/S<NN><name>
# (sysvinit, and systemd's generator for services without a unit). This removes those links
# and leaves every other file alone. With ROOT=/ it first tells deb-systemd-helper and
# update-rc.d, so that an upgrade of the package does not enable the service again; with any
# other ROOT (a staging folder, the tests) it touches nothing outside ROOT.
set -eu

usage() {
    echo "usage: $0 ROOT --list | ROOT --new-since FILE | ROOT NAME..." >&2
    exit 2
}

[ $# -ge 2 ] || usage
ROOT=$1
shift
[ -d "$ROOT" ] || { echo "$0: no folder $ROOT" >&2; exit 2; }
ROOT=$(cd "$ROOT" && pwd)
TOP=${ROOT%/}

# The boot links, one path relative to ROOT a line, sorted.
links() {
    for link in "$TOP"/etc/systemd/system/*.wants/* "$TOP"/etc/rc[2-5].d/S*; do
        [ -L "$link" ] && echo "${link#"$TOP"/}"
    done | sort
}

# The service a boot link starts: vsftpd for .../vsftpd.service and for rc2.d/S01vsftpd.
# Timers and targets are not services (logrotate.timer rotates logs daily): none for them.
service_of() {
    name=${1##*/}
    case $1 in
        etc/systemd/*.service | etc/systemd/*.socket) echo "${name%.*}" ;;
        etc/systemd/*) ;;
        *) echo "$name" | sed 's/^S[0-9]*//' ;;
    esac
}

disable() {
    name=$1
    if [ "$ROOT" = / ]; then
        if command -v deb-systemd-helper >/dev/null 2>&1; then
            deb-systemd-helper disable "$name.service" >/dev/null 2>&1 || true
        fi
        if [ -x "/etc/init.d/$name" ] && command -v update-rc.d >/dev/null 2>&1; then
            update-rc.d "$name" disable >/dev/null 2>&1 || true
        fi
    fi
    for link in "$TOP"/etc/systemd/system/*.wants/"$name".service \
        "$TOP"/etc/systemd/system/*.wants/"$name".socket "$TOP"/etc/rc[2-5].d/S[0-9][0-9]"$name"; do
        if [ -L "$link" ]; then
            rm -f "$link"
            echo "not started at boot any more: $name (removed /${link#"$TOP"/})"
        fi
    done
}

case $1 in
    --list)
        [ $# -eq 1 ] || usage
        links
        ;;
    --new-since)
        [ $# -eq 2 ] || usage
        [ -r "$2" ] || { echo "$0: cannot read $2" >&2; exit 2; }
        links | while read -r link; do
            grep -qxF "$link" "$2" || service_of "$link"
        done | sort -u | while read -r name; do
            disable "$name"
        done
        ;;
    -*)
        usage
        ;;
    *)
        for name in "$@"; do
            disable "$name"
        done
        ;;
esac
