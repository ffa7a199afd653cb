/*
 * trans-test: this library's transaction extension (ctdb_transaction_*, not
 * in CTDB's libctdb) against our ctdbd and Debian's, run by run.sh.
 *
 *   trans-test run SOCKET NODES N   N transactions, each adding one to this
 *                                   node's counter in record "counters" (a
 *                                   uint32 per node); prints "committed N"
 *   trans-test show SOCKET NODES    prints the counters this node's copy has
 *   trans-test volatile SOCKET      a transaction on a volatile database
 *                                   fails with EINVAL
 *
 * Exit status 0 when the check held; messages on stderr otherwise.
 */
#include <ctdb.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DB "libctdb-trans.tdb"

static void die(const char *what)
{
	fprintf(stderr, "FAILED: %s (errno %d: %s)\n", what, errno, strerror(errno));
	exit(1);
}

static TDB_DATA text(const char *s)
{
	TDB_DATA d = {(unsigned char *)s, strlen(s)};
	return d;
}

/* The counters in the transaction's view of the record. */
static void fetch_counters(struct ctdb_transaction *h, uint32_t nodes, uint32_t *counters)
{
	TDB_DATA data;
	memset(counters, 0, nodes * sizeof(uint32_t));
	if (!ctdb_transaction_fetch(h, text("counters"), &data)) die("ctdb_transaction_fetch");
	if (data.dsize == nodes * sizeof(uint32_t)) memcpy(counters, data.dptr, data.dsize);
	else if (data.dsize != 0) die("counters of another size");
	free(data.dptr);
}

static int run(struct ctdb_connection *ctdb, uint32_t nodes, int n)
{
	struct ctdb_db *db = ctdb_attachdb(ctdb, DB, true, 0);
	uint32_t pnn, counters[64];
	int i;
	if (db == NULL) die("ctdb_attachdb");
	if (!ctdb_getpnn(ctdb, CTDB_CURRENT_NODE, &pnn)) die("ctdb_getpnn");
	if (nodes > 64 || pnn >= nodes) die("node count");
	for (i = 0; i < n; i++) {
		struct ctdb_transaction *h = ctdb_transaction_start(db);
		TDB_DATA data = {(unsigned char *)counters, nodes * sizeof(uint32_t)};
		if (h == NULL) die("ctdb_transaction_start");
		fetch_counters(h, nodes, counters);
		counters[pnn] += 1;
		if (!ctdb_transaction_store(h, text("counters"), data)) die("ctdb_transaction_store");
		/* The transaction sees what it stored. */
		fetch_counters(h, nodes, counters);
		if (!ctdb_transaction_commit(h)) die("ctdb_transaction_commit");
	}
	printf("committed %d\n", n);
	ctdb_detachdb(ctdb, db);
	return 0;
}

static int show(struct ctdb_connection *ctdb, uint32_t nodes)
{
	struct ctdb_db *db = ctdb_attachdb(ctdb, DB, true, 0);
	struct ctdb_transaction *h;
	uint32_t counters[64], k;
	if (db == NULL) die("ctdb_attachdb");
	if (nodes > 64) die("node count");
	h = ctdb_transaction_start(db);
	if (h == NULL) die("ctdb_transaction_start");
	fetch_counters(h, nodes, counters);
	ctdb_transaction_cancel(h);
	for (k = 0; k < nodes; k++) printf("%s%u", k ? " " : "", counters[k]);
	printf("\n");
	ctdb_detachdb(ctdb, db);
	return 0;
}

static int on_volatile(struct ctdb_connection *ctdb)
{
	struct ctdb_db *db = ctdb_attachdb(ctdb, "libctdb-trans-volatile.tdb", false, 0);
	if (db == NULL) die("ctdb_attachdb");
	errno = 0;
	if (ctdb_transaction_start(db) != NULL || errno != EINVAL) {
		fprintf(stderr, "FAILED: a transaction on a volatile database (errno %d)\n", errno);
		return 1;
	}
	printf("volatile refused\n");
	ctdb_detachdb(ctdb, db);
	return 0;
}

int main(int argc, char **argv)
{
	struct ctdb_connection *ctdb;
	int rc = 2;
	if (argc < 3) {
		fprintf(stderr, "usage: see the comment at the top of trans-test.c\n");
		return 2;
	}
	ctdb_log_level = 3; /* LOG_ERR */
	ctdb = ctdb_connect(argv[2], ctdb_log_file, stderr);
	if (ctdb == NULL) die("ctdb_connect");
	if (!strcmp(argv[1], "run") && argc == 5) rc = run(ctdb, (uint32_t)atoi(argv[3]), atoi(argv[4]));
	if (!strcmp(argv[1], "show") && argc == 4) rc = show(ctdb, (uint32_t)atoi(argv[3]));
	if (!strcmp(argv[1], "volatile") && argc == 3) rc = on_volatile(ctdb);
	ctdb_disconnect(ctdb);
	return rc;
}
