/*
 * tdb-torture: many processes hammer one tdb file while a killer SIGKILLs some of
 * them at random moments, preferably in the middle of a transaction commit.
 * Afterwards the file must pass tdb_check and every committed transaction must be
 * present, whole, and every uncommitted one absent. Written for this project
 * against include/tdb.h: run it with LD_LIBRARY_PATH pointing at either library.
 *
 * Workers (fork + exec of this program, so each may load another library with -M):
 *   killable  (the first K): change the database only inside transactions (a
 *             transaction is crash-safe; a plain store is not: SIGKILL between its
 *             writes leaves a file that no tdb can repair); they also fetch,
 *             traverse_read, and take chain locks (write and read) that they hold
 *             while they may be killed.
 *   steady    (the others, never killed): plain stores, appends, deletes,
 *             TDB_INSERT/TDB_MODIFY, chainlocked read-modify-write counters,
 *             transactions, traverse, traverse_read, firstkey/nextkey.
 *
 * The invariant. Worker w alone writes the keys "w<w>.k<j>" (j < NKEYS) and the
 * marker "w<w>.mark"; everybody increments the counters "ctr<c>". Every
 * transaction of w writes a few of its keys (values carry the transaction's
 * sequence number), maybe increments a counter, and sets the marker to its
 * sequence number. Before a transaction starts, w appends to its log (one write(2))
 * the intention "I seq n" and its n operations; "P seq" just before
 * tdb_transaction_commit, "C seq" after it succeeded, "F seq" after it failed.
 * Plain writes are logged "W ..." after they return. A SIGKILL can cut a write(2)
 * short at a page boundary, so the last line of a killed worker's log may be torn:
 * it counts as never written (a torn "C" leaves its transaction in doubt, which the
 * marker settles; a torn intention or "P" is a transaction that never committed),
 * and the next incarnation cuts it off before it appends. Replaying the log
 * gives the exact expected content of w's keys, except for at most one in-doubt
 * transaction (killed after "P"): the marker says whether it was applied, and then
 * ALL of w's keys must match the log with it applied, or ALL without it (a killed
 * transaction with no "P" must be absent). A restarted worker checks this first
 * and logs "R seq 0|1"; the final verification checks it for every worker, sums
 * every applied counter increment, compares the whole database with the union of
 * the expectations (no missing, extra or garbled record) and runs tdb_check.
 * Logs are not fsync'd: SIGKILL loses nothing that write(2) returned.
 *
 * Usage: tdb-torture [options] DIR
 *   -n N      workers (default 6)             -k K   killable workers (default N-2)
 *   -t SEC    duration (default 10)           -i MS  mean time between kills (default 200)
 *   -m MODE   fcntl | mutex (default fcntl)   -S     TDB_NOSYNC
 *   -H SIZE   hash size (default 31)          -s SEED
 *   -R        no traverse_read/traverse (Debian's library can deadlock a traversal
 *             against a commit in mutex mode)
 *   -M DIR    odd workers run with LD_LIBRARY_PATH=DIR, even ones without it
 *   -V CMD    after the run, while the database is still held open (mutex files
 *             are wiped by the first opener), run CMD (sh -c) with TORTURE_DIR set:
 *             e.g. the verification by the other library: "tdb-torture -c $TORTURE_DIR"
 *   -c        verify only: DIR holds a finished run
 *   -w SEC    watchdog: a worker with no progress for SEC seconds (default 30) is a
 *             stall; before anything is killed, every idle worker's stacks (gdb
 *             -batch -p PID -ex 'thread apply all bt'), the file's lines of
 *             /proc/locks and, in mutex mode, every held mutex of the mutex area
 *             are printed
 *   -X W      test the watchdog: worker W takes the chain lock of "ctr0" and then
 *             hangs (use with -i 0, so that nobody is killed)
 *   -T        self-test of the torn-log handling (DIR is scratch space)
 * Seeds: worker w's incarnation i draws its operations from a seed made of the run
 * seed (-s, printed in the first line), w and i, passed on its command line
 * ("--worker W SEED DIR") and printed in its error messages and in a stall report.
 * Exit status 0 when everything holds, 1 on a violation, 2 on a stall (deadlock).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <tdb.h>

#define MAXW 64
#define NKEYS 24
#define NCTR 4
#define MAXVAL 3000

enum { PH_IDLE, PH_TXN, PH_COMMIT, PH_TRAVERSE, PH_CHAINLOCK, PH_PLAIN, PH_VERIFY, PH_START };
static const char *phase_name[] = { "idle", "txn", "commit", "traverse", "chainlock", "plain", "verify", "start" };

struct slot {
	volatile int pid, phase, incarnation, pad;
	volatile uint64_t heartbeat, commits, aborts, plain_ops, traverses, chainlocks, fetches;
	volatile uint64_t commit_ns;   /* duration of the last commit */
	volatile uint64_t resolved_applied, resolved_rolled_back, trav_refused;
	volatile uint64_t seed;        /* this incarnation's seed (its command line) */
	volatile uint64_t torn_tails;  /* torn last log lines this worker cut off */
};

struct config {
	int nworkers, nkillable, duration, kill_ms, mutex, nosync, hash_size, no_traverse;
	int watchdog_secs, stall_worker;
	unsigned seed;
	char mixed_libdir[512];
	volatile int stop;
	struct slot slots[MAXW];
};

static struct config *cfg;
static char dir[512];
static int worker_id = -1;
static uint64_t worker_seed;

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (worker_id >= 0) fprintf(stderr, "tdb-torture[worker %d seed %#llx]: ", worker_id, (unsigned long long)worker_seed);
	else fprintf(stderr, "tdb-torture: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1Dull;
}
static unsigned below(unsigned n) { return (unsigned)(rnd() % n); }

static TDB_DATA mkdata(const void *p, size_t n) { TDB_DATA d = { (unsigned char *)p, n }; return d; }
static TDB_DATA skey(const char *s) { return mkdata(s, strlen(s)); }

static int tdb_flags(void)
{
	int f = TDB_DEFAULT;
	if (cfg->nosync) f |= TDB_NOSYNC;
	if (cfg->mutex) f |= TDB_MUTEX_LOCKING | TDB_CLEAR_IF_FIRST | TDB_INCOMPATIBLE_HASH;
	return f;
}

static void log_fn(struct tdb_context *tdb, enum tdb_debug_level level, const char *fmt, ...)
{
	va_list ap;
	(void)tdb;
	if (level > TDB_DEBUG_ERROR && !getenv("TORTURE_TRACE")) return;
	va_start(ap, fmt);
	fprintf(stderr, "tdb-torture[%d] tdb log %d: ", worker_id, level);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

static struct tdb_context *open_db(void)
{
	char path[600];
	struct tdb_logging_context lc = { log_fn, NULL };
	snprintf(path, sizeof path, "%s/torture.tdb", dir);
	struct tdb_context *tdb = tdb_open_ex(path, cfg->hash_size, tdb_flags(), O_RDWR | O_CREAT, 0600, &lc, NULL);
	if (!tdb) die("tdb_open %s: %s", path, strerror(errno));
	return tdb;
}

/* ---- values ---- */

/* The value a store of key j in transaction/op `seq` of worker w writes. */
static size_t make_value(char *buf, int w, long seq, int j, int len)
{
	int n = snprintf(buf, MAXVAL, "v%d:%ld:%d|", w, seq, j);
	for (int i = n; i < len; i++) buf[i] = 'a' + (w * 7 + seq * 13 + i) % 26;
	return len > n ? (size_t)len : (size_t)n;
}

/* ---- a worker's model ---- */

struct model {
	char *val[NKEYS];
	size_t len[NKEYS];
	long mark;          /* marker value, -1 = absent */
	long ctr[NCTR];     /* increments this worker applied */
	long max_seq;
};

struct op { char type; int j; long seq; int len; };   /* S store, A append, D delete, N counter */

static void model_apply(struct model *m, int w, const struct op *o)
{
	char buf[MAXVAL + 64];
	switch (o->type) {
	case 'S': {
		size_t n = make_value(buf, w, o->seq, o->j, o->len);
		free(m->val[o->j]);
		m->val[o->j] = malloc(n);
		memcpy(m->val[o->j], buf, n);
		m->len[o->j] = n;
		break;
	}
	case 'A': {
		int n = snprintf(buf, sizeof buf, "+%ld.%d;", o->seq, o->j);
		m->val[o->j] = realloc(m->val[o->j], m->len[o->j] + n);
		memcpy(m->val[o->j] + m->len[o->j], buf, n);
		m->len[o->j] += n;
		break;
	}
	case 'D':
		free(m->val[o->j]);
		m->val[o->j] = NULL;
		m->len[o->j] = 0;
		break;
	case 'N':
		m->ctr[o->j]++;
		break;
	case 'M':
		m->mark = o->seq;
		break;
	}
}

static void model_copy(struct model *dst, const struct model *src)
{
	*dst = *src;
	for (int j = 0; j < NKEYS; j++) {
		dst->val[j] = NULL;
		if (src->val[j]) {
			dst->val[j] = malloc(src->len[j] ? src->len[j] : 1);
			memcpy(dst->val[j], src->val[j], src->len[j]);
		}
	}
}

static void model_free(struct model *m)
{
	for (int j = 0; j < NKEYS; j++) free(m->val[j]);
	memset(m, 0, sizeof *m);
}

static void log_path(char *p, size_t n, int w) { snprintf(p, n, "%s/log.%d", dir, w); }

static int logfd = -1;
static void log_write(const char *buf, size_t n)
{
	if (write(logfd, buf, n) != (ssize_t)n) die("log write: %s", strerror(errno));
}

/* Cuts a torn last line (a write(2) that a SIGKILL cut short) off the log open on
 * fd, so that what is appended next starts a line of its own. Only the worker's own
 * incarnation calls it, after the previous one was reaped. Returns the bytes cut. */
static long trim_torn_tail(int fd)
{
	struct stat st;
	char buf[512];
	if (fstat(fd, &st) != 0) die("fstat log: %s", strerror(errno));
	off_t end = st.st_size, pos = end;
	while (pos > 0) {
		size_t n = pos < (off_t)sizeof buf ? (size_t)pos : sizeof buf;
		if (pread(fd, buf, n, pos - n) != (ssize_t)n) die("read log: %s", strerror(errno));
		for (size_t i = n; i > 0; i--) {
			if (buf[i - 1] != '\n') continue;
			off_t keep = pos - n + i;
			if (keep != end && ftruncate(fd, keep) != 0) die("truncate log: %s", strerror(errno));
			return (long)(end - keep);
		}
		pos -= n;
	}
	if (end > 0 && ftruncate(fd, 0) != 0) die("truncate log: %s", strerror(errno));
	return (long)end;
}

/* Replays worker w's log. Returns the in-doubt transaction (killed after "P" and not
 * yet resolved) in *pending (count 0 if none); a transaction killed before "P" is
 * simply dropped. A torn last line counts as never written. */
struct pending { long seq; int n; struct op ops[16]; bool committing; };

static void replay(int w, struct model *m, struct pending *pend)
{
	char path[600];
	log_path(path, sizeof path, w);
	memset(m, 0, sizeof *m);
	m->mark = -1;
	pend->n = 0;
	pend->seq = -1;
	pend->committing = false;
	FILE *f = fopen(path, "r");
	if (!f) return;
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;
	bool in_txn = false;
	while ((got = getline(&line, &cap, f)) > 0) {
		struct op o = { 0 };
		long seq;
		int n, r;
		if (line[got - 1] != '\n') break;   /* torn: only the last line can lack it */
		if (sscanf(line, "I %ld %d", &seq, &n) == 2) {
			if (in_txn && pend->committing) die("worker %d log: transaction %ld still in doubt at %ld", w, pend->seq, seq);
			in_txn = true;
			pend->seq = seq;
			pend->n = 0;
			pend->committing = false;
			if (seq > m->max_seq) m->max_seq = seq;
		} else if (sscanf(line, "o %c %d %ld %d", &o.type, &o.j, &o.seq, &o.len) == 4) {
			if (!in_txn || pend->n >= 16) die("worker %d log: stray op", w);
			pend->ops[pend->n++] = o;
		} else if (sscanf(line, "P %ld", &seq) == 1) {
			if (!in_txn || seq != pend->seq) die("worker %d log: bad P", w);
			pend->committing = true;
		} else if (sscanf(line, "C %ld", &seq) == 1 || (sscanf(line, "R %ld %d", &seq, &r) == 2 && r == 1)) {
			if (!in_txn || seq != pend->seq) die("worker %d log: bad C/R", w);
			for (int i = 0; i < pend->n; i++) model_apply(m, w, &pend->ops[i]);
			in_txn = false;
		} else if (sscanf(line, "F %ld", &seq) == 1 || sscanf(line, "R %ld %d", &seq, &r) == 2) {
			if (!in_txn || seq != pend->seq) die("worker %d log: bad F/R", w);
			in_txn = false;
		} else if (sscanf(line, "W %c %d %ld %d", &o.type, &o.j, &o.seq, &o.len) == 4) {
			if (in_txn && pend->committing) die("worker %d log: plain op after in-doubt commit", w);
			in_txn = false;
			model_apply(m, w, &o);
			if (o.seq > m->max_seq) m->max_seq = o.seq;
		} else {
			die("worker %d log: bad line '%s'", w, line);
		}
	}
	free(line);
	fclose(f);
	if (!(in_txn && pend->committing)) {
		/* none in doubt (one killed before "P" never reached the file) */
		pend->n = 0;
		pend->seq = -1;
	}
}


/* Does the database hold exactly model m for worker w's keys? Writes the first
 * difference to why. */
static bool db_matches(struct tdb_context *tdb, int w, const struct model *m, char *why, size_t whylen)
{
	char k[64];
	for (int j = 0; j < NKEYS; j++) {
		snprintf(k, sizeof k, "w%d.k%d", w, j);
		TDB_DATA d = tdb_fetch(tdb, skey(k));
		bool ok = (d.dptr == NULL && m->val[j] == NULL) ||
			  (d.dptr && m->val[j] && d.dsize == m->len[j] && memcmp(d.dptr, m->val[j], d.dsize) == 0);
		if (!ok) {
			snprintf(why, whylen, "%s is %s%.*s%s (%zu bytes), expected %s%.*s%s (%zu bytes)", k,
				 d.dptr ? "'" : "", d.dptr ? (int)(d.dsize > 60 ? 60 : d.dsize) : 6, d.dptr ? (char *)d.dptr : "absent", d.dptr ? "'" : "", d.dsize,
				 m->val[j] ? "'" : "", m->val[j] ? (int)(m->len[j] > 60 ? 60 : m->len[j]) : 6, m->val[j] ? m->val[j] : "absent", m->val[j] ? "'" : "", m->len[j]);
			free(d.dptr);
			return false;
		}
		free(d.dptr);
	}
	snprintf(k, sizeof k, "w%d.mark", w);
	TDB_DATA d = tdb_fetch(tdb, skey(k));
	long mark = -1;
	if (d.dptr) {
		char tmp[32] = { 0 };
		memcpy(tmp, d.dptr, d.dsize < 31 ? d.dsize : 31);
		mark = atol(tmp);
		free(d.dptr);
	}
	if (mark != m->mark) {
		snprintf(why, whylen, "%s is %ld, expected %ld", k, mark, m->mark);
		return false;
	}
	return true;
}

/* Replays w's log and settles the in-doubt transaction against the database:
 * returns 1 if it was applied, 0 if not, -1 if there was none; dies on a mismatch. */
static int settle(struct tdb_context *tdb, int w, struct model *m, long *seq_out)
{
	struct pending p;
	char why[400], why2[400];
	replay(w, m, &p);
	*seq_out = p.seq;
	if (p.n == 0 || p.seq < 0) {
		if (!db_matches(tdb, w, m, why, sizeof why)) die("worker %d: database differs from the log: %s", w, why);
		return -1;
	}
	struct model with;
	model_copy(&with, m);
	for (int i = 0; i < p.n; i++) model_apply(&with, w, &p.ops[i]);
	if (db_matches(tdb, w, &with, why, sizeof why)) {
		model_free(m);
		*m = with;
		return 1;
	}
	if (db_matches(tdb, w, m, why2, sizeof why2)) {
		model_free(&with);
		return 0;
	}
	die("worker %d: in-doubt transaction %ld is partly applied: with it, %s; without it, %s", w, p.seq, why, why2);
	return -1;
}

/* ---- traversal checks ---- */

/* Is k one of the keys the workers write ("w<w>.k<j>", "w<w>.mark", "ctr<c>")? */
static bool plausible_key(TDB_DATA k)
{
	char s[64], want[64];
	int a, b, n = 0;
	if (k.dsize == 0 || k.dsize >= sizeof s) return false;
	memcpy(s, k.dptr, k.dsize);
	s[k.dsize] = 0;
	if (sscanf(s, "w%d.k%d", &a, &b) == 2 && a >= 0 && a < cfg->nworkers && b >= 0 && b < NKEYS) {
		snprintf(want, sizeof want, "w%d.k%d", a, b);
		return strcmp(s, want) == 0;
	}
	if (sscanf(s, "w%d.%n", &a, &n) == 1 && n > 0 && a >= 0 && a < cfg->nworkers) {
		snprintf(want, sizeof want, "w%d.mark", a);
		return strcmp(s, want) == 0;
	}
	if (sscanf(s, "ctr%d", &a) == 1 && a >= 0 && a < NCTR) {
		snprintf(want, sizeof want, "ctr%d", a);
		return strcmp(s, want) == 0;
	}
	return false;
}

static int trav_cb(struct tdb_context *tdb, TDB_DATA k, TDB_DATA d, void *priv)
{
	(void)tdb;
	if (!plausible_key(k)) die("traverse: unexpected key '%.*s'", (int)(k.dsize > 40 ? 40 : k.dsize), (char *)k.dptr);
	for (size_t i = 0; i < d.dsize; i++)
		if (d.dptr[i] < ' ' || d.dptr[i] > '~') die("traverse: garbage in the value of '%.*s'", (int)k.dsize, (char *)k.dptr);
	(*(long *)priv)++;
	return 0;
}

/* ---- the worker ---- */

static void set_phase(int w, int ph) { cfg->slots[w].phase = ph; cfg->slots[w].heartbeat = now_ns(); }

static void fetch_check(struct tdb_context *tdb, int w, const struct model *m)
{
	char k[64];
	int j = below(NKEYS);
	snprintf(k, sizeof k, "w%d.k%d", w, j);
	TDB_DATA d = tdb_fetch(tdb, skey(k));
	bool ok = (d.dptr == NULL && m->val[j] == NULL && tdb_error(tdb) == TDB_ERR_NOEXIST) ||
		  (d.dptr && m->val[j] && d.dsize == m->len[j] && memcmp(d.dptr, m->val[j], d.dsize) == 0);
	if (!ok) die("worker %d: fetch %s gave %zu bytes (%s), model has %zu", w, k, d.dsize, d.dptr ? "present" : tdb_errorstr(tdb), m->len[j]);
	free(d.dptr);
	cfg->slots[w].fetches++;
}

static void do_transaction(struct tdb_context *tdb, int w, struct model *m)
{
	char buf[4096], k[64], val[MAXVAL + 64];
	struct op ops[16];
	int n = 0, nkeys = 1 + below(5);
	long seq = ++m->max_seq;
	for (int i = 0; i < nkeys; i++) {
		struct op o = { 0 };
		unsigned r = below(10);
		o.j = below(NKEYS);
		o.seq = seq;
		o.type = r < 5 ? 'S' : r < 8 ? 'A' : 'D';
		if (o.type == 'S') o.len = 10 + (below(4) == 0 ? below(MAXVAL - 10) : below(200));
		ops[n++] = o;
	}
	if (below(3) == 0) ops[n++] = (struct op){ 'N', (int)below(NCTR), seq, 0 };
	ops[n++] = (struct op){ 'M', 0, seq, 0 };
	int len = snprintf(buf, sizeof buf, "I %ld %d\n", seq, n);
	for (int i = 0; i < n; i++)
		len += snprintf(buf + len, sizeof buf - len, "o %c %d %ld %d\n", ops[i].type, ops[i].j, ops[i].seq, ops[i].len);
	log_write(buf, len);

	set_phase(w, PH_TXN);
	if (tdb_transaction_start(tdb) != 0) die("worker %d: transaction_start: %s", w, tdb_errorstr(tdb));
	for (int i = 0; i < n; i++) {
		struct op *o = &ops[i];
		int rc = 0;
		snprintf(k, sizeof k, "w%d.k%d", w, o->j);
		if (o->type == 'S') {
			size_t vl = make_value(val, w, o->seq, o->j, o->len);
			rc = tdb_store(tdb, skey(k), mkdata(val, vl), TDB_REPLACE);
		} else if (o->type == 'A') {
			int vl = snprintf(val, sizeof val, "+%ld.%d;", o->seq, o->j);
			rc = tdb_append(tdb, skey(k), mkdata(val, vl));
		} else if (o->type == 'D') {
			rc = tdb_delete(tdb, skey(k));
			if (rc != 0 && tdb_error(tdb) == TDB_ERR_NOEXIST) rc = 0;
		} else if (o->type == 'N') {
			snprintf(k, sizeof k, "ctr%d", o->j);
			TDB_DATA d = tdb_fetch(tdb, skey(k));
			long v = 0;
			if (d.dptr) { char t[32] = { 0 }; memcpy(t, d.dptr, d.dsize < 31 ? d.dsize : 31); v = atol(t); free(d.dptr); }
			int vl = snprintf(val, sizeof val, "%ld", v + 1);
			rc = tdb_store(tdb, skey(k), mkdata(val, vl), TDB_REPLACE);
		} else if (o->type == 'M') {
			snprintf(k, sizeof k, "w%d.mark", w);
			int vl = snprintf(val, sizeof val, "%ld", seq);
			rc = tdb_store(tdb, skey(k), mkdata(val, vl), TDB_REPLACE);
		}
		if (rc != 0) die("worker %d: op %c in transaction %ld: %s", w, o->type, seq, tdb_errorstr(tdb));
	}
	if (below(12) == 0) {
		/* A cancelled one: must leave no trace. */
		if (tdb_transaction_cancel(tdb) != 0) die("worker %d: cancel: %s", w, tdb_errorstr(tdb));
		len = snprintf(buf, sizeof buf, "F %ld\n", seq);
		log_write(buf, len);
		cfg->slots[w].aborts++;
		set_phase(w, PH_IDLE);
		return;
	}
	len = snprintf(buf, sizeof buf, "P %ld\n", seq);
	log_write(buf, len);
	uint64_t t0 = now_ns();
	set_phase(w, PH_COMMIT);
	int rc = tdb_transaction_commit(tdb);
	set_phase(w, PH_IDLE);
	cfg->slots[w].commit_ns = now_ns() - t0;
	if (rc != 0) {
		len = snprintf(buf, sizeof buf, "F %ld\n", seq);
		log_write(buf, len);
		die("worker %d: commit %ld failed: %s", w, seq, tdb_errorstr(tdb));
	}
	len = snprintf(buf, sizeof buf, "C %ld\n", seq);
	log_write(buf, len);
	for (int i = 0; i < n; i++) model_apply(m, w, &ops[i]);
	cfg->slots[w].commits++;
}

/* A plain (non-transaction) write by a steady worker. */
static void do_plain(struct tdb_context *tdb, int w, struct model *m)
{
	char k[64], val[MAXVAL + 64], buf[128];
	struct op o = { 0 };
	int j = below(NKEYS), rc;
	long seq = ++m->max_seq;
	unsigned r = below(10);
	snprintf(k, sizeof k, "w%d.k%d", w, j);
	set_phase(w, PH_PLAIN);
	o.j = j;
	o.seq = seq;
	if (r < 4) {
		o.type = 'S';
		o.len = 10 + (below(4) == 0 ? below(MAXVAL - 10) : below(200));
		size_t vl = make_value(val, w, seq, j, o.len);
		/* TDB_INSERT when absent, TDB_MODIFY when present, else REPLACE */
		int flag = below(2) ? TDB_REPLACE : (m->val[j] ? TDB_MODIFY : TDB_INSERT);
		if (!m->val[j] && below(4) == 0 &&
		    (tdb_store(tdb, skey(k), mkdata(val, vl), TDB_MODIFY) == 0 || tdb_error(tdb) != TDB_ERR_NOEXIST))
			die("worker %d: TDB_MODIFY of the absent %s did not fail with NOEXIST", w, k);
		rc = tdb_store(tdb, skey(k), mkdata(val, vl), flag);
		if (rc == 0 && flag == TDB_INSERT &&
		    (tdb_store(tdb, skey(k), mkdata(val, vl), TDB_INSERT) == 0 || tdb_error(tdb) != TDB_ERR_EXISTS))
			die("worker %d: a second TDB_INSERT of %s did not fail with EXISTS", w, k);
	} else if (r < 7) {
		o.type = 'A';
		int vl = snprintf(val, sizeof val, "+%ld.%d;", seq, j);
		rc = tdb_append(tdb, skey(k), mkdata(val, vl));
	} else {
		o.type = 'D';
		rc = tdb_delete(tdb, skey(k));
		if (rc != 0 && tdb_error(tdb) == TDB_ERR_NOEXIST && !m->val[j]) rc = 0;
	}
	if (rc != 0) die("worker %d: plain %c on %s: %s", w, o.type, k, tdb_errorstr(tdb));
	int len = snprintf(buf, sizeof buf, "W %c %d %ld %d\n", o.type, o.j, o.seq, o.len);
	log_write(buf, len);
	model_apply(m, w, &o);
	cfg->slots[w].plain_ops++;
	set_phase(w, PH_IDLE);
}

/* Chainlocked read-modify-write of a counter (steady) or a held chain lock (killable). */
static void do_chainlock(struct tdb_context *tdb, int w, struct model *m, bool killable)
{
	char k[64], val[32], buf[128];
	int c = below(NCTR);
	snprintf(k, sizeof k, "ctr%d", c);
	set_phase(w, PH_CHAINLOCK);
	if (killable) {
		bool rd = below(2);
		if ((rd ? tdb_chainlock_read(tdb, skey(k)) : tdb_chainlock(tdb, skey(k))) != 0) die("worker %d: chainlock: %s", w, tdb_errorstr(tdb));
		TDB_DATA d = tdb_fetch(tdb, skey(k));
		free(d.dptr);
		usleep(below(300));   /* hold it a while: a kill here must release it */
		if ((rd ? tdb_chainunlock_read(tdb, skey(k)) : tdb_chainunlock(tdb, skey(k))) != 0) die("worker %d: chainunlock: %s", w, tdb_errorstr(tdb));
	} else {
		if (tdb_chainlock(tdb, skey(k)) != 0) die("worker %d: chainlock: %s", w, tdb_errorstr(tdb));
		TDB_DATA d = tdb_fetch(tdb, skey(k));
		long v = 0;
		if (d.dptr) { char t[32] = { 0 }; memcpy(t, d.dptr, d.dsize < 31 ? d.dsize : 31); v = atol(t); free(d.dptr); }
		int vl = snprintf(val, sizeof val, "%ld", v + 1);
		if (tdb_store(tdb, skey(k), mkdata(val, vl), TDB_REPLACE) != 0) die("worker %d: counter store: %s", w, tdb_errorstr(tdb));
		long seq = ++m->max_seq;
		int len = snprintf(buf, sizeof buf, "W N %d %ld 0\n", c, seq);
		log_write(buf, len);
		m->ctr[c]++;
		if (tdb_chainunlock(tdb, skey(k)) != 0) die("worker %d: chainunlock: %s", w, tdb_errorstr(tdb));
	}
	cfg->slots[w].chainlocks++;
	set_phase(w, PH_IDLE);
}

static void do_traverse(struct tdb_context *tdb, int w, bool killable)
{
	long count = 0;
	set_phase(w, PH_TRAVERSE);
	unsigned r = below(3);
	if (r == 0 || killable) {
		if (tdb_traverse_read(tdb, trav_cb, &count) < 0) {
			/* Samba's tdb (and ours, the same) refuses to run a pending recovery
			 * (left by a killed committer) from a read-only traversal: the error
			 * is TDB_ERR_RDONLY. Any other call runs the recovery; then retry. */
			if (tdb_error(tdb) != TDB_ERR_RDONLY) die("worker %d: traverse_read: %s", w, tdb_errorstr(tdb));
			cfg->slots[w].trav_refused++;
			TDB_DATA d = tdb_fetch(tdb, skey("ctr0"));
			free(d.dptr);
			count = 0;
			if (tdb_traverse_read(tdb, trav_cb, &count) < 0) die("worker %d: traverse_read after recovery: %s", w, tdb_errorstr(tdb));
		}
	} else if (r == 1) {
		if (tdb_traverse(tdb, trav_cb, &count) < 0) die("worker %d: traverse: %s", w, tdb_errorstr(tdb));
	} else {
		TDB_DATA k = tdb_firstkey(tdb);
		int n = 0;
		while (k.dptr && n++ < 200) {
			if (!plausible_key(k)) die("worker %d: firstkey/nextkey gave a bad key", w);
			TDB_DATA next = tdb_nextkey(tdb, k);
			free(k.dptr);
			k = next;
		}
		free(k.dptr);
	}
	cfg->slots[w].traverses++;
	set_phase(w, PH_IDLE);
}

/* -X: hold the chain lock of "ctr0" and hang, with no heartbeat, so that the
 * watchdog has a stall to report. */
static void hang_holding_chainlock(struct tdb_context *tdb, int w)
{
	set_phase(w, PH_CHAINLOCK);
	if (tdb_chainlock(tdb, skey("ctr0")) != 0) die("worker %d: chainlock: %s", w, tdb_errorstr(tdb));
	for (;;) pause();
}

static int worker_main(int w, uint64_t seed)
{
	char path[600], buf[128];
	struct model m;
	struct slot *s = &cfg->slots[w];
	bool killable = w < cfg->nkillable;
	worker_id = w;
	worker_seed = seed;
	rng_state = seed ? seed : 1;
	set_phase(w, PH_START);
	struct tdb_context *tdb = open_db();
	log_path(path, sizeof path, w);
	logfd = open(path, O_RDWR | O_CREAT | O_APPEND, 0600);
	if (logfd < 0) die("open %s: %s", path, strerror(errno));
	/* The previous incarnation may have been killed inside a log write. */
	if (trim_torn_tail(logfd) > 0) s->torn_tails++;
	/* Settle what a previous incarnation left in doubt; check the whole state. */
	set_phase(w, PH_VERIFY);
	if (tdb_lockall_read(tdb) != 0) die("worker %d: lockall_read: %s", w, tdb_errorstr(tdb));
	long seq;
	int applied = settle(tdb, w, &m, &seq);
	tdb_unlockall_read(tdb);
	if (applied >= 0) {
		int len = snprintf(buf, sizeof buf, "R %ld %d\n", seq, applied);
		log_write(buf, len);
		if (applied) s->resolved_applied++; else s->resolved_rolled_back++;
	}
	while (!cfg->stop) {
		unsigned r = below(100);
		s->heartbeat = now_ns();
		if (w == cfg->stall_worker && s->commits + s->plain_ops > 5) hang_holding_chainlock(tdb, w);
		if (killable) {
			if (r < 50) do_transaction(tdb, w, &m);
			else if (r < 62 && !cfg->no_traverse) do_traverse(tdb, w, true);
			else if (r < 78) do_chainlock(tdb, w, &m, true);
			else fetch_check(tdb, w, &m);
		} else {
			if (r < 35) do_plain(tdb, w, &m);
			else if (r < 50) do_chainlock(tdb, w, &m, false);
			else if (r < 65) do_transaction(tdb, w, &m);
			else if (r < 75 && !cfg->no_traverse) do_traverse(tdb, w, false);
			else fetch_check(tdb, w, &m);
		}
	}
	set_phase(w, PH_IDLE);
	if (tdb_close(tdb) != 0) die("worker %d: close failed", w);
	return 0;
}

/* ---- verification of a finished run ---- */

struct expect { struct model m[MAXW]; long ctr[NCTR]; long applied, rolled_back; };

static int check_log_cb(TDB_DATA k, TDB_DATA d, void *priv) { (void)k; (void)d; (*(long *)priv)++; return 0; }

static int cmp_cb(struct tdb_context *tdb, TDB_DATA k, TDB_DATA d, void *priv)
{
	struct expect *e = priv;
	char s[64];
	int w, j;
	(void)tdb;
	if (!plausible_key(k)) die("verify: unexpected record '%.*s'", (int)(k.dsize > 40 ? 40 : k.dsize), (char *)k.dptr);
	memcpy(s, k.dptr, k.dsize);
	s[k.dsize] = 0;
	if (sscanf(s, "w%d.k%d", &w, &j) == 2) {
		if (!e->m[w].val[j]) die("verify: %s present, but deleted or never written", s);
		/* contents were compared by db_matches */
	}
	(void)d;
	return 0;
}

static int verify(const char *label, struct tdb_context *held)
{
	struct tdb_context *tdb = held ? held : open_db();
	long recs = 0, expected = 0;
	struct expect *e = calloc(1, sizeof *e);
	Dl_info info;
	const char *lib = dladdr((void *)tdb_open, &info) && info.dli_fname ? info.dli_fname : "?";
	if (tdb_check(tdb, check_log_cb, &recs) != 0) die("verify (%s): tdb_check failed: %s", lib, tdb_errorstr(tdb));
	if (tdb_lockall_read(tdb) != 0) die("verify: lockall_read: %s", tdb_errorstr(tdb));
	for (int w = 0; w < cfg->nworkers; w++) {
		long seq;
		int a = settle(tdb, w, &e->m[w], &seq);
		if (a == 1) e->applied++;
		if (a == 0) e->rolled_back++;
		for (int c = 0; c < NCTR; c++) e->ctr[c] += e->m[w].ctr[c];
		for (int j = 0; j < NKEYS; j++) expected += e->m[w].val[j] != NULL;
		expected += e->m[w].mark >= 0;
	}
	for (int c = 0; c < NCTR; c++) {
		char k[16];
		snprintf(k, sizeof k, "ctr%d", c);
		TDB_DATA d = tdb_fetch(tdb, skey(k));
		long v = 0;
		if (d.dptr) { char t[32] = { 0 }; memcpy(t, d.dptr, d.dsize < 31 ? d.dsize : 31); v = atol(t); free(d.dptr); expected++; }
		if (v != e->ctr[c]) die("verify: %s is %ld, the logs add up to %ld", k, v, e->ctr[c]);
	}
	int n = tdb_traverse_read(tdb, cmp_cb, e);
	if (n < 0) die("verify: traverse_read: %s", tdb_errorstr(tdb));
	if (n != expected || recs != expected) die("verify: %d records traversed, %ld checked, %ld expected", n, recs, expected);
	tdb_unlockall_read(tdb);
	if (!held && tdb_close(tdb) != 0) die("verify: close");
	printf("verify [%s] %s: tdb_check OK, %ld records exactly as logged, counters %ld/%ld/%ld/%ld; final in-doubt transactions: %ld applied, %ld rolled back\n",
	       label, lib, expected, e->ctr[0], e->ctr[1], e->ctr[2], e->ctr[3], e->applied, e->rolled_back);
	return 0;
}

/* ---- -T: the torn-log handling, on logs written as a killed worker leaves them ---- */

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd) != 0) die("write %s", path);
}

/* trim_torn_tail on `text` must cut `cut` bytes and leave the rest as it was. */
static void self_test_trim(const char *path, const char *text, long cut)
{
	char back[256] = { 0 };
	write_file(path, text);
	int fd = open(path, O_RDWR | O_APPEND);
	if (fd < 0) die("open %s", path);
	long got = trim_torn_tail(fd);
	ssize_t n = pread(fd, back, sizeof back - 1, 0);
	close(fd);
	if (got != cut || n != (ssize_t)(strlen(text) - cut) || strncmp(back, text, n) != 0)
		die("self-test: trimming '%s' cut %ld bytes and left '%s', expected a cut of %ld", text, got, back, cut);
}

/* A log whose last line is torn, and a database with or without the operation that
 * line was about: settle must accept the database and say which it was. */
static void self_test_settle(const char *log_text, bool store_txn2, int expect_applied, long expect_seq)
{
	char path[600], val[MAXVAL + 64];
	struct model m;
	long seq;
	log_path(path, sizeof path, 0);
	write_file(path, log_text);
	snprintf(path, sizeof path, "%s/torture.tdb", dir);
	unlink(path);
	struct tdb_context *tdb = open_db();
	/* transaction 1 (committed in every log below): w0.k3 stored, marker 1 */
	size_t vl = make_value(val, 0, 1, 3, 40);
	if (tdb_store(tdb, skey("w0.k3"), mkdata(val, vl), TDB_REPLACE) != 0) die("self-test store");
	if (tdb_store(tdb, skey("w0.mark"), mkdata("1", 1), TDB_REPLACE) != 0) die("self-test store");
	if (store_txn2) {
		/* transaction 2: w0.k5 stored, marker 2 */
		vl = make_value(val, 0, 2, 5, 30);
		if (tdb_store(tdb, skey("w0.k5"), mkdata(val, vl), TDB_REPLACE) != 0) die("self-test store");
		if (tdb_store(tdb, skey("w0.mark"), mkdata("2", 1), TDB_REPLACE) != 0) die("self-test store");
	}
	int applied = settle(tdb, 0, &m, &seq);
	if (applied != expect_applied || seq != expect_seq)
		die("self-test: settle gave %d (transaction %ld), expected %d (transaction %ld) for the log '%s'", applied, seq,
		    expect_applied, expect_seq, log_text);
	model_free(&m);
	tdb_close(tdb);
}

static int torn_log_self_test(void)
{
	static struct config c = { .nworkers = 1, .nkillable = 1, .hash_size = 31, .stall_worker = -1 };
	char path[600];
	const char *t1 = "I 1 2\no S 3 1 40\no M 0 1 0\nP 1\nC 1\n";
	char committed_torn_c[256], intent_torn[256], p_torn[256];
	cfg = &c;
	mkdir(dir, 0700);
	log_path(path, sizeof path, 0);
	self_test_trim(path, "I 1 1\no M 0 1 0\nP 1\nC", 1);
	self_test_trim(path, "P 1\nC 1\n", 0);
	self_test_trim(path, "I 12 3\no S 2 12 4", 10);
	self_test_trim(path, "I 1", 3);
	self_test_trim(path, "", 0);
	/* Transaction 2's "C" torn after its commit: in doubt, settled by the marker. */
	snprintf(committed_torn_c, sizeof committed_torn_c, "%sI 2 2\no S 5 2 30\no M 0 2 0\nP 2\nC", t1);
	self_test_settle(committed_torn_c, true, 1, 2);
	self_test_settle(committed_torn_c, false, 0, 2);
	/* Its "P" torn: the commit never started, so it must be absent. */
	snprintf(p_torn, sizeof p_torn, "%sI 2 2\no S 5 2 30\no M 0 2 0\nP", t1);
	self_test_settle(p_torn, false, -1, -1);
	/* Its intention torn inside an operation line. */
	snprintf(intent_torn, sizeof intent_torn, "%sI 2 2\no S 5 2", t1);
	self_test_settle(intent_torn, false, -1, -1);
	/* A complete log: nothing in doubt. */
	self_test_settle(t1, false, -1, -1);
	printf("self-test: torn log lines: 5 trims and 5 settled logs as expected\n");
	return 0;
}

/* ---- the parent ---- */

static char self_exe[600];

/* The seed of worker w's incarnation i in a run with seed `seed` (splitmix64). */
static uint64_t worker_seed_of(unsigned seed, int w, int incarnation)
{
	uint64_t z = ((uint64_t)seed << 32 ^ (uint64_t)w << 20 ^ (uint64_t)incarnation) + 0x9E3779B97F4A7C15ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static pid_t spawn(int w)
{
	struct slot *s = &cfg->slots[w];
	s->phase = PH_START;
	s->heartbeat = now_ns();
	s->seed = worker_seed_of(cfg->seed, w, s->incarnation);
	pid_t pid = fork();
	if (pid < 0) die("fork: %s", strerror(errno));
	if (pid == 0) {
		char wbuf[16], sbuf[32];
		snprintf(wbuf, sizeof wbuf, "%d", w);
		snprintf(sbuf, sizeof sbuf, "%#llx", (unsigned long long)s->seed);
		if (cfg->mixed_libdir[0]) {
			if (w % 2) setenv("LD_LIBRARY_PATH", cfg->mixed_libdir, 1);
			else unsetenv("LD_LIBRARY_PATH");
		}
		execl(self_exe, self_exe, "--worker", wbuf, sbuf, dir, (char *)NULL);
		_exit(127);
	}
	s->pid = pid;
	return pid;
}

static void kill_all(void)
{
	for (int w = 0; w < cfg->nworkers; w++)
		if (cfg->slots[w].pid > 0) kill(cfg->slots[w].pid, SIGKILL);
	while (wait(NULL) > 0) {}
}

static int w_of_pid(pid_t pid);

/* Every thread's stack of process pid (gdb), its frames to stderr. */
static void print_stacks(pid_t pid)
{
	char cmd[256], line[1024];
	int frames = 0;
	snprintf(cmd, sizeof cmd, "timeout 60 gdb -nx -batch -p %d -ex 'thread apply all bt' 2>&1", (int)pid);
	fflush(stdout);
	fflush(stderr);
	FILE *p = popen(cmd, "r");
	if (!p) { fprintf(stderr, "    (cannot run gdb: %s)\n", strerror(errno)); return; }
	while (fgets(line, sizeof line, p)) {
		if (line[0] != '#' && strncmp(line, "Thread ", 7) != 0) continue;
		frames += line[0] == '#';
		fprintf(stderr, "    %s", line);
	}
	int st = pclose(p);
	if (frames == 0) fprintf(stderr, "    (no stack from gdb, status %d: is gdb installed?)\n", st);
}

/* Who process pid is: "worker N", "the parent" (the holder in mutex mode) or "?". */
static const char *who(int pid, char *buf, size_t n)
{
	int w = w_of_pid(pid);
	if (w >= 0) snprintf(buf, n, "worker %d", w);
	else snprintf(buf, n, "%s", pid == getpid() ? "the parent" : "not a worker");
	return buf;
}

/* What the tdb lock on bytes start..end (end: a number or "EOF") of the file is. */
static void describe_lock_range(char *out, size_t n, unsigned long start, const char *end)
{
	long first = ((long)start - 168) / 4, last = strcmp(end, "EOF") ? (atol(end) - 168) / 4 : -1;
	if (start == 0) snprintf(out, n, "open lock");
	else if (start == 4) snprintf(out, n, "active lock");
	else if (start == 8) snprintf(out, n, "transaction lock");
	else if (start == 164) snprintf(out, n, "freelist");
	else if (start >= 168 && start % 4 == 0 && first < cfg->hash_size) {
		if (last < 0) snprintf(out, n, "chains from %ld and the records (to EOF)", first);
		else if (last > first) snprintf(out, n, "chains %ld..%ld", first, last);
		else snprintf(out, n, "chain %ld", first);
	} else snprintf(out, n, "offset %lu", start);
}

/* The lines of /proc/locks for the database file, each with its holder's worker. */
static void print_file_locks(const char *path)
{
	char line[512], needle[80];
	struct stat st;
	int found = 0;
	if (stat(path, &st) != 0) { fprintf(stderr, "    (stat %s: %s)\n", path, strerror(errno)); return; }
	snprintf(needle, sizeof needle, " %02x:%02x:%lu ", major(st.st_dev), minor(st.st_dev), (unsigned long)st.st_ino);
	FILE *f = fopen("/proc/locks", "r");
	if (!f) { fprintf(stderr, "    (/proc/locks: %s)\n", strerror(errno)); return; }
	while (fgets(line, sizeof line, f)) {
		char *at = strstr(line, needle), what[64] = "", end[32] = "EOF";
		if (!at) continue;
		unsigned long start = 0;
		int pid = 0;
		/* "<id>: [-> ]<class> <ADVISORY> <READ|WRITE> <pid> <dev:ino> <start> <end>" */
		sscanf(at + strlen(needle), "%lu %31s", &start, end);
		char *pid_end = at;
		while (pid_end > line && pid_end[-1] == ' ') pid_end--;
		char *pid_start = pid_end;
		while (pid_start > line && pid_start[-1] != ' ') pid_start--;
		pid = atoi(pid_start);
		describe_lock_range(what, sizeof what, start, end);
		line[strcspn(line, "\n")] = 0;
		char name[32];
		fprintf(stderr, "    %s   [%s; pid %d = %s]\n", line, what, pid, who(pid, name, sizeof name));
		found++;
	}
	fclose(f);
	if (!found) fprintf(stderr, "    (no lock on the file in /proc/locks)\n");
}

/* The mutex area in front of a TDB_MUTEX_LOCKING file, laid out as glibc and
 * Samba's libtdb lay it out: a copy of the header, the allrecord mutex, how the
 * allrecord lock is held, then the freelist mutex and one mutex per chain. */
struct mutex_area_head {
	unsigned char header[168];
	pthread_mutex_t allrecord_mutex;
	short allrecord_lock;
	pthread_mutex_t chains[];
};

static void print_mutex(const char *name, long idx, const pthread_mutex_t *m)
{
	int word = m->__data.__lock, owner = m->__data.__owner;
	if (word == 0 && owner == 0) return;
	int tid = word & 0x3fffffff;
	char holder[32];
	fprintf(stderr, "    %s", name);
	if (idx >= 0) fprintf(stderr, " %ld", idx);
	fprintf(stderr, ": lock word %#x (holder tid %d = %s%s%s), __owner %d\n", (unsigned)word, tid, who(tid, holder, sizeof holder),
		(unsigned)word & 0x80000000u ? ", waiters" : "", word & 0x40000000 ? ", owner died" : "", owner);
}

/* Every mutex of the mutex area that is held (or marked), with its holder. */
static void print_mutex_area(const char *path)
{
	struct mutex_area_head head;
	pthread_mutex_t m;
	uint32_t hash_size;
	int fd = open(path, O_RDONLY);
	if (fd < 0) { fprintf(stderr, "    (open %s: %s)\n", path, strerror(errno)); return; }
	if (pread(fd, &head, sizeof head, 0) != (ssize_t)sizeof head) { fprintf(stderr, "    (short mutex area)\n"); close(fd); return; }
	memcpy(&hash_size, head.header + 36, 4);
	fprintf(stderr, "    allrecord_lock field: %d (0 read, 1 write, 2 none), hash size %u\n", head.allrecord_lock, hash_size);
	print_mutex("allrecord mutex", -1, &head.allrecord_mutex);
	for (uint32_t i = 0; i <= hash_size && i < 1000000; i++) {
		off_t at = (off_t)offsetof(struct mutex_area_head, chains) + (off_t)i * sizeof m;
		if (pread(fd, &m, sizeof m, at) != (ssize_t)sizeof m) break;
		print_mutex(i == 0 ? "freelist mutex" : "chain mutex", i == 0 ? -1 : (long)i - 1, &m);
	}
	close(fd);
}

/* The watchdog's report: who is idle where, their stacks, the file's locks.
 * Nothing is killed until it is printed. */
static void report_stall(const char *when)
{
	char path[600];
	uint64_t t = now_ns();
	snprintf(path, sizeof path, "%s/torture.tdb", dir);
	fprintf(stderr, "tdb-torture: STALL %s: no progress for %d s (run seed %u)\n", when, cfg->watchdog_secs, cfg->seed);
	for (int w = 0; w < cfg->nworkers; w++)
		fprintf(stderr, "  worker %d pid %d incarnation %d seed %#llx phase %s idle %.1f s\n", w, cfg->slots[w].pid,
			cfg->slots[w].incarnation, (unsigned long long)cfg->slots[w].seed, phase_name[cfg->slots[w].phase],
			(t - cfg->slots[w].heartbeat) / 1e9);
	fprintf(stderr, "  locks on %s (/proc/locks):\n", path);
	print_file_locks(path);
	if (cfg->mutex) {
		fprintf(stderr, "  mutex area (held mutexes):\n");
		print_mutex_area(path);
	}
	for (int w = 0; w < cfg->nworkers; w++) {
		if (cfg->slots[w].pid <= 0 || t - cfg->slots[w].heartbeat < 1000000000ull) continue;
		fprintf(stderr, "  stacks of worker %d (pid %d, phase %s):\n", w, cfg->slots[w].pid, phase_name[cfg->slots[w].phase]);
		print_stacks(cfg->slots[w].pid);
	}
	kill_all();
	exit(2);
}

static int w_of_pid(pid_t pid)
{
	for (int w = 0; w < cfg->nworkers; w++)
		if (cfg->slots[w].pid == pid) return w;
	return -1;
}

/* Reaps exited workers; any that exited on its own (not by our kill) is a failure. */
static int failures;
static void reap(bool expect_exit)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		int w = w_of_pid(pid);
		if (w >= 0) cfg->slots[w].pid = 0;
		if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0) || !expect_exit) {
			fprintf(stderr, "tdb-torture: worker %d (pid %d) %s %d\n", w, pid, WIFEXITED(st) ? "exited with" : "died of signal",
				WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			failures++;
		}
	}
}

static void stall_watch(void)
{
	uint64_t t = now_ns();
	for (int w = 0; w < cfg->nworkers; w++)
		if (cfg->slots[w].pid > 0 && (int64_t)(t - cfg->slots[w].heartbeat) > (int64_t)cfg->watchdog_secs * 1000000000ll)
			report_stall("during the run");
}

int main(int argc, char **argv)
{
	int opt, verify_only = 0;
	const char *verify_cmd = NULL;
	struct config c = { .nworkers = 6, .nkillable = -1, .duration = 10, .kill_ms = 200, .hash_size = 31,
			    .watchdog_secs = 30, .stall_worker = -1 };
	bool self_test = false;
	c.seed = (unsigned)time(NULL);

	if (argc == 5 && strcmp(argv[1], "--worker") == 0) {
		snprintf(dir, sizeof dir, "%s", argv[4]);
		char p[600];
		snprintf(p, sizeof p, "%s/state", dir);
		int fd = open(p, O_RDWR);
		if (fd < 0) die("open %s", p);
		cfg = mmap(NULL, sizeof *cfg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (cfg == MAP_FAILED) die("mmap");
		return worker_main(atoi(argv[2]), strtoull(argv[3], NULL, 0));
	}
	while ((opt = getopt(argc, argv, "n:k:t:i:m:SH:s:RM:V:cw:X:T")) != -1) {
		switch (opt) {
		case 'n': c.nworkers = atoi(optarg); break;
		case 'k': c.nkillable = atoi(optarg); break;
		case 't': c.duration = atoi(optarg); break;
		case 'i': c.kill_ms = atoi(optarg); break;
		case 'm': c.mutex = strcmp(optarg, "mutex") == 0; if (!c.mutex && strcmp(optarg, "fcntl")) die("-m fcntl|mutex"); break;
		case 'S': c.nosync = 1; break;
		case 'H': c.hash_size = atoi(optarg); break;
		case 's': c.seed = strtoul(optarg, NULL, 0); break;
		case 'R': c.no_traverse = 1; break;
		case 'M': snprintf(c.mixed_libdir, sizeof c.mixed_libdir, "%s", optarg); break;
		case 'V': verify_cmd = optarg; break;
		case 'c': verify_only = 1; break;
		case 'w': c.watchdog_secs = atoi(optarg); break;
		case 'X': c.stall_worker = atoi(optarg); break;
		case 'T': self_test = true; break;
		default: fprintf(stderr, "usage: see the comment at the top of torture/tdb-torture.c\n"); return 1;
		}
	}
	if (optind != argc - 1) die("need DIR");
	snprintf(dir, sizeof dir, "%s", argv[optind]);
	char p[600];
	snprintf(p, sizeof p, "%s/state", dir);
	if (self_test) return torn_log_self_test();
	if (verify_only) {
		int fd = open(p, O_RDWR);
		if (fd < 0) die("open %s", p);
		cfg = mmap(NULL, sizeof *cfg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (cfg == MAP_FAILED) die("mmap");
		return verify("verify-only", NULL);
	}
	if (c.nkillable < 0) c.nkillable = c.nworkers > 2 ? c.nworkers - 2 : c.nworkers / 2;
	if (c.nworkers < 1 || c.nworkers > MAXW || c.nkillable > c.nworkers) die("bad worker counts");
	if (c.watchdog_secs < 1) die("-w needs at least 1 second");
	if (c.mutex && !tdb_runtime_check_for_robust_mutexes()) die("robust mutexes not supported here");
	ssize_t l = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
	if (l < 0) die("readlink /proc/self/exe");
	self_exe[l] = 0;
	mkdir(dir, 0700);
	/* A fresh run: remove what an earlier one left. */
	for (int w = 0; w < MAXW; w++) { char lp[600]; log_path(lp, sizeof lp, w); unlink(lp); }
	{ char dp[600]; snprintf(dp, sizeof dp, "%s/torture.tdb", dir); unlink(dp); }
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || ftruncate(fd, sizeof *cfg) != 0) die("create %s", p);
	cfg = mmap(NULL, sizeof *cfg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (cfg == MAP_FAILED) die("mmap");
	*cfg = c;
	rng_state = c.seed * 0x9E3779B97F4A7C15ull + 1;

	/* The holder: in mutex mode it keeps the file from being wiped by an opener
	 * that finds itself first (CLEAR_IF_FIRST) after every worker was killed. */
	struct tdb_context *holder = open_db();
	if (!c.mutex) { tdb_close(holder); holder = NULL; }

	Dl_info info;
	const char *lib = dladdr((void *)tdb_open, &info) && info.dli_fname ? info.dli_fname : "?";
	printf("torture: %s, %s%s, %d workers (%d killable), %d s, kill every ~%d ms, hash %d, watchdog %d s, seed %u (replay: -s %u)%s%s%s\n",
	       lib, c.mutex ? "mutex" : "fcntl", c.nosync ? "+nosync" : "", c.nworkers, c.nkillable, c.duration, c.kill_ms, c.hash_size,
	       c.watchdog_secs, c.seed, c.seed, c.no_traverse ? ", no traversals" : "", c.mixed_libdir[0] ? ", odd workers on " : "", c.mixed_libdir);
	fflush(stdout);
	for (int w = 0; w < c.nworkers; w++) spawn(w);

	uint64_t end = now_ns() + (uint64_t)c.duration * 1000000000ull;
	long kills = 0, kills_in_commit = 0, kills_targeted = 0;
	while (now_ns() < end) {
		int wait_ms = c.kill_ms > 0 ? 1 + below(2 * c.kill_ms) : 100;
		uint64_t until = now_ns() + wait_ms * 1000000ull;
		while (now_ns() < until) {
			usleep(1000);
			reap(false);
			stall_watch();
		}
		if (c.kill_ms <= 0 || c.nkillable == 0) continue;
		int victim = -1;
		bool targeted = below(3) != 0;
		if (targeted) {
			/* Wait (up to 100 ms) for a killable worker to be committing, then kill
			 * it at a random point of a typical commit's duration. */
			uint64_t give_up = now_ns() + 100000000ull;
			while (victim < 0 && now_ns() < give_up) {
				for (int w = 0; w < c.nkillable; w++)
					if (cfg->slots[w].pid > 0 && cfg->slots[w].phase == PH_COMMIT) { victim = w; break; }
				if (victim < 0) usleep(50);
			}
			if (victim >= 0) {
				uint64_t d = cfg->slots[victim].commit_ns;
				if (d > 0) {
					uint64_t t = now_ns() + (rnd() % d);
					while (now_ns() < t) {}
				}
				kills_targeted++;
			}
		}
		if (victim < 0) victim = below(c.nkillable);
		if (cfg->slots[victim].pid <= 0) continue;
		if (cfg->slots[victim].phase == PH_COMMIT) kills_in_commit++;
		kill(cfg->slots[victim].pid, SIGKILL);
		int st;
		waitpid(cfg->slots[victim].pid, &st, 0);
		if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) { fprintf(stderr, "tdb-torture: worker %d exited (status %d) before the kill\n", victim, st); failures++; }
		kills++;
		cfg->slots[victim].incarnation++;
		spawn(victim);
	}
	cfg->stop = 1;
	uint64_t give_up = now_ns() + (uint64_t)c.watchdog_secs * 1000000000ull;
	for (;;) {
		bool any = false;
		reap(true);
		for (int w = 0; w < c.nworkers; w++) any |= cfg->slots[w].pid > 0;
		if (!any) break;
		if (now_ns() > give_up) report_stall("at the end of the run");
		usleep(1000);
	}
	uint64_t commits = 0, aborts = 0, plain = 0, trav = 0, chl = 0, fetches = 0, ra = 0, rr = 0, tref = 0, torn = 0;
	for (int w = 0; w < c.nworkers; w++) {
		struct slot *s = &cfg->slots[w];
		commits += s->commits; aborts += s->aborts; plain += s->plain_ops; trav += s->traverses; chl += s->chainlocks;
		fetches += s->fetches; ra += s->resolved_applied; rr += s->resolved_rolled_back; tref += s->trav_refused;
		torn += s->torn_tails;
	}
	printf("torture: %ld kills (%ld timed at a commit, %ld while committing); %lu commits, %lu cancels, %lu plain writes, "
	       "%lu traversals (%lu traverse_read refused a pending recovery), %lu chainlocks, %lu checked fetches; restarts found %lu in-doubt commits applied, %lu rolled back, "
	       "%lu torn log lines\n",
	       kills, kills_targeted, kills_in_commit, (unsigned long)commits, (unsigned long)aborts, (unsigned long)plain,
	       (unsigned long)trav, (unsigned long)tref, (unsigned long)chl, (unsigned long)fetches, (unsigned long)ra, (unsigned long)rr,
	       (unsigned long)torn);
	fflush(stdout);
	if (failures) { fprintf(stderr, "tdb-torture: %d worker failures\n", failures); return 1; }
	int rc = verify("same library", holder);
	fflush(stdout);
	if (rc == 0 && verify_cmd) {
		setenv("TORTURE_DIR", dir, 1);
		int st = system(verify_cmd);
		if (st != 0) { fprintf(stderr, "tdb-torture: '%s' failed (%d)\n", verify_cmd, st); rc = 1; }
	}
	if (holder) tdb_close(holder);
	return rc;
}
