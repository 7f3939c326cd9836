/*
 * kbtest_shim.h — the application side of kbstackd's control protocol,
 * written plainly for test programs that speak it without
 * libkbpreload.so (kbtest_hostile, kbtest_attach). Exits on a broken
 * connection: these are tests.
 */
#ifndef KBTEST_SHIM_H
#define KBTEST_SHIM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "kbq_ctl.h"
#include "kbq_ring.h"

/* A connection to kbstackd's control socket, or -errno. */
static inline int kbt_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Send a hello (with fd_out if >= 0). With w, wait for the welcome and
 * return its rc (the fd that came along in *fd_in); without, return 0. */
static inline int kbt_hello(int fd, uint32_t op, uint32_t arg, int fd_out,
			    struct kbq_welcome *w, int *fd_in)
{
	struct kbq_hello h = { KBQ_HELLO_MAGIC, KBQ_ABI_VERSION, op, arg };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { &h, sizeof(h) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;

	if (fd_out >= 0) {
		m.msg_control = u.buf;
		m.msg_controllen = sizeof(u.buf);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd_out, sizeof(int));
	}
	if (sendmsg(fd, &m, MSG_NOSIGNAL) != sizeof(h))
		return -1000;
	if (!w)
		return 0;
	iov.iov_base = w;
	iov.iov_len = sizeof(*w);
	m.msg_control = u.buf;
	m.msg_controllen = sizeof(u.buf);
	if (fd_in)
		*fd_in = -1;
	if (recvmsg(fd, &m, 0) != sizeof(*w))
		return -1001;
	for (c = CMSG_FIRSTHDR(&m); c && fd_in; c = CMSG_NXTHDR(&m, c))
		if (c->cmsg_type == SCM_RIGHTS)
			memcpy(fd_in, CMSG_DATA(c), sizeof(int));
	return w->rc;
}

/* The PID hello, as the library sends it after fork: with the sender's
 * credentials attached (SCM_CREDENTIALS, checked by the kernel). */
static inline int kbt_hello_pid(int fd, uint32_t pid)
{
	struct kbq_hello h = { KBQ_HELLO_MAGIC, KBQ_ABI_VERSION, KBQ_HELLO_PID, pid };
	union kbq_cmsg_cred u;
	struct iovec iov = { &h, sizeof(h) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	kbq_cmsg_put_cred(&m, &u);
	return sendmsg(fd, &m, MSG_NOSIGNAL) == sizeof(h) ? 0 : -1;
}

/* A new context, as the library makes one: a wake socket pair (we keep
 * *wake, the end that would be slept on). The region, or NULL with *rc.
 * With memfd_out, the region's fd is kept there (else closed). */
static inline struct kbq_region *kbt_attach(const char *path, int *ctl, int *wake, int *rc,
					    int *memfd_out)
{
	struct kbq_welcome w;
	int sv[2], memfd = -1;
	void *r;

	*ctl = kbt_connect(path);
	if (*ctl < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
		*rc = -1002;
		return NULL;
	}
	*rc = kbt_hello(*ctl, KBQ_HELLO_NEW, 0, sv[1], &w, &memfd);
	close(sv[1]);
	*wake = sv[0];
	if (*rc || memfd < 0) {
		close(*ctl);
		close(sv[0]);
		return NULL;
	}
	r = mmap(NULL, w.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, memfd, 0);
	if (memfd_out)
		*memfd_out = memfd;
	else
		close(memfd);
	return r == MAP_FAILED ? NULL : r;
}

#endif /* KBTEST_SHIM_H */
