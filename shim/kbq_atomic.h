/*
 * kbq_atomic.h — the atomic accesses both sides make to a shared region,
 * in one place, with C11 memory-model semantics (GCC/Clang __atomic
 * builtins on the region's plain fixed-width fields).
 *
 * Which one to use:
 *   kbq_ld_acq / kbq_st_rel   an index or state published after its
 *                             payload (release) and read before it
 *                             (acquire); the comment at each use names
 *                             the pairing access on the other side.
 *   kbq_ld / kbq_st           a word read or written once, untorn, with
 *                             no ordering (counters, hints).
 *   kbq_ld_sc / kbq_add_sc    the sleep/wake handshakes, where each side
 *                             writes one word and then reads the other's
 *                             (a store-load pattern that needs seq_cst).
 * kbstackd reads every application-written word through one of these,
 * once, into a local it then validates: never twice (no double fetch).
 */
#ifndef KBQ_ATOMIC_H
#define KBQ_ATOMIC_H

#define kbq_ld(p)          __atomic_load_n((p), __ATOMIC_RELAXED)
#define kbq_st(p, v)       __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define kbq_ld_acq(p)      __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define kbq_st_rel(p, v)   __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define kbq_ld_sc(p)       __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define kbq_st_sc(p, v)    __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define kbq_add_sc(p, v)   __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define kbq_sub_sc(p, v)   __atomic_fetch_sub((p), (v), __ATOMIC_SEQ_CST)
#define kbq_or_rel(p, v)   __atomic_fetch_or((p), (v), __ATOMIC_RELEASE)
#define kbq_or_sc(p, v)    __atomic_fetch_or((p), (v), __ATOMIC_SEQ_CST)
#define kbq_and_sc(p, v)   __atomic_fetch_and((p), (v), __ATOMIC_SEQ_CST)
#define kbq_add(p, v)      __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
/* Reference counts shared by processes: the old value, and the new one. */
#define kbq_add_ar(p, v)   __atomic_fetch_add((p), (v), __ATOMIC_ACQ_REL)
#define kbq_sub_ar_new(p, v) __atomic_sub_fetch((p), (v), __ATOMIC_ACQ_REL)
#define kbq_xchg_sc(p, v)  __atomic_exchange_n((p), (v), __ATOMIC_SEQ_CST)
#define kbq_xchg_acq(p, v) __atomic_exchange_n((p), (v), __ATOMIC_ACQUIRE)

/* Compare-and-swap: true when *p was *expect and is now v; otherwise
 * *expect gets the value seen. acq_rel on success; on failure relaxed
 * (kbq_cas) or acquire (kbq_cas_acq: the value seen is then used). */
#define kbq_cas_acq(p, expect, v)                                            \
	__atomic_compare_exchange_n((p), (expect), (v), false, __ATOMIC_ACQ_REL, \
				    __ATOMIC_ACQUIRE)
#define kbq_cas(p, expect, v)                                                \
	__atomic_compare_exchange_n((p), (expect), (v), false, __ATOMIC_ACQ_REL, \
				    __ATOMIC_RELAXED)

#endif /* KBQ_ATOMIC_H */
