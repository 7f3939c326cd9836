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
 *   kbtest_fork prefork PORT GENERATIONS POOL
 *       a pre-fork server: says "ready" and waits for SIGUSR1 (so that
 *       kbstackd's counters can be read before any child exists), then
 *       POOL children at a time, GENERATIONS in all;
 *       each waits for the listener in epoll, accepts one connection,
 *       waits for its request with poll(), answers "gen G PID: LINE" and
 *       exits; the parent forks the next. Prints "done" once every child
 *       has exited, then waits to be killed
 *   kbtest_fork epoll_close PORT
 *       the parent's epoll instance (not its first waiter) holds the
 *       listener; a child closes its inherited copy of that epoll fd and
 *       makes an epoll instance of its own. The parent then says "waiting"
 *       and sleeps in epoll_wait on its instance (3 s at most): it prints
 *       "woken MONOTONIC_NS" when a connection wakes it, "timeout" if not
 *
 * Test code: exits 1 with a message on anything unexpected.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kbtest_serve.h"

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

/* ---- prefork ------------------------------------------------------------ */

/* One child: the listener in an epoll set of its own, one connection,
 * its request waited for with poll(), one answer, exit. */
static void prefork_child(int l, int gen)
{
	struct epoll_event e = { .events = EPOLLIN };
	int ep = epoll_create1(0), c = -1;
	char line[256], reply[300];
	struct pollfd p;

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &e))
		die("child epoll");
	while (c < 0) {
		if (epoll_wait(ep, &e, 1, -1) < 0 && errno != EINTR)
			die("child epoll_wait");
		c = accept(l, NULL, NULL); /* non-blocking: another child may win */
		if (c < 0 && errno != EAGAIN && errno != EINTR)
			die("child accept");
	}
	p = (struct pollfd){ c, POLLIN, 0 };
	if (poll(&p, 1, 5000) != 1)
		die("child poll");
	read_line(c, line, sizeof(line));
	write_all(c, reply, (size_t)snprintf(reply, sizeof(reply), "gen %d %d: %s\n", gen,
					     (int)getpid(), line));
	close(c);
	_exit(0);
}

static int prefork(int port, int gens, int pool)
{
	int l = listen_on(port, 128), forked = 0, alive = 0, sig;
	sigset_t go;

	sigemptyset(&go);
	sigaddset(&go, SIGUSR1);
	if (fcntl(l, F_SETFL, O_NONBLOCK) || sigprocmask(SIG_BLOCK, &go, NULL))
		die("listener O_NONBLOCK, SIGUSR1");
	say("ready\n");
	if (sigwait(&go, &sig))
		die("sigwait");
	while (forked < gens || alive > 0) {
		int st;

		while (alive < pool && forked < gens) {
			pid_t pid = fork();

			if (pid < 0)
				die("fork");
			if (pid == 0)
				prefork_child(l, forked);
			forked++;
			alive++;
		}
		if (wait(&st) < 0) {
			if (errno == EINTR)
				continue;
			die("wait");
		}
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			say("a child failed (status 0x%x)\n", st);
		alive--;
	}
	say("done %d\n", forked);
	idle();
}

/* ---- epoll_close -------------------------------------------------------- */

static long long mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int epoll_close(int port)
{
	struct epoll_event e = { .events = EPOLLIN };
	int l = listen_on(port, 16), first, ep, sync[2], n;
	pid_t pid;
	char b;

	/* The process's first waiter is special (registered at attach and
	 * kept): the instance under test is the second. */
	first = epoll_create1(0);
	ep = epoll_create1(0);
	if (first < 0 || ep < 0 || epoll_ctl(first, EPOLL_CTL_ADD, l, &e) ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, l, &e) || pipe(sync))
		die("epoll");
	pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		int own;

		close(ep); /* the parent's instance stays the parent's */
		own = epoll_create1(0);
		if (own < 0 || epoll_ctl(own, EPOLL_CTL_ADD, l, &e))
			die("child epoll");
		if (write(sync[1], "x", 1) != 1)
			die("sync");
		idle(); /* holds its own instance until killed */
	}
	if (read(sync[0], &b, 1) != 1)
		die("sync");
	say("ready\nwaiting\n");
	n = epoll_wait(ep, &e, 1, 3000);
	if (n == 1)
		say("woken %lld\n", mono_ns());
	else
		say("timeout\n");
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return n == 1 ? 0 : 1;
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
	if (argc >= 5 && !strcmp(argv[1], "prefork"))
		return prefork(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
	if (argc >= 3 && !strcmp(argv[1], "epoll_close"))
		return epoll_close(atoi(argv[2]));
	fprintf(stderr, "usage: kbtest_fork accept_close|master|prefork|epoll_close PORT ...\n");
	return 2;
}
