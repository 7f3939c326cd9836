/*
 * kbs_config.h — kbstackd's settings: KB_* environment variables and the
 * same settings as command-line flags (flags win). Parsing only; nothing
 * here touches DPDK or lwIP, so the unit tests link it alone.
 */
#ifndef KBS_CONFIG_H
#define KBS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "kbq_ctl.h"

#define KBS_STACK_DEFAULT "/run/kb/kbstackd.sock"
#define KBS_MBUFS_DEFAULT 16383u /* 2^n - 1: the mempool's best size */
#define KBS_PATH_MAX      KBQ_STACK_PATH_MAX /* KB_STACK, with its NUL */
/* Contexts (regions of KB_SLOTS x 2 x KB_RING address space, 256 waiter
 * fds, a private table) one uid may hold: a user cannot exhaust kbstackd's
 * memory, address space or fds. */
#define KBS_UID_CONTEXTS_DEFAULT 64
/* Address space one user's contexts' rings may take in kbstackd
 * (KB_UID_CONTEXTS x KB_SLOTS x 2 x KB_RING): 64 TiB, half of it. */
#define KBS_UID_SPACE_MAX (1ull << 46)

/* Adaptive idle policy: spin this long after the last packet, then sleep in
 * steps doubling from MIN to MAX. MAX bounds the wake-up delay for a packet
 * that arrives while asleep (about MAX + the timer's own latency), and
 * with it the idle CPU use (a wake-up every MAX). */
#define KBS_SPIN_US      200
#define KBS_SLEEP_MIN_US 5
#define KBS_SLEEP_MAX_US 80

enum kbs_poll {
	KBS_POLL_ADAPTIVE = 0, /* spin, then short sleeps while idle */
	KBS_POLL_BUSY     = 1, /* always poll: lowest latency, one core at 100% */
};

/* KB_TCP_CC: the values of lwIP's TCP_CC_* (patch 0026) */
enum kbs_cc { KBS_CC_RENO = 0, KBS_CC_BBR = 1 };

/* Where KB_TCP_CC=host (the default) reads the host's choice. */
#define KBS_HOST_CC_PATH "/proc/sys/net/ipv4/tcp_congestion_control"

/* The congestion control the file at path names: bbr if it says "bbr",
 * reno for anything else or no file. */
enum kbs_cc kbs_config_host_cc(const char *path);

struct kbs_config {
	char dev[128];        /* KB_DEV: PCI address or vdev spec */
	bool dev_is_pci;
	uint32_t ip;          /* KB_IP, network byte order */
	uint32_t netmask;     /* from KB_IP's prefix, network byte order */
	unsigned prefix;
	uint32_t gw;          /* KB_GW, network byte order; 0 = none */
	uint8_t mac[6];       /* KB_MAC */
	bool has_mac;
	int core;             /* KB_CORE; -1 = the last core we may run on */
	uint32_t mbufs;       /* KB_MBUFS */
	enum kbs_poll poll;   /* KB_POLL */
	char eal[512];        /* KB_EAL: extra EAL arguments, space-separated */
	char stack[KBS_PATH_MAX]; /* KB_STACK: control socket path */
	gid_t group;          /* KB_GROUP: who may attach, with has_group */
	bool has_group;
	unsigned uid_contexts; /* KB_UID_CONTEXTS */
	unsigned slots;       /* KB_SLOTS: socket slots per application context */
	uint32_t ring;        /* KB_RING: bytes per rx and per tx ring (TCP window, send buffer) */
	bool ring_fitted;     /* KB_RING unset and below its default: the bounds' largest */
	int nice;             /* KB_NICE: the process's nice value (0: left as started) */
	enum kbs_cc cc;       /* KB_TCP_CC, "host" resolved */
	unsigned tcp_pcbs;    /* KB_TCP_PCBS: lwIP's PCBs at once (0: the build's, 262144) */
};

/* kbs_config_parse() results besides 0 */
#define KBS_CONFIG_HELP    1  /* --help printed */
#define KBS_CONFIG_VERSION 2  /* --version printed */

/*
 * Fill *c from defaults, then argv, then the environment (getenv) for the
 * settings no flag gave (a flag wins: its variable is not read at all).
 * Returns 0, KBS_CONFIG_HELP/KBS_CONFIG_VERSION (text written to out), or
 * -EINVAL with one line in err naming the setting and the accepted form.
 */
int kbs_config_parse(struct kbs_config *c, int argc, char **argv,
		     char *err, size_t errlen, FILE *out);

/* The usage text (--help). */
void kbs_config_usage(FILE *out);

/* "a.b.c.d/p" of the configured address. */
void kbs_config_addr_str(const struct kbs_config *c, char *buf, size_t len);

#endif /* KBS_CONFIG_H */
