/*
 * kbs_hooks.h — lwIP hook prototypes (LWIP_HOOK_FILENAME). Included by lwIP's
 * own sources after its types are defined.
 */
#ifndef KBS_HOOKS_H
#define KBS_HOOKS_H

#include "lwip/err.h"
#include "lwip/ip_addr.h"

u32_t kbs_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
		  const ip_addr_t *remote_ip, u16_t remote_port);

struct tcp_pcb;
struct tcp_hdr;
struct pbuf;
struct netif;

/* A SYN that reuses a TIME_WAIT 4-tuple, or one for a listener (kbs_tcp_hooks.c). */
err_t kbs_tcp_inpacket(struct tcp_pcb *pcb, struct tcp_hdr *hdr, u16_t optlen,
		       u16_t opt1len, u8_t *opt2, struct pbuf *p);

/* A segment for a listener: ERR_OK to let lwIP take it (kbs_tcp.c). */
struct tcp_pcb_listen;
err_t kbs_tcp_listen_input(struct tcp_pcb_listen *lpcb, u8_t flags);

/* Feed in again the SYN kbs_tcp_inpacket kept; after each frame's input. */
void kbs_tcp_reinput(struct netif *netif);

/* Free the oldest TIME_WAIT PCBs when more than half the pool is in
 * TIME_WAIT (kbs_tcp_hooks.c); the loop calls it every 64 ms. */
void kbs_tcp_tw_trim(void);

/* The microsecond clock of the loss probes (LWIP_TCP_NOW_US, patch 0021);
 * wraps every 71 minutes, compared by difference. */
u32_t kbs_now_us(void);
/* lwIP's (lwip/priv/tcp_priv.h, which kbstackd's DPDK headers clash
 * with): the loop calls it every iteration. */
void tcp_probe_tmr(void);

/* The most lwIP objects of each memp type in use at once (lwip-patches/
 * 0027), MEMP_NUM_* until kbs_tcp_set_pcbs. */
extern size_t kbs_memp_limit[];

/* Bound PCBs (TIME_WAIT included) to n, and segments and pbuf headers to
 * as many if that is more than the build's (KB_TCP_PCBS); before lwIP
 * serves anything. */
void kbs_tcp_set_pcbs(size_t n);

/* The PCB bound in force. */
size_t kbs_tcp_pcbs(void);

/* The ring the build's segment and pbuf bounds are sized for (they grow
 * by KB_RING / this above it), and the window and send buffer before
 * kbs_tcp_set_ring (lwIP's unit tests run on it). */
#define KBS_RING_BASE (256u * 1024)

/* Every connection's receive window and send buffer (TCP_WND_RUN,
 * TCP_SND_BUF_RUN: lwip-patches/0035) and the window scale it announces,
 * the least that covers the window. */
extern u32_t kbs_tcp_wnd;
extern u32_t kbs_tcp_snd_buf;
/* The send buffer's most, whatever the ring: kb does not pace its sends,
 * and 64 connections with 1 MiB each in flight overflowed the test bed's
 * queues (64 downloads of 8 MiB at 1 % loss, bench/impair with
 * KB_IMPAIR_PARALLEL=64: 2.4-3.2x the kernel's time, 0.78-0.80x with 256
 * KiB). The rest of a larger tx ring waits there, as KBS_TX_UNSENT_MAX's. */
#define KBS_SND_BUF_MAX (256u * 1024)
extern u8_t kbs_tcp_rcv_scale;

/* Set them from KB_RING (a power of two, KBQ_RING_MIN to KBQ_RING_MAX):
 * before lwIP serves anything. */
void kbs_tcp_set_ring(u32_t ring);

/* How many pbufs a connection may hold beyond a hole while the pool can
 * spare them: a window's worth and a few. */
u16_t kbs_tcp_ooseq_max(void);

/* Non-zero for a connection whose out-of-order queue may be dropped to
 * give the pool back: its hole (rcv_nxt) has not moved for
 * KBS_OOSEQ_STUCK_MS of the prune's visits (now: sys_now()), or no
 * application reads it. */
#define KBS_OOSEQ_STUCK_MS 1000
int kbs_tcp_ooseq_stuck(struct tcp_pcb *pcb, u32_t now);

/* The congestion control of connections made from now on (KB_TCP_CC, a
 * kbs_cc value: lwIP's TCP_CC_*, patch 0026). */
void kbs_tcp_set_cc(int cc);

/* How many pbufs PCB may hold beyond a hole (TCP_OOSEQ_PBUFS_LIMIT): lwIP
 * drops what its queue holds beyond that, from the highest sequence
 * number down (kbs_netif.c). */
u16_t kbs_tcp_ooseq_limit(const struct tcp_pcb *pcb);

/* A recovery event (enum lwip_tcp_event, patch 0007): counted for kbstat. */
void kbs_tcp_event(struct tcp_pcb *pcb, int ev);

#endif /* KBS_HOOKS_H */
