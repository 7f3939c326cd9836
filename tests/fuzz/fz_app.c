/*
 * fz_app.c — the application side of a fuzz target: a server that speaks
 * kbstackd's shared-memory contract (shim/kbq_abi.h) the way
 * libkbpreload.so does — claims a slot, posts requests, rings doorbells,
 * takes connections from the accept queue, consumes the rx ring and fills
 * the tx ring — so that frames from the wire reach kbstackd's real lwIP
 * callbacks (accept, recv, sent, err) and its close paths.
 *
 * The region lives in ordinary memory and the context is linked into
 * kbs_ctxs as kbs_ctl.c would link it. The application is well behaved:
 * the indices it writes are always sane (a hostile application is another
 * test: integration.faults). Single-threaded: kbstackd's loop runs between
 * the application's turns (fz_stack_turn).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "kbq_ring.h"
#include "kbs_ctx.h"
#include "kbs_hooks.h"

#include "fz.h"

#define LOAD(p)        __atomic_load_n(p, __ATOMIC_ACQUIRE)
#define STORE(p, v)    __atomic_store_n(p, v, __ATOMIC_RELEASE)

#define FZ_NONE        UINT32_MAX
#define FZ_BACKLOG     16
#define FZ_BULK        (64u * 1024)
#define FZ_OWNER       0 /* the process index the application's sockets are held by */
#define FZ_CHILD       1 /* a child it forked, which accepted a connection */
#define FZ_READ_SOME   100 /* bytes read per connection in FZ_ACT_READ_SOME */

struct fz_conn {
	uint32_t slot;
	bool shut_wr;
};

static struct kbs_ctx *fz_ctx;
static struct kbq_region *fz_r;
static uint32_t fz_listener = FZ_NONE;
static struct fz_conn fz_conns[KBQ_MAXSLOTS]; /* accepted or connecting, not closed,
					      * oldest first */
static unsigned fz_nconns;
static unsigned fz_nconnects;               /* connects this input */
static bool fz_dead;                        /* FZ_ACT_EXIT happened this input */
static uint32_t fz_slots_used;              /* slots below this were touched this input */
_Static_assert(FZ_BYTE_RING == KBS_RING_BASE, "the fuzzed rings are the window lwIP offers here");

static uint8_t fz_copy[FZ_BYTE_RING];

void (*fz_app_rx_hook)(uint32_t slot, const uint8_t *data, uint32_t n);

static void fz_fail(const char *what, uint32_t slot)
{
	struct kbq_sock *q = kbq_sock_at(fz_r, slot);

	fprintf(stderr, "fuzz: %s (slot %u: state %u, ev %#x, so_error %d)\n", what, slot,
		LOAD(&q->state), LOAD(&q->ev), q->so_error);
	abort();
}

static void fz_touch(uint32_t slot)
{
	if (slot >= KBQ_MAXSLOTS)
		fz_fail("slot number out of range", 0);
	if (slot + 1 > fz_slots_used)
		fz_slots_used = slot + 1;
}

/* Every active PCB's unsent and unacked queues are in sequence order:
 * lwIP's output, freeing of acknowledged segments and retransmission
 * timeout rely on it (lwip-patches/0025 moves lost segments between them;
 * a timeout once concatenated them out of order and the connection hung). */
static void fz_check_queues(void)
{
	const struct tcp_pcb *pcb;
	const struct tcp_seg *seg;
	unsigned k;

	for (pcb = tcp_active_pcbs; pcb; pcb = pcb->next)
		for (k = 0; k < 2; k++)
			for (seg = k ? pcb->unacked : pcb->unsent; seg && seg->next; seg = seg->next)
				if (!TCP_SEQ_LT(lwip_ntohl(seg->tcphdr->seqno),
						lwip_ntohl(seg->next->tcphdr->seqno))) {
					fprintf(stderr, "fuzz: a PCB's %s queue is out of sequence order\n",
						k ? "unacked" : "unsent");
					abort();
				}
}

void fz_stack_turn(void)
{
	fz_port_prune();
	kbs_ctxs_service();
	fz_port_tx();
	kbs_ctxs_wake();
	fz_check_queues();
}

struct kbs_ctx *fz_app_ctx(void)
{
	return fz_ctx;
}

uint32_t fz_app_slots_used(void)
{
	return fz_slots_used;
}

void fz_app_init(void)
{
	struct kbs_ctx *c = kbs_life_ctx_new(KBQ_MAXSLOTS, FZ_BYTE_RING);
	struct kbq_region *r;
	int i;

	r = mmap(NULL, kbq_region_size(KBQ_MAXSLOTS, FZ_BYTE_RING), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!c || r == MAP_FAILED) {
		fprintf(stderr, "fuzz: no memory for the application's region\n");
		exit(1);
	}
	r->version = KBQ_ABI_VERSION;
	r->ctx = 1;
	r->size = kbq_region_size(KBQ_MAXSLOTS, FZ_BYTE_RING);
	r->slots = KBQ_MAXSLOTS;
	r->ring = FZ_BYTE_RING;
	r->stack_ip = __builtin_bswap32(FZ_STACK_IP);
	r->magic = KBQ_REGION_MAGIC;
	c->id = 1;
	c->r = r;
	c->memfd = -1;
	for (i = 0; i < KBQ_NWAITERS; i++)
		c->wfd[i] = -1;
	c->nprocs = 2;
	/* Process indices: the application (FZ_OWNER) and a child (FZ_CHILD). */
	c->procs[0] = r->procs[0] = 1ull << FZ_OWNER | 1ull << FZ_CHILD;
	c->may_bind_low = true; /* as a server started by root */
	c->next = kbs_ctxs;
	kbs_ctxs = c;
	fz_ctx = c;
	fz_r = r;
}

/* ---- what libkbpreload.so does, minus threads (preload/kbp_tcp.c) ------- */

/* Process index p holds slot (an fd for it), or no longer does. */
static void fz_hold(uint32_t p, uint32_t slot, bool on)
{
	uint64_t bit = 1ull << (slot % 64);

	if (on)
		__atomic_fetch_or(&fz_r->held[p][slot / 64], bit, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_and(&fz_r->held[p][slot / 64], ~bit, __ATOMIC_SEQ_CST);
}

static uint32_t fz_claim(void)
{
	uint32_t slot, want;

	for (slot = 0; slot < KBQ_MAXSLOTS; slot++) {
		struct kbq_sock *q = kbq_sock_at(fz_r, slot);

		want = KBQ_S_FREE;
		if (!__atomic_compare_exchange_n(&q->state, &want, KBQ_S_OPEN, false,
						 __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
			continue;
		fz_touch(slot);
		q->ev = 0;
		memset(q->wmask, 0, sizeof(q->wmask));
		q->so_error = 0;
		q->laddr = q->raddr = 0;
		q->lport = q->rport = 0;
		fz_hold(FZ_OWNER, slot, true);
		return slot;
	}
	return FZ_NONE;
}

static void fz_req(uint32_t slot, uint32_t op, uint32_t a0, uint32_t a1, uint32_t a2)
{
	struct kbq_sock *q = kbq_sock_at(fz_r, slot);

	/* One request per slot between two turns of kbstackd's loop: after a
	 * request the application is done with the socket (close), or waits
	 * for the answer (fz_call), or the step ends with a turn. */
	q->req_op = op;
	q->req_arg[0] = a0;
	q->req_arg[1] = a1;
	q->req_arg[2] = a2;
	STORE(&q->req_seq, q->req_seq + 1);
	kbq_bell(fz_r, slot);
}

/* A request kbstackd answers at once; its result. */
static int32_t fz_call(uint32_t slot, uint32_t op, uint32_t a0, uint32_t a1, uint32_t a2)
{
	struct kbq_sock *q = kbq_sock_at(fz_r, slot);

	fz_req(slot, op, a0, a1, a2);
	fz_stack_turn();
	if (LOAD(&q->done_seq) != q->req_seq)
		fz_fail("a request was not answered", slot);
	return q->done_rc;
}

static void fz_listen(void)
{
	uint32_t slot = fz_claim();

	if (slot == FZ_NONE)
		fz_fail("no free slot for the listener", 0);
	if (fz_call(slot, KBQ_OP_LISTEN, FZ_PORT, FZ_BACKLOG, 0))
		fz_fail("listen failed on a clean stack", slot);
	fz_listener = slot;
}

static void fz_conn_add(uint32_t slot)
{
	if (fz_nconns == KBQ_MAXSLOTS)
		fz_fail("more connections than slots", slot);
	fz_conns[fz_nconns].slot = slot;
	fz_conns[fz_nconns].shut_wr = false;
	fz_nconns++;
}

static void fz_connect(void)
{
	uint32_t slot = fz_claim();

	if (slot == FZ_NONE)
		return;
	fz_req(slot, KBQ_OP_CONNECT, __builtin_bswap32(FZ_PEER_IP), FZ_PEER_PORT,
	       FZ_LPORT + fz_nconnects++ % 10000);
	fz_conn_add(slot);
}

static void fz_accept_all(void)
{
	struct kbq_acceptq *aq;
	uint32_t head, tail, i;

	if (fz_listener == FZ_NONE)
		return;
	i = kbq_sock_at(fz_r, fz_listener)->lq;
	if (i >= KBQ_NLISTEN)
		fz_fail("the listener's accept queue index", fz_listener);
	aq = kbq_acceptq_at(fz_r, i);
	head = aq->head;
	tail = LOAD(&aq->tail);
	if (tail - head > KBQ_ACCEPTQ)
		fz_fail("accept queue indices", fz_listener);
	for (; head != tail; head++) {
		uint32_t slot = aq->slot[head % KBQ_ACCEPTQ];
		struct kbq_sock *q;

		STORE(&aq->head, head + 1);
		fz_touch(slot);
		q = kbq_sock_at(fz_r, slot);
		if (LOAD(&q->state) != KBQ_S_ESTABLISHED && LOAD(&q->state) != KBQ_S_CLOSED)
			fz_fail("the accept queue names a slot that holds no connection", slot);
		fz_hold(FZ_OWNER, slot, true);
		fz_conn_add(slot);
	}
}

/* The last holder lets go: it claims the close (closing: gen → gen + 1,
 * as the library does) and kbstackd closes the socket. */
static void fz_release(uint32_t slot)
{
	struct kbq_sock *q = kbq_sock_at(fz_r, slot);
	uint32_t gen = LOAD(&q->gen);

	fz_hold(FZ_OWNER, slot, false);
	if (!__atomic_compare_exchange_n(&q->closing, &gen, gen + 1, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_RELAXED))
		return;
	fz_req(slot, KBQ_OP_CLOSE, 0, 0, 0);
}

static void fz_close(unsigned i)
{
	fz_release(fz_conns[i].slot);
	/* keep the order: the last entry is the newest connection */
	memmove(&fz_conns[i], &fz_conns[i + 1], (fz_nconns - i - 1) * sizeof(fz_conns[0]));
	fz_nconns--;
}

static bool fz_connected(const struct fz_conn *c)
{
	uint32_t st = LOAD(&kbq_sock_at(fz_r, c->slot)->state);

	return st == KBQ_S_ESTABLISHED || st == KBQ_S_CLOSED;
}

static bool fz_writable(const struct fz_conn *c)
{
	struct kbq_sock *q = kbq_sock_at(fz_r, c->slot);

	return !c->shut_wr && LOAD(&q->state) == KBQ_S_ESTABLISHED &&
	       !(LOAD(&q->ev) & (KBQ_EV_ERR | KBQ_EV_WRDONE));
}

/* Queue up to n bytes from src (or a pattern when src is NULL); how many. */
static uint32_t fz_write(const struct fz_conn *c, const uint8_t *src, uint32_t n)
{
	struct kbq_sock *q = kbq_sock_at(fz_r, c->slot);
	uint32_t tail = q->tx_tail, head = LOAD(&q->tx_head), i;

	if (!kbq_ring_sane(FZ_BYTE_RING, tail, head))
		fz_fail("tx ring indices", c->slot);
	if (!fz_writable(c))
		return 0;
	if (n > kbq_ring_free(FZ_BYTE_RING, tail, head))
		n = kbq_ring_free(FZ_BYTE_RING, tail, head);
	if (!src) {
		for (i = 0; i < n; i++)
			fz_copy[i] = (uint8_t)(i * 31 + 7);
		src = fz_copy;
	}
	if (!n)
		return 0;
	kbq_ring_put(kbq_tx_data(fz_r, c->slot, FZ_BYTE_RING), FZ_BYTE_RING, tail, src, n);
	STORE(&q->tx_tail, tail + n);
	kbq_bell(fz_r, c->slot);
	return n;
}

/* Read up to max bytes and write back what fits; true at EOF (all read)
 * or error, or when a connect failed at once. */
static bool fz_read_echo(struct fz_conn *c, uint32_t max)
{
	struct kbq_sock *q = kbq_sock_at(fz_r, c->slot);
	uint32_t tail = LOAD(&q->rx_tail), head = q->rx_head, n = tail - head;

	if (LOAD(&q->state) == KBQ_S_OPEN)
		return LOAD(&q->done_seq) == q->req_seq;

	if (!kbq_ring_sane(FZ_BYTE_RING, tail, head))
		fz_fail("rx ring indices", c->slot);
	if (n > max)
		n = max;
	if (n) {
		kbq_ring_get(kbq_rx_data(fz_r, c->slot, FZ_BYTE_RING), FZ_BYTE_RING, head, fz_copy, n);
		if (fz_app_rx_hook)
			fz_app_rx_hook(c->slot, fz_copy, n);
		STORE(&q->rx_head, head + n); /* credits lwIP's window */
		kbq_bell(fz_r, c->slot);
		fz_write(c, fz_copy, n);
	}
	if (LOAD(&q->state) == KBQ_S_CLOSED || (LOAD(&q->ev) & KBQ_EV_ERR))
		return true;
	return (LOAD(&q->ev) & KBQ_EV_RDHUP) && LOAD(&q->rx_tail) == q->rx_head;
}

/* A child that accepted the newest connection dies (kbs_ctl.c's
 * proc_gone): its socket closes as on its exit. */
static void fz_child_exit(void)
{
	struct kbq_sock *q;

	if (!fz_nconns)
		return;
	q = kbq_sock_at(fz_r, fz_conns[fz_nconns - 1].slot);
	(void)q;
	fz_hold(FZ_OWNER, fz_conns[fz_nconns - 1].slot, false);
	fz_hold(FZ_CHILD, fz_conns[fz_nconns - 1].slot, true);
	fz_nconns--;
	kbs_ctx_proc_gone(fz_ctx, FZ_CHILD);
}

static void fz_opts(uint32_t slot)
{
	static const uint32_t opts[][2] = {
		{ KBQ_OPT_NODELAY, 1 }, { KBQ_OPT_KEEPALIVE, 1 }, { KBQ_OPT_KEEPIDLE, 1 },
		{ KBQ_OPT_KEEPINTVL, 1 }, { KBQ_OPT_KEEPCNT, 2 },
	};
	size_t i;

	for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		fz_call(slot, KBQ_OP_SETOPT, opts[i][0], opts[i][1], 0);
}

static void fz_relisten(void)
{
	if (fz_listener != FZ_NONE) {
		fz_release(fz_listener);
		fz_stack_turn();
		fz_listener = FZ_NONE;
	}
	fz_listen();
}

void fz_app_start(void)
{
	fz_listen();
}

static void fz_exit(void)
{
	fz_dead = true;
	fz_nconns = 0;
	fz_listener = FZ_NONE;
	/* As kbs_ctl.c's ctx_orphan: what is left to send keeps the context. */
	if (!kbs_ctx_close_all(fz_ctx))
		fz_ctx->orphan = true;
}

void fz_app_step(enum fz_act act)
{
	struct fz_conn *newest;
	unsigned i;

	if (fz_dead) {
		fz_stack_turn();
		return;
	}

	/* These first: what it has not read or accepted is reset. */
	if (act == FZ_ACT_EXIT) {
		fz_exit();
		fz_stack_turn();
		return;
	}
	if (act == FZ_ACT_CLOSE && fz_nconns)
		fz_close(fz_nconns - 1);
	if (act == FZ_ACT_RELISTEN)
		fz_relisten();
	if (act != FZ_ACT_HOLD) {
		fz_accept_all();
		for (i = 0; i < fz_nconns;)
			if (fz_read_echo(&fz_conns[i], act == FZ_ACT_READ_SOME ?
					 FZ_READ_SOME : FZ_BYTE_RING))
				fz_close(i); /* EOF or error: the server closes */
			else
				i++;
	}
	newest = fz_nconns ? &fz_conns[fz_nconns - 1] : NULL;
	/* As in kbp_tcp.c: shutdown and options wait for a connect to end. */
	if (newest && !fz_connected(newest))
		newest = NULL;
	switch (act) {
	case FZ_ACT_SHUT_WR:
		if (newest && !newest->shut_wr) {
			newest->shut_wr = true;
			fz_req(newest->slot, KBQ_OP_SHUT_WR, 0, 0, 0);
		}
		break;
	case FZ_ACT_BULK:
		if (newest)
			fz_write(newest, NULL, FZ_BULK);
		break;
	case FZ_ACT_OPTS:
		if (newest)
			fz_opts(newest->slot);
		if (fz_listener != FZ_NONE)
			fz_opts(fz_listener);
		break;
	case FZ_ACT_CLOSE_ALL:
		while (fz_nconns)
			fz_close(fz_nconns - 1);
		break;
	case FZ_ACT_CONNECT:
		fz_connect();
		break;
	case FZ_ACT_CHILD_EXIT:
		fz_child_exit();
		break;
	default:
		break;
	}
	fz_stack_turn();
}

void fz_app_stop(void)
{
	struct tcp_pcb *pcb;
	uint32_t i;

	while (fz_nconns)
		fz_close(fz_nconns - 1);
	if (fz_listener != FZ_NONE) {
		fz_release(fz_listener);
		fz_listener = FZ_NONE;
	}
	fz_stack_turn();
	/* What kbstackd does to a context that goes: reset what is left. */
	kbs_ctx_reset_all(fz_ctx);
	fz_stack_turn();
	for (i = 0; i < fz_slots_used; i++) {
		struct kbq_sock *q = kbq_sock_at(fz_r, i);

		if (LOAD(&q->state) != KBQ_S_FREE)
			fz_fail("a slot is still in use after its close and a reset", i);
	}
	/* Connections kbstackd no longer holds (FIN_WAIT, TIME_WAIT, ...), and
	 * handshakes never accepted: lwIP forgets them. */
	while ((pcb = tcp_active_pcbs) != NULL)
		tcp_abort(pcb);
	while ((pcb = tcp_tw_pcbs) != NULL)
		tcp_abort(pcb);
	if (tcp_listen_pcbs.pcbs || tcp_bound_pcbs) {
		fprintf(stderr, "fuzz: a listening or bound PCB outlived its socket\n");
		abort();
	}
	fz_port_tx();

	/* A fresh context for the next input. */
	for (i = 0; i < KBQ_MAXSLOTS; i++) { /* also slots only kbstackd touched */
		struct kbq_sock *q = kbq_sock_at(fz_r, i);

		if (i < fz_slots_used || q->gen || q->closing || q->state)
			memset(q, 0, sizeof(*q));
	}
	memset(fz_r->held, 0, sizeof(fz_r->held));
	kbs_life_ctx_clear(fz_ctx);
	fz_ctx->nsocks = 0;
	fz_ctx->orphan = false;
	fz_ctx->broken = 0;
	fz_ctx->reset_done = false;
	fz_ctx->event = false;
	fz_ctx->nev = 0;
	fz_r->event_seq = 0;
	fz_r->bell_summary = 0;
	memset(fz_r->bell, 0, sizeof(fz_r->bell));
	fz_slots_used = 0;
	fz_nconnects = 0;
	fz_dead = false;
}
