/*
 * test_impair.c — unit tests for the impairment stage's decisions
 * (tools/kbimpair_core.c): each rate applied within tolerance over many
 * frames, alone and together; delays inside delay ± jitter with the right
 * mean; bit flips only after the Ethernet header; the same seed giving the
 * same decisions and another seed different ones; settings parsed and bad
 * ones refused with a reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "kbimpair_core.h"

#define FRAMES 400000

struct tally {
	uint64_t frames, lost, dup, copies, corrupt, reorder, delayed;
	double delay_sum;
	uint64_t delay_min, delay_max;
};

static void run(const char *spec_text, uint64_t seed, struct tally *t)
{
	struct kbi_spec s;
	struct kbi_rng r;
	char err[256];
	int i, k;

	assert_int_equal(kbi_spec_parse(spec_text, &s, err, sizeof(err)), 0);
	kbi_rng_seed(&r, seed, 0);
	memset(t, 0, sizeof(*t));
	t->delay_min = UINT64_MAX;
	for (i = 0; i < FRAMES; i++) {
		struct kbi_verdict v;
		uint32_t len = 60 + (uint32_t)i % 1455;

		kbi_decide(&s, &r, len, &v);
		t->frames++;
		t->lost += v.ncopies == 0;
		t->dup += v.ncopies == 2;
		for (k = 0; k < v.ncopies; k++) {
			const struct kbi_copy *c = &v.copy[k];

			t->copies++;
			if (c->flip_bit >= 0) {
				t->corrupt++;
				assert_true(c->flip_bit >= KBI_ETH_HLEN * 8);
				assert_true((uint32_t)c->flip_bit < len * 8);
			}
			if (c->reordered) {
				t->reorder++;
				continue;
			}
			t->delayed++;
			t->delay_sum += (double)c->delay_ns;
			if (c->delay_ns < t->delay_min)
				t->delay_min = c->delay_ns;
			if (c->delay_ns > t->delay_max)
				t->delay_max = c->delay_ns;
		}
	}
}

/* share within 5 % of the rate (relative) or 0.05 points, whichever is larger:
 * at 400k frames a binomial's standard deviation is far below either. */
static void assert_rate(uint64_t n, uint64_t of, double pct)
{
	double got = 100.0 * (double)n / (double)of, tol = fmax(pct * 0.05, 0.05);

	if (fabs(got - pct) > tol)
		fail_msg("rate %.3f %% (%llu of %llu), want %.3f ± %.3f %%", got,
			 (unsigned long long)n, (unsigned long long)of, pct, tol);
}

static void test_each_rate(void **state)
{
	static const struct { const char *spec; int which; double pct; } cases[] = {
		{ "loss=1", 0, 1 }, { "loss=10", 0, 10 }, { "loss=0.1", 0, 0.1 },
		{ "dup=5", 1, 5 }, { "corrupt=1", 2, 1 }, { "reorder=25,delay=20ms", 3, 25 },
	};
	struct tally t;
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run(cases[i].spec, 42 + i, &t);
		uint64_t n[] = { t.lost, t.dup, t.corrupt, t.reorder };
		uint64_t of[] = { t.frames, t.frames, t.copies, t.copies };
		assert_rate(n[cases[i].which], of[cases[i].which], cases[i].pct);
		/* nothing else happened */
		if (cases[i].which != 0)
			assert_int_equal(t.lost, 0);
		if (cases[i].which != 1)
			assert_int_equal(t.dup, 0);
		if (cases[i].which != 2)
			assert_int_equal(t.corrupt, 0);
	}
}

static void test_all_together(void **state)
{
	struct tally t;

	(void)state;
	run("loss=10,dup=5,corrupt=1,reorder=25,delay=20ms,jitter=5ms", 7, &t);
	assert_rate(t.lost, t.frames, 10);
	/* a frame is duplicated only when not lost: 5 % of the 90 % */
	assert_rate(t.dup, t.frames, 4.5);
	assert_rate(t.corrupt, t.copies, 1);
	assert_rate(t.reorder, t.copies, 25);
	assert_true(t.delay_min >= 15000000 && t.delay_max <= 25000000);
	assert_true(t.delay_min < 15100000 && t.delay_max > 24900000);
	assert_true(fabs(t.delay_sum / (double)t.delayed - 20e6) < 0.05e6);
}

static void test_no_impairment(void **state)
{
	struct tally t;

	(void)state;
	run("none", 1, &t);
	assert_int_equal(t.copies, t.frames);
	assert_int_equal(t.lost + t.dup + t.corrupt + t.reorder, 0);
	assert_int_equal(t.delay_max, 0);
	run("reorder=25", 1, &t); /* no delay: reordered copies wait 1 ms */
	assert_rate(t.reorder, t.copies, 25);
}

static void test_seeded(void **state)
{
	struct kbi_spec s;
	struct kbi_rng a, b, c;
	char err[256];
	int i, same_c = 0;

	(void)state;
	assert_int_equal(kbi_spec_parse("loss=10,dup=5,corrupt=1,reorder=25,delay=20ms,jitter=5ms",
					&s, err, sizeof(err)), 0);
	kbi_rng_seed(&a, 99, 0);
	kbi_rng_seed(&b, 99, 0);
	kbi_rng_seed(&c, 100, 0);
	for (i = 0; i < 10000; i++) {
		struct kbi_verdict va, vb, vc;

		kbi_decide(&s, &a, 1514, &va);
		kbi_decide(&s, &b, 1514, &vb);
		kbi_decide(&s, &c, 1514, &vc);
		assert_memory_equal(&va, &vb, sizeof(va));
		same_c += !memcmp(&va, &vc, sizeof(va));
	}
	assert_true(same_c < 100);
	/* the two directions of one seed are different streams */
	kbi_rng_seed(&a, 99, 0);
	kbi_rng_seed(&b, 99, 1);
	assert_true(kbi_rng_next(&a) != kbi_rng_next(&b));
}

static void test_parse(void **state)
{
	static const char *bad[] = {
		"loss", "loss=", "loss=101", "loss=-1", "loss=1x", "drop=1", "delay=20",
		"delay=20ms,jitter=30ms", "delay=11s", "jitter=1ms", ",=,",
	};
	struct kbi_spec s;
	char err[256];
	unsigned i;

	(void)state;
	assert_int_equal(kbi_spec_parse("loss=1.5,delay=500us,jitter=0.25ms", &s, err, sizeof(err)), 0);
	assert_int_equal(s.loss, 15000);
	assert_int_equal(s.delay_ns, 500000);
	assert_int_equal(s.jitter_ns, 250000);
	assert_int_equal(kbi_spec_parse("", &s, err, sizeof(err)), 0);
	assert_int_equal(s.loss + s.dup + s.corrupt + s.reorder, 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (kbi_spec_parse(bad[i], &s, err, sizeof(err)) != -1)
			fail_msg("'%s' accepted", bad[i]);
		assert_true(err[0] != '\0');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_rate),
		cmocka_unit_test(test_all_together),
		cmocka_unit_test(test_no_impairment),
		cmocka_unit_test(test_seeded),
		cmocka_unit_test(test_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
