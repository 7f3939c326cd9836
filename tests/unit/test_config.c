/*
 * test_config.c — unit tests for kbs_config_parse(): KB_* environment
 * variables, --flags, defaults and the one-line error messages.
 *
 * Every test starts from an empty KB_* environment and builds its own argv.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kbs_config.h"

#define GOOD_DEV "net_af_xdp0,iface=veth0"
#define GOOD_IP  "198.18.0.1/24"

static const char *const kb_vars[] = {
	"KB_DEV", "KB_IP", "KB_GW", "KB_MAC", "KB_CORE",
	"KB_MBUFS", "KB_POLL", "KB_EAL", "KB_STACK", "KB_GROUP", "KB_UID_CONTEXTS",
	"KB_SLOTS", "KB_RING", "KB_NICE", "KB_TCP_CC", "KB_TCP_PCBS",
};

#define NVARS (sizeof(kb_vars) / sizeof(kb_vars[0]))

static void clear_env(void)
{
	size_t i;

	for (i = 0; i < NVARS; i++)
		assert_int_equal(unsetenv(kb_vars[i]), 0);
}

static void set_env(const char *name, const char *value)
{
	assert_int_equal(setenv(name, value, 1), 0);
}

/* Empty environment, then the two required settings. */
static void set_minimal(void)
{
	clear_env();
	set_env("KB_DEV", GOOD_DEV);
	set_env("KB_IP", GOOD_IP);
}

/* Parse with help/version text thrown away. */
static int parse(struct kbs_config *c, int argc, char **argv, char *err, size_t errlen)
{
	FILE *out = fopen("/dev/null", "w");
	int rc;

	assert_non_null(out);
	rc = kbs_config_parse(c, argc, argv, err, errlen, out);
	fclose(out);
	return rc;
}

/* Parse with no flags at all: only the environment counts. */
static int parse_env(struct kbs_config *c, char *err, size_t errlen)
{
	char *argv[] = { "kbstackd", NULL };

	return parse(c, 1, argv, err, errlen);
}

/*
 * An error: rc is -EINVAL, err starts with `prefix` (the setting as the user
 * wrote it) and mentions "expected". `what` names the case in failures.
 */
static void check_error(int rc, const char *err, const char *prefix, const char *what)
{
	if (rc != -EINVAL || strncmp(err, prefix, strlen(prefix)) != 0 ||
	    strstr(err, "expected") == NULL) {
		print_error("case %s: rc=%d err=\"%s\"; wanted -EINVAL and err starting "
			    "\"%s\" containing \"expected\"\n", what, rc, err, prefix);
		fail();
	}
}

/*
 * The start of an error for `head`=`value` ("KB_IP=x:" or "--ip=x:"). Errors
 * show at most the first 64 bytes of a long value, so for one of those only
 * "head=<first 64 bytes>" is required.
 */
static void error_prefix(char *buf, size_t len, const char *head, const char *value)
{
	if (strlen(value) <= 64)
		snprintf(buf, len, "%s=%.64s:", head, value);
	else
		snprintf(buf, len, "%s=%.64s", head, value);
}

/* KB_<name>=<value> in an otherwise minimal environment must be rejected. */
static void expect_env_rejected(const char *name, const char *value)
{
	struct kbs_config c;
	char err[256], prefix[1024];
	int rc;

	set_minimal();
	set_env(name, value);
	rc = parse_env(&c, err, sizeof(err));
	error_prefix(prefix, sizeof(prefix), name, value);
	check_error(rc, err, prefix, prefix);
}

/* --<flag>=<value> over a minimal environment must be rejected, naming the flag. */
static void expect_flag_rejected(const char *flag, const char *value)
{
	struct kbs_config c;
	char err[256], prefix[1024], arg[700];
	char *argv[] = { "kbstackd", arg, NULL };
	int rc;

	set_minimal();
	snprintf(arg, sizeof(arg), "--%s=%s", flag, value);
	rc = parse(&c, 2, argv, err, sizeof(err));
	snprintf(arg, sizeof(arg), "--%s", flag);
	error_prefix(prefix, sizeof(prefix), arg, value);
	check_error(rc, err, prefix, prefix);
}

/* KB_<name>=<value> in an otherwise minimal environment must be accepted. */
static void expect_env_ok(struct kbs_config *c, const char *name, const char *value)
{
	char err[256];
	int rc;

	set_minimal();
	set_env(name, value);
	rc = parse_env(c, err, sizeof(err));
	if (rc != 0) {
		print_error("case %s=%s: rc=%d err=\"%s\"; wanted 0\n", name, value, rc, err);
		fail();
	}
}

/* A string of n bytes: '/' then 'a'... (an absolute path when n > 0). */
static void make_path(char *buf, size_t n)
{
	memset(buf, 'a', n);
	if (n)
		buf[0] = '/';
	buf[n] = '\0';
}

/* ---- minimal configuration and defaults ---- */

static void test_minimal_valid_defaults(void **state)
{
	struct kbs_config c;
	char err[256] = "untouched";
	cpu_set_t set;

	(void)state;
	set_minimal();
	assert_int_equal(parse_env(&c, err, sizeof(err)), 0);
	assert_string_equal(err, "");

	assert_string_equal(c.dev, GOOD_DEV);
	assert_false(c.dev_is_pci);
	assert_int_equal(c.ip, inet_addr("198.18.0.1"));
	assert_int_equal(c.netmask, htonl(0xffffff00u));
	assert_int_equal(c.netmask, inet_addr("255.255.255.0"));
	assert_int_equal(c.prefix, 24);
	assert_int_equal(c.gw, 0);
	assert_false(c.has_mac);
	assert_true(c.core >= 0);
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		assert_true(CPU_ISSET(c.core, &set));
	assert_int_equal(c.mbufs, 16383);
	assert_int_equal(c.mbufs, KBS_MBUFS_DEFAULT);
	assert_int_equal(c.poll, KBS_POLL_ADAPTIVE);
	assert_int_equal(c.slots, 65536);
	assert_int_equal(c.ring, 1048576);
	assert_int_equal(c.tcp_pcbs, 0); /* the build's */
	assert_string_equal(c.eal, "");
	assert_string_equal(c.stack, "/run/kb/kbstackd.sock");
}

/* ---- KB_DEV ---- */

static void test_dev_pci_full(void **state)
{
	struct kbs_config c;

	(void)state;
	expect_env_ok(&c, "KB_DEV", "0000:03:10.1");
	assert_true(c.dev_is_pci);
	assert_string_equal(c.dev, "0000:03:10.1");
}

static void test_dev_pci_short_normalised(void **state)
{
	struct kbs_config c;

	(void)state;
	expect_env_ok(&c, "KB_DEV", "03:10.1");
	assert_true(c.dev_is_pci);
	assert_string_equal(c.dev, "0000:03:10.1");
}

static void test_dev_vdev_af_packet(void **state)
{
	struct kbs_config c;

	(void)state;
	expect_env_ok(&c, "KB_DEV", "net_af_packet0,iface=x");
	assert_false(c.dev_is_pci);
	assert_string_equal(c.dev, "net_af_packet0,iface=x");
}

static void test_dev_bad(void **state)
{
	static const char *const bad[] = {
		"eth0", "net_", "net_af xdp", "net_x,",
		"0000:03:40.1", /* device 0x40 > 31: not PCI, and not net_ */
		"zz:zz.z",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_env_rejected("KB_DEV", bad[i]);
		expect_flag_rejected("dev", bad[i]);
	}
	expect_flag_rejected("dev", ""); /* an empty KB_DEV counts as unset */
}

/*
 * sscanf's %x skips leading white space and takes a sign, so these must not
 * pass for PCI addresses either.
 */
static void test_dev_pci_rejects_sign_or_space(void **state)
{
	static const char *const bad[] = {
		"+000:03:10.1", " 0000:3:10.1", "+3:10.1", "0000:03:+1.1",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_env_rejected("KB_DEV", bad[i]);
}

/* ---- KB_IP ---- */

static void test_ip_bad(void **state)
{
	static const char *const bad[] = {
		"198.18.0.1",       /* no prefix */
		"198.18.0.1/0",
		"198.18.0.1/33",
		"198.18.0/24",
		"0.0.0.0/8",
		"224.0.0.1/4",      /* multicast */
		"127.0.0.1/8",      /* loopback */
		"198.18.0.0/24",    /* the network address */
		"198.18.0.255/24",  /* the broadcast address */
		"198.18.0.1/24x",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_env_rejected("KB_IP", bad[i]);
}

static void test_ip_prefix32(void **state)
{
	struct kbs_config c;

	(void)state;
	expect_env_ok(&c, "KB_IP", "10.1.2.3/32");
	assert_int_equal(c.ip, inet_addr("10.1.2.3"));
	assert_int_equal(c.prefix, 32);
	assert_int_equal(c.netmask, htonl(0xffffffffu));
	assert_int_equal(c.netmask, inet_addr("255.255.255.255"));
}

static void test_ip_prefix31(void **state)
{
	struct kbs_config c;

	(void)state;
	expect_env_ok(&c, "KB_IP", "198.18.0.1/31");
	assert_int_equal(c.ip, inet_addr("198.18.0.1"));
	assert_int_equal(c.prefix, 31);
	assert_int_equal(c.netmask, htonl(0xfffffffeu));
}

static void test_ip_addr_str(void **state)
{
	struct kbs_config c;
	char buf[48];

	(void)state;
	expect_env_ok(&c, "KB_IP", "10.20.30.40/16");
	kbs_config_addr_str(&c, buf, sizeof(buf));
	assert_string_equal(buf, "10.20.30.40/16");
	assert_int_equal(c.netmask, htonl(0xffff0000u));
}

/* ---- KB_GW ---- */

static void test_gw_inside_subnet(void **state)
{
	struct kbs_config c;

	(void)state;
	expect_env_ok(&c, "KB_GW", "198.18.0.254");
	assert_int_equal(c.gw, inet_addr("198.18.0.254"));
	assert_int_equal(c.ip, inet_addr("198.18.0.1"));
}

static void test_gw_outside_subnet(void **state)
{
	struct kbs_config c;
	char err[256];

	(void)state;
	set_minimal();
	set_env("KB_GW", "198.18.1.1");
	check_error(parse_env(&c, err, sizeof(err)), err, "KB_GW=", "KB_GW=198.18.1.1");
	assert_non_null(strstr(err, "198.18.0.1/24"));
}

static void test_gw_bad_values(void **state)
{
	(void)state;
	expect_env_rejected("KB_GW", "0.0.0.0");
	expect_env_rejected("KB_GW", "x");
	expect_env_rejected("KB_GW", "198.18.0.300");
	expect_flag_rejected("gw", "x");
	expect_flag_rejected("gw", "");
}

static void test_gw_equal_to_stack_address(void **state)
{
	struct kbs_config c;
	char err[256];

	(void)state;
	set_minimal();
	set_env("KB_GW", "198.18.0.1");
	check_error(parse_env(&c, err, sizeof(err)), err, "KB_GW=198.18.0.1",
		    "KB_GW=198.18.0.1 (the stack's own address)");
}

/* The subnet check names the setting as written: here the flag. */
static void test_gw_flag_outside_subnet_names_flag(void **state)
{
	struct kbs_config c;
	char err[256];
	char *argv[] = { "kbstackd", "--gw=198.18.1.1", NULL };

	(void)state;
	set_minimal();
	check_error(parse(&c, 2, argv, err, sizeof(err)), err, "--gw=198.18.1.1",
		    "--gw=198.18.1.1 (outside the subnet)");
	assert_non_null(strstr(err, "198.18.0.1/24"));
}

/* ---- KB_MAC ---- */

static void test_mac_good(void **state)
{
	static const uint8_t want[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
	struct kbs_config c;

	(void)state;
	expect_env_ok(&c, "KB_MAC", "02:00:00:00:00:01");
	assert_true(c.has_mac);
	assert_memory_equal(c.mac, want, sizeof(want));

	expect_env_ok(&c, "KB_MAC", "0a:1B:2c:3D:4e:5F");
	assert_true(c.has_mac);
	assert_int_equal(c.mac[0], 0x0a);
	assert_int_equal(c.mac[1], 0x1b);
	assert_int_equal(c.mac[5], 0x5f);
}

static void test_mac_bad(void **state)
{
	static const char *const bad[] = {
		"01:00:5e:00:00:01",    /* multicast */
		"ff:ff:ff:ff:ff:ff",    /* broadcast */
		"00:00:00:00:00:00",
		"02:00:00:00:00",
		"02-00-00-00-00-01",
		"02:00:00:00:00:01:02",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_env_rejected("KB_MAC", bad[i]);
	expect_flag_rejected("mac", "01:00:5e:00:00:01");
	expect_flag_rejected("mac", "");
}

/* sscanf's %2x reads "-1" as 0xffffffff and skips spaces: not MAC syntax. */
static void test_mac_rejects_sign_or_space(void **state)
{
	static const char *const bad[] = {
		"02:00:00:00:-1:01", "02:00:00:00:+1:01", "02: 0:00:00:00:01",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_env_rejected("KB_MAC", bad[i]);
}

/* ---- KB_CORE ---- */

static void test_core_zero(void **state)
{
	struct kbs_config c;
	cpu_set_t set;

	(void)state;
	/* CPU 0 is normally allowed; if not, "0" must be refused instead. */
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && !CPU_ISSET(0, &set)) {
		expect_env_rejected("KB_CORE", "0");
		return;
	}
	expect_env_ok(&c, "KB_CORE", "0");
	assert_int_equal(c.core, 0);
}

static void test_core_bad(void **state)
{
	(void)state;
	expect_env_rejected("KB_CORE", "-1");
	expect_env_rejected("KB_CORE", "x");
	expect_env_rejected("KB_CORE", "99999");
	expect_env_rejected("KB_CORE", "1x");
	expect_flag_rejected("core", "-1");
	expect_flag_rejected("core", "");
}

static void test_core_outside_affinity(void **state)
{
	cpu_set_t set;
	char buf[16];
	int cpu;

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	for (cpu = CPU_SETSIZE - 1; cpu >= 0; cpu--)
		if (!CPU_ISSET(cpu, &set))
			break;
	if (cpu < 0)
		skip(); /* every CPU number is allowed: nothing to refuse */
	snprintf(buf, sizeof(buf), "%d", cpu);
	expect_env_rejected("KB_CORE", buf);
}

/* ---- KB_MBUFS ---- */

static void test_mbufs_good(void **state)
{
	struct kbs_config c;

	(void)state;
	expect_env_ok(&c, "KB_MBUFS", "4095");
	assert_int_equal(c.mbufs, 4095);
	expect_env_ok(&c, "KB_MBUFS", "4194303");
	assert_int_equal(c.mbufs, 4194303);
}

static void test_mbufs_bad(void **state)
{
	static const char *const bad[] = { "4094", "4194304", "1e4", "-5", "+4096", " 4096" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_env_rejected("KB_MBUFS", bad[i]);
		expect_flag_rejected("mbufs", bad[i]);
	}
	expect_flag_rejected("mbufs", ""); /* an empty KB_MBUFS counts as unset */
}

/* ---- KB_SLOTS ---- */

static void test_slots(void **state)
{
	static const char *const bad[] = { "0", "63", "65", "1000", "1048577", "1048640",
					   "4294967296" };
	struct kbs_config c;
	size_t i;

	(void)state;
	set_minimal();
	expect_env_ok(&c, "KB_SLOTS", "131072");
	assert_int_equal(c.slots, 131072);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_env_rejected("KB_SLOTS", bad[i]);
		expect_flag_rejected("slots", bad[i]);
	}
}

/* ---- KB_RING ---- */

static void test_ring(void **state)
{
	static const struct { const char *v; uint32_t want; } good[] = {
		{ "65536", 65536 }, { "64k", 65536 }, { "256K", 262144 }, { "1m", 1048576 },
		{ "8M", 8388608 }, { "4096k", 4194304 },
	};
	static const char *const bad[] = { "0", "4096", "32k", "63k", "96k", "100000", "16m",
					   "1g", "k", "m", "-64k", "64kk", "0x10000", "64 k",
					   "8388609", "99999999999999999999k" };
	struct kbs_config c;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		expect_env_ok(&c, "KB_RING", good[i].v);
		assert_int_equal(c.ring, good[i].want);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		expect_env_rejected("KB_RING", bad[i]);
		expect_flag_rejected("ring", bad[i]);
	}
	/* Both fine alone, too much address space together: one line names both. */
	set_minimal();
	set_env("KB_SLOTS", "131072");
	set_env("KB_RING", "8m");
	assert_int_equal(parse_env(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "KB_SLOTS=131072 with KB_RING=8388608"));
	assert_non_null(strstr(err, "2048 GiB"));
	set_env("KB_RING", "4m"); /* 1 TiB: the most */
	set_env("KB_UID_CONTEXTS", "64");
	assert_int_equal(parse_env(&c, err, sizeof(err)), 0);
	assert_int_equal(c.ring, 4194304);
	/* ... but one user's 65 such contexts would take more than half of
	 * kbstackd's address space */
	set_env("KB_UID_CONTEXTS", "65");
	assert_int_equal(parse_env(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "KB_UID_CONTEXTS=65 with KB_SLOTS=131072 and KB_RING=4194304"));
	/* 4096 contexts of 1 MiB rings need at most 8192 slots: with more and
	 * the ring written, refused; */
	set_minimal();
	set_env("KB_UID_CONTEXTS", "4096");
	set_env("KB_RING", "1m");
	assert_int_equal(parse_env(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "512 TiB"));
	set_env("KB_SLOTS", "8192");
	assert_int_equal(parse_env(&c, err, sizeof(err)), 0);
	assert_int_equal(c.ring, 1048576);
	/* unset, the largest ring the bounds leave room for */
	assert_int_equal(unsetenv("KB_RING"), 0);
	assert_int_equal(unsetenv("KB_SLOTS"), 0);
	assert_int_equal(parse_env(&c, err, sizeof(err)), 0);
	assert_int_equal(c.ring, 131072); /* 4096 x 65536 slots x 2 x 128 KiB: 64 TiB */
	assert_true(c.ring_fitted);
	set_env("KB_UID_CONTEXTS", "64");
	set_env("KB_SLOTS", "1048576");
	assert_int_equal(parse_env(&c, err, sizeof(err)), 0);
	assert_int_equal(c.ring, 524288); /* 1048576 x 2 x 512 KiB: 1 TiB */
	set_env("KB_SLOTS", "524288");
	assert_int_equal(parse_env(&c, err, sizeof(err)), 0);
	assert_int_equal(c.ring, 1048576);
	assert_false(c.ring_fitted);
	/* where not even the least ring fits, refused as if written */
	set_env("KB_UID_CONTEXTS", "4096");
	set_env("KB_SLOTS", "1048576");
	assert_int_equal(parse_env(&c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "KB_UID_CONTEXTS=4096 with KB_SLOTS=1048576 and KB_RING=65536"));
	assert_non_null(strstr(err, "KB_RING, unset, is already its least"));
	/* the flag's ring is checked as written too */
	set_env("KB_UID_CONTEXTS", "64");
	set_env("KB_SLOTS", "1048576");
	{
		char *argv[] = { "kbstackd", "--ring=1m", NULL };

		assert_int_equal(parse(&c, 2, argv, err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "KB_SLOTS=1048576 with KB_RING=1048576"));
	}
}

/* ---- KB_POLL ---- */

static void test_poll_good(void **state)
{
	struct kbs_config c;

	(void)state;
	expect_env_ok(&c, "KB_POLL", "busy");
	assert_int_equal(c.poll, KBS_POLL_BUSY);
	expect_env_ok(&c, "KB_POLL", "adaptive");
	assert_int_equal(c.poll, KBS_POLL_ADAPTIVE);
}

static void test_poll_bad(void **state)
{
	(void)state;
	expect_env_rejected("KB_POLL", "Busy");
	expect_env_rejected("KB_POLL", "spin");
	expect_flag_rejected("poll", "Busy");
	expect_flag_rejected("poll", ""); /* an empty KB_POLL counts as unset */
}

/* ---- KB_EAL ---- */

static void test_eal_511_ok(void **state)
{
	struct kbs_config c;
	char v[512];

	(void)state;
	memset(v, 'e', 511);
	v[511] = '\0';
	expect_env_ok(&c, "KB_EAL", v);
	assert_int_equal(strlen(c.eal), 511);
	assert_string_equal(c.eal, v);
}

static void test_eal_512_bad(void **state)
{
	char v[513];

	(void)state;
	memset(v, 'e', 512);
	v[512] = '\0';
	expect_env_rejected("KB_EAL", v);
	expect_flag_rejected("eal", v);
}

/* ---- KB_STACK ---- */

static void test_stack_good(void **state)
{
	struct kbs_config c;
	char p[100];

	(void)state;
	expect_env_ok(&c, "KB_STACK", "/tmp/x.sock");
	assert_string_equal(c.stack, "/tmp/x.sock");

	make_path(p, 99);
	expect_env_ok(&c, "KB_STACK", p);
	assert_int_equal(strlen(c.stack), 99);
	assert_string_equal(c.stack, p);
}

static void test_stack_bad(void **state)
{
	char p[101];

	(void)state;
	expect_env_rejected("KB_STACK", "relative");
	expect_env_rejected("KB_STACK", "/");
	expect_env_rejected("KB_STACK", "/dir/");
	make_path(p, 100);
	expect_env_rejected("KB_STACK", p);
	expect_flag_rejected("stack", "relative");
	expect_flag_rejected("stack", "");
}

/* ---- required settings ---- */

static void test_missing_dev(void **state)
{
	struct kbs_config c;
	char err[256];

	(void)state;
	clear_env();
	set_env("KB_IP", GOOD_IP);
	assert_int_equal(parse_env(&c, err, sizeof(err)), -EINVAL);
	assert_int_equal(strncmp(err, "KB_DEV is not set", 17), 0);
}

static void test_missing_ip(void **state)
{
	struct kbs_config c;
	char err[256];

	(void)state;
	clear_env();
	set_env("KB_DEV", GOOD_DEV);
	assert_int_equal(parse_env(&c, err, sizeof(err)), -EINVAL);
	assert_int_equal(strncmp(err, "KB_IP is not set", 16), 0);
}

/* An empty KB_* variable counts as unset: the default (or "not set") holds. */
static void test_empty_env_counts_as_unset(void **state)
{
	static const char *const optional[] = {
		"KB_GW", "KB_MAC", "KB_CORE", "KB_MBUFS", "KB_POLL", "KB_EAL", "KB_STACK",
	};
	struct kbs_config c, def;
	char err[256];
	size_t i;

	(void)state;
	set_minimal();
	assert_int_equal(parse_env(&def, err, sizeof(err)), 0);
	for (i = 0; i < sizeof(optional) / sizeof(optional[0]); i++)
		set_env(optional[i], "");
	assert_int_equal(parse_env(&c, err, sizeof(err)), 0);
	assert_int_equal(c.gw, 0);
	assert_false(c.has_mac);
	assert_int_equal(c.core, def.core);
	assert_int_equal(c.mbufs, KBS_MBUFS_DEFAULT);
	assert_int_equal(c.poll, KBS_POLL_ADAPTIVE);
	assert_string_equal(c.eal, "");
	assert_string_equal(c.stack, KBS_STACK_DEFAULT);

	set_env("KB_DEV", "");
	assert_int_equal(parse_env(&c, err, sizeof(err)), -EINVAL);
	assert_int_equal(strncmp(err, "KB_DEV is not set", 17), 0);
	set_env("KB_DEV", GOOD_DEV);
	set_env("KB_IP", "");
	assert_int_equal(parse_env(&c, err, sizeof(err)), -EINVAL);
	assert_int_equal(strncmp(err, "KB_IP is not set", 16), 0);
}

/* ---- flags ---- */

static void test_flags_equals_form(void **state)
{
	struct kbs_config c;
	char err[256];
	char *argv[] = { "kbstackd", "--dev=0000:03:10.1", "--ip=10.0.0.2/8",
			 "--gw=10.0.0.1", "--mac=02:00:00:00:00:02", "--core=0",
			 "--mbufs=4095", "--poll=busy", "--eal=--no-huge -m 64",
			 "--stack=/tmp/kb.sock", NULL };
	cpu_set_t set;
	bool core0 = true;

	(void)state;
	clear_env();
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && !CPU_ISSET(0, &set)) {
		core0 = false;
		argv[5] = "--poll=busy"; /* CPU 0 not ours: leave the core default */
	}
	assert_int_equal(parse(&c, 10, argv, err, sizeof(err)), 0);
	assert_string_equal(c.dev, "0000:03:10.1");
	assert_true(c.dev_is_pci);
	assert_int_equal(c.ip, inet_addr("10.0.0.2"));
	assert_int_equal(c.netmask, htonl(0xff000000u));
	assert_int_equal(c.prefix, 8);
	assert_int_equal(c.gw, inet_addr("10.0.0.1"));
	assert_true(c.has_mac);
	assert_int_equal(c.mac[5], 0x02);
	if (core0)
		assert_int_equal(c.core, 0);
	assert_int_equal(c.mbufs, 4095);
	assert_int_equal(c.poll, KBS_POLL_BUSY);
	assert_string_equal(c.eal, "--no-huge -m 64");
	assert_string_equal(c.stack, "/tmp/kb.sock");
}

static void test_flags_separate_argument(void **state)
{
	struct kbs_config c;
	char err[256];
	char *argv[] = { "kbstackd", "--dev", GOOD_DEV, "--ip", "198.18.0.9/24",
			 "--mbufs", "8191", NULL };

	(void)state;
	clear_env();
	assert_int_equal(parse(&c, 7, argv, err, sizeof(err)), 0);
	assert_string_equal(c.dev, GOOD_DEV);
	assert_int_equal(c.ip, inet_addr("198.18.0.9"));
	assert_int_equal(c.prefix, 24);
	assert_int_equal(c.mbufs, 8191);
}

static void test_flag_overrides_env(void **state)
{
	struct kbs_config c;
	char err[256];
	char *argv[] = { "kbstackd", "--ip=10.9.8.7/16", "--poll", "busy",
			 "--stack=/tmp/flag.sock", NULL };

	(void)state;
	set_minimal();
	set_env("KB_POLL", "adaptive");
	set_env("KB_STACK", "/tmp/env.sock");
	assert_int_equal(parse(&c, 5, argv, err, sizeof(err)), 0);
	assert_int_equal(c.ip, inet_addr("10.9.8.7"));
	assert_int_equal(c.prefix, 16);
	assert_int_equal(c.poll, KBS_POLL_BUSY);
	assert_string_equal(c.stack, "/tmp/flag.sock");
	assert_string_equal(c.dev, GOOD_DEV); /* from the environment */
}

static void test_bad_flag_names_flag(void **state)
{
	struct kbs_config c;
	char err[256];
	char *argv[] = { "kbstackd", "--mbufs=5", NULL };
	char *argv2[] = { "kbstackd", "--ip", "nope", NULL };

	(void)state;
	set_minimal();
	check_error(parse(&c, 2, argv, err, sizeof(err)), err, "--mbufs=5: expected",
		    "--mbufs=5");
	check_error(parse(&c, 3, argv2, err, sizeof(err)), err, "--ip=nope:", "--ip nope");
}

static void test_unknown_option(void **state)
{
	struct kbs_config c;
	char err[256];
	char *argv[] = { "kbstackd", "--bogus", NULL };
	char *argv2[] = { "kbstackd", "--bogus=1", NULL };

	(void)state;
	set_minimal();
	assert_int_equal(parse(&c, 2, argv, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--bogus"));
	assert_int_equal(parse(&c, 2, argv2, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--bogus"));
}

static void test_flag_without_value(void **state)
{
	struct kbs_config c;
	char err[256];
	char *argv[] = { "kbstackd", "--ip", NULL };

	(void)state;
	set_minimal();
	assert_int_equal(parse(&c, 2, argv, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--ip"));
}

static void test_stray_positional(void **state)
{
	struct kbs_config c;
	char err[256];
	char *argv[] = { "kbstackd", "--poll=busy", "stray", NULL };

	(void)state;
	set_minimal();
	assert_int_equal(parse(&c, 3, argv, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "stray"));
}

/*
 * Each call stands alone: an earlier call that stopped inside a cluster of
 * short options ("-ab") must not leak getopt state into the next one.
 */
static void test_reparse_after_short_option_cluster(void **state)
{
	struct kbs_config c;
	char err[256];
	char *argv1[] = { "kbstackd", "-ab", NULL };
	char *argv2[] = { "kbstackd", NULL };

	(void)state;
	set_minimal();
	assert_int_equal(parse(&c, 2, argv1, err, sizeof(err)), -EINVAL);
	if (parse(&c, 1, argv2, err, sizeof(err)) != 0) {
		print_error("second parse failed: err=\"%s\"\n", err);
		fail();
	}
}

/* ---- --help and --version ---- */

static void test_help(void **state)
{
	struct kbs_config c;
	char err[256], text[8192];
	char *argv[] = { "kbstackd", "--help", NULL };
	FILE *out = tmpfile();
	size_t n, i;

	(void)state;
	clear_env(); /* --help works without KB_DEV/KB_IP, and with a bad variable */
	set_env("KB_MBUFS", "5");
	assert_non_null(out);
	assert_int_equal(kbs_config_parse(&c, 2, argv, err, sizeof(err), out),
			 KBS_CONFIG_HELP);
	rewind(out);
	n = fread(text, 1, sizeof(text) - 1, out);
	text[n] = '\0';
	fclose(out);
	assert_true(n > 0);
	for (i = 0; i < NVARS; i++)
		if (strstr(text, kb_vars[i]) == NULL) {
			print_error("--help does not mention %s\n", kb_vars[i]);
			fail();
		}
}

static void test_version(void **state)
{
	struct kbs_config c;
	char err[256], text[256];
	char *argv[] = { "kbstackd", "--version", NULL };
	FILE *out = tmpfile();
	size_t n;

	(void)state;
	clear_env();
	set_env("KB_MBUFS", "5"); /* a bad variable does not stop --version */
	assert_non_null(out);
	assert_int_equal(kbs_config_parse(&c, 2, argv, err, sizeof(err), out),
			 KBS_CONFIG_VERSION);
	rewind(out);
	n = fread(text, 1, sizeof(text) - 1, out);
	text[n] = '\0';
	fclose(out);
	assert_non_null(strstr(text, KB_VERSION));
}

/* ---- every setting, from one table ---- */

/*
 * Each setting with two valid values and a bad one. For every row: the
 * variable and the flag mean the same; a bad value is refused either way,
 * named as written; an empty variable counts as unset while an empty flag
 * is refused (but for --eal= : no extra arguments is a list too); a flag
 * wins over the variable, even over a bad one (which is then not read).
 */
struct setting_case {
	const char *env, *flag;
	const char *good, *good2, *bad;
	bool required;      /* empty variable: "is not set" */
	bool empty_flag_ok; /* --flag= is the default */
};

static char core_a[16], core_b[16], eal_long[513];

static const struct setting_case setting_cases[] = {
	{ "KB_DEV", "dev", "net_af_packet0,iface=x", "03:10.1", "eth0", true, false },
	{ "KB_IP", "ip", "10.0.0.2/8", "198.18.0.9/24", "198.18.0.1/33", true, false },
	{ "KB_GW", "gw", "198.18.0.254", "198.18.0.2", "198.18.0.300", false, false },
	{ "KB_MAC", "mac", "02:00:00:00:00:01", "0a:1b:2c:3d:4e:5f", "01:00:5e:00:00:01",
	  false, false },
	{ "KB_CORE", "core", core_a, core_b, "99999", false, false },
	{ "KB_MBUFS", "mbufs", "4095", "8191", "2046", false, false },
	{ "KB_POLL", "poll", "busy", "adaptive", "spin", false, false },
	{ "KB_EAL", "eal", "--no-huge", "-m 64 --no-pci", eal_long, false, true },
	{ "KB_STACK", "stack", "/tmp/a.sock", "/run/b.sock", "relative", false, false },
	{ "KB_GROUP", "group", "root", "65534", "no-such-group-kb", false, false },
	{ "KB_UID_CONTEXTS", "uid-contexts", "1", "2048", "4097", false, false },
	{ "KB_SLOTS", "slots", "64", "1048576", "100", false, false },
	{ "KB_RING", "ring", "64k", "8m", "96k", false, false },
	{ "KB_NICE", "nice", "-10", "19", "-21", false, false },
	{ "KB_TCP_CC", "tcp-cc", "bbr", "reno", "cubic", false, false },
	{ "KB_TCP_PCBS", "tcp-pcbs", "16", "16777216", "15", false, false },
};

#define NCASES (sizeof(setting_cases) / sizeof(setting_cases[0]))

/* Clear what follows the string in buf: a shorter value written over a
 * longer one leaves bytes there that are no part of the setting. */
static void clear_tail(char *buf, size_t size)
{
	size_t n = strnlen(buf, size);

	memset(buf + n, 0, size - n);
}

/*
 * Parse the environment with one --flag=value (flag NULL: none); must pass.
 * The strings are cleared past their end, so two configurations can be
 * compared whole.
 */
static void parse_ok_with(struct kbs_config *c, const char *flag, const char *value,
			  const char *what)
{
	char err[256], arg[700];
	char *argv[] = { "kbstackd", arg, NULL };
	int rc;

	snprintf(arg, sizeof(arg), "--%s=%s", flag ? flag : "", value ? value : "");
	rc = parse(c, flag ? 2 : 1, argv, err, sizeof(err));
	if (rc != 0) {
		print_error("case %s: rc=%d err=\"%s\"; wanted 0\n", what, rc, err);
		fail();
	}
	clear_tail(c->dev, sizeof(c->dev));
	clear_tail(c->eal, sizeof(c->eal));
	clear_tail(c->stack, sizeof(c->stack));
}

static void check_setting(const struct setting_case *t)
{
	struct kbs_config want, got;
	char err[256], unset[64];

	/* the variable means what the flag means */
	set_minimal();
	parse_ok_with(&want, t->flag, t->good, t->flag);
	set_env(t->env, t->good);
	parse_ok_with(&got, NULL, NULL, t->env);
	assert_memory_equal(&got, &want, sizeof(want));

	/* a bad value, refused as written */
	expect_env_rejected(t->env, t->bad);
	expect_flag_rejected(t->flag, t->bad);

	/* empty: the variable counts as unset, the flag is refused */
	if (!t->empty_flag_ok)
		expect_flag_rejected(t->flag, "");
	set_minimal();
	if (t->required) {
		set_env(t->env, "");
		assert_int_equal(parse_env(&got, err, sizeof(err)), -EINVAL);
		snprintf(unset, sizeof(unset), "%s is not set", t->env);
		assert_int_equal(strncmp(err, unset, strlen(unset)), 0);
	} else {
		parse_ok_with(&want, NULL, NULL, "defaults");
		set_env(t->env, "");
		parse_ok_with(&got, NULL, NULL, t->env);
		assert_memory_equal(&got, &want, sizeof(want));
		if (t->empty_flag_ok) {
			parse_ok_with(&got, t->flag, "", t->flag);
			assert_memory_equal(&got, &want, sizeof(want));
		}
	}

	/* a flag wins over the variable, a good one or a bad one */
	set_minimal();
	parse_ok_with(&want, t->flag, t->good2, t->flag);
	set_env(t->env, t->good);
	parse_ok_with(&got, t->flag, t->good2, "flag over a good variable");
	assert_memory_equal(&got, &want, sizeof(want));
	set_env(t->env, t->bad);
	parse_ok_with(&got, t->flag, t->good2, "flag over a bad variable");
	assert_memory_equal(&got, &want, sizeof(want));
}

static void test_every_setting(void **state)
{
	cpu_set_t set;
	size_t i, j;
	int cpu;

	(void)state;
	/* two CPUs this process may use (the same one twice if it has one) */
	assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
	core_a[0] = core_b[0] = '\0';
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set)) {
			if (!core_a[0])
				snprintf(core_a, sizeof(core_a), "%d", cpu);
			snprintf(core_b, sizeof(core_b), "%d", cpu);
		}
	memset(eal_long, 'e', sizeof(eal_long) - 1);
	eal_long[sizeof(eal_long) - 1] = '\0';

	/* the table names every setting */
	assert_int_equal(NCASES, NVARS);
	for (i = 0; i < NVARS; i++) {
		for (j = 0; j < NCASES && strcmp(setting_cases[j].env, kb_vars[i]); j++)
			;
		if (j == NCASES) {
			print_error("%s is not in setting_cases\n", kb_vars[i]);
			fail();
		}
	}
	for (i = 0; i < NCASES; i++)
		check_setting(&setting_cases[i]);
}

/* KB_TCP_CC=host follows the file the host's sysctl shows: bbr only for
 * "bbr"; reno for another name, an empty file or none. */
static void check_host_cc(const char *content, enum kbs_cc want)
{
	char path[] = "/tmp/kb-test-cc-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	assert_int_equal(kbs_config_host_cc(path), want);
	unlink(path);
}

static void test_tcp_cc_host(void **state)
{
	struct kbs_config c;
	char err[256];
	char *argv[] = { "kbstackd", "--tcp-cc=host", NULL };

	(void)state;
	check_host_cc("bbr\n", KBS_CC_BBR);
	check_host_cc("cubic\n", KBS_CC_RENO);
	check_host_cc("bbr2\n", KBS_CC_RENO);
	check_host_cc("", KBS_CC_RENO);
	assert_int_equal(kbs_config_host_cc("/nonexistent/kb/cc"), KBS_CC_RENO);
	/* host, given or by default, is what this machine says */
	set_minimal();
	assert_int_equal(parse(&c, 2, argv, err, sizeof(err)), 0);
	assert_int_equal(c.cc, kbs_config_host_cc(KBS_HOST_CC_PATH));
	assert_int_equal(parse(&c, 1, argv, err, sizeof(err)), 0);
	assert_int_equal(c.cc, kbs_config_host_cc(KBS_HOST_CC_PATH));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_cc_host),
		cmocka_unit_test(test_slots),
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_minimal_valid_defaults),
		cmocka_unit_test(test_dev_pci_full),
		cmocka_unit_test(test_dev_pci_short_normalised),
		cmocka_unit_test(test_dev_vdev_af_packet),
		cmocka_unit_test(test_dev_bad),
		cmocka_unit_test(test_dev_pci_rejects_sign_or_space),
		cmocka_unit_test(test_ip_bad),
		cmocka_unit_test(test_ip_prefix32),
		cmocka_unit_test(test_ip_prefix31),
		cmocka_unit_test(test_ip_addr_str),
		cmocka_unit_test(test_gw_inside_subnet),
		cmocka_unit_test(test_gw_outside_subnet),
		cmocka_unit_test(test_gw_bad_values),
		cmocka_unit_test(test_gw_equal_to_stack_address),
		cmocka_unit_test(test_gw_flag_outside_subnet_names_flag),
		cmocka_unit_test(test_mac_good),
		cmocka_unit_test(test_mac_bad),
		cmocka_unit_test(test_mac_rejects_sign_or_space),
		cmocka_unit_test(test_core_zero),
		cmocka_unit_test(test_core_bad),
		cmocka_unit_test(test_core_outside_affinity),
		cmocka_unit_test(test_mbufs_good),
		cmocka_unit_test(test_mbufs_bad),
		cmocka_unit_test(test_poll_good),
		cmocka_unit_test(test_poll_bad),
		cmocka_unit_test(test_eal_511_ok),
		cmocka_unit_test(test_eal_512_bad),
		cmocka_unit_test(test_stack_good),
		cmocka_unit_test(test_stack_bad),
		cmocka_unit_test(test_missing_dev),
		cmocka_unit_test(test_missing_ip),
		cmocka_unit_test(test_empty_env_counts_as_unset),
		cmocka_unit_test(test_flags_equals_form),
		cmocka_unit_test(test_flags_separate_argument),
		cmocka_unit_test(test_flag_overrides_env),
		cmocka_unit_test(test_bad_flag_names_flag),
		cmocka_unit_test(test_unknown_option),
		cmocka_unit_test(test_flag_without_value),
		cmocka_unit_test(test_stray_positional),
		cmocka_unit_test(test_reparse_after_short_option_cluster),
		cmocka_unit_test(test_help),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_every_setting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
