/*
 * kbp_syscall.c — syscall(), interposed. Programs that call the kernel
 * through libc's syscall() — libuv closes sockets with
 * syscall(SYS_close, fd) — would go around kb: kbstackd would keep the
 * connection and its slot, and kb's table would answer for an fd number
 * the kernel has since given to a file. So a call that names an fd kb
 * serves (or may come to serve: listen, connect, the waits once attached,
 * sendmsg's SCM_RIGHTS) goes to kb's symbol of that name, exactly as if
 * the program had called it; every other call goes to libc's syscall
 * unchanged, six words and all. The numbers are the kernel's, so the
 * routing is per architecture (#ifdef where one lacks a call).
 *
 * Not for kb's own system calls: those use libc_syscall (kbp_libc.c) and
 * never come here. What still goes around kb: system calls made without
 * libc (Go's runtime, io_uring, static binaries) — README.
 */
#include "kbp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <unistd.h>

#define KBP_EXPORT __attribute__((visibility("default")))

/* Is the fd word w (the kernel reads an unsigned int) in kb's table? */
static bool ours(long w)
{
	return kbp_fd_get((int)w) != NULL;
}

/* Attached: an fd may be ours in the sets the waits are given. */
static bool attached(void)
{
	return kbq_ld_acq(&kbp.r) != NULL;
}

#define I(k) ((int)w[k])
#define U(k) ((unsigned)w[k])
#define Z(k) ((size_t)w[k])
#define P(k) ((void *)w[k])

/* Route call when cond holds; otherwise on to libc's syscall. */
#define KBP_ROUTE(nr, cond, call)                                              \
	case nr:                                                               \
		if (cond)                                                      \
			return (long)(call);                                   \
		break;

/* pselect6's sixth word: the mask and its size, as the kernel takes them. */
struct kbp_sigmask_arg {
	const sigset_t *ss;
	size_t len;
};

/* glibc declares poll's array write-only (access attribute); see poll(). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
KBP_EXPORT long syscall(long nr, ...)
{
	va_list ap;
	long w[6];
	int i;

	va_start(ap, nr);
	for (i = 0; i < 6; i++)
		w[i] = va_arg(ap, long);
	va_end(ap);
	switch (nr) {
	KBP_ROUTE(SYS_read, ours(w[0]), read(I(0), P(1), Z(2)))
	KBP_ROUTE(SYS_write, ours(w[0]), write(I(0), P(1), Z(2)))
	KBP_ROUTE(SYS_readv, ours(w[0]), readv(I(0), P(1), I(2)))
	KBP_ROUTE(SYS_writev, ours(w[0]), writev(I(0), P(1), I(2)))
	KBP_ROUTE(SYS_recvfrom, ours(w[0]), recvfrom(I(0), P(1), Z(2), I(3), P(4), P(5)))
	KBP_ROUTE(SYS_sendto, ours(w[0]), sendto(I(0), P(1), Z(2), I(3), P(4), (socklen_t)w[5]))
	KBP_ROUTE(SYS_recvmsg, ours(w[0]), recvmsg(I(0), P(1), I(2)))
	KBP_ROUTE(SYS_sendmsg, attached(), sendmsg(I(0), P(1), I(2)))
	KBP_ROUTE(SYS_sendfile, ours(w[0]), sendfile(I(0), I(1), P(2), Z(3)))
	KBP_ROUTE(SYS_close, ours(w[0]), close(I(0)))
	KBP_ROUTE(SYS_close_range, attached(), close_range(U(0), U(1), I(2)))
	KBP_ROUTE(SYS_dup, ours(w[0]), dup(I(0)))
#ifdef SYS_dup2
	KBP_ROUTE(SYS_dup2, ours(w[0]) || ours(w[1]), dup2(I(0), I(1)))
#endif
	KBP_ROUTE(SYS_dup3, ours(w[0]) || ours(w[1]), dup3(I(0), I(1), I(2)))
	KBP_ROUTE(SYS_fcntl, ours(w[0]), fcntl(I(0), I(1), w[2]))
	KBP_ROUTE(SYS_ioctl, ours(w[0]), ioctl(I(0), (unsigned long)w[1], P(2)))
	KBP_ROUTE(SYS_shutdown, ours(w[0]), shutdown(I(0), I(1)))
	KBP_ROUTE(SYS_getsockopt, ours(w[0]), getsockopt(I(0), I(1), I(2), P(3), P(4)))
	KBP_ROUTE(SYS_setsockopt, ours(w[0]),
		  setsockopt(I(0), I(1), I(2), P(3), (socklen_t)w[4]))
	KBP_ROUTE(SYS_getsockname, ours(w[0]), getsockname(I(0), P(1), P(2)))
	KBP_ROUTE(SYS_getpeername, ours(w[0]), getpeername(I(0), P(1), P(2)))
	KBP_ROUTE(SYS_accept, ours(w[0]), accept(I(0), P(1), P(2)))
	KBP_ROUTE(SYS_accept4, ours(w[0]), accept4(I(0), P(1), P(2), I(3)))
	KBP_ROUTE(SYS_listen, kbp_ready(), listen(I(0), I(1)))
	KBP_ROUTE(SYS_connect, kbp_ready(), connect(I(0), P(1), (socklen_t)w[2]))
	KBP_ROUTE(SYS_epoll_ctl, ours(w[2]), epoll_ctl(I(0), I(1), I(2), P(3)))
#ifdef SYS_epoll_wait
	KBP_ROUTE(SYS_epoll_wait, attached(), epoll_wait(I(0), P(1), I(2), I(3)))
#endif
	KBP_ROUTE(SYS_epoll_pwait, attached(), epoll_pwait(I(0), P(1), I(2), I(3), P(4)))
#ifdef SYS_epoll_pwait2
	KBP_ROUTE(SYS_epoll_pwait2, attached(), epoll_pwait2(I(0), P(1), I(2), P(3), P(4)))
#endif
#ifdef SYS_poll
	KBP_ROUTE(SYS_poll, attached(), poll(P(0), (nfds_t)w[1], I(2)))
#endif
	KBP_ROUTE(SYS_ppoll, attached(), ppoll(P(0), (nfds_t)w[1], P(2), P(3)))
#ifdef SYS_select
	KBP_ROUTE(SYS_select, attached(), select(I(0), P(1), P(2), P(3), P(4)))
#endif
	KBP_ROUTE(SYS_pselect6, attached(),
		  pselect(I(0), P(1), P(2), P(3), P(4),
			  w[5] ? ((const struct kbp_sigmask_arg *)w[5])->ss : NULL))
	default:
		break;
	}
	return libc_syscall(nr, w[0], w[1], w[2], w[3], w[4], w[5]);
}
#pragma GCC diagnostic pop
