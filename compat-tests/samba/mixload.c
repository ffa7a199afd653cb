/*
 * mixload: one process of the mixed-library load test (compat-tests/samba).
 *
 * Built against include/tdb.h and linked -ltdb; run under Debian's libtdb or
 * ours by LD_LIBRARY_PATH.  Several of these hammer one file at once.
 *
 *   mixload hold   FILE MODE STOPFILE MAXSECS  open first, keep open until STOPFILE
 *   mixload work   FILE MODE WID SECS SEED LOG run a random op mix for SECS seconds
 *   mixload check  FILE MODE LOG...           tdb_check + verify all worker logs
 *
 * MODE is "fcntl" (TDB_DEFAULT|TDB_SEQNUM) or "mutex"
 * (TDB_MUTEX_LOCKING|TDB_CLEAR_IF_FIRST|TDB_SEQNUM).
 *
 * Key spaces:
 *   k<n>          random store/delete/fetch, value self-describing
 *   a<n>          tdb_append of "[a<n>:<wid>]" chunks, deleted when long
 *   c<n>          counters incremented under tdb_chainlock only
 *   t.<wid>.<seq>.<j>  written by transactions only, never deleted
 * Each worker's LOG gets one line per finished transaction:
 *   C <wid> <seq> <nkeys>   committed (tdb_transaction_commit returned 0)
 *   X <wid> <seq> <nkeys>   cancelled (must leave nothing behind)
 * and at exit one "I <counter> <increments>" per counter and "END <errors>".
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <tdb.h>

#define HASH_SIZE 131
#define NKEYS 400
#define NAPPEND 24
#define NCOUNTERS 16
#define MAXAPPEND 1500

static const char *g_wid = "?";
static long g_errors;
static uint64_t rng_state;

static uint32_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ULL) >> 32);
}
static uint32_t rn(uint32_t n) { return rnd() % n; }

static void err(const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "[%s] ERROR: ", g_wid);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	g_errors++;
}

static void logfn(struct tdb_context *tdb, enum tdb_debug_level level,
		  const char *fmt, ...)
{
	va_list ap;
	(void)tdb;
	if (level > TDB_DEBUG_ERROR)
		return;
	fprintf(stderr, "[%s] tdb log(%d): ", g_wid, (int)level);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static TDB_DATA mk(const char *s)
{
	TDB_DATA d = { (unsigned char *)s, strlen(s) };
	return d;
}

static int mode_flags(const char *mode)
{
	if (strcmp(mode, "fcntl") == 0)
		return TDB_DEFAULT | TDB_SEQNUM;
	if (strcmp(mode, "mutex") == 0)
		return TDB_MUTEX_LOCKING | TDB_CLEAR_IF_FIRST | TDB_SEQNUM;
	fprintf(stderr, "bad mode %s\n", mode);
	exit(2);
}

static struct tdb_context *open_db(const char *file, const char *mode)
{
	struct tdb_logging_context lc = { logfn, NULL };
	int flags = mode_flags(mode);
	struct tdb_context *tdb;

	if ((flags & TDB_MUTEX_LOCKING) && !tdb_runtime_check_for_robust_mutexes()) {
		fprintf(stderr, "[%s] robust mutexes not available\n", g_wid);
		exit(3);
	}
	tdb = tdb_open_ex(file, HASH_SIZE, flags, O_RDWR | O_CREAT, 0600, &lc, NULL);
	if (tdb == NULL) {
		fprintf(stderr, "[%s] tdb_open_ex(%s) failed: %s\n", g_wid, file,
			strerror(errno));
		exit(2);
	}
	return tdb;
}

/* ---- value formats ---- */

/* k<n>: "<key>|<len>|" followed by filler up to len bytes */
static size_t make_kval(char *buf, const char *key, size_t len)
{
	int n = snprintf(buf, 64, "%s|%zu|", key, len);
	size_t i;
	char fill = 'a' + (char)(strlen(key) % 26);
	if ((size_t)n > len)
		len = n;
	for (i = n; i < len; i++)
		buf[i] = fill;
	return len;
}

static bool check_kval(const char *key, TDB_DATA d)
{
	char hdr[80];
	size_t len, i;
	int n;
	char fill = 'a' + (char)(strlen(key) % 26);
	if (d.dsize < strlen(key) + 3 || memcmp(d.dptr, key, strlen(key)) != 0)
		return false;
	if (d.dptr[strlen(key)] != '|')
		return false;
	len = strtoul((const char *)d.dptr + strlen(key) + 1, NULL, 10);
	n = snprintf(hdr, sizeof(hdr), "%s|%zu|", key, len);
	if (len != d.dsize && !(len < (size_t)n && d.dsize == (size_t)n))
		return false;
	if (memcmp(d.dptr, hdr, n) != 0)
		return false;
	for (i = n; i < d.dsize; i++)
		if (d.dptr[i] != fill)
			return false;
	return true;
}

/* a<n>: sequence of "[<key>:<wid>]" */
static bool check_aval(const char *key, TDB_DATA d)
{
	size_t pos = 0, kl = strlen(key);
	while (pos < d.dsize) {
		const unsigned char *end;
		if (d.dptr[pos] != '[' || pos + kl + 3 > d.dsize ||
		    memcmp(d.dptr + pos + 1, key, kl) != 0 || d.dptr[pos + 1 + kl] != ':')
			return false;
		end = memchr(d.dptr + pos, ']', d.dsize - pos);
		if (end == NULL)
			return false;
		pos = (size_t)(end - d.dptr) + 1;
	}
	return true;
}

/* t.<wid>.<seq>.<j>: "T:<key>:" + filler of (seq*7+j)%200 bytes of 'x' */
static size_t make_tval(char *buf, const char *key, long seq, int j)
{
	int n = snprintf(buf, 128, "T:%s:", key);
	size_t extra = (size_t)((seq * 7 + j) % 200), i;
	for (i = 0; i < extra; i++)
		buf[n + i] = 'x';
	return n + extra;
}

static bool check_record(TDB_DATA k, TDB_DATA d, char *why, size_t whylen)
{
	char key[128];
	if (k.dsize == 0 || k.dsize >= sizeof(key)) {
		snprintf(why, whylen, "bad key size %zu", k.dsize);
		return false;
	}
	memcpy(key, k.dptr, k.dsize);
	key[k.dsize] = 0;
	switch (key[0]) {
	case 'k':
		if (!check_kval(key, d)) {
			snprintf(why, whylen, "bad value for %s (len %zu)", key, d.dsize);
			return false;
		}
		return true;
	case 'a':
		if (!check_aval(key, d)) {
			snprintf(why, whylen, "bad append value for %s (len %zu)", key, d.dsize);
			return false;
		}
		return true;
	case 'c': {
		size_t i;
		if (d.dsize == 0 || d.dsize > 20) {
			snprintf(why, whylen, "bad counter %s", key);
			return false;
		}
		for (i = 0; i < d.dsize; i++)
			if (d.dptr[i] < '0' || d.dptr[i] > '9') {
				snprintf(why, whylen, "bad counter %s", key);
				return false;
			}
		return true;
	}
	case 't': {
		char buf[512];
		long seq;
		int j;
		char wid[64];
		size_t n;
		if (sscanf(key, "t.%63[^.].%ld.%d", wid, &seq, &j) != 3) {
			snprintf(why, whylen, "bad txn key %s", key);
			return false;
		}
		n = make_tval(buf, key, seq, j);
		if (n != d.dsize || memcmp(buf, d.dptr, n) != 0) {
			snprintf(why, whylen, "bad txn value for %s", key);
			return false;
		}
		return true;
	}
	}
	snprintf(why, whylen, "unexpected key %s", key);
	return false;
}

static int trav_check(struct tdb_context *tdb, TDB_DATA k, TDB_DATA d, void *p)
{
	char why[200];
	long *count = p;
	(void)tdb;
	(*count)++;
	if (!check_record(k, d, why, sizeof(why)))
		err("traverse: %s", why);
	return 0;
}

static int trav_delete_some(struct tdb_context *tdb, TDB_DATA k, TDB_DATA d, void *p)
{
	long *count = p;
	char why[200];
	(*count)++;
	if (!check_record(k, d, why, sizeof(why)))
		err("traverse(w): %s", why);
	if (k.dsize > 0 && k.dptr[0] == 'k' && rn(8) == 0) {
		if (tdb_delete(tdb, k) != 0 && tdb_error(tdb) != TDB_ERR_NOEXIST)
			err("delete in traverse: %s", tdb_errorstr(tdb));
	}
	return 0;
}

static int check_cb(TDB_DATA k, TDB_DATA d, void *p)
{
	char why[200];
	(void)p;
	if (!check_record(k, d, why, sizeof(why))) {
		fprintf(stderr, "tdb_check callback: %s\n", why);
		return -1;
	}
	return 0;
}

/* ---- hold ---- */

static int do_hold(int argc, char **argv)
{
	const char *file = argv[2], *mode = argv[3], *stop = argv[4];
	double deadline = now() + atof(argv[5]);
	struct tdb_context *tdb;
	g_wid = "holder";
	(void)argc;
	tdb = open_db(file, mode);
	printf("ready\n");
	fflush(stdout);
	while (access(stop, F_OK) != 0 && now() < deadline)
		usleep(50000);
	tdb_close(tdb);
	return 0;
}

/* ---- work ---- */

static long counters[NCOUNTERS];
static long busy;       /* nonblocking lock attempts that found the lock taken */
static long tolerated;  /* EDEADLK answers from fcntl, see tolerate_lock_error */
static bool fcntl_mode;
static bool need_reopen;

/*
 * In fcntl mode the kernel may answer a blocking lock with EDEADLK when the
 * processes' lock waits form a cycle (tdb's gradual allrecord locking makes
 * that possible); tdb then fails the call with TDB_ERR_LOCK.  That is a normal
 * outcome for both libraries, so count it, and reopen the database afterwards
 * so no fcntl lock can stay behind.  In mutex mode nothing is tolerated.
 */
static bool tolerate_lock_error(struct tdb_context *tdb, const char *what)
{
	(void)what;
	if (fcntl_mode && tdb_error(tdb) == TDB_ERR_LOCK) {
		tolerated++;
		need_reopen = true;
		return true;
	}
	return false;
}

static void op_store(struct tdb_context *tdb)
{
	char key[32], val[4096];
	size_t len;
	TDB_DATA d;
	int flag = rn(3) == 0 ? TDB_REPLACE : (rn(2) ? TDB_INSERT : TDB_MODIFY);
	snprintf(key, sizeof(key), "k%u", rn(NKEYS));
	len = make_kval(val, key, 10 + rn(rn(8) == 0 ? 3000 : 200));
	d.dptr = (unsigned char *)val;
	d.dsize = len;
	if (tdb_store(tdb, mk(key), d, flag) != 0) {
		enum TDB_ERROR e = tdb_error(tdb);
		if (!(flag == TDB_INSERT && e == TDB_ERR_EXISTS) &&
		    !(flag == TDB_MODIFY && e == TDB_ERR_NOEXIST) &&
		    !tolerate_lock_error(tdb, "store"))
			err("store %s flag %d: %s", key, flag, tdb_errorstr(tdb));
	}
}

static void op_delete(struct tdb_context *tdb)
{
	char key[32];
	snprintf(key, sizeof(key), "k%u", rn(NKEYS));
	if (tdb_delete(tdb, mk(key)) != 0 && tdb_error(tdb) != TDB_ERR_NOEXIST &&
	    !tolerate_lock_error(tdb, "delete"))
		err("delete %s: %s", key, tdb_errorstr(tdb));
}

static void op_fetch(struct tdb_context *tdb)
{
	char key[32], why[200];
	TDB_DATA d;
	switch (rn(3)) {
	case 0: snprintf(key, sizeof(key), "k%u", rn(NKEYS)); break;
	case 1: snprintf(key, sizeof(key), "a%u", rn(NAPPEND)); break;
	default: snprintf(key, sizeof(key), "c%u", rn(NCOUNTERS)); break;
	}
	d = tdb_fetch(tdb, mk(key));
	if (d.dptr == NULL) {
		if (tdb_error(tdb) != TDB_ERR_NOEXIST && !tolerate_lock_error(tdb, "fetch"))
			err("fetch %s: %s", key, tdb_errorstr(tdb));
		return;
	}
	if (!check_record(mk(key), d, why, sizeof(why)))
		err("fetch: %s", why);
	free(d.dptr);
}

static void op_append(struct tdb_context *tdb)
{
	char key[32], chunk[96];
	TDB_DATA k, d;
	int n;
	snprintf(key, sizeof(key), "a%u", rn(NAPPEND));
	k = mk(key);
	n = snprintf(chunk, sizeof(chunk), "[%s:%s]", key, g_wid);
	d.dptr = (unsigned char *)chunk;
	d.dsize = n;
	if (tdb_append(tdb, k, d) != 0) {
		if (!tolerate_lock_error(tdb, "append"))
			err("append %s: %s", key, tdb_errorstr(tdb));
		return;
	}
	if (rn(4) == 0) {
		/* trim under the chain lock, like Samba does for its records */
		if (tdb_chainlock(tdb, k) != 0) {
			if (!tolerate_lock_error(tdb, "chainlock"))
				err("chainlock %s: %s", key, tdb_errorstr(tdb));
			return;
		}
		d = tdb_fetch(tdb, k);
		if (d.dptr != NULL) {
			if (d.dsize > MAXAPPEND && tdb_delete(tdb, k) != 0)
				err("delete %s: %s", key, tdb_errorstr(tdb));
			free(d.dptr);
		}
		tdb_chainunlock(tdb, k);
	}
}

static void op_counter(struct tdb_context *tdb)
{
	char key[32], val[32];
	unsigned c = rn(NCOUNTERS);
	TDB_DATA k, d;
	long v = 0;
	int r;
	snprintf(key, sizeof(key), "c%u", c);
	k = mk(key);
	if (rn(4) == 0) {
		r = tdb_chainlock_nonblock(tdb, k);
		if (r != 0) {
			if (tdb_error(tdb) != TDB_ERR_LOCK)
				err("chainlock_nonblock %s: %s", key, tdb_errorstr(tdb));
			busy++;
			return;
		}
	} else if (tdb_chainlock(tdb, k) != 0) {
		if (!tolerate_lock_error(tdb, "chainlock"))
			err("chainlock %s: %s", key, tdb_errorstr(tdb));
		return;
	}
	d = tdb_fetch(tdb, k);
	if (d.dptr != NULL) {
		char tmp[32];
		size_t n = d.dsize < sizeof(tmp) - 1 ? d.dsize : sizeof(tmp) - 1;
		memcpy(tmp, d.dptr, n);
		tmp[n] = 0;
		v = atol(tmp);
		free(d.dptr);
	} else if (tdb_error(tdb) != TDB_ERR_NOEXIST) {
		err("fetch %s: %s", key, tdb_errorstr(tdb));
	}
	snprintf(val, sizeof(val), "%ld", v + 1);
	if (tdb_store(tdb, k, mk(val), TDB_REPLACE) != 0)
		err("store counter %s: %s", key, tdb_errorstr(tdb));
	else
		counters[c]++;
	if (tdb_chainunlock(tdb, k) != 0)
		err("chainunlock %s: %s", key, tdb_errorstr(tdb));
}

static void op_chainlock_read(struct tdb_context *tdb)
{
	char key[32];
	TDB_DATA k;
	snprintf(key, sizeof(key), "k%u", rn(NKEYS));
	k = mk(key);
	if (tdb_chainlock_read(tdb, k) != 0) {
		if (!tolerate_lock_error(tdb, "chainlock_read"))
			err("chainlock_read %s: %s", key, tdb_errorstr(tdb));
		return;
	}
	if (tdb_exists(tdb, k)) {
		TDB_DATA d = tdb_fetch(tdb, k);
		char why[200];
		if (d.dptr == NULL)
			err("exists but fetch failed under read chainlock: %s", key);
		else if (!check_record(k, d, why, sizeof(why)))
			err("%s", why);
		free(d.dptr);
	}
	tdb_chainunlock_read(tdb, k);
}

/*
 * Whole-file traversals.  Upstream tdb's tdb_traverse/tdb_traverse_read hold a
 * record lock while waiting for the next chain lock, which deadlocks against a
 * concurrent transaction commit (hang in mutex mode, EDEADLK plus a leaked
 * record lock in fcntl mode; Debian's libtdb does this too).  So, like Samba's
 * own users, we traverse either chain by chain (tdb_traverse_chain, no record
 * locks), under tdb_lockall_read, or inside a transaction.
 * MIXLOAD_PLAIN_TRAVERSE=1 in the environment uses plain tdb_traverse(_read)
 * instead, to reproduce that hazard.
 */
static void op_traverse(struct tdb_context *tdb)
{
	long count = 0;
	int r;
	unsigned c;
	if (getenv("MIXLOAD_PLAIN_TRAVERSE") != NULL) {
		/* the upstream-unsafe variant, to demonstrate the hazard */
		r = rn(3) == 0 ? tdb_traverse(tdb, trav_delete_some, &count)
			       : tdb_traverse_read(tdb, trav_check, &count);
		if (r < 0 && !tolerate_lock_error(tdb, "traverse"))
			err("traverse: %s", tdb_errorstr(tdb));
		return;
	}
	if (rn(2)) {
		for (c = 0; c < HASH_SIZE; c++) {
			long before = count;
			r = tdb_traverse_chain(tdb, c, trav_check, &count);
			if (r < 0) {
				if (!tolerate_lock_error(tdb, "traverse_chain"))
					err("traverse_chain %u: %s", c, tdb_errorstr(tdb));
				return;
			}
			if (r != count - before)
				err("traverse_chain returned %d, callback saw %ld", r, count - before);
		}
		return;
	}
	if (tdb_lockall_read(tdb) != 0) {
		if (!tolerate_lock_error(tdb, "lockall_read"))
			err("lockall_read: %s", tdb_errorstr(tdb));
		return;
	}
	r = tdb_traverse_read(tdb, trav_check, &count);
	if (r < 0)
		err("traverse_read under lockall_read: %s", tdb_errorstr(tdb));
	else if (r != count)
		err("traverse_read returned %d, callback saw %ld", r, count);
	if (tdb_unlockall_read(tdb) != 0)
		err("unlockall_read: %s", tdb_errorstr(tdb));
}

static void op_transaction(struct tdb_context *tdb, FILE *log, long *seq)
{
	char key[64], val[512];
	int nkeys = 1 + rn(8), j, r;
	bool cancel = rn(5) == 0;
	bool nested = rn(6) == 0;
	long s = (*seq)++;

	bool nonblock = rn(5) == 0;
	r = nonblock ? tdb_transaction_start_nonblock(tdb) : tdb_transaction_start(tdb);
	if (r != 0) {
		enum TDB_ERROR e = tdb_error(tdb);
		if (nonblock && (e == TDB_ERR_NOLOCK || e == TDB_ERR_LOCK))
			busy++;
		else if (!tolerate_lock_error(tdb, "transaction_start"))
			err("transaction_start: %s", tdb_errorstr(tdb));
		(*seq)--;
		return;
	}
	if (nested && tdb_transaction_start(tdb) != 0)
		err("nested transaction_start: %s", tdb_errorstr(tdb));
	for (j = 0; j < nkeys; j++) {
		TDB_DATA d;
		snprintf(key, sizeof(key), "t.%s.%ld.%d", g_wid, s, j);
		d.dptr = (unsigned char *)val;
		d.dsize = make_tval(val, key, s, j);
		if (tdb_store(tdb, mk(key), d, TDB_INSERT) != 0)
			err("txn store %s: %s", key, tdb_errorstr(tdb));
		/* some churn on the shared keys inside the transaction */
		if (rn(2))
			op_store(tdb);
		else
			op_delete(tdb);
	}
	if (rn(4) == 0)
		op_fetch(tdb);
	if (rn(12) == 0) {
		/* whole-file traverse on the transaction's view */
		long count = 0;
		int r = rn(2) ? tdb_traverse(tdb, trav_delete_some, &count)
			      : tdb_traverse_read(tdb, trav_check, &count);
		if (r < 0)
			err("traverse in transaction: %s", tdb_errorstr(tdb));
		else if (r != count)
			err("traverse in transaction returned %d, callback saw %ld", r, count);
	}
	if (nested && tdb_transaction_commit(tdb) != 0)
		err("nested commit: %s", tdb_errorstr(tdb));
	if (need_reopen)
		cancel = true; /* a lock error inside: the transaction is unusable */
	if (cancel) {
		if (tdb_transaction_cancel(tdb) != 0)
			err("transaction_cancel: %s", tdb_errorstr(tdb));
		fprintf(log, "X %s %ld %d\n", g_wid, s, nkeys);
		fflush(log);
		return;
	}
	if (rn(3) == 0 && tdb_transaction_prepare_commit(tdb) != 0) {
		err("prepare_commit: %s", tdb_errorstr(tdb));
		tdb_transaction_cancel(tdb);
		fprintf(log, "F %s %ld %d\n", g_wid, s, nkeys);
		fflush(log);
		return;
	}
	if (tdb_transaction_commit(tdb) != 0) {
		err("commit: %s", tdb_errorstr(tdb));
		fprintf(log, "F %s %ld %d\n", g_wid, s, nkeys);
	} else {
		fprintf(log, "C %s %ld %d\n", g_wid, s, nkeys);
	}
	fflush(log);
}

static void op_lockall(struct tdb_context *tdb)
{
	long count = 0;
	if (rn(2)) {
		if (tdb_lockall_read(tdb) != 0) {
			if (!tolerate_lock_error(tdb, "lockall_read"))
				err("lockall_read: %s", tdb_errorstr(tdb));
			return;
		}
		if (tdb_traverse_read(tdb, trav_check, &count) < 0)
			err("traverse_read under lockall_read: %s", tdb_errorstr(tdb));
		tdb_unlockall_read(tdb);
	} else {
		if (tdb_lockall(tdb) != 0) {
			if (!tolerate_lock_error(tdb, "lockall"))
				err("lockall: %s", tdb_errorstr(tdb));
			return;
		}
		op_store(tdb);
		op_delete(tdb);
		op_counter(tdb);
		tdb_unlockall(tdb);
	}
}

static int do_work(int argc, char **argv)
{
	const char *file = argv[2], *mode = argv[3];
	double secs = atof(argv[5]);
	const char *logname = argv[7];
	struct tdb_context *tdb;
	FILE *log;
	double end;
	long seq = 0, ops = 0, i, reopens = 0;
	(void)argc;

	g_wid = argv[4];
	rng_state = strtoull(argv[6], NULL, 10) * 0x9E3779B97F4A7C15ULL + 1;
	log = fopen(logname, "w");
	if (log == NULL) {
		perror(logname);
		return 2;
	}
	fcntl_mode = strcmp(mode, "fcntl") == 0;
	tdb = open_db(file, mode);
	end = now() + secs;
	while (now() < end) {
		if (need_reopen) {
			if (tdb_close(tdb) != 0)
				err("tdb_close for reopen failed");
			tdb = open_db(file, mode);
			need_reopen = false;
			reopens++;
		}
		uint32_t r = rn(1000);
		if (r < 300)
			op_store(tdb);
		else if (r < 420)
			op_delete(tdb);
		else if (r < 560)
			op_fetch(tdb);
		else if (r < 680)
			op_append(tdb);
		else if (r < 800)
			op_counter(tdb);
		else if (r < 860)
			op_chainlock_read(tdb);
		else if (r < 875)
			op_traverse(tdb);
		else if (r < 995)
			op_transaction(tdb, log, &seq);
		else if (r < 999)
			op_lockall(tdb);
		else if (rn(8) == 0) {
			if (tdb_repack(tdb) != 0 && !tolerate_lock_error(tdb, "repack"))
				err("repack: %s", tdb_errorstr(tdb));
		}
		(void)tdb_get_seqnum(tdb);
		ops++;
	}
	for (i = 0; i < NCOUNTERS; i++)
		fprintf(log, "I c%ld %ld\n", i, counters[i]);
	fprintf(log, "END %s ops=%ld txns=%ld busy=%ld edeadlk=%ld reopens=%ld errors=%ld\n",
		g_wid, ops, seq, busy, tolerated, reopens, g_errors);
	fclose(log);
	if (tdb_close(tdb) != 0)
		err("tdb_close failed");
	fprintf(stderr, "[%s] %ld ops, %ld transactions, %ld busy, %ld edeadlk, %ld reopens, %ld errors\n",
		g_wid, ops, seq, busy, tolerated, reopens, g_errors);
	return g_errors ? 1 : 0;
}

/* ---- check ---- */

struct tkey_count {
	long present, stray;
};

static int count_t(struct tdb_context *tdb, TDB_DATA k, TDB_DATA d, void *p)
{
	struct tkey_count *tc = p;
	char why[200];
	(void)tdb;
	if (!check_record(k, d, why, sizeof(why)))
		err("check traverse: %s", why);
	if (k.dsize > 0 && k.dptr[0] == 't')
		tc->present++;
	return 0;
}

static int do_check(int argc, char **argv)
{
	const char *file = argv[2], *mode = argv[3];
	struct tdb_context *tdb;
	long committed = 0, cancelled = 0, expected_t = 0, logs_ok = 0;
	long want_counter[NCOUNTERS] = { 0 };
	struct tkey_count tc = { 0, 0 };
	int i;

	g_wid = "check";
	tdb = open_db(file, mode);
	if (tdb_check(tdb, check_cb, NULL) != 0)
		err("tdb_check failed: %s", tdb_errorstr(tdb));

	for (i = 4; i < argc; i++) {
		FILE *f = fopen(argv[i], "r");
		char line[256];
		bool ended = false;
		if (f == NULL) {
			err("cannot open log %s", argv[i]);
			continue;
		}
		while (fgets(line, sizeof(line), f)) {
			char kind, wid[64];
			long s, c;
			int n, j;
			if (strncmp(line, "END ", 4) == 0) {
				ended = true;
				continue;
			}
			if (line[0] == 'I') {
				char cname[32];
				unsigned ci;
				if (sscanf(line, "I %31s %ld", cname, &c) == 2 &&
				    sscanf(cname, "c%u", &ci) == 1 && ci < NCOUNTERS)
					want_counter[ci] += c;
				continue;
			}
			if (sscanf(line, "%c %63s %ld %d", &kind, wid, &s, &n) != 4) {
				err("bad log line in %s: %s", argv[i], line);
				continue;
			}
			if (kind == 'F')
				continue; /* failure was already reported by the worker */
			for (j = 0; j < n; j++) {
				char key[128];
				TDB_DATA d;
				snprintf(key, sizeof(key), "t.%s.%ld.%d", wid, s, j);
				d = tdb_fetch(tdb, mk(key));
				if (kind == 'C') {
					char why[200];
					if (d.dptr == NULL)
						err("committed transaction %s/%ld: key %s missing", wid, s, key);
					else if (!check_record(mk(key), d, why, sizeof(why)))
						err("committed transaction %s/%ld: %s", wid, s, why);
					expected_t++;
				} else if (kind == 'X' && d.dptr != NULL) {
					err("cancelled transaction %s/%ld: key %s present", wid, s, key);
				}
				free(d.dptr);
			}
			if (kind == 'C')
				committed++;
			else if (kind == 'X')
				cancelled++;
		}
		fclose(f);
		if (!ended)
			err("log %s has no END line (worker did not finish)", argv[i]);
		else
			logs_ok++;
	}
	for (i = 0; i < NCOUNTERS; i++) {
		char key[32];
		long have = 0;
		TDB_DATA d;
		snprintf(key, sizeof(key), "c%d", i);
		d = tdb_fetch(tdb, mk(key));
		if (d.dptr != NULL) {
			char tmp[32];
			size_t n = d.dsize < sizeof(tmp) - 1 ? d.dsize : sizeof(tmp) - 1;
			memcpy(tmp, d.dptr, n);
			tmp[n] = 0;
			have = atol(tmp);
			free(d.dptr);
		}
		if (have != want_counter[i])
			err("counter %s is %ld, workers logged %ld increments", key, have,
			    want_counter[i]);
	}
	if (tdb_traverse_read(tdb, count_t, &tc) < 0)
		err("traverse_read: %s", tdb_errorstr(tdb));
	if (tc.present != expected_t)
		err("%ld transaction keys in the file, %ld from committed transactions",
		    tc.present, expected_t);
	if (committed == 0)
		err("no transaction committed at all");
	printf("logs=%ld committed=%ld cancelled=%ld tkeys=%ld errors=%ld\n",
	       logs_ok, committed, cancelled, tc.present, g_errors);
	tdb_close(tdb);
	return g_errors ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 6 && strcmp(argv[1], "hold") == 0)
		return do_hold(argc, argv);
	if (argc == 8 && strcmp(argv[1], "work") == 0)
		return do_work(argc, argv);
	if (argc >= 5 && strcmp(argv[1], "check") == 0)
		return do_check(argc, argv);
	fprintf(stderr,
		"usage: mixload hold FILE MODE STOPFILE MAXSECS\n"
		"       mixload work FILE MODE WID SECS SEED LOG\n"
		"       mixload check FILE MODE LOG...\n");
	return 2;
}
