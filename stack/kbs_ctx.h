/*
 * kbs_ctx.h — kbstackd's private view of application contexts: one per
 * shared region, with the lwIP PCB of every socket slot and what kbstackd
 * has already done with the slot's indices. Nothing here lives in shared
 * memory; the region is only ever read through checked loads.
 *
 * kbs_ctl.c: the control socket (attach, join, liveness).
 * kbs_sock.c: socket slots ↔ lwIP raw API (the data path).
 */
#ifndef KBS_CTX_H
#define KBS_CTX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "kbq_abi.h"

struct tcp_pcb;
struct kbs_ctx;

/* Sockets with events remembered per loop iteration for targeted wake-ups. */
#define KBS_EVQ 256

/* One socket slot, kbstackd's side. */
struct kbs_sock {
	struct kbs_ctx *ctx;
	struct tcp_pcb *pcb;   /* NULL when lwIP has no PCB for the slot */
	uint32_t slot;
	uint32_t done_seq;     /* last request handled */
	uint32_t tx_sent;      /* tx bytes handed to tcp_write */
	uint32_t rx_seen;      /* rx_head last credited to lwIP's window */
	bool listening;
	bool closing;          /* the app closed it; free once lwIP is done */
	bool fin_sent;         /* our FIN is queued (tcp_shutdown or tcp_close) */
	bool close_called;     /* tcp_close done; free once all tx is acknowledged */
	bool shut_wr;          /* SHUT_WR requested */
	bool in_evq;           /* listed in ctx->evq this loop iteration */
	uint32_t inherit;      /* listener: KBQ_OPT_F_* its connections start with */
};

struct kbs_proc {
	int fd;                /* its control connection */
	pid_t pid;
	uid_t uid;
	struct kbs_ctx *ctx;   /* NULL until its hello */
};

struct kbs_ctx {
	uint32_t id;
	uid_t uid;             /* the creator's uid */
	struct kbq_region *r;
	int memfd;
	int wfd[KBQ_NWAITERS]; /* each waiter's eventfd, -1 none: written to wake it */
	unsigned nprocs;
	bool orphan;           /* no process left: sending what they queued */
	bool freed;            /* orphan: a slot was freed since the last look */
	bool event;            /* a socket event happened this loop iteration */
	uint32_t nev;          /* sockets with an event this iteration (evq) */
	uint32_t evq[KBS_EVQ]; /* their slots; beyond KBS_EVQ, wake every sleeper */
	struct kbs_ctx *next;
	struct kbs_sock s[KBQ_NSOCKS];
};

extern struct kbs_ctx *kbs_ctxs;

/* --- kbs_sock.c --- */

/* Serve every slot whose doorbell rang, in every context; how many. */
unsigned kbs_ctxs_service(void);

/* End of a loop iteration: publish events, wake sleeping applications. */
void kbs_ctxs_wake(void);

/* A process of ctx died: close the sockets only it held, as its exit
 * would have on Linux (queued data still goes out, then FIN). */
void kbs_ctx_proc_gone(struct kbs_ctx *ctx, pid_t pid);

/* The last process of ctx is gone: close every socket likewise. True when
 * nothing is left to send, so the region can go at once. */
bool kbs_ctx_close_all(struct kbs_ctx *ctx);

/* No slot of ctx in use (an orphaned context has finished sending). */
bool kbs_ctx_idle(const struct kbs_ctx *ctx);

/* Reset every socket of ctx (kbstackd is stopping). */
void kbs_ctx_reset_all(struct kbs_ctx *ctx);

/* Counters for kbstat: contexts; slots in use; fallbacks by KBQ_FB_*. */
unsigned kbs_ctxs_count(unsigned *socks, uint64_t fallback[KBQ_FB_NSTAT]);

/* --- kbs_ctl.c --- */

/* Listen on the control socket at path. 0 or -errno (message printed). */
int kbs_ctl_open(const char *path, uint32_t stack_ip);

/* Accept attaches and notice hang-ups; never blocks. */
void kbs_ctl_poll(void);

/* Close every connection and context, remove the socket file. */
void kbs_ctl_close(void);

#endif /* KBS_CTX_H */
