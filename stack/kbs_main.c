/*
 * kbs_main.c — kbstackd: start-up, the run loop and shutdown.
 *
 * Start-up stages, in order (undone in reverse on failure or exit):
 *   1. configuration (kbs_config)        — bad value: one line, exit 2
 *   2. counters file (kbs_stats)         — <KB_STACK>.stats, locked
 *   3. EAL, pinned to KB_CORE (kbs_port)
 *   4. mbuf pool and port (kbs_port)
 *   5. lwIP and its netif (kbs_netif)
 * Then the loop runs until SIGINT/SIGTERM: rx burst into lwIP, lwIP timers
 * once per millisecond, one tx flush per iteration, and the idle policy.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mempool.h>

#include "lwip/init.h"
#include "lwip/stats.h"
#include "lwip/sys.h"
#include "lwip/timeouts.h"

#include "kbs_config.h"
#include "kbs_ctx.h"
#include "kbs_hooks.h"
#include "kbs_netif.h"
#include "kbs_port.h"
#include "kbs_stats.h"

void kbs_sys_init(void);

static volatile sig_atomic_t kbs_stop;

static void kbs_on_signal(int sig)
{
	(void)sig;
	kbs_stop = 1;
}

static void kbs_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kbs_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

/* Once a millisecond: counters that are sampled rather than counted. The
 * port's own counters cost a syscall on af_xdp: read them every 128 ms —
 * in each 128 ms period, not at its first millisecond only: a loop that
 * was not running then (a core shared under load) would leave them stale
 * a whole period more, and readers that wait for a count (tests) would
 * take an old value for the new one. */
static void kbs_publish(struct kbs_port *port, uint32_t ms, uint64_t now)
{
	static uint32_t period = UINT32_MAX;
	struct rte_eth_stats es;

	KBS_STAT_SET(mbufs_in_use, port->pool->size - rte_mempool_avail_count(port->pool));
	KBS_STAT_SET(rx_held, kbs_netif_rx_held());
	KBS_STAT_SET(lwip_drop_ip, lwip_stats.ip.drop);
	KBS_STAT_SET(lwip_drop_tcp, lwip_stats.tcp.drop);
	KBS_STAT_SET(lwip_drop_icmp, lwip_stats.icmp.drop);
	KBS_STAT_SET(lwip_drop_arp, lwip_stats.etharp.drop);
	KBS_STAT_SET(tcp_pcbs, lwip_stats.memp[MEMP_TCP_PCB]->used);
	KBS_STAT_SET(tcp_segs, lwip_stats.memp[MEMP_TCP_SEG]->used);
	if (ms / 128 != period) {
		period = ms / 128;
		struct kbs_ctxs_counts n;
		unsigned ctxs = kbs_ctxs_count(&n);

		KBS_STAT_SET(contexts, ctxs);
		KBS_STAT_SET(procs, n.procs);
		KBS_STAT_SET(sockets, n.socks);
		KBS_STAT_SET(waiters, n.waiters);
		KBS_STAT_SET(region_kib, n.region_kib);
		KBS_STAT_SET(fallback_no_slot, n.fallback[KBQ_FB_NO_SLOT]);
		KBS_STAT_SET(fallback_no_mem, n.fallback[KBQ_FB_NO_MEM]);
		KBS_STAT_SET(fallback_refused, n.fallback[KBQ_FB_REFUSED]);
		KBS_STAT_SET(fd_pass_refused, n.fallback[KBQ_FB_PASS_REFUSED]);
		if (rte_eth_stats_get(port->id, &es) == 0)
			KBS_STAT_SET(rx_drop_port, es.imissed + es.rx_nombuf);
		KBS_STAT_SET(rx_drop_ring, kbs_port_ring_drops(port));
	}
	__atomic_store_n(&kbs_stats->now_tsc, now, __ATOMIC_RELAXED);
}

static void kbs_sleep_us(unsigned us)
{
	struct timespec ts = { 0, (long)us * 1000 };

	clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}

static void kbs_loop(struct kbs_netif *ni, enum kbs_poll poll)
{
	const uint64_t hz = rte_get_tsc_hz();
	const uint64_t spin = hz * KBS_SPIN_US / 1000000;
	uint64_t prev = rte_rdtsc(), last_work = prev, now;
	uint32_t last_ms = sys_now(), tw_period = 0, trim_period = 0;
	bool trim_more = false;
	unsigned step = KBS_SLEEP_MIN_US;

	kbs_stats->start_tsc = prev;
	while (!kbs_stop) {
		unsigned n = kbs_netif_rx(ni);
		uint32_t ms = sys_now();

		kbs_life_settle();
		n += kbs_ctxs_service(); /* settles too */
		tcp_probe_tmr(); /* loss probes in us (lwip-patches/0021) */
		if (ms != last_ms) {
			last_ms = ms;
			sys_check_timeouts();
			if (ms / 64 != tw_period) { /* TIME_WAIT bounded */
				tw_period = ms / 64;
				kbs_tcp_tw_trim();
			}
			if (ms / KBS_TRIM_MS != trim_period) { /* idle rings' pages back */
				trim_period = ms / KBS_TRIM_MS;
				trim_more = kbs_trim_pass(true);
			}
			kbs_life_settle();
			kbs_ctl_poll();
			kbs_publish(ni->port, ms, prev);
			kbs_netif_ooseq_prune(); /* the packet pool kept for receiving */
			kbs_tcp_tx_retry(); /* tx lwIP had no segments for */
		}
		if (trim_more) /* what the period's pass left for later iterations */
			trim_more = kbs_trim_pass(false);
		n += kbs_netif_tx_flush(ni);
		kbs_ctxs_wake();

		now = rte_rdtsc();
		KBS_STAT_ADD(loops, 1);
		if (n) {
			KBS_STAT_ADD(busy_cycles, now - prev);
			last_work = now;
			step = KBS_SLEEP_MIN_US;
		} else {
			KBS_STAT_ADD(idle_cycles, now - prev);
		}
		prev = now;
		if (n || poll == KBS_POLL_BUSY)
			continue;
		if (now - last_work < spin) {
			/* Still polling, but a thread sharing this core (the
			 * application, in small layouts) runs first if it can.
			 * What it runs is not kbstackd's: counted with the
			 * sleeps, so busy_cycles holds only kbstackd's work. */
			sched_yield();
			prev = rte_rdtsc();
			KBS_STAT_ADD(sleep_cycles, prev - now);
			continue;
		}
		kbs_sleep_us(step);
		step = step * 2 > KBS_SLEEP_MAX_US ? KBS_SLEEP_MAX_US : step * 2;
		prev = rte_rdtsc();
		KBS_STAT_ADD(sleeps, 1);
		KBS_STAT_ADD(sleep_cycles, prev - now);
	}
}

static void kbs_describe(const struct kbs_config *c, const struct kbs_port *port)
{
	struct kbq_stats *st = kbs_stats;
	const uint8_t *m = port->mac.addr_bytes;

	snprintf(st->dev, sizeof(st->dev), "%s", c->dev);
	kbs_config_addr_str(c, st->addr, sizeof(st->addr));
	snprintf(st->mac, sizeof(st->mac), "%02x:%02x:%02x:%02x:%02x:%02x",
		 m[0], m[1], m[2], m[3], m[4], m[5]);
	st->core = (uint32_t)c->core;
	st->poll = c->poll;
	st->tsc_hz = rte_get_tsc_hz();
	st->c.mbufs_total = port->pool->size;
}

int main(int argc, char **argv)
{
	struct kbs_config c;
	struct kbs_port port;
	struct kbs_netif ni;
	char err[256], prefix[32];
	int rc;

	rc = kbs_config_parse(&c, argc, argv, err, sizeof(err), stdout);
	if (rc > 0)
		return 0;
	if (rc < 0) {
		fprintf(stderr, "kbstackd: %s\n", err);
		return 2;
	}

	rc = kbs_stats_open(c.stack);
	if (rc == -EBUSY) {
		fprintf(stderr, "kbstackd: KB_STACK=%s: another kbstackd is running on it\n",
			c.stack);
		return 1;
	}
	if (rc) {
		fprintf(stderr, "kbstackd: KB_STACK=%s: cannot create %s%s: %s\n", c.stack,
			c.stack, KBQ_STATS_SUFFIX, strerror(-rc));
		return 1;
	}
	kbs_stats_state(KBQ_STATE_STARTING);
	kbs_signals();

	if (c.nice && setpriority(PRIO_PROCESS, 0, c.nice)) {
		fprintf(stderr, "kbstackd: KB_NICE=%d: cannot set the nice value: %s%s\n",
			c.nice, strerror(errno),
			errno == EACCES || errno == EPERM ? " (a negative one needs CAP_SYS_NICE)" : "");
		goto err_stats;
	}
	snprintf(prefix, sizeof(prefix), "kbs%d", (int)getpid());
	if (kbs_eal_init(&c, prefix))
		goto err_stats;
	if (kbs_port_open(&c, &port))
		goto err_eal;
	kbs_sys_init();
	lwip_init();
	kbs_tcp_set_cc((int)c.cc);
	kbs_tcp_set_ring(c.ring);
	if (c.tcp_pcbs)
		kbs_tcp_set_pcbs(c.tcp_pcbs);
	kbs_life_init();
	if ((rc = kbs_netif_init(&ni, &port, c.ip, c.netmask, c.gw))) {
		fprintf(stderr, "kbstackd: lwIP netif set-up failed: %s\n", strerror(-rc));
		goto err_port;
	}
	if ((rc = kbs_ctl_open(&c))) {
		fprintf(stderr, "kbstackd: KB_STACK=%s: cannot listen there: %s\n", c.stack,
			strerror(-rc));
		goto err_port;
	}
	kbs_describe(&c, &port);
	/* Sleeps of a few microseconds need a timer slack to match. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

	kbs_stats_state(KBQ_STATE_RUNNING);
	fprintf(stderr, "kbstackd: ready: %s on %s, mac %s, core %d, poll %s, tcp %s, %zu tcp pcbs, "
		"%u slots an application, %u KiB rings%s, %u mbufs%s%s\n",
		kbs_stats->addr, c.dev, kbs_stats->mac, c.core,
		c.poll == KBS_POLL_BUSY ? "busy" : "adaptive",
		c.cc == KBS_CC_BBR ? "bbr" : "reno", kbs_tcp_pcbs(), c.slots, c.ring / 1024,
		c.ring_fitted ? " (KB_RING unset: the most KB_SLOTS and KB_UID_CONTEXTS leave room for)" : "",
		c.mbufs,
		port.rx_cksum ? ", rx checksum offload" : "",
		port.tx_cksum ? ", tx checksum offload" : "");
	kbs_loop(&ni, c.poll);
	fprintf(stderr, "kbstackd: stopping\n");

	kbs_stats_state(KBQ_STATE_STOPPED);
	kbs_ctl_close();
	kbs_netif_tx_flush(&ni); /* the resets of open connections */
	kbs_port_close(&port);
	kbs_eal_cleanup();
	kbs_stats_close();
	return 0;

err_port:
	kbs_port_close(&port);
err_eal:
	kbs_eal_cleanup();
err_stats:
	kbs_stats_state(KBQ_STATE_STOPPED);
	kbs_stats_close();
	return 1;
}
