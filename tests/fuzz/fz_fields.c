/*
 * fz_fields.c — every word of a context's region that an application can
 * write, for fuzz_region: the fields of struct kbq_region, struct kbq_sock
 * and struct kbq_acceptq by their names in shim/kbq_abi.h, in one table
 * (a queue's fields are those of the queue a slot's lq names), and whatever
 * the table does not name (padding, fields added later) as anonymous
 * words found at start-up. Nothing else in the fuzz targets needs to know
 * the layout beyond what fz_app.c does as an application.
 *
 * A field's number in an input is its index here: the named fields first,
 * in the order of FZ_FIELD_TABLE (gen_region.py reads those lines to name
 * fields in the seeds), then the anonymous runs. A field that disappears
 * from kbq_abi.h is deleted from the table; one that appears is covered
 * as anonymous words until it is named.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbq_abi.h"

#include "fz.h"
#include "fz_region.h"

#define FZ_SZ(T, f)  sizeof(((T *)0)->f)
#define FZ_N(T, f)   (FZ_SZ(T, f) / FZ_SZ(T, f[0]))

/* A field of struct kbq_region / of struct kbq_sock; an array of them; a
 * field of every kbq_region.waiter[]; a two-dimensional array of the region
 * (its rows one after the other). */
#define RF(f)  { "region." #f, FZ_B_REGION, FZ_SZ(struct kbq_region, f), \
		 offsetof(struct kbq_region, f), 1, 0, -1 },
#define RA(f)  { "region." #f, FZ_B_REGION, FZ_SZ(struct kbq_region, f[0]), \
		 offsetof(struct kbq_region, f), FZ_N(struct kbq_region, f),     \
		 FZ_SZ(struct kbq_region, f[0]), -1 },
#define RW(f)  { "region.waiter." #f, FZ_B_REGION,                           \
		 FZ_SZ(struct kbq_region, waiter[0].f),                       \
		 offsetof(struct kbq_region, waiter[0].f), KBQ_NWAITERS,       \
		 sizeof(struct kbq_waiter), -1 },
#define R2(f)  { "region." #f, FZ_B_REGION, FZ_SZ(struct kbq_region, f[0][0]), \
		 offsetof(struct kbq_region, f),                               \
		 FZ_SZ(struct kbq_region, f) / FZ_SZ(struct kbq_region, f[0][0]), \
		 FZ_SZ(struct kbq_region, f[0][0]), -1 },
#define SF(f)  { "sock." #f, FZ_B_SOCK, FZ_SZ(struct kbq_sock, f),           \
		 offsetof(struct kbq_sock, f), 1, 0, -1 },
#define SA(f)  { "sock." #f, FZ_B_SOCK, FZ_SZ(struct kbq_sock, f[0]),        \
		 offsetof(struct kbq_sock, f), FZ_N(struct kbq_sock, f),         \
		 FZ_SZ(struct kbq_sock, f[0]), -1 },
#define AF(f)  { "acceptq." #f, FZ_B_ACCEPTQ, FZ_SZ(struct kbq_acceptq, f),   \
		 offsetof(struct kbq_acceptq, f), 1, 0, -1 },
#define AA(f)  { "acceptq." #f, FZ_B_ACCEPTQ, FZ_SZ(struct kbq_acceptq, f[0]), \
		 offsetof(struct kbq_acceptq, f), FZ_N(struct kbq_acceptq, f),   \
		 FZ_SZ(struct kbq_acceptq, f[0]), -1 },

/* The table: one macro per line (gen_region.py parses these lines). A new
 * field goes at the end, so the fields of the inputs already in the corpus
 * keep their numbers. */
#define FZ_FIELD_TABLE \
	SF(state)        \
	SF(gen)          \
	SF(req_seq)      \
	SF(req_op)       \
	SA(req_arg)      \
	SF(done_seq)     \
	SF(done_rc)      \
	SF(closing)      \
	SF(forked)       \
	SF(ev)           \
	SF(so_error)     \
	SF(laddr)        \
	SF(raddr)        \
	SF(lport)        \
	SF(rport)        \
	SF(listener)     \
	SF(wake_seq)     \
	SF(waiters)      \
	SF(taken_seq)    \
	SA(wmask)        \
	AF(tail)         \
	AF(head)         \
	AA(slot)         \
	SF(rx_tail)      \
	SF(rx_head)      \
	SF(tx_tail)      \
	SF(tx_head)      \
	RF(magic)        \
	RF(version)      \
	RF(ctx)          \
	RF(size)         \
	RF(stack_ip)     \
	RF(event_seq)    \
	RF(sleepers)     \
	RF(bell_summary) \
	RA(bell)         \
	RA(fallback)     \
	RA(procs)        \
	R2(held)         \
	R2(wheld)        \
	RW(used)         \
	RW(sleeping)     \
	RW(pending)      \
	RW(pad)          \
	SF(lq)           \
	SF(tx_busy)      \
	SF(tx_trim)      \
	RF(slots)        \
	RF(ring)

static const struct fz_field fz_named[] = { FZ_FIELD_TABLE };

/* The value a well-behaved writer would relate a field to: its partner
 * index or sequence number (by name: a pair whose names are gone is
 * dropped). */
static const char *const fz_pairs[][2] = {
	{ "sock.rx_head", "sock.rx_tail" },
	{ "sock.rx_tail", "sock.rx_head" },
	{ "sock.tx_tail", "sock.tx_head" },
	{ "sock.tx_head", "sock.tx_tail" },
	{ "acceptq.head", "acceptq.tail" },
	{ "acceptq.tail", "acceptq.head" },
	{ "sock.req_seq", "sock.done_seq" },
	{ "sock.done_seq", "sock.req_seq" },
	{ "sock.taken_seq", "sock.req_seq" },
};

#define FZ_FIELDS_MAX 256

static struct fz_field fz_fields[FZ_FIELDS_MAX];
static char fz_anon_names[FZ_FIELDS_MAX][32];
static unsigned fz_nfields;

static void fz_fields_add(const struct fz_field *f)
{
	if (fz_nfields == FZ_FIELDS_MAX) {
		fprintf(stderr, "fuzz: more than %d region fields (fz_fields.c)\n", FZ_FIELDS_MAX);
		exit(1);
	}
	fz_fields[fz_nfields] = *f;
	fz_fields[fz_nfields++].pair = -1;
}

/* Bytes [0, size) of a struct that no named field covers, as runs of
 * anonymous words (bytes where a run is not word-aligned). */
static void fz_fields_gaps(enum fz_base base, size_t size)
{
	uint8_t *cov = calloc(1, size);
	size_t i, j, k, e;

	if (!cov) {
		fprintf(stderr, "fuzz: no memory for the field table\n");
		exit(1);
	}
	for (i = 0; i < fz_nfields; i++) {
		const struct fz_field *f = &fz_fields[i];

		if (f->base != base)
			continue;
		for (e = 0; e < f->count; e++)
			for (k = 0; k < f->size; k++) {
				size_t at = f->off + e * f->stride + k;

				if (at >= size || cov[at]) {
					fprintf(stderr, "fuzz: field %s overlaps another\n", f->name);
					exit(1);
				}
				cov[at] = 1;
			}
	}
	for (i = 0; i < size; i = j) {
		struct fz_field g = { NULL, (uint8_t)base, 4, (uint32_t)i, 0, 4, -1 };

		for (j = i; j < size && !cov[j]; j++)
			;
		if (j == i) {
			j++;
			continue;
		}
		if (i % 4 || (j - i) < 4) { /* odd bytes: one at a time */
			g.size = 1;
			g.stride = 1;
		}
		g.count = (uint32_t)((j - i) / g.size);
		j = i + g.count * g.size;
		snprintf(fz_anon_names[fz_nfields], sizeof(fz_anon_names[0]), "%s+%#zx",
			 base == FZ_B_SOCK ? "sock" : base == FZ_B_ACCEPTQ ? "acceptq" : "region",
			 i);
		g.name = fz_anon_names[fz_nfields];
		fz_fields_add(&g);
	}
	free(cov);
}

void fz_fields_init(void)
{
	size_t i;
	int a, b;

	for (i = 0; i < sizeof(fz_named) / sizeof(fz_named[0]); i++)
		fz_fields_add(&fz_named[i]);
	fz_fields_gaps(FZ_B_SOCK, sizeof(struct kbq_sock));
	fz_fields_gaps(FZ_B_ACCEPTQ, sizeof(struct kbq_acceptq));
	fz_fields_gaps(FZ_B_REGION, sizeof(struct kbq_region));
	for (i = 0; i < sizeof(fz_pairs) / sizeof(fz_pairs[0]); i++) {
		a = fz_field_find(fz_pairs[i][0]);
		b = fz_field_find(fz_pairs[i][1]);
		if (a >= 0 && b >= 0)
			fz_fields[a].pair = b;
	}
	if (getenv("KB_FUZZ_TRACE"))
		for (i = 0; i < fz_nfields; i++)
			fprintf(stderr, "fuzz: field %zu: %s, %u x %u bytes at %#x (stride %u)\n", i,
				fz_fields[i].name, fz_fields[i].count, fz_fields[i].size,
				fz_fields[i].off, fz_fields[i].stride);
}

unsigned fz_fields_count(void)
{
	return fz_nfields;
}

const struct fz_field *fz_field_at(unsigned i)
{
	return &fz_fields[i % fz_nfields];
}

int fz_field_find(const char *name)
{
	unsigned i;

	for (i = 0; i < fz_nfields; i++)
		if (!strcmp(fz_fields[i].name, name))
			return (int)i;
	return -1;
}

static void *fz_field_addr(const struct fz_field *f, void *region, uint32_t slot, uint32_t elem)
{
	struct kbq_sock *q = kbq_sock_at(region, slot % KBQ_MAXSLOTS);
	char *base = f->base == FZ_B_SOCK ? (char *)q :
		     f->base == FZ_B_ACCEPTQ ?
			(char *)kbq_acceptq_at(region, __atomic_load_n(&q->lq, __ATOMIC_RELAXED) %
							       KBQ_NLISTEN) :
			(char *)region;

	return base + f->off + (size_t)(elem % f->count) * f->stride;
}

uint64_t fz_field_get(const struct fz_field *f, void *region, uint32_t slot, uint32_t elem)
{
	void *p = fz_field_addr(f, region, slot, elem);

	switch (f->size) {
	case 1: return __atomic_load_n((uint8_t *)p, __ATOMIC_RELAXED);
	case 2: return __atomic_load_n((uint16_t *)p, __ATOMIC_RELAXED);
	case 4: return __atomic_load_n((uint32_t *)p, __ATOMIC_RELAXED);
	default: return __atomic_load_n((uint64_t *)p, __ATOMIC_RELAXED);
	}
}

void fz_field_set(const struct fz_field *f, void *region, uint32_t slot, uint32_t elem,
		  uint64_t v)
{
	void *p = fz_field_addr(f, region, slot, elem);

	/* Release, as the application publishes what it writes. */
	switch (f->size) {
	case 1: __atomic_store_n((uint8_t *)p, (uint8_t)v, __ATOMIC_RELEASE); break;
	case 2: __atomic_store_n((uint16_t *)p, (uint16_t)v, __ATOMIC_RELEASE); break;
	case 4: __atomic_store_n((uint32_t *)p, (uint32_t)v, __ATOMIC_RELEASE); break;
	default: __atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE); break;
	}
}

bool fz_field_set_by_name(const char *name, void *region, uint32_t slot, uint64_t v)
{
	int i = fz_field_find(name);

	if (i < 0)
		return false;
	fz_field_set(&fz_fields[i], region, slot, 0, v);
	return true;
}

uint64_t fz_value(struct fz_in *in, const struct fz_field *f, void *region, uint32_t slot,
		  uint32_t elem)
{
	static const uint64_t plus[8] = {
		0, FZ_BYTE_RING, -(uint64_t)FZ_BYTE_RING, KBQ_ACCEPTQ, -(uint64_t)KBQ_ACCEPTQ,
		1ull << 31, 1ull << 16, -(1ull << 16),
	};
	uint8_t vm = fz_in_u8(in);
	uint64_t mask = f->size == 8 ? ~0ull : (1ull << (8 * f->size)) - 1;
	uint64_t v;

	switch (vm & 7) {
	case 0: v = 0; break;
	case 1: v = region ? fz_field_get(f, region, slot, elem) : 0; break;
	case 2: v = !region ? 0 :
		    f->pair >= 0 ? fz_field_get(&fz_fields[f->pair], region, slot, elem) :
				   fz_field_get(f, region, slot, elem);
		break;
	case 3: v = ~0ull; break;
	case 4: v = 1ull << 31; break;
	case 5: v = FZ_BYTE_RING; break;
	case 6: v = KBQ_ACCEPTQ; break;
	default: v = KBQ_MAXSLOTS; break;
	}
	v += plus[(vm >> 3) & 7];
	switch (vm >> 6) {
	case 1: v += (uint64_t)(int64_t)(int8_t)fz_in_u8(in); break;
	case 2: v += (uint64_t)(int64_t)(int16_t)fz_in_u16(in); break;
	case 3:
		v = 0;
		for (unsigned i = 0; i < f->size; i++)
			v = v << 8 | fz_in_u8(in);
		break;
	default: break;
	}
	return v & mask;
}
