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
 *
 * syscall() itself is interposed (kbp_syscall.c), so kb never calls it by
 * name: its raw system calls go through libc_syscall, looked up like the
 * rest; inside dlsym, before libc's was found, the instruction is made
 * here (kbp_sys6).
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
						: libc_syscall((sys), KBP_UNPAREN args)); \
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
		return (ret)libc_syscall((sys), fd, cmd, arg);                 \
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

/*
 * The system call instruction, for libc_syscall before libc's syscall was
 * found (inside dlsym): a -errno result, as the kernel gives it.
 */
static long kbp_sys6(long nr, long a, long b, long c, long d, long e, long f)
{
#if defined(__x86_64__)
	register long r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
	long rc;

	__asm__ volatile("syscall"
			 : "=a"(rc)
			 : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
			 : "rcx", "r11", "memory");
	return rc;
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = nr, x0 __asm__("x0") = a, x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c, x3 __asm__("x3") = d, x4 __asm__("x4") = e;
	register long x5 __asm__("x5") = f;

	__asm__ volatile("svc 0"
			 : "+r"(x0)
			 : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5)
			 : "memory");
	return x0;
#else
	return -ENOSYS;
#endif
}

/* syscall's six words, read as libc's own syscall reads them (registers
 * the caller did not set are read and ignored by the kernel). */
#define KBP_SYSCALL_ARGS(nr, w)                                                \
	do {                                                                   \
		va_list ap;                                                    \
		int i;                                                         \
									       \
		va_start(ap, nr);                                              \
		for (i = 0; i < 6; i++)                                        \
			(w)[i] = va_arg(ap, long);                             \
		va_end(ap);                                                    \
	} while (0)

static long raw_syscall(long nr, ...)
{
	long w[6], rc;

	KBP_SYSCALL_ARGS(nr, w);
	rc = kbp_sys6(nr, w[0], w[1], w[2], w[3], w[4], w[5]);
	if (rc < 0 && rc > -4096) {
		errno = (int)-rc;
		return -1;
	}
	return rc;
}

static long lazy_syscall(long nr, ...)
{
	long (*fn)(long nr, ...);
	long w[6];

	KBP_SYSCALL_ARGS(nr, w);
	*(void **)&fn = kbp_libc_lookup((void **)&libc_syscall, "syscall", (void *)raw_syscall);
	return fn(nr, w[0], w[1], w[2], w[3], w[4], w[5]);
}

long (*libc_syscall)(long nr, ...) = lazy_syscall;

void kbp_libc_resolve(void)
{
	kbp_libc_lookup((void **)&libc_syscall, "syscall", (void *)raw_syscall);
#define KBP_LIBC_RESOLVE(ret, name, ...)                                       \
	kbp_libc_lookup((void **)&libc_##name, #name, (void *)raw_##name);
	KBP_SYMS(KBP_LIBC_RESOLVE)
	KBP_SYMS_VARIADIC(KBP_LIBC_RESOLVE)
#undef KBP_LIBC_RESOLVE
}
