/*
 * kbtest_hostile — a misbehaving application for kb's fault tests. It
 * attaches to kbstackd the way libkbpreload.so does (shim protocol), then
 * for SECONDS scribbles on its own region: random requests with random
 * arguments, ring indices, states, accept-queue entries, holding rows and
 * close claims in every slot, and rings every doorbell; now and then a
 * process of its context (a JOIN) with a random row hangs up. kbstackd
 * must survive it and keep serving other applications; this program's own
 * sockets may break.
 *
 *   kbtest_hostile STACK_PATH SECONDS SEED
 *
 * Connect requests only ever name 198.18.0.0/24 (the test bed's own net).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "kbtest_shim.h"

static uint64_t rng;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

/* A value that is sometimes sane and sometimes not. */
static uint32_t wild(uint32_t sane)
{
	switch (rnd() % 4) {
	case 0:  return sane;
	case 1:  return sane + rnd() % 3;
	case 2:  return sane - rnd() % 3;
	default: return rnd();
	}
}

/* A new context; we never read the wake socket's other end, so its buffer
 * fills (kbstackd must count, never wait). Exits if it cannot attach. */
/* A new context. Contexts it left that still finish sending count against
 * its user's KB_UID_CONTEXTS: refused (EUSERS), it waits and tries again.
 * Exits if it cannot attach within 10 s. */
static unsigned long refusals;

static struct kbq_region *attach(const char *path, int *ctl, int *wake)
{
	struct kbq_region *r;
	int rc, memfd, tries;

	for (tries = 0; tries < 1000; tries++) {
		r = kbt_attach(path, ctl, wake, &rc, &memfd);
		if (r || rc != -EUSERS)
			break;
		refusals++;
		usleep(10000);
	}
	if (!r) {
		fprintf(stderr, "kbtest_hostile: attach: %d\n", rc);
		exit(1);
	}
	/* Shrinking the region under kbstackd would SIGBUS its loop: sealed. */
	if (ftruncate(memfd, 4096) == 0 ||
	    ftruncate(memfd, (off_t)kbq_region_size(r->slots, r->ring) * 2) == 0) {
		fprintf(stderr, "kbtest_hostile: the region could be resized\n");
		exit(3);
	}
	close(memfd);
	return r; /* ctl stays open: we are alive until we close it */
}

static void join_and_leave(struct kbq_region *r, const char *path)
{
	struct kbq_welcome w;
	int fd = kbt_connect(path), i;

	if (fd < 0)
		return;
	if (kbt_hello(fd, KBQ_HELLO_JOIN, r->ctx, -1, &w, NULL) == 0 && w.proc < KBQ_NPROCS) {
		for (i = 0; i < (int)(r->slots / 64); i++)
			r->held[w.proc][i] = rnd() | (uint64_t)rnd() << 32;
		for (i = 0; i < (int)(KBQ_NWAITERS / 64); i++)
			r->wheld[w.proc][i] = ~0ull;
	}
	close(fd);
}

int main(int argc, char **argv)
{
	struct kbq_region *r;
	time_t end;
	unsigned long rounds = 0, contexts = 1;
	int ctl, wake;

	if (argc != 4) {
		fprintf(stderr, "usage: kbtest_hostile STACK_PATH SECONDS SEED\n");
		return 2;
	}
	r = attach(argv[1], &ctl, &wake);
	end = time(NULL) + atoi(argv[2]);
	rng = strtoull(argv[3], NULL, 10) | 1;
	while (time(NULL) < end) {
		uint32_t nslots = r->slots; /* the region's: its rings end there */
		uint32_t s = rnd() % nslots;
		struct kbq_sock *q = kbq_sock_at(r, s);

		switch (rnd() % 10) {
		case 0: /* a request, often a plausible one */
			q->req_op = rnd() % 8;
			q->req_arg[0] = q->req_op == KBQ_OP_CONNECT
					? (0x000012c6u | (rnd() & 0xff000000u)) /* 198.18.0.x */
					: wild(8000 + rnd() % 100);
			q->req_arg[1] = wild(80);
			q->req_arg[2] = wild(0);
			__atomic_store_n(&q->req_seq, q->req_seq + 1, __ATOMIC_RELEASE);
			break;
		case 1:
			q->state = wild(q->state);
			break;
		case 2:
			q->tx_tail = wild(q->tx_tail + rnd() % 70000);
			break;
		case 3:
			q->rx_head = wild(q->rx_head + rnd() % 70000);
			break;
		case 4: { /* any accept queue, and a slot's index of its queue */
			struct kbq_acceptq *aq = kbq_acceptq_at(r, rnd() % KBQ_NLISTEN);

			aq->head = wild(aq->head + 1);
			aq->slot[rnd() % KBQ_ACCEPTQ] = wild(rnd() % nslots);
			q->lq = wild(q->lq);
			break;
		}
		case 5: /* who holds what: any row, the close claim, waiter entries */
			r->held[rnd() % KBQ_NPROCS][rnd() % (nslots / 64)] =
				rnd() | (uint64_t)rnd() << 32;
			r->wheld[rnd() % KBQ_NPROCS][rnd() % (KBQ_NWAITERS / 64)] =
				rnd() | (uint64_t)rnd() << 32;
			r->procs[rnd() % (KBQ_NPROCS / 64)] = rnd() | (uint64_t)rnd() << 32;
			q->closing = wild(q->closing);
			q->forked = rnd() % 2;
			r->waiter[rnd() % KBQ_NWAITERS].used = wild(1);
			break;
		case 6:
			memset(kbq_tx_data(r, s, r->ring) + rnd() % (r->ring - 64), rnd(), 64);
			break;
		case 7: /* claim a free slot and listen, as the library would */
			if (q->state == KBQ_S_FREE) {
				q->state = KBQ_S_OPEN;
				q->req_op = KBQ_OP_LISTEN;
				q->req_arg[0] = 9000 + rnd() % 50;
				q->req_arg[1] = 16;
				__atomic_store_n(&q->req_seq, q->req_seq + 1, __ATOMIC_RELEASE);
			}
			break;
		default:
			break;
		}
		kbq_bell(r, s);
		if (rnd() % 64 == 0) {
			r->bell_summary = rnd() | ((uint64_t)rnd() << 32);
			r->bell_mid[rnd() % kbq_slot_words(nslots / 64)] = ~0ull;
			r->bell[rnd() % (nslots / 64)] = ~0ull;
			r->sleepers = wild(0);
		}
		if (rnd() % 64 == 1) { /* claim to sleep everywhere: wake-ups flood */
			r->waiter[rnd() % KBQ_NWAITERS].sleeping = 1;
			r->waiter[rnd() % KBQ_NWAITERS].pending = 0;
		}
		if (++rounds % 256 == 0)
			usleep(100);
		/* Now and then a sure breach: an rx head beyond what kbstackd
		 * published, on every connection the region shows live. */
		if (rounds % 1024 == 512)
			for (uint32_t i = 0; i < nslots; i++) {
				struct kbq_sock *e = kbq_sock_at(r, i);

				if (e->state == KBQ_S_ESTABLISHED) {
					e->rx_head = e->rx_tail + 70000;
					kbq_bell(r, i);
				}
			}
		/* Late in a context's life, a bell beyond its slots (cut off at
		 * once: the ring and accept breaches above come first). */
		if (rounds % 4096 == 3072 && nslots < KBQ_MAXSLOTS)
			kbq_bell(r, nslots + rnd() % (KBQ_MAXSLOTS - nslots));
		/* A process of the context whose row says it held anything, and
		 * every waiter entry, hangs up: kbstackd releases that row. */
		if (rounds % 1024 == 0)
			join_and_leave(r, argv[1]);
		/* kbstackd cuts a context off at its first broken rule: start
		 * over in a new one now and then (the old one dies mid-request). */
		if (rounds % 4096 == 0) {
			munmap(r, kbq_region_size(nslots, r->ring));
			close(ctl);
			close(wake);
			r = attach(argv[1], &ctl, &wake);
			contexts++;
		}
	}
	printf("hostile: %lu scribbles in %lu contexts (%lu attaches refused at the "
	       "user's limit, then retried)\n", rounds, contexts, refusals);
	return 0;
}
