/*
 * test_fdtable.c — unit tests for libkbpreload.so's fd table (kbp_core.c):
 * kbp_fd_get/kbp_fd_set/kbp_fd_take/kbp_sock_get/kbp_fd_max/kbp_fd_end, which decide
 * whether an fd is accelerated. The table is sized by kbp_core.c's
 * constructor (linked in with kbpreload_logic) before main runs.
 *
 * The objects are built by hand: the table only looks at their first int
 * (KBP_K_SOCK or KBP_K_EPOLL). Every test leaves the table empty.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kbp.h"

struct fake_ep {
	int kind;                  /* KBP_K_EPOLL */
	int payload;
};

static struct kbp_sock sock_a = { .kind = KBP_K_SOCK, .slot = 1 };
static struct kbp_sock sock_b = { .kind = KBP_K_SOCK, .slot = 2 };
static struct fake_ep ep_a = { .kind = KBP_K_EPOLL, .payload = 7 };

/* The whole table is empty (nothing leaked from a previous test). */
static void assert_table_empty(void)
{
	int fd, max = kbp_fd_max(), used = 0;

	for (fd = 0; fd < max; fd++)
		used += kbp_fd_get(fd) != NULL;
	assert_int_equal(used, 0);
}

static int check_empty(void **state)
{
	assert_table_empty();
	return 0;
}

static void test_max(void **state)
{
	assert_true(kbp_fd_max() >= 1024);
	assert_true(kbp_fd_max() <= KBP_FD_MAX);
	assert_true(KBP_FD_MAX >= 1 << 20); /* RLIMIT_NOFILE up to a million */
}

/* fds up to a million (RLIMIT_NOFILE's ceiling, fs.nr_open's default),
 * whatever the limit was when the constructor ran; scans stop at the
 * highest fd ever used. */
static void test_million(void **state)
{
	int fd = (1 << 20) - 1;

	(void)state;
	assert_true(kbp_fd_max() > fd);
	kbp_fd_set(fd, &sock_a);
	assert_ptr_equal(kbp_sock_get(fd), &sock_a);
	assert_true(kbp_fd_end() == fd + 1);
	kbp_fd_set(70000, &sock_b);
	assert_true(kbp_fd_end() == fd + 1); /* the mark only rises */
	assert_ptr_equal(kbp_fd_take(70000), &sock_b);
	assert_ptr_equal(kbp_fd_take(fd), &sock_a);
	assert_null(kbp_fd_get(fd));
}

static void test_unknown_fds(void **state)
{
	int max = kbp_fd_max();

	assert_null(kbp_fd_get(0));
	assert_null(kbp_fd_get(5));
	assert_null(kbp_fd_get(max - 1));
	assert_null(kbp_fd_get(-1));
	assert_null(kbp_fd_get(INT_MIN));
	assert_null(kbp_fd_get(max));
	assert_null(kbp_fd_get(max + 1));
	assert_null(kbp_fd_get(INT_MAX));
	assert_null(kbp_sock_get(5));
	assert_null(kbp_sock_get(-1));
	assert_null(kbp_sock_get(INT_MAX));
	assert_null(kbp_fd_take(5));
	assert_null(kbp_fd_take(-1));
	assert_null(kbp_fd_take(INT_MIN));
	assert_null(kbp_fd_take(max));
	assert_null(kbp_fd_take(INT_MAX));
}

/* Out-of-range sets are ignored and write nothing anywhere. */
static void test_set_out_of_range(void **state)
{
	int max = kbp_fd_max();

	kbp_fd_set(-1, &sock_a);
	kbp_fd_set(INT_MIN, &sock_a);
	kbp_fd_set(max, &sock_a);
	kbp_fd_set(INT_MAX, &sock_a);
	assert_null(kbp_fd_get(-1));
	assert_null(kbp_fd_get(max));
	assert_null(kbp_fd_get(INT_MAX));
	assert_table_empty();
}

static void test_round_trip(void **state)
{
	kbp_fd_set(10, &sock_a);
	assert_ptr_equal(kbp_fd_get(10), &sock_a);
	assert_ptr_equal(kbp_sock_get(10), &sock_a);
	assert_int_equal(kbp_sock_get(10)->slot, 1);
	/* neighbours untouched */
	assert_null(kbp_fd_get(9));
	assert_null(kbp_fd_get(11));

	assert_ptr_equal(kbp_fd_take(10), &sock_a);
	assert_null(kbp_fd_get(10));
	assert_null(kbp_sock_get(10));
	assert_null(kbp_fd_take(10));
}

static void test_overwrite_and_clear(void **state)
{
	kbp_fd_set(12, &sock_a);
	kbp_fd_set(12, &sock_b);
	assert_ptr_equal(kbp_fd_get(12), &sock_b);
	assert_ptr_equal(kbp_sock_get(12), &sock_b);
	kbp_fd_set(12, NULL);
	assert_null(kbp_fd_get(12));
	assert_null(kbp_fd_take(12));
}

static void test_edges(void **state)
{
	int max = kbp_fd_max();

	kbp_fd_set(0, &sock_a);
	kbp_fd_set(max - 1, &sock_b);
	assert_ptr_equal(kbp_fd_get(0), &sock_a);
	assert_ptr_equal(kbp_sock_get(max - 1), &sock_b);
	assert_null(kbp_fd_get(1));
	assert_null(kbp_fd_get(max - 2));
	assert_null(kbp_fd_get(max));
	assert_ptr_equal(kbp_fd_take(0), &sock_a);
	assert_ptr_equal(kbp_fd_take(max - 1), &sock_b);
}

static void test_sock_get_kind(void **state)
{
	static int zero_kind;       /* an object of no known kind */

	kbp_fd_set(20, &ep_a);
	kbp_fd_set(21, &sock_a);
	kbp_fd_set(22, &zero_kind);
	assert_ptr_equal(kbp_fd_get(20), &ep_a);
	assert_null(kbp_sock_get(20));
	assert_ptr_equal(kbp_sock_get(21), &sock_a);
	assert_ptr_equal(kbp_fd_get(22), &zero_kind);
	assert_null(kbp_sock_get(22));
	assert_ptr_equal(kbp_fd_take(20), &ep_a);
	assert_ptr_equal(kbp_fd_take(21), &sock_a);
	assert_ptr_equal(kbp_fd_take(22), &zero_kind);
}

/* ---- two threads on disjoint fd ranges ----------------------------------- */

#define FD_ROUNDS 200

struct fd_worker {
	int lo, hi;               /* fds [lo, hi) */
	void *objs[4];            /* this thread's objects */
	int is_sock;              /* objs are sockets (else epoll) */
	const void *other[4];     /* the other thread's objects: never ours */
	unsigned long errors;     /* read by main after join */
	unsigned long ops;
};

static void *fd_worker_main(void *arg)
{
	struct fd_worker *w = arg;
	int round, fd, i;

	for (round = 0; round < FD_ROUNDS; round++) {
		for (fd = w->lo; fd < w->hi; fd++)
			kbp_fd_set(fd, w->objs[(fd + round) & 3]);
		for (fd = w->lo; fd < w->hi; fd++) {
			void *want = w->objs[(fd + round) & 3];
			void *got = kbp_fd_get(fd);

			w->errors += got != want;
			w->errors += (kbp_sock_get(fd) != NULL) != w->is_sock;
			for (i = 0; i < 4; i++)
				w->errors += got == w->other[i];
		}
		/* take every other fd, overwrite the rest, then take those */
		for (fd = w->lo; fd < w->hi; fd += 2)
			w->errors += kbp_fd_take(fd) != w->objs[(fd + round) & 3];
		for (fd = w->lo + 1; fd < w->hi; fd += 2)
			kbp_fd_set(fd, w->objs[(fd + round + 1) & 3]);
		for (fd = w->lo; fd < w->hi; fd++) {
			void *want = (fd - w->lo) & 1 ? w->objs[(fd + round + 1) & 3] : NULL;

			w->errors += kbp_fd_get(fd) != want;
		}
		for (fd = w->lo + 1; fd < w->hi; fd += 2)
			w->errors += kbp_fd_take(fd) != w->objs[(fd + round + 1) & 3];
		for (fd = w->lo; fd < w->hi; fd++)
			w->errors += kbp_fd_get(fd) != NULL;
		w->ops += (unsigned long)(w->hi - w->lo);
	}
	return NULL;
}

static void test_two_threads_disjoint(void **state)
{
	static struct kbp_sock socks[4];
	static struct fake_ep eps[4];
	struct fd_worker w[2];
	pthread_t t[2];
	int i, half = kbp_fd_max() / 2;

	if (half > 2048)
		half = 2048;
	memset(w, 0, sizeof(w));
	for (i = 0; i < 4; i++) {
		socks[i].kind = KBP_K_SOCK;
		socks[i].slot = (uint32_t)i;
		eps[i].kind = KBP_K_EPOLL;
		w[0].objs[i] = &socks[i];
		w[1].objs[i] = &eps[i];
		w[0].other[i] = &eps[i];
		w[1].other[i] = &socks[i];
	}
	w[0].lo = 0;
	w[0].hi = half;
	w[0].is_sock = 1;
	w[1].lo = half;
	w[1].hi = 2 * half;
	w[1].is_sock = 0;

	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, fd_worker_main, &w[i]), 0);
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	for (i = 0; i < 2; i++) {
		assert_int_equal(w[i].errors, 0);
		assert_int_equal(w[i].ops, (unsigned long)FD_ROUNDS * (unsigned long)half);
	}
	assert_table_empty();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_max),
		cmocka_unit_test_setup_teardown(test_unknown_fds, check_empty, check_empty),
		cmocka_unit_test_setup_teardown(test_million, check_empty, check_empty),
		cmocka_unit_test_setup_teardown(test_set_out_of_range, check_empty, check_empty),
		cmocka_unit_test_setup_teardown(test_round_trip, check_empty, check_empty),
		cmocka_unit_test_setup_teardown(test_overwrite_and_clear, check_empty, check_empty),
		cmocka_unit_test_setup_teardown(test_edges, check_empty, check_empty),
		cmocka_unit_test_setup_teardown(test_sock_get_kind, check_empty, check_empty),
		cmocka_unit_test_setup_teardown(test_two_threads_disjoint, check_empty,
						check_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
