/*
 * kbq_hold.h — reading a region's holding rows (kbq_abi.h, Holding): who
 * other than one process holds a slot or a waiter entry. The application
 * asks for one bit when it drops a holding; kbstackd takes the union of
 * the other rows when a process is gone. Both call these after clearing
 * their own bits with a seq_cst RMW, and the loads here are seq_cst: of
 * two droppers, at least one sees the other's bit gone.
 * Not for setting or clearing bits, nor for deciding who closes (the
 * closing and used words do that).
 */
#ifndef KBQ_HOLD_H
#define KBQ_HOLD_H

#include <stdbool.h>
#include <stdint.h>

#include "kbq_abi.h"
#include "kbq_atomic.h"

#define KBQ_HELD_WORDS  KBQ_BELL_WORDS      /* words of a held[] row */
#define KBQ_WHELD_WORDS (KBQ_NWAITERS / 64) /* words of a wheld[] row */

/* Whether a process index of procs (one bit each) other than self has bit
 * b in its row; rows: row 0 of held or wheld, stride: a row's length. */
static inline bool kbq_held_by_other(const uint64_t *rows, unsigned stride,
				     const uint64_t procs[KBQ_NPROCS / 64], uint32_t self,
				     uint32_t b)
{
	unsigned k;

	for (k = 0; k < KBQ_NPROCS / 64; k++) {
		uint64_t m = kbq_ld_sc(&procs[k]);

		while (m) {
			uint32_t p = k * 64 + (uint32_t)__builtin_ctzll(m);

			m &= m - 1;
			if (p != self && (kbq_ld_sc(&rows[p * stride + b / 64]) >> (b % 64) & 1))
				return true;
		}
	}
	return false;
}

/* out[0..words) = the union of words from..from + words of the rows (of
 * stride words each) of procs other than self. */
static inline void kbq_held_union(const uint64_t *rows, unsigned stride, unsigned from,
				  unsigned words,
				  const uint64_t procs[KBQ_NPROCS / 64], uint32_t self,
				  uint64_t *out)
{
	unsigned k, w;

	for (w = 0; w < words; w++)
		out[w] = 0;
	for (k = 0; k < KBQ_NPROCS / 64; k++) {
		uint64_t m = kbq_ld_sc(&procs[k]);

		while (m) {
			uint32_t p = k * 64 + (uint32_t)__builtin_ctzll(m);

			m &= m - 1;
			if (p == self)
				continue;
			for (w = 0; w < words; w++)
				out[w] |= kbq_ld_sc(&rows[p * stride + from + w]);
		}
	}
}

#endif /* KBQ_HOLD_H */
