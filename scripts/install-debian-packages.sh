#!/bin/sh
# Install the Debian packages named that are missing, and leave their services off:
# policy-rc.d (exit 101) keeps apt from starting them, and disable-services.sh removes
# the boot links the install made (only those: services enabled before stay enabled).
# Not root: says what is missing and succeeds, so `make` goes on without them.
set -u
missing=""
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
        || missing="$missing $package"
done
[ -n "$missing" ] || exit 0
echo "installing Debian packages:$missing"
if [ "$(id -u)" != 0 ]; then
    echo "not root: cannot install$missing; what needs them is skipped"
    exit 0
fi
here=$(dirname "$0")
before=$(mktemp)
"$here/disable-services.sh" / --list > "$before"
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
apt-get update -qq
# $missing is a list of words: split on purpose.
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
rc=$?
rm -f /usr/sbin/policy-rc.d
"$here/disable-services.sh" / --new-since "$before"
rm -f "$before"
exit $rc
