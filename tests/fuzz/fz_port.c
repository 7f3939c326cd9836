/*
 * fz_port.c — kbstackd's real receive path for a fuzz target: EAL on
 * ordinary memory, a net_ring port brought up by kbs_port_start, lwIP's
 * netif from kbs_netif_init. A frame goes in as kbstackd receives one: an
 * mbuf on the port's rx ring, taken by rte_eth_rx_burst in kbs_netif_rx,
 * wrapped without a copy in the pbuf_custom of its private area.
 *
 * So that AddressSanitizer sees lwIP's accesses to those mbufs, the pool
 * uses mempool operations of our own: objects come back in FIFO order (a
 * freed mbuf is reused as late as possible) and, while in the pool, an
 * mbuf's private area (the pbuf) and data room are poisoned. A received
 * frame's headroom and the room after it are poisoned too: reading past
 * the frame, or touching a pbuf after its last pbuf_free, is reported.
 */
#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sanitizer/asan_interface.h>

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "kbs_ctx.h"
#include "kbs_netif.h"
#include "kbs_port.h"

/* lwIP's fragment macros clash with netinet/ip.h (see kbs_netif.c). */
#undef IP_RF
#undef IP_DF
#undef IP_MF
#undef IP_OFFMASK
#include "lwip/etharp.h"
#include "lwip/init.h"
#include "lwip/ip4_frag.h"

#include "fz.h"

void kbs_sys_init(void);

#define FZ_MBUFS     4095 /* rx frames held by lwIP (reassembly, out of order) and tx */
#define FZ_RX_HELD   32   /* received frames lwIP may hold (kbstackd: half the pool's spare) */
#define FZ_RING      4096
#define FZ_POOL_OPS  "kb_fuzz_fifo"

static struct kbs_port fz_port;
static bool fz_trace; /* KB_FUZZ_TRACE set: one line per frame in and out */
static struct kbs_netif fz_ni;
static struct rte_ring *fz_rx_ring, *fz_tx_ring;
void (*fz_port_tx_hook)(const uint8_t *frame, size_t len);

/* Static ARP entries: the peer's, and those fz_port_arp added. */
#define FZ_ARP_MAX 4
static struct { ip4_addr_t ip; struct eth_addr mac; } fz_arp[FZ_ARP_MAX];
static unsigned fz_narp;

/* ---- the pool: FIFO, poisoned while free -------------------------------- */

/* One pool uses these operations; its free objects, oldest first. */
static void *fz_fifo[FZ_MBUFS + 1];
static unsigned fz_fifo_head, fz_fifo_tail;
/* Not while the pool is created: rte_pktmbuf_init clears each private area
 * with memset, which ASan intercepts even in DPDK's own code. */
static bool fz_poison;

/* An mbuf's private area and data room, behind its struct rte_mbuf. */
static void fz_room(const struct rte_mempool *mp, void *obj, char **p, size_t *n)
{
	*p = (char *)obj + sizeof(struct rte_mbuf);
	*n = mp->elt_size - sizeof(struct rte_mbuf);
}

static int fz_ops_alloc(struct rte_mempool *mp)
{
	if (mp->size > FZ_MBUFS)
		return -ENOSPC;
	fz_fifo_head = fz_fifo_tail = 0;
	return 0;
}

static void fz_ops_free(struct rte_mempool *mp)
{
	(void)mp;
}

static int fz_ops_enqueue(struct rte_mempool *mp, void *const *objs, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		size_t len;
		char *p;

		if (fz_poison) {
			fz_room(mp, objs[i], &p, &len);
			ASAN_POISON_MEMORY_REGION(p, len);
		}
		fz_fifo[fz_fifo_tail] = objs[i];
		fz_fifo_tail = (fz_fifo_tail + 1) % (FZ_MBUFS + 1);
	}
	return 0;
}

static unsigned fz_ops_count(const struct rte_mempool *mp)
{
	(void)mp;
	return (fz_fifo_tail + FZ_MBUFS + 1 - fz_fifo_head) % (FZ_MBUFS + 1);
}

static int fz_ops_dequeue(struct rte_mempool *mp, void **objs, unsigned n)
{
	unsigned i;

	if (fz_ops_count(mp) < n)
		return -ENOBUFS;
	for (i = 0; i < n; i++) {
		size_t len;
		char *p;

		objs[i] = fz_fifo[fz_fifo_head];
		fz_fifo_head = (fz_fifo_head + 1) % (FZ_MBUFS + 1);
		fz_room(mp, objs[i], &p, &len);
		ASAN_UNPOISON_MEMORY_REGION(p, len);
	}
	return 0;
}

static const struct rte_mempool_ops fz_ops = {
	.name = FZ_POOL_OPS,
	.alloc = fz_ops_alloc,
	.free = fz_ops_free,
	.enqueue = fz_ops_enqueue,
	.dequeue = fz_ops_dequeue,
	.get_count = fz_ops_count,
};

/* ---- bring-up ----------------------------------------------------------- */

static void fz_die(const char *what)
{
	fprintf(stderr, "fuzz: %s failed: %s\n", what, rte_strerror(rte_errno));
	exit(1);
}

/* --lcores=0@(every CPU we may run on): EAL pins nothing we cannot use. */
static void fz_lcores(char *buf, size_t len)
{
	cpu_set_t set;
	size_t off;
	int cpu;

	off = (size_t)snprintf(buf, len, "--lcores=0@(");
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (cpu = 0; cpu < CPU_SETSIZE && off + 8 < len; cpu++)
			if (CPU_ISSET(cpu, &set))
				off += (size_t)snprintf(buf + off, len - off, "%d,", cpu);
	if (buf[off - 1] == ',')
		off--;
	else
		off += (size_t)snprintf(buf + off, len - off, "0");
	snprintf(buf + off, len - off, ")");
}

struct kbs_netif *fz_port_init(void)
{
	static char prefix[64], lcores[512];
	char *argv[] = { "kbfuzz", "--no-huge", "-m", "64", "--no-pci", "--no-shconf",
			 "--no-telemetry", "--log-level=lib.eal:error",
			 "--log-level=pmd.*:error", prefix, lcores, NULL };
	struct eth_addr peer_mac = { FZ_PEER_MAC };
	uint16_t priv = RTE_ALIGN(sizeof(struct pbuf_custom), RTE_MBUF_PRIV_ALIGN);
	unsigned i;
	int rc;

	fz_trace = getenv("KB_FUZZ_TRACE") != NULL;
	snprintf(prefix, sizeof(prefix), "--file-prefix=kbfz%d", (int)getpid());
	fz_lcores(lcores, sizeof(lcores));
	if (rte_eal_init((int)RTE_DIM(argv) - 1, argv) < 0)
		fz_die("rte_eal_init");
	/* Nothing is shared (--no-shconf): the runtime directory stays empty. */
	rmdir(rte_eal_get_runtime_dir());

	if (rte_mempool_register_ops(&fz_ops) < 0)
		fz_die("rte_mempool_register_ops");
	/* No per-core cache: every free reaches fz_ops_enqueue at once. */
	fz_port.pool = rte_pktmbuf_pool_create_by_ops("fz_pool", FZ_MBUFS, 0, priv,
						      RTE_MBUF_DEFAULT_BUF_SIZE,
						      SOCKET_ID_ANY, FZ_POOL_OPS);
	if (!fz_port.pool)
		fz_die("mbuf pool");
	fz_poison = true;
	for (i = fz_fifo_head; i != fz_fifo_tail; i = (i + 1) % (FZ_MBUFS + 1)) {
		size_t len;
		char *p;

		fz_room(fz_port.pool, fz_fifo[i], &p, &len);
		ASAN_POISON_MEMORY_REGION(p, len);
	}
	fz_rx_ring = rte_ring_create("fz_rx", FZ_RING, SOCKET_ID_ANY,
				     RING_F_SP_ENQ | RING_F_SC_DEQ);
	fz_tx_ring = rte_ring_create("fz_tx", FZ_RING, SOCKET_ID_ANY,
				     RING_F_SP_ENQ | RING_F_SC_DEQ);
	if (!fz_rx_ring || !fz_tx_ring)
		fz_die("rings");
	rc = rte_eth_from_rings("net_kbfuzz", &fz_rx_ring, 1, &fz_tx_ring, 1, SOCKET_ID_ANY);
	if (rc < 0)
		fz_die("rte_eth_from_rings");
	fz_port.id = (uint16_t)rc;
	if (kbs_port_start(&fz_port, NULL))
		fz_die("kbs_port_start");

	kbs_sys_init();
	lwip_init();
	kbs_life_init();
	if (kbs_netif_init(&fz_ni, &fz_port, lwip_htonl(FZ_STACK_IP), lwip_htonl(FZ_NETMASK), 0))
		fz_die("kbs_netif_init");
	/* An input holds a few dozen frames at most: a bound it can meet, so
	 * that out-of-order queues are cut and pruned (kbs_netif.c). */
	kbs_netif_set_rx_held_max(FZ_RX_HELD);
	fz_port_tx(); /* the gratuitous ARP */
	fz_port_arp(FZ_PEER_IP, peer_mac.addr);
	return &fz_ni;
}

void fz_port_arp(uint32_t ip, const uint8_t mac[6])
{
	if (fz_narp == FZ_ARP_MAX) {
		fprintf(stderr, "fuzz: more than %d static ARP entries\n", FZ_ARP_MAX);
		exit(1);
	}
	ip4_addr_set_u32(&fz_arp[fz_narp].ip, lwip_htonl(ip));
	memcpy(fz_arp[fz_narp].mac.addr, mac, 6);
	if (etharp_add_static_entry(&fz_arp[fz_narp].ip, &fz_arp[fz_narp].mac) != ERR_OK)
		fz_die("etharp_add_static_entry");
	fz_narp++;
}

void fz_port_reset(void)
{
	unsigned k;
	int i;

	/* Datagrams being reassembled: each run of the timer ages them one
	 * tick. First: a timed-out datagram may send an ICMP error. */
	for (i = 0; i <= IP_REASS_MAXAGE; i++)
		ip_reass_tmr();
	etharp_cleanup_netif(&fz_ni.netif); /* also frees packets waiting for ARP */
	for (k = 0; k < fz_narp; k++)
		etharp_add_static_entry(&fz_arp[k].ip, &fz_arp[k].mac);
}

/* ---- frames in and out -------------------------------------------------- */

static uint16_t fz_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void fz_trace_frame(const char *dir, const uint8_t *f, size_t len);

void fz_port_queue(const uint8_t *frame, size_t len)
{
	struct rte_mbuf *m;
	char *data;

	m = rte_pktmbuf_alloc(fz_port.pool);

	if (!m)
		abort(); /* FZ_MBUFS too small for what lwIP may hold: a harness bug */
	data = rte_pktmbuf_append(m, (uint16_t)len);
	if (!data)
		abort();
	memcpy(data, frame, len);
	ASAN_POISON_MEMORY_REGION(m->buf_addr, m->data_off);
	ASAN_POISON_MEMORY_REGION(data + len, m->buf_len - m->data_off - len);
	if (fz_trace)
		fz_trace_frame("<-", frame, len);
	if (rte_ring_enqueue(fz_rx_ring, m))
		abort();
}

void fz_port_rx(const uint8_t *frame, size_t len)
{
	fz_port_queue(frame, len);
	kbs_netif_rx(&fz_ni); /* with any frames queued before it: one burst */
}

unsigned fz_port_drain(void)
{
	unsigned n = 0, k;

	while ((k = kbs_netif_rx(&fz_ni))) /* a call takes a bounded number of bursts */
		n += k;
	return n;
}

uint16_t fz_csum(const uint8_t *p, size_t n, uint32_t sum)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += fz_be16(p + i);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* "<-" or "->", then what a person reading a trace wants to know. */
static void fz_trace_frame(const char *dir, const uint8_t *f, size_t len)
{
	const uint8_t *ip = f + 14, *l4;
	static const char flag[] = "FSRPAU";
	char fl[8];
	size_t ihl, tot;
	int i, k = 0;

	if (len < 14 + 20 || fz_be16(f + 12) != 0x0800 || (ip[0] >> 4) != 4) {
		fprintf(stderr, "fuzz: %s %zu bytes, ethertype %04x\n", dir, len,
			len >= 14 ? fz_be16(f + 12) : 0);
		return;
	}
	ihl = (size_t)(ip[0] & 0xf) * 4;
	tot = fz_be16(ip + 2);
	l4 = ip + ihl;
	if (ip[9] != 6 || ihl < 20 || tot > len - 14 || tot < ihl + 20 ||
	    (fz_be16(ip + 6) & 0x3fff)) {
		fprintf(stderr, "fuzz: %s IPv4 proto %u, %zu bytes, frag %#x\n", dir, ip[9],
			tot, fz_be16(ip + 6));
		return;
	}
	for (i = 0; i < 6; i++)
		if (l4[13] & (1 << i))
			fl[k++] = flag[i];
	fl[k] = '\0';
	fprintf(stderr, "fuzz: %s TCP %u > %u [%s] seq %u ack %u win %u len %zu\n", dir,
		fz_be16(l4), fz_be16(l4 + 2), fl,
		(unsigned)fz_be16(l4 + 4) << 16 | fz_be16(l4 + 6),
		(unsigned)fz_be16(l4 + 8) << 16 | fz_be16(l4 + 10), fz_be16(l4 + 14),
		tot - ihl - (size_t)(l4[12] >> 4) * 4);
}

static void fz_bad_frame(const char *why, const uint8_t *f, size_t len)
{
	size_t i;

	fprintf(stderr, "fuzz: the stack sent a bad frame (%s), %zu bytes:", why, len);
	for (i = 0; i < len && i < 64; i++)
		fprintf(stderr, " %02x", f[i]);
	fprintf(stderr, "\n");
	abort();
}

/*
 * What lwIP and kbs_linkoutput put on the wire must be well formed: within
 * the MTU, and (no checksum offload on net_ring) with correct IPv4, TCP and
 * ICMP checksums and lengths.
 */
static void fz_frame_check(const uint8_t *f, size_t len)
{
	const uint8_t *ip = f + 14;
	size_t ihl, tot;

	if (len < 14 || len > (size_t)fz_port.mtu + 14)
		fz_bad_frame("length", f, len);
	if (fz_be16(f + 12) == 0x0806) {
		if (len < 14 + 28)
			fz_bad_frame("short ARP", f, len);
		return;
	}
	if (fz_be16(f + 12) != 0x0800)
		fz_bad_frame("ethertype", f, len);
	if (len < 14 + 20 || (ip[0] >> 4) != 4)
		fz_bad_frame("IPv4 header", f, len);
	ihl = (size_t)(ip[0] & 0xf) * 4;
	tot = fz_be16(ip + 2);
	if (ihl < 20 || tot < ihl || tot > len - 14)
		fz_bad_frame("IPv4 lengths", f, len);
	if (fz_csum(ip, ihl, 0) != 0xffff)
		fz_bad_frame("IPv4 checksum", f, len);
	if (fz_be16(ip + 6) & 0x3fff)
		return; /* a fragment: its transport header may be elsewhere */
	if (ip[9] == 6) {
		uint32_t pseudo = fz_be16(ip + 12) + fz_be16(ip + 14) + fz_be16(ip + 16) +
				  fz_be16(ip + 18) + 6 + (uint32_t)(tot - ihl);

		if (tot - ihl < 20 || (size_t)(ip[ihl + 12] >> 4) * 4 > tot - ihl)
			fz_bad_frame("TCP header", f, len);
		if (fz_csum(ip + ihl, tot - ihl, pseudo) != 0xffff)
			fz_bad_frame("TCP checksum", f, len);
	} else if (ip[9] == 1) {
		if (tot - ihl < 8 || fz_csum(ip + ihl, tot - ihl, 0) != 0xffff)
			fz_bad_frame("ICMP", f, len);
	}
}

void fz_port_tx(void)
{
	struct rte_mbuf *out[64];
	unsigned n, i;

	kbs_netif_tx_flush(&fz_ni);
	while ((n = rte_ring_dequeue_burst(fz_tx_ring, (void **)out, RTE_DIM(out), NULL))) {
		for (i = 0; i < n; i++) {
			if (out[i]->nb_segs != 1)
				fz_bad_frame("segments", NULL, 0);
			fz_frame_check(rte_pktmbuf_mtod(out[i], const uint8_t *),
				       out[i]->data_len);
			if (fz_trace)
				fz_trace_frame("->", rte_pktmbuf_mtod(out[i], const uint8_t *),
					       out[i]->data_len);
			if (fz_port_tx_hook)
				fz_port_tx_hook(rte_pktmbuf_mtod(out[i], const uint8_t *),
						out[i]->data_len);
		}
		rte_pktmbuf_free_bulk(out, n);
	}
}

unsigned fz_port_mbufs_out(void)
{
	return fz_port.pool->size - rte_mempool_avail_count(fz_port.pool);
}

void fz_port_prune(void)
{
	kbs_netif_ooseq_prune();
}

void fz_port_end(void)
{
	unsigned out;

	fz_port_reset();
	fz_clock_settle();
	fz_port_tx();
	out = fz_port_mbufs_out();
	if (out) {
		fprintf(stderr, "fuzz: %u mbufs not back in the pool after the input\n", out);
		abort();
	}
	if (kbs_netif_rx_held()) { /* the bound's count: every wrapped frame freed */
		fprintf(stderr, "fuzz: lwIP still holds %u received frames by the count\n",
			kbs_netif_rx_held());
		abort();
	}
}
