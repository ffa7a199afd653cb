#!/usr/bin/env bash
# `make test`: every gate and every suite, quietly: one line per part (details
# only on failure), and the total "N passed, M failed" as the last line.
#
# Parts, in order: the release build; the style gates (cargo fmt --check, cargo
# clippy -D warnings on every target, no function over 150 lines in ctdbd); cargo's tests in the release profile and
# the engine's tests again in the debug profile (overflow checks on); the ABI
# and header checks; the torture smoke; then the suites, each ending with its
# own "N passed, M failed" line: libtdb compatibility, Samba's programs on our
# library, Debian's ctdb tool against our release ctdbd and Debian's, the node
# transport on 3 of our nodes (compat-tests/ctdb/nodelink.sh), and the 3-node
# comparison (compat-tests/ctdb/cluster.sh: a cluster of ours beside a cluster
# of Debian's), persistent databases on 3 nodes, mixed clusters of ours
# and Debian's, public address takeover (compat-tests/ctdb/publicips.sh)
# clients following the address (compat-tests/ctdb/tickle.sh) and clustered
# Samba failing over (compat-tests/ctdb/failover.sh)
# (CLUSTER_SUITE=0 leaves the multi-node cluster suites out).
set -uo pipefail
cd "$(dirname "$0")/.."

MAKE=${MAKE:-make}
CARGO=${CARGO:-cargo}
BUILT=${BUILT:-target/release}
SUITES="compat-tests/run.sh compat-tests/samba/run.sh compat-tests/ctdb/run.sh compat-tests/ctdb/nodelink.sh compat-tests/ctdb/recserver.sh compat-tests/ctdb/migration.sh"
# libctdb (the ctdb_* C API) against our ctdbd and Debian's, 1 and 3 nodes.
SUITES="$SUITES compat-tests/libctdb/run.sh"
# The event daemon: Debian's ctdb-eventd and ours side by side, driven by
# Debian's ctdb-event tool (unix sockets only, no cluster).
SUITES="$SUITES compat-tests/ctdb/eventd.sh"
# Read-only delegations and sticky records, 3 nodes of Debian's and of ours
# (and two mixed clusters, left out with CLUSTER_SUITE=0).
SUITES="$SUITES compat-tests/ctdb/readonly.sh"
[ "${CLUSTER_SUITE:-1}" = 0 ] && export READONLY_MIXED=""
[ "${CLUSTER_SUITE:-1}" = 0 ] || SUITES="$SUITES compat-tests/ctdb/cluster.sh"
# Persistent commits, g_lock and traverses on 3 nodes (without its kill loop).
[ "${CLUSTER_SUITE:-1}" = 0 ] || SUITES="$SUITES compat-tests/ctdb/cluster-persistent.sh"
# Mixed clusters: our daemon and Debian's as nodes of one cluster.
[ "${CLUSTER_SUITE:-1}" = 0 ] || SUITES="$SUITES compat-tests/ctdb/cluster-mixed.sh"
# The leader yields without a cluster lock (stop, setleaderrole off, ban).
[ "${CLUSTER_SUITE:-1}" = 0 ] || SUITES="$SUITES compat-tests/ctdb/leader-nolock.sh"
# Public address takeover: ours and Debian's, same scenario, same `ctdb ip`.
[ "${CLUSTER_SUITE:-1}" = 0 ] || SUITES="$SUITES compat-tests/ctdb/publicips.sh"
# Event scripts and monitoring: ours and Debian's, same scenario, same views.
[ "${CLUSTER_SUITE:-1}" = 0 ] || SUITES="$SUITES compat-tests/ctdb/events.sh"
# Clients follow the address: ctdb_killtcp on real connections, gratuitous
# ARPs and tickle ACKs after a node dies, ours and Debian's in namespaces.
[ "${CLUSTER_SUITE:-1}" = 0 ] || SUITES="$SUITES compat-tests/ctdb/tickle.sh"
# Clustered Samba fails over (network namespaces, Debian's smbd on Debian's
# ctdbd, then on ours).
[ "${CLUSTER_SUITE:-1}" = 0 ] || SUITES="$SUITES compat-tests/ctdb/failover.sh"

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
pass=0
fail=0

# gate NAME COMMAND...: one test that passes when COMMAND exits 0.
gate() {
	local name=$1
	shift
	if "$@" >"$log/gate.log" 2>&1; then
		echo "PASS $name"
		pass=$((pass + 1))
	else
		echo "FAIL $name"
		tail -n 40 "$log/gate.log" | sed 's/^/    /'
		fail=$((fail + 1))
	fi
}

# cargo_tests NAME COMMAND...: adds up cargo's "test result:" lines.
cargo_tests() {
	local name=$1 rc p f
	shift
	"$@" >"$log/cargo.log" 2>&1
	rc=$?
	read -r p f < <(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { print p+0, f+0 }' "$log/cargo.log")
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
	pass=$((pass + p))
	fail=$((fail + f))
	if [ "$rc" = 0 ]; then
		echo "PASS $name ($p tests)"
	else
		echo "FAIL $name ($p passed, $f failed)"
		grep -E '^(test .* FAILED|error|---- |thread )' "$log/cargo.log" | head -n 40 | sed 's/^/    /'
	fi
}

if ! $MAKE --no-print-directory build >"$log/build.log" 2>&1; then
	echo "FAIL make build"
	tail -n 60 "$log/build.log" | sed 's/^/    /'
	echo "0 passed, 1 failed"
	exit 1
fi

gate "cargo fmt --check" $CARGO fmt --all --check
gate "cargo clippy --workspace --all-targets -D warnings" \
	$CARGO clippy --workspace --all-targets --quiet -- -D warnings
gate "no function over 150 lines in ctdbd/src" python3 scripts/fn-length.py ctdbd/src
gate "no function over 150 lines in eventd/src" python3 scripts/fn-length.py eventd/src
cargo_tests "cargo test --release" $CARGO test --release --workspace
cargo_tests "cargo test (debug profile, engine)" $CARGO test -p tdb-engine
# IP allocation against Samba's own unit cases, read from a Samba checkout
# when there is one (they are not kept in this repository).
SAMBA_REPO=${SAMBA_REPO:-/work/.mirror/samba-team+samba/repo}
if [ -d "$SAMBA_REPO" ] && python3 scripts/import-ipalloc-cases.py "$SAMBA_REPO" >"$log/ipalloc-cases.txt" 2>/dev/null; then
	IPALLOC_CASES=$log/ipalloc-cases.txt cargo_tests "ipalloc against Samba's unit cases" \
		$CARGO test --release -p ctdbd --bin ctdbd ipalloc -- --ignored
fi
for t in check-abi check-header; do
	gate "make $t" $MAKE --no-print-directory "$t"
done

# `make run`'s cluster part (issue 12, item 7): every node shows all three
# OK, the record written on node 0 is read on node 2, the nodes stop.
make_run_cluster() {
	local out
	out=$(bash scripts/run-cluster.sh "$BUILT/ctdbd" 2>&1)
	local rc=$?
	echo "$out"
	[ "$rc" = 0 ] &&
		[ "$(grep -cE '^pnn:[0-2] .*OK' <<<"$out")" = 3 ] &&
		grep -qF 'Data: size:5 ptr:[world]' <<<"$out"
}
gate "make run: 3 nodes OK, a record written on node 0 read on node 2" make_run_cluster

$MAKE --no-print-directory torture-smoke 2>&1 | tee "$log/torture.log" |
	grep --line-buffered -E '^(PASS|FAIL)|^    ' || true
tp=$(grep -c '^PASS' "$log/torture.log")
tf=$(grep -c '^FAIL' "$log/torture.log")
if [ "$tp" = 0 ] && [ "$tf" = 0 ]; then
	tf=1
	echo "FAIL torture-smoke did not run"
	tail -n 20 "$log/torture.log" | sed 's/^/    /'
fi
pass=$((pass + tp))
fail=$((fail + tf))

for suite in $SUITES; do
	OURS_LIBDIR=$BUILT bash "$suite" 2>&1 | tee "$log/suite.log" |
		grep --line-buffered -v -E '^[0-9]+ passed, [0-9]+ failed$' || true
	last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log/suite.log" | tail -n 1)
	if [ -n "$last" ]; then
		set -- $last
		pass=$((pass + $1))
		fail=$((fail + $3))
	else
		fail=$((fail + 1))
		echo "FAIL $suite gave no total"
	fi
done

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
