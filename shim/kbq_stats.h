/*
 * kbq_stats.h — kbstackd's counters, as laid out in shared memory.
 *
 * kbstackd creates one stats file next to its control socket
 * (<KB_STACK>.stats, on tmpfs) and is its only writer; kbstat and tests map
 * it read-only. Every field is a naturally aligned 64-bit word stored with a
 * relaxed atomic store, so a reader never sees a torn value; a reader wanting
 * a consistent group of counters reads them twice and compares.
 *
 * This header is part of the shim contract: fixed-width fields only, sizes
 * asserted, KBQ_STATS_VERSION bumped on any layout change. Not for per-socket
 * state (that lives in the context regions).
 */
#ifndef KBQ_STATS_H
#define KBQ_STATS_H

#include <stdint.h>

#define KBQ_STATS_MAGIC   0x4b42535441545331ull /* "KBSTATS1" */
#define KBQ_STATS_VERSION 10u
#define KBQ_STATS_SUFFIX  ".stats"

/* kbq_stats.state */
enum {
	KBQ_STATE_STARTING = 1, /* EAL/port being set up */
	KBQ_STATE_RUNNING  = 2, /* loop running, port started */
	KBQ_STATE_STOPPED  = 3, /* loop left, port stopped */
};

/*
 * The counter list, in print order. X(name, meaning). kbstat prints every
 * entry by name; adding a counter here adds it everywhere.
 */
#define KBQ_STATS_COUNTERS(X)                                                 \
	X(rx_packets,      "frames received from the port")                   \
	X(rx_bytes,        "bytes received from the port")                    \
	X(tx_packets,      "frames the port accepted for sending")            \
	X(tx_bytes,        "bytes the port accepted for sending")             \
	X(rx_drop_cksum,   "dropped: the NIC flagged a bad IP/L4 checksum")   \
	X(rx_drop_multiseg,"dropped: multi-segment frame (MTU is 1500)")      \
	X(rx_drop_nopbuf,  "dropped: no pbuf could wrap the mbuf")            \
	X(rx_drop_input,   "dropped: lwIP refused the frame at input")        \
	X(rx_drop_port,    "dropped by the port: no rx descriptor or mbuf")   \
	X(rx_drop_ring,    "dropped by the kernel before the port's queue (af_xdp: rx ring full, fill ring empty)") \
	X(tx_drop_nombuf,  "dropped: no mbuf free for a frame to send")       \
	X(tx_drop_toobig,  "dropped: frame longer than the MTU")              \
	X(tx_drop_full,    "dropped: tx queue full after retries")            \
	X(lwip_drop_ip,    "dropped inside lwIP: IP (bad header, not ours)")  \
	X(lwip_drop_tcp,   "dropped inside lwIP: TCP (bad checksum, no mem)") \
	X(lwip_drop_icmp,  "dropped inside lwIP: ICMP")                       \
	X(lwip_drop_arp,   "dropped inside lwIP: ARP")                        \
	X(mbufs_total,     "mbufs in the pool")                               \
	X(mbufs_in_use,    "mbufs not in the pool (rx ring, lwIP, tx)")       \
	X(loops,           "iterations of the run loop")                      \
	X(busy_cycles,     "TSC cycles in iterations that moved a packet")    \
	X(idle_cycles,     "TSC cycles in iterations that moved nothing")     \
	X(sleep_cycles,    "TSC cycles asleep or yielded (adaptive policy)")  \
	X(sleeps,          "times the loop slept")                            \
	X(contexts,        "application contexts attached")                   \
	X(procs,           "application processes attached, all contexts")    \
	X(sockets,         "socket slots in use, all contexts")                \
	X(waiters,         "waiter entries in use (epoll sets, threads in poll/select/accept)") \
	X(tcp_pcbs,        "lwIP TCP PCBs in use (connections, TIME_WAIT included)") \
	X(tcp_timewait,    "of them in TIME_WAIT (counted every 64 ms)")     \
	X(tcp_segs,        "lwIP TCP segments in use (data unsent or unacknowledged)") \
	X(region_kib,      "shared memory the contexts' regions hold, KiB (every 128 ms)") \
	X(ring_trims,      "rings of idle or closed sockets whose pages went back") \
	X(fallback_no_slot, "sockets left on the kernel: no free slot")       \
	X(fallback_no_mem, "sockets left on the kernel: app out of memory")   \
	X(fallback_refused, "sockets left on the kernel: kbstackd refused")   \
	X(fd_pass_refused, "accelerated connections an application tried to send to another process (SCM_RIGHTS): refused") \
	X(tcp_accepted,    "connections queued for an application's accept")  \
	X(tcp_accept_reset,"connections reset at once: no slot after all (rare: see tcp_syn_drop_*)") \
	X(tcp_syn_drop_queue, "SYNs dropped: the listener's accept queue was full (the client retries)") \
	X(tcp_tw_recycled, "TIME_WAIT connections ended early: over half the PCBs were in TIME_WAIT") \
	X(tcp_syn_drop_slots, "SYNs dropped: no free socket slot in the context (the client retries)") \
	X(tcp_connected,   "connections an application opened (connect)")     \
	X(tcp_connect_failed, "connects refused or timed out")                \
	X(tcp_closed,      "connections the application closed (FIN after its data)") \
	X(tcp_closed_exit, "sockets closed for a process that exited or was killed") \
	X(tcp_reset_unread,"connections reset at close: unread data, as Linux does") \
	X(tcp_reset_peer,  "reset by the peer (RST received)")                \
	X(tcp_aborted,     "aborted by lwIP: retransmissions or keepalive gave up") \
	X(tcp_rx_full,     "times a segment waited: the app's rx ring was full") \
	X(tcp_rexmit_segs, "TCP segments sent again, whatever the cause")   \
	X(tcp_rto,         "retransmission timeouts")                         \
	X(tcp_fast_rexmit, "segments retransmitted before their timeout: duplicate or partial ACKs, loss probes") \
	X(tcp_fast_recovery, "fast recoveries entered (third duplicate ACK)") \
	X(tcp_loss_probes, "loss probes: the first unacked segment sent again 2 * srtt + 2 ms into a stall") \
	X(tcp_rx_ooseq,    "data segments received out of order (beyond a hole)") \
	X(tcp_rx_dup,      "data segments received again (all already acknowledged)") \
	X(tcp_ooseq_pruned, "segments dropped from out-of-order queues: lwIP held its bound of received frames") \
	X(rx_held,         "received frames lwIP holds now (out-of-order queues and the like)") \
	X(ctx_reset_ring,  "contexts cut off: a ring index outside what kbstackd published") \
	X(ctx_reset_accept,"contexts cut off: an accept-queue head beyond its tail") \
	X(ctx_reset_slot,  "contexts cut off: a slot claimed beyond KB_SLOTS") \
	X(wake_dropped,    "wake-ups not delivered: the waiter's socket was full or gone") \
	X(ctx_refused_limit, "attaches refused: the user holds KB_UID_CONTEXTS contexts") \
	X(ctl_refused_uid, "joins refused: the context belongs to another user") \
	X(ctl_refused_procs, "joins refused: the context has KBQ_NPROCS processes") \
	X(listen_refused_priv, "listens refused: port below 1024 without CAP_NET_BIND_SERVICE") \
	X(listen_refused_queues, "listens refused: the context's KBQ_NLISTEN accept queues all taken (the listener stays on the kernel)") \
	X(tcp_tx_nomem,    "sends lwIP refused with nothing in flight, for want of segments or pbufs (retried every ms)")

struct kbq_stats_counters {
#define KBQ_STATS_FIELD(name, help) uint64_t name;
	KBQ_STATS_COUNTERS(KBQ_STATS_FIELD)
#undef KBQ_STATS_FIELD
};

struct kbq_stats {
	uint64_t magic;      /* kbstackd writes once before any reader can look */
	uint32_t version;    /* KBQ_STATS_VERSION */
	uint32_t state;      /* KBQ_STATE_*, kbstackd writes (release) */
	uint64_t pid;        /* kbstackd's pid */
	uint64_t tsc_hz;     /* TSC frequency, to turn cycles into time */
	uint64_t start_tsc;  /* TSC when the loop started */
	uint64_t now_tsc;    /* TSC at the last publication (about every ms) */
	char     dev[128];   /* KB_DEV as given, NUL-terminated */
	char     addr[48];   /* "198.18.0.1/24" */
	char     mac[24];    /* "02:00:00:00:00:01" */
	uint32_t core;       /* the core the loop is pinned to */
	uint32_t poll;       /* 0 = adaptive, 1 = busy */
	struct kbq_stats_counters c;
};

_Static_assert(sizeof(struct kbq_stats_counters) == 69 * 8,
	       "kbq_stats_counters: update KBQ_STATS_VERSION with the layout");
_Static_assert(sizeof(struct kbq_stats) == 256 + 69 * 8,
	       "kbq_stats: update KBQ_STATS_VERSION with the layout");

#endif /* KBQ_STATS_H */
