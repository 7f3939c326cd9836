/*
 * kbs_tcp.c — lwIP's callbacks and the data path between a slot's rings
 * and its PCB. Runs on the stack core only; every state change goes
 * through kbs_life, every application-written index is read once and
 * checked against kbstackd's private copies before use.
 *
 * Flow control end to end:
 *   rx: lwIP's window is the rx ring's free space. recv copies into the
 *       ring; tcp_recved() credits the window only as the app consumes.
 *   tx: tcp_write() points into the tx ring without copying; the ring space
 *       is released to the app (tx_head) when the peer acknowledges it, so
 *       a slot whose PCB still has unacknowledged data is never freed.
 */
#include <errno.h>
#include <string.h>

#include "lwip/ip4_addr.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "kbq_atomic.h"
#include "kbq_ring.h"
#include "kbs_ctx.h"
#include "kbs_hooks.h"
#include "kbs_stats.h"

/* Bytes queued in lwIP not yet sent, at most (kbs_tcp_tx_push): lwIP
 * walks its unsent list on every write, so a top-up per ACK costs what is
 * queued, not the window. */
#define KBS_TX_UNSENT_MAX (256u * 1024)

int kbs_tcp_ooseq_stuck(struct tcp_pcb *pcb, u32_t now)
{
	struct kbs_sock *s = pcb->callback_arg; /* ooseq: past SYN_RCVD, its own */

	if (!s)
		return 1;
	if (s->ooseq_nxt != pcb->rcv_nxt) {
		s->ooseq_nxt = pcb->rcv_nxt;
		s->ooseq_ms = now;
		return 0;
	}
	return now - s->ooseq_ms >= KBS_OOSEQ_STUCK_MS;
}

/* Sockets listed for kbs_tcp_tx_retry since its last pass (a context gone
 * meanwhile leaves one pass for nothing): the loop's every-ms call walks
 * the contexts only when there are some. */
static unsigned kbs_tx_waiting;

int kbs_errno(err_t err)
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

void kbs_tcp_addrs(struct kbs_sock *s, struct tcp_pcb *pcb)
{
	struct kbq_sock *q = kbs_qs(s);
	bool listen = pcb->state == LISTEN; /* a tcp_pcb_listen: no remote port */

	kbq_st(&q->laddr, ip4_addr_get_u32(ip_2_ip4(&pcb->local_ip)));
	kbq_st(&q->raddr, listen ? 0 : ip4_addr_get_u32(ip_2_ip4(&pcb->remote_ip)));
	kbq_st(&q->lport, lwip_htons(pcb->local_port));
	kbq_st(&q->rport, listen ? 0 : lwip_htons(pcb->remote_port));
}

/* Fresh indices for a flow starting on s. */
static void kbs_tcp_rings_reset(struct kbs_sock *s)
{
	struct kbq_sock *q = kbs_qs(s);

	s->rx_tail = s->rx_seen = s->tx_sent = s->tx_acked = 0;
	kbq_st(&q->rx_tail, 0);
	kbq_st(&q->rx_head, 0);
	kbq_st(&q->tx_tail, 0);
	kbq_st(&q->tx_head, 0);
	/* No writer is inside before the state this flow publishes: a count
	 * an earlier one left (a process killed mid-copy) goes. */
	kbq_st(&q->tx_busy, 0);
	kbq_st(&q->tx_trim, 0);
}

void kbs_tcp_flow_attach(struct kbs_sock *s, struct tcp_pcb *pcb)
{
	kbs_tcp_rings_reset(s);
	s->ev = 0;
	kbq_st(&kbs_qs(s)->ev, 0);
	kbq_st(&kbs_qs(s)->so_error, 0);
	kbs_life_attach(s, pcb);
}

/* Claim a slot for an incoming connection: free in kbstackd's view and
 * not claimed by the application (the shared word is where both race).
 * The lowest such slot, so the ring pages already touched are used again:
 * a context's memory follows its peak of connections, not their number.
 * A slot the application claimed leaves the free bits when seen here:
 * only kbstackd frees a claimed slot (kbs_life_set puts the bit back), so
 * an application that claims every slot and never uses one costs one walk
 * of them, not one per connection to its listener. */
struct kbs_sock *kbs_slot_claim(struct kbs_ctx *c)
{
	uint32_t w;

	for (w = c->free_lo; w < c->nslots / 64; w++) {
		uint64_t bits = c->free_bits[w];

		while (bits) {
			uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(bits);
			struct kbq_sock *q = kbq_sock_at(c->r, i);
			uint32_t want = KBQ_S_FREE;

			bits &= bits - 1;
			if (kbq_ld(&q->state) == KBQ_S_FREE &&
			    kbq_cas(&q->state, &want, KBQ_S_STACK))
				return kbs_sock_at(c, i);
			/* the application claimed it: kbstackd hears of it
			 * with its first request */
			c->free_bits[w] &= ~(1ull << (i % 64));
		}
		/* no free bit up to here: kbs_ctx_slot_freed moves it back */
		if (!c->free_bits[w] && w == c->free_lo)
			c->free_lo = w + 1;
	}
	return NULL;
}

/* A segment for listener lpcb, before lwIP sees it: a SYN whose connection
 * would find no room is dropped unanswered, as Linux drops a SYN when the
 * accept queue is full; the client sends it again (after 1 s, 3 s, ...)
 * and gets in once the application accepts or closes. A RST would end its
 * connect. Room: the queue (accepted, not yet taken) below the listen
 * backlog + 1 as Linux counts it (aq_limit); queued + half-open (lwIP's
 * SYN_RCVD connections, accepts_pending) within the queue's and the free
 * slots' size, so the connection finds both when its handshake completes;
 * and half-open below half the context's slots or aq_limit, whichever is
 * more — so that a burst of connects cannot take every slot with
 * handshakes before the queue is full (and a client far away still has
 * room while its handshake takes a round trip: Linux answers such bursts
 * with SYN cookies). lwIP's own bound on half-open connections is the
 * queue's size (kbs_op_listen): it never drops a SYN this has let
 * through. */
err_t kbs_tcp_listen_input(struct tcp_pcb_listen *lpcb, u8_t flags)
{
	struct kbs_sock *l = lpcb->callback_arg;
	uint32_t queued, pending = lpcb->accepts_pending;

	if ((flags & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN || !l || l->ctx->broken ||
	    l->lq == KBS_LQ_NONE)
		return ERR_OK; /* a broken context's SYN is reset at accept */
	queued = l->aq_tail - kbq_ld(&kbs_aq(l)->head); /* once; > tail: full */
	if (queued >= l->aq_limit || queued + pending >= KBQ_ACCEPTQ ||
	    (pending >= l->aq_limit && pending >= l->ctx->nslots / 2)) {
		KBS_STAT_ADD(tcp_syn_drop_queue, 1);
		return ERR_ABRT;
	}
	if (l->ctx->nsocks + pending >= l->ctx->nslots) {
		KBS_STAT_ADD(tcp_syn_drop_slots, 1);
		return ERR_ABRT;
	}
	return ERR_OK;
}

err_t kbs_tcp_on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct kbs_sock *l = arg, *s;
	struct kbq_acceptq *aq;
	struct kbq_sock *q;
	uint32_t head;

	if (!l || l->lq == KBS_LQ_NONE || err != ERR_OK || !pcb)
		return ERR_VAL; /* (no queue: no listener of ours; lwIP aborts it) */
	aq = kbs_aq(l);
	head = kbq_ld_acq(&aq->head); /* once; pairs with the acceptor's CAS */
	if (l->aq_tail - head > KBQ_ACCEPTQ) {
		kbs_life_violation(l->ctx, KBS_V_ACCEPT);
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	if (l->ctx->broken || l->aq_tail - head == KBQ_ACCEPTQ ||
	    !(s = kbs_slot_claim(l->ctx))) {
		/* Rare: kbs_tcp_listen_input saw room (the application took
		 * a slot since). lwIP cannot keep the connection waiting. */
		tcp_abort(pcb);
		KBS_STAT_ADD(tcp_accept_reset, 1);
		return ERR_ABRT;
	}
	q = kbs_qs(s);
	/* No request pending: done and taken where this slot's last left them. */
	kbq_st(&q->done_seq, s->done_seq);
	kbq_st(&q->taken_seq, s->done_seq);
	kbq_st(&q->req_seq, s->done_seq);
	memset(q->wmask, 0, sizeof(q->wmask));
	s->listener = l->slot;
	kbq_st(&q->listener, l->slot);
	s->fin_sent = s->close_called = s->shut_wr = false;
	kbs_tcp_addrs(s, pcb);
	kbs_tcp_flow_attach(s, pcb);
	if (l->inherit & KBQ_OPT_F_NODELAY)
		tcp_nagle_disable(pcb);
	if (l->inherit & KBQ_OPT_F_KEEPALIVE) {
		ip_set_option(pcb, SOF_KEEPALIVE);
		tcp_tmr_list(pcb); /* its timer runs from now (lwip-patches/0028) */
	}
	kbs_life_set(s, KBS_L_ESTABLISHED);
	kbq_st(&aq->slot[l->aq_tail % KBQ_ACCEPTQ], s->slot);
	l->aq_tail++;
	kbq_st_rel(&aq->tail, l->aq_tail); /* pairs with the acceptor's acquire */
	KBS_STAT_ADD(tcp_accepted, 1);
	kbs_wake_event(l);
	return ERR_OK;
}

/* The application's rx_head, read once: within [rx_seen, rx_tail], or the
 * context broke the contract (false). */
static bool kbs_rx_head(struct kbs_sock *s, uint32_t *head)
{
	uint32_t h = kbq_ld_acq(&kbs_qs(s)->rx_head); /* pairs with the reader's release */

	if (h - s->rx_seen > s->rx_tail - s->rx_seen) {
		kbs_life_violation(s->ctx, KBS_V_RING);
		kbs_life_abort(s, EPROTO);
		return false;
	}
	*head = h;
	return true;
}

err_t kbs_tcp_on_recv(struct kbs_sock *s, struct tcp_pcb *pcb, struct pbuf *p)
{
	struct kbq_sock *q = kbs_qs(s);
	uint32_t head, tail;
	struct pbuf *b;
	uint8_t *rx;

	if (!p) { /* FIN */
		kbs_life_ev(s, KBQ_EV_RDHUP, 0);
		return ERR_OK;
	}
	if (s->life != KBS_L_ESTABLISHED) { /* closed by the app: discard */
		tcp_recved(pcb, p->tot_len);
		pbuf_free(p);
		return ERR_OK;
	}
	if (!kbs_rx_head(s, &head)) {
		pbuf_free(p);
		return ERR_OK; /* the abort marked the callback's PCB gone */
	}
	if (p->tot_len > kbq_ring_free(s->ctx->ring, s->rx_tail, head)) {
		KBS_STAT_ADD(tcp_rx_full, 1);
		return ERR_MEM; /* lwIP keeps it and offers it again */
	}
	rx = kbq_rx_data(s->ctx->r, s->slot, s->ctx->ring);
	tail = s->rx_tail;
	for (b = p; b; b = b->next) {
		kbq_ring_put(rx, s->ctx->ring, tail, b->payload, b->len);
		tail += b->len;
	}
	s->rx_tail = tail;
	s->trim_rx = true;
	kbq_st_rel(&q->rx_tail, tail); /* after the bytes; pairs with the reader */
	pbuf_free(p);
	kbs_wake_event(s);
	return ERR_OK;
}

/* The app closed s and everything it queued is acknowledged: the PCB no
 * longer points into the ring, the slot can go back. */
static bool kbs_close_done(const struct kbs_sock *s)
{
	return s->life == KBS_L_DRAINING && s->close_called && s->tx_acked == s->tx_sent;
}

void kbs_tcp_on_sent(struct kbs_sock *s, u16_t len)
{
	if (len > s->tx_sent - s->tx_acked)
		len = (u16_t)(s->tx_sent - s->tx_acked); /* lwIP counts only our bytes */
	s->tx_acked += len;
	kbq_st_rel(&kbs_qs(s)->tx_head, s->tx_acked); /* space released to the app */
	kbs_wake_event(s);
	if (kbs_close_done(s)) {
		kbs_life_free(s); /* detaches: lwIP finishes the close alone */
		return;
	}
	kbs_tcp_tx_push(s);
}

err_t kbs_tcp_on_connected(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct kbs_sock *s = arg;
	struct kbq_sock *q;
	struct kbs_cb saved;

	if (!s || s->life != KBS_L_CONNECTING)
		return ERR_VAL;
	saved = kbs_cb_enter(pcb);
	q = kbs_qs(s);
	kbs_tcp_addrs(s, pcb);
	kbs_life_set(s, KBS_L_ESTABLISHED);
	KBS_STAT_ADD(tcp_connected, 1);
	kbq_st(&q->done_rc, 0);
	kbq_st_rel(&q->done_seq, s->conn_seq); /* after done_rc */
	s->done_seq = s->conn_seq;
	kbs_wake_event(s);
	kbs_tcp_tx_push(s);
	return kbs_cb_leave(saved, ERR_OK);
}

/* The application's tx_tail, read once: at most a ring ahead of what was
 * acknowledged and not behind what was sent, or the context broke the
 * contract (false). */
static bool kbs_tx_tail(struct kbs_sock *s, uint32_t *tail)
{
	uint32_t t = kbq_ld_acq(&kbs_qs(s)->tx_tail); /* pairs with the writer's release */

	if (t - s->tx_acked > s->ctx->ring || t - s->tx_sent > t - s->tx_acked) {
		kbs_life_violation(s->ctx, KBS_V_RING);
		kbs_life_abort(s, EPROTO);
		return false;
	}
	*tail = t;
	return true;
}

void kbs_tcp_tx_push(struct kbs_sock *s)
{
	struct tcp_pcb *pcb = s->pcb;
	uint32_t ring = s->ctx->ring, tail, pending;
	bool wrote = false, nomem = false;

	if (!pcb || pcb->state < ESTABLISHED || pcb->state == LISTEN)
		return;
	if (!kbs_tx_tail(s, &tail))
		return;
	pending = tail - s->tx_sent;
	if (pending)
		s->trim_tx = true; /* the application wrote the ring's pages */
	/* At most a ring's worth, 64 KiB at a time: a bounded loop. */
	while (pending && !s->fin_sent && !s->close_called) {
		uint32_t n = kbq_ring_contig(ring, s->tx_sent, pending);
		u16_t room = tcp_sndbuf(pcb);

		if (n > room)
			n = room;
		if (n > 0xffff)
			n = 0xffff;
		/* lwIP's segment bound is the largest ring's: keep the ring's */
		if (!n || tcp_sndqueuelen(pcb) >= 4 * ring / TCP_MSS - 2)
			break;
		/* tcp_write walks lwIP's unsent list to its end every call (it
		 * keeps no tail): a large ring topped up a little at every ACK
		 * made that walk 40 % of kbstackd's core (4 MiB rings, a 100 MiB
		 * download). KBS_TX_UNSENT_MAX waits there at most; the rest
		 * stays in the ring until the ACKs that drain it. */
		if (pcb->unsent &&
		    pcb->snd_lbb - lwip_ntohl(pcb->unsent->tcphdr->seqno) >= KBS_TX_UNSENT_MAX)
			break; /* (unsent also holds what a timeout sends again) */
		if (tcp_write(pcb, kbq_tx_data(s->ctx->r, s->slot, ring) + (s->tx_sent & (ring - 1)),
			      (u16_t)n, n < pending ? TCP_WRITE_FLAG_MORE : 0) != ERR_OK) {
			nomem = true; /* lwIP's segments or pbufs, all in use */
			break;
		}
		s->tx_sent += n;
		pending -= n;
		wrote = true;
	}
	if (nomem && !pcb->unsent && !pcb->unacked && !s->tx_wait) {
		/* No ACK will come to push again: the loop will (every ms). */
		KBS_STAT_ADD(tcp_tx_nomem, 1);
		s->tx_wait = true;
		s->tx_wait_next = s->ctx->tx_wait_list;
		s->ctx->tx_wait_list = s;
		kbs_tx_waiting++;
	}
	if (!pending && s->life == KBS_L_DRAINING && !s->close_called) {
		/* tcp_close also after a shutdown: it arms lwIP's FIN_WAIT_2
		 * timeout, so a peer that never closes cannot pin the PCB. It
		 * may free the PCB at once (the destroy callback then tells). */
		if (tcp_close(pcb) == ERR_OK)
			s->close_called = s->fin_sent = true;
		if (!s->pcb)
			return;
	} else if (!pending && s->shut_wr && !s->fin_sent && tcp_shutdown(pcb, 0, 1) == ERR_OK) {
		s->fin_sent = true;
		kbs_life_ev(s, KBQ_EV_WRDONE, 0);
	}
	if (kbs_close_done(s)) {
		tcp_output(pcb);
		kbs_life_free(s);
		return;
	}
	if (wrote || s->fin_sent)
		tcp_output(pcb);
}

void kbs_tcp_tx_retry(void)
{
	struct kbs_ctx *c;

	if (!kbs_tx_waiting)
		return;
	kbs_tx_waiting = 0; /* counted again as they are listed again */
	for (c = kbs_ctxs; c; c = c->next) {
		struct kbs_sock *s = c->tx_wait_list, *next;

		c->tx_wait_list = NULL;
		for (; s; s = next) {
			next = s->tx_wait_next;
			s->tx_wait = false;
			/* (it may be listed again, or freed: next is kept) */
			if (s->pcb && (s->life == KBS_L_ESTABLISHED || s->life == KBS_L_DRAINING))
				kbs_tcp_tx_push(s);
		}
	}
}

void kbs_tcp_rx_credit(struct kbs_sock *s)
{
	uint32_t head, n;

	if (!kbs_rx_head(s, &head) || head == s->rx_seen)
		return;
	n = head - s->rx_seen; /* at most a ring */
	s->rx_seen = head;
	if (s->pcb)
		tcp_recved(s->pcb, n); /* a window's length: lwip-patches/0035 */
}
