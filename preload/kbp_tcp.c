/*
 * kbp_tcp.c — accelerated TCP sockets on the application side.
 *
 * A socket becomes accelerated at listen() (a KB_ACCEL listen port) or at
 * connect() (a KB_ACCEL destination); until then it is the kernel's. The
 * fd keeps a real kernel socket: for a listener it listens on the kernel
 * path too (accept takes from both); for a connection it is an unconnected
 * placeholder that holds the fd number.
 *
 * Steady-state I/O makes no system call: read copies out of the rx ring,
 * write copies into the tx ring, and a doorbell bit tells kbstackd.
 */
#include "kbp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <time.h>
#include <limits.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kbq_atomic.h"
#include "kbq_hold.h"
#include "kbq_ring.h"


/* ---- holding (kbq_abi.h, Holding) -------------------------------------- */

/* This process holds slot of region r (the current attachment's) from
 * now on: if it dies, kbstackd closes the slot unless another process
 * holds it. */
static void hold_set(struct kbq_region *r, uint32_t slot)
{
	uint32_t me = kbp_me();

	if (me < KBQ_NPROCS)
		kbq_or_sc(&r->held[me][slot / 64], 1ull << (slot % 64));
}

/*
 * This process lets go of slot (its last fd for it is gone). True when no
 * other process holds it and we won the close: post CLOSE then; *gen is
 * the generation closed. A slot no holder forked with (most connections
 * of a pre-fork server) needs no look at the other rows.
 */
static bool hold_drop(struct kbq_region *r, uint32_t slot, uint32_t *gen)
{
	struct kbq_sock *q = kbq_sock_at(r, slot);
	uint32_t g = kbq_ld_acq(&q->gen), want = g; /* fixed while we hold it */
	uint32_t me = kbp_me();
	bool last;

	if (me >= KBQ_NPROCS)
		return false;
	kbp_drop_begin();
	kbq_and_sc(&r->held[me][slot / 64], ~(1ull << (slot % 64)));
	last = !kbq_ld_sc(&q->forked) ||
	       !kbq_held_by_other(&r->held[0][0], KBQ_HELD_WORDS, r->procs, me, slot);
	last = last && kbq_cas(&q->closing, &want, g + 1);
	kbp_drop_end();
	*gen = g;
	return last;
}

/* ---- slots and requests ---------------------------------------------- */

static uint32_t req_post(struct kbp_sock *s, uint32_t op, uint32_t a0, uint32_t a1,
			 uint32_t a2);


/* The attachment a new socket belongs to, read once (kbp.r moves on a
 * re-attach). The epoch first: the region read after it is the one that
 * epoch made live or a later one, whose epoch then says the socket's
 * attachment is dead, never the reverse. */
struct kbp_at {
	struct kbq_region *r;
	uint32_t att;
};

static struct kbp_at at_now(void)
{
	struct kbp_at at;

	at.att = kbq_ld_acq(&kbp.epoch);
	at.r = kbq_ld_acq(&kbp.r);
	return at;
}

static void sock_at(struct kbp_sock *s, struct kbp_at at)
{
	s->r = at.r;
	s->att = at.att;
}

static int slot_claim(struct kbp_at at)
{
	static uint32_t hint;
	uint32_t i, start = __atomic_fetch_add(&hint, 1, __ATOMIC_RELAXED);
	uint32_t n = kbp_region_slots(at.r); /* KB_SLOTS: kbstackd's, written once */

	for (i = 0; i < n; i++) {
		uint32_t slot = (start + i) % n, want = KBQ_S_FREE;
		struct kbq_sock *q = kbq_sock_at(at.r, slot);

		if (kbq_ld_acq(&q->state) != KBQ_S_FREE ||
		    !kbq_cas(&q->state, &want, KBQ_S_OPEN))
			continue;
		q->ev = 0;
		memset(q->wmask, 0, sizeof(q->wmask));
		q->so_error = 0;
		q->laddr = q->raddr = 0;
		q->lport = q->rport = 0;
		q->forked = 0; /* we are its first holder */
		hold_set(at.r, slot);
		return (int)slot;
	}
	return -ENOBUFS;
}

/* A slot claimed but never used: no request was posted, so kbstackd has
 * not seen the claim and the slot goes straight back. */
static void slot_unclaim(struct kbp_at at, uint32_t slot)
{
	uint32_t me = kbp_me();

	if (me < KBQ_NPROCS)
		kbq_and_sc(&at.r->held[me][slot / 64], ~(1ull << (slot % 64)));
	kbq_st_rel(&kbq_sock_at(at.r, slot)->state, KBQ_S_FREE);
}

/* ---- socket objects: type-stable, referenced ---------------------------- */

/*
 * A call looks its fd up (an acquire load of the table entry), then takes
 * a reference (kbp_sock_ref). Between the two, another thread may close
 * the fd and drop the last reference. The object is then not freed but
 * put on this free list, and never given back to malloc: the memory stays
 * a kbp_sock, its refs word a counter, so the late increment reads and
 * writes no freed memory. It fails on a free object (refs 0: increment if
 * not zero). It may succeed on the object reused for a new socket since
 * (refs 0 → 1 again): the table entry is read again after the increment,
 * and a reference on anything but what fd names now is dropped at once —
 * that drop is an ordinary one, and does the new socket's close if it was
 * closed meanwhile, as it must. An object given up before it was
 * published goes the same way (sock_discard), so a stray reference is
 * never lost. The cost: a process keeps as many objects as it had sockets
 * open at once (a few hundred bytes each).
 */
static struct kbp_sock *kbp_sock_free;
static pthread_mutex_t kbp_sock_free_lock = PTHREAD_MUTEX_INITIALIZER;

struct kbp_sock *kbp_sock_new(uint32_t slot, int kfd, sa_family_t family, bool listener)
{
	struct kbp_sock *s;

	pthread_mutex_lock(&kbp_sock_free_lock);
	s = kbp_sock_free;
	if (s)
		kbp_sock_free = s->free_next;
	pthread_mutex_unlock(&kbp_sock_free_lock);
	if (!s) {
		if (!(s = calloc(1, sizeof(*s))))
			return NULL;
		s->kind = KBP_K_SOCK; /* for ever: a late lookup reads it */
	}
	/* refs is 0 here, and a late kbp_sock_ref leaves it so: every other
	 * field is ours to set until the reference below exists. */
	s->slot = slot;
	s->listener = listener;
	s->nonblock = s->shut_rd = s->shut_wr = s->err_taken = false;
	s->inherit = 0;
	s->family = family;
	s->kfd = kfd;
	s->rcvtimeo_ms = s->sndtimeo_ms = 0;
	s->close_gen = 0;
	s->tx_lock = s->tx_asleep = s->rx_lock = 0;
	s->gone_told = false;
	s->free_next = NULL;
	sock_at(s, at_now()); /* callers that claimed the slot earlier set theirs */
	pthread_mutex_init(&s->lock, NULL);
	kbq_st_rel(&s->refs, 1);
	return s;
}

struct kbp_sock *kbp_sock_ref(int fd, struct kbp_sock *s)
{
	while ((s = kbp_sock_get(fd))) {
		int r = kbq_ld(&s->refs);

		do {
			if (r == 0) /* free: fd was closed, or is being reused */
				break;
		} while (!kbq_cas_acq(&s->refs, &r, r + 1));
		if (r == 0)
			continue;
		if (kbq_ld_acq(&kbp_fds[fd]) == s)
			return s;
		kbp_sock_put(s);
	}
	return NULL;
}

static bool listener_gone(struct kbp_sock *s)
{
	return kbq_ld_acq(&kbp_q(s)->gen) != s->close_gen;
}

/* The last reference is gone: close, then to the free list. */
static void sock_last_put(struct kbp_sock *s)
{
	if (s->slot < KBQ_MAXSLOTS) {
		kbp_epoll_forget(s);
		if (!kbp_gone(s) && hold_drop(s->r, s->slot, &s->close_gen)) {
			pthread_mutex_lock(&s->lock);
			req_post(s, KBQ_OP_CLOSE, 0, 0, 0);
			pthread_mutex_unlock(&s->lock);
			/* As in Linux, a listener's port is free once close()
			 * returns: the program may listen on it again at once
			 * (kbstackd serves requests of different slots in slot
			 * order, not post order). Bounded: a kbstackd that has
			 * gone cannot hold us. */
			if (s->listener)
				(void)kbp_wait(s, listener_gone, -1, 0, 1000);
		}
	}
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_lock(&kbp_sock_free_lock);
	s->free_next = kbp_sock_free;
	kbp_sock_free = s;
	pthread_mutex_unlock(&kbp_sock_free_lock);
}

void kbp_sock_put(struct kbp_sock *s)
{
	if (!kbq_sub_ar_new(&s->refs, 1))
		sock_last_put(s);
}

/* A socket never published, whose slot the caller has dealt with. */
static void sock_discard(struct kbp_sock *s)
{
	s->slot = KBQ_MAXSLOTS;
	kbp_sock_put(s);
}

/* A slot's mailbox holds one request: wait until kbstackd has read the
 * previous one (taken_seq) before writing over it. A few loop iterations
 * of kbstackd at most; bounded, so a kbstackd that died cannot hold us. */
static void req_wait_taken(struct kbp_sock *s, struct kbq_sock *q)
{
	struct timespec t0, t;

	if (kbq_ld_acq(&q->taken_seq) == q->req_seq)
		return;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		sched_yield();
		kbp_stack_check(); /* (kbstackd may be why it is not taken) */
		if (kbq_ld_acq(&q->taken_seq) == q->req_seq || kbp_gone(s))
			return;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 2);
}

static uint32_t req_post(struct kbp_sock *s, uint32_t op, uint32_t a0, uint32_t a1,
			 uint32_t a2)
{
	struct kbq_sock *q = kbp_q(s);
	uint32_t seq;

	req_wait_taken(s, q);
	seq = q->req_seq + 1;

	q->req_op = op;
	q->req_arg[0] = a0;
	q->req_arg[1] = a1;
	q->req_arg[2] = a2;
	kbq_st_rel(&q->req_seq, seq); /* pairs with kbstackd's acquire load */
	kbq_bell(s->r, s->slot);
	return seq;
}

static bool req_done(struct kbp_sock *s)
{
	struct kbq_sock *q = kbp_q(s);

	return kbq_ld_acq(&q->done_seq) == q->req_seq;
}

/* Post a request and wait for kbstackd's answer (no timeout, no signal;
 * -ENETDOWN when kbstackd has gone). */
static int req_call(struct kbp_sock *s, uint32_t op, uint32_t a0, uint32_t a1, uint32_t a2)
{
	int rc;

	pthread_mutex_lock(&s->lock);
	req_post(s, op, a0, a1, a2);
	while (!req_done(s) && !kbp_gone(s))
		kbp_wait(s, req_done, -1, 0, -1);
	rc = req_done(s) ? kbp_q(s)->done_rc : -ENETDOWN;
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* ---- addresses --------------------------------------------------------- */

static int addr_out(sa_family_t family, uint32_t ip, uint16_t port_be,
		    struct sockaddr *a, socklen_t *len)
{
	union {
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} u;
	socklen_t n;

	memset(&u, 0, sizeof(u));
	if (family == AF_INET6) {
		u.v6.sin6_family = AF_INET6;
		u.v6.sin6_port = port_be;
		u.v6.sin6_addr.s6_addr[10] = 0xff;
		u.v6.sin6_addr.s6_addr[11] = 0xff;
		memcpy(&u.v6.sin6_addr.s6_addr[12], &ip, 4);
		n = sizeof(u.v6);
	} else {
		u.v4.sin_family = AF_INET;
		u.v4.sin_port = port_be;
		u.v4.sin_addr.s_addr = ip;
		n = sizeof(u.v4);
	}
	if (a && len) {
		memcpy(a, &u, *len < n ? *len : n);
		*len = n;
	}
	return 0;
}

/* An IPv4 destination (plain or v4-mapped) and port; false otherwise. */
static bool addr_in(const struct sockaddr *a, socklen_t len, uint32_t *ip, uint16_t *port)
{
	if (a->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *v4 = (const void *)a;

		*ip = v4->sin_addr.s_addr;
		*port = ntohs(v4->sin_port);
		return true;
	}
	if (a->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *v6 = (const void *)a;

		if (!IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr))
			return false;
		memcpy(ip, &v6->sin6_addr.s6_addr[12], 4);
		*port = ntohs(v6->sin6_port);
		return true;
	}
	return false;
}

/* ---- listen / accept / connect ---------------------------------------- */

/* Fallback or failure when kb cannot take a socket a rule matched. */
/* reason: KBQ_FB_*, or -1 when there is no kbstackd to count it. */
static int cannot_accelerate(int reason, int err, const char *what)
{
	if (kbp_live() && reason >= 0)
		kbq_add(&kbp.r->fallback[reason], 1);
	if (kbp_cfg.strict) {
		kbp_log(0, "%s: cannot accelerate (%s); KB_STRICT is set", what, strerror(-err));
		return err;
	}
	/* Without kbstackd, kbp_attach has said so once already. */
	kbp_log(reason < 0 ? 2 : 1, "%s: cannot accelerate (%s); using the kernel", what,
		strerror(-err));
	return 0;
}

/* Options set on the socket before listen() that Linux passes on to the
 * connections it accepts (servers set TCP_NODELAY once, on the listener). */
static uint32_t listen_inherit(int fd)
{
	int v = 0;
	socklen_t l = sizeof(v);
	uint32_t f = 0;

	if (libc_getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &l) == 0 && v)
		f |= KBQ_OPT_F_NODELAY;
	l = sizeof(v);
	if (libc_getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &l) == 0 && v)
		f |= KBQ_OPT_F_KEEPALIVE;
	return f;
}

int kbp_listen(int fd, int backlog)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} a;
	socklen_t len = sizeof(a);
	struct kbp_sock *s;
	struct kbp_at at;
	uint16_t port;
	int rc, slot, fl, type;
	socklen_t tl = sizeof(type);

	if (libc_listen(fd, backlog))
		return -errno;
	if (fd >= kbp_fd_max() || kbp_fd_get(fd) || libc_getsockname(fd, &a.sa, &len) ||
	    libc_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) || type != SOCK_STREAM)
		return 0;
	if (a.sa.sa_family == AF_INET) {
		port = ntohs(a.v4.sin_port);
		if (a.v4.sin_addr.s_addr != htonl(INADDR_ANY))
			return 0; /* bound to one kernel address: the kernel's socket */
	} else if (a.sa.sa_family == AF_INET6) {
		int v6only = 0;
		socklen_t ol = sizeof(v6only);

		port = ntohs(a.v6.sin6_port);
		if (!IN6_IS_ADDR_UNSPECIFIED(&a.v6.sin6_addr))
			return 0;
		/* IPV6_V6ONLY: no IPv4 ever reaches it, and kb serves IPv4 only
		 * (the server's AF_INET socket on the same port is kb's). */
		if (libc_getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &ol) == 0 && v6only)
			return 0;
	} else {
		return 0;
	}
	if (!kbp_listen_match(port))
		return 0;
	if ((rc = kbp_attach()))
		return cannot_accelerate(-1, -ENETDOWN, "listen");
	at = at_now();
	if ((slot = slot_claim(at)) < 0)
		return cannot_accelerate(KBQ_FB_NO_SLOT, slot, "listen");
	s = kbp_sock_new((uint32_t)slot, fd, a.sa.sa_family, true);
	if (!s) {
		slot_unclaim(at, (uint32_t)slot);
		return cannot_accelerate(KBQ_FB_NO_MEM, -ENOMEM, "listen");
	}
	sock_at(s, at);
	/* accept() polls the kernel path without blocking; the app's own
	 * O_NONBLOCK lives in s->nonblock. */
	fl = libc_fcntl(fd, F_GETFL);
	s->nonblock = fl >= 0 && (fl & O_NONBLOCK);
	libc_fcntl(fd, F_SETFL, (fl < 0 ? 0 : fl) | O_NONBLOCK);
	s->inherit = listen_inherit(fd);
	/* The backlog as Linux reads it (unsigned: a negative one is the most
	 * there is); kbstackd bounds it, and says no (all its accept queues
	 * taken, say) with an error: the listener stays the kernel's. */
	rc = req_call(s, KBQ_OP_LISTEN, port, (uint32_t)backlog, s->inherit);
	if (rc) {
		uint32_t gen;

		if (!kbp_gone(s) && hold_drop(s->r, s->slot, &gen))
			req_post(s, KBQ_OP_CLOSE, 0, 0, 0);
		libc_fcntl(fd, F_SETFL, fl < 0 ? 0 : fl);
		sock_discard(s);
		return cannot_accelerate(KBQ_FB_REFUSED, rc, "listen");
	}
	kbp_publish_begin();
	kbp_fd_set(fd, s);
	kbp_publish_end();
	kbp_log(2, "fd %d: port %u listens on kbstackd and the kernel", fd, port);
	return 0;
}

static bool aq_ready(struct kbp_sock *l)
{
	struct kbq_acceptq *aq = kbp_aq(l);

	return aq && kbq_ld_acq(&aq->tail) != kbq_ld_acq(&aq->head);
}

/* Take one connection from the listener's queue; slot or -EAGAIN. */
static int aq_take(struct kbp_sock *l)
{
	struct kbq_acceptq *aq = kbp_aq(l);
	uint32_t head;

	if (!aq)
		return -EAGAIN;
	head = kbq_ld_acq(&aq->head);
	for (;;) {
		uint32_t tail = kbq_ld_acq(&aq->tail), slot;

		if (head == tail || tail - head > KBQ_ACCEPTQ)
			return -EAGAIN;
		slot = kbq_ld(&aq->slot[head % KBQ_ACCEPTQ]);
		if (kbq_cas_acq(&aq->head, &head, head + 1))
			return slot < kbp_region_slots(l->r) ? (int)slot : -EAGAIN;
	}
}

static int accept_kb(struct kbp_sock *l, uint32_t slot, struct sockaddr *a,
		     socklen_t *len, int flags)
{
	struct kbq_sock *q = kbq_sock_at(l->r, slot);
	struct kbp_sock *s;
	uint32_t inherit;
	int kfd;

	kbq_st(&q->forked, 0); /* we are its first holder */
	hold_set(l->r, slot);
	kfd = libc_socket(l->family, SOCK_STREAM | (flags & SOCK_CLOEXEC), 0);
	if (kfd < 0 || kfd >= kbp_fd_max() || !(s = kbp_sock_new(slot, kfd, l->family, false))) {
		int e = kfd < 0 ? errno : EMFILE;
		struct kbp_sock tmp = { .slot = slot, .r = l->r, .att = l->att };
		uint32_t gen;

		if (kfd >= 0)
			libc_close(kfd);
		if (hold_drop(l->r, slot, &gen))
			req_post(&tmp, KBQ_OP_CLOSE, 0, 0, 0);
		return -e;
	}
	s->r = l->r;
	s->att = l->att;
	s->nonblock = flags & SOCK_NONBLOCK;
	inherit = kbq_ld(&l->inherit);
	if (inherit) { /* getsockopt on the new fd reads what it inherited */
		int one = 1;

		if (inherit & KBQ_OPT_F_NODELAY)
			libc_setsockopt(kfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (inherit & KBQ_OPT_F_KEEPALIVE)
			libc_setsockopt(kfd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	}
	addr_out(l->family, q->raddr, q->rport, a, len);
	kbp_publish_begin();
	kbp_fd_set(kfd, s);
	kbp_publish_end();
	return kfd;
}

/*
 * The listener's kbstackd is gone and the program was told (ECONNABORTED):
 * from now on fd is the kernel's listening socket alone — out of the fd
 * table, with the program's own O_NONBLOCK again, its epoll registration
 * (the kernel path's, made at EPOLL_CTL_ADD) as it was — and the table's
 * reference on kb's object goes. Other fds dup'd from it stay kb's, dead.
 */
static void listener_to_kernel(int fd, struct kbp_sock *l)
{
	void *want = l;
	int fl;

	if (!__atomic_compare_exchange_n(&kbp_fds[fd], &want, NULL, false, __ATOMIC_ACQ_REL,
					 __ATOMIC_RELAXED))
		return; /* closed, or another fd now */
	fl = libc_fcntl(fd, F_GETFL);
	if (fl >= 0 && !kbq_ld(&l->nonblock))
		libc_fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	kbp_sock_put(l);
}

/* A listener whose kbstackd has gone waits on its kernel socket alone. */
static int wait_kernel(int fd, int timeout_ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	int n = libc_poll(&p, 1, timeout_ms);

	return n < 0 ? -errno : n ? 1 : -EAGAIN;
}

/*
 * l is held by the caller. If another thread closes fd meanwhile, a
 * blocked accept goes on waiting, as on Linux, for kb connections only:
 * the kernel socket behind fd is closed, and its number may be reused.
 *
 * After kbstackd's death, a listener goes on through the kernel: the
 * first accept (the one asleep when it died, or the next) returns
 * ECONNABORTED — the connections kbstackd had queued are lost — and the
 * following ones take the kernel's. Not ENETDOWN: accept(2) lists it
 * among the errors to retry, but servers differ (Apache's children exit
 * on it); every server retries ECONNABORTED.
 */
int kbp_accept(int fd, struct kbp_sock *l, struct sockaddr *a, socklen_t *len, int flags)
{
	for (;;) {
		bool gone = kbp_gone(l);
		int slot = gone ? -EAGAIN : aq_take(l), rc, kfd = kbp_fd_get(fd) == l ? fd : -1;
		uint32_t timeo = kbq_ld(&l->rcvtimeo_ms);

		if (gone && !__atomic_exchange_n(&l->gone_told, true, __ATOMIC_ACQ_REL)) {
			listener_to_kernel(fd, l);
			return -ECONNABORTED;
		}
		if (slot >= 0)
			return accept_kb(l, (uint32_t)slot, a, len, flags);
		if (kfd >= 0) {
			rc = libc_accept4(kfd, a, len, flags);
			if (rc >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				return rc >= 0 ? rc : -errno;
		}
		if (kbq_ld(&l->nonblock))
			return -EAGAIN;
		rc = gone ? wait_kernel(kfd, timeo ? (int)timeo : -1)
			  : kbp_wait(l, aq_ready, kfd, POLLIN, timeo ? (int)timeo : -1);
		/* Linux restarts a blocking accept() without a timeout after a
		 * handler installed with SA_RESTART. We sleep in poll(), which is
		 * never restarted, and cannot tell which signal came: restart
		 * when every handler installed asks for it. */
		if (rc == -EINTR && !timeo && kbp_signals_restart())
			continue;
		if (rc < 0)
			return rc;
	}
}

static bool connect_done(struct kbp_sock *s)
{
	uint32_t st = kbq_ld_acq(&kbp_q(s)->state);

	return st != KBQ_S_CONNECTING && st != KBQ_S_OPEN;
}

/* A blocking connect's wait for the handshake and kbstackd's answer. */
static int connect_wait(struct kbp_sock *s)
{
	uint32_t timeo = kbq_ld(&s->sndtimeo_ms);

	while (!connect_done(s) || !req_done(s)) {
		int rc;

		if (kbp_gone(s))
			return -ENETDOWN;
		rc = kbp_wait(s, connect_done, -1, 0, timeo ? (int)timeo : -1);
		if (rc == -EINTR)
			return -EINTR; /* the connection goes on, as in the kernel */
		if (rc == -EAGAIN)
			return -ETIMEDOUT;
	}
	return kbp_q(s)->done_rc;
}

/* 1: not ours, call libc; else 0 or -errno. */
int kbp_connect(int fd, const struct sockaddr *a, socklen_t len)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} me;
	socklen_t ml = sizeof(me);
	struct kbp_sock *s = kbp_sock_hold(fd);
	struct kbp_at at;
	uint16_t port, lport = 0;
	uint32_t ip;
	int slot, rc, fl, type;
	socklen_t tl = sizeof(type);

	if (s) {
		uint32_t st = kbq_ld_acq(&kbp_q(s)->state);

		kbp_sock_put(s);
		return st == KBQ_S_CONNECTING ? -EALREADY : -EISCONN;
	}
	if (!a || fd >= kbp_fd_max() || !addr_in(a, len, &ip, &port) ||
	    !kbp_connect_match(ip, port))
		return 1;
	if (libc_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) || type != SOCK_STREAM)
		return 1;
	if ((rc = kbp_attach()))
		return cannot_accelerate(-1, -ENETDOWN, "connect") ?: 1;
	if (libc_getsockname(fd, &me.sa, &ml) == 0)
		lport = ntohs(me.sa.sa_family == AF_INET6 ? me.v6.sin6_port : me.v4.sin_port);
	at = at_now();
	if ((slot = slot_claim(at)) < 0)
		return cannot_accelerate(KBQ_FB_NO_SLOT, slot, "connect") ?: 1;
	s = kbp_sock_new((uint32_t)slot, fd, a->sa_family, false);
	if (!s) {
		slot_unclaim(at, (uint32_t)slot);
		return -ENOMEM;
	}
	sock_at(s, at);
	fl = libc_fcntl(fd, F_GETFL);
	s->nonblock = fl >= 0 && (fl & O_NONBLOCK);
	kbq_add_ar(&s->refs, 1); /* this call's, beside the fd's */
	kbp_publish_begin();
	kbp_fd_set(fd, s);
	kbp_publish_end();
	pthread_mutex_lock(&s->lock);
	req_post(s, KBQ_OP_CONNECT, ip, port, lport);
	pthread_mutex_unlock(&s->lock);
	rc = kbq_ld(&s->nonblock) ? -EINPROGRESS : connect_wait(s);
	kbp_sock_put(s);
	return rc;
}

/* ---- data -------------------------------------------------------------- */

static size_t iov_len(const struct iovec *iov, int n)
{
	size_t t = 0;
	int i;

	for (i = 0; i < n; i++)
		t += iov[i].iov_len;
	return t;
}

/*
 * Copy n bytes between the ring (from index idx) and iov, starting skip
 * bytes into iov: out of the ring when to_iov, into it otherwise.
 */
static void ring_iov_copy(uint8_t *ring, uint32_t size, uint32_t idx, const struct iovec *iov,
			  int cnt,
			  size_t skip, size_t n, bool to_iov)
{
	int i;

	for (i = 0; i < cnt && n; i++) {
		size_t l = iov[i].iov_len;
		uint8_t *base = (uint8_t *)iov[i].iov_base;
		uint32_t k;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		k = (uint32_t)(l - skip < n ? l - skip : n);
		if (to_iov)
			kbq_ring_get(ring, size, idx, base + skip, k);
		else
			kbq_ring_put(ring, size, idx, base + skip, k);
		idx += k;
		n -= k;
		skip = 0;
	}
}

static bool rx_ready(struct kbp_sock *s)
{
	struct kbq_sock *q = kbp_q(s);

	return kbq_ld_acq(&q->rx_tail) != kbq_ld(&q->rx_head) ||
	       (kbq_ld_acq(&q->ev) & (KBQ_EV_RDHUP | KBQ_EV_ERR)) ||
	       kbq_ld_acq(&q->state) == KBQ_S_CLOSED || kbq_ld(&s->shut_rd);
}

/* Worth looking again: tx space, or a state change tx_wait must report. */
static bool tx_ready(struct kbp_sock *s)
{
	struct kbq_sock *q = kbp_q(s);
	uint32_t st = kbq_ld_acq(&q->state);

	if (kbq_ld(&s->shut_wr))
		return true;
	if (st == KBQ_S_CONNECTING || st == KBQ_S_OPEN)
		return false;
	return st != KBQ_S_ESTABLISHED || (kbq_ld_acq(&q->ev) & (KBQ_EV_ERR | KBQ_EV_WRDONE)) ||
	       kbq_ring_free(kbp_region_ring(s->r), kbq_ld(&q->tx_tail), kbq_ld_acq(&q->tx_head)) > 0;
}

static int sock_error(struct kbp_sock *s)
{
	int e = kbp_q(s)->so_error;

	return e > 0 ? e : ECONNRESET;
}

/* The pending error, reported once (by a call or by SO_ERROR) as in Linux,
 * to one thread; 0 once it was taken. */
static int sock_error_take(struct kbp_sock *s)
{
	if (__atomic_exchange_n(&s->err_taken, true, __ATOMIC_RELAXED))
		return 0;
	return sock_error(s);
}

/* A connection whose kbstackd has gone was reset with it: the first call
 * to see that gets ECONNRESET, later reads end of file and later writes
 * EPIPE, as after a reset in Linux. Bytes already in the rx ring are read
 * first: kbstackd had acknowledged them to the peer. */
static int gone_error_take(struct kbp_sock *s)
{
	return __atomic_exchange_n(&s->err_taken, true, __ATOMIC_ACQ_REL) ? 0 : ECONNRESET;
}

static bool nonblocking(struct kbp_sock *s, int flags)
{
	return kbq_ld(&s->nonblock) || (flags & MSG_DONTWAIT);
}

static int timeout_ms(const uint32_t *timeo)
{
	uint32_t ms = kbq_ld(timeo);

	return ms ? (int)ms : -1;
}

/*
 * Readers: the rx lock is held from reading rx_head to publishing it
 * again, never while asleep. Two readers never copy the same bytes; a
 * MSG_WAITALL reader that has to wait lets others read between its
 * pieces, as on Linux (tcp_recvmsg releases the socket while it waits).
 */
ssize_t kbp_recv(struct kbp_sock *s, const struct iovec *iov, int iovcnt, int flags)
{
	struct kbq_sock *q = kbp_q(s);
	uint32_t ring = kbp_region_ring(s->r);
	size_t want = iovcnt > 0 ? iov_len(iov, iovcnt) : 0, got = 0;

	if (iovcnt < 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	if (s->listener)
		return -ENOTCONN;
	if (want == 0 || kbq_ld(&s->shut_rd))
		return 0;
	for (;;) {
		uint32_t tail, head, avail, st, ev;
		int rc;

		kbp_lock(&s->rx_lock, 0, false);
		tail = kbq_ld_acq(&q->rx_tail);
		head = q->rx_head;
		avail = tail - head;
		if (avail > ring) {
			kbp_unlock(&s->rx_lock);
			return -EIO;
		}
		if (avail) {
			size_t n = avail < want - got ? avail : want - got;

			/* after what earlier rounds of MSG_WAITALL filled */
			ring_iov_copy(kbq_rx_data(s->r, s->slot, ring), ring, head, iov, iovcnt, got, n,
				      true);
			if (!(flags & MSG_PEEK))
				kbq_st_rel(&q->rx_head, head + (uint32_t)n); /* frees ring space */
			kbp_unlock(&s->rx_lock);
			if (flags & MSG_PEEK)
				return (ssize_t)n;
			kbq_bell(s->r, s->slot); /* credit the window */
			got += n;
			if (got == want || !(flags & MSG_WAITALL))
				return (ssize_t)got;
			continue;
		}
		kbp_unlock(&s->rx_lock);
		if (kbp_gone(s)) {
			int e = got ? 0 : gone_error_take(s);

			return e ? -e : (ssize_t)got;
		}
		ev = kbq_ld_acq(&q->ev);
		st = kbq_ld_acq(&q->state);
		if (ev & KBQ_EV_ERR) {
			int e = got ? 0 : sock_error_take(s);

			return e ? -e : (ssize_t)got; /* after the error: end of file */
		}
		if ((ev & KBQ_EV_RDHUP) || st == KBQ_S_CLOSED || kbq_ld(&s->shut_rd))
			return (ssize_t)got;
		if (st == KBQ_S_OPEN)
			return -ENOTCONN;
		if (nonblocking(s, flags))
			return got ? (ssize_t)got : (kbp_stack_check_often(), -EAGAIN);
		rc = kbp_wait(s, rx_ready, -1, 0, timeout_ms(&s->rcvtimeo_ms));
		if (rc < 0)
			return got ? (ssize_t)got : rc;
	}
}

static int send_error(struct kbp_sock *s, int flags, int e)
{
	if (e == EPIPE && !(flags & MSG_NOSIGNAL))
		pthread_kill(pthread_self(), SIGPIPE);
	(void)s;
	return -e;
}

/*
 * Writers: one at a time holds the tx lock for its whole call, waits for
 * ring space included, so the bytes of one send(), writev() or sendfile()
 * are contiguous in the stream whatever other threads write. Linux is
 * looser: tcp_sendmsg releases the socket while it waits for memory, so
 * there two large blocking writes can interleave; here they cannot.
 *   - a blocking writer behind another waits for the lock until its
 *     SO_SNDTIMEO runs out (EAGAIN, nothing sent) or a signal comes
 *     (EINTR), as it would wait for space;
 *   - a non-blocking one (O_NONBLOCK, MSG_DONTWAIT) never sleeps: while
 *     the holder copies it yields and tries again (a copy is short);
 *     once the holder sleeps for space there is none: EAGAIN.
 * Returns 0 with the lock held, or -errno.
 */
static int tx_lock(struct kbp_sock *s, int flags)
{
	if (kbp_trylock(&s->tx_lock))
		return 0;
	if (!nonblocking(s, flags))
		return kbp_lock(&s->tx_lock, kbp_deadline(timeout_ms(&s->sndtimeo_ms)), true);
	for (;;) {
		if (kbq_ld(&s->tx_asleep))
			return -EAGAIN;
		sched_yield();
		if (kbp_trylock(&s->tx_lock))
			return 0;
	}
}

/* Wait for tx space (tx lock held); 0, or -errno to return (nothing sent
 * yet), or 1: look again. */
static int tx_wait(struct kbp_sock *s, int flags)
{
	struct kbq_sock *q = kbp_q(s);
	uint32_t st = kbq_ld_acq(&q->state), ev = kbq_ld_acq(&q->ev);
	int rc;

	if (kbp_gone(s))
		return send_error(s, flags, gone_error_take(s) ?: EPIPE);
	if (ev & KBQ_EV_ERR)
		return send_error(s, flags, (ev & KBQ_EV_WRDONE) ? EPIPE
					    : (sock_error_take(s) ?: EPIPE));
	if (kbq_ld(&s->shut_wr) || (ev & KBQ_EV_WRDONE) || st == KBQ_S_CLOSED)
		return send_error(s, flags, EPIPE);
	if (st == KBQ_S_OPEN || s->listener)
		return -ENOTCONN;
	if (st == KBQ_S_ESTABLISHED &&
	    kbq_ring_free(kbp_region_ring(s->r), q->tx_tail, kbq_ld_acq(&q->tx_head)))
		return 0;
	if (nonblocking(s, flags))
		return kbp_stack_check_often(), -EAGAIN;
	kbq_st(&s->tx_asleep, 1);
	rc = kbp_wait(s, tx_ready, -1, 0, timeout_ms(&s->sndtimeo_ms));
	kbq_st(&s->tx_asleep, 0);
	return rc ?: 1;
}

/*
 * Enter s's tx ring to write it (kbq_abi.h, Trimming): count ourselves in
 * tx_busy unless kbstackd is giving the ring's pages back, which takes it
 * one system call; then wait, pausing, later yielding. False if kbstackd
 * died meanwhile (it may have died holding tx_trim): the caller's tx_wait
 * says so.
 */
static bool tx_enter(struct kbp_sock *s)
{
	struct kbq_sock *q = kbp_q(s);

	for (unsigned i = 0;; ) {
		kbq_add_sc(&q->tx_busy, 1);
		if (!kbq_ld_sc(&q->tx_trim)) /* after our add: pairs with kbstackd's store, load */
			return true;
		kbq_sub_sc(&q->tx_busy, 1);
		while (kbq_ld_acq(&q->tx_trim)) {
			if (++i < 128) {
				__builtin_ia32_pause();
				continue;
			}
			sched_yield();
			kbp_stack_check_often();
			if (kbp_gone(s))
				return false;
		}
	}
}

static void tx_leave(struct kbp_sock *s)
{
	kbq_sub_sc(&kbp_q(s)->tx_busy, 1); /* after tx_tail's release */
}

static ssize_t send_locked(struct kbp_sock *s, const struct iovec *iov, int iovcnt, int flags)
{
	struct kbq_sock *q = kbp_q(s);
	uint32_t ring = kbp_region_ring(s->r);
	size_t len = iov_len(iov, iovcnt), sent = 0;

	for (;;) {
		int rc = tx_wait(s, flags);
		uint32_t tail, n;

		if (rc == 1)
			continue;
		if (rc < 0)
			return sent ? (ssize_t)sent : rc;
		if (len == 0)
			return 0;
		if (!tx_enter(s))
			continue;
		tail = q->tx_tail;
		n = kbq_ring_free(ring, tail, kbq_ld_acq(&q->tx_head));
		if (n > len - sent)
			n = (uint32_t)(len - sent);
		ring_iov_copy(kbq_tx_data(s->r, s->slot, ring), ring, tail, iov, iovcnt, sent, n,
			      false);
		kbq_st_rel(&q->tx_tail, tail + n); /* pairs with kbstackd's acquire load */
		tx_leave(s);
		kbq_bell(s->r, s->slot);
		sent += n;
		if (sent == len)
			return (ssize_t)sent;
	}
}

ssize_t kbp_send(struct kbp_sock *s, const struct iovec *iov, int iovcnt, int flags)
{
	ssize_t rc;

	if (iovcnt < 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	if ((rc = tx_lock(s, flags)))
		return rc;
	rc = send_locked(s, iov, iovcnt, flags);
	kbp_unlock(&s->tx_lock);
	return rc;
}

static ssize_t sendfile_locked(struct kbp_sock *s, int in, off_t *off, size_t count)
{
	struct kbq_sock *q = kbp_q(s);
	uint32_t ring = kbp_region_ring(s->r);
	size_t sent = 0;

	while (sent < count) {
		int rc = tx_wait(s, 0), cancel;
		uint32_t tail, n;
		ssize_t got;

		if (rc == 1)
			continue;
		if (rc < 0)
			return sent ? (ssize_t)sent : rc;
		if (!tx_enter(s))
			continue;
		tail = q->tx_tail;
		n = kbq_ring_free(ring, tail, kbq_ld_acq(&q->tx_head));
		n = kbq_ring_contig(ring, tail, n); /* read() straight into the ring */
		if (n > count - sent)
			n = (uint32_t)(count - sent);
		/* read and pread are cancellation points: a thread cancelled
		 * inside would leave its count in tx_busy (kbstackd would never
		 * trim this ring again); the cancel waits for the next one. */
		pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel);
		if (off)
			got = pread(in, kbq_tx_data(s->r, s->slot, ring) + (tail & (ring - 1)), n, *off);
		else
			got = libc_read(in, kbq_tx_data(s->r, s->slot, ring) + (tail & (ring - 1)), n);
		pthread_setcancelstate(cancel, NULL);
		if (got <= 0) {
			int e = errno;

			tx_leave(s);
			if (got < 0 && !sent)
				return -e;
			break;
		}
		if (off)
			*off += got;
		kbq_st_rel(&q->tx_tail, tail + (uint32_t)got);
		tx_leave(s);
		kbq_bell(s->r, s->slot);
		sent += (size_t)got;
	}
	return (ssize_t)sent;
}

ssize_t kbp_sendfile(struct kbp_sock *s, int in, off_t *off, size_t count)
{
	ssize_t rc;

	if ((rc = tx_lock(s, 0)))
		return rc;
	rc = sendfile_locked(s, in, off, count);
	kbp_unlock(&s->tx_lock);
	return rc;
}

/* ---- close, shutdown, options, names ---------------------------------- */

int kbp_shutdown(struct kbp_sock *s, int how)
{
	uint32_t st = kbq_ld_acq(&kbp_q(s)->state);

	if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR)
		return -EINVAL;
	if (s->listener)
		return libc_shutdown(s->kfd, how) ? -errno : 0;
	if (kbp_gone(s) || (st != KBQ_S_ESTABLISHED && st != KBQ_S_CLOSED))
		return -ENOTCONN;
	if (how != SHUT_WR)
		kbq_st_sc(&s->shut_rd, true);
	if (how != SHUT_RD && !__atomic_exchange_n(&s->shut_wr, true, __ATOMIC_SEQ_CST)) {
		pthread_mutex_lock(&s->lock);
		req_post(s, KBQ_OP_SHUT_WR, 0, 0, 0);
		pthread_mutex_unlock(&s->lock);
	}
	/* As on Linux, a thread blocked in recv (send) on it returns 0 (EPIPE):
	 * its recheck after counting itself in waiters sees the flag, or this
	 * wake-up finds it counted (seq_cst both). */
	kbp_sock_wake(s);
	kbp_epoll_touch(s);
	return 0;
}

int kbp_getsockopt(int fd, struct kbp_sock *s, int level, int opt, void *v, socklen_t *l)
{
	if (level == SOL_SOCKET && opt == SO_ERROR && !s->listener && v && l &&
	    *l >= sizeof(int)) {
		struct kbq_sock *q = kbp_q(s);
		int e = 0;

		if (kbp_gone(s))
			e = gone_error_take(s);
		else if (kbq_ld_acq(&q->ev) & KBQ_EV_ERR)
			e = sock_error_take(s);
		*(int *)v = e;
		*l = sizeof(int);
		return 0;
	}
	return libc_getsockopt(fd, level, opt, v, l) ? -errno : 0;
}

static void setopt_post(struct kbp_sock *s, uint32_t opt, uint32_t val)
{
	pthread_mutex_lock(&s->lock);
	/* A request not yet taken is overwritten only after it was served. */
	while (!req_done(s) && !kbp_gone(s))
		kbp_wait(s, req_done, -1, 0, -1);
	if (!kbp_gone(s))
		req_post(s, KBQ_OP_SETOPT, opt, val, 0);
	pthread_mutex_unlock(&s->lock);
}

int kbp_setsockopt(int fd, struct kbp_sock *s, int level, int opt, const void *v, socklen_t l)
{
	int iv = (v && l >= sizeof(int)) ? *(const int *)v : 0;

	/* The kernel socket validates and keeps the value (getsockopt reads it). */
	if (libc_setsockopt(fd, level, opt, v, l))
		return -errno;
	if (level == SOL_SOCKET && (opt == SO_RCVTIMEO || opt == SO_SNDTIMEO) &&
	    l >= sizeof(struct timeval)) {
		const struct timeval *tv = v;
		uint32_t ms = (uint32_t)(tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000);

		kbq_st(opt == SO_RCVTIMEO ? &s->rcvtimeo_ms : &s->sndtimeo_ms, ms);
		return 0;
	}
	if (s->listener) {
		uint32_t bit = level == IPPROTO_TCP && opt == TCP_NODELAY ? KBQ_OPT_F_NODELAY :
			       level == SOL_SOCKET && opt == SO_KEEPALIVE ? KBQ_OPT_F_KEEPALIVE : 0;

		if (bit) {
			if (iv)
				__atomic_fetch_or(&s->inherit, bit, __ATOMIC_RELAXED);
			else
				__atomic_fetch_and(&s->inherit, ~bit, __ATOMIC_RELAXED);
			setopt_post(s, bit == KBQ_OPT_F_NODELAY ? KBQ_OPT_NODELAY : KBQ_OPT_KEEPALIVE,
				    iv != 0);
		}
		return 0;
	}
	if (level == IPPROTO_TCP && opt == TCP_NODELAY)
		setopt_post(s, KBQ_OPT_NODELAY, iv != 0);
	else if (level == SOL_SOCKET && opt == SO_KEEPALIVE)
		setopt_post(s, KBQ_OPT_KEEPALIVE, iv != 0);
	else if (level == IPPROTO_TCP && opt == TCP_KEEPIDLE)
		setopt_post(s, KBQ_OPT_KEEPIDLE, (uint32_t)iv);
	else if (level == IPPROTO_TCP && opt == TCP_KEEPINTVL)
		setopt_post(s, KBQ_OPT_KEEPINTVL, (uint32_t)iv);
	else if (level == IPPROTO_TCP && opt == TCP_KEEPCNT)
		setopt_post(s, KBQ_OPT_KEEPCNT, (uint32_t)iv);
	return 0;
}

int kbp_sockname(struct kbp_sock *s, bool peer, struct sockaddr *a, socklen_t *l)
{
	struct kbq_sock *q = kbp_q(s);
	uint32_t st = kbq_ld_acq(&q->state);

	if (!a || !l)
		return -EFAULT;
	if (peer && st != KBQ_S_ESTABLISHED)
		return -ENOTCONN;
	return peer ? addr_out(s->family, q->raddr, q->rport, a, l)
		    : addr_out(s->family, q->laddr, q->lport, a, l);
}

int kbp_fionread(struct kbp_sock *s)
{
	struct kbq_sock *q = kbp_q(s);

	return s->listener ? 0 : (int)(kbq_ld_acq(&q->rx_tail) - kbq_ld(&q->rx_head));
}

uint32_t kbp_sock_events(struct kbp_sock *s)
{
	struct kbq_sock *q = kbp_q(s);
	uint32_t st = kbq_ld_acq(&q->state), ev = kbq_ld_acq(&q->ev), e = 0;

	if (kbp_gone(s)) {
		/* A listener: once, to have accept called (it says
		 * ECONNABORTED); then the kernel's readiness alone. */
		if (s->listener)
			return kbq_ld_acq(&s->gone_told) ? 0 : EPOLLIN;
		e = EPOLLIN | EPOLLRDNORM | EPOLLOUT | EPOLLWRNORM | EPOLLRDHUP | EPOLLHUP;
		return kbq_ld_acq(&s->err_taken) ? e : e | EPOLLERR;
	}
	if (s->listener)
		return aq_ready(s) ? EPOLLIN : 0;
	if (kbq_ld_acq(&q->rx_tail) != kbq_ld(&q->rx_head) || (ev & (KBQ_EV_RDHUP | KBQ_EV_ERR)))
		e |= EPOLLIN | EPOLLRDNORM;
	if ((ev & KBQ_EV_RDHUP) || kbq_ld(&s->shut_rd)) /* (Linux: after SHUT_RD, readable) */
		e |= EPOLLIN | EPOLLRDNORM | EPOLLRDHUP;
	if (ev & KBQ_EV_ERR)
		e |= EPOLLERR | EPOLLHUP | EPOLLOUT;
	else if (st == KBQ_S_ESTABLISHED &&
		 (kbq_ld(&s->shut_wr) ||
		  kbq_ring_free(kbp_region_ring(s->r), kbq_ld(&q->tx_tail), kbq_ld_acq(&q->tx_head))))
		e |= EPOLLOUT | EPOLLWRNORM;
	if (st == KBQ_S_CLOSED || ((ev & KBQ_EV_RDHUP) && (ev & KBQ_EV_WRDONE)))
		e |= EPOLLHUP;
	return e;
}

void kbp_fork_child(bool has_row)
{
	static uint64_t refd[KBQ_HELD_WORDS]; /* one thread here: the child's only one */
	int fd, max = kbp_fd_end();
	static unsigned gen;
	uint32_t w, words = kbp.r ? kbq_slot_words(kbp_region_slots(kbp.r)) : 0;

	gen++;
	memset(refd, 0, words * sizeof(refd[0]));
	pthread_mutex_init(&kbp_sock_free_lock, NULL);
	for (fd = 0; fd < max; fd++) {
		struct kbp_sock *s = kbp_sock_get(fd);
		bool first;

		if (!s)
			continue;
		first = s->fork_gen != gen;
		s->fork_gen = gen;
		if (first) {
			/* Only this thread runs here: the calls other threads
			 * of the parent had in progress hold nothing in the
			 * child (their references and locks), its fds do. */
			s->refs = 0;
			s->tx_lock = s->tx_asleep = s->rx_lock = 0;
			pthread_mutex_init(&s->lock, NULL);
		}
		s->refs++;
		if (kbp_gone(s))
			continue; /* dead here as in the parent */
		if (!has_row) { /* nothing keeps the slot open for us */
			kbp_fd_take(fd);
			if (first)
				kbp_epoll_forget(s);
			continue; /* (the object stays: a few bytes per socket) */
		}
		if (s->r == kbp.r && s->slot / 64 < words)
			refd[s->slot / 64] |= 1ull << (s->slot % 64);
	}
	if (!has_row)
		return;
	/* Sockets another thread of the parent closed between the copy of
	 * its row and fork: ours to let go of, perhaps to close. */
	for (w = 0; w < words; w++) {
		uint64_t m = kbq_ld(&kbp.r->held[kbp_me()][w]) & ~refd[w];

		while (m) {
			struct kbp_sock tmp = { .slot = w * 64 + (uint32_t)__builtin_ctzll(m),
						.r = kbp.r, .att = kbp.epoch };
			uint32_t g;

			m &= m - 1;
			if (hold_drop(tmp.r, tmp.slot, &g))
				req_post(&tmp, KBQ_OP_CLOSE, 0, 0, 0);
		}
	}
}
