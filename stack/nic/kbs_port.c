/*
 * kbs_port.c — EAL arguments, the mbuf pool and port bring-up.
 *
 * Offloads are used only where the port advertises them: IPv4 + TCP
 * checksums on receive and on send. af_xdp and af_packet advertise neither,
 * so on the test bed lwIP checksums in software.
 */
#include "kbs_port.h"

#include <errno.h>
#include <limits.h>
#include <linux/if_xdp.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "lwip/pbuf.h"

#ifndef SOL_XDP
#define SOL_XDP 283
#endif

static void kbs_port_find_xsk(struct kbs_port *p);

#define KBS_TX_DESC  1024
#define KBS_POOL_CACHE 256
#define KBS_EAL_ARGS 64
#define KBS_MTU      1500

static bool eal_mem_given(const char *eal)
{
	static const char *const opts[] = { "--no-huge", "--in-memory", "-m",
					    "--socket-mem", "--huge-dir" };
	char buf[sizeof(((struct kbs_config *)0)->eal)];
	char *tok, *save;
	size_t i;

	snprintf(buf, sizeof(buf), "%s", eal);
	for (tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save))
		for (i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
			if (strncmp(tok, opts[i], strlen(opts[i])) == 0)
				return true;
	return false;
}

/* Free 2 MiB hugepages on a mounted hugetlbfs, in MiB. */
static unsigned long hugepages_free_mb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	unsigned long n = 0, sz = 0;
	char line[128];

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "HugePages_Free: %lu", &n);
		sscanf(line, "Hugepagesize: %lu kB", &sz);
	}
	fclose(f);
	f = fopen("/proc/mounts", "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, " hugetlbfs ")) {
			fclose(f);
			return n * sz / 1024;
		}
	fclose(f);
	return 0;
}

int kbs_eal_init(const struct kbs_config *c, const char *file_prefix)
{
	static char core[16], mem[16], prefix[64], eal[sizeof(c->eal)];
	char *argv[KBS_EAL_ARGS];
	char *tok, *save;
	int argc = 0;
	/* pool + lwIP's own memory is outside EAL; 2.5 KiB per mbuf plus room
	 * for the rings and PMD state. */
	unsigned long need_mb = (unsigned long)c->mbufs * 2560 / (1024 * 1024) + 64;

	snprintf(core, sizeof(core), "%d", c->core);
	snprintf(prefix, sizeof(prefix), "--file-prefix=%s", file_prefix);
	argv[argc++] = "kbstackd";
	argv[argc++] = "-l";
	argv[argc++] = core;
	argv[argc++] = prefix;
	argv[argc++] = "--log-level=lib.eal:warning";
	argv[argc++] = "--log-level=pmd.*:notice";
	argv[argc++] = "--no-telemetry";
	if (c->dev_is_pci) {
		argv[argc++] = "-a";
		argv[argc++] = (char *)c->dev;
	} else {
		/* Without --no-pci EAL probes the machine's own NICs. */
		argv[argc++] = "--no-pci";
		argv[argc++] = "--vdev";
		argv[argc++] = (char *)c->dev;
	}
	if (!eal_mem_given(c->eal)) {
		if (hugepages_free_mb() >= need_mb) {
			argv[argc++] = "--in-memory";
		} else {
			snprintf(mem, sizeof(mem), "%lu", need_mb + 64);
			argv[argc++] = "--no-huge";
			argv[argc++] = "--no-shconf";
			argv[argc++] = "-m";
			argv[argc++] = mem;
		}
	}
	snprintf(eal, sizeof(eal), "%s", c->eal);
	for (tok = strtok_r(eal, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (argc >= KBS_EAL_ARGS - 1) {
			fprintf(stderr, "kbstackd: KB_EAL: too many arguments (at most %d)\n",
				KBS_EAL_ARGS - 16);
			return -E2BIG;
		}
		argv[argc++] = tok;
	}
	argv[argc] = NULL;

	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr, "kbstackd: DPDK EAL initialisation failed: %s\n",
			rte_strerror(rte_errno));
		return -rte_errno;
	}
	return 0;
}

void kbs_eal_cleanup(void)
{
	char dir[PATH_MAX];

	/* EAL leaves its (empty, with --in-memory) runtime directory behind. */
	snprintf(dir, sizeof(dir), "%s", rte_eal_get_runtime_dir());
	rte_eal_cleanup();
	if (dir[0])
		rmdir(dir);
}

struct rte_mempool *kbs_pool_create(const char *name, unsigned n)
{
	/* lwIP's pbuf_custom lives in each mbuf's private area: wrapping a
	 * received frame costs no allocation. */
	uint16_t priv = RTE_ALIGN(sizeof(struct pbuf_custom), RTE_MBUF_PRIV_ALIGN);

	return rte_pktmbuf_pool_create(name, n, KBS_POOL_CACHE, priv,
				       RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
}

int kbs_port_start(struct kbs_port *p, const uint8_t *mac_override)
{
	const uint64_t rx_ck = RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_TCP_CKSUM;
	const uint64_t tx_ck = RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_TCP_CKSUM;
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	uint16_t nrx = KBS_RX_DESC, ntx = KBS_TX_DESC;
	int rc, sock = rte_eth_dev_socket_id(p->id);

	if (sock < 0)
		sock = (int)rte_socket_id();
	memset(&conf, 0, sizeof(conf));
	if ((rc = rte_eth_dev_info_get(p->id, &info)))
		return rc;
	p->rx_cksum = (info.rx_offload_capa & rx_ck) == rx_ck;
	p->tx_cksum = (info.tx_offload_capa & tx_ck) == tx_ck;
	if (p->rx_cksum)
		conf.rxmode.offloads |= rx_ck;
	if (p->tx_cksum)
		conf.txmode.offloads |= tx_ck;

	if ((rc = rte_eth_dev_configure(p->id, 1, 1, &conf)))
		return rc;
	if ((rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->id, &nrx, &ntx)))
		return rc;
	if ((rc = rte_eth_rx_queue_setup(p->id, 0, nrx, (unsigned)sock, NULL, p->pool)))
		return rc;
	if ((rc = rte_eth_tx_queue_setup(p->id, 0, ntx, (unsigned)sock, NULL)))
		return rc;
	/* MTU 1500: frames fit one mbuf. Not every PMD lets us set it. */
	rc = rte_eth_dev_set_mtu(p->id, KBS_MTU);
	if (rc && rc != -ENOTSUP)
		return rc;
	if (rte_eth_dev_get_mtu(p->id, &p->mtu) || p->mtu > KBS_MTU)
		p->mtu = KBS_MTU;
	if (mac_override) {
		struct rte_ether_addr a;

		memcpy(a.addr_bytes, mac_override, RTE_ETHER_ADDR_LEN);
		if ((rc = rte_eth_dev_default_mac_addr_set(p->id, &a))) {
			fprintf(stderr, "kbstackd: KB_MAC: the port refuses a MAC address: %s\n",
				rte_strerror(-rc));
			return rc;
		}
	}
	if ((rc = rte_eth_macaddr_get(p->id, &p->mac)))
		return rc;
	if ((rc = rte_eth_dev_start(p->id)))
		return rc;
	p->started = true;
	return 0;
}

int kbs_port_open(const struct kbs_config *c, struct kbs_port *p)
{
	char name[RTE_ETH_NAME_MAX_LEN];
	int rc;

	memset(p, 0, sizeof(*p));
	snprintf(name, sizeof(name), "%.*s", (int)strcspn(c->dev, ","), c->dev);
	if (rte_eth_dev_get_port_by_name(name, &p->id)) {
		fprintf(stderr, "kbstackd: KB_DEV=%s: no such DPDK port after probing "
			"(is the interface up, the VF bound to vfio-pci, the PMD installed?)\n",
			c->dev);
		return -ENODEV;
	}
	p->pool = kbs_pool_create("kbs_pool", c->mbufs);
	if (!p->pool) {
		fprintf(stderr, "kbstackd: KB_MBUFS=%u: cannot create the mbuf pool: %s\n",
			c->mbufs, rte_strerror(rte_errno));
		return -rte_errno;
	}
	rc = kbs_port_start(p, c->has_mac ? c->mac : NULL);
	if (rc) {
		fprintf(stderr, "kbstackd: KB_DEV=%s: port set-up failed: %s\n", c->dev,
			rte_strerror(-rc));
		kbs_port_close(p);
		return rc;
	}
	kbs_port_find_xsk(p);
	return 0;
}

/* The af_xdp driver does not say which sockets are its own: they are the
 * fds of this process that answer XDP_STATISTICS, made during start-up. */
static void kbs_port_find_xsk(struct kbs_port *p)
{
	const unsigned max = sizeof(p->xsk) / sizeof(p->xsk[0]);
	unsigned n = 0;

	for (int fd = 0; fd < 4096 && n < max; fd++) {
		struct xdp_statistics st;
		socklen_t len = sizeof(st);

		if (getsockopt(fd, SOL_XDP, XDP_STATISTICS, &st, &len) == 0)
			p->xsk[n++] = fd;
	}
	while (n < max)
		p->xsk[n++] = -1;
}

uint64_t kbs_port_ring_drops(const struct kbs_port *p)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < sizeof(p->xsk) / sizeof(p->xsk[0]) && p->xsk[i] >= 0; i++) {
		struct xdp_statistics st;
		socklen_t len = sizeof(st);

		if (getsockopt(p->xsk[i], SOL_XDP, XDP_STATISTICS, &st, &len) == 0)
			n += st.rx_ring_full + st.rx_fill_ring_empty_descs;
	}
	return n;
}

void kbs_port_close(struct kbs_port *p)
{
	if (p->started) {
		rte_eth_dev_stop(p->id);
		p->started = false;
	}
	rte_eth_dev_close(p->id);
	if (p->pool) {
		rte_mempool_free(p->pool);
		p->pool = NULL;
	}
}

/*
 * Prepare a frame for the port's checksum offload: lwIP left the IPv4 and
 * TCP checksum fields zero; the NIC wants the IPv4 one zero and the TCP one
 * seeded with the pseudo-header sum.
 */
void kbs_port_tx_cksum_prepare(struct rte_mbuf *m)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *tcp;

	if (eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    m->pkt_len < sizeof(*eth) + sizeof(*ip))
		return;
	ip = (struct rte_ipv4_hdr *)(eth + 1);
	m->l2_len = sizeof(*eth);
	m->l3_len = rte_ipv4_hdr_len(ip);
	m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
	ip->hdr_checksum = 0;
	if (ip->next_proto_id == IPPROTO_TCP &&
	    !(ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_OFFSET_MASK |
						     RTE_IPV4_HDR_MF_FLAG)) &&
	    m->pkt_len >= m->l2_len + m->l3_len + sizeof(*tcp)) {
		tcp = (struct rte_tcp_hdr *)((char *)ip + m->l3_len);
		m->ol_flags |= RTE_MBUF_F_TX_TCP_CKSUM;
		tcp->cksum = rte_ipv4_phdr_cksum(ip, m->ol_flags);
	}
}
