/*
 * kbs_tcp_hooks.c — lwIP TCP hooks: LWIP_HOOK_TCP_INPACKET_PCB (below) and
 * LWIP_HOOK_TCP_EVENT (recovery counters for kbstat, at the end). For a
 * listener, the hook asks kbs_tcp_listen_input whether a SYN finds room.
 *
 * A new SYN for a 4-tuple lwIP still holds in TIME_WAIT: lwIP answers it
 * with an ACK and the client's connect hangs until TIME_WAIT ends. Servers
 * that close first (HTTP/1.0, Connection: close) leave many TIME_WAIT PCBs,
 * and clients reuse ports, so this happens in practice. Like Linux, accept
 * the SYN: drop the TIME_WAIT PCB and feed the same frame in again, so a
 * listener takes it.
 *
 * Linux takes such a SYN when its sequence number is beyond the old
 * connection's, or when TCP timestamps show it is newer (RFC 6191). lwIP
 * has no timestamps, and a client's next ISN for the same 4-tuple is its
 * previous one plus 1 per 64 ns: a connection that carried more bytes than
 * that in its life (16 KiB in under a millisecond, say) leaves the new ISN
 * below the old rcv_nxt, and the client would wait a second per retry. So
 * every SYN is taken; what is given up is RFC 793's guard against an old
 * duplicate SYN of this same 4-tuple still in the network (a risk Linux
 * also takes with timestamps, which most clients send).
 */
#include "lwip/ip.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/prot/tcp.h"
#include "lwip/stats.h"
#include "lwip/tcp.h"

#include "kbs_hooks.h"
#include "kbs_stats.h"

static struct pbuf *kbs_tw_syn;    /* the SYN to feed in again */
static struct tcp_hdr *kbs_tw_hdr; /* its TCP header, inside the frame */
static u16_t kbs_tw_syn_hlen;      /* IP + TCP header bytes in front of its payload */

err_t kbs_tcp_inpacket(struct tcp_pcb *pcb, struct tcp_hdr *hdr, u16_t optlen,
		       u16_t opt1len, u8_t *opt2, struct pbuf *p)
{
	(void)opt1len;
	(void)opt2;
	if (pcb->state == LISTEN) /* whether a SYN finds room: kbs_tcp.c */
		return kbs_tcp_listen_input((struct tcp_pcb_listen *)pcb, TCPH_FLAGS(hdr));
	if (pcb->state != TIME_WAIT || kbs_tw_syn)
		return ERR_OK;
	/* tcp_input has turned the header's ports, numbers and window into
	 * host order in place; the flags are still as received. */
	if ((TCPH_FLAGS(hdr) & (TCP_SYN | TCP_ACK | TCP_RST)) != TCP_SYN)
		return ERR_OK;
	tcp_abort(pcb); /* a TIME_WAIT PCB is removed and freed, no RST sent */
	pbuf_ref(p);
	kbs_tw_syn = p;
	kbs_tw_hdr = hdr;
	kbs_tw_syn_hlen = (u16_t)(ip_current_header_tot_len() + TCP_HLEN + optlen);
	return ERR_ABRT; /* tcp_input drops its reference and returns */
}

void kbs_tcp_reinput(struct netif *netif)
{
	struct pbuf *p = kbs_tw_syn;

	if (!p)
		return;
	kbs_tw_syn = NULL;
	/* Back to the bytes as received (the checksum is checked again). */
	kbs_tw_hdr->src = lwip_htons(kbs_tw_hdr->src);
	kbs_tw_hdr->dest = lwip_htons(kbs_tw_hdr->dest);
	kbs_tw_hdr->seqno = lwip_htonl(kbs_tw_hdr->seqno);
	kbs_tw_hdr->ackno = lwip_htonl(kbs_tw_hdr->ackno);
	kbs_tw_hdr->wnd = lwip_htons(kbs_tw_hdr->wnd);
	if (pbuf_header_force(p, (s16_t)kbs_tw_syn_hlen)) {
		pbuf_free(p);
		return;
	}
	ip4_input(p, netif); /* consumes p */
}

void kbs_tcp_event(struct tcp_pcb *pcb, int ev)
{
	(void)pcb;
	switch ((enum lwip_tcp_event)ev) {
	case LWIP_TCP_EV_REXMIT_SEG:    KBS_STAT_ADD(tcp_rexmit_segs, 1); break;
	case LWIP_TCP_EV_RTO:           KBS_STAT_ADD(tcp_rto, 1); break;
	case LWIP_TCP_EV_FAST_REXMIT:   KBS_STAT_ADD(tcp_fast_rexmit, 1); break;
	case LWIP_TCP_EV_FAST_RECOVERY: KBS_STAT_ADD(tcp_fast_recovery, 1); break;
	case LWIP_TCP_EV_RX_OOSEQ:      KBS_STAT_ADD(tcp_rx_ooseq, 1); break;
	case LWIP_TCP_EV_RX_DUP:        KBS_STAT_ADD(tcp_rx_dup, 1); break;
	case LWIP_TCP_EV_PROBE:         KBS_STAT_ADD(tcp_loss_probes, 1); break;
	}
}

u16_t kbs_tcp_ooseq_max(void)
{
	return (u16_t)(kbs_tcp_wnd / TCP_MSS + 12);
}

void kbs_tcp_set_cc(int cc)
{
	tcp_cc_default = cc == TCP_CC_BBR ? TCP_CC_BBR : TCP_CC_RENO;
}

/*
 * TIME_WAIT bounded, as Linux bounds it (tcp_max_tw_buckets): a server that
 * closes first leaves one TIME_WAIT PCB per connection for 60 s, and past
 * a sixtieth of the PCB bound a second (4369 at the default 262144) they
 * would fill it. lwIP then frees
 * the oldest one for each new connection (tcp_kill_timewait), walking the
 * whole TIME_WAIT list twice per connection: the connection rate falls as
 * the list grows. Instead, when more than half the pool is in TIME_WAIT,
 * the oldest ones (the list's tail: lwIP puts a PCB at its head when it
 * enters TIME_WAIT) are freed in one walk, down to a quarter of the pool.
 * A slot still holding such a PCB learns of it by the destroy callback
 * (kbs_life.c), as for any TIME_WAIT that ends. The walk also counts the
 * list for kbstat (tcp_timewait): it runs every 8th call (512 ms) unless
 * more than half the pool is in use, when TIME_WAIT may pass the bound
 * (~14000 PCBs walked every 64 ms under churn were 2.7 % of the cycles).
 */
void kbs_tcp_tw_trim(void)
{
	static unsigned calls;
	/* half and a quarter of the PCB bound (KB_TCP_PCBS) */
	size_t high = kbs_memp_limit[MEMP_TCP_PCB] / 2, low = high / 2, n = 0;
	struct tcp_pcb *pcb = tcp_tw_pcbs, *cut = NULL, *next;

	if (++calls % 8 && lwip_stats.memp[MEMP_TCP_PCB]->used <= high)
		return;

	for (; pcb; pcb = pcb->next)
		if (++n == low)
			cut = pcb;
	KBS_STAT_SET(tcp_timewait, n <= high ? n : low);
	if (n <= high) /* (above it, cut is the low-th) */
		return;
	pcb = cut->next;
	cut->next = NULL;
	for (; pcb; pcb = next) {
		next = pcb->next;
		TCP_PCB_HASH_RMV(pcb);
		tcp_pcb_purge(pcb);
		tcp_free(pcb);
		KBS_STAT_ADD(tcp_tw_recycled, 1);
	}
}
