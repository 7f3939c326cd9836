/*
 * kbq_ring.h — byte-ring arithmetic and copies shared by both sides.
 *
 * A ring is `size` bytes (the region's ring: a power of two) with two
 * free-running 32-bit indices: the producer's tail and the consumer's head.
 * used = tail - head (mod 2^32), which is at most size when both sides
 * behave; kbstackd checks that before trusting an index the application
 * wrote. These helpers only copy; the caller publishes the index (release)
 * afterwards.
 */
#ifndef KBQ_RING_H
#define KBQ_RING_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kbq_abi.h"
#include "kbq_atomic.h"

static inline uint32_t kbq_ring_used(uint32_t tail, uint32_t head)
{
	return tail - head;
}

static inline uint32_t kbq_ring_free(uint32_t size, uint32_t tail, uint32_t head)
{
	return size - (tail - head);
}

/* A (tail, head) pair a well-behaved peer could have written. */
static inline bool kbq_ring_sane(uint32_t size, uint32_t tail, uint32_t head)
{
	return tail - head <= size;
}

/* Bytes readable from position idx without wrapping. */
static inline uint32_t kbq_ring_contig(uint32_t size, uint32_t idx, uint32_t n)
{
	uint32_t off = idx & (size - 1);

	return n < size - off ? n : size - off;
}

/* Copy n bytes into the ring at index tail (n <= free space). */
static inline void kbq_ring_put(uint8_t *ring, uint32_t size, uint32_t tail, const void *src,
				uint32_t n)
{
	uint32_t first = kbq_ring_contig(size, tail, n);

	memcpy(ring + (tail & (size - 1)), src, first);
	memcpy(ring, (const uint8_t *)src + first, n - first);
}

/* Copy n bytes out of the ring from index head (n <= used). */
static inline void kbq_ring_get(const uint8_t *ring, uint32_t size, uint32_t head, void *dst,
				uint32_t n)
{
	uint32_t first = kbq_ring_contig(size, head, n);

	memcpy(dst, ring + (head & (size - 1)), first);
	memcpy((uint8_t *)dst + first, ring, n - first);
}

/* The application rings slot s's doorbell: kbstackd will look at it. */
static inline void kbq_bell(struct kbq_region *r, uint32_t s)
{
	/* Release: the request or index written before the bell is visible to
	 * kbstackd once it sees the bit (it swaps with acquire), at each level. */
	kbq_or_rel(&r->bell[s / 64], 1ull << (s % 64));
	kbq_or_rel(&r->bell_mid[s / 64 / 64], 1ull << (s / 64 % 64));
	kbq_or_rel(&r->bell_summary, 1ull << (s / 64 / 64 / KBQ_BELL_GROUP));
}

/*
 * kbstackd's side: swap the summary, then each mid word of the groups it
 * names, then each bell word those name, and call fn(arg, slot) for every
 * slot rung since the last sweep below slots (the context's count, a
 * multiple of 64). Bits at or beyond it, which only a misbehaving
 * application sets, are taken and cost a call fn(arg, slots) once per
 * sweep, so a sweep costs what was rung below slots. A bit may name an
 * empty word (the previous sweep took its bits): harmless.
 * Returns the number of slots served.
 */
static inline unsigned kbq_bell_sweep(struct kbq_region *r, uint32_t slots,
				      void (*fn)(void *arg, uint32_t s), void *arg)
{
	/* Acquire pairs with the release fetch_or in kbq_bell(). */
	uint64_t sum = kbq_xchg_acq(&r->bell_summary, 0);
	uint32_t words = slots / 64;
	bool beyond = false;
	unsigned served = 0;

	while (sum) {
		unsigned g = (unsigned)__builtin_ctzll(sum), m;

		sum &= sum - 1;
		for (m = g * KBQ_BELL_GROUP; m < (g + 1) * KBQ_BELL_GROUP && m < KBQ_BELL_MIDS;
		     m++) {
			uint64_t wbits;

			if (m * 64 >= words) { /* its bits stay: nobody looks */
				beyond = beyond || kbq_ld(&r->bell_mid[m]);
				continue;
			}
			wbits = kbq_ld(&r->bell_mid[m]) ? kbq_xchg_acq(&r->bell_mid[m], 0) : 0;
			while (wbits) {
				uint32_t w = m * 64 + (uint32_t)__builtin_ctzll(wbits);
				uint64_t bits;

				wbits &= wbits - 1;
				if (w >= words) {
					beyond = true;
					continue;
				}
				bits = kbq_ld(&r->bell[w]) ? kbq_xchg_acq(&r->bell[w], 0) : 0;
				while (bits) {
					unsigned b = (unsigned)__builtin_ctzll(bits);

					bits &= bits - 1;
					fn(arg, w * 64 + b);
					served++;
				}
			}
		}
	}
	if (beyond)
		fn(arg, slots);
	return served;
}

#endif /* KBQ_RING_H */
