/*
 * kbs_trim.c — idle rings given back to the system.
 *
 * A ring's pages stay resident once touched (the region is a memfd), and a
 * long connection wraps through all of them: KB_RING each way, whether it
 * moves a byte again or not. A socket that had an event is watched; once a
 * whole trim period (KBS_TRIM_MS) passed without one, the rings it wrote
 * since they were last trimmed (trim_rx, trim_tx) give their pages back —
 * a hole punched in the memfd; the next bytes fault fresh zero pages in, on
 * either side (kbq_abi.h, Trimming):
 *   - rx once the application has read all of it (rx_head, read once,
 *     equal to what kbstackd wrote): kbstackd is its only writer and the
 *     application reads only below rx_tail;
 *   - tx once no writer is inside it (tx_busy 0 while tx_trim is 1) and,
 *     while the connection is established, the peer acknowledged all of
 *     it with nothing new queued: lwIP's segments point into the ring until
 *     acknowledged. A CLOSED connection's (no PCB) whatever it holds, as a
 *     slot's that is not connected (FREE, OPEN, LISTEN, CONNECTING: no data
 *     flows there);
 *   - never while DRAINING (kbstackd still sends from the ring).
 * A punch unmaps the range from every mapping of the region, so one costs
 * more the more the application mapped it: a pass stops after
 * KBS_TRIM_PUNCHES of them or KBS_TRIM_US and resumes in the next loop
 * iteration, so the port is read in between whatever an application does.
 * An application that lies about rx_head or tx_busy can only make its own
 * rings read zeros or keep their pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "kbq_atomic.h"
#include "kbs_ctx.h"
#include "kbs_stats.h"

static unsigned kbs_trim_left;   /* punches left in this call */
static uint64_t kbs_trim_until;  /* time (ns) after which this call starts none */

static uint64_t kbs_trim_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static bool kbs_trim_spent(void)
{
	return !kbs_trim_left || kbs_trim_ns() > kbs_trim_until;
}

static void kbs_trim_ring(struct kbs_ctx *c, size_t off)
{
	static bool warned;

	if (kbs_trim_left)
		kbs_trim_left--;
	if (c->memfd < 0) {
		/* A region of the fuzz targets and unit tests (private
		 * anonymous memory, no memfd): its pages dropped read back as
		 * zeros, as a hole does, so their stream checks see a trim
		 * that came early. */
		if (madvise((char *)c->r + off, c->ring, MADV_DONTNEED) == 0)
			KBS_STAT_ADD(ring_trims, 1);
		return;
	}
	if (fallocate(c->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, c->ring) == 0) {
		KBS_STAT_ADD(ring_trims, 1);
	} else if (!warned) {
		warned = true;
		fprintf(stderr, "kbstackd: cannot give idle ring pages back (fallocate: %s); "
			"regions keep what they touched\n", strerror(errno));
	}
}

void kbs_trim_touch(struct kbs_sock *s)
{
	struct kbs_ctx *c = s->ctx;

	s->trim_busy = true;
	if (!s->trim_listed) {
		s->trim_listed = true;
		s->trim_next = c->trim_list;
		c->trim_list = s;
	}
}

/* The tx ring of s (see above for when). True when it was trimmed. */
static bool kbs_trim_tx(struct kbs_sock *s)
{
	struct kbq_sock *q = kbs_qs(s);
	bool live = s->life == KBS_L_ESTABLISHED, idle;

	if (live && s->tx_acked != s->tx_sent)
		return false; /* lwIP's segments point into the ring */
	kbq_st_sc(&q->tx_trim, 1);
	/* seq_cst, after our store: pairs with the writer's add, then load */
	idle = kbq_ld_sc(&q->tx_busy) == 0 &&
	       (!live || kbq_ld_acq(&q->tx_tail) == s->tx_sent);
	if (idle) {
		kbs_trim_ring(s->ctx, kbq_tx_off(s->slot, s->ctx->ring));
		s->trim_tx = false;
	}
	kbq_st_rel(&q->tx_trim, 0); /* after the hole: the writer's pages are new */
	return idle;
}

/* True when s is done with: off the watch list. */
static bool kbs_trim_one(struct kbs_sock *s)
{
	if (s->trim_busy) { /* an event this period: look again next one */
		s->trim_busy = false;
		return false;
	}
	switch (s->life) {
	case KBS_L_DRAINING: /* kbstackd still sends from its tx ring */
		return false;
	case KBS_L_ESTABLISHED:
	case KBS_L_CLOSED:
		if (kbq_ld_acq(&kbs_qs(s)->rx_head) != s->rx_tail)
			return false; /* bytes not yet read: they need their pages */
		break;
	default: /* FREE, OPEN, LISTEN, CONNECTING: no data flows */
		break;
	}
	if (s->trim_tx && !kbs_trim_tx(s))
		return false; /* bytes in flight, or a writer inside */
	if (s->trim_rx) { /* (both rings of a socket in one go: one over budget at most) */
		kbs_trim_ring(s->ctx, kbq_rx_off(s->slot, s->ctx->ring));
		s->trim_rx = false;
	}
	return true;
}

bool kbs_trim_pass(bool new_period)
{
	struct kbs_ctx *c;

	kbs_trim_left = KBS_TRIM_PUNCHES;
	kbs_trim_until = kbs_trim_ns() + KBS_TRIM_US * 1000u;
	if (new_period)
		for (c = kbs_ctxs; c; c = c->next)
			c->trim_cur = &c->trim_list;
	for (c = kbs_ctxs; c; c = c->next) {
		struct kbs_sock **pp = c->trim_cur, *s;

		while (pp && (s = *pp)) {
			if (kbs_trim_spent()) {
				c->trim_cur = pp; /* the rest next call */
				return true;
			}
			if (!kbs_trim_one(s)) {
				pp = &s->trim_next;
				continue;
			}
			*pp = s->trim_next;
			s->trim_next = NULL;
			s->trim_listed = false;
		}
		c->trim_cur = NULL;
	}
	return false;
}
