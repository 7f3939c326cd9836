/*
 * kbs_ctx.h — kbstackd's private view of application contexts: one per
 * shared region, with every socket slot's lifecycle, its lwIP PCB and
 * private copies of every index and state kbstackd publishes. Nothing here
 * lives in shared memory: the region is written to publish and read only
 * for what the application writes, once per use, then validated.
 *
 * Layers, each calling only itself or below:
 *   kbs_req.c    application requests (doorbells): listen, connect, close…
 *   kbs_tcp.c    lwIP callbacks and the data path (rings ↔ PCB)
 *   kbs_life.c   the slot lifecycle: the one place a slot changes state,
 *                and the one that knows whether lwIP may free its PCB
 *   kbs_wake.c   events and wake-ups of sleeping application threads
 *   kbs_ctl.c    the control socket: contexts, processes, credentials
 */
#ifndef KBS_CTX_H
#define KBS_CTX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kbq_abi.h"
#include "lwip/err.h"

struct tcp_pcb;
struct kbs_ctx;

/*
 * A slot's lifecycle, kept by kbstackd alone (kbs_life_set is the only
 * writer). The shared kbq_sock.state is a copy published from it.
 *
 *   FREE ──app claims──▶ OPEN ──listen──▶ LISTEN ──close──▶ FREE
 *     │                   │  ──connect─▶ CONNECTING ─ok─▶ ESTABLISHED
 *     └──accept (stack)───┼──────────────────────────────▶ ESTABLISHED
 *                         │            PCB lost (RST, error, both FINs
 *                         │            then freed) ─▶ CLOSED
 *   ESTABLISHED/CLOSED/OPEN ──close──▶ DRAINING (data still to send, FIN)
 *   DRAINING ──all acknowledged or PCB gone──▶ FREE
 */
enum kbs_life {
	KBS_L_FREE = 0,
	KBS_L_OPEN,
	KBS_L_LISTEN,
	KBS_L_CONNECTING,
	KBS_L_ESTABLISHED,
	KBS_L_CLOSED,
	KBS_L_DRAINING,
	KBS_L_NSTATES
};

/* Why a context was cut off: it broke the region's contract. */
enum kbs_viol {
	KBS_V_NONE = 0,
	KBS_V_RING,      /* an rx_head or tx_tail outside what the stack published */
	KBS_V_ACCEPT,    /* an accept queue's head beyond its tail */
	KBS_V_SLOT,      /* a slot claimed beyond the context's nslots */
};

#define KBS_LQ_NONE UINT32_MAX /* kbs_sock.lq of a slot that holds no accept queue */

/* One socket slot, kbstackd's side. */
struct kbs_sock {
	struct kbs_ctx *ctx;
	struct tcp_pcb *pcb;   /* NULL when lwIP holds no PCB for the slot */
	uint32_t slot;
	uint8_t life;         /* enum kbs_life; kbs_life_set only */
	bool fin_sent;         /* our FIN is queued (tcp_shutdown or tcp_close) */
	bool close_called;     /* tcp_close done */
	bool shut_wr;          /* SHUT_WR requested */
	bool fin_done;         /* ended by both FINs before the app's close */
	uint32_t evq_gen;      /* == ctx->evq_gen: listed in ctx->evq this loop iteration */
	bool lost;             /* lwIP dropped the PCB; kbs_life_settle decides */
	int8_t lost_err;      /* err_t that came with it (ERR_OK: freed silently) */
	uint32_t inherit;      /* listener: KBQ_OPT_F_* its connections start with */
	/* Private copies of what kbstackd publishes: never read back. */
	uint32_t gen;          /* → kbq_sock.gen */
	uint32_t ev;           /* → kbq_sock.ev */
	uint32_t done_seq;     /* last request handled (→ done_seq) */
	uint32_t conn_seq;     /* the connect request in progress */
	uint32_t rx_tail;      /* bytes put in the rx ring (→ rx_tail) */
	uint32_t rx_seen;      /* rx_head last credited to lwIP's window */
	uint32_t tx_sent;      /* tx bytes handed to tcp_write */
	uint32_t tx_acked;     /* tx bytes the peer acknowledged (→ tx_head) */
	uint32_t lq;           /* listener: its accept queue (→ kbq_sock.lq), held
				* until the slot is freed; KBS_LQ_NONE: none */
	uint32_t aq_tail;      /* listener: connections queued (→ its queue's tail) */
	uint32_t aq_limit;     /* listener: connections its queue may hold, the
				* backlog + 1 as Linux counts (1 to KBQ_ACCEPTQ) */
	uint32_t listener;     /* accepted: its listener's slot */
	struct kbs_sock *settle_next; /* kbs_life_settle's list */
	bool trim_listed;      /* on ctx->trim_list (kbs_trim.c) */
	bool trim_busy;        /* had an event this trim period */
	bool trim_rx, trim_tx; /* the ring's pages were written since last trimmed */
	struct kbs_sock *trim_next;
	bool tx_wait;          /* on ctx->tx_wait_list (kbs_tcp_tx_retry) */
	struct kbs_sock *tx_wait_next;
	uint32_t ooseq_nxt;    /* rcv_nxt when the out-of-order prune saw it move, */
	uint32_t ooseq_ms;     /* and when (kbs_tcp_ooseq_stuck) */
};

struct kbs_proc {
	int fd;                /* its control connection */
	pid_t pid;
	uid_t uid;
	struct kbs_ctx *ctx;   /* NULL until its hello */
	uint32_t idx;          /* its process index in ctx (its rows) */
};

struct kbs_ctx {
	uint32_t id;
	uid_t uid;             /* the creator's uid */
	bool may_bind_low;     /* its creator held CAP_NET_BIND_SERVICE */
	struct kbq_region *r;
	int memfd;
	int wfd[KBQ_NWAITERS]; /* each waiter's wake socket, -1 none */
	unsigned nprocs;
	uint64_t procs[KBQ_NPROCS / 64]; /* process indices in use (→ r->procs) */
	unsigned nsocks;       /* slots whose life is not FREE */
	uint32_t nslots;       /* slots it may use, the first ones (r->slots), a
				* multiple of 64: s[], free_bits and evq are this long */
	uint32_t ring;         /* bytes per ring (r->ring: KB_RING) */
	bool orphan;           /* no process left: sending what they queued */
	bool event;            /* a socket event happened this loop iteration */
	uint8_t broken;       /* enum kbs_viol: cut off, its sockets reset */
	bool reset_done;       /* ... and that reset has been done */
	uint32_t nev;          /* sockets with an event this iteration (evq) */
	uint32_t evq_gen;      /* bumped when evq is forgotten (never 0) */
	uint32_t rq_tail[KBQ_NWAITERS]; /* → r->readyq[i].tail */
	uint32_t rq_lost[KBQ_NWAITERS]; /* → r->readyq[i].lost */
	/* bit i: slot i is FREE in kbstackd's view and was not seen claimed
	 * by the application (kbs_life_set, kbs_slot_claim keep it); no word
	 * below free_lo has a bit */
	uint64_t *free_bits;
	uint32_t free_lo;
	/* bit i: accept queue i is no listener's (kbs_life_lq_*) */
	uint64_t lq_free[KBQ_NLISTEN / 64];
	uint32_t *evq;         /* their slots, each once (evq_gen): never overflows */
	struct kbs_sock *trim_list; /* sockets whose rings may hold pages (kbs_trim.c) */
	struct kbs_sock *tx_wait_list; /* sockets whose tx waits for lwIP's segments */
	struct kbs_sock **trim_cur; /* where this period's pass resumes; NULL: done */
	struct kbs_ctx *next;
	/* Slot i's private side, set up at its first use (kbs_sock_at); a
	 * slot never used is all zero: FREE. */
	struct kbs_sock s[];
};

extern struct kbs_ctx *kbs_ctxs;

/* Slot slot (below c->nslots) of c, set up on its first use. */
static inline struct kbs_sock *kbs_sock_at(struct kbs_ctx *c, uint32_t slot)
{
	struct kbs_sock *s = &c->s[slot];

	if (!s->ctx) {
		s->ctx = c;
		s->slot = slot;
		s->lq = KBS_LQ_NONE;
	}
	return s;
}

/* Slot is free again for kbs_slot_claim: its bit back, the low mark moved. */
static inline void kbs_ctx_slot_freed(struct kbs_ctx *c, uint32_t slot)
{
	c->free_bits[slot / 64] |= 1ull << (slot % 64);
	if (slot / 64 < c->free_lo)
		c->free_lo = slot / 64;
}

static inline struct kbq_sock *kbs_qs(const struct kbs_sock *s)
{
	return kbq_sock_at(s->ctx->r, s->slot);
}

/* A listener's accept queue (l->lq is kbstackd's own: in range). */
static inline struct kbq_acceptq *kbs_aq(const struct kbs_sock *l)
{
	return kbq_acceptq_at(l->ctx->r, l->lq);
}

/* --- kbs_life.c --- */

/* Once, after lwIP is up: register the PCB-freed callback. */
void kbs_life_init(void);

/* A new context of nslots slots (a multiple of 64, at most KBQ_MAXSLOTS),
 * all FREE, its region r not yet set; NULL: out of memory. */
struct kbs_ctx *kbs_life_ctx_new(uint32_t nslots, uint32_t ring);

/* Every slot of c back to never used (the fuzz targets' fresh start). */
void kbs_life_ctx_clear(struct kbs_ctx *c);

/* Free what kbs_life_ctx_new allocated (the region is the caller's). */
void kbs_life_ctx_free(struct kbs_ctx *c);

/* Change s's lifecycle state and publish it. */
void kbs_life_set(struct kbs_sock *s, enum kbs_life to);

/* s now owns pcb: callbacks are kbs_tcp's (listen: accept only). */
void kbs_life_attach(struct kbs_sock *s, struct tcp_pcb *pcb);

/* Forget s's PCB without touching it further (lwIP keeps running it). */
void kbs_life_detach(struct kbs_sock *s);

/* Reset s's flow (RST), or close a listener's PCB; then FREE if the app
 * had closed it, else CLOSED with err (0: none) for the app to see. */
void kbs_life_abort(struct kbs_sock *s, int err);

/* The slot goes back to the application: FREE, generation bumped; a
 * listener's accept queue goes back too. */
void kbs_life_free(struct kbs_sock *s);

/* Give listener-to-be s the lowest free accept queue of its context, both
 * indices 0, its index stored in the slot (published by the state LISTEN
 * that follows). 0, or -ENOBUFS when all KBQ_NLISTEN are taken. */
int kbs_life_lq_take(struct kbs_sock *s);

/* s's accept queue goes back (none held: nothing). */
void kbs_life_lq_put(struct kbs_sock *s);

/* Set events in ev (and so_error first when err) and publish them. */
void kbs_life_ev(struct kbs_sock *s, uint32_t ev, int err);

/* lwIP dropped s's PCB (error callback or freed): settled later. */
void kbs_life_lost(struct kbs_sock *s, err_t err);

/* Apply the PCB losses lwIP reported since the last call. Called by the
 * loop after each entry into lwIP (rx, timers, requests). */
void kbs_life_settle(void);

/* The context broke the contract: counted, its sockets reset at the next
 * service, and nothing it asks for is served any more. */
void kbs_life_violation(struct kbs_ctx *c, enum kbs_viol why);

/* Inside an lwIP callback: the PCB it was called for (NULL outside). */
struct kbs_cb {
	struct tcp_pcb *pcb;
	bool gone;             /* that PCB was freed during the callback */
};
extern struct kbs_cb kbs_cb;

static inline struct kbs_cb kbs_cb_enter(struct tcp_pcb *pcb)
{
	struct kbs_cb saved = kbs_cb;

	kbs_cb.pcb = pcb;
	kbs_cb.gone = false;
	return saved;
}

/* rc, or ERR_ABRT when the callback's PCB was freed meanwhile. */
static inline err_t kbs_cb_leave(struct kbs_cb saved, err_t rc)
{
	if (kbs_cb.gone)
		rc = ERR_ABRT; /* lwIP must not touch the PCB again */
	kbs_cb = saved;
	return rc;
}

/* --- kbs_tcp.c --- */

/* Hand queued tx bytes to lwIP, straight from the ring. */
void kbs_tcp_tx_push(struct kbs_sock *s);

/* Credit lwIP's receive window with what the app consumed. */
void kbs_tcp_rx_credit(struct kbs_sock *s);

/* Set up a slot the stack claimed for a connection pcb. */
void kbs_tcp_flow_attach(struct kbs_sock *s, struct tcp_pcb *pcb);

/* Publish pcb's addresses in s's shared slot. */
void kbs_tcp_addrs(struct kbs_sock *s, struct tcp_pcb *pcb);

/* lwIP's err_t as a positive errno. */
int kbs_errno(err_t err);

/* lwIP's callbacks, through kbs_life (which tracks the PCB's life). */
struct pbuf;
err_t kbs_tcp_on_accept(void *arg, struct tcp_pcb *pcb, err_t err);
err_t kbs_tcp_on_connected(void *arg, struct tcp_pcb *pcb, err_t err);
err_t kbs_tcp_on_recv(struct kbs_sock *s, struct tcp_pcb *pcb, struct pbuf *p);
void kbs_tcp_on_sent(struct kbs_sock *s, uint16_t len);

/* --- kbs_req.c --- */

/* Serve every slot whose doorbell rang, in every context; how many. */
unsigned kbs_ctxs_service(void);

/* Close s as its process's close() would (the app dropped it). */
void kbs_req_close(struct kbs_sock *s);

/* Process index idx of ctx is gone: its held row is released, and the
 * sockets no other process holds are closed as its exit would have on
 * Linux (queued data still goes out, then FIN). */
void kbs_ctx_proc_gone(struct kbs_ctx *ctx, uint32_t idx);

/* The last process of ctx is gone: close every socket likewise. True when
 * nothing is left to send, so the region can go at once. */
bool kbs_ctx_close_all(struct kbs_ctx *ctx);

/* A free slot of c for an incoming connection, its shared state STACK;
 * NULL when none (kbs_tcp.c). */
struct kbs_sock *kbs_slot_claim(struct kbs_ctx *c);

/* Push again the tx of sockets lwIP refused segments to while they had
 * nothing in flight (nothing else would): the loop calls it every ms. */
void kbs_tcp_tx_retry(void);

/* No slot of ctx in use (an orphaned context has finished sending). */
bool kbs_ctx_idle(const struct kbs_ctx *ctx);

/* Reset every socket of ctx (kbstackd is stopping, or ctx broke the
 * contract). */
void kbs_ctx_reset_all(struct kbs_ctx *ctx);

/* Counters for kbstat: contexts; their processes, slots in use, waiter
 * entries in use and region memory; fallbacks by KBQ_FB_*. */
struct kbs_ctxs_counts {
	unsigned procs, socks, waiters;
	uint64_t region_kib;   /* the regions' memfd pages, KiB */
	uint64_t fallback[KBQ_FB_NSTAT];
};
unsigned kbs_ctxs_count(struct kbs_ctxs_counts *n);

/* --- kbs_wake.c --- */

/* Something changed on s: wake a thread blocked on it, remember it for
 * the waiters' wake-up at the end of the iteration. */
void kbs_wake_event(struct kbs_sock *s);

/* End of a loop iteration: publish events, wake sleeping applications. */
void kbs_ctxs_wake(void);

/* --- kbs_trim.c --- */

#define KBS_TRIM_MS 128 /* a socket's rings idle this long (to twice) give their pages back */
#define KBS_TRIM_PUNCHES 32 /* holes punched per call of kbs_trim_pass at most */
#define KBS_TRIM_US      50 /* ... and no new one after this long */

/* s had an event: its rings may hold pages; watch it. */
void kbs_trim_touch(struct kbs_sock *s);

/* Give back the pages of rings idle since the last period, from the start
 * of the watch lists when a new period (KBS_TRIM_MS) begins, otherwise
 * where the last call stopped: each call stops after a few system calls
 * (KBS_TRIM_PUNCHES, KBS_TRIM_US). True when it stopped early (call again
 * next iteration). */
bool kbs_trim_pass(bool new_period);

/* --- kbs_ctl.c --- */

/* Listen on the control socket at path. 0 or -errno (message printed). */
struct kbs_config;
int kbs_ctl_open(const struct kbs_config *cfg);

/* Accept attaches and notice hang-ups; never blocks. */
void kbs_ctl_poll(void);

/* A process's new control connection fd: who it is (SO_PEERCRED), and its
 * credentials on every message from now on (SO_PASSCRED). NULL on failure
 * (fd is still the caller's). */
struct kbs_proc *kbs_ctl_proc_new(int fd);

/* Read and answer one hello on p's connection (NEW, JOIN, PID, WAITER),
 * never blocking. 0: keep the connection; -1: drop it. kbs_ctl_poll's, and
 * the preload harness's control plane (tests/unit). */
int kbs_ctl_hello(struct kbs_proc *p);

/* Close every connection and context, remove the socket file. */
void kbs_ctl_close(void);

#endif /* KBS_CTX_H */
