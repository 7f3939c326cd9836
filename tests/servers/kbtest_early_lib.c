/*
 * kbtest_early_lib — a shared library whose constructor uses sockets and
 * files the moment it runs, as libcap-ng's does (it read()s before main).
 * Under LD_PRELOAD=libkbpreload.so that constructor may run before kb's own,
 * so every interposed symbol must work before kb is initialized.
 *
 * kbtest_early_run() calls each symbol libkbpreload.so exports
 * (preload/kbp_syms.h) at least once, over loopback TCP, a pipe and a memfd,
 * and checks each result against what Linux does. The constructor
 *   - runs it (and says so on stderr first, so a test can see which
 *     constructor ran first: kb's prints its KB_ACCEL notice in its own),
 *   - runs a few of the calls from a signal handler,
 *   - starts a thread that keeps writing and reading a socketpair while
 *     the other constructors (kb's among them) run.
 * kbtest_early_finish(), called from main, stops the thread and returns
 * the number of failed checks of all of these. Not a server: only for the
 * start-up tests (tests/unit/preload_early.sh).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "kbtest_early.h"

/* glibc's fortified entry points, called here by name. */
extern ssize_t __read_chk(int fd, void *b, size_t n, size_t bl);
extern ssize_t __recv_chk(int fd, void *b, size_t n, size_t bl, int f);
extern ssize_t __recvfrom_chk(int fd, void *b, size_t n, size_t bl, int f,
			      struct sockaddr *a, socklen_t *l);
extern int __poll_chk(struct pollfd *p, nfds_t n, int t, size_t pl);
extern int __ppoll_chk(struct pollfd *p, nfds_t n, const struct timespec *t,
		       const sigset_t *s, size_t pl);

static int fails;

/* One line on stderr through the interposed write(), as any library would. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	(void)!write(2, line, (size_t)n);
}

static bool check(bool cond, const char *where, const char *what)
{
	if (!cond) {
		__atomic_fetch_add(&fails, 1, __ATOMIC_RELAXED);
		say("kbtest_early: FAIL: %s: %s (%s)", where, what, strerror(errno));
	}
	return cond;
}

/* b holds the one byte c, read by one of the many receive calls. */
static bool got(ssize_t n, const char *b, char c)
{
	return n == 1 && b[0] == c;
}

/* a (accepted end) has something to read within a second: poll family. */
static void check_readable(int a, const char *where)
{
	struct timespec ts = { 1, 0 };
	struct timeval tv = { 1, 0 };
	struct pollfd p = { a, POLLIN, 0 };
	fd_set r;

	check(poll(&p, 1, 1000) == 1 && (p.revents & POLLIN), where, "poll");
	check(ppoll(&p, 1, &ts, NULL) == 1, where, "ppoll");
	check(__poll_chk(&p, 1, 1000, sizeof(p)) == 1, where, "__poll_chk");
	check(__ppoll_chk(&p, 1, &ts, NULL, sizeof(p)) == 1, where, "__ppoll_chk");
	FD_ZERO(&r);
	FD_SET(a, &r);
	check(select(a + 1, &r, NULL, NULL, &tv) == 1 && FD_ISSET(a, &r), where, "select");
	FD_ZERO(&r);
	FD_SET(a, &r);
	check(pselect(a + 1, &r, NULL, NULL, &ts, NULL) == 1, where, "pselect");
}

static void check_epoll(int a, const char *where)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = a }, out[2];
	struct timespec ts = { 1, 0 };
	int e1 = epoll_create(1), e2 = epoll_create1(EPOLL_CLOEXEC);

	check(e1 >= 0 && e2 >= 0, where, "epoll_create, epoll_create1");
	check(epoll_ctl(e1, EPOLL_CTL_ADD, a, &ev) == 0, where, "epoll_ctl ADD");
	check(epoll_ctl(e2, EPOLL_CTL_ADD, a, &ev) == 0, where, "epoll_ctl ADD (2nd set)");
	check(epoll_wait(e1, out, 2, 1000) == 1 && out[0].data.fd == a, where, "epoll_wait");
	check(epoll_pwait(e2, out, 2, 1000, NULL) == 1, where, "epoll_pwait");
	check(epoll_pwait2(e1, out, 2, &ts, NULL) == 1, where, "epoll_pwait2");
	check(epoll_ctl(e1, EPOLL_CTL_DEL, a, NULL) == 0, where, "epoll_ctl DEL");
	check(close(e1) == 0 && close(e2) == 0, where, "close (epoll)");
}

/* Both ends of a loopback TCP connection through listen/accept(4). */
static bool tcp_pair(int l, bool use_accept4, int *c, int *a, const char *where)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);

	*c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!check(*c >= 0, where, "socket") ||
	    !check(getsockname(l, (struct sockaddr *)&sin, &sl) == 0, where, "getsockname"))
		return false;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (!check(connect(*c, (struct sockaddr *)&sin, sizeof(sin)) == 0, where, "connect"))
		return false;
	*a = use_accept4 ? accept4(l, NULL, NULL, SOCK_CLOEXEC) : accept(l, NULL, NULL);
	return check(*a >= 0, where, use_accept4 ? "accept4" : "accept");
}

static void check_data(int c, int a, const char *where)
{
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	char b[8] = "", b2[8] = "";
	struct iovec wv[2] = { { "v", 1 }, { "w", 1 } }, rv[2] = { { b, 1 }, { b2, 1 } };
	struct msghdr m = { .msg_iov = wv, .msg_iovlen = 1 };
	int n = -1;

	check(write(c, "a", 1) == 1 && got(read(a, b, 1), b, 'a'), where, "write, read");
	check(send(c, "b", 1, 0) == 1 && got(recv(a, b, 1, 0), b, 'b'), where, "send, recv");
	check(sendto(c, "c", 1, 0, NULL, 0) == 1 &&
	      got(recvfrom(a, b, 1, 0, (struct sockaddr *)&from, &fl), b, 'c'), where,
	      "sendto, recvfrom");
	check(sendmsg(c, &m, 0) == 1, where, "sendmsg");
	m.msg_iov = rv;
	check(got(recvmsg(a, &m, 0), b, 'v'), where, "recvmsg");
	check(writev(c, wv, 2) == 2 && readv(a, rv, 2) == 2 && b[0] == 'v' && b2[0] == 'w',
	      where, "writev, readv");
	check(write(c, "xyz", 3) == 3, where, "write 3");
	check_readable(a, where);
	check_epoll(a, where);
	check(ioctl(a, FIONREAD, &n) == 0 && n >= 1, where, "ioctl FIONREAD");
	check(got(__read_chk(a, b, 1, sizeof(b)), b, 'x'), where, "__read_chk");
	check(got(__recv_chk(a, b, 1, sizeof(b), 0), b, 'y'), where, "__recv_chk");
	check(got(__recvfrom_chk(a, b, 1, sizeof(b), 0, NULL, NULL), b, 'z'), where,
	      "__recvfrom_chk");
}

static void check_options(int c, int a, const char *where)
{
	struct sockaddr_in me, peer;
	socklen_t ml = sizeof(me), pl = sizeof(peer), ol = sizeof(int);
	int one = 1, v = 0, fl;
	char b[4];

	check(setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0 &&
	      getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v, &ol) == 0 && v, where,
	      "setsockopt, getsockopt");
	check(getsockname(c, (struct sockaddr *)&me, &ml) == 0 &&
	      getpeername(a, (struct sockaddr *)&peer, &pl) == 0 && me.sin_port == peer.sin_port,
	      where, "getsockname, getpeername");
	fl = fcntl(a, F_GETFL);
	check(fl >= 0 && fcntl(a, F_SETFL, fl | O_NONBLOCK) == 0 &&
	      (fcntl64(a, F_GETFL) & O_NONBLOCK), where, "fcntl, fcntl64");
	check(read(a, b, 1) == -1 && errno == EAGAIN, where, "read on an empty non-blocking socket");
}

static void check_fds(int c, int a, const char *where)
{
	int d = dup(a), d2 = dup(a), d3 = dup(a), mfd = memfd_create("kbtest_early", 0);
	off_t off = 0;
	off64_t off64 = 0;
	char b[8] = "";

	check(d >= 0 && d2 >= 0 && d3 >= 0, where, "dup");
	check(dup2(c, d2) == d2 && dup3(c, d3, O_CLOEXEC) == d3 &&
	      (fcntl(d3, F_GETFD) & FD_CLOEXEC), where, "dup2, dup3");
	check(mfd >= 0 && write(mfd, "12", 2) == 2, where, "memfd, write");
	check(sendfile(d2, mfd, &off, 1) == 1 && off == 1, where, "sendfile");
	check(sendfile64(d3, mfd, &off64, 2) == 2 && off64 == 2, where, "sendfile64");
	check(got(read(d, b, 1), b, '1') && got(read(d, b, 1), b, '1') &&
	      got(read(d, b, 1), b, '2'), where, "read what sendfile sent");
	check(shutdown(d2, SHUT_WR) == 0, where, "shutdown");
	fcntl(d, F_SETFL, 0);
	check(read(d, b, 1) == 0, where, "read after the peer's shutdown: EOF");
	check(close_range((unsigned)d2, (unsigned)d2, 0) == 0 && fcntl(d2, F_GETFD) == -1 &&
	      errno == EBADF, where, "close_range");
	check(close(d) == 0 && close(d3) == 0 && close(mfd) == 0, where, "close");
}

/* syscall() is kb's too: it routes the fd calls kb serves. */
static void check_syscall(int c, int a, const char *where)
{
	int d = (int)syscall(SYS_dup, a);
	char b[2] = "";

	check(d >= 0 && syscall(SYS_write, c, "s", 1) == 1 && syscall(SYS_read, d, b, 1) == 1 &&
	      b[0] == 's' && syscall(SYS_close, d) == 0, where, "syscall: dup, write, read, close");
	check(syscall(SYS_getpid) == getpid(), where, "syscall: getpid");
}

int kbtest_early_run(const char *where)
{
	struct sockaddr_in any = { .sin_family = AF_INET };
	int before = __atomic_load_n(&fails, __ATOMIC_RELAXED), l, c = -1, a = -1, c2, a2;

	/* The wildcard address and an ephemeral port: KB_ACCEL=listen:* matches. */
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (!check(l >= 0, where, "socket") ||
	    !check(bind(l, (struct sockaddr *)&any, sizeof(any)) == 0, where, "bind") ||
	    !check(listen(l, 8) == 0, where, "listen"))
		goto out;
	if (tcp_pair(l, false, &c, &a, where)) {
		check_data(c, a, where);
		check_options(c, a, where);
		check_syscall(c, a, where);
		check_fds(c, a, where);
	}
	if (tcp_pair(l, true, &c2, &a2, where)) {
		check(fcntl(a2, F_GETFD) & FD_CLOEXEC, where, "accept4 SOCK_CLOEXEC");
		close(c2);
		close(a2);
	}
out:
	if (c >= 0)
		close(c);
	if (a >= 0)
		close(a);
	if (l >= 0)
		close(l);
	return __atomic_load_n(&fails, __ATOMIC_RELAXED) - before;
}

/* ---- from a signal handler ----------------------------------------------- */

static int sig_pipe[2] = { -1, -1 };
static volatile sig_atomic_t sig_ok = -1;

static void on_usr1(int sig)
{
	char b = 0;
	int d = dup(sig_pipe[0]);

	sig_ok = write(sig_pipe[1], "s", 1) == 1 && read(sig_pipe[0], &b, 1) == 1 && b == 's' &&
		 d >= 0 && close(d) == 0;
}

static void check_signal(const char *where)
{
	struct sigaction sa = { .sa_handler = on_usr1 }, old;

	if (!check(pipe(sig_pipe) == 0, where, "pipe"))
		return;
	sigaction(SIGUSR1, &sa, &old);
	raise(SIGUSR1);
	sigaction(SIGUSR1, &old, NULL);
	check(sig_ok == 1, where, "write, read, dup, close in a signal handler");
	close(sig_pipe[0]);
	close(sig_pipe[1]);
}

/* ---- a thread started before kb's constructor (in one link order) ------- */

static pthread_t spinner;
static bool spinner_on;
static int spin_stop;
static long spin_rounds;

static void *spin(void *arg)
{
	int sv[2];
	char b = 0;

	(void)arg;
	if (!check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "thread", "socketpair"))
		return NULL;
	while (!__atomic_load_n(&spin_stop, __ATOMIC_ACQUIRE)) {
		struct pollfd p = { sv[1], POLLIN, 0 };

		if (!check(write(sv[0], "t", 1) == 1 && poll(&p, 1, 1000) == 1 &&
			   read(sv[1], &b, 1) == 1 && b == 't', "thread", "write, poll, read"))
			break;
		spin_rounds++;
	}
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

__attribute__((constructor)) static void kbtest_early_ctor(void)
{
	say("kbtest_early: constructor");
	if (kbtest_early_run("constructor") == 0)
		say("kbtest_early: constructor: ok");
	check_signal("constructor");
	spinner_on = check(pthread_create(&spinner, NULL, spin, NULL) == 0, "constructor",
			   "pthread_create");
}

int kbtest_early_finish(void)
{
	__atomic_store_n(&spin_stop, 1, __ATOMIC_RELEASE);
	if (spinner_on) {
		pthread_join(spinner, NULL);
		say("kbtest_early: thread: %ld rounds", spin_rounds);
	}
	return __atomic_load_n(&fails, __ATOMIC_RELAXED);
}
