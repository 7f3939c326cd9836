/*
 * kbp_interpose.c — the libc symbols libkbpreload.so exports, and nothing
 * else: each asks the fd table whether the fd is accelerated and either
 * calls the kbp_* function that serves it or libc's own, unchanged. The
 * logic lives in the kbp_* files so tests can link it without LD_PRELOAD.
 * Results follow libc: -1 and errno.
 */
#include "kbp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <unistd.h>

#define KBP_EXPORT __attribute__((visibility("default")))

extern void __chk_fail(void) __attribute__((noreturn));

static long ret(long rc)
{
	if (rc < 0) {
		errno = (int)-rc;
		return -1;
	}
	return rc;
}

/* Whether KB_ACCEL has rules of each kind (none before kbp_init is done). */
static bool accel_listen(void)
{
	return kbp_ready() && (kbp_cfg.any_listen || kbp_cfg.nlisten);
}

static bool accel_connect(void)
{
	return kbp_ready() && kbp_cfg.nconnect;
}

/*
 * This process is a child that ran no fork handler of ours — vfork's,
 * posix_spawn's clone, _Fork's — so not the process kbstackd knows. It
 * shares (vfork) or copies the parent's fd table, and shares its region
 * row: what it closes or duplicates of ours goes to the kernel alone,
 * leaving the parent's table, holdings and requests as they were
 * (CPython's subprocess closes every fd with close_range in a vfork
 * child). A system call: asked only where the fd is ours, or a rule
 * would make it ours (kbp.pid is 0 until this process attaches).
 */
static bool foreign_child(void)
{
	return kbp.pid && getpid() != kbp.pid;
}

/* The accelerated path of the data calls, out of line: a call libc serves
 * then costs the table lookup and a jump, no stack frame (built for the
 * reference the other path takes: unit.preload_cost). */
#define KBP_SLOW __attribute__((noinline))

/*
 * Every call on an accelerated fd holds the socket (kbp_sock_hold) until
 * it returns: another thread's close() cannot free it underneath, and the
 * socket is closed by whichever drops the last reference (kbp.h).
 */
static long sock_recv(struct kbp_sock *s, const struct iovec *v, int n, int f)
{
	long rc = kbp_recv(s, v, n, f);

	kbp_sock_put(s);
	return ret(rc);
}

static long sock_send(struct kbp_sock *s, const struct iovec *v, int n, int f)
{
	long rc = kbp_send(s, v, n, f);

	kbp_sock_put(s);
	return ret(rc);
}

/* The result of a call on s, which is let go of. */
static long sock_done(struct kbp_sock *s, long rc)
{
	kbp_sock_put(s);
	return ret(rc);
}

KBP_EXPORT int socket(int d, int t, int p)
{
	return libc_socket(d, t, p);
}

KBP_EXPORT int bind(int fd, const struct sockaddr *a, socklen_t l)
{
	return libc_bind(fd, a, l);
}

KBP_EXPORT int listen(int fd, int backlog)
{
	if (!accel_listen() || foreign_child())
		return libc_listen(fd, backlog);
	return (int)ret(kbp_listen(fd, backlog));
}

/* accept4 with flags, or accept (accept4 false). */
static int sock_accept(int fd, struct sockaddr *a, socklen_t *l, int flags, bool accept4)
{
	struct kbp_sock *s = kbp_sock_hold(fd);

	if (s && s->listener && !foreign_child())
		return (int)sock_done(s, kbp_accept(fd, s, a, l, flags));
	if (s)
		kbp_sock_put(s);
	return accept4 ? libc_accept4(fd, a, l, flags) : libc_accept(fd, a, l);
}

KBP_EXPORT int accept4(int fd, struct sockaddr *a, socklen_t *l, int flags)
{
	return sock_accept(fd, a, l, flags, true);
}

KBP_EXPORT int accept(int fd, struct sockaddr *a, socklen_t *l)
{
	return sock_accept(fd, a, l, 0, false);
}

KBP_EXPORT int connect(int fd, const struct sockaddr *a, socklen_t l)
{
	int rc;

	if ((!accel_connect() && !kbp_sock_get(fd)) || foreign_child())
		return libc_connect(fd, a, l);
	rc = kbp_connect(fd, a, l);
	return rc == 1 ? libc_connect(fd, a, l) : (int)ret(rc);
}

static KBP_SLOW ssize_t read_kb(int fd, void *b, size_t n)
{
	struct kbp_sock *s = kbp_sock_hold(fd);
	struct iovec v = { b, n };

	return s ? sock_recv(s, &v, 1, 0) : libc_read(fd, b, n);
}

KBP_EXPORT ssize_t read(int fd, void *b, size_t n)
{
	return kbp_sock_get(fd) ? read_kb(fd, b, n) : libc_read(fd, b, n);
}

static KBP_SLOW ssize_t readv_kb(int fd, const struct iovec *v, int n)
{
	struct kbp_sock *s = kbp_sock_hold(fd);

	return s ? sock_recv(s, v, n, 0) : libc_readv(fd, v, n);
}

KBP_EXPORT ssize_t readv(int fd, const struct iovec *v, int n)
{
	return kbp_sock_get(fd) ? readv_kb(fd, v, n) : libc_readv(fd, v, n);
}

static KBP_SLOW ssize_t write_kb(int fd, const void *b, size_t n)
{
	struct kbp_sock *s = kbp_sock_hold(fd);
	struct iovec v = { (void *)b, n };

	return s ? sock_send(s, &v, 1, 0) : libc_write(fd, b, n);
}

KBP_EXPORT ssize_t write(int fd, const void *b, size_t n)
{
	return kbp_sock_get(fd) ? write_kb(fd, b, n) : libc_write(fd, b, n);
}

static KBP_SLOW ssize_t writev_kb(int fd, const struct iovec *v, int n)
{
	struct kbp_sock *s = kbp_sock_hold(fd);

	return s ? sock_send(s, v, n, 0) : libc_writev(fd, v, n);
}

KBP_EXPORT ssize_t writev(int fd, const struct iovec *v, int n)
{
	return kbp_sock_get(fd) ? writev_kb(fd, v, n) : libc_writev(fd, v, n);
}

static KBP_SLOW ssize_t recv_kb(int fd, void *b, size_t n, int f)
{
	struct kbp_sock *s = kbp_sock_hold(fd);
	struct iovec v = { b, n };

	return s ? sock_recv(s, &v, 1, f) : libc_recv(fd, b, n, f);
}

KBP_EXPORT ssize_t recv(int fd, void *b, size_t n, int f)
{
	return kbp_sock_get(fd) ? recv_kb(fd, b, n, f) : libc_recv(fd, b, n, f);
}

static KBP_SLOW ssize_t recvfrom_kb(int fd, void *b, size_t n, int f, struct sockaddr *a, socklen_t *l)
{
	struct kbp_sock *s = kbp_sock_hold(fd);
	struct iovec v = { b, n };
	ssize_t rc;

	if (!s)
		return libc_recvfrom(fd, b, n, f, a, l);
	rc = kbp_recv(s, &v, 1, f);
	if (rc >= 0 && a && l)
		kbp_sockname(s, true, a, l);
	return sock_done(s, rc);
}

KBP_EXPORT ssize_t recvfrom(int fd, void *b, size_t n, int f, struct sockaddr *a, socklen_t *l)
{
	return kbp_sock_get(fd) ? recvfrom_kb(fd, b, n, f, a, l) : libc_recvfrom(fd, b, n, f, a, l);
}

static KBP_SLOW ssize_t recvmsg_kb(int fd, struct msghdr *m, int f)
{
	struct kbp_sock *s = kbp_sock_hold(fd);
	ssize_t rc;

	if (!s)
		return libc_recvmsg(fd, m, f);
	rc = kbp_recv(s, m->msg_iov, (int)m->msg_iovlen, f);
	if (rc >= 0) {
		if (m->msg_name)
			kbp_sockname(s, true, m->msg_name, &m->msg_namelen);
		m->msg_controllen = 0;
		m->msg_flags = 0;
	}
	return sock_done(s, rc);
}

KBP_EXPORT ssize_t recvmsg(int fd, struct msghdr *m, int f)
{
	return kbp_sock_get(fd) ? recvmsg_kb(fd, m, f) : libc_recvmsg(fd, m, f);
}

static KBP_SLOW ssize_t send_kb(int fd, const void *b, size_t n, int f)
{
	struct kbp_sock *s = kbp_sock_hold(fd);
	struct iovec v = { (void *)b, n };

	return s ? sock_send(s, &v, 1, f) : libc_send(fd, b, n, f);
}

KBP_EXPORT ssize_t send(int fd, const void *b, size_t n, int f)
{
	return kbp_sock_get(fd) ? send_kb(fd, b, n, f) : libc_send(fd, b, n, f);
}

static KBP_SLOW ssize_t sendto_kb(int fd, const void *b, size_t n, int f, const struct sockaddr *a,
			       socklen_t l)
{
	struct kbp_sock *s = kbp_sock_hold(fd);
	struct iovec v = { (void *)b, n };

	/* A connected TCP socket ignores the address, as Linux does. */
	return s ? sock_send(s, &v, 1, f) : libc_sendto(fd, b, n, f, a, l);
}

KBP_EXPORT ssize_t sendto(int fd, const void *b, size_t n, int f, const struct sockaddr *a,
			  socklen_t l)
{
	return kbp_sock_get(fd) ? sendto_kb(fd, b, n, f, a, l) : libc_sendto(fd, b, n, f, a, l);
}

static KBP_SLOW ssize_t sendmsg_kb(int fd, const struct msghdr *m, int f)
{
	struct kbp_sock *s = kbp_sock_hold(fd);

	return s ? sock_send(s, m->msg_iov, (int)m->msg_iovlen, f) : libc_sendmsg(fd, m, f);
}

KBP_EXPORT ssize_t sendmsg(int fd, const struct msghdr *m, int f)
{
	int rc;

	/* fds sent along (SCM_RIGHTS): an accelerated connection cannot go */
	if (m && m->msg_controllen && kbp_ready() && (rc = kbp_pass_check(m)))
		return ret(rc);
	return kbp_sock_get(fd) ? sendmsg_kb(fd, m, f) : libc_sendmsg(fd, m, f);
}

static KBP_SLOW ssize_t sendfile_kb(int out, int in, off_t *off, size_t n)
{
	struct kbp_sock *s = kbp_sock_hold(out);

	return s ? sock_done(s, kbp_sendfile(s, in, off, n)) : libc_sendfile(out, in, off, n);
}

KBP_EXPORT ssize_t sendfile(int out, int in, off_t *off, size_t n)
{
	return kbp_sock_get(out) ? sendfile_kb(out, in, off, n) : libc_sendfile(out, in, off, n);
}

static KBP_SLOW ssize_t sendfile64_kb(int out, int in, off64_t *off, size_t n)
{
	struct kbp_sock *s = kbp_sock_hold(out);

	return s ? sock_done(s, kbp_sendfile(s, in, (off_t *)off, n))
		 : libc_sendfile64(out, in, off, n);
}

KBP_EXPORT ssize_t sendfile64(int out, int in, off64_t *off, size_t n)
{
	return kbp_sock_get(out) ? sendfile64_kb(out, in, off, n) : libc_sendfile64(out, in, off, n);
}

/* The fd is going away: release what the table held for it. */
static void fd_release(int fd)
{
	int *kind = kbp_fd_get(fd);

	if (!kind || foreign_child())
		return;
	if (*kind == KBP_K_EPOLL) {
		kbp_epoll_close(fd);
		return;
	}
	if (*kind == KBP_K_CTL) {
		kbp_ctl_closing(fd);
		return;
	}
	/* Of two threads closing fd at once, one takes the entry. */
	if ((kind = kbp_fd_take(fd)))
		kbp_sock_put((struct kbp_sock *)kind);
}

KBP_EXPORT int close(int fd)
{
	fd_release(fd);
	return libc_close(fd);
}

KBP_EXPORT int close_range(unsigned a, unsigned b, int f)
{
	unsigned fd;

	if (!(f & CLOSE_RANGE_CLOEXEC))
		for (fd = a; fd <= b && fd < (unsigned)kbp_fd_end(); fd++)
			fd_release((int)fd);
	return libc_close_range(a, b, f);
}

KBP_EXPORT int shutdown(int fd, int how)
{
	struct kbp_sock *s = kbp_sock_hold(fd);

	if (s && foreign_child()) {
		kbp_sock_put(s);
		s = NULL;
	}
	return s ? (int)sock_done(s, kbp_shutdown(s, how)) : libc_shutdown(fd, how);
}

KBP_EXPORT int getsockopt(int fd, int lv, int o, void *v, socklen_t *l)
{
	struct kbp_sock *s = kbp_sock_hold(fd);

	return s ? (int)sock_done(s, kbp_getsockopt(fd, s, lv, o, v, l))
		 : libc_getsockopt(fd, lv, o, v, l);
}

KBP_EXPORT int setsockopt(int fd, int lv, int o, const void *v, socklen_t l)
{
	struct kbp_sock *s = kbp_sock_hold(fd);

	if (s && foreign_child()) {
		kbp_sock_put(s);
		s = NULL;
	}
	return s ? (int)sock_done(s, kbp_setsockopt(fd, s, lv, o, v, l))
		 : libc_setsockopt(fd, lv, o, v, l);
}

/* getsockname (peer false) or getpeername; a listener's is the kernel's. */
static int sockname(int fd, bool peer, struct sockaddr *a, socklen_t *l)
{
	struct kbp_sock *s = kbp_sock_hold(fd);

	if (s && !s->listener)
		return (int)sock_done(s, kbp_sockname(s, peer, a, l));
	if (s)
		kbp_sock_put(s);
	return peer ? libc_getpeername(fd, a, l) : libc_getsockname(fd, a, l);
}

KBP_EXPORT int getsockname(int fd, struct sockaddr *a, socklen_t *l)
{
	return sockname(fd, false, a, l);
}

KBP_EXPORT int getpeername(int fd, struct sockaddr *a, socklen_t *l)
{
	return sockname(fd, true, a, l);
}

/* newfd now names what oldfd names. */
static int dup_done(int oldfd, int newfd)
{
	struct kbp_sock *s;

	if (newfd < 0)
		return newfd;
	if (kbp_sock_get(oldfd) && foreign_child())
		return newfd;
	fd_release(newfd); /* dup2/dup3 closed whatever newfd was */
	s = kbp_sock_hold(oldfd);
	if (s && newfd < kbp_fd_max())
		kbp_fd_set(newfd, s); /* the reference becomes newfd's */
	else if (s)
		kbp_sock_put(s);
	return newfd;
}

KBP_EXPORT int dup(int fd)
{
	return dup_done(fd, libc_dup(fd));
}

KBP_EXPORT int dup2(int a, int b)
{
	if (a == b)
		return libc_dup2(a, b);
	return dup_done(a, libc_dup2(a, b));
}

KBP_EXPORT int dup3(int a, int b, int f)
{
	return dup_done(a, libc_dup3(a, b, f));
}

KBP_EXPORT int epoll_create(int n)
{
	return libc_epoll_create(n);
}

KBP_EXPORT int epoll_create1(int f)
{
	return libc_epoll_create1(f);
}

KBP_EXPORT int epoll_ctl(int e, int op, int fd, struct epoll_event *ev)
{
	int rc;

	if (!kbp_sock_get(fd) || foreign_child())
		return libc_epoll_ctl(e, op, fd, ev);
	rc = kbp_epoll_ctl(e, op, fd, ev);
	return rc == 1 ? libc_epoll_ctl(e, op, fd, ev) : (int)ret(rc);
}

/* Once attached, every epoll instance waits the kb way: an accelerated fd
 * may be added to it by another thread while this one sleeps. */
KBP_EXPORT int epoll_wait(int e, struct epoll_event *ev, int n, int t)
{
	return kbp.r ? (int)ret(kbp_epoll_wait(e, ev, n, t, NULL)) : libc_epoll_wait(e, ev, n, t);
}

KBP_EXPORT int epoll_pwait(int e, struct epoll_event *ev, int n, int t, const sigset_t *s)
{
	return kbp.r ? (int)ret(kbp_epoll_wait(e, ev, n, t, s)) : libc_epoll_pwait(e, ev, n, t, s);
}

static int ts_ms(const struct timespec *t)
{
	long long ms;

	if (!t)
		return -1;
	ms = (long long)t->tv_sec * 1000 + (t->tv_nsec + 999999) / 1000000;
	return ms > 0x7fffffff ? 0x7fffffff : (int)ms;
}

KBP_EXPORT int epoll_pwait2(int e, struct epoll_event *ev, int n, const struct timespec *t,
			    const sigset_t *s)
{
	return kbp.r ? (int)ret(kbp_epoll_wait(e, ev, n, ts_ms(t), s))
		     : libc_epoll_pwait2(e, ev, n, t, s);
}

/* glibc declares poll's array write-only (access attribute); the kernel
 * reads fd and events from it, and so do we. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
KBP_EXPORT int poll(struct pollfd *p, nfds_t n, int t)
{
	if (!kbp.r || !kbp_poll_has_ours(p, n))
		return libc_poll(p, n, t);
	return (int)ret(kbp_poll(p, n, t, NULL));
}

KBP_EXPORT int ppoll(struct pollfd *p, nfds_t n, const struct timespec *t, const sigset_t *s)
{
	if (!kbp.r || !kbp_poll_has_ours(p, n))
		return libc_ppoll(p, n, t, s);
	return (int)ret(kbp_poll(p, n, ts_ms(t), s));
}
#pragma GCC diagnostic pop

/* select through poll when an accelerated fd is in the sets. */
static int select_kb(int nfds, fd_set *r, fd_set *w, fd_set *e, int ms, const sigset_t *mask)
{
	struct pollfd stackbuf[256] = { { 0 } }, *p = stackbuf;
	int fd, n = 0, rc, cnt = 0;

	if (nfds > 256 && !(p = calloc((size_t)nfds, sizeof(*p))))
		return -ENOMEM;
	for (fd = 0; fd < nfds; fd++) {
		short ev = 0;

		if (r && FD_ISSET(fd, r))
			ev |= POLLIN;
		if (w && FD_ISSET(fd, w))
			ev |= POLLOUT;
		if (e && FD_ISSET(fd, e))
			ev |= POLLPRI;
		if (ev)
			p[n++] = (struct pollfd){ fd, ev, 0 };
	}
	rc = kbp_poll(p, (nfds_t)n, ms, mask);
	if (rc >= 0) {
		int i;

		if (r)
			FD_ZERO(r);
		if (w)
			FD_ZERO(w);
		if (e)
			FD_ZERO(e);
		for (i = 0; i < n; i++) {
			if (r && (p[i].revents & (POLLIN | POLLHUP | POLLERR)) && (p[i].events & POLLIN))
				FD_SET(p[i].fd, r), cnt++;
			if (w && (p[i].revents & (POLLOUT | POLLERR)) && (p[i].events & POLLOUT))
				FD_SET(p[i].fd, w), cnt++;
			if (e && (p[i].revents & POLLPRI))
				FD_SET(p[i].fd, e), cnt++;
		}
		rc = cnt;
	}
	if (p != stackbuf)
		free(p);
	return rc;
}

static bool select_has_ours(int nfds, fd_set *r, fd_set *w, fd_set *e)
{
	int fd;

	if (!kbp.r)
		return false;
	for (fd = 0; fd < nfds && fd < FD_SETSIZE; fd++)
		if (((r && FD_ISSET(fd, r)) || (w && FD_ISSET(fd, w)) || (e && FD_ISSET(fd, e))) &&
		    kbp_sock_get(fd))
			return true;
	return false;
}

KBP_EXPORT int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *t)
{
	int ms = t ? (int)(t->tv_sec * 1000 + (t->tv_usec + 999) / 1000) : -1;

	if (!select_has_ours(n, r, w, e))
		return libc_select(n, r, w, e, t);
	return (int)ret(select_kb(n, r, w, e, ms, NULL));
}

KBP_EXPORT int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t,
		       const sigset_t *s)
{
	if (!select_has_ours(n, r, w, e))
		return libc_pselect(n, r, w, e, t, s);
	return (int)ret(select_kb(n, r, w, e, ts_ms(t), s));
}

static int fcntl_kb(int fd, int cmd, long arg, int (*real)(int, int, ...))
{
	struct kbp_sock *s = kbp_sock_get(fd);
	int rc;

	if (!s || (cmd != F_GETFL && cmd != F_SETFL)) {
		rc = real(fd, cmd, arg);
		return s && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) ? dup_done(fd, rc) : rc;
	}
	if (!(s = kbp_sock_hold(fd)))
		return real(fd, cmd, arg);
	if (cmd == F_GETFL) {
		rc = real(fd, cmd);
		if (rc >= 0)
			rc = (rc & ~O_NONBLOCK) | (kbq_ld(&s->nonblock) ? O_NONBLOCK : 0);
	} else {
		kbq_st(&s->nonblock, (arg & O_NONBLOCK) != 0);
		/* A listener's kernel socket stays non-blocking (accept polls it). */
		rc = real(fd, cmd, s->listener ? arg | O_NONBLOCK : arg);
	}
	kbp_sock_put(s);
	return rc;
}

KBP_EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	return fcntl_kb(fd, cmd, arg, libc_fcntl);
}

KBP_EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	return fcntl_kb(fd, cmd, arg, libc_fcntl64);
}

KBP_EXPORT int ioctl(int fd, unsigned long req, ...)
{
	struct kbp_sock *s;
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if ((req != FIONBIO && req != FIONREAD) || !arg || !(s = kbp_sock_hold(fd)))
		return libc_ioctl(fd, req, arg);
	if (req == FIONREAD) {
		*(int *)arg = kbp_fionread(s);
		return (int)sock_done(s, 0);
	}
	kbq_st(&s->nonblock, *(int *)arg != 0);
	if (s->listener)
		return (int)sock_done(s, 0);
	kbp_sock_put(s);
	return libc_ioctl(fd, req, arg);
}

/* ---- glibc's _FORTIFY_SOURCE entry points ---- */

KBP_EXPORT ssize_t __read_chk(int fd, void *b, size_t n, size_t bl)
{
	if (n > bl)
		__chk_fail();
	return read(fd, b, n);
}

KBP_EXPORT ssize_t __recv_chk(int fd, void *b, size_t n, size_t bl, int f)
{
	if (n > bl)
		__chk_fail();
	return recv(fd, b, n, f);
}

KBP_EXPORT ssize_t __recvfrom_chk(int fd, void *b, size_t n, size_t bl, int f,
				  struct sockaddr *a, socklen_t *l)
{
	if (n > bl)
		__chk_fail();
	return recvfrom(fd, b, n, f, a, l);
}

KBP_EXPORT int __poll_chk(struct pollfd *p, nfds_t n, int t, size_t pl)
{
	if (pl / sizeof(*p) < n)
		__chk_fail();
	return poll(p, n, t);
}

KBP_EXPORT int __ppoll_chk(struct pollfd *p, nfds_t n, const struct timespec *t,
			   const sigset_t *s, size_t pl)
{
	if (pl / sizeof(*p) < n)
		__chk_fail();
	return ppoll(p, n, t, s);
}
