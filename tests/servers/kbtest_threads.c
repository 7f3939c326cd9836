/*
 * kbtest_threads — two threads on one accepted socket, for
 * integration.threads (tests/integration/threads.sh). The server runs under
 * the preload in the server namespace; the client is this program too,
 * without it, in the client namespace (C: it checks megabytes byte by byte).
 *
 *   kbtest_threads serve PORT
 *       listens on PORT, prints "ready", then serves connections one at a
 *       time until killed. The first byte from the client says what to do:
 *       'W': two threads write RECS records each to the socket at once
 *            (writev, write and send, 0 B to 300 KiB, a header naming
 *            writer, number and length), then the socket is closed;
 *       'R': a 64-bit length N follows, then N bytes of the pattern; two
 *            threads read the socket at once, in reads of many sizes, until
 *            end of file; the server then checks that the pieces the two
 *            got tile the stream exactly (none lost, none read twice, each
 *            read one contiguous run) and answers "ok N" or "bad …".
 *   kbtest_threads write2 ADDR PORT
 *       client of 'W': reads to end of file, checks every record is whole
 *       and each writer's come in order, all there: prints "ok RECORDS BYTES"
 *   kbtest_threads read2 ADDR PORT BYTES
 *       client of 'R': sends BYTES of the pattern, shuts its side down, prints
 *       the server's answer
 * Exit status 0 only when the check passed. Test code: exits 1 with a
 * message on anything unexpected; a 20 s receive timeout bounds a client.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../lib/kbt_records.h"

#define RECS 40u

static void die(const char *what)
{
	fprintf(stderr, "kbtest_threads: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint32_t rec_len(uint32_t w, uint32_t seq)
{
	static const uint32_t sizes[] = { 0, 1, 17, 1460, 4000, 20000, 65536, 131071, 300000 };

	return sizes[(seq * 5 + w * 3) % (sizeof(sizes) / sizeof(sizes[0]))];
}

static bool read_full(int fd, void *b, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, (char *)b + got, n - got);

		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

/* ---- 'W': two writers ---- */

struct wr {
	pthread_t t;
	int fd;
	uint32_t id;
	int bad;
};

static void *writer_main(void *arg)
{
	struct wr *w = arg;
	uint32_t seq;

	for (seq = 0; seq < RECS; seq++) {
		uint32_t len = rec_len(w->id, seq);
		uint8_t *rec = malloc(sizeof(struct kbt_rec_hdr) + len);
		size_t total;
		ssize_t n;

		if (!rec)
			die("malloc");
		total = kbt_rec_fill(rec, w->id, seq, len);
		if (seq % 3 == 0) {
			struct iovec v[2] = { { rec, total - len }, { rec + total - len, len } };

			n = writev(w->fd, v, 2);
		} else if (seq % 3 == 1) {
			n = write(w->fd, rec, total);
		} else {
			n = send(w->fd, rec, total, MSG_NOSIGNAL);
		}
		free(rec);
		if (n != (ssize_t)total) { /* a blocking call writes it all */
			fprintf(stderr, "writer %u: record %u: %zd of %zu bytes (%s)\n", w->id, seq,
				n, total, n < 0 ? strerror(errno) : "short");
			w->bad = 1;
			return NULL;
		}
	}
	return NULL;
}

static void serve_write2(int fd)
{
	struct wr w[2] = { { .fd = fd, .id = 0 }, { .fd = fd, .id = 1 } };
	int i;

	for (i = 0; i < 2; i++)
		if ((errno = pthread_create(&w[i].t, NULL, writer_main, &w[i])))
			die("pthread_create");
	for (i = 0; i < 2; i++)
		pthread_join(w[i].t, NULL);
	printf("wrote %s\n", w[0].bad || w[1].bad ? "bad" : "ok");
	fflush(stdout);
}

/* ---- 'R': two readers ---- */

struct rd {
	pthread_t t;
	int fd;
	unsigned id;
	uint8_t *data;   /* what it read, in order */
	size_t len, cap;
	uint32_t *runs;  /* the length of each read */
	size_t nruns, runcap;
	int err;
};

static void *reader_main(void *arg)
{
	struct rd *r = arg;
	unsigned k = 0;

	for (;;) {
		size_t want = 1 + (k++ * 7919u + r->id * 104729u) % 70000u;
		ssize_t n;

		if (r->len + want > r->cap) {
			r->cap = (r->len + want) * 2;
			if (!(r->data = realloc(r->data, r->cap)))
				die("realloc");
		}
		n = read(r->fd, r->data + r->len, want);
		if (n == 0)
			return NULL;
		if (n < 0) {
			r->err = errno;
			return NULL;
		}
		if (r->nruns == r->runcap) {
			r->runcap = r->runcap ? r->runcap * 2 : 1024;
			if (!(r->runs = realloc(r->runs, r->runcap * sizeof(*r->runs))))
				die("realloc");
		}
		r->runs[r->nruns++] = (uint32_t)n;
		r->len += (size_t)n;
	}
}

/* Does run (p, n) sit at stream offset off? */
static bool run_at(const uint8_t *p, size_t n, uint64_t off, uint64_t total)
{
	size_t i;

	if (off + n > total)
		return false;
	for (i = 0; i < n; i++)
		if (p[i] != kbt_pat(off + i))
			return false;
	return true;
}

/* The two readers' runs, each reader's in its order, tile [0, total). */
static void tile_check(struct rd *r, uint64_t total, char *verdict, size_t vl)
{
	size_t idx[2] = { 0, 0 }, pos[2] = { 0, 0 };
	uint64_t off = 0;
	int i;

	while (off < total) {
		int pick = -1;

		for (i = 0; i < 2; i++) {
			if (idx[i] == r[i].nruns ||
			    !run_at(r[i].data + pos[i], r[i].runs[idx[i]], off, total))
				continue;
			if (pick < 0 || r[i].runs[idx[i]] > r[pick].runs[idx[pick]])
				pick = i;
		}
		if (pick < 0) {
			snprintf(verdict, vl, "bad: no read continues the stream at %llu of %llu",
				 (unsigned long long)off, (unsigned long long)total);
			return;
		}
		off += r[pick].runs[idx[pick]];
		pos[pick] += r[pick].runs[idx[pick]];
		idx[pick]++;
	}
	if (idx[0] != r[0].nruns || idx[1] != r[1].nruns) {
		snprintf(verdict, vl, "bad: %zu bytes read beyond the %llu sent",
			 r[0].len + r[1].len - (size_t)total, (unsigned long long)total);
		return;
	}
	snprintf(verdict, vl, "ok %llu bytes, %zu and %zu reads", (unsigned long long)total,
		 r[0].nruns, r[1].nruns);
}

static void serve_read2(int fd)
{
	struct rd r[2] = { { .fd = fd, .id = 0 }, { .fd = fd, .id = 1 } };
	char verdict[200];
	uint64_t total;
	int i;

	if (!read_full(fd, &total, sizeof(total)))
		die("read the length");
	for (i = 0; i < 2; i++)
		if ((errno = pthread_create(&r[i].t, NULL, reader_main, &r[i])))
			die("pthread_create");
	for (i = 0; i < 2; i++)
		pthread_join(r[i].t, NULL);
	if (r[0].err || r[1].err)
		snprintf(verdict, sizeof(verdict), "bad: read: %s",
			 strerror(r[0].err ? r[0].err : r[1].err));
	else
		tile_check(r, total, verdict, sizeof(verdict));
	printf("read %s\n", verdict);
	fflush(stdout);
	strcat(verdict, "\n");
	if (write(fd, verdict, strlen(verdict)) < 0)
		die("write the verdict");
	for (i = 0; i < 2; i++) {
		free(r[i].data);
		free(r[i].runs);
	}
}

static _Noreturn void serve(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 16))
		die("listen");
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		int fd = accept(l, NULL, NULL);
		char mode;

		if (fd < 0)
			die("accept");
		if (read_full(fd, &mode, 1)) {
			if (mode == 'W')
				serve_write2(fd);
			else if (mode == 'R')
				serve_read2(fd);
		}
		close(fd);
	}
}

/* ---- clients ---- */

static int dial(const char *addr, int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { 20, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || inet_pton(AF_INET, addr, &a.sin_addr) != 1 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a)))
		die("connect");
	return fd;
}

static int client_write2(const char *addr, int port)
{
	int fd = dial(addr, port);
	struct kbt_rec_parser p = { .nwriters = 2, .len = rec_len };
	uint8_t buf[65536];
	ssize_t n;

	if (write(fd, "W", 1) != 1)
		die("write");
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (!kbt_rec_feed(&p, buf, (size_t)n)) {
			printf("bad: %s\n", p.err);
			return 1;
		}
	if (n < 0)
		die("read");
	if (p.next[0] != RECS || p.next[1] != RECS || !kbt_rec_idle(&p)) {
		printf("bad: %u and %u records whole, one cut short: %s\n", p.next[0], p.next[1],
		       kbt_rec_idle(&p) ? "no" : "yes");
		return 1;
	}
	printf("ok %u records %llu bytes\n", p.next[0] + p.next[1], (unsigned long long)p.off);
	return 0;
}

static int client_read2(const char *addr, int port, uint64_t total)
{
	int fd = dial(addr, port);
	uint8_t buf[65536];
	uint64_t off = 0;
	char answer[256];
	ssize_t n;

	if (write(fd, "R", 1) != 1 || write(fd, &total, sizeof(total)) != sizeof(total))
		die("write");
	while (off < total) {
		size_t k = total - off < sizeof(buf) ? (size_t)(total - off) : sizeof(buf), i;

		for (i = 0; i < k; i++)
			buf[i] = kbt_pat(off + i);
		for (i = 0; i < k;) {
			n = write(fd, buf + i, k - i);
			if (n <= 0)
				die("write the stream");
			i += (size_t)n;
		}
		off += k;
	}
	shutdown(fd, SHUT_WR);
	n = read(fd, answer, sizeof(answer) - 1);
	if (n <= 0) {
		printf("bad: no answer from the server (%s)\n", n < 0 ? strerror(errno) : "EOF");
		return 1;
	}
	answer[n] = '\0';
	printf("%s", answer);
	return strncmp(answer, "ok ", 3) != 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "serve"))
		serve(atoi(argv[2]));
	if (argc == 4 && !strcmp(argv[1], "write2"))
		return client_write2(argv[2], atoi(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "read2"))
		return client_read2(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10));
	fprintf(stderr, "usage: kbtest_threads serve PORT | write2 ADDR PORT | "
		"read2 ADDR PORT BYTES\n");
	return 2;
}
