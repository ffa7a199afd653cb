#!/usr/bin/env bash
# Event daemon latency, Debian's ctdb-eventd and ours: N (default 50)
# `ctdb-event run 10 legacy x` over three trivial scripts, then N
# `ctdb-event status legacy x`; prints milliseconds per command (the tool's
# own start-up included, the same for both).  Unix sockets only, temp dirs.
#
#   bench/eventd.sh [N]
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
N=${1:-50}
OURS=${EVENTD_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/ctdb-eventd}
TOOL=/usr/libexec/ctdb/ctdb-event
for k in debian ours; do
	B=$(mktemp -d "${TMPDIR:-/tmp}/eventd-bench.XXXXXX")
	mkdir -p "$B/run" "$B/events/legacy"
	for s in 01.a 02.b 03.c; do printf '#!/bin/sh\nexit 0\n' >"$B/events/legacy/$s.script"; done
	chmod 0755 "$B"/events/legacy/*
	bin=$OURS
	[ "$k" = debian ] && bin=/usr/libexec/ctdb/ctdb-eventd
	CTDB_TEST_MODE=yes CTDB_BASE=$B CTDB_INTERACTIVE=1 "$bin" -P $$ >"$B/log" 2>&1 &
	p=$!
	for _ in $(seq 100); do [ -S "$B/run/eventd.socket" ] && break; sleep 0.05; done
	t0=$(date +%s%N)
	for _ in $(seq "$N"); do CTDB_TEST_MODE=yes CTDB_BASE=$B "$TOOL" run 10 legacy x; done
	t1=$(date +%s%N)
	for _ in $(seq "$N"); do CTDB_TEST_MODE=yes CTDB_BASE=$B "$TOOL" status legacy x >/dev/null; done
	t2=$(date +%s%N)
	printf '%-6s run %6.2f ms   status %6.2f ms\n' "$k" \
		"$(echo "($t1 - $t0) / 1000000 / $N" | bc -l)" "$(echo "($t2 - $t1) / 1000000 / $N" | bc -l)"
	kill "$p"
	wait "$p" 2>/dev/null
	rm -rf "$B"
done
