/*
 * kbtest_overflow.c — more connections at once than a listener's accept
 * queue, and than kb's socket slots, hold (scenario accept_overflow of
 * kbtest_semantics). Linux drops a SYN it has no room for and the client
 * sends it again; no connection is refused or reset. Under kb the same
 * must hold when the accept queue is full and when every slot of the
 * application's context is taken (kbstat: tcp_syn_drop_queue,
 * tcp_syn_drop_slots; tcp_accept_reset stays 0). Test code only.
 *
 * The side under test listens (backlog 511: new connections join the
 * queue while it holds fewer than 512, on Linux and kb alike; under kb at
 * most 512 handshakes are under way, half of the 1024 slots the test
 * gives kbstackd with KB_SLOTS=1024, so a burst is dropped for the queue
 * before the slots) and accepts nothing for 1 s while the peer starts
 * FIRST non-blocking connects; then it accepts and holds HOLD connections
 * and, accepting nothing, has the peer start the other BURST - FIRST at
 * once (under kb at most 23 slots are free then, so most of their SYNs
 * are dropped for slots whatever the first burst's retries did), waits
 * 1.5 s, closes half of what it holds and accepts the rest.
 * Each peer connection sends a byte once connected; each accepted
 * connection is sent one; the peer checks that every one of its
 * connections received it — a connection reset or refused anywhere fails.
 * Scenario high_fd: a listener and a connection on the highest fds allowed.
 * Scenario many_listeners: more listeners at once than kb has accept queues
 * for (KBQ_NLISTEN, 256): every listen succeeds (under kb the one beyond
 * stays on the kernel; the script checks kbstat), the last kb listener
 * serves, and once they are closed a new one gets a queue again.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kbq_abi.h"
#include "kbtest_semantics.h"

#define BURST 1100 /* beyond the test's KB_SLOTS=1024 */
#define FIRST 1050 /* beyond the queue and half-open room (512 each) */
#define HOLD  1000

/* Room for BURST sockets and more in the fd table (both sides). */
static void fd_room(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < 4096) {
		r.rlim_cur = r.rlim_max < 4096 ? r.rlim_max : 4096;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

/* ---- the peer's side: "burst N", "burstmore N", "burstcheck MS",
 * "burstclose" */

static int burst_fd[BURST];
static int burst_n;
static pthread_t burst_thread;
static volatile int burst_stop;
static bool burst_running;

static bool burst_sent[BURST]; /* burst_fd[i] has sent its byte */

/* Each connection sends one byte once connected, as a client's request
 * would: a connection Linux completed with a SYN cookie while its accept
 * queue was full exists for the server only when data comes (a bare ACK
 * was dropped), so a client that never sends would wait forever. */
static void *burst_sender(void *arg)
{
	bool *sent = burst_sent;
	int i, left = 0;

	(void)arg;
	for (i = 0; i < burst_n; i++)
		left += !sent[i];
	while (left > 0 && !burst_stop) {
		for (i = 0; i < burst_n; i++) {
			struct pollfd p = { burst_fd[i], POLLOUT, 0 };

			if (sent[i] || poll(&p, 1, 0) != 1)
				continue;
			sent[i] = true;
			left--;
			if (!(p.revents & (POLLERR | POLLHUP)))
				(void)send(burst_fd[i], "x", 1, MSG_NOSIGNAL);
		}
		sleep_ms(10);
	}
	return NULL;
}

static void burst_join(void)
{
	if (!burst_running)
		return;
	burst_stop = 1;
	pthread_join(burst_thread, NULL);
	burst_running = false;
}

static void burst_close(void)
{
	int i;

	burst_join();
	for (i = 0; i < burst_n; i++)
		if (burst_fd[i] >= 0)
			close(burst_fd[i]);
	burst_n = 0;
	memset(burst_sent, 0, sizeof(burst_sent));
}

/* n more connects at once (after burst_close: a new burst), each sending
 * its byte once connected. */
static void burst_start(int n, bool more, const char *host, int p, char *reply, size_t len)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)p) };
	int i;

	fd_room();
	if (more)
		burst_join();
	else
		burst_close();
	inet_pton(AF_INET, host, &a.sin_addr);
	for (i = 0; i < n && burst_n < BURST; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

		if (s < 0 || (connect(s, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS)) {
			snprintf(reply, len, "err connect %d: %s", i, err_name(errno));
			if (s >= 0)
				close(s);
			return;
		}
		burst_fd[burst_n++] = s;
	}
	burst_stop = 0;
	if (pthread_create(&burst_thread, NULL, burst_sender, NULL)) {
		snprintf(reply, len, "err pthread_create");
		return;
	}
	burst_running = true;
	snprintf(reply, len, "ok %d", burst_n);
}

/* Every connection connected and received its byte within ms: "ok GOT
 * FAILED FIRST_ERROR" (GOT: connections that did). */
static void burst_check(int ms, char *reply, size_t len)
{
	long end = now_ms() + ms;
	int i, got = 0, failed = 0, first = 0;

	burst_join();
	for (i = 0; i < burst_n; i++) {
		struct pollfd p = { burst_fd[i], POLLIN, 0 };
		long left = end - now_ms();
		char b;
		ssize_t r;

		if (poll(&p, 1, left > 0 ? (int)left : 0) != 1) {
			failed++;
			first = first ? first : ETIMEDOUT;
			continue;
		}
		r = recv(burst_fd[i], &b, 1, 0);
		if (r == 1 && b == 'k') {
			got++;
		} else {
			failed++;
			first = first ? first : (r < 0 ? errno : EPROTO);
		}
	}
	snprintf(reply, len, "ok %d %d %s", got, failed, first ? err_name(first) : "-");
}

bool peer_burst_cmd(const char *line, const char *host, char *reply, size_t len)
{
	int n;

	if (sscanf(line, "burst %d", &n) == 1)
		burst_start(n, false, host, port, reply, len);
	else if (sscanf(line, "burstmore %d", &n) == 1)
		burst_start(n, true, host, port, reply, len);
	else if (sscanf(line, "burstcheck %d", &n) == 1)
		burst_check(n, reply, len);
	else if (!strncmp(line, "burstclose", 10))
		burst_close();
	else
		return false;
	return true;
}

/* ---- the side under test ---------------------------------------------- */

static int held[BURST];
static int nheld, first_held, accepted;

/* Accept until `until` connections were accepted in all, or ms pass without
 * one; each is sent its byte and held. */
static void accept_until(int l, int until, int ms)
{
	while (accepted < until) {
		struct pollfd p = { l, POLLIN, 0 };
		int c;

		if (poll(&p, 1, ms) != 1)
			return;
		c = accept(l, NULL, NULL);
		if (c < 0) {
			fail("accept after %d connections: %s", accepted, strerror(errno));
			return;
		}
		accepted++;
		if (send(c, "k", 1, MSG_NOSIGNAL) != 1)
			fail("send on accepted connection %d: %s", accepted, strerror(errno));
		held[nheld++] = c;
	}
}

void sc_accept_overflow(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	char reply[512];
	int l, one = 1, got = -1, failed = -1, i;
	char first[64] = "?";

	fd_room();
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 511)) {
		fail("listen on port %d: %s", port, strerror(errno));
		return;
	}
	peer_callf(reply, sizeof(reply), "burst %d", FIRST);
	if (!check(strncmp(reply, "ok", 2) == 0, "the peer starts %d connects at once (%s)",
		   FIRST, reply))
		return;
	sleep_ms(1000); /* nothing accepted: the accept queue overflows */
	accept_until(l, HOLD, 20000);
	check(accepted == HOLD, "%d connections accepted and held (%d)", HOLD, accepted);
	peer_callf(reply, sizeof(reply), "burstmore %d", BURST - FIRST);
	check(strncmp(reply, "ok", 2) == 0, "then %d more connects at once (%s in all)",
	      BURST - FIRST, reply);
	sleep_ms(1500); /* nothing accepted: under kb, no free slot */
	for (i = 0; i < HOLD / 2; i++)
		close(held[first_held++]);
	accept_until(l, BURST, 20000);
	check(accepted == BURST, "after closing %d, the other %d accepted (%d in all)", HOLD / 2,
	      BURST - HOLD, accepted);
	peer_callf(reply, sizeof(reply), "burstcheck 5000");
	sscanf(reply, "ok %d %d %63s", &got, &failed, first);
	check(got == BURST && failed == 0,
	      "every connection of the peer connected and got its byte: none refused or reset "
	      "(%d of %d, %d failed, first error %s)", got, BURST, failed, first);
	peer_ok("burstclose");
	for (i = first_held; i < nheld; i++)
		close(held[i]);
	close(l);
}

/* A listener and its connection on the highest fds RLIMIT_NOFILE allows
 * (up to 300000; above 65535 where the hard limit lets root go there), as
 * a server that raised its limit after it started (nginx's
 * worker_rlimit_nofile) has them. Under kb they are accelerated (the
 * script checks kbstat). */
void sc_high_fd(void)
{
	struct rlimit r;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int s, l, c, one = 1, hi;
	char buf[8];

	r.rlim_cur = r.rlim_max = 300000; /* needs CAP_SYS_RESOURCE above the hard limit */
	if (setrlimit(RLIMIT_NOFILE, &r) && !getrlimit(RLIMIT_NOFILE, &r)) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
	getrlimit(RLIMIT_NOFILE, &r);
	hi = r.rlim_cur > 300000 ? 300000 : (int)r.rlim_cur;
	if (!check(hi > 1024 + 20, "RLIMIT_NOFILE raised to %d", hi))
		return;
	s = socket(AF_INET, SOCK_STREAM, 0);
	l = dup2(s, hi - 10);
	check(l == hi - 10, "the socket moved to fd %d (dup2: %d)", hi - 10, l);
	close(s);
	if (l != hi - 10 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 16)) {
		fail("listen on fd %d: %s", hi - 10, strerror(errno));
		return;
	}
	c = accept_peer_from(l, 0, 0, NULL);
	if (c < 0)
		return;
	c = dup2(c, hi - 5) == hi - 5 ? (close(c), hi - 5) : c;
	check(c == hi - 5, "the connection moved to fd %d", hi - 5);
	peer_ok("sendstr 0 hello");
	check(read_n(c, buf, 5, 2000) == 5 && !memcmp(buf, "hello", 5),
	      "read the peer's 'hello' on fd %d", c);
	check(send(c, "world", 5, MSG_NOSIGNAL) == 5, "send 'world' on fd %d", c);
	check(peer_recv(0, 5, 2000, buf, sizeof(buf), NULL) == 5 && !memcmp(buf, "world", 5),
	      "the peer receives 'world'");
	close(c);
	peer_ok("close 0");
	close(l);
}

/* One connection from the peer through listener l, a byte each way. */
static void serve_one(int l, int idx, const char *what)
{
	int c = accept_peer_from(l, idx, 0, NULL);
	char b[8] = "";

	if (c < 0)
		return;
	check(peer_ok("sendstr %d x", idx) && read_n(c, b, 1, 2000) == 1 && b[0] == 'x' &&
	      send(c, "y", 1, MSG_NOSIGNAL) == 1 &&
	      peer_recv(idx, 1, 2000, b, sizeof(b), NULL) == 1 && b[0] == 'y',
	      "%s: a connection accepted, a byte each way", what);
	close(c);
	peer_ok("close %d", idx);
}

void sc_many_listeners(void)
{
	static int ls[KBQ_NLISTEN + 1];
	int i, n = 0;

	fd_room();
	/* KBQ_NLISTEN - 1 on other ports, then the scenario's port (under kb
	 * the last accept queue), then one more: beyond the queues */
	for (i = 0; i < (int)KBQ_NLISTEN - 1; i++)
		ls[n++] = listen_on(port + 1000 + i);
	ls[n++] = listen_on(port);
	ls[n++] = listen_on(port + 1000 + i);
	check(n == KBQ_NLISTEN + 1, "%d listeners at once, every listen() succeeded", n);
	serve_one(ls[KBQ_NLISTEN - 1], 0, "the listener on the last accept queue");
	for (i = 0; i < n; i++)
		close(ls[i]);
	/* the queues went back with their listeners */
	ls[0] = listen_on(port);
	serve_one(ls[0], 1, "after all closed, a new listener");
	close(ls[0]);
}
