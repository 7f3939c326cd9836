/*
 * test_accel.c — unit tests for KB_ACCEL's parser (kbp_accel_parse) and the
 * rule matching libkbpreload.so does with it (kbp_listen_match,
 * kbp_connect_match, which read the global kbp_cfg).
 *
 * Linking kbpreload_logic brings kbp_core.c's constructor: it resolves libc
 * and, with KB_ACCEL unset, logs that nothing is accelerated. Harmless.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kbp.h"

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

/* Parse v, expecting success; err must stay untouched. */
static void parse_ok(struct kbp_config *c, const char *v)
{
	char err[256] = "untouched";
	int rc = kbp_accel_parse(c, v, err, sizeof(err));

	if (rc)
		print_error("\"%s\": %s\n", v, err);
	assert_int_equal(rc, 0);
	assert_string_equal(err, "untouched");
}

/* Parse v, expecting -EINVAL with a message naming KB_ACCEL and why. */
static void parse_bad(const char *v, const char *why)
{
	struct kbp_config c;
	char err[512] = "";
	int rc;

	memset(&c, 0, sizeof(c));
	rc = kbp_accel_parse(&c, v, err, sizeof(err));
	if (rc != -EINVAL)
		print_error("\"%s\" was accepted (rc %d)\n", v, rc);
	assert_int_equal(rc, -EINVAL);
	assert_true(strncmp(err, "KB_ACCEL: ", 10) == 0);
	if (!strstr(err, why))
		print_error("\"%s\": message \"%s\" lacks \"%s\"\n", v, err, why);
	assert_non_null(strstr(err, why));
}

/* Make c the configuration the match functions see. */
static void use(const struct kbp_config *c)
{
	kbp_cfg.any_listen = c->any_listen;
	kbp_cfg.nlisten = c->nlisten;
	memcpy(kbp_cfg.listen, c->listen, sizeof(c->listen));
	kbp_cfg.nconnect = c->nconnect;
	memcpy(kbp_cfg.connect, c->connect, sizeof(c->connect));
}

static int reset_cfg(void **state)
{
	struct kbp_config empty;

	memset(&empty, 0, sizeof(empty));
	use(&empty);
	return 0;
}

/* ---- good inputs ------------------------------------------------------- */

static void test_listen_one(void **state)
{
	struct kbp_config c;

	memset(&c, 0, sizeof(c));
	parse_ok(&c, "listen:80");
	assert_false(c.any_listen);
	assert_int_equal(c.nlisten, 1);
	assert_int_equal(c.listen[0], 80);
	assert_int_equal(c.nconnect, 0);

	use(&c);
	assert_true(kbp_listen_match(80));
	assert_false(kbp_listen_match(81));
	assert_false(kbp_listen_match(htons(80)));
	assert_false(kbp_listen_match(0));
	assert_false(kbp_connect_match(ip4("127.0.0.1"), 80));
}

static void test_listen_and_connect(void **state)
{
	struct kbp_config c;

	memset(&c, 0, sizeof(c));
	parse_ok(&c, "listen:80,8080;connect:198.18.0.0/24");
	assert_false(c.any_listen);
	assert_int_equal(c.nlisten, 2);
	assert_int_equal(c.listen[0], 80);
	assert_int_equal(c.listen[1], 8080);
	assert_int_equal(c.nconnect, 1);
	assert_int_equal(c.connect[0].net, ip4("198.18.0.0"));
	assert_int_equal(c.connect[0].mask, ip4("255.255.255.0"));
	assert_int_equal(c.connect[0].port, 0);

	use(&c);
	assert_true(kbp_listen_match(80));
	assert_true(kbp_listen_match(8080));
	assert_false(kbp_listen_match(8081));
	assert_false(kbp_listen_match(443));
	assert_true(kbp_connect_match(ip4("198.18.0.0"), 1));
	assert_true(kbp_connect_match(ip4("198.18.0.1"), 80));
	assert_true(kbp_connect_match(ip4("198.18.0.255"), 65535));
	assert_false(kbp_connect_match(ip4("198.18.1.1"), 80));
	assert_false(kbp_connect_match(ip4("198.19.0.1"), 80));
	assert_false(kbp_connect_match(ip4("10.0.0.1"), 80));
	/* a host-order address must not match by accident */
	assert_false(kbp_connect_match(ntohl(ip4("198.18.0.1")), 80));
}

static void test_connect_host_port(void **state)
{
	struct kbp_config c;

	memset(&c, 0, sizeof(c));
	parse_ok(&c, "connect:10.0.0.1:5432");
	assert_false(c.any_listen);
	assert_int_equal(c.nlisten, 0);
	assert_int_equal(c.nconnect, 1);
	assert_int_equal(c.connect[0].net, ip4("10.0.0.1"));
	assert_int_equal(c.connect[0].mask, 0xffffffffu);
	assert_int_equal(c.connect[0].port, 5432);

	use(&c);
	assert_true(kbp_connect_match(ip4("10.0.0.1"), 5432));
	assert_false(kbp_connect_match(ip4("10.0.0.1"), 5433));
	assert_false(kbp_connect_match(ip4("10.0.0.1"), htons(5432)));
	assert_false(kbp_connect_match(ip4("10.0.0.2"), 5432));
	assert_false(kbp_connect_match(ip4("10.0.0.0"), 5432));
	assert_false(kbp_listen_match(5432));
}

static void test_connect_prefix_and_port(void **state)
{
	struct kbp_config c;

	memset(&c, 0, sizeof(c));
	parse_ok(&c, "connect:10.1.0.0/16:443,192.168.7.9/8");
	assert_int_equal(c.nconnect, 2);
	assert_int_equal(c.connect[0].net, ip4("10.1.0.0"));
	assert_int_equal(c.connect[0].mask, ip4("255.255.0.0"));
	assert_int_equal(c.connect[0].port, 443);
	/* host bits beyond the prefix are dropped from net */
	assert_int_equal(c.connect[1].net, ip4("192.0.0.0"));
	assert_int_equal(c.connect[1].mask, ip4("255.0.0.0"));
	assert_int_equal(c.connect[1].port, 0);

	use(&c);
	assert_true(kbp_connect_match(ip4("10.1.200.3"), 443));
	assert_false(kbp_connect_match(ip4("10.1.200.3"), 80));
	assert_false(kbp_connect_match(ip4("10.2.0.1"), 443));
	assert_true(kbp_connect_match(ip4("192.1.2.3"), 1));
	assert_false(kbp_connect_match(ip4("193.168.7.9"), 1));
}

static void test_listen_any(void **state)
{
	struct kbp_config c;

	memset(&c, 0, sizeof(c));
	parse_ok(&c, "listen:*");
	assert_true(c.any_listen);
	assert_int_equal(c.nlisten, 0);
	assert_int_equal(c.nconnect, 0);

	use(&c);
	assert_true(kbp_listen_match(1));
	assert_true(kbp_listen_match(80));
	assert_true(kbp_listen_match(65535));
	assert_false(kbp_connect_match(ip4("1.2.3.4"), 80));
}

static void test_connect_anywhere(void **state)
{
	struct kbp_config c;

	memset(&c, 0, sizeof(c));
	parse_ok(&c, "connect:0.0.0.0/0");
	assert_int_equal(c.nconnect, 1);
	assert_int_equal(c.connect[0].net, 0);
	assert_int_equal(c.connect[0].mask, 0);
	assert_int_equal(c.connect[0].port, 0);
	assert_false(c.any_listen);
	assert_int_equal(c.nlisten, 0);

	use(&c);
	assert_true(kbp_connect_match(ip4("1.2.3.4"), 80));
	assert_true(kbp_connect_match(ip4("255.255.255.255"), 65535));
	assert_true(kbp_connect_match(0, 1));
	assert_false(kbp_listen_match(80));
}

static void test_empty_items_tolerated(void **state)
{
	struct kbp_config c;

	memset(&c, 0, sizeof(c));
	parse_ok(&c, "listen:80;");
	assert_int_equal(c.nlisten, 1);
	assert_int_equal(c.listen[0], 80);

	parse_ok(&c, ";;listen:81;;connect:10.0.0.0/8;");
	assert_int_equal(c.nlisten, 1);
	assert_int_equal(c.listen[0], 81);
	assert_int_equal(c.nconnect, 1);
	assert_int_equal(c.connect[0].net, ip4("10.0.0.0"));
	assert_int_equal(c.connect[0].mask, ip4("255.0.0.0"));

	parse_ok(&c, "");
	assert_int_equal(c.nlisten, 0);
	assert_int_equal(c.nconnect, 0);
	assert_false(c.any_listen);

	parse_ok(&c, ";");
	assert_int_equal(c.nlisten, 0);
	assert_int_equal(c.nconnect, 0);

	use(&c);
	assert_false(kbp_listen_match(80));
	assert_false(kbp_connect_match(ip4("10.0.0.1"), 80));
}

static void test_repeated_rules_accumulate(void **state)
{
	struct kbp_config c;

	memset(&c, 0, sizeof(c));
	parse_ok(&c, "listen:1;listen:2,3;connect:1.1.1.1;connect:2.2.2.0/24:22");
	assert_int_equal(c.nlisten, 3);
	assert_int_equal(c.listen[0], 1);
	assert_int_equal(c.listen[1], 2);
	assert_int_equal(c.listen[2], 3);
	assert_int_equal(c.nconnect, 2);
	assert_int_equal(c.connect[0].net, ip4("1.1.1.1"));
	assert_int_equal(c.connect[1].net, ip4("2.2.2.0"));
	assert_int_equal(c.connect[1].port, 22);
}

/* A second parse replaces the first; it does not add to it. */
static void test_reparse_resets(void **state)
{
	struct kbp_config c;

	memset(&c, 0, sizeof(c));
	parse_ok(&c, "listen:*,1,2;connect:1.1.1.1,2.2.2.2");
	assert_true(c.any_listen);
	assert_int_equal(c.nlisten, 2);
	assert_int_equal(c.nconnect, 2);
	parse_ok(&c, "listen:65535");
	assert_false(c.any_listen);
	assert_int_equal(c.nlisten, 1);
	assert_int_equal(c.listen[0], 65535);
	assert_int_equal(c.nconnect, 0);
}

static void test_max_rules_fit(void **state)
{
	struct kbp_config c;
	char v[1024];
	size_t n = 0;
	unsigned i;

	n += (size_t)snprintf(v + n, sizeof(v) - n, "listen:");
	for (i = 0; i < KBP_MAX_RULES; i++)
		n += (size_t)snprintf(v + n, sizeof(v) - n, "%s%u", i ? "," : "", 1000 + i);
	n += (size_t)snprintf(v + n, sizeof(v) - n, ";connect:");
	for (i = 0; i < KBP_MAX_RULES; i++)
		n += (size_t)snprintf(v + n, sizeof(v) - n, "%s10.0.%u.0/24", i ? "," : "", i);
	assert_true(n < sizeof(v));

	memset(&c, 0, sizeof(c));
	parse_ok(&c, v);
	assert_int_equal(c.nlisten, KBP_MAX_RULES);
	assert_int_equal(c.nconnect, KBP_MAX_RULES);
	assert_int_equal(c.listen[KBP_MAX_RULES - 1], 1000 + KBP_MAX_RULES - 1);
	assert_int_equal(c.connect[KBP_MAX_RULES - 1].net,
			 htonl(0x0a000000u | (KBP_MAX_RULES - 1) << 8));

	use(&c);
	assert_true(kbp_listen_match(1000));
	assert_true(kbp_listen_match(1000 + KBP_MAX_RULES - 1));
	assert_false(kbp_listen_match(1000 + KBP_MAX_RULES));
	assert_true(kbp_connect_match(ip4("10.0.31.7"), 9));
	assert_false(kbp_connect_match(ip4("10.0.32.7"), 9));
}

/* ---- bad inputs -------------------------------------------------------- */

static void test_bad_listen(void **state)
{
	parse_bad("listen:", "empty rule");
	parse_bad("listen:80;listen:", "empty rule");
	parse_bad("listen:0", "bad listen port");
	parse_bad("listen:65536", "bad listen port");
	parse_bad("listen:123456", "bad listen port");
	parse_bad("listen:8o", "bad listen port");
	parse_bad("listen:-1", "bad listen port");
	parse_bad("listen: 80", "bad listen port");
	parse_bad("listen:80,x", "bad listen port");
	parse_bad("listen:**", "bad listen port");
}

static void test_bad_connect(void **state)
{
	parse_bad("connect:", "empty rule");
	parse_bad("connect:198.18.0.0/33", "bad connect destination");
	parse_bad("connect:198.18.0.0/", "bad connect destination");
	parse_bad("connect:198.18.0.0/24/8", "bad connect destination");
	parse_bad("connect:300.1.1.1", "bad connect destination");
	parse_bad("connect:1.2.3", "bad connect destination");
	parse_bad("connect:example.com", "bad connect destination");
	parse_bad("connect:1.2.3.4:0", "bad connect destination");
	parse_bad("connect:1.2.3.4:", "bad connect destination");
	parse_bad("connect:1.2.3.4:65536", "bad connect destination");
	parse_bad("connect:1.2.3.4:80:81", "bad connect destination");
	parse_bad("connect:::1", "bad connect destination");
	parse_bad("connect:1.2.3.4,300.0.0.0", "bad connect destination");
}

static void test_bad_rule_name(void **state)
{
	parse_bad("bogus:1", "unknown rule");
	parse_bad("listen:80;bogus:1", "unknown rule");
	parse_bad("LISTEN:80", "unknown rule");
	parse_bad("listen80", "unknown rule");
	parse_bad("80", "unknown rule");
}

static void test_too_many_rules(void **state)
{
	char v[1024];
	size_t n = 0;
	unsigned i;

	n += (size_t)snprintf(v + n, sizeof(v) - n, "listen:");
	for (i = 0; i <= KBP_MAX_RULES; i++)
		n += (size_t)snprintf(v + n, sizeof(v) - n, "%s%u", i ? "," : "", 1000 + i);
	assert_true(n < sizeof(v));
	parse_bad(v, "bad listen port");

	/* the same limit when the ports are spread over several rules */
	n = 0;
	for (i = 0; i <= KBP_MAX_RULES; i++)
		n += (size_t)snprintf(v + n, sizeof(v) - n, "listen:%u;", 2000 + i);
	assert_true(n < sizeof(v));
	parse_bad(v, "bad listen port");

	n = 0;
	n += (size_t)snprintf(v + n, sizeof(v) - n, "connect:");
	for (i = 0; i <= KBP_MAX_RULES; i++)
		n += (size_t)snprintf(v + n, sizeof(v) - n, "%s10.0.%u.1", i ? "," : "", i);
	assert_true(n < sizeof(v));
	parse_bad(v, "bad connect destination");
}

/* The message is cut to the buffer, NUL-terminated. */
static void test_error_truncated(void **state)
{
	struct kbp_config c;
	char err[16];

	memset(&c, 0, sizeof(c));
	memset(err, 'x', sizeof(err));
	assert_int_equal(kbp_accel_parse(&c, "bogus:1", err, 10), -EINVAL);
	assert_string_equal(err, "KB_ACCEL:");
	assert_int_equal(err[10], 'x');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_listen_one, reset_cfg),
		cmocka_unit_test_setup(test_listen_and_connect, reset_cfg),
		cmocka_unit_test_setup(test_connect_host_port, reset_cfg),
		cmocka_unit_test_setup(test_connect_prefix_and_port, reset_cfg),
		cmocka_unit_test_setup(test_listen_any, reset_cfg),
		cmocka_unit_test_setup(test_connect_anywhere, reset_cfg),
		cmocka_unit_test_setup(test_empty_items_tolerated, reset_cfg),
		cmocka_unit_test_setup(test_repeated_rules_accumulate, reset_cfg),
		cmocka_unit_test_setup(test_reparse_resets, reset_cfg),
		cmocka_unit_test_setup(test_max_rules_fit, reset_cfg),
		cmocka_unit_test(test_bad_listen),
		cmocka_unit_test(test_bad_connect),
		cmocka_unit_test(test_bad_rule_name),
		cmocka_unit_test(test_too_many_rules),
		cmocka_unit_test(test_error_truncated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
