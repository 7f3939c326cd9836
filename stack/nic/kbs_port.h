/*
 * kbs_port.h — DPDK side of kbstackd: EAL start-up, the packet pool and the
 * one port with one rx/tx queue pair. No lwIP here (see kbs_netif.h).
 */
#ifndef KBS_PORT_H
#define KBS_PORT_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "kbs_config.h"

#define KBS_RX_DESC  2048 /* the rx ring; see kbs_netif.c: read often, not a larger ring */

struct kbs_port {
	uint16_t id;
	struct rte_mempool *pool;
	struct rte_ether_addr mac;
	uint16_t mtu;
	bool rx_cksum;   /* port verifies IPv4 + TCP checksums on receive */
	bool tx_cksum;   /* port computes IPv4 + TCP checksums on send */
	bool started;
	int xsk[4];      /* af_xdp: the port's XDP sockets (-1 none), for their drops */
};

/*
 * Start the EAL for configuration c: pinned to c->core, --no-pci plus
 * --vdev for a vdev or -a for a PCI device, hugepages in memory when the
 * machine has them (--no-huge otherwise), then c->eal. file_prefix keeps
 * concurrent daemons apart. Returns 0 or -errno (message printed).
 */
int kbs_eal_init(const struct kbs_config *c, const char *file_prefix);

/* rte_eal_cleanup(), and remove the runtime directory EAL leaves. */
void kbs_eal_cleanup(void);

/*
 * Create the pool (mbufs with room for lwIP's pbuf_custom in their private
 * area), configure and start the port named by c->dev. 0 or -errno.
 */
int kbs_port_open(const struct kbs_config *c, struct kbs_port *p);

/* Create a pool only (unit tests build ports of their own). */
struct rte_mempool *kbs_pool_create(const char *name, unsigned n);

/* Configure and start an already probed port with pool p->pool. */
int kbs_port_start(struct kbs_port *p, const uint8_t *mac_override);

/*
 * Ready a frame for the port's tx checksum offload (p->tx_cksum): lwIP
 * left the IPv4 and TCP checksums zero; the NIC wants the IPv4 one zero and
 * the TCP one seeded with the pseudo-header sum.
 */
void kbs_port_tx_cksum_prepare(struct rte_mbuf *m);

/*
 * Frames the kernel dropped before the port's queue (af_xdp: its rx ring
 * full, or no free buffer in its fill ring) — the port's own counters
 * (imissed) leave these out. 0 for other ports.
 */
uint64_t kbs_port_ring_drops(const struct kbs_port *p);

/* Stop and close the port (for af_xdp this detaches the XDP program). */
void kbs_port_close(struct kbs_port *p);

#endif /* KBS_PORT_H */
