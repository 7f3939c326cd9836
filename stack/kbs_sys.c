/*
 * kbs_sys.c — what lwIP asks of its platform: a millisecond clock
 * (sys_now) and a microsecond one for the loss probes (kbs_now_us), both
 * from the TSC, random numbers, and initial sequence numbers.
 *
 * ISNs follow RFC 6528: a 4 µs clock plus a keyed hash (SipHash-2-4) of the
 * connection's addresses and ports, with a key drawn from getrandom() at
 * start. Peers cannot predict them; a reused 4-tuple still gets increasing
 * numbers.
 */
#include <stdint.h>
#include <string.h>
#include <sys/random.h>

#include <rte_cycles.h>
#include <rte_random.h>

#include "lwip/ip_addr.h"
#include "lwip/sys.h"

#include "kbs_hooks.h"

static uint64_t kbs_tsc_per_ms = 1; /* until kbs_sys_init */
static uint64_t kbs_tsc_per_us = 1;
static uint64_t kbs_tsc_per_4us;
static uint64_t kbs_isn_key[2];

void kbs_sys_init(void)
{
	uint64_t hz = rte_get_tsc_hz();

	kbs_tsc_per_ms = hz / 1000 ? hz / 1000 : 1;
	kbs_tsc_per_us = hz / 1000000 ? hz / 1000000 : 1;
	kbs_tsc_per_4us = hz / 250000 ? hz / 250000 : 1;
	if (getrandom(kbs_isn_key, sizeof(kbs_isn_key), 0) != sizeof(kbs_isn_key))
		kbs_isn_key[0] = rte_rand(), kbs_isn_key[1] = rte_rand();
	rte_srand(kbs_isn_key[0] ^ rte_rdtsc());
}

u32_t sys_now(void)
{
	return (u32_t)(rte_rdtsc() / kbs_tsc_per_ms);
}

u32_t kbs_now_us(void)
{
	return (u32_t)(rte_rdtsc() / kbs_tsc_per_us);
}

uint32_t kbs_rand(void)
{
	return (uint32_t)rte_rand();
}

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                             \
	do {                                                                 \
		v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32);    \
		v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2;                       \
		v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0;                       \
		v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32);    \
	} while (0)

/* SipHash-2-4 of two 64-bit words (the 4-tuple), 16-byte length tag. */
static uint64_t kbs_siphash2(const uint64_t k[2], uint64_t m0, uint64_t m1)
{
	uint64_t v0 = 0x736f6d6570736575ull ^ k[0], v1 = 0x646f72616e646f6dull ^ k[1];
	uint64_t v2 = 0x6c7967656e657261ull ^ k[0], v3 = 0x7465646279746573ull ^ k[1];
	const uint64_t m[3] = { m0, m1, 16ull << 56 };
	int i;

	for (i = 0; i < 3; i++) {
		v3 ^= m[i];
		SIPROUND;
		SIPROUND;
		v0 ^= m[i];
	}
	v2 ^= 0xff;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

u32_t kbs_tcp_isn(const ip_addr_t *local_ip, u16_t local_port,
		  const ip_addr_t *remote_ip, u16_t remote_port)
{
	uint64_t a = ((uint64_t)ip4_addr_get_u32(ip_2_ip4(local_ip)) << 32) |
		     ip4_addr_get_u32(ip_2_ip4(remote_ip));
	uint64_t b = ((uint64_t)local_port << 16) | remote_port;

	return (u32_t)(rte_rdtsc() / kbs_tsc_per_4us) +
	       (u32_t)kbs_siphash2(kbs_isn_key, a, b);
}
