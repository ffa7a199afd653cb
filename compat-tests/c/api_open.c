/* tdb_open/tdb_open_ex: modes, flags, hash/log functions, accessors, bad arguments. */
#include "common.h"

static unsigned int silly_hash(TDB_DATA *key) {
	unsigned int h = 7;
	size_t i;
	for (i = 0; i < key->dsize; i++) h = h * 31 + key->dptr[i];
	return h;
}
static int hash_calls;
static unsigned int counting_hash(TDB_DATA *key) {
	hash_calls++;
	return silly_hash(key);
}

/* --child FILE TDBFLAGS KEY VALUE [mutex]: open in a fresh process and check */
static int child(int argc, char **argv) {
	struct tdb_context *c;
	int ok;
	if (argc < 6) return 3;
	errno = 0;
	c = tdb_open(argv[2], 0, atoi(argv[3]), O_RDWR, 0600);
	if (strcmp(argv[4], "!EINVAL") == 0) {
		if (c == NULL && errno == EINVAL) return 0;
		fprintf(stderr, "child: expected open failure with EINVAL, got %p errno %d\n", (void *)c, errno);
		return 1;
	}
	if (!c) {
		fprintf(stderr, "child open failed: %s\n", strerror(errno));
		return 1;
	}
	ok = fetch_is(c, argv[4], argv[5]);
	if (argc > 6 && !(tdb_get_flags(c) & TDB_MUTEX_LOCKING)) {
		fprintf(stderr, "child: TDB_MUTEX_LOCKING not in flags\n");
		ok = 0;
	}
	tdb_close(c);
	return ok ? 0 : 1;
}

int main(int argc, char **argv) {
	if (argc > 1 && strcmp(argv[1], "--child") == 0) return child(argc, argv);
	const char *dir = workdir(argc, argv);
	char *f = tmpname(dir, "open.tdb");
	struct tdb_context *tdb, *t2;
	struct logcount lc;
	struct tdb_logging_context logctx = { count_log, &lc };
	struct stat st;
	int fl;

	memset(&lc, 0, sizeof(lc));
	umask(022);

	cur_test = "null-name";
	errno = 0;
	tdb = tdb_open(NULL, 0, 0, O_RDWR | O_CREAT, 0600);
	CHECK(tdb == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	tdb = tdb_open_ex(NULL, 0, 0, O_RDWR | O_CREAT, 0600, &logctx, NULL);
	CHECK(tdb == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(lc.total >= 1); /* the failure is logged */

	cur_test = "missing-file";
	errno = 0;
	tdb = tdb_open(tmpname(dir, "does-not-exist.tdb"), 0, 0, O_RDWR, 0600);
	CHECK(tdb == NULL);
	CHECK_EQ(errno, ENOENT);

	cur_test = "write-only";
	errno = 0;
	tdb = tdb_open(f, 0, 0, O_WRONLY | O_CREAT, 0600);
	CHECK(tdb == NULL);
	CHECK_EQ(errno, EINVAL);

	cur_test = "nesting-both";
	errno = 0;
	tdb = tdb_open(f, 0, TDB_ALLOW_NESTING | TDB_DISALLOW_NESTING, O_RDWR | O_CREAT, 0600);
	CHECK(tdb == NULL);
	CHECK_EQ(errno, EINVAL);

	cur_test = "create";
	unlink(f);
	tdb = tdb_open_ex(f, 17, TDB_DEFAULT, O_RDWR | O_CREAT, 0640, &logctx, NULL);
	REQUIRE(tdb != NULL);
	CHECK_EQ(tdb_hash_size(tdb), 17);
	CHECK(tdb_map_size(tdb) > 0);
	CHECK(strcmp(tdb_name(tdb), f) == 0);
	CHECK(tdb_fd(tdb) >= 0);
	fl = fcntl(tdb_fd(tdb), F_GETFD);
	CHECK(fl >= 0 && (fl & FD_CLOEXEC));
	CHECK(fstat(tdb_fd(tdb), &st) == 0);
	CHECK_EQ(st.st_size, tdb_map_size(tdb));
	CHECK_EQ(st.st_mode & 0777, 0640);
	CHECK(tdb_log_fn(tdb) == count_log);
	CHECK(tdb_get_logging_private(tdb) == &lc);
	CHECK_EQ(tdb_error(tdb), TDB_SUCCESS);
	CHECK(tdb_errorstr(tdb) != NULL && strcmp(tdb_errorstr(tdb), "Success") == 0);
	/* default flags: nesting allowed is implied */
	CHECK(tdb_get_flags(tdb) & TDB_ALLOW_NESTING);
	CHECK(!(tdb_get_flags(tdb) & TDB_INCOMPATIBLE_HASH));
	CHECK_EQ(tdb_store(tdb, S("k"), S("v"), TDB_INSERT), 0);
	/* same file again in the same process: EBUSY */
	errno = 0;
	t2 = tdb_open(f, 0, 0, O_RDWR, 0600);
	CHECK(t2 == NULL);
	CHECK_EQ(errno, EBUSY);
	CHECK_EQ(tdb_close(tdb), 0);

	cur_test = "default-hash-size";
	unlink(f);
	tdb = tdb_open(f, 0, 0, O_RDWR | O_CREAT, 0600);
	REQUIRE(tdb != NULL);
	CHECK_EQ(tdb_hash_size(tdb), 131);
	tdb_close(tdb);

	cur_test = "reopen-existing-keeps-hash-size";
	tdb = tdb_open(f, 999, 0, O_RDWR, 0600);
	REQUIRE(tdb != NULL);
	CHECK_EQ(tdb_hash_size(tdb), 131);
	CHECK_EQ(tdb_store(tdb, S("a"), S("1"), TDB_REPLACE), 0);
	tdb_close(tdb);

	cur_test = "rdonly";
	tdb = tdb_open_ex(f, 0, 0, O_RDONLY, 0, &logctx, NULL);
	REQUIRE(tdb != NULL);
	CHECK(fetch_is(tdb, "a", "1"));
	CHECK(tdb_get_flags(tdb) & TDB_NOLOCK);
	CHECK_EQ(tdb_store(tdb, S("b"), S("2"), TDB_REPLACE), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_RDONLY);
	CHECK(strcmp(tdb_errorstr(tdb), "write not permitted") == 0);
	CHECK_EQ(tdb_delete(tdb, S("a")), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_RDONLY);
	CHECK_EQ(tdb_append(tdb, S("a"), S("x")), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_RDONLY);
	CHECK_EQ(tdb_wipe_all(tdb), -1);
	CHECK_EQ(tdb_transaction_start(tdb), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_EINVAL);
	CHECK(fetch_is(tdb, "a", "1"));
	CHECK_EQ(tdb_check(tdb, NULL, NULL), 0);
	tdb_close(tdb);

	cur_test = "rdonly-mutex-einval";
	if (tdb_runtime_check_for_robust_mutexes()) {
		/* O_RDONLY drops TDB_MUTEX_LOCKING before validating it */
		tdb = tdb_open(f, 0, TDB_MUTEX_LOCKING, O_RDONLY, 0);
		CHECK(tdb != NULL);
		if (tdb) {
			CHECK(!(tdb_get_flags(tdb) & TDB_MUTEX_LOCKING));
			CHECK(fetch_is(tdb, "a", "1"));
			tdb_close(tdb);
		}
	}

	cur_test = "o_trunc";
	tdb = tdb_open(f, 0, 0, O_RDWR | O_TRUNC, 0600);
	/* a truncated file has no header and no O_CREAT: EIO */
	CHECK(tdb == NULL);
	tdb = tdb_open(f, 0, 0, O_RDWR | O_CREAT | O_TRUNC, 0600);
	REQUIRE(tdb != NULL);
	CHECK(fetch_is(tdb, "a", NULL));
	CHECK_EQ(tdb_error(tdb), TDB_ERR_NOEXIST);
	tdb_close(tdb);

	cur_test = "garbage-file";
	{
		int fd = open(f, O_RDWR | O_TRUNC);
		char junk[1024];
		memset(junk, 'J', sizeof junk);
		CHECK_EQ(write(fd, junk, sizeof junk), (long)sizeof junk);
		close(fd);
		errno = 0;
		tdb = tdb_open(f, 0, 0, O_RDWR, 0600);
		CHECK(tdb == NULL);
		CHECK_EQ(errno, EIO);
	}

	cur_test = "clear-if-first";
	unlink(f);
	tdb = tdb_open(f, 0, 0, O_RDWR | O_CREAT, 0600);
	REQUIRE(tdb != NULL);
	CHECK_EQ(tdb_store(tdb, S("keep"), S("me"), TDB_REPLACE), 0);
	tdb_close(tdb);
	tdb = tdb_open(f, 0, TDB_CLEAR_IF_FIRST, O_RDWR, 0600);
	REQUIRE(tdb != NULL);
	CHECK(fetch_is(tdb, "keep", NULL)); /* first opener wipes */
	CHECK_EQ(tdb_store(tdb, S("second"), S("gen"), TDB_REPLACE), 0);
	{
		/* a second opener (child process) must not wipe while we hold it */
		pid_t pid = fork();
		if (pid == 0) {
			execl("/proc/self/exe", "api_open", "--child", f, "1", "second", "gen", (char *)NULL);
			_exit(99);
		}
		int status;
		waitpid(pid, &status, 0);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	tdb_close(tdb);

	cur_test = "custom-hash";
	unlink(f);
	hash_calls = 0;
	tdb = tdb_open_ex(f, 7, 0, O_RDWR | O_CREAT, 0600, &logctx, counting_hash);
	REQUIRE(tdb != NULL);
	CHECK(hash_calls > 0); /* used for the header magic */
	hash_calls = 0;
	CHECK_EQ(tdb_store(tdb, S("hello"), S("world"), TDB_REPLACE), 0);
	CHECK(fetch_is(tdb, "hello", "world"));
	CHECK(hash_calls >= 2);
	tdb_close(tdb);
	/* opening it with the default hash must fail: EINVAL and a log message */
	lc.total = 0;
	errno = 0;
	tdb = tdb_open_ex(f, 0, 0, O_RDWR, 0600, &logctx, NULL);
	CHECK(tdb == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK(lc.total >= 1);
	CHECK(lc.count[TDB_DEBUG_FATAL] >= 1);
	/* with jenkins too */
	errno = 0;
	tdb = tdb_open_ex(f, 0, TDB_INCOMPATIBLE_HASH, O_RDWR, 0600, &logctx, NULL);
	CHECK(tdb == NULL);
	CHECK_EQ(errno, EINVAL);
	/* but with the same function it opens */
	tdb = tdb_open_ex(f, 0, 0, O_RDWR, 0600, &logctx, silly_hash);
	CHECK(tdb != NULL);
	if (tdb) {
		CHECK(fetch_is(tdb, "hello", "world"));
		tdb_close(tdb);
	}

	cur_test = "incompatible-hash";
	unlink(f);
	tdb = tdb_open(f, 0, TDB_INCOMPATIBLE_HASH, O_RDWR | O_CREAT, 0600);
	REQUIRE(tdb != NULL);
	CHECK(tdb_get_flags(tdb) & TDB_INCOMPATIBLE_HASH);
	CHECK_EQ(tdb_store(tdb, S("j"), S("1"), TDB_REPLACE), 0);
	tdb_close(tdb);
	/* opening with no hash argument detects jenkins from the header */
	tdb = tdb_open(f, 0, 0, O_RDWR, 0600);
	CHECK(tdb != NULL);
	if (tdb) {
		CHECK(fetch_is(tdb, "j", "1"));
		tdb_close(tdb);
	}
	/* a custom hash function differing from jenkins is refused */
	errno = 0;
	tdb = tdb_open_ex(f, 0, 0, O_RDWR, 0600, NULL, silly_hash);
	CHECK(tdb == NULL);
	CHECK_EQ(errno, EINVAL);
	/* tdb_jenkins_hash as explicit function works */
	tdb = tdb_open_ex(f, 0, 0, O_RDWR, 0600, NULL, tdb_jenkins_hash);
	CHECK(tdb != NULL);
	if (tdb) tdb_close(tdb);

	cur_test = "internal";
	tdb = tdb_open("ignored-name", 5, TDB_INTERNAL, O_RDWR | O_CREAT, 0600);
	REQUIRE(tdb != NULL);
	CHECK(access("ignored-name", F_OK) != 0);
	CHECK(tdb_get_flags(tdb) & TDB_INTERNAL);
	CHECK(tdb_get_flags(tdb) & TDB_NOMMAP);
	CHECK(tdb_get_flags(tdb) & TDB_INCOMPATIBLE_HASH);
	CHECK_EQ(tdb_hash_size(tdb), 5);
	CHECK_EQ(tdb_fd(tdb), -1);
	{
		int i;
		char k[32], v[64];
		for (i = 0; i < 200; i++) {
			snprintf(k, sizeof k, "key%d", i);
			snprintf(v, sizeof v, "value-%d-%d", i, i * i);
			CHECK_EQ(tdb_store(tdb, S(k), S(v), TDB_INSERT), 0);
		}
		CHECK_EQ(tdb_traverse_read(tdb, NULL, NULL), 200);
		for (i = 0; i < 200; i += 3) {
			snprintf(k, sizeof k, "key%d", i);
			CHECK_EQ(tdb_delete(tdb, S(k)), 0);
		}
		CHECK_EQ(tdb_traverse(tdb, NULL, NULL), 200 - 67);
		CHECK(fetch_is(tdb, "key1", "value-1-1"));
		CHECK(fetch_is(tdb, "key3", NULL));
		/* no transactions (hence no repack) on internal dbs */
		CHECK_EQ(tdb_transaction_start(tdb), -1);
		CHECK_EQ(tdb_error(tdb), TDB_ERR_EINVAL);
		CHECK_EQ(tdb_transaction_active(tdb), false);
		CHECK_EQ(tdb_store(tdb, S("t"), S("y"), TDB_INSERT), 0);
		CHECK(fetch_is(tdb, "t", "y"));
		CHECK_EQ(tdb_append(tdb, S("t"), S("z")), 0);
		CHECK(fetch_is(tdb, "t", "yz"));
		CHECK(fetch_is(tdb, "key2", "value-2-4"));
		CHECK_EQ(tdb_wipe_all(tdb), 0);
		CHECK_EQ(tdb_traverse(tdb, NULL, NULL), 0);
	}
	CHECK_EQ(tdb_close(tdb), 0);
	/* internal with NULL name is fine */
	tdb = tdb_open(NULL, 0, TDB_INTERNAL, O_RDWR, 0);
	CHECK(tdb != NULL);
	if (tdb) {
		CHECK(tdb_name(tdb) != NULL);
		tdb_close(tdb);
	}
	/* two internal dbs are independent */
	tdb = tdb_open(NULL, 0, TDB_INTERNAL, O_RDWR, 0);
	t2 = tdb_open(NULL, 0, TDB_INTERNAL, O_RDWR, 0);
	CHECK(tdb && t2);
	if (tdb && t2) {
		tdb_store(tdb, S("x"), S("1"), TDB_REPLACE);
		CHECK(fetch_is(t2, "x", NULL));
	}
	if (tdb) tdb_close(tdb);
	if (t2) tdb_close(t2);
	cur_test = "internal-mutex-einval";
	errno = 0;
	tdb = tdb_open(NULL, 0, TDB_INTERNAL | TDB_MUTEX_LOCKING, O_RDWR, 0);
	CHECK(tdb == NULL);
	if (tdb_runtime_check_for_robust_mutexes()) CHECK_EQ(errno, EINVAL);

	cur_test = "nommap";
	unlink(f);
	tdb = tdb_open(f, 0, TDB_NOMMAP, O_RDWR | O_CREAT, 0600);
	REQUIRE(tdb != NULL);
	CHECK(tdb_get_flags(tdb) & TDB_NOMMAP);
	CHECK_EQ(tdb_store(tdb, S("n"), S("m"), TDB_REPLACE), 0);
	CHECK(fetch_is(tdb, "n", "m"));
	tdb_close(tdb);
	if (tdb_runtime_check_for_robust_mutexes()) {
		errno = 0;
		tdb = tdb_open(f, 0, TDB_NOMMAP | TDB_MUTEX_LOCKING | TDB_CLEAR_IF_FIRST, O_RDWR, 0600);
		CHECK(tdb == NULL);
		CHECK_EQ(errno, EINVAL);
	}

	cur_test = "mutex";
	if (tdb_runtime_check_for_robust_mutexes()) {
		unlink(f);
		tdb = tdb_open(f, 0, TDB_MUTEX_LOCKING | TDB_CLEAR_IF_FIRST, O_RDWR | O_CREAT, 0600);
		REQUIRE(tdb != NULL);
		CHECK(tdb_get_flags(tdb) & TDB_MUTEX_LOCKING);
		CHECK(tdb_get_flags(tdb) & TDB_INCOMPATIBLE_HASH);
		CHECK_EQ(tdb_store(tdb, S("m"), S("1"), TDB_REPLACE), 0);
		CHECK(fetch_is(tdb, "m", "1"));
		CHECK_EQ(tdb_chainlock(tdb, S("m")), 0);
		CHECK_EQ(tdb_chainunlock(tdb, S("m")), 0);
		CHECK_EQ(tdb_lockall(tdb), 0);
		CHECK_EQ(tdb_unlockall(tdb), 0);
		CHECK_EQ(tdb_transaction_start(tdb), 0);
		CHECK_EQ(tdb_store(tdb, S("m2"), S("2"), TDB_REPLACE), 0);
		CHECK_EQ(tdb_transaction_commit(tdb), 0);
		CHECK_EQ(tdb_check(tdb, NULL, NULL), 0);
		/* a mutex file opened without TDB_MUTEX_LOCKING by a second
		 * process still uses the mutexes (feature flag in header) */
		{
			pid_t pid = fork();
			if (pid == 0) {
				execl("/proc/self/exe", "api_open", "--child", f, "4096", "m2", "2", "mutex", (char *)NULL);
				_exit(99);
			}
			int status;
			waitpid(pid, &status, 0);
			CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
			/* without TDB_MUTEX_LOCKING a mutex file is refused (EINVAL) */
			pid = fork();
			if (pid == 0) {
				execl("/proc/self/exe", "api_open", "--child", f, "0", "!EINVAL", "", (char *)NULL);
				_exit(99);
			}
			waitpid(pid, &status, 0);
			CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		}
		tdb_close(tdb);
		/* read-only open of a mutex file */
		tdb = tdb_open(f, 0, 0, O_RDONLY, 0);
		CHECK(tdb != NULL);
		if (tdb) {
			CHECK(fetch_is(tdb, "m", "1"));
			tdb_close(tdb);
		}
	}

	cur_test = "flags-add-remove";
	unlink(f);
	tdb = tdb_open(f, 0, TDB_NOSYNC | TDB_SEQNUM | TDB_VOLATILE, O_RDWR | O_CREAT, 0600);
	REQUIRE(tdb != NULL);
	fl = tdb_get_flags(tdb);
	CHECK(fl & TDB_NOSYNC);
	CHECK(fl & TDB_SEQNUM);
	CHECK(fl & TDB_VOLATILE);
	tdb_remove_flags(tdb, TDB_NOSYNC);
	CHECK(!(tdb_get_flags(tdb) & TDB_NOSYNC));
	tdb_add_flags(tdb, TDB_NOSYNC);
	CHECK(tdb_get_flags(tdb) & TDB_NOSYNC);
	tdb_add_flags(tdb, TDB_DISALLOW_NESTING);
	CHECK(tdb_get_flags(tdb) & TDB_DISALLOW_NESTING);
	CHECK(!(tdb_get_flags(tdb) & TDB_ALLOW_NESTING));
	tdb_add_flags(tdb, TDB_ALLOW_NESTING);
	CHECK(tdb_get_flags(tdb) & TDB_ALLOW_NESTING);
	CHECK(!(tdb_get_flags(tdb) & TDB_DISALLOW_NESTING));
	tdb_remove_flags(tdb, TDB_ALLOW_NESTING);
	CHECK(tdb_get_flags(tdb) & TDB_DISALLOW_NESTING);
	tdb_remove_flags(tdb, TDB_DISALLOW_NESTING);
	CHECK(tdb_get_flags(tdb) & TDB_ALLOW_NESTING);
	/* both nesting flags at once: refused with TDB_ERR_NESTING and a log */
	memset(&lc, 0, sizeof lc);
	tdb_set_logging_function(tdb, &logctx);
	CHECK(tdb_get_logging_private(tdb) == &lc);
	fl = tdb_get_flags(tdb);
	tdb_add_flags(tdb, TDB_ALLOW_NESTING | TDB_DISALLOW_NESTING);
	CHECK_EQ(tdb_get_flags(tdb), fl);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_NESTING);
	tdb_remove_flags(tdb, TDB_ALLOW_NESTING | TDB_DISALLOW_NESTING);
	CHECK_EQ(tdb_get_flags(tdb), fl);
	CHECK_EQ(lc.total, 2);
	CHECK_EQ(lc.count[TDB_DEBUG_FATAL], 2);
	CHECK(lc.name_ok == lc.calls_with_tdb);
	CHECK(strstr(lc.last, "nesting") != NULL);
	tdb_close(tdb);

	cur_test = "volatile-flag-opens";
	tdb = tdb_open(f, 0, TDB_VOLATILE, O_RDWR, 0600);
	REQUIRE(tdb != NULL);
	CHECK_EQ(tdb_store(tdb, S("v"), S("1"), TDB_REPLACE), 0);
	CHECK_EQ(tdb_delete(tdb, S("v")), 0);
	CHECK(fetch_is(tdb, "v", NULL));
	tdb_close(tdb);

	cur_test = "deprecated-logging-function";
	tdb = tdb_open(f, 0, 0, O_RDWR, 0600);
	REQUIRE(tdb != NULL);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
	tdb_logging_function(tdb, count_log);
#pragma GCC diagnostic pop
	CHECK(tdb_log_fn(tdb) == count_log);
	tdb_close(tdb);

	cur_test = "log-tdb-pointer";
	/* log messages from a failed open carry a tdb whose name and private work */
	memset(&lc, 0, sizeof lc);
	{
		int fd = open(f, O_RDWR | O_TRUNC);
		close(fd);
	}
	tdb = tdb_open_ex(f, 0, 0, O_RDWR | O_CREAT, 0600, &logctx, NULL);
	REQUIRE(tdb != NULL); /* empty file + O_CREAT: new db */
	tdb_close(tdb);
	errno = 0;
	tdb = tdb_open_ex(f, 0, 0, O_RDWR, 0600, &logctx, silly_hash);
	CHECK(tdb == NULL);
	CHECK(lc.total >= 1);
	CHECK_EQ(lc.priv_ok, lc.calls_with_tdb);
	CHECK_EQ(lc.name_ok, lc.calls_with_tdb);

	unlink(f);
	return finish(argv[0]);
}
