/*
 * kbs_life.c — the lifecycle of a socket slot: the one place its state
 * changes, and the one that knows whether lwIP may free its PCB.
 *
 * The state is kbstackd's own (struct kbs_sock.life); kbq_sock.state in
 * the region is a copy published for the application, never read back.
 *
 * A PCB pointer never outlives the PCB. lwIP frees PCBs on paths that
 * call no application callback — TIME_WAIT expiry, tcp_kill_timewait when
 * PCBs run short, kb's SYN-over-TIME_WAIT hook, a tcp_close that finishes
 * at once — so every PCB a slot holds carries an lwIP "ext arg" whose
 * destroy callback runs inside tcp_free(): the slot drops the pointer
 * there, whatever freed it. The state change that follows waits for
 * kbs_life_settle(), called by the loop when lwIP returns: the error
 * callback that may come with the same loss (before or after the free,
 * depending on lwIP's path) is known by then, so the application never
 * sees a clean end that is really a reset.
 *
 * Inside an lwIP callback (kbs_cb.pcb set), a PCB freed by what the
 * callback did sets kbs_cb.gone: the callback must return ERR_ABRT, lwIP's
 * contract for "this PCB no longer exists".
 */
#include <errno.h>

#include <string.h>
#include <sys/mman.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "kbq_atomic.h"
#include "kbs_ctx.h"
#include "kbs_stats.h"

struct kbs_cb kbs_cb;

static uint8_t kbs_ext_id;
static struct kbs_sock *kbs_settle_list;

/* What the application sees for each private state. */
static const uint32_t kbs_life_shared[KBS_L_NSTATES] = {
	[KBS_L_FREE]        = KBQ_S_FREE,
	[KBS_L_OPEN]        = KBQ_S_OPEN,
	[KBS_L_LISTEN]      = KBQ_S_LISTEN,
	[KBS_L_CONNECTING]  = KBQ_S_CONNECTING,
	[KBS_L_ESTABLISHED] = KBQ_S_ESTABLISHED,
	[KBS_L_CLOSED]      = KBQ_S_CLOSED,
	[KBS_L_DRAINING]    = KBQ_S_CLOSED, /* the app has let go of it */
};

/* Allowed transitions: bit t of kbs_life_next[f] allows f → t. */
#define B(x) (1u << (x))
static const uint32_t kbs_life_next[KBS_L_NSTATES] = {
	[KBS_L_FREE]        = B(KBS_L_OPEN) | B(KBS_L_ESTABLISHED),
	[KBS_L_OPEN]        = B(KBS_L_LISTEN) | B(KBS_L_CONNECTING) | B(KBS_L_DRAINING) |
			      B(KBS_L_CLOSED) | B(KBS_L_FREE),
	[KBS_L_LISTEN]      = B(KBS_L_FREE) | B(KBS_L_CLOSED),
	[KBS_L_CONNECTING]  = B(KBS_L_ESTABLISHED) | B(KBS_L_CLOSED) | B(KBS_L_OPEN) |
			      B(KBS_L_DRAINING),
	[KBS_L_ESTABLISHED] = B(KBS_L_CLOSED) | B(KBS_L_DRAINING),
	[KBS_L_CLOSED]      = B(KBS_L_DRAINING) | B(KBS_L_FREE),
	[KBS_L_DRAINING]    = B(KBS_L_FREE),
};
#undef B

void kbs_life_set(struct kbs_sock *s, enum kbs_life to)
{
	enum kbs_life from = (enum kbs_life)s->life;

	if (from == to)
		return;
	LWIP_ASSERT("kbs_life_set: transition not in the table",
		    kbs_life_next[from] & (1u << to));
	if (from == KBS_L_FREE) {
		s->ctx->nsocks++;
		s->ctx->free_bits[s->slot / 64] &= ~(1ull << (s->slot % 64));
	} else if (to == KBS_L_FREE) {
		s->ctx->nsocks--;
		kbs_ctx_slot_freed(s->ctx, s->slot);
	}
	s->life = (uint8_t)to;
	/* Release: what the state announces (indices, addresses, ev) was
	 * written first. Pairs with the application's acquire load. */
	kbq_st_rel(&kbs_qs(s)->state, kbs_life_shared[to]);
}

void kbs_life_ev(struct kbs_sock *s, uint32_t ev, int err)
{
	struct kbq_sock *q = kbs_qs(s);

	if (err)
		kbq_st(&q->so_error, err);
	s->ev |= ev;
	kbq_st_rel(&q->ev, s->ev); /* after so_error: the app reads ev first */
	kbs_wake_event(s);
}

/* ---- PCBs ------------------------------------------------------------ */

static void kbs_pcb_destroyed(u8_t id, void *data)
{
	struct kbs_sock *s = data;
	struct tcp_pcb *pcb;

	(void)id;
	if (!s || !s->pcb)
		return;
	pcb = s->pcb;
	s->pcb = NULL;
	if (pcb == kbs_cb.pcb)
		kbs_cb.gone = true;
	kbs_life_lost(s, ERR_OK);
}

static const struct tcp_ext_arg_callbacks kbs_ext_cbs = {
	.destroy = kbs_pcb_destroyed,
};

void kbs_life_init(void)
{
	kbs_ext_id = tcp_ext_arg_alloc_id();
}

/* A context in one mapping: the struct, its slots' private side, the
 * event list and the free bitmap (no malloc block hangs off it). */
static size_t kbs_ctx_bytes(uint32_t nslots)
{
	return sizeof(struct kbs_ctx) + (size_t)nslots * (sizeof(struct kbs_sock) + sizeof(uint32_t)) +
	       nslots / 8;
}

/* Every slot free, every accept queue free, no event listed. */
static void ctx_fresh(struct kbs_ctx *c)
{
	memset(c->free_bits, 0xff, (size_t)c->nslots / 8);
	c->free_lo = 0;
	memset(c->lq_free, 0xff, sizeof(c->lq_free));
	c->evq_gen = 1;
	c->tx_wait_list = NULL;
}

struct kbs_ctx *kbs_life_ctx_new(uint32_t nslots, uint32_t ring)
{
	struct kbs_ctx *c;

	if (nslots < 64 || nslots > KBQ_MAXSLOTS || nslots % 64 || !kbq_ring_size_ok(ring))
		return NULL;
	/* From mmap, not malloc (which may hand back a used block and clear
	 * it whole): a slot's pages are touched at its first use
	 * (kbs_sock_at), so a context costs what it uses. */
	c = mmap(NULL, kbs_ctx_bytes(nslots), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (c == MAP_FAILED)
		return NULL;
	c->nslots = nslots;
	c->ring = ring;
	c->evq = (uint32_t *)(c->s + nslots);
	c->free_bits = (uint64_t *)(c->evq + nslots); /* 8-aligned: nslots % 64 == 0 */
	ctx_fresh(c);
	return c;
}

void kbs_life_ctx_clear(struct kbs_ctx *c)
{
	memset(c->s, 0, (size_t)c->nslots * sizeof(c->s[0]));
	ctx_fresh(c);
}

void kbs_life_ctx_free(struct kbs_ctx *c)
{
	munmap(c, kbs_ctx_bytes(c->nslots));
}

static err_t kbs_on_recv_cb(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err);
static err_t kbs_on_sent_cb(void *arg, struct tcp_pcb *pcb, u16_t len);
static void kbs_on_err_cb(void *arg, err_t err);

void kbs_life_attach(struct kbs_sock *s, struct tcp_pcb *pcb)
{
	s->pcb = pcb;
	tcp_arg(pcb, s);
	tcp_ext_arg_set_callbacks(pcb, kbs_ext_id, &kbs_ext_cbs);
	tcp_ext_arg_set(pcb, kbs_ext_id, s);
	if (pcb->state == LISTEN) {
		tcp_accept(pcb, kbs_tcp_on_accept);
		return;
	}
	tcp_recv(pcb, kbs_on_recv_cb);
	tcp_sent(pcb, kbs_on_sent_cb);
	tcp_err(pcb, kbs_on_err_cb);
}

void kbs_life_detach(struct kbs_sock *s)
{
	struct tcp_pcb *pcb = s->pcb;

	if (!pcb)
		return;
	tcp_ext_arg_set(pcb, kbs_ext_id, NULL);
	tcp_arg(pcb, NULL);
	if (pcb->state == LISTEN) {
		tcp_accept(pcb, NULL);
	} else {
		tcp_recv(pcb, NULL); /* lwIP's own handler: discard data, close on FIN */
		tcp_sent(pcb, NULL);
		tcp_err(pcb, NULL);
	}
	s->pcb = NULL;
}

void kbs_life_free(struct kbs_sock *s)
{
	struct kbq_sock *q = kbs_qs(s);

	kbs_life_detach(s);
	kbs_life_lq_put(s);
	s->gen++;
	kbq_st(&q->gen, s->gen);
	/* The new generation is open to a close claim (kbq_abi.h, Holding);
	 * a late claim on the old one fails. Both before the state's release. */
	kbq_st(&q->closing, s->gen);
	s->fin_sent = s->shut_wr = s->close_called = s->fin_done = false;
	kbs_life_set(s, KBS_L_FREE);
	kbs_wake_event(s);
}

static void kbs_life_connect_failed(struct kbs_sock *s, err_t err);

void kbs_life_abort(struct kbs_sock *s, int err)
{
	struct tcp_pcb *pcb = s->pcb;

	kbs_life_detach(s);
	if (pcb) {
		if (pcb->state == LISTEN) {
			tcp_close(pcb); /* a listener has no peer to reset */
		} else {
			tcp_abort(pcb); /* frees it: no callback, we detached */
			if (pcb == kbs_cb.pcb)
				kbs_cb.gone = true;
		}
	}
	switch (s->life) {
	case KBS_L_DRAINING: /* the app let go of it, or never had it */
	case KBS_L_LISTEN:
	case KBS_L_OPEN:
		kbs_life_free(s);
		break;
	case KBS_L_CONNECTING:
		kbs_life_connect_failed(s, ERR_RST);
		break;
	case KBS_L_ESTABLISHED:
		kbs_life_ev(s, KBQ_EV_ERR | KBQ_EV_RDHUP, err);
		kbs_life_set(s, KBS_L_CLOSED);
		break;
	default: /* FREE, CLOSED: no flow left */
		break;
	}
}

/* ---- accept queues -------------------------------------------------- */

/* The lowest free one, so a context touches the pages of as few queues as
 * it has listeners at once. */
int kbs_life_lq_take(struct kbs_sock *s)
{
	struct kbs_ctx *c = s->ctx;
	struct kbq_acceptq *aq;
	uint32_t w, i;

	for (w = 0; w < KBQ_NLISTEN / 64 && !c->lq_free[w]; w++)
		;
	if (w == KBQ_NLISTEN / 64)
		return -ENOBUFS;
	i = w * 64 + (uint32_t)__builtin_ctzll(c->lq_free[w]);
	c->lq_free[w] &= ~(1ull << (i % 64));
	s->lq = i;
	s->aq_tail = 0;
	aq = kbs_aq(s);
	kbq_st(&aq->tail, 0);
	kbq_st(&aq->head, 0);
	kbq_st(&kbs_qs(s)->lq, i); /* published by the state LISTEN (release) */
	return 0;
}

void kbs_life_lq_put(struct kbs_sock *s)
{
	if (s->lq == KBS_LQ_NONE)
		return;
	s->ctx->lq_free[s->lq / 64] |= 1ull << (s->lq % 64);
	s->lq = KBS_LQ_NONE;
}

/* ---- losses reported by lwIP ----------------------------------------- */

void kbs_life_lost(struct kbs_sock *s, err_t err)
{
	if (!s->lost) {
		s->lost = true;
		s->lost_err = err;
		s->settle_next = kbs_settle_list;
		kbs_settle_list = s;
	} else if (err != ERR_OK) {
		s->lost_err = err;
	}
}

/* The connect of s failed with lwIP's err. */
static void kbs_life_connect_failed(struct kbs_sock *s, err_t err)
{
	struct kbq_sock *q = kbs_qs(s);
	int e = err == ERR_RST ? ECONNREFUSED : err == ERR_ABRT ? ETIMEDOUT :
		err == ERR_OK ? ECONNRESET : kbs_errno(err);

	KBS_STAT_ADD(tcp_connect_failed, 1);
	kbq_st(&q->done_rc, -e);
	kbq_st_rel(&q->done_seq, s->conn_seq); /* after done_rc */
	s->done_seq = s->conn_seq;
	kbs_life_ev(s, KBQ_EV_ERR | KBQ_EV_RDHUP, e);
	kbs_life_set(s, KBS_L_CLOSED);
}

static void kbs_life_settle_one(struct kbs_sock *s, err_t err)
{
	switch (s->life) {
	case KBS_L_CONNECTING:
		kbs_life_connect_failed(s, err);
		return;
	case KBS_L_DRAINING:
		kbs_life_free(s);
		return;
	case KBS_L_ESTABLISHED:
	case KBS_L_LISTEN:
		break;
	default: /* OPEN, CLOSED, FREE: nothing held the PCB for the app */
		return;
	}
	if (err == ERR_RST)
		KBS_STAT_ADD(tcp_reset_peer, 1);
	else if (err != ERR_OK && err != ERR_CLSD)
		KBS_STAT_ADD(tcp_aborted, 1);
	if (err == ERR_OK || err == ERR_CLSD) {
		/* Not an error: both FINs went through (lwIP's last ACK, or a
		 * TIME_WAIT PCB freed). Reads drain then see EOF; writes EPIPE. */
		s->fin_done = true;
		kbs_life_ev(s, KBQ_EV_RDHUP | KBQ_EV_WRDONE, 0);
	} else
		kbs_life_ev(s, KBQ_EV_ERR | KBQ_EV_RDHUP, kbs_errno(err));
	kbs_life_set(s, KBS_L_CLOSED);
}

void kbs_life_settle(void)
{
	while (kbs_settle_list) {
		struct kbs_sock *s = kbs_settle_list;

		kbs_settle_list = s->settle_next;
		s->settle_next = NULL;
		s->lost = false;
		kbs_life_settle_one(s, s->lost_err);
	}
}

/* ---- contract ---------------------------------------------------------- */

void kbs_life_violation(struct kbs_ctx *c, enum kbs_viol why)
{
	if (c->broken)
		return;
	c->broken = (uint8_t)why;
	switch (why) {
	case KBS_V_RING:    KBS_STAT_ADD(ctx_reset_ring, 1); break;
	case KBS_V_ACCEPT:  KBS_STAT_ADD(ctx_reset_accept, 1); break;
	case KBS_V_SLOT:    KBS_STAT_ADD(ctx_reset_slot, 1); break;
	default: break;
	}
}

/* ---- lwIP's entry points for a slot's PCB ----------------------------- */

/*
 * Each callback runs with kbs_cb naming its PCB (kbs_cb_enter), so that
 * whatever frees that PCB meanwhile (an abort, a tcp_close that finishes
 * at once) is known, and the callback answers ERR_ABRT as lwIP requires.
 */
static err_t kbs_on_recv_cb(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct kbs_cb saved;

	(void)err;
	if (!arg) { /* detached meanwhile: discard, as lwIP's own handler does */
		if (p) {
			tcp_recved(pcb, p->tot_len);
			pbuf_free(p);
		}
		return ERR_OK;
	}
	saved = kbs_cb_enter(pcb);
	return kbs_cb_leave(saved, kbs_tcp_on_recv(arg, pcb, p));
}

static err_t kbs_on_sent_cb(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct kbs_cb saved;

	if (!arg)
		return ERR_OK;
	saved = kbs_cb_enter(pcb);
	kbs_tcp_on_sent(arg, len);
	return kbs_cb_leave(saved, ERR_OK);
}

/* lwIP has freed the PCB, or frees it right after this returns. */
static void kbs_on_err_cb(void *arg, err_t err)
{
	struct kbs_sock *s = arg;

	if (!s)
		return;
	if (s->pcb) { /* freed after this call: the destroy callback must not
		       * run for a slot that may be reused by then */
		tcp_ext_arg_set(s->pcb, kbs_ext_id, NULL);
		s->pcb = NULL;
	}
	kbs_life_lost(s, err);
}
