/*
 * kbq_ctl.h — helpers for the control socket, used by both sides: which
 * paths it may have (KB_STACK), an fd riding along a message (SCM_RIGHTS)
 * and what kind of anonymous inode an fd is. No I/O of their own: callers send and receive with their own
 * sendmsg/recvmsg (the preload library must use libc's).
 */
#ifndef KBQ_CTL_H
#define KBQ_CTL_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* KB_STACK's longest value + 1: sun_path holds 108, and kbstackd's
 * counters live beside the socket at <path>.stats. */
#define KBQ_STACK_PATH_MAX 100

/* A KB_STACK both sides accept: absolute, not a directory, short enough. */
static inline bool kbq_stack_path_ok(const char *v)
{
	size_t n = strlen(v);

	return v[0] == '/' && n < KBQ_STACK_PATH_MAX && v[n - 1] != '/';
}

/* Room for one fd in a message's control data. */
union kbq_cmsg_fd {
	char buf[CMSG_SPACE(sizeof(int))];
	struct cmsghdr align;
};

/* Attach fd to message m (fd < 0: nothing attached). */
static inline void kbq_cmsg_put_fd(struct msghdr *m, union kbq_cmsg_fd *u, int fd)
{
	struct cmsghdr *c;

	if (fd < 0) {
		m->msg_control = NULL;
		m->msg_controllen = 0;
		return;
	}
	m->msg_control = u->buf;
	m->msg_controllen = sizeof(u->buf);
	c = CMSG_FIRSTHDR(m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
}

/* Room for the sender's credentials in a message's control data. */
union kbq_cmsg_cred {
	char buf[CMSG_SPACE(sizeof(struct ucred))];
	struct cmsghdr align;
};

/* Attach the calling process's credentials to m (SCM_CREDENTIALS: the
 * kernel checks they are the sender's, so the receiver may believe them). */
static inline void kbq_cmsg_put_cred(struct msghdr *m, union kbq_cmsg_cred *u)
{
	struct ucred cr = { getpid(), getuid(), getgid() };
	struct cmsghdr *c;

	m->msg_control = u->buf;
	m->msg_controllen = sizeof(u->buf);
	c = CMSG_FIRSTHDR(m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_CREDENTIALS;
	c->cmsg_len = CMSG_LEN(sizeof(cr));
	memcpy(CMSG_DATA(c), &cr, sizeof(cr));
}

/* Prepare m to receive one fd into u. */
static inline void kbq_cmsg_want_fd(struct msghdr *m, union kbq_cmsg_fd *u)
{
	m->msg_control = u->buf;
	m->msg_controllen = sizeof(u->buf);
}

/* The fd a received message carried, or -1. */
static inline int kbq_cmsg_get_fd(struct msghdr *m)
{
	struct cmsghdr *c;
	int fd = -1;

	for (c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)) && fd < 0)
			memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/* 1 if fd is the anonymous inode named kind ("eventfd", "eventpoll"), 0 if
 * it is something else, -1 if it is not an open fd. */
static inline int kbq_fd_is(int fd, const char *kind)
{
	char link[64], target[64], want[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return -1;
	target[n] = '\0';
	snprintf(want, sizeof(want), "anon_inode:[%s]", kind);
	return strcmp(target, want) == 0;
}

#endif /* KBQ_CTL_H */
