/*
 * kbimpair — the test bed's impairment stage: an Ethernet relay between two
 * interfaces of the relay namespace (scripts/testbed up --impair) that drops,
 * duplicates, corrupts, delays and reorders frames, each direction with its
 * own rates (kbimpair_core.c decides; this file only moves frames).
 *
 *   kbimpair IF_A IF_B [--seed N] [--ab SPEC] [--ba SPEC] [--stats FILE]
 *
 * A is the client side, B the server side on the test bed. SPEC as in
 * kbi_spec_parse ("loss=1,delay=20ms,jitter=5ms"). On SIGTERM/SIGINT it
 * writes its counters (also to FILE, and there every 100 ms) and exits 0.
 *
 * Frames move in batches (recvmmsg/sendmmsg on AF_PACKET sockets); delayed
 * copies wait in a min-heap ordered by (release time, arrival), so frames
 * with equal delay keep their order. A full queue drops the frame and
 * counts it (qdrop): a tail drop, as netem's limit. The kernel's own drops
 * on the relay's sockets are read from PACKET_STATISTICS (sockdrop), so
 * every frame the stage lost is accounted for.
 *
 * A frame's delay runs from its arrival at the relay's socket (the kernel's
 * receive timestamp), not from when the relay got round to reading it; how
 * late the relay released held frames (scheduled out on a busy machine) is
 * measured and reported as the median and 99th percentile (late50, late99,
 * in microseconds), so a test can tell the stage's delay from the machine's.
 * Test-bed tooling only.
 */
#include "kbimpair_core.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH     64
#define FRAME_MAX 2048
#define QUEUE_MAX 8192 /* frames held per direction: above an 8 MiB window (5746 frames) */
#define LATE_BINS 5000 /* release lateness histogram: 20 us bins, the last one open */
#define LATE_BIN  20000ull

struct held {
	uint64_t t, seq;
	uint32_t buf, len;
};

struct dir {
	const char *name;
	int in, out;                    /* sockets: receive on in, send on out */
	struct kbi_spec spec;
	struct kbi_rng rng;
	uint8_t (*bufs)[FRAME_MAX];     /* QUEUE_MAX + 2 * BATCH buffers */
	uint32_t *free, nfree;
	struct held heap[QUEUE_MAX];
	uint32_t nheld;
	uint64_t seq;
	/* sendmmsg batch */
	struct mmsghdr msg[2 * BATCH];
	struct iovec iov[2 * BATCH];
	uint32_t obuf[2 * BATCH], nout;
	/* counters */
	uint64_t rx, lost, dup, corrupt, reorder, qdrop, tx, txerr;
	uint64_t late[LATE_BINS], nlate;
};

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

static int open_if(const char *ifname)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	struct packet_mreq mr = { .mr_type = PACKET_MR_PROMISC };
	int fd, one = 1, sz = 8 << 20;

	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	if (fd < 0)
		return -1;
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	mr.mr_ifindex = sll.sll_ifindex;
	if (!sll.sll_ifindex || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) ||
	    setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)) ||
	    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one)) ||
	    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one))) {
		close(fd);
		return -1;
	}
	/* Deep socket buffers: a burst must wait here, not be dropped. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz));
	return fd;
}

static void heap_push(struct dir *d, struct held h)
{
	uint32_t i = d->nheld++;

	while (i) {
		uint32_t p = (i - 1) / 2;
		struct held *q = &d->heap[p];

		if (q->t < h.t || (q->t == h.t && q->seq < h.seq))
			break;
		d->heap[i] = *q;
		i = p;
	}
	d->heap[i] = h;
}

static struct held heap_pop(struct dir *d)
{
	struct held top = d->heap[0], last = d->heap[--d->nheld];
	uint32_t i = 0, n = d->nheld;

	for (;;) {
		uint32_t c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && (d->heap[c + 1].t < d->heap[c].t ||
				  (d->heap[c + 1].t == d->heap[c].t && d->heap[c + 1].seq < d->heap[c].seq)))
			c++;
		if (last.t < d->heap[c].t || (last.t == d->heap[c].t && last.seq < d->heap[c].seq))
			break;
		d->heap[i] = d->heap[c];
		i = c;
	}
	d->heap[i] = last;
	return top;
}

static void flush(struct dir *d)
{
	uint32_t done = 0, i;

	while (done < d->nout) {
		int n = sendmmsg(d->out, d->msg + done, d->nout - done, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			d->txerr += d->nout - done; /* e.g. ENOBUFS: counted, never silent */
			break;
		}
		done += (uint32_t)n;
		d->tx += (uint32_t)n;
	}
	for (i = 0; i < d->nout; i++)
		d->free[d->nfree++] = d->obuf[i];
	d->nout = 0;
}

static void queue_out(struct dir *d, uint32_t buf, uint32_t len)
{
	uint32_t i = d->nout++;

	d->obuf[i] = buf;
	d->iov[i] = (struct iovec){ d->bufs[buf], len };
	d->msg[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &d->iov[i], .msg_iovlen = 1 } };
	if (d->nout == 2 * BATCH)
		flush(d);
}

/* Send every held copy whose time has come. */
static void release_due(struct dir *d, uint64_t now)
{
	while (d->nheld && d->heap[0].t <= now) {
		struct held h = heap_pop(d);
		uint64_t bin = (now - h.t) / LATE_BIN;

		d->late[bin < LATE_BINS ? bin : LATE_BINS - 1]++;
		d->nlate++;

		queue_out(d, h.buf, h.len);
	}
}

static void place(struct dir *d, uint32_t buf, uint32_t len, const struct kbi_copy *c, uint64_t now)
{
	if (c->flip_bit >= 0) {
		d->bufs[buf][c->flip_bit / 8] ^= (uint8_t)(1u << (c->flip_bit % 8));
		d->corrupt++;
	}
	d->reorder += c->reordered;
	if (c->delay_ns == 0) {
		/* Undelayed, or reordered past a delay: out now, ahead of held frames. */
		queue_out(d, buf, len);
		return;
	}
	if (d->nheld == QUEUE_MAX) {
		d->qdrop++;
		d->free[d->nfree++] = buf;
		return;
	}
	heap_push(d, (struct held){ now + c->delay_ns, d->seq++, buf, len });
}

/* When the frame reached the socket, on the monotonic clock: NOW less the
 * age its receive timestamp (CLOCK_REALTIME, REAL now) gives it. */
static uint64_t arrival(struct msghdr *h, uint64_t now, uint64_t real)
{
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS) {
			struct timespec ts;
			uint64_t t, age;

			memcpy(&ts, CMSG_DATA(c), sizeof(ts));
			t = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
			age = real > t ? real - t : 0;
			return age < now ? now - age : now;
		}
	return now;
}

static void receive(struct dir *d)
{
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(struct timespec))];
		struct cmsghdr align;
	} ctl[BATCH];
	uint32_t b[BATCH];
	int n, i;

	if (d->nfree < 3 * BATCH) /* no room: leave frames in the socket */
		return;
	for (i = 0; i < BATCH; i++) {
		b[i] = d->free[--d->nfree];
		iov[i] = (struct iovec){ d->bufs[b[i]], FRAME_MAX };
		m[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1,
						      .msg_control = ctl[i].buf,
						      .msg_controllen = sizeof(ctl[i].buf) } };
	}
	n = recvmmsg(d->in, m, BATCH, MSG_DONTWAIT, NULL);
	if (n < 0)
		n = 0;
	uint64_t now = now_ns(), real = clock_ns(CLOCK_REALTIME);
	for (i = 0; i < n; i++) {
		struct kbi_verdict v;
		uint32_t len = m[i].msg_len;
		uint64_t at = arrival(&m[i].msg_hdr, now, real);

		d->rx++;
		kbi_decide(&d->spec, &d->rng, len, &v);
		if (v.ncopies == 0) {
			d->lost++;
			d->free[d->nfree++] = b[i];
			continue;
		}
		if (v.ncopies == 2) {
			uint32_t c = d->free[--d->nfree];

			memcpy(d->bufs[c], d->bufs[b[i]], len);
			d->dup++;
			place(d, b[i], len, &v.copy[0], at);
			place(d, c, len, &v.copy[1], at);
		} else {
			place(d, b[i], len, &v.copy[0], at);
		}
	}
	for (; i < BATCH; i++)
		d->free[d->nfree++] = b[i];
}

static uint64_t sockdrops(int fd)
{
	struct tpacket_stats st;
	socklen_t l = sizeof(st);

	return getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &l) ? 0 : st.tp_drops;
}

/* The release lateness (microseconds, to the bin's upper edge) below
 * which PCT per cent of the held frames went out. */
static unsigned long long late_pct(const struct dir *d, unsigned pct)
{
	uint64_t want = (d->nlate * pct + 99) / 100, seen = 0;
	unsigned i;

	for (i = 0; i < LATE_BINS && d->nlate; i++)
		if ((seen += d->late[i]) >= want)
			return (i + 1) * LATE_BIN / 1000;
	return 0;
}

static void report(FILE *f, struct dir *d, uint64_t drops)
{
	fprintf(f, "%s rx %llu lost %llu dup %llu corrupt %llu reorder %llu qdrop %llu "
		"sockdrop %llu tx %llu txerr %llu late50 %llu late99 %llu\n", d->name,
		(unsigned long long)d->rx, (unsigned long long)d->lost,
		(unsigned long long)d->dup, (unsigned long long)d->corrupt,
		(unsigned long long)d->reorder, (unsigned long long)d->qdrop,
		(unsigned long long)drops, (unsigned long long)d->tx,
		(unsigned long long)d->txerr, late_pct(d, 50), late_pct(d, 99));
}

static void write_stats(const char *path, struct dir *d, uint64_t *drops)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!(f = fopen(tmp, "w")))
		return;
	report(f, &d[0], drops[0]);
	report(f, &d[1], drops[1]);
	if (fclose(f) == 0)
		rename(tmp, path);
}

static int dir_init(struct dir *d, const char *name, uint64_t seed, uint32_t stream)
{
	uint32_t n = QUEUE_MAX + 4 * BATCH, i;

	d->name = name;
	kbi_rng_seed(&d->rng, seed, stream);
	d->bufs = malloc((size_t)n * FRAME_MAX);
	d->free = malloc(n * sizeof(*d->free));
	if (!d->bufs || !d->free)
		return -1;
	for (i = 0; i < n; i++)
		d->free[i] = i;
	d->nfree = n;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: kbimpair IF_A IF_B [--seed N] [--ab SPEC] [--ba SPEC] [--stats FILE]\n"
		"SPEC: loss=%%,dup=%%,corrupt=%%,reorder=%%,delay=TIME,jitter=TIME (any subset), or none\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static struct dir d[2];
	const char *ifs[2] = { NULL, NULL }, *stats = NULL;
	uint64_t seed = 1, drops[2] = { 0, 0 }, next_stats = 0;
	char err[256];
	int i, k, nif = 0;

	if (dir_init(&d[0], "a->b", 0, 0)) /* seeded again below */
		return 1;
	if (dir_init(&d[1], "b->a", 0, 1))
		return 1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (a[0] != '-') {
			if (nif == 2)
				usage();
			ifs[nif++] = a;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		const char *v = argv[++i];
		if (!strcmp(a, "--seed")) {
			char *end;
			seed = strtoull(v, &end, 0);
			if (end == v || *end) {
				fprintf(stderr, "kbimpair: --seed takes a number, got '%s'\n", v);
				return 2;
			}
		} else if (!strcmp(a, "--ab") || !strcmp(a, "--ba")) {
			if (kbi_spec_parse(v, &d[a[3] == 'a'].spec, err, sizeof(err))) {
				fprintf(stderr, "kbimpair: %s: %s\n", a, err);
				return 2;
			}
		} else if (!strcmp(a, "--stats")) {
			stats = v;
		} else {
			usage();
		}
	}
	if (nif != 2)
		usage();
	kbi_rng_seed(&d[0].rng, seed, 0);
	kbi_rng_seed(&d[1].rng, seed, 1);
	for (k = 0; k < 2; k++) {
		int fd = open_if(ifs[k]);

		if (fd < 0) {
			fprintf(stderr, "kbimpair: cannot open %s: %s\n", ifs[k], strerror(errno));
			return 1;
		}
		d[k].in = fd;
		d[1 - k].out = fd;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);

	while (!stop) {
		struct pollfd p[2] = { { d[0].in, POLLIN, 0 }, { d[1].in, POLLIN, 0 } };
		uint64_t now = now_ns(), wake = UINT64_MAX;
		struct timespec ts, *tsp = NULL;

		for (k = 0; k < 2; k++)
			if (d[k].nheld && d[k].heap[0].t < wake)
				wake = d[k].heap[0].t;
		if (stats && next_stats < wake)
			wake = next_stats;
		if (wake != UINT64_MAX) {
			uint64_t dt = wake > now ? wake - now : 0;

			ts = (struct timespec){ (time_t)(dt / 1000000000ull), (long)(dt % 1000000000ull) };
			tsp = &ts;
		}
		if (ppoll(p, 2, tsp, NULL) < 0 && errno != EINTR)
			break;
		if ((p[0].revents | p[1].revents) & (POLLERR | POLLHUP | POLLNVAL)) {
			fprintf(stderr, "kbimpair: an interface went away\n");
			break;
		}
		now = now_ns();
		for (k = 0; k < 2; k++) {
			release_due(&d[k], now);
			if (p[k].revents & POLLIN)
				receive(&d[k]);
			release_due(&d[k], now);
			flush(&d[k]);
		}
		if (stats && now >= next_stats) {
			for (k = 0; k < 2; k++)
				drops[k] += sockdrops(d[k].in);
			write_stats(stats, d, drops);
			next_stats = now + 100000000ull;
		}
	}
	for (k = 0; k < 2; k++)
		drops[k] += sockdrops(d[k].in);
	if (stats)
		write_stats(stats, d, drops);
	report(stdout, &d[0], drops[0]);
	report(stdout, &d[1], drops[1]);
	return 0;
}
