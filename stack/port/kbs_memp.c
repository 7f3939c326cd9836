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

size_t kbs_tcp_pcbs(void)
{
	return kbs_memp_limit[MEMP_TCP_PCB];
}

void kbs_tcp_set_pcbs(size_t n)
{
	kbs_memp_limit[MEMP_TCP_PCB] = n;
	/* Segments and pbuf headers follow a larger bound, never fall below
	 * the build's: a tcp_write refused for want of one with nothing in
	 * flight would wait for a doorbell that may not come. */
	if (n > MEMP_NUM_TCP_SEG)
		kbs_memp_limit[MEMP_TCP_SEG] = n;
	if (n > MEMP_NUM_PBUF)
		kbs_memp_limit[MEMP_PBUF] = n;
}
