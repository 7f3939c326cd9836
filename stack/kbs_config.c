/*
 * kbs_config.c — parse kbstackd's settings from KB_* variables and flags.
 *
 * One table lists every setting: its variable, its flag, the accepted form
 * and its help. Errors name the setting as the user wrote it (KB_IP=... or
 * --ip=...) and the accepted form, in one line. Cross-setting checks (the
 * gateway inside the subnet) run after everything is read.
 */
#include "kbs_config.h"
#include "kbq_abi.h"
#include "kbq_stats.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define KBS_STR_(x) #x
#define KBS_STR(x) KBS_STR_(x)

struct kbs_setting {
	const char *env;
	const char *flag;
	const char *form; /* the accepted form, shown in errors and --help */
	const char *help;
	int (*parse)(struct kbs_config *c, const char *v);
};

static int parse_dev(struct kbs_config *c, const char *v);
static int parse_ip(struct kbs_config *c, const char *v);
static int parse_gw(struct kbs_config *c, const char *v);
static int parse_mac(struct kbs_config *c, const char *v);
static int parse_core(struct kbs_config *c, const char *v);
static int parse_mbufs(struct kbs_config *c, const char *v);
static int parse_poll(struct kbs_config *c, const char *v);
static int parse_eal(struct kbs_config *c, const char *v);
static int parse_stack(struct kbs_config *c, const char *v);
static int parse_group(struct kbs_config *c, const char *v);
static int parse_uid_contexts(struct kbs_config *c, const char *v);
static int parse_slots(struct kbs_config *c, const char *v);
static int parse_ring(struct kbs_config *c, const char *v);
static int parse_nice(struct kbs_config *c, const char *v);
static int parse_tcp_cc(struct kbs_config *c, const char *v);
static int parse_tcp_pcbs(struct kbs_config *c, const char *v);

static const struct kbs_setting kbs_settings[] = {
	{ "KB_DEV", "dev",
	  "a PCI address (0000:03:10.1) or a vdev spec (net_af_xdp0,iface=veth0)",
	  "DPDK device the stack owns: an SR-IOV VF, or a virtual device", parse_dev },
	{ "KB_IP", "ip", "an IPv4 address and prefix length, e.g. 198.18.0.1/24",
	  "the stack's address on that port", parse_ip },
	{ "KB_GW", "gw", "an IPv4 address inside KB_IP's subnet, e.g. 198.18.0.254",
	  "default gateway (default: none, on-link peers only)", parse_gw },
	{ "KB_MAC", "mac", "a unicast MAC address, e.g. 02:00:00:00:00:01",
	  "MAC address override (default: the port's own)", parse_mac },
	{ "KB_CORE", "core", "a CPU number this process may run on, e.g. 1",
	  "core the run loop is pinned to (default: the last allowed core)", parse_core },
	{ "KB_MBUFS", "mbufs", "an integer from 4095 to 4194303",
	  "mbufs in the packet pool (default 16383)", parse_mbufs },
	{ "KB_POLL", "poll", "busy or adaptive",
	  "idle policy: busy polls always; adaptive (default) polls "
	  KBS_STR(KBS_SPIN_US) " us after the last packet, yielding the core to "
	  "other runnable threads between polls, then sleeps in steps of "
	  "at most " KBS_STR(KBS_SLEEP_MAX_US) " us", parse_poll },
	{ "KB_EAL", "eal", "extra DPDK EAL arguments, space-separated (at most 511 bytes)",
	  "appended to kbstackd's own EAL arguments", parse_eal },
	{ "KB_STACK", "stack", "an absolute path of at most 99 bytes",
	  "kbstackd's control socket, where applications attach; its counters "
	  "live at <path>.stats (default " KBS_STACK_DEFAULT ")", parse_stack },
	{ "KB_GROUP", "group", "a group name or number that exists",
	  "the group whose members may attach: the control socket becomes mode "
	  "0660 in that group (default: mode 0600, only kbstackd's own user)",
	  parse_group },
	{ "KB_UID_CONTEXTS", "uid-contexts", "an integer from 1 to 4096",
	  "application contexts one user may hold at once (default "
	  KBS_STR(KBS_UID_CONTEXTS_DEFAULT) "); more are refused and counted",
	  parse_uid_contexts },
	{ "KB_SLOTS", "slots", "a multiple of 64 from 64 to " KBS_STR(KBQ_MAXSLOTS_DEC),
	  "socket slots per application context: its kb sockets at once (default "
	  KBS_STR(KBQ_SLOTS_DEFAULT_DEC) "); beyond, new sockets use the kernel and "
	  "a kb listener's SYNs wait. Each slot reserves 2 x KB_RING (2 MiB by default) of "
	  "address space in the application and kbstackd (memory only as its "
	  "rings are used)",
	  parse_slots },
	{ "KB_RING", "ring", "a power of two from 64k to 8m (bytes, or with k or m: 65536, 256k, 1m)",
	  "bytes of each kb socket's receive ring and send ring: the most TCP "
	  "window it offers and the most it has in flight, that at most 256k "
	  "(default 1m, or the largest "
	  "that KB_SLOTS and KB_UID_CONTEXTS leave room for), as the "
	  "tcp_rmem/tcp_wmem maxima bound Linux's. Each slot reserves twice this in address "
	  "space (KB_SLOTS x 2 x KB_RING at most 1 TiB), memory only as used",
	  parse_ring },
	{ "KB_NICE", "nice", "an integer from -20 to 19",
	  "kbstackd's nice value (default 0: as started). Where an application "
	  "shares kbstackd's core (adaptive polling), a negative one (e.g. -10) "
	  "lets kbstackd take the core back from it sooner, so the port's queue "
	  "does not overflow under many connections; the application then gets "
	  "less of the core (bulk senders are slower)", parse_nice },
	{ "KB_TCP_CC", "tcp-cc", "bbr, reno or host",
	  "TCP congestion control of kb's connections: bbr (model-based, as "
	  "Linux's bbr: loss does not shrink the window), reno (lwIP's NewReno "
	  "with SACK and CUBIC's 0.7 cut), or host (default): bbr where the "
	  "host's net.ipv4.tcp_congestion_control, read where kbstackd starts, "
	  "is bbr, else reno", parse_tcp_cc },
	{ "KB_TCP_PCBS", "tcp-pcbs", "an integer from 16 to 16777216",
	  "TCP connections lwIP holds at once for every application, TIME_WAIT "
	  "included (kbstackd keeps TIME_WAIT to half of them), and queued "
	  "segments at least as many, times KB_RING / 256k above it (default 262144). Memory follows use (kbstackd "
	  "grew by about 1.1 KiB an idle connection, measured with 15000); beyond, a "
	  "SYN is dropped (the client retries)", parse_tcp_pcbs },
};

#define KBS_NSETTINGS (sizeof(kbs_settings) / sizeof(kbs_settings[0]))
#define KBS_OPT_BASE  1000 /* getopt value of setting i: clear of '?' and 0 */

static int parse_ipv4(const char *v, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, v, &a) != 1)
		return -EINVAL;
	*out = a.s_addr;
	return 0;
}

static int parse_uint(const char *v, unsigned long min, unsigned long max,
		      unsigned long *out)
{
	char *end;
	unsigned long n;

	if (!isdigit((unsigned char)v[0]))
		return -EINVAL;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || *end || n < min || n > max)
		return -EINVAL;
	*out = n;
	return 0;
}

/* v has exactly the shape of pat: 'x' a hex digit, anything else itself.
 * (sscanf's %x alone would take signs and blanks.) */
static bool has_shape(const char *v, const char *pat)
{
	for (; *pat; v++, pat++)
		if (*pat == 'x' ? !isxdigit((unsigned char)*v) : *v != *pat)
			return false;
	return *v == '\0';
}

static bool is_pci_addr(const char *v)
{
	unsigned dom, bus, dev, fn;

	if (has_shape(v, "xxxx:xx:xx.x") &&
	    sscanf(v, "%4x:%2x:%2x.%1x", &dom, &bus, &dev, &fn) == 4)
		return dev < 32 && fn < 8;
	if (has_shape(v, "xx:xx.x") && sscanf(v, "%2x:%2x.%1x", &bus, &dev, &fn) == 3)
		return dev < 32 && fn < 8;
	return false;
}

static int parse_dev(struct kbs_config *c, const char *v)
{
	size_t i, n = strcspn(v, ",");

	if (is_pci_addr(v)) {
		/* EAL names PCI ports with the domain: normalise to it. */
		snprintf(c->dev, sizeof(c->dev), "%s%s", strlen(v) == 7 ? "0000:" : "", v);
		c->dev_is_pci = true;
		return 0;
	}
	/* A vdev: net_<driver><instance>[,key=value...], no spaces. */
	if (strncmp(v, "net_", 4) != 0 || n <= 4 || strlen(v) >= sizeof(c->dev))
		return -EINVAL;
	for (i = 0; v[i]; i++)
		if (isspace((unsigned char)v[i]))
			return -EINVAL;
	for (i = 4; i < n; i++)
		if (!isalnum((unsigned char)v[i]) && v[i] != '_')
			return -EINVAL;
	if (v[n] == ',' && v[n + 1] == '\0')
		return -EINVAL;
	snprintf(c->dev, sizeof(c->dev), "%s", v);
	c->dev_is_pci = false;
	return 0;
}

static int parse_ip(struct kbs_config *c, const char *v)
{
	char buf[32];
	const char *slash = strchr(v, '/');
	unsigned long prefix;
	uint32_t ip, host;

	if (!slash || (size_t)(slash - v) >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, v, slash - v);
	buf[slash - v] = '\0';
	if (parse_ipv4(buf, &ip) || parse_uint(slash + 1, 1, 32, &prefix))
		return -EINVAL;
	host = ntohl(ip);
	/* Not 0.0.0.0, not multicast/reserved (224/3), not loopback. */
	if (host == 0 || host >= 0xe0000000u || (host >> 24) == 127)
		return -EINVAL;
	c->ip = ip;
	c->prefix = (unsigned)prefix;
	c->netmask = htonl(prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix));
	/* The subnet's own network and broadcast addresses are not hosts. */
	if (prefix <= 30 && ((host & ~ntohl(c->netmask)) == 0 ||
			     (host | ntohl(c->netmask)) == 0xffffffffu))
		return -EINVAL;
	return 0;
}

static int parse_gw(struct kbs_config *c, const char *v)
{
	uint32_t gw;

	if (parse_ipv4(v, &gw) || gw == 0)
		return -EINVAL;
	c->gw = gw;
	return 0;
}

static int parse_mac(struct kbs_config *c, const char *v)
{
	unsigned b[6];
	int i;

	if (!has_shape(v, "xx:xx:xx:xx:xx:xx") ||
	    sscanf(v, "%2x:%2x:%2x:%2x:%2x:%2x", &b[0], &b[1], &b[2], &b[3],
		   &b[4], &b[5]) != 6)
		return -EINVAL;
	if (b[0] & 1) /* group bit: multicast/broadcast is not a station */
		return -EINVAL;
	if (!(b[0] | b[1] | b[2] | b[3] | b[4] | b[5]))
		return -EINVAL;
	for (i = 0; i < 6; i++)
		c->mac[i] = (uint8_t)b[i];
	c->has_mac = true;
	return 0;
}

static int parse_core(struct kbs_config *c, const char *v)
{
	unsigned long n;
	cpu_set_t set;

	if (parse_uint(v, 0, CPU_SETSIZE - 1, &n))
		return -EINVAL;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && !CPU_ISSET(n, &set))
		return -EINVAL;
	c->core = (int)n;
	return 0;
}

static int parse_mbufs(struct kbs_config *c, const char *v)
{
	unsigned long n;

	if (parse_uint(v, 4095, 4194303, &n))
		return -EINVAL;
	c->mbufs = (uint32_t)n;
	return 0;
}

static int parse_poll(struct kbs_config *c, const char *v)
{
	if (strcmp(v, "busy") == 0)
		c->poll = KBS_POLL_BUSY;
	else if (strcmp(v, "adaptive") == 0)
		c->poll = KBS_POLL_ADAPTIVE;
	else
		return -EINVAL;
	return 0;
}

static int parse_eal(struct kbs_config *c, const char *v)
{
	if (strlen(v) >= sizeof(c->eal))
		return -EINVAL;
	snprintf(c->eal, sizeof(c->eal), "%s", v);
	return 0;
}

static int parse_stack(struct kbs_config *c, const char *v)
{
	if (!kbq_stack_path_ok(v))
		return -EINVAL;
	snprintf(c->stack, sizeof(c->stack), "%s", v);
	return 0;
}

static int parse_group(struct kbs_config *c, const char *v)
{
	struct group *g = getgrnam(v);
	unsigned long n;

	if (g) {
		c->group = g->gr_gid;
	} else if (parse_uint(v, 0, UINT32_MAX - 1, &n) == 0 && getgrgid((gid_t)n)) {
		c->group = (gid_t)n;
	} else {
		return -EINVAL;
	}
	c->has_group = true;
	return 0;
}

static int parse_uid_contexts(struct kbs_config *c, const char *v)
{
	unsigned long n;

	if (parse_uint(v, 1, 4096, &n))
		return -EINVAL;
	c->uid_contexts = (unsigned)n;
	return 0;
}

static int parse_nice(struct kbs_config *c, const char *v)
{
	unsigned long n;
	bool neg = v[0] == '-';

	if (parse_uint(v + neg, 0, neg ? 20 : 19, &n))
		return -EINVAL;
	c->nice = neg ? -(int)n : (int)n;
	return 0;
}

static int parse_tcp_cc(struct kbs_config *c, const char *v)
{
	if (strcmp(v, "bbr") == 0)
		c->cc = KBS_CC_BBR;
	else if (strcmp(v, "reno") == 0)
		c->cc = KBS_CC_RENO;
	else if (strcmp(v, "host") == 0)
		c->cc = kbs_config_host_cc(KBS_HOST_CC_PATH);
	else
		return -EINVAL;
	return 0;
}

enum kbs_cc kbs_config_host_cc(const char *path)
{
	char name[32] = "";
	FILE *f = fopen(path, "r");

	if (f) {
		if (!fgets(name, sizeof(name), f))
			name[0] = '\0';
		fclose(f);
	}
	name[strcspn(name, "\n")] = '\0';
	return strcmp(name, "bbr") == 0 ? KBS_CC_BBR : KBS_CC_RENO;
}

static int parse_tcp_pcbs(struct kbs_config *c, const char *v)
{
	unsigned long n;

	if (parse_uint(v, 16, 16777216, &n))
		return -EINVAL;
	c->tcp_pcbs = (unsigned)n;
	return 0;
}

static int parse_slots(struct kbs_config *c, const char *v)
{
	unsigned long n;

	if (parse_uint(v, KBQ_SLOTS_MIN, KBQ_MAXSLOTS, &n) || n % 64)
		return -EINVAL;
	c->slots = (unsigned)n;
	return 0;
}

static int parse_ring(struct kbs_config *c, const char *v)
{
	unsigned long n, unit = 1;
	size_t len = strlen(v);
	char num[16];

	if (len && (v[len - 1] == 'k' || v[len - 1] == 'K'))
		unit = 1024;
	else if (len && (v[len - 1] == 'm' || v[len - 1] == 'M'))
		unit = 1024 * 1024;
	if (unit > 1)
		len--;
	if (!len || len >= sizeof(num))
		return -EINVAL;
	memcpy(num, v, len);
	num[len] = '\0';
	if (parse_uint(num, 1, KBQ_RING_MAX, &n) || !kbq_ring_size_ok((uint64_t)n * unit))
		return -EINVAL;
	c->ring = (uint32_t)(n * unit);
	return 0;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static void set_defaults(struct kbs_config *c)
{
	cpu_set_t set;
	int i;

	memset(c, 0, sizeof(*c));
	c->core = -1;
	if (sched_getaffinity(0, sizeof(set), &set) == 0)
		for (i = CPU_SETSIZE - 1; i >= 0 && c->core < 0; i--)
			if (CPU_ISSET(i, &set))
				c->core = i;
	if (c->core < 0)
		c->core = 0;
	c->mbufs = KBS_MBUFS_DEFAULT;
	c->poll = KBS_POLL_ADAPTIVE;
	c->uid_contexts = KBS_UID_CONTEXTS_DEFAULT;
	c->slots = KBQ_SLOTS_DEFAULT;
	c->ring = 0; /* unset: KBQ_RING_DEFAULT or less, once the slots are known */
	c->cc = kbs_config_host_cc(KBS_HOST_CC_PATH);
	snprintf(c->stack, sizeof(c->stack), "%s", KBS_STACK_DEFAULT);
}

/* How the user wrote the gateway ("KB_GW" or "--gw"): its subnet check
 * runs after all settings are read and must name it the same way. */
static const char *gw_label = "KB_GW";

static int apply(struct kbs_config *c, const struct kbs_setting *s,
		 const char *v, bool from_flag, char *err, size_t errlen)
{
	const char *more = strlen(v) > 64 ? "..." : "";

	if (s->parse(c, v) == 0) {
		if (s->parse == parse_gw)
			gw_label = from_flag ? "--gw" : "KB_GW";
		return 0;
	}
	/* Show at most 64 bytes of the value: the form must fit the line. */
	if (from_flag)
		return fail(err, errlen, "--%s=%.64s%s: expected %s", s->flag, v, more, s->form);
	return fail(err, errlen, "%s=%.64s%s: expected %s", s->env, v, more, s->form);
}

void kbs_config_usage(FILE *out)
{
	size_t i;

	fprintf(out,
		"usage: kbstackd [--SETTING=VALUE ...]\n"
		"\n"
		"kbstackd owns one DPDK port and serves TCP/IP on it with lwIP, on one\n"
		"pinned core. Each setting can be given as an environment variable or\n"
		"as a flag; a flag wins over the variable. KB_DEV and KB_IP are required.\n"
		"\n");
	for (i = 0; i < KBS_NSETTINGS; i++) {
		const struct kbs_setting *s = &kbs_settings[i];

		fprintf(out, "  %-9s --%-6s %s\n", s->env, s->flag, s->help);
		fprintf(out, "  %-9s  %-6s  value: %s\n", "", "", s->form);
	}
	fprintf(out,
		"\n"
		"  --help     this text\n"
		"  --version  kbstackd's version and its counters' layout version\n"
		"\n"
		"A bad value prints one line naming the setting and exits with status 2.\n"
		"SIGINT or SIGTERM stops the port, detaches its XDP program and exits 0.\n"
		"Counters: kbstat (same KB_STACK).\n");
}

void kbs_config_addr_str(const struct kbs_config *c, char *buf, size_t len)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &c->ip, ip, sizeof(ip));
	snprintf(buf, len, "%s/%u", ip, c->prefix);
}

int kbs_config_parse(struct kbs_config *c, int argc, char **argv,
		     char *err, size_t errlen, FILE *out)
{
	struct option opts[KBS_NSETTINGS + 3];
	bool by_flag[KBS_NSETTINGS] = { false };
	const char *v, *smaller = " or smaller rings";
	uint64_t rings;
	size_t i;
	int ch, idx, rc;

	set_defaults(c);
	err[0] = '\0';
	gw_label = "KB_GW";

	for (i = 0; i < KBS_NSETTINGS; i++)
		opts[i] = (struct option){ kbs_settings[i].flag, required_argument, NULL,
					   KBS_OPT_BASE + (int)i };
	opts[KBS_NSETTINGS] = (struct option){ "help", no_argument, NULL, 'h' };
	opts[KBS_NSETTINGS + 1] = (struct option){ "version", no_argument, NULL, 'V' };
	opts[KBS_NSETTINGS + 2] = (struct option){ 0 };

	optind = 0; /* 0, not 1: a full reset of getopt's state between calls */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+", opts, &idx)) != -1) {
		if (ch == 'h') {
			kbs_config_usage(out);
			return KBS_CONFIG_HELP;
		}
		if (ch == 'V') {
			fprintf(out, "kbstackd %s (stats layout %u)\n", KB_VERSION,
				KBQ_STATS_VERSION);
			return KBS_CONFIG_VERSION;
		}
		if (ch == '?' || ch == ':') {
			int k = optopt - KBS_OPT_BASE;

			if (k >= 0 && k < (int)KBS_NSETTINGS)
				return fail(err, errlen, "--%s: needs a value: %s",
					    kbs_settings[k].flag, kbs_settings[k].form);
			if (optopt > 0 && optopt < 256) /* a short option */
				return fail(err, errlen, "-%c: unknown option (see --help)",
					    optopt);
			return fail(err, errlen, "%s: unknown option (see --help)",
				    argv[optind - 1]);
		}
		if ((rc = apply(c, &kbs_settings[ch - KBS_OPT_BASE], optarg, true, err, errlen)))
			return rc;
		by_flag[ch - KBS_OPT_BASE] = true;
	}
	if (optind < argc)
		return fail(err, errlen, "%s: unexpected argument (settings are --NAME=VALUE)",
			    argv[optind]);
	/* The variables of the settings no flag gave: a flag wins, so the
	 * variable beside it is not read at all (a bad one does not count).
	 * Each setting fills only its own fields, so the order is free. */
	for (i = 0; i < KBS_NSETTINGS; i++) {
		v = getenv(kbs_settings[i].env);
		/* An empty variable counts as unset, as in most shells' tools. */
		if (!by_flag[i] && v && *v &&
		    (rc = apply(c, &kbs_settings[i], v, false, err, errlen)))
			return rc;
	}

	if (!c->dev[0])
		return fail(err, errlen, "KB_DEV is not set: expected %s", kbs_settings[0].form);
	if (!c->ip)
		return fail(err, errlen, "KB_IP is not set: expected %s", kbs_settings[1].form);
	if (c->gw && (((c->gw ^ c->ip) & c->netmask) || c->gw == c->ip)) {
		char gw[INET_ADDRSTRLEN], a[48];

		inet_ntop(AF_INET, &c->gw, gw, sizeof(gw));
		kbs_config_addr_str(c, a, sizeof(a));
		return fail(err, errlen, "%s=%s: expected an address inside %s other than "
			    "the stack's own", gw_label, gw, a);
	}
	/* Unset, the ring is the default where the address-space bounds below
	 * leave room for it, else the largest they do (KB_SLOTS=1048576:
	 * 512k): setting one bound alone is not refused for the other's
	 * default. A ring set is checked as written. */
	if (!c->ring) {
		for (c->ring = KBQ_RING_DEFAULT; c->ring > KBQ_RING_MIN; c->ring /= 2) {
			rings = (uint64_t)c->slots * 2 * c->ring;
			if (rings <= KBQ_RINGS_MAX_BYTES && c->uid_contexts * rings <= KBS_UID_SPACE_MAX)
				break;
		}
		c->ring_fitted = c->ring < KBQ_RING_DEFAULT;
		smaller = " (KB_RING, unset, is already its least)";
	}
	rings = (uint64_t)c->slots * 2 * c->ring;
	if (rings > KBQ_RINGS_MAX_BYTES)
		return fail(err, errlen, "KB_SLOTS=%u with KB_RING=%u: %llu GiB of rings a "
			    "context, more than %llu GiB; fewer slots%s",
			    c->slots, c->ring, (unsigned long long)(rings >> 30),
			    (unsigned long long)(KBQ_RINGS_MAX_BYTES >> 30), smaller);
	/* kbstackd maps every context's region: one user's may not take
	 * half of its 128 TiB of address space, so one cannot take it all. */
	if (c->uid_contexts * rings > KBS_UID_SPACE_MAX)
		return fail(err, errlen, "KB_UID_CONTEXTS=%u with KB_SLOTS=%u and KB_RING=%u: "
			    "%llu TiB of rings one user may map in kbstackd, more than %llu TiB; "
			    "fewer contexts, fewer slots%s",
			    c->uid_contexts, c->slots, c->ring,
			    (unsigned long long)(c->uid_contexts * rings >> 40),
			    (unsigned long long)(KBS_UID_SPACE_MAX >> 40), smaller);
	return 0;
}
