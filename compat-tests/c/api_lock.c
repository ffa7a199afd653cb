/* chainlock / lockall families, also against a second process; setalarm_sigptr. */
#include "common.h"

static int to_child[2], to_parent[2];

static void sig_send(int fd, char c) { REQUIRE(write(fd, &c, 1) == 1); }
static char sig_wait(int fd) { char c = 0; REQUIRE(read(fd, &c, 1) == 1); return c; }

enum holdop { H_CHAIN, H_CHAIN_READ, H_ALL, H_ALL_READ, H_TXN };

/* child: reopen, take a lock, tell parent, wait, release, exit */
static pid_t spawn_holder(struct tdb_context *tdb, enum holdop op, const char *key) {
	pid_t pid;
	REQUIRE(pipe(to_child) == 0 && pipe(to_parent) == 0);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		int r = -1;
		if (tdb_reopen(tdb) != 0) _exit(10);
		switch (op) {
		case H_CHAIN: r = tdb_chainlock(tdb, S(key)); break;
		case H_CHAIN_READ: r = tdb_chainlock_read(tdb, S(key)); break;
		case H_ALL: r = tdb_lockall(tdb); break;
		case H_ALL_READ: r = tdb_lockall_read(tdb); break;
		case H_TXN: r = tdb_transaction_start(tdb); break;
		}
		sig_send(to_parent[1], r == 0 ? 'L' : 'E');
		sig_wait(to_child[0]);
		switch (op) {
		case H_CHAIN: r = tdb_chainunlock(tdb, S(key)); break;
		case H_CHAIN_READ: r = tdb_chainunlock_read(tdb, S(key)); break;
		case H_ALL: r = tdb_unlockall(tdb); break;
		case H_ALL_READ: r = tdb_unlockall_read(tdb); break;
		case H_TXN: r = tdb_transaction_cancel(tdb); break;
		}
		sig_send(to_parent[1], r == 0 ? 'U' : 'E');
		_exit(0);
	}
	CHECK_EQ(sig_wait(to_parent[0]), 'L');
	return pid;
}
static void release_holder(pid_t pid) {
	int status;
	sig_send(to_child[1], 'g');
	CHECK_EQ(sig_wait(to_parent[0]), 'U');
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(to_child[0]); close(to_child[1]); close(to_parent[0]); close(to_parent[1]);
}

static volatile sig_atomic_t alarmed;
static void on_alarm(int sig) { (void)sig; alarmed = 1; }

static void run(const char *f, int flags) {
	struct tdb_context *tdb;
	pid_t pid;
	int mutex = (flags & TDB_MUTEX_LOCKING) != 0;
	TDB_DATA k = S("lockkey"), other = S("otherkey-that-hashes-elsewhere");

	unlink(f);
	tdb = tdb_open(f, 10007, flags, O_RDWR | O_CREAT, 0600);
	REQUIRE(tdb != NULL);
	CHECK_EQ(tdb_store(tdb, k, S("v"), TDB_REPLACE), 0);

	cur_test = mutex ? "chainlock-self[mutex]" : "chainlock-self";
	CHECK_EQ(tdb_chainlock(tdb, k), 0);
	CHECK_EQ(tdb_chainlock(tdb, k), 0);         /* nests */
	CHECK_EQ(tdb_store(tdb, k, S("w"), TDB_REPLACE), 0); /* own lock does not block */
	CHECK(fetch_is(tdb, "lockkey", "w"));
	CHECK_EQ(tdb_chainunlock(tdb, k), 0);
	CHECK_EQ(tdb_chainunlock(tdb, k), 0);
	CHECK_EQ(tdb_chainunlock(tdb, k), -1);      /* not locked */
	CHECK_EQ(tdb_chainlock_nonblock(tdb, k), 0);
	CHECK_EQ(tdb_chainunlock(tdb, k), 0);
	CHECK_EQ(tdb_chainlock_read(tdb, k), 0);
	CHECK(fetch_is(tdb, "lockkey", "w"));
	CHECK_EQ(tdb_chainunlock_read(tdb, k), 0);
	CHECK_EQ(tdb_chainlock_read_nonblock(tdb, k), 0);
	CHECK_EQ(tdb_chainunlock_read(tdb, k), 0);
	CHECK_EQ(tdb_chainlock_mark(tdb, k), 0);
	CHECK_EQ(tdb_chainlock_unmark(tdb, k), 0);
	CHECK_EQ(tdb_chainlock_unmark(tdb, k), -1);

	cur_test = mutex ? "chainlock-other-process[mutex]" : "chainlock-other-process";
	pid = spawn_holder(tdb, H_CHAIN, "lockkey");
	CHECK_EQ(tdb_chainlock_nonblock(tdb, k), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_LOCK);
	CHECK_EQ(tdb_chainlock_read_nonblock(tdb, k), -1);
	CHECK_EQ(tdb_lockall_nonblock(tdb), -1);
	CHECK_EQ(tdb_lockall_read_nonblock(tdb), -1);
	/* another chain is free */
	CHECK_EQ(tdb_chainlock_nonblock(tdb, other), 0);
	CHECK_EQ(tdb_chainunlock(tdb, other), 0);
	CHECK_EQ(tdb_store(tdb, other, S("x"), TDB_REPLACE), 0);
	/* mark does not take the real lock: succeeds although held elsewhere */
	CHECK_EQ(tdb_chainlock_mark(tdb, k), 0);
	CHECK_EQ(tdb_chainlock_unmark(tdb, k), 0);
	release_holder(pid);
	CHECK_EQ(tdb_chainlock_nonblock(tdb, k), 0);
	CHECK_EQ(tdb_chainunlock(tdb, k), 0);

	if (!mutex) {
		cur_test = "chainlock-read-shared";
		pid = spawn_holder(tdb, H_CHAIN_READ, "lockkey");
		CHECK_EQ(tdb_chainlock_read_nonblock(tdb, k), 0);
		CHECK_EQ(tdb_chainunlock_read(tdb, k), 0);
		CHECK_EQ(tdb_chainlock_nonblock(tdb, k), -1);
		CHECK(fetch_is(tdb, "lockkey", "w")); /* reading is fine */
		release_holder(pid);

		cur_test = "lockall-read-shared";
		pid = spawn_holder(tdb, H_ALL_READ, NULL);
		CHECK_EQ(tdb_lockall_read_nonblock(tdb), 0);
		CHECK_EQ(tdb_unlockall_read(tdb), 0);
		CHECK_EQ(tdb_lockall_nonblock(tdb), -1);
		CHECK_EQ(tdb_chainlock_nonblock(tdb, k), -1);
		CHECK_EQ(tdb_chainlock_read_nonblock(tdb, k), 0);
		CHECK_EQ(tdb_chainunlock_read(tdb, k), 0);
		release_holder(pid);
	}

	cur_test = mutex ? "lockall-other-process[mutex]" : "lockall-other-process";
	pid = spawn_holder(tdb, H_ALL, NULL);
	CHECK_EQ(tdb_lockall_nonblock(tdb), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_LOCK);
	CHECK_EQ(tdb_lockall_read_nonblock(tdb), -1);
	CHECK_EQ(tdb_chainlock_nonblock(tdb, k), -1);
	CHECK_EQ(tdb_chainlock_nonblock(tdb, other), -1);
	release_holder(pid);

	cur_test = mutex ? "transaction-other-process[mutex]" : "transaction-other-process";
	pid = spawn_holder(tdb, H_TXN, NULL);
	CHECK_EQ(tdb_transaction_start_nonblock(tdb), -1);
	CHECK_EQ(tdb_error(tdb), TDB_ERR_NOLOCK); /* sic: Samba reports NOLOCK here */
	CHECK_EQ(tdb_transaction_active(tdb), false);
	/* plain reads still work while another process has a transaction open */
	CHECK(fetch_is(tdb, "lockkey", "w"));
	release_holder(pid);
	CHECK_EQ(tdb_transaction_start_nonblock(tdb), 0);
	CHECK_EQ(tdb_transaction_active(tdb), true);
	CHECK_EQ(tdb_transaction_cancel(tdb), 0);

	cur_test = mutex ? "lockall-self[mutex]" : "lockall-self";
	CHECK_EQ(tdb_lockall(tdb), 0);
	CHECK_EQ(tdb_store(tdb, k, S("all"), TDB_REPLACE), 0);
	CHECK_EQ(tdb_chainlock(tdb, k), 0);
	CHECK_EQ(tdb_chainunlock(tdb, k), 0);
	CHECK_EQ(tdb_unlockall(tdb), 0);
	CHECK_EQ(tdb_unlockall(tdb), -1);
	CHECK_EQ(tdb_lockall_read(tdb), 0);
	CHECK(fetch_is(tdb, "lockkey", "all"));
	CHECK_EQ(tdb_unlockall_read(tdb), 0);
	CHECK_EQ(tdb_lockall_nonblock(tdb), 0);
	CHECK_EQ(tdb_unlockall(tdb), 0);
	CHECK_EQ(tdb_lockall_read_nonblock(tdb), 0);
	CHECK_EQ(tdb_unlockall_read(tdb), 0);
	CHECK_EQ(tdb_lockall_mark(tdb), 0);
	CHECK_EQ(tdb_lockall_unmark(tdb), 0);
	CHECK_EQ(tdb_lockall_unmark(tdb), -1);

	cur_test = mutex ? "setalarm_sigptr[mutex]" : "setalarm_sigptr";
	if (!mutex) {
		/* a blocking chainlock gives up when the alarm flag is set */
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_alarm; /* no SA_RESTART: fcntl returns EINTR */
		sigaction(SIGALRM, &sa, NULL);
		pid = spawn_holder(tdb, H_CHAIN, "lockkey");
		alarmed = 0;
		tdb_setalarm_sigptr(tdb, &alarmed);
		alarm(1);
		CHECK_EQ(tdb_chainlock(tdb, k), -1);
		CHECK_EQ(alarmed, 1);
		CHECK_EQ(tdb_error(tdb), TDB_ERR_LOCK);
		tdb_setalarm_sigptr(tdb, NULL);
		release_holder(pid);
		CHECK_EQ(tdb_chainlock(tdb, k), 0);
		CHECK_EQ(tdb_chainunlock(tdb, k), 0);
	}

	CHECK_EQ(tdb_check(tdb, NULL, NULL), 0);
	tdb_close(tdb);
	unlink(f);
}

int main(int argc, char **argv) {
	const char *dir = workdir(argc, argv);
	run(tmpname(dir, "lock.tdb"), 0);
	run(tmpname(dir, "lock.tdb"), TDB_NOMMAP);
	if (tdb_runtime_check_for_robust_mutexes())
		run(tmpname(dir, "lockm.tdb"), TDB_MUTEX_LOCKING | TDB_CLEAR_IF_FIRST);
	return finish(argv[0]);
}
