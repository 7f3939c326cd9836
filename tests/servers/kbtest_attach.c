/*
 * kbtest_attach — asks kbstackd for what the access rules must refuse or
 * allow, speaking the control protocol directly (no libkbpreload.so), and
 * prints what it got. For integration.access.
 *
 *   kbtest_attach STACK listen PORT   attach, post LISTEN PORT through the
 *                                     region: prints "rc N" (0 or -errno)
 *   kbtest_attach STACK join-any N    JOIN each context 1..N: prints
 *                                     "joined K" (how many were let in)
 *   kbtest_attach STACK pidclaim PID  JOIN every context it may, say PID
 *                                     on each connection with arg PID,
 *                                     then hang up: prints "claimed K"
 *   kbtest_attach STACK contexts N    open N contexts at once: prints
 *                                     "attached K first-refusal RC"
 */
#include <errno.h>
#include <time.h>

#include "kbtest_shim.h"

static int do_listen(const char *path, unsigned port)
{
	struct kbq_region *r;
	struct kbq_sock *q;
	int ctl, wake, rc, i;

	r = kbt_attach(path, &ctl, &wake, &rc, NULL);
	if (!r) {
		printf("attach %d\n", rc);
		return 1;
	}
	q = kbq_sock_at(r, 0);
	q->state = KBQ_S_OPEN; /* claimed, as the library does */
	q->req_op = KBQ_OP_LISTEN;
	q->req_arg[0] = port;
	q->req_arg[1] = 16;
	q->req_arg[2] = 0;
	__atomic_store_n(&q->req_seq, q->req_seq + 1, __ATOMIC_RELEASE);
	kbq_bell(r, 0);
	for (i = 0; i < 2000; i++) {
		if (__atomic_load_n(&q->done_seq, __ATOMIC_ACQUIRE) == q->req_seq) {
			printf("rc %d\n", q->done_rc);
			return 0;
		}
		usleep(1000);
	}
	printf("rc timeout\n");
	return 1;
}

static int do_join(const char *path, unsigned n, long pid)
{
	unsigned id, joined = 0;
	int fds[4096];

	for (id = 1; id <= n && joined < 4096; id++) {
		struct kbq_welcome w;
		int fd = kbt_connect(path);

		if (fd < 0)
			break;
		if (kbt_hello(fd, KBQ_HELLO_JOIN, id, -1, &w, NULL) != 0) {
			close(fd);
			continue;
		}
		if (pid > 0)
			kbt_hello_pid(fd, (uint32_t)pid);
		fds[joined++] = fd;
	}
	usleep(100000); /* kbstackd reads the PID messages */
	printf("%s %u\n", pid > 0 ? "claimed" : "joined", joined);
	while (joined)
		close(fds[--joined]);
	return 0;
}

static int do_contexts(const char *path, unsigned n)
{
	unsigned k = 0;
	int first = 0;

	while (k < n) {
		int ctl, wake, rc;

		if (!kbt_attach(path, &ctl, &wake, &rc, NULL)) {
			first = rc;
			break;
		}
		k++; /* ctl stays open: the context lives until we exit */
	}
	printf("attached %u first-refusal %d\n", k, first);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[2], "listen") == 0)
		return do_listen(argv[1], (unsigned)atoi(argv[3]));
	if (argc == 4 && strcmp(argv[2], "join-any") == 0)
		return do_join(argv[1], (unsigned)atoi(argv[3]), 0);
	if (argc == 4 && strcmp(argv[2], "pidclaim") == 0)
		return do_join(argv[1], 64, atol(argv[3]));
	if (argc == 4 && strcmp(argv[2], "contexts") == 0)
		return do_contexts(argv[1], (unsigned)atoi(argv[3]));
	fprintf(stderr, "usage: kbtest_attach STACK listen PORT | join-any N | "
			"pidclaim PID | contexts N\n");
	return 2;
}
