/*
 * kbtest_fork — servers that fork the way real ones do, for
 * integration.fork.* (tests/integration/fork.sh). Run under the preload in
 * the server namespace; the clients are in the script. Prints "ready" when
 * it serves; runs until killed unless said otherwise.
 *
 *   kbtest_fork accept_close PORT
 *       inetd / ForkingMixIn: accept, fork, the parent closes the accepted
 *       socket at once; the child reads one line and answers it, then exits
 *   kbtest_fork master PORT [exec]
 *       a master listens, forks a worker and closes its listener; the worker
 *       answers "worker PID" on every connection. With exec, the master
 *       closes it only 100 ms later (the worker runs by then) and the
 *       worker execs this program again ("served FD") on the inherited
 *       listener, which answers "exec PID" (kernel path only: README, exec)
 *
 * Test code: exits 1 with a message on anything unexpected.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void __attribute__((noreturn)) die(const char *what)
{
	fprintf(stderr, "kbtest_fork[%d]: %s: %s\n", (int)getpid(), what, strerror(errno));
	_exit(1);
}

static int listen_on(int port, int backlog)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, backlog))
		die("listen");
	return s;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

/* One line from fd (without its newline), at most n - 1 bytes. */
static int read_line(int fd, char *b, size_t n)
{
	size_t k = 0;

	while (k + 1 < n) {
		ssize_t r = read(fd, b + k, 1);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (b[k] == '\n')
			break;
		k++;
	}
	b[k] = '\0';
	return (int)k;
}

static void write_all(int fd, const char *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		b += w;
		n -= (size_t)w;
	}
}

/* Wait to be killed. */
static void __attribute__((noreturn)) idle(void)
{
	for (;;)
		pause();
}

static void reap_any(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* ---- accept_close ------------------------------------------------------ */

static int accept_close(int port)
{
	int l = listen_on(port, 64);

	say("ready\n");
	for (;;) {
		char line[256], reply[300];
		int c = accept(l, NULL, NULL);
		pid_t pid;

		if (c < 0) {
			if (errno == EINTR)
				continue;
			die("accept");
		}
		pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0) {
			int n;

			read_line(c, line, sizeof(line));
			n = snprintf(reply, sizeof(reply), "%s\n", line);
			write_all(c, reply, (size_t)n);
			close(c);
			_exit(0);
		}
		close(c); /* at once: the child holds it now */
		reap_any();
	}
}

/* ---- master ------------------------------------------------------------- */

static void serve_forever(int l, const char *who)
{
	char reply[64];
	int n = snprintf(reply, sizeof(reply), "%s %d\n", who, (int)getpid());

	for (;;) {
		char line[256];
		int c = accept(l, NULL, NULL);

		if (c < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("accept");
		}
		read_line(c, line, sizeof(line));
		write_all(c, reply, (size_t)n);
		close(c);
	}
}

static int master(int port, bool exec)
{
	int l = listen_on(port, 64);
	pid_t pid = fork();

	if (pid < 0)
		die("fork");
	if (pid == 0) {
		char fd[16];

		if (!exec) {
			say("ready worker %d\n", (int)getpid());
			serve_forever(l, "worker");
		}
		snprintf(fd, sizeof(fd), "%d", l);
		execl("/proc/self/exe", "kbtest_fork", "served", fd, (char *)NULL);
		die("exec");
	}
	if (exec)
		usleep(100 * 1000);
	close(l); /* the worker serves */
	say("master %d closed its listener\n", (int)getpid());
	idle();
}

/* The exec'd worker: the inherited listener is a kernel socket here, left
 * non-blocking by kb (README, exec), so it is made blocking first. */
static int served(int l)
{
	int fl = fcntl(l, F_GETFL);

	if (fl < 0 || fcntl(l, F_SETFL, fl & ~O_NONBLOCK))
		die("inherited listener");
	say("ready exec %d\n", (int)getpid());
	serve_forever(l, "exec");
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 3 && !strcmp(argv[1], "accept_close"))
		return accept_close(atoi(argv[2]));
	if (argc >= 3 && !strcmp(argv[1], "master"))
		return master(atoi(argv[2]), argc >= 4 && !strcmp(argv[3], "exec"));
	if (argc >= 3 && !strcmp(argv[1], "served"))
		return served(atoi(argv[2]));
	fprintf(stderr, "usage: kbtest_fork accept_close|master PORT ...\n");
	return 2;
}
