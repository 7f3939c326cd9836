/*
 * kbtest_early_hook — a preloaded library that wraps dlsym and, inside it,
 * calls write(), read(), close() and syscall() — which are kb's. It stands for what
 * dlsym can run into while libkbpreload.so looks libc's functions up: a
 * malloc of another library that reads a file, a signal handler. Preloaded
 * after libkbpreload.so (LD_PRELOAD=libkbpreload.so:this), so kb's calls
 * to dlsym land here and RTLD_NEXT, seen from here, is libc. At exit it
 * says how many of its calls worked: "kbtest_early_hook: N of N calls ok".
 * Only for tests/unit/preload_early.sh.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

static void *(*real_dlsym)(void *, const char *);
static int fds[2] = { -1, -1 };
static int calls, oks;

void *dlsym(void *handle, const char *name)
{
	char c = 0;
	int d;

	/* libc's since glibc 2.34, libdl's (x86_64's first version) before */
	if (!real_dlsym)
		real_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym",
								      "GLIBC_2.34");
	if (!real_dlsym)
		real_dlsym = (void *(*)(void *, const char *))dlvsym(RTLD_NEXT, "dlsym",
								      "GLIBC_2.2.5");
	if (fds[0] < 0 && pipe(fds))
		fds[0] = fds[1] = -1;
	calls++;
	d = dup(fds[0]);
	if (write(fds[1], "h", 1) == 1 && read(fds[0], &c, 1) == 1 && c == 'h' && d >= 0 &&
	    close(d) == 0 && syscall(SYS_getppid) == getppid())
		oks++;
	return real_dlsym ? real_dlsym(handle, name) : NULL;
}

__attribute__((destructor)) static void kbtest_early_hook_report(void)
{
	fprintf(stderr, "kbtest_early_hook: %d of %d calls ok\n", oks, calls);
}
