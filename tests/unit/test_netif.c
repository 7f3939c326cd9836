/*
 * test_netif.c — kbstackd's lwIP glue on a real DPDK port (net_ring): frames
 * go in through the port's rx ring and come out of its tx ring, so the test
 * sees exactly what kbstackd would put on the wire. Covers the pbuf-over-
 * mbuf receive path, tx batching, ARP, ICMP echo, RST for a closed port,
 * bad checksums and multi-segment drops, and that no mbuf leaks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_arp.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_tcp.h>

#include "kbs_netif.h"
#include "kbs_port.h"
#include "kbs_stats.h"

/* lwIP's public API only (its fragment macros clash with netinet/ip.h). */
#undef IP_RF
#undef IP_DF
#undef IP_MF
#undef IP_OFFMASK
#include "lwip/init.h"
#include "lwip/pbuf.h"
#include "lwip/stats.h"

u16_t lwip_standard_chksum(const void *dataptr, int len); /* lwIP's own (inet_chksum.c) */

void kbs_sys_init(void);

#define STACK_IP  RTE_IPV4(198, 18, 0, 1)
#define PEER_IP   RTE_IPV4(198, 18, 0, 2)

static struct rte_ring *rx_ring, *tx_ring;
static struct kbs_port port;
static struct kbs_netif ni;
static const struct rte_ether_addr peer_mac = { { 0x02, 0, 0, 0, 0, 0x02 } };

static unsigned pool_in_use(void)
{
	return port.pool->size - rte_mempool_avail_count(port.pool);
}

/* Everything the port sent since the last call, in order. */
static unsigned drain(struct rte_mbuf **out, unsigned max)
{
	kbs_netif_tx_flush(&ni);
	return rte_ring_dequeue_burst(tx_ring, (void **)out, max, NULL);
}

static void free_all(struct rte_mbuf **m, unsigned n)
{
	rte_pktmbuf_free_bulk(m, n);
}

/* Put one frame on the wire towards the stack and let it process it. */
static void inject(struct rte_mbuf *m)
{
	assert_int_equal(rte_ring_enqueue(rx_ring, m), 0);
	assert_int_equal(kbs_netif_rx(&ni), 1);
}

static struct rte_mbuf *frame(uint16_t ethertype, const struct rte_ether_addr *dst,
			      size_t l3len, void **l3)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(port.pool);
	struct rte_ether_hdr *eth;

	assert_non_null(m);
	eth = (struct rte_ether_hdr *)rte_pktmbuf_append(m, sizeof(*eth) + l3len);
	assert_non_null(eth);
	memset(eth, 0, sizeof(*eth) + l3len);
	eth->dst_addr = *dst;
	eth->src_addr = peer_mac;
	eth->ether_type = rte_cpu_to_be_16(ethertype);
	*l3 = eth + 1;
	return m;
}

static struct rte_mbuf *arp_request(uint32_t sender_ip)
{
	static const struct rte_ether_addr bcast = { { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } };
	struct rte_arp_hdr *a;
	struct rte_mbuf *m = frame(RTE_ETHER_TYPE_ARP, &bcast, sizeof(*a), (void **)&a);

	a->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	a->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	a->arp_hlen = RTE_ETHER_ADDR_LEN;
	a->arp_plen = 4;
	a->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REQUEST);
	a->arp_data.arp_sha = peer_mac;
	a->arp_data.arp_sip = rte_cpu_to_be_32(sender_ip);
	a->arp_data.arp_tip = rte_cpu_to_be_32(STACK_IP);
	return m;
}

static struct rte_ipv4_hdr *ip_header(void *l3, uint8_t proto, size_t l4len)
{
	struct rte_ipv4_hdr *ip = l3;

	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + l4len));
	ip->time_to_live = 64;
	ip->next_proto_id = proto;
	ip->src_addr = rte_cpu_to_be_32(PEER_IP);
	ip->dst_addr = rte_cpu_to_be_32(STACK_IP);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	return ip;
}

static struct rte_mbuf *icmp_echo(uint16_t seq, size_t payload)
{
	struct rte_ipv4_hdr *ip;
	struct rte_icmp_hdr *ic;
	size_t l4 = sizeof(*ic) + payload;
	struct rte_mbuf *m = frame(RTE_ETHER_TYPE_IPV4, &port.mac, sizeof(*ip) + l4, (void **)&ip);
	size_t i;

	ip_header(ip, IPPROTO_ICMP, l4);
	ic = (struct rte_icmp_hdr *)(ip + 1);
	ic->icmp_type = RTE_IP_ICMP_ECHO_REQUEST;
	ic->icmp_ident = rte_cpu_to_be_16(0x4b42);
	ic->icmp_seq_nb = rte_cpu_to_be_16(seq);
	for (i = 0; i < payload; i++)
		((uint8_t *)(ic + 1))[i] = (uint8_t)(i * 7 + seq);
	ic->icmp_cksum = (uint16_t)~rte_raw_cksum(ic, l4);
	return m;
}

static struct rte_mbuf *tcp_syn(uint16_t dport)
{
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *t;
	struct rte_mbuf *m = frame(RTE_ETHER_TYPE_IPV4, &port.mac, sizeof(*ip) + sizeof(*t),
				   (void **)&ip);

	ip_header(ip, IPPROTO_TCP, sizeof(*t));
	t = (struct rte_tcp_hdr *)(ip + 1);
	t->src_port = rte_cpu_to_be_16(40000);
	t->dst_port = rte_cpu_to_be_16(dport);
	t->sent_seq = rte_cpu_to_be_32(1000);
	t->data_off = (sizeof(*t) / 4) << 4;
	t->tcp_flags = RTE_TCP_SYN_FLAG;
	t->rx_win = rte_cpu_to_be_16(65535);
	t->cksum = rte_ipv4_udptcp_cksum(ip, t);
	return m;
}

static void *l3_of(struct rte_mbuf *m, uint16_t want_type)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);

	assert_int_equal(rte_be_to_cpu_16(eth->ether_type), want_type);
	return eth + 1;
}

static int setup(void **state)
{
	char *argv[] = { "test_netif", "--no-huge", "-m", "256", "--no-pci",
			 "--no-shconf", "--no-telemetry",
			 "--log-level=lib.eal:error", NULL, NULL };
	char prefix[64];
	struct rte_mbuf *out[8];
	struct rte_arp_hdr *a;
	unsigned n;

	(void)state;
	snprintf(prefix, sizeof(prefix), "--file-prefix=kbt%d", (int)getpid());
	argv[8] = prefix;
	assert_true(rte_eal_init(9, argv) >= 0);
	port.pool = kbs_pool_create("test_pool", 2047);
	assert_non_null(port.pool);
	rx_ring = rte_ring_create("rx", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
	tx_ring = rte_ring_create("tx", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
	assert_true(rx_ring && tx_ring);
	port.id = (uint16_t)rte_eth_from_rings("net_kbtest", &rx_ring, 1, &tx_ring, 1, 0);
	assert_int_equal(kbs_port_start(&port, NULL), 0);
	assert_false(port.rx_cksum || port.tx_cksum); /* net_ring offloads nothing */
	kbs_sys_init();
	lwip_init();
	assert_int_equal(kbs_netif_init(&ni, &port, rte_cpu_to_be_32(STACK_IP),
					rte_cpu_to_be_32(0xffffff00), 0), 0);

	/* Bringing the link up announces the address: one gratuitous ARP. */
	n = drain(out, 8);
	assert_int_equal(n, 1);
	a = l3_of(out[0], RTE_ETHER_TYPE_ARP);
	assert_int_equal(rte_be_to_cpu_32(a->arp_data.arp_sip), STACK_IP);
	free_all(out, n);
	return 0;
}

static void test_arp_reply(void **state)
{
	struct rte_mbuf *out[4];
	struct rte_arp_hdr *a;
	unsigned before = pool_in_use(), n;

	(void)state;
	inject(arp_request(PEER_IP));
	n = drain(out, 4);
	assert_int_equal(n, 1);
	a = l3_of(out[0], RTE_ETHER_TYPE_ARP);
	assert_int_equal(rte_be_to_cpu_16(a->arp_opcode), RTE_ARP_OP_REPLY);
	assert_memory_equal(&a->arp_data.arp_sha, &port.mac, RTE_ETHER_ADDR_LEN);
	assert_memory_equal(&a->arp_data.arp_tha, &peer_mac, RTE_ETHER_ADDR_LEN);
	assert_int_equal(rte_be_to_cpu_32(a->arp_data.arp_sip), STACK_IP);
	assert_int_equal(rte_be_to_cpu_32(a->arp_data.arp_tip), PEER_IP);
	free_all(out, n);
	assert_int_equal(pool_in_use(), before);
}

static void test_icmp_echo(void **state)
{
	struct rte_mbuf *out[4];
	struct rte_ipv4_hdr *ip;
	struct rte_icmp_hdr *ic;
	const size_t payload = 1000;
	unsigned before = pool_in_use(), n;
	size_t i;

	(void)state;
	inject(icmp_echo(7, payload));
	n = drain(out, 4);
	assert_int_equal(n, 1);
	ip = l3_of(out[0], RTE_ETHER_TYPE_IPV4);
	assert_int_equal(rte_be_to_cpu_32(ip->dst_addr), PEER_IP);
	assert_int_equal(rte_ipv4_cksum(ip), 0); /* a valid header sums to 0 */
	ic = (struct rte_icmp_hdr *)(ip + 1);
	assert_int_equal(ic->icmp_type, RTE_IP_ICMP_ECHO_REPLY);
	assert_int_equal(rte_be_to_cpu_16(ic->icmp_seq_nb), 7);
	assert_int_equal((uint16_t)~rte_raw_cksum(ic, sizeof(*ic) + payload), 0);
	for (i = 0; i < payload; i++)
		assert_int_equal(((uint8_t *)(ic + 1))[i], (uint8_t)(i * 7 + 7));
	free_all(out, n);
	assert_int_equal(pool_in_use(), before);
}

static void test_syn_closed_port_gets_rst(void **state)
{
	struct rte_mbuf *out[4];
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *t;
	unsigned before = pool_in_use(), n;
	uint16_t sum;

	(void)state;
	inject(tcp_syn(81));
	n = drain(out, 4);
	assert_int_equal(n, 1);
	ip = l3_of(out[0], RTE_ETHER_TYPE_IPV4);
	assert_int_equal(ip->next_proto_id, IPPROTO_TCP);
	t = (struct rte_tcp_hdr *)(ip + 1);
	assert_true(t->tcp_flags & RTE_TCP_RST_FLAG);
	assert_int_equal(rte_be_to_cpu_16(t->src_port), 81);
	assert_int_equal(rte_be_to_cpu_16(t->dst_port), 40000);
	assert_int_equal(rte_be_to_cpu_32(t->recv_ack), 1001); /* SYN consumes one */
	sum = t->cksum;
	t->cksum = 0;
	assert_int_equal(rte_ipv4_udptcp_cksum(ip, t), sum);
	free_all(out, n);
	assert_int_equal(pool_in_use(), before);
}

static void test_bad_checksum_dropped(void **state)
{
	struct rte_mbuf *out[4], *m = icmp_echo(9, 64);
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, struct rte_ipv4_hdr *,
							  sizeof(struct rte_ether_hdr));
	uint32_t chkerr = lwip_stats.ip.chkerr;
	unsigned before = pool_in_use();

	(void)state;
	ip->hdr_checksum ^= 0x5a5a;
	inject(m);
	assert_int_equal(drain(out, 4), 0);
	assert_int_equal(lwip_stats.ip.chkerr, chkerr + 1);
	assert_int_equal(pool_in_use(), before - 1); /* the injected mbuf came back */
}

static void test_multiseg_dropped(void **state)
{
	struct rte_mbuf *out[4], *m = icmp_echo(10, 64), *tail = rte_pktmbuf_alloc(port.pool);
	uint64_t drops = kbs_stats->c.rx_drop_multiseg;
	unsigned before = pool_in_use();

	(void)state;
	assert_non_null(tail);
	assert_non_null(rte_pktmbuf_append(tail, 8));
	assert_int_equal(rte_pktmbuf_chain(m, tail), 0);
	inject(m);
	assert_int_equal(drain(out, 4), 0);
	assert_int_equal(kbs_stats->c.rx_drop_multiseg, drops + 1);
	assert_int_equal(pool_in_use(), before - 2);
}

/* More replies than one burst: one kbs_netif_rx takes them all (bursts
 * until the ring is drained), linkoutput flushes a full batch itself and
 * the loop's flush sends the rest, all in order. */
static void test_tx_batching(void **state)
{
	const unsigned count = KBS_BURST + 9;
	struct rte_mbuf *out[2 * KBS_BURST + 8];
	uint64_t tx = kbs_stats->c.tx_packets;
	struct rte_ipv4_hdr *ip;
	struct rte_icmp_hdr *ic;
	unsigned i, n, before = pool_in_use();

	(void)state;
	for (i = 0; i < count; i++)
		assert_int_equal(rte_ring_enqueue(rx_ring, icmp_echo((uint16_t)(100 + i), 32)), 0);
	n = 0;
	while (n < count) {
		unsigned got = kbs_netif_rx(&ni);

		assert_true(got > 0 && got <= count - n);
		n += got;
	}
	/* One full batch already left during rx, before any explicit flush. */
	assert_int_equal(rte_ring_count(tx_ring), KBS_BURST);
	n = drain(out, RTE_DIM(out));
	assert_int_equal(n, count);
	for (i = 0; i < n; i++) {
		ip = l3_of(out[i], RTE_ETHER_TYPE_IPV4);
		ic = (struct rte_icmp_hdr *)(ip + 1);
		assert_int_equal(rte_be_to_cpu_16(ic->icmp_seq_nb), 100 + i);
	}
	assert_int_equal(kbs_stats->c.tx_packets, tx + count);
	free_all(out, n);
	assert_int_equal(pool_in_use(), before);
}

/* Between two sockets of the sweep the port is read only once the netif
 * has sent KBS_TX_BEFORE_RX frames since it was last read dry. */
static void test_rx_due(void **state)
{
	struct rte_mbuf *out[64];
	unsigned i, n, before = pool_in_use();

	(void)state;
	assert_int_equal(kbs_netif_rx(&ni), 0); /* dry */
	assert_int_equal(rte_ring_enqueue(rx_ring, icmp_echo(1, 32)), 0);
	assert_int_equal(rte_ring_enqueue(rx_ring, icmp_echo(2, 32)), 0);
	assert_int_equal(kbs_netif_rx_due(), 0); /* nothing sent since */
	assert_int_equal(rte_ring_count(rx_ring), 2);
	for (i = 0; i < KBS_TX_BEFORE_RX; i++) {
		struct pbuf *p = pbuf_alloc(PBUF_RAW, 60, PBUF_RAM);

		assert_non_null(p);
		memset(p->payload, 0, 60);
		assert_int_equal(ni.netif.linkoutput(&ni.netif, p), ERR_OK);
		pbuf_free(p);
		if (i + 2 == KBS_TX_BEFORE_RX)
			assert_int_equal(kbs_netif_rx_due(), 0); /* one short */
		while ((n = drain(out, RTE_DIM(out))))
			free_all(out, n);
	}
	assert_int_equal(kbs_netif_rx_due(), 2); /* due: both echoes read */
	assert_int_equal(rte_ring_count(rx_ring), 0);
	assert_int_equal(kbs_netif_rx_due(), 0); /* read dry: not due again */
	kbs_netif_tx_flush(&ni);
	n = drain(out, RTE_DIM(out));
	assert_int_equal(n, 2); /* the two replies */
	free_all(out, n);
	assert_int_equal(pool_in_use(), before);
}

/* kbs_chksum (LWIP_CHKSUM, DPDK's sum) agrees with lwIP's own on every
 * start alignment and length a frame can have, on random bytes and on
 * all-ones (every addition carries). */
static void test_chksum_matches_lwip(void **state)
{
	static uint8_t buf[1600];
	unsigned fill, off, len;

	(void)state;
	for (fill = 0; fill < 2; fill++) {
		srand(7);
		for (off = 0; off < sizeof(buf); off++)
			buf[off] = fill ? 0xff : (uint8_t)rand();
		for (off = 0; off < 8; off++)
			for (len = 0; len + off <= 1514; len++)
				assert_int_equal(kbs_chksum(buf + off, (int)len),
						 lwip_standard_chksum(buf + off, (int)len));
	}
}

static int teardown(void **state)
{
	(void)state;
	kbs_port_close(&port);
	kbs_eal_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arp_reply),
		cmocka_unit_test(test_icmp_echo),
		cmocka_unit_test(test_syn_closed_port_gets_rst),
		cmocka_unit_test(test_bad_checksum_dropped),
		cmocka_unit_test(test_multiseg_dropped),
		cmocka_unit_test(test_tx_batching),
		cmocka_unit_test(test_rx_due),
		cmocka_unit_test(test_chksum_matches_lwip),
	};

	return cmocka_run_group_tests_name("netif", tests, setup, teardown);
}
