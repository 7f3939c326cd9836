/*
 * kbt_records.h — tagged, counted records for tests in which several
 * threads write one byte stream: a header naming the writer, the record's
 * number and its length, then a payload that depends on all three. A
 * record cut by another writer's bytes, lost or sent twice shows in the
 * parser below. Header-only, for the preload harness
 * (test_preload_harness.c) and kbtest_threads.c; not for anything else.
 */
#ifndef KBT_RECORDS_H
#define KBT_RECORDS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define KBT_REC_MAGIC 0x4b425448u /* "KBTH" */
#define KBT_REC_WRITERS 4u

struct kbt_rec_hdr {
	uint32_t magic;
	uint32_t writer;
	uint32_t seq;
	uint32_t len;  /* payload bytes after the header */
};

/* A well-mixed byte for position o (a byte at a wrong offset mismatches). */
static inline uint8_t kbt_pat(uint64_t o)
{
	uint64_t x = o * 0x9e3779b97f4a7c15ull;

	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	return (uint8_t)(x >> 56);
}

/* Payload byte i of writer w's record seq. */
static inline uint8_t kbt_rec_byte(uint32_t w, uint32_t seq, uint32_t i)
{
	return kbt_pat(((uint64_t)w << 56) + ((uint64_t)seq << 32) + i);
}

/* Writer w's record seq of len payload bytes into rec (16 + len bytes). */
static inline size_t kbt_rec_fill(uint8_t *rec, uint32_t w, uint32_t seq, uint32_t len)
{
	struct kbt_rec_hdr h = { KBT_REC_MAGIC, w, seq, len };
	uint32_t i;

	memcpy(rec, &h, sizeof(h));
	for (i = 0; i < len; i++)
		rec[sizeof(h) + i] = kbt_rec_byte(w, seq, i);
	return sizeof(h) + len;
}

/* Checks a stream of records as it comes: each whole, each writer's in
 * order, each as long as len() says. */
struct kbt_rec_parser {
	uint32_t nwriters;                         /* at most KBT_REC_WRITERS */
	uint32_t (*len)(uint32_t w, uint32_t seq); /* a record's payload length */
	uint32_t next[KBT_REC_WRITERS];            /* records whole, per writer */
	uint64_t off;                              /* stream bytes fed */
	struct kbt_rec_hdr h;
	uint8_t hb[sizeof(struct kbt_rec_hdr)];
	uint32_t hgot, pgot;
	bool in_payload;
	char err[160];                             /* the first wrong byte */
};

/* Feed n more bytes of the stream; false (err says where) at the first
 * that does not belong. */
static inline bool kbt_rec_feed(struct kbt_rec_parser *p, const uint8_t *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++, p->off++) {
		if (!p->in_payload) {
			p->hb[p->hgot++] = b[i];
			if (p->hgot < sizeof(p->h))
				continue;
			memcpy(&p->h, p->hb, sizeof(p->h));
			p->hgot = p->pgot = 0;
			if (p->h.magic != KBT_REC_MAGIC || p->h.writer >= p->nwriters ||
			    p->h.seq != p->next[p->h.writer] ||
			    p->h.len != p->len(p->h.writer, p->h.seq)) {
				snprintf(p->err, sizeof(p->err), "the header ending at stream byte "
					 "%llu is no writer's next (magic %x writer %u record %u "
					 "length %u)", (unsigned long long)p->off, p->h.magic,
					 p->h.writer, p->h.seq, p->h.len);
				return false;
			}
			p->next[p->h.writer]++;
			p->in_payload = p->h.len > 0;
			continue;
		}
		if (b[i] != kbt_rec_byte(p->h.writer, p->h.seq, p->pgot)) {
			snprintf(p->err, sizeof(p->err), "writer %u's record %u broken at its "
				 "byte %u (stream byte %llu)", p->h.writer, p->h.seq, p->pgot,
				 (unsigned long long)p->off);
			return false;
		}
		p->in_payload = ++p->pgot < p->h.len;
	}
	return true;
}

/* Between records (nothing cut short). */
static inline bool kbt_rec_idle(const struct kbt_rec_parser *p)
{
	return !p->in_payload && !p->hgot;
}

#endif /* KBT_RECORDS_H */
