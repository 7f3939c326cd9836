/*
 * kbtest_restart — a threaded server that outlives its kbstackd
 * (tests/integration/restart.sh). Run under libkbpreload.so with
 * KB_ACCEL=listen:PORT1,PORT2:
 *
 *   kbtest_restart PORT1 PORT2 FLAGFILE [read]
 *
 * Listens on PORT1, says "ready", accepts two connections (c1, c2) and
 * then blocks four threads on them: read on c1, epoll_wait and poll on c2,
 * accept on the listener. Says "blocked"; the test kills kbstackd. Each
 * thread says what its call returned and when (CLOCK_MONOTONIC, ms):
 *   read rc=-1 errno=ECONNRESET at=T
 *   epoll n=1 events=0x... at=T
 *   poll n=1 revents=0x... at=T
 *   accept rc=-1 errno=ECONNABORTED at=T
 * then "after read=R write=W" (the next read and write on c1) and
 * "returned". The acceptor goes on accepting on the kernel path and
 * answers "kernel LINE" to one connection ("kernel served"). Once FLAGFILE
 * exists (the test started a new kbstackd), a new socket listens on PORT2
 * ("listening2") and answers "again LINE" to one connection ("served2").
 * With "read", only the reader blocks: nothing else watches kbstackd, and
 * its sleep on the socket's futex word must notice the death itself.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int c1, c2, lfd;

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static const char *err_name(int e)
{
	switch (e) {
	case ECONNRESET:   return "ECONNRESET";
	case ECONNABORTED: return "ECONNABORTED";
	case ENETDOWN:     return "ENETDOWN";
	case EPIPE:        return "EPIPE";
	case EINTR:        return "EINTR";
	case EAGAIN:       return "EAGAIN";
	case ENOTCONN:     return "ENOTCONN";
	default:           return strerror(e);
	}
}

static int listen_on(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16)) {
		perror("listen");
		exit(1);
	}
	return fd;
}

/* Read a line from fd, answer PREFIX LINE. */
static void answer(int fd, const char *prefix)
{
	char in[128], out[160];
	ssize_t n = read(fd, in, sizeof(in) - 1);

	if (n <= 0)
		return;
	in[n] = '\0';
	in[strcspn(in, "\r\n")] = '\0';
	n = snprintf(out, sizeof(out), "%s %s\n", prefix, in);
	(void)!write(fd, out, (size_t)n);
}

static void *reader(void *arg)
{
	char b[64];
	ssize_t n = read(c1, b, sizeof(b));
	int e = errno;

	(void)arg;
	printf("read rc=%zd errno=%s at=%lld\n", n, n < 0 ? err_name(e) : "0", now_ms());
	return NULL;
}

static void *epoller(void *arg)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = c2 }, out;
	int ep = epoll_create1(0), n;

	(void)arg;
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, c2, &ev)) {
		perror("epoll");
		exit(1);
	}
	n = epoll_wait(ep, &out, 1, -1);
	printf("epoll n=%d events=0x%x at=%lld\n", n, n > 0 ? out.events : 0, now_ms());
	return NULL;
}

static void *poller(void *arg)
{
	struct pollfd p = { c2, POLLIN, 0 };
	int n = poll(&p, 1, -1);

	(void)arg;
	printf("poll n=%d revents=0x%x at=%lld\n", n, (unsigned)p.revents, now_ms());
	return NULL;
}

/* The first accept is the one asleep when kbstackd dies; the listener then
 * goes on through the kernel: serve one connection from there. */
static void *acceptor(void *arg)
{
	int fd = accept(lfd, NULL, NULL), e = errno;

	(void)arg;
	printf("accept rc=%d errno=%s at=%lld\n", fd, fd < 0 ? err_name(e) : "0", now_ms());
	if (fd >= 0)
		close(fd);
	while ((fd = accept(lfd, NULL, NULL)) < 0 && (errno == ECONNABORTED || errno == EINTR))
		;
	if (fd < 0) {
		perror("accept (kernel)");
		return NULL;
	}
	answer(fd, "kernel");
	close(fd);
	printf("kernel served\n");
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t t[4];
	void *(*fn[4])(void *) = { reader, epoller, poller, acceptor };
	char b[8];
	int i, l2, fd;
	ssize_t r, w;

	int nt = argc == 5 && !strcmp(argv[4], "read") ? 1 : 4;

	if (argc != 4 && nt != 1) {
		fprintf(stderr, "usage: kbtest_restart PORT1 PORT2 FLAGFILE [read]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	lfd = listen_on(atoi(argv[1]));
	printf("ready\n");
	if ((c1 = accept(lfd, NULL, NULL)) < 0 || (c2 = accept(lfd, NULL, NULL)) < 0) {
		perror("accept");
		return 1;
	}
	for (i = 0; i < nt; i++)
		pthread_create(&t[i], NULL, fn[i], NULL);
	usleep(300 * 1000);
	printf("blocked\n");
	for (i = 0; i < nt && i < 3; i++)
		pthread_join(t[i], NULL);
	r = read(c1, b, sizeof(b));
	w = write(c1, "x", 1);
	printf("after read=%zd write=%s\n", r, w < 0 ? err_name(errno) : "ok");
	/* requests to a kbstackd that is gone: answered at once */
	i = 1;
	r = setsockopt(c1, IPPROTO_TCP, TCP_NODELAY, &i, sizeof(i));
	w = shutdown(c1, SHUT_WR);
	printf("after setsockopt=%zd shutdown=%s\n", r, w < 0 ? err_name(errno) : "ok");
	printf("returned\n");

	for (i = 0; i < 600 && access(argv[3], F_OK); i++)
		usleep(50 * 1000);
	l2 = listen_on(atoi(argv[2]));
	printf("listening2\n");
	if ((fd = accept(l2, NULL, NULL)) < 0) {
		perror("accept2");
		return 1;
	}
	answer(fd, "again");
	close(fd);
	printf("served2\n");
	if (nt == 4)
		pthread_join(t[3], NULL);
	close(l2);
	close(c1);
	close(c2);
	close(lfd);
	return 0;
}
