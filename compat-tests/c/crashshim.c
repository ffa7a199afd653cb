/* LD_PRELOAD shim: once armed (compat_crash_arm(n) found with dlsym), the n-th
 * call to pwrite/pwrite64/write/fsync/fdatasync/msync/ftruncate raises SIGKILL
 * before doing anything.  Used to kill a process in the middle of
 * tdb_transaction_commit. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

static long armed_at;   /* 0: not armed */
static long calls;

void compat_crash_arm(long n) { armed_at = n; calls = 0; }
long compat_crash_calls(void) { return calls; }

static void tick(void) {
	if (armed_at > 0 && ++calls >= armed_at) {
		raise(SIGKILL);
	}
}

#define NEXT(name) static __typeof__(&name) real_##name; if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name)

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) { NEXT(pwrite); tick(); return real_pwrite(fd, buf, n, off); }
ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) { NEXT(pwrite64); tick(); return real_pwrite64(fd, buf, n, off); }
ssize_t write(int fd, const void *buf, size_t n) { NEXT(write); if (fd > 2) tick(); return real_write(fd, buf, n); }
int fsync(int fd) { NEXT(fsync); tick(); return real_fsync(fd); }
int fdatasync(int fd) { NEXT(fdatasync); tick(); return real_fdatasync(fd); }
int msync(void *a, size_t l, int f) { NEXT(msync); tick(); return real_msync(a, l, f); }
int ftruncate(int fd, off_t l) { NEXT(ftruncate); tick(); return real_ftruncate(fd, l); }
int ftruncate64(int fd, off_t l) { NEXT(ftruncate64); tick(); return real_ftruncate64(fd, l); }
