/*
 * kbimpair_core.h — the decisions of the test bed's impairment stage
 * (tools/kbimpair.c): what happens to one frame in one direction.
 *
 * Pure and deterministic: a direction's decisions depend only on its
 * settings, its seed and how many frames it has seen, so a run can be
 * replayed and the rates tested without a network (tests/unit/test_impair.c).
 * Not for kbstackd or the preload library: test-bed tooling only.
 */
#ifndef KBIMPAIR_CORE_H
#define KBIMPAIR_CORE_H

#include <stdint.h>

#define KBI_PPM 1000000u /* rates are parts per million */

/* One direction's impairments. */
struct kbi_spec {
	uint32_t loss;      /* ppm of frames dropped */
	uint32_t dup;       /* ppm of frames sent twice (each copy delayed on its own) */
	uint32_t corrupt;   /* ppm of copies with one bit flipped after the Ethernet header */
	uint32_t reorder;   /* ppm of copies that skip the delay (or, without delay, wait 1 ms) */
	uint64_t delay_ns;  /* every other copy waits delay ± jitter, uniform */
	uint64_t jitter_ns; /* at most delay_ns */
};

/* xoshiro-style generator state; seeded by kbi_rng_seed. */
struct kbi_rng {
	uint64_t s;
};

/* What to do with one copy of a frame. */
struct kbi_copy {
	uint64_t delay_ns;   /* hold this long before sending */
	int32_t  flip_bit;   /* bit to flip, counted from the frame's first byte; -1 none */
	uint8_t  reordered;  /* skipped the delay queue (or held back) */
};

/* A frame's fate: 0 copies (lost), 1, or 2 (duplicated). */
struct kbi_verdict {
	int ncopies;
	struct kbi_copy copy[2];
};

#define KBI_ETH_HLEN 14
#define KBI_REORDER_HOLD_NS 1000000ull /* a reordered frame with no delay waits 1 ms */

void kbi_rng_seed(struct kbi_rng *r, uint64_t seed, uint32_t stream);
uint64_t kbi_rng_next(struct kbi_rng *r);

/* The verdict for a frame of LEN bytes (LEN > KBI_ETH_HLEN for corruption
 * to apply). Draws the same number of random numbers whatever the outcome,
 * so one impairment's rate never shifts another's choices. */
void kbi_decide(const struct kbi_spec *s, struct kbi_rng *r, uint32_t len,
		struct kbi_verdict *v);

/*
 * Parse "loss=1,dup=5,corrupt=1,reorder=25,delay=20ms,jitter=5ms" (any
 * subset, any order; "none" or "" for nothing). Rates are percentages with
 * up to 4 decimals (0…100); times take us, ms or s. Returns 0, or -1 with
 * a one-line reason in ERR.
 */
int kbi_spec_parse(const char *text, struct kbi_spec *s, char *err, unsigned errlen);

#endif /* KBIMPAIR_CORE_H */
