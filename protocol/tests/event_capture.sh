#!/bin/bash
# Recaptures fixtures/eventd/debian-4.17.txt: starts Debian's ctdb-eventd in a temp
# CTDB_BASE (test mode, unix socket only), puts event_proxy.py in front of
# its socket under a second CTDB_BASE and runs Debian's ctdb-event tool
# through the proxy, which records every chunk each side sends.
# Usage: protocol/tests/event_capture.sh [OUT]   (default fixtures/eventd/debian-4.17.txt)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/fixtures/eventd/debian-4.17.txt}
T=$(mktemp -d /tmp/event-capture.XXXXXX)
mkdir -p "$T/A/run" "$T/B/run" "$T/B/events/legacy"
printf '#!/bin/sh\necho "ok $1 $2"\nexit 0\n' > "$T/B/events/legacy/01.ok.script"
printf '#!/bin/sh\necho "failing $@" >&2\nexit 3\n' > "$T/B/events/legacy/02.fail.script"
chmod +x "$T"/B/events/legacy/*.script
CTDB_TEST_MODE=yes CTDB_BASE=$T/B CTDB_INTERACTIVE=1 \
    /usr/libexec/ctdb/ctdb-eventd -P $$ > "$T/eventd.log" 2>&1 &
DPID=$!
for _ in $(seq 50); do [ -S "$T/B/run/eventd.socket" ] && break; sleep 0.1; done
python3 "$HERE/event_proxy.py" "$T/A/run/eventd.socket" "$T/B/run/eventd.socket" "$T/cap.txt" &
PPID_=$!
for _ in $(seq 50); do [ -S "$T/A/run/eventd.socket" ] && break; sleep 0.1; done
E() { CTDB_TEST_MODE=yes CTDB_BASE=$T/A /usr/libexec/ctdb/ctdb-event "$@"; }
E status legacy monitor
E run 10 legacy monitor a b
E status legacy monitor
E run 10 legacy startup x
E status legacy startup
E status legacy nope
CTDB_EVENT_RUN_ALL=1 E run 10 legacy monitor a b
E run 5 legacy ipreallocated
E status legacy ipreallocated
E run 5 nosuch x
E status nosuch x
kill "$PPID_" "$DPID"
wait 2>/dev/null
{
    echo "# Debian 4.17 ctdb-event tool (c2d) and ctdb-eventd (d2c) over the eventd socket, captured by"
    echo "# protocol/tests/event_capture.sh: status before/after runs, run with args, RUN_ALL, no args, missing component."
    echo "# scripts: 01.ok (echo \"ok \$1 \$2\"), 02.fail (echo \"failing \$@\" >&2; exit 3)"
    cat "$T/cap.txt"
} > "$OUT"
rm -rf "$T"
