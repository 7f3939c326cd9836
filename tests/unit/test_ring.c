/*
 * test_ring.c — unit tests for shim/kbq_ring.h: the byte-ring arithmetic
 * (free-running 32-bit indices, including their wrap at 2^32), the copies
 * across the end of the ring, the release/acquire publishing protocol with a
 * real producer and consumer thread, and the doorbells (kbq_bell) against a
 * thread that swaps them the way kbstackd does.
 *
 * Built twice: test_ring (unit.ring) and, where the compiler has it, with
 * -fsanitize=thread (unit.ring_tsan), which also checks that the protocol's
 * orderings are enough for the data copied around the atomics.
 *
 * Threads never call cmocka's asserts (they longjmp); they count errors into
 * their state and the main thread asserts after joining them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "kbq_ring.h"

/* Bytes pushed through the ring by the two-thread test. */
#ifndef RING_STREAM_BYTES
#define RING_STREAM_BYTES (256ull << 20)
#endif
#define RING_MAX_CHUNK 70000u

/* 2^32 - x, as a ring index */
/* The ring size under test: each group runs at one of KB_RING's sizes. */
static uint32_t RS = KBQ_RING_DEFAULT;

#define WRAP_MINUS(x) ((uint32_t)(0u - (uint32_t)(x)))

/* The expected byte at stream offset i: a hash, so that a byte landing at a
 * wrong offset (by a ring length, a chunk, or a page) does not match. */
static uint8_t stream_byte(uint64_t i)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 32;
	return (uint8_t)x;
}

static void stream_fill(uint8_t *p, uint64_t off, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		p[i] = stream_byte(off + i);
}

/* First offset (relative to p) where p differs from the stream, or -1. */
static long stream_check(const uint8_t *p, uint64_t off, uint32_t n)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		if (p[i] != stream_byte(off + i))
			return (long)i;
	return -1;
}

static uint32_t xorshift32(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static uint8_t *ring_alloc(void)
{
	uint8_t *ring = aligned_alloc(4096, RS);

	assert_non_null(ring);
	return ring;
}

/* ---- arithmetic -------------------------------------------------------- */

static void test_used_free_plain(void **state)
{
	assert_int_equal(kbq_ring_used(0, 0), 0);
	assert_int_equal(kbq_ring_free(RS, 0, 0), RS);
	assert_int_equal(kbq_ring_used(1000, 400), 600);
	assert_int_equal(kbq_ring_free(RS, 1000, 400), RS - 600);
	assert_int_equal(kbq_ring_used(RS, 0), RS);
	assert_int_equal(kbq_ring_free(RS, RS, 0), 0);
	assert_int_equal(kbq_ring_used(3 * RS + 5, 2 * RS + 9),
			 RS - 4);
	assert_int_equal(kbq_ring_free(RS, 3 * RS + 5, 2 * RS + 9), 4);
}

static void test_used_free_wrap32(void **state)
{
	/* tail has wrapped past 2^32, head has not */
	assert_int_equal(kbq_ring_used(5, WRAP_MINUS(2)), 7);
	assert_int_equal(kbq_ring_free(RS, 5, WRAP_MINUS(2)), RS - 7);
	assert_int_equal(kbq_ring_used(0, WRAP_MINUS(1)), 1);
	assert_int_equal(kbq_ring_used(RS - 100, WRAP_MINUS(100)), RS);
	assert_int_equal(kbq_ring_free(RS, RS - 100, WRAP_MINUS(100)), 0);
	/* both wrapped, or neither */
	assert_int_equal(kbq_ring_used(WRAP_MINUS(1), WRAP_MINUS(1)), 0);
	assert_int_equal(kbq_ring_used(WRAP_MINUS(10), WRAP_MINUS(4096)), 4086);
	assert_int_equal(kbq_ring_free(RS, UINT32_MAX, UINT32_MAX - RS), 0);
}

static void test_sane(void **state)
{
	assert_true(kbq_ring_sane(RS, 0, 0));
	assert_true(kbq_ring_sane(RS, RS, 0));
	assert_false(kbq_ring_sane(RS, RS + 1, 0));
	assert_true(kbq_ring_sane(RS, 7, WRAP_MINUS(3)));
	assert_true(kbq_ring_sane(RS, RS - 3, WRAP_MINUS(3)));
	assert_false(kbq_ring_sane(RS, RS - 2, WRAP_MINUS(3)));
	/* head ahead of tail: a peer claiming to have consumed unsent bytes */
	assert_false(kbq_ring_sane(RS, 100, 101));
	assert_false(kbq_ring_sane(RS, WRAP_MINUS(5), 2));
	assert_false(kbq_ring_sane(RS, 0, 1));
	assert_false(kbq_ring_sane(RS, 0x80000000u, 0));
	assert_true(kbq_ring_sane(RS, UINT32_MAX, UINT32_MAX));
}

static void test_contig(void **state)
{
	assert_int_equal(kbq_ring_contig(RS, 0, 0), 0);
	assert_int_equal(kbq_ring_contig(RS, 0, 100), 100);
	assert_int_equal(kbq_ring_contig(RS, 0, RS), RS);
	assert_int_equal(kbq_ring_contig(RS, 0, RS + 5), RS);
	assert_int_equal(kbq_ring_contig(RS, RS - 10, 100), 10);
	assert_int_equal(kbq_ring_contig(RS, RS - 10, 10), 10);
	assert_int_equal(kbq_ring_contig(RS, RS - 10, 9), 9);
	assert_int_equal(kbq_ring_contig(RS, RS, 100), 100);
	assert_int_equal(kbq_ring_contig(RS, 5 * RS + 1000, RS),
			 RS - 1000);
	/* positions of indices near 2^32 (RS divides 2^32) */
	assert_int_equal(kbq_ring_contig(RS, WRAP_MINUS(16), 100), 16);
	assert_int_equal(kbq_ring_contig(RS, WRAP_MINUS(16), 5), 5);
	assert_int_equal(kbq_ring_contig(RS, UINT32_MAX, 2), 1);
	assert_int_equal(kbq_ring_contig(RS, WRAP_MINUS(RS), RS), RS);
	assert_int_equal(kbq_ring_contig(RS, WRAP_MINUS(RS) + 1, RS),
			 RS - 1);
}

/* ---- copies ------------------------------------------------------------ */

/* Put n bytes at index tail into a ring filled with 0xee; check exactly the
 * expected positions changed, then get them back. */
static void put_get_at(uint32_t tail, uint32_t n)
{
	uint8_t *ring = ring_alloc();
	uint8_t *src = malloc(n + 1), *dst = malloc(n + 1);
	uint32_t pos = tail & (RS - 1), i, changed = 0;

	assert_non_null(src);
	assert_non_null(dst);
	memset(ring, 0xee, RS);
	for (i = 0; i < n; i++)
		src[i] = (uint8_t)(i * 7 + 1) == 0xee ? 0x11 : (uint8_t)(i * 7 + 1);
	kbq_ring_put(ring, RS, tail, src, n);
	for (i = 0; i < n; i++)
		assert_int_equal(ring[(pos + i) & (RS - 1)], src[i]);
	for (i = 0; i < RS; i++)
		changed += ring[i] != 0xee;
	assert_int_equal(changed, n);

	memset(dst, 0x5a, n + 1);
	kbq_ring_get(ring, RS, tail, dst, n);
	assert_memory_equal(dst, src, n);
	assert_int_equal(dst[n], 0x5a);
	free(src);
	free(dst);
	free(ring);
}

static void test_put_get_no_wrap(void **state)
{
	put_get_at(0, 1);
	put_get_at(0, 3000);
	put_get_at(12345, 3000);
	put_get_at(RS - 3000, 3000);   /* ends exactly at the end */
	put_get_at(0, RS);             /* the whole ring */
}

static void test_put_get_ring_wrap(void **state)
{
	put_get_at(RS - 1000, 3000);
	put_get_at(RS - 1, 2);
	put_get_at(7 * RS - 1, RS); /* full ring, unaligned */
	put_get_at(RS + 100, RS);
}

static void test_put_get_index_wrap32(void **state)
{
	/* the index wraps 2^32 in the middle of the copy: position wraps too */
	put_get_at(WRAP_MINUS(1000), 3000);
	put_get_at(UINT32_MAX, 2);
	put_get_at(WRAP_MINUS(RS / 2), RS);
	put_get_at(WRAP_MINUS(RS - 1000), RS - 1000); /* ends exactly at 2^32 */
}

/* Explicit layout of a copy straddling the end of the ring and of 2^32. */
static void test_put_layout(void **state)
{
	uint8_t *ring = ring_alloc();
	uint8_t src[3000];
	uint32_t i;

	memset(ring, 0, RS);
	for (i = 0; i < sizeof(src); i++)
		src[i] = (uint8_t)(i % 251 + 1);
	kbq_ring_put(ring, RS, WRAP_MINUS(1000), src, sizeof(src));
	assert_int_equal(ring[RS - 1001], 0);
	assert_memory_equal(ring + RS - 1000, src, 1000);
	assert_memory_equal(ring, src + 1000, 2000);
	assert_int_equal(ring[2000], 0);
	free(ring);
}

/* One thread, a long stream through a ring whose indices start just below
 * 2^32: random puts and gets, checking the arithmetic at every step. */
static void test_stream_single_thread_wrap32(void **state)
{
	uint8_t *ring = ring_alloc();
	uint8_t *buf = malloc(RS);
	const uint32_t start = WRAP_MINUS(3 * RS / 2 + 77);
	uint32_t tail = start, head = start, seed = 12345;
	uint64_t sent = 0, got = 0, total = 8ull * RS;
	bool wrapped = false;

	assert_non_null(buf);
	while (got < total) {
		uint32_t used = kbq_ring_used(tail, head);
		uint32_t n;

		assert_true(kbq_ring_sane(RS, tail, head));
		assert_int_equal(used, (uint32_t)(sent - got));
		assert_int_equal(kbq_ring_free(RS, tail, head), RS - used);
		if (xorshift32(&seed) & 1) {
			n = xorshift32(&seed) % RING_MAX_CHUNK + 1;
			if (n > RS - used)
				n = RS - used;
			if (n > total - sent)
				n = (uint32_t)(total - sent);
			stream_fill(buf, sent, n);
			kbq_ring_put(ring, RS, tail, buf, n);
			tail += n;
			sent += n;
		} else {
			n = xorshift32(&seed) % RING_MAX_CHUNK + 1;
			if (n > used)
				n = used;
			memset(buf, 0, n);
			kbq_ring_get(ring, RS, head, buf, n);
			assert_int_equal(stream_check(buf, got, n), -1);
			head += n;
			got += n;
		}
		if (tail < start)
			wrapped = true;
	}
	assert_true(wrapped);
	assert_int_equal(head, tail);
	assert_int_equal(head, (uint32_t)(start + total));
	free(buf);
	free(ring);
}

/* ---- producer and consumer threads --------------------------------------- */

struct ring_idx {
	alignas(64) uint32_t tail;  /* producer */
	alignas(64) uint32_t head;  /* consumer */
};

struct ring_test {
	uint8_t *ring;
	struct ring_idx *idx;
	uint64_t total;
	/* results, read by the main thread after join */
	uint64_t produced, consumed;
	uint64_t bad_bytes, first_bad;
	uint64_t p_insane, c_insane; /* index pairs that were not sane, per side */
	uint64_t full_waits, empty_waits;
	int abort;                  /* set by either side on a hopeless state (atomic) */
};

static void *producer(void *arg)
{
	struct ring_test *t = arg;
	uint8_t *buf = malloc(RING_MAX_CHUNK);
	uint32_t tail = __atomic_load_n(&t->idx->tail, __ATOMIC_RELAXED);
	uint32_t seed = 0x1234567u;

	if (!buf) {
		__atomic_store_n(&t->abort, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	while (t->produced < t->total && !__atomic_load_n(&t->abort, __ATOMIC_RELAXED)) {
		uint32_t head = __atomic_load_n(&t->idx->head, __ATOMIC_ACQUIRE);
		uint32_t n = xorshift32(&seed) % RING_MAX_CHUNK + 1, space;

		if (!kbq_ring_sane(RS, tail, head)) {
			t->p_insane++;
			__atomic_store_n(&t->abort, 1, __ATOMIC_RELAXED);
			break;
		}
		space = kbq_ring_free(RS, tail, head);
		if (space == 0) {
			t->full_waits++;
			sched_yield();
			continue;
		}
		if (n > space)
			n = space;
		if (n > t->total - t->produced)
			n = (uint32_t)(t->total - t->produced);
		stream_fill(buf, t->produced, n);
		kbq_ring_put(t->ring, RS, tail, buf, n);
		tail += n;
		t->produced += n;
		__atomic_store_n(&t->idx->tail, tail, __ATOMIC_RELEASE);
	}
	free(buf);
	return NULL;
}

static void *consumer(void *arg)
{
	struct ring_test *t = arg;
	uint8_t *buf = malloc(RING_MAX_CHUNK);
	uint32_t head = __atomic_load_n(&t->idx->head, __ATOMIC_RELAXED);
	uint32_t seed = 0x89abcdefu;

	if (!buf) {
		__atomic_store_n(&t->abort, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	while (t->consumed < t->total && !__atomic_load_n(&t->abort, __ATOMIC_RELAXED)) {
		uint32_t tail = __atomic_load_n(&t->idx->tail, __ATOMIC_ACQUIRE);
		uint32_t n = xorshift32(&seed) % RING_MAX_CHUNK + 1, used, first;
		long bad;

		if (!kbq_ring_sane(RS, tail, head)) {
			t->c_insane++;
			__atomic_store_n(&t->abort, 1, __ATOMIC_RELAXED);
			break;
		}
		used = kbq_ring_used(tail, head);
		if (used == 0) {
			t->empty_waits++;
			sched_yield();
			continue;
		}
		if (n > used)
			n = used;
		kbq_ring_get(t->ring, RS, head, buf, n);
		bad = stream_check(buf, t->consumed, n);
		if (bad >= 0) {
			uint32_t i;

			if (!t->bad_bytes)
				t->first_bad = t->consumed + (uint64_t)bad;
			for (i = (uint32_t)bad; i < n; i++)
				t->bad_bytes += buf[i] != stream_byte(t->consumed + i);
		}
		/* scribble over what was consumed: a producer that wrote into
		 * space not yet freed would be caught by the check above */
		first = kbq_ring_contig(RS, head, n);
		memset(t->ring + (head & (RS - 1)), 0xa5, first);
		memset(t->ring, 0xa5, n - first);
		head += n;
		t->consumed += n;
		__atomic_store_n(&t->idx->head, head, __ATOMIC_RELEASE);
	}
	free(buf);
	return NULL;
}

static void run_stream(uint32_t start)
{
	struct ring_test t = { .total = RING_STREAM_BYTES };
	pthread_t p, c;

	t.ring = ring_alloc();
	t.idx = aligned_alloc(64, sizeof(*t.idx));
	assert_non_null(t.idx);
	memset(t.ring, 0, RS);
	t.idx->tail = t.idx->head = start;

	assert_int_equal(pthread_create(&c, NULL, consumer, &t), 0);
	assert_int_equal(pthread_create(&p, NULL, producer, &t), 0);
	assert_int_equal(pthread_join(p, NULL), 0);
	assert_int_equal(pthread_join(c, NULL), 0);

	if (t.bad_bytes)
		print_error("first bad byte at stream offset %llu\n",
			    (unsigned long long)t.first_bad);
	assert_int_equal(__atomic_load_n(&t.abort, __ATOMIC_RELAXED), 0);
	assert_int_equal(t.p_insane, 0);
	assert_int_equal(t.c_insane, 0);
	assert_int_equal(t.bad_bytes, 0);
	assert_int_equal(t.produced, RING_STREAM_BYTES);
	assert_int_equal(t.consumed, RING_STREAM_BYTES);
	assert_int_equal(t.idx->tail, (uint32_t)(start + RING_STREAM_BYTES));
	assert_int_equal(t.idx->head, t.idx->tail);
	free(t.idx);
	free(t.ring);
}

static void test_two_threads_stream(void **state)
{
	run_stream(0);
}

/* Same, with indices starting just below 2^32 so they wrap under load. */
static void test_two_threads_stream_wrap32(void **state)
{
	run_stream(WRAP_MINUS(5 * RS + 123));
}

/* ---- doorbells ----------------------------------------------------------- */

static struct kbq_region *region_alloc(void)
{
	size_t sz = (sizeof(struct kbq_region) + 63) & ~(size_t)63;
	struct kbq_region *r = aligned_alloc(64, sz);

	assert_non_null(r);
	memset(r, 0, sz);
	return r;
}

static void test_bell_bits(void **state)
{
	struct kbq_region *r = region_alloc();
	unsigned w;

	kbq_bell(r, 0);
	kbq_bell(r, 63);
	kbq_bell(r, 64);
	kbq_bell(r, 130);
	kbq_bell(r, 64 * 64 + 5);
	kbq_bell(r, KBQ_MAXSLOTS - 1);
	kbq_bell(r, 63);   /* ringing twice is one bit */
	assert_int_equal(r->bell[0], 1ull | 1ull << 63);
	assert_int_equal(r->bell[1], 1ull);
	assert_int_equal(r->bell[2], 1ull << 2);
	assert_int_equal(r->bell[64], 1ull << 5);
	assert_int_equal(r->bell[KBQ_BELL_WORDS - 1], 1ull << 63);
	for (w = 3; w < KBQ_BELL_WORDS - 1; w++)
		if (w != 64)
			assert_int_equal(r->bell[w], 0);
	assert_int_equal(r->bell_mid[0], 1ull | 1ull << 1 | 1ull << 2);
	assert_int_equal(r->bell_mid[1], 1ull);
	assert_int_equal(r->bell_mid[KBQ_BELL_MIDS - 1], 1ull << 63);
	for (w = 2; w < KBQ_BELL_MIDS - 1; w++)
		assert_int_equal(r->bell_mid[w], 0);
	assert_int_equal(r->bell_summary,
			 1ull | 1ull << (1 / KBQ_BELL_GROUP) |
			 1ull << ((KBQ_BELL_MIDS - 1) / KBQ_BELL_GROUP));
	/* the neighbours of the bells are untouched */
	assert_int_equal(r->sleepers, 0);
	assert_int_equal(r->event_seq, 0);
	assert_int_equal(r->fallback[0], 0);
	free(r);
}

static void bell_count(void *arg, uint32_t s)
{
	uint32_t *seen = arg;

	seen[s < 3 * 4096 ? s / 4096 : 3]++;
}

/* A sweep serves the slots below the context's count; bits beyond it cost
 * one call naming the count itself, and stay unserved. */
static void test_bell_beyond(void **state)
{
	struct kbq_region *r = region_alloc();
	uint32_t seen[4] = { 0 }, slots = 2 * 4096 + 64;

	kbq_bell(r, 5);
	kbq_bell(r, slots - 1);
	kbq_bell(r, slots);            /* beyond: the first slot it may not have */
	kbq_bell(r, slots + 64 * 64);  /* another mid word */
	kbq_bell(r, KBQ_MAXSLOTS - 1);
	assert_int_equal(kbq_bell_sweep(r, slots, bell_count, seen), 2);
	assert_int_equal(seen[0], 1);
	assert_int_equal(seen[2], 1 + 1); /* slots - 1, and the call for the beyond */
	assert_int_equal(seen[1] + seen[3], 0);
	assert_int_equal(r->bell_summary, 0);
	assert_int_equal(kbq_bell_sweep(r, slots, bell_count, seen), 0);
	assert_int_equal(seen[0] + seen[1] + seen[2] + seen[3], 3);
	/* at the full count, the bits left behind are slots again: those a
	 * new summary bit names (not KBQ_MAXSLOTS - 1's: its summary bit went) */
	kbq_bell(r, slots);
	memset(seen, 0, sizeof(seen));
	assert_int_equal(kbq_bell_sweep(r, KBQ_MAXSLOTS, bell_count, seen), 2);
	assert_int_equal(seen[2], 1);
	assert_int_equal(seen[3], 1);
	free(r);
}

#define BELL_ROUNDS 300
#define BELL_SLOTS 16384u /* of a region's KBQ_MAXSLOTS: the sweep's count */

struct bell_test {
	struct kbq_region *r;
	uint32_t payload[BELL_SLOTS];   /* written by a ringer before its first bell */
	unsigned seen[BELL_SLOTS];      /* stack thread */
	unsigned rung[BELL_SLOTS];      /* ringers, each its own slots */
	unsigned bad_payload;           /* stack thread */
	int done;                       /* main → stack, release */
};

struct ringer {
	struct bell_test *t;
	unsigned residue;               /* rings slots s with s % 3 == residue */
};

static void *ringer_main(void *arg)
{
	struct ringer *g = arg;
	struct bell_test *t = g->t;
	unsigned round, s;

	for (round = 0; round < BELL_ROUNDS; round++) {
		for (s = g->residue; s < BELL_SLOTS; s += 3) {
			/* the thread's later rounds ring fewer slots, so
			 * counts differ per slot */
			if (round && (s / 3 + round) % 5 == 0)
				continue;
			if (!t->rung[s])
				t->payload[s] = 0xb0000000u | s; /* plain: the bell publishes it */
			kbq_bell(t->r, s);
			t->rung[s]++;
		}
	}
	return NULL;
}

/* kbstackd's side, the shim's own sweep: each slot rung is seen with the
 * payload written before its bell. */
static void bell_seen(void *arg, uint32_t s)
{
	struct bell_test *t = arg;

	if (s >= BELL_SLOTS) { /* only a bit beyond the count makes the sweep say so */
		t->bad_payload++;
		return;
	}
	t->seen[s]++;
	if (t->payload[s] != (0xb0000000u | s))
		t->bad_payload++;
}

static void bell_sweep(struct bell_test *t)
{
	(void)kbq_bell_sweep(t->r, BELL_SLOTS, bell_seen, t);
}

static void *stack_main(void *arg)
{
	struct bell_test *t = arg;

	while (!__atomic_load_n(&t->done, __ATOMIC_ACQUIRE))
		bell_sweep(t);
	bell_sweep(t);   /* everything rung before done */
	return NULL;
}

static void test_bell_threads(void **state)
{
	struct bell_test *t = calloc(1, sizeof(*t));
	struct ringer g0, g1;
	pthread_t a, b, st;
	unsigned s, w, rung_slots = 0;

	assert_non_null(t);
	t->r = region_alloc();
	g0 = (struct ringer){ t, 0 };
	g1 = (struct ringer){ t, 1 };
	assert_int_equal(pthread_create(&st, NULL, stack_main, t), 0);
	assert_int_equal(pthread_create(&a, NULL, ringer_main, &g0), 0);
	assert_int_equal(pthread_create(&b, NULL, ringer_main, &g1), 0);
	assert_int_equal(pthread_join(a, NULL), 0);
	assert_int_equal(pthread_join(b, NULL), 0);
	__atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
	assert_int_equal(pthread_join(st, NULL), 0);

	for (s = 0; s < BELL_SLOTS; s++) {
		if (s % 3 == 2) {
			assert_int_equal(t->rung[s], 0);
			if (t->seen[s])
				print_error("slot %u never rung, seen %u times\n", s, t->seen[s]);
			assert_int_equal(t->seen[s], 0);
			continue;
		}
		assert_true(t->rung[s] >= 1);
		if (t->seen[s] < 1 || t->seen[s] > t->rung[s])
			print_error("slot %u rung %u times, seen %u times\n", s, t->rung[s],
				    t->seen[s]);
		assert_in_range(t->seen[s], 1, t->rung[s]);
		rung_slots++;
	}
	assert_int_equal(rung_slots, BELL_SLOTS - BELL_SLOTS / 3);
	assert_int_equal(t->bad_payload, 0);
	/* all consumed */
	assert_int_equal(t->r->bell_summary, 0);
	for (w = 0; w < KBQ_BELL_MIDS; w++)
		assert_int_equal(t->r->bell_mid[w], 0);
	for (w = 0; w < KBQ_BELL_WORDS; w++)
		assert_int_equal(t->r->bell[w], 0);
	free(t->r);
	free(t);
}

int main(void)
{
	/* The arithmetic, copies and streams at KB_RING's default, least and
	 * most; the rest at the default (the doorbells do not depend on it). */
	const struct CMUnitTest sized[] = {
		cmocka_unit_test(test_used_free_plain),
		cmocka_unit_test(test_used_free_wrap32),
		cmocka_unit_test(test_sane),
		cmocka_unit_test(test_contig),
		cmocka_unit_test(test_put_get_no_wrap),
		cmocka_unit_test(test_put_get_ring_wrap),
		cmocka_unit_test(test_put_get_index_wrap32),
		cmocka_unit_test(test_put_layout),
		cmocka_unit_test(test_stream_single_thread_wrap32),
		cmocka_unit_test(test_two_threads_stream_wrap32),
	};
	const struct CMUnitTest rest[] = {
		cmocka_unit_test(test_two_threads_stream),
		cmocka_unit_test(test_bell_bits),
		cmocka_unit_test(test_bell_beyond),
		cmocka_unit_test(test_bell_threads),
	};
	static const struct { uint32_t size; const char *name; } sizes[] = {
		{ KBQ_RING_MIN, "ring 64 KiB" }, { KBQ_RING_MAX, "ring 8 MiB" },
		{ KBQ_RING_DEFAULT, "ring 1 MiB (the default)" },
	};
	int rc = 0;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		RS = sizes[i].size;
		rc |= _cmocka_run_group_tests(sizes[i].name, sized, sizeof(sized) / sizeof(sized[0]),
					      NULL, NULL);
	}
	return rc | cmocka_run_group_tests_name("threads and doorbells", rest, NULL, NULL);
}
