/*
 * fz_peer.c — the far ends of fuzz_region's TCP connections, on the wire
 * (frames in through fz_port_rx, out through fz_port_tx_hook):
 *
 *   the good peer (FZ_GOOD_IP): FZ_NGOOD connections to the well-behaved
 *   application's port, each sending FZ_GOOD_BYTES of a known stream that
 *   the application echoes. The application's reads (fz_app_rx_hook) and
 *   the echo are both checked byte for byte; anything kbstackd does to
 *   these connections besides carrying the bytes — a reset, an error, a
 *   slot in a wrong state — aborts. It ACKs everything at once and
 *   retransmits from the last ACK after a second without progress.
 *
 *   the hostile application's peer (FZ_PEER_IP): sends what the input
 *   says, with sequence and acknowledgment numbers that follow what each
 *   flow has seen (or not, as the input says), checksums always right.
 *
 * Not a TCP implementation: just enough for a lossless link where
 * kbstackd is the only other end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kbq_abi.h"
#include "kbq_atomic.h"
#include "kbs_ctx.h"

#include "fz.h"
#include "fz_region.h"

#define FZ_TCP_FIN 0x01
#define FZ_TCP_SYN 0x02
#define FZ_TCP_RST 0x04
#define FZ_TCP_PSH 0x08
#define FZ_TCP_ACK 0x10

#define FZ_MSS       1460
#define FZ_GOOD_SEND 1000  /* bytes a good connection sends per turn at most */
#define FZ_GOOD_RTO  1000  /* ms without an ACK before it sends again */
#define FZ_HFLOWS    16

static const uint8_t fz_good_mac[6] = FZ_GOOD_MAC;
static const uint8_t fz_peer_mac[6] = FZ_PEER_MAC;

static uint32_t fz_rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t fz_rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void fz_wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void fz_wr32(uint8_t *p, uint32_t v)
{
	fz_wr16(p, (uint16_t)(v >> 16));
	fz_wr16(p + 2, (uint16_t)v);
}

/* Seq a is after b (mod 2^32). */
static bool fz_after(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) > 0;
}

struct fz_seg {
	uint32_t src_ip;
	const uint8_t *mac;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	const uint8_t *opt;
	size_t optlen;
	const uint8_t *data;
	size_t len;
	bool bad_csum;
};

/* An Ethernet frame with an IPv4 TCP segment to the stack, into the port. */
static void fz_seg_send(const struct fz_seg *s)
{
	static uint16_t ident;
	uint8_t f[14 + 20 + 60 + FZ_MSS];
	uint8_t *ip = f + 14, *tcp = ip + 20;
	size_t thl = 20 + ((s->optlen + 3) & ~(size_t)3), tot = 20 + thl + s->len;
	uint32_t pseudo;

	if (s->len > FZ_MSS || s->optlen > 40)
		abort();
	memset(f, 0, 14 + 20 + thl);
	/* the stack's MAC is net_ring's 00:00:00:00:00:00 */
	memcpy(f + 6, s->mac, 6);
	fz_wr16(f + 12, 0x0800);
	ip[0] = 0x45;
	fz_wr16(ip + 2, (uint16_t)tot);
	fz_wr16(ip + 4, ++ident);
	ip[8] = 64;
	ip[9] = 6;
	fz_wr32(ip + 12, s->src_ip);
	fz_wr32(ip + 16, FZ_STACK_IP);
	fz_wr16(ip + 10, (uint16_t)~fz_csum(ip, 20, 0));
	fz_wr16(tcp, s->sport);
	fz_wr16(tcp + 2, s->dport);
	fz_wr32(tcp + 4, s->seq);
	fz_wr32(tcp + 8, s->ack);
	tcp[12] = (uint8_t)(thl / 4 << 4);
	tcp[13] = s->flags;
	fz_wr16(tcp + 14, s->win);
	if (s->optlen)
		memcpy(tcp + 20, s->opt, s->optlen); /* padded with EOL (0) */
	if (s->len)
		memcpy(tcp + thl, s->data, s->len);
	pseudo = fz_csum(ip + 12, 8, 6 + (uint32_t)(thl + s->len));
	fz_wr16(tcp + 16, (uint16_t)(~fz_csum(tcp, thl + s->len, pseudo) ^
				     (s->bad_csum ? 0x5a5a : 0)));
	fz_port_rx(f, 14 + tot);
}

/* A TCP segment the stack sent, parsed (fz_port has checked the frame). */
struct fz_rx {
	uint32_t dst_ip;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	const uint8_t *data;
	uint32_t len;
};

static bool fz_rx_parse(const uint8_t *f, size_t len, struct fz_rx *r)
{
	const uint8_t *ip = f + 14, *tcp;
	size_t ihl, tot, thl;

	if (len < 14 + 20 || fz_rd16(f + 12) != 0x0800 || ip[9] != 6 ||
	    (fz_rd16(ip + 6) & 0x3fff))
		return false;
	ihl = (size_t)(ip[0] & 0xf) * 4;
	tot = fz_rd16(ip + 2);
	tcp = ip + ihl;
	thl = (size_t)(tcp[12] >> 4) * 4;
	r->dst_ip = fz_rd32(ip + 16);
	r->sport = fz_rd16(tcp);
	r->dport = fz_rd16(tcp + 2);
	r->seq = fz_rd32(tcp + 4);
	r->ack = fz_rd32(tcp + 8);
	r->flags = tcp[13];
	r->win = fz_rd16(tcp + 14);
	r->data = tcp + thl;
	r->len = (uint32_t)(tot - ihl - thl);
	return true;
}

/* ---- the good peer ------------------------------------------------------ */

enum { G_CLOSED, G_SYN_SENT, G_EST };

struct fz_good {
	uint16_t port;        /* ours; the stack's is FZ_PORT */
	uint8_t st;
	bool ack_due;         /* the stack sent something we have not ACKed */
	bool closing;         /* everything sent: FIN next */
	bool fin_sent, fin_rcvd;
	uint32_t iss, snd_una, snd_nxt, snd_max;
	uint32_t swnd;        /* the stack's window (no scaling: we offer none) */
	uint32_t rcv_nxt;
	uint32_t echoed;      /* stream bytes that came back, checked */
	uint32_t app_got;     /* stream bytes the application read, checked */
	uint32_t idle_ms;     /* with data unacknowledged, since the last ACK */
	uint32_t slot;        /* in the good context, UINT32_MAX: not found yet */
};

static struct fz_good fz_good[FZ_NGOOD];

/* Byte k of good connection i's stream: not periodic within the ring. */
static uint8_t fz_pattern(unsigned i, uint32_t k)
{
	uint32_t x = k * 0x9e3779b1u + i * 0x85ebca6bu;

	return (uint8_t)(x >> 24 ^ k >> 8 ^ k >> 16);
}

static void fz_good_fail(const struct fz_good *g, const char *what)
{
	fprintf(stderr, "fuzz: good connection from port %u: %s (sent %u, acked %u, echoed %u, "
		"read by the application %u)\n", g->port, what, g->snd_max - g->iss - 1,
		g->snd_una - g->iss - 1, g->echoed, g->app_got);
	abort();
}

/* Stream bytes sent so far (not counting SYN or FIN). */
static uint32_t fz_good_queued(const struct fz_good *g)
{
	uint32_t n = g->snd_max - g->iss - 1;

	return n < FZ_GOOD_BYTES ? n : FZ_GOOD_BYTES;
}

static void fz_good_rx(const struct fz_rx *r)
{
	struct fz_good *g = NULL;
	unsigned i;

	for (i = 0; i < FZ_NGOOD; i++)
		if (fz_good[i].port == r->dport && r->sport == FZ_PORT)
			g = &fz_good[i];
	if (!g)
		return; /* a hostile connect to FZ_GOOD_IP: nobody answers */
	if (r->flags & FZ_TCP_RST)
		fz_good_fail(g, "reset by kbstackd");
	if (g->st == G_SYN_SENT) {
		if ((r->flags & (FZ_TCP_SYN | FZ_TCP_ACK)) != (FZ_TCP_SYN | FZ_TCP_ACK) ||
		    r->ack != g->iss + 1)
			fz_good_fail(g, "not a SYN-ACK to our SYN");
		g->st = G_EST;
		g->rcv_nxt = r->seq + 1;
		g->snd_una = r->ack;
		g->swnd = r->win;
		g->ack_due = true;
		return;
	}
	if (g->st != G_EST)
		return;
	if (r->flags & FZ_TCP_SYN) { /* our ACK of its SYN-ACK was not seen yet */
		g->ack_due = true;
		return;
	}
	if ((r->flags & FZ_TCP_ACK) && fz_after(r->ack, g->snd_una) &&
	    !fz_after(r->ack, g->snd_max)) {
		g->snd_una = r->ack;
		g->idle_ms = 0;
		if (fz_after(g->snd_una, g->snd_nxt))
			g->snd_nxt = g->snd_una;
	}
	if (r->flags & FZ_TCP_ACK)
		g->swnd = r->win;
	if (r->len || (r->flags & FZ_TCP_FIN))
		g->ack_due = true;
	if (r->len && !fz_after(r->seq, g->rcv_nxt) && fz_after(r->seq + r->len, g->rcv_nxt)) {
		uint32_t skip = g->rcv_nxt - r->seq, k;

		if (g->fin_rcvd)
			fz_good_fail(g, "data after the stack's FIN");
		for (k = skip; k < r->len; k++, g->echoed++)
			if (r->data[k] != fz_pattern((unsigned)(g - fz_good), g->echoed))
				fz_good_fail(g, "the echo differs from what was sent");
		if (g->echoed > fz_good_queued(g))
			fz_good_fail(g, "more echoed than sent");
		g->rcv_nxt = r->seq + r->len;
	}
	if ((r->flags & FZ_TCP_FIN) && r->seq + r->len == g->rcv_nxt && !g->fin_rcvd) {
		if (!g->fin_sent)
			fz_good_fail(g, "the application closed before our FIN");
		g->fin_rcvd = true;
		g->rcv_nxt++;
	}
}

/* The application read n bytes of a connection in slot. */
static void fz_good_app_rx(uint32_t slot, const uint8_t *data, uint32_t n)
{
	struct kbq_sock *q = kbq_sock_at(fz_app_ctx()->r, slot);
	uint32_t k;
	unsigned i;

	if (kbq_ld(&q->raddr) != __builtin_bswap32(FZ_GOOD_IP))
		return; /* a connection from the input's peer */
	for (i = 0; i < FZ_NGOOD; i++) {
		struct fz_good *g = &fz_good[i];

		if (kbq_ld(&q->rport) != __builtin_bswap16(g->port))
			continue;
		for (k = 0; k < n; k++, g->app_got++)
			if (data[k] != fz_pattern(i, g->app_got))
				fz_good_fail(g, "the application read bytes that were not sent");
		if (g->app_got > fz_good_queued(g))
			fz_good_fail(g, "the application read more than was sent");
		return;
	}
}

static void fz_good_seg(struct fz_good *g, uint8_t flags, uint32_t seq, const uint8_t *data,
			size_t len)
{
	static const uint8_t mss[4] = { 2, 4, FZ_MSS >> 8, FZ_MSS & 0xff };
	struct fz_seg s = {
		.src_ip = FZ_GOOD_IP, .mac = fz_good_mac, .sport = g->port, .dport = FZ_PORT,
		.seq = seq, .ack = g->st == G_EST ? g->rcv_nxt : 0, .flags = flags,
		.win = 65535, .data = data, .len = len,
	};

	if (flags & FZ_TCP_SYN) {
		s.opt = mss;
		s.optlen = sizeof(mss);
	}
	fz_seg_send(&s);
}

bool fz_good_send(void)
{
	static uint8_t buf[FZ_GOOD_SEND];
	bool sent = false;
	unsigned i;

	for (i = 0; i < FZ_NGOOD; i++) {
		struct fz_good *g = &fz_good[i];
		uint32_t off, n, room, k;

		if (g->st == G_CLOSED) {
			g->st = G_SYN_SENT;
			g->snd_una = g->iss;
			g->snd_nxt = g->snd_max = g->iss + 1;
			fz_good_seg(g, FZ_TCP_SYN, g->iss, NULL, 0);
			sent = true;
			continue;
		}
		if (g->st != G_EST)
			continue;
		/* data from snd_nxt: new bytes up to the budget, or again after a
		 * retransmission timeout; never beyond the stack's window */
		off = g->snd_nxt - g->iss - 1;
		n = FZ_GOOD_BYTES - (off < FZ_GOOD_BYTES ? off : FZ_GOOD_BYTES);
		room = g->snd_una + g->swnd - g->snd_nxt;
		if (fz_after(g->snd_nxt, g->snd_una + g->swnd))
			room = 0;
		if (n > room)
			n = room;
		if (n > FZ_GOOD_SEND)
			n = FZ_GOOD_SEND;
		if (n) {
			for (k = 0; k < n; k++)
				buf[k] = fz_pattern(i, off + k);
			fz_good_seg(g, FZ_TCP_ACK | FZ_TCP_PSH, g->snd_nxt, buf, n);
			g->snd_nxt += n;
			g->ack_due = false;
			sent = true;
		}
		/* FIN right after the last byte, also when that went again */
		if (g->closing && g->snd_nxt == g->iss + 1 + FZ_GOOD_BYTES) {
			fz_good_seg(g, FZ_TCP_FIN | FZ_TCP_ACK, g->snd_nxt, NULL, 0);
			g->snd_nxt++;
			g->fin_sent = true;
			g->ack_due = false;
			sent = true;
		}
		if (g->ack_due) {
			fz_good_seg(g, FZ_TCP_ACK, g->snd_nxt, NULL, 0);
			g->ack_due = false;
			sent = true;
		}
		if (fz_after(g->snd_nxt, g->snd_max))
			g->snd_max = g->snd_nxt;
	}
	return sent;
}

void fz_good_tick(uint32_t ms)
{
	unsigned i;

	for (i = 0; i < FZ_NGOOD; i++) {
		struct fz_good *g = &fz_good[i];

		if (g->snd_una == g->snd_max) {
			g->idle_ms = 0;
			continue;
		}
		g->idle_ms += ms;
		if (g->idle_ms < FZ_GOOD_RTO)
			continue;
		g->idle_ms = 0;
		if (g->st == G_SYN_SENT)
			g->st = G_CLOSED; /* SYN again */
		else
			g->snd_nxt = g->snd_una; /* go back */
	}
}

/* The good context's slot of connection g: published raddr and rport. */
static uint32_t fz_good_find(const struct fz_good *g)
{
	struct kbs_ctx *c = fz_app_ctx();
	uint32_t i;

	for (i = 0; i < c->nslots; i++) {
		struct kbq_sock *q = kbq_sock_at(c->r, i);

		if (c->s[i].life != KBS_L_FREE && c->s[i].pcb &&
		    kbq_ld(&q->raddr) == __builtin_bswap32(FZ_GOOD_IP) &&
		    kbq_ld(&q->rport) == __builtin_bswap16(g->port))
			return i;
	}
	return UINT32_MAX;
}

bool fz_good_check(void)
{
	struct kbs_ctx *c = fz_app_ctx();
	bool all = true;
	unsigned i;

	for (i = 0; i < FZ_NGOOD; i++) {
		struct fz_good *g = &fz_good[i];
		struct kbs_sock *s;
		struct kbq_sock *q;

		if (g->st != G_EST) {
			all = false;
			continue;
		}
		if (g->slot == UINT32_MAX)
			g->slot = fz_good_find(g);
		if (g->slot == UINT32_MAX) {
			all = false;
			continue;
		}
		s = &c->s[g->slot];
		q = kbq_sock_at(c->r, g->slot);
		if (kbq_ld(&q->ev) & KBQ_EV_ERR)
			fz_good_fail(g, "its socket has an error");
		if (g->fin_sent)
			continue; /* the application closes it once it has read to EOF */
		if (s->life != KBS_L_ESTABLISHED || !s->pcb)
			fz_good_fail(g, "its slot is no longer an established connection");
		if (kbq_ld(&q->state) != KBQ_S_ESTABLISHED)
			fz_good_fail(g, "its slot's published state changed");
	}
	return all;
}

void fz_good_close(void)
{
	unsigned i;

	for (i = 0; i < FZ_NGOOD; i++)
		fz_good[i].closing = true;
}

bool fz_good_done(void)
{
	unsigned i;

	for (i = 0; i < FZ_NGOOD; i++) {
		const struct fz_good *g = &fz_good[i];

		if (!g->fin_rcvd || !g->fin_sent || g->ack_due ||
		    g->snd_una != g->iss + 2 + FZ_GOOD_BYTES)
			return false;
		if (g->echoed != FZ_GOOD_BYTES || g->app_got != FZ_GOOD_BYTES)
			fz_good_fail(g, "the connection ended before every byte came back");
	}
	return true;
}

uint32_t fz_good_slot(unsigned i)
{
	return i < FZ_NGOOD ? fz_good[i].slot : UINT32_MAX;
}

/* ---- the hostile application's peer ------------------------------------- */

struct fz_hflow {
	bool used, synced;    /* synced: the stack's SYN seen */
	uint16_t sport;       /* the stack's port */
	uint16_t pport;       /* ours */
	uint32_t snxt;        /* the stack's next sequence number, as far as seen */
	uint32_t pnxt;        /* ours */
};

static struct fz_hflow fz_hflows[FZ_HFLOWS];
static unsigned fz_hflow_next; /* the entry a new flow replaces when all are used */

static struct fz_hflow *fz_hflow_get(uint16_t sport, uint16_t pport, bool make)
{
	struct fz_hflow *f;
	unsigned i;

	for (i = 0; i < FZ_HFLOWS; i++)
		if (fz_hflows[i].used && fz_hflows[i].sport == sport && fz_hflows[i].pport == pport)
			return &fz_hflows[i];
	if (!make)
		return NULL;
	for (i = 0; i < FZ_HFLOWS && fz_hflows[i].used; i++)
		;
	if (i == FZ_HFLOWS)
		i = fz_hflow_next++ % FZ_HFLOWS;
	f = &fz_hflows[i];
	memset(f, 0, sizeof(*f));
	f->used = true;
	f->sport = sport;
	f->pport = pport;
	f->pnxt = 0x10000000u + pport * 0x1000u; /* our ISN */
	return f;
}

static void fz_hpeer_rx(const struct fz_rx *r)
{
	struct fz_hflow *f = fz_hflow_get(r->sport, r->dport, r->flags & FZ_TCP_SYN);
	uint32_t end;

	if (!f)
		return;
	if (r->flags & FZ_TCP_SYN) {
		f->snxt = r->seq + 1 + r->len;
		f->synced = true;
		return;
	}
	end = r->seq + r->len + (r->flags & FZ_TCP_FIN ? 1 : 0);
	if (!f->synced || fz_after(end, f->snxt))
		f->snxt = end;
}

/*
 * A segment record: sel flags len mods [seq] [ack]
 *   sel    bit 7: a new flow from port FZ_HPEER_PORT + bits 0-4 to port
 *          FZ_HPORT + bits 5-6 (our ISN fresh); else flow sel % flows known
 *   flags  TCP flags (bits 0-5)
 *   len    payload bytes
 *   mods   bits 0-1 seq: ours next; + a signed byte; 4 raw bytes; + 2^31
 *          bits 2-3 ack: the stack's next; + a signed byte; 4 raw bytes; - 2^31
 *          bit 4 window 0 (else 65535); bit 5 a SYN offers window scaling and
 *          SACK; bit 6 a bad checksum; bit 7 our next number stays
 */
void fz_hpeer_seg(struct fz_in *in)
{
	static const uint8_t syn_opt[] = { 2, 4, FZ_MSS >> 8, FZ_MSS & 0xff, 1, 3, 3, 7, 1, 1, 4, 2 };
	static uint8_t data[256];
	uint8_t sel = fz_in_u8(in), flags = fz_in_u8(in) & 0x3f, len = fz_in_u8(in);
	uint8_t mods = fz_in_u8(in);
	struct fz_seg s = { .src_ip = FZ_PEER_IP, .mac = fz_peer_mac };
	struct fz_hflow *f;
	unsigned i, n;

	if (sel & 0x80) {
		f = fz_hflow_get(FZ_HPORT + ((sel >> 5) & 3), FZ_HPEER_PORT + (sel & 0x1f), true);
		f->synced = false;
		f->snxt = 0;
		f->pnxt = 0x10000000u + f->pport * 0x1000u + (fz_hflow_next << 20);
	} else {
		for (i = 0, n = 0; i < FZ_HFLOWS; i++)
			n += fz_hflows[i].used;
		if (!n)
			return;
		for (i = 0, n = sel % n;; i++)
			if (fz_hflows[i].used && !n--)
				break;
		f = &fz_hflows[i];
	}
	s.sport = f->pport;
	s.dport = f->sport;
	s.flags = flags;
	switch (mods & 3) {
	case 0: s.seq = f->pnxt; break;
	case 1: s.seq = f->pnxt + (uint32_t)(int8_t)fz_in_u8(in); break;
	case 2: s.seq = fz_in_u32(in); break;
	default: s.seq = f->pnxt + (1u << 31); break;
	}
	switch ((mods >> 2) & 3) {
	case 0: s.ack = f->snxt; break;
	case 1: s.ack = f->snxt + (uint32_t)(int8_t)fz_in_u8(in); break;
	case 2: s.ack = fz_in_u32(in); break;
	default: s.ack = f->snxt - (1u << 31); break;
	}
	s.win = mods & 0x10 ? 0 : 65535;
	if (flags & FZ_TCP_SYN) {
		s.opt = syn_opt;
		s.optlen = mods & 0x20 ? sizeof(syn_opt) : 4;
	}
	s.bad_csum = mods & 0x40;
	for (i = 0; i < len; i++)
		data[i] = (uint8_t)('a' + (f->pnxt + i) % 26);
	s.data = data;
	s.len = len;
	fz_seg_send(&s);
	if (!(mods & 0x80) && !(mods & 3))
		f->pnxt += len + (flags & FZ_TCP_SYN ? 1 : 0) + (flags & FZ_TCP_FIN ? 1 : 0);
}

/* ---- both ---------------------------------------------------------------- */

static void fz_peer_tx(const uint8_t *frame, size_t len)
{
	struct fz_rx r;

	if (!fz_rx_parse(frame, len, &r))
		return;
	if (r.dst_ip == FZ_GOOD_IP)
		fz_good_rx(&r);
	else if (r.dst_ip == FZ_PEER_IP)
		fz_hpeer_rx(&r);
}

bool fz_peer_spoofed(const uint8_t *f, size_t len)
{
	if (len >= 14 + 20 && fz_rd16(f + 12) == 0x0800)
		return fz_rd32(f + 14 + 12) == FZ_GOOD_IP;
	if (len >= 14 + 28 && fz_rd16(f + 12) == 0x0806)
		return fz_rd32(f + 14 + 14) == FZ_GOOD_IP; /* its sender address */
	return false;
}

void fz_peer_init(void)
{
	fz_port_arp(FZ_GOOD_IP, fz_good_mac);
	fz_port_tx_hook = fz_peer_tx;
	fz_app_rx_hook = fz_good_app_rx;
}

void fz_peer_reset(void)
{
	unsigned i;

	memset(fz_hflows, 0, sizeof(fz_hflows));
	fz_hflow_next = 0;
	memset(fz_good, 0, sizeof(fz_good));
	for (i = 0; i < FZ_NGOOD; i++) {
		fz_good[i].port = (uint16_t)(FZ_GOOD_SPORT + i);
		fz_good[i].iss = 0x20000000u * (i + 1);
		fz_good[i].slot = UINT32_MAX;
	}
}
