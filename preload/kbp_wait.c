/*
 * kbp_wait.c — sleeping and waking: blocking calls, epoll, poll, select.
 *
 * Readiness of an accelerated socket is read straight from shared memory.
 * A waiter first spins (KB_SPIN_US), then sleeps in the kernel. A thread
 * blocked on one socket sleeps on that socket's futex word; one waiting for
 * several fds (epoll, poll, select, accept on both paths) sleeps on a wake
 * socket of its own (a waiter: one per epoll instance, one per thread for
 * the others) together with whatever kernel fds it also waits for. The
 * protocol that keeps a wake-up from being lost (kbstackd's side:
 * kbs_wake_event and kbs_ctxs_wake, stack/tcp/kbs_wake.c):
 *   waiter: set its bit in the wmask of each socket it waits on;
 *           seq = event_seq; check readiness; sleeping++, sleepers++
 *           (seq_cst); if event_seq != seq: undo, check again; else sleep.
 *   stack:  publish; event_seq++ (seq_cst); for each sleeping waiter whose
 *           bit is set in a socket that had an event, unless pending:
 *           pending = 1, one byte on its wake socket.
 *   after waking: clear pending (draining the wake socket now and then),
 *           then recheck.
 * The application's epoll fd stays a real kernel epoll: the wake socket is
 * registered in it, so kernel fds and accelerated ones wait together.
 */
#include "kbp.h"
#include "kbq_atomic.h"
#include "kbq_ctl.h"
#include "kbq_hold.h"


#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

/* futex_sleep: interrupted, and Linux would have restarted the call */
#define ERESTART_GUESSED 512

#define KBP_EFD_MARK 0x6b62ef0d6b62ef0dull /* epoll data of the wake socket */

uint64_t kbp_now_us(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static void cpu_relax(void)
{
	__builtin_ia32_pause();
}

static uint32_t event_seq(const struct kbp_waiter *w)
{
	return w->r ? kbq_ld_sc(&w->r->event_seq) : 0;
}

/*
 * A kbstackd that dies wakes nobody. Sleeps in poll (poll, select, accept)
 * also watch the control connection and see its hang-up at once; the
 * others (a futex, epoll_wait) last at most kbp_check_ms while attached,
 * and the sleeper looks (kbp_stack_check) when it wakes. The first to see
 * the death wakes the rest (kbp_wake_all).
 */
int kbp_check_ms = 250;

static int cap_ms(int ms)
{
	return (ms < 0 || ms > kbp_check_ms) && kbp_live() ? kbp_check_ms : ms;
}

/* Sleep timeout: without a waiter entry, while some of the fds waited on
 * are accelerated and kbstackd lives, wake every millisecond to look. */
static int sleep_ms(const struct kbp_waiter *w, int ms, bool ours)
{
	/* (Nothing to look for once the attachment is dead.) */
	return ours && w->idx < 0 && (ms < 0 || ms > 1) && kbp_live() ? 1 : ms;
}

/* ---- waiters: who sleeps on which wake socket ------------------------------ */

static pthread_once_t kbp_tw_once = PTHREAD_ONCE_INIT;
static pthread_key_t kbp_tw_key;
static __thread struct kbp_waiter kbp_tw = { .idx = -2, .efd = -1, .kick = -1 }; /* -2: not chosen yet */
static __thread pid_t kbp_tw_pid;

/*
 * This process lets go of waiter entry i (kbq_abi.h, Holding): the entry
 * is free again only when no other process holds it — a forked child
 * closing its copy of an epoll fd leaves its parent's instance working.
 * Its wake socket pair's ends in this process are the caller's to close.
 */
static void waiter_drop(struct kbq_region *r, uint32_t i)
{
	struct kbq_waiter *e = &r->waiter[i];
	uint32_t v = kbq_ld(&e->used), me = kbp_me(); /* v: fixed while we hold it */

	if (me >= KBQ_NPROCS)
		return;
	kbp_drop_begin();
	kbq_and_sc(&r->wheld[me][i / 64], ~(1ull << (i % 64)));
	if ((v & 1) && !kbq_held_by_other(&r->wheld[0][0], KBQ_WHELD_WORDS, r->procs, me, i))
		kbq_cas(&e->used, &v, v + 1);
	kbp_drop_end();
}

/* Claim a waiter entry, make its wake socket pair and hand one end to kbstackd. */
static int waiter_new(struct kbp_waiter *w)
{
	uint32_t i, me;

	w->idx = -1;
	w->efd = w->kick = -1;
	w->wakes = 0;
	w->att = kbq_ld_acq(&kbp.epoch); /* epoch, then region: see kbp_tcp.c's at_now */
	w->r = kbq_ld_acq(&kbp.r);
	if (!w->r || kbp_att_dead(w->att))
		return -ENETDOWN;
	if (!__atomic_exchange_n(&kbp.w0_taken, 1, __ATOMIC_ACQ_REL)) {
		w->idx = 0; /* registered at attach */
		w->efd = kbp.efd;
		w->kick = kbp.kick;
		return 0;
	}
	if ((me = kbp_me()) >= KBQ_NPROCS)
		return -ENOSPC;
	for (i = 1; i < KBQ_NWAITERS; i++) {
		struct kbq_waiter *e = &w->r->waiter[i];
		uint32_t v = kbq_ld(&e->used);
		int sv[2], rc;

		if ((v & 1) || !kbq_cas(&e->used, &v, v + 1))
			continue;
		kbq_or_sc(&w->r->wheld[me][i / 64], 1ull << (i % 64));
		rc = kbp_wake_pair(sv);
		if (!rc && (rc = kbp_ctl_waiter(i, sv[1]))) {
			libc_close(sv[0]);
			libc_close(sv[1]);
		}
		if (rc) {
			waiter_drop(w->r, i);
			return rc;
		}
		kbq_st(&e->pending, 0);
		w->idx = (int)i;
		w->efd = sv[0];
		w->kick = sv[1];
		return 0;
	}
	return -ENOSPC;
}

/* (An entry of a dead attachment is not dropped: nobody reads its rows.) */
static void waiter_free(struct kbp_waiter *w)
{
	if (w->idx > 0 && w->r) {
		libc_close(w->efd);
		libc_close(w->kick);
		if (!kbp_att_dead(w->att))
			waiter_drop(w->r, (uint32_t)w->idx);
	}
	w->idx = -1;
	w->efd = w->kick = -1;
}

static void tw_exit(void *arg)
{
	(void)arg;
	if (kbp_tw_pid == getpid())
		waiter_free(&kbp_tw);
}

static void tw_key(void)
{
	pthread_key_create(&kbp_tw_key, tw_exit);
}

/* getpid() without a system call once attached (kbp.pid follows forks). */
static pid_t self_pid(void)
{
	return kbq_ld_acq(&kbp.r) && kbp.pid ? kbp.pid : getpid();
}

/* This thread's waiter (poll, select, accept). idx -1: none to be had. */
static struct kbp_waiter *thread_waiter(void)
{
	pid_t pid = self_pid();

	if (kbp_tw.idx == -2 || kbp_tw_pid != pid ||
	    (kbp_tw.att != kbq_ld_acq(&kbp.epoch) && kbp_live())) {
		/* A forked child's thread does not share its parent's wake
		 * socket; after a re-attach, the entry is the new region's. */
		if (kbp_tw_pid == pid && kbp_tw.idx != -2)
			waiter_free(&kbp_tw);
		kbp_tw_pid = pid;
		if (waiter_new(&kbp_tw))
			kbp_log(2, "no waiter entry free: this thread polls every millisecond");
		pthread_once(&kbp_tw_once, tw_key);
		pthread_setspecific(kbp_tw_key, &kbp_tw);
	}
	return &kbp_tw;
}

/* true: go to sleep (counted); false: something happened since seq. */
static bool sleep_begin(struct kbp_waiter *w, uint32_t seq)
{
	if (!w->r)
		return true;
	if (w->idx >= 0)
		kbq_add_sc(&w->r->waiter[w->idx].sleeping, 1);
	kbq_add_sc(&w->r->sleepers, 1);
	if (event_seq(w) == seq)
		return true;
	kbq_sub_sc(&w->r->sleepers, 1);
	if (w->idx >= 0)
		kbq_sub_sc(&w->r->waiter[w->idx].sleeping, 1);
	return false;
}

/* Edge-triggered wake-ups between two drains of the wake socket: each
 * byte is an event of its own in epoll, unread bytes only take buffer
 * space (a few hundred fit; kbstackd sends at most one per re-arm). */
#define KBP_WAKE_DRAIN_EVERY 32

/* Drain the waiter's wake socket, then clear pending (kbstackd sends again
 * only after that; anything it published before is seen by the recheck). */
static void efd_drain(struct kbp_waiter *w)
{
	char buf[64];

	if (!w->et || ++w->wakes >= KBP_WAKE_DRAIN_EVERY) {
		w->wakes = 0;
		while (libc_recv(w->efd, buf, sizeof(buf), MSG_DONTWAIT) == (ssize_t)sizeof(buf))
			;
	}
	kbq_st_sc(&w->r->waiter[w->idx].pending, 0);
}

/* After every sleep: the end of the handshake, and a look at kbstackd. */
static void sleep_end(struct kbp_waiter *w, bool efd_ready)
{
	kbp_stack_check();
	if (!w->r)
		return;
	kbq_sub_sc(&w->r->sleepers, 1);
	if (w->idx < 0)
		return;
	kbq_sub_sc(&w->r->waiter[w->idx].sleeping, 1);
	if (efd_ready)
		efd_drain(w);
}

/* Waiter idx wants (or no longer wants) s's events: kbstackd wakes a
 * waiter only for sockets whose wmask has its bit. Set before the waiter
 * reads event_seq (seq_cst); a stale bit costs a spurious wake-up only. */
static void interest(struct kbp_sock *s, const struct kbp_waiter *w, bool on)
{
	uint64_t *word, bit;

	if (!s || w->idx < 0 || w->att != s->att) /* (an entry of another region) */
		return;
	word = &kbp_q(s)->wmask[w->idx / 64];
	bit = 1ull << (w->idx % 64);
	if (on)
		kbq_or_sc(word, bit);
	else
		kbq_and_sc(word, ~bit);
}

/* Milliseconds left until deadline (0 = none: -1), rounded up. */
static int ms_left(uint64_t deadline)
{
	uint64_t now;

	if (!deadline)
		return -1;
	now = kbp_now_us();
	return now >= deadline ? 0 : (int)((deadline - now + 999) / 1000);
}

uint64_t kbp_deadline(int timeout_ms)
{
	return timeout_ms > 0 ? kbp_now_us() + (uint64_t)timeout_ms * 1000u : 0;
}

bool kbp_signals_restart(void)
{
	struct sigaction sa;
	int sig;

	for (sig = 1; sig < NSIG; sig++)
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL &&
		    sa.sa_handler != SIG_IGN && !(sa.sa_flags & SA_RESTART))
			return false;
	return true;
}

/* ready(s), or s's kbstackd has gone (the caller then says so). */
static bool ready_or_gone(struct kbp_sock *s, bool (*ready)(struct kbp_sock *s))
{
	return ready(s) || kbp_gone(s);
}

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif

static bool kbp_no_waitv; /* the kernel has no futex_waitv (before 5.16) */

/*
 * Sleep on a (shared) futex word while it holds val, at most ms (-1: no
 * limit); 0 when woken, -errno. An untimed wait of the caller's that we
 * time only to look at kbstackd (capped) must still end on a signal as
 * Linux's blocking socket calls do: restarted after a SA_RESTART handler,
 * EINTR otherwise. An untimed FUTEX_WAIT is restarted so, a timed one
 * never (it returns EINTR): futex_waitv, whose timeout is absolute, is.
 * Without it (Linux < 5.16), FUTEX_WAIT, and the restart inferred from
 * the handlers installed.
 */
static int futex_sleep(uint32_t *word, uint32_t val, int ms, bool capped)
{
	struct timespec ts, *tp = NULL;
	long rc;

	if (capped && !kbq_ld(&kbp_no_waitv)) {
		struct futex_waitv fw = { .val = val, .uaddr = (uintptr_t)word, .flags = FUTEX_32 };
		uint64_t end = kbp_now_us() + (uint64_t)ms * 1000u; /* CLOCK_MONOTONIC */

		ts.tv_sec = (time_t)(end / 1000000u);
		ts.tv_nsec = (long)(end % 1000000u) * 1000L;
		rc = libc_syscall(SYS_futex_waitv, &fw, 1, 0, &ts, CLOCK_MONOTONIC);
		if (rc >= 0 || errno != ENOSYS)
			return rc >= 0 ? 0 : -errno;
		kbq_st(&kbp_no_waitv, true);
	}
	if (ms >= 0) {
		ts.tv_sec = ms / 1000;
		ts.tv_nsec = (long)(ms % 1000) * 1000000L;
		tp = &ts;
	}
	rc = libc_syscall(SYS_futex, word, FUTEX_WAIT, val, tp, NULL, 0);
	if (rc < 0 && errno == EINTR && capped && kbp_signals_restart())
		return -ERESTART_GUESSED;
	return rc < 0 ? -errno : 0;
}

/* Block on the socket's futex word until kbstackd reports an event. */
static int futex_wait(struct kbp_sock *s, bool (*ready)(struct kbp_sock *s), uint64_t deadline)
{
	struct kbq_sock *q = kbp_q(s);

	for (;;) {
		uint32_t seq = kbq_ld_sc(&q->wake_seq);
		int rc, ms, cap;

		if (ready_or_gone(s, ready))
			return 0;
		ms = ms_left(deadline);
		if (ms == 0)
			return -EAGAIN;
		cap = cap_ms(ms);
		kbq_add_sc(&q->waiters, 1);
		if (kbq_ld_sc(&q->wake_seq) != seq || ready(s)) {
			kbq_sub_sc(&q->waiters, 1);
			continue;
		}
		/* an untimed wait of the caller's that we time (kbp_check_ms)
		 * is "capped": a signal ends it as it would the untimed one */
		rc = futex_sleep(&q->wake_seq, seq, cap, !deadline && cap >= 0);
		kbq_sub_sc(&q->waiters, 1);
		if (rc == -EINTR)
			return -EINTR;
		if (rc == -ETIMEDOUT || rc == -ERESTART_GUESSED)
			kbp_stack_check();
	}
}

static int wait_efd(struct kbp_sock *s, bool (*ready)(struct kbp_sock *s), int kfd,
		    short kevents, uint64_t deadline)
{
	for (;;) {
		struct kbp_waiter *w = thread_waiter();
		uint32_t att, seq = event_seq(w);
		/* the control connection: its hang-up is kbstackd's death */
		struct pollfd p[3] = { { w->efd, POLLIN, 0 }, { kfd, kevents, 0 },
				       { kbp_ctl_fd(&att), 0, 0 } };
		int n;

		if (ready_or_gone(s, ready))
			return 0;
		if (deadline && ms_left(deadline) == 0)
			return -EAGAIN;
		if (!sleep_begin(w, seq))
			continue;
		n = libc_poll(p, 3, sleep_ms(w, ms_left(deadline), true));
		if (n < 0) {
			int e = errno;

			sleep_end(w, false);
			return -e;
		}
		if (p[2].revents & (POLLHUP | POLLERR))
			kbp_stack_gone(att);
		sleep_end(w, n > 0 && p[0].revents);
		if (kfd >= 0 && p[1].revents)
			return 1;
	}
}

int kbp_wait(struct kbp_sock *s, bool (*ready)(struct kbp_sock *s), int kfd,
	     short kevents, int timeout_ms)
{
	uint64_t deadline = kbp_deadline(timeout_ms), spin_end = kbp_now_us() + kbp_cfg.spin_us;
	struct kbp_waiter w;
	int rc;

	while (kbp_now_us() < spin_end) {
		if (ready_or_gone(s, ready))
			return 0;
		cpu_relax();
	}
	if (kfd < 0)
		return futex_wait(s, ready, deadline);
	w = *thread_waiter(); /* (a copy: a re-attach may renew the thread's) */
	interest(s, &w, true);
	rc = wait_efd(s, ready, kfd, kevents, deadline);
	interest(s, &w, false);
	return rc;
}

void kbp_sock_wake(struct kbp_sock *s)
{
	struct kbq_sock *q = kbp_q(s);

	/* As kbstackd's kbs_wake_event (an increment: both may bump it): the
	 * waiter counts itself, then rechecks; seq_cst, one sees the other. */
	kbq_add_sc(&q->wake_seq, 1);
	if (kbq_ld_sc(&q->waiters))
		libc_syscall(SYS_futex, &q->wake_seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* ---- a socket's tx and rx locks ------------------------------------------ */

/*
 * A futex word rather than a pthread mutex: a writer waiting behind
 * another one, which may sleep for ring space, must still end at its
 * SO_SNDTIMEO or at a signal, as a send does on Linux. The lock of
 * "Futexes Are Tricky" (Drepper), its mutex 3: 0 free, 1 held, 2 held
 * and maybe waited for; the unlock wakes one only after a 2. Taking it is
 * an acquire (the CAS or the exchange), giving it back a release (the
 * exchange): what one holder wrote, the next one reads. The uncontended
 * paths are inline (kbp.h); these are the waits.
 */
int kbp_lock_wait(uint32_t *l, uint64_t deadline_us, bool intr)
{
	uint32_t c = __atomic_exchange_n(l, 2, __ATOMIC_ACQ_REL);

	while (c != 0) {
		struct timespec ts, *tp = NULL;

		if (deadline_us) {
			int ms = ms_left(deadline_us);

			if (ms == 0)
				return -EAGAIN; /* (a 2 left behind costs one spare wake) */
			ts.tv_sec = ms / 1000;
			ts.tv_nsec = (long)(ms % 1000) * 1000000L;
			tp = &ts;
		}
		if (libc_syscall(SYS_futex, l, FUTEX_WAIT_PRIVATE, 2, tp, NULL, 0) && errno == EINTR &&
		    intr)
			return -EINTR;
		c = __atomic_exchange_n(l, 2, __ATOMIC_ACQ_REL);
	}
	return 0;
}

void kbp_unlock_wake(uint32_t *l)
{
	libc_syscall(SYS_futex, l, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* ---- epoll ------------------------------------------------------------- */

struct kbp_ep_item {
	struct kbp_sock *s;
	int fd;
	uint32_t events;       /* what the app asked for */
	epoll_data_t data;
	uint64_t sig;          /* edge-triggered: state signature last reported */
	bool off;              /* EPOLLONESHOT fired; off until EPOLL_CTL_MOD */
	bool in_cand;          /* listed in the instance's candidates */
};

struct kbp_ep {
	int kind;              /* KBP_K_EPOLL */
	int epfd;
	struct kbp_waiter w;   /* this instance's wake socket, in its kernel epoll set */
	pid_t pid;             /* the process that made it (a fork child shares w) */
	pthread_mutex_t lock;
	struct kbp_ep_item *it;
	int n, cap;
	unsigned next;         /* round-robin start of the next scan */
	unsigned kcheck;       /* calls since the kernel epoll was last asked */
	/*
	 * O(ready): the items a scan looks at are the candidates — the ones
	 * added or changed, the ones whose slot came through the waiter's
	 * ready ring (kbq_abi.h), and the level-triggered ones it reported
	 * last time — not every item. It looks at all of them when it cannot
	 * trust the ring: once when the ring lost an entry, the waiter entry
	 * changed or kbstackd died; always (full_only) when two items share a slot
	 * or a region, or the waiter is shared with another process (fork).
	 */
	int *cand, ncand, candcap;  /* item indices */
	int *fdix, fdcap;      /* fd → item index + 1 (0: none) */
	int *slotix;           /* slot → item index + 1, nslotix entries */
	uint32_t nslotix;      /* the slots of the region its sockets are in */
	bool full_only;
	bool ring_ok;          /* ring state below is this waiter entry's */
	int ring_idx;          /* waiter entry the ring belongs to */
	uint32_t ring_att;
	uint32_t ring_lost;    /* readyq lost when last looked at */
	uint32_t ring_dead;    /* kbp.dead ... */
	uint32_t ring_head;    /* entries taken (→ readyq head) */
	int refs;              /* the fd's, plus calls in progress (atomic); 0: free */
	struct kbp_ep *link;   /* kbp_eps, or the free list */
};

/* Instances in use, and freed ones (kbp_eps_lock). */
static struct kbp_ep *kbp_eps, *kbp_eps_free;
static pthread_mutex_t kbp_eps_lock = PTHREAD_MUTEX_INITIALIZER;

static struct kbp_ep *ep_get(int epfd)
{
	int *kind = kbp_fd_get(epfd);

	return kind && *kind == KBP_K_EPOLL ? (struct kbp_ep *)kind : NULL;
}

/* 0 when fd is an epoll instance; -EBADF or -EINVAL as the kernel says. */
static int fd_is_epoll(int fd)
{
	int is = kbq_fd_is(fd, "eventpoll");

	return is < 0 ? -EBADF : (is ? 0 : -EINVAL);
}

static void ep_put(struct kbp_ep *ep);
static void ep_uninterest(const struct kbp_ep *ep, struct kbp_sock *s);

/*
 * The instance behind epfd, held for the caller's call (ep_put), or NULL:
 * a thread's close() of the epoll fd does not free it under another
 * thread's epoll_wait or epoll_ctl. As for sockets (kbp_tcp.c, socket
 * objects), instances are never given back to malloc — a late increment
 * reads no freed memory — and a reference on anything but what epfd names
 * after it is dropped again.
 */
static struct kbp_ep *ep_hold(int epfd)
{
	struct kbp_ep *ep;

	while ((ep = ep_get(epfd))) {
		int r = kbq_ld(&ep->refs);

		do
			if (r == 0) /* free: epfd was closed */
				break;
		while (!kbq_cas_acq(&ep->refs, &r, r + 1));
		if (r && kbq_ld_acq(&kbp_fds[epfd]) == (void *)ep)
			return ep;
		if (r)
			ep_put(ep);
	}
	return NULL;
}

/* The last reference gone: its waiter entry and items go, and the object
 * to the free list. */
static void ep_put(struct kbp_ep *ep)
{
	struct kbp_ep **pp;

	if (kbq_sub_ar_new(&ep->refs, 1))
		return;
	pthread_mutex_lock(&kbp_eps_lock);
	for (pp = &kbp_eps; *pp; pp = &(*pp)->link)
		if (*pp == ep) {
			*pp = ep->link;
			break;
		}
	/* its entry goes back: the sockets it still holds stop naming it
	 * (unless another process shares it: ep_uninterest) */
	for (int i = 0; i < ep->n; i++)
		ep_uninterest(ep, ep->it[i].s);
	waiter_free(&ep->w);
	free(ep->it);
	free(ep->cand);
	free(ep->fdix);
	free(ep->slotix);
	ep->it = NULL;
	ep->cand = ep->fdix = ep->slotix = NULL;
	ep->nslotix = 0;
	ep->n = ep->cap = ep->ncand = ep->candcap = ep->fdcap = 0;
	ep->full_only = ep->ring_ok = false;
	ep->link = kbp_eps_free;
	kbp_eps_free = ep;
	pthread_mutex_unlock(&kbp_eps_lock);
}

bool kbp_epoll_is(int epfd)
{
	struct kbp_ep *ep = ep_get(epfd);

	return ep && kbq_ld_acq(&ep->n) > 0;
}

/* A waiter entry for the instance, its wake socket in the kernel set. */
static void ep_waiter_new(struct kbp_ep *ep, int epfd)
{
	struct epoll_event e = { .events = EPOLLIN | EPOLLET, .data.u64 = KBP_EFD_MARK };

	ep->w.et = true;
	if (waiter_new(&ep->w) || libc_epoll_ctl(epfd, EPOLL_CTL_ADD, ep->w.efd, &e)) {
		/* Without a waiter of its own the instance still works: its
		 * sleeps last at most a millisecond. */
		uint32_t att = ep->w.att;

		waiter_free(&ep->w);
		ep->w.att = att; /* tried for this attachment */
		if (kbp_live())
			kbp_log(2, "epoll %d: no waiter entry free: it polls every millisecond", epfd);
	}
}

/*
 * After a re-attach, the instance's waiter entry is the dead region's: it
 * takes one in the new region (the new wake socket replaces the old one in
 * the kernel set), and the new attachment's sockets it holds get its bit.
 * The old wake socket pair stays open (two fds an instance a restart of
 * kbstackd): a thread asleep in epoll_wait counted itself on the old
 * entry and drains the old socket when it wakes — which a byte on the new
 * one makes it do at once, to count itself on the new entry.
 */
static void ep_fresh(struct kbp_ep *ep)
{
	static const char one = 1;
	int i;

	if (ep->w.att == kbq_ld_acq(&kbp.epoch) || !kbp_live())
		return;
	pthread_mutex_lock(&ep->lock);
	if (ep->w.att != kbq_ld_acq(&kbp.epoch)) {
		if (ep->w.efd >= 0)
			libc_epoll_ctl(ep->epfd, EPOLL_CTL_DEL, ep->w.efd, NULL);
		ep_waiter_new(ep, ep->epfd);
		ep->pid = self_pid();
		ep->full_only = true; /* its items' slots are of two regions now */
		for (i = 0; i < ep->n; i++)
			interest(ep->it[i].s, &ep->w, true);
		if (ep->w.kick >= 0)
			(void)!libc_send(ep->w.kick, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	}
	pthread_mutex_unlock(&ep->lock);
}

/* kb's object for the epoll instance epfd, held for the caller (ep_put);
 * made on first use. */
static struct kbp_ep *ep_create(int epfd)
{
	struct kbp_ep *ep, *other;

	pthread_mutex_lock(&kbp_eps_lock);
	if ((ep = kbp_eps_free))
		kbp_eps_free = ep->link;
	pthread_mutex_unlock(&kbp_eps_lock);
	if (!ep && !(ep = calloc(1, sizeof(*ep))))
		return NULL;
	/* refs is 0: no late ep_hold touches the rest until it is 2 */
	memset(&ep->w, 0, sizeof(ep->w));
	ep->kind = KBP_K_EPOLL;
	ep->epfd = epfd;
	ep->pid = self_pid();
	ep->next = ep->kcheck = 0;
	pthread_mutex_init(&ep->lock, NULL);
	ep_waiter_new(ep, epfd);
	kbq_st_rel(&ep->refs, 2); /* the fd's and the caller's */
	kbp_publish_begin();
	if ((other = ep_hold(epfd))) { /* another thread made one first */
		kbp_publish_end();
		kbq_st(&ep->refs, 1);
		pthread_mutex_lock(&kbp_eps_lock);
		ep->link = kbp_eps; /* (ep_put takes it off the list) */
		kbp_eps = ep;
		pthread_mutex_unlock(&kbp_eps_lock);
		ep_put(ep);
		return other;
	}
	pthread_mutex_lock(&kbp_eps_lock);
	ep->link = kbp_eps;
	kbp_eps = ep;
	pthread_mutex_unlock(&kbp_eps_lock);
	kbp_fd_set(epfd, ep);
	kbp_publish_end();
	return ep;
}

/* The instance behind epfd, held (ep_put), made if need be; or -errno
 * in *rc (epfd is no epoll instance, no memory). */
static struct kbp_ep *ep_use(int epfd, int *rc)
{
	struct kbp_ep *ep = ep_hold(epfd);

	*rc = 0;
	if (ep)
		return ep;
	if ((*rc = fd_is_epoll(epfd)) < 0)
		return NULL;
	if (!(ep = ep_create(epfd)))
		*rc = -ENOMEM;
	return ep;
}

/* s leaves ep's interest, unless ep (and its waiter) came from the parent
 * through fork: the parent may still wait on s with that same waiter, and
 * a bit left set costs a spurious wake-up at most. */
static void ep_uninterest(const struct kbp_ep *ep, struct kbp_sock *s)
{
	if (ep->pid == self_pid())
		interest(s, &ep->w, false);
}

/* An item of ep on socket s, or -1: by its slot while every item has a
 * slot of its own, else by a walk. */
static int ep_sock_item(const struct kbp_ep *ep, const struct kbp_sock *s)
{
	if (!ep->full_only && ep->slotix) {
		int i = s->att == ep->w.att && s->slot < ep->nslotix ? ep->slotix[s->slot] - 1 : -1;

		return i >= 0 && ep->it[i].s == s ? i : -1;
	}
	for (int i = 0; i < ep->n; i++)
		if (ep->it[i].s == s)
			return i;
	return -1;
}

static bool ep_holds(const struct kbp_ep *ep, const struct kbp_sock *s)
{
	return ep_sock_item(ep, s) >= 0;
}

static int ep_find(struct kbp_ep *ep, int fd)
{
	return fd >= 0 && fd < ep->fdcap ? ep->fdix[fd] - 1 : -1;
}

/* ---- items, their maps and the candidates (ep->lock held) ---- */

static bool grow(int **a, int *cap, int want)
{
	int c = *cap ? *cap : 64, *b;

	while (c < want)
		c *= 2;
	if (c == *cap)
		return true;
	if (!(b = realloc(*a, (size_t)c * sizeof(int))))
		return false;
	memset(b + *cap, 0, (size_t)(c - *cap) * sizeof(int));
	*a = b;
	*cap = c;
	return true;
}

/* Item i becomes a candidate; without memory for the list, the instance
 * looks at every item from now on. */
static void cand_add(struct kbp_ep *ep, int i)
{
	if (ep->it[i].in_cand || ep->full_only)
		return;
	if (ep->ncand == ep->candcap && !grow(&ep->cand, &ep->candcap, ep->ncand + 1)) {
		ep->full_only = true;
		return;
	}
	ep->cand[ep->ncand++] = i;
	ep->it[i].in_cand = true;
}

static int cand_find(const struct kbp_ep *ep, int i)
{
	for (int k = 0; k < ep->ncand; k++)
		if (ep->cand[k] == i)
			return k;
	return -1;
}

/* The slot of item i in its waiter's region, or -1: a socket of another
 * region (the ring cannot name it). */
static int item_slot(const struct kbp_ep *ep, int i)
{
	const struct kbp_sock *s = ep->it[i].s;

	return s->att == ep->w.att && s->slot < KBQ_MAXSLOTS ? (int)s->slot : -1;
}

/* Room in slotix for slot, sized to the slots of s's region (its
 * attachment's: a kbstackd restarted with more slots grows it). */
static bool slotix_room(struct kbp_ep *ep, const struct kbp_sock *s, uint32_t slot)
{
	uint32_t n = kbp_region_slots(s->r);
	int *p;

	if (slot < ep->nslotix)
		return true;
	if (slot >= n || !(p = realloc(ep->slotix, (size_t)n * sizeof(int))))
		return false;
	memset(p + ep->nslotix, 0, (size_t)(n - ep->nslotix) * sizeof(int));
	ep->slotix = p;
	ep->nslotix = n;
	return true;
}

static void item_map(struct kbp_ep *ep, int i, bool on)
{
	int fd = ep->it[i].fd, slot = item_slot(ep, i);

	ep->fdix[fd] = on ? i + 1 : 0;
	if (ep->full_only)
		return;
	if (slot < 0 || (on && !slotix_room(ep, ep->it[i].s, (uint32_t)slot))) {
		ep->full_only |= on;
	} else if ((uint32_t)slot >= ep->nslotix) {
		/* off: never mapped */
	} else if (on) {
		if (ep->slotix[slot]) /* two fds of one socket (dup): the ring names one */
			ep->full_only = true;
		ep->slotix[slot] = i + 1;
	} else if (ep->slotix[slot] == i + 1) {
		ep->slotix[slot] = 0;
	}
}

/* Append item `x` (its fd's map entry exists: ep_add_room). */
static void item_add(struct kbp_ep *ep, const struct kbp_ep_item *x)
{
	int i = ep->n;

	ep->it[i] = *x;
	ep->it[i].in_cand = false;
	item_map(ep, i, true);
	cand_add(ep, i);
	kbq_st_rel(&ep->n, i + 1); /* read outside the lock by epoll_wait (acquire) */
}

/* Room for one more item on fd: -ENOMEM when there is none. */
static int ep_add_room(struct kbp_ep *ep, int fd)
{
	if (ep->n == ep->cap) {
		int cap = ep->cap ? ep->cap * 2 : 16;
		struct kbp_ep_item *it = realloc(ep->it, (size_t)cap * sizeof(*it));

		if (!it)
			return -ENOMEM;
		ep->it = it;
		ep->cap = cap;
	}
	if (fd >= ep->fdcap && !grow(&ep->fdix, &ep->fdcap, fd + 1))
		return -ENOMEM;
	return 0;
}

/* Item i leaves; the last one takes its place. */
static void item_del(struct kbp_ep *ep, int i)
{
	int last = ep->n - 1, k;

	if (ep->it[i].in_cand && (k = cand_find(ep, i)) >= 0)
		ep->cand[k] = ep->cand[--ep->ncand];
	item_map(ep, i, false);
	if (i != last) {
		if (ep->it[last].in_cand && (k = cand_find(ep, last)) >= 0)
			ep->cand[k] = i;
		item_map(ep, last, false);
		ep->it[i] = ep->it[last];
		item_map(ep, i, true);
	}
	kbq_st_rel(&ep->n, last);
}

/* A byte on the instance's own wake socket if a thread sleeps in it: it
 * looks again (what changed was this process's doing, not kbstackd's). */
static void ep_kick(const struct kbp_ep *ep)
{
	static const char one = 1;

	if (ep->w.idx >= 0 && ep->w.kick >= 0 && kbq_ld_sc(&ep->w.r->waiter[ep->w.idx].sleeping))
		(void)!libc_send(ep->w.kick, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
}

/* kbp_epoll_ctl for fd, which names s (held by the caller). */
static int ep_ctl(int epfd, int op, int fd, struct kbp_sock *s, struct epoll_event *ev)
{
	struct kbp_ep *ep;
	int i, rc = 0;

	if (epfd == fd)
		return -EINVAL;
	if (op != EPOLL_CTL_DEL && !ev)
		return -EFAULT;
	if (!(ep = ep_use(epfd, &rc)))
		return rc;
	ep_fresh(ep);
	pthread_mutex_lock(&ep->lock);
	i = ep_find(ep, fd);
	switch (op) {
	case EPOLL_CTL_ADD:
		if (i >= 0) {
			rc = -EEXIST;
			break;
		}
		if ((rc = ep_add_room(ep, fd)))
			break;
		/* Interest first (seq_cst), then a candidate: kbs_ready_fill's
		 * fence pairs with it (kbq_abi.h, ready rings). */
		interest(s, &ep->w, true);
		item_add(ep, &(struct kbp_ep_item){ s, fd, ev->events, ev->data, ~0ull, false, false });
		break;
	case EPOLL_CTL_MOD:
		if (i < 0) {
			rc = -ENOENT;
			break;
		}
		ep->it[i].events = ev->events;
		ep->it[i].data = ev->data;
		ep->it[i].sig = ~0ull;
		ep->it[i].off = false;
		cand_add(ep, i);
		break;
	case EPOLL_CTL_DEL:
		if (i < 0) {
			rc = -ENOENT;
			break;
		}
		item_del(ep, i);
		if (!ep_holds(ep, s)) /* no dup of it left in the set */
			ep_uninterest(ep, s);
		break;
	default:
		rc = -EINVAL;
	}
	pthread_mutex_unlock(&ep->lock);
	/* A thread asleep in epoll_wait on this instance must see an fd added
	 * (or re-armed) ready, as in Linux: ring the instance's own wake socket. */
	if (rc == 0 && op != EPOLL_CTL_DEL && (kbp_sock_events(s) & (ev->events | EPOLLERR | EPOLLHUP)))
		ep_kick(ep);
	ep_put(ep);
	/* A listener's kernel socket also takes connections: the kernel epoll
	 * watches it, with the application's own data. */
	if (rc == 0 && s->listener && libc_epoll_ctl(epfd, op, fd, ev) && op != EPOLL_CTL_DEL)
		rc = -errno;
	return rc;
}

/* 1: not ours (call libc); else 0 or -errno. */
int kbp_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	struct kbp_sock *s = kbp_sock_hold(fd);
	int rc;

	if (!s)
		return 1;
	rc = ep_ctl(epfd, op, fd, s, ev);
	kbp_sock_put(s); /* after: the last put forgets s in every set */
	return rc;
}

static uint64_t sock_sig(struct kbp_sock *s)
{
	struct kbq_sock *q = kbp_q(s);
	struct kbq_acceptq *aq = s->listener ? kbp_aq(s) : NULL;
	uint64_t a = kbq_ld_acq(&q->rx_tail);
	uint64_t b = kbq_ld_acq(&q->tx_head);
	uint64_t c = aq ? kbq_ld_acq(&aq->tail) : 0;
	uint64_t d = kbq_ld_acq(&q->ev);
	uint64_t e = kbq_ld_acq(&q->state);

	if (kbp_gone(s)) /* its last change: reported once, edge-triggered */
		return 0x6b62676f6e650000ull | kbq_ld_acq(&s->err_taken);
	return (a << 32 | b) ^ (c * 0x9e3779b97f4a7c15ull) ^ (d << 8 | e) << 40;
}

/*
 * Whether the candidates are all a scan needs to look at: the ring is this
 * instance's own and was taken in (its slots made candidates); after a
 * change it cannot see (an entry lost, kbstackd's death, a new waiter
 * entry), every item is made a candidate once. What this process changes
 * itself (shutdown) makes candidates through kbp_epoll_touch.
 * false: look at every item (full_only, a forked instance, no waiter).
 */
static bool ep_ring_take(struct kbp_ep *ep)
{
	struct kbq_readyq *rq;
	uint32_t lost, dead, tail, h;
	bool all;
	int i;

	if (ep->full_only || ep->w.idx < 0 || ep->pid != self_pid())
		return false;
	rq = &ep->w.r->readyq[ep->w.idx];
	lost = kbq_ld_acq(&rq->lost);
	dead = kbq_ld_acq(&kbp.dead);
	tail = kbq_ld_acq(&rq->tail);
	all = !ep->ring_ok || ep->ring_idx != ep->w.idx || ep->ring_att != ep->w.att ||
	      lost != ep->ring_lost || dead != ep->ring_dead ||
	      tail - ep->ring_head > KBQ_READYQ;
	if (all) {
		for (i = 0; i < ep->n; i++)
			cand_add(ep, i);
	} else {
		for (h = ep->ring_head; h != tail; h++) {
			uint32_t slot = kbq_ld(&rq->slot[h % KBQ_READYQ]);

			if (slot < ep->nslotix && ep->slotix[slot])
				cand_add(ep, ep->slotix[slot] - 1);
		}
	}
	ep->ring_ok = !ep->full_only;
	ep->ring_idx = ep->w.idx;
	ep->ring_att = ep->w.att;
	ep->ring_lost = lost;
	ep->ring_dead = dead;
	if (ep->ring_head != tail) {
		ep->ring_head = tail;
		kbq_st_rel(&rq->head, tail); /* kbstackd may write over them now */
	}
	return ep->ring_ok;
}

/* What item `it` reports now (0: nothing): its events, an edge-triggered
 * one only when its state changed since it was last reported, a oneshot
 * one switched off. */
static uint32_t item_check(struct kbp_ep_item *it)
{
	uint32_t e = it->off ? 0 : kbp_sock_events(it->s) & (it->events | EPOLLERR | EPOLLHUP);

	if (e && (it->events & EPOLLET)) {
		uint64_t sig = sock_sig(it->s);

		if (sig == it->sig)
			return 0;
		it->sig = sig;
	}
	if (e && (it->events & EPOLLONESHOT))
		it->off = true;
	return e;
}

static void ints_reverse(int *a, int n)
{
	for (int i = 0, t; i < n / 2; i++) {
		t = a[i];
		a[i] = a[n - 1 - i];
		a[n - 1 - i] = t;
	}
}

/* ep_scan over the candidates in order: a level-triggered item reported
 * stays one, at the back (Linux puts it back at the end of its ready
 * list), so ready items take turns when more are ready than max. */
static int ep_scan_cand(struct kbp_ep *ep, struct epoll_event *out, int max)
{
	int v, k, j, n = 0, cnt = ep->ncand;

	for (v = 0; v < cnt && n < max; v++) {
		struct kbp_ep_item *it = &ep->it[ep->cand[v]];
		uint32_t e = item_check(it);

		if (e) {
			out[n].events = e;
			out[n].data = it->data;
			n++;
		}
		/* level-triggered and reported: still a candidate */
		if (!e || (it->events & (EPOLLET | EPOLLONESHOT))) {
			it->in_cand = false;
			ep->cand[v] = -1;
		}
	}
	/* Of the v visited, the kept go behind the ones not visited:
	 * [kept][not visited] rotated to [not visited][kept]. */
	for (k = j = 0; k < v; k++)
		if (ep->cand[k] >= 0)
			ep->cand[j++] = ep->cand[k];
	memmove(ep->cand + j, ep->cand + v, (size_t)(cnt - v) * sizeof(int));
	ep->ncand = j + cnt - v;
	ints_reverse(ep->cand, j);
	ints_reverse(ep->cand + j, cnt - v);
	ints_reverse(ep->cand, ep->ncand);
	return n;
}

static int ep_scan(struct kbp_ep *ep, struct epoll_event *out, int max)
{
	int i, n = 0, cnt;
	unsigned start;

	pthread_mutex_lock(&ep->lock);
	if (ep_ring_take(ep)) {
		n = ep_scan_cand(ep, out, max);
		pthread_mutex_unlock(&ep->lock);
		return n;
	}
	cnt = ep->n;
	start = cnt ? ep->next % (unsigned)cnt : 0;
	for (i = 0; i < cnt && n < max; i++) {
		struct kbp_ep_item *it = &ep->it[(start + (unsigned)i) % (unsigned)cnt];
		uint32_t e = item_check(it);

		if (!e)
			continue;
		out[n].events = e;
		out[n].data = it->data;
		n++;
	}
	ep->next = start + 1;
	pthread_mutex_unlock(&ep->lock);
	return n;
}

/* Drop the wake socket's entries from kernel results; true if it was there. */
static int ep_filter(struct epoll_event *ev, int n, bool *efd)
{
	int i, k = 0;

	*efd = false;
	for (i = 0; i < n; i++) {
		if (ev[i].data.u64 == KBP_EFD_MARK) {
			*efd = true;
			continue;
		}
		ev[k++] = ev[i];
	}
	return k;
}

/* The kernel's ready fds of ep's set, without waiting; our wake socket's entry
 * dropped (and re-armed). -errno on failure. */
static int ep_kernel_now(struct kbp_ep *ep, struct epoll_event *ev, int max,
			 const sigset_t *mask)
{
	bool efd;
	int m = libc_epoll_pwait(ep->epfd, ev, max, 0, mask);

	if (m < 0)
		return -errno;
	m = ep_filter(ev, m, &efd);
	if (efd && ep->w.idx >= 0)
		efd_drain(&ep->w);
	return m;
}

static int ep_wait(struct kbp_ep *ep, int epfd, struct epoll_event *ev, int max,
		   int timeout_ms, const sigset_t *mask)
{
	uint64_t deadline = kbp_deadline(timeout_ms), spin_end = kbp_now_us() + kbp_cfg.spin_us;
	struct kbp_waiter w;
	bool efd;
	int ms;

	ep_fresh(ep);
	for (;;) {
		uint32_t seq = event_seq(&ep->w);
		int n = ep_scan(ep, ev, max), m, items = kbq_ld_acq(&ep->n);

		/* Kernel fds too: while accelerated sockets keep us busy, every
		 * 8th call, without waiting (no system call in steady state).
		 * With nothing ready, the sleep below reports them at once. */
		if (items && n && n < max && ++ep->kcheck % 8 == 0 &&
		    (m = ep_kernel_now(ep, ev + n, max - n, mask)) > 0)
			n += m;
		if (n)
			return n;
		if (timeout_ms == 0) { /* a poll: the kernel's fds, no waiting */
			kbp_stack_check_often();
			return ep_kernel_now(ep, ev, max, mask);
		}
		/* Spin only when an accelerated fd may become ready. */
		while (items && kbp_now_us() < spin_end && !(n = ep_scan(ep, ev, max)))
			cpu_relax();
		if (n)
			return n;
		if (deadline && ms_left(deadline) == 0)
			return 0;
		/* Asleep, this thread is counted on the entry it began with,
		 * and ends there (ep_fresh may give the instance a new one). */
		pthread_mutex_lock(&ep->lock);
		w = ep->w;
		pthread_mutex_unlock(&ep->lock);
		if (!sleep_begin(&w, seq))
			continue;
		/* (Only while it holds accelerated sockets does it look for
		 * kbstackd's death itself: otherwise nothing of its changes.) */
		ms = sleep_ms(&w, ms_left(deadline), items > 0);
		m = libc_epoll_pwait(epfd, ev, max, items ? cap_ms(ms) : ms, mask);
		if (m < 0) {
			int e = errno;

			sleep_end(&w, false);
			return -e;
		}
		m = ep_filter(ev, m, &efd);
		sleep_end(&w, efd);
		if (efd) { /* its count of edge-triggered wake-ups since a drain */
			pthread_mutex_lock(&ep->lock);
			if (ep->w.efd == w.efd)
				ep->w.wakes = w.wakes;
			pthread_mutex_unlock(&ep->lock);
		}
		if (m < max)
			m += ep_scan(ep, ev + m, max - m);
		if (m)
			return m;
	}
}

int kbp_epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout_ms,
		   const sigset_t *mask)
{
	struct kbp_ep *ep;
	int rc;

	if (max <= 0)
		return -EINVAL;
	if (!(ep = ep_use(epfd, &rc)))
		return rc;
	rc = ep_wait(ep, epfd, ev, max, timeout_ms, mask);
	ep_put(ep);
	return rc;
}

void kbp_epoll_forget(struct kbp_sock *s)
{
	struct kbp_ep *ep;
	int i;

	pthread_mutex_lock(&kbp_eps_lock);
	for (ep = kbp_eps; ep; ep = ep->link) {
		bool held = false;

		pthread_mutex_lock(&ep->lock);
		while ((i = ep_sock_item(ep, s)) >= 0) {
			item_del(ep, i);
			held = true;
		}
		if (held)
			ep_uninterest(ep, s);
		pthread_mutex_unlock(&ep->lock);
	}
	pthread_mutex_unlock(&kbp_eps_lock);
}

/* This process changed s's readiness itself (shutdown): s is a candidate of
 * every instance holding it, and a thread asleep in one of them looks (as
 * Linux wakes an epoll waiter on shutdown). */
void kbp_epoll_touch(struct kbp_sock *s)
{
	struct kbp_ep *ep;
	int i;

	pthread_mutex_lock(&kbp_eps_lock);
	for (ep = kbp_eps; ep; ep = ep->link) {
		pthread_mutex_lock(&ep->lock);
		if ((i = ep_sock_item(ep, s)) >= 0) {
			cand_add(ep, i);
			ep_kick(ep);
		}
		pthread_mutex_unlock(&ep->lock);
	}
	pthread_mutex_unlock(&kbp_eps_lock);
}

void kbp_epoll_fork_child(bool has_row)
{
	uint64_t refd[KBQ_WHELD_WORDS] = { 0 };
	struct kbp_ep *ep;
	uint32_t w;

	pthread_mutex_init(&kbp_eps_lock, NULL);
	if (kbp_tw.idx > 0) { /* (waiter 0's ends are kbp.efd and kbp.kick) */
		libc_close(kbp_tw.efd);
		libc_close(kbp_tw.kick);
	}
	kbp_tw = (struct kbp_waiter){ .idx = -2, .efd = -1, .kick = -1 };
	for (ep = kbp_eps; ep; ep = ep->link) {
		/* the parent's calls in progress hold nothing here */
		kbq_st(&ep->refs, ep_get(ep->epfd) == ep ? 1 : 0);
		pthread_mutex_init(&ep->lock, NULL);
		if (ep->w.idx > 0 && ep->w.att == kbp.epoch) /* (a dead region's: not ours to keep) */
			refd[ep->w.idx / 64] |= 1ull << (ep->w.idx % 64);
	}
	if (!has_row)
		return;
	/* Other threads' waiters, this thread's, and instances another
	 * thread closed between the copy of the parent's row and fork. */
	for (w = 0; w < KBQ_WHELD_WORDS; w++) {
		uint64_t m = kbq_ld(&kbp.r->wheld[kbp_me()][w]) & ~refd[w];

		while (m) {
			waiter_drop(kbp.r, w * 64 + (uint32_t)__builtin_ctzll(m));
			m &= m - 1;
		}
	}
}

/* epfd closes: the fd's reference goes (a thread still in epoll_wait or
 * epoll_ctl on it holds its own, as Linux's file reference does). */
void kbp_epoll_close(int epfd)
{
	struct kbp_ep *ep = ep_get(epfd);
	void *want = ep;

	if (ep && __atomic_compare_exchange_n(&kbp_fds[epfd], &want, NULL, false,
					      __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
		ep_put(ep);
}

/* ---- poll / select ----------------------------------------------------- */

bool kbp_poll_has_ours(const struct pollfd *p, nfds_t n)
{
	nfds_t i;

	for (i = 0; i < n; i++)
		if (kbp_sock_get(p[i].fd))
			return true;
	return false;
}

/* Fill p[].revents for accelerated entries; kernel results are merged from k. */
static int poll_merge(struct pollfd *p, nfds_t n, const struct pollfd *k, bool with_kernel)
{
	nfds_t i;
	int cnt = 0;

	for (i = 0; i < n; i++) {
		struct kbp_sock *s = kbp_sock_get(p[i].fd);
		short r = 0;

		if (s)
			r = (short)(kbp_sock_events(s) & ((uint32_t)p[i].events | POLLERR | POLLHUP));
		if (with_kernel && (!s || s->listener))
			r |= k[i].revents;
		p[i].revents = r;
		cnt += r != 0;
	}
	return cnt;
}

int kbp_poll(struct pollfd *p, nfds_t n, int timeout_ms, const sigset_t *mask)
{
	uint64_t deadline = kbp_deadline(timeout_ms), spin_end = kbp_now_us() + kbp_cfg.spin_us;
	struct pollfd stackbuf[64], *k = n + 2 <= 64 ? stackbuf : calloc(n + 2, sizeof(*k));
	struct kbp_waiter *w;
	nfds_t i, nk = 0;
	int rc;

	if (!k)
		return -ENOMEM;
	w = thread_waiter();
	for (i = 0; i < n; i++) {
		struct kbp_sock *s = kbp_sock_get(p[i].fd);

		k[i] = p[i];
		k[i].revents = 0;
		interest(s, w, true);
		if (s && !s->listener)
			k[i].fd = -1; /* the placeholder socket says nothing */
	}
	k[n] = (struct pollfd){ w->efd, POLLIN, 0 };
	for (i = 0; i < n; i++)
		nk += k[i].fd >= 0;
	for (;;) {
		uint32_t seq = event_seq(w), att;
		int m = 0;

		/* hangs up when kbstackd dies; -1 (not watched) after that */
		k[n + 1] = (struct pollfd){ kbp_ctl_fd(&att), 0, 0 };
		/* Kernel fds without waiting (none: no system call). */
		if (nk && (m = libc_poll(k, n, 0)) < 0) {
			rc = -errno;
			break;
		}
		rc = poll_merge(p, n, k, nk > 0);
		if (rc || timeout_ms == 0)
			break;
		while (kbp_now_us() < spin_end && !(rc = poll_merge(p, n, k, false)))
			cpu_relax();
		if (rc)
			break;
		if (deadline && ms_left(deadline) == 0)
			break;
		if (!sleep_begin(w, seq))
			continue;
		{
			int ms = sleep_ms(w, ms_left(deadline), true);
			struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

			m = libc_ppoll(k, n + 2, ms < 0 ? NULL : &ts, mask);
		}
		if (m > 0 && (k[n + 1].revents & (POLLHUP | POLLERR)))
			kbp_stack_gone(att);
		sleep_end(w, m > 0 && k[n].revents);
		if (m < 0) {
			rc = -errno;
			break;
		}
		if ((rc = poll_merge(p, n, k, true)))
			break;
	}
	for (i = 0; i < n; i++)
		interest(kbp_sock_get(p[i].fd), w, false);
	if (k != stackbuf)
		free(k);
	return rc;
}

void kbp_wake_all(struct kbq_region *r, uint32_t me)
{
	static const char one = 1;
	struct kbp_ep *ep;
	uint32_t w, words = kbq_slot_words(kbp_region_slots(r));

	/* Threads asleep on a socket's futex word: its slot is in our row. */
	for (w = 0; me < KBQ_NPROCS && w < words; w++) {
		uint64_t m = kbq_ld(&r->held[me][w]);

		while (m) {
			struct kbq_sock *q = kbq_sock_at(r, w * 64 + (uint32_t)__builtin_ctzll(m));

			m &= m - 1;
			kbq_add_sc(&q->wake_seq, 1);
			if (kbq_ld_sc(&q->waiters))
				libc_syscall(SYS_futex, &q->wake_seq, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
		}
	}
	/* Threads in epoll_wait (those in poll, select and accept watch the
	 * control connection themselves). */
	pthread_mutex_lock(&kbp_eps_lock);
	for (ep = kbp_eps; ep; ep = ep->link) {
		pthread_mutex_lock(&ep->lock);
		if (ep->w.kick >= 0)
			(void)!libc_send(ep->w.kick, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
		pthread_mutex_unlock(&ep->lock);
	}
	pthread_mutex_unlock(&kbp_eps_lock);
}
