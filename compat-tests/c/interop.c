/* Interop driver: one library writes, the other verifies/modifies/checks.
 *
 *   interop write  FILE PROFILE        create the stage-0 dataset
 *   interop modify FILE PROFILE        turn stage 0 into stage 1
 *   interop verify FILE PROFILE STAGE  exact comparison with the model
 *   interop check  FILE PROFILE        tdb_check + record count
 *   interop dump   FILE PROFILE        records in traversal order (hex) + summary
 *   interop lockhold FILE PROFILE WHAT KEY SECONDS   hold a lock, print "locked"
 *   interop lockprobe FILE PROFILE WHAT KEY          nonblocking attempt: prints "busy" or "free"
 *
 * PROFILE: default jenkins bigendian nommap dead freelist seqnum mutex volatile
 */
#include "common.h"

#define NKEYS 600

struct profile { const char *name; int create_flags; int open_flags; int max_dead; int hash_size; };
static const struct profile profiles[] = {
	{ "default",   0,                                   0,                     0,  0 },
	{ "jenkins",   TDB_INCOMPATIBLE_HASH,               0,                     0,  0 },
	{ "bigendian", TDB_CONVERT,                         0,                     0,  0 },
	{ "nommap",    TDB_NOMMAP,                          TDB_NOMMAP,            0,  97 },
	{ "dead",      0,                                   0,                     25, 31 },
	{ "freelist",  TDB_NOSYNC,                          TDB_NOSYNC,            0,  1 },
	{ "seqnum",    TDB_SEQNUM,                          TDB_SEQNUM,            0,  0 },
	{ "mutex",     TDB_MUTEX_LOCKING | TDB_CLEAR_IF_FIRST, TDB_MUTEX_LOCKING,  0,  0 },
	{ "volatile",  TDB_VOLATILE | TDB_INCOMPATIBLE_HASH, TDB_VOLATILE,         0,  13 },
};
static const struct profile *prof;

/* ---- the model ---- */
struct rec { char key[32]; size_t klen; unsigned char val[700]; size_t vlen; int live; };
static struct rec model[NKEYS + 100];
static int nmodel;
static int model_seqnum;

static void mkval(unsigned char *out, size_t *len, int i, int gen) {
	size_t n = (size_t)((i * 37 + gen * 101) % 250);
	size_t j;
	if (i % 100 == 0) n = 0;
	for (j = 0; j < n; j++) out[j] = (unsigned char)("abcdefghij"[(i + j + gen) % 10] ^ (gen == 2 ? 0x80 : 0));
	*len = n;
}
static struct rec *mget(int idx) { return &model[idx]; }

static void build_model(int stage) {
	int i;
	memset(model, 0, sizeof model);
	nmodel = NKEYS + 51;
	model_seqnum = 0;
	for (i = 0; i < NKEYS; i++) {
		struct rec *r = mget(i);
		r->klen = (size_t)snprintf(r->key, sizeof r->key, "k%05d", i);
		mkval(r->val, &r->vlen, i, 0);
		r->live = 1;
		model_seqnum++;
	}
	/* a binary key with a binary value */
	{
		struct rec *r = mget(NKEYS);
		memcpy(r->key, "\0bin\377key", 8);
		r->klen = 8;
		for (i = 0; i < 300; i++) r->val[i] = (unsigned char)(i * 13);
		r->vlen = 300;
		r->live = 1;
		model_seqnum++;
	}
	for (i = 0; i < NKEYS; i++) if (i % 7 == 3) { mget(i)->live = 0; model_seqnum++; }
	if (stage == 0) return;
	/* stage 1: transaction part */
	for (i = 0; i < NKEYS; i++) {
		struct rec *r = mget(i);
		if (i % 5 == 0 && r->live) { mkval(r->val, &r->vlen, i, 1); r->vlen += 200; memset(r->val + r->vlen - 200, 'Z', 200); model_seqnum++; }
		if (i % 7 == 3) { mkval(r->val, &r->vlen, i, 2); r->live = 1; model_seqnum++; }
		if (i % 11 == 1 && r->live) { memcpy(r->val + r->vlen, "+app", 4); r->vlen += 4; model_seqnum++; }
		if (i % 13 == 2 && r->live) { r->live = 0; model_seqnum++; }
	}
	/* outside a transaction */
	for (i = 0; i < 50; i++) {
		struct rec *r = mget(NKEYS + 1 + i);
		r->klen = (size_t)snprintf(r->key, sizeof r->key, "new-%d", i);
		r->vlen = (size_t)snprintf((char *)r->val, sizeof r->val, "fresh value %d", i * i);
		r->live = 1;
		model_seqnum++;
	}
	for (i = 0; i < 50; i += 10) { mget(NKEYS + 1 + i)->live = 0; model_seqnum++; }
}

static struct tdb_context *open_db(const char *f, int create) {
	struct tdb_context *tdb;
	static struct logcount lc;
	struct tdb_logging_context logctx = { count_log, &lc };
	int fl = create ? prof->create_flags : prof->open_flags;
	int of = create ? (O_RDWR | O_CREAT | O_TRUNC) : O_RDWR;
	if ((fl & TDB_MUTEX_LOCKING) && !tdb_runtime_check_for_robust_mutexes()) {
		fprintf(stderr, "robust mutexes not supported here\n");
		exit(3);
	}
	tdb = tdb_open_ex(f, prof->hash_size, fl, of, 0600, &logctx, NULL);
	if (!tdb) {
		fprintf(stderr, "open %s (%s) failed: %s\n", f, prof->name, strerror(errno));
		exit(2);
	}
	if (prof->max_dead) tdb_set_max_dead(tdb, prof->max_dead);
	return tdb;
}

static void do_write(const char *f) {
	struct tdb_context *tdb = open_db(f, 1);
	int i;
	build_model(0);
	for (i = 0; i < NKEYS + 1; i++) {
		struct rec *r = mget(i);
		CHECK_EQ(tdb_store(tdb, B(r->key, r->klen), B(r->val, r->vlen), TDB_INSERT), 0);
	}
	for (i = 0; i < NKEYS; i++) if (i % 7 == 3) CHECK_EQ(tdb_delete(tdb, B(mget(i)->key, mget(i)->klen)), 0);
	CHECK_EQ(tdb_close(tdb), 0);
}

static void do_modify(const char *f) {
	struct tdb_context *tdb = open_db(f, 0);
	int i;
	build_model(1);
	CHECK_EQ(tdb_transaction_start(tdb), 0);
	for (i = 0; i < NKEYS; i++) {
		struct rec *r = mget(i);
		char key[32];
		unsigned char v[700];
		size_t vl;
		snprintf(key, sizeof key, "k%05d", i);
		if (i % 5 == 0 && i % 7 != 3) {
			mkval(v, &vl, i, 1);
			memset(v + vl, 'Z', 200);
			CHECK_EQ(tdb_store(tdb, S(key), B(v, vl + 200), TDB_MODIFY), 0);
		}
		if (i % 7 == 3) {
			mkval(v, &vl, i, 2);
			CHECK_EQ(tdb_store(tdb, S(key), B(v, vl), TDB_INSERT), 0);
		}
		if (i % 11 == 1) CHECK_EQ(tdb_append(tdb, S(key), S("+app")), 0);
		if (i % 13 == 2) CHECK_EQ(tdb_delete(tdb, S(key)), 0);
		(void)r;
	}
	CHECK_EQ(tdb_transaction_commit(tdb), 0);
	for (i = 0; i < 50; i++) {
		char key[32], val[64];
		snprintf(key, sizeof key, "new-%d", i);
		snprintf(val, sizeof val, "fresh value %d", i * i);
		CHECK_EQ(tdb_store(tdb, S(key), S(val), TDB_INSERT), 0);
	}
	for (i = 0; i < 50; i += 10) {
		char key[32];
		snprintf(key, sizeof key, "new-%d", i);
		CHECK_EQ(tdb_delete(tdb, S(key)), 0);
	}
	CHECK_EQ(tdb_close(tdb), 0);
}

static int count_fn(struct tdb_context *t, TDB_DATA k, TDB_DATA d, void *p) {
	(void)t; (void)k; (void)d;
	(*(int *)p)++;
	return 0;
}

static void do_verify(const char *f, int stage) {
	struct tdb_context *tdb = open_db(f, 0);
	int i, live = 0, n = 0;
	build_model(stage);
	for (i = 0; i < nmodel; i++) {
		struct rec *r = mget(i);
		TDB_DATA d;
		if (r->klen == 0) continue;
		d = tdb_fetch(tdb, B(r->key, r->klen));
		if (r->live) {
			live++;
			if (!d.dptr || d.dsize != r->vlen || memcmp(d.dptr, r->val, r->vlen) != 0) {
				fprintf(stderr, "record %d (%.*s): wrong value (len %zu, want %zu)\n", i,
					(int)r->klen, r->key, d.dsize, r->vlen);
				failures++;
			}
		} else if (d.dptr) {
			fprintf(stderr, "record %d (%.*s) should be deleted\n", i, (int)r->klen, r->key);
			failures++;
		}
		free(d.dptr);
	}
	CHECK_EQ(tdb_traverse_read(tdb, count_fn, &n), live);
	CHECK_EQ(n, live);
	CHECK_EQ(tdb_check(tdb, NULL, NULL), 0);
	/* one bump per successful store/delete/append; Debian 1.4.8 bumps more
	 * inside the stage-1 transaction (1113 instead of the naive 1032) */
	if (strcmp(prof->name, "seqnum") == 0) CHECK_EQ(tdb_get_seqnum(tdb), stage == 0 ? model_seqnum : 1113);
	if (strcmp(prof->name, "bigendian") == 0) {
		CHECK(tdb_get_flags(tdb) & TDB_CONVERT);
		CHECK(tdb_get_flags(tdb) & TDB_BIGENDIAN);
	} else {
		CHECK(!(tdb_get_flags(tdb) & TDB_CONVERT));
	}
	if (prof->hash_size) CHECK_EQ(tdb_hash_size(tdb), prof->hash_size);
	else CHECK_EQ(tdb_hash_size(tdb), 131);
	if (strcmp(prof->name, "mutex") == 0) CHECK(tdb_get_flags(tdb) & TDB_MUTEX_LOCKING);
	CHECK_EQ(tdb_close(tdb), 0);
	/* the hash recorded in the header: jenkins files open with an explicit
	 * tdb_jenkins_hash, the others refuse it (EINVAL) */
	if (!(prof->open_flags & TDB_MUTEX_LOCKING)) {
		int jenkins = (prof->create_flags & (TDB_INCOMPATIBLE_HASH | TDB_MUTEX_LOCKING)) != 0;
		errno = 0;
		tdb = tdb_open_ex(f, 0, prof->open_flags, O_RDWR, 0600, NULL, tdb_jenkins_hash);
		if (jenkins) CHECK(tdb != NULL);
		else { CHECK(tdb == NULL); CHECK_EQ(errno, EINVAL); }
		if (tdb) tdb_close(tdb);
	}
	/* raw header facts */
	{
		unsigned char h[64];
		int fd = open(f, O_RDONLY);
		REQUIRE(fd >= 0);
		REQUIRE(read(fd, h, sizeof h) == (ssize_t)sizeof h);
		close(fd);
		CHECK(memcmp(h, "TDB file\n", 10) == 0 && 1 && memcmp(h, "TDB file\n", 10) == 0);
		if (strcmp(prof->name, "bigendian") == 0)
			CHECK(h[32] == 0x26 && h[33] == 0x01 && h[34] == 0x19 && h[35] == 0x6d);
		else
			CHECK(h[32] == 0x6d && h[33] == 0x19 && h[34] == 0x01 && h[35] == 0x26);
	}
}

static void do_check(const char *f) {
	struct tdb_context *tdb = open_db(f, 0);
	int n = 0;
	CHECK_EQ(tdb_check(tdb, NULL, NULL), 0);
	n = tdb_traverse_read(tdb, NULL, NULL);
	CHECK(n > 0);
	printf("records %d\n", n);
	CHECK_EQ(tdb_close(tdb), 0);
}

static int dump_fn(struct tdb_context *t, TDB_DATA k, TDB_DATA d, void *p) {
	size_t i;
	(void)t; (void)p;
	for (i = 0; i < k.dsize; i++) printf("%02x", k.dptr[i]);
	printf(" ");
	for (i = 0; i < d.dsize; i++) printf("%02x", d.dptr[i]);
	printf("\n");
	return 0;
}

static void do_dump(const char *f) {
	struct tdb_context *tdb = open_db(f, 0);
	char *s;
	int n;
	printf("hash_size %d freelist %d seqnum %d flags 0x%x\n", tdb_hash_size(tdb), tdb_freelist_size(tdb),
	       tdb_get_seqnum(tdb), tdb_get_flags(tdb) & ~TDB_NOSYNC);
	n = tdb_traverse_read(tdb, dump_fn, NULL);
	printf("count %d\n", n);
	s = tdb_summary(tdb);
	CHECK(s != NULL);
	if (s) printf("%s", s);
	free(s);
	CHECK_EQ(tdb_close(tdb), 0);
}

static int lock_op(struct tdb_context *tdb, const char *what, const char *key, int nonblock) {
	if (strcmp(what, "chain") == 0) return nonblock ? tdb_chainlock_nonblock(tdb, S(key)) : tdb_chainlock(tdb, S(key));
	if (strcmp(what, "chainread") == 0) return nonblock ? tdb_chainlock_read_nonblock(tdb, S(key)) : tdb_chainlock_read(tdb, S(key));
	if (strcmp(what, "all") == 0) return nonblock ? tdb_lockall_nonblock(tdb) : tdb_lockall(tdb);
	if (strcmp(what, "allread") == 0) return nonblock ? tdb_lockall_read_nonblock(tdb) : tdb_lockall_read(tdb);
	if (strcmp(what, "transaction") == 0) return nonblock ? tdb_transaction_start_nonblock(tdb) : tdb_transaction_start(tdb);
	fprintf(stderr, "unknown lock %s\n", what);
	exit(2);
}

int main(int argc, char **argv) {
	const char *cmd, *f;
	size_t i;
	if (argc < 4) {
		fprintf(stderr, "usage: interop CMD FILE PROFILE [args]\n");
		return 2;
	}
	cmd = argv[1];
	f = argv[2];
	for (i = 0; i < sizeof profiles / sizeof profiles[0]; i++)
		if (strcmp(profiles[i].name, argv[3]) == 0) prof = &profiles[i];
	if (!prof) {
		fprintf(stderr, "unknown profile %s\n", argv[3]);
		return 2;
	}
	cur_test = cmd;
	if (strcmp(cmd, "whichlib") == 0) {
		/* print the path of the libtdb.so.1 mapped into this process */
		FILE *m = fopen("/proc/self/maps", "r");
		char line[4096];
		(void)tdb_null;
		REQUIRE(m != NULL);
		while (fgets(line, sizeof line, m)) {
			char *p = strstr(line, "/");
			if (p && strstr(p, "libtdb.so")) {
				printf("%s", p);
				fclose(m);
				return 0;
			}
		}
		fclose(m);
		return 1;
	}
	if (strcmp(cmd, "write") == 0) do_write(f);
	else if (strcmp(cmd, "modify") == 0) do_modify(f);
	else if (strcmp(cmd, "verify") == 0 && argc > 4) do_verify(f, atoi(argv[4]));
	else if (strcmp(cmd, "check") == 0) do_check(f);
	else if (strcmp(cmd, "dump") == 0) do_dump(f);
	else if (strcmp(cmd, "lockhold") == 0 && argc > 6) {
		struct tdb_context *tdb = open_db(f, 0);
		if (lock_op(tdb, argv[4], argv[5], 0) != 0) { printf("failed\n"); return 1; }
		printf("locked\n");
		fflush(stdout);
		sleep(atoi(argv[6]));
		tdb_close(tdb);
	} else if (strcmp(cmd, "lockprobe") == 0 && argc > 5) {
		struct tdb_context *tdb = open_db(f, 0);
		int r = lock_op(tdb, argv[4], argv[5], 1);
		printf("%s\n", r == 0 ? "free" : "busy");
		tdb_close(tdb);
	} else {
		fprintf(stderr, "bad command\n");
		return 2;
	}
	return finish(argv[0]);
}
