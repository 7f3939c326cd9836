/*
 * kbstat — print kbstackd's counters from its shared stats file.
 *
 *   kbstat [-s PATH] [-i SECONDS [-n COUNT]]
 *
 * Reads <KB_STACK>.stats read-only; never writes to it. One "name value"
 * line per counter, then derived figures, so scripts can grep it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kbq_stats.h"

#define KBSTAT_DEFAULT_STACK "/run/kb/kbstackd.sock"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kbstat [-s PATH] [-i SECONDS [-n COUNT]]\n"
		"\n"
		"Print the counters of the kbstackd serving control socket PATH\n"
		"(default: $KB_STACK, else " KBSTAT_DEFAULT_STACK ").\n"
		"\n"
		"  -s, --stack PATH       kbstackd's control socket path (KB_STACK)\n"
		"  -i, --interval SECONDS print again every SECONDS, with per-second rates\n"
		"  -n, --count COUNT      with -i: stop after COUNT reports\n"
		"  -h, --help             this text\n"
		"\n"
		"Exit status: 0, 1 when no kbstackd runs there, 2 on bad usage.\n");
}

static const char *state_name(uint32_t s)
{
	switch (s) {
	case KBQ_STATE_STARTING: return "starting";
	case KBQ_STATE_RUNNING:  return "running";
	case KBQ_STATE_STOPPED:  return "stopped";
	default:                 return "unknown";
	}
}

static void snapshot(const struct kbq_stats *st, struct kbq_stats_counters *c)
{
	const uint64_t *src = (const uint64_t *)&st->c;
	uint64_t *dst = (uint64_t *)c;
	size_t i;

	for (i = 0; i < sizeof(*c) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

static void report(const struct kbq_stats *st, const struct kbq_stats_counters *c,
		   const struct kbq_stats_counters *prev, double secs)
{
	uint64_t now = __atomic_load_n(&st->now_tsc, __ATOMIC_RELAXED);
	uint64_t pkts = c->rx_packets + c->tx_packets;
	uint64_t loop = c->busy_cycles + c->idle_cycles + c->sleep_cycles;
	double hz = st->tsc_hz ? (double)st->tsc_hz : 1.0;

	printf("kbstackd pid %" PRIu64 " state %s dev %s addr %s mac %s core %u poll %s "
	       "uptime %.1fs\n", st->pid,
	       state_name(__atomic_load_n(&st->state, __ATOMIC_ACQUIRE)), st->dev,
	       st->addr, st->mac, st->core, st->poll ? "busy" : "adaptive",
	       now > st->start_tsc && st->start_tsc ? (double)(now - st->start_tsc) / hz : 0.0);
#define KBSTAT_LINE(name, help)                                                \
	if (prev)                                                              \
		printf("%-18s %16" PRIu64 " %12.0f/s\n", #name, c->name,       \
		       (double)(c->name - prev->name) / secs);                 \
	else                                                                   \
		printf("%-18s %16" PRIu64 "\n", #name, c->name);
	KBQ_STATS_COUNTERS(KBSTAT_LINE)
#undef KBSTAT_LINE
	printf("%-18s %16.1f\n", "busy_pct",
	       loop ? 100.0 * (double)c->busy_cycles / (double)loop : 0.0);
	printf("%-18s %16.0f\n", "cycles_per_packet",
	       pkts ? (double)c->busy_cycles / (double)pkts : 0.0);
	printf("%-18s %16" PRIu64 "\n", "tsc_hz", st->tsc_hz);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "stack", required_argument, NULL, 's' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *stack = getenv("KB_STACK");
	struct kbq_stats_counters cur, prev;
	struct kbq_stats *st;
	struct stat sb;
	double interval = 0;
	long count = -1;
	char path[512], *end;
	int ch, fd, i;

	if (!stack || !*stack)
		stack = KBSTAT_DEFAULT_STACK;
	while ((ch = getopt_long(argc, argv, "s:i:n:h", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			stack = optarg;
			break;
		case 'i':
			interval = strtod(optarg, &end);
			if (*end || !(interval > 0 && interval <= 3600)) {
				fprintf(stderr, "kbstat: -i %s: expected seconds, 0 < s <= 3600\n",
					optarg);
				return 2;
			}
			break;
		case 'n':
			count = strtol(optarg, &end, 10);
			if (*end || count < 1) {
				fprintf(stderr, "kbstat: -n %s: expected a positive count\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kbstat: %s: unexpected argument\n", argv[optind]);
		return 2;
	}

	snprintf(path, sizeof(path), "%s%s", stack, KBQ_STATS_SUFFIX);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "kbstat: no kbstackd at KB_STACK=%s (%s: %s)\n", stack, path,
			strerror(errno));
		return 1;
	}
	/* kbstackd holds an exclusive lock for its lifetime. */
	if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
		fprintf(stderr, "kbstat: no kbstackd at KB_STACK=%s (%s is left from a "
			"process that ended)\n", stack, path);
		return 1;
	}
	if (fstat(fd, &sb) || (size_t)sb.st_size < sizeof(*st)) {
		fprintf(stderr, "kbstat: %s: kbstackd is still starting\n", path);
		return 1;
	}
	st = mmap(NULL, sizeof(*st), PROT_READ, MAP_SHARED, fd, 0);
	if (st == MAP_FAILED ||
	    __atomic_load_n(&st->magic, __ATOMIC_ACQUIRE) != KBQ_STATS_MAGIC ||
	    st->version != KBQ_STATS_VERSION) {
		fprintf(stderr, "kbstat: %s: not a kbstackd stats file of version %u\n", path,
			KBQ_STATS_VERSION);
		return 1;
	}

	snapshot(st, &cur);
	report(st, &cur, NULL, 0);
	for (i = 1; interval > 0 && (count < 0 || i < count); i++) {
		prev = cur;
		usleep((useconds_t)(interval * 1e6));
		snapshot(st, &cur);
		printf("\n");
		report(st, &cur, &prev, interval);
	}
	return 0;
}
