/*
 * kbs_hooks.h — lwIP hook prototypes (LWIP_HOOK_FILENAME). Included by lwIP's
 * own sources after its types are defined.
 */
#ifndef KBS_HOOKS_H
#define KBS_HOOKS_H

#include "lwip/ip_addr.h"

u32_t kbs_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
		  const ip_addr_t *remote_ip, u16_t remote_port);

#endif /* KBS_HOOKS_H */
