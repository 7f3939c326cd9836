/*
 * fuzz_region.c — libFuzzer target: what an application writes into its
 * shared region, against kbstackd's real stack-side code with live
 * connections. In one process, each input drives kbstackd's loop
 * (kbs_netif_rx, kbs_life_settle, kbs_ctxs_service, the port's tx flush,
 * kbs_ctxs_wake, lwIP's timers on the fake clock) with two contexts:
 *
 *   well-behaved  fz_app.c's server, on port FZ_PORT, with FZ_NGOOD
 *                 connections from FZ_GOOD_IP carrying a known stream both
 *                 ways (fz_peer.c checks every byte the server reads and
 *                 every byte echoed back);
 *   hostile       fz_hostile.c's application, with flows of its own (it
 *                 listens, accepts, connects out; the input's peer makes
 *                 them real) and a region the input writes anything into.
 *
 * An input is a sequence of records, each a kind byte (bits 0-3: what;
 * bits 4-7: its argument a) and what that kind reads after it (a slot is
 * fz_hostile_slot's 1-2 bytes, a value fz_value's 1-9 bytes):
 *
 *    0 TURN                 an iteration of the loop, both applications'
 *                           turns and the peers' answers (a few rounds)
 *    1 TIME                 fz_ms[a] pass (at most FZ_TIME_BUDGET in all):
 *                           lwIP's timers, then a turn, every 100 ms
 *    2 FRAME  len(2) bytes  a raw frame from the wire (low 11 bits of len;
 *                           frames from FZ_GOOD_IP are dropped), a turn
 *    3 SEG    …             a segment of the hostile side's peer
 *                           (fz_hpeer_seg), a turn
 *    4 WRITE  field [slot] [element] value
 *                           a word of the hostile region: field is an index
 *                           into fz_fields.c's table; slot for kbq_sock
 *                           fields; element (fz_in_index) for arrays
 *    5 BELL   slot          its doorbell (a & 1: every slot's)
 *    6 REQ    slot op v v v a request: op (op bit 7: 4 raw bytes are the
 *                           op instead of op % 8), arguments as values of
 *                           req_arg[0..2]; a: how (fz_hostile_req)
 *    7 LISTEN port backlog  claim a slot, LISTEN on FZ_HPORT + port % 4
 *                           (port bit 7: 2 raw bytes instead), inherit a & 3
 *    8 CONNECT b            claim a slot, CONNECT to FZ_PEER_PORT + b % 4 of
 *                           FZ_PEER_IP (b bit 6: of FZ_GOOD_IP) from local
 *                           port 0, FZ_LPORT + (b >> 2) % 4 (b bit 7), or
 *                           FZ_PORT (bits 4-5 both set)
 *    9 ACCEPT               take every connection its listeners queued
 *   10 IO     slot n        read all, queue n * 64 bytes, ring
 *   11 CLOSE  slot          close (last reference)
 *   12 DIE    n             a & 2: it forks first; a & 1: its last process
 *                           dies (kbs_ctx_close_all; the context stays
 *                           while it sends), else its n-th process dies
 *                           (kbs_ctx_proc_gone) if another remains
 *   13 ATTACH               it attaches again: a new context (the old one
 *                           dies first); at most FZ_HATTACH_MAX per input
 *   14 FFWD   [slot] back   a connection that has carried almost 4 GiB: a
 *                           quiet slot's indices, kbstackd's and the
 *                           region's, moved to 2^32 - back (accept queue:
 *                           2^32 - back % 8 - 1); a & 8: the good context's
 *                           (a & 4: its listener, else connection a & 1, no
 *                           slot byte), else the hostile one's
 *   15 GOOD                 the good server's turns from now on: a % 3 = as
 *                           usual, hold (no accept, no read), read 100 bytes
 *
 * Checked after every record (abort, so libFuzzer keeps the input): the
 * good context is never cut off, its connections never reset, errored or
 * out of ESTABLISHED; every slot's private state is sane (a state of the
 * table, indices within a ring, no PCB on a free slot, nsocks right);
 * every PCB lwIP holds names a live slot that names it back, or none and
 * then sends from no region; a cut-off context stays inert. Plus ASan,
 * UBSan, lwIP's assertions and the lifecycle's transition table (abort).
 * At the end: the good peer closes and must get every byte back and both
 * FINs; both contexts go as fz_app.c and kbs_ctl.c drop them; no slot,
 * PCB or mbuf is left, and lwIP's lists are empty.
 *
 * tests/fuzz/gen_region.py writes the seeds (tests/fuzz/corpus/region/).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "kbq_abi.h"
#include "kbq_atomic.h"
#include "kbs_ctx.h"
#include "kbs_netif.h"

#include "fz.h"
#include "fz_region.h"

#define FZ_TIME_BUDGET  (10u * 60 * 1000) /* as fuzz_rx */
#define FZ_STEP_MS      100               /* lwIP's TCP timer */
#define FZ_TURN_ROUNDS  4                 /* loop iterations per turn, at most */
#define FZ_OPEN_TURNS   16                /* for the good connections to start */
#define FZ_CLOSE_STEPS  400               /* 50 ms each, for them to finish */
#define FZ_FULL_EVERY   16                /* records between full slot scans */

enum {
	R_TURN, R_TIME, R_FRAME, R_SEG, R_WRITE, R_BELL, R_REQ, R_LISTEN, R_CONNECT,
	R_ACCEPT, R_IO, R_CLOSE, R_DIE, R_ATTACH, R_FFWD, R_GOOD,
};

static const uint32_t fz_ms[16] = {
	0, 1, 10, 50, 100, 200, 500, 1000,
	2000, 3000, 5000, 10000, 20000, 30000, 65000, 130000,
};

static struct kbs_netif *fr_ni;
static enum fz_act fr_good_act;
static bool fr_trace;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fr_fail(const char *what, const struct kbs_ctx *c, uint32_t slot)
{
	if (c)
		fprintf(stderr, "fuzz: %s (context %u, slot %u: life %u, pcb %p)\n", what, c->id,
			slot, c->s[slot].life, (void *)c->s[slot].pcb);
	else
		fprintf(stderr, "fuzz: %s\n", what);
	abort();
}

/* ---- kbstackd's loop ------------------------------------------------------ */

/* One iteration of kbs_loop (kbs_main.c) without its timers. */
static void fr_iteration(void)
{
	kbs_netif_rx(fr_ni);
	kbs_life_settle();
	kbs_ctxs_service(); /* settles too */
	fz_port_tx();
	kbs_ctxs_wake();
	fz_hostile_reap();
}

/* The loop, the good server and the good peer, until the peer has nothing
 * more to say (a few rounds). */
static void fr_turn(void)
{
	unsigned i;

	for (i = 0; i < FZ_TURN_ROUNDS; i++) {
		fr_iteration();
		fz_app_step(fr_good_act);
		if (!fz_good_send())
			break;
	}
}

/* What kbs_publish (kbs_main.c) reads for kbstat every 128 ms: the
 * application-written fallback counters among others. */
static void fr_publish(void)
{
	struct kbs_ctxs_counts counts;
	const struct kbs_ctx *c;
	unsigned n = 0;

	for (c = kbs_ctxs; c; c = c->next)
		n += c->nsocks;
	kbs_ctxs_count(&counts);
	if (counts.socks != n)
		fr_fail("kbstat's count of slots in use is wrong", NULL, 0);
}

static void fr_time(uint32_t ms)
{
	while (ms) {
		uint32_t step = ms < FZ_STEP_MS ? ms : FZ_STEP_MS;

		fz_clock_advance(step); /* lwIP's timers */
		kbs_life_settle();
		fz_good_tick(step);
		fr_turn();
		fr_publish();
		ms -= step;
	}
}

/* ---- checks ----------------------------------------------------------------- */

/* What the application sees for each private state (kbs_life.c's table). */
static const uint32_t fr_shared[KBS_L_NSTATES] = {
	[KBS_L_FREE] = KBQ_S_FREE, [KBS_L_OPEN] = KBQ_S_OPEN, [KBS_L_LISTEN] = KBQ_S_LISTEN,
	[KBS_L_CONNECTING] = KBQ_S_CONNECTING, [KBS_L_ESTABLISHED] = KBQ_S_ESTABLISHED,
	[KBS_L_CLOSED] = KBQ_S_CLOSED, [KBS_L_DRAINING] = KBQ_S_CLOSED,
};

/* kbstackd's private view of c's slots; all of them with full, else those
 * up to the last in use (past slot 63). Only for the good context, the
 * shared state must be the published one (the hostile one writes it). */
static void fr_check_slots(const struct kbs_ctx *c, bool full)
{
	bool good = c == fz_app_ctx();
	unsigned used = 0, queues = 0;
	uint64_t lq_seen[KBQ_NLISTEN / 64] = { 0 };
	uint32_t i;

	for (i = 0; i < c->nslots && (full || used < c->nsocks || i < 64); i++) {
		const struct kbs_sock *s = &c->s[i];
		uint32_t st;

		if (!s->ctx && (s->life || s->pcb || s->lost))
			fr_fail("a slot in use was never set up (kbs_sock_at)", c, i);
		if (!s->ctx)
			continue; /* never used: all zero */
		if (s->ctx != c || s->slot != i)
			fr_fail("a slot lost its identity", c, i);
		if (s->life >= KBS_L_NSTATES)
			fr_fail("a slot's state is not one of the lifecycle's", c, i);
		if (s->lost || s->settle_next)
			fr_fail("a PCB loss was left unsettled", c, i);
		if (s->rx_tail - s->rx_seen > FZ_BYTE_RING)
			fr_fail("rx: more credited than received", c, i);
		if (s->tx_sent - s->tx_acked > FZ_BYTE_RING)
			fr_fail("tx: more acknowledged than sent, or a ring in flight", c, i);
		if (s->lq != KBS_LQ_NONE) {
			/* a listener's queue: in range, its own, taken in the bitmap */
			if (s->lq >= KBQ_NLISTEN || (lq_seen[s->lq / 64] >> (s->lq % 64) & 1) ||
			    (c->lq_free[s->lq / 64] >> (s->lq % 64) & 1))
				fr_fail("an accept queue out of range, shared, or free", c, i);
			lq_seen[s->lq / 64] |= 1ull << (s->lq % 64);
			queues++;
		} else if (s->life == KBS_L_LISTEN) {
			fr_fail("a listener without an accept queue", c, i);
		}
		if (s->life == KBS_L_FREE) {
			if (s->pcb)
				fr_fail("a free slot holds a PCB", c, i);
			if (s->lq != KBS_LQ_NONE)
				fr_fail("a free slot holds an accept queue", c, i);
			continue;
		}
		used++;
		if ((s->life == KBS_L_LISTEN || s->life == KBS_L_CONNECTING) && !s->pcb)
			fr_fail("a listener or a connect without a PCB", c, i);
		if (s->pcb && s->pcb->callback_arg != s)
			fr_fail("a slot's PCB does not name it", c, i);
		st = kbq_ld(&kbq_sock_at(c->r, i)->state);
		if (good && st != fr_shared[s->life])
			fr_fail("the published state is not kbstackd's", c, i);
	}
	if (full && used != c->nsocks)
		fr_fail("nsocks is not the number of slots in use", NULL, 0);
	if (full) {
		for (i = 0; i < KBQ_NLISTEN / 64; i++)
			queues += (unsigned)__builtin_popcountll(c->lq_free[i]);
		if (queues != KBQ_NLISTEN)
			fr_fail("accept queues lost: neither free nor a listener's", NULL, 0);
	}
}

static bool fr_in_region(const void *p)
{
	const struct kbs_ctx *c;

	for (c = kbs_ctxs; c; c = c->next)
		if ((const char *)p >= (const char *)c->r &&
		    (const char *)p < (const char *)c->r + kbq_region_size(KBQ_MAXSLOTS, FZ_BYTE_RING))
			return true;
	return fz_hostile_gone(p);
}

/* The slot a callback argument points at, if it is one of a live context. */
static bool fr_live_slot(const void *arg)
{
	const struct kbs_ctx *c;

	for (c = kbs_ctxs; c; c = c->next)
		if ((const char *)arg >= (const char *)c->s &&
		    (const char *)arg < (const char *)(c->s + c->nslots))
			return true;
	return false;
}

/* Data lwIP will still send: from its slot's tx ring, never from another
 * ring, another region or the region of a gone context. */
static void fr_check_segs(const struct tcp_pcb *pcb, const struct kbs_sock *s)
{
	const struct tcp_seg *lists[2] = { pcb->unsent, pcb->unacked }, *seg;
	const uint8_t *ring = s ? kbq_tx_data(s->ctx->r, s->slot, FZ_BYTE_RING) : NULL;
	unsigned k;

	for (k = 0; k < 2; k++)
		for (seg = lists[k]; seg; seg = seg->next) {
			const struct pbuf *p;

			for (p = seg->p; p; p = p->next) {
				const uint8_t *a = p->payload;

				if (ring && a >= ring && a < ring + FZ_BYTE_RING)
					continue;
				if (fr_in_region(a))
					fr_fail(s ? "lwIP sends from a ring not its slot's" :
						    "lwIP sends from a ring no slot holds", NULL, 0);
			}
		}
}

static void fr_check_pcb(const struct tcp_pcb *pcb)
{
	const struct kbs_sock *s = pcb->callback_arg;

	if (pcb->state == SYN_RCVD) {
		/* lwIP copied its listener's argument; never used once that
		 * listener has closed (listener NULL: the handshake ends in RST) */
		if (pcb->listener && pcb->callback_arg != pcb->listener->callback_arg)
			fr_fail("a handshake's argument is not its listener's", NULL, 0);
		return;
	}
	if (s && !fr_live_slot(s))
		fr_fail("a PCB's argument is no live slot", NULL, 0);
	if (s && s->pcb != pcb)
		fr_fail("a PCB's slot holds another PCB", s->ctx, s->slot);
	fr_check_segs(pcb, s);
}

static void fr_check_pcbs(void)
{
	const struct tcp_pcb *pcb;
	const struct tcp_pcb_listen *l;

	if (tcp_bound_pcbs)
		fr_fail("a PCB bound and neither listening nor connecting", NULL, 0);
	struct tcp_pcb *const *link = &tcp_active_pcbs;

	for (pcb = tcp_active_pcbs; pcb; link = &pcb->next, pcb = pcb->next) {
		if (pcb->list_pprev != link) /* lwip-patches/0018 */
			fr_fail("an active PCB's back link is not where it is linked", NULL, 0);
		fr_check_pcb(pcb);
	}
	link = &tcp_tw_pcbs;
	for (pcb = tcp_tw_pcbs; pcb; link = &pcb->next, pcb = pcb->next) {
		if (pcb->list_pprev != link)
			fr_fail("a TIME_WAIT PCB's back link is not where it is linked", NULL, 0);
		fr_check_pcb(pcb);
	}
	for (l = tcp_listen_pcbs.listen_pcbs; l; l = l->next) {
		const struct kbs_sock *s = l->callback_arg;

		if (s && (!fr_live_slot(s) || s->pcb != (const struct tcp_pcb *)l))
			fr_fail("a listening PCB's slot is gone or holds another", NULL, 0);
	}
	/* the loss probes' list (lwip-patches/0021): linked both ways, and
	 * only active PCBs on it (a freed one would be probed after free) */
	link = &tcp_probe_pcbs;
	for (pcb = tcp_probe_pcbs; pcb; link = &pcb->probe_next, pcb = pcb->probe_next) {
		const struct tcp_pcb *a = tcp_active_pcbs;

		if (pcb->probe_pprev != link)
			fr_fail("a PCB's probe back link is not where it is linked", NULL, 0);
		while (a && a != pcb)
			a = a->next;
		if (!a)
			fr_fail("a PCB on the probe list is not active", NULL, 0);
	}
}

static void fr_check(bool full)
{
	const struct kbs_ctx *c;

	if (fz_app_ctx()->broken)
		fr_fail("the well-behaved context was cut off", NULL, 0);
	fz_good_check();
	fz_hostile_check();
	for (c = kbs_ctxs; c; c = c->next)
		fr_check_slots(c, full);
	fr_check_pcbs();
}

/* ---- records ---------------------------------------------------------------- */

/* A quiet slot's indices moved to 2^32 - back: what they would be after
 * that many bytes (nothing unread, unsent or unacknowledged, so the rings
 * hold nothing that would move). */
static void fr_ffwd(struct kbs_sock *s, uint32_t back)
{
	struct kbq_sock *q = kbs_qs(s);
	uint32_t to = 0u - back;

	if (s->life == KBS_L_LISTEN && s->pcb) {
		struct kbq_acceptq *aq = kbs_aq(s);

		if (kbq_ld(&aq->head) != s->aq_tail)
			return;
		to = 0u - (back % 8 + 1);
		s->aq_tail = to;
		kbq_st(&aq->head, to);
		kbq_st_rel(&aq->tail, to);
		return;
	}
	if (s->life != KBS_L_ESTABLISHED || !s->pcb || s->pcb->refused_data ||
	    s->rx_seen != s->rx_tail || kbq_ld(&q->rx_head) != s->rx_tail ||
	    s->tx_sent != s->tx_acked || kbq_ld(&q->tx_tail) != s->tx_sent)
		return;
	s->rx_tail = s->rx_seen = s->tx_sent = s->tx_acked = to;
	kbq_st(&q->rx_head, to);
	kbq_st(&q->tx_tail, to);
	kbq_st(&q->tx_head, to);
	kbq_st_rel(&q->rx_tail, to);
}

static void fr_ffwd_record(struct fz_in *in, unsigned a)
{
	struct kbs_ctx *c = (a & 8) ? fz_app_ctx() : fz_hostile_ctx();
	uint32_t slot = UINT32_MAX, back, i;

	if (!(a & 8))
		slot = fz_hostile_slot(in);
	else if (a & 4) {
		for (i = 0; i < c->nslots && slot == UINT32_MAX; i++)
			if (c->s[i].life == KBS_L_LISTEN)
				slot = i;
	} else {
		slot = fz_good_slot(a & 1);
	}
	back = (fz_in_u8(in) + 1u) * 61;
	if (c && slot < c->nslots)
		fr_ffwd(kbs_sock_at(c, slot), back);
}

static void fr_frame(struct fz_in *in)
{
	size_t len = fz_in_u16(in) & 0x7ff;

	if (len > in->n)
		len = in->n;
	if (len && !fz_peer_spoofed(in->p, len))
		fz_port_rx(in->p, len);
	in->p += len;
	in->n -= len;
}

static void fr_req(struct fz_in *in, unsigned a)
{
	const struct fz_field *f;
	uint32_t slot = fz_hostile_slot(in), op = fz_in_u8(in), arg[3] = { 0, 0, 0 };
	struct kbs_ctx *c = fz_hostile_ctx();
	int k = fz_field_find("sock.req_arg");
	unsigned i;

	op = op & 0x80 ? fz_in_u32(in) : op % 8;
	if (k < 0)
		abort(); /* kbq_sock has req_arg[]: the request is the protocol */
	f = fz_field_at((unsigned)k);
	for (i = 0; i < 3; i++)
		arg[i] = (uint32_t)fz_value(in, f, c ? c->r : NULL, slot, i);
	fz_hostile_req(slot, op, arg, a);
}

/* KB_FUZZ_TRACE: after each record, every context's slots in use. */
static void fr_trace_ctxs(void)
{
	const struct kbs_ctx *c;
	uint32_t i, n;

	for (c = kbs_ctxs; c; c = c->next) {
		fprintf(stderr, "fuzz:   context %u%s%s%s:", c->id, c->broken ? " cut off" : "",
			c->orphan ? " orphan" : "", c == fz_hostile_ctx() ? " (hostile)" : "");
		for (i = 0, n = 0; i < c->nslots && n < c->nsocks; i++)
			if (c->s[i].life != KBS_L_FREE) {
				n++;
				fprintf(stderr, " %u:%u%s", i, c->s[i].life, c->s[i].pcb ? "p" : "");
			}
		fprintf(stderr, "\n");
	}
}

static void fr_record(struct fz_in *in, uint32_t *budget)
{
	uint8_t kind = fz_in_u8(in);
	unsigned a = kind >> 4;
	uint32_t ms, slot, b;

	if (fr_trace)
		fprintf(stderr, "fuzz: record %u (%u)\n", kind & 0xf, a);
	switch (kind & 0xf) {
	case R_TURN:
		fr_turn();
		break;
	case R_TIME:
		ms = fz_ms[a] < *budget ? fz_ms[a] : *budget;
		*budget -= ms;
		fr_time(ms);
		break;
	case R_FRAME:
		fr_frame(in);
		fr_turn();
		break;
	case R_SEG:
		fz_hpeer_seg(in);
		fr_turn();
		break;
	case R_WRITE:
		fz_hostile_write(in);
		break;
	case R_BELL:
		slot = fz_hostile_slot(in);
		fz_hostile_bell(slot, a & 1);
		break;
	case R_REQ:
		fr_req(in, a);
		break;
	case R_LISTEN:
		b = fz_in_u8(in);
		b = b & 0x80 ? fz_in_u16(in) : FZ_HPORT + b % 4;
		fz_hostile_listen(b, fz_in_u8(in), a & 3);
		break;
	case R_CONNECT:
		b = fz_in_u8(in);
		fz_hostile_connect(b & 0x40 ? FZ_GOOD_IP : FZ_PEER_IP, FZ_PEER_PORT + b % 4,
				   (b & 0x30) == 0x30 ? FZ_PORT :
				   b & 0x80 ? FZ_LPORT + (b >> 2) % 4 : 0);
		break;
	case R_ACCEPT:
		fz_hostile_accept();
		break;
	case R_IO:
		slot = fz_hostile_slot(in);
		fz_hostile_io(slot, fz_in_u8(in) * 64u);
		break;
	case R_CLOSE:
		fz_hostile_close(fz_hostile_slot(in));
		break;
	case R_DIE:
		b = fz_in_u8(in);
		if (a & 2)
			fz_hostile_fork();
		fz_hostile_die(b, a & 1);
		break;
	case R_ATTACH:
		fz_hostile_attach();
		break;
	case R_FFWD:
		fr_ffwd_record(in, a);
		break;
	default: /* R_GOOD */
		fr_good_act = (enum fz_act[]){ FZ_ACT_NONE, FZ_ACT_HOLD, FZ_ACT_READ_SOME }[a % 3];
		break;
	}
	if (fr_trace)
		fr_trace_ctxs();
}

/* ---- an input ----------------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fr_trace = getenv("KB_FUZZ_TRACE") != NULL;
	fr_ni = fz_port_init();
	fz_app_init();
	fz_fields_init();
	fz_peer_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_in in = { data, size };
	uint32_t budget = FZ_TIME_BUDGET;
	unsigned i, records = 0;

	fz_sys_reset();
	fz_peer_reset();
	fr_good_act = FZ_ACT_NONE;
	fz_app_start();
	fz_hostile_attach();
	for (i = 0; i < FZ_OPEN_TURNS && !fz_good_check(); i++)
		fr_turn();
	if (!fz_good_check())
		fr_fail("the good connections did not start", NULL, 0);

	while (in.n) {
		fr_record(&in, &budget);
		fr_check(++records % FZ_FULL_EVERY == 0);
	}

	/* The good peer closes: every byte back, both FINs. */
	fr_good_act = FZ_ACT_NONE;
	fz_good_close();
	for (i = 0; i < FZ_CLOSE_STEPS && !fz_good_done(); i++) {
		fr_turn();
		fr_check(false);
		if (!fz_good_done())
			fr_time(50);
	}
	if (!fz_good_done())
		fr_fail("the good connections did not finish", NULL, 0);
	fr_check(true);

	/* Both contexts go: the hostile ones as kbs_ctl.c drops a context, the
	 * good one as fz_app.c ends an input (which also makes lwIP forget the
	 * PCBs no slot holds any more, and checks no slot is left). */
	fz_hostile_teardown();
	fr_check_slots(fz_app_ctx(), true);
	fr_check_pcbs();
	fz_app_stop();
	if (tcp_active_pcbs || tcp_tw_pcbs || tcp_listen_pcbs.pcbs || tcp_bound_pcbs)
		fr_fail("lwIP still holds PCBs after both contexts went", NULL, 0);
	if (kbs_ctxs != fz_app_ctx() || kbs_ctxs->next)
		fr_fail("a context is left besides the good one", NULL, 0);
	fz_hostile_release();
	fz_port_end();
	return 0;
}
