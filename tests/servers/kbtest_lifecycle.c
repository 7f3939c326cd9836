/*
 * kbtest_lifecycle.c — scenarios of kbtest_semantics where TCP has finished
 * with a connection the application still holds, so the application's
 * close() comes late: after the server shut its side first (Apache's
 * lingering close) and the client closed, the server's side sits in
 * TIME_WAIT, and that ends without the application: the 4-tuple is taken by
 * the client's next SYN, TIME_WAIT runs out, or the stack reclaims the PCB
 * because it ran short. On Linux the late close() then touches nothing else;
 * every scenario checks that the other connections carry their bytes
 * exactly and end cleanly. Test code only; the runner, its checks and its
 * peer are kbtest_semantics.c's (kbtest_semantics.h).
 *
 *   late_close_reused       the client reconnects from the same port while
 *                           the first connection (A) is in TIME_WAIT; the
 *                           server closes A, then serves the new one (B)
 *   late_close_reused_busy  the same, B carrying data both ways before A's close
 *   late_close_expired      A's TIME_WAIT runs out (--tw-ms), connections
 *                           open meanwhile and after; then A's close
 *   late_close_exhausted    lwIP runs out of PCBs (--pcbs) while TIME_WAIT
 *                           connections are still held by the server; then
 *                           the server closes them all
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "kbtest_semantics.h"

/* One accepted connection: fd here, idx at the peer. */
struct conn {
	int fd, idx;
};

/* pattern(n) out on fd within ms; the bytes sent, *err the last error. */
static int send_pat(int fd, int n, int ms, int *err)
{
	char *b = malloc((size_t)n);
	long end = now_ms() + ms;
	int sent = 0;

	*err = 0;
	pattern(b, n);
	while (sent < n) {
		struct pollfd p = { fd, POLLOUT, 0 };
		long left = end - now_ms();
		ssize_t r;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			break;
		r = send(fd, b + sent, (size_t)(n - sent), MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0 && errno != EAGAIN && errno != EINTR) {
			*err = errno;
			break;
		}
		if (r > 0)
			sent += (int)r;
	}
	free(b);
	return sent;
}

/* The conn_* helpers return true when all went as on Linux; otherwise why
 * ("" on success) says what happened, in parentheses for a check line. */

/* n bytes from us to the client, then n from the client to us, byte-exact. */
static bool conn_exchange(const struct conn *c, int n, char *why, size_t wl)
{
	char reply[512], *buf = malloc((size_t)n), *want = malloc((size_t)n);
	int err, sent, got = -1, eof = 0, bad = -1, rd = -1;
	bool good = false;

	pattern(want, n);
	sent = send_pat(c->fd, n, 2000, &err);
	peer_callf(reply, sizeof(reply), "recvpat %d %d 2000", c->idx, n);
	if (sent != n) {
		snprintf(why, wl, " (the server sent %d of %d bytes: %s)", sent, n,
			 err ? err_name(err) : "no room for 2 s");
	} else if (sscanf(reply, "ok %d %d %d", &got, &eof, &bad) != 3) {
		snprintf(why, wl, " (the client, reading %d bytes: '%.150s')", n, reply);
	} else if (bad >= 0) {
		snprintf(why, wl, " (the client got %d of %d bytes, wrong from byte %d)", got, n, bad);
	} else if (got != n) {
		snprintf(why, wl, " (the client got %d of %d bytes, then %s)", got, n,
			 eof ? "EOF" : "nothing for 2 s");
	} else if (!peer_ok("send %d %d", c->idx, n)) {
		snprintf(why, wl, " (the client could not send %d bytes)", n);
	} else if ((rd = read_n(c->fd, buf, n, 2000)) != n || memcmp(buf, want, (size_t)n)) {
		snprintf(why, wl, " (the server got %d of the client's %d bytes%s)", rd, n,
			 rd == n ? ", not the bytes sent" : "");
	} else {
		why[0] = '\0';
		good = true;
	}
	free(buf);
	free(want);
	return good;
}

/* We shut down our side, the client reads EOF and closes, we read EOF: our
 * side of the connection is in TIME_WAIT, and we still hold it. */
static bool conn_to_timewait(const struct conn *c, char *why, size_t wl)
{
	char got[64];
	bool eof = false;
	int n, err;

	if (shutdown(c->fd, SHUT_WR)) {
		snprintf(why, wl, " (shutdown: %s)", err_name(errno));
		return false;
	}
	n = peer_recv(c->idx, 1, 2000, got, sizeof(got), &eof);
	if (n != 0 || !eof) {
		snprintf(why, wl, " (after our shutdown the client read %d bytes%s)", n,
			 eof ? ", then EOF" : ", no EOF in 2 s");
		return false;
	}
	if (!peer_ok("close %d", c->idx)) {
		snprintf(why, wl, " (the client could not close)");
		return false;
	}
	n = read_until(c->fd, got, 1, 2000, &eof, &err);
	if (n != 0 || !eof) {
		snprintf(why, wl, " (after the client's close the server read %d bytes, %s)", n,
			 err ? err_name(err) : eof ? "then EOF" : "no EOF in 2 s");
		return false;
	}
	why[0] = '\0';
	return true;
}

/* We close; the client reads EOF (not a reset) and closes too. */
static bool conn_finish(const struct conn *c, char *why, size_t wl)
{
	char got[64];
	bool eof = false;
	int n;

	close(c->fd);
	n = peer_recv(c->idx, 1, 2000, got, sizeof(got), &eof);
	peer_ok("close %d", c->idx);
	if (n != 0 || !eof) {
		snprintf(why, wl, " (after our close the client read %d bytes%s)", n,
			 n < 0 ? ", an error" : eof ? ", then EOF" : ", no EOF in 2 s");
		return false;
	}
	why[0] = '\0';
	return true;
}

/* conn_exchange(n) then conn_finish on each of c[0..k): how many failed.
 * The first three failures are reported as they happen. */
static int conns_serve_and_close(const struct conn *c, int k, int n)
{
	char why[256];
	int i, bad = 0;

	for (i = 0; i < k; i++) {
		bool good = conn_exchange(&c[i], n, why, sizeof(why));

		if (good) {
			good = conn_finish(&c[i], why, sizeof(why));
		} else {
			close(c[i].fd);
			peer_ok("close %d", c[i].idx);
		}
		if (!good && bad++ < 3)
			fail("the peer's connection %d: %d bytes each way, then EOF%s", c[i].idx, n,
			     why);
	}
	return bad;
}

/* ---- late_close_reused, late_close_reused_busy -------------------------- */

/*
 * The client's new connection B has A's 4-tuple: Linux accepts the SYN
 * while A is in TIME_WAIT (its sequence number is newer), and so does
 * kbstackd (kbs_tcp_hooks.c). A's close() then belongs to a connection that
 * is gone from TCP and must not touch B.
 */
static void late_close_reused(bool busy)
{
	char why[256];
	struct conn a = { -1, 0 }, b = { -1, 1 };
	int l = listen_on(port), pa = 0, pb = 0;

	if ((a.fd = accept_peer_from(l, a.idx, 0, &pa)) < 0)
		return;
	check(conn_exchange(&a, 4096, why, sizeof(why)),
	      "A (client port %d): 4096 bytes each way, byte-exact%s", pa, why);
	if (!check(conn_to_timewait(&a, why, sizeof(why)),
		   "A: the server shuts down its side, the client reads EOF and closes, the "
		   "server reads EOF: A is in TIME_WAIT on the server's side, still open%s", why))
		return;
	if ((b.fd = accept_peer_from(l, b.idx, pa, &pb)) < 0)
		return;
	check(pb == pa, "B accepted from A's client port (%d; A's %d): A's 4-tuple", pb, pa);
	if (busy)
		check(conn_exchange(&b, 16384, why, sizeof(why)),
		      "B before A's close: 16384 bytes each way, byte-exact%s", why);
	check(close(a.fd) == 0, "the server closes A late");
	sleep_ms(100); /* kbstackd has served that close before B is used */
	check(conn_exchange(&b, 16384, why, sizeof(why)),
	      "B after A's close: the server's 16384-byte reply reaches the client, then "
	      "16384 bytes back, byte-exact%s", why);
	check(conn_finish(&b, why, sizeof(why)),
	      "B: the server closes, the client reads EOF%s", why);
	close(l);
}

void sc_late_close_reused(void)
{
	late_close_reused(false);
}

void sc_late_close_reused_busy(void)
{
	late_close_reused(true);
}

/* ---- late_close_expired ------------------------------------------------- */

/*
 * A's TIME_WAIT ends while the server still holds A. Connections X were
 * open before and stay open; connections N are made after A's end (a stack
 * may give them A's memory). Then A's close; X and N must not notice.
 */
void sc_late_close_expired(void)
{
	enum { NX = 3, NN = 3 };
	struct conn a = { -1, 0 }, c[NX + NN];
	char why[256];
	int l, i, bad, nc = 0;

	if (!check(tw_ms > 0, "--tw-ms gives the stack's TIME_WAIT (%ld ms)", tw_ms))
		return;
	l = listen_on(port);
	for (i = 0; i < NX; i++) {
		c[nc] = (struct conn){ accept_peer_from(l, 1 + i, 0, NULL), 1 + i };
		if (c[nc].fd < 0)
			return;
		check(conn_exchange(&c[nc], 4096, why, sizeof(why)),
		      "X%d: 4096 bytes each way, byte-exact%s", i, why);
		nc++;
	}
	if ((a.fd = accept_peer_from(l, a.idx, 0, NULL)) < 0)
		return;
	check(conn_exchange(&a, 4096, why, sizeof(why)), "A: 4096 bytes each way, byte-exact%s",
	      why);
	if (!check(conn_to_timewait(&a, why, sizeof(why)),
		   "A: the server shuts down its side, the client reads EOF and closes, the "
		   "server reads EOF: A is in TIME_WAIT on the server's side, still open%s", why))
		return;
	printf("# waiting %ld ms: A's TIME_WAIT (%ld ms) ends\n", tw_ms + 1000, tw_ms);
	sleep_ms(tw_ms + 1000);
	for (i = 0; i < NN; i++) {
		c[nc] = (struct conn){ accept_peer_from(l, 1 + NX + i, 0, NULL), 1 + NX + i };
		if (c[nc].fd < 0)
			return;
		nc++;
	}
	check(close(a.fd) == 0, "the server closes A late, after its TIME_WAIT ended and %d new "
	      "connections were accepted", NN);
	sleep_ms(100); /* kbstackd has served that close before the others are used */
	bad = conns_serve_and_close(c, nc, 16384);
	check(bad == 0, "the %d connections open before A's end and the %d accepted after it: "
	      "16384 bytes each way, byte-exact, then EOF (%d of %d failed)", NX, NN, bad, nc);
	close(l);
}

/* ---- late_close_exhausted ----------------------------------------------- */

/*
 * With a pool of P PCBs: B connections stay open, V = P/2 victims go to
 * TIME_WAIT still held by the server, then P - B new connections arrive. The
 * last V of them find no free PCB: lwIP frees the oldest TIME_WAIT PCBs
 * (tcp_kill_timewait) — the victims' — for them. Then the server closes
 * the victims; the B and the new connections must not notice.
 */
void sc_late_close_exhausted(void)
{
	enum { NB = 4 };
	struct conn c[KBTEST_NCONN], v[KBTEST_NCONN];
	char why[256];
	int l, i, nv, nn, nc = 0, idx = 0, bad, closed = 0;
	long t0, dt;

	if (!check(pcbs >= 8 && tw_ms > 0, "--pcbs and --tw-ms give the stack's PCB pool (%d) "
		   "and TIME_WAIT (%ld ms)", pcbs, tw_ms))
		return;
	nv = pcbs / 2;
	nn = pcbs - NB;
	if (!check(NB + nv + nn <= KBTEST_NCONN, "%d connections at once, the peer holds %d",
		   NB + nv + nn, KBTEST_NCONN))
		return;
	l = listen_on(port);
	for (i = 0; i < NB; i++, idx++) {
		c[nc] = (struct conn){ accept_peer_from(l, idx, 0, NULL), idx };
		if (c[nc].fd < 0)
			return;
		check(conn_exchange(&c[nc], 4096, why, sizeof(why)),
		      "B%d: 4096 bytes each way, byte-exact%s", i, why);
		nc++;
	}
	for (i = 0; i < nv; i++, idx++) {
		v[i] = (struct conn){ accept_peer_from(l, idx, 0, NULL), idx };
		if (v[i].fd < 0)
			return;
	}
	t0 = now_ms();
	for (i = 0, bad = 0; i < nv; i++)
		if (!conn_to_timewait(&v[i], why, sizeof(why)) && !bad++)
			fail("victim %d: not in TIME_WAIT%s", i, why);
	check(bad == 0, "%d victims: the server shuts down its side, the client reads EOF and "
	      "closes, the server reads EOF: in TIME_WAIT on the server's side, still open "
	      "(%d failed)", nv, bad);
	for (i = 0; i < nn; i++, idx++) {
		c[nc] = (struct conn){ accept_peer_from(l, idx, 0, NULL), idx };
		if (c[nc].fd < 0)
			return;
		nc++;
	}
	dt = now_ms() - t0;
	/* None of the victims' TIME_WAIT can have run out: with B + V PCBs
	 * taken, the last V new connections were given the victims' PCBs. */
	check(dt < tw_ms, "%d new connections accepted %ld ms after the victims' TIME_WAIT "
	      "began, within it (%ld ms): %d of them needed a victim's PCB", nn, dt, tw_ms,
	      NB + nv + nn - pcbs);
	for (i = 0; i < nv; i++)
		closed += close(v[i].fd) == 0;
	check(closed == nv, "the server closes the %d victims late (%d closed)", nv, closed);
	sleep_ms(100); /* kbstackd has served those closes before the others are used */
	bad = conns_serve_and_close(c, nc, 4096);
	check(bad == 0, "the %d connections open throughout and the %d accepted while PCBs ran "
	      "short: 4096 bytes each way, byte-exact, then EOF (%d of %d failed)", NB, nn, bad,
	      nc);
	close(l);
}
