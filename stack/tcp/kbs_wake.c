/*
 * kbs_wake.c — telling applications that something happened: a socket's
 * futex word for a thread blocked on it, and at the end of each loop
 * iteration the wake sockets of the waiters (epoll sets, threads in poll,
 * select, accept) that sleep and want one of the sockets that had events.
 * No system call unless somebody sleeps.
 */
#include <limits.h>
#include <linux/futex.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "kbq_atomic.h"
#include "kbs_ctx.h"
#include "kbs_stats.h"

/*
 * Something changed on the socket. seq_cst pairs with the app's waiters++
 * then wake_seq load (kbp_wait): one side always sees the other, so a
 * thread never sleeps through an event; the futex call happens only when
 * a thread is blocked on this socket.
 */
void kbs_wake_event(struct kbs_sock *s)
{
	struct kbq_sock *q = kbs_qs(s);
	struct kbs_ctx *c = s->ctx;

	c->event = true;
	kbs_trim_touch(s);
	if (s->evq_gen != c->evq_gen) { /* once a slot an iteration: evq never overflows */
		s->evq_gen = c->evq_gen;
		c->evq[c->nev++] = s->slot;
	}
	kbq_add_sc(&q->wake_seq, 1);
	if (kbq_ld_sc(&q->waiters))
		syscall(SYS_futex, &q->wake_seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Forget this iteration's event sockets; with want, m gets the union of
 * their waiter masks (read after event_seq was bumped). */
static void kbs_evq_take(struct kbs_ctx *c, uint64_t m[KBQ_NWAITERS / 64], bool want)
{
	uint32_t i, k;

	for (k = 0; k < KBQ_NWAITERS / 64; k++)
		m[k] = 0;
	for (i = 0; want && i < c->nev; i++) {
		struct kbq_sock *q = kbq_sock_at(c->r, c->evq[i]);

		for (k = 0; k < KBQ_NWAITERS / 64; k++)
			m[k] |= kbq_ld_sc(&q->wmask[k]);
	}
	c->nev = 0;
	if (++c->evq_gen == 0) /* every slot unlisted at once; 0 is no generation */
		c->evq_gen = 1;
}

/* One byte on the waiter's wake socket. MSG_DONTWAIT per call: whatever
 * the application did to the socket (flags, a full buffer, a closed
 * peer), the stack loop never waits; a byte not sent is counted. */
static void kbs_waiter_wake(struct kbs_ctx *c, unsigned i)
{
	struct kbq_waiter *w = &c->r->waiter[i];
	static const char one = 1;

	if (c->wfd[i] >= 0 && kbq_ld_sc(&w->sleeping) && !kbq_xchg_sc(&w->pending, 1) &&
	    send(c->wfd[i], &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1)
		KBS_STAT_ADD(wake_dropped, 1);
}

static uint32_t kbs_fence_word;

/* Slot s had an event: into the ready ring of waiter i. */
static void kbs_ready_put(struct kbs_ctx *c, unsigned i, uint32_t s)
{
	struct kbq_readyq *rq = &c->r->readyq[i];
	uint32_t t = c->rq_tail[i];

	if (t - kbq_ld_acq(&rq->head) >= KBQ_READYQ) { /* full, or a head out of range */
		kbq_st_rel(&rq->lost, ++c->rq_lost[i]);
		return;
	}
	kbq_st(&rq->slot[t % KBQ_READYQ], s);
	c->rq_tail[i] = t + 1;
	kbq_st_rel(&rq->tail, t + 1);
}

/* Each socket with an event into the rings of the waiters that want it.
 * The barrier pairs with the waiter's seq_cst wmask write before it looks
 * at the socket (epoll_ctl): either we see its bit, or it sees what we
 * published. (The waiter masks are read again for waking, after event_seq
 * moves: that is the sleep protocol's order, this one the ring's.) */
static void kbs_ready_fill(struct kbs_ctx *c)
{
	uint32_t i, k;

	kbq_add_sc(&kbs_fence_word, 0); /* a full barrier (a locked RMW); also under TSan */
	for (i = 0; i < c->nev; i++) {
		struct kbq_sock *q = kbq_sock_at(c->r, c->evq[i]);

		for (k = 0; k < KBQ_NWAITERS / 64; k++) {
			uint64_t m = kbq_ld(&q->wmask[k]);

			while (m) {
				unsigned w = k * 64 + (unsigned)__builtin_ctzll(m);

				/* only entries with a wake socket registered: the
				 * application's bits alone cost kbstackd nothing */
				if (c->wfd[w] >= 0)
					kbs_ready_put(c, w, c->evq[i]);
				m &= m - 1;
			}
		}
	}
}

void kbs_ctxs_wake(void)
{
	struct kbs_ctx *c;
	uint64_t m[KBQ_NWAITERS / 64];
	unsigned k;

	for (c = kbs_ctxs; c; c = c->next) {
		bool sleepers;

		if (!c->event)
			continue;
		c->event = false;
		kbs_ready_fill(c); /* before event_seq moves: see kbq_abi.h */
		/* seq_cst: a waiter sets its wmask bits, raises sleeping and
		 * sleepers, then rereads event_seq; we bump event_seq, then read
		 * them. One of us sees the other. pending: one write per sleep. */
		kbq_add_sc(&c->r->event_seq, 1);
		sleepers = kbq_ld_sc(&c->r->sleepers) != 0;
		kbs_evq_take(c, m, sleepers);
		for (k = 0; sleepers && k < KBQ_NWAITERS / 64; k++)
			while (m[k]) {
				unsigned b = (unsigned)__builtin_ctzll(m[k]);

				m[k] &= m[k] - 1;
				kbs_waiter_wake(c, k * 64 + b);
			}
	}
}
