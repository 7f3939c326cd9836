/*
 * kbs_stats.c — create and publish kbstackd's shared counters file.
 *
 * The file is locked (flock) for as long as kbstackd lives: a second daemon
 * given the same KB_STACK fails at start instead of publishing over it.
 */
#include "kbs_stats.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static struct kbq_stats kbs_stats_private;
struct kbq_stats *kbs_stats = &kbs_stats_private;

static int kbs_stats_fd = -1;
static char kbs_stats_path[PATH_MAX];

static int mkdir_parents(const char *path)
{
	char buf[PATH_MAX];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	p = strrchr(buf, '/');
	if (!p || p == buf)
		return 0;
	*p = '\0';
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

int kbs_stats_open(const char *stack)
{
	struct kbq_stats *st;
	int fd, rc;

	snprintf(kbs_stats_path, sizeof(kbs_stats_path), "%s%s", stack, KBQ_STATS_SUFFIX);
	if ((rc = mkdir_parents(kbs_stats_path)))
		return rc;
	fd = open(kbs_stats_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		rc = errno == EWOULDBLOCK ? -EBUSY : -errno;
		goto err_close;
	}
	if (ftruncate(fd, 0) || ftruncate(fd, sizeof(*st))) {
		rc = -errno;
		goto err_close;
	}
	st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (st == MAP_FAILED) {
		rc = -errno;
		goto err_close;
	}
	*st = *kbs_stats;
	st->version = KBQ_STATS_VERSION;
	st->pid = (uint64_t)getpid();
	__atomic_store_n(&st->magic, KBQ_STATS_MAGIC, __ATOMIC_RELEASE);
	kbs_stats = st;
	kbs_stats_fd = fd;
	return 0;

err_close:
	close(fd);
	return rc;
}

void kbs_stats_state(uint32_t state)
{
	/* Pairs with the acquire load in kbstat: fields written before the
	 * state change are visible to a reader that sees the new state. */
	__atomic_store_n(&kbs_stats->state, state, __ATOMIC_RELEASE);
}

void kbs_stats_close(void)
{
	char *slash;

	if (kbs_stats_fd < 0)
		return;
	kbs_stats_private = *kbs_stats;
	munmap(kbs_stats, sizeof(*kbs_stats));
	kbs_stats = &kbs_stats_private;
	unlink(kbs_stats_path);
	close(kbs_stats_fd);
	kbs_stats_fd = -1;
	/* The directory too, if nothing else lives there (the control socket
	 * is gone by now): per-run directories must not pile up. */
	if ((slash = strrchr(kbs_stats_path, '/')) && slash != kbs_stats_path) {
		*slash = '\0';
		rmdir(kbs_stats_path);
	}
}
