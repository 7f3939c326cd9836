/*
 * fz.h — the pieces of kbstackd's fuzzing harness (tests/fuzz/), shared by
 * the targets. Fuzz builds only (scripts/fuzz, -DKB_FUZZ=ON): none of this
 * is linked into kbstackd.
 *
 *   fz_sys.c   lwIP's platform made deterministic: a clock the harness
 *              advances, seeded random numbers, a fixed ISN
 *   fz_port.c  DPDK once per process (EAL --no-huge, a net_ring port), an
 *              mbuf pool that poisons what lwIP must not touch, frames in
 *              and out of the port
 *   fz_app.c   a well-behaved application on the far side of kbs_sock.c's
 *              shared region: listen, accept, read, echo, close
 *
 * The addresses and numbers below are also in gen_corpus.py (the seeds).
 */
#ifndef FZ_H
#define FZ_H

#include <stddef.h>
#include <stdint.h>

/* The stack: 198.18.0.1/24 (with the MAC net_ring gives its ports,
 * 00:00:00:00:00:00); its one peer with a resolved ARP entry: 198.18.0.2,
 * MAC 02:00:00:00:00:02. */
#define FZ_STACK_IP   0xc6120001u /* host order */
#define FZ_PEER_IP    0xc6120002u
#define FZ_NETMASK    0xffffff00u
#define FZ_PEER_MAC   { 0x02, 0, 0, 0, 0, 0x02 }
/* The port the application listens on; the one it connects to on the
 * peer, from local port FZ_LPORT + n for its n-th connect of the input. */
#define FZ_PORT       80
#define FZ_PEER_PORT  8080
#define FZ_LPORT      50000
/* Every connection's initial sequence number (kbs_tcp_isn's stand-in), so
 * an input can acknowledge the stack's SYN-ACK. */
#define FZ_ISN        0x4b420000u

/* The fuzzed regions' rings: the window lwIP offers in these builds, which
 * never call kbs_tcp_set_ring (kbs_tcp_wnd stays KBS_RING_BASE; fz_app.c
 * asserts the two equal). */
#define FZ_BYTE_RING       (256u * 1024)

/* ---- fz_sys.c ---------------------------------------------------------- */

/* The clock lwIP reads (sys_now), in ms. */
uint32_t fz_now(void);

/* Let ms pass, in steps of at most one TCP timer interval, running lwIP's
 * timers after each step as kbstackd's loop does. */
void fz_clock_advance(uint32_t ms);

/* Start of an input: random numbers from the same seed. */
void fz_sys_reset(void);
/* Connections made from now on (until the next call) use BBR (bbr
 * non-zero) or Reno. */
void fz_set_cc(int bbr);

/*
 * End of an input, with no PCB left: let time pass to the next whole second
 * (at least 200 ms) so lwIP's TCP timer runs, finds nothing and stops, and
 * leave its fast/slow alternation in one phase. Every input then starts
 * from the same timer state.
 */
void fz_clock_settle(void);

/* ---- fz_port.c --------------------------------------------------------- */

struct kbs_netif;

/*
 * Once per process: EAL (--no-huge), the poisoning pool, a net_ring port
 * started by kbs_port_start, lwIP and kbs_netif_init on it. Exits the
 * process on failure.
 */
struct kbs_netif *fz_port_init(void);

/* End of an input: drop fragments being reassembled and ARP entries (and
 * what waits for them); the peer's entry is put back. */
void fz_port_reset(void);

/* Put one frame on the port's rx ring and run kbs_netif_rx on it (and on
 * any frames fz_port_queue left there: one burst). */
void fz_port_rx(const uint8_t *frame, size_t len);
/* Put a frame in the port's receive queue only: the next fz_port_rx takes
 * it in the same burst (lwIP's output waits for a burst's end, patch 0032). */
void fz_port_queue(const uint8_t *frame, size_t len);
/* Run kbs_netif_rx on whatever frames are queued; how many it took. */
unsigned fz_port_drain(void);

/* kbs_netif_tx_flush, then take every frame the port sent off its tx ring,
 * check it is well formed (aborts if not) and free it. */
void fz_port_tx(void);

/* What kbstackd does once a millisecond to the out-of-order queues
 * (kbs_netif_ooseq_prune). */
void fz_port_prune(void);

/* Mbufs not in the pool (held by lwIP, queued, or leaked). */
unsigned fz_port_mbufs_out(void);

/* End of an input, once the application has gone: fz_port_reset, the
 * clock settled, the last frames sent; aborts if an mbuf is not back in
 * the pool. */
void fz_port_end(void);

/* Internet checksum over p[0..n), folded (not complemented), from sum. */
uint16_t fz_csum(const uint8_t *p, size_t n, uint32_t sum);

/* A static ARP entry (ip in host order), put back by fz_port_reset too. */
void fz_port_arp(uint32_t ip, const uint8_t mac[6]);

/* When set, fz_port_tx shows it every frame the port sent (checked already),
 * before the mbuf is freed: a target's peers read the stack's answers. */
extern void (*fz_port_tx_hook)(const uint8_t *frame, size_t len);

/* ---- fz_app.c ---------------------------------------------------------- */

/* What the application does after a record, besides its usual work. */
enum fz_act {
	FZ_ACT_NONE = 0,   /* accept, read, echo what was read, close at EOF */
	FZ_ACT_HOLD,       /* this time neither accept nor read */
	FZ_ACT_CLOSE,      /* first close the newest connection, unread data and
			    * all (RST then), then as FZ_ACT_NONE */
	FZ_ACT_SHUT_WR,    /* shutdown(SHUT_WR) the newest connection */
	FZ_ACT_BULK,       /* queue 64 KiB on the newest connection */
	FZ_ACT_OPTS,       /* TCP_NODELAY and a 1 s keepalive on the newest, and on
			    * the listener for the connections it accepts next */
	FZ_ACT_RELISTEN,   /* first close the listener (connections not accepted
			    * yet are reset) and listen again, then as FZ_ACT_NONE */
	FZ_ACT_CLOSE_ALL,  /* close every connection */
	FZ_ACT_CONNECT,    /* connect to the peer's FZ_PEER_PORT (a connection
			    * like the others once it is established) */
	FZ_ACT_EXIT,       /* instead of its turn, the application's last process
			    * dies: kbstackd closes its sockets as Linux closes a
			    * dead process's (kbs_ctx_close_all); the application
			    * does nothing more until the next input */
	FZ_ACT_CHILD_EXIT, /* a child process that accepted the newest connection
			    * dies: that socket closes (kbs_ctx_proc_gone) */
	FZ_ACT_READ_SOME,  /* as FZ_ACT_NONE, reading at most 100 bytes from each */
	FZ_ACT_COUNT
};

/* Once per process: a context with a region in ordinary memory, linked
 * where kbs_sock.c finds contexts. */
void fz_app_init(void);

/* Start of an input: listen on FZ_PORT (aborts if that fails). */
void fz_app_start(void);

/* One turn of the application: its usual work, then act. */
void fz_app_step(enum fz_act act);

/*
 * End of an input: the application closes every socket, then the context
 * is reset as kbstackd resets a dead application's (kbs_ctx_reset_all).
 * Aborts if a slot is still in use after that (kbs_sock lost track of it).
 */
void fz_app_stop(void);

/* kbstackd's loop after input: serve doorbells, send, wake. */
void fz_stack_turn(void);

/* The application's context, and how many of its slots it has touched
 * this input (the others are FREE). */
struct kbs_ctx *fz_app_ctx(void);
uint32_t fz_app_slots_used(void);

/* When set, the application shows it every byte it reads, as it reads it
 * (slot, bytes, count): a target checks them against what the peer sent. */
extern void (*fz_app_rx_hook)(uint32_t slot, const uint8_t *data, uint32_t n);

#endif /* FZ_H */
