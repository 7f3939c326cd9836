/*
 * test_trim.c — kbstackd's ring trimming (stack/tcp/kbs_trim.c) on a
 * context of its own, white-box: slots put in each state by hand, bytes in
 * their rings, then trim passes. A region without a memfd has a trimmed
 * ring's pages dropped, so they read back as zeros, as a punched hole does:
 * each test looks at the bytes. Every guard is here: unread rx, tx not yet
 * acknowledged or not yet sent, a writer inside tx (tx_busy), DRAINING; and
 * what must be trimmed: an idle connection's rings, a CLOSED one's, a free
 * slot's; an event puts it off a period; a pass does at most
 * KBS_TRIM_PUNCHES and resumes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "kbq_atomic.h"
#include "kbs_ctx.h"
#include "kbs_stats.h"

static struct kbs_ctx *c;

#define T_SLOTS 1024u
/* Not the default: a trim that gave back a default ring's worth would take
 * the slot's other ring and the next slot's too (tx_kept, rx_kept). */
#define T_RING KBQ_RING_MIN

static int setup(void **state)
{
	void *r = mmap(NULL, kbq_region_size(T_SLOTS, T_RING), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	(void)state;
	c = kbs_life_ctx_new(T_SLOTS, T_RING);
	if (r == MAP_FAILED || !c)
		return -1;
	c->r = r;
	c->memfd = -1;
	kbs_ctxs = c;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	kbs_ctxs = NULL;
	munmap(c->r, kbq_region_size(T_SLOTS, T_RING));
	kbs_life_ctx_free(c);
	return 0;
}

static uint8_t *rx(uint32_t slot) { return kbq_rx_data(c->r, slot, T_RING); }
static uint8_t *tx(uint32_t slot) { return kbq_tx_data(c->r, slot, T_RING); }

/* Slot in state life with bytes in both rings (first and last page), as
 * if rx_tail bytes were received and tx_sent sent, tx_acked of them
 * acknowledged; the application read rx_head and queued tx_tail. */
static struct kbs_sock *sock(uint32_t slot, enum kbs_life life, uint32_t rx_tail,
			     uint32_t rx_head, uint32_t tx_sent, uint32_t tx_acked,
			     uint32_t tx_tail)
{
	struct kbs_sock *s = kbs_sock_at(c, slot);
	struct kbq_sock *q = kbs_qs(s);

	s->life = (uint8_t)life;
	s->rx_tail = rx_tail;
	s->tx_sent = tx_sent;
	s->tx_acked = tx_acked;
	q->rx_head = rx_head;
	q->tx_tail = tx_tail;
	q->tx_busy = 0;
	q->tx_trim = 0;
	rx(slot)[0] = rx(slot)[T_RING - 1] = 0x5a;
	tx(slot)[0] = tx(slot)[T_RING - 1] = 0xa5;
	s->trim_rx = s->trim_tx = true;
	kbs_trim_touch(s);
	return s;
}

static bool rx_kept(uint32_t slot) { return rx(slot)[0] == 0x5a && rx(slot)[T_RING - 1] == 0x5a; }
static bool tx_kept(uint32_t slot) { return tx(slot)[0] == 0xa5 && tx(slot)[T_RING - 1] == 0xa5; }
static bool rx_gone(uint32_t slot) { return rx(slot)[0] == 0 && rx(slot)[T_RING - 1] == 0; }
static bool tx_gone(uint32_t slot) { return tx(slot)[0] == 0 && tx(slot)[T_RING - 1] == 0; }

/* Two periods: the first forgets the event that listed the socket. */
static void periods(unsigned n)
{
	while (n--) {
		bool more = kbs_trim_pass(true);

		while (more)
			more = kbs_trim_pass(false);
	}
}

static void test_idle_connection_trimmed(void **state)
{
	uint64_t t0 = kbs_stats->c.ring_trims;
	struct kbs_sock *s = sock(1, KBS_L_ESTABLISHED, 5000, 5000, 7000, 7000, 7000);

	(void)state;
	periods(1);
	assert_true(rx_kept(1) && tx_kept(1)); /* an event this period */
	periods(1);
	assert_true(rx_gone(1) && tx_gone(1));
	assert_int_equal(kbs_stats->c.ring_trims, t0 + 2);
	assert_false(s->trim_listed);
	assert_int_equal(kbq_ld(&kbs_qs(s)->tx_trim), 0);
}

static void test_event_puts_off(void **state)
{
	struct kbs_sock *s = sock(2, KBS_L_ESTABLISHED, 10, 10, 10, 10, 10);

	(void)state;
	periods(1);
	kbs_trim_touch(s); /* an event in the next period */
	periods(1);
	assert_true(rx_kept(2) && tx_kept(2));
	periods(1);
	assert_true(rx_gone(2) && tx_gone(2));
}

static void test_rx_unread_kept(void **state)
{
	struct kbs_sock *s = sock(3, KBS_L_ESTABLISHED, 5000, 4000, 10, 10, 10);

	(void)state;
	periods(3);
	assert_true(rx_kept(3));
	assert_true(s->trim_listed);
	kbq_st(&kbs_qs(s)->rx_head, 5000); /* the application read the rest */
	periods(1);
	assert_true(rx_gone(3) && tx_gone(3));
}

static void test_tx_unacked_kept(void **state)
{
	struct kbs_sock *s = sock(4, KBS_L_ESTABLISHED, 0, 0, 9000, 8000, 9000);

	(void)state;
	periods(3);
	assert_true(tx_kept(4)); /* lwIP's segments point at those bytes */
	s->tx_acked = 9000;
	periods(1);
	assert_true(tx_gone(4));
}

static void test_tx_unsent_kept(void **state)
{
	struct kbs_sock *s = sock(5, KBS_L_ESTABLISHED, 0, 0, 9000, 9000, 9500);

	(void)state;
	periods(3);
	assert_true(tx_kept(5)); /* queued, not yet handed to lwIP */
	assert_int_equal(kbq_ld(&kbs_qs(s)->tx_trim), 0);
	s->tx_sent = s->tx_acked = 9500;
	periods(1);
	assert_true(tx_gone(5));
}

static void test_writer_inside_kept(void **state)
{
	struct kbs_sock *s = sock(6, KBS_L_ESTABLISHED, 0, 0, 10, 10, 10);

	(void)state;
	kbq_st(&kbs_qs(s)->tx_busy, 1);
	periods(3);
	assert_true(tx_kept(6));
	assert_int_equal(kbq_ld(&kbs_qs(s)->tx_trim), 0); /* left open for the writer */
	kbq_st(&kbs_qs(s)->tx_busy, 0);
	periods(1);
	assert_true(tx_gone(6));
}

static void test_draining_kept(void **state)
{
	struct kbs_sock *s = sock(7, KBS_L_DRAINING, 0, 0, 10, 10, 10);

	(void)state;
	periods(3);
	assert_true(rx_kept(7) && tx_kept(7));
	s->life = KBS_L_FREE; /* all sent: the slot went back */
	kbs_trim_touch(s);
	periods(2);
	assert_true(rx_gone(7) && tx_gone(7));
}

static void test_closed_trimmed(void **state)
{
	(void)state;
	sock(8, KBS_L_CLOSED, 100, 100, 9000, 100, 9000); /* no PCB: nothing will be sent */
	periods(2);
	assert_true(rx_gone(8) && tx_gone(8));
}

static void test_clean_ring_not_punched(void **state)
{
	struct kbs_sock *s = sock(9, KBS_L_ESTABLISHED, 0, 0, 0, 0, 0);
	uint64_t t0;

	(void)state;
	periods(2);
	assert_true(rx_gone(9) && tx_gone(9));
	t0 = kbs_stats->c.ring_trims;
	kbs_trim_touch(s); /* an event that wrote neither ring */
	periods(2);
	assert_int_equal(kbs_stats->c.ring_trims, t0);
	assert_false(s->trim_listed);
}

static void test_pass_bounded(void **state)
{
	uint64_t t0 = kbs_stats->c.ring_trims;
	unsigned i, calls = 0;
	bool more;

	(void)state;
	for (i = 0; i < 100; i++)
		sock(100 + i, KBS_L_FREE, 0, 0, 0, 0, 0);
	periods(1);
	more = kbs_trim_pass(true);
	assert_true(more);
	assert_true(kbs_stats->c.ring_trims - t0 <= KBS_TRIM_PUNCHES + 1);
	while (more) {
		more = kbs_trim_pass(false);
		calls++;
	}
	assert_true(calls >= 200 / (KBS_TRIM_PUNCHES + 1) - 1);
	assert_int_equal(kbs_stats->c.ring_trims - t0, 200);
	for (i = 0; i < 100; i++)
		assert_true(rx_gone(100 + i) && tx_gone(100 + i));
}

/* Not trimming, but this context serves: an application that claims
 * every slot and uses none costs kbs_slot_claim one walk of them, not one
 * per connection to its listener (first, while every slot is free). */
static void test_claimed_slots_walked_once(void **state)
{
	struct kbs_sock *s;
	uint32_t i;

	(void)state;
	for (i = 0; i < T_SLOTS; i++)
		kbq_sock_at(c->r, i)->state = KBQ_S_OPEN;
	assert_null(kbs_slot_claim(c));
	for (i = 0; i < T_SLOTS / 64; i++)
		assert_int_equal(c->free_bits[i], 0);
	assert_int_equal(c->free_lo, T_SLOTS / 64); /* the next walk starts past them */
	assert_null(kbs_slot_claim(c));
	/* the application gone: its claims are free again, for a claim too */
	assert_true(kbs_ctx_close_all(c));
	assert_int_equal(kbq_sock_at(c->r, 0)->state, KBQ_S_FREE);
	s = kbs_slot_claim(c);
	assert_non_null(s);
	assert_int_equal(s->slot, 0);
	assert_int_equal(kbq_sock_at(c->r, 0)->state, KBQ_S_STACK);
	kbq_sock_at(c->r, 0)->state = KBQ_S_FREE; /* as the other tests expect */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_claimed_slots_walked_once),
		cmocka_unit_test(test_idle_connection_trimmed),
		cmocka_unit_test(test_event_puts_off),
		cmocka_unit_test(test_rx_unread_kept),
		cmocka_unit_test(test_tx_unacked_kept),
		cmocka_unit_test(test_tx_unsent_kept),
		cmocka_unit_test(test_writer_inside_kept),
		cmocka_unit_test(test_draining_kept),
		cmocka_unit_test(test_closed_trimmed),
		cmocka_unit_test(test_clean_ring_not_punched),
		cmocka_unit_test(test_pass_bounded),
	};

	return cmocka_run_group_tests_name("trim", tests, setup, teardown);
}
