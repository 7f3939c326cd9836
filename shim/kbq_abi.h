/*
 * kbq_abi.h — the shared-memory contract between application processes
 * (libkbpreload.so) and kbstackd. The only layout both sides compile in.
 *
 * One region per application context (a process and the children it forks),
 * created by kbstackd as a memfd and passed over the control socket:
 *
 *   struct kbq_region              header: doorbells, wake-up words
 *   struct kbq_acceptq[KBQ_NLISTEN] accept queues, one per listener
 *   struct kbq_sock[KBQ_MAXSLOTS]  one slot per socket: state, control
 *                                  mailbox, ring indices (pages of the
 *                                  slots past `slots` are never touched)
 *   data[slots]                    per slot: its rx ring (ring bytes
 *                                  received, stack → app), then its tx
 *                                  ring (bytes to send, app → stack)
 *
 * The region's size follows its slot count (kbq_region_size(slots), the
 * KB_SLOTS kbstackd was started with); every offset but the end is the
 * same for any count.
 *
 * Rules, both sides:
 *   - Every field is fixed-width and says on its line who writes it.
 *   - Publishing: write the payload, then the index or state with a release
 *     store; the reader loads the index with acquire before the payload.
 *   - No pointers: positions are slot numbers and free-running 32-bit ring
 *     indices (position = index % ring, the region's ring size).
 *   - kbstackd treats every byte written by the application as hostile: it
 *     keeps private copies of everything it publishes and never reads them
 *     back; it reads each application-written word once and checks it; a
 *     context that breaks the contract has its sockets reset and is served
 *     no more (kbstat counts it by reason). Other contexts are untouched.
 * Waking (no system call unless somebody sleeps):
 *   - a thread blocked on one socket (read, write, connect) sleeps on that
 *     socket's futex word wake_seq, after counting itself in waiters;
 *   - a waiter for many fds sleeps on a wake socket of its own in the
 *     kernel poll or epoll set it waits on: one per epoll instance, one per
 *     thread for poll, select and accept. A wake socket is an AF_UNIX
 *     stream pair the application made: it sleeps on one end and handed
 *     the other to kbstackd once (NEW or WAITER message), which only ever
 *     sends one byte with MSG_DONTWAIT — nothing the application does to
 *     the pair can make kbstackd wait. The waiter has a waiter[] entry;
 *     before sleeping it counts itself in waiter[i].sleeping and in
 *     sleepers. It has set its bit in the wmask of every socket it waits on
 *     before reading event_seq. At the end of a loop iteration, kbstackd
 *     bumps event_seq, then sends on the wake socket of each sleeping
 *     waiter whose bit is set in a socket that had an event (every sleeping
 *     waiter if too many sockets had one), once (pending) until that waiter
 *     re-arms it. No two waiters share a wake socket, so none can swallow
 *     another's wake-up; a waiter is never woken for sockets it does not
 *     wait on (a listener thread while workers read).
 * Accept queues: listeners are few, so their queues are not in every
 * slot but in a table of KBQ_NLISTEN. kbstackd gives a listener the lowest
 * free queue when it serves LISTEN (none free: the LISTEN fails, and the
 * application's listener stays on the kernel), sets its tail and head to
 * 0, stores the index in the slot's lq, then publishes the state LISTEN
 * (release); the queue goes back when the listener's slot is freed. An
 * acceptor reads lq (after LISTEN or the listen's done_seq, acquire),
 * checks it is below KBQ_NLISTEN, and takes entries by CAS on head.
 * kbstackd reads head once per use and checks it against its own tail: a
 * head beyond the tail cuts the context off.
 * Holding (fork): every process of a context has an index p (NEW: 0, each
 * JOIN: the lowest free one, in the welcome) and two rows of bits in the
 * region: held[p] (bit s: p has an fd for slot s) and wheld[p] (bit i: p
 * holds waiter[i] — an epoll instance's waiter is held by every process
 * that has its epoll fd). kbstackd publishes the indices in use in procs.
 *   - A process sets its bit when it creates or accepts a socket (claims
 *     a waiter). Before fork, after the JOIN that returns the child's
 *     index c, the parent marks the slots it holds forked and ORs its rows
 *     into row c: the child's holdings exist before fork returns in either
 *     process, whichever runs first. The child drops what its fd table
 *     does not reference.
 *   - Dropping: clear the own bit (seq_cst), then look for the bit in the
 *     rows of the other indices in procs (seq_cst); a slot never marked
 *     forked has no other holder, whatever the number of processes. Of two
 *     processes dropping at once, at least one sees the other's bit gone;
 *     each that sees no holder claims the close, and exactly one wins: a
 *     slot's closing word moves from gen to gen + 1 (CAS, gen read while
 *     still holding it), a waiter's used word from its odd value to the
 *     next even one. The winner closes (CLOSE request; the waiter's wake
 *     socket pair and entry released). No claim can hit a later generation
 *     of the slot or entry, so no close reaches a reused one.
 *   - kbstackd, on a process's hang-up, does the same for each bit of the
 *     dead process's rows (each word read and cleared once, atomically):
 *     a socket no other live process holds it closes as that process's
 *     exit would, a waiter entry it frees and closes its wake socket —
 *     each only if it wins the claim. Rows only ever make kbstackd close
 *     the context's own sockets.
 * Trimming: a ring's pages stay resident once touched, so kbstackd gives
 * back the pages of rings that have been idle for a while (a hole punched
 * in the memfd; the next access faults in a zero page). The rx ring it
 * trims once the application has read everything (rx_head == rx_tail); it
 * is the only writer. The tx ring is the application's to write anywhere
 * in its free space, so a writer counts itself in tx_busy (seq_cst add)
 * and then reads tx_trim (seq_cst): while it is 1 the writer leaves again
 * and waits for 0. kbstackd sets tx_trim = 1 (seq_cst), reads tx_busy
 * (seq_cst) and trims only if it is 0 and everything queued was sent and
 * acknowledged; then stores tx_trim = 0 (release). Of a writer entering and
 * kbstackd trimming at once, at least one sees the other's word. A slot
 * back to FREE has both rings trimmed.
 * Any layout change bumps KBQ_ABI_VERSION; attach refuses a mismatch.
 */
#ifndef KBQ_ABI_H
#define KBQ_ABI_H

#include <stddef.h>
#include <stdint.h>

#define KBQ_ABI_VERSION 7u
#define KBQ_REGION_MAGIC 0x4b42524547494f4eull /* "KBREGION" */

#ifndef KBQ_MAXSLOTS /* a build may set fewer (the fuzz targets: their checks walk every slot) */
#define KBQ_MAXSLOTS (1u << 20)    /* socket slots a context may have (KB_SLOTS at most) */
#endif
#define KBQ_MAXSLOTS_DEC 1048576   /* the same, for messages (a build's may be less) */
#define KBQ_SLOTS_DEFAULT_DEC 65536
#define KBQ_SLOTS_DEFAULT (KBQ_MAXSLOTS < 65536u ? KBQ_MAXSLOTS : 65536u) /* KB_SLOTS unset */
#define KBQ_SLOTS_MIN 64u
/* Bytes per rx and per tx ring (the region's ring: KB_RING, a power of two;
 * kbstackd's TCP window and send buffer are the same). */
#define KBQ_RING_MIN     (64u * 1024)
#define KBQ_RING_MAX     (8u * 1024 * 1024)
#define KBQ_RING_DEFAULT (1024u * 1024)
#define KBQ_RING_MIN_DEC     65536 /* the same, for messages */
#define KBQ_RING_MAX_DEC     8388608
#define KBQ_RING_DEFAULT_DEC 1048576
/* Address space a context's rings may take (slots * 2 * ring): 1 TiB,
 * 65536 slots of 8 MiB rings. kbstackd maps every context's region. */
#define KBQ_RINGS_MAX_BYTES (1ull << 40)
#define KBQ_ACCEPTQ  4096u         /* pending connections per listener: Linux's somaxconn */
#define KBQ_NLISTEN  256u          /* listeners (accept queues) per context */
#define KBQ_NWAITERS 256           /* sleepers with a wake socket of their own */
#define KBQ_NPROCS   256u          /* processes of one context at once */
#define KBQ_READYQ   1024u         /* entries of a waiter's ready ring */
#define KBQ_CACHELINE 64
/* Doorbells, three levels: bit s % 64 of bell[s / 64] names slot s; bit
 * w % 64 of bell_mid[w / 64] names bell word w; bit g of bell_summary
 * names mid words g * KBQ_BELL_GROUP .. g * KBQ_BELL_GROUP + KBQ_BELL_GROUP
 * - 1. A sweep costs what was rung, at any slot count. */
#define KBQ_BELL_WORDS (KBQ_MAXSLOTS / 64)
#define KBQ_BELL_MIDS  (((KBQ_BELL_WORDS + 63) / 64 + 7) & ~7u) /* whole lines */
#define KBQ_BELL_GROUP (KBQ_BELL_MIDS / 64 ? KBQ_BELL_MIDS / 64 : 1u)

/* kbq_sock.state — written by kbstackd, except FREE → OPEN by the app (CAS) */
enum {
	KBQ_S_FREE = 0,      /* unused; the app may claim it */
	KBQ_S_OPEN,          /* claimed by the app, no flow yet */
	KBQ_S_LISTEN,        /* listening */
	KBQ_S_CONNECTING,    /* SYN sent */
	KBQ_S_ESTABLISHED,   /* data may flow (also after a FIN either way) */
	KBQ_S_CLOSED,        /* the flow ended (reset, error, or both FINs); app must close */
	KBQ_S_STACK,         /* claimed by kbstackd for an incoming connection */
};

/* kbq_sock.req_op — control operations, app → stack */
enum {
	KBQ_OP_NONE = 0,
	KBQ_OP_LISTEN,       /* arg0 = port (host order), arg1 = backlog, arg2 = KBQ_OPT_F_* */
	KBQ_OP_CONNECT,      /* arg0 = IPv4 (network order), arg1 = port, arg2 = local port or 0 */
	KBQ_OP_CLOSE,        /* the app dropped its last reference */
	KBQ_OP_SHUT_WR,      /* FIN after the tx ring drains */
	KBQ_OP_SETOPT,       /* arg0 = KBQ_OPT_*, arg1 = value */
};

/* Options a listener passes on to the connections it accepts (as Linux). */
#define KBQ_OPT_F_NODELAY   0x1u
#define KBQ_OPT_F_KEEPALIVE 0x2u

enum {
	KBQ_OPT_NODELAY = 1,
	KBQ_OPT_KEEPALIVE,
	KBQ_OPT_KEEPIDLE,    /* seconds */
	KBQ_OPT_KEEPINTVL,   /* seconds */
	KBQ_OPT_KEEPCNT,
};

/* kbq_sock.ev — sticky conditions, kbstackd sets, never clears */
#define KBQ_EV_RDHUP  0x1u   /* the peer sent FIN: reads return 0 once drained */
#define KBQ_EV_ERR    0x2u   /* reset or error: so_error says which */
#define KBQ_EV_WRDONE 0x4u   /* our FIN is sent (after SHUT_WR or close) */

struct kbq_sock {
	/* --- control mailbox and identity --- */
	uint32_t state;      /* stack (app: FREE → OPEN only) */
	uint32_t gen;        /* stack: bumped each time the slot is freed */
	uint32_t req_seq;    /* app: request number, release after req_* */
	uint32_t req_op;     /* app: KBQ_OP_* */
	uint32_t req_arg[4]; /* app */
	uint32_t done_seq;   /* stack: last request completed, release after done_rc */
	int32_t  done_rc;    /* stack: 0 or -errno of request done_seq */
	uint32_t closing;    /* app and stack: gen while this generation is open; its
			      * closer moves it to gen + 1 first (CAS), see Holding;
			      * the stack sets it to gen when it frees the slot */
	uint32_t forked;     /* app: 1 once a process holding this generation forked
			      * (others may hold it), set before the rows are
			      * copied; 0 from its first holder's claim */
	uint32_t resv0;      /* zero */
	uint32_t ev;         /* stack: KBQ_EV_*, release */
	int32_t  so_error;   /* stack: pending error (positive errno), before ev */
	uint32_t laddr;      /* stack: local IPv4, network order */
	uint32_t raddr;      /* stack: remote IPv4, network order */
	uint16_t lport;      /* stack: network order */
	uint16_t rport;      /* stack: network order */
	uint32_t listener;   /* stack: for accepted sockets, the listener's slot */
	uint32_t wake_seq;   /* stack: bumped (seq_cst) after every event; futex word */
	uint32_t waiters;    /* app: threads blocked on wake_seq (seq_cst) */
	uint32_t taken_seq;  /* stack: last request read (release): the mailbox holds
			      * one request, so the app writes the next only after */
	/* app: bit i = waiter[i] wants this socket's events (an epoll set
	 * holding it, a thread in poll/select/accept on it); seq_cst, set
	 * before the waiter reads event_seq. kbstackd wakes only these. */
	uint64_t wmask[KBQ_NWAITERS / 64];
	uint32_t lq;         /* stack: a listener's accept queue (kbq_acceptq_at),
			      * stored before the state LISTEN (release) */
	uint8_t  pad0[2 * KBQ_CACHELINE - 124];

	/* --- rings: free-running byte indices --- */
	uint32_t rx_tail;    /* stack: bytes received, release after data */
	uint8_t  pad1[KBQ_CACHELINE - 4];
	uint32_t rx_head;    /* app: bytes consumed, release after copying out */
	uint8_t  pad2[KBQ_CACHELINE - 4];
	uint32_t tx_tail;    /* app: bytes queued, release after data */
	uint32_t tx_busy;    /* app: writers inside the tx ring (seq_cst; Trimming) */
	uint8_t  pad3[KBQ_CACHELINE - 8];
	uint32_t tx_head;    /* stack: bytes acknowledged by the peer (space freed) */
	uint32_t tx_trim;    /* stack: 1 while it gives the tx ring's pages back (seq_cst) */
	uint8_t  pad4[KBQ_CACHELINE - 8];
};

/* A listener's accept queue: slot numbers of new connections, in the
 * order their handshakes completed (see Accept queues above). */
struct kbq_acceptq {
	uint32_t tail;       /* stack: entries written, release after slot[] */
	uint8_t  pad0[KBQ_CACHELINE - 4];
	uint32_t head;       /* app: next entry to take (CAS, several acceptors) */
	uint8_t  pad1[KBQ_CACHELINE - 4];
	uint32_t slot[KBQ_ACCEPTQ]; /* stack: entry i at slot[i % KBQ_ACCEPTQ] */
};

struct kbq_region {
	uint64_t magic;      /* stack, once */
	uint32_t version;    /* stack, once: KBQ_ABI_VERSION */
	uint32_t ctx;        /* stack, once: context id (for JOIN after fork) */
	uint64_t size;       /* stack, once: bytes in the region */
	uint32_t stack_ip;   /* stack, once: kbstackd's IPv4, network order */
	uint32_t slots;      /* stack, once: slots the application may claim (the
			      * first ones; KBQ_SLOTS_MIN to KBQ_MAXSLOTS: KB_SLOTS);
			      * size = kbq_region_size(slots, ring) */
	uint32_t ring;       /* stack, once: bytes per ring, a power of two from
			      * KBQ_RING_MIN to KBQ_RING_MAX (KB_RING) */
	uint32_t pad0[7];

	uint32_t event_seq;  /* stack: bumped (release) after any socket event */
	uint8_t  pad1[KBQ_CACHELINE - 4];
	uint32_t sleepers;   /* app: sum of waiter[].sleeping (seq_cst): 0 = skip the scan */
	uint8_t  pad2[KBQ_CACHELINE - 4];

	uint64_t bell_summary; /* app: bit m / KBQ_BELL_GROUP set when bell_mid[m] gained
				* a bit; stack swaps 0 */
	uint8_t  pad3[KBQ_CACHELINE - 8];
	uint64_t bell_mid[KBQ_BELL_MIDS]; /* app: bit w%64 of word w/64 set when bell[w]
					   * gained a bit; stack swaps 0 */
	uint64_t bell[KBQ_BELL_WORDS]; /* app: bit s%64 of word s/64 = "look at slot s" */

	/* Sockets KB_ACCEL matched that stayed on the kernel, by reason; and
	 * accelerated connections the application could not pass on. */
	uint64_t fallback[8]; /* app: KBQ_FB_*; kbstackd sums them for kbstat */

	struct kbq_waiter {
		uint32_t used;     /* app (stack on a death): odd while claimed (CAS from
				    * even, + 1; its wake socket is registered); the
				    * release moves it on to the next even value */
		uint32_t sleeping; /* app: threads about to sleep or asleep on it (seq_cst) */
		uint32_t pending;  /* stack sets 1 and sends on the wake socket; app clears after draining */
		uint32_t pad;
	} waiter[KBQ_NWAITERS];

	/* --- holding, one row per process index (see Holding above) --- */
	uint64_t procs[KBQ_NPROCS / 64]; /* stack: bit p = index p in use; set before
					  * NEW/JOIN is answered, cleared after
					  * a dead p's rows were released (seq_cst) */
	uint8_t  pad4[KBQ_CACHELINE - 8 * (KBQ_NPROCS / 64)];
	/* app: bit s of held[p] = process p has an fd for slot s; bit i of
	 * wheld[p] = p holds waiter[i]. Written by p (seq_cst), and by its
	 * parent into a child's row before fork; cleared by kbstackd when p
	 * is gone. Words past the context's slots stay unused (and
	 * untouched: kbq_slot_words). */
	uint64_t held[KBQ_NPROCS][KBQ_BELL_WORDS];
	uint64_t wheld[KBQ_NPROCS][KBQ_NWAITERS / 64];

	/* --- ready rings, one per waiter: the slots that had an event, so an
	 * epoll set looks at those, not at every socket it holds. kbstackd
	 * appends a socket's slot to the ring of every waiter whose bit is in
	 * its wmask, in the loop iteration of the event, before it bumps
	 * event_seq; a ring it finds full (tail - head >= KBQ_READYQ, head
	 * read once, whatever its value) gets no entry and lost moves on: the
	 * waiter must look at every socket. --- */
	struct kbq_readyq {
		uint32_t tail;   /* stack: entries written, release after slot[] */
		uint32_t lost;   /* stack: bumped (release) for each entry not written */
		uint8_t  pad0[KBQ_CACHELINE - 8];
		uint32_t head;   /* app: entries taken */
		uint8_t  pad1[KBQ_CACHELINE - 4];
		uint32_t slot[KBQ_READYQ]; /* stack */
	} readyq[KBQ_NWAITERS];
};

enum {
	KBQ_FB_NO_SLOT = 0,  /* all slots of the context in use */
	KBQ_FB_NO_MEM,       /* the application ran out of memory */
	KBQ_FB_REFUSED,      /* kbstackd refused (e.g. the port is another context's) */
	KBQ_FB_PASS_REFUSED, /* a sendmsg (SCM_RIGHTS) of an accelerated connection,
			      * refused (kbp_pass.c); not a fallback: a word of the
			      * same array, so the layout stays */
	KBQ_FB_NSTAT = 8,
};

#define KBQ_ACCEPTQ_OFF ((sizeof(struct kbq_region) + 4095) & ~(size_t)4095)
#define KBQ_SOCKS_OFF  (((KBQ_ACCEPTQ_OFF + KBQ_NLISTEN * sizeof(struct kbq_acceptq)) + 4095) & \
			~(size_t)4095)
#define KBQ_DATA_OFF   (((KBQ_SOCKS_OFF + (size_t)KBQ_MAXSLOTS * sizeof(struct kbq_sock)) + \
			 4095) & ~(size_t)4095)

/* A ring size a region may have. */
static inline int kbq_ring_size_ok(uint64_t ring)
{
	return ring >= KBQ_RING_MIN && ring <= KBQ_RING_MAX && (ring & (ring - 1)) == 0;
}

/* Bytes in a region of `slots` slots (kbstackd's KB_SLOTS) with rings of
 * `ring` bytes (KB_RING). */
static inline size_t kbq_region_size(uint32_t slots, uint32_t ring)
{
	return KBQ_DATA_OFF + (size_t)slots * 2 * ring;
}

/* Words of a slot bitmap (held rows, doorbells) a region of `slots` uses. */
static inline uint32_t kbq_slot_words(uint32_t slots)
{
	return (slots + 63) / 64;
}

/* Offsets in the region of slot's rx and tx rings (slot < the region's
 * slots, ring its ring size). */
static inline size_t kbq_rx_off(uint32_t slot, uint32_t ring)
{
	return KBQ_DATA_OFF + (size_t)slot * 2 * ring;
}

static inline size_t kbq_tx_off(uint32_t slot, uint32_t ring)
{
	return kbq_rx_off(slot, ring) + ring;
}

/* Accept queue i (below KBQ_NLISTEN: the caller checks an index it read). */
static inline struct kbq_acceptq *kbq_acceptq_at(void *region, uint32_t i)
{
	return (struct kbq_acceptq *)((char *)region + KBQ_ACCEPTQ_OFF) + i;
}

static inline struct kbq_sock *kbq_sock_at(void *region, uint32_t slot)
{
	return (struct kbq_sock *)((char *)region + KBQ_SOCKS_OFF) + slot;
}

static inline uint8_t *kbq_rx_data(void *region, uint32_t slot, uint32_t ring)
{
	return (uint8_t *)region + kbq_rx_off(slot, ring);
}

static inline uint8_t *kbq_tx_data(void *region, uint32_t slot, uint32_t ring)
{
	return (uint8_t *)region + kbq_tx_off(slot, ring);
}

_Static_assert((KBQ_RING_MIN & (KBQ_RING_MIN - 1)) == 0 &&
	       (KBQ_RING_MAX & (KBQ_RING_MAX - 1)) == 0 &&
	       (KBQ_RING_DEFAULT & (KBQ_RING_DEFAULT - 1)) == 0 &&
	       KBQ_RING_MIN <= KBQ_RING_DEFAULT && KBQ_RING_DEFAULT <= KBQ_RING_MAX &&
	       KBQ_RING_MIN == KBQ_RING_MIN_DEC && KBQ_RING_MAX == KBQ_RING_MAX_DEC &&
	       KBQ_RING_DEFAULT == KBQ_RING_DEFAULT_DEC, "ring sizes: powers of two");
_Static_assert(KBQ_RING_MIN % 4096 == 0, "rings: whole pages");
_Static_assert((KBQ_ACCEPTQ & (KBQ_ACCEPTQ - 1)) == 0, "accept queue: a power of two");
_Static_assert(KBQ_MAXSLOTS % 64 == 0 && KBQ_SLOTS_MIN % 64 == 0 &&
	       KBQ_SLOTS_DEFAULT <= KBQ_MAXSLOTS, "doorbell words");
_Static_assert(KBQ_NWAITERS % 64 == 0, "waiter mask words");
_Static_assert(offsetof(struct kbq_sock, wmask) == 88, "kbq_sock: waiter mask");
_Static_assert(KBQ_BELL_MIDS <= 64 * KBQ_BELL_GROUP, "one summary bit per mid group");
_Static_assert(offsetof(struct kbq_sock, lq) == 120, "kbq_sock: accept queue index");
_Static_assert(offsetof(struct kbq_sock, rx_tail) == 128, "kbq_sock: two control lines");
_Static_assert(sizeof(struct kbq_sock) == 128 + 4 * 64, "kbq_sock size");
_Static_assert(sizeof(struct kbq_sock) % KBQ_CACHELINE == 0, "kbq_sock: whole lines");
_Static_assert(offsetof(struct kbq_acceptq, head) == KBQ_CACHELINE, "kbq_acceptq: head line");
_Static_assert(offsetof(struct kbq_acceptq, slot) == 2 * KBQ_CACHELINE, "kbq_acceptq: entries");
_Static_assert(sizeof(struct kbq_acceptq) == 2 * KBQ_CACHELINE + 4 * KBQ_ACCEPTQ,
	       "kbq_acceptq size");
_Static_assert(KBQ_NLISTEN % 64 == 0, "accept queue bitmap words");
_Static_assert(KBQ_ACCEPTQ_OFF % 4096 == 0 && KBQ_SOCKS_OFF % 4096 == 0, "page-aligned areas");
_Static_assert(offsetof(struct kbq_region, event_seq) == 64, "kbq_region: event line");
_Static_assert(offsetof(struct kbq_region, sleepers) == 128, "kbq_region: sleepers line");
_Static_assert(offsetof(struct kbq_region, bell_summary) == 192, "kbq_region: bells");
_Static_assert(offsetof(struct kbq_sock, closing) == 40, "kbq_sock: closing");
_Static_assert(offsetof(struct kbq_sock, ev) == 52, "kbq_sock: the words after the holding ones");
_Static_assert(KBQ_NPROCS % 64 == 0 && KBQ_NPROCS / 64 <= 8, "process index words");
_Static_assert(offsetof(struct kbq_region, procs) ==
	       256 + 8 * (KBQ_BELL_MIDS + KBQ_BELL_WORDS) + 64 + 16 * KBQ_NWAITERS, "kbq_region: procs");
_Static_assert(offsetof(struct kbq_region, held) % KBQ_CACHELINE == 0, "kbq_region: held");
_Static_assert((KBQ_READYQ & (KBQ_READYQ - 1)) == 0, "ready ring: a power of two");
_Static_assert(offsetof(struct kbq_region, readyq) ==
	       256 + 8 * (KBQ_BELL_MIDS + KBQ_BELL_WORDS) + 64 + 16 * KBQ_NWAITERS + 64 +
	       8 * KBQ_NPROCS * (KBQ_BELL_WORDS + KBQ_NWAITERS / 64), "kbq_region: ready rings");
_Static_assert(sizeof(struct kbq_region) ==
	       256 + 8 * (KBQ_BELL_MIDS + KBQ_BELL_WORDS) + 64 + 16 * KBQ_NWAITERS + 64 +
	       8 * KBQ_NPROCS * (KBQ_BELL_WORDS + KBQ_NWAITERS / 64) +
	       KBQ_NWAITERS * (128 + 4 * KBQ_READYQ), "kbq_region size");

/* ---- control socket messages (SOCK_SEQPACKET, one message each way) ---- */

#define KBQ_HELLO_MAGIC 0x4b42484cu /* "KBHL" */

enum {
	KBQ_HELLO_NEW = 1,   /* a new context; waiter[0]'s wake socket rides along (SCM_RIGHTS) */
	KBQ_HELLO_JOIN,      /* join context arg: a process index for a child about
			      * to be forked; answered (EAGAIN: KBQ_NPROCS in use) */
	KBQ_HELLO_PID,       /* this connection now speaks for its sender (the kernel's
			      * SCM_CREDENTIALS say who); not answered */
	KBQ_HELLO_WAITER,    /* the wake socket riding along wakes waiter[arg]; answered */
};

/*
 * fork: the parent opens and JOINs the child's connection before fork(), so
 * the context never looks empty even if the parent exits at once, and
 * copies its rows into the child's (Holding); the child keeps that
 * connection and sends PID with its own pid. If fork fails, the parent's
 * closing its copy hangs the connection up: kbstackd releases the row as
 * for any process gone.
 */
struct kbq_hello {           /* app → stack */
	uint32_t magic;
	uint32_t version;    /* KBQ_ABI_VERSION */
	uint32_t op;         /* KBQ_HELLO_* */
	uint32_t arg;        /* JOIN: the context; PID: the process id */
};

struct kbq_welcome {         /* stack → app; NEW: the region's memfd rides along */
	uint32_t magic;
	uint32_t version;    /* kbstackd's KBQ_ABI_VERSION */
	int32_t  rc;         /* 0 or -errno */
	uint32_t ctx;
	uint64_t size;       /* region bytes */
	uint32_t proc;       /* NEW, JOIN: the process's index (its rows) */
	uint32_t pad;
};

_Static_assert(sizeof(struct kbq_hello) == 16, "kbq_hello");
_Static_assert(sizeof(struct kbq_welcome) == 32, "kbq_welcome");

#endif /* KBQ_ABI_H */
