/*
 * tdbbench: a throughput benchmark for libtdb.so.1.
 *
 * Built against include/tdb.h and linked with -ltdb only, so that the same
 * binary measures Debian's libtdb or ours, chosen with LD_LIBRARY_PATH.
 *
 * One invocation measures one configuration (locking mode, record count,
 * hash size) on a fresh database and prints one tab-separated line per
 * workload:
 *
 *   label mode records hash workload ops seconds ops_per_sec maxrss_kb
 *   dbmap_kb
 *
 * Every workload except insert is time-bound: it runs in batches until -t
 * seconds have passed (or an op cap is hit), so the faster library simply
 * does more operations.  All stores after the insert phase overwrite existing
 * records with new data of the same size, so the database layout is the same
 * for both libraries whatever number of operations each one did.
 *
 * maxrss_kb is getrusage(RUSAGE_SELF).ru_maxrss after the workload (a running
 * peak for the process), and RUSAGE_CHILDREN for the multi-process rows.
 * It includes the library's own code pages.  dbmap_kb is what the library
 * has mapped of the database file and is resident after the workload (the
 * Rss of every mapping of that file in /proc/self/smaps, the mutex area
 * included): the memory the library holds for the database itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tdb.h"

#define KEY_LEN 16
#define DATA_LEN 64

static const char *label = "lib";
static const char *mode_name = "fcntl";
static bool mutex_mode;
static unsigned long nrecords = 100000;
static int hash_size = 131;
static double target_secs = 0.3;
static double fsync_secs = 1.0;
static const char *dir = ".";
static const char *only; /* comma-separated workload filter, NULL = all */
static char dbpath[4096];

static void die(const char *what)
{
	fprintf(stderr, "tdbbench [%s %s n=%lu h=%d]: %s: %s\n", label,
		mode_name, nrecords, hash_size, what, strerror(errno));
	exit(1);
}

static void die_tdb(struct tdb_context *tdb, const char *what)
{
	fprintf(stderr, "tdbbench [%s %s n=%lu h=%d]: %s: %s\n", label,
		mode_name, nrecords, hash_size, what,
		tdb ? tdb_errorstr(tdb) : "no handle");
	exit(1);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long maxrss_kb(int who)
{
	struct rusage ru;
	if (getrusage(who, &ru) != 0)
		return -1;
	return ru.ru_maxrss;
}

/* xorshift64*: cheap, deterministic, per-process streams. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static inline uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* Keys are "k" + 15 decimal digits: fixed KEY_LEN bytes, no NUL stored. */
static inline TDB_DATA make_key(char *buf, unsigned long i)
{
	/* Hand-rolled (not snprintf) so that the harness costs little next to
	 * the library calls it measures. */
	buf[0] = 'k';
	for (int j = KEY_LEN - 1; j >= 1; j--) {
		buf[j] = (char)('0' + i % 10);
		i /= 10;
	}
	return (TDB_DATA){ .dptr = (unsigned char *)buf, .dsize = KEY_LEN };
}

/* Missing keys share the length but never the prefix of existing ones. */
static inline TDB_DATA make_missing_key(char *buf, unsigned long i)
{
	TDB_DATA k = make_key(buf, i);
	buf[0] = 'm';
	return k;
}

/* Every store writes bytes that differ from what is stored (the first 8 bytes
 * carry a per-process store counter), so no library can skip the write as
 * "unchanged"; the size is always DATA_LEN. */
static uint64_t store_seq;
static inline TDB_DATA make_data(unsigned char *buf, unsigned long i,
				 unsigned gen)
{
	uint64_t seq = ++store_seq;
	memcpy(buf, &seq, sizeof seq);
	for (int j = (int)sizeof seq; j < DATA_LEN; j++)
		buf[j] = (unsigned char)(i * 31 + (unsigned long)j + gen);
	return (TDB_DATA){ .dptr = buf, .dsize = DATA_LEN };
}

static bool want(const char *w)
{
	if (!only)
		return true;
	size_t n = strlen(w);
	for (const char *p = only; *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == n && strncmp(p, w, n) == 0)
			return true;
		if (!e)
			break;
		p = e + 1;
	}
	return false;
}

/* Resident kB of every mapping of the database file (0 before it exists). */
static long dbmap_kb(void)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[4608];
	long total = 0;
	bool ours = false;
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		long kb;
		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			size_t n = strlen(line), m = strlen(dbpath);
			while (n && (line[n - 1] == '\n' || line[n - 1] == ' '))
				line[--n] = '\0';
			ours = n >= m && strcmp(line + n - m, dbpath) == 0;
		} else if (ours && sscanf(line, "Rss: %ld kB", &kb) == 1) {
			total += kb;
		}
	}
	fclose(f);
	return total;
}

static void report(const char *workload, unsigned long ops, double secs,
		   long rss)
{
	printf("%s\t%s\t%lu\t%d\t%s\t%lu\t%.6f\t%.1f\t%ld\t%ld\n",
	       label, mode_name, nrecords, hash_size, workload, ops, secs,
	       secs > 0 ? (double)ops / secs : 0.0, rss, dbmap_kb());
	fflush(stdout);
}

static int open_flags(void)
{
	/* Both modes use CLEAR_IF_FIRST (Samba's volatile databases);
	 * mutex mode requires it. */
	return TDB_CLEAR_IF_FIRST | (mutex_mode ? TDB_MUTEX_LOCKING : 0);
}

static struct tdb_context *open_db(void)
{
	struct tdb_context *tdb =
		tdb_open(dbpath, hash_size, open_flags(), O_RDWR | O_CREAT, 0600);
	if (!tdb)
		die("tdb_open");
	return tdb;
}

/* Time-bound loop helper: run body in batches of `batch' until the deadline
 * or cap; returns the number of operations done. */
#define TIMED_LOOP(ops, secs, limit_secs, cap, batch, body)                   \
	do {                                                                  \
		double t0_ = now(), t1_ = t0_;                                \
		(ops) = 0;                                                    \
		while ((ops) < (cap)) {                                       \
			for (unsigned b_ = 0; b_ < (batch) && (ops) < (cap);   \
			     b_++, (ops)++) {                                 \
				body;                                         \
			}                                                     \
			t1_ = now();                                          \
			if (t1_ - t0_ >= (limit_secs))                        \
				break;                                        \
		}                                                             \
		(secs) = t1_ - t0_;                                           \
	} while (0)

static int parser(TDB_DATA key, TDB_DATA data, void *priv)
{
	(void)key;
	*(unsigned long *)priv += data.dsize ? data.dptr[data.dsize - 1] : 0;
	return 0;
}

static int trav_fn(struct tdb_context *tdb, TDB_DATA key, TDB_DATA data,
		   void *priv)
{
	(void)tdb;
	(void)key;
	*(unsigned long *)priv += data.dsize;
	return 0;
}

static volatile unsigned long sink;

__attribute__((noinline)) static void w_insert(struct tdb_context *tdb)
{
	char kb[KEY_LEN];
	unsigned char db[DATA_LEN];
	double t0 = now();
	for (unsigned long i = 0; i < nrecords; i++) {
		if (tdb_store(tdb, make_key(kb, i), make_data(db, i, 0),
			      TDB_INSERT) != 0)
			die_tdb(tdb, "insert");
	}
	double secs = now() - t0;
	report("insert", nrecords, secs, maxrss_kb(RUSAGE_SELF));
}

__attribute__((noinline)) static void w_fetch(struct tdb_context *tdb)
{
	char kb[KEY_LEN];
	unsigned long ops;
	double secs;
	TIMED_LOOP(ops, secs, target_secs, ~0UL, 256, {
		TDB_DATA d = tdb_fetch(tdb, make_key(kb, rnd() % nrecords));
		if (!d.dptr || d.dsize != DATA_LEN)
			die_tdb(tdb, "fetch");
		sink += d.dptr[0];
		free(d.dptr);
	});
	report("fetch", ops, secs, maxrss_kb(RUSAGE_SELF));
}

__attribute__((noinline)) static void w_parse(struct tdb_context *tdb)
{
	char kb[KEY_LEN];
	unsigned long ops, acc = 0;
	double secs;
	TIMED_LOOP(ops, secs, target_secs, ~0UL, 256, {
		if (tdb_parse_record(tdb, make_key(kb, rnd() % nrecords),
				     parser, &acc) != 0)
			die_tdb(tdb, "parse_record");
	});
	sink += acc;
	report("parse_record", ops, secs, maxrss_kb(RUSAGE_SELF));
}

__attribute__((noinline)) static void w_missing(struct tdb_context *tdb)
{
	char kb[KEY_LEN];
	unsigned long ops;
	double secs;
	TIMED_LOOP(ops, secs, target_secs, ~0UL, 256, {
		TDB_DATA d =
			tdb_fetch(tdb, make_missing_key(kb, rnd() % nrecords));
		if (d.dptr)
			die_tdb(tdb, "missing key found");
	});
	report("fetch_missing", ops, secs, maxrss_kb(RUSAGE_SELF));
}

__attribute__((noinline)) static void w_traverse(struct tdb_context *tdb)
{
	unsigned long recs = 0, bytes = 0;
	double t0 = now(), secs;
	do {
		int n = tdb_traverse_read(tdb, trav_fn, &bytes);
		if (n < 0 || (unsigned long)n != nrecords)
			die_tdb(tdb, "traverse_read count");
		recs += (unsigned long)n;
		secs = now() - t0;
	} while (secs < target_secs);
	sink += bytes;
	report("traverse_read", recs, secs, maxrss_kb(RUSAGE_SELF));
}

__attribute__((noinline)) static void w_modify(struct tdb_context *tdb)
{
	char kb[KEY_LEN];
	unsigned char db[DATA_LEN];
	unsigned long ops;
	double secs;
	TIMED_LOOP(ops, secs, target_secs, ~0UL, 256, {
		unsigned long i = rnd() % nrecords;
		if (tdb_store(tdb, make_key(kb, i), make_data(db, i, 1),
			      TDB_REPLACE) != 0)
			die_tdb(tdb, "modify");
	});
	report("modify", ops, secs, maxrss_kb(RUSAGE_SELF));
}

static void one_txn(struct tdb_context *tdb, int stores, unsigned gen)
{
	char kb[KEY_LEN];
	unsigned char db[DATA_LEN];
	if (tdb_transaction_start(tdb) != 0)
		die_tdb(tdb, "transaction_start");
	for (int s = 0; s < stores; s++) {
		unsigned long i = rnd() % nrecords;
		if (tdb_store(tdb, make_key(kb, i), make_data(db, i, gen),
			      TDB_REPLACE) != 0)
			die_tdb(tdb, "transaction store");
	}
	if (tdb_transaction_commit(tdb) != 0)
		die_tdb(tdb, "transaction_commit");
}

__attribute__((noinline)) static void w_txn100(struct tdb_context *tdb)
{
	unsigned long ops;
	double secs;
	tdb_add_flags(tdb, TDB_NOSYNC);
	TIMED_LOOP(ops, secs, target_secs, ~0UL, 1, one_txn(tdb, 100, 2));
	tdb_remove_flags(tdb, TDB_NOSYNC);
	report("txn100_nosync", ops, secs, maxrss_kb(RUSAGE_SELF));
}

__attribute__((noinline)) static void w_txn_fsync(struct tdb_context *tdb)
{
	unsigned long ops;
	double secs;
	TIMED_LOOP(ops, secs, fsync_secs, 1000UL, 1, one_txn(tdb, 1, 3));
	report("txn1_fsync", ops, secs, maxrss_kb(RUSAGE_SELF));
}

/* nproc children, forked after the parent opened the database; each does
 * tdb_reopen() and mixes 3 fetches : 1 same-size store on random keys drawn
 * from the whole (shared) key space.  Aggregate ops/s = total ops divided by
 * the wall time from the common start signal to the last child's finish. */
__attribute__((noinline)) static void w_multi(struct tdb_context *tdb, int nproc)
{
	int ready[2], go[2], res[2];
	if (pipe(ready) || pipe(go) || pipe(res))
		die("pipe");
	fflush(stdout);
	pid_t pids[16];
	for (int p = 0; p < nproc; p++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			close(ready[0]);
			close(go[1]);
			close(res[0]);
			if (tdb_reopen(tdb) != 0) {
				fprintf(stderr, "tdbbench: tdb_reopen failed\n");
				_exit(2);
			}
			rng_state ^= (uint64_t)(p + 1) * 0x100000001b3ULL;
			store_seq = (uint64_t)(p + 1) << 48;
			char c = 'r';
			if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1)
				_exit(3);
			char kb[KEY_LEN];
			unsigned char db[DATA_LEN];
			unsigned long ops;
			double secs;
			TIMED_LOOP(ops, secs, target_secs, ~0UL, 64, {
				unsigned long i = rnd() % nrecords;
				if ((ops & 3) == 3) {
					if (tdb_store(tdb, make_key(kb, i),
						      make_data(db, i, 4 + (unsigned)p),
						      TDB_REPLACE) != 0)
						_exit(4);
				} else {
					TDB_DATA d = tdb_fetch(tdb, make_key(kb, i));
					if (!d.dptr)
						_exit(5);
					free(d.dptr);
				}
			});
			(void)secs;
			if (write(res[1], &ops, sizeof ops) != sizeof ops)
				_exit(6);
			tdb_close(tdb);
			_exit(0);
		}
		pids[p] = pid;
	}
	close(ready[1]);
	close(go[0]);
	close(res[1]);
	for (int p = 0; p < nproc; p++) {
		char c;
		if (read(ready[0], &c, 1) != 1) {
			fprintf(stderr, "tdbbench: child failed before start\n");
			exit(1);
		}
	}
	char gobuf[16];
	memset(gobuf, 'g', sizeof gobuf);
	double t0 = now();
	if (write(go[1], gobuf, (size_t)nproc) != nproc)
		die("write go");
	unsigned long total = 0;
	for (int p = 0; p < nproc; p++) {
		int st;
		if (waitpid(pids[p], &st, 0) < 0)
			die("waitpid");
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "tdbbench: child %d failed (status %d)\n",
				p, st);
			exit(1);
		}
	}
	double secs = now() - t0;
	for (int p = 0; p < nproc; p++) {
		unsigned long o;
		if (read(res[0], &o, sizeof o) != sizeof o)
			die("read result");
		total += o;
	}
	close(ready[0]);
	close(go[1]);
	close(res[0]);
	char name[32];
	snprintf(name, sizeof name, "mixed_%dproc", nproc);
	report(name, total, secs, maxrss_kb(RUSAGE_CHILDREN));
}

__attribute__((noinline)) static void w_delete(struct tdb_context *tdb)
{
	char kb[KEY_LEN];
	unsigned long ops;
	double secs;
	/* A fixed odd stride walks distinct keys in scattered order. */
	unsigned long stride = 7919;
	while (nrecords % stride == 0)
		stride += 2;
	TIMED_LOOP(ops, secs, target_secs, nrecords, 256, {
		if (tdb_delete(tdb, make_key(kb, (ops * stride) % nrecords)) != 0)
			die_tdb(tdb, "delete");
	});
	report("delete", ops, secs, maxrss_kb(RUSAGE_SELF));
}

static void usage(void)
{
	fprintf(stderr,
		"usage: tdbbench [-l label] [-m fcntl|mutex] [-n records] [-H hash_size]\n"
		"                [-t secs] [-f fsync_secs] [-d dir] [-w workload,...]\n"
		"workloads: insert fetch parse_record fetch_missing traverse_read modify\n"
		"           txn100_nosync txn1_fsync mixed_2proc mixed_4proc delete\n"
		"(insert always runs; it populates the database)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int c;
	while ((c = getopt(argc, argv, "l:m:n:H:t:f:d:w:h")) != -1) {
		switch (c) {
		case 'l': label = optarg; break;
		case 'm':
			if (strcmp(optarg, "mutex") == 0)
				mutex_mode = true;
			else if (strcmp(optarg, "fcntl") != 0)
				usage();
			mode_name = mutex_mode ? "mutex" : "fcntl";
			break;
		case 'n': nrecords = strtoul(optarg, NULL, 0); break;
		case 'H': hash_size = atoi(optarg); break;
		case 't': target_secs = atof(optarg); break;
		case 'f': fsync_secs = atof(optarg); break;
		case 'd': dir = optarg; break;
		case 'w': only = optarg; break;
		default: usage();
		}
	}
	if (nrecords == 0 || hash_size <= 0)
		usage();

	if (mutex_mode && !tdb_runtime_check_for_robust_mutexes()) {
		fprintf(stderr, "tdbbench: robust mutexes unavailable, mutex mode skipped\n");
		return 77;
	}

	snprintf(dbpath, sizeof dbpath, "%s/tdbbench-%ld-%s.tdb", dir,
		 (long)getpid(), mode_name);
	unlink(dbpath);

	long rss0 = maxrss_kb(RUSAGE_SELF);
	report("baseline", 0, 0, rss0);

	struct tdb_context *tdb = open_db();
	w_insert(tdb);
	if (want("fetch")) w_fetch(tdb);
	if (want("parse_record")) w_parse(tdb);
	if (want("fetch_missing")) w_missing(tdb);
	if (want("traverse_read")) w_traverse(tdb);
	if (want("modify")) w_modify(tdb);
	if (want("txn100_nosync")) w_txn100(tdb);
	if (want("txn1_fsync")) w_txn_fsync(tdb);
	if (want("mixed_2proc")) w_multi(tdb, 2);
	if (want("mixed_4proc")) w_multi(tdb, 4);
	if (want("delete")) w_delete(tdb);

	if (tdb_close(tdb) != 0)
		die("tdb_close");
	unlink(dbpath);
	return 0;
}
