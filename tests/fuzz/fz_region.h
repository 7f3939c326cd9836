/*
 * fz_region.h — the pieces of fuzz_region besides fz.h's: the table of
 * region fields (fz_fields.c), the two peers on the wire (fz_peer.c) and
 * the hostile application with its contexts (fz_hostile.c). Fuzz builds
 * only.
 *
 *   well-behaved: fz_app.c's server (context 1, port FZ_PORT); its peer is
 *                 FZ_GOOD_IP, played by fz_peer.c from a script: a few
 *                 connections that send a known byte stream and check the
 *                 echo byte for byte. The input cannot reach them (frames
 *                 from FZ_GOOD_IP are dropped before the port).
 *   hostile:      fz_hostile.c's application (contexts 100…), listening on
 *                 FZ_HPORT…+3 and connecting out to FZ_PEER_IP; its peer
 *                 sends what the input says (fz_hpeer_seg, or raw frames),
 *                 and its region is written as the input says.
 */
#ifndef FZ_REGION_H
#define FZ_REGION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kbs_ctx;
struct kbs_sock;

/* ---- reading an input ----------------------------------------------------- */

/* What is left of the input; reads past its end give zeros. */
struct fz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t fz_in_u8(struct fz_in *in)
{
	uint8_t v = 0;

	if (in->n) {
		v = *in->p++;
		in->n--;
	}
	return v;
}

static inline uint16_t fz_in_u16(struct fz_in *in)
{
	uint16_t hi = fz_in_u8(in);

	return (uint16_t)(hi << 8 | fz_in_u8(in));
}

static inline uint32_t fz_in_u32(struct fz_in *in)
{
	uint32_t hi = fz_in_u16(in);

	return hi << 16 | fz_in_u16(in);
}

/* One byte, or two when the first has bit 7 set: 0…0x7fff. */
static inline uint32_t fz_in_index(struct fz_in *in)
{
	uint32_t b = fz_in_u8(in);

	return b & 0x80 ? (b & 0x7f) << 8 | fz_in_u8(in) : b;
}

/* ---- fz_fields.c: the words of a region ------------------------------------ */

enum fz_base {
	FZ_B_REGION,         /* in struct kbq_region */
	FZ_B_SOCK,           /* in a slot's struct kbq_sock */
	FZ_B_ACCEPTQ,        /* in the struct kbq_acceptq a slot's lq names (modulo
			      * KBQ_NLISTEN): a listener's queue */
};

struct fz_field {
	const char *name;    /* "sock.rx_head", "region.waiter.sleeping", "sock+0x78",
			      * "acceptq.head" */
	uint8_t base;        /* enum fz_base */
	uint8_t size;        /* bytes: 1, 2, 4 or 8 */
	uint32_t off;        /* of element 0 */
	uint32_t count;      /* elements (arrays, waiter[]) */
	uint32_t stride;     /* bytes from one element to the next */
	int pair;            /* the field a writer relates it to (rx_head: rx_tail), or -1 */
};

/* Once: the named fields, then every word they leave out. */
void fz_fields_init(void);
unsigned fz_fields_count(void);
const struct fz_field *fz_field_at(unsigned i); /* i modulo the count */
int fz_field_find(const char *name);            /* -1: no such field (any more) */

/* slot: for kbq_sock fields, and for accept queue fields the listener's */
uint64_t fz_field_get(const struct fz_field *f, void *region, uint32_t slot, uint32_t elem);
void fz_field_set(const struct fz_field *f, void *region, uint32_t slot, uint32_t elem,
		  uint64_t v);
/* Element 0 of a named field; false when the layout has no such field. */
bool fz_field_set_by_name(const char *name, void *region, uint32_t slot, uint64_t v);

/*
 * A value for field f of the input's choosing: one byte
 *   bits 0-2 base:  0, the field's current value, its pair's, all ones,
 *                   2^31, FZ_BYTE_RING, KBQ_ACCEPTQ, KBQ_MAXSLOTS
 *   bits 3-5 plus:  0, +FZ_BYTE_RING, -FZ_BYTE_RING, +KBQ_ACCEPTQ, -KBQ_ACCEPTQ,
 *                   +2^31, +2^16, -2^16
 *   bits 6-7 then:  nothing; a signed byte; a signed 16-bit number; or a raw
 *                   value of the field's size that replaces all of it
 * truncated to the field's size. region NULL: the current values are 0.
 */
uint64_t fz_value(struct fz_in *in, const struct fz_field *f, void *region, uint32_t slot,
		  uint32_t elem);

/* ---- fz_peer.c: the wire --------------------------------------------------- */

#define FZ_GOOD_IP    0xc6120003u /* the well-behaved application's peer (host order) */
#define FZ_GOOD_MAC   { 0x02, 0, 0, 0, 0, 0x03 }
#define FZ_NGOOD      2           /* its connections to FZ_PORT, each input */
#define FZ_GOOD_SPORT 30000       /* from ports FZ_GOOD_SPORT + i */
#define FZ_GOOD_BYTES (24u * 1024) /* the stream each sends (echoed back) */
#define FZ_HPORT      8000        /* the hostile application listens on FZ_HPORT…+3 */
#define FZ_HPEER_PORT 40000       /* its peer connects from FZ_HPEER_PORT…+31 */

/* Once: the ARP entry of FZ_GOOD_IP, fz_port_tx_hook and fz_app_rx_hook. */
void fz_peer_init(void);

/* Start of an input: no flow known; the good connections send SYN. */
void fz_peer_reset(void);

/* A frame from the input that pretends to come from FZ_GOOD_IP. */
bool fz_peer_spoofed(const uint8_t *frame, size_t len);

/* The good peer sends what is due (handshake, data, ACKs, FIN,
 * retransmissions); true if it sent anything. */
bool fz_good_send(void);

/* ms passed: the good peer retransmits what waited a second for an ACK. */
void fz_good_tick(uint32_t ms);

/* Every good connection established, accepted and found in the good
 * context; aborts when one is not what it must be (reset, error, a slot
 * in a wrong state). Called after each record. */
bool fz_good_check(void);

/* End of an input: everything sent, then FIN. True once every byte came
 * back, checked, and both FINs are acknowledged. */
void fz_good_close(void);
bool fz_good_done(void);

/* The good connection i's slot in the good context (UINT32_MAX: not yet). */
uint32_t fz_good_slot(unsigned i);

/* A segment of the hostile application's peer, from the input (format in
 * fuzz_region.c); sent through fz_port_rx. */
void fz_hpeer_seg(struct fz_in *in);

/* ---- fz_hostile.c: the hostile application and its contexts ---------------- */

/* Start of an input: a context for it (two processes). */
void fz_hostile_attach(void);
/* Its context now (NULL after its last process died). */
struct kbs_ctx *fz_hostile_ctx(void);
/* A process dies: the n-th process index in use (modulo how many); its
 * holdings are released and the sockets nobody else holds close
 * (kbs_ctx_proc_gone). last: the last one dies (kbs_ctx_close_all, the
 * context kept while it sends). */
void fz_hostile_die(uint32_t n, bool last);
/* The acting process (the lowest index) forks: a child's index, holding
 * what its parent holds (kbq_abi.h, Holding). */
void fz_hostile_fork(void);
/* Each loop iteration: contexts with no process and nothing left go. */
void fz_hostile_reap(void);
/* End of an input: every hostile context goes as kbstackd drops one. */
void fz_hostile_teardown(void);
/* After lwIP has let go of everything: the regions of gone contexts,
 * unreachable (PROT_NONE) since they went, are unmapped. */
void fz_hostile_release(void);
/* A broken context stays inert: no PCB, no flow, nothing served. */
void fz_hostile_check(void);
/* p is in the region of a hostile context that went this input. */
bool fz_hostile_gone(const void *p);

/* The application's acts, on its current context (none when it has none). */
uint32_t fz_hostile_slot(struct fz_in *in);
void fz_hostile_listen(uint32_t port, uint32_t backlog, uint32_t inherit);
void fz_hostile_connect(uint32_t ip, uint32_t port, uint32_t lport);
void fz_hostile_accept(void);
void fz_hostile_io(uint32_t slot, uint32_t n);
void fz_hostile_close(uint32_t slot);
void fz_hostile_req(uint32_t slot, uint32_t op, const uint32_t arg[3], uint32_t how);
void fz_hostile_bell(uint32_t slot, bool all);
void fz_hostile_write(struct fz_in *in);

#endif /* FZ_REGION_H */
