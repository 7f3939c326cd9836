/*
 * kbs_chksum.c — lwIP's LWIP_CHKSUM: the 16-bit one's complement sum of
 * len bytes at data, not inverted, in the byte order of the data, as
 * lwip_standard_chksum (test_netif compares them on every alignment and
 * length). DPDK's sum reads 8 bytes a step where lwIP's reads 2.
 */
#include <rte_ip.h>

#include "lwip/arch.h"

unsigned short kbs_chksum(const void *data, int len)
{
	return rte_raw_cksum(data, len > 0 ? (size_t)len : 0);
}
