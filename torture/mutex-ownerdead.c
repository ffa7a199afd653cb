/*
 * mutex-ownerdead: a process holding tdb_lockall() on a TDB_MUTEX_LOCKING file is
 * SIGKILLed while another process waits in tdb_chainlock(). The waiter must get
 * its chain lock, and tdb_lockall() must work afterwards. Exit 0 on success, 1 on
 * a lock error, 2 when the waiter is still stuck after 10 s.
 *   mutex-ownerdead DIR      (run it with either library: LD_LIBRARY_PATH)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <tdb.h>

static struct tdb_context *open_it(const char *path)
{
	struct tdb_context *t = tdb_open(path, 0, TDB_MUTEX_LOCKING | TDB_CLEAR_IF_FIRST | TDB_NOSYNC, O_RDWR | O_CREAT, 0600);
	if (!t) { perror("tdb_open"); _exit(1); }
	return t;
}

int main(int argc, char **argv)
{
	char path[512];
	int p[2];
	char c;
	if (argc != 2) return 1;
	if (!tdb_runtime_check_for_robust_mutexes()) { printf("SKIP no robust mutexes\n"); return 0; }
	snprintf(path, sizeof path, "%s/ownerdead.tdb", argv[1]);
	unlink(path);
	if (pipe(p)) return 1;
	pid_t a = fork();
	if (a == 0) {
		struct tdb_context *t = open_it(path);
		if (tdb_lockall(t) != 0) _exit(1);
		if (write(p[1], "x", 1) != 1) _exit(1);
		pause();
		_exit(0);
	}
	if (read(p[0], &c, 1) != 1) return 1;
	pid_t b = fork();
	if (b == 0) {
		struct tdb_context *t = open_it(path);
		TDB_DATA k = { (unsigned char *)"key", 3 };
		alarm(10);
		if (write(p[1], "y", 1) != 1) _exit(1);
		if (tdb_chainlock(t, k) != 0) { fprintf(stderr, "chainlock: %s\n", tdb_errorstr(t)); _exit(1); }
		tdb_chainunlock(t, k);
		if (tdb_lockall(t) != 0) { fprintf(stderr, "lockall after the holder died: %s\n", tdb_errorstr(t)); _exit(1); }
		tdb_unlockall(t);
		tdb_close(t);
		_exit(0);
	}
	if (read(p[0], &c, 1) != 1) return 1;
	usleep(300000);        /* b is now waiting for the allrecord mutex */
	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	int st;
	waitpid(b, &st, 0);
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) { printf("FAIL: the chainlock waiter is stuck after the allrecord holder died\n"); return 2; }
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) { printf("FAIL: lock error after the allrecord holder died\n"); return 1; }
	printf("PASS: chainlock and lockall work after the allrecord holder died\n");
	unlink(path);
	return 0;
}
