/* Records: store/storev/append/fetch/parse/exists/delete, iteration, traversal,
 * chains, wipe/repack/check/rescue/summary, freelist, max_dead, seqnum, hashes. */
#include "common.h"

/* hash = decimal value of the key's leading digits: lets us pick the chain */
static unsigned int num_hash(TDB_DATA *key) {
	unsigned int h = 0;
	size_t i;
	for (i = 0; i < key->dsize && key->dptr[i] >= '0' && key->dptr[i] <= '9'; i++)
		h = h * 10 + (key->dptr[i] - '0');
	return h;
}

struct parse_ctx { int calls; char buf[256]; size_t len; char key[64]; };
static int parser(TDB_DATA key, TDB_DATA data, void *p) {
	struct parse_ctx *c = p;
	c->calls++;
	c->len = data.dsize;
	memcpy(c->buf, data.dptr, data.dsize < sizeof c->buf ? data.dsize : sizeof c->buf);
	snprintf(c->key, sizeof c->key, "%.*s", (int)key.dsize, (char *)key.dptr);
	return 42;
}

struct trav { int count; int stop_at; int sum; int bad; const char *prefix; struct tdb_context *del_from; };
static int trav_fn(struct tdb_context *tdb, TDB_DATA k, TDB_DATA d, void *p) {
	struct trav *t = p;
	char kb[64], db[64];
	t->count++;
	snprintf(kb, sizeof kb, "%.*s", (int)k.dsize, (char *)k.dptr);
	snprintf(db, sizeof db, "%.*s", (int)d.dsize, (char *)d.dptr);
	/* records are key<N> -> val<N> */
	if (strncmp(kb, "key", 3) == 0) {
		if (strcmp(kb + 3, db + 3) != 0 || strncmp(db, "val", 3) != 0) t->bad++;
		t->sum += atoi(kb + 3);
	}
	if (t->prefix && strncmp(kb, t->prefix, strlen(t->prefix)) != 0) t->bad++;
	if (t->del_from) {
		if (tdb_delete(tdb, k) != 0) t->bad++;
	}
	if (t->stop_at && t->count == t->stop_at) return 1;
	return 0;
}

static int check_cb_calls;
static int check_cb(TDB_DATA key, TDB_DATA data, void *p) {
	check_cb_calls++;
	(void)key; (void)data;
	return *(int *)p;
}
static int rescue_count, rescue_bad;
static void rescue_cb(TDB_DATA key, TDB_DATA data, void *p) {
	(void)p;
	rescue_count++;
	if (key.dsize < 3 || data.dsize < 3 || memcmp(key.dptr, "key", 3) || memcmp(data.dptr, "val", 3)
	    || key.dsize != data.dsize || memcmp(key.dptr + 3, data.dptr + 3, key.dsize - 3))
		rescue_bad++;
}

static void fill(struct tdb_context *tdb, int n) {
	char k[32], v[32];
	int i;
	for (i = 0; i < n; i++) {
		snprintf(k, sizeof k, "key%d", i);
		snprintf(v, sizeof v, "val%d", i);
		CHECK_EQ(tdb_store(tdb, S(k), S(v), TDB_REPLACE), 0);
	}
}

static void test_records(const char *f, int tdb_flags) {
	struct tdb_context *tdb;
	struct parse_ctx pc;
	TDB_DATA d, bufs[3];
	char big[70000];
	int i;

	unlink(f);
	tdb = tdb_open(f, 0, tdb_flags, O_RDWR | O_CREAT, 0600);
	REQUIRE(tdb != NULL);

	cur_test = "store-flags";
	CHECK_EQ(tdb_store(tdb, S("a"), S("1"), TDB_INSERT), 0);
	CHECK_EQ(tdb_store(tdb, S("a"), S("2"), TDB_INSERT), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_EXISTS);
	CHECK(strcmp(tdb_errorstr(tdb), "Record exists") == 0);
	CHECK(fetch_is(tdb, "a", "1"));
	CHECK_EQ(tdb_store(tdb, S("b"), S("1"), TDB_MODIFY), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_NOEXIST);
	CHECK(strcmp(tdb_errorstr(tdb), "Record does not exist") == 0);
	CHECK(fetch_is(tdb, "b", NULL));
	CHECK_EQ(tdb_store(tdb, S("a"), S("33"), TDB_MODIFY), 0);
	CHECK(fetch_is(tdb, "a", "33"));
	CHECK_EQ(tdb_store(tdb, S("a"), S("4"), TDB_REPLACE), 0);
	CHECK(fetch_is(tdb, "a", "4"));
	CHECK_EQ(tdb_store(tdb, S("c"), S("5"), TDB_REPLACE), 0);
	/* storing the same value again */
	CHECK_EQ(tdb_store(tdb, S("c"), S("5"), TDB_REPLACE), 0);
	CHECK(fetch_is(tdb, "c", "5"));
	/* an unknown flag value behaves like TDB_REPLACE */
	CHECK_EQ(tdb_store(tdb, S("c"), S("6"), 77), 0);
	CHECK(fetch_is(tdb, "c", "6"));
	CHECK_EQ(tdb_store(tdb, S("new77"), S("7"), 77), 0);
	CHECK(fetch_is(tdb, "new77", "7"));

	cur_test = "empty-key-and-value";
	CHECK_EQ(tdb_store(tdb, S(""), S("emptykey"), TDB_INSERT), 0);
	CHECK(fetch_is(tdb, "", "emptykey"));
	CHECK_EQ(tdb_store(tdb, S("ev"), S(""), TDB_INSERT), 0);
	d = tdb_fetch(tdb, S("ev"));
	CHECK(d.dptr != NULL);
	CHECK_EQ(d.dsize, 0);
	free(d.dptr);
	CHECK_EQ(tdb_exists(tdb, S("ev")), 1);
	CHECK_EQ(tdb_delete(tdb, S("")), 0);
	CHECK_EQ(tdb_delete(tdb, S("ev")), 0);

	cur_test = "binary-and-big";
	for (i = 0; i < (int)sizeof big; i++) big[i] = (char)(i * 7 + 3);
	CHECK_EQ(tdb_store(tdb, B("\0\1\2", 3), B(big, sizeof big), TDB_REPLACE), 0);
	d = tdb_fetch(tdb, B("\0\1\2", 3));
	CHECK(d.dptr && d.dsize == sizeof big && memcmp(d.dptr, big, sizeof big) == 0);
	free(d.dptr);
	CHECK_EQ(tdb_exists(tdb, B("\0\1", 2)), 0);

	cur_test = "storev";
	bufs[0] = S("hel");
	bufs[1] = S("");
	bufs[2] = S("lo");
	CHECK_EQ(tdb_storev(tdb, S("v"), bufs, 3, TDB_INSERT), 0);
	CHECK(fetch_is(tdb, "v", "hello"));
	CHECK_EQ(tdb_storev(tdb, S("v"), bufs, 3, TDB_INSERT), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_EXISTS);
	CHECK_EQ(tdb_storev(tdb, S("v"), bufs, 1, TDB_MODIFY), 0);
	CHECK(fetch_is(tdb, "v", "hel"));
	CHECK_EQ(tdb_storev(tdb, S("nov"), bufs, 2, TDB_MODIFY), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_NOEXIST);
	CHECK_EQ(tdb_storev(tdb, S("v0"), bufs, 0, TDB_REPLACE), 0);
	d = tdb_fetch(tdb, S("v0"));
	CHECK(d.dptr != NULL && d.dsize == 0);
	free(d.dptr);

	cur_test = "append";
	CHECK_EQ(tdb_append(tdb, S("ap"), S("one")), 0); /* creates */
	CHECK(fetch_is(tdb, "ap", "one"));
	CHECK_EQ(tdb_append(tdb, S("ap"), S("")), 0);
	CHECK(fetch_is(tdb, "ap", "one"));
	for (i = 0; i < 50; i++) CHECK_EQ(tdb_append(tdb, S("ap"), S("-two")), 0);
	d = tdb_fetch(tdb, S("ap"));
	CHECK(d.dptr && d.dsize == 3 + 50 * 4 && memcmp(d.dptr + d.dsize - 4, "-two", 4) == 0);
	free(d.dptr);
	CHECK_EQ(tdb_append(tdb, S("ap0"), S("")), 0);
	CHECK_EQ(tdb_exists(tdb, S("ap0")), 1);

	cur_test = "parse_record";
	memset(&pc, 0, sizeof pc);
	CHECK_EQ(tdb_parse_record(tdb, S("a"), parser, &pc), 42);
	CHECK_EQ(pc.calls, 1);
	CHECK(pc.len == 1 && pc.buf[0] == '4');
	CHECK(strcmp(pc.key, "a") == 0);
	CHECK_EQ(tdb_parse_record(tdb, S("zz"), parser, &pc), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_NOEXIST);
	CHECK_EQ(pc.calls, 1);

	cur_test = "exists-delete";
	CHECK_EQ(tdb_exists(tdb, S("a")), 1);
	CHECK_EQ(tdb_exists(tdb, S("zz")), 0);
	CHECK_EQ(tdb_delete(tdb, S("a")), 0);
	CHECK_EQ(tdb_exists(tdb, S("a")), 0);
	CHECK_EQ(tdb_delete(tdb, S("a")), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_NOEXIST);
	d = tdb_fetch(tdb, S("a"));
	CHECK(d.dptr == NULL && d.dsize == 0);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_NOEXIST);

	cur_test = "firstkey-nextkey";
	CHECK_EQ(tdb_wipe_all(tdb), 0);
	d = tdb_firstkey(tdb);
	CHECK(d.dptr == NULL);
	fill(tdb, 300);
	{
		int n = 0, seen[300];
		TDB_DATA k = tdb_firstkey(tdb), next;
		memset(seen, 0, sizeof seen);
		while (k.dptr) {
			char kb[32];
			n++;
			snprintf(kb, sizeof kb, "%.*s", (int)k.dsize, (char *)k.dptr);
			if (strncmp(kb, "key", 3) == 0 && atoi(kb + 3) < 300) seen[atoi(kb + 3)]++;
			next = tdb_nextkey(tdb, k);
			free(k.dptr);
			k = next;
		}
		CHECK_EQ(n, 300);
		for (i = 0; i < 300; i++) if (seen[i] != 1) { CHECK_EQ(seen[i], 1); break; }
		/* nextkey of a key that does not exist */
		k = tdb_nextkey(tdb, S("no-such-key"));
		CHECK(k.dptr == NULL);
		CHECK_EQ(tdb_error(tdb), TDB_ERR_NOEXIST);
	}

	cur_test = "traverse";
	{
		struct trav t;
		memset(&t, 0, sizeof t);
		CHECK_EQ(tdb_traverse(tdb, trav_fn, &t), 300);
		CHECK_EQ(t.count, 300);
		CHECK_EQ(t.sum, 299 * 300 / 2);
		CHECK_EQ(t.bad, 0);
		CHECK_EQ(tdb_traverse(tdb, NULL, NULL), 300);
		memset(&t, 0, sizeof t);
		CHECK_EQ(tdb_traverse_read(tdb, trav_fn, &t), 300);
		CHECK_EQ(t.sum, 299 * 300 / 2);
		memset(&t, 0, sizeof t);
		t.stop_at = 10;
		CHECK_EQ(tdb_traverse(tdb, trav_fn, &t), 10);
		CHECK_EQ(t.count, 10);
		memset(&t, 0, sizeof t);
		t.stop_at = 1;
		CHECK_EQ(tdb_traverse_read(tdb, trav_fn, &t), 1);
		/* delete every record from inside the traverse */
		memset(&t, 0, sizeof t);
		t.del_from = tdb;
		CHECK_EQ(tdb_traverse(tdb, trav_fn, &t), 300);
		CHECK_EQ(t.bad, 0);
		CHECK_EQ(tdb_traverse(tdb, NULL, NULL), 0);
		CHECK_EQ(tdb_check(tdb, NULL, NULL), 0);
		/* writes are refused inside traverse_read */
		fill(tdb, 20);
		memset(&t, 0, sizeof t);
		t.del_from = tdb;
		CHECK_EQ(tdb_traverse_read(tdb, trav_fn, &t), 20);
		CHECK_EQ(t.bad, 20);
		CHECK_EQ(tdb_traverse(tdb, NULL, NULL), 20);
	}

	cur_test = "wipe_all";
	CHECK_EQ(tdb_wipe_all(tdb), 0);
	CHECK_EQ(tdb_traverse(tdb, NULL, NULL), 0);
	CHECK_EQ(tdb_freelist_size(tdb) >= 1, 1);
	CHECK_EQ(tdb_check(tdb, NULL, NULL), 0);
	tdb_close(tdb);
}

static void test_chains(const char *f) {
	struct tdb_context *tdb;
	struct trav t;
	char k[32], v[32];
	int i;

	cur_test = "traverse_chain";
	unlink(f);
	tdb = tdb_open_ex(f, 10, 0, O_RDWR | O_CREAT, 0600, NULL, num_hash);
	REQUIRE(tdb != NULL);
	/* keys "<n>x": chain n % 10 */
	for (i = 0; i < 100; i++) {
		snprintf(k, sizeof k, "%dx", i);
		snprintf(v, sizeof v, "v%d", i);
		CHECK_EQ(tdb_store(tdb, S(k), S(v), TDB_INSERT), 0);
	}
	for (i = 0; i < 10; i++) {
		memset(&t, 0, sizeof t);
		CHECK_EQ(tdb_traverse_chain(tdb, i, trav_fn, &t), 10);
		CHECK_EQ(t.count, 10);
	}
	memset(&t, 0, sizeof t);
	t.stop_at = 3;
	CHECK_EQ(tdb_traverse_chain(tdb, 4, trav_fn, &t), 3);
	CHECK_EQ(tdb_traverse_chain(tdb, 10, trav_fn, &t), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_EINVAL);
	/* key chain: key "13x" lives in chain 3 whether or not it exists */
	memset(&t, 0, sizeof t);
	CHECK_EQ(tdb_traverse_key_chain(tdb, S("3333"), trav_fn, &t), 10);
	CHECK_EQ(tdb_delete(tdb, S("13x")), 0);
	memset(&t, 0, sizeof t);
	CHECK_EQ(tdb_traverse_key_chain(tdb, S("3333"), trav_fn, &t), 9);
	memset(&t, 0, sizeof t);
	CHECK_EQ(tdb_traverse_chain(tdb, 3, trav_fn, &t), 9);
	CHECK_EQ(t.count, 9);
	/* which records are in chain 7 */
	{
		struct trav t7;
		memset(&t7, 0, sizeof t7);
		CHECK_EQ(tdb_traverse_chain(tdb, 7, trav_fn, &t7), 10);
	}
	CHECK_EQ(tdb_traverse(tdb, NULL, NULL), 99);
	CHECK_EQ(tdb_check(tdb, NULL, NULL), 0);
	tdb_close(tdb);
}

static void test_maintenance(const char *f) {
	struct tdb_context *tdb;
	int zero = 0, minus = -1, n, fl0, fl1, i;
	char *sum;
	char k[32];
	size_t sz_before;

	unlink(f);
	tdb = tdb_open(f, 31, 0, O_RDWR | O_CREAT, 0600);
	REQUIRE(tdb != NULL);
	fill(tdb, 500);

	cur_test = "check";
	check_cb_calls = 0;
	CHECK_EQ(tdb_check(tdb, check_cb, &zero), 0);
	CHECK_EQ(check_cb_calls, 500);
	check_cb_calls = 0;
	CHECK_EQ(tdb_check(tdb, check_cb, &minus), -1);
	CHECK(check_cb_calls >= 1);
	CHECK_EQ(tdb_check(tdb, NULL, NULL), 0);

	cur_test = "freelist";
	fl0 = tdb_freelist_size(tdb);
	CHECK(fl0 >= 0);
	for (i = 0; i < 500; i += 2) {
		snprintf(k, sizeof k, "key%d", i);
		CHECK_EQ(tdb_delete(tdb, S(k)), 0);
	}
	fl1 = tdb_freelist_size(tdb);
	CHECK(fl1 > fl0);
	n = -1;
	CHECK_EQ(tdb_validate_freelist(tdb, &n), 0);
	/* validate_freelist counts differently from freelist_size (Debian: 250 vs 252) */
	CHECK_EQ(n, 250);
	CHECK_EQ(fl1, 252);
	{
		/* capture the debug dumps printed on stdout */
		char cap[4096];
		FILE *fp;
		int saved, fd, recs = 0, hashes = 0, entries = 0, top = 0;
		char line[512];
		snprintf(cap, sizeof cap, "%s.dump", f);
		fflush(stdout);
		saved = dup(1);
		fd = open(cap, O_RDWR | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		close(fd);
		CHECK_EQ(tdb_printfreelist(tdb), 0);
		tdb_dump_all(tdb);
		fflush(stdout);
		dup2(saved, 1);
		close(saved);
		fp = fopen(cap, "r");
		REQUIRE(fp != NULL);
		while (fgets(line, sizeof line, fp)) {
			if (strncmp(line, " rec: hash=", 11) == 0) recs++;
			if (strncmp(line, "hash=", 5) == 0) hashes++;
			if (strncmp(line, "entry offset=", 13) == 0) entries++;
			if (strncmp(line, "freelist top=", 13) == 0) top++;
		}
		fclose(fp);
		unlink(cap);
		CHECK_EQ(hashes, 32); /* 31 chains + the freelist */
		CHECK_EQ(top, 1);
		CHECK_EQ(entries, n);
		CHECK_EQ(recs, 250 + n);
	}
	CHECK_EQ(tdb_check(tdb, NULL, NULL), 0);

	cur_test = "rescue";
	rescue_count = rescue_bad = 0;
	CHECK_EQ(tdb_rescue(tdb, rescue_cb, NULL), 0);
	CHECK_EQ(rescue_count, 250);
	CHECK_EQ(rescue_bad, 0);

	cur_test = "summary";
	sum = tdb_summary(tdb);
	CHECK(sum != NULL);
	if (sum) {
		CHECK(strstr(sum, "Number of records: 250") != NULL);
		CHECK(strstr(sum, "Size of file/data:") != NULL);
		CHECK(strstr(sum, "Number of hash chains: 31") != NULL);
		free(sum);
	}

	cur_test = "repack";
	sz_before = tdb_map_size(tdb);
	CHECK_EQ(tdb_repack(tdb), 0);
	CHECK(tdb_map_size(tdb) >= sz_before / 4);
	CHECK_EQ(tdb_traverse(tdb, NULL, NULL), 250);
	CHECK(fetch_is(tdb, "key1", "val1"));
	CHECK(fetch_is(tdb, "key499", "val499"));
	CHECK(fetch_is(tdb, "key2", NULL));
	CHECK(tdb_freelist_size(tdb) <= 2);
	CHECK_EQ(tdb_check(tdb, NULL, NULL), 0);

	cur_test = "max_dead";
	tdb_set_max_dead(tdb, 10);
	fl0 = tdb_freelist_size(tdb);
	for (i = 1; i < 40; i += 2) {
		snprintf(k, sizeof k, "key%d", i);
		CHECK_EQ(tdb_delete(tdb, S(k)), 0);
		CHECK_EQ(tdb_exists(tdb, S(k)), 0);
	}
	/* dead records stay in their chains, the freelist stays small */
	CHECK(tdb_freelist_size(tdb) <= fl0 + 2);
	CHECK_EQ(tdb_traverse(tdb, NULL, NULL), 230);
	CHECK_EQ(tdb_check(tdb, NULL, NULL), 0);
	/* a dead record can be reused by a store of the same size */
	CHECK_EQ(tdb_store(tdb, S("key1"), S("val1"), TDB_INSERT), 0);
	CHECK(fetch_is(tdb, "key1", "val1"));
	{
		char *s2 = tdb_summary(tdb);
		CHECK(s2 && strstr(s2, "Number of dead records:") != NULL);
		free(s2);
	}
	tdb_close(tdb);

	cur_test = "hash_size-map_size";
	tdb = tdb_open(f, 0, 0, O_RDWR, 0600);
	REQUIRE(tdb != NULL);
	CHECK_EQ(tdb_hash_size(tdb), 31);
	{
		struct stat st;
		fstat(tdb_fd(tdb), &st);
		CHECK_EQ(tdb_map_size(tdb), st.st_size);
	}
	tdb_close(tdb);
}

static void test_seqnum(const char *f) {
	struct tdb_context *tdb;
	int s0, s1;

	cur_test = "seqnum";
	unlink(f);
	tdb = tdb_open(f, 0, 0, O_RDWR | O_CREAT, 0600);
	REQUIRE(tdb != NULL);
	CHECK_EQ(tdb_get_seqnum(tdb), 0);
	CHECK_EQ(tdb_store(tdb, S("a"), S("1"), TDB_REPLACE), 0);
	CHECK_EQ(tdb_get_seqnum(tdb), 0); /* not enabled */
	tdb_enable_seqnum(tdb);
	CHECK(tdb_get_flags(tdb) & TDB_SEQNUM);
	s0 = tdb_get_seqnum(tdb);
	CHECK_EQ(tdb_store(tdb, S("a"), S("2"), TDB_REPLACE), 0);
	s1 = tdb_get_seqnum(tdb);
	CHECK_EQ(s1, s0 + 1);
	CHECK_EQ(tdb_delete(tdb, S("a")), 0);
	CHECK_EQ(tdb_get_seqnum(tdb), s1 + 1);
	CHECK_EQ(tdb_delete(tdb, S("a")), -1);  /* failed delete: no bump */
	CHECK_EQ(tdb_get_seqnum(tdb), s1 + 1);
	tdb_increment_seqnum_nonblock(tdb);
	CHECK_EQ(tdb_get_seqnum(tdb), s1 + 2);
	CHECK_EQ(tdb_append(tdb, S("b"), S("x")), 0);
	CHECK_EQ(tdb_get_seqnum(tdb), s1 + 3);
	/* a transaction's writes bump it once per write, visible after commit */
	CHECK_EQ(tdb_transaction_start(tdb), 0);
	CHECK_EQ(tdb_store(tdb, S("c"), S("1"), TDB_REPLACE), 0);
	CHECK_EQ(tdb_store(tdb, S("d"), S("1"), TDB_REPLACE), 0);
	CHECK_EQ(tdb_transaction_commit(tdb), 0);
	s0 = tdb_get_seqnum(tdb);
	CHECK(s0 > s1 + 3);
	/* cancelled transaction: no change */
	CHECK_EQ(tdb_transaction_start(tdb), 0);
	CHECK_EQ(tdb_store(tdb, S("e"), S("1"), TDB_REPLACE), 0);
	CHECK_EQ(tdb_transaction_cancel(tdb), 0);
	CHECK_EQ(tdb_get_seqnum(tdb), s0);
	tdb_close(tdb);
	/* persisted in the file, seen by a TDB_SEQNUM reopen */
	tdb = tdb_open(f, 0, TDB_SEQNUM, O_RDWR, 0600);
	REQUIRE(tdb != NULL);
	CHECK_EQ(tdb_get_seqnum(tdb), s0);
	CHECK_EQ(tdb_wipe_all(tdb), 0);
	CHECK(tdb_get_seqnum(tdb) != s0);
	tdb_close(tdb);
	/* also when opened read-only */
	tdb = tdb_open(f, 0, 0, O_RDONLY, 0);
	REQUIRE(tdb != NULL);
	CHECK(tdb_get_seqnum(tdb) > 0);
	tdb_close(tdb);
}

static void test_hashes(void) {
	/* known values of the Jenkins lookup3 hashlittle() as used by tdb */
	static const struct { const char *s; unsigned int h; } kv[] = {
		{ "", 0xdeadbeefu },
		{ "a", 0x58d68708u },
		{ "hello", 0x34cbbc6eu },
		{ "Four score and seven years ago", 0x17770551u },
		{ "tdb drop-in replacement test key", 0x3b4041b8u },
	};
	size_t i;
	cur_test = "jenkins_hash";
	for (i = 0; i < sizeof kv / sizeof kv[0]; i++) {
		TDB_DATA d = S(kv[i].s);
		unsigned int h = tdb_jenkins_hash(&d);
		if (getenv("COMPAT_PRINT_HASHES")) printf("\"%s\" 0x%08x\n", kv[i].s, h);
		if (kv[i].h) CHECK_EQ(h, kv[i].h);
	}
	cur_test = "tdb_null";
	CHECK(tdb_null.dptr == NULL);
	CHECK_EQ(tdb_null.dsize, 0);
}

static void test_errorstr(const char *f) {
	struct tdb_context *tdb;
	cur_test = "errorstr";
	unlink(f);
	tdb = tdb_open(f, 0, 0, O_RDWR | O_CREAT, 0600);
	REQUIRE(tdb != NULL);
	/* drive the tdb into some error states and check the strings */
	tdb_fetch(tdb, S("nope"));
	CHECK(strcmp(tdb_errorstr(tdb), "Record does not exist") == 0);
	tdb_store(tdb, S("x"), S("1"), TDB_INSERT);
	tdb_store(tdb, S("x"), S("1"), TDB_INSERT);
	CHECK(strcmp(tdb_errorstr(tdb), "Record exists") == 0);
	{ struct trav tt; memset(&tt, 0, sizeof tt); tdb_traverse_chain(tdb, 100000, trav_fn, &tt); }
	CHECK(strcmp(tdb_errorstr(tdb), "Invalid parameter") == 0);
	tdb_add_flags(tdb, TDB_DISALLOW_NESTING);
	tdb_transaction_start(tdb);
	tdb_transaction_start(tdb);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_NESTING);
	/* TDB_ERR_NESTING has no entry in the error table */
	CHECK(strcmp(tdb_errorstr(tdb), "Invalid error code") == 0);
	tdb_transaction_cancel(tdb);
	tdb_close(tdb);
}

int main(int argc, char **argv) {
	const char *dir = workdir(argc, argv);
	char *f = tmpname(dir, "data.tdb");
	test_records(f, 0);
	test_records(f, TDB_NOMMAP);
	test_records(f, TDB_INCOMPATIBLE_HASH | TDB_NOSYNC);
	test_chains(f);
	test_maintenance(f);
	test_seqnum(f);
	test_hashes();
	test_errorstr(f);
	unlink(f);
	return finish(argv[0]);
}
