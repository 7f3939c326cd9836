/*
 * kbs_stats.h — kbstackd's side of the shared counters (shim/kbq_stats.h).
 *
 * kbs_stats always points at a valid struct: a private one until
 * kbs_stats_open() maps the shared file, so code and unit tests can count
 * without caring whether a file exists. kbstackd's loop is the only writer.
 */
#ifndef KBS_STATS_H
#define KBS_STATS_H

#include "kbq_stats.h"

extern struct kbq_stats *kbs_stats;

/* Single writer: a relaxed store makes each update visible untorn. */
#define KBS_STAT_ADD(field, n)                                               \
	__atomic_store_n(&kbs_stats->c.field, kbs_stats->c.field + (n),     \
			 __ATOMIC_RELAXED)
#define KBS_STAT_SET(field, v)                                               \
	__atomic_store_n(&kbs_stats->c.field, (v), __ATOMIC_RELAXED)

/*
 * Create, lock and map <stack>.stats (creating the directory). Returns 0 or
 * -errno; -EBUSY means another kbstackd holds the same KB_STACK.
 */
int kbs_stats_open(const char *stack);

/* Mark the state (KBQ_STATE_*), release store: readers acquire-load it. */
void kbs_stats_state(uint32_t state);

/* Unmap and remove the file. */
void kbs_stats_close(void);

#endif /* KBS_STATS_H */
