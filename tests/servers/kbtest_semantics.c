/*
 * kbtest_semantics — socket semantics an unmodified program relies on,
 * checked one scenario at a time. Linux is the reference: every scenario
 * passes on plain kernel sockets, and must pass the same way under
 * LD_PRELOAD=libkbpreload.so with the connection served by kbstackd.
 *
 *   kbtest_semantics SCENARIO --ctl DIR [--port P] [--target IP]
 *                    [--closed-port P] [--peer-port P]
 *       the side under test (under the preload in the server namespace);
 *       prints "ok - ..." / "FAIL - ..." per check, exits 1 on any failure
 *   kbtest_semantics peer --ctl DIR --host IP --port P
 *       the kernel peer (no preload, client namespace)
 *
 * The two sides talk over two FIFOs in DIR (DIR/cmd, DIR/ack), never over
 * the connection under test: the side under test writes one command line
 * ("connect 0", "send 0 5", "rst 1", ...) and the peer answers one line
 * ("ok ..." or "err ..."), so each step happens at a known moment.
 *
 * Scenarios: rcvtimeo eintr epoll_two_sets epoll_ctl_from_thread oneshot_et
 * rdhup_hup epoll_fork nonblock_connect fionread_peek dup_close select_mixed
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- settings ---------------------------------------------------------- */

static const char *ctl_dir;
static const char *host = "198.18.0.1";    /* peer: where to connect */
static const char *target = "198.18.0.2";  /* nonblock_connect: the peer's address */
static int port = 8080;
static int closed_port = 9;
static int peer_port = 9100;

/* ---- reporting --------------------------------------------------------- */

static int fails;

static void vsay(const char *tag, const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	printf("%s - %s\n", tag, line);
	fflush(stdout);
}

static void ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ok(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsay("ok", fmt, ap);
	va_end(ap);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	__atomic_fetch_add(&fails, 1, __ATOMIC_RELAXED);
	va_start(ap, fmt);
	vsay("FAIL", fmt, ap);
	va_end(ap);
}

static bool check(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool check(bool cond, const char *fmt, ...)
{
	va_list ap;

	if (!cond)
		__atomic_fetch_add(&fails, 1, __ATOMIC_RELAXED);
	va_start(ap, fmt);
	vsay(cond ? "ok" : "FAIL", fmt, ap);
	va_end(ap);
	return cond;
}

static long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

static void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) && errno == EINTR)
		;
}

static const char *err_name(int e)
{
	switch (e) {
	case 0: return "0";
	case EAGAIN: return "EAGAIN";
	case EINTR: return "EINTR";
	case EINPROGRESS: return "EINPROGRESS";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNRESET: return "ECONNRESET";
	case EPIPE: return "EPIPE";
	case ENOTCONN: return "ENOTCONN";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	default: return strerror(e);
	}
}

static const char *ep_str(uint32_t e)
{
	static __thread char b[128];

	snprintf(b, sizeof(b), "0x%x%s%s%s%s%s", e, e & EPOLLIN ? " IN" : "",
		 e & EPOLLOUT ? " OUT" : "", e & EPOLLRDHUP ? " RDHUP" : "",
		 e & EPOLLHUP ? " HUP" : "", e & EPOLLERR ? " ERR" : "");
	return b;
}

/* ---- the command channel (side under test) ------------------------------ */

static int cmd_fd = -1, ack_fd = -1;
static pthread_mutex_t peer_lock = PTHREAD_MUTEX_INITIALIZER;

static void fifo_paths(char *cmd, char *ack, size_t n)
{
	snprintf(cmd, n, "%s/cmd", ctl_dir);
	snprintf(ack, n, "%s/ack", ctl_dir);
}

static void channel_open(void)
{
	char c[4096], a[4096];

	fifo_paths(c, a, sizeof(c));
	cmd_fd = open(c, O_WRONLY | O_CLOEXEC);
	ack_fd = cmd_fd < 0 ? -1 : open(a, O_RDONLY | O_CLOEXEC);
	if (cmd_fd < 0 || ack_fd < 0) {
		fail("cannot open the command FIFOs in %s: %s", ctl_dir, strerror(errno));
		exit(1);
	}
}

/* Send one command to the peer; its one-line answer goes to reply. */
static void peer_call(char *reply, size_t len, const char *fmt, va_list ap)
{
	char line[512];
	size_t n = 0;
	int k = vsnprintf(line, sizeof(line) - 1, fmt, ap);

	line[k++] = '\n';
	pthread_mutex_lock(&peer_lock);
	if (write(cmd_fd, line, (size_t)k) != k) {
		fail("peer command channel: write: %s", strerror(errno));
		exit(1);
	}
	for (;;) {
		char ch;
		ssize_t r = read(ack_fd, &ch, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			fail("peer command channel closed (the peer died?)");
			exit(1);
		}
		if (ch == '\n')
			break;
		if (n + 1 < len)
			reply[n++] = ch;
	}
	reply[n] = '\0';
	pthread_mutex_unlock(&peer_lock);
}

static void peer_callf(char *reply, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void peer_callf(char *reply, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	peer_call(reply, len, fmt, ap);
	va_end(ap);
}

/* true when the peer answered "ok"; otherwise a failed check. */
static bool peer_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static bool peer_ok(const char *fmt, ...)
{
	char reply[512], what[512];
	va_list ap;

	va_start(ap, fmt);
	peer_call(reply, sizeof(reply), fmt, ap);
	va_end(ap);
	if (strncmp(reply, "ok", 2) == 0)
		return true;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	fail("peer: '%s' answered '%s'", what, reply);
	return false;
}

