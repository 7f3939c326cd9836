/*
 * lwipopts.h — kb's lwIP configuration (lwIP 2.1.3, NO_SYS=1, raw API).
 *
 * lwIP runs in exactly one thread: kbstackd's run loop. Everything here is
 * tuned for a server terminating many TCP connections on a fast LAN. Every
 * value that differs from lwIP's default (src/include/lwip/opt.h) says why.
 * Not for application code: preload/ never includes lwIP.
 *
 * KB_TCP_MSL_MS and KB_TCP_SEGS are defined by test builds of kbstackd
 * only (tests/CMakeLists.txt); kbstackd itself is built without them.
 */
#ifndef KB_LWIPOPTS_H
#define KB_LWIPOPTS_H

/* ---- system ---------------------------------------------------------- */
#define NO_SYS                    1 /* one run-to-completion loop, no OS threads */
#define SYS_LIGHTWEIGHT_PROT      0 /* nothing else touches lwIP: no locking needed */
#define LWIP_SOCKET               0 /* the raw API only; sockets are kb's own (shim) */
#define LWIP_NETCONN              0
#define LWIP_TIMERS               1 /* sys_check_timeouts() driven from the TSC */
#define MEM_ALIGNMENT             8 /* 64-bit machine */
#define LWIP_RAND()               kbs_rand()

/* ---- memory: sized for thousands of connections ---------------------- */
/* lwIP's heap (PBUF_RAM: the header pbuf of every segment tcp_write
 * queues, ACKs and RSTs, FIN/SYN segments, ICMP replies, ARP-queued
 * copies) is the C library's malloc, not lwIP's own mem.c heap. mem.c's
 * first fit walks every block from the lowest free one: with 64 bulk
 * connections, ~11000 segment headers live in it, interleaved, and each
 * allocation walked thousands of them — 60 % of kbstackd's cycles
 * (perf, wrk -c64 of 1 MiB responses), a loop iteration took 1.7 ms, the
 * port's rx ring (1024) overflowed at the veth, and the ACKs and requests
 * lost there cost retransmission timeouts: requests waited 1-2 s. glibc's
 * allocator serves these small blocks in constant time. What lives in the
 * heap stays bounded by the pools: a header per queued segment
 * (MEMP_NUM_TCP_SEG), a copy per ARP-queued packet (MEMP_NUM_ARP_QUEUE);
 * the rest is freed within the loop iteration that allocated it. */
#define MEM_LIBC_MALLOC           1
/* Every lwIP object (PCBs, segments, pbufs) comes from malloc and goes
 * back to free (memory follows use; and under AddressSanitizer a PCB used
 * after lwIP freed it is reported, which a pool would hide). The MEMP_NUM_*
 * counts are the default bounds of how many are in use at once; kbstackd
 * may change them at start-up (KB_TCP_PCBS; lwip-patches/0027:
 * LWIP_HOOK_MEMP_LIMIT, kbs_memp_limit). */
#define MEMP_MEM_MALLOC           1
#define LWIP_HOOK_MEMP_LIMIT(type) (kbs_memp_limit[(type)])
/* 100,000 connections and as many in TIME_WAIT (kbstackd keeps TIME_WAIT
 * to half the PCBs), with room. */
#define MEMP_NUM_TCP_PCB          262144
/* Buckets of the 4-tuple hash tcp_input finds active and TIME_WAIT PCBs in
 * (lwip-patches/0015): a power of two, so a chain holds about one PCB
 * when all of the default bound are in use. 2 MiB of pointers. */
#define TCP_PCB_HASH_SIZE         262144
#define MEMP_NUM_TCP_PCB_LISTEN   256   /* a few listeners per application */
#ifdef KB_TCP_SEGS /* test builds only: segments run out (with KB_TCP_PCBS below it) */
#define MEMP_NUM_TCP_SEG          (KB_TCP_SEGS)
#define MEMP_NUM_PBUF             (KB_TCP_SEGS)
#else
#define MEMP_NUM_TCP_SEG          MEMP_NUM_TCP_PCB /* unacked + unsent segments, all connections */
#define MEMP_NUM_PBUF             MEMP_NUM_TCP_PCB /* PBUF_REF/ROM headers: zero-copy tx */
#endif
#define MEMP_NUM_REASSDATA        16    /* IP datagrams being reassembled */
#define IP_REASS_MAX_PBUFS        128   /* fragments held for them in all */
#define MEMP_NUM_FRAG_PBUF        64
#define MEMP_NUM_ARP_QUEUE        256   /* packets waiting for an ARP reply */
#define MEMP_NUM_SYS_TIMEOUT      (LWIP_NUM_SYS_TIMEOUT_INTERNAL + 8)
#define PBUF_POOL_SIZE            4096  /* rx frames are mbufs; the pool is for copies */
#define MEMP_NUM_UDP_PCB          4
#define MEMP_NUM_RAW_PCB          4

/* ---- link and IP ----------------------------------------------------- */
#define LWIP_ARP                  1
#define ARP_TABLE_SIZE            256 /* a server sees many peers on its LAN */
#define ARP_QUEUEING              1
/* A frame waiting for ARP is queued as a copy, always: tcp_write's pbufs
 * point into an application's tx ring (PBUF_ROM), which kbstackd trims or
 * hands to another connection once the connection ended, and lwIP would
 * otherwise queue them by reference for up to the ARP timeout. */
#define PBUF_NEEDS_COPY(p)        ((void)(p), 1)
#define ETHARP_SUPPORT_STATIC_ENTRIES 1
#define LWIP_ETHERNET             1
#define LWIP_IPV4                 1
#define LWIP_IPV6                 0 /* IPv4 only for now */
#define LWIP_ICMP                 1
#define LWIP_RAW                  0
#define LWIP_UDP                  1 /* needed by nothing yet; cheap to keep */
#define LWIP_DHCP                 0 /* addresses come from KB_IP */
#define LWIP_AUTOIP               0
#define LWIP_IGMP                 0
#define LWIP_DNS                  0
#define IP_REASSEMBLY             1
#define IP_FRAG                   1
#define LWIP_NETIF_TX_SINGLE_PBUF 0 /* linkoutput copies chains into one mbuf */
#define LWIP_CHECKSUM_CTRL_PER_NETIF 1 /* per-port (and per-frame) checksum offload */
#define LWIP_SINGLE_NETIF         1 /* one port per kbstackd */

/* ---- TCP ------------------------------------------------------------- */
#define LWIP_TCP                  1
#define TCP_MSS                   1460 /* Ethernet MTU 1500 */
#define LWIP_WND_SCALE            1    /* windows above 64 KiB */
/* A connection's window is its rings' size, KB_RING (64 KiB to 8 MiB; 1
 * MiB by default, which keeps a lossy path's sender busy while a hole is
 * repaired — README, Impaired links), and its window scale the least that
 * covers it; its send buffer, what it may have in flight, the same but at
 * most KBS_SND_BUF_MAX (256 KiB: kb does not pace its sends). kbstackd sets
 * them when it starts (kbs_tcp_set_ring, lwip-patches/0035). The constants
 * are the most it may set, for lwIP's build-time checks and the segment
 * queue's bound. */
#define TCP_RCV_SCALE             8    /* 65535 << 8 covers 8 MiB */
#define TCP_WND                   (8 * 1024 * 1024)
#define TCP_SND_BUF               (8 * 1024 * 1024)
#define TCP_WND_RUN               kbs_tcp_wnd
#define TCP_SND_BUF_RUN           kbs_tcp_snd_buf
#define TCP_RCV_SCALE_RUN         kbs_tcp_rcv_scale
#define TCP_SND_QUEUELEN          (4 * TCP_SND_BUF / TCP_MSS)
/* lwIP checks the low-water mark against a 16-bit window; 16 segments. */
#define TCP_SNDLOWAT              (16 * TCP_MSS)
#define TCP_SNDQUEUELOWAT         (TCP_SND_QUEUELEN / 2)
#define TCP_QUEUE_OOSEQ           1
#define LWIP_TCP_SACK_OUT         1 /* tell peers what arrived out of order */
/* Segments held beyond a hole: a whole window's worth, as Linux keeps. With
 * 64 (half a window) a single loss made lwIP drop the tail of the window it
 * had already SACKed; the sender then learnt of it only by its timeout
 * (bench/impair, kb receiving at 1 % loss: 69x the kernel's time). The cost:
 * a connection may pin up to a window's mbufs of the pool while a hole is
 * open (191 at 256 KiB; kbs_tcp_ooseq_limit counts the window in force). */
#define TCP_OOSEQ_MAX_PBUFS       (TCP_WND / TCP_MSS + 12)
#define TCP_OOSEQ_MAX_BYTES       TCP_WND
#define TCP_OOSEQ_BYTES_LIMIT(pcb) kbs_tcp_wnd /* the window in force */
/* ... while the packet pool can spare them: lwIP holds at most half of
 * what the rx ring leaves of it (kbs_tcp_ooseq_limit, stack/nic/kbs_netif.c). */
#define TCP_OOSEQ_PBUFS_LIMIT(pcb) kbs_tcp_ooseq_limit(pcb)
#define TCP_LISTEN_BACKLOG        1 /* accept backlog per listener */
/* SO_REUSEADDR: a restarted server must listen again on its port while
 * connections of its previous run still use it (TIME_WAIT, FIN_WAIT). */
#define SO_REUSE                  1
/* lwIP's backlog (16 bits: lwip-patches/0017) bounds half-open (SYN_RCVD)
 * connections only: kbs_op_listen sets it to the accept queue's size after
 * tcp_listen_with_backlog_and_err, whose argument (this default) is a u8_t;
 * the accept queue's limit, the application's backlog, is kb's own
 * (kbs_op_listen, kbs_tcp_listen_input). */
#define TCP_DEFAULT_LISTEN_BACKLOG 255
#define LWIP_TCP_KEEPALIVE        1 /* SO_KEEPALIVE and its TCP_KEEP* knobs */
#define LWIP_TCP_TIMESTAMPS       0
#ifdef KB_TCP_MSL_MS /* test builds only: a TIME_WAIT (2 * TCP_MSL) tests can wait out */
#define TCP_MSL                   ((unsigned long)(KB_TCP_MSL_MS))
#else
#define TCP_MSL                   30000UL /* TIME_WAIT 60 s, as Linux */
#endif
/* The fast timer sends delayed ACKs; lwIP's 250 ms default would stall a
 * request/response peer that waits on our ACK. The slow timer, twice the
 * interval, is the retransmission timer's granularity: at 10 ms it is 20 ms,
 * so a timeout fires within 20 ms of its due time (at lwIP's 250 ms, the
 * ~600 ms stalls a lossy link showed). Both walk the active PCBs: about 1 %
 * of the core with 8192 of them. */
#define TCP_TMR_INTERVAL          10
/* The loss probes' microsecond clock (lwip-patches/0021): a stall on a LAN
 * is probed 2 * srtt + 2 ms into it, far below the timers' tick. */
#define LWIP_TCP_NOW_US()         kbs_now_us()
/* Linux's minimum retransmission timeout (lwip-patches/0008): on a LAN the
 * RTT estimate alone would give 60 ms and spurious timeouts under jitter. */
#define TCP_RTO_MIN               200
/* RFC 6928: ten segments at start, as Linux (lwIP's default is three). */
#define LWIP_TCP_CALC_INITIAL_CWND(mss) \
	((tcpwnd_size_t)LWIP_MIN(10U * (mss), LWIP_MAX(2U * (mss), 14600U)))
/* RFC 6528-style unpredictable initial sequence numbers. */
#define LWIP_HOOK_TCP_ISN(lip, lport, rip, rport) kbs_tcp_isn(lip, lport, rip, rport)
/* A SYN for a 4-tuple in TIME_WAIT opens a new connection, as in Linux. */
#define LWIP_HOOK_TCP_INPACKET_PCB(pcb, hdr, optlen, opt1len, opt2, p) \
	kbs_tcp_inpacket(pcb, hdr, optlen, opt1len, opt2, p)
/* Retransmissions, timeouts, fast recoveries, out-of-order and duplicate
 * segments, counted for kbstat (stack/lwip-patches/0007). */
#define LWIP_HOOK_TCP_EVENT(pcb, ev) kbs_tcp_event(pcb, ev)
#define LWIP_HOOK_FILENAME        "kbs_hooks.h"
/* One "ext arg" per PCB: its destroy callback, run inside tcp_free() on
 * every path that frees a PCB (TIME_WAIT expiry or reuse, PCB shortage,
 * aborts), is how a socket slot drops its pointer (stack/kbs_life.c). */
#define LWIP_TCP_PCB_NUM_EXT_ARGS 1

/* ---- checksums: software unless the port offloads (set per netif) ---- */
#define CHECKSUM_GEN_IP           1
#define CHECKSUM_GEN_TCP          1
#define CHECKSUM_GEN_UDP          1
#define CHECKSUM_GEN_ICMP         1
#define CHECKSUM_CHECK_IP         1
#define CHECKSUM_CHECK_TCP        1
#define CHECKSUM_CHECK_UDP        1
#define CHECKSUM_CHECK_ICMP       1
/* The sum itself is DPDK's (port/kbs_chksum.c): lwIP's generic loop was
 * 10 % of kbstackd's cycles sending bulk on a port without checksum offload
 * (af_xdp). lwIP's own is still built (algorithm 2), for the unit test that
 * compares the two. */
#define LWIP_CHKSUM               kbs_chksum
#define LWIP_CHKSUM_ALGORITHM     2
unsigned short kbs_chksum(const void *data, int len);

/* ---- statistics: drop counts exported through kbstat ----------------- */
#define LWIP_STATS                1
#define LWIP_STATS_DISPLAY        0
#define LINK_STATS                1
#define ETHARP_STATS              1
#define IP_STATS                  1
#define ICMP_STATS                1
#define TCP_STATS                 1
#define UDP_STATS                 0
#define MEM_STATS                 1
#define MEMP_STATS                1
#define SYS_STATS                 0
#define IPFRAG_STATS              0

#define LWIP_NETIF_STATUS_CALLBACK 0
#define LWIP_NETIF_LINK_CALLBACK   0

#endif /* KB_LWIPOPTS_H */
