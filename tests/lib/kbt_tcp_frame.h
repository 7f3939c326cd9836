/*
 * kbt_tcp_frame.h — hand-made IPv4 + TCP frames (no Ethernet header) to
 * feed lwIP directly, with correct checksums. Header-only, for the lwIP
 * unit test (tests/unit/test_lwip_close.c) and bench/lwip_demux.c; include
 * after lwIP's headers (lwip/inet_chksum.h, lwip/prot/ip4.h,
 * lwip/prot/tcp.h, lwip/pbuf.h).
 */
#ifndef KBT_TCP_FRAME_H
#define KBT_TCP_FRAME_H

#include <string.h>

/* Write at F a frame from SRC:SPORT to DST:DPORT (host order) with SEQ,
 * ACK, FLAGS, OLEN bytes of TCP options OPT (a multiple of 4) and DLEN
 * bytes of data ('x'); F holds IP_HLEN + TCP_HLEN + OLEN + DLEN bytes. */
static inline void kbt_tcp_frame(u8_t *f, u32_t src, u16_t sport, u32_t dst, u16_t dport,
				 u32_t seq, u32_t ack, u8_t flags,
				 const u8_t *opt, int olen, int dlen)
{
	int hl = TCP_HLEN + olen, len = IP_HLEN + hl + dlen;
	struct ip_hdr *ip = (struct ip_hdr *)f;
	struct tcp_hdr *th = (struct tcp_hdr *)(f + IP_HLEN);
	ip_addr_t s, d;
	struct pbuf *q;

	memset(f, 'x', (size_t)len);
	memset(f, 0, IP_HLEN + TCP_HLEN);
	if (olen)
		memcpy(f + IP_HLEN + TCP_HLEN, opt, (size_t)olen);
	IPH_VHL_SET(ip, 4, IP_HLEN / 4);
	IPH_LEN_SET(ip, lwip_htons((u16_t)len));
	IPH_TTL_SET(ip, 64);
	IPH_PROTO_SET(ip, IP_PROTO_TCP);
	ip->src.addr = lwip_htonl(src);
	ip->dest.addr = lwip_htonl(dst);
	IPH_CHKSUM_SET(ip, inet_chksum(ip, IP_HLEN));
	th->src = lwip_htons(sport);
	th->dest = lwip_htons(dport);
	th->seqno = lwip_htonl(seq);
	th->ackno = lwip_htonl(ack);
	TCPH_HDRLEN_FLAGS_SET(th, hl / 4, flags);
	th->wnd = lwip_htons(65535);
	ip_addr_set_ip4_u32(&s, ip->src.addr);
	ip_addr_set_ip4_u32(&d, ip->dest.addr);
	q = pbuf_alloc(PBUF_RAW, (u16_t)(hl + dlen), PBUF_REF);
	q->payload = th;
	th->chksum = ip_chksum_pseudo(q, IP_PROTO_TCP, (u16_t)(hl + dlen), &s, &d);
	pbuf_free(q);
}

#endif /* KBT_TCP_FRAME_H */
