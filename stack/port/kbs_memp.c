/*
 * kbs_memp.c — how many lwIP objects of each type may be in use at once.
 * lwIP takes them from malloc (MEMP_MEM_MALLOC) and asks here before each
 * allocation (LWIP_HOOK_MEMP_LIMIT, lwip-patches/0027); the build's
 * MEMP_NUM_* are the defaults, KB_TCP_PCBS sets the TCP ones.
 */
#include "lwip/opt.h"

#include "lwip/etharp.h"
#include "lwip/ip4_frag.h"
#include "lwip/memp.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/raw.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"
#include "lwip/udp.h"
#include "netif/ppp/ppp_opts.h" /* MEMP_NUM_SYS_TIMEOUT counts PPP's */

#include "kbs_hooks.h"

size_t kbs_memp_limit[MEMP_MAX] = {
#define LWIP_MEMPOOL(name, num, size, desc) [MEMP_##name] = (num),
#include "lwip/priv/memp_std.h"
};

u32_t kbs_tcp_wnd = KBS_RING_BASE;
u32_t kbs_tcp_snd_buf = KBS_RING_BASE;
u8_t kbs_tcp_rcv_scale = 3; /* 65535 << 3 covers it */

size_t kbs_tcp_pcbs(void)
{
	return kbs_memp_limit[MEMP_TCP_PCB];
}

/*
 * Segments and pbuf headers: as many as PCBs if that is more than the
 * build's (never fewer: a tcp_write refused for want of one with nothing
 * in flight would wait for a doorbell that may not come), times the rings'
 * growth over 256 KiB (KBS_RING_BASE) — a full window takes ring / MSS of
 * each, so 8 MiB rings would otherwise run out at 45 busy connections
 * where 256 KiB ones do at 1456. Memory follows use: these are bounds.
 */
static void kbs_memp_segs(void)
{
	size_t n = kbs_memp_limit[MEMP_TCP_PCB], grow = kbs_tcp_wnd / KBS_RING_BASE;

	if (n < MEMP_NUM_TCP_SEG)
		n = MEMP_NUM_TCP_SEG;
	if (grow > 1)
		n *= grow;
	kbs_memp_limit[MEMP_TCP_SEG] = n;
	kbs_memp_limit[MEMP_PBUF] = n;
}

void kbs_tcp_set_pcbs(size_t n)
{
	kbs_memp_limit[MEMP_TCP_PCB] = n;
	kbs_memp_segs();
}

void kbs_tcp_set_ring(u32_t ring)
{
	u8_t scale = 0;

	while ((ring >> scale) > 0xffff)
		scale++;
	kbs_tcp_wnd = ring;
	kbs_tcp_snd_buf = ring < KBS_SND_BUF_MAX ? ring : KBS_SND_BUF_MAX;
	kbs_tcp_rcv_scale = scale;
	kbs_memp_segs();
}
