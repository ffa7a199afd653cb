/* LD_PRELOAD shim: once armed (compat_crash_arm(n) found with dlsym), the n-th
 * call to pwrite/pwrite64/write/fsync/fdatasync/msync/ftruncate/fallocate/
 * posix_fallocate/futimens/utimensat/utime/utimes raises SIGKILL before doing
 * anything, after naming the call on stderr ("crashshim: kill at NAME").
 * Only calls made by the process that armed it count.
 * Used to kill a process in the middle of tdb_transaction_commit or of a
 * recovery. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>
#include <utime.h>

static long armed_at;   /* 0: not armed */
static long calls;
static pid_t armed_pid; /* children (e.g. a mutex probe) do not count */

void compat_crash_arm(long n) { armed_at = n; calls = 0; armed_pid = getpid(); }
long compat_crash_calls(void) { return calls; }

static void tick(const char *name) {
	if (armed_at > 0 && getpid() == armed_pid && ++calls >= armed_at) {
		static char line[96];
		int n = snprintf(line, sizeof line, "crashshim: kill at %s\n", name);
		ssize_t (*real_write)(int, const void *, size_t) = dlsym(RTLD_NEXT, "write");
		if (real_write && n > 0) (void)real_write(2, line, (size_t)n);
		raise(SIGKILL);
	}
}

#define NEXT(name) static __typeof__(&name) real_##name; if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name)

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) { NEXT(pwrite); tick("write"); return real_pwrite(fd, buf, n, off); }
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) { NEXT(pwrite64); tick("write"); return real_pwrite64(fd, buf, n, off); }
ssize_t write(int fd, const void *buf, size_t n) { NEXT(write); if (fd > 2) tick("write"); return real_write(fd, buf, n); }
int fsync(int fd) { NEXT(fsync); tick("fsync"); return real_fsync(fd); }
int fdatasync(int fd) { NEXT(fdatasync); tick("fsync"); return real_fdatasync(fd); }
int msync(void *a, size_t l, int f) { NEXT(msync); tick("msync"); return real_msync(a, l, f); }
int ftruncate(int fd, off_t l) { NEXT(ftruncate); tick("ftruncate"); return real_ftruncate(fd, l); }
int ftruncate64(int fd, off_t l) { NEXT(ftruncate64); tick("ftruncate"); return real_ftruncate64(fd, l); }
int fallocate(int fd, int m, off_t o, off_t l) { NEXT(fallocate); tick("fallocate"); return real_fallocate(fd, m, o, l); }
int fallocate64(int fd, int m, off_t o, off_t l) { NEXT(fallocate64); tick("fallocate"); return real_fallocate64(fd, m, o, l); }
int posix_fallocate(int fd, off_t o, off_t l) { NEXT(posix_fallocate); tick("fallocate"); return real_posix_fallocate(fd, o, l); }
int posix_fallocate64(int fd, off_t o, off_t l) { NEXT(posix_fallocate64); tick("fallocate"); return real_posix_fallocate64(fd, o, l); }
int futimens(int fd, const struct timespec t[2]) { NEXT(futimens); tick("utime"); return real_futimens(fd, t); }
int utimensat(int d, const char *p, const struct timespec t[2], int f) { NEXT(utimensat); tick("utime"); return real_utimensat(d, p, t, f); }
int utime(const char *p, const struct utimbuf *t) { NEXT(utime); tick("utime"); return real_utime(p, t); }
int utimes(const char *p, const struct timeval t[2]) { NEXT(utimes); tick("utime"); return real_utimes(p, t); }
