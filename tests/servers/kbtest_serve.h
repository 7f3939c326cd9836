/*
 * kbtest_serve.h — what the line servers of the integration tests
 * (kbtest_fork, kbtest_around) share: die, say a line on stdout, listen on
 * the wildcard address, read and write request lines. Test code: exits 1
 * with a message on anything unexpected. Not for the library's own tests
 * of socket semantics (kbtest_semantics checks each result itself).
 */
#ifndef KBTEST_SERVE_H
#define KBTEST_SERVE_H

#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static inline void __attribute__((noreturn)) die(const char *what)
{
	fprintf(stderr, "%s[%d]: %s: %s\n", program_invocation_short_name, (int)getpid(), what,
		strerror(errno));
	_exit(1);
}

static inline int listen_on(int port, int backlog)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, backlog))
		die("listen");
	return s;
}

static inline void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fflush(stdout);
}

/* One line from fd (without its newline), at most n - 1 bytes, read a
 * byte at a time with rd (read, or a program's own way to read). */
static inline int read_line_with(ssize_t (*rd)(int, void *, size_t), int fd, char *b, size_t n)
{
	size_t k = 0;

	while (k + 1 < n) {
		ssize_t r = rd(fd, b + k, 1);

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

static inline int read_line(int fd, char *b, size_t n)
{
	return read_line_with(read, fd, b, n);
}

static inline void write_all(int fd, const char *b, size_t n)
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

#endif /* KBTEST_SERVE_H */
