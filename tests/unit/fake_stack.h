/*
 * fake_stack.h — kbstackd's part in the preload harness
 * (test_preload_harness.c): the context, wake-ups and control plane of a
 * region the test maps itself, run by kbstackd's own code (kbs_wake.c,
 * kbs_ctl.c). What goes into the rings and the accept queues is the
 * test's. Only for that harness: there is no lwIP and no DPDK port behind
 * it, and one context only.
 */
#ifndef FAKE_STACK_H
#define FAKE_STACK_H

#include <stdbool.h>
#include <stdint.h>

#include "kbq_abi.h"

/*
 * Serve region r: a kbstackd context around it (context r->ctx, the
 * caller's uid), waiter 0 woken through wake0 (as NEW hands it over), and
 * a control plane answering hellos with kbs_ctl.c's own code, in a thread
 * of its own: on one end of a socketpair (*ctl gets the other, the
 * application's connection) and on a listening socket at path (connections
 * the preload opens itself: fork's JOIN). 0 or -errno.
 */
int fs_start(struct kbq_region *r, int wake0, const char *path, int *ctl);

/* Stop the control plane, close what the context holds. */
void fs_stop(void);

/* An event on slot, then the end of a stack loop iteration:
 * kbs_wake_event, then kbs_ctxs_wake (unless held back). */
void fs_event(uint32_t slot);

/* Test-only switch: hold waiter wake-ups back (skip kbs_ctxs_wake), as if
 * they were lost; off again, the iteration held back ends (they are sent). */
void fs_wake_hold(bool hold);

/* The wake socket kbstackd holds for waiter idx, -1 when none was
 * registered. */
int fs_wfd(unsigned idx);

#endif /* FAKE_STACK_H */
