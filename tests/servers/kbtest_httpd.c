/*
 * kbtest_httpd — a small HTTP/1.1 file server written for kb's tests, in two
 * shapes real servers take:
 *   --mode epoll    one thread, non-blocking sockets, epoll (level-triggered,
 *                   or edge-triggered with --et), sendfile for bodies
 *   --mode threads  blocking accept, one thread per connection, read/write
 * --workers N (epoll): N processes forked after listen() share the listener,
 * as nginx's workers do; --max-conns M: a worker holding M connections
 * stops accepting until one closes (nginx's worker_connections); --backlog
 * N: listen()'s (511, nginx's default).
 * GET /NAME serves ROOT/NAME; keep-alive unless "Connection: close". Plain
 * libc sockets: under LD_PRELOAD=libkbpreload.so it is served by kbstackd.
 * Not a product: no request larger than one buffer, GET only.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

struct conn {
	int fd;
	char req[8192];
	size_t have;
	int file;          /* body being sent, -1 none */
	off_t off, len;
	char hdr[256];
	size_t hdr_len, hdr_off;
	bool close_after;
};

static const char *root = ".";
static bool use_sendfile = true;

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* Parse one request in c->req; set up c->hdr and c->file. 0 ok, -1 bad. */
static int request(struct conn *c, size_t end)
{
	char path[4096], name[1024];
	struct stat st;
	int status = 200;

	c->close_after = strcasestr(c->req, "\r\nConnection: close") != NULL;
	if (sscanf(c->req, "GET /%1023s HTTP/1.", name) != 1)
		return -1;
	if (strstr(name, ".."))
		return -1;
	snprintf(path, sizeof(path), "%s/%s", root, name);
	c->file = open(path, O_RDONLY | O_CLOEXEC);
	if (c->file < 0 || fstat(c->file, &st) || !S_ISREG(st.st_mode)) {
		if (c->file >= 0)
			close(c->file);
		c->file = -1;
		status = 404;
		st.st_size = 0;
	}
	c->off = 0;
	c->len = st.st_size;
	c->hdr_len = (size_t)snprintf(c->hdr, sizeof(c->hdr),
				      "HTTP/1.1 %d %s\r\nContent-Length: %lld\r\n%s\r\n", status,
				      status == 200 ? "OK" : "Not Found", (long long)c->len,
				      c->close_after ? "Connection: close\r\n" : "");
	c->hdr_off = 0;
	memmove(c->req, c->req + end, c->have - end);
	c->have -= end;
	return 0;
}

/* Send what is pending. 1 done, 0 would block, -1 error. */
static int respond(struct conn *c)
{
	while (c->hdr_off < c->hdr_len) {
		ssize_t n = write(c->fd, c->hdr + c->hdr_off, c->hdr_len - c->hdr_off);

		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		c->hdr_off += (size_t)n;
	}
	while (c->file >= 0 && c->off < c->len) {
		ssize_t n;

		if (use_sendfile) {
			n = sendfile(c->fd, c->file, &c->off, (size_t)(c->len - c->off));
		} else {
			char buf[65536];
			ssize_t r = pread(c->file, buf, sizeof(buf), c->off);

			if (r <= 0)
				return -1;
			n = write(c->fd, buf, (size_t)r);
			if (n > 0)
				c->off += n;
		}
		if (n < 0)
			return errno == EAGAIN ? 0 : -1;
		if (n == 0)
			return -1;
	}
	if (c->file >= 0)
		close(c->file);
	c->file = -1;
	return 1;
}

/* Read and serve as far as possible. 1 keep, 0 close. */
static int serve(struct conn *c)
{
	for (;;) {
		char *end;
		ssize_t n;
		int rc;

		if (c->file >= 0 || c->hdr_off < c->hdr_len) {
			rc = respond(c);
			if (rc <= 0)
				return rc == 0;
			if (c->close_after)
				return 0;
		}
		end = c->have ? memmem(c->req, c->have, "\r\n\r\n", 4) : NULL;
		if (end) {
			if (request(c, (size_t)(end - c->req) + 4))
				return 0;
			continue;
		}
		if (c->have == sizeof(c->req) - 1)
			return 0;
		n = read(c->fd, c->req + c->have, sizeof(c->req) - 1 - c->have);
		if (n <= 0)
			return n < 0 && errno == EAGAIN;
		c->have += (size_t)n;
		c->req[c->have] = '\0';
	}
}

static int backlog = 511; /* --backlog */

static int listen_on(int port, bool nonblock)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0), one = 1;

	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, backlog))
		die("bind/listen");
	return fd;
}

static void run_epoll(int port, bool et, int workers, long max_conns)
{
	int lfd = listen_on(port, true), ep, w;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL }, evs[64];
	long conns = 0;

	for (w = 1; w < workers; w++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (pid == 0) { /* a worker: goes when the first process goes */
			prctl(PR_SET_PDEATHSIG, SIGTERM);
			break;
		}
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev))
		die("epoll");
	if (w == workers) { /* the first process, once every worker exists */
		printf("ready\n");
		fflush(stdout);
	}
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1), i;

		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;

			if (!c) {
				int fd, one = 1;

				while (conns < max_conns &&
				       (fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					if (++conns == max_conns) /* full: the others accept */
						epoll_ctl(ep, EPOLL_CTL_DEL, lfd, NULL);
					c = calloc(1, sizeof(*c));
					c->fd = fd;
					c->file = -1;
					setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | (et ? EPOLLET : 0);
					if (!et)
						ev.events &= ~(uint32_t)EPOLLOUT;
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
				}
				continue;
			}
			if (serve(c)) {
				if (!et) { /* level-triggered: want EPOLLOUT only while sending */
					ev.events = EPOLLIN | EPOLLRDHUP |
						    ((c->file >= 0 || c->hdr_off < c->hdr_len) ? EPOLLOUT : 0);
					ev.data.ptr = c;
					epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				}
				continue;
			}
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			close(c->fd);
			if (c->file >= 0)
				close(c->file);
			free(c);
			if (conns-- == max_conns) { /* room again */
				ev.events = EPOLLIN;
				ev.data.ptr = NULL;
				epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
			}
		}
	}
}

static void *conn_thread(void *arg)
{
	struct conn *c = arg;

	while (serve(c))
		;
	close(c->fd);
	if (c->file >= 0)
		close(c->file);
	free(c);
	return NULL;
}

static void run_threads(int port)
{
	int lfd = listen_on(port, false);

	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		struct conn *c;
		pthread_t t;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept");
		}
		c = calloc(1, sizeof(*c));
		c->fd = fd;
		c->file = -1;
		if (pthread_create(&t, NULL, conn_thread, c))
			die("pthread_create");
		pthread_detach(t);
	}
}

int main(int argc, char **argv)
{
	const char *mode = "epoll";
	bool et = false;
	int port = 8080, workers = 1, i;
	long max_conns = -1;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--mode") && i + 1 < argc)
			mode = argv[++i];
		else if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--root") && i + 1 < argc)
			root = argv[++i];
		else if (!strcmp(argv[i], "--et"))
			et = true;
		else if (!strcmp(argv[i], "--workers") && i + 1 < argc && atoi(argv[i + 1]) > 0)
			workers = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--max-conns") && i + 1 < argc && atol(argv[i + 1]) > 0)
			max_conns = atol(argv[++i]);
		else if (!strcmp(argv[i], "--backlog") && i + 1 < argc && atoi(argv[i + 1]) > 0)
			backlog = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--no-sendfile"))
			use_sendfile = false;
		else {
			fprintf(stderr, "usage: kbtest_httpd [--mode epoll|threads] [--et] "
				"[--no-sendfile] [--port N] [--root DIR] [--workers N] "
				"[--max-conns M] [--backlog N]\n");
			return 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(mode, "threads"))
		run_threads(port);
	else
		run_epoll(port, et, workers, max_conns < 0 ? __LONG_MAX__ : max_conns);
	return 0;
}
