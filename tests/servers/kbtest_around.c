/*
 * kbtest_around — servers that reach their sockets around the usual calls,
 * for integration.around.* (tests/integration/around.sh). Run under the
 * preload in the server namespace; the clients are in the script. Prints
 * "ready" when it serves. Each answers a request line with a line.
 *
 *   kbtest_around spawn PORT
 *       accepts one connection and answers "before"; then, holding it and
 *       the listener, runs children that ran no fork handler: vfork() that
 *       closes both, close_range()s everything and _exits; vfork() that
 *       dup2()s over the connection and from it; _Fork() that closes both;
 *       posix_spawn() of /bin/true with file actions closing and
 *       duplicating both. Prints "children done", answers the next line
 *       on the same connection with "after", accepts a second connection
 *       and answers "second", closes everything, prints "done", waits
 *   kbtest_around syscall PORT N FILE
 *       N times: accepts, reads the request with syscall(SYS_read), answers
 *       it with syscall(SYS_write), closes with syscall(SYS_close), then
 *       opens FILE — the kernel gives it the connection's fd number — and
 *       reads it: prints "file ok FD" when the file's bytes came back,
 *       "file bad FD: WHAT" otherwise, and keeps it open (a close of the
 *       file would let go of a stale entry of kb's). Then "done", and waits
 *   kbtest_around pass PORT
 *       a master forks a worker that waits on a unix socket pair for fds.
 *       The master accepts a connection and sends it to the worker twice
 *       (SCM_RIGHTS): prints "refused ERRNO" for each failed send ("sent"
 *       if one goes), then answers the connection itself ("master") and
 *       closes it. It sends the listener: "passed listener" (or "listener
 *       refused ERRNO"), and stops accepting. The worker, given the
 *       listener, accepts on it (kernel path) and answers "worker PID"
 *
 * Test code: exits 1 with a message on anything unexpected.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kbq_ctl.h"
#include "kbtest_serve.h"

extern char **environ;
pid_t _Fork(void); /* glibc 2.34: fork without the fork handlers */

static void answer(int fd, const char *line)
{
	char b[256];

	write_all(fd, b, (size_t)snprintf(b, sizeof(b), "%s\n", line));
}

/* Read one request line (EOF: die), answer it with line. */
static void serve_one(int fd, const char *line)
{
	char b[256];

	if (read_line(fd, b, sizeof(b)) <= 0)
		die("read the request");
	answer(fd, line);
}

static void reap(pid_t p, const char *what)
{
	int st;

	if (p < 0)
		die(what);
	if (waitpid(p, &st, 0) != p || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "kbtest_around: %s: child did not exit 0\n", what);
		_exit(1);
	}
}

/* ---- spawn --------------------------------------------------------------- */

static int spawn(int port)
{
	int l = listen_on(port, 16), c, null = open("/dev/null", O_RDWR);
	posix_spawn_file_actions_t fa;
	char *argv[] = { "true", NULL };
	pid_t p;

	say("ready\n");
	if ((c = accept(l, NULL, NULL)) < 0)
		die("accept");
	serve_one(c, "before");

	/* CPython's subprocess: vfork, then close_range over everything */
	p = vfork();
	if (p == 0) {
		close(c);
		close(l);
		close_range(3, ~0u, 0);
		_exit(0);
	}
	reap(p, "vfork close");
	p = vfork();
	if (p == 0) {
		if (dup2(c, 0) != 0 || dup2(null, c) != c || dup3(null, l, 0) != l ||
		    fcntl(c, F_DUPFD, 100) < 0)
			_exit(1);
		_exit(0);
	}
	reap(p, "vfork dup2");
	p = _Fork();
	if (p == 0) {
		close(c);
		close(l);
		_exit(0);
	}
	reap(p, "_Fork close");
	if (posix_spawn_file_actions_init(&fa) ||
	    posix_spawn_file_actions_adddup2(&fa, c, 0) ||
	    posix_spawn_file_actions_addclose(&fa, c) ||
	    posix_spawn_file_actions_addclose(&fa, l) ||
	    posix_spawn_file_actions_addclosefrom_np(&fa, 3) ||
	    posix_spawn(&p, "/bin/true", &fa, NULL, argv, environ))
		die("posix_spawn");
	posix_spawn_file_actions_destroy(&fa);
	reap(p, "posix_spawn");
	say("children done\n");

	serve_one(c, "after");
	close(c);
	if ((c = accept(l, NULL, NULL)) < 0)
		die("accept the second connection");
	serve_one(c, "second");
	close(c);
	close(l);
	close(null);
	say("done\n");
	for (;;)
		pause();
}

/* ---- syscall ------------------------------------------------------------- */

static ssize_t sys_read(int fd, void *b, size_t n)
{
	return syscall(SYS_read, fd, b, n);
}

static int raw_syscall(int port, int n, const char *file)
{
	int l = listen_on(port, 16), i;
	char want[256], got[256];
	int wfd = open(file, O_RDONLY);
	ssize_t wn;

	if (wfd < 0 || (wn = read(wfd, want, sizeof(want))) <= 0)
		die("read the file");
	close(wfd);
	say("ready\n");
	for (i = 0; i < n; i++) {
		char b[256];
		int c = accept(l, NULL, NULL), k, f;
		ssize_t g;

		if (c < 0)
			die("accept");
		k = read_line_with(sys_read, c, b, sizeof(b) - 1);
		b[k++] = '\n';
		if (syscall(SYS_write, c, b, (size_t)k) != k)
			die("syscall(SYS_write)");
		if (syscall(SYS_close, c))
			die("syscall(SYS_close)");
		if ((f = open(file, O_RDONLY)) < 0)
			die("open");
		g = read(f, got, sizeof(got));
		if (f != c)
			say("file bad %d: the kernel gave fd %d, not the connection's\n", c, f);
		else if (g == wn && !memcmp(got, want, (size_t)wn))
			say("file ok %d\n", f);
		else
			say("file bad %d: read returned %zd (%s)\n", f, g,
			    g < 0 ? strerror(errno) : "other bytes");
		/* kept open: kb must not hold the slot through this fd's entry */
	}
	say("done\n");
	for (;;)
		pause();
}

/* ---- pass ---------------------------------------------------------------- */

/* Send fd over the unix socket u (SCM_RIGHTS): 0 or -1 with errno. */
static int send_fd(int u, int fd)
{
	union kbq_cmsg_fd cm;
	struct iovec iov = { "f", 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	kbq_cmsg_put_fd(&m, &cm, fd);
	return sendmsg(u, &m, 0) == 1 ? 0 : -1;
}

/* The fd the next message on u carries, or -1 (u closed). */
static int recv_fd(int u)
{
	union kbq_cmsg_fd cm;
	char x;
	struct iovec iov = { &x, 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	kbq_cmsg_want_fd(&m, &cm);
	return recvmsg(u, &m, 0) == 1 ? kbq_cmsg_get_fd(&m) : -1;
}

/* The worker: every fd it is given it serves as a listener (a connection
 * passed to it would be served as one: "worker-conn PID"). */
static void __attribute__((noreturn)) worker(int u)
{
	char line[64];
	int fd;

	snprintf(line, sizeof(line), "worker %d", (int)getpid());
	while ((fd = recv_fd(u)) >= 0) {
		struct pollfd p = { fd, POLLIN, 0 };
		int acc = 0, c;
		socklen_t tl = sizeof(acc);

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &tl) || !acc) {
			snprintf(line, sizeof(line), "worker-conn %d", (int)getpid());
			serve_one(fd, line);
			close(fd);
			continue;
		}
		/* the kernel's listener is non-blocking (kb's accept polls it) */
		if (poll(&p, 1, 20000) != 1 || (c = accept(fd, NULL, NULL)) < 0)
			die("worker: accept on the listener it was given");
		serve_one(c, line);
		close(c);
	}
	_exit(0);
}

static int pass(int port)
{
	int l = listen_on(port, 16), sv[2], c, i;
	pid_t w;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		die("socketpair");
	if ((w = fork()) < 0)
		die("fork");
	if (w == 0) {
		close(l);
		close(sv[0]);
		worker(sv[1]);
	}
	close(sv[1]);
	say("ready\n");
	if ((c = accept(l, NULL, NULL)) < 0)
		die("accept");
	for (i = 0; i < 2; i++) {
		if (send_fd(sv[0], c) == 0)
			say("sent\n");
		else
			say("refused %s\n", strerrorname_np(errno));
	}
	serve_one(c, "master");
	close(c);
	if (send_fd(sv[0], l) == 0)
		say("passed listener\n");
	else
		say("listener refused %s\n", strerrorname_np(errno));
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 3 && !strcmp(argv[1], "spawn"))
		return spawn(atoi(argv[2]));
	if (argc >= 5 && !strcmp(argv[1], "syscall"))
		return raw_syscall(atoi(argv[2]), atoi(argv[3]), argv[4]);
	if (argc >= 3 && !strcmp(argv[1], "pass"))
		return pass(atoi(argv[2]));
	fprintf(stderr, "usage: kbtest_around spawn PORT | syscall PORT N FILE | pass PORT\n");
	return 2;
}
