/*
 * fake_stack.c — kbstackd's part in the preload harness: one struct
 * kbs_ctx around the region the test maps, events and wake-ups by
 * kbs_wake.c, hellos answered by kbs_ctl.c (kbs_ctl_proc_new,
 * kbs_ctl_hello) in a thread that stands for kbstackd's loop. kbstackd is
 * single-threaded; here the test's threads play it too, so every call
 * into its code holds fs_lock.
 *
 * What differs from kbstackd, and why:
 *   - the context is built here, not by a NEW hello: the test maps the
 *     region itself (ordinary shared memory) and shapes its slots;
 *   - a process's hang-up only forgets its connection: the context, and
 *     the wake sockets registered in it, stay for the next test (kbstackd
 *     would close the process's sockets, or orphan the context);
 *   - no lwIP: slots are never given a lifecycle (kbs_life), only the
 *     identity kbs_wake_event needs.
 * Not for anything but test_preload_harness.c.
 */
#include "fake_stack.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kbs_ctx.h"

#define FS_PROCS 16 /* control connections at once: the test's process and forked children */

static pthread_mutex_t fs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kbs_ctx *fs_ctx;
static bool fs_held;            /* fs_wake_hold */
static int fs_lfd = -1;         /* the listening control socket */
static int fs_stopfd[2] = { -1, -1 };
static char fs_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static pthread_t fs_thread;
/* The control plane's thread only, after fs_start. */
static struct kbs_proc *fs_procs[FS_PROCS];

static void proc_gone(struct kbs_proc *p)
{
	pthread_mutex_lock(&fs_lock);
	if (p->ctx)
		p->ctx->nprocs--;
	pthread_mutex_unlock(&fs_lock);
	close(p->fd);
	free(p);
}

static void proc_add(struct kbs_proc *p)
{
	for (int i = 0; i < FS_PROCS; i++)
		if (!fs_procs[i]) {
			fs_procs[i] = p;
			return;
		}
	proc_gone(p);
}

static void ctl_accept(void)
{
	int fd;

	while ((fd = accept4(fs_lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		struct kbs_proc *p = kbs_ctl_proc_new(fd);

		if (p)
			proc_add(p);
		else
			close(fd);
	}
}

/* kbs_ctl_poll, with poll(2) over this file's connections. */
static void *ctl_main(void *arg)
{
	for (;;) {
		struct pollfd pf[2 + FS_PROCS];
		int i;

		pf[0] = (struct pollfd){ fs_stopfd[0], POLLIN, 0 };
		pf[1] = (struct pollfd){ fs_lfd, POLLIN, 0 };
		for (i = 0; i < FS_PROCS; i++)
			pf[2 + i] = (struct pollfd){ fs_procs[i] ? fs_procs[i]->fd : -1,
						     POLLIN | POLLRDHUP, 0 };
		if (poll(pf, 2 + FS_PROCS, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (pf[0].revents)
			return NULL;
		if (pf[1].revents)
			ctl_accept();
		for (i = 0; i < FS_PROCS; i++) {
			short ev = pf[2 + i].revents;
			bool keep;

			if (!ev)
				continue;
			pthread_mutex_lock(&fs_lock);
			keep = (ev & POLLIN) && kbs_ctl_hello(fs_procs[i]) == 0 &&
			       !(ev & (POLLHUP | POLLERR | POLLRDHUP));
			pthread_mutex_unlock(&fs_lock);
			if (!keep) {
				proc_gone(fs_procs[i]);
				fs_procs[i] = NULL;
			}
		}
	}
}

static struct kbs_ctx *ctx_new(struct kbq_region *r, int wake0)
{
	struct kbs_ctx *c = kbs_life_ctx_new(r->slots, r->ring);

	if (!c)
		return NULL;
	c->id = r->ctx;
	c->uid = getuid();
	c->r = r;
	c->memfd = -1;
	for (int i = 0; i < KBQ_NWAITERS; i++)
		c->wfd[i] = -1;
	/* What NEW's SCM_RIGHTS gives kbstackd: its own copy of the end. */
	c->wfd[0] = fcntl(wake0, F_DUPFD_CLOEXEC, 0);
	if (c->wfd[0] < 0) {
		kbs_life_ctx_free(c);
		return NULL;
	}
	return c;
}

static int listen_at(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), rc;

	if (fd < 0)
		return -errno;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

int fs_start(struct kbq_region *r, int wake0, const char *path, int *ctl)
{
	struct kbs_proc *p;
	int sv[2], rc;

	if (strlen(path) >= sizeof(fs_path))
		return -ENAMETOOLONG;
	fs_ctx = ctx_new(r, wake0);
	if (!fs_ctx)
		return -ENOMEM;
	/* The application's connection, as kbstackd's accept4 leaves its end:
	 * non-blocking; the application's blocks (ctl_connect). */
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		rc = -errno;
		goto err_ctx;
	}
	if (fcntl(sv[1], F_SETFL, O_NONBLOCK) || !(p = kbs_ctl_proc_new(sv[1]))) {
		rc = -errno;
		goto err_pair;
	}
	p->ctx = fs_ctx; /* its hello was NEW */
	fs_ctx->nprocs = 1;
	fs_procs[0] = p;
	rc = listen_at(path);
	if (rc < 0)
		goto err_proc;
	fs_lfd = rc;
	snprintf(fs_path, sizeof(fs_path), "%s", path);
	if (pipe2(fs_stopfd, O_CLOEXEC)) {
		rc = -errno;
		goto err_listen;
	}
	kbs_ctxs = fs_ctx;
	rc = -pthread_create(&fs_thread, NULL, ctl_main, NULL);
	if (rc)
		goto err_stop;
	*ctl = sv[0];
	return 0;

err_stop:
	kbs_ctxs = NULL;
	close(fs_stopfd[0]);
	close(fs_stopfd[1]);
err_listen:
	close(fs_lfd);
	unlink(fs_path);
	fs_lfd = -1;
err_proc:
	fs_procs[0] = NULL;
	free(p);
err_pair:
	close(sv[0]);
	close(sv[1]);
err_ctx:
	close(fs_ctx->wfd[0]);
	kbs_life_ctx_free(fs_ctx);
	fs_ctx = NULL;
	return rc;
}

void fs_stop(void)
{
	int i;

	if (!fs_ctx)
		return;
	(void)!write(fs_stopfd[1], "", 1);
	pthread_join(fs_thread, NULL);
	for (i = 0; i < FS_PROCS; i++)
		if (fs_procs[i]) {
			proc_gone(fs_procs[i]);
			fs_procs[i] = NULL;
		}
	close(fs_stopfd[0]);
	close(fs_stopfd[1]);
	close(fs_lfd);
	unlink(fs_path);
	fs_lfd = -1;
	kbs_ctxs = NULL;
	for (i = 0; i < KBQ_NWAITERS; i++)
		if (fs_ctx->wfd[i] >= 0)
			close(fs_ctx->wfd[i]);
	kbs_life_ctx_free(fs_ctx);
	fs_ctx = NULL;
}

void fs_event(uint32_t slot)
{
	pthread_mutex_lock(&fs_lock);
	kbs_wake_event(kbs_sock_at(fs_ctx, slot));
	if (!fs_held)
		kbs_ctxs_wake();
	pthread_mutex_unlock(&fs_lock);
}

void fs_wake_hold(bool hold)
{
	pthread_mutex_lock(&fs_lock);
	fs_held = hold;
	if (!hold)
		kbs_ctxs_wake();
	pthread_mutex_unlock(&fs_lock);
}

int fs_wfd(unsigned idx)
{
	int fd;

	if (idx >= KBQ_NWAITERS)
		return -1;
	pthread_mutex_lock(&fs_lock);
	fd = fs_ctx ? fs_ctx->wfd[idx] : -1;
	pthread_mutex_unlock(&fs_lock);
	return fd;
}
