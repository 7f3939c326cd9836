/*
 * kbpeer_httpd — the in-process peer of the benchmark: an HTTP/1.1 server
 * written directly on lwIP's raw API and DPDK in one process, the design of
 * the seed paper's DPDK + lwIP server, so that scripts/bench can show what a
 * stack on one core gives when the application lives inside it, and so what
 * kb pays for serving unmodified programs across processes.
 *
 * It is kbstackd without the contract: the same EAL start-up, port and
 * netif (stack/nic/), the same lwipopts.h, the same PMD and core, the same
 * counters file (kbstat reads its busy and idle cycles). The files of --root
 * are read into memory at start; GET /NAME answers from there (tcp_write
 * without a copy), keep-alive unless "Connection: close". It busy-polls its
 * core, as the seed's server does.
 *
 * A benchmark peer, not a server for anything else: GET only, requests up
 * to one buffer, no directories, no ranges.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, strcasestr */
#endif
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_cycles.h>

#include "lwip/init.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"

#include "kbs_config.h"
#include "kbs_hooks.h"
#include "kbs_netif.h"
#include "kbs_port.h"
#include "kbs_stats.h"

#define PEER_FILES    64
#define PEER_FILE_MAX (1024 * 1024)
#define PEER_REQ_MAX  4096
#define PEER_HDR_MAX  160

void kbs_sys_init(void); /* stack/kbs_sys.c */

struct peer_file {
	char name[64];
	char *data;
	size_t len;
};

static struct peer_file peer_files[PEER_FILES];
static unsigned peer_nfiles;
static volatile sig_atomic_t peer_stop;

/* One connection. Owned by lwIP's callbacks; freed on close or error. */
struct peer_conn {
	struct tcp_pcb *pcb;
	size_t len;                 /* request bytes held in req */
	const struct peer_file *out; /* body still to queue, from out_off */
	size_t out_off;
	bool closing;               /* close once the response is queued */
	char req[PEER_REQ_MAX];
};

static void peer_on_signal(int sig)
{
	(void)sig;
	peer_stop = 1;
}

static int peer_load(const char *root)
{
	DIR *d = opendir(root);
	struct dirent *e;
	char path[512];

	if (!d) {
		fprintf(stderr, "kbpeer_httpd: --root %s: %s\n", root, strerror(errno));
		return -errno;
	}
	while ((e = readdir(d)) && peer_nfiles < PEER_FILES) {
		struct peer_file *f = &peer_files[peer_nfiles];
		struct stat sb;
		FILE *fp;

		snprintf(path, sizeof(path), "%s/%s", root, e->d_name);
		if (strlen(e->d_name) >= sizeof(f->name) || stat(path, &sb) ||
		    !S_ISREG(sb.st_mode) || sb.st_size > PEER_FILE_MAX)
			continue;
		f->len = (size_t)sb.st_size;
		f->data = malloc(f->len ? f->len : 1);
		fp = fopen(path, "rb");
		if (!f->data || !fp || fread(f->data, 1, f->len, fp) != f->len) {
			if (fp)
				fclose(fp);
			free(f->data);
			continue;
		}
		fclose(fp);
		snprintf(f->name, sizeof(f->name), "%s", e->d_name);
		peer_nfiles++;
	}
	closedir(d);
	return 0;
}

static const struct peer_file *peer_find(const char *name, size_t n)
{
	unsigned i;

	for (i = 0; i < peer_nfiles; i++)
		if (strlen(peer_files[i].name) == n && !memcmp(peer_files[i].name, name, n))
			return &peer_files[i];
	return NULL;
}

static void peer_free(struct peer_conn *c)
{
	if (c->pcb) {
		tcp_arg(c->pcb, NULL);
		tcp_recv(c->pcb, NULL);
		tcp_sent(c->pcb, NULL);
		tcp_err(c->pcb, NULL);
	}
	free(c);
}

/* Close c's connection and free c. ERR_ABRT when lwIP had to abort it:
 * a callback must then return ERR_ABRT. */
static err_t peer_close(struct peer_conn *c)
{
	struct tcp_pcb *pcb = c->pcb;

	peer_free(c);
	if (tcp_close(pcb) == ERR_OK)
		return ERR_OK;
	tcp_abort(pcb);
	return ERR_ABRT;
}

static err_t peer_abort(struct peer_conn *c)
{
	struct tcp_pcb *pcb = c->pcb;

	peer_free(c);
	tcp_abort(pcb);
	return ERR_ABRT;
}

/* Queue what fits of the pending body; true when all of it is queued. */
static bool peer_push_body(struct peer_conn *c)
{
	while (c->out && c->out_off < c->out->len) {
		size_t n = c->out->len - c->out_off;
		u16_t room = tcp_sndbuf(c->pcb);

		if (n > room)
			n = room;
		if (n > 0xffff)
			n = 0xffff;
		/* the ring's bound, as kbstackd keeps (lwIP's is the largest ring's) */
		if (!n || tcp_sndqueuelen(c->pcb) >= 4 * kbs_tcp_wnd / TCP_MSS - 1)
			return false;
		/* No copy: the file stays in memory for the life of the process. */
		if (tcp_write(c->pcb, c->out->data + c->out_off, (u16_t)n,
			      c->out_off + n < c->out->len ? TCP_WRITE_FLAG_MORE : 0) != ERR_OK)
			return false;
		c->out_off += n;
	}
	c->out = NULL;
	return true;
}

/*
 * Answer every complete request held in c->req, in order, while the
 * previous response is fully queued. Returns ERR_OK (c may have been
 * closed when the client asked for it) or ERR_ABRT (c aborted and freed).
 */
static err_t peer_serve(struct peer_conn *c)
{
	static const char e404[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
	char hdr[PEER_HDR_MAX];
	char *end, *p, *sp;
	size_t used;
	int n;

	while (!c->out && !c->closing && (end = memmem(c->req, c->len, "\r\n\r\n", 4))) {
		const struct peer_file *f = NULL;

		used = (size_t)(end - c->req) + 4;
		*end = '\0';
		if (!strncmp(c->req, "GET /", 5)) {
			p = c->req + 5;
			sp = strchr(p, ' ');
			if (sp)
				f = peer_find(p, (size_t)(sp - p));
		}
		c->closing = strcasestr(c->req, "\r\nConnection: close") != NULL ||
			     strstr(c->req, " HTTP/1.0\r\n");
		if (f) {
			n = snprintf(hdr, sizeof(hdr), "HTTP/1.1 200 OK\r\nServer: kbpeer\r\n"
				     "Content-Type: application/octet-stream\r\n"
				     "Content-Length: %zu\r\n\r\n", f->len);
			if (tcp_write(c->pcb, hdr, (u16_t)n, TCP_WRITE_FLAG_COPY |
				      (f->len ? TCP_WRITE_FLAG_MORE : 0)) != ERR_OK)
				return peer_abort(c);
			c->out = f;
			c->out_off = 0;
			peer_push_body(c);
		} else if (tcp_write(c->pcb, e404, sizeof(e404) - 1, 0) != ERR_OK) {
			return peer_abort(c);
		}
		memmove(c->req, c->req + used, c->len - used);
		c->len -= used;
	}
	tcp_output(c->pcb);
	if (c->closing && !c->out)
		return peer_close(c);
	return ERR_OK;
}

static err_t peer_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct peer_conn *c = arg;

	(void)pcb;
	(void)len;
	if (c && c->out && peer_push_body(c))
		return peer_serve(c);
	if (c && c->out)
		tcp_output(c->pcb);
	return ERR_OK;
}

static err_t peer_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct peer_conn *c = arg;
	u16_t n;

	if (!p) { /* the client closed */
		if (c)
			return peer_close(c);
		if (tcp_close(pcb) == ERR_OK)
			return ERR_OK;
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	if (err != ERR_OK || !c) {
		pbuf_free(p);
		return ERR_OK;
	}
	if (p->tot_len > sizeof(c->req) - 1 - c->len) { /* larger than we take */
		pbuf_free(p);
		return peer_abort(c);
	}
	n = pbuf_copy_partial(p, c->req + c->len, p->tot_len, 0);
	c->len += n;
	tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	return peer_serve(c);
}

static void peer_err(void *arg, err_t err)
{
	struct peer_conn *c = arg;

	(void)err;
	if (c) {
		c->pcb = NULL; /* lwIP has freed it */
		peer_free(c);
	}
}

static err_t peer_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	struct peer_conn *c;

	(void)arg;
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	tcp_backlog_accepted(pcb);
	c = malloc(sizeof(*c));
	if (!c) {
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	c->pcb = pcb;
	c->len = 0;
	c->out = NULL;
	c->closing = false;
	tcp_nagle_disable(pcb);
	tcp_arg(pcb, c);
	tcp_recv(pcb, peer_recv);
	tcp_sent(pcb, peer_sent);
	tcp_err(pcb, peer_err);
	return ERR_OK;
}

static int peer_listen(u16_t port)
{
	struct tcp_pcb *l = tcp_new(), *pcb;

	if (!l || tcp_bind(l, IP_ADDR_ANY, port) != ERR_OK)
		return -EADDRINUSE;
	pcb = tcp_listen_with_backlog(l, TCP_DEFAULT_LISTEN_BACKLOG);
	if (!pcb)
		return -ENOMEM;
	tcp_accept(pcb, peer_accept);
	return 0;
}

/* kbstackd's loop without the contract: rx, timers, one tx flush. */
static void peer_loop(struct kbs_netif *ni)
{
	uint64_t prev = rte_rdtsc(), now;
	uint32_t last_ms = sys_now();

	kbs_stats->start_tsc = prev;
	while (!peer_stop) {
		unsigned n = kbs_netif_rx(ni);
		uint32_t ms = sys_now();

		if (ms != last_ms) {
			last_ms = ms;
			sys_check_timeouts();
			__atomic_store_n(&kbs_stats->now_tsc, prev, __ATOMIC_RELAXED);
		}
		n += kbs_netif_tx_flush(ni);
		now = rte_rdtsc();
		KBS_STAT_ADD(loops, 1);
		if (n)
			KBS_STAT_ADD(busy_cycles, now - prev);
		else
			KBS_STAT_ADD(idle_cycles, now - prev);
		prev = now;
	}
}

static void peer_usage(FILE *out)
{
	fprintf(out, "usage: kbpeer_httpd --root DIR [--port N] --dev DEV --ip A.B.C.D/P "
		"[--core N] [--stack PATH] [other kbstackd settings]\n\n"
		"Serve the files of DIR (read into memory at start) over HTTP/1.1 on lwIP\n"
		"and DPDK in this one process, busy-polling the core. --port: 8080.\n"
		"The kbstackd settings name the port, address and core; --stack names the\n"
		"counters file (kbstat -s PATH reads it). kbstackd's settings:\n\n");
	kbs_config_usage(out);
}

int main(int argc, char **argv)
{
	const char *root = NULL;
	unsigned long port = 8080;
	struct kbs_config c;
	struct kbs_port p;
	struct kbs_netif ni;
	char err[256], prefix[32];
	int i, n = 1, rc;

	/* Our two flags out; the rest are kbstackd's settings. */
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			peer_usage(stdout);
			return 0;
		}
		if (!strncmp(argv[i], "--root=", 7))
			root = argv[i] + 7;
		else if (!strcmp(argv[i], "--root") && i + 1 < argc)
			root = argv[++i];
		else if (!strncmp(argv[i], "--port=", 7))
			port = strtoul(argv[i] + 7, NULL, 10);
		else if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = strtoul(argv[++i], NULL, 10);
		else
			argv[n++] = argv[i];
	}
	argc = n;
	argv[argc] = NULL;
	rc = kbs_config_parse(&c, argc, argv, err, sizeof(err), stdout);
	if (rc > 0) /* --version */
		return 0;
	if (rc < 0 || !root || !port || port > 65535) {
		fprintf(stderr, "kbpeer_httpd: %s\n", rc < 0 ? err : "--root DIR and --port 1..65535");
		return 2;
	}
	if (peer_load(root))
		return 1;
	if ((rc = kbs_stats_open(c.stack))) {
		fprintf(stderr, "kbpeer_httpd: --stack %s: %s\n", c.stack, strerror(-rc));
		return 1;
	}
	kbs_stats_state(KBQ_STATE_STARTING);
	signal(SIGINT, peer_on_signal);
	signal(SIGTERM, peer_on_signal);
	snprintf(prefix, sizeof(prefix), "kbpeer%d", (int)getpid());
	if (kbs_eal_init(&c, prefix))
		goto err_stats;
	if (kbs_port_open(&c, &p))
		goto err_eal;
	kbs_sys_init();
	lwip_init();
	/* kbstackd's TCP settings, so that the two compare alike */
	kbs_tcp_set_cc((int)c.cc);
	kbs_tcp_set_ring(c.ring);
	if (c.tcp_pcbs)
		kbs_tcp_set_pcbs(c.tcp_pcbs);
	if ((rc = kbs_netif_init(&ni, &p, c.ip, c.netmask, c.gw)) || (rc = peer_listen((u16_t)port))) {
		fprintf(stderr, "kbpeer_httpd: lwIP set-up failed: %s\n", strerror(-rc));
		goto err_port;
	}
	kbs_stats->tsc_hz = rte_get_tsc_hz();
	kbs_stats->core = (uint32_t)c.core;
	kbs_stats->poll = KBS_POLL_BUSY;
	kbs_config_addr_str(&c, kbs_stats->addr, sizeof(kbs_stats->addr));
	snprintf(kbs_stats->dev, sizeof(kbs_stats->dev), "%s", c.dev);
	snprintf(kbs_stats->mac, sizeof(kbs_stats->mac), "%02x:%02x:%02x:%02x:%02x:%02x",
		 p.mac.addr_bytes[0], p.mac.addr_bytes[1], p.mac.addr_bytes[2],
		 p.mac.addr_bytes[3], p.mac.addr_bytes[4], p.mac.addr_bytes[5]);
	kbs_stats_state(KBQ_STATE_RUNNING);
	fprintf(stderr, "kbpeer_httpd: ready: %s on %s, core %d, port %lu, %u files\n",
		kbs_stats->addr, c.dev, c.core, port, peer_nfiles);
	peer_loop(&ni);
	kbs_stats_state(KBQ_STATE_STOPPED);
	kbs_netif_tx_flush(&ni);
	kbs_port_close(&p);
	kbs_eal_cleanup();
	kbs_stats_close();
	return 0;

err_port:
	kbs_port_close(&p);
err_eal:
	kbs_eal_cleanup();
err_stats:
	kbs_stats_state(KBQ_STATE_STOPPED);
	kbs_stats_close();
	return 1;
}
