/*
 * kbs_trim.c — idle rings given back to the system.
 *
 * A ring's pages stay resident once touched (the region is a memfd), and a
 * long connection wraps through all of them: 256 KiB each way, whether it
 * moves a byte again or not. A socket that had an event is watched; once a
 * whole trim period (KBS_TRIM_MS) passed without one, its rings give their
 * pages back — a hole punched in the memfd; the next bytes fault fresh zero
 * pages in, on either side (kbq_abi.h, Trimming):
 *   - a connection's rings once the application has read all of rx
 *     (rx_head, read once, equal to what kbstackd wrote; kbstackd is the
 *     only writer and the application reads only below rx_tail) and the
 *     peer acknowledged all of tx, with no writer inside it (tx_busy 0
 *     while tx_trim is 1) and nothing new queued;
 *   - both rings of a slot back to FREE (the application has no socket on
 *     it; a new flow starts both rings at index 0).
 * An application that lies about rx_head or tx_busy can only make its own
 * rings read zeros or keep their pages.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#include "kbq_atomic.h"
#include "kbs_ctx.h"
#include "kbs_stats.h"

static void kbs_trim_ring(struct kbs_ctx *c, size_t off)
{
	static bool warned;

	if (fallocate(c->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)off, KBQ_RING) == 0) {
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

/* The tx ring of s, if no writer is inside it and everything the
 * application queued was sent and acknowledged — or, once the connection
 * is CLOSED (no PCB: nothing will be sent), whatever it holds. */
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
	if (idle)
		kbs_trim_ring(s->ctx, KBQ_TX_OFF + (size_t)s->slot * KBQ_RING);
	kbq_st_rel(&q->tx_trim, 0); /* after the hole: the writer's pages are new */
	return idle;
}

/* True when s is done with: off the watch list. */
static bool kbs_trim_one(struct kbs_sock *s)
{
	struct kbs_ctx *c = s->ctx;

	if (s->trim_busy) { /* an event this period: look again next one */
		s->trim_busy = false;
		return false;
	}
	switch (s->life) {
	case KBS_L_FREE:
		kbs_trim_ring(c, KBQ_RX_OFF + (size_t)s->slot * KBQ_RING);
		kbs_trim_ring(c, KBQ_TX_OFF + (size_t)s->slot * KBQ_RING);
		return true;
	case KBS_L_ESTABLISHED:
	case KBS_L_CLOSED:
		if (kbq_ld_acq(&kbs_qs(s)->rx_head) != s->rx_tail)
			return false; /* bytes not yet read: they need their pages */
		if (!kbs_trim_tx(s))
			return false; /* bytes in flight, or a writer inside */
		kbs_trim_ring(c, KBQ_RX_OFF + (size_t)s->slot * KBQ_RING);
		return true;
	case KBS_L_DRAINING: /* kbstackd still reads its tx ring */
		return false;
	default: /* OPEN, LISTEN, CONNECTING: no bytes yet */
		return true;
	}
}

void kbs_trim_pass(void)
{
	for (struct kbs_ctx *c = kbs_ctxs; c; c = c->next) {
		struct kbs_sock **pp = &c->trim_list, *s;

		while ((s = *pp)) {
			if (!kbs_trim_one(s)) {
				pp = &s->trim_next;
				continue;
			}
			*pp = s->trim_next;
			s->trim_next = NULL;
			s->trim_listed = false;
		}
	}
}
