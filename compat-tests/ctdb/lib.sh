# What the CTDB compat suites share: sourced (never run) at the top of a
# suite, after `set -uo pipefail`:
#
#   HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
#   . "$HERE/lib.sh"
#
# It sets ROOT (the checkout), CLUSTER (scripts/cluster.sh, or CLUSTER_SH),
# BUILT (make's $(BUILT): OURS_LIBDIR, else CARGO_TARGET_DIR/release, else
# ROOT/target/release, kept as given, relative or not) and the counters
# PASSED and FAILED, and defines:
#
#   counting  ok NAME / bad NAME WHY   "PASS NAME (Ns)" / "FAIL NAME: WHY"
#             pass NAME / fail NAME [DETAILS]
#                                      "PASS NAME" / "FAIL NAME" with DETAILS
#                                      indented below it (40 lines at most)
#             same_files NAME A B      pass when files A and B are equal,
#                                      fail with their diff otherwise
#             finish                   prints "N passed, M failed" (what
#                                      `make test` adds up) and exits, 0 when
#                                      nothing failed
#             wanted NAME, note TEXT   FILTER selection; "# TEXT (Ns)"
#   time      now, elapsed A B [DIGITS], wait_for SECONDS CMD...
#   run dir   new_run_dir PREFIX, remove_run, stop_clusters_under DIR
#   network   reexec_unshared VAR UNSHARE-OPTION... -- ARG...,
#             loopback_up ADDR..., veth_pair_up A B
#   clusters  ctdb_on DIR K ARGS..., both CMD..., compare_views NAME LIMIT
#             VIEW, cluster_up NAME DIR LOG N ADDR KIND [TUNABLES...],
#             tool_rc DIR K ARGS..., cattdb_each DIR DB OUT, compare_steps
#             PREFIX WORD A B, need_daemons OURS DEBIAN, mask_latencies
#   one node  ctdb_base DIR ADDR, start_daemon BIN BASE
#   processes group_pids PGID, stop_pid PID, free_port FIRST
#   samba     smb_state_dirs DIR, smb_state_conf DIR, smbd_launch PIDVAR
#             CONF OUT [PREFIX...]
#
# Sourced by events.sh, publicips.sh, tickle.sh, failover.sh, run.sh (and
# smbd.sh, which run.sh and cluster-mixed.sh source after it), migration.sh,
# readonly.sh, recserver.sh, nodelink.sh, leader-nolock.sh, cluster.sh,
# cluster-mixed.sh, ../libctdb/run.sh and ../samba/run.sh.  A suite whose
# checks report differently defines its own function of the same name after
# sourcing (cluster-mixed.sh's ok and bad write to a per-configuration
# report, nodelink.sh's bad shows a file).  A helper that starts a process
# leaves its pid in STARTED_PIDS (or the caller's variable) for the suite to
# stop it by pid; no helper binds an address.

SUITE_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$SUITE_LIB/../.." && pwd)
CLUSTER=${CLUSTER_SH:-$ROOT/scripts/cluster.sh}
BUILT=${OURS_LIBDIR:-${CARGO_TARGET_DIR:-$ROOT/target}/release}
PASSED=0
FAILED=0

# ---------------------------------------------------------------- counting

# ok NAME: one passed check, with the suite's running time.
ok() {
	echo "PASS $1 (${SECONDS}s)"
	PASSED=$((PASSED + 1))
}

# bad NAME WHY: one failed check, WHY on the same line.
bad() {
	echo "FAIL $1: $2"
	FAILED=$((FAILED + 1))
}

# pass NAME: one passed check.
pass() {
	echo "PASS $1"
	PASSED=$((PASSED + 1))
}

# fail NAME [DETAILS]: one failed check, DETAILS indented below (40 lines).
fail() {
	echo "FAIL $1"
	[ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/    /' | head -40
	FAILED=$((FAILED + 1))
}

# same_files NAME A B: pass when files A and B are equal, else fail with the diff.
same_files() {
	local d
	if d=$(diff "$2" "$3"); then pass "$1"; else fail "$1" "$d"; fi
}

# finish: the suite's total line, then exit (non-zero when anything failed).
finish() {
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit $?
}

# wanted NAME: NAME is selected by FILTER (every name when FILTER is empty).
wanted() { [ -z "${FILTER:-}" ] || [[ "$1" == *"$FILTER"* ]]; }

# note TEXT: a comment line with the suite's running time.
note() { echo "# $* (${SECONDS}s)"; }

# -------------------------------------------------------------------- time

# now: the clock in seconds, with nanoseconds.
now() { date +%s.%N; }

# elapsed A B [DIGITS]: B - A in seconds, DIGITS decimals (default 3).
elapsed() { awk -v a="$1" -v b="$2" -v d="${3:-3}" 'BEGIN { printf "%.*f", d, b - a }'; }

# wait_for SECONDS CMD...: until CMD succeeds (0) or SECONDS pass (1); polls
# every 0.1 s, CMD's output discarded.
wait_for() {
	local end=$((SECONDS + $1))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ $SECONDS -ge $end ] && return 1
		sleep 0.1
	done
}

# ----------------------------------------------------------------- run dir

# new_run_dir PREFIX: a fresh directory under TMPDIR (or /tmp), printed.
new_run_dir() { mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX"; }

# remove_run: RUN removed, or kept and named on stderr with COMPAT_KEEP set.
remove_run() {
	if [ -z "${COMPAT_KEEP:-}" ]; then rm -rf "$RUN"; else echo "kept $RUN" >&2; fi
}

# stop_clusters_under DIR: every cluster laid out by scripts/cluster.sh
# directly under DIR stopped (by pid, as cluster.sh stops them).
stop_clusters_under() {
	local d
	for d in "$1"/*/; do
		[ -e "$d/nodes" ] && bash "$CLUSTER" stop "$d" >/dev/null 2>&1
	done
}

# ----------------------------------------------------------------- network

# reexec_unshared VAR UNSHARE-OPTION... -- ARG...: unless VAR is set, the
# suite runs again with ARGs under `unshare OPTIONS` with VAR=1 (this
# process is replaced); with VAR set it returns at once.
reexec_unshared() {
	local var=$1 opts=()
	shift
	while [ "$1" != -- ]; do
		opts+=("$1")
		shift
	done
	shift
	[ -n "${!var:-}" ] && return 0
	exec env "$var=1" unshare "${opts[@]}" bash "$0" "$@"
}

# loopback_up ADDR...: lo up (in the suite's own network namespace), with
# each ADDR on it as a /32.
loopback_up() {
	local a
	ip link set lo up
	for a in "$@"; do ip addr add "$a/32" dev lo; done
}

# veth_pair_up A B: a veth pair A-B, both ends up.
veth_pair_up() {
	ip link add "$1" type veth peer name "$2"
	ip link set "$1" up
	ip link set "$2" up
}

# ---------------------------------------------------------------- clusters

# ctdb_on DIR K ARGS...: Debian's ctdb tool against node K of cluster DIR,
# stopped after 20 s.
ctdb_on() { CLUSTER_TOOL_TIMEOUT=20 bash "$CLUSTER" ctdb "$@"; }

# both CMD...: `CMD... $OURS` and `CMD... $DEB` at once (CMD takes the
# cluster's directory last); returns when both have.
both() {
	"$@" "$OURS" &
	local p=$!
	"$@" "$DEB"
	wait $p
}

# compare_views NAME LIMIT VIEW: `VIEW DIR FILE` writes what the tools show
# of cluster DIR into FILE; run for $OURS and $DEB at once, again every
# 0.5 s until the two read the same (ok NAME; the view is left in VIEWED) or
# LIMIT seconds have passed (bad NAME with the diff; returns 1).
compare_views() {
	local name=$1 limit=$2 view=$3 end a b
	end=$((SECONDS + limit))
	while :; do
		"$view" "$OURS" "$RUN/view.ours" &
		"$view" "$DEB" "$RUN/view.debian"
		wait
		a=$(cat "$RUN/view.ours")
		b=$(cat "$RUN/view.debian")
		if [ "$a" = "$b" ]; then
			ok "$name"
			VIEWED=$b
			return 0
		fi
		[ $SECONDS -ge $end ] && break
		sleep 0.5
	done
	bad "$name" "ours and Debian's differ (< ours, > Debian's):
$(diff <(echo "$a") <(echo "$b") | head -40)"
	return 1
}

# cluster_up NAME DIR LOG N ADDR KIND [TUNABLES...]: an N-node cluster of
# KIND in DIR from ADDR, node 0 the leader (start --leader-first), healthy
# within 90 s; the tool's output in LOG.start and LOG.wait.  On failure,
# fail "NAME: cluster start" or "NAME: cluster healthy" and returns 1.
cluster_up() {
	local name=$1 dir=$2 log=$3 n=$4 addr=$5 kind=$6
	shift 6
	if ! bash "$CLUSTER" start --leader-first "$dir" "$n" "$addr" "$kind" "$@" >"$log.start" 2>&1; then
		fail "$name: cluster start" "$(tail -n 30 "$log.start")"
		return 1
	fi
	if ! bash "$CLUSTER" wait "$dir" 90 >"$log.wait" 2>&1; then
		fail "$name: cluster healthy" "$(tail -n 30 "$log.wait")"
		return 1
	fi
}

# tool_rc DIR K ARGS...: Debian's ctdb tool on node K of DIR, its output
# (stderr too) followed by "rc=STATUS".
tool_rc() {
	bash "$CLUSTER" ctdb "$@" 2>&1
	echo "rc=$?"
}

# cattdb_each DIR DB OUT: `ctdb cattdb DB` of nodes 0, 1 and 2 of DIR into
# OUT.0, OUT.1 and OUT.2 (with tool_rc's status line).
cattdb_each() {
	local k
	for k in 0 1 2; do tool_rc "$1" "$k" cattdb "$2" >"$3.$k"; done
}

# compare_steps PREFIX WORD A B: for each "NODE ARGS..." of STEPS (step i
# from 1), A/out/i.step and A/out/i.cattdb.K (K = 0-2) against B's:
# "PREFIXstep i: node NODE: WORDARGS" and the same with ": cattdb on node K".
compare_steps() {
	local prefix=$1 word=$2 a=$3/out b=$4/out i=0 s k name
	for s in "${STEPS[@]}"; do
		i=$((i + 1))
		name="${prefix}step $i: node ${s%% *}: $word${s#* }"
		same_files "$name" "$a/$i.step" "$b/$i.step"
		for k in 0 1 2; do
			same_files "$name: cattdb on node $k" "$a/$i.cattdb.$k" "$b/$i.cattdb.$k"
		done
	done
}

# need_daemons OURS DEBIAN: both daemon binaries are there, or a failure
# naming the missing one and the suite's end.
need_daemons() {
	if [ ! -x "$1" ]; then
		fail "our ctdbd at $1 (run make build)"
		finish
	fi
	if [ ! -x "$2" ]; then
		fail "Debian's ctdbd at $2 (scripts/deps.sh)"
		finish
	fi
}

# mask_latencies: `ctdb dbstatistics` with its latencies and times masked
# (hop counts and hot keys stay).
mask_latencies() {
	sed -E -e 's#MIN/AVG/MAX +[0-9.]+/[0-9.]+/[0-9.]+ sec#MIN/AVG/MAX T/T/T sec#' \
		-e 's/^( +[a-z_]+latency +)[0-9.]+ sec/\1T sec/'
}

# ---------------------------------------------------------------- one node

# ctdb_base DIR ADDR: a CTDB_BASE for one node of address ADDR run in test
# mode, as Samba's ctdb/tests/local_daemons.sh lays one out but without a
# cluster lock: database, event script and run directories, no public
# addresses, ctdb.conf logging to DIR/log.ctdb at INFO, failover disabled.
# The caller writes DIR/nodes and DIR/ctdb.tunables.
ctdb_base() {
	local b=$1
	mkdir -p "$b/db/volatile" "$b/db/persistent" "$b/db/state" "$b/events/legacy" "$b/run"
	: >"$b/public_addresses"
	cat >"$b/ctdb.conf" <<EOF
[logging]
	location = file:$b/log.ctdb
	log level = INFO

[cluster]
	node address = $2

[database]
	volatile database directory = $b/db/volatile
	persistent database directory = $b/db/persistent
	state database directory = $b/db/state

[failover]
	disabled = true
EOF
}

# start_daemon BIN BASE: ctdbd BIN in test mode on BASE (it forks), until its
# pid file and socket are there (10 s; status 1 otherwise); the pid joins
# STARTED_PIDS.
start_daemon() {
	local bin=$1 b=$2 i
	(cd "$b" && CTDB_TEST_MODE=yes CTDB_BASE=$b "$bin") >"$b/start.out" 2>&1 || return 1
	for i in $(seq 1 100); do
		if [ -s "$b/run/ctdbd.pid" ] && [ -S "$b/run/ctdbd.socket" ]; then
			STARTED_PIDS+=("$(cat "$b/run/ctdbd.pid")")
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# --------------------------------------------------------------- processes

# group_pids PGID: the live processes of a process group (a zombie waiting
# for our `wait` does not count).
group_pids() { ps -eo pid=,pgid=,stat= | awk -v g="$1" '$2 == g && $3 !~ /^Z/ { print $1 }'; }

# stop_pid PID: TERM, then KILL after 5 s; waits for it when it is our child.
stop_pid() {
	local pid=$1 i
	kill "$pid" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

# free_port FIRST: the first TCP port from FIRST to FIRST+100 that nothing
# listens on (printed), or status 1.
free_port() {
	local p
	for p in $(seq "$1" $(($1 + 100))); do
		if [ -z "$(ss -Htln "sport = :$p" 2>/dev/null)" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# ------------------------------------------------------------------- samba

# smb_state_dirs DIR: the directories smb_state_conf names, under DIR.
smb_state_dirs() { mkdir -p "$1"/{lock,state,cache,private,pid,ncalrpc,binddns,log,usershares}; }

# smb_state_conf DIR: smb.conf [global] lines that keep all of an smbd's
# state under DIR (tdbsam passdb, no printing, no on-demand RPC helpers).
smb_state_conf() {
	cat <<EOF
	lock directory = $1/lock
	state directory = $1/state
	cache directory = $1/cache
	private dir = $1/private
	pid directory = $1/pid
	ncalrpc dir = $1/ncalrpc
	binddns dir = $1/binddns
	usershare path = $1/usershares
	log file = $1/log/log.%m
	max log size = 0
	passdb backend = tdbsam
	disable spoolss = yes
	load printers = no
	printing = bsd
	printcap name = /dev/null
	rpc start on demand helpers = no
EOF
}

# smbd_launch PIDVAR CONF OUT [PREFIX...]: Debian's smbd with CONF in the
# foreground of a session of its own (setsid without a fork: the pid is
# smbd's, and its children share its process group), run by PREFIX (e.g.
# `ip netns exec NS`), output appended to OUT; its pid in the variable
# PIDVAR and in STARTED_PIDS.  Not to be run in a subshell: smbd must be this
# shell's child.
smbd_launch() {
	local var=$1 conf=$2 out=$3
	shift 3
	"$@" setsid smbd --foreground --no-process-group --configfile="$conf" -d1 --debug-stdout \
		>>"$out" 2>&1 </dev/null &
	printf -v "$var" '%s' "$!"
	STARTED_PIDS+=("$!")
}
