/*
 * kbp_core.c — start-up, settings, attachment to kbstackd, the fd table and
 * fork. Start-up stages (kbp_init, a constructor: other libraries'
 * constructors may run before it, and call kb's symbols, see kbp_libc.c):
 *   1. resolve libc's functions (dlsym RTLD_NEXT)
 *   2. read KB_ACCEL, KB_STACK, KB_SPIN_US, KB_LOG, KB_STRICT
 *   3. size the fd table from RLIMIT_NOFILE
 *   4. register the fork handler
 *   5. publish: store the table's size (kbp_nfds), the sign that 2-4 are done
 * Until 5, every fd is libc's and nothing is accelerated (kbp_ready).
 * Attaching to kbstackd waits for the first socket a rule accelerates, so
 * programs that never use one never connect.
 */
#include "kbp.h"
#include "kbq_atomic.h"
#include "kbq_ctl.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <sys/un.h>
#include <unistd.h>

struct kbp_config kbp_cfg;
struct kbp_proc kbp = { .ctl = -1, .efd = -1, .kick = -1 };

static void *kbp_fd_slots[KBP_FD_MAX];
void **const kbp_fds = kbp_fd_slots;
int kbp_nfds;
static pthread_mutex_t kbp_attach_lock = PTHREAD_MUTEX_INITIALIZER;

void kbp_log(int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	if (level > kbp_cfg.log)
		return;
	n = snprintf(buf, sizeof(buf), "kb[%d]: ", (int)getpid());
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	n = (int)strlen(buf);
	if (n < (int)sizeof(buf) - 1)
		buf[n++] = '\n';
	(void)libc_write(2, buf, (size_t)n);
}

/* ---- KB_ACCEL ---------------------------------------------------------- */

static int accel_fail(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "KB_ACCEL: %s: expected listen:PORT[,PORT…] and/or "
		 "connect:ADDR[/PREFIX][:PORT][,…], separated by ';' "
		 "(e.g. listen:80,8080;connect:198.18.0.0/24)", what);
	return -EINVAL;
}

/* s[0..n) is a decimal number of digits only (no sign, no blank), at most max. */
static int parse_uint(const char *s, size_t n, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	size_t i;

	if (n == 0)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]))
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > max)
			return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_port(const char *s, size_t n, uint16_t *port)
{
	unsigned long v;

	if (parse_uint(s, n, 65535, &v) || v == 0)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

static int parse_dest(struct kbp_rule *r, const char *s, size_t n)
{
	char buf[40];
	const char *colon, *slash;
	unsigned long prefix = 32;
	struct in_addr a;

	if (n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	r->port = 0;
	colon = strchr(buf, ':');
	if (colon) {
		if (parse_port(colon + 1, strlen(colon + 1), &r->port))
			return -EINVAL;
		buf[colon - buf] = '\0';
	}
	slash = strchr(buf, '/');
	if (slash) {
		if (parse_uint(slash + 1, strlen(slash + 1), 32, &prefix))
			return -EINVAL;
		buf[slash - buf] = '\0';
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -EINVAL;
	r->mask = htonl(prefix ? ~0u << (32 - prefix) : 0);
	r->net = a.s_addr & r->mask;
	return 0;
}

/* One listen:/connect: rule, item[0..end): its comma-separated list. */
static int accel_rule(struct kbp_config *c, const char *item, const char *end, char *err,
		      size_t errlen)
{
	const char *list;
	bool is_listen;

	if (strncmp(item, "listen:", 7) == 0) {
		is_listen = true;
		list = item + 7;
	} else if (strncmp(item, "connect:", 8) == 0) {
		is_listen = false;
		list = item + 8;
	} else {
		return accel_fail(err, errlen, "unknown rule");
	}
	if (list == end)
		return accel_fail(err, errlen, "empty rule");
	/* Each element ends at ',' or at the rule's end; "80," has an empty one. */
	for (;;) {
		size_t k = strcspn(list, ",;");

		if (is_listen) {
			if (k == 1 && list[0] == '*') {
				c->any_listen = true;
			} else if (c->nlisten == KBP_MAX_RULES ||
				   parse_port(list, k, &c->listen[c->nlisten++])) {
				return accel_fail(err, errlen, "bad listen port");
			}
		} else if (c->nconnect == KBP_MAX_RULES ||
			   parse_dest(&c->connect[c->nconnect++], list, k)) {
			return accel_fail(err, errlen, "bad connect destination");
		}
		list += k;
		if (list == end)
			return 0;
		list++; /* the ',' */
	}
}

int kbp_accel_parse(struct kbp_config *c, const char *v, char *err, size_t errlen)
{
	const char *p = v;

	c->any_listen = false;
	c->nlisten = c->nconnect = 0;
	/* Rules separated by ';', none of them empty (";", "listen:80;;"). */
	for (;;) {
		const char *end = p + strcspn(p, ";");
		int rc;

		if (end == p)
			return accel_fail(err, errlen, "empty rule");
		rc = accel_rule(c, p, end, err, errlen);
		if (rc || !*end)
			return rc;
		p = end + 1;
	}
}

bool kbp_listen_match(uint16_t port)
{
	unsigned i;

	if (kbp_cfg.any_listen)
		return true;
	for (i = 0; i < kbp_cfg.nlisten; i++)
		if (kbp_cfg.listen[i] == port)
			return true;
	return false;
}

bool kbp_connect_match(uint32_t ip, uint16_t port)
{
	unsigned i;

	for (i = 0; i < kbp_cfg.nconnect; i++) {
		const struct kbp_rule *r = &kbp_cfg.connect[i];

		if ((ip & r->mask) == r->net && (!r->port || r->port == port))
			return true;
	}
	return false;
}

/* ---- the settings ------------------------------------------------------ */

/* The variable's value, NULL when unset or empty (empty counts as unset). */
static const char *setting(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/*
 * Say that name=v is bad, with the accepted form and, unless KB_STRICT is
 * about to make it fatal, what is used instead. Returns 1 (one bad value).
 */
static int setting_bad(const struct kbp_config *c, void (*say)(int level, const char *line),
		       const char *name, const char *v, const char *form, const char *instead)
{
	char line[512];

	snprintf(line, sizeof(line), "%s=%.64s%s: expected %s%s%s", name, v,
		 strlen(v) > 64 ? "..." : "", form, c->strict ? "" : "; ",
		 c->strict ? "" : instead);
	say(0, line);
	return 1;
}

/* A number from 0 to max: *out holds the default and gets the value. */
static int setting_uint(const struct kbp_config *c, void (*say)(int level, const char *line),
			const char *name, unsigned long max, const char *form, unsigned long *out)
{
	const char *v = setting(name);
	char instead[32];

	if (!v || parse_uint(v, strlen(v), max, out) == 0)
		return 0;
	snprintf(instead, sizeof(instead), "using %lu", *out);
	return setting_bad(c, say, name, v, form, instead);
}

int kbp_config_read(struct kbp_config *c, void (*say)(int level, const char *line))
{
	const char *v;
	char err[256], line[512];
	unsigned long n;
	bool no_rules = false;
	int bad = 0;

	memset(c, 0, sizeof(*c));
	snprintf(c->stack, sizeof(c->stack), "/run/kb/kbstackd.sock");
	/* First: it decides what a bad value below does. */
	n = 0;
	bad += setting_uint(c, say, "KB_STRICT", 1, "0 or 1", &n);
	c->strict = n;
	n = 1;
	bad += setting_uint(c, say, "KB_LOG", 2, "0 (errors), 1 (notices) or 2 (debug)", &n);
	c->log = (int)n;
	/* No spin by default: a thread spinning on a core it shares (with the
	 * client, kbstackd or its own sibling threads) delays the very work
	 * it waits for (kbtest, server sharing kbstackd's core, 1 connection:
	 * 0.22x of the kernel with 50 us, 1.42x with 0). Spin pays only for
	 * threads that own their core. */
	n = 0;
	bad += setting_uint(c, say, "KB_SPIN_US", 1000000, "microseconds, 0 to 1000000", &n);
	c->spin_us = (unsigned)n;
	if ((v = setting("KB_STACK"))) {
		/* Not the default instead: that may be some other kbstackd. */
		if (kbq_stack_path_ok(v)) {
			snprintf(c->stack, sizeof(c->stack), "%s", v);
		} else {
			no_rules = true;
			bad += setting_bad(c, say, "KB_STACK", v,
					   "an absolute path of at most 99 bytes",
					   "nothing is accelerated");
		}
	}
	v = setting("KB_ACCEL");
	if (!v) {
		say(1, "KB_ACCEL is not set: nothing is accelerated, all sockets use the kernel");
	} else if (kbp_accel_parse(c, v, err, sizeof(err))) {
		snprintf(line, sizeof(line), "%s%s", err, c->strict ? "" : "; nothing is accelerated");
		say(0, line);
		bad++;
		no_rules = true;
	}
	if (no_rules) {
		c->any_listen = false;
		c->nlisten = c->nconnect = 0;
	}
	return bad;
}

/* ---- attach ------------------------------------------------------------ */

static int ctl_connect(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	/* A kbstackd that accepts but does not answer (stopped, starting)
	 * holds no thread of ours longer than this (it answers within a few
	 * of its 1 ms loop iterations). */
	struct timeval tv = { 2, 0 };
	int fd = libc_socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", kbp_cfg.stack);
	if (libc_connect(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    libc_setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    libc_setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv))) {
		int e = errno;

		libc_close(fd);
		return -e;
	}
	return fd;
}

/* Send a hello (with fd_out if >= 0), receive the welcome (and an fd). */
static int ctl_hello(int fd, uint32_t op, uint32_t arg, int fd_out, struct kbq_welcome *w,
		     int *fd_in)
{
	struct kbq_hello h = { KBQ_HELLO_MAGIC, KBQ_ABI_VERSION, op, arg };
	struct iovec iov = { &h, sizeof(h) };
	union kbq_cmsg_fd u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	kbq_cmsg_put_fd(&m, &u, fd_out);
	if (libc_sendmsg(fd, &m, MSG_NOSIGNAL) != sizeof(h))
		return -errno;
	iov.iov_base = w;
	iov.iov_len = sizeof(*w);
	kbq_cmsg_want_fd(&m, &u);
	do
		n = libc_recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	*fd_in = n == sizeof(*w) ? kbq_cmsg_get_fd(&m) : -1;
	if (n != sizeof(*w))
		return n < 0 ? -errno : -EPROTO;
	if (w->magic != KBQ_HELLO_MAGIC)
		return -EPROTO;
	if (w->version != KBQ_ABI_VERSION)
		return -EPROTO;
	return w->rc;
}

static pthread_mutex_t kbp_ctl_lock = PTHREAD_MUTEX_INITIALIZER;

/* Our control connection's entry in the fd table: its close is ours to see. */
static int kbp_ctl_kind = KBP_K_CTL;

void kbp_ctl_closing(int fd)
{
	kbp_fd_take(fd);
	if (fd != kbp.ctl)
		return; /* (a dead attachment's) */
	kbq_st(&kbp.proc, KBQ_NPROCS);
	kbp.ctl = -1;
	kbp_log(1, "fd %d, the connection to kbstackd, closed by the program: this "
		"process holds its accelerated sockets no more (others that have them "
		"keep them open), and new ones stay on the kernel", fd);
}

int kbp_wake_pair(int sv[2])
{
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) ? -errno : 0;
}

int kbp_ctl_waiter(uint32_t idx, int efd)
{
	struct kbq_welcome w;
	int fd_in, rc;

	pthread_mutex_lock(&kbp_ctl_lock);
	rc = kbp.ctl < 0 ? -ENOTCONN : ctl_hello(kbp.ctl, KBQ_HELLO_WAITER, idx, efd, &w, &fd_in);
	pthread_mutex_unlock(&kbp_ctl_lock);
	return rc;
}

static uint64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

static int attach_locked(void)
{
	struct kbq_welcome w;
	struct kbq_region *r;
	int fd, sv[2], memfd = -1, rc;

	fd = ctl_connect();
	if (fd < 0)
		return fd;
	rc = kbp_wake_pair(sv);
	if (rc)
		goto err_ctl;
	rc = ctl_hello(fd, KBQ_HELLO_NEW, 0, sv[1], &w, &memfd);
	if (rc)
		goto err_efd;
	if (memfd < 0 || w.size < kbq_region_size(KBQ_SLOTS_MIN, KBQ_RING_MIN) ||
	    w.size > KBQ_DATA_OFF + KBQ_RINGS_MAX_BYTES) {
		rc = -EPROTO;
		goto err_efd;
	}
	/* Address space only: pages come as the rings are used. */
	r = mmap(NULL, w.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, memfd, 0);
	libc_close(memfd);
	if (r == MAP_FAILED) {
		rc = -errno;
		goto err_efd;
	}
	if (kbq_ld_acq(&r->magic) != KBQ_REGION_MAGIC || r->version != KBQ_ABI_VERSION ||
	    r->slots < KBQ_SLOTS_MIN || r->slots > KBQ_MAXSLOTS || r->slots % 64 ||
	    !kbq_ring_size_ok(r->ring) || kbq_region_size(r->slots, r->ring) != w.size ||
	    w.proc >= KBQ_NPROCS) {
		munmap(r, w.size);
		rc = -EPROTO;
		goto err_efd;
	}
	/* The dead attachment's control connection and waiter 0's wake
	 * socket pair stay open (three fds a restart of kbstackd): another
	 * thread may still hold their numbers, in a poll set or an epoll
	 * instance, and a number closed could name the program's next file.
	 * Its region stays mapped: its sockets read it until closed. */
	if (kbp.ctl >= 0)
		kbp_fd_take(kbp.ctl);
	kbq_st_rel(&kbp.ctl, fd);
	kbp.efd = sv[0];
	kbp.kick = sv[1];
	kbp.ctx = w.ctx;
	kbq_st(&kbp.proc, w.proc);
	kbq_st(&kbp.w0_taken, 0);
	kbp.pid = getpid();
	kbp_fd_set(fd, &kbp_ctl_kind);
	/* Region first, then the epoch that makes it live: a thread that
	 * reads the epoch (acquire) and then the region sees this region
	 * or a later one, never an earlier one with a later epoch. */
	kbq_st_rel(&kbp.r, r);
	kbq_st_rel(&kbp.epoch, kbp.epoch + 1);
	kbp_log(kbp.epoch > 1 ? 1 : 2, "attached to kbstackd at %s, context %u%s", kbp_cfg.stack,
		w.ctx, kbp.epoch > 1 ? ": new accelerated sockets are served again" : "");
	return 0;

err_efd:
	if (memfd >= 0)
		libc_close(memfd);
	libc_close(sv[0]);
	libc_close(sv[1]);
err_ctl:
	libc_close(fd);
	return rc;
}

int kbp_attach(void)
{
	int rc;

	if (kbp_live())
		return kbp_me() < KBQ_NPROCS ? 0 : -EAGAIN;
	pthread_mutex_lock(&kbp_attach_lock);
	if (kbp_live()) {
		rc = kbp_me() < KBQ_NPROCS ? 0 : -EAGAIN;
	} else if (kbp.failed && mono_ms() - kbp.failed_at < 1000) {
		rc = kbp.failed; /* one try a second, not one per socket */
	} else {
		rc = attach_locked();
		if (rc && !kbp.failed)
			kbp_log(0, "no kbstackd reachable at KB_STACK=%s (%s): %s; tried again "
				"at most once a second", kbp_cfg.stack, strerror(-rc),
				kbp_cfg.strict ? "KB_STRICT is set, accelerated sockets fail"
					       : "accelerated sockets fall back to the kernel");
		kbp.failed = rc;
		kbp.failed_at = mono_ms();
	}
	pthread_mutex_unlock(&kbp_attach_lock);
	return rc;
}

/* ---- kbstackd's death ---------------------------------------------------- */

static uint64_t kbp_checked_at; /* when kbp_stack_check last looked (ms) */

/*
 * A re-attach stores the control fd, then the region, then the epoch
 * (release): an epoch read (acquire) before and after the fd, the same
 * both times, is the fd's own or an earlier one — a pairing that can only
 * make this reader miss the new connection's hang-up (others see it),
 * never take it for an older one's.
 */
int kbp_ctl_fd(uint32_t *att)
{
	for (;;) {
		uint32_t e = kbq_ld_acq(&kbp.epoch);
		int fd = kbq_ld_acq(&kbp.ctl);

		if (kbq_ld_acq(&kbp.epoch) != e)
			continue;
		*att = e;
		return kbq_ld_acq(&kbp.r) && !kbp_att_dead(e) ? fd : -1;
	}
}

/* Look at the control connection now: its hang-up is kbstackd's death. */
static void stack_look(void)
{
	uint32_t att;
	struct pollfd p = { .fd = kbp_ctl_fd(&att), .events = 0 };

	if (p.fd >= 0 && libc_poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)))
		kbp_stack_gone(att);
}

void kbp_stack_check(void)
{
	uint64_t now, last = kbq_ld(&kbp_checked_at);

	if (!kbp_live())
		return;
	now = mono_ms();
	if (now - last < 100 || !kbq_cas(&kbp_checked_at, &last, now))
		return;
	stack_look();
}

void kbp_stack_gone(uint32_t att)
{
	uint32_t d = kbq_ld_acq(&kbp.dead);
	struct kbq_region *r = kbq_ld_acq(&kbp.r);
	uint32_t me = kbp_me();

	/* att is the current attachment until some thread marks it dead
	 * (a new one comes only after): r and me are att's then. */
	if (att != kbq_ld_acq(&kbp.epoch))
		return;
	do
		if (d >= att)
			return; /* told already */
	while (!kbq_cas_acq(&kbp.dead, &d, att));
	kbp_log(0, "kbstackd at %s has gone (its connection hung up): this process's "
		"accelerated connections are reset (ECONNRESET), its accelerated listeners go "
		"on through the kernel, and new sockets %s until a kbstackd answers there",
		kbp_cfg.stack, kbp_cfg.strict ? "fail (KB_STRICT)" : "use the kernel");
	kbp_wake_all(r, me);
}

/* ---- fd table ---------------------------------------------------------- */

/* One above the highest fd ever given an object: scans over the table
 * (fork, close_range) stop there, not at a limit of a million. */
static int kbp_fd_top;

void kbp_fd_set(int fd, void *obj)
{
	int top;

	if (fd < 0 || fd >= kbp_nfds)
		return;
	top = kbq_ld(&kbp_fd_top);
	while (fd >= top && !__atomic_compare_exchange_n(&kbp_fd_top, &top, fd + 1, true,
							 __ATOMIC_RELEASE, __ATOMIC_RELAXED))
		;
	kbq_st_rel(&kbp_fds[fd], obj);
}

int kbp_fd_end(void)
{
	return kbq_ld_acq(&kbp_fd_top);
}

void *kbp_fd_take(int fd)
{
	if (fd < 0 || fd >= kbp_nfds)
		return NULL;
	return __atomic_exchange_n(&kbp_fds[fd], NULL, __ATOMIC_ACQ_REL);
}

int kbp_fd_max(void)
{
	return kbp_nfds;
}

/* ---- fork -------------------------------------------------------------- */

static pthread_mutex_t kbp_publish_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t kbp_drop_lock = PTHREAD_MUTEX_INITIALIZER;
static bool kbp_fork_locked;   /* the prepare handler holds kbp_publish_lock */
static int kbp_fork_ctl = -1;  /* the child's connection, opened before fork */
static int kbp_fork_proc = -1; /* ... and the child's process index */

void kbp_publish_begin(void)
{
	pthread_mutex_lock(&kbp_publish_lock);
}

void kbp_publish_end(void)
{
	pthread_mutex_unlock(&kbp_publish_lock);
}

void kbp_drop_begin(void)
{
	pthread_mutex_lock(&kbp_drop_lock);
}

void kbp_drop_end(void)
{
	pthread_mutex_unlock(&kbp_drop_lock);
}

/*
 * The child's rows get ours (kbq_abi.h, Holding), under the drop lock: a
 * bit another thread drops is either gone before the copy or dropped after
 * it, and then that thread sees the child's copy (kbstackd published the
 * child's index before answering the JOIN) and closes nothing the child
 * holds. Each slot copied is marked forked first: from now on its droppers
 * look at the other rows.
 */
static void rows_copy(uint32_t me, uint32_t child)
{
	struct kbq_region *r = kbp.r;
	uint32_t w, words = kbq_slot_words(kbp_region_slots(r));

	kbp_drop_begin();
	for (w = 0; w < words; w++) {
		uint64_t v = kbq_ld_sc(&r->held[me][w]), m = v;

		while (m) {
			kbq_st_sc(&kbq_sock_at(r, w * 64 + (uint32_t)__builtin_ctzll(m))->forked, 1);
			m &= m - 1;
		}
		kbq_or_sc(&r->held[child][w], v);
	}
	for (w = 0; w < KBQ_NWAITERS / 64; w++)
		kbq_or_sc(&r->wheld[child][w], kbq_ld_sc(&r->wheld[me][w]));
	kbp_drop_end();
}

/*
 * Before fork: open and JOIN the child's control connection now, in the
 * parent, so kbstackd never sees the context empty (a parent may exit the
 * moment fork returns), and give the child our holdings, so that whichever
 * process runs first after fork — a parent that closes what its child
 * serves at once, say — finds them there. From the copy until fork has
 * returned, no new socket or epoll instance appears in our fd table (the
 * publish lock): the child's table and row agree. Both processes hold the
 * connection until the parent closes its copy; the child then announces
 * its pid on it. If fork fails, the parent's copy was the only one: its
 * close hangs up, and kbstackd releases the child's row as for any
 * process gone (so fork needs no wrapper of ours).
 */
static void kbp_on_fork_prepare(void)
{
	struct kbq_welcome w;
	uint32_t me = kbp_me();
	int fd, memfd, rc;

	kbp_fork_proc = -1;
	if (!kbp_live() || me >= KBQ_NPROCS)
		return;
	fd = ctl_connect();
	if (fd < 0) {
		/* Perhaps it has just died: see it now, so that the child
		 * knows it too (it has no connection to see it by). */
		stack_look();
		if (kbp_live())
			kbp_log(0, "fork: cannot reach kbstackd to register the child (%s)",
				strerror(-fd));
		return;
	}
	rc = ctl_hello(fd, KBQ_HELLO_JOIN, kbp.ctx, -1, &w, &memfd);
	if (!rc && w.proc >= KBQ_NPROCS)
		rc = -EPROTO;
	if (rc) {
		kbp_log(0, "fork: kbstackd refused the child (%s)", strerror(-rc));
		libc_close(fd);
		return;
	}
	kbp_fork_ctl = fd;
	kbp_fork_proc = (int)w.proc;
	pthread_mutex_lock(&kbp_publish_lock);
	kbp_fork_locked = true;
	rows_copy(me, w.proc);
}

static void kbp_on_fork_parent(void)
{
	if (kbp_fork_ctl >= 0)
		libc_close(kbp_fork_ctl);
	kbp_fork_ctl = -1;
	if (kbp_fork_locked) {
		kbp_fork_locked = false;
		pthread_mutex_unlock(&kbp_publish_lock);
	}
}

/* The PID hello. kbstackd believes the kernel, not the message: our
 * credentials ride along (SCM_CREDENTIALS; the kernel checks they are
 * ours). 0 or -1 with errno. */
static int ctl_send_pid(int fd, const struct kbq_hello *h)
{
	union kbq_cmsg_cred u;
	struct iovec iov = { (void *)h, sizeof(*h) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };

	kbq_cmsg_put_cred(&m, &u);
	return libc_sendmsg(fd, &m, MSG_NOSIGNAL) == sizeof(*h) ? 0 : -1;
}

static void kbp_on_fork_child(void)
{
	struct kbq_hello h = { KBQ_HELLO_MAGIC, KBQ_ABI_VERSION, KBQ_HELLO_PID, 0 };
	int parent_ctl = kbp.ctl;
	bool has_row, live = kbp_live();

	pthread_mutex_init(&kbp_attach_lock, NULL);
	pthread_mutex_init(&kbp_ctl_lock, NULL);
	pthread_mutex_init(&kbp_publish_lock, NULL);
	pthread_mutex_init(&kbp_drop_lock, NULL);
	kbp_fork_locked = false;
	if (!kbp.r)
		return;
	/* The inherited control connection is the parent's: ours is the one
	 * the prepare handler opened, our rows those it filled. */
	kbp.ctl = kbp_fork_ctl;
	kbp_fork_ctl = -1;
	kbp.proc = kbp_fork_proc >= 0 ? (uint32_t)kbp_fork_proc : KBQ_NPROCS;
	has_row = kbp.proc < KBQ_NPROCS;
	kbp.pid = getpid();
	/* waiter 0's wake socket is the parent's: a child claims entries of its own. */
	kbp.w0_taken = 1;
	/* Only now: if the parent has exited, this was its connection's last copy. */
	if (parent_ctl >= 0) {
		kbp_fd_take(parent_ctl);
		libc_close(parent_ctl);
	}
	if (has_row)
		kbp_fd_set(kbp.ctl, &kbp_ctl_kind);
	kbp_epoll_fork_child(has_row);
	kbp_fork_child(has_row);
	if (!has_row) {
		if (live)
			kbp_log(0, "fork: no room for this process in kbstackd's context: "
				"its accelerated fds are the kernel sockets behind them here "
				"(as after exec), and new ones stay on the kernel");
		return;
	}
	h.arg = (uint32_t)kbp.pid;
	if (ctl_send_pid(kbp.ctl, &h))
		kbp_log(0, "fork: cannot tell kbstackd the child's pid (%s)", strerror(errno));
}

/* ---- start-up ---------------------------------------------------------- */

static void config_say(int level, const char *line)
{
	kbp_log(level, "%s", line);
}

__attribute__((constructor)) static void kbp_init(void)
{
	kbp_libc_resolve();
	if (kbp_config_read(&kbp_cfg, config_say) && kbp_cfg.strict)
		_exit(2);
	pthread_atfork(kbp_on_fork_prepare, kbp_on_fork_parent, kbp_on_fork_child);
	/* Last: threads already running (started by constructors before this
	 * one) see the settings complete once they see the table (kbp_ready). */
	kbq_st_rel(&kbp_nfds, KBP_FD_MAX); /* whatever RLIMIT_NOFILE becomes later */
}
