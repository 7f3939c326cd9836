/*
 * kbp.h — libkbpreload.so's internals, shared by its files.
 *
 *   kbp_interpose.c  only defines the libc symbols and calls kbp_*()
 *   kbp_libc.c       libc's own functions (libc_<name>), usable before kbp_init
 *   kbp_core.c       settings (KB_ACCEL…), attach to kbstackd, fd table, fork
 *   kbp_tcp.c        accelerated sockets: listen, accept, connect, I/O, close
 *   kbp_wait.c       sleeping and waking: blocking calls, epoll, poll, select
 *   kbp_pass.c       accelerated sockets sent to another process (SCM_RIGHTS)
 *   kbp_syscall.c    syscall(), routed to the symbols above for kb's fds
 *
 * Errors: kbp_* functions return >= 0 or -errno; the interposed symbols turn
 * that into -1/errno exactly as libc would. "Ours" is decided by one lookup
 * in the fd table (kbp_fd_get), never inferred from an error.
 */
#ifndef KBP_H
#define KBP_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "kbq_abi.h"
#include "kbq_atomic.h"
#include "kbp_syms.h"

/* libc's own functions (kbp_libc.c): never NULL, callable at any time. */
#define KBP_LIBC_DECL(ret, name, params, ...) extern ret (*libc_##name) params;
KBP_SYMS(KBP_LIBC_DECL)
KBP_SYMS_VARIADIC(KBP_LIBC_DECL)
KBP_SYMS_SYSCALL(KBP_LIBC_DECL)
#undef KBP_LIBC_DECL

/* Look every libc_<name> up now (kbp_init, first), not on its first call. */
void kbp_libc_resolve(void);

/* ---- settings (kbp_core.c) ---- */

#define KBP_MAX_RULES 32

struct kbp_rule {        /* connect:ADDR/PREFIX[:PORT] */
	uint32_t net;        /* network order */
	uint32_t mask;       /* network order */
	uint16_t port;       /* host order, 0 = any */
};

struct kbp_config {
	bool any_listen;     /* listen:* */
	uint16_t listen[KBP_MAX_RULES];
	unsigned nlisten;
	struct kbp_rule connect[KBP_MAX_RULES];
	unsigned nconnect;
	char stack[108];     /* KB_STACK */
	unsigned spin_us;    /* KB_SPIN_US */
	int log;             /* KB_LOG: 0 quiet, 1 notices (default), 2 debug */
	bool strict;         /* KB_STRICT */
};

extern struct kbp_config kbp_cfg;

/*
 * Read the settings from the environment into c: defaults, then each KB_*
 * variable (an empty one counts as unset). A bad value is said in one line
 * (say, level 0) naming the setting and the accepted form, and the setting
 * keeps its default; a bad KB_ACCEL or KB_STACK leaves no rule. The line
 * tells what is used instead unless c->strict (the caller exits then).
 * Notices at level 1. Returns how many values were bad.
 */
int kbp_config_read(struct kbp_config *c, void (*say)(int level, const char *line));

/* Parse KB_ACCEL's form into c's rules. 0 or -EINVAL, err filled. */
int kbp_accel_parse(struct kbp_config *c, const char *v, char *err, size_t errlen);

bool kbp_listen_match(uint16_t port);
bool kbp_connect_match(uint32_t ip, uint16_t port);

void kbp_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- attachment to kbstackd (kbp_core.c) ---- */

struct kbp_proc {
	struct kbq_region *r;  /* the current attachment's region; NULL until the first */
	int ctl;               /* control connection */
	int efd;               /* waiter 0's wake socket (the end it sleeps on) */
	int kick;              /* ... and its pair's other end, registered at attach */
	uint32_t w0_taken;     /* waiter 0 given to a thread or epoll (atomic) */
	uint32_t ctx;
	uint32_t proc;         /* our process index: our rows (kbq_abi.h, Holding);
				* KBQ_NPROCS: none (a child kbstackd did not take,
				* or the program closed our control connection);
				* read it once per use (kbp_me) */
	pid_t pid;
	int failed;            /* the last attach tried failed: -errno */
	uint64_t failed_at;    /* ... at this CLOCK_MONOTONIC time (ms) */
	/* Attachments are numbered from 1 (epoch); every socket and waiter
	 * records the one it belongs to. dead: the highest epoch whose
	 * kbstackd hung up. The current attachment is live while epoch is
	 * not dead; sockets of a dead one answer with errors (kbp_gone). */
	uint32_t epoch;
	uint32_t dead;         /* atomic */
};

extern struct kbp_proc kbp;

/* The slots of a region kbp_attach accepted (it checked the count against
 * the size kbstackd sent). Read from the region each time: a program that
 * scribbles on its own region can make this wrong, and harms only itself
 * (its slot table is mapped to KBQ_MAXSLOTS, its rings only to the count). */
static inline uint32_t kbp_region_slots(const struct kbq_region *r)
{
	uint32_t n = kbq_ld(&r->slots);

	return n >= KBQ_SLOTS_MIN && n <= KBQ_MAXSLOTS ? n : KBQ_SLOTS_MIN;
}

/* The ring size of a region kbp_attach accepted (KB_RING, checked there
 * against the size kbstackd sent), read from it as the slot count is: a
 * program that scribbles on its own region's header harms only itself (an
 * invalid size reads as the least; another valid one sends its copies
 * outside its rings, in its own memory). kbstackd never reads it. */
static inline uint32_t kbp_region_ring(const struct kbq_region *r)
{
	uint32_t n = kbq_ld(&r->ring);

	return kbq_ring_size_ok(n) ? n : KBQ_RING_MIN;
}

/* Attachment att's kbstackd has gone (its control connection hung up). */
static inline bool kbp_att_dead(uint32_t att)
{
	return att <= kbq_ld_acq(&kbp.dead);
}

/* Attached, and that kbstackd still answers (as far as we know). */
static inline bool kbp_live(void)
{
	return kbq_ld_acq(&kbp.r) && !kbp_att_dead(kbq_ld_acq(&kbp.epoch));
}

/*
 * Has kbstackd hung up? At most one look (a poll of the control
 * connection) per 100 ms, from the sleeps that may otherwise not end:
 * a kbstackd that dies sends nothing. The first to see it calls
 * kbp_stack_gone. Cheap when it was looked at recently.
 */
void kbp_stack_check(void);

/* For the paths a busy-polling program takes instead of sleeping (EAGAIN,
 * epoll_wait with a zero timeout): kbp_stack_check every 256th time a thread
 * passes here (a thread-local count: no clock read in between). */
static inline void kbp_stack_check_often(void)
{
	static __thread unsigned n;

	if (__builtin_expect(++n % 256 == 0, 0))
		kbp_stack_check();
}

/* The kbstackd of attachment att is gone (its control connection hung
 * up): mark att dead — no later one —, say so, and wake every thread of
 * this process asleep on one of its sockets. */
void kbp_stack_gone(uint32_t att);

/* The current attachment's control connection to sleep on (POLLHUP when
 * kbstackd dies) and, in *att, that attachment; -1 when none is live.
 * The fds of an attachment stay open after its death (a thread may still
 * hold their numbers), so the fd never names another file. */
int kbp_ctl_fd(uint32_t *att);

/* Our process index, or KBQ_NPROCS: then we hold nothing and touch no row. */
static inline uint32_t kbp_me(void)
{
	return kbq_ld(&kbp.proc);
}

/* The program closes fd, our control connection (a close-everything loop,
 * dup2 over it): kbstackd will take the hang-up for our exit and release
 * our rows, so we stop using them first. */
void kbp_ctl_closing(int fd);

/* Attach if not yet (lazily, at the first accelerated socket), or again
 * when the last attachment's kbstackd has gone (at most one try a second:
 * a kbstackd restarted serves the process's new sockets). 0 or -errno
 * (also when attached without a process index: nothing new is accelerated). */
int kbp_attach(void);

/*
 * Publishing a new socket or epoll instance in the fd table happens
 * between these, after its holding bit was set: a fork in another thread
 * copies our rows for the child either before the publication or after
 * fork has returned, never between (the child's table and its row agree).
 */
void kbp_publish_begin(void);
void kbp_publish_end(void);

/* Dropping a holding (clear our bit, look at the other rows, claim the
 * close) happens between these: the fork's copy of our rows is atomic
 * with respect to it. */
void kbp_drop_begin(void);
void kbp_drop_end(void);

/* Hand kbstackd the socket that wakes waiter idx. 0 or -errno. */
int kbp_ctl_waiter(uint32_t idx, int kick);

/* A wake socket pair: sv[0] is slept on, a byte sent on sv[1] (by
 * kbstackd, or by the application to wake itself) makes it readable. */
int kbp_wake_pair(int sv[2]);

/* One sleeper identity: a waiter[] entry and its eventfd (idx -1: none). */
struct kbp_waiter {
	int idx;
	uint32_t att;  /* the attachment whose region holds entry idx */
	struct kbq_region *r; /* ... that region */
	int efd;  /* the wake socket's end it sleeps on */
	int kick; /* the other end: a byte sent here wakes it */
	bool et;  /* in an epoll set edge-triggered: drained only now and then */
	unsigned wakes; /* edge-triggered wake-ups since the last drain */
};

/* ---- process-local socket objects and the fd table ---- */

enum { KBP_K_SOCK = 1, KBP_K_EPOLL, KBP_K_CTL };

/*
 * Threads (README, "Threads"): every interposed call on an accelerated fd
 * holds a reference on its kbp_sock for its duration (kbp_sock_hold, then
 * kbp_sock_put), as Linux's fdget holds the file: close() in another
 * thread only drops the fd's reference, and whoever drops the last one
 * closes the socket. The objects are type-stable (kbp_tcp.c): never given
 * back to malloc, so a lookup racing with the last drop reads a kbp_sock,
 * never freed memory. Writers take tx_lock for a whole call, readers
 * rx_lock while they copy (kbp_send, kbp_recv). Fields other threads may
 * read while one writes are accessed atomically, as marked.
 */
struct kbp_sock {
	int kind;              /* KBP_K_SOCK, for ever (type-stable) */
	int refs;              /* fds of this process pointing here, plus calls
				* in progress on it (atomic); 0: free */
	uint32_t slot;         /* KBQ_MAXSLOTS: none (given up before it was published) */
	bool listener;
	bool nonblock;         /* the application's O_NONBLOCK (atomic) */
	bool shut_rd;          /* atomic */
	bool shut_wr;          /* atomic; set by exchange: SHUT_WR posted once */
	bool err_taken;        /* SO_ERROR reported the error once (exchange) */
	unsigned fork_gen;     /* kbp_fork_child's visit mark */
	uint32_t inherit;      /* listener: KBQ_OPT_F_* its connections start with (atomic) */
	sa_family_t family;    /* AF_INET or AF_INET6 (addresses shown v4-mapped) */
	int kfd;               /* the kernel socket behind the fd (listeners: kernel path) */
	uint32_t rcvtimeo_ms;  /* 0 = none (atomic) */
	uint32_t sndtimeo_ms;  /* (atomic) */
	uint32_t close_gen;    /* listener being closed: its slot's gen before */
	struct kbq_region *r;  /* its attachment's region (kbp.r moves on a re-attach) */
	uint32_t att;          /* ... and that attachment's epoch */
	bool gone_told;        /* its kbstackd's death was reported once */
	uint32_t tx_lock;      /* kbp_lock: one writer at a time, for its whole call */
	uint32_t tx_asleep;    /* tx_lock's holder sleeps for ring space (atomic) */
	uint32_t rx_lock;      /* kbp_lock: one reader copies at a time, never asleep */
	struct kbp_sock *free_next; /* on the free list (kbp_tcp.c) */
	pthread_mutex_t lock;  /* one control request at a time */
};

/* The socket's kbstackd has gone: it answers with errors, touches no row. */
static inline bool kbp_gone(const struct kbp_sock *s)
{
	return kbp_att_dead(s->att);
}

/* A process-local socket object for slot (not yet in the fd table), with
 * one reference: the fd's, once it is published. */
struct kbp_sock *kbp_sock_new(uint32_t slot, int kfd, sa_family_t family, bool listener);

struct kbp_ep;

/*
 * The fd table: on every interposed call's path, so the lookup is inline.
 * kbp_fds points to a static array of KBP_FD_MAX entries (untouched pages
 * cost nothing), so it exists before kbp_init runs. kbp_nfds, the fds it
 * serves, is 0 until kbp_init has finished and published it last: until
 * then the table is empty, every fd is libc's and no KB_ACCEL rule
 * matches (kbp_ready).
 */
#define KBP_FD_MAX (1 << 20) /* 8 MiB of address space; pages touched as fds are used */
extern void **const kbp_fds;
extern int kbp_nfds;

/* kbp_init has finished: the settings in kbp_cfg are complete. Pairs with
 * the release store of kbp_nfds at the end of kbp_init. */
static inline bool kbp_ready(void)
{
	return kbq_ld_acq(&kbp_nfds) != 0;
}

/*
 * Object behind fd, or NULL: the one "is this fd ours?" question.
 * kbp_nfds is read plainly: it changes once, from 0, before any fd can be
 * ours, and a thread that still reads 0 passes the fd to libc, as it must.
 * (An atomic load is one more instruction on every call: cmp cannot take
 * it as a memory operand.)
 */
static inline void *kbp_fd_get(int fd)
{
	if ((unsigned)fd >= (unsigned)kbp_nfds)
		return NULL;
	return kbq_ld_acq(&kbp_fds[fd]);
}

/* kbp_fd_get when the object is a socket. */
static inline struct kbp_sock *kbp_sock_get(int fd)
{
	int *kind = kbp_fd_get(fd);

	return kind && *kind == KBP_K_SOCK ? (struct kbp_sock *)kind : NULL;
}

/* Drop a reference (an fd's or a call's); the last one closes the socket:
 * it leaves the epoll sets, this process lets go of the slot, CLOSE is
 * posted if it was the slot's last holder, and s goes to the free list. */
void kbp_sock_put(struct kbp_sock *s);

/* kbp_sock_hold when the first try failed: s was free, or fd names
 * something else now (kbp_tcp.c). */
struct kbp_sock *kbp_sock_ref(int fd, struct kbp_sock *s);

/*
 * The socket behind fd with a reference for the caller's call, or NULL
 * (not ours: libc's). Drop it with kbp_sock_put. The check for "not ours"
 * is kbp_sock_get's: a call libc serves pays nothing more. The reference
 * is taken only if s is not free (refs 0), and kept only if fd still
 * names s afterwards (why that is enough: kbp_tcp.c, socket objects).
 */
static inline struct kbp_sock *kbp_sock_hold(int fd)
{
	struct kbp_sock *s = kbp_sock_get(fd);
	int r;

	if (!s)
		return NULL;
	r = kbq_ld(&s->refs);
	if (r && kbq_cas_acq(&s->refs, &r, r + 1)) {
		if (kbq_ld_acq(&kbp_fds[fd]) == s)
			return s;
		kbp_sock_put(s);
	}
	return kbp_sock_ref(fd, s);
}

void kbp_fd_set(int fd, void *obj);
void *kbp_fd_take(int fd);           /* clear and return the entry */
int kbp_fd_max(void);
/* Every fd at or above this has never had an object (scans stop here). */
int kbp_fd_end(void);

/* ---- sockets (kbp_tcp.c) ---- */

static inline struct kbq_sock *kbp_q(const struct kbp_sock *s)
{
	return kbq_sock_at(s->r, s->slot);
}

/* A listener's accept queue, by the index kbstackd stored in its slot
 * before LISTEN; NULL if that index is out of range (a broken contract:
 * no connection to take, and nothing outside the region read). */
static inline struct kbq_acceptq *kbp_aq(const struct kbp_sock *l)
{
	uint32_t i = kbq_ld(&kbp_q(l)->lq);

	return i < KBQ_NLISTEN ? kbq_acceptq_at(l->r, i) : NULL;
}

int kbp_listen(int fd, int backlog);
int kbp_accept(int fd, struct kbp_sock *l, struct sockaddr *a, socklen_t *len, int flags);
int kbp_connect(int fd, const struct sockaddr *a, socklen_t len);
ssize_t kbp_recv(struct kbp_sock *s, const struct iovec *iov, int iovcnt, int flags);
ssize_t kbp_send(struct kbp_sock *s, const struct iovec *iov, int iovcnt, int flags);
ssize_t kbp_sendfile(struct kbp_sock *s, int in, off_t *off, size_t count);
int kbp_shutdown(struct kbp_sock *s, int how);
int kbp_getsockopt(int fd, struct kbp_sock *s, int level, int opt, void *v, socklen_t *l);
int kbp_setsockopt(int fd, struct kbp_sock *s, int level, int opt, const void *v, socklen_t l);
int kbp_sockname(struct kbp_sock *s, bool peer, struct sockaddr *a, socklen_t *l);
int kbp_fionread(struct kbp_sock *s);
/* In a forked child: keep what its fd table references (its row came from
 * its parent's, before fork) and drop the rest; without a row (has_row
 * false), its accelerated fds become the kernel sockets behind them. */
void kbp_fork_child(bool has_row);

/* Readiness of a socket as EPOLL* bits, computed from shared memory. */
uint32_t kbp_sock_events(struct kbp_sock *s);

/* ---- sockets sent to another process (kbp_pass.c) ---- */

/* sendmsg's control data m passes fds (SCM_RIGHTS): 0 when it may go, or
 * -EOPNOTSUPP (said and counted) when one is an accelerated connection. */
int kbp_pass_check(const struct msghdr *m);

/* ---- waiting (kbp_wait.c) ---- */

/*
 * Wait until ready(s) is true, kfd (if >= 0) has kevents, the timeout
 * (ms, -1 = none) passes, or a signal arrives. Spins KB_SPIN_US first.
 * Returns 0 when ready, 1 when kfd is ready, -EAGAIN on timeout, -EINTR.
 */
int kbp_wait(struct kbp_sock *s, bool (*ready)(struct kbp_sock *s), int kfd,
	     short kevents, int timeout_ms);

/*
 * A socket's tx or rx lock: a futex word (0 free, 1 held, 2 held and
 * waited for). kbp_lock waits until deadline_us (now_us clock, 0: none;
 * then -EAGAIN), and returns -EINTR when a signal interrupts the wait if
 * intr (else it waits on). kbp_trylock: true when taken.
 */
int kbp_lock_wait(uint32_t *l, uint64_t deadline_us, bool intr);
void kbp_unlock_wake(uint32_t *l);

static inline bool kbp_trylock(uint32_t *l)
{
	uint32_t c = 0;

	return kbq_cas(l, &c, 1); /* acquire */
}

static inline int kbp_lock(uint32_t *l, uint64_t deadline_us, bool intr)
{
	return kbp_trylock(l) ? 0 : kbp_lock_wait(l, deadline_us, intr);
}

static inline void kbp_unlock(uint32_t *l)
{
	if (__atomic_exchange_n(l, 0, __ATOMIC_RELEASE) == 2)
		kbp_unlock_wake(l);
}
/* CLOCK_MONOTONIC in microseconds; a deadline timeout_ms from now (0: none). */
uint64_t kbp_now_us(void);
uint64_t kbp_deadline(int timeout_ms);

/* Wake the threads blocked on s's futex word: a condition only this
 * process sees changed (shutdown by another thread). */
void kbp_sock_wake(struct kbp_sock *s);

int kbp_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int kbp_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout_ms,
		   const sigset_t *mask);
bool kbp_epoll_is(int epfd);
void kbp_epoll_forget(struct kbp_sock *s);   /* the socket is closed */
void kbp_epoll_touch(struct kbp_sock *s);    /* shutdown changed its readiness */
void kbp_epoll_close(int epfd);
/* In a forked child, before kbp_fork_child: its epoll instances' waiters
 * are kept, every other waiter bit its row got from its parent dropped
 * (this thread's own waiter was the parent's: a new one comes on use). */
void kbp_epoll_fork_child(bool has_row);
int kbp_poll(struct pollfd *p, nfds_t n, int timeout_ms, const sigset_t *mask);
/* Every handler installed asks for SA_RESTART: a blocking call a signal
 * interrupted in a sleep the kernel would not restart starts again. */
bool kbp_signals_restart(void);

/* While attached, no sleep lasts longer (ms): kbstackd's death is seen in
 * at most this long by a sleeper nothing else wakes (tests change it). */
extern int kbp_check_ms;

/* Wake every thread of this process asleep on a socket of region r (me:
 * our process index there, whose row names our sockets) and every epoll
 * instance's sleepers: their kbstackd has gone. */
void kbp_wake_all(struct kbq_region *r, uint32_t me);
bool kbp_poll_has_ours(const struct pollfd *p, nfds_t n);

#endif /* KBP_H */
