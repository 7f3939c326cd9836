/*
 * kbs_req.c — what applications ask of kbstackd through their regions:
 * the doorbell sweep, the control mailbox of each slot (listen, connect,
 * shutdown, setsockopt, close), and the closes a process's exit implies.
 *
 * A request is read once: req_seq with acquire, then op and arguments,
 * each into a local that is validated before use. A slot whose state
 * cannot take a request, or a context that broke the contract, gets
 * nothing served.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "kbq_atomic.h"
#include "kbq_hold.h"
#include "kbq_ring.h"
#include "kbs_ctx.h"
#include "kbs_netif.h"
#include "kbs_stats.h"

struct kbs_ctx *kbs_ctxs;

static void kbs_req_done(struct kbs_sock *s, uint32_t seq, int rc)
{
	struct kbq_sock *q = kbs_qs(s);

	kbq_st(&q->done_rc, rc);
	kbq_st_rel(&q->done_seq, seq); /* after done_rc; pairs with the app's acquire */
	s->done_seq = seq;
	kbs_wake_event(s);
}

/*
 * The backlog bounds the accept queue as Linux's does (backlog + 1
 * connections, up to KBQ_ACCEPTQ: Linux's somaxconn), kept in aq_limit for
 * kbs_tcp_listen_input. lwIP's own backlog counts only half-open
 * connections (SYN_RCVD; 16 bits: lwip-patches/0017): KBQ_ACCEPTQ, so
 * kbs_tcp_listen_input, which keeps queued within aq_limit, half-open
 * within half the slots (or aq_limit if more) and both together within
 * the queue, is what drops a SYN, counted — never lwIP, silently.
 *
 * Any error makes the application keep its listener on the kernel
 * (KBQ_FB_REFUSED): so does a context whose KBQ_NLISTEN accept queues are
 * all taken.
 */
static int kbs_op_listen(struct kbs_sock *s, uint32_t port, uint32_t backlog,
			 uint32_t inherit)
{
	struct tcp_pcb *pcb, *lpcb;
	err_t err;
	int rc;

	if (s->life != KBS_L_OPEN || !port || port > 0xffff)
		return -EINVAL;
	/* The kernel's rule for the same bind(): the request did not have to
	 * come through the kernel socket's bind, so it is checked here. */
	if (port < 1024 && !s->ctx->may_bind_low) {
		KBS_STAT_ADD(listen_refused_priv, 1);
		return -EACCES;
	}
	rc = kbs_life_lq_take(s);
	if (rc) {
		KBS_STAT_ADD(listen_refused_queues, 1);
		return rc;
	}
	pcb = tcp_new();
	if (!pcb) {
		rc = -ENOBUFS;
		goto err_lq;
	}
	ip_set_option(pcb, SOF_REUSEADDR);
	err = tcp_bind(pcb, IP4_ADDR_ANY, (u16_t)port);
	if (err != ERR_OK)
		goto err_pcb;
	lpcb = tcp_listen_with_backlog_and_err(pcb, TCP_DEFAULT_LISTEN_BACKLOG, &err);
	if (!lpcb)
		goto err_pcb;
	s->inherit = inherit & (KBQ_OPT_F_NODELAY | KBQ_OPT_F_KEEPALIVE);
	tcp_backlog_set(lpcb, KBQ_ACCEPTQ);
	s->aq_limit = (backlog < KBQ_ACCEPTQ - 1 ? backlog : KBQ_ACCEPTQ - 1) + 1;
	kbs_life_attach(s, lpcb);
	kbs_tcp_addrs(s, lpcb);
	kbs_life_set(s, KBS_L_LISTEN); /* publishes the queue's index (release) */
	return 0;

err_pcb:
	rc = -kbs_errno(err);
	tcp_close(pcb);
err_lq:
	kbs_life_lq_put(s);
	return rc;
}

/* 1 when the request completes later (connect in progress). */
static int kbs_op_connect(struct kbs_sock *s, uint32_t seq, uint32_t ip, uint32_t port,
			  uint32_t lport)
{
	struct tcp_pcb *pcb;
	ip_addr_t dst;
	err_t err;

	if (s->life != KBS_L_OPEN || !port || port > 0xffff || lport > 0xffff)
		return -EISCONN;
	if (lport && lport < 1024 && !s->ctx->may_bind_low)
		return -EACCES;
	pcb = tcp_new();
	if (!pcb)
		return -ENOBUFS;
	if (lport && (err = tcp_bind(pcb, IP4_ADDR_ANY, (u16_t)lport)) != ERR_OK) {
		tcp_close(pcb);
		return -kbs_errno(err);
	}
	ip_addr_set_ip4_u32(&dst, ip);
	kbs_tcp_flow_attach(s, pcb);
	s->conn_seq = seq;
	kbs_life_set(s, KBS_L_CONNECTING);
	err = tcp_connect(pcb, &dst, (u16_t)port, kbs_tcp_on_connected);
	if (err != ERR_OK) {
		kbs_life_detach(s);
		tcp_abort(pcb);
		kbs_life_set(s, KBS_L_OPEN);
		KBS_STAT_ADD(tcp_connect_failed, 1);
		return -kbs_errno(err);
	}
	kbs_tcp_addrs(s, pcb);
	return 1;
}

/* A listener's connections queued but never accepted: reset them. The
 * entries are the application's to overwrite, so each is checked to be a
 * connection of this listener before it is touched. */
static void kbs_listener_drop_queue(struct kbs_sock *l)
{
	struct kbq_acceptq *aq;
	uint32_t head, i, n;

	if (l->lq == KBS_LQ_NONE)
		return;
	aq = kbs_aq(l);
	head = kbq_ld_acq(&aq->head);
	n = l->aq_tail - head;
	if (n > KBQ_ACCEPTQ)
		return;
	for (i = 0; i < n; i++) {
		uint32_t slot = kbq_ld(&aq->slot[(head + i) % KBQ_ACCEPTQ]);
		struct kbs_sock *s;

		if (slot >= l->ctx->nslots)
			continue;
		s = &l->ctx->s[slot];
		if (s->life == KBS_L_ESTABLISHED && s->listener == l->slot) {
			kbs_life_set(s, KBS_L_DRAINING);
			kbs_life_abort(s, ECONNABORTED);
		}
	}
}

void kbs_req_close(struct kbs_sock *s)
{
	switch (s->life) {
	case KBS_L_LISTEN:
		kbs_listener_drop_queue(s);
		kbs_life_abort(s, 0); /* closes the listener's PCB, frees the slot */
		return;
	case KBS_L_OPEN:
	case KBS_L_CLOSED:
		kbs_listener_drop_queue(s); /* a listener whose PCB lwIP dropped */
		if (!s->pcb) {
			/* A shutdown's FIN may finish the connection (LAST_ACK
			 * acknowledged) before the close: closed by FIN all the same. */
			if (s->fin_done)
				KBS_STAT_ADD(tcp_closed, 1);
			kbs_life_free(s);
			return;
		}
		break;
	case KBS_L_CONNECTING:
		kbs_life_set(s, KBS_L_DRAINING);
		kbs_life_abort(s, 0); /* no connection yet: reset, as Linux does */
		return;
	case KBS_L_ESTABLISHED:
		break;
	default: /* FREE, DRAINING: nothing to close */
		return;
	}
	kbs_life_set(s, KBS_L_DRAINING);
	if (!s->pcb) {
		kbs_life_free(s);
		return;
	}
	/* Credit what the app read (one checked read of rx_head): a full window
	 * lets tcp_close send FIN, not RST. Unread data left: reset, as Linux. */
	kbs_tcp_rx_credit(s);
	if (!s->pcb)
		return;
	if (s->rx_seen != s->rx_tail) {
		KBS_STAT_ADD(tcp_reset_unread, 1);
		kbs_life_abort(s, ECONNRESET);
		return;
	}
	KBS_STAT_ADD(tcp_closed, 1);
	kbs_tcp_tx_push(s);
}

static void kbs_op_setopt(struct kbs_sock *s, uint32_t opt, uint32_t val)
{
	struct tcp_pcb *pcb = s->pcb;
	uint32_t bit = opt == KBQ_OPT_NODELAY ? KBQ_OPT_F_NODELAY :
		       opt == KBQ_OPT_KEEPALIVE ? KBQ_OPT_F_KEEPALIVE : 0;

	if (s->life == KBS_L_LISTEN) { /* for the connections it accepts from now on */
		s->inherit = val ? s->inherit | bit : s->inherit & ~bit;
		return;
	}
	if (!pcb)
		return;
	switch (opt) {
	case KBQ_OPT_NODELAY:
		if (val)
			tcp_nagle_disable(pcb);
		else
			tcp_nagle_enable(pcb);
		break;
	case KBQ_OPT_KEEPALIVE:
		if (val) {
			ip_set_option(pcb, SOF_KEEPALIVE);
			tcp_tmr_list(pcb); /* its timer runs from now (lwip-patches/0028) */
		} else {
			ip_reset_option(pcb, SOF_KEEPALIVE);
		}
		break;
	case KBQ_OPT_KEEPIDLE: /* seconds, as Linux's TCP_KEEPIDLE (max 32767) */
		pcb->keep_idle = (val > 32767 ? 32767 : val) * 1000;
		break;
	case KBQ_OPT_KEEPINTVL:
		pcb->keep_intvl = (val > 32767 ? 32767 : val) * 1000;
		break;
	case KBQ_OPT_KEEPCNT:
		pcb->keep_cnt = val > 127 ? 127 : val;
		break;
	}
}

static void kbs_sock_request(struct kbs_sock *s)
{
	struct kbq_sock *q = kbs_qs(s);
	uint32_t seq = kbq_ld_acq(&q->req_seq); /* pairs with the app's release */
	uint32_t op, a0, a1, a2;
	int rc = 0;

	if (seq == s->done_seq)
		return;
	op = kbq_ld(&q->req_op);
	a0 = kbq_ld(&q->req_arg[0]);
	a1 = kbq_ld(&q->req_arg[1]);
	a2 = kbq_ld(&q->req_arg[2]);
	/* Release after reading op and arguments: the app may now write the
	 * next request over them (pairs with its acquire wait in req_post). */
	kbq_st_rel(&q->taken_seq, seq);
	if (s->life == KBS_L_DRAINING) { /* closed already: nothing to do */
		s->done_seq = seq;
		return;
	}
	switch (op) {
	case KBQ_OP_LISTEN:
		rc = kbs_op_listen(s, a0, a1, a2);
		break;
	case KBQ_OP_CONNECT:
		rc = kbs_op_connect(s, seq, a0, a1, a2);
		if (rc == 1) { /* answered by kbs_tcp_on_connected or kbs_life */
			s->done_seq = seq;
			return;
		}
		break;
	case KBQ_OP_SHUT_WR:
		s->shut_wr = true;
		kbs_tcp_tx_push(s);
		break;
	case KBQ_OP_SETOPT:
		kbs_op_setopt(s, a0, a1);
		break;
	case KBQ_OP_CLOSE:
		s->done_seq = seq;
		kbs_req_close(s); /* the slot may be free after this */
		return;
	default:
		rc = -EINVAL;
	}
	kbs_req_done(s, seq, rc);
}

/* The application has claimed free slot s: it is open from now on. */
static void kbs_sock_open(struct kbs_sock *s)
{
	s->ev = 0;
	s->fin_sent = s->close_called = s->shut_wr = false;
	kbs_life_set(s, KBS_L_OPEN);
}

static void kbs_sock_service(struct kbs_ctx *c, uint32_t slot)
{
	struct kbs_sock *s;

	if (c->broken)
		return;
	if (slot >= c->nslots) { /* KB_SLOTS: not the application's to ring */
		kbs_life_violation(c, KBS_V_SLOT);
		return;
	}
	s = &c->s[slot];
	if (s->life == KBS_L_FREE) {
		/* The application claims a slot with a CAS of the shared state;
		 * anything but FREE there now is that claim. (A slot rung while
		 * free costs no private memory: set up only once claimed.) */
		if (kbq_ld_acq(&kbq_sock_at(c->r, slot)->state) == KBQ_S_FREE)
			return;
		kbs_sock_open(kbs_sock_at(c, slot));
	}
	kbs_sock_request(s);
	if (s->pcb && (s->life == KBS_L_ESTABLISHED || s->life == KBS_L_DRAINING)) {
		kbs_tcp_rx_credit(s);
		if (s->pcb)
			kbs_tcp_tx_push(s);
	}
}

static void kbs_sock_rung(void *ctx, uint32_t slot)
{
	kbs_sock_service(ctx, slot);
	if (kbs_netif_rx_due()) /* what arrived while this socket sent */
		kbs_life_settle();
}

unsigned kbs_ctxs_service(void)
{
	struct kbs_ctx *c;
	unsigned served = 0;

	for (c = kbs_ctxs; c; c = c->next) {
		if (c->broken) { /* served no more: not even swept */
			if (!c->reset_done) {
				c->reset_done = true;
				kbs_ctx_reset_all(c);
			}
			continue;
		}
		served += kbq_bell_sweep(c->r, c->nslots, kbs_sock_rung, c);
	}
	kbs_life_settle();
	return served;
}

/*
 * What a process's exit does to a socket it held, as Linux closes a dead
 * process's descriptors: a listener stops (connections still queued are
 * reset); a connection sends what the application had queued, then FIN
 * (RST if it left data unread). Data a write() accepted is never dropped.
 */
static void kbs_sock_exit_close(struct kbs_sock *s)
{
	KBS_STAT_ADD(tcp_closed_exit, 1);
	kbs_req_close(s);
}

/*
 * No live process holds s any more: close it as the exit of its last
 * holder would — unless a live process dropping it at the same moment has
 * claimed the close (kbq_abi.h, Holding). A slot the application claimed
 * but kbstackd never served (its holder died right after socket() or
 * accept's claim) is opened first and its unserved request dropped, so it
 * is freed like any other.
 */
static void kbs_sock_exit_release(struct kbs_sock *s)
{
	struct kbq_sock *q = kbs_qs(s);
	uint32_t gen = s->gen;

	if (s->life == KBS_L_DRAINING)
		return; /* closed already */
	if (s->life == KBS_L_FREE && kbq_ld_acq(&q->state) != KBQ_S_OPEN)
		return; /* not the application's: nothing to close */
	if (!kbq_cas(&q->closing, &gen, s->gen + 1))
		return; /* claimed: a live process posts the CLOSE */
	if (s->life == KBS_L_FREE) {
		uint32_t seq = kbq_ld_acq(&q->req_seq);

		kbs_sock_open(s);
		s->done_seq = seq;
		kbq_st_rel(&q->taken_seq, seq);
		kbq_st_rel(&q->done_seq, seq);
	}
	kbs_sock_exit_close(s);
}

void kbs_ctx_proc_gone(struct kbs_ctx *c, uint32_t idx)
{
	enum { CHUNK = 64 }; /* words at a time: 4096 slots */
	uint64_t gone[CHUNK], others[CHUNK];
	uint32_t from, w, n;

	/* Each word of its row read and cleared at once, then the other rows
	 * read: the order a dropping process uses (kbq_hold.h), a chunk at a
	 * time. The rows are application-written: they can only name this
	 * context's slots. */
	for (from = 0; from < c->nslots / 64; from += CHUNK) {
		n = c->nslots / 64 - from < CHUNK ? c->nslots / 64 - from : CHUNK;
		for (w = 0; w < n; w++)
			gone[w] = kbq_xchg_sc(&c->r->held[idx][from + w], 0);
		kbq_held_union(&c->r->held[0][0], KBQ_HELD_WORDS, from, n, c->procs, idx, others);
		for (w = 0; w < n; w++) {
			uint64_t m = gone[w] & ~others[w];

			while (m) {
				uint32_t b = (uint32_t)__builtin_ctzll(m);

				m &= m - 1;
				kbs_sock_exit_release(kbs_sock_at(c, (from + w) * 64 + b));
			}
		}
	}
	kbs_life_settle();
}

bool kbs_ctx_close_all(struct kbs_ctx *c)
{
	uint32_t i;

	for (i = 0; i < c->nslots; i++) {
		struct kbs_sock *s = &c->s[i];

		if (s->life == KBS_L_FREE) {
			/* claimed by the app, never used: nothing to close;
			 * free again, for kbs_slot_claim too */
			uint32_t st = KBQ_S_OPEN;

			kbq_cas(&kbq_sock_at(c->r, i)->state, &st, KBQ_S_FREE);
			kbs_ctx_slot_freed(c, i);
		} else if (s->life != KBS_L_DRAINING) {
			kbs_sock_exit_close(s);
		}
	}
	kbs_life_settle();
	return kbs_ctx_idle(c);
}

bool kbs_ctx_idle(const struct kbs_ctx *c)
{
	return c->nsocks == 0;
}

void kbs_ctx_reset_all(struct kbs_ctx *c)
{
	uint32_t i;

	for (i = 0; i < c->nslots; i++)
		if (c->s[i].life != KBS_L_FREE)
			kbs_life_abort(&c->s[i], ECONNRESET);
	kbs_life_settle();
}

unsigned kbs_ctxs_count(struct kbs_ctxs_counts *n)
{
	struct kbs_ctx *c;
	struct stat st;
	unsigned ctxs = 0, i;

	memset(n, 0, sizeof(*n));
	for (c = kbs_ctxs; c; c = c->next) {
		ctxs++;
		/* Application-written: summed for display only, never trusted. */
		for (i = 0; i < KBQ_FB_NSTAT; i++)
			n->fallback[i] += kbq_ld(&c->r->fallback[i]);
		for (i = 0; i < KBQ_NWAITERS && !c->orphan; i++)
			n->waiters += kbq_ld(&c->r->waiter[i].used) & 1;
		n->procs += c->nprocs;
		n->socks += c->nsocks;
		if (fstat(c->memfd, &st) == 0)
			n->region_kib += (uint64_t)st.st_blocks / 2; /* 512-byte blocks */
	}
	return ctxs;
}
