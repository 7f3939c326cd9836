/*
 * kbp_libc.c — libc's own functions as libkbpreload.so calls them: the
 * libc_<name> pointers of kbp_syms.h, each usable from the process's first
 * instruction. Not for anything else: no setting, no fd table here.
 *
 * Other libraries' constructors may run before kb's (ld.so orders them by
 * dependency, and a preloaded library is nobody's dependency), and they may
 * call read() or socket() — which are kb's. So no pointer is ever NULL:
 * each starts at a stub, lazy_<name>, that looks libc's function up
 * (dlsym(RTLD_NEXT)), stores it in the pointer and calls it. kbp_init
 * looks all of them up first thing, so later calls, signal handlers
 * included, go straight to libc. The hot path pays nothing for this: it
 * calls through the pointer as it always did.
 *
 * Races: two threads may look the same name up at once; both store the
 * same address. A pointer only ever changes from its stub to libc's
 * function, one aligned word, and both are right to call, so readers load
 * it plainly; nothing else is published with it (relaxed store).
 *
 * Recursion: dlsym may call into interposed symbols — it mallocs when a
 * lookup fails, a malloc of another preloaded library may read() a file
 * on its first call, a signal handler may write() while dlsym runs. A
 * thread must not enter dlsym again from there (it would recurse for ever
 * through that malloc, and ld.so's lock is held), so a per-thread flag
 * marks "inside dlsym", and a stub entered with it set makes the system
 * call of kbp_syms.h's table instead (ENOSYS where there is none). Raw
 * system calls, not glibc's __libc_* names: those are GLIBC_PRIVATE, and
 * dlvsym is dlsym with the same lock. The same system call serves when
 * libc lacks a name (epoll_pwait2 before glibc 2.35), stored once for all.
 */
#include "kbp.h"
#include "kbq_atomic.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Old system calls that newer architectures (arm64) lack: no fallback. */
#ifndef SYS_poll
#define SYS_poll KBP_NOSYS
#endif
#ifndef SYS_select
#define SYS_select KBP_NOSYS
#endif
#ifndef SYS_epoll_wait
#define SYS_epoll_wait KBP_NOSYS
#endif
#ifndef SYS_epoll_create
#define SYS_epoll_create KBP_NOSYS
#endif
#ifndef SYS_dup2
#define SYS_dup2 KBP_NOSYS
#endif

#define KBP_UNPAREN(...) __VA_ARGS__

/*
 * This thread is inside dlsym. volatile: the compiler sees that nothing
 * outside this file reads a static, and would drop the store before the
 * call to dlsym — but dlsym may come back here, as a signal handler may.
 * initial-exec: a preloaded library's TLS is in the static block, read
 * without a call into ld.so.
 */
static __thread volatile bool kbp_in_dlsym __attribute__((tls_model("initial-exec")));

static long kbp_nosys(void)
{
	errno = ENOSYS;
	return -1;
}

/*
 * The function to call for name: libc's (stored in *slot), or raw (its
 * system call) when this thread is inside dlsym (not stored: libc's may
 * be found later) or when libc has no such name (stored).
 */
static void *kbp_libc_lookup(void **slot, const char *name, void *raw)
{
	void *f;

	if (kbp_in_dlsym)
		return raw;
	kbp_in_dlsym = true;
	f = dlsym(RTLD_NEXT, name);
	kbp_in_dlsym = false;
	if (!f)
		f = raw;
	kbq_st(slot, f);
	return f;
}

/* raw_<name>: the system call; lazy_<name>: the pointer's first value. */
#define KBP_LIBC_STUBS(ret, name, params, args, sys)                           \
	static ret raw_##name params                                           \
	{                                                                      \
		return (ret)((sys) == KBP_NOSYS ? kbp_nosys()                  \
						: syscall((sys), KBP_UNPAREN args)); \
	}                                                                      \
	static ret lazy_##name params                                          \
	{                                                                      \
		ret (*fn) params;                                              \
									       \
		*(void **)&fn = kbp_libc_lookup((void **)&libc_##name, #name,   \
					       (void *)raw_##name);            \
		return fn args;                                                \
	}                                                                      \
	ret (*libc_##name) params = lazy_##name;
KBP_SYMS(KBP_LIBC_STUBS)
#undef KBP_LIBC_STUBS

/* The variadic ones take one word after cmd, as glibc's own read it. */
#define KBP_LIBC_STUBS_VA(ret, name, params, sys)                              \
	static ret raw_##name params                                           \
	{                                                                      \
		va_list ap;                                                    \
		void *arg;                                                     \
									       \
		va_start(ap, cmd);                                             \
		arg = va_arg(ap, void *);                                      \
		va_end(ap);                                                    \
		return (ret)syscall((sys), fd, cmd, arg);                      \
	}                                                                      \
	static ret lazy_##name params                                          \
	{                                                                      \
		ret (*fn) params;                                              \
		va_list ap;                                                    \
		void *arg;                                                     \
									       \
		va_start(ap, cmd);                                             \
		arg = va_arg(ap, void *);                                      \
		va_end(ap);                                                    \
		*(void **)&fn = kbp_libc_lookup((void **)&libc_##name, #name,   \
					       (void *)raw_##name);            \
		return fn(fd, cmd, arg);                                       \
	}                                                                      \
	ret (*libc_##name) params = lazy_##name;
KBP_SYMS_VARIADIC(KBP_LIBC_STUBS_VA)
#undef KBP_LIBC_STUBS_VA

void kbp_libc_resolve(void)
{
#define KBP_LIBC_RESOLVE(ret, name, ...)                                       \
	kbp_libc_lookup((void **)&libc_##name, #name, (void *)raw_##name);
	KBP_SYMS(KBP_LIBC_RESOLVE)
	KBP_SYMS_VARIADIC(KBP_LIBC_RESOLVE)
#undef KBP_LIBC_RESOLVE
}
