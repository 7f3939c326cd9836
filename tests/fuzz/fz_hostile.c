/*
 * fz_hostile.c — fuzz_region's hostile application: its contexts, made,
 * orphaned and dropped the way kbs_ctl.c does it, and what it does to its
 * region — plausible acts (claim a slot, listen, connect, accept, read and
 * write, close) and anything at all (any value in any word, requests in
 * any state, doorbells).
 *
 * A context's region is ordinary memory; when the context goes, the pages
 * are replaced by an inaccessible mapping until the end of the input, so
 * that kbstackd touching a region it dropped (lwIP sending from a tx ring
 * of a gone context) faults. Its kbs_ctx is freed (ASan sees a later use).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lwip/priv/tcp_priv.h"
#include "lwip/tcp.h"

#include "kbq_atomic.h"
#include "kbq_hold.h"
#include "kbq_ring.h"
#include "kbs_ctx.h"

#include "fz.h"
#include "fz_region.h"

#define FZ_HCTX_MAX    4   /* hostile contexts at once: its own and orphans still sending */
#define FZ_HATTACH_MAX 8   /* contexts it makes per input */
#define FZ_HPROCS_MAX  16  /* its processes */
#define FZ_HSLOTS      (KBQ_MAXSLOTS - 64) /* its contexts' KB_SLOTS: the last 64 are beyond */

/* Waiters that get a wake socket (kbstackd's end; the other end is the
 * application's, never read). Waiter 64's application end is closed. */
static const unsigned fz_hwaiters[] = { 0, 1, 64 };
#define FZ_HWAITER_CLOSED 64

static struct kbs_ctx *fz_hctx[FZ_HCTX_MAX]; /* every hostile context alive */
static unsigned fz_nhctx;
static struct kbs_ctx *fz_hcur;              /* the application's, NULL once it died */
static unsigned fz_hattaches;
static void *fz_hgone[FZ_HATTACH_MAX];       /* regions of gone contexts, PROT_NONE */
static unsigned fz_nhgone;
static int fz_happ_fd[FZ_HCTX_MAX][KBQ_NWAITERS / 64 + 3]; /* the application's ends */

static void fz_hfail(const char *what)
{
	fprintf(stderr, "fuzz: %s\n", what);
	abort();
}

static unsigned fz_hindex(const struct kbs_ctx *c)
{
	unsigned i;

	for (i = 0; i < fz_nhctx; i++)
		if (fz_hctx[i] == c)
			return i;
	fz_hfail("not a hostile context");
	return 0;
}

void fz_hostile_attach(void)
{
	struct kbs_ctx *c;
	struct kbq_region *r;
	unsigned i, k;

	if (fz_hcur)
		fz_hostile_die(0, true); /* the old image's context goes with it */
	if (fz_nhctx == FZ_HCTX_MAX || fz_hattaches == FZ_HATTACH_MAX)
		return;
	/* Fewer slots than its region has room for: a slot the program rings
	 * or claims past them is one kbstackd must refuse (ctx_reset_slot). */
	c = kbs_life_ctx_new(FZ_HSLOTS, FZ_BYTE_RING);
	r = mmap(NULL, kbq_region_size(KBQ_MAXSLOTS, FZ_BYTE_RING), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (!c || r == MAP_FAILED)
		fz_hfail("no memory for a hostile context");
	fz_hattaches++;
	/* What ctx_create (kbs_ctl.c) publishes. */
	r->version = KBQ_ABI_VERSION;
	r->ctx = 100 + fz_hattaches;
	r->size = kbq_region_size(KBQ_MAXSLOTS, FZ_BYTE_RING);
	r->slots = FZ_HSLOTS;
	r->ring = FZ_BYTE_RING;
	r->stack_ip = __builtin_bswap32(FZ_STACK_IP);
	kbq_st_rel(&r->magic, KBQ_REGION_MAGIC);
	c->id = r->ctx;
	c->uid = 1000;
	c->may_bind_low = false; /* an unprivileged user's */
	c->r = r;
	c->memfd = -1;
	/* A server and a child it forked: process indices 0 and 1 (kbs_ctl.c's
	 * proc_index_take, published before the answers that carry them). */
	c->nprocs = 2;
	c->procs[0] = 3;
	kbq_or_sc(&r->procs[0], 3ull);
	for (i = 0; i < KBQ_NWAITERS; i++)
		c->wfd[i] = -1;
	i = fz_nhctx++;
	fz_hctx[i] = c;
	for (k = 0; k < sizeof(fz_hwaiters) / sizeof(fz_hwaiters[0]); k++) {
		int sv[2];

		fz_happ_fd[i][k] = -1;
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
			fz_hfail("socketpair");
		c->wfd[fz_hwaiters[k]] = sv[0];
		if (fz_hwaiters[k] == FZ_HWAITER_CLOSED)
			close(sv[1]);
		else
			fz_happ_fd[i][k] = sv[1];
	}
	c->next = kbs_ctxs;
	kbs_ctxs = c;
	fz_hcur = c;
}

struct kbs_ctx *fz_hostile_ctx(void)
{
	return fz_hcur;
}

static void fz_hclose_waiters(struct kbs_ctx *c)
{
	unsigned i = fz_hindex(c), k;

	for (k = 0; k < KBQ_NWAITERS; k++)
		if (c->wfd[k] >= 0) {
			close(c->wfd[k]);
			c->wfd[k] = -1;
		}
	for (k = 0; k < sizeof(fz_hwaiters) / sizeof(fz_hwaiters[0]); k++)
		if (fz_happ_fd[i][k] >= 0) {
			close(fz_happ_fd[i][k]);
			fz_happ_fd[i][k] = -1;
		}
}

/* ctx_destroy (kbs_ctl.c): reset what is left, unlink, drop the region. */
static void fz_hdestroy(struct kbs_ctx *c)
{
	struct kbs_ctx **pp;
	unsigned i = fz_hindex(c);

	kbs_ctx_reset_all(c);
	fz_hclose_waiters(c);
	for (pp = &kbs_ctxs; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	if (mmap(c->r, kbq_region_size(KBQ_MAXSLOTS, FZ_BYTE_RING), PROT_NONE,
		 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0) == MAP_FAILED)
		fz_hfail("mmap PROT_NONE over a gone region");
	fz_hgone[fz_nhgone++] = c->r;
	if (c == fz_hcur)
		fz_hcur = NULL;
	kbs_life_ctx_free(c);
	fz_nhctx--;
	fz_hctx[i] = fz_hctx[fz_nhctx];
	memcpy(fz_happ_fd[i], fz_happ_fd[fz_nhctx], sizeof(fz_happ_fd[0]));
}

/* The n-th process index in use (n modulo how many), or UINT32_MAX. */
static uint32_t fz_hproc(const struct kbs_ctx *c, uint32_t n)
{
	uint32_t i, k = 0, count = 0;

	for (i = 0; i < KBQ_NPROCS; i++)
		count += c->procs[i / 64] >> (i % 64) & 1;
	if (!count)
		return UINT32_MAX;
	n %= count;
	for (i = 0; i < KBQ_NPROCS; i++)
		if ((c->procs[i / 64] >> (i % 64) & 1) && k++ == n)
			return i;
	return UINT32_MAX;
}

/* The process that acts (claims, accepts, closes): the lowest index. */
static uint32_t fz_hactor(void)
{
	return fz_hproc(fz_hcur, 0);
}

void fz_hostile_die(uint32_t n, bool last)
{
	struct kbs_ctx *c = fz_hcur;
	uint32_t idx;

	if (!c)
		return;
	if (!last && c->nprocs > 1 && (idx = fz_hproc(c, n)) != UINT32_MAX) {
		/* proc_gone (kbs_ctl.c): its row released, then its index */
		c->nprocs--;
		kbs_ctx_proc_gone(c, idx);
		c->procs[idx / 64] &= ~(1ull << (idx % 64));
		kbq_and_sc(&c->r->procs[idx / 64], ~(1ull << (idx % 64)));
		return;
	}
	/* ctx_orphan: its sockets close as its exit would close them */
	c->nprocs = 0;
	fz_hcur = NULL;
	fz_hclose_waiters(c);
	if (kbs_ctx_close_all(c))
		fz_hdestroy(c);
	else
		c->orphan = true;
}

/* fork (kbq_abi.h, Holding): a new index for the child (its rows cleared,
 * then published, as kbs_ctl.c's JOIN does); the parent marks the slots it
 * holds forked and ORs its row into the child's. */
void fz_hostile_fork(void)
{
	struct kbs_ctx *c = fz_hcur;
	uint32_t child, parent, w;

	if (!c || c->nprocs >= FZ_HPROCS_MAX)
		return;
	parent = fz_hactor();
	for (child = 0; child < KBQ_NPROCS && (c->procs[child / 64] >> (child % 64) & 1); child++)
		;
	if (child == KBQ_NPROCS || parent == UINT32_MAX)
		return;
	for (w = 0; w < KBQ_HELD_WORDS; w++)
		kbq_st(&c->r->held[child][w], 0);
	for (w = 0; w < KBQ_WHELD_WORDS; w++)
		kbq_st(&c->r->wheld[child][w], 0);
	c->procs[child / 64] |= 1ull << (child % 64);
	kbq_or_sc(&c->r->procs[child / 64], 1ull << (child % 64));
	c->nprocs++;
	for (w = 0; w < KBQ_HELD_WORDS; w++) {
		uint64_t m = kbq_ld_sc(&c->r->held[parent][w]);

		for (uint64_t b = m; b; b &= b - 1)
			kbq_st(&kbq_sock_at(c->r, w * 64 + (uint32_t)__builtin_ctzll(b))->forked, 1);
		kbq_or_sc(&c->r->held[child][w], m);
	}
	for (w = 0; w < KBQ_WHELD_WORDS; w++)
		kbq_or_sc(&c->r->wheld[child][w], kbq_ld_sc(&c->r->wheld[parent][w]));
}

void fz_hostile_reap(void)
{
	unsigned i;

	for (i = 0; i < fz_nhctx;)
		if (fz_hctx[i]->orphan && kbs_ctx_idle(fz_hctx[i]))
			fz_hdestroy(fz_hctx[i]);
		else
			i++;
}

void fz_hostile_teardown(void)
{
	while (fz_nhctx)
		fz_hdestroy(fz_hctx[0]);
	fz_hcur = NULL;
	fz_hattaches = 0;
}

void fz_hostile_release(void)
{
	while (fz_nhgone)
		munmap(fz_hgone[--fz_nhgone], kbq_region_size(KBQ_MAXSLOTS, FZ_BYTE_RING));
}

bool fz_hostile_gone(const void *p)
{
	unsigned i;

	for (i = 0; i < fz_nhgone; i++)
		if ((const char *)p >= (const char *)fz_hgone[i] &&
		    (const char *)p < (const char *)fz_hgone[i] + kbq_region_size(KBQ_MAXSLOTS, FZ_BYTE_RING))
			return true;
	return false;
}

void fz_hostile_check(void)
{
	unsigned i;
	uint32_t k;

	for (i = 0; i < fz_nhctx; i++) {
		const struct kbs_ctx *c = fz_hctx[i];

		if (!c->broken || !c->reset_done)
			continue;
		for (k = 0; k < c->nslots; k++) {
			const struct kbs_sock *s = &c->s[k];

			if (s->pcb || (s->life != KBS_L_FREE && s->life != KBS_L_CLOSED)) {
				fprintf(stderr, "fuzz: context %u was cut off but its slot %u still has "
					"%s (life %u)\n", c->id, k, s->pcb ? "a PCB" : "a flow",
					s->life);
				abort();
			}
		}
	}
}

/* ---- the application's acts ---------------------------------------------- */

uint32_t fz_hostile_slot(struct fz_in *in)
{
	uint32_t b = fz_in_u8(in), n, k, i;

	if (b >= 0x80)
		return ((b & 0x7f) << 8 | fz_in_u8(in)) % KBQ_MAXSLOTS;
	if (b >= 0x40)
		return b - 0x40;
	/* the (b % n)-th slot in use, in kbstackd's view */
	if (!fz_hcur || !fz_hcur->nsocks)
		return 0;
	n = b % fz_hcur->nsocks;
	for (i = 0, k = 0; i < fz_hcur->nslots; i++)
		if (fz_hcur->s[i].life != KBS_L_FREE && k++ == n)
			return i;
	return 0;
}

/* The acting process holds slot (an fd for it), or no longer does. */
static void fz_hhold(uint32_t slot, bool on)
{
	uint32_t p = fz_hactor();
	uint64_t bit = 1ull << (slot % 64);

	if (p == UINT32_MAX)
		return;
	if (on)
		kbq_or_sc(&fz_hcur->r->held[p][slot / 64], bit);
	else
		kbq_and_sc(&fz_hcur->r->held[p][slot / 64], ~bit);
}

/* Claim a free slot as the library does (CAS FREE → OPEN, not forked,
 * held by the acting process). */
static uint32_t fz_hclaim(void)
{
	uint32_t i;

	for (i = 0; i < KBQ_MAXSLOTS; i++) {
		struct kbq_sock *q = kbq_sock_at(fz_hcur->r, i);
		uint32_t want = KBQ_S_FREE;

		if (kbq_cas(&q->state, &want, KBQ_S_OPEN)) {
			kbq_st(&q->forked, 0);
			fz_hhold(i, true);
			return i;
		}
	}
	return UINT32_MAX;
}

/* how: bit 0 no doorbell; bit 1 the same request number again; bit 2 one
 * number skipped. */
void fz_hostile_req(uint32_t slot, uint32_t op, const uint32_t arg[3], uint32_t how)
{
	struct kbq_sock *q;
	uint32_t seq;

	if (!fz_hcur)
		return;
	q = kbq_sock_at(fz_hcur->r, slot % KBQ_MAXSLOTS);
	kbq_st(&q->req_op, op);
	kbq_st(&q->req_arg[0], arg[0]);
	kbq_st(&q->req_arg[1], arg[1]);
	kbq_st(&q->req_arg[2], arg[2]);
	seq = kbq_ld(&q->req_seq) + (how & 2 ? 0 : how & 4 ? 2 : 1);
	kbq_st_rel(&q->req_seq, seq);
	if (!(how & 1))
		kbq_bell(fz_hcur->r, slot % KBQ_MAXSLOTS);
}

void fz_hostile_listen(uint32_t port, uint32_t backlog, uint32_t inherit)
{
	uint32_t slot, arg[3] = { port, backlog, inherit };

	if (fz_hcur && (slot = fz_hclaim()) != UINT32_MAX)
		fz_hostile_req(slot, KBQ_OP_LISTEN, arg, 0);
}

void fz_hostile_connect(uint32_t ip, uint32_t port, uint32_t lport)
{
	uint32_t slot, arg[3] = { __builtin_bswap32(ip), port, lport };

	if (fz_hcur && (slot = fz_hclaim()) != UINT32_MAX)
		fz_hostile_req(slot, KBQ_OP_CONNECT, arg, 0);
}

/* Take every connection queued on its listeners (as accept() does). */
void fz_hostile_accept(void)
{
	uint32_t i;

	if (!fz_hcur)
		return;
	for (i = 0; i < fz_hcur->nslots; i++) {
		uint32_t lq = kbq_ld(&kbq_sock_at(fz_hcur->r, i)->lq), head, tail, n;
		struct kbq_acceptq *aq;

		if (fz_hcur->s[i].life != KBS_L_LISTEN || lq >= KBQ_NLISTEN)
			continue;
		aq = kbq_acceptq_at(fz_hcur->r, lq);
		head = kbq_ld(&aq->head);
		tail = kbq_ld_acq(&aq->tail);
		for (n = 0; head != tail && n < KBQ_ACCEPTQ; head++, n++) {
			uint32_t slot = kbq_ld(&aq->slot[head % KBQ_ACCEPTQ]);

			if (slot < KBQ_MAXSLOTS) {
				kbq_st(&kbq_sock_at(fz_hcur->r, slot)->forked, 0);
				fz_hhold(slot, true);
			}
		}
		kbq_st_rel(&aq->head, head);
	}
}

/* Read everything there is (rx_head = rx_tail), queue n bytes, ring. */
void fz_hostile_io(uint32_t slot, uint32_t n)
{
	struct kbq_sock *q;
	uint32_t tail, head, i;
	uint8_t *ring;

	if (!fz_hcur)
		return;
	q = kbq_sock_at(fz_hcur->r, slot);
	kbq_st_rel(&q->rx_head, kbq_ld_acq(&q->rx_tail));
	tail = kbq_ld(&q->tx_tail);
	head = kbq_ld_acq(&q->tx_head);
	if (!kbq_ring_sane(FZ_BYTE_RING, tail, head))
		n = 0;
	else if (n > kbq_ring_free(FZ_BYTE_RING, tail, head))
		n = kbq_ring_free(FZ_BYTE_RING, tail, head);
	ring = kbq_tx_data(fz_hcur->r, slot, FZ_BYTE_RING);
	for (i = 0; i < n; i++)
		ring[(tail + i) & (FZ_BYTE_RING - 1)] = (uint8_t)('A' + (tail + i) % 26);
	kbq_st_rel(&q->tx_tail, tail + n);
	kbq_bell(fz_hcur->r, slot);
}

/* close() of its last fd in the acting process, as the library does it
 * (kbq_abi.h, Holding): drop the holding; if no other process holds the
 * slot, claim the close (closing: gen → gen + 1) and post CLOSE. */
void fz_hostile_close(uint32_t slot)
{
	static const uint32_t none[3];
	struct kbq_sock *q;
	uint32_t gen;

	if (!fz_hcur)
		return;
	q = kbq_sock_at(fz_hcur->r, slot);
	gen = kbq_ld_acq(&q->gen);
	fz_hhold(slot, false);
	if (kbq_ld(&q->forked) &&
	    kbq_held_by_other(&fz_hcur->r->held[0][0], KBQ_HELD_WORDS, fz_hcur->r->procs,
			      fz_hactor(), slot))
		return;
	if (kbq_cas(&q->closing, &gen, gen + 1))
		fz_hostile_req(slot, KBQ_OP_CLOSE, none, 0);
}

void fz_hostile_bell(uint32_t slot, bool all)
{
	uint32_t i;

	if (!fz_hcur)
		return;
	if (!all) {
		kbq_bell(fz_hcur->r, slot);
		return;
	}
	for (i = 0; i < fz_hcur->nslots; i++)
		kbq_bell(fz_hcur->r, i);
}

/* field [slot] [element] value: see fuzz_region.c. */
void fz_hostile_write(struct fz_in *in)
{
	const struct fz_field *f = fz_field_at(fz_in_u8(in));
	uint32_t slot = 0, elem = 0;
	uint64_t v;

	if (f->base == FZ_B_SOCK || f->base == FZ_B_ACCEPTQ)
		slot = fz_hostile_slot(in);
	if (f->count > 1)
		elem = fz_in_index(in);
	if (!fz_hcur) {
		fz_value(in, f, NULL, 0, 0); /* consumed all the same */
		return;
	}
	v = fz_value(in, f, fz_hcur->r, slot, elem);
	fz_field_set(f, fz_hcur->r, slot, elem, v);
}
