/*
 * test_accel.c — unit tests for libkbpreload.so's settings: KB_ACCEL's
 * parser (kbp_accel_parse) and the rule matching done with it
 * (kbp_listen_match, kbp_connect_match, which read the global kbp_cfg), and
 * every KB_* variable the library reads (kbp_config_read), from one table.
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
#include <stdlib.h>
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

/* Rules are separated by ';' and elements by ',': nothing empty between. */
static void test_empty_items_refused(void **state)
{
	static const char *const bad[] = {
		";", ";;", "listen:80;", "listen:80;;", ";listen:80", "listen:80;;connect:10.0.0.0/8",
		"",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_bad(bad[i], "empty rule");
	parse_bad("listen:80,", "bad listen port");
	parse_bad("listen:,80", "bad listen port");
	parse_bad("listen:80,,81", "bad listen port");
	parse_bad("connect:10.0.0.1,", "bad connect destination");
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

/* ---- every setting of the library, from one table ---------------------- */

static const char *const lib_vars[] = {
	"KB_ACCEL", "KB_STACK", "KB_SPIN_US", "KB_LOG", "KB_STRICT",
};

#define NLIBVARS (sizeof(lib_vars) / sizeof(lib_vars[0]))

/* What kbp_config_read said: level-0 lines (errors), level-1 notices. */
static char said[8][512];
static int nsaid, nnotices;

static void capture(int level, const char *line)
{
	if (level > 0) {
		nnotices++;
		return;
	}
	if (nsaid < 8)
		snprintf(said[nsaid], sizeof(said[0]), "%s", line);
	nsaid++;
}

/* kbp_config_read into c, with rule entries past the counts (what a
 * failed parse left) cleared: they are not part of the settings. */
static int read_settings(struct kbp_config *c)
{
	int bad = kbp_config_read(c, capture);

	memset(&c->listen[c->nlisten], 0, (KBP_MAX_RULES - c->nlisten) * sizeof(c->listen[0]));
	memset(&c->connect[c->nconnect], 0,
	       (KBP_MAX_RULES - c->nconnect) * sizeof(c->connect[0]));
	return bad;
}

/* Read the settings from an environment of only name=v (NULL: none). */
static int read_only(struct kbp_config *c, const char *name, const char *v)
{
	size_t i;

	for (i = 0; i < NLIBVARS; i++)
		assert_int_equal(unsetenv(lib_vars[i]), 0);
	if (name)
		assert_int_equal(setenv(name, v, 1), 0);
	nsaid = nnotices = 0;
	return read_settings(c);
}

static void want_accel(struct kbp_config *c)
{
	c->nlisten = 1;
	c->listen[0] = 80;
	c->nconnect = 1;
	c->connect[0] = (struct kbp_rule){ .net = htonl(0x0a000000), .mask = htonl(0xff000000) };
}

static void want_stack(struct kbp_config *c)
{
	snprintf(c->stack, sizeof(c->stack), "/tmp/kb-test.sock");
}

static void want_spin(struct kbp_config *c)
{
	c->spin_us = 1000000;
}

static void want_log(struct kbp_config *c)
{
	c->log = 2;
}

static void want_strict(struct kbp_config *c)
{
	c->strict = true;
}

/*
 * For each setting: a good value and what it sets, bad values, and the
 * start of the one line a bad value gives ("NAME=value" but for KB_ACCEL,
 * whose parser says what is wrong) and what is used instead.
 */
static const struct lib_case {
	const char *name, *good;
	void (*want)(struct kbp_config *c);
	const char *bad[4];
	const char *instead;
} lib_cases[] = {
	{ "KB_ACCEL", "listen:80;connect:10.0.0.0/8", want_accel,
	  { ";", "listen:80;;", "listen:0", "bogus:1" }, "; nothing is accelerated" },
	{ "KB_STACK", "/tmp/kb-test.sock", want_stack,
	  { "relative", "/", "/dir/", "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
	  "; nothing is accelerated" },
	{ "KB_SPIN_US", "1000000", want_spin, { "abc", "1000001", "-1", " 5" }, "; using 0" },
	{ "KB_LOG", "2", want_log, { "abc", "3", "9", "-1" }, "; using 1" },
	{ "KB_STRICT", "1", want_strict, { "no", "yes", "2", "true" }, "; using 0" },
};

#define NLIBCASES (sizeof(lib_cases) / sizeof(lib_cases[0]))

/* The one line for a bad value: names it, says the form and what instead. */
static void check_bad_line(const struct lib_case *t, const char *v, bool strict)
{
	char head[160];
	const char *line = said[0];
	size_t n = strlen(line), k = strlen(t->instead);

	if (strcmp(t->name, "KB_ACCEL") == 0)
		snprintf(head, sizeof(head), "KB_ACCEL: ");
	else
		snprintf(head, sizeof(head), "%s=%.64s", t->name, v);
	if (nsaid != 1 || strncmp(line, head, strlen(head)) || !strstr(line, ": expected ") ||
	    (strict ? n >= k && strcmp(line + n - k, t->instead) == 0
		    : n < k || strcmp(line + n - k, t->instead) != 0)) {
		print_error("%s=\"%s\"%s: %d lines, first \"%s\"; wanted one starting \"%s\", "
			    "with \": expected \", %s \"%s\"\n", t->name, v,
			    strict ? " (KB_STRICT=1)" : "", nsaid, line, head,
			    strict ? "not ending" : "ending", t->instead);
		fail();
	}
}

static void test_every_setting(void **state)
{
	struct kbp_config dflt, want, got;
	size_t i, j;

	/* the defaults: nothing accelerated, and one notice saying so */
	memset(&dflt, 0, sizeof(dflt));
	assert_int_equal(read_only(&dflt, NULL, NULL), 0);
	assert_int_equal(nsaid, 0);
	assert_int_equal(nnotices, 1);
	assert_int_equal(dflt.log, 1);
	assert_int_equal(dflt.spin_us, 0);
	assert_false(dflt.strict);
	assert_string_equal(dflt.stack, "/run/kb/kbstackd.sock");
	assert_int_equal(dflt.nlisten + dflt.nconnect + dflt.any_listen, 0);

	assert_int_equal(NLIBCASES, NLIBVARS);
	for (i = 0; i < NLIBCASES; i++) {
		const struct lib_case *t = &lib_cases[i];

		assert_string_equal(t->name, lib_vars[i]);
		/* good: set, nothing said */
		want = dflt;
		t->want(&want);
		assert_int_equal(read_only(&got, t->name, t->good), 0);
		assert_int_equal(nsaid, 0);
		assert_memory_equal(&got, &want, sizeof(want));

		/* empty counts as unset */
		assert_int_equal(read_only(&got, t->name, ""), 0);
		assert_int_equal(nsaid, 0);
		assert_memory_equal(&got, &dflt, sizeof(dflt));

		for (j = 0; j < 4; j++) {
			/* bad: one line, the default kept */
			assert_int_equal(read_only(&got, t->name, t->bad[j]), 1);
			check_bad_line(t, t->bad[j], false);
			assert_memory_equal(&got, &dflt, sizeof(dflt));
			if (t->want == want_strict)
				continue;
			/* bad with KB_STRICT=1: the same line without "instead"
			 * (the library exits with status 2 then) */
			assert_int_equal(setenv("KB_STRICT", "1", 1), 0);
			nsaid = 0;
			assert_int_equal(read_settings(&got), 1);
			check_bad_line(t, t->bad[j], true);
			assert_true(got.strict);
		}
	}
}

/* A bad KB_STACK leaves no rule even when KB_ACCEL is good: the default
 * socket might be some other kbstackd's. */
static void test_bad_stack_accelerates_nothing(void **state)
{
	struct kbp_config c;

	assert_int_equal(read_only(&c, "KB_STACK", "relative"), 1);
	assert_int_equal(setenv("KB_ACCEL", "listen:80;connect:10.0.0.0/8", 1), 0);
	nsaid = 0;
	assert_int_equal(read_settings(&c), 1);
	assert_int_equal(nsaid, 1);
	assert_int_equal(c.nlisten + c.nconnect + c.any_listen, 0);
	assert_int_equal(unsetenv("KB_STACK"), 0);
	assert_int_equal(unsetenv("KB_ACCEL"), 0);
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
		cmocka_unit_test_setup(test_repeated_rules_accumulate, reset_cfg),
		cmocka_unit_test_setup(test_reparse_resets, reset_cfg),
		cmocka_unit_test_setup(test_max_rules_fit, reset_cfg),
		cmocka_unit_test(test_bad_listen),
		cmocka_unit_test(test_bad_connect),
		cmocka_unit_test(test_empty_items_refused),
		cmocka_unit_test(test_bad_rule_name),
		cmocka_unit_test(test_too_many_rules),
		cmocka_unit_test(test_error_truncated),
		cmocka_unit_test(test_every_setting),
		cmocka_unit_test(test_bad_stack_accelerates_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
