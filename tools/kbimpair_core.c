/*
 * kbimpair_core.c — per-frame decisions and settings of the impairment stage
 * (see kbimpair_core.h). No I/O here.
 */
#include "kbimpair_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: small, fast, and every seed (0 included) gives a good stream. */
uint64_t kbi_rng_next(struct kbi_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void kbi_rng_seed(struct kbi_rng *r, uint64_t seed, uint32_t stream)
{
	r->s = seed ^ ((uint64_t)stream << 32 | stream) * 0xd1342543de82ef95ull;
	(void)kbi_rng_next(r);
}

/* true with probability PPM / 1e6 */
static int chance(struct kbi_rng *r, uint32_t ppm)
{
	return (uint32_t)(kbi_rng_next(r) % KBI_PPM) < ppm;
}

static void decide_copy(const struct kbi_spec *s, struct kbi_rng *r, uint32_t len,
			struct kbi_copy *c)
{
	uint64_t corrupt = kbi_rng_next(r), reorder = kbi_rng_next(r), jit = kbi_rng_next(r);

	c->flip_bit = -1;
	if ((uint32_t)(corrupt % KBI_PPM) < s->corrupt && len > KBI_ETH_HLEN)
		c->flip_bit = (int32_t)(KBI_ETH_HLEN * 8 +
					(corrupt >> 20) % ((uint64_t)(len - KBI_ETH_HLEN) * 8));
	c->reordered = (uint32_t)(reorder % KBI_PPM) < s->reorder;
	if (c->reordered)
		c->delay_ns = s->delay_ns ? 0 : KBI_REORDER_HOLD_NS;
	else if (s->jitter_ns)
		c->delay_ns = s->delay_ns - s->jitter_ns + jit % (2 * s->jitter_ns + 1);
	else
		c->delay_ns = s->delay_ns;
}

void kbi_decide(const struct kbi_spec *s, struct kbi_rng *r, uint32_t len,
		struct kbi_verdict *v)
{
	int lost = chance(r, s->loss), dup = chance(r, s->dup);

	memset(v, 0, sizeof(*v)); /* padding too: verdicts compare whole */
	decide_copy(s, r, len, &v->copy[0]);
	decide_copy(s, r, len, &v->copy[1]);
	v->ncopies = lost ? 0 : dup ? 2 : 1;
}

static int parse_rate(const char *v, uint32_t *ppm)
{
	char *end;
	double d = strtod(v, &end);

	if (end == v || *end || !(d >= 0 && d <= 100))
		return -1;
	*ppm = (uint32_t)(d * 10000 + 0.5);
	return 0;
}

static int parse_time(const char *v, uint64_t *ns)
{
	char *end;
	double d = strtod(v, &end), mul;

	if (end == v || !(d >= 0))
		return -1;
	if (!strcmp(end, "us"))
		mul = 1e3;
	else if (!strcmp(end, "ms"))
		mul = 1e6;
	else if (!strcmp(end, "s"))
		mul = 1e9;
	else
		return -1;
	if (d * mul > 10e9) /* 10 s: more is a typo */
		return -1;
	*ns = (uint64_t)(d * mul + 0.5);
	return 0;
}

int kbi_spec_parse(const char *text, struct kbi_spec *s, char *err, unsigned errlen)
{
	char buf[256], *tok, *save = NULL;

	memset(s, 0, sizeof(*s));
	if (strlen(text) >= sizeof(buf)) {
		snprintf(err, errlen, "impairment spec longer than %zu bytes", sizeof(buf) - 1);
		return -1;
	}
	if (!strcmp(text, "none") || !*text)
		return 0;
	strcpy(buf, text);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		int bad;

		if (!eq)
			goto bad_item;
		*eq++ = '\0';
		if (!strcmp(tok, "loss"))
			bad = parse_rate(eq, &s->loss);
		else if (!strcmp(tok, "dup"))
			bad = parse_rate(eq, &s->dup);
		else if (!strcmp(tok, "corrupt"))
			bad = parse_rate(eq, &s->corrupt);
		else if (!strcmp(tok, "reorder"))
			bad = parse_rate(eq, &s->reorder);
		else if (!strcmp(tok, "delay"))
			bad = parse_time(eq, &s->delay_ns);
		else if (!strcmp(tok, "jitter"))
			bad = parse_time(eq, &s->jitter_ns);
		else
			goto bad_item;
		if (bad) {
			snprintf(err, errlen, "bad value '%s' for %s: a percentage 0…100 "
				 "(loss, dup, corrupt, reorder) or a time like 20ms, 500us (delay, jitter)",
				 eq, tok);
			return -1;
		}
	}
	if (s->jitter_ns > s->delay_ns) {
		snprintf(err, errlen, "jitter must not exceed delay");
		return -1;
	}
	return 0;

bad_item:
	snprintf(err, errlen, "bad item '%s': want loss=, dup=, corrupt=, reorder= (%%), "
		 "delay=, jitter= (us, ms, s)", tok);
	return -1;
}
