/*
 * kbs_ctl.c — kbstackd's control socket: applications attach here.
 *
 * A unix SOCK_SEQPACKET socket at KB_STACK. Each application process keeps
 * one connection open for its whole life; its hang-up is how kbstackd
 * learns the process died. Messages (shim/kbq_abi.h):
 *   NEW   a process without a context: kbstackd checks SO_PEERCRED, creates
 *         the region (memfd), keeps the eventfd that came along and answers
 *         with the region's fd.
 *   JOIN  a connection for a process about to be forked in context ctx:
 *         liveness only (the child inherits the mapping); allowed for the
 *         context's uid, or when either is root (a server started as root
 *         that drops privileges in its children).
 *   PID   on a joined connection: the child that took it over, by pid.
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
#include "kbs_ctx.h"

#define KBS_CTL_BACKLOG 128

static int ctl_lfd = -1;
static int ctl_ep = -1;
static char ctl_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static uint32_t ctl_stack_ip;
static uint32_t ctl_next_ctx = 1;
static unsigned ctl_orphans; /* contexts with no process, still sending */

int kbs_ctl_open(const char *path, uint32_t stack_ip)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	int fd, rc;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	snprintf(ctl_path, sizeof(ctl_path), "%s", path);
	ctl_stack_ip = stack_ip;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* The stats-file lock proved no other kbstackd owns this path, so a
	 * socket file there is left from a daemon that died. */
	unlink(path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || chmod(path, 0666) ||
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
	struct kbq_welcome w = { KBQ_HELLO_MAGIC, KBQ_ABI_VERSION, rc, ctx, size };
	struct iovec iov = { &w, sizeof(w) };
	union kbq_cmsg_fd u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	kbq_cmsg_put_fd(&m, &u, fd);
	/* A peer that does not read its one reply loses its attach. */
	(void)sendmsg(p->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static struct kbs_ctx *ctx_create(struct kbs_proc *p, int efd)
{
	struct kbs_ctx *c = calloc(1, sizeof(*c));
	struct kbq_region *r;
	int fd;

	if (!c)
		return NULL;
	fd = memfd_create("kb-region", MFD_CLOEXEC);
	if (fd < 0)
		goto err_free;
	if (ftruncate(fd, (off_t)KBQ_REGION_SIZE))
		goto err_close;
	r = mmap(NULL, KBQ_REGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r == MAP_FAILED)
		goto err_close;
	r->version = KBQ_ABI_VERSION;
	r->ctx = ctl_next_ctx++;
	r->size = KBQ_REGION_SIZE;
	r->stack_ip = ctl_stack_ip;
	__atomic_store_n(&r->magic, KBQ_REGION_MAGIC, __ATOMIC_RELEASE);
	c->id = r->ctx;
	c->uid = p->uid;
	c->r = r;
	c->memfd = fd;
	for (int i = 0; i < KBQ_NWAITERS; i++)
		c->wfd[i] = -1;
	c->wfd[0] = efd;
	kbs_life_ctx_init(c);
	c->next = kbs_ctxs;
	kbs_ctxs = c;
	return c;

err_close:
	close(fd);
err_free:
	free(c);
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
	munmap(c->r, KBQ_REGION_SIZE);
	close(c->memfd);
	for (int i = 0; i < KBQ_NWAITERS; i++)
		if (c->wfd[i] >= 0)
			close(c->wfd[i]);
	free(c);
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

static void proc_gone(struct kbs_proc *p)
{
	epoll_ctl(ctl_ep, EPOLL_CTL_DEL, p->fd, NULL);
	close(p->fd);
	if (p->ctx) {
		struct kbs_ctx *c = p->ctx;

		if (--c->nprocs)
			kbs_ctx_proc_gone(c, p->pid);
		else
			ctx_orphan(c);
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

/* 0: keep the connection; -1: drop it. */
static int proc_hello(struct kbs_proc *p)
{
	struct kbq_hello h;
	struct iovec iov = { &h, sizeof(h) };
	union kbq_cmsg_fd u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct kbs_ctx *c;
	ssize_t n;
	int efd;

	kbq_cmsg_want_fd(&m, &u);
	n = recvmsg(p->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return errno == EAGAIN ? 0 : -1;
	efd = kbq_cmsg_get_fd(&m);
	if (n == 0)
		goto drop;
	if (n != sizeof(h) || h.magic != KBQ_HELLO_MAGIC)
		goto drop;
	if (p->ctx && h.op == KBQ_HELLO_WAITER) {
		/* A thread or epoll instance of this context registers the
		 * eventfd that wakes it; a re-used entry replaces the old fd. */
		if (efd < 0 || h.arg >= KBQ_NWAITERS || kbq_fd_is(efd, "eventfd") != 1) {
			ctl_reply(p, -EINVAL, 0, 0, -1);
			goto drop;
		}
		if (p->ctx->wfd[h.arg] >= 0)
			close(p->ctx->wfd[h.arg]);
		p->ctx->wfd[h.arg] = efd;
		ctl_reply(p, 0, p->ctx->id, 0, -1);
		return 0;
	}
	if (p->ctx) {
		/* After fork the child takes over the connection its parent
		 * opened: from now on its death is this connection's hang-up. */
		if (h.op != KBQ_HELLO_PID || h.arg == 0 || h.arg > INT32_MAX)
			goto drop;
		p->pid = (pid_t)h.arg;
		if (efd >= 0)
			close(efd);
		return 0;
	}
	if (h.version != KBQ_ABI_VERSION) {
		ctl_reply(p, -EPROTO, 0, 0, -1);
		goto drop;
	}
	if (h.op == KBQ_HELLO_NEW) {
		if (efd < 0 || kbq_fd_is(efd, "eventfd") != 1) {
			ctl_reply(p, -EINVAL, 0, 0, -1);
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
		ctl_reply(p, 0, c->id, KBQ_REGION_SIZE, c->memfd);
		return 0;
	}
	if (h.op == KBQ_HELLO_JOIN) {
		c = ctx_find(h.arg);
		if (!c || !(p->uid == c->uid || p->uid == 0 || c->uid == 0)) {
			ctl_reply(p, c ? -EPERM : -ENOENT, 0, 0, -1);
			goto drop;
		}
		p->ctx = c;
		c->nprocs++;
		ctl_reply(p, 0, c->id, KBQ_REGION_SIZE, -1);
		if (efd >= 0)
			close(efd);
		return 0;
	}
drop:
	if (efd >= 0)
		close(efd);
	return -1;
}

static void ctl_accept(void)
{
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
		struct ucred cred;
		socklen_t len = sizeof(cred);
		struct kbs_proc *p;
		int fd = accept4(ctl_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		p = calloc(1, sizeof(*p));
		if (!p || getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
			free(p);
			close(fd);
			continue;
		}
		p->fd = fd;
		p->pid = cred.pid;
		p->uid = cred.uid;
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
		if ((evs[i].events & EPOLLIN) && proc_hello(p) == 0 &&
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
