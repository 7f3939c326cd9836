/*
 * lwip_demux.c — what one TCP segment costs lwIP's tcp_input to find its
 * PCB, against how many PCBs there are (lwip-patches/0015 made the lookup a
 * hash; before it, a walk of the active and TIME_WAIT lists).
 *
 * lwIP alone (kblwip, kb's lwipopts.h), in this process, with no port and
 * no traffic: a netif whose output throws frames away, N PCBs put straight
 * into TIME_WAIT (as a server that closes first collects them) plus a few
 * established-looking ones, and segments fed to ip4_input from memory:
 *   tw-hit  an ACK for a random TIME_WAIT PCB (lwIP finds it, does nothing)
 *   miss    a RST for a 4-tuple lwIP has no PCB for (dropped after the
 *           lookup: what every SYN for a listener paid before 0015)
 * Each figure is ns per segment, including the IP and TCP checksums and a
 * pbuf's allocation, which do not depend on N.
 *
 *   lwip_demux [N ...]     (default 0 1024 4096 8000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lwip/init.h"
#include "lwip/inet_chksum.h"
#include "lwip/ip4.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/prot/ip4.h"
#include "lwip/prot/tcp.h"
#include "lwip/tcp.h"

#include "kbs_hooks.h"
#include "../tests/lib/kbt_tcp_frame.h"

/* kblwip's calls into kbstackd (kbs_sys.c, kbs_tcp_hooks.c): stand-ins. */
static u32_t bench_ms;
u32_t sys_now(void) { return bench_ms; }
u32_t kbs_now_us(void) { return bench_ms * 1000u; }
uint32_t kbs_rand(void) { return (uint32_t)random(); }
u32_t kbs_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
		  const ip_addr_t *remote_ip, u16_t remote_port)
{
	(void)local_ip, (void)local_port, (void)remote_ip, (void)remote_port;
	return 1;
}
err_t kbs_tcp_inpacket(struct tcp_pcb *pcb, struct tcp_hdr *hdr, u16_t optlen,
		       u16_t opt1len, u8_t *opt2, struct pbuf *p)
{
	(void)pcb, (void)hdr, (void)optlen, (void)opt1len, (void)opt2, (void)p;
	return ERR_OK;
}
void kbs_tcp_event(struct tcp_pcb *pcb, int ev) { (void)pcb, (void)ev; }
u16_t kbs_tcp_ooseq_limit(const struct tcp_pcb *pcb) { (void)pcb; return 191; }

#define STACK_IP 0xc6120001u /* 198.18.0.1: no frame leaves this process */
#define PEER_IP  0xc6120002u
#define PORT     80
#define SEG_LEN  40 /* IP + TCP headers, no options, no data */

static struct netif bench_netif;

static err_t bench_output(struct netif *netif, struct pbuf *p, const ip4_addr_t *dst)
{
	(void)netif, (void)p, (void)dst;
	return ERR_OK;
}

static err_t bench_netif_init(struct netif *netif)
{
	netif->output = bench_output;
	netif->mtu = 1500;
	return ERR_OK;
}

/* The 4-tuple of PCB i: peer addresses and ports as many clients give. */
static u32_t peer_ip(unsigned i) { return PEER_IP + (i >> 14); }
static u16_t peer_port(unsigned i) { return (u16_t)(10000 + (i & 0x3fff)); }

static void segment(u8_t *f, u32_t src, u16_t sport, u8_t flags)
{
	kbt_tcp_frame(f, src, sport, STACK_IP, PORT, 1000, 2000, flags, NULL, 0, 0);
}

static struct tcp_pcb *timewait_pcb(unsigned i)
{
	struct tcp_pcb *pcb = tcp_new();

	if (!pcb) {
		fprintf(stderr, "lwip_demux: no PCB for %u\n", i);
		exit(1);
	}
	ip_addr_set_ip4_u32(&pcb->local_ip, lwip_htonl(STACK_IP));
	ip_addr_set_ip4_u32(&pcb->remote_ip, lwip_htonl(peer_ip(i)));
	pcb->local_port = PORT;
	pcb->remote_port = peer_port(i);
	pcb->rcv_nxt = 1000;
	pcb->snd_nxt = 2000;
	pcb->tmr = tcp_ticks;
	pcb->state = TIME_WAIT;
	TCP_REG(&tcp_tw_pcbs, pcb);
	return pcb;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* ns per segment for `count` segments taken round-robin from `segs`. */
static double feed(const u8_t *segs, unsigned nsegs, unsigned count)
{
	double t0 = now_ns();
	unsigned i;

	for (i = 0; i < count; i++) {
		struct pbuf *p = pbuf_alloc(PBUF_RAW, SEG_LEN, PBUF_POOL);

		if (!p) {
			fprintf(stderr, "lwip_demux: no pbuf\n");
			exit(1);
		}
		memcpy(p->payload, segs + (size_t)(i % nsegs) * SEG_LEN, SEG_LEN);
		ip4_input(p, &bench_netif);
	}
	return (now_ns() - t0) / count;
}

int main(int argc, char **argv)
{
	static const unsigned dflt[] = { 0, 1024, 4096, 8000 };
	unsigned nn = argc > 1 ? (unsigned)argc - 1 : 4, k, made = 0;
	ip4_addr_t ip, mask, gw;
	enum { HITS = 4096, MISSES = 4096, ROUNDS = 400000 };
	u8_t *hit = malloc((size_t)HITS * SEG_LEN), *miss = malloc((size_t)MISSES * SEG_LEN);

	lwip_init();
	ip4_addr_set_u32(&ip, lwip_htonl(STACK_IP));
	ip4_addr_set_u32(&mask, lwip_htonl(0xffff0000u));
	ip4_addr_set_zero(&gw);
	netif_add(&bench_netif, &ip, &mask, &gw, NULL, bench_netif_init, ip4_input);
	netif_set_default(&bench_netif);
	netif_set_up(&bench_netif);
	netif_set_link_up(&bench_netif);

	/* Tuples no PCB has: another peer address. */
	for (k = 0; k < MISSES; k++)
		segment(miss + (size_t)k * SEG_LEN, PEER_IP + 0x100 + k % 7,
			(u16_t)(20000 + k), TCP_RST);

	printf("%8s %12s %12s\n", "N", "tw-hit ns", "miss ns");
	for (k = 0; k < nn; k++) {
		unsigned n = argc > 1 ? (unsigned)strtoul(argv[k + 1], NULL, 0) : dflt[k];
		unsigned j, nh = n ? HITS : 0;
		double th = 0, tm;

		while (made < n)
			timewait_pcb(made++);
		for (j = 0; j < nh; j++) {
			unsigned i = (unsigned)random() % n;

			segment(hit + (size_t)j * SEG_LEN, peer_ip(i), peer_port(i), TCP_ACK);
		}
		if (nh) {
			feed(hit, nh, ROUNDS / 10); /* warm */
			th = feed(hit, nh, ROUNDS);
		}
		feed(miss, MISSES, ROUNDS / 10);
		tm = feed(miss, MISSES, ROUNDS);
		if (nh)
			printf("%8u %12.1f %12.1f\n", n, th, tm);
		else
			printf("%8u %12s %12.1f\n", n, "-", tm);
	}
	return 0;
}
