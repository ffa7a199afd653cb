#!/bin/sh
# bench/run.sh: build bench/tdbbench.c, run it on Debian's libtdb.so.1 and on
# ours (chosen with LD_LIBRARY_PATH, same binary), alternating the two
# libraries, best of BENCH_REPEATS runs per row, and print the comparison.
#
# Environment (defaults in brackets):
#   BENCH_SMOKE=1        tiny sizes, one repeat, short timings (for CI)
#   BENCH_CONFIGS        "records:hash[:mode,...] ..." (a config with modes runs
#                        only those) ["100000:131 100000:10007 1000000:10007
#                        100000:100001:mutex"]; hash 100001 with mutexes is
#                        CTDB's layout (ctdbd opens volatile databases so)
#   BENCH_MODES          modes for configs that name none, and a filter on
#                        those that do ["fcntl mutex"]
#   BENCH_REPEATS        [3]
#   BENCH_SECS           seconds per time-bound workload [0.3]
#   BENCH_FSYNC_SECS     seconds for the fsync'd-commit workload [1.0]
#   BENCH_WORKLOADS      comma-separated filter passed to tdbbench -w [all]
#   BENCH_TMPDIR         where the databases go [/var/tmp, else /tmp; never tmpfs]
#   BENCH_OUT            directory for raw.tsv and table.txt [<target>/release/bench]
#   DEBIAN_LIBDIR        directory holding Debian's libtdb.so.1 [/usr/lib/x86_64-linux-gnu]
#   BENCH_NO_BUILD=1     do not run cargo; use OURS_LIBDIR as is
#   OURS_LIBDIR          directory holding our libtdb.so.1 [<cargo target>/release]
#   CARGO, CC            [cargo, cc]
#
# Exit status: non-zero if the build or any benchmark run fails.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CARGO=${CARGO:-cargo}
CC=${CC:-cc}

if [ "${BENCH_SMOKE:-0}" = 1 ]; then
	: "${BENCH_CONFIGS:=2000:131 2000:100001:mutex}"
	: "${BENCH_REPEATS:=1}"
	: "${BENCH_SECS:=0.02}"
	: "${BENCH_FSYNC_SECS:=0.05}"
fi
CONFIGS=${BENCH_CONFIGS:-"100000:131 100000:10007 1000000:10007 100000:100001:mutex"}
MODES=${BENCH_MODES:-"fcntl mutex"}
REPEATS=${BENCH_REPEATS:-3}
SECS=${BENCH_SECS:-0.3}
FSYNC_SECS=${BENCH_FSYNC_SECS:-1.0}
DEBIAN_LIBDIR=${DEBIAN_LIBDIR:-/usr/lib/x86_64-linux-gnu}

# ---- build ----
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
	TARGET=$CARGO_TARGET_DIR
else
	TARGET=$ROOT/target
fi
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
	(cd "$ROOT" && $CARGO build --release --quiet)
	ln -sf libtdb.so "$TARGET/release/libtdb.so.1"
fi
OURS_LIBDIR=${OURS_LIBDIR:-$TARGET/release}
OUT=${BENCH_OUT:-$TARGET/release/bench}
mkdir -p "$OUT"
BIN=$OUT/tdbbench
$CC -O2 -std=c11 -Wall -Wextra -Werror -I"$ROOT/include" -o "$BIN" \
	"$ROOT/bench/tdbbench.c" -L"$OURS_LIBDIR" -ltdb

[ -e "$OURS_LIBDIR/libtdb.so.1" ] || { echo "run.sh: no $OURS_LIBDIR/libtdb.so.1" >&2; exit 1; }
HAVE_DEBIAN=1
if [ ! -e "$DEBIAN_LIBDIR/libtdb.so.1" ]; then
	echo "run.sh: $DEBIAN_LIBDIR/libtdb.so.1 not found; measuring ours only" >&2
	HAVE_DEBIAN=0
fi

# ---- a directory on a real filesystem (fsync must reach the disk) ----
pick_tmp() {
	for d in ${BENCH_TMPDIR:-} /var/tmp /tmp "$TARGET"; do
		[ -n "$d" ] && [ -d "$d" ] && [ -w "$d" ] || continue
		fs=$(stat -f -c %T "$d" 2>/dev/null || echo unknown)
		case $fs in tmpfs|ramfs) continue ;; esac
		echo "$d"
		return 0
	done
	echo "run.sh: no writable non-tmpfs directory found" >&2
	return 1
}
BASE=$(pick_tmp)
WORK=$(mktemp -d "$BASE/tdbbench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
FSTYPE=$(df --output=fstype "$WORK" 2>/dev/null | tail -n1 || true)
[ -n "$FSTYPE" ] || FSTYPE=$(stat -f -c %T "$WORK")

RAW=$OUT/raw.tsv
: > "$RAW"

# ---- machine ----
CPU=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n1)
MACHINE="nproc $(nproc), CPU ${CPU:-unknown}, kernel $(uname -sr), $(uname -m), databases on $FSTYPE ($BASE)"
echo "machine: $MACHINE"
echo "debian:  $(readlink -f "$DEBIAN_LIBDIR/libtdb.so.1" 2>/dev/null || echo none)"
echo "ours:    $(readlink -f "$OURS_LIBDIR/libtdb.so.1")"
echo "configs: $CONFIGS; modes: $MODES; best of $REPEATS; ${SECS}s per timed row, ${FSYNC_SECS}s fsync row"
echo

WFLAG=
[ -n "${BENCH_WORKLOADS:-}" ] && WFLAG="-w $BENCH_WORKLOADS"

run_one() { # label libdir mode records hash
	set +e
	# shellcheck disable=SC2086
	LD_LIBRARY_PATH=$2 "$BIN" -l "$1" -m "$3" -n "$4" -H "$5" -t "$SECS" \
		-f "$FSYNC_SECS" -d "$WORK" $WFLAG >> "$RAW"
	rc=$?
	set -e
	case $rc in
	0) ;;
	77) echo "  ($1 $3: robust mutexes unavailable, skipped)" >&2 ;;
	*) echo "run.sh: tdbbench failed ($1 $3 n=$4 h=$5), exit $rc" >&2; FAILED=1 ;;
	esac
}

FAILED=0
START=$(date +%s)
# The modes a config runs: its own list (records:hash:mode,...) filtered by
# BENCH_MODES, else BENCH_MODES.
config_modes() {
	rest=${1#*:}
	case $rest in
	*:*)
		for m in $(echo "${rest#*:}" | tr ',' ' '); do
			case " $MODES " in *" $m "*) printf '%s ' "$m" ;; esac
		done
		;;
	*) echo "$MODES" ;;
	esac
}

for cfg in $CONFIGS; do
	n=${cfg%%:*}
	h=${cfg#*:}
	h=${h%%:*}
	for mode in $(config_modes "$cfg"); do
		r=1
		while [ "$r" -le "$REPEATS" ]; do
			printf '  %s n=%s hash=%s repeat %s/%s\n' "$mode" "$n" "$h" "$r" "$REPEATS" >&2
			# alternate which library goes first
			if [ $((r % 2)) -eq 1 ]; then
				[ $HAVE_DEBIAN = 1 ] && run_one debian "$DEBIAN_LIBDIR" "$mode" "$n" "$h"
				run_one ours "$OURS_LIBDIR" "$mode" "$n" "$h"
			else
				run_one ours "$OURS_LIBDIR" "$mode" "$n" "$h"
				[ $HAVE_DEBIAN = 1 ] && run_one debian "$DEBIAN_LIBDIR" "$mode" "$n" "$h"
			fi
			r=$((r + 1))
		done
	done
done
ELAPSED=$(( $(date +%s) - START ))

# ---- table ----
TABLE=$OUT/table.txt
{
echo "machine: $MACHINE"
echo "best of $REPEATS runs per row, libraries alternated; ${SECS}s per timed row; total ${ELAPSED}s"
echo
awk -F'\t' '
function target(mode, w) { return (mode == "mutex" && w != "txn1_fsync") ? 1.5 : 1.0 }
{
	key = $2 SUBSEP $3 SUBSEP $4 SUBSEP $5
	if ($5 == "baseline") { if (!(($1, $2, $3, $4) in base) || $9 > base[$1, $2, $3, $4]) base[$1, $2, $3, $4] = $9; next }
	if (!(key in seen)) { seen[key] = 1; order[++nrows] = key }
	if ($8 > best[$1, key]) best[$1, key] = $8
	if ($5 ~ /^mixed_/) {
		if ($9 > crss[$1, $2, $3, $4]) crss[$1, $2, $3, $4] = $9
	} else if ($9 > rss[$1, $2, $3, $4]) rss[$1, $2, $3, $4] = $9
	if ($10 > dbmap[$1, $2, $3, $4]) dbmap[$1, $2, $3, $4] = $10
	if (!(($2, $3, $4) in grp)) { grp[$2, $3, $4] = 1; gorder[++ngrp] = $2 SUBSEP $3 SUBSEP $4 }
}
END {
	fmt = "%-14s %-5s %8s %6s %14s %14s %7s %7s %s\n"
	printf fmt, "workload", "mode", "records", "hash", "Debian ops/s", "ours ops/s", "ratio", "target", ""
	miss = 0
	for (i = 1; i <= nrows; i++) {
		split(order[i], k, SUBSEP)
		d = best["debian", order[i]]; o = best["ours", order[i]]
		t = target(k[1], k[4])
		if (d > 0) { ratio = sprintf("%.2f", o / d); flag = (o / d >= t) ? "" : "BELOW" }
		else { ratio = "-"; flag = "" }
		if (flag != "") miss++
		if (k[3] == 100001 && k[1] == "mutex") { ctdb = 1; flag = flag (flag != "" ? " " : "") "ctdb-layout" }
		printf fmt, k[4], k[1], k[2], k[3], (d > 0 ? sprintf("%.0f", d) : "-"), sprintf("%.0f", o), ratio, sprintf("%.2f", t), flag
	}
	if (ctdb) print "ctdb-layout: hash 100001 with mutexes, as ctdbd opens its volatile databases (DatabaseHashSize 100001)"
	printf "\n%d row(s) below target\n\n", miss
	print "peak RSS (getrusage ru_maxrss, kB; max over repeats): process = single-process rows, children = largest child of the mixed rows; baseline = before tdb_open, grow = peak - baseline"
	fmt2 = "%-5s %8s %6s %9s %9s %11s %11s %7s %9s %9s %7s %10s %10s\n"
	printf fmt2, "mode", "records", "hash", "deb base", "our base", "Debian peak", "ours peak", "ratio", "deb grow", "our grow", "ratio", "deb child", "our child"
	for (i = 1; i <= ngrp; i++) {
		split(gorder[i], k, SUBSEP)
		db = base["debian", k[1], k[2], k[3]]; ob = base["ours", k[1], k[2], k[3]]
		dp = rss["debian", k[1], k[2], k[3]]; op = rss["ours", k[1], k[2], k[3]]
		printf fmt2, k[1], k[2], k[3], (db ? db : "-"), ob, (dp ? dp : "-"), op, (dp ? sprintf("%.3f", op / dp) : "-"), \
			(dp ? dp - db : "-"), op - ob, (dp && dp > db ? sprintf("%.3f", (op - ob) / (dp - db)) : "-"), \
			(crss["debian", k[1], k[2], k[3]] ? crss["debian", k[1], k[2], k[3]] : "-"), \
			(crss["ours", k[1], k[2], k[3]] ? crss["ours", k[1], k[2], k[3]] : "-")
	}
	print ""
	print "database file mapped by the library (kB resident, max over rows and repeats; the mutex area included)"
	fmt3 = "%-5s %8s %6s %13s %13s %7s\n"
	printf fmt3, "mode", "records", "hash", "Debian mapped", "ours mapped", "ratio"
	for (i = 1; i <= ngrp; i++) {
		split(gorder[i], k, SUBSEP)
		dm = dbmap["debian", k[1], k[2], k[3]]; om = dbmap["ours", k[1], k[2], k[3]]
		printf fmt3, k[1], k[2], k[3], (dm ? dm : "-"), om, (dm ? sprintf("%.3f", om / dm) : "-")
	}
}' "$RAW"
} > "$TABLE"
cat "$TABLE"
echo
echo "raw results: $RAW"
echo "table:       $TABLE"
[ "$FAILED" = 0 ] || { echo "run.sh: at least one benchmark run failed" >&2; exit 1; }
