/* Transactions (nesting, prepare, cancel, isolation) and reopen/reopen_all after fork. */
#include "common.h"

static int count_fn(struct tdb_context *tdb, TDB_DATA k, TDB_DATA d, void *p) {
	(void)tdb; (void)k; (void)d;
	(*(int *)p)++;
	return 0;
}

/* a fresh process (exec) opens the file: does key have value? */
static int child_sees(struct tdb_context *tdb, const char *key, const char *val) {
	pid_t pid = fork();
	int status;
	char fl[32];
	if (pid == 0) {
		snprintf(fl, sizeof fl, "%d", tdb_get_flags(tdb) & TDB_MUTEX_LOCKING);
		execl("/proc/self/exe", "api_txn", "--see", tdb_name(tdb), fl, key, val ? val : "(null)", (char *)NULL);
		_exit(99);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_txn(const char *f, int flags) {
	struct tdb_context *tdb;
	struct logcount lc;
	struct tdb_logging_context logctx = { count_log, &lc };
	int n, i;
	char k[32], v[64];
	size_t sz;

	memset(&lc, 0, sizeof lc);
	unlink(f);
	tdb = tdb_open_ex(f, 0, flags, O_RDWR | O_CREAT, 0600, &logctx, NULL);
	REQUIRE(tdb != NULL);
	CHECK_EQ(tdb_store(tdb, S("base"), S("0"), TDB_REPLACE), 0);

	cur_test = "txn-commit";
	CHECK_EQ(tdb_transaction_active(tdb), false);
	CHECK_EQ(tdb_transaction_start(tdb), 0);
	CHECK_EQ(tdb_transaction_active(tdb), true);
	CHECK_EQ(tdb_store(tdb, S("t1"), S("a"), TDB_INSERT), 0);
	CHECK_EQ(tdb_store(tdb, S("base"), S("1"), TDB_MODIFY), 0);
	CHECK(fetch_is(tdb, "t1", "a"));           /* read your writes */
	CHECK(fetch_is(tdb, "base", "1"));
	CHECK_EQ(tdb_exists(tdb, S("t1")), 1);
	CHECK_EQ(tdb_append(tdb, S("t1"), S("b")), 0);
	CHECK(fetch_is(tdb, "t1", "ab"));
	CHECK(child_sees(tdb, "base", "0"));        /* isolation */
	CHECK(child_sees(tdb, "t1", NULL));
	n = 0;
	CHECK_EQ(tdb_traverse(tdb, count_fn, &n), 2);
	CHECK_EQ(n, 2);
	CHECK_EQ(tdb_transaction_commit(tdb), 0);
	CHECK_EQ(tdb_transaction_active(tdb), false);
	CHECK(fetch_is(tdb, "t1", "ab"));
	CHECK(child_sees(tdb, "base", "1"));

	cur_test = "txn-cancel";
	CHECK_EQ(tdb_transaction_start(tdb), 0);
	CHECK_EQ(tdb_delete(tdb, S("t1")), 0);
	CHECK_EQ(tdb_store(tdb, S("t2"), S("x"), TDB_INSERT), 0);
	CHECK(fetch_is(tdb, "t1", NULL));
	CHECK_EQ(tdb_wipe_all(tdb), 0);
	CHECK(fetch_is(tdb, "base", NULL));
	CHECK_EQ(tdb_transaction_cancel(tdb), 0);
	CHECK(fetch_is(tdb, "t1", "ab"));
	CHECK(fetch_is(tdb, "t2", NULL));
	CHECK(fetch_is(tdb, "base", "1"));
	CHECK_EQ(tdb_transaction_active(tdb), false);

	cur_test = "txn-no-transaction";
	CHECK_EQ(tdb_transaction_commit(tdb), -1);
	CHECK_EQ(tdb_transaction_cancel(tdb), -1);
	CHECK_EQ(tdb_transaction_prepare_commit(tdb), -1);

	cur_test = "txn-prepare";
	CHECK_EQ(tdb_transaction_start(tdb), 0);
	CHECK_EQ(tdb_store(tdb, S("p"), S("1"), TDB_INSERT), 0);
	CHECK_EQ(tdb_transaction_prepare_commit(tdb), 0);
	CHECK_EQ(tdb_transaction_active(tdb), true);
	CHECK_EQ(tdb_transaction_commit(tdb), 0);
	CHECK(fetch_is(tdb, "p", "1"));
	/* preparing twice is an error that cancels the transaction */
	CHECK_EQ(tdb_transaction_start(tdb), 0);
	CHECK_EQ(tdb_store(tdb, S("pp"), S("1"), TDB_INSERT), 0);
	CHECK_EQ(tdb_transaction_prepare_commit(tdb), 0);
	CHECK_EQ(tdb_transaction_prepare_commit(tdb), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_EINVAL);
	CHECK_EQ(tdb_transaction_active(tdb), false);
	CHECK_EQ(tdb_transaction_commit(tdb), -1);
	CHECK(fetch_is(tdb, "pp", NULL));
	CHECK_EQ(tdb_transaction_start(tdb), 0);
	CHECK_EQ(tdb_store(tdb, S("p"), S("2"), TDB_REPLACE), 0);
	CHECK_EQ(tdb_transaction_prepare_commit(tdb), 0);
	CHECK_EQ(tdb_transaction_cancel(tdb), 0);   /* cancel after prepare rolls back */
	CHECK(fetch_is(tdb, "p", "1"));
	CHECK(child_sees(tdb, "p", "1"));
	CHECK_EQ(tdb_check(tdb, NULL, NULL), 0);

	cur_test = "txn-nesting-allowed";
	CHECK(tdb_get_flags(tdb) & TDB_ALLOW_NESTING);
	CHECK_EQ(tdb_transaction_start(tdb), 0);
	CHECK_EQ(tdb_store(tdb, S("n1"), S("1"), TDB_INSERT), 0);
	CHECK_EQ(tdb_transaction_start(tdb), 0);
	CHECK_EQ(tdb_store(tdb, S("n2"), S("2"), TDB_INSERT), 0);
	CHECK_EQ(tdb_transaction_commit(tdb), 0);   /* inner: nothing written yet */
	CHECK_EQ(tdb_transaction_active(tdb), true);
	CHECK(child_sees(tdb, "n2", NULL));
	CHECK_EQ(tdb_transaction_commit(tdb), 0);
	CHECK_EQ(tdb_transaction_active(tdb), false);
	CHECK(fetch_is(tdb, "n1", "1"));
	CHECK(fetch_is(tdb, "n2", "2"));
	/* inner cancel poisons the outer transaction */
	CHECK_EQ(tdb_transaction_start(tdb), 0);
	CHECK_EQ(tdb_store(tdb, S("n3"), S("3"), TDB_INSERT), 0);
	CHECK_EQ(tdb_transaction_start(tdb), 0);
	CHECK_EQ(tdb_transaction_cancel(tdb), 0);
	CHECK_EQ(tdb_transaction_commit(tdb), -1);
	CHECK_EQ(tdb_transaction_active(tdb), false);
	CHECK(fetch_is(tdb, "n3", NULL));

	cur_test = "txn-nesting-disallowed";
	tdb_add_flags(tdb, TDB_DISALLOW_NESTING);
	CHECK_EQ(tdb_transaction_start(tdb), 0);
	CHECK_EQ(tdb_transaction_start(tdb), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_NESTING);
	CHECK_EQ(tdb_transaction_active(tdb), true);
	CHECK_EQ(tdb_store(tdb, S("d1"), S("1"), TDB_INSERT), 0);
	CHECK_EQ(tdb_transaction_commit(tdb), 0);
	CHECK(fetch_is(tdb, "d1", "1"));
	tdb_remove_flags(tdb, TDB_DISALLOW_NESTING);

	cur_test = "txn-grow";
	sz = tdb_map_size(tdb);
	CHECK_EQ(tdb_transaction_start(tdb), 0);
	for (i = 0; i < 2000; i++) {
		snprintf(k, sizeof k, "g%d", i);
		snprintf(v, sizeof v, "grown-value-%d-%0*d", i, 20, i);
		CHECK_EQ(tdb_store(tdb, S(k), S(v), TDB_INSERT), 0);
	}
	CHECK(fetch_is(tdb, "g1999", "grown-value-1999-00000000000000001999"));
	CHECK_EQ(tdb_transaction_commit(tdb), 0);
	CHECK(tdb_map_size(tdb) >= sz);
	{
		struct stat st;
		CHECK_EQ(fstat(tdb_fd(tdb), &st), 0);
		/* the recovery area may lie past the mapped size after a commit */
		CHECK(tdb_map_size(tdb) <= (size_t)st.st_size);
	}
	CHECK(fetch_is(tdb, "g0", "grown-value-0-00000000000000000000"));
	CHECK(child_sees(tdb, "g1234", "grown-value-1234-00000000000000001234"));
	/* delete half in one transaction */
	CHECK_EQ(tdb_transaction_start(tdb), 0);
	for (i = 0; i < 2000; i += 2) {
		snprintf(k, sizeof k, "g%d", i);
		CHECK_EQ(tdb_delete(tdb, S(k)), 0);
	}
	CHECK_EQ(tdb_transaction_commit(tdb), 0);
	n = 0;
	tdb_traverse_read(tdb, count_fn, &n);
	CHECK_EQ(n, 1000 + 6);
	CHECK_EQ(tdb_check(tdb, NULL, NULL), 0);

	cur_test = "txn-readonly";
	tdb_close(tdb);
	tdb = tdb_open(f, 0, 0, O_RDONLY, 0);
	REQUIRE(tdb != NULL);
	CHECK_EQ(tdb_transaction_start(tdb), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_EINVAL);
	tdb_close(tdb);

	cur_test = "txn-traverse-read-forbids";
	tdb = tdb_open(f, 0, flags, O_RDWR, 0600);
	REQUIRE(tdb != NULL);
	CHECK_EQ(tdb_transaction_start(tdb), 0);
	CHECK_EQ(tdb_store(tdb, S("in"), S("txn"), TDB_REPLACE), 0);
	n = 0;
	/* CLEAR_IF_FIRST (mutex case) wiped the file at this open */
	CHECK_EQ(tdb_traverse_read(tdb, count_fn, &n), (flags & TDB_CLEAR_IF_FIRST) ? 1 : 1007);
	CHECK_EQ(tdb_transaction_commit(tdb), 0);
	tdb_close(tdb);
	unlink(f);
}

/* reopen after fork, reopen_all and the CLEAR_IF_FIRST active lock */
static int spawn_open_check(const char *f, const char *key, const char *val) {
	pid_t pid = fork();
	int status;
	if (pid == 0) {
		execl("/proc/self/exe", "api_txn", "--child", f, key, val ? val : "(null)", (char *)NULL);
		_exit(99);
	}
	waitpid(pid, &status, 0);
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_reopen(const char *dir) {
	char *f1 = tmpname(dir, "r1.tdb"), *f2 = tmpname(dir, "r2.tdb");
	struct tdb_context *a, *b;
	int p1[2], p2[2];
	pid_t pid;
	char c;
	int status;

	cur_test = "reopen";
	unlink(f1); unlink(f2);
	a = tdb_open(f1, 0, 0, O_RDWR | O_CREAT, 0600);
	b = tdb_open(f2, 0, TDB_CLEAR_IF_FIRST, O_RDWR | O_CREAT, 0600);
	REQUIRE(a && b);
	CHECK_EQ(tdb_store(a, S("a"), S("1"), TDB_REPLACE), 0);
	CHECK_EQ(tdb_store(b, S("b"), S("1"), TDB_REPLACE), 0);
	CHECK_EQ(tdb_reopen(a), 0);
	CHECK(fetch_is(a, "a", "1"));
	/* not with locks held, not inside a transaction: fails and closes
	 * the handle (so use a throwaway one) */
	tdb_close(a);
	a = tdb_open(f1, 0, 0, O_RDWR, 0600);
	REQUIRE(a != NULL);
	CHECK_EQ(tdb_chainlock(a, S("a")), 0);
	CHECK_EQ(tdb_reopen(a), -1);
	a = tdb_open(f1, 0, 0, O_RDWR, 0600);  /* the old one is gone: reopening works */
	REQUIRE(a != NULL);
	CHECK_EQ(tdb_transaction_start(a), 0);
	CHECK_EQ(tdb_reopen(a), -1);
	a = tdb_open(f1, 0, 0, O_RDWR, 0600);
	REQUIRE(a != NULL);
	CHECK(fetch_is(a, "a", "1"));
	CHECK_EQ(tdb_reopen(a), 0);

	/* child writes after reopen, parent sees it */
	pid = fork();
	if (pid == 0) {
		if (tdb_reopen(a) != 0) _exit(10);
		if (tdb_store(a, S("child"), S("wrote"), TDB_REPLACE) != 0) _exit(11);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK(fetch_is(a, "child", "wrote"));

	for (int longlived = 0; longlived <= 1; longlived++) {
		cur_test = longlived ? "reopen_all(1)" : "reopen_all(0)";
		/* b is CLEAR_IF_FIRST and open in the parent */
		CHECK_EQ(tdb_store(b, S("b"), S("1"), TDB_REPLACE), 0);
		REQUIRE(pipe(p1) == 0 && pipe(p2) == 0);
		pid = fork();
		if (pid == 0) {
			int ok = tdb_reopen_all(longlived) == 0;
			ok = ok && fetch_is(a, "a", "1") && fetch_is(b, "b", "1");
			ok = ok && tdb_store(b, S("fromchild"), S("x"), TDB_REPLACE) == 0;
			c = ok ? 'o' : 'f';
			if (write(p1[1], &c, 1) != 1) _exit(2);
			if (read(p2[0], &c, 1) != 1) _exit(3);
			_exit(0);
		}
		REQUIRE(read(p1[0], &c, 1) == 1);
		CHECK_EQ(c, 'o');
		/* parent drops its own hold on b; a fresh CLEAR_IF_FIRST opener
		 * wipes b only if the child holds no active lock (longlived) */
		CHECK_EQ(tdb_close(b), 0);
		CHECK(spawn_open_check(f2, "fromchild", longlived ? NULL : "x"));
		c = 'g';
		REQUIRE(write(p2[1], &c, 1) == 1);
		waitpid(pid, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		close(p1[0]); close(p1[1]); close(p2[0]); close(p2[1]);
		b = tdb_open(f2, 0, TDB_CLEAR_IF_FIRST, O_RDWR, 0600);
		REQUIRE(b != NULL);
		CHECK(fetch_is(b, "b", NULL)); /* we were first again: wiped */
	}
	tdb_close(a);
	tdb_close(b);
	unlink(f1); unlink(f2);
}

int main(int argc, char **argv) {
	if (argc > 5 && strcmp(argv[1], "--see") == 0) {
		/* --see FILE FLAGS KEY VALUE */
		struct tdb_context *t = tdb_open(argv[2], 0, atoi(argv[3]), O_RDWR, 0600);
		int ok;
		if (!t) return 2;
		ok = fetch_is(t, argv[4], strcmp(argv[5], "(null)") ? argv[5] : NULL);
		tdb_close(t);
		return ok ? 0 : 1;
	}
	if (argc > 1 && strcmp(argv[1], "--child") == 0) {
		/* --child FILE KEY VALUE : open with CLEAR_IF_FIRST and check */
		struct tdb_context *t = tdb_open(argv[2], 0, TDB_CLEAR_IF_FIRST, O_RDWR, 0600);
		int ok;
		if (!t) return 2;
		ok = fetch_is(t, argv[3], strcmp(argv[4], "(null)") ? argv[4] : NULL);
		tdb_close(t);
		return ok ? 0 : 1;
	}
	const char *dir = workdir(argc, argv);
	test_txn(tmpname(dir, "txn.tdb"), 0);
	test_txn(tmpname(dir, "txn.tdb"), TDB_NOMMAP);
	test_txn(tmpname(dir, "txn.tdb"), TDB_NOSYNC | TDB_INCOMPATIBLE_HASH);
	if (tdb_runtime_check_for_robust_mutexes())
		test_txn(tmpname(dir, "txn.tdb"), TDB_MUTEX_LOCKING | TDB_CLEAR_IF_FIRST);
	test_reopen(dir);
	return finish(argv[0]);
}
