/*
 * kbs_sock.c — socket slots in shared memory ↔ lwIP's raw TCP API.
 *
 * Runs on the stack core only. Entry points: doorbells (the app wrote a
 * request, queued tx bytes or consumed rx bytes) and lwIP's callbacks
 * (accept, recv, sent, err, connected). Every index the application wrote
 * is checked before use; a bad one aborts that socket only.
 *
 * Flow control end to end:
 *   rx: lwIP's window is the rx ring's free space. recv copies into the
 *       ring; tcp_recved() credits the window only as the app consumes.
 *   tx: tcp_write() points into the tx ring without copying; the ring space
 *       is released to the app (tx_head) when the peer acknowledges it.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <string.h>
#include <unistd.h>

#include "lwip/ip4_addr.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "kbq_ring.h"
#include "kbs_ctx.h"
#include "kbs_stats.h"

struct kbs_ctx *kbs_ctxs;

static inline struct kbq_sock *qs(const struct kbs_sock *s)
{
	return kbq_sock_at(s->ctx->r, s->slot);
}

#define LOAD(p)        __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define STORE(p, v)    __atomic_store_n(p, v, __ATOMIC_RELEASE)

/*
 * Something changed on the socket. seq_cst pairs with the app's waiters++
 * then wake_seq load (kbp_wait): one side always sees the other, so a
 * thread never sleeps through an event; the futex call happens only when
 * a thread is blocked on this socket.
 */
static void kbs_event(struct kbs_sock *s)
{
	struct kbq_sock *q = qs(s);

	s->ctx->event = true;
	if (!s->in_evq) {
		struct kbs_ctx *c = s->ctx;

		s->in_evq = true;
		if (c->nev < KBS_EVQ)
			c->evq[c->nev] = s->slot;
		c->nev++;
	}
	__atomic_fetch_add(&q->wake_seq, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&q->waiters, __ATOMIC_SEQ_CST))
		syscall(SYS_futex, &q->wake_seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static int kbs_errno(err_t err)
{
	switch (err) {
	case ERR_OK:    return 0;
	case ERR_MEM:   return ENOMEM;
	case ERR_BUF:   return ENOBUFS;
	case ERR_TIMEOUT: return ETIMEDOUT;
	case ERR_RTE:   return EHOSTUNREACH;
	case ERR_INPROGRESS: return EINPROGRESS;
	case ERR_VAL:   return EINVAL;
	case ERR_WOULDBLOCK: return EWOULDBLOCK;
	case ERR_USE:   return EADDRINUSE;
	case ERR_ALREADY: return EALREADY;
	case ERR_ISCONN: return EISCONN;
	case ERR_CONN:  return ENOTCONN;
	case ERR_IF:    return ENETDOWN;
	case ERR_ABRT:  return ECONNABORTED;
	case ERR_RST:   return ECONNRESET;
	case ERR_CLSD:  return ENOTCONN;
	case ERR_ARG:   return EINVAL;
	default:        return EIO;
	}
}

static void kbs_detach_pcb(struct kbs_sock *s)
{
	struct tcp_pcb *pcb = s->pcb;

	if (!pcb)
		return;
	tcp_arg(pcb, NULL);
	if (!s->listening) {
		tcp_recv(pcb, NULL);
		tcp_sent(pcb, NULL);
		tcp_err(pcb, NULL);
	} else {
		tcp_accept(pcb, NULL);
	}
	s->pcb = NULL;
}

/* Give the slot back: the app may claim it again. */
static void kbs_sock_free(struct kbs_sock *s)
{
	struct kbq_sock *q = qs(s);

	kbs_detach_pcb(s);
	q->gen++;
	STORE(&q->state, KBQ_S_FREE);
	if (s->ctx->orphan)
		s->ctx->freed = true; /* kbs_ctl looks whether it has finished */
	s->listening = s->closing = s->fin_sent = s->shut_wr = s->close_called = false;
	kbs_event(s);
}

/* Reset: RST to the peer if there is a flow, then free or mark closed. */
static void kbs_sock_abort(struct kbs_sock *s, int err)
{
	struct kbq_sock *q = qs(s);
	struct tcp_pcb *pcb = s->pcb;

	kbs_detach_pcb(s);
	if (pcb) {
		if (s->listening)
			tcp_close(pcb); /* a listener has no peer to reset */
		else
			tcp_abort(pcb);
	}
	if (s->closing) {
		kbs_sock_free(s);
		return;
	}
	q->so_error = err;
	__atomic_fetch_or(&q->ev, KBQ_EV_ERR | KBQ_EV_RDHUP, __ATOMIC_RELEASE);
	STORE(&q->state, KBQ_S_CLOSED);
	kbs_event(s);
}

static void kbs_req_done(struct kbs_sock *s, uint32_t seq, int rc)
{
	struct kbq_sock *q = qs(s);

	q->done_rc = rc;
	STORE(&q->done_seq, seq);
	s->done_seq = seq;
	kbs_event(s);
}

/* ---- lwIP callbacks ------------------------------------------------- */

static err_t kbs_on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err);
static err_t kbs_on_sent(void *arg, struct tcp_pcb *pcb, u16_t len);
static void kbs_on_err(void *arg, err_t err);
static void kbs_tx_push(struct kbs_sock *s);
static void kbs_rx_credit(struct kbs_sock *s);

static void kbs_sock_addrs(struct kbs_sock *s, struct tcp_pcb *pcb)
{
	struct kbq_sock *q = qs(s);

	q->laddr = ip4_addr_get_u32(ip_2_ip4(&pcb->local_ip));
	q->raddr = ip4_addr_get_u32(ip_2_ip4(&pcb->remote_ip));
	q->lport = lwip_htons(pcb->local_port);
	q->rport = lwip_htons(pcb->remote_port);
}

static void kbs_flow_attach(struct kbs_sock *s, struct tcp_pcb *pcb)
{
	s->pcb = pcb;
	tcp_arg(pcb, s);
	tcp_recv(pcb, kbs_on_recv);
	tcp_sent(pcb, kbs_on_sent);
	tcp_err(pcb, kbs_on_err);
}

/* Claim a free slot for an incoming connection; -1 when none is free. */
static int kbs_slot_claim(struct kbs_ctx *c)
{
	uint32_t i, want;

	for (i = 0; i < KBQ_NSOCKS; i++) {
		struct kbq_sock *q = kbq_sock_at(c->r, i);

		want = KBQ_S_FREE;
		if (LOAD(&q->state) == KBQ_S_FREE &&
		    __atomic_compare_exchange_n(&q->state, &want, KBQ_S_STACK, false,
						__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			return (int)i;
	}
	return -1;
}

static err_t kbs_on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct kbs_sock *l = arg, *s;
	struct kbq_sock *lq, *q;
	uint32_t tail, head;
	int slot;

	if (!l || err != ERR_OK || !pcb)
		return ERR_VAL;
	lq = qs(l);
	tail = lq->aq_tail;
	head = LOAD(&lq->aq_head);
	if (tail - head >= KBQ_ACCEPTQ || (slot = kbs_slot_claim(l->ctx)) < 0) {
		tcp_abort(pcb); /* backlog full or no slot: RST, like a full queue */
		KBS_STAT_ADD(tcp_accept_reset, 1);
		return ERR_ABRT;
	}
	s = &l->ctx->s[slot];
	q = kbq_sock_at(l->ctx->r, (uint32_t)slot);
	memset(s, 0, sizeof(*s));
	s->ctx = l->ctx;
	s->slot = (uint32_t)slot;
	s->done_seq = LOAD(&q->req_seq);
	q->done_seq = s->done_seq;
	q->ev = 0;
	q->so_error = 0;
	q->refs = 0;
	memset(q->wmask, 0, sizeof(q->wmask));
	q->owner = 0;
	q->flags = 0;
	q->listener = l->slot;
	q->rx_tail = q->rx_head = q->tx_tail = q->tx_head = 0;
	kbs_sock_addrs(s, pcb);
	kbs_flow_attach(s, pcb);
	if (l->inherit & KBQ_OPT_F_NODELAY)
		tcp_nagle_disable(pcb);
	if (l->inherit & KBQ_OPT_F_KEEPALIVE)
		ip_set_option(pcb, SOF_KEEPALIVE);
	STORE(&q->state, KBQ_S_ESTABLISHED);
	lq->aq[tail % KBQ_ACCEPTQ] = (uint32_t)slot;
	STORE(&lq->aq_tail, tail + 1); /* pairs with the acceptor's acquire load */
	KBS_STAT_ADD(tcp_accepted, 1);
	kbs_event(l);
	return ERR_OK;
}

static err_t kbs_on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct kbs_sock *s = arg;
	struct kbq_sock *q;
	uint32_t tail, head;
	struct pbuf *b;

	if (!s) {
		if (p) {
			tcp_recved(pcb, p->tot_len);
			pbuf_free(p);
		}
		return ERR_OK;
	}
	q = qs(s);
	if (!p) { /* FIN */
		__atomic_fetch_or(&q->ev, KBQ_EV_RDHUP, __ATOMIC_RELEASE);
		kbs_event(s);
		return ERR_OK;
	}
	if (s->closing) { /* closed by the app: discard (its FIN is on the way) */
		tcp_recved(pcb, p->tot_len);
		pbuf_free(p);
		return ERR_OK;
	}
	tail = q->rx_tail;
	head = LOAD(&q->rx_head);
	if (!kbq_ring_sane(tail, head)) {
		pbuf_free(p);
		kbs_sock_abort(s, EPROTO);
		return ERR_ABRT;
	}
	if (p->tot_len > kbq_ring_free(tail, head)) {
		KBS_STAT_ADD(tcp_rx_full, 1);
		return ERR_MEM; /* lwIP keeps it and offers it again */
	}
	for (b = p; b; b = b->next) {
		kbq_ring_put(kbq_rx_data(s->ctx->r, s->slot), tail, b->payload, b->len);
		tail += b->len;
	}
	STORE(&q->rx_tail, tail); /* pairs with the reader's acquire load */
	pbuf_free(p);
	kbs_event(s);
	return ERR_OK;
}

/* The last byte the app queued is acknowledged and our FIN is out. */
static bool kbs_close_done(struct kbs_sock *s)
{
	struct kbq_sock *q = qs(s);

	return s->close_called && q->tx_head == s->tx_sent;
}

static err_t kbs_on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct kbs_sock *s = arg;
	struct kbq_sock *q;

	if (!s)
		return ERR_OK;
	q = qs(s);
	STORE(&q->tx_head, q->tx_head + len); /* space released to the app */
	kbs_event(s);
	if (s->closing && kbs_close_done(s)) {
		kbs_sock_free(s);
		return ERR_OK;
	}
	kbs_tx_push(s);
	return ERR_OK;
}

static void kbs_on_err(void *arg, err_t err)
{
	struct kbs_sock *s = arg;
	struct kbq_sock *q;
	int e;

	if (!s)
		return;
	q = qs(s);
	s->pcb = NULL; /* lwIP has freed it */
	e = kbs_errno(err);
	if (LOAD(&q->state) == KBQ_S_CONNECTING) {
		e = err == ERR_RST ? ECONNREFUSED : (err == ERR_ABRT ? ETIMEDOUT : e);
		if (s->done_seq != LOAD(&q->req_seq))
			kbs_req_done(s, LOAD(&q->req_seq), -e);
		KBS_STAT_ADD(tcp_connect_failed, 1);
	} else if (err == ERR_RST) {
		KBS_STAT_ADD(tcp_reset_peer, 1);
	} else if (err != ERR_CLSD) {
		KBS_STAT_ADD(tcp_aborted, 1);
	}
	if (s->closing) {
		kbs_sock_free(s);
		return;
	}
	if (err == ERR_CLSD) {
		/* Not an error: both FINs are through after the app shut down
		 * its side only. Reads drain the ring then see EOF; writes EPIPE. */
		__atomic_fetch_or(&q->ev, KBQ_EV_RDHUP | KBQ_EV_WRDONE, __ATOMIC_RELEASE);
	} else {
		q->so_error = e;
		__atomic_fetch_or(&q->ev, KBQ_EV_ERR | KBQ_EV_RDHUP, __ATOMIC_RELEASE);
	}
	STORE(&q->state, KBQ_S_CLOSED);
	kbs_event(s);
}

static err_t kbs_on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct kbs_sock *s = arg;
	struct kbq_sock *q;

	if (!s)
		return ERR_VAL;
	q = qs(s);
	kbs_sock_addrs(s, pcb);
	STORE(&q->state, KBQ_S_ESTABLISHED);
	KBS_STAT_ADD(tcp_connected, 1);
	kbs_req_done(s, LOAD(&q->req_seq), 0);
	kbs_tx_push(s);
	return ERR_OK;
}

/* ---- data path -------------------------------------------------------- */

/*
 * Whether tcp_close() frees the PCB at once (no FIN handshake follows): in
 * those states lwIP calls no callback afterwards, so we must forget it.
 * With data not yet credited to the window lwIP resets and frees, which
 * kbs_op_close avoids by crediting first.
 */
static bool kbs_close_frees(const struct tcp_pcb *pcb)
{
	if (pcb->state == CLOSED || pcb->state == LISTEN || pcb->state == SYN_SENT)
		return true;
	return (pcb->state == ESTABLISHED || pcb->state == CLOSE_WAIT) &&
	       (pcb->refused_data || pcb->rcv_wnd != TCP_WND_MAX(pcb));
}

/* Hand queued tx bytes to lwIP, straight from the ring. */
static void kbs_tx_push(struct kbs_sock *s)
{
	struct kbq_sock *q = qs(s);
	struct tcp_pcb *pcb = s->pcb;
	uint32_t tail, pending;
	bool wrote = false;

	if (!pcb || s->listening || pcb->state < ESTABLISHED)
		return;
	tail = LOAD(&q->tx_tail); /* pairs with the writer's release store */
	if (!kbq_ring_sane(tail, q->tx_head) || tail - s->tx_sent > tail - q->tx_head) {
		kbs_sock_abort(s, EPROTO);
		return;
	}
	pending = tail - s->tx_sent;
	while (pending && !s->fin_sent && !s->close_called) {
		uint32_t n = kbq_ring_contig(s->tx_sent, pending);
		u16_t room = tcp_sndbuf(pcb);
		err_t err;

		if (n > room)
			n = room;
		if (n > 0xffff)
			n = 0xffff;
		if (!n || tcp_sndqueuelen(pcb) >= TCP_SND_QUEUELEN - 2)
			break;
		err = tcp_write(pcb, kbq_tx_data(s->ctx->r, s->slot) +
				(s->tx_sent & (KBQ_RING - 1)), (u16_t)n,
				n < pending ? TCP_WRITE_FLAG_MORE : 0);
		if (err != ERR_OK)
			break;
		s->tx_sent += n;
		pending -= n;
		wrote = true;
	}
	if (!pending && s->closing && !s->close_called) {
		/* tcp_close also after a shutdown: it arms lwIP's FIN_WAIT_2
		 * timeout, so a peer that never closes cannot pin the PCB. */
		bool gone = kbs_close_frees(pcb);

		if (tcp_close(pcb) == ERR_OK) {
			s->close_called = s->fin_sent = true;
			if (gone) {
				s->pcb = NULL; /* tcp_close freed it */
				kbs_sock_free(s);
				return;
			}
		}
	} else if (!pending && s->shut_wr && !s->fin_sent && tcp_shutdown(pcb, 0, 1) == ERR_OK) {
		s->fin_sent = true;
		__atomic_fetch_or(&q->ev, KBQ_EV_WRDONE, __ATOMIC_RELEASE);
		kbs_event(s);
	}
	if (s->close_called && kbs_close_done(s)) {
		tcp_output(pcb);
		kbs_sock_free(s);
		return;
	}
	if (wrote || s->fin_sent)
		tcp_output(pcb);
}

/* Credit lwIP's receive window with what the app consumed. */
static void kbs_rx_credit(struct kbs_sock *s)
{
	struct kbq_sock *q = qs(s);
	uint32_t head = LOAD(&q->rx_head), n;

	if (head == s->rx_seen)
		return;
	n = head - s->rx_seen;
	if (n > q->rx_tail - s->rx_seen) {
		kbs_sock_abort(s, EPROTO);
		return;
	}
	s->rx_seen = head;
	while (n && s->pcb) {
		u16_t k = n > 0xffff ? 0xffff : (u16_t)n;

		tcp_recved(s->pcb, k);
		n -= k;
	}
}

/* ---- control requests ------------------------------------------------ */

static int kbs_op_listen(struct kbs_sock *s, uint32_t port, uint32_t backlog,
			 uint32_t inherit)
{
	struct tcp_pcb *pcb, *lpcb;
	err_t err;

	if (s->pcb || !port || port > 0xffff)
		return -EINVAL;
	pcb = tcp_new();
	if (!pcb)
		return -ENOBUFS;
	ip_set_option(pcb, SOF_REUSEADDR);
	err = tcp_bind(pcb, IP4_ADDR_ANY, (u16_t)port);
	if (err != ERR_OK) {
		tcp_close(pcb);
		return -kbs_errno(err);
	}
	backlog = backlog == 0 ? 1 : (backlog > 255 ? 255 : backlog);
	lpcb = tcp_listen_with_backlog_and_err(pcb, (u8_t)backlog, &err);
	if (!lpcb) {
		tcp_close(pcb);
		return -kbs_errno(err);
	}
	s->pcb = lpcb;
	s->listening = true;
	s->inherit = inherit;
	tcp_arg(lpcb, s);
	tcp_accept(lpcb, kbs_on_accept);
	kbs_sock_addrs(s, lpcb);
	/* The queue starts empty. The slot may have been a listener closed
	 * with connections queued: their slot numbers are still between the
	 * application's aq_head and our aq_tail, and those slots were reset,
	 * freed and may belong to other sockets by now. */
	STORE(&qs(s)->aq_tail, LOAD(&qs(s)->aq_head));
	STORE(&qs(s)->state, KBQ_S_LISTEN);
	return 0;
}

/* 1 when the request completes later (connect in progress). */
static int kbs_op_connect(struct kbs_sock *s, uint32_t ip, uint32_t port, uint32_t lport)
{
	struct kbq_sock *q = qs(s);
	struct tcp_pcb *pcb;
	ip_addr_t dst;
	err_t err;

	if (s->pcb || !port || port > 0xffff || lport > 0xffff)
		return -EISCONN;
	pcb = tcp_new();
	if (!pcb)
		return -ENOBUFS;
	if (lport && (err = tcp_bind(pcb, IP4_ADDR_ANY, (u16_t)lport)) != ERR_OK) {
		tcp_close(pcb);
		return -kbs_errno(err);
	}
	ip_addr_set_ip4_u32(&dst, ip);
	q->rx_tail = q->rx_head = q->tx_tail = q->tx_head = 0;
	s->tx_sent = s->rx_seen = 0;
	kbs_flow_attach(s, pcb);
	STORE(&q->state, KBQ_S_CONNECTING);
	err = tcp_connect(pcb, &dst, (u16_t)port, kbs_on_connected);
	if (err != ERR_OK) {
		kbs_detach_pcb(s);
		tcp_abort(pcb);
		STORE(&q->state, KBQ_S_OPEN);
		KBS_STAT_ADD(tcp_connect_failed, 1);
		return -kbs_errno(err);
	}
	kbs_sock_addrs(s, pcb);
	return 1;
}

static void kbs_op_close(struct kbs_sock *s)
{
	struct kbq_sock *q = qs(s);
	uint32_t i;

	s->closing = true;
	if (s->listening) {
		/* Connections queued but never accepted: reset them. */
		uint32_t head = LOAD(&q->aq_head), tail = q->aq_tail;

		for (i = 0; kbq_ring_sane(tail, head) && i < tail - head && i < KBQ_ACCEPTQ; i++) {
			uint32_t slot = q->aq[(head + i) % KBQ_ACCEPTQ];

			if (slot < KBQ_NSOCKS && s->ctx->s[slot].pcb) {
				s->ctx->s[slot].closing = true;
				kbs_sock_abort(&s->ctx->s[slot], ECONNABORTED);
			}
		}
		kbs_sock_abort(s, 0); /* closes the listener's PCB, frees the slot */
		return;
	}
	if (!s->pcb) {
		kbs_sock_free(s);
		return;
	}
	/* Unread data at close, or no connection yet: reset, as Linux does. */
	if (q->rx_tail != LOAD(&q->rx_head) || s->pcb->state == SYN_SENT) {
		if (s->pcb->state != SYN_SENT)
			KBS_STAT_ADD(tcp_reset_unread, 1);
		kbs_sock_abort(s, ECONNRESET);
		return;
	}
	KBS_STAT_ADD(tcp_closed, 1);
	kbs_rx_credit(s); /* a full window lets tcp_close send FIN, not RST */
	if (s->pcb)
		kbs_tx_push(s);
}

static void kbs_op_setopt(struct kbs_sock *s, uint32_t opt, uint32_t val)
{
	struct tcp_pcb *pcb = s->pcb;
	uint32_t bit = opt == KBQ_OPT_NODELAY ? KBQ_OPT_F_NODELAY :
		       opt == KBQ_OPT_KEEPALIVE ? KBQ_OPT_F_KEEPALIVE : 0;

	if (s->listening) { /* for the connections it accepts from now on */
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
		if (val)
			ip_set_option(pcb, SOF_KEEPALIVE);
		else
			ip_reset_option(pcb, SOF_KEEPALIVE);
		break;
	case KBQ_OPT_KEEPIDLE:
		pcb->keep_idle = val * 1000;
		break;
	case KBQ_OPT_KEEPINTVL:
		pcb->keep_intvl = val * 1000;
		break;
	case KBQ_OPT_KEEPCNT:
		pcb->keep_cnt = val;
		break;
	}
}

static void kbs_sock_request(struct kbs_sock *s)
{
	struct kbq_sock *q = qs(s);
	uint32_t seq = LOAD(&q->req_seq); /* pairs with the app's release store */
	uint32_t op = q->req_op, a0 = q->req_arg[0], a1 = q->req_arg[1], a2 = q->req_arg[2];
	int rc = 0;

	if (seq == s->done_seq)
		return;
	switch (op) {
	case KBQ_OP_LISTEN:
		rc = kbs_op_listen(s, a0, a1, a2);
		break;
	case KBQ_OP_CONNECT:
		rc = kbs_op_connect(s, a0, a1, a2);
		if (rc == 1) { /* completes in kbs_on_connected / kbs_on_err */
			s->done_seq = seq;
			return;
		}
		break;
	case KBQ_OP_SHUT_WR:
		s->shut_wr = true;
		kbs_tx_push(s);
		break;
	case KBQ_OP_SETOPT:
		kbs_op_setopt(s, a0, a1);
		break;
	case KBQ_OP_CLOSE:
		s->done_seq = seq;
		kbs_op_close(s); /* the slot may be free after this */
		return;
	default:
		rc = -EINVAL;
	}
	kbs_req_done(s, seq, rc);
}

static void kbs_sock_service(struct kbs_ctx *c, uint32_t slot)
{
	struct kbs_sock *s = &c->s[slot];
	uint32_t state = LOAD(&kbq_sock_at(c->r, slot)->state);

	if (state == KBQ_S_FREE)
		return;
	if (!s->ctx) { /* first sight of a slot the app claimed */
		s->ctx = c;
		s->slot = slot;
	}
	kbs_sock_request(s);
	if (s->ctx && s->pcb && !s->listening) {
		kbs_rx_credit(s);
		if (s->pcb)
			kbs_tx_push(s);
	}
}

static void kbs_sock_rung(void *ctx, uint32_t slot)
{
	kbs_sock_service(ctx, slot);
}

unsigned kbs_ctxs_service(void)
{
	struct kbs_ctx *c;
	unsigned served = 0;

	for (c = kbs_ctxs; c; c = c->next)
		served += kbq_bell_sweep(c->r, kbs_sock_rung, c);
	return served;
}

/* Forget this iteration's event sockets; with want, m gets the union of
 * their waiter masks (read after event_seq was bumped). */
static void kbs_evq_take(struct kbs_ctx *c, uint64_t m[KBQ_NWAITERS / 64], bool want)
{
	bool all = c->nev > KBS_EVQ;
	uint32_t i, k;

	for (k = 0; k < KBQ_NWAITERS / 64; k++)
		m[k] = all ? ~0ull : 0;
	for (i = 0; i < c->nev && i < KBS_EVQ; i++) {
		struct kbq_sock *q = kbq_sock_at(c->r, c->evq[i]);

		c->s[c->evq[i]].in_evq = false;
		for (k = 0; want && !all && k < KBQ_NWAITERS / 64; k++)
			m[k] |= __atomic_load_n(&q->wmask[k], __ATOMIC_SEQ_CST);
	}
	if (all) /* the flags of the slots not listed */
		for (i = 0; i < KBQ_NSOCKS; i++)
			c->s[i].in_evq = false;
	c->nev = 0;
}

static void kbs_waiter_wake(struct kbs_ctx *c, unsigned i)
{
	struct kbq_waiter *w = &c->r->waiter[i];
	uint64_t one = 1;

	if (c->wfd[i] >= 0 && __atomic_load_n(&w->sleeping, __ATOMIC_SEQ_CST) &&
	    !__atomic_exchange_n(&w->pending, 1, __ATOMIC_SEQ_CST))
		(void)!write(c->wfd[i], &one, sizeof(one));
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
		/* seq_cst: a waiter sets its wmask bits, raises sleeping and
		 * sleepers, then rereads event_seq; we bump event_seq, then read
		 * them. One of us sees the other. pending: one write per sleep. */
		__atomic_fetch_add(&c->r->event_seq, 1, __ATOMIC_SEQ_CST);
		sleepers = __atomic_load_n(&c->r->sleepers, __ATOMIC_SEQ_CST) != 0;
		kbs_evq_take(c, m, sleepers);
		for (k = 0; sleepers && k < KBQ_NWAITERS / 64; k++)
			while (m[k]) {
				unsigned b = (unsigned)__builtin_ctzll(m[k]);

				m[k] &= m[k] - 1;
				kbs_waiter_wake(c, k * 64 + b);
			}
	}
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
	kbs_op_close(s);
}

void kbs_ctx_proc_gone(struct kbs_ctx *c, pid_t pid)
{
	uint32_t i;

	for (i = 0; i < KBQ_NSOCKS; i++) {
		struct kbq_sock *q = kbq_sock_at(c->r, i);
		struct kbs_sock *s = &c->s[i];
		uint32_t state = LOAD(&q->state);

		if (state == KBQ_S_FREE || state == KBQ_S_STACK || !s->ctx || s->closing)
			continue;
		if (q->owner != (uint32_t)pid || (LOAD(&q->flags) & KBQ_F_SHARED))
			continue;
		kbs_sock_exit_close(s);
	}
}

bool kbs_ctx_close_all(struct kbs_ctx *c)
{
	uint32_t i;

	for (i = 0; i < KBQ_NSOCKS; i++) {
		struct kbq_sock *q = kbq_sock_at(c->r, i);
		struct kbs_sock *s = &c->s[i];

		if (LOAD(&q->state) == KBQ_S_FREE)
			continue;
		if (!s->ctx) /* claimed by the app, never used: nothing to close */
			STORE(&q->state, KBQ_S_FREE);
		else if (!s->closing)
			kbs_sock_exit_close(s);
	}
	return kbs_ctx_idle(c);
}

bool kbs_ctx_idle(const struct kbs_ctx *c)
{
	uint32_t i;

	for (i = 0; i < KBQ_NSOCKS; i++)
		if (LOAD(&kbq_sock_at(c->r, i)->state) != KBQ_S_FREE)
			return false;
	return true;
}

void kbs_ctx_reset_all(struct kbs_ctx *c)
{
	uint32_t i;

	for (i = 0; i < KBQ_NSOCKS; i++) {
		struct kbs_sock *s = &c->s[i];

		if (!s->ctx)
			continue;
		s->closing = true;
		if (s->pcb)
			kbs_sock_abort(s, ECONNRESET);
		s->pcb = NULL;
	}
}

unsigned kbs_ctxs_count(unsigned *socks, uint64_t fallback[KBQ_FB_NSTAT])
{
	struct kbs_ctx *c;
	unsigned n = 0, i;

	*socks = 0;
	for (i = 0; i < KBQ_FB_NSTAT; i++)
		fallback[i] = 0;
	for (c = kbs_ctxs; c; c = c->next) {
		n++;
		/* Application-written: summed for display only, never trusted. */
		for (i = 0; i < KBQ_FB_NSTAT; i++)
			fallback[i] += __atomic_load_n(&c->r->fallback[i], __ATOMIC_RELAXED);
		for (i = 0; i < KBQ_NSOCKS; i++)
			if (__atomic_load_n(&kbq_sock_at(c->r, i)->state, __ATOMIC_RELAXED) !=
			    KBQ_S_FREE)
				(*socks)++;
	}
	return n;
}
