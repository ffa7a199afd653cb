#!/usr/bin/env bash
# Installs the Debian 12 packages the build, `make run` and the tests use, when
# they are missing: Debian's libtdb (the reference), tdb-tools, python3-tdb,
# Samba (smbd, smbclient, ldb-tools) and ctdb (the ctdb tool and the reference
# ctdbd), and a C toolchain; for the failover suite (compat-tests/ctdb/
# failover.sh) what Debian's event scripts use (ethtool, iptables) and an
# SMB2 client with byte-range locks (python3-impacket). Quiet: apt's output
# is shown only on failure.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
PKGS="libtdb1 libtdb-dev tdb-tools python3-tdb gcc make pkg-config samba smbclient ldb-tools ctdb iproute2 util-linux ethtool iptables python3-impacket"
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -n "$missing" ] || exit 0
log=$(mktemp)
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo -n"; fi
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends $missing; } </dev/null >"$log" 2>&1; then
	echo "apt-get install of$missing failed:" >&2
	cat "$log" >&2
	rm -f "$log"
	exit 1
fi
rm -f "$log"
