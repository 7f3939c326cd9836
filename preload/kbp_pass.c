/*
 * kbp_pass.c — accelerated sockets sent to another process (sendmsg with
 * SCM_RIGHTS). What crosses is the fd's kernel socket. For a listener that
 * is a real listening socket: the receiver accepts on it the connections
 * that reach the kernel, and kbstackd's stay with the processes that hold
 * the listener here — let through, with a notice. For a connection it is
 * kb's unconnected placeholder: the receiver would wait on it for ever, so
 * the send is refused loudly and counted instead.
 * Not for the sending of data: kbp_tcp.c.
 */
#include "kbp.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

/* True the first time this process asks with said (a forked child is a
 * new process: it says it again). */
static bool first_in_process(pid_t *said)
{
	pid_t me = getpid();

	return __atomic_exchange_n(said, me, __ATOMIC_RELAXED) != me;
}

/*
 * EOPNOTSUPP: the operation — passing this kind of socket — is not one kb
 * can do, whatever the caller retries. Not EBADF or EINVAL, which the
 * kernel gives for a bad fd or message: the program's log then points at
 * kb, and no caller mistakes it for a passing condition (EAGAIN, EINTR,
 * ENOBUFS) and tries again.
 */
static int pass_refuse(const struct kbp_sock *s, int fd)
{
	static pid_t said;

	/* in the socket's own region (kbp.r moves on after a re-attach) */
	kbq_add(&s->r->fallback[KBQ_FB_PASS_REFUSED], 1);
	if (first_in_process(&said))
		kbp_log(0, "sendmsg: fd %d is a connection kbstackd serves; another process "
			"cannot serve it (it would get an unconnected socket), so nothing is "
			"sent (EOPNOTSUPP, counted in kbstat fd_pass_refused). Pass the "
			"listening socket, or let the worker accept its own connections", fd);
	return -EOPNOTSUPP;
}

static void pass_listener(int fd)
{
	static pid_t said;

	if (first_in_process(&said))
		kbp_log(1, "sendmsg: fd %d, a listener kbstackd serves, goes to another process "
			"as the kernel's listening socket (non-blocking): there it accepts only "
			"the connections that reach the kernel; kbstackd's stay with the "
			"processes that hold it here", fd);
}

int kbp_pass_check(const struct msghdr *m)
{
	struct msghdr *mh = (struct msghdr *)m; /* CMSG_NXTHDR's prototype */
	const char *end = (const char *)m->msg_control + m->msg_controllen;
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		size_t i, n;

		/* a header longer than the buffer: the kernel refuses the
		 * message (EINVAL), and we read no further than it would */
		if (c->cmsg_len > (size_t)(end - (const char *)c))
			break;
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			struct kbp_sock *s;
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (!(s = kbp_sock_get(fd)))
				continue;
			if (!s->listener)
				return pass_refuse(s, fd);
			pass_listener(fd);
		}
	}
	return 0;
}
