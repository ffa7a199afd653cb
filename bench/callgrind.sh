#!/bin/sh
# bench/callgrind.sh: instructions per operation (valgrind --tool=callgrind),
# Debian's libtdb against ours, per single-process workload.  Deterministic,
# so it is the number to watch on a noisy or shared machine; it does not see
# cache misses or system-call cost (fcntl locks count as one instruction).
#
# Environment: CG_CONFIGS ["20000:131 20000:10007"; an entry may name its modes,
# records:hash:mode,..., e.g. 20000:100001:mutex for CTDB's layout], CG_MODES
# ["fcntl mutex": the modes of entries that name none],
# CG_SECS [0.3], DEBIAN_LIBDIR, OURS_LIBDIR [<cargo target>/release],
# CG_OUT [<cargo target>/release/bench/callgrind]. Builds nothing in Rust: run
# `make build` (or bench/run.sh) first.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-cc}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OURS_LIBDIR=${OURS_LIBDIR:-$TARGET/release}
DEBIAN_LIBDIR=${DEBIAN_LIBDIR:-/usr/lib/x86_64-linux-gnu}
CONFIGS=${CG_CONFIGS:-"20000:131 20000:10007"}
MODES=${CG_MODES:-"fcntl mutex"}
SECS=${CG_SECS:-0.3}
OUT=${CG_OUT:-$TARGET/release/bench/callgrind}
WL=fetch,parse_record,fetch_missing,traverse_read,modify,txn100_nosync,txn1_fsync,delete
mkdir -p "$OUT"
BIN=$OUT/tdbbench-g
$CC -O2 -g -std=c11 -I"$ROOT/include" -o "$BIN" "$ROOT/bench/tdbbench.c" -L"$OURS_LIBDIR" -ltdb
WORK=$(mktemp -d /var/tmp/tdbcg.XXXXXX)
trap 'rm -rf "$WORK"' EXIT INT TERM

# function name in tdbbench.c -> workload name in its output
fnmap='w_insert insert w_fetch fetch w_parse parse_record w_missing fetch_missing w_traverse traverse_read w_modify modify w_txn100 txn100_nosync w_txn_fsync txn1_fsync w_delete delete'

printf '%-14s %-5s %7s %6s %14s %14s %7s\n' workload mode records hash "Debian Ir/op" "ours Ir/op" "ratio"
for cfg in $CONFIGS; do
	n=${cfg%%:*}; h=${cfg#*:}
	modes=$MODES
	case $h in *:*) modes=$(echo "${h#*:}" | tr ',' ' ') ;; esac
	h=${h%%:*}
	for mode in $modes; do
		for lib in debian ours; do
			[ $lib = debian ] && lp=$DEBIAN_LIBDIR || lp=$OURS_LIBDIR
			LD_LIBRARY_PATH=$lp valgrind --tool=callgrind -q \
				--callgrind-out-file="$OUT/cg.$lib.$mode.$n.$h" \
				"$BIN" -l $lib -m "$mode" -n "$n" -H "$h" -t "$SECS" -f "$SECS" \
				-d "$WORK" -w $WL > "$OUT/out.$lib.$mode.$n.$h"
			callgrind_annotate --inclusive=yes "$OUT/cg.$lib.$mode.$n.$h" 2>/dev/null |
				awk -v map="$fnmap" 'BEGIN { k = split(map, a, " "); for (i = 1; i < k; i += 2) m[a[i]] = a[i + 1] }
				{ for (f in m) if (index($0, ":" f " ")) { v = $1; gsub(",", "", v); print m[f], v } }' \
				> "$OUT/ir.$lib.$mode.$n.$h"
		done
		awk -v mode="$mode" -v n="$n" -v h="$h" '
			FILENAME ~ /\/out\./ { lib = $1; ops[lib, $5] = $6; next }
			{ split(FILENAME, p, "/"); lib = (p[length(p)] ~ /^ir\.debian/) ? "debian" : "ours"; ir[lib, $1] = $2 }
			END { c = split("insert fetch parse_record fetch_missing traverse_read modify txn100_nosync txn1_fsync delete", order, " ")
				for (i = 1; i <= c; i++) { w = order[i]
				d = ops["debian", w] ? ir["debian", w] / ops["debian", w] : 0
				o = ops["ours", w] ? ir["ours", w] / ops["ours", w] : 0
				printf "%-14s %-5s %7s %6s %14.0f %14.0f %7s\n", w, mode, n, h, d, o, (o > 0 ? sprintf("%.2f", d / o) : "-") } }' \
			"$OUT/out.debian.$mode.$n.$h" "$OUT/out.ours.$mode.$n.$h" \
			"$OUT/ir.debian.$mode.$n.$h" "$OUT/ir.ours.$mode.$n.$h"
	done
done
echo "(ratio = Debian instructions / ours: above 1.00 means ours executes fewer; raw files in $OUT)"
