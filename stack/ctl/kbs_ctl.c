/*
 * kbs_ctl.c — kbstackd's control socket: applications attach here.
 *
 * A unix SOCK_SEQPACKET socket at KB_STACK. Each application process keeps
 * one connection open for its whole life; its hang-up is how kbstackd
 * learns the process died. Messages (shim/kbq_abi.h):
 *   NEW   a process without a context: kbstackd creates the region (a
 *         memfd sealed against shrinking and growing), keeps the wake
 *         socket that came along and answers with the region's fd.
 *   JOIN  a connection for a process about to be forked in context ctx
 *         (the child inherits the mapping): a process index of its own,
 *         whose rows the parent fills before fork; only for the
 *         context's own uid.
 *   PID   on a joined connection: the child that took it over.
 *   WAITER a wake socket for waiter[arg].
 * Who a peer is comes from the kernel, never from a message: SO_PEERCRED
 * when it connects, and SCM_CREDENTIALS (SO_PASSCRED) on every message —
 * the PID message's process is the one that sent it. Who may connect at
 * all is the control socket's owner, group and mode (KB_GROUP). One uid
 * holds at most KB_UID_CONTEXTS contexts. A process's hang-up releases
 * its rows (kbq_abi.h, Holding): the sockets and waiter entries no other
 * process of the context holds are closed and freed.
 * Polled once a millisecond from the run loop, never blocking.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "kbq_ctl.h"
#include "kbq_hold.h"
#include "kbs_config.h"
#include "kbs_ctx.h"
#include "kbs_stats.h"

#define KBS_CTL_BACKLOG 128

static int ctl_lfd = -1;
static int ctl_ep = -1;
static char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static uint32_t ctl_stack_ip;
static uint32_t ctl_next_ctx = 1;
static unsigned ctl_orphans; /* contexts with no process, still sending */
static unsigned ctl_uid_contexts = KBS_UID_CONTEXTS_DEFAULT;
static unsigned ctl_slots = KBQ_SLOTS_DEFAULT;
static uint32_t ctl_ring = KBQ_RING_DEFAULT;

int kbs_ctl_open(const struct kbs_config *cfg)
{
	const char *path = cfg->stack;
	uint32_t stack_ip = cfg->ip;
	mode_t mode = cfg->has_group ? 0660 : 0600;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	int fd, rc;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	snprintf(ctl_path, sizeof(ctl_path), "%s", path);
	ctl_stack_ip = stack_ip;
	ctl_uid_contexts = cfg->uid_contexts;
	ctl_slots = cfg->slots;
	ctl_ring = cfg->ring;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* The stats-file lock proved no other kbstackd owns this path, so a
	 * socket file there is left from a daemon that died. */
	unlink(path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    (cfg->has_group && chown(path, (uid_t)-1, cfg->group)) || chmod(path, mode) ||
	    listen(fd, KBS_CTL_BACKLOG)) {
		rc = -errno;
		goto err_close;
	}
	ctl_ep = epoll_create1(EPOLL_CLOEXEC);
	if (ctl_ep < 0 || epoll_ctl(ctl_ep, EPOLL_CTL_ADD, fd, &ev)) {
		rc = -errno;
		goto err_close;
	}
	ctl_lfd = fd;
	return 0;

err_close:
	if (ctl_ep >= 0)
		close(ctl_ep);
	ctl_ep = -1;
	close(fd);
	unlink(path);
	return rc;
}

static void ctl_reply(struct kbs_proc *p, int rc, uint32_t ctx, uint64_t size, int fd)
{
	struct kbq_welcome w = { KBQ_HELLO_MAGIC, KBQ_ABI_VERSION, rc, ctx, size, p->idx, 0 };
	struct iovec iov = { &w, sizeof(w) };
	union kbq_cmsg_fd u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	kbq_cmsg_put_fd(&m, &u, fd);
	/* A peer that does not read its one reply loses its attach. */
	(void)sendmsg(p->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Whether process pid may bind ports below 1024: CAP_NET_BIND_SERVICE in
 * its effective set, as the kernel's bind() requires. pid is the peer of a
 * live connection, read while it is connected. */
static bool proc_may_bind_low(pid_t pid)
{
	char path[64], line[128];
	unsigned long long caps = 0;
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1) {
			found = true;
			break;
		}
	fclose(f);
	return found && (caps & (1ull << 10)); /* CAP_NET_BIND_SERVICE */
}

static unsigned ctx_count_uid(uid_t uid)
{
	struct kbs_ctx *c;
	unsigned n = 0;

	for (c = kbs_ctxs; c; c = c->next)
		n += c->uid == uid;
	return n;
}

/*
 * The lowest free process index of c, now in use, or -1 (KBQ_NPROCS in
 * use). Its rows start empty; it is published before the answer that
 * carries it, so a process dropping a holding after the parent has filled
 * the child's row also looks at that row.
 */
static int proc_index_take(struct kbs_ctx *c)
{
	uint32_t k, w, idx;
	uint64_t bit;

	for (k = 0; k < KBQ_NPROCS / 64 && !~c->procs[k]; k++)
		;
	if (k == KBQ_NPROCS / 64)
		return -1;
	idx = k * 64 + (uint32_t)__builtin_ctzll(~c->procs[k]);
	bit = 1ull << (idx % 64);
	for (w = 0; w < c->nslots / 64; w++)
		kbq_st(&c->r->held[idx][w], 0);
	for (w = 0; w < KBQ_WHELD_WORDS; w++)
		kbq_st(&c->r->wheld[idx][w], 0);
	c->procs[k] |= bit;
	kbq_or_sc(&c->r->procs[k], bit);
	return (int)idx;
}

static void proc_index_put(struct kbs_ctx *c, uint32_t idx)
{
	uint64_t bit = 1ull << (idx % 64);

	c->procs[idx / 64] &= ~bit;
	kbq_and_sc(&c->r->procs[idx / 64], ~bit);
}

static struct kbs_ctx *ctx_create(struct kbs_proc *p, int wfd)
{
	size_t size = kbq_region_size(ctl_slots, ctl_ring);
	struct kbs_ctx *c = kbs_life_ctx_new(ctl_slots, ctl_ring);
	struct kbq_region *r;
	int fd;

	if (!c)
		return NULL;
	fd = memfd_create("kb-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		goto err_free;
	/* Sealed: the application maps it read-write but can never shrink it
	 * under kbstackd (a SIGBUS on the stack core) nor grow it. */
	if (ftruncate(fd, (off_t)size) ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
		goto err_close;
	r = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (r == MAP_FAILED)
		goto err_close;
	r->version = KBQ_ABI_VERSION;
	r->ctx = ctl_next_ctx++;
	r->size = size;
	r->stack_ip = ctl_stack_ip;
	r->slots = ctl_slots;
	r->ring = ctl_ring;
	__atomic_store_n(&r->magic, KBQ_REGION_MAGIC, __ATOMIC_RELEASE);
	c->id = r->ctx;
	c->uid = p->uid;
	c->may_bind_low = proc_may_bind_low(p->pid);
	c->r = r;
	c->memfd = fd;
	for (int i = 0; i < KBQ_NWAITERS; i++)
		c->wfd[i] = -1;
	c->wfd[0] = wfd;
	p->idx = (uint32_t)proc_index_take(c); /* 0 */
	c->next = kbs_ctxs;
	kbs_ctxs = c;
	return c;

err_close:
	close(fd);
err_free:
	kbs_life_ctx_free(c);
	return NULL;
}

static void ctx_destroy(struct kbs_ctx *c)
{
	struct kbs_ctx **pp;

	kbs_ctx_reset_all(c);
	for (pp = &kbs_ctxs; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	munmap(c->r, kbq_region_size(c->nslots, c->ring));
	close(c->memfd);
	for (int i = 0; i < KBQ_NWAITERS; i++)
		if (c->wfd[i] >= 0)
			close(c->wfd[i]);
	kbs_life_ctx_free(c);
}

/*
 * The context's last process is gone. Its sockets are closed as that
 * process's exit would close them; the region stays mapped (lwIP sends
 * straight from its tx rings) until every connection has finished.
 */
static void ctx_orphan(struct kbs_ctx *c)
{
	for (int i = 0; i < KBQ_NWAITERS; i++)
		if (c->wfd[i] >= 0) {
			close(c->wfd[i]);
			c->wfd[i] = -1;
		}
	if (kbs_ctx_close_all(c)) {
		ctx_destroy(c);
		return;
	}
	c->orphan = true;
	ctl_orphans++;
}

/*
 * Process index idx of c is gone: the waiter entries no other process
 * holds are free again (used moved on from the value it held them at,
 * kbq_abi.h, Holding) and their wake sockets closed. Waiter 0 is the
 * context's own, registered at NEW and kept to the end.
 */
static void ctx_waiters_gone(struct kbs_ctx *c, uint32_t idx)
{
	struct kbq_region *r = c->r;
	uint64_t gone[KBQ_WHELD_WORDS], others[KBQ_WHELD_WORDS];
	uint32_t used[KBQ_NWAITERS], i, w;

	/* Read before its bits go: while idx holds an entry, nobody else may
	 * release it, so the value is the one of its claim. */
	for (i = 0; i < KBQ_NWAITERS; i++)
		used[i] = kbq_ld(&r->waiter[i].used);
	for (w = 0; w < KBQ_WHELD_WORDS; w++)
		gone[w] = kbq_xchg_sc(&r->wheld[idx][w], 0);
	kbq_held_union(&r->wheld[0][0], KBQ_WHELD_WORDS, 0, KBQ_WHELD_WORDS, c->procs, idx, others);
	gone[0] &= ~1ull;
	for (w = 0; w < KBQ_WHELD_WORDS; w++) {
		uint64_t m = gone[w] & ~others[w];

		while (m) {
			uint32_t v, sl;

			i = w * 64 + (uint32_t)__builtin_ctzll(m);
			m &= m - 1;
			v = used[i];
			if (!(v & 1) || !kbq_cas(&r->waiter[i].used, &v, v + 1))
				continue; /* a live process released it first */
			/* Nobody sleeps on it before its next claim is registered,
			 * which kbstackd answers only after this: a count the dead
			 * process left is dropped from the sum. */
			sl = kbq_xchg_sc(&r->waiter[i].sleeping, 0);
			if (sl)
				kbq_sub_sc(&r->sleepers, sl);
			if (c->wfd[i] >= 0)
				close(c->wfd[i]);
			c->wfd[i] = -1;
		}
	}
}

static void proc_gone(struct kbs_proc *p)
{
	epoll_ctl(ctl_ep, EPOLL_CTL_DEL, p->fd, NULL);
	close(p->fd);
	if (p->ctx) {
		struct kbs_ctx *c = p->ctx;

		if (--c->nprocs) {
			kbs_ctx_proc_gone(c, p->idx);
			ctx_waiters_gone(c, p->idx);
			proc_index_put(c, p->idx);
		} else {
			ctx_orphan(c);
		}
	}
	free(p);
}

/* Orphaned contexts whose connections have all finished go. */
static void ctx_reap(void)
{
	struct kbs_ctx *c, *next;

	if (!ctl_orphans)
		return;
	for (c = kbs_ctxs; c; c = next) {
		next = c->next;
		if (c->orphan && kbs_ctx_idle(c)) {
			ctl_orphans--;
			ctx_destroy(c);
		}
	}
}

static struct kbs_ctx *ctx_find(uint32_t id)
{
	struct kbs_ctx *c;

	for (c = kbs_ctxs; c; c = c->next)
		if (c->id == id && !c->orphan)
			return c;
	return NULL;
}

/* A wake socket an application hands over: one end of an AF_UNIX stream
 * pair it made. kbstackd only ever sends one byte on it with MSG_DONTWAIT,
 * so whatever the application does with the pair, a wake-up cannot block
 * the stack loop; and a byte sent there reaches only a peer the
 * application itself connected to, as if it had sent it (no confused
 * deputy: it may belong to a process that changed uid since attaching,
 * as Apache's children do). */
static bool wake_sock_ok(int fd)
{
	int v;
	socklen_t vl = sizeof(v);

	if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &vl) || v != AF_UNIX)
		return false;
	vl = sizeof(v);
	return getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl) == 0 && v == SOCK_STREAM;
}

/* A hello's control data: an fd riding along, and the sender's
 * credentials as the kernel saw them (SO_PASSCRED). */
union ctl_cmsg {
	char buf[CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(struct ucred))];
	struct cmsghdr align;
};

static void ctl_cmsg_parse(struct msghdr *m, int *fd, struct ucred *cred, bool *has_cred)
{
	struct cmsghdr *c;

	*fd = -1;
	*has_cred = false;
	for (c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_RIGHTS && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
			size_t i, n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (i = 0; i < n; i++) { /* keep the first, close the rest */
				int f;

				memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (*fd < 0)
					*fd = f;
				else
					close(f);
			}
		} else if (c->cmsg_type == SCM_CREDENTIALS &&
			   c->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
			memcpy(cred, CMSG_DATA(c), sizeof(*cred));
			*has_cred = true;
		}
	}
}

int kbs_ctl_hello(struct kbs_proc *p)
{
	struct kbq_hello h;
	struct iovec iov = { &h, sizeof(h) };
	union ctl_cmsg u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf) };
	struct ucred cred;
	bool has_cred;
	struct kbs_ctx *c;
	ssize_t n;
	int efd;

	n = recvmsg(p->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN ? 0 : -1;
	ctl_cmsg_parse(&m, &efd, &cred, &has_cred);
	if (n == 0 || (m.msg_flags & MSG_CTRUNC))
		goto drop;
	if (n != sizeof(h) || h.magic != KBQ_HELLO_MAGIC || !has_cred)
		goto drop;
	if (p->ctx && h.op == KBQ_HELLO_WAITER) {
		/* A thread or epoll instance of this context registers the
		 * socket that wakes it; a re-used entry replaces the old one. */
		if (h.arg >= KBQ_NWAITERS || !wake_sock_ok(efd)) {
			/* Refused, but the process lives on: its hang-up is how
			 * kbstackd learns of its death, and would release its rows
			 * while it still uses them. */
			ctl_reply(p, -EINVAL, 0, 0, -1);
			if (efd >= 0)
				close(efd);
			return 0;
		}
		if (p->ctx->wfd[h.arg] >= 0)
			close(p->ctx->wfd[h.arg]);
		p->ctx->wfd[h.arg] = efd;
		ctl_reply(p, 0, p->ctx->id, 0, -1);
		return 0;
	}
	if (p->ctx) {
		/* After fork the child takes over the connection its parent
		 * opened: from now on its death is this connection's hang-up.
		 * The child is whoever sent this, as the kernel says. */
		if (h.op != KBQ_HELLO_PID || cred.uid != p->uid || cred.pid <= 0)
			goto drop;
		p->pid = cred.pid;
		if (efd >= 0)
			close(efd);
		return 0;
	}
	if (h.version != KBQ_ABI_VERSION) {
		ctl_reply(p, -EPROTO, 0, 0, -1);
		goto drop;
	}
	if (h.op == KBQ_HELLO_NEW) {
		if (!wake_sock_ok(efd)) {
			ctl_reply(p, -EINVAL, 0, 0, -1);
			goto drop;
		}
		if (ctx_count_uid(p->uid) >= ctl_uid_contexts) {
			KBS_STAT_ADD(ctx_refused_limit, 1);
			ctl_reply(p, -EUSERS, 0, 0, -1);
			goto drop;
		}
		c = ctx_create(p, efd);
		if (!c) {
			ctl_reply(p, -ENOMEM, 0, 0, -1);
			goto drop;
		}
		efd = -1; /* the context owns it now */
		p->ctx = c;
		c->nprocs = 1;
		ctl_reply(p, 0, c->id, kbq_region_size(c->nslots, c->ring), c->memfd);
		return 0;
	}
	if (h.op == KBQ_HELLO_JOIN) {
		int idx;

		c = ctx_find(h.arg);
		if (!c || p->uid != c->uid) {
			if (c)
				KBS_STAT_ADD(ctl_refused_uid, 1);
			ctl_reply(p, c ? -EPERM : -ENOENT, 0, 0, -1);
			goto drop;
		}
		idx = proc_index_take(c);
		if (idx < 0) { /* as fork() at a process limit */
			KBS_STAT_ADD(ctl_refused_procs, 1);
			ctl_reply(p, -EAGAIN, 0, 0, -1);
			goto drop;
		}
		p->idx = (uint32_t)idx;
		p->ctx = c;
		c->nprocs++;
		ctl_reply(p, 0, c->id, kbq_region_size(c->nslots, c->ring), -1);
		if (efd >= 0)
			close(efd);
		return 0;
	}
drop:
	if (efd >= 0)
		close(efd);
	return -1;
}

struct kbs_proc *kbs_ctl_proc_new(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct kbs_proc *p = calloc(1, sizeof(*p));

	if (!p || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
		free(p);
		return NULL;
	}
	/* Credentials on every message from now on (SCM_CREDENTIALS). */
	if (setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &(int){ 1 }, sizeof(int))) {
		free(p);
		return NULL;
	}
	p->fd = fd;
	p->pid = cred.pid;
	p->uid = cred.uid;
	return p;
}

static void ctl_accept(void)
{
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
		struct kbs_proc *p;
		int fd = accept4(ctl_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		p = kbs_ctl_proc_new(fd);
		if (!p) {
			close(fd);
			continue;
		}
		ev.data.ptr = p;
		if (epoll_ctl(ctl_ep, EPOLL_CTL_ADD, fd, &ev)) {
			free(p);
			close(fd);
		}
	}
}

void kbs_ctl_poll(void)
{
	struct epoll_event evs[32];
	int i, n;

	if (ctl_ep < 0)
		return;
	ctx_reap();
	n = epoll_wait(ctl_ep, evs, 32, 0);
	for (i = 0; i < n; i++) {
		struct kbs_proc *p = evs[i].data.ptr;

		if (!p) {
			ctl_accept();
			continue;
		}
		if ((evs[i].events & EPOLLIN) && kbs_ctl_hello(p) == 0 &&
		    !(evs[i].events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
			continue;
		proc_gone(p);
	}
}

void kbs_ctl_close(void)
{
	while (kbs_ctxs)
		ctx_destroy(kbs_ctxs);
	if (ctl_ep >= 0)
		close(ctl_ep);
	if (ctl_lfd >= 0) {
		close(ctl_lfd);
		unlink(ctl_path);
	}
	ctl_ep = ctl_lfd = -1;
	ctl_orphans = 0;
}
