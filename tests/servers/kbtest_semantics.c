/*
 * kbtest_semantics — socket semantics an unmodified program relies on,
 * checked one scenario at a time. Linux is the reference: every scenario
 * passes on plain kernel sockets, and must pass the same way under
 * LD_PRELOAD=libkbpreload.so with the connection served by kbstackd.
 *
 *   kbtest_semantics SCENARIO --ctl DIR [--port P] [--target IP]
 *                    [--closed-port P] [--peer-port P] [--tw-ms MS] [--pcbs N]
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
 * rdhup_hup epoll_fork nonblock_connect fionread_peek dup_close select_mixed;
 * in kbtest_lifecycle.c (what kbtest_semantics.h lends it): late_close_reused
 * late_close_reused_busy late_close_expired late_close_exhausted; in
 * kbtest_overflow.c: accept_overflow high_fd.
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

#include "kbtest_semantics.h"

/* ---- settings ---------------------------------------------------------- */

static const char *ctl_dir;
static const char *host = "198.18.0.1";    /* peer: where to connect */
static const char *target = "198.18.0.2";  /* nonblock_connect: the peer's address */
int port = 8080;
static int closed_port = 9;
static int peer_port = 9100;
long tw_ms;
int pcbs;

/* ---- reporting --------------------------------------------------------- */

static int fails;

static void vsay(const char *tag, const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	printf("%s - %s\n", tag, line);
	fflush(stdout);
}

void fail(const char *fmt, ...)
{
	va_list ap;

	__atomic_fetch_add(&fails, 1, __ATOMIC_RELAXED);
	va_start(ap, fmt);
	vsay("FAIL", fmt, ap);
	va_end(ap);
}

bool check(bool cond, const char *fmt, ...)
{
	va_list ap;

	if (!cond)
		__atomic_fetch_add(&fails, 1, __ATOMIC_RELAXED);
	va_start(ap, fmt);
	vsay(cond ? "ok" : "FAIL", fmt, ap);
	va_end(ap);
	return cond;
}

long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

void sleep_ms(long ms)
{
	struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) && errno == EINTR)
		;
}

const char *err_name(int e)
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

void peer_callf(char *reply, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	peer_call(reply, len, fmt, ap);
	va_end(ap);
}

/* true when the peer answered "ok"; otherwise a failed check. */
bool peer_ok(const char *fmt, ...)
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


/* The peer reads from its connection idx until it has n bytes, sees EOF or
 * ms pass. The bytes (printable text only) go to out; *eof says whether it
 * saw EOF. Returns the byte count, -1 when the peer reports an error. */
int peer_recv(int idx, int n, int ms, char *out, size_t len, bool *eof)
{
	char reply[2048];
	int cnt = -1, e = 0, off = 0;

	peer_callf(reply, sizeof(reply), "recv %d %d %d", idx, n, ms);
	out[0] = '\0';
	if (eof)
		*eof = false;
	if (sscanf(reply, "ok %d %d %n", &cnt, &e, &off) < 2) {
		fail("peer: 'recv %d %d %d' answered '%s'", idx, n, ms, reply);
		return -1;
	}
	snprintf(out, len, "%s", off ? reply + off : "");
	if (eof)
		*eof = e != 0;
	return cnt;
}

/* ---- a watchdog: if a blocking call under test does not return in time,
 * the peer sends one byte on its connection so the call returns (and the
 * scenario reports the failure instead of hanging). ---------------------- */

struct watchdog {
	pthread_t t;
	pthread_mutex_t m;
	pthread_cond_t c;
	bool done, fired;
	int idx;
	long ms;
};

static void *wd_main(void *arg)
{
	struct watchdog *w = arg;
	struct timespec dl;
	bool fire;

	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += w->ms / 1000;
	dl.tv_nsec += (w->ms % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->m);
	while (!w->done && pthread_cond_timedwait(&w->c, &w->m, &dl) != ETIMEDOUT)
		;
	fire = !w->done;
	w->fired = fire;
	pthread_mutex_unlock(&w->m);
	if (fire) {
		char reply[128];

		peer_callf(reply, sizeof(reply), "send %d 1", w->idx);
	}
	return NULL;
}

static void wd_start(struct watchdog *w, int idx, long ms)
{
	pthread_condattr_t a;

	memset(w, 0, sizeof(*w));
	w->idx = idx;
	w->ms = ms;
	pthread_mutex_init(&w->m, NULL);
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&w->c, &a);
	pthread_condattr_destroy(&a);
	pthread_create(&w->t, NULL, wd_main, w);
}

/* true if it fired */
static bool wd_stop(struct watchdog *w)
{
	pthread_mutex_lock(&w->m);
	w->done = true;
	pthread_cond_signal(&w->c);
	pthread_mutex_unlock(&w->m);
	pthread_join(w->t, NULL);
	pthread_cond_destroy(&w->c);
	pthread_mutex_destroy(&w->m);
	return w->fired;
}

/* ---- socket helpers (side under test) ---------------------------------- */

int listen_on(int p)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p) };
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 16)) {
		fail("listen on port %d: %s", p, strerror(errno));
		exit(1);
	}
	return s;
}

/* kbtest_semantics.h: the peer connects, from lport unless 0; we accept */
int accept_peer_from(int l, int idx, int lport, int *pport)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	struct pollfd p = { l, POLLIN, 0 };
	char reply[512];
	int c;

	peer_callf(reply, sizeof(reply), "connect %d %d", idx, lport);
	if (strncmp(reply, "ok", 2) != 0) {
		fail("peer: 'connect %d %d' answered '%s'", idx, lport, reply);
		return -1;
	}
	if (poll(&p, 1, 3000) != 1) {
		fail("the peer's connection %d did not reach accept within 3 s", idx);
		return -1;
	}
	c = accept(l, (struct sockaddr *)&a, &al);
	if (c < 0)
		fail("accept: %s", strerror(errno));
	else if (pport)
		*pport = ntohs(a.sin_port);
	return c;
}

/* The peer connects (its connection idx); we accept it. -1 on failure. */
static int accept_peer(int l, int idx)
{
	return accept_peer_from(l, idx, 0, NULL);
}

/* kbtest_semantics.h: until n bytes, EOF, an error or ms pass */
int read_until(int fd, char *buf, int n, int ms, bool *eof, int *err)
{
	long end = now_ms() + ms;
	int got = 0, e = 0;
	bool fin = false;

	while (got < n) {
		struct pollfd p = { fd, POLLIN, 0 };
		long left = end - now_ms();
		ssize_t r;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		r = recv(fd, buf + got, (size_t)(n - got), MSG_DONTWAIT);
		if (r == 0) {
			fin = true;
			break;
		}
		if (r < 0 && errno != EAGAIN && errno != EINTR) {
			e = errno;
			break;
		}
		if (r > 0)
			got += (int)r;
	}
	if (eof)
		*eof = fin;
	if (err)
		*err = e;
	return got;
}

int read_n(int fd, char *buf, int n, int ms)
{
	return read_until(fd, buf, n, ms, NULL, NULL);
}

void pattern(char *b, int n)
{
	int i;

	for (i = 0; i < n; i++)
		b[i] = (char)('a' + i % 26);
}

/* epoll_wait, and "n, data, events" of what it returned, for messages */
static int ep_wait(int ep, struct epoll_event *ev, int max, int ms, char *desc, size_t len)
{
	int n = epoll_wait(ep, ev, max, ms), e = errno, i;
	size_t off;

	off = (size_t)snprintf(desc, len, "n=%d", n);
	if (n < 0)
		snprintf(desc + off, len - off, " %s", err_name(e));
	for (i = 0; i < n && off < len; i++)
		off += (size_t)snprintf(desc + off, len - off, " [data=0x%llx %s]",
					(unsigned long long)ev[i].data.u64, ep_str(ev[i].events));
	errno = e;
	return n;
}

/* true when the result is exactly one event with tag and all of want set */
static bool ep_one(int n, const struct epoll_event *ev, uint64_t tag, uint32_t want)
{
	return n == 1 && ev[0].data.u64 == tag && (ev[0].events & want) == want;
}

/* ---- a. SO_RCVTIMEO ---------------------------------------------------- */

static void sc_rcvtimeo(void)
{
	struct timeval tv = { 0, 200000 };
	struct watchdog w;
	char buf[64];
	int l = listen_on(port), c = accept_peer(l, 0), e;
	long t0, dt;
	ssize_t n;
	bool fired;

	if (c < 0)
		return;
	check(setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0,
	      "setsockopt SO_RCVTIMEO 200 ms on the accepted connection");
	wd_start(&w, 0, 3000);
	t0 = now_ms();
	n = recv(c, buf, sizeof(buf), 0);
	e = errno;
	dt = now_ms() - t0;
	fired = wd_stop(&w);
	check(n == -1 && (e == EAGAIN || e == EWOULDBLOCK),
	      "blocking recv, peer silent: -1 EAGAIN (got %zd%s%s%s)", n, n < 0 ? " " : "",
	      n < 0 ? err_name(e) : "", fired ? "; returned only when the watchdog made the "
	      "peer send a byte after 3 s" : "");
	check(dt >= 150 && dt <= 1500, "the timeout took %ld ms (want 150..1500)", dt);
	check(peer_ok("send 0 2") && read_n(c, buf, 2, 2000) == 2,
	      "the connection still works after the timeout (2 bytes read)");
	close(c);
	close(l);
}

/* ---- b. EINTR ---------------------------------------------------------- */

static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1 = 1;
}

static void *kicker(void *arg)
{
	sleep_ms(100);
	pthread_kill(*(pthread_t *)arg, SIGUSR1);
	return NULL;
}

static void sc_eintr(void)
{
	struct sigaction sa;
	struct watchdog w;
	pthread_t self = pthread_self(), k;
	char buf[64];
	int l = listen_on(port), c = accept_peer(l, 0), e;
	long t0, dt;
	ssize_t n;
	bool fired;

	if (c < 0)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART */
	sigaction(SIGUSR1, &sa, NULL);
	wd_start(&w, 0, 3000);
	pthread_create(&k, NULL, kicker, &self);
	t0 = now_ms();
	n = recv(c, buf, sizeof(buf), 0);
	e = errno;
	dt = now_ms() - t0;
	fired = wd_stop(&w);
	pthread_join(k, NULL);
	check(n == -1 && e == EINTR,
	      "blocking recv interrupted by SIGUSR1 (handler without SA_RESTART): -1 EINTR "
	      "(got %zd%s%s%s)", n, n < 0 ? " " : "", n < 0 ? err_name(e) : "",
	      fired ? "; returned only when the watchdog made the peer send a byte after 3 s" : "");
	check(got_usr1, "the SIGUSR1 handler ran");
	check(dt >= 80 && dt < 1500, "recv returned %ld ms after it began (signal at 100 ms)", dt);
	check(peer_ok("send 0 2") && read_n(c, buf, 2, 2000) >= 1,
	      "the connection still works after EINTR");
	close(c);
	close(l);
}

/* ---- c. one fd in two epoll sets --------------------------------------- */

static void sc_epoll_two_sets(void)
{
	struct epoll_event ev[4], a = { .events = EPOLLIN, .data.u64 = 0xA1 },
			       b = { .events = EPOLLIN, .data.u64 = 0xA2 };
	char d1[256], d2[256], buf[64];
	int l = listen_on(port), c = accept_peer(l, 0), ep1, ep2, n1, n2;

	if (c < 0)
		return;
	ep1 = epoll_create1(0);
	ep2 = epoll_create1(0);
	check(epoll_ctl(ep1, EPOLL_CTL_ADD, c, &a) == 0 && epoll_ctl(ep2, EPOLL_CTL_ADD, c, &b) == 0,
	      "the accepted fd added to two epoll instances");
	n1 = ep_wait(ep1, ev, 4, 100, d1, sizeof(d1));
	n2 = ep_wait(ep2, ev, 4, 100, d2, sizeof(d2));
	check(n1 == 0 && n2 == 0, "nothing reported before data arrives (%s; %s)", d1, d2);
	peer_ok("send 0 10");
	n1 = ep_wait(ep1, ev, 4, 2000, d1, sizeof(d1));
	check(ep_one(n1, ev, 0xA1, EPOLLIN), "set 1 reports EPOLLIN with its own data 0xA1 (%s)", d1);
	n2 = ep_wait(ep2, ev, 4, 2000, d2, sizeof(d2));
	check(ep_one(n2, ev, 0xA2, EPOLLIN), "set 2 reports EPOLLIN with its own data 0xA2 (%s)", d2);
	n1 = ep_wait(ep1, ev, 4, 0, d1, sizeof(d1));
	n2 = ep_wait(ep2, ev, 4, 0, d2, sizeof(d2));
	check(ep_one(n1, ev, 0xA2, EPOLLIN) || ep_one(n1, ev, 0xA1, EPOLLIN),
	      "level-triggered: set 1 reports it again while unread (%s)", d1);
	check(ep_one(n2, ev, 0xA2, EPOLLIN), "level-triggered: set 2 reports it again (%s)", d2);
	check(read_n(c, buf, 10, 2000) == 10, "the 10 bytes read");
	n1 = ep_wait(ep1, ev, 4, 100, d1, sizeof(d1));
	n2 = ep_wait(ep2, ev, 4, 100, d2, sizeof(d2));
	check(n1 == 0 && n2 == 0, "nothing reported once read (%s; %s)", d1, d2);
	close(ep1);
	peer_ok("send 0 3");
	n2 = ep_wait(ep2, ev, 4, 2000, d2, sizeof(d2));
	check(ep_one(n2, ev, 0xA2, EPOLLIN), "after closing set 1, set 2 still reports new data (%s)",
	      d2);
	close(ep2);
	close(c);
	close(l);
}

/* ---- d. epoll_ctl ADD from another thread wakes the waiter -------------- */

struct ep_waiter {
	int ep, n, err;
	struct epoll_event ev[4];
	long t_end;
};

static void *ep_waiter_main(void *arg)
{
	struct ep_waiter *w = arg;

	w->n = epoll_wait(w->ep, w->ev, 4, 3000);
	w->err = errno;
	w->t_end = now_ms();
	return NULL;
}

static void sc_epoll_ctl_from_thread(void)
{
	static const char *what[2] = { "empty epoll", "epoll holding the idle listener" };
	struct pollfd p;
	int l = listen_on(port), c = accept_peer(l, 0), v;

	if (c < 0)
		return;
	peer_ok("send 0 5");
	p = (struct pollfd){ c, POLLIN, 0 };
	if (!check(poll(&p, 1, 2000) == 1, "data pending on the accepted fd"))
		return;
	for (v = 0; v < 2; v++) {
		struct epoll_event e = { .events = EPOLLIN, .data.u64 = 0xD0 + (uint64_t)v }, ev[4];
		struct ep_waiter w = { .ep = epoll_create1(0) };
		pthread_t t;
		char desc[256];
		long t_add;
		int i, n;
		bool got = false;

		if (v == 1) {
			struct epoll_event le = { .events = EPOLLIN, .data.u64 = 0x1157 };

			epoll_ctl(w.ep, EPOLL_CTL_ADD, l, &le);
		}
		pthread_create(&t, NULL, ep_waiter_main, &w);
		sleep_ms(100);
		t_add = now_ms();
		if (!check(epoll_ctl(w.ep, EPOLL_CTL_ADD, c, &e) == 0, "%s: epoll_ctl ADD from thread B",
			   what[v]))
			fail("epoll_ctl: %s", strerror(errno));
		pthread_join(t, NULL);
		for (i = 0; i < w.n; i++)
			got |= w.ev[i].data.u64 == e.data.u64 && (w.ev[i].events & EPOLLIN);
		{
			size_t off = (size_t)snprintf(desc, sizeof(desc), "n=%d", w.n);

			for (i = 0; i < w.n && off < sizeof(desc); i++)
				off += (size_t)snprintf(desc + off, sizeof(desc) - off,
							" [data=0x%llx %s]",
							(unsigned long long)w.ev[i].data.u64,
							ep_str(w.ev[i].events));
		}
		check(got && w.t_end - t_add < 1000,
		      "%s: thread A's epoll_wait(3000) returns the fd ADDed with data pending, "
		      "%ld ms after the ADD (%s%s)", what[v], w.t_end - t_add, desc,
		      w.n < 0 ? strerror(w.err) : "");
		for (i = 0; i < w.n; i++)
			if (w.ev[i].data.u64 != e.data.u64 && w.ev[i].data.u64 != 0x1157)
				fail("%s: epoll_wait returned an event the application never "
				     "registered (data=0x%llx)", what[v],
				     (unsigned long long)w.ev[i].data.u64);
		n = ep_wait(w.ep, ev, 4, 0, desc, sizeof(desc));
		check(ep_one(n, ev, e.data.u64, EPOLLIN), "%s: a later epoll_wait(0) reports it (%s)",
		      what[v], desc);
		close(w.ep);
	}
	close(c);
	close(l);
}

/* ---- e. EPOLLET and EPOLLONESHOT --------------------------------------- */

static void sc_oneshot_et(void)
{
	struct epoll_event ev[4], e = { .events = EPOLLIN | EPOLLET, .data.u64 = 0xE7 };
	char d[256], buf[64];
	int l = listen_on(port), c = accept_peer(l, 0), ep, n;

	if (c < 0)
		return;
	ep = epoll_create1(0);
	check(epoll_ctl(ep, EPOLL_CTL_ADD, c, &e) == 0, "EPOLLIN|EPOLLET added");
	n = ep_wait(ep, ev, 4, 200, d, sizeof(d));
	check(n == 0, "ET: nothing before data (%s)", d);
	peer_ok("send 0 5");
	n = ep_wait(ep, ev, 4, 2000, d, sizeof(d));
	check(ep_one(n, ev, 0xE7, EPOLLIN), "ET: data arrives: reported once (%s)", d);
	n = ep_wait(ep, ev, 4, 200, d, sizeof(d));
	check(n == 0, "ET: not reported again without new data, data still unread (%s)", d);
	peer_ok("send 0 5");
	n = ep_wait(ep, ev, 4, 2000, d, sizeof(d));
	check(ep_one(n, ev, 0xE7, EPOLLIN), "ET: new data: reported again (%s)", d);
	n = ep_wait(ep, ev, 4, 200, d, sizeof(d));
	check(n == 0, "ET: and then not again (%s)", d);
	check(read_n(c, buf, 10, 2000) == 10, "ET: the 10 bytes read");

	e.events = EPOLLIN | EPOLLONESHOT;
	e.data.u64 = 0x0E;
	check(epoll_ctl(ep, EPOLL_CTL_MOD, c, &e) == 0, "MOD to EPOLLIN|EPOLLONESHOT");
	n = ep_wait(ep, ev, 4, 200, d, sizeof(d));
	check(n == 0, "ONESHOT: nothing before data (%s)", d);
	peer_ok("send 0 5");
	n = ep_wait(ep, ev, 4, 2000, d, sizeof(d));
	check(ep_one(n, ev, 0x0E, EPOLLIN), "ONESHOT: data arrives: reported (%s)", d);
	n = ep_wait(ep, ev, 4, 200, d, sizeof(d));
	check(n == 0, "ONESHOT: not reported again though unread (%s)", d);
	peer_ok("send 0 5");
	n = ep_wait(ep, ev, 4, 300, d, sizeof(d));
	check(n == 0, "ONESHOT: not reported after new data either (%s)", d);
	check(epoll_ctl(ep, EPOLL_CTL_MOD, c, &e) == 0, "ONESHOT: re-armed with EPOLL_CTL_MOD");
	n = ep_wait(ep, ev, 4, 2000, d, sizeof(d));
	check(ep_one(n, ev, 0x0E, EPOLLIN), "ONESHOT: reported again after the MOD (%s)", d);
	n = ep_wait(ep, ev, 4, 200, d, sizeof(d));
	check(n == 0, "ONESHOT: and once only (%s)", d);
	close(ep);
	close(c);
	close(l);
}

/* ---- f. EPOLLRDHUP on half-close, EPOLLHUP/EPOLLERR on reset ------------ */

static void sc_rdhup_hup(void)
{
	struct epoll_event ev[4], e = { .events = EPOLLIN | EPOLLRDHUP, .data.u64 = 0xF0 };
	char d[256], buf[64], got[256];
	int l = listen_on(port), c0 = accept_peer(l, 0), c1 = accept_peer(l, 1), ep0, ep1, n, er;
	ssize_t r;

	if (c0 < 0 || c1 < 0)
		return;
	ep0 = epoll_create1(0);
	ep1 = epoll_create1(0);
	epoll_ctl(ep0, EPOLL_CTL_ADD, c0, &e);
	e.data.u64 = 0xF1;
	epoll_ctl(ep1, EPOLL_CTL_ADD, c1, &e);

	peer_ok("shutwr 0");
	n = ep_wait(ep0, ev, 4, 2000, d, sizeof(d));
	check(ep_one(n, ev, 0xF0, EPOLLIN | EPOLLRDHUP),
	      "peer's shutdown(SHUT_WR): EPOLLIN|EPOLLRDHUP reported (%s)", d);
	check(n == 1 && !(ev[0].events & (EPOLLHUP | EPOLLERR)),
	      "half-close alone: no EPOLLHUP, no EPOLLERR (%s)", d);
	r = recv(c0, buf, sizeof(buf), 0);
	check(r == 0, "read after the peer's FIN returns 0 (got %zd%s%s)", r, r < 0 ? " " : "",
	      r < 0 ? err_name(errno) : "");
	check(send(c0, "late", 4, MSG_NOSIGNAL) == 4 && peer_recv(0, 4, 2000, got, sizeof(got), NULL) == 4 &&
	      strcmp(got, "late") == 0, "our side still sends after the peer's half-close");

	peer_ok("rst 1");
	n = ep_wait(ep1, ev, 4, 2000, d, sizeof(d));
	check(n == 1 && ev[0].data.u64 == 0xF1 && (ev[0].events & (EPOLLHUP | EPOLLERR)),
	      "peer's reset (SO_LINGER 0 close): EPOLLHUP/EPOLLERR reported (%s)", d);
	r = recv(c1, buf, sizeof(buf), 0);
	er = errno;
	check(r == -1 && er == ECONNRESET, "recv after the reset fails with ECONNRESET (got %zd%s%s)",
	      r, r < 0 ? " " : "", r < 0 ? err_name(er) : "");
	close(ep0);
	close(ep1);
	close(c0);
	close(c1);
	close(l);
}

/* ---- g. an epoll set with a listener, inherited across fork() ----------- */

static int child_serve(int ep, int l)
{
	struct epoll_event ev[4];
	struct timeval tv = { 3, 0 };
	char d[256], buf[16];
	int n, c, bad = 0;

	n = ep_wait(ep, ev, 4, 5000, d, sizeof(d));
	bad += !check(ep_one(n, ev, 0x9F, EPOLLIN),
		      "child: epoll_wait on the inherited set reports the listener (%s)", d);
	c = accept4(l, NULL, NULL, 0);
	bad += !check(c >= 0, "child: accept the connection made after the fork (%s)",
		      c < 0 ? strerror(errno) : "ok");
	if (c < 0)
		return 1;
	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = read_n(c, buf, 4, 3000);
	bad += !check(n == 4 && memcmp(buf, "ping", 4) == 0, "child: request 'ping' read (%d bytes)", n);
	bad += !check(send(c, "from-child", 10, MSG_NOSIGNAL) == 10, "child: reply sent");
	close(c);
	return bad ? 1 : 0;
}

static void sc_epoll_fork(void)
{
	struct epoll_event e = { .events = EPOLLIN, .data.u64 = 0x9F };
	char got[256];
	int l = listen_on(port), ep = epoll_create1(0), st = 0, n;
	long end;
	pid_t pid, w = 0;

	check(epoll_ctl(ep, EPOLL_CTL_ADD, l, &e) == 0, "listener added to an epoll set before fork");
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		fail("fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		int rc = child_serve(ep, l);

		fflush(stdout);
		_exit(rc);
	}
	sleep_ms(100); /* the child is in epoll_wait */
	if (peer_ok("connect 0") && peer_ok("sendstr 0 ping")) {
		n = peer_recv(0, 10, 4000, got, sizeof(got), NULL);
		check(n == 10 && strcmp(got, "from-child") == 0,
		      "the peer, connecting after the fork, gets the child's reply ('%s')", got);
	}
	for (end = now_ms() + 6000; now_ms() < end;) {
		w = waitpid(pid, &st, WNOHANG);
		if (w != 0)
			break;
		sleep_ms(20);
	}
	if (w == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		fail("the child did not exit within 6 s (killed)");
	} else {
		check(w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		      "the parent reaps the child: exit status 0 (status 0x%x)", st);
	}
	peer_ok("close 0");
	close(ep);
	close(l);
}

/* ---- h. non-blocking connect ------------------------------------------- */

static void sc_nonblock_connect(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)closed_port) };
	struct pollfd p;
	char got[256], buf[16];
	socklen_t sl = sizeof(int);
	int s, rc, e, soerr = -1, n;

	inet_pton(AF_INET, target, &a.sin_addr);
	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	rc = connect(s, (struct sockaddr *)&a, sizeof(a));
	e = errno;
	check(rc == -1 && e == EINPROGRESS, "non-blocking connect to %s:%d (nothing listens): "
	      "EINPROGRESS (got %d %s)", target, closed_port, rc, rc ? err_name(e) : "");
	p = (struct pollfd){ s, POLLOUT, 0 };
	n = poll(&p, 1, 3000);
	check(n == 1 && (p.revents & POLLOUT), "poll POLLOUT reports it (n=%d revents=0x%x)", n,
	      p.revents);
	rc = getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	check(rc == 0 && soerr == ECONNREFUSED, "SO_ERROR is ECONNREFUSED (got %s)", err_name(soerr));
	close(s);

	if (!peer_ok("listen 0 %s %d", target, peer_port))
		return;
	a.sin_port = htons((uint16_t)peer_port);
	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	rc = connect(s, (struct sockaddr *)&a, sizeof(a));
	e = errno;
	check(rc == -1 && e == EINPROGRESS, "non-blocking connect to %s:%d (a kernel listener): "
	      "EINPROGRESS (got %d %s)", target, peer_port, rc, rc ? err_name(e) : "");
	p = (struct pollfd){ s, POLLOUT, 0 };
	n = poll(&p, 1, 3000);
	check(n == 1 && (p.revents & POLLOUT) && !(p.revents & (POLLERR | POLLHUP)),
	      "poll POLLOUT reports it, no error (n=%d revents=0x%x)", n, p.revents);
	soerr = -1;
	sl = sizeof(int);
	rc = getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl);
	check(rc == 0 && soerr == 0, "SO_ERROR is 0 (got %s)", err_name(soerr));
	if (peer_ok("accept 0 1 3000")) {
		rc = (int)send(s, "hello", 5, MSG_NOSIGNAL);
		n = peer_recv(1, 5, 2000, got, sizeof(got), NULL);
		check(rc == 5 && n == 5 && strcmp(got, "hello") == 0,
		      "send 5 bytes; the peer receives 'hello' (send %d, got '%s')", rc, got);
		peer_ok("sendstr 1 world");
		n = read_n(s, buf, 5, 2000);
		check(n == 5 && memcmp(buf, "world", 5) == 0, "recv the peer's 'world' (%d bytes)", n);
	}
	close(s);
	peer_ok("close 1");
	peer_ok("close 0");
}

/* ---- i. FIONREAD and MSG_PEEK ------------------------------------------ */

static void sc_fionread_peek(void)
{
	static char want[1000], peek[2000], data[2000];
	int l = listen_on(port), c = accept_peer(l, 0), avail = -1;
	long end;
	ssize_t n;

	if (c < 0)
		return;
	pattern(want, 1000);
	peer_ok("send 0 1000");
	for (end = now_ms() + 3000; now_ms() < end; sleep_ms(10))
		if (ioctl(c, FIONREAD, &avail) == 0 && avail == 1000)
			break;
	check(avail == 1000, "ioctl FIONREAD reports 1000 (got %d)", avail);
	n = recv(c, peek, sizeof(peek), MSG_PEEK);
	check(n == 1000 && memcmp(peek, want, 1000) == 0, "recv MSG_PEEK returns the 1000 bytes (%zd)", n);
	n = recv(c, peek, 10, MSG_PEEK);
	check(n == 10 && memcmp(peek, want, 10) == 0, "a second MSG_PEEK of 10 returns the same start");
	avail = -1;
	ioctl(c, FIONREAD, &avail);
	check(avail == 1000, "FIONREAD still 1000 after peeking (got %d)", avail);
	n = read(c, data, sizeof(data));
	check(n == 1000 && memcmp(data, want, 1000) == 0, "read returns the same 1000 bytes (%zd)", n);
	avail = -1;
	ioctl(c, FIONREAD, &avail);
	check(avail == 0, "FIONREAD 0 after the read (got %d)", avail);
	close(c);
	close(l);
}

/* ---- j. dup() and close ------------------------------------------------ */

static void sc_dup_close(void)
{
	char got[256], buf[16];
	int l = listen_on(port), c = accept_peer(l, 0), d, n;
	bool eof = false;

	if (c < 0)
		return;
	d = dup(c);
	check(d >= 0 && d != c, "dup() of the accepted connection (%d -> %d)", c, d);
	check(close(c) == 0, "close(original)");
	n = (int)send(d, "via-dup", 7, MSG_NOSIGNAL);
	check(n == 7, "send through the dup works (%d%s%s)", n, n < 0 ? " " : "",
	      n < 0 ? err_name(errno) : "");
	n = peer_recv(0, 7, 2000, got, sizeof(got), &eof);
	check(n == 7 && strcmp(got, "via-dup") == 0 && !eof, "the peer receives 'via-dup' (got '%s'%s)",
	      got, eof ? ", EOF" : "");
	peer_ok("sendstr 0 back");
	n = read_n(d, buf, 4, 2000);
	check(n == 4 && memcmp(buf, "back", 4) == 0, "recv through the dup works (%d bytes)", n);
	check(close(d) == 0, "close(dup)");
	n = peer_recv(0, 100, 3000, got, sizeof(got), &eof);
	check(n == 0 && eof, "the peer sees EOF after the last fd is closed (%d bytes, eof %d)", n, eof);
	close(l);
}

/* ---- k. select over an accelerated connection and a pipe ---------------- */

/* select for reading on a and b for ms; r holds the result */
static int select2(int a, int b, fd_set *r, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	FD_ZERO(r);
	FD_SET(a, r);
	FD_SET(b, r);
	return select((a > b ? a : b) + 1, r, NULL, NULL, &tv);
}

static void sc_select_mixed(void)
{
	struct timeval tv;
	fd_set r, w;
	char buf[16];
	int l = listen_on(port), c = accept_peer(l, 0), pp[2], n;

	if (c < 0)
		return;
	if (pipe(pp)) {
		fail("pipe: %s", strerror(errno));
		return;
	}
	n = select2(c, pp[0], &r, 200);
	check(n == 0, "nothing ready: select times out (%d)", n);
	check(write(pp[1], "x", 1) == 1, "a byte written into the pipe");
	n = select2(c, pp[0], &r, 999);
	check(n == 1 && FD_ISSET(pp[0], &r) && !FD_ISSET(c, &r), "select reports the pipe only (%d)", n);
	check(read(pp[0], buf, 1) == 1, "pipe byte read");
	peer_ok("send 0 3");
	n = select2(c, pp[0], &r, 999);
	check(n == 1 && FD_ISSET(c, &r) && !FD_ISSET(pp[0], &r),
	      "select reports the connection only (%d)", n);
	check(read_n(c, buf, 3, 2000) == 3, "connection bytes read");
	peer_ok("send 0 2");
	check(write(pp[1], "y", 1) == 1, "data on both");
	sleep_ms(100);
	n = select2(c, pp[0], &r, 999);
	check(n == 2 && FD_ISSET(c, &r) && FD_ISSET(pp[0], &r), "select reports both (%d)", n);
	FD_ZERO(&w);
	FD_SET(c, &w);
	tv = (struct timeval){ 1, 0 };
	n = select(c + 1, NULL, &w, NULL, &tv);
	check(n == 1 && FD_ISSET(c, &w), "select reports the connection writable (%d)", n);
	close(pp[0]);
	close(pp[1]);
	close(c);
	close(l);
}

/* ---- the peer (kernel, no preload) -------------------------------------- */

#define NCONN KBTEST_NCONN

static int conns[NCONN];

/* From local port lport (SO_REUSEADDR) unless 0. That 4-tuple may still be
 * in use for a moment (our FIN's ACK on its way): retried for 2 s. */
static int peer_connect(int lport)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) },
			   me = { .sin_family = AF_INET, .sin_port = htons((uint16_t)lport) };
	struct timeval tv = { 3, 0 };
	long end = now_ms() + 2000;
	int s, e, one = 1;

	inet_pton(AF_INET, host, &a.sin_addr);
	for (;;) {
		s = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if ((!lport || (!setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) &&
				!bind(s, (struct sockaddr *)&me, sizeof(me)))) &&
		    !connect(s, (struct sockaddr *)&a, sizeof(a)))
			return s;
		e = errno;
		close(s);
		if (!lport || (e != EADDRINUSE && e != EADDRNOTAVAIL) || now_ms() > end)
			break;
		sleep_ms(20);
	}
	errno = e;
	return -1;
}

/* reply: "ok CNT EOF BAD", BAD the offset of the first byte that is not
 * pattern()'s (-1: none), or "err ERRNO CNT" */
static void peer_do_recvpat(int s, int n, int ms, char *reply, size_t len)
{
	char *buf = malloc((size_t)n + 1), *want = malloc((size_t)n + 1);
	int got, err, bad = -1, i;
	bool eof;

	pattern(want, n);
	got = read_until(s, buf, n, ms, &eof, &err);
	for (i = 0; i < got && bad < 0; i++)
		if (buf[i] != want[i])
			bad = i;
	if (err)
		snprintf(reply, len, "err %s %d", err_name(err), got);
	else
		snprintf(reply, len, "ok %d %d %d", got, eof, bad);
	free(buf);
	free(want);
}

/* reply: "ok CNT EOF TEXT" or "err ERRNO CNT" */
static void peer_do_recv(int s, int n, int ms, char *reply, size_t len)
{
	static char buf[1500];
	int got, err, i;
	size_t off;
	bool eof;

	if (n > (int)sizeof(buf))
		n = (int)sizeof(buf);
	got = read_until(s, buf, n, ms, &eof, &err);
	if (err) {
		snprintf(reply, len, "err %s %d", err_name(err), got);
		return;
	}
	off = (size_t)snprintf(reply, len, "ok %d %d ", got, eof);
	for (i = 0; i < got && off + 1 < len; i++)
		reply[off++] = (buf[i] > ' ' && buf[i] < 127) ? buf[i] : '.';
	reply[off] = '\0';
}

static int peer_main(void)
{
	char c[4096], a[4096], line[512], reply[2048];
	FILE *in;
	int cfd, afd, i;

	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < NCONN; i++)
		conns[i] = -1;
	fifo_paths(c, a, sizeof(c));
	cfd = open(c, O_RDONLY | O_CLOEXEC);
	afd = cfd < 0 ? -1 : open(a, O_WRONLY | O_CLOEXEC);
	if (cfd < 0 || afd < 0) {
		perror("peer: open FIFOs");
		return 1;
	}
	in = fdopen(cfd, "r");
	while (fgets(line, sizeof(line), in)) {
		char op[32], str[256], addr[64];
		int x = -1, y = -1, z = -1, k;
		size_t len;

		op[0] = '\0';
		k = sscanf(line, "%31s %d %d %d", op, &x, &y, &z);
		if (k < 1)
			continue;
		snprintf(reply, sizeof(reply), "ok");
		if (peer_burst_cmd(line, host, reply, sizeof(reply))) {
			; /* kbtest_overflow.c */
		} else if (k >= 2 && (x < 0 || x >= NCONN)) {
			snprintf(reply, sizeof(reply), "err bad connection index");
		} else if (!strcmp(op, "quit")) {
			break;

		} else if (!strcmp(op, "connect")) {
			struct sockaddr_in me;
			socklen_t ml = sizeof(me);

			if (conns[x] >= 0)
				close(conns[x]);
			conns[x] = peer_connect(k >= 3 ? y : 0);
			if (conns[x] < 0)
				snprintf(reply, sizeof(reply), "err connect %s:%d: %s", host, port,
					 err_name(errno));
			else if (!getsockname(conns[x], (struct sockaddr *)&me, &ml))
				snprintf(reply, sizeof(reply), "ok %d", ntohs(me.sin_port));
		} else if (!strcmp(op, "send") && k >= 3) {
			char *b = malloc((size_t)y + 1);

			pattern(b, y);
			if (send(conns[x], b, (size_t)y, MSG_NOSIGNAL) != y)
				snprintf(reply, sizeof(reply), "err send: %s", err_name(errno));
			free(b);
		} else if (!strcmp(op, "sendstr") && sscanf(line, "%*s %*d %255s", str) == 1) {
			len = strlen(str);
			if (send(conns[x], str, len, MSG_NOSIGNAL) != (ssize_t)len)
				snprintf(reply, sizeof(reply), "err send: %s", err_name(errno));
		} else if (!strcmp(op, "recv") && k >= 4) {
			peer_do_recv(conns[x], y, z, reply, sizeof(reply));
		} else if (!strcmp(op, "recvpat") && k >= 4 && y >= 0 && y <= (1 << 24)) {
			peer_do_recvpat(conns[x], y, z, reply, sizeof(reply));
		} else if (!strcmp(op, "shutwr")) {
			if (shutdown(conns[x], SHUT_WR))
				snprintf(reply, sizeof(reply), "err shutdown: %s", err_name(errno));
		} else if (!strcmp(op, "rst")) {
			struct linger lg = { 1, 0 };

			setsockopt(conns[x], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(conns[x]);
			conns[x] = -1;
		} else if (!strcmp(op, "close")) {
			if (conns[x] >= 0)
				close(conns[x]);
			conns[x] = -1;
		} else if (!strcmp(op, "listen") &&
			   sscanf(line, "%*s %*d %63s %d", addr, &y) == 2) {
			struct sockaddr_in sa = { .sin_family = AF_INET,
						  .sin_port = htons((uint16_t)y) };
			int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;

			inet_pton(AF_INET, addr, &sa.sin_addr);
			setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
			if (bind(s, (struct sockaddr *)&sa, sizeof(sa)) || listen(s, 8)) {
				snprintf(reply, sizeof(reply), "err listen %s:%d: %s", addr, y,
					 err_name(errno));
				close(s);
			} else {
				conns[x] = s;
			}
		} else if (!strcmp(op, "accept") && k >= 4 && y >= 0 && y < NCONN) {
			struct pollfd p = { conns[x], POLLIN, 0 };

			if (poll(&p, 1, z) != 1)
				snprintf(reply, sizeof(reply), "err accept: nothing in %d ms", z);
			else if ((conns[y] = accept(conns[x], NULL, NULL)) < 0)
				snprintf(reply, sizeof(reply), "err accept: %s", err_name(errno));
		} else {
			snprintf(reply, sizeof(reply), "err unknown command: %.100s", line);
		}
		len = strlen(reply);
		reply[len++] = '\n';
		if (write(afd, reply, len) != (ssize_t)len)
			return 1;
	}
	if (write(afd, "ok\n", 3) != 3)
		return 1;
	return 0;
}

/* ---- main ---------------------------------------------------------------- */

static const struct {
	const char *name;
	void (*fn)(void);
} scenarios[] = {
	{ "rcvtimeo", sc_rcvtimeo },
	{ "eintr", sc_eintr },
	{ "epoll_two_sets", sc_epoll_two_sets },
	{ "epoll_ctl_from_thread", sc_epoll_ctl_from_thread },
	{ "oneshot_et", sc_oneshot_et },
	{ "rdhup_hup", sc_rdhup_hup },
	{ "epoll_fork", sc_epoll_fork },
	{ "nonblock_connect", sc_nonblock_connect },
	{ "fionread_peek", sc_fionread_peek },
	{ "dup_close", sc_dup_close },
	{ "select_mixed", sc_select_mixed },
	{ "late_close_reused", sc_late_close_reused },
	{ "late_close_reused_busy", sc_late_close_reused_busy },
	{ "late_close_expired", sc_late_close_expired },
	{ "late_close_exhausted", sc_late_close_exhausted },
	{ "accept_overflow", sc_accept_overflow },
	{ "high_fd", sc_high_fd },
	{ "many_listeners", sc_many_listeners },
};

static void usage(void)
{
	size_t i;

	fprintf(stderr, "usage: kbtest_semantics SCENARIO --ctl DIR [--port P] [--target IP] "
		"[--closed-port P] [--peer-port P] [--tw-ms MS] [--pcbs N]\n"
		"       kbtest_semantics peer --ctl DIR --host IP --port P\n"
		"scenarios:");
	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		fprintf(stderr, " %s", scenarios[i].name);
	fprintf(stderr, "\n");
	exit(2);
}

int main(int argc, char **argv)
{
	size_t i;
	int a;

	if (argc < 2)
		usage();
	for (a = 2; a + 1 < argc; a += 2) {
		if (!strcmp(argv[a], "--ctl"))
			ctl_dir = argv[a + 1];
		else if (!strcmp(argv[a], "--host"))
			host = argv[a + 1];
		else if (!strcmp(argv[a], "--target"))
			target = argv[a + 1];
		else if (!strcmp(argv[a], "--port"))
			port = atoi(argv[a + 1]);
		else if (!strcmp(argv[a], "--closed-port"))
			closed_port = atoi(argv[a + 1]);
		else if (!strcmp(argv[a], "--peer-port"))
			peer_port = atoi(argv[a + 1]);
		else if (!strcmp(argv[a], "--tw-ms"))
			tw_ms = atol(argv[a + 1]);
		else if (!strcmp(argv[a], "--pcbs"))
			pcbs = atoi(argv[a + 1]);
		else
			usage();
	}
	if (a != argc || !ctl_dir)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "peer"))
		return peer_main();
	for (i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (!strcmp(argv[1], scenarios[i].name))
			break;
	if (i == sizeof(scenarios) / sizeof(scenarios[0]))
		usage();
	signal(SIGPIPE, SIG_IGN);
	channel_open();
	scenarios[i].fn();
	peer_ok("quit");
	return fails ? 1 : 0;
}
