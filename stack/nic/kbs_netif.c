/*
 * kbs_netif.c — rx and tx between DPDK mbufs and lwIP pbufs.
 *
 * Invariant: every mbuf received is, exactly once, either freed here (drop,
 * counted by reason) or owned by a pbuf whose free function returns it.
 */
#include "kbs_netif.h"

#include <errno.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_mbuf.h>

/* rte_ethdev.h pulls in <netinet/ip.h>, whose fragment-flag macros lwIP
 * defines again (same values). lwIP's are the ones used below. */
#undef IP_RF
#undef IP_DF
#undef IP_MF
#undef IP_OFFMASK

#include "lwip/etharp.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/sys.h"
#include "netif/ethernet.h"

#include "kbq_abi.h"
#include "kbs_hooks.h"

#include "kbs_stats.h"

#define KBS_TX_RETRIES 8
/*
 * What arrives while kbstackd sends must be read before the port's queue
 * overflows. On veth the peer's kernel runs its receive path inside our own
 * send calls, so its ACKs land in the queue as we send; a frame the queue
 * has no room for is dropped (kbstat rx_drop_ring): an ACK or a request
 * lost, often a retransmission timeout of 1-2 s later. Measured with 64
 * connections each fetching 1 MiB responses (wrk -c64): an iteration sent
 * ~1500 frames, the ring (1024) overflowed, and a 4096-entry ring only
 * moved the drops to af_xdp's fill ring (rx_fill_ring_empty_descs: DPDK
 * posts a fixed number of buffers). So the ring is 2048 and the port is
 * also read between two sockets of the sweep once KBS_TX_BEFORE_RX frames
 * went out since it was last read dry (kbs_netif_rx_due) — up to
 * KBS_RX_BURSTS bursts each time.
 */
#define KBS_RX_BURSTS    32

/* Checksum work lwIP does itself, per frame, when the port did not. */
#define KBS_CK_SW_RX (NETIF_CHECKSUM_CHECK_IP | NETIF_CHECKSUM_CHECK_TCP)
#define KBS_CK_SW_TX (NETIF_CHECKSUM_GEN_IP | NETIF_CHECKSUM_GEN_TCP)

/*
 * Segments beyond a hole wait in lwIP's queue in the frames they came in
 * (receive is zero-copy), so each holds an mbuf of the one pool the port
 * receives into, for every application. lwIP lets a connection hold a
 * window's worth (kbs_tcp_ooseq_max): a peer that opens connections and
 * never fills their holes — or many honest ones recovering at once — could
 * take the whole pool, and the port would receive nothing more, for
 * anyone. So the frames lwIP holds are counted (kbs_rx_held: wrapped in a
 * pbuf, not yet freed) and bounded to half of what the rx ring leaves of
 * the pool. At the bound no out-of-order queue grows: the segment that
 * arrives is dropped (kbs_tcp_ooseq_limit: lwIP drops from the highest
 * sequence number down, and the newest is nearly always the highest), so
 * it is never SACKed and its sender sends it again as any loss. What was
 * SACKed stays: a receiver that drops SACKed data (RFC 2018 allows it)
 * leaves a Linux sender waiting for retransmission timeouts, doubling —
 * 64 uploads at once at 10 % loss with 1 MiB windows, some stalled for
 * more than 300 s when every queue beyond its share was cut to it. Only a
 * queue whose hole has not moved for KBS_OOSEQ_STUCK_MS (a peer that never
 * fills it, or one nobody reads) is dropped whole: within a millisecond of
 * the bound being met (or while seven eighths of it are held),
 * kbs_netif_ooseq_prune drops such queues, those beyond a connection's
 * share (KBS_OOSEQ_SHARE) first, until three quarters of the bound are
 * held. Counted: tcp_ooseq_pruned (segments dropped either way).
 */
#define KBS_OOSEQ_SHARE ((256u * 1024 / TCP_MSS + 12) / 8) /* 23 frames, whatever KB_RING */

static unsigned kbs_rx_held;     /* received frames lwIP holds */
static unsigned kbs_rx_held_max; /* 0 (no port yet): lwIP's bound alone */
static bool kbs_rx_pressed;      /* the bound was met since the last prune */

static unsigned kbs_ooseq_frames(const struct tcp_pcb *pcb)
{
	const struct tcp_seg *g;
	unsigned n = 0;

	for (g = pcb->ooseq; g; g = g->next)
		n += pbuf_clen(g->p);
	return n;
}

u16_t kbs_tcp_ooseq_limit(const struct tcp_pcb *pcb)
{
	unsigned n;

	if (!kbs_rx_held_max || kbs_rx_held < kbs_rx_held_max)
		return kbs_tcp_ooseq_max();
	kbs_rx_pressed = true;
	n = kbs_ooseq_frames(pcb); /* with the segment just queued */
	if (!n)
		return kbs_tcp_ooseq_max();
	KBS_STAT_ADD(tcp_ooseq_pruned, 1);
	return (u16_t)(n - 1); /* the highest: the one just queued */
}

/* The prune walks the active PCBs: with many connections and the bound
 * met again and again (a flood), it would take the core. Its calls are
 * skipped so that it visits at most this many PCBs a call on average; the
 * bound itself holds meanwhile (kbs_tcp_ooseq_limit). */
#define KBS_PRUNE_PCBS 4096

void kbs_netif_ooseq_prune(void)
{
	static unsigned skip;
	unsigned pass, n, seen = 0;
	struct tcp_pcb *pcb;
	u32_t now;

	if (skip) {
		skip--;
		return;
	}
	if (!kbs_rx_held_max || (!kbs_rx_pressed && kbs_rx_held < kbs_rx_held_max / 8 * 7))
		return;
	kbs_rx_pressed = false;
	now = sys_now();
	for (pass = 0; pass < 2; pass++) { /* beyond the share first, then any stuck */
		for (pcb = tcp_active_pcbs; pcb && kbs_rx_held > kbs_rx_held_max / 4 * 3;
		     pcb = pcb->next) {
			seen++;
			if (!pcb->ooseq || !kbs_tcp_ooseq_stuck(pcb, now))
				continue;
			n = kbs_ooseq_frames(pcb);
			if (pass == 0 && n <= KBS_OOSEQ_SHARE)
				continue;
			tcp_free_ooseq(pcb);
			KBS_STAT_ADD(tcp_ooseq_pruned, n);
		}
	}
	skip = seen / KBS_PRUNE_PCBS;
}

unsigned kbs_netif_rx_held(void)
{
	return kbs_rx_held;
}

void kbs_netif_set_rx_held_max(unsigned n)
{
	kbs_rx_held_max = n;
}

static void kbs_pbuf_free(struct pbuf *p)
{
	/* The pbuf_custom is the mbuf's private area, right behind it. */
	rte_pktmbuf_free((struct rte_mbuf *)(void *)p - 1);
	kbs_rx_held--;
}

/*
 * Per-frame rx checksum policy: a port that verified both checksums spares
 * lwIP the work; a port that saw a bad one drops the frame; anything else
 * (unknown, not TCP) is checked by lwIP in software.
 */
static int kbs_rx_cksum(struct kbs_netif *ni, const struct rte_mbuf *m)
{
	uint64_t ip = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	uint64_t l4 = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
	uint16_t flags = NETIF_CHECKSUM_ENABLE_ALL;

	if (ip == RTE_MBUF_F_RX_IP_CKSUM_BAD || l4 == RTE_MBUF_F_RX_L4_CKSUM_BAD)
		return -EINVAL;
	if (ip == RTE_MBUF_F_RX_IP_CKSUM_GOOD && l4 == RTE_MBUF_F_RX_L4_CKSUM_GOOD)
		flags &= (uint16_t)~KBS_CK_SW_RX;
	if (ni->port->tx_cksum)
		flags &= (uint16_t)~KBS_CK_SW_TX;
	NETIF_SET_CHECKSUM_CTRL(&ni->netif, flags);
	return 0;
}

static unsigned kbs_netif_rx_burst(struct kbs_netif *ni)
{
	struct rte_mbuf *pkts[KBS_BURST];
	uint64_t bytes = 0;
	unsigned i, n;

	n = rte_eth_rx_burst(ni->port->id, 0, pkts, KBS_BURST);
	if (n)
		tcp_burst_begin(); /* output waits for the batch's end (lwIP patch 0032) */
	for (i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct pbuf_custom *pc = rte_mbuf_to_priv(m);
		struct pbuf *p;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		bytes += m->pkt_len;
		if (unlikely(m->nb_segs != 1)) {
			KBS_STAT_ADD(rx_drop_multiseg, 1);
			rte_pktmbuf_free(m);
			continue;
		}
		if (ni->port->rx_cksum && unlikely(kbs_rx_cksum(ni, m))) {
			KBS_STAT_ADD(rx_drop_cksum, 1);
			rte_pktmbuf_free(m);
			continue;
		}
		pc->custom_free_function = kbs_pbuf_free;
		p = pbuf_alloced_custom(PBUF_RAW, m->data_len, PBUF_REF, pc,
					rte_pktmbuf_mtod(m, void *), m->data_len);
		if (unlikely(!p)) {
			KBS_STAT_ADD(rx_drop_nopbuf, 1);
			rte_pktmbuf_free(m);
			continue;
		}
		kbs_rx_held++;
		/* ethernet_input consumes p on ERR_OK, leaves it to us otherwise. */
		if (ni->netif.input(p, &ni->netif) != ERR_OK) {
			KBS_STAT_ADD(rx_drop_input, 1);
			pbuf_free(p);
		}
		kbs_tcp_reinput(&ni->netif);
	}
	if (n) {
		tcp_burst_end(); /* what the batch called for goes out */
		KBS_STAT_ADD(rx_packets, n);
		KBS_STAT_ADD(rx_bytes, bytes);
	}
	return n;
}

unsigned kbs_netif_rx(struct kbs_netif *ni)
{
	unsigned n = 0, k, bursts = 0;

	/* Bursts until the queue is drained, up to a cap so the sweep of the
	 * applications' sockets still comes round. */
	do {
		/* What the last burst's input sends counts towards the next read. */
		ni->tx_since_rx = 0;
		k = kbs_netif_rx_burst(ni);
		n += k;
	} while (k == KBS_BURST && ++bursts < KBS_RX_BURSTS);
	/* Left frames behind: read again after the next socket of the sweep. */
	if (k == KBS_BURST)
		ni->tx_since_rx = KBS_TX_BEFORE_RX;
	return n;
}

unsigned kbs_netif_rx_due(void)
{
	struct kbs_netif *ni = netif_default ? netif_default->state : NULL;

	if (!ni || ni->tx_since_rx < KBS_TX_BEFORE_RX)
		return 0;
	kbs_netif_tx_flush(ni);
	return kbs_netif_rx(ni);
}

unsigned kbs_netif_tx_flush(struct kbs_netif *ni)
{
	uint16_t sent = 0, n = ni->tx_n;
	uint64_t bytes = 0;
	int tries = 0;
	unsigned i;

	if (!n)
		return 0;
	/* A full queue drains as the port sends; retry briefly, then drop
	 * rather than stall the loop (TCP retransmits). */
	while (sent < n && tries++ < KBS_TX_RETRIES)
		sent += rte_eth_tx_burst(ni->port->id, 0, ni->tx + sent, n - sent);
	for (i = 0; i < sent; i++)
		bytes += ni->tx[i]->pkt_len;
	if (unlikely(sent < n)) {
		KBS_STAT_ADD(tx_drop_full, n - sent);
		rte_pktmbuf_free_bulk(ni->tx + sent, n - sent);
	}
	KBS_STAT_ADD(tx_packets, sent);
	KBS_STAT_ADD(tx_bytes, bytes);
	ni->tx_n = 0;
	return sent;
}

static err_t kbs_linkoutput(struct netif *netif, struct pbuf *p)
{
	struct kbs_netif *ni = netif->state;
	struct rte_mbuf *m;
	char *data;

	if (unlikely(p->tot_len > ni->port->mtu + RTE_ETHER_HDR_LEN)) {
		KBS_STAT_ADD(tx_drop_toobig, 1);
		return ERR_BUF;
	}
	m = rte_pktmbuf_alloc(ni->port->pool);
	if (unlikely(!m)) {
		KBS_STAT_ADD(tx_drop_nombuf, 1);
		return ERR_MEM;
	}
	data = rte_pktmbuf_append(m, p->tot_len);
	pbuf_copy_partial(p, data, p->tot_len, 0);
	if (ni->port->tx_cksum)
		kbs_port_tx_cksum_prepare(m);
	ni->tx[ni->tx_n++] = m;
	ni->tx_since_rx++;
	if (ni->tx_n == KBS_BURST)
		kbs_netif_tx_flush(ni);
	return ERR_OK;
}

static err_t kbs_netif_setup(struct netif *netif)
{
	struct kbs_netif *ni = netif->state;

	netif->name[0] = 'k';
	netif->name[1] = 'b';
	netif->output = etharp_output;
	netif->linkoutput = kbs_linkoutput;
	netif->mtu = ni->port->mtu;
	netif->hwaddr_len = ETH_HWADDR_LEN;
	memcpy(netif->hwaddr, ni->port->mac.addr_bytes, ETH_HWADDR_LEN);
	netif->flags = NETIF_FLAG_BROADCAST | NETIF_FLAG_ETHARP | NETIF_FLAG_ETHERNET;
	NETIF_SET_CHECKSUM_CTRL(netif, ni->port->tx_cksum
				? (uint16_t)(NETIF_CHECKSUM_ENABLE_ALL & ~KBS_CK_SW_TX)
				: NETIF_CHECKSUM_ENABLE_ALL);
	return ERR_OK;
}

int kbs_netif_init(struct kbs_netif *ni, struct kbs_port *port,
		   uint32_t ip, uint32_t netmask, uint32_t gw)
{
	ip4_addr_t a, m, g;

	if (rte_pktmbuf_priv_size(port->pool) < sizeof(struct pbuf_custom))
		return -EINVAL;
	memset(ni, 0, sizeof(*ni));
	ni->port = port;
	kbs_rx_held_max = port->pool->size > KBS_RX_DESC ? (port->pool->size - KBS_RX_DESC) / 2 : 1;
	ip4_addr_set_u32(&a, ip);
	ip4_addr_set_u32(&m, netmask);
	ip4_addr_set_u32(&g, gw);
	if (!netif_add(&ni->netif, &a, &m, &g, ni, kbs_netif_setup, ethernet_input))
		return -EINVAL;
	netif_set_default(&ni->netif);
	netif_set_up(&ni->netif);
	netif_set_link_up(&ni->netif);
	return 0;
}
