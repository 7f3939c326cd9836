/*
 * arch/cc.h — lwIP's compiler and platform glue for kbstackd (x86-64 Linux,
 * gcc/clang). Assertions abort: lwIP state is corrupt past that point and a
 * core dump is worth more than limping on.
 */
#ifndef KB_ARCH_CC_H
#define KB_ARCH_CC_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define LWIP_NO_INTTYPES_H 0
#define LWIP_ERRNO_STDINCLUDE 1

/* Byte order: the compiler's byte swaps, and no htons/ntohl macros of
 * lwIP's own that would clash with libc's in files that include both. */
#define LWIP_DONT_PROVIDE_BYTEORDER_FUNCTIONS 1
#define lwip_htons(x) ((u16_t)__builtin_bswap16((u16_t)(x)))
#define lwip_htonl(x) ((u32_t)__builtin_bswap32((u32_t)(x)))

#define LWIP_PLATFORM_DIAG(x) do { printf x; } while (0)
#define LWIP_PLATFORM_ASSERT(x)                                              \
	do {                                                                 \
		fprintf(stderr, "kbstackd: lwIP assertion \"%s\" failed at %s:%d\n", \
			x, __FILE__, __LINE__);                              \
		abort();                                                     \
	} while (0)

uint32_t kbs_rand(void);

#endif /* KB_ARCH_CC_H */
