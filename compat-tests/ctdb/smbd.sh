# Clustered smbd on each daemon: sourced by compat-tests/ctdb/run.sh, which
# provides make_base, start_daemon, wait_ready, stop_daemon, tool,
# STARTED_PIDS and RUN (and, from lib.sh, pass, fail, wanted, group_pids,
# free_port and the smb.conf and smbd launch pieces).
#
# Debian's smbd (samba package) runs with `clustering = yes` and `ctdbd
# socket` pointing at a fresh single node of one daemon, first Debian's
# ctdbd, then ours.  Every tdb smbd opens through dbwrap then lives in the
# daemon: volatile ones (locking, brlock, smbXsrv_*, g_lock, leases) and
# persistent ones (secrets, passdb, registry, share_info, ...).  smbclient
# then puts, gets, lists, renames and deletes files, two sessions run at
# once, a session holding a file open makes another session's delete fail
# with a sharing violation (the open is seen across smbd processes through
# locking.tdb), smbstatus lists the live session (a traverse through the
# daemon), and smbd is restarted.  `ctdb getdbmap`, the smbclient outputs,
# smbstatus, the record count of every database afterwards, and the answers
# about the node's public addresses are compared between the two daemons.
# Takes about 8 s per daemon (Debian's node is started early by run.sh, so
# its first recovery overlaps the rest of the runner).
#
# Environment:
#   SMB_USER   existing unix account added to passdb (default: daemon)
#   SMBD_PORT  first TCP port tried for smbd (default 4455)
#
# smbd listens on 127.0.0.1 only; the two nodes use 127.0.0.4 (Debian's) and
# 127.0.0.5 (ours).  smbd is started in a session of its own (setsid without
# a fork, so $! is smbd) and stopped by its pid; smbd then ends its children.

SMB_USER=${SMB_USER:-daemon}
SMB_PASS=Ctdb-Compat-1
SMBD_NAMES=(
	"pdbedit user in the clustered passdb"
	"smbd starts"
	"put, get, ls, rename, delete"
	"two sessions at once"
	"eight sessions in parallel"
	"share mode seen across sessions"
	"smbstatus"
	"databases live in ctdbd"
	"restart of smbd"
	"getdbmap lists smbd's databases"
)
SMBD_COMPARE=("compare: smbd getdbmap" "compare: smbd smbclient output" "compare: smbd smbstatus"
	"compare: smbd record counts" "compare: smbd node public addresses")

# smbd_make_node DIR ADDR: a node for smbd.  Its public_addresses lists two
# addresses (never hosted: failover is disabled), so that TCP_CLIENT and
# GET_PUBLIC_IPS, which smbd sends for every connection, see a non-empty list.
smbd_make_node() {
	make_base "$1" "$2"
	printf '%s\n' "10.99.0.1/24 lo" "10.99.0.2/24 lo" >"$1/public_addresses"
}

# smbd_pass / smbd_fail NAME [DETAILS]: pass/fail for the tests FILTER selects.
smbd_pass() { if wanted "$1"; then pass "$@"; fi; }
smbd_fail() { if wanted "$1"; then fail "$@"; fi; }

smbd_wanted() {
	local n
	for n in "${SMBD_NAMES[@]}"; do
		wanted "smbd-debian: $n" && return 0
		wanted "smbd-ours: $n" && return 0
	done
	for n in "${SMBD_COMPARE[@]}" "smbd-ours: no unknown controls"; do
		wanted "$n" && return 0
	done
	return 1
}

# smbd_conf DIR SOCKET PORT [ADDR [SHARE]]: smb.conf in DIR for an smbd on
# ADDR (default 127.0.0.1) serving SHARE (default DIR/share).
smbd_conf() {
	local d=$1 sock=$2 port=$3 addr=${4:-127.0.0.1} share=${5:-$1/share}
	smb_state_dirs "$d"
	mkdir -p "$d/files" "$share"
	chmod 1777 "$share"
	chmod 755 "$d"
	cat >"$d/smb.conf" <<EOF
[global]
	server role = standalone server
	workgroup = CTDBCOMPAT
	netbios name = CTDBCOMPAT
	clustering = yes
	ctdbd socket = $sock
	smb ports = $port
	interfaces = $addr
	bind interfaces only = yes
	disable netbios = yes
$(smb_state_conf "$d")
[share]
	path = $share
	read only = no
EOF
}

# smbd_start DIR PORT [ADDR]: sets SMBD_PID once smbd listens on ADDR:PORT
# (any address by default); on failure SMBD_ERR says why.  (Not to be run in
# a subshell: smbd must be this shell's child.)
smbd_start() {
	local d=$1 port=$2 addr=${3:-} i
	SMBD_ERR=""
	smbd_launch SMBD_PID "$d/smb.conf" "$d/smbd.out"
	for i in $(seq 150); do
		if ! kill -0 "$SMBD_PID" 2>/dev/null; then
			SMBD_ERR="smbd exited: $(tail -5 "$d/smbd.out")"
			return 1
		fi
		if [ -n "$(ss -Htln "sport = :$port" 2>/dev/null | grep -F "${addr:+$addr:}$port")" ]; then
			if [ "$(cat "/proc/$SMBD_PID/comm" 2>/dev/null)" != smbd ]; then
				SMBD_ERR="pid $SMBD_PID is not smbd"
				return 1
			fi
			return 0
		fi
		sleep 0.1
	done
	SMBD_ERR="smbd does not listen on $port after 15 s: $(tail -5 "$d/smbd.out")"
	return 1
}

# smbd_stop PID: stops smbd by its pid; its children (its process group) must
# go too.  SMBD_ERR says what was left.
smbd_stop() {
	local pid=$1 i left
	SMBD_ERR=""
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	for i in $(seq 100); do
		left=$(group_pids "$pid")
		[ -z "$left" ] && break
		sleep 0.1
	done
	wait "$pid" 2>/dev/null
	if [ -n "$left" ]; then
		SMBD_ERR="still running 10 s after the stop: $left"
		for i in $left; do kill -KILL "$i" 2>/dev/null; done
		return 1
	fi
	return 0
}

smbc() { # smbc DIR PORT ARGS...: smbclient against [share] (on SMBC_ADDR)
	local d=$1 port=$2
	shift 2
	timeout -k 5 60 smbclient "//${SMBC_ADDR:-127.0.0.1}/share" -p "$port" --configfile="$d/smb.conf" \
		-U "$SMB_USER%$SMB_PASS" "$@"
}

# smbc_norm DIR: masks transfer rates, dates, free space and the directory.
smbc_norm() {
	sed -E -e "s#$1#DIR#g" \
		-e 's/\([0-9.]+ [A-Za-z/]+\) \(average [0-9.]+ [A-Za-z/]+\)/(RATE)/' \
		-e 's/[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}/DATE/' \
		-e 's/[0-9]+ blocks of size [0-9]+\. [0-9]+ blocks available/N blocks of size N. N blocks available/'
}

# smbc_log DIR PORT OUT NAME ARGS...: runs smbclient, stdout and stderr to
# OUT/NAME.out and OUT/NAME.err (normalised; separate files, as their
# interleaving depends on buffering), the exit status to OUT/NAME.rc.
smbc_log() {
	local d=$1 port=$2 out=$3 name=$4 rc
	shift 4
	smbc "$d" "$port" "$@" >"$out/$name.out.raw" 2>"$out/$name.err.raw"
	rc=$?
	echo "$rc" >"$out/$name.rc"
	smbc_norm "$d" <"$out/$name.out.raw" >"$out/$name.out"
	smbc_norm "$d" <"$out/$name.err.raw" >"$out/$name.err"
	return $rc
}

# smbstatus_norm DIR: masks pids, client ports, dates, the directory and
# column widths.
smbstatus_norm() {
	sed -E -e "s#$1#DIR#g" -e 's/[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}( UTC)?/DATE/' \
		-e 's/(ipv4:127\.0\.0\.1:)[0-9]+/\1PORT/' -e 's/(^| )[0-9]+:[0-9]+ /\1PNN:PID /g' \
		-e 's/ +/ /g' -e 's/-+$/---/'
}

# smbd_scenario KIND NODE-BASE: the whole scenario against one daemon; the
# node is running and ready.  Transcripts go to $RUN/smbd.KIND.
smbd_scenario() {
	local k=$1 b=$2 d=$RUN/smb.$1 out=$RUN/smbd.$1 port t msg ok i n pid2 hpid fa spid1 spid2
	local sock=$b/run/ctdbd.socket
	mkdir -p "$out"
	# smbd serves the share as the test user, who must reach it.
	chmod 755 "$RUN"
	if ! port=$(free_port "${SMBD_PORT:-4455}"); then
		fail "smbd-$k: smbd starts" "no free port"
		return
	fi
	smbd_conf "$d" "$sock" "$port"
	local f=$d/files

	t="smbd-$k: pdbedit user in the clustered passdb"
	# passdb.tdb is a persistent database of the cluster: pdbedit's writes go
	# through the daemon (g_lock and TRANS3_COMMIT).
	msg=$(printf '%s\n%s\n' "$SMB_PASS" "$SMB_PASS" | timeout 30 pdbedit --configfile="$d/smb.conf" -a -u "$SMB_USER" -t 2>&1 >/dev/null)
	if [ $? -eq 0 ] && timeout 30 pdbedit --configfile="$d/smb.conf" -L 2>&1 | grep -q "^$SMB_USER:" &&
		[ -s "$b/db/persistent/passdb.tdb.0" ] && [ ! -e "$d/private/passdb.tdb" ]; then
		smbd_pass "$t"
	else smbd_fail "$t" "$msg $(ls "$d/private" "$b/db/persistent")"; fi

	t="smbd-$k: smbd starts"
	if smbd_start "$d" "$port"; then
		smbd_pass "$t"
	else
		smbd_fail "$t" "$SMBD_ERR"
		smbd_stop "$SMBD_PID"
		return
	fi

	t="smbd-$k: put, get, ls, rename, delete"
	head -c 1048576 /dev/urandom >"$f/big.bin"
	printf 'hello from the ctdb compat suite\n' >"$f/small.txt"
	ok=true
	msg=""
	smbc_log "$d" "$port" "$out" files1 -c "put $f/big.bin big.bin; put $f/small.txt small.txt; mkdir sub; put $f/small.txt sub/s2.txt; ls" || ok=false
	smbc_log "$d" "$port" "$out" files2 -c "get big.bin $f/big.back; get sub/s2.txt $f/s2.back" || ok=false
	cmp -s "$f/big.bin" "$f/big.back" && cmp -s "$f/small.txt" "$f/s2.back" || { ok=false; msg+="contents differ after get; "; }
	smbc_log "$d" "$port" "$out" files3 -c "rename small.txt renamed.txt; rm sub/s2.txt; rmdir sub; ls" || ok=false
	grep -q ' renamed\.txt ' "$out/files3.out" || { ok=false; msg+="renamed.txt missing; "; }
	grep -q ' small\.txt \| sub ' "$out/files3.out" && { ok=false; msg+="small.txt or sub still listed; "; }
	smbc_log "$d" "$port" "$out" files4 -c "rm renamed.txt; ls" || ok=false
	grep -q ' renamed\.txt ' "$out/files4.out" && { ok=false; msg+="rm did not remove renamed.txt; "; }
	grep -q ' big\.bin ' "$out/files4.out" || { ok=false; msg+="big.bin missing; "; }
	# and on the disk of the share
	[ ! -e "$d/share/renamed.txt" ] && [ ! -e "$d/share/small.txt" ] && cmp -s "$f/big.bin" "$d/share/big.bin" ||
		{ ok=false; msg+="share directory does not match; "; }
	if $ok; then smbd_pass "$t"; else smbd_fail "$t" "$msg$(cat "$out"/files*.err)"; fi

	t="smbd-$k: two sessions at once"
	# Two interactive smbclients (each its own smbd process) read their
	# commands from a file.  After its first put each one signals and waits
	# (smbclient's `!` runs a local command) until the test has seen both
	# sessions in `smbstatus -b`; then both carry on.
	ok=true
	msg=""
	for i in 1 2; do
		head -c $((300000 + i * 4099)) /dev/urandom >"$f/c$i"
		cat >"$f/sess$i.cmds" <<EOF
put $f/c$i c$i
!touch $f/ready$i; for j in \$(seq 200); do [ -e $f/go ] && break; sleep 0.05; done
ls c$i
get c$i $f/c$i.back
rename c$i d$i
get d$i $f/d$i.back
rm d$i
EOF
		timeout -k 5 60 smbclient //127.0.0.1/share -p "$port" --configfile="$d/smb.conf" -U "$SMB_USER%$SMB_PASS" \
			<"$f/sess$i.cmds" >"$out/sess$i.out.raw" 2>"$out/sess$i.err.raw" &
		eval "spid$i=\$!"
	done
	for i in $(seq 200); do [ -e "$f/ready1" ] && [ -e "$f/ready2" ] && break; sleep 0.05; done
	timeout 30 smbstatus --configfile="$d/smb.conf" -b >"$out/smbstatus-b.raw" 2>&1
	touch "$f/go"
	wait "$spid1"
	echo $? >"$out/sess1.rc"
	wait "$spid2"
	echo $? >"$out/sess2.rc"
	n=$(grep -cE "^[0-9]+:[0-9]+ +$SMB_USER " "$out/smbstatus-b.raw")
	[ "$n" = 2 ] || { ok=false; msg+="smbstatus -b shows $n sessions, not 2: $(cat "$out/smbstatus-b.raw"); "; }
	smbstatus_norm "$d" <"$out/smbstatus-b.raw" >"$out/smbstatus-b"
	for i in 1 2; do
		smbc_norm "$d" <"$out/sess$i.out.raw" >"$out/sess$i.out"
		smbc_norm "$d" <"$out/sess$i.err.raw" >"$out/sess$i.err"
		[ "$(cat "$out/sess$i.rc")" = 0 ] || { ok=false; msg+="session $i: rc $(cat "$out/sess$i.rc"); "; }
		cmp -s "$f/c$i" "$f/c$i.back" && cmp -s "$f/c$i" "$f/d$i.back" || { ok=false; msg+="session $i: contents differ; "; }
		[ ! -e "$d/share/d$i" ] && [ ! -e "$d/share/c$i" ] || { ok=false; msg+="c$i/d$i not deleted; "; }
	done
	if $ok; then smbd_pass "$t"; else smbd_fail "$t" "$msg$(cat "$out"/sess*.err)"; fi

	t="smbd-$k: eight sessions in parallel"
	# Eight smbd processes creating, reading, renaming and deleting files
	# in one shared directory at the same time: their records in locking.tdb,
	# smbXsrv_open_global.tdb and the rest migrate through the daemon.
	ok=true
	msg=""
	smbc "$d" "$port" -c "mkdir par" >/dev/null 2>&1 || { ok=false; msg+="mkdir par failed; "; }
	local ppids=()
	for i in $(seq 8); do
		head -c $((100000 + i * 4099)) /dev/urandom >"$f/p$i"
		smbc "$d" "$port" -c "put $f/p$i par/p$i; get par/p$i $f/p$i.back; rename par/p$i par/q$i; get par/q$i $f/q$i.back; ls par/q$i; rm par/q$i" \
			>"$f/par$i.out" 2>&1 &
		ppids+=($!)
	done
	for i in $(seq 8); do
		wait "${ppids[$((i - 1))]}"
		n=$?
		[ "$n" = 0 ] || { ok=false; msg+="session $i: rc $n: $(tail -3 "$f/par$i.out"); "; }
		cmp -s "$f/p$i" "$f/p$i.back" && cmp -s "$f/p$i" "$f/q$i.back" || { ok=false; msg+="session $i: contents differ; "; }
	done
	smbc "$d" "$port" -c "rmdir par" >/dev/null 2>&1 || { ok=false; msg+="par not empty; "; }
	[ ! -e "$d/share/par" ] || { ok=false; msg+="par still there; "; }
	if $ok; then smbd_pass "$t"; else smbd_fail "$t" "$msg"; fi

	t="smbd-$k: share mode seen across sessions"
	# Session A opens big.bin (no delete sharing) and keeps it open; session
	# B, another smbd process, must get a sharing violation deleting it:
	# the open is only known through locking.tdb in the daemon.
	ok=true
	msg=""
	mkfifo "$f/a.in"
	timeout -k 5 60 stdbuf -oL -eL smbclient //127.0.0.1/share -p "$port" --configfile="$d/smb.conf" \
		-U "$SMB_USER%$SMB_PASS" <"$f/a.in" >"$f/a.out" 2>&1 &
	hpid=$!
	exec {fa}>"$f/a.in"
	echo "open big.bin" >&"$fa"
	for i in $(seq 100); do grep -q 'fnum' "$f/a.out" && break; sleep 0.1; done
	grep -q 'fnum' "$f/a.out" || { ok=false; msg+="A could not open big.bin: $(cat "$f/a.out"); "; }
	smbc_log "$d" "$port" "$out" share1 -c "rm big.bin"
	grep -q NT_STATUS_SHARING_VIOLATION "$out/share1.err" "$out/share1.out" ||
		{ ok=false; msg+="no sharing violation for B; "; }
	[ -e "$d/share/big.bin" ] || { ok=false; msg+="big.bin deleted under A; "; }
	# smbstatus reads the sessions, tree connects and opens by traversing the
	# databases through the daemon (TRAVERSE_START).
	timeout 30 smbstatus --configfile="$d/smb.conf" >"$out/smbstatus.raw" 2>&1
	echo "rc=$?" >>"$out/smbstatus.raw"
	smbstatus_norm "$d" <"$out/smbstatus.raw" >"$out/smbstatus"
	exec {fa}>&-
	wait "$hpid"
	# Once A is gone, B may rename it (which needs delete access too).
	smbc_log "$d" "$port" "$out" share2 -c "rename big.bin kept.bin; ls" || ok=false
	[ ! -e "$d/share/big.bin" ] && [ -e "$d/share/kept.bin" ] || { ok=false; msg+="big.bin not renamed after A closed; "; }
	if $ok; then smbd_pass "$t"; else smbd_fail "$t" "$msg"; fi

	t="smbd-$k: smbstatus"
	if grep -q "^share PNN:PID 127.0.0.1 DATE" "$out/smbstatus" && grep -q " RDWR .* DIR/share big.bin DATE" "$out/smbstatus" &&
		grep -q "^PNN:PID $SMB_USER " "$out/smbstatus" && grep -q "^rc=0" "$out/smbstatus"; then
		smbd_pass "$t"
	else smbd_fail "$t" "$(cat "$out/smbstatus.raw")"; fi

	t="smbd-$k: databases live in ctdbd"
	# smbd's databases are the daemon's files; none is opened locally.
	ok=true
	msg=""
	for i in locking brlock smbXsrv_session_global smbXsrv_open_global g_lock; do
		[ -s "$b/db/volatile/$i.tdb.0" ] || { ok=false; msg+="no $i.tdb.0 in the node; "; }
		[ ! -e "$d/lock/$i.tdb" ] || { ok=false; msg+="local $i.tdb; "; }
	done
	for i in secrets passdb registry; do
		[ -s "$b/db/persistent/$i.tdb.0" ] || { ok=false; msg+="no persistent $i.tdb.0; "; }
		[ ! -e "$d/private/$i.tdb" ] && [ ! -e "$d/state/$i.tdb" ] || { ok=false; msg+="local $i.tdb; "; }
	done
	if $ok; then smbd_pass "$t"; else smbd_fail "$t" "$msg"; fi

	t="smbd-$k: restart of smbd"
	# smbd's parent is a client of the daemon; after it is stopped (by its
	# pid) it is not, and a new smbd serves the files written before.
	ok=true
	msg=""
	tool "$b" process-exists "$SMBD_PID" >/dev/null 2>&1 || { ok=false; msg+="process-exists does not see smbd; "; }
	smbd_stop "$SMBD_PID" || { ok=false; msg+="$SMBD_ERR; "; }
	tool "$b" process-exists "$SMBD_PID" >/dev/null 2>&1 && { ok=false; msg+="smbd still a client after stop; "; }
	pid2=$SMBD_PID
	if smbd_start "$d" "$port"; then
		[ "$SMBD_PID" != "$pid2" ] || { ok=false; msg+="same pid; "; }
		smbc_log "$d" "$port" "$out" restart -c "get kept.bin $f/kept.back; rm kept.bin; ls" || ok=false
		cmp -s "$f/big.bin" "$f/kept.back" || { ok=false; msg+="kept.bin differs after restart; "; }
		[ ! -e "$d/share/kept.bin" ] || { ok=false; msg+="kept.bin not deleted after restart; "; }
		tool "$b" process-exists "$SMBD_PID" >/dev/null 2>&1 || { ok=false; msg+="process-exists does not see the new smbd; "; }
	else
		ok=false
		msg+="$SMBD_ERR; "
	fi
	if $ok; then smbd_pass "$t"; else smbd_fail "$t" "$msg"; fi
	smbd_stop "$SMBD_PID"

	timeout 30 $PY "$HERE/rawclient.py" "$sock" pubips 10.99.0.1 >"$out/pubips" 2>&1
	echo "rc=$?" >>"$out/pubips"
	# The tool's view of the same addresses (GET_PUBLIC_IPS, GET_PUBLIC_IP_INFO,
	# GET_IFACES).
	for i in "ip" "ip -v" "ip all" "-X ip -v" "ifaces" "-X ifaces" "ipinfo 10.99.0.1" "ipinfo 10.99.0.9"; do
		echo "== ctdb $i"
		# shellcheck disable=SC2086
		tool "$b" $i 2>&1
		echo "rc=$?"
	done >"$out/ipcmds"

	t="smbd-$k: getdbmap lists smbd's databases"
	tool "$b" getdbmap 2>&1 | sed -e "s#$b#BASE#g" | sort >"$out/getdbmap"
	ok=true
	msg=""
	for i in locking brlock smbXsrv_session_global smbXsrv_tcon_global smbXsrv_open_global smbXsrv_client_global \
		smbXsrv_version_global g_lock leases; do
		grep -q "name:$i\.tdb path:BASE/db/volatile/$i\.tdb\.0$" "$out/getdbmap" || { ok=false; msg+="$i.tdb; "; }
	done
	for i in secrets passdb registry share_info account_policy group_mapping; do
		grep -q "name:$i\.tdb path:BASE/db/persistent/$i\.tdb\.0 PERSISTENT$" "$out/getdbmap" || { ok=false; msg+="$i.tdb; "; }
	done
	if $ok; then smbd_pass "$t"; else smbd_fail "$t" "missing: $msg
$(cat "$out/getdbmap")"; fi
	# How many records each database holds once smbd is gone (catdb skips
	# the records smbd emptied; neither daemon vacuums within the test).
	for i in $(sed -n 's/.* name:\([^ ]*\) .*/\1/p' "$out/getdbmap"); do
		echo "$i: $(tool "$b" catdb "$i" 2>&1 | tail -1)"
	done >"$out/catdb"
}

# smbd_suite DEB-BASE DEB-STARTED: runs the scenario on Debian's node (already
# started by the caller, possibly still recovering) and then on a fresh node
# of ours; compares.
smbd_suite() {
	local db=$1 deb_started=$2 ob=$RUN/ours/smbnode n have=false
	if ! command -v smbd >/dev/null || ! command -v smbclient >/dev/null || ! command -v pdbedit >/dev/null; then
		for n in "${SMBD_NAMES[@]}"; do fail "smbd-ours: $n (samba, smbclient not installed)"; done
		return
	fi
	if ! $deb_started; then
		fail "smbd-debian: reference node did not start" "$(tail -5 "$db/log.ctdb" 2>/dev/null)"
	elif ! wait_ready "$db"; then
		fail "smbd-debian: reference node never became ready" "$(tail -5 "$db/log.ctdb")"
	else
		smbd_scenario debian "$db"
		have=true
	fi
	[ -s "$db/run/ctdbd.pid" ] && stop_daemon "$db"

	smbd_make_node "$ob" 127.0.0.5
	if ! start_daemon "$CTDBD_BIN" "$ob" || ! wait_ready "$ob"; then
		fail "smbd-ours: node did not start" "$(tail -5 "$ob/log.ctdb" 2>/dev/null)"
		stop_daemon "$ob"
		return
	fi
	smbd_scenario ours "$ob"
	if wanted "smbd-ours: no unknown controls"; then
		if grep -i "unknown control\|unsupported operation\|malformed packet" "$ob/log.ctdb" >"$RUN/smbd.unknown"; then
			fail "smbd-ours: no unknown controls" "$(head -20 "$RUN/smbd.unknown")"
		else pass "smbd-ours: no unknown controls"; fi
	fi
	stop_daemon "$ob"

	local a=$RUN/smbd.debian o=$RUN/smbd.ours name files
	for name in "${SMBD_COMPARE[@]}"; do
		wanted "$name" || continue
		case $name in
		*getdbmap) files=(getdbmap) ;;
		*smbstatus) files=(smbstatus smbstatus-b) ;;
		*counts) files=(catdb) ;;
		*addresses) files=(pubips ipcmds) ;;
		*) files=() && for n in files1 files2 files3 files4 sess1 sess2 share1 share2 restart; do
			files+=("$n.out" "$n.err" "$n.rc")
		done ;;
		esac
		if ! $have; then
			fail "$name (no reference output)"
			continue
		fi
		msg=""
		for n in "${files[@]}"; do
			msg+=$(diff -u --label "debian/$n" --label "ours/$n" "$a/$n" "$o/$n" 2>&1)
		done
		if [ -z "$msg" ]; then pass "$name"; else fail "$name" "$msg"; fi
	done
}
