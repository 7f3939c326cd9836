/*
 * kbs_netif.h — the lwIP network interface over one DPDK port.
 *
 * Receive: each mbuf is wrapped, without a copy, in the pbuf_custom that
 * lives in its private area and handed to ethernet_input; the mbuf returns
 * to the pool when lwIP frees the pbuf. Send: linkoutput copies the pbuf
 * chain into one mbuf and queues it; the run loop flushes the queue once
 * per iteration. Runs on the stack core only.
 */
#ifndef KBS_NETIF_H
#define KBS_NETIF_H

#include <stdint.h>

#include "lwip/netif.h"

#include "kbs_port.h"

#define KBS_BURST 32
#define KBS_TX_BEFORE_RX 256 /* see kbs_netif_rx_due */

struct kbs_netif {
	struct netif netif;
	struct kbs_port *port;
	uint16_t tx_n;
	uint32_t tx_since_rx;  /* frames queued to send since the port was last read dry */
	struct rte_mbuf *tx[KBS_BURST];
};

/*
 * Add the port as lwIP's one netif with address ip/netmask and gateway gw
 * (network byte order, gw may be 0), and bring it up (a gratuitous ARP goes
 * out). lwip_init() must have run. 0 or -errno.
 */
int kbs_netif_init(struct kbs_netif *ni, struct kbs_port *port,
		   uint32_t ip, uint32_t netmask, uint32_t gw);

/* Receive what the port holds, in bursts (at most KBS_RX_BURSTS), and
 * feed it to lwIP. Returns the frames received. */
unsigned kbs_netif_rx(struct kbs_netif *ni);

/* Between two sockets of the sweep (outside lwIP): if lwIP's netif sent
 * KBS_TX_BEFORE_RX frames since the port was last read, send what is
 * queued and read the port. Returns the frames received. */
unsigned kbs_netif_rx_due(void);

/* Send what linkoutput queued. Returns the frames the port took. */
unsigned kbs_netif_tx_flush(struct kbs_netif *ni);

/* Once a millisecond, outside lwIP: if lwIP held as many received frames
 * as it may (half of what the rx ring leaves of the pool) since the last
 * call, or holds seven eighths of that now, drop out-of-order queues until
 * it holds three quarters of it (kbs_netif.c). */
void kbs_netif_ooseq_prune(void);

/* The received frames lwIP holds (out-of-order queues and the like). */
unsigned kbs_netif_rx_held(void);

/* Tests: bound them to n instead (after kbs_netif_init). */
void kbs_netif_set_rx_held_max(unsigned n);

#endif /* KBS_NETIF_H */
