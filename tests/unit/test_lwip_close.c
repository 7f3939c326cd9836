/*
 * test_lwip_close.c — lwIP as kb patches it, driven by hand-made segments
 * (no port).
 *
 * A close inside tcp_input that resets the connection removes
 * its PCB from tcp_active_pcbs once (stack/lwip-patches/0019). Before, the
 * close removed it and tcp_input's delayed close removed it again: 0015's
 * hash removal asserted (kbstackd aborted) and 0018's back link unlinked
 * through a stale pointer, cutting another connection off the list. A peer
 * reaches it by acknowledging data with data of its own just as the
 * application closes (kb's sent callback closes a DRAINING socket).
 *
 * Loss probes in microseconds (stack/lwip-patches/0021): a stall with two
 * full segments in flight or more is probed 2 * srtt + 2 ms into it — never
 * sooner, with lwIP's own timers never run here — TCP_PROBE_MAX times at
 * most, the wait doubling; one segment in flight is never probed (a receiver may
 * delay its ACK); a PCB freed while armed leaves the list.
 *
 * RACK (stack/lwip-patches/0024): a hole with two segments SACKed above it
 * (one duplicate ACK) is sent again by RACK, not a probe, entering fast
 * recovery; a D-SACK for that copy stops RACK on the connection.
 *
 * Every hole (stack/lwip-patches/0025): RACK sends again each lost segment
 * of a window, not only the first; a lost segment queued behind a full
 * pipe keeps the queues in order through a retransmission timeout (a
 * concatenation put it after later segments, and the connection hung);
 * thirteen holes in one window go again and the connection lives on (each
 * counted as a retransmission of the first segment, tcp_slowtmr ended it
 * at TCP_MAXRTX with a reset); data written while a short lost segment
 * waits to go again goes in a segment of its own, as does a FIN (lwIP
 * appended them to that segment, over the sequence numbers of segments
 * after it); the ACK of a segment sent twice moves RACK's clock no more
 * (taken for the copy's, it made every segment in flight look lost).
 *
 * BBR (stack/lwip-patches/0026): an ACK's delivery rate is no more than
 * the bytes it delivered over the time they took; starting up, cwnd grows
 * by what is delivered, and once the pipe is full it is 2 x bandwidth x
 * delay plus three segments and the ACK aggregation seen; in a recovery the first ACK sets cwnd to
 * what is in flight and what it delivered, and once the holes are
 * repaired cwnd is back where it was (Reno's ends at 0.7 of it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "lwip/inet_chksum.h"
#include "lwip/init.h"
#include "lwip/ip4.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/priv/tcp_priv.h"
#include "lwip/prot/ip4.h"
#include "lwip/prot/tcp.h"
#include "lwip/tcp.h"

#include "kbs_hooks.h"
#include "kbs_stats.h"
#include "../lib/kbt_tcp_frame.h"

void kbs_sys_init(void); /* kbs_sys.c: sys_now, random numbers, ISNs */

#define STACK_IP 0xc6120001u /* 198.18.0.1 */
#define PEER_IP  0xc6120002u

static struct netif nif;
static struct tcp_pcb *acc[32];
static int nacc, close_in_sent, closed_rc = 99;
static u32_t sent_seq[64];   /* sequence numbers of the data segments sent */
static u32_t sent_us[64];    /* ... and when (kbs_now_us) */
static int nsent;
static int nacks;            /* segments sent without data */
static u32_t last_ack;       /* the acknowledgment number of the last one */
static u32_t last_sack[2];   /* ... and its first SACK block, or 0, 0 */
static int nif_down;          /* the netif refuses to send */

static err_t nif_out(struct netif *n, struct pbuf *p, const ip4_addr_t *dst)
{
	const struct tcp_hdr *th = (const void *)((const u8_t *)p->payload + IP_HLEN);

	(void)n, (void)dst;
	if (nif_down)
		return ERR_IF;
	if (p->tot_len > IP_HLEN + TCPH_HDRLEN_BYTES(th) && nsent < 64) { /* data: noted */
		sent_us[nsent] = kbs_now_us();
		sent_seq[nsent++] = lwip_ntohl(th->seqno);
	} else if (p->tot_len == IP_HLEN + TCPH_HDRLEN_BYTES(th)) {
		const u8_t *o = (const u8_t *)(th + 1), *end = (const u8_t *)th + TCPH_HDRLEN_BYTES(th);

		nacks++;
		last_ack = lwip_ntohl(th->ackno);
		last_sack[0] = last_sack[1] = 0;
		while (o < end && *o != 0) { /* options: NOPs, then SACK */
			if (*o == 1) {
				o++;
			} else if (o + 1 < end && o[1] >= 2 && o + o[1] <= end) {
				if (*o == 5 && o[1] >= 10) {
					memcpy(last_sack, o + 2, 8);
					last_sack[0] = lwip_ntohl(last_sack[0]);
					last_sack[1] = lwip_ntohl(last_sack[1]);
				}
				o += o[1];
			} else {
				break;
			}
		}
	}
	return ERR_OK;
}

static err_t nif_init(struct netif *n)
{
	n->output = nif_out;
	n->mtu = 1500;
	return ERR_OK;
}

/* A segment from the peer's port sport to port 80, with dlen bytes. */
/* A segment from the peer's port sport to port 80, with TCP options OPT
 * (OLEN bytes, a multiple of 4) and dlen bytes of data. */
static void seg_opt(u16_t sport, u32_t seq, u32_t ack, u8_t flags, const u8_t *opt, int olen, int dlen)
{
	struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)(IP_HLEN + TCP_HLEN + olen + dlen), PBUF_RAM);

	kbt_tcp_frame(p->payload, PEER_IP, sport, STACK_IP, 80, seq, ack, flags, opt, olen, dlen);
	ip4_input(p, &nif);
}

static void seg(u16_t sport, u32_t seq, u32_t ack, u8_t flags, int dlen)
{
	seg_opt(sport, seq, ack, flags, NULL, 0, dlen);
}

/* An ACK for ACK from port SPORT with one SACK block [LEFT, RIGHT). */
static void sack(u16_t sport, u32_t ack, u32_t left, u32_t right)
{
	u8_t o[12] = { 1, 1, 5, 10 };

	left = lwip_htonl(left), right = lwip_htonl(right);
	memcpy(o + 4, &left, 4);
	memcpy(o + 8, &right, 4);
	seg_opt(sport, 1001, ack, TCP_ACK, o, sizeof(o), 0);
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	(void)arg, (void)len;
	if (close_in_sent) {
		close_in_sent = 0;
		closed_rc = tcp_close(pcb); /* data arrived unread: RST */
	}
	return ERR_OK;
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	(void)arg, (void)err;
	if (p) {
		tcp_recved(pcb, p->tot_len);
		pbuf_free(p);
	}
	return ERR_OK;
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg, (void)err;
	assert_true(nacc < 32);
	acc[nacc++] = pcb;
	tcp_sent(pcb, on_sent);
	tcp_recv(pcb, on_recv);
	return ERR_OK;
}

static int count(const struct tcp_pcb *p)
{
	int n = 0;

	for (; p; p = p->next)
		n++;
	return n;
}

static int setup(void **state)
{
	ip4_addr_t ip, mask, gw;
	struct tcp_pcb *l;

	(void)state;
	kbs_sys_init();
	lwip_init();
	ip4_addr_set_u32(&ip, lwip_htonl(STACK_IP));
	ip4_addr_set_u32(&mask, lwip_htonl(0xffff0000u));
	ip4_addr_set_zero(&gw);
	assert_non_null(netif_add(&nif, &ip, &mask, &gw, NULL, nif_init, ip4_input));
	netif_set_default(&nif);
	netif_set_up(&nif);
	netif_set_link_up(&nif);
	l = tcp_new();
	assert_int_equal(tcp_bind(l, IP4_ADDR_ANY, 80), ERR_OK);
	l = tcp_listen(l);
	tcp_accept(l, on_accept);
	tcp_ticks = 100; /* lwIP times no RTT at tick 0 (rttest 0: none) */
	return 0;
}

static void test_close_in_input_removes_once(void **state)
{
	(void)state;
	/* connection A (peer port 1111), then B (2222): B heads the list */
	seg(1111, 5000, 0, TCP_SYN, 0);
	seg(1111, 5001, tcp_active_pcbs->snd_nxt, TCP_ACK, 0);
	seg(2222, 7000, 0, TCP_SYN, 0);
	seg(2222, 7001, tcp_active_pcbs->snd_nxt, TCP_ACK, 0);
	assert_int_equal(nacc, 2);
	assert_int_equal(count(tcp_active_pcbs), 2);
	assert_int_equal(tcp_write(acc[1], "hello world", 11, TCP_WRITE_FLAG_COPY), ERR_OK);
	assert_int_equal(tcp_output(acc[1]), ERR_OK);
	/* the peer acknowledges B's 11 bytes with 10 of its own; B's
	 * application closes in the sent callback, before they are credited */
	close_in_sent = 1;
	seg(2222, 7001, acc[1]->snd_nxt, TCP_ACK | TCP_PSH, 10);
	assert_int_equal(closed_rc, ERR_OK);
	/* B is gone, A is still on the list and still found */
	assert_int_equal(count(tcp_active_pcbs), 1);
	assert_ptr_equal(tcp_active_pcbs, acc[0]);
	assert_ptr_equal(acc[0]->list_pprev, &tcp_active_pcbs);
}

/* A connection from the peer's port PORT, accepted; its PCB. */
/* A connection from the peer's port PORT, accepted (SACK permitted if
 * SACK_OK); its PCB. */
static struct tcp_pcb *connect_opt(u16_t port, int sack_ok)
{
	static const u8_t sack_perm[4] = { 1, 1, 4, 2 };
	int n = nacc;

	seg_opt(port, 1000, 0, TCP_SYN, sack_perm, sack_ok ? 4 : 0, 0);
	seg(port, 1001, tcp_active_pcbs->snd_nxt, TCP_ACK, 0);
	assert_int_equal(nacc, n + 1);
	return acc[n];
}

static struct tcp_pcb *connect_from(u16_t port)
{
	return connect_opt(port, 0);
}

/* Queue and send LEN bytes on PCB; forget what was sent before. */
static void send_data(struct tcp_pcb *pcb, int len)
{
	static const char buf[40 * 1460];

	assert_int_equal(tcp_write(pcb, buf, (u16_t)len, 0), ERR_OK);
	nsent = 0;
	assert_int_equal(tcp_output(pcb), ERR_OK);
}

/* Send LEN bytes on PCB; the peer (port PORT) acknowledges them all. */
static void exchange(struct tcp_pcb *pcb, u16_t port, int len)
{
	send_data(pcb, len);
	seg(port, 1001, pcb->snd_nxt, TCP_ACK, 0);
}

static int on_probe_list(const struct tcp_pcb *pcb)
{
	const struct tcp_pcb *p;

	for (p = tcp_probe_pcbs; p; p = p->probe_next)
		if (p == pcb)
			return 1;
	return 0;
}

/* Microseconds since *T0 that this test ran, for the waits below: a gap of
 * more than 10 ms between two calls is time the test was scheduled out (a
 * loaded machine stopped it for 10 s once, and the wait ran out before the
 * overdue probe was looked at), not the stack's, and does not count. A
 * stack that sends nothing while the test runs still uses the time up. */
static u32_t ran_us(u32_t *t0, u32_t *prev)
{
	u32_t now = kbs_now_us();

	if (now - *prev > 10000u)
		*t0 += now - *prev;
	*prev = now;
	return now - *t0;
}

/* Run tcp_probe_tmr (and no other timer) for MS milliseconds, or until
 * no PCB is on the probe list; the
 * microseconds from START to each retransmission of the segment at HEAD
 * (when the netif sent it: a test scheduled out after a send does not
 * shorten the next wait) go to AT (up to 8), and their count is
 * returned. */
static int probe_for(u32_t ms, u32_t head, u32_t start, u32_t *at)
{
	u32_t t0 = kbs_now_us(), prev = t0;
	int seen = 0, n = nsent;

	while (ran_us(&t0, &prev) < ms * 1000u && tcp_probe_pcbs != NULL) {
		tcp_probe_tmr();
		for (; n < nsent; n++)
			if (sent_seq[n] == head && seen < 8)
				at[seen++] = sent_us[n] - start;
	}
	return seen;
}

static void test_probe_stall(void **state)
{
	struct tcp_pcb *pcb = connect_from(3333);
	u64_t probes = kbs_stats->c.tcp_loss_probes;
	u32_t at[8], head, start, pto;
	int i, n;

	(void)state;
	/* a first exchange, acknowledged at once: an RTT sample of a few us */
	send_data(pcb, 4 * pcb->mss);
	assert_int_equal(nsent, 4);
	seg(3333, 1001, pcb->snd_nxt, TCP_ACK, 0);
	assert_true(pcb->srtt_us > 0 && pcb->srtt_us < 100000);
	assert_false(on_probe_list(pcb)); /* all acknowledged: off the list */
	/* four segments, no answer: probed a probe timeout (2 * srtt + 2 ms;
	 * srtt from the handshake and this exchange, slow under a sanitizer)
	 * into the stall, TCP_PROBE_MAX times, the timeout doubling */
	pto = 2 * pcb->srtt_us + 2000;
	head = pcb->snd_nxt;
	start = kbs_now_us();
	send_data(pcb, 4 * pcb->mss);
	assert_true(on_probe_list(pcb));
	/* (a second more than the waits: a loaded machine schedules this out) */
	n = probe_for((2u << TCP_PROBE_MAX) * pto / 1000 + 1000, head, start, at);
	assert_int_equal(n, TCP_PROBE_MAX);
	assert_int_equal(kbs_stats->c.tcp_loss_probes - probes, TCP_PROBE_MAX);
	for (i = 0; i < n; i++)
		assert_true(at[i] - (i ? at[i - 1] : 0) >= pto << i);
	assert_false(on_probe_list(pcb)); /* given up: the RTO's turn */
	/* the peer acknowledges all: the next stall is probed again */
	seg(3333, 1001, pcb->snd_nxt, TCP_ACK, 0);
	assert_int_equal(pcb->probed, 0);
	assert_false(on_probe_list(pcb));
}

static void test_probe_not_one_segment(void **state)
{
	struct tcp_pcb *pcb = connect_from(4444);
	u64_t probes = kbs_stats->c.tcp_loss_probes;
	u32_t at[8];

	(void)state;
	/* one segment unanswered: a delayed ACK, maybe; not probed */
	send_data(pcb, 100);
	assert_int_equal(nsent, 1);
	assert_true(on_probe_list(pcb));
	assert_int_equal(probe_for((2 * pcb->srtt_us + 2000) * 2 / 1000 + 50, pcb->lastack,
				   kbs_now_us(), at), 0);
	assert_int_equal(kbs_stats->c.tcp_loss_probes, probes);
	assert_false(on_probe_list(pcb)); /* looked at once, left the list */
	/* freed while armed: off the list (ASan would see a use after free) */
	send_data(pcb, 4 * pcb->mss);
	assert_true(on_probe_list(pcb));
	tcp_abort(pcb);
	assert_false(on_probe_list(pcb));
	assert_int_equal(probe_for(20, 0, kbs_now_us(), at), 0);
}

/* After each probe test, pass or fail: no connection left to probe. */
static int abort_all(void **state)
{
	(void)state;
	nif_down = 0;
	while (tcp_active_pcbs)
		tcp_abort(tcp_active_pcbs);
	return 0;
}

/* Data segments sent since send_data whose sequence number is SEQ. */
static int sent_of(u32_t seq)
{
	int i, n = 0;

	for (i = 0; i < nsent; i++)
		n += sent_seq[i] == seq;
	return n;
}

/* Run tcp_probe_tmr until the segment at SEQ was sent N times since
 * send_data (or 1 s passed). */
static void rack_until(u32_t seq, int n)
{
	u32_t t0 = kbs_now_us(), prev = t0;

	while (sent_of(seq) < n && ran_us(&t0, &prev) < 1000000u)
		tcp_probe_tmr();
}

/* Run tcp_slowtmr until the segment at SEQ was sent twice since
 * send_data (a retransmission timeout), at most 500 ticks. */
static void rto_until(u32_t seq)
{
	for (int i = 0; i < 500 && sent_of(seq) < 2; i++)
		tcp_slowtmr();
}

/* Wait US microseconds. */
static void spin_us(u32_t us)
{
	u32_t t0 = kbs_now_us();

	while (kbs_now_us() - t0 < us)
		;
}

/* Five segments on PCB (peer port PORT); the peer SACKs the second and
 * third; tcp_probe_tmr runs until the first went again (or 1 s). Its
 * sequence number. */
static u32_t stall_sacked(struct tcp_pcb *pcb, u16_t port)
{
	u32_t head = pcb->snd_nxt;

	send_data(pcb, 5 * pcb->mss);
	sack(port, head, head + pcb->mss, head + 3 * pcb->mss);
	rack_until(head, 2);
	return head;
}

/* Recoveries found by duplicate ACKs on PCB (peer port PORT), one after
 * the other, until RACK is on again (at most 1000): how many. */
static int dupack_recoveries(struct tcp_pcb *pcb, u16_t port)
{
	int n = 0;

	while (pcb->reo_off && n < 1000) {
		u32_t m = pcb->mss, head = pcb->snd_nxt;

		send_data(pcb, 6 * m);
		for (u32_t k = 2; k <= 5 && !(pcb->flags & TF_INFR); k++)
			sack(port, head, head + m, head + k * m);
		assert_true(pcb->flags & TF_INFR);
		assert_int_equal(sent_of(head), 2);
		seg(port, 1001, pcb->snd_nxt, TCP_ACK, 0);
		n++;
	}
	return n;
}

static void test_rack(void **state)
{
	struct tcp_pcb *pcb = connect_opt(5555, 1);
	u64_t probes, recov = kbs_stats->c.tcp_fast_recovery;
	u32_t head, min_rtt, srtt;

	(void)state;
	assert_true(pcb->flags & TF_SACK);
	exchange(pcb, 5555, 5 * pcb->mss); /* a first exchange: round trips measured */
	/* five segments; the peer SACKs the second and third: one duplicate
	 * ACK, no third to come. RACK sends the first again once a quarter of
	 * the least round trip has passed since the SACKed ones were sent
	 * after it — long before a loss probe (2 * srtt + 2 ms) */
	probes = kbs_stats->c.tcp_loss_probes;
	head = stall_sacked(pcb, 5555);
	assert_int_equal(sent_of(head), 2);
	assert_int_equal(kbs_stats->c.tcp_loss_probes, probes); /* RACK, not a probe */
	assert_int_equal(kbs_stats->c.tcp_fast_recovery, recov + 1);
	assert_true(pcb->flags & TF_INFR);
	/* the original was only late: the peer acknowledges it and reports
	 * the copy as a duplicate (D-SACK), while more is in flight: the
	 * reordering window widens by a step (patch 0029; 0024 stopped RACK
	 * here for good), once in that round trip */
	seg(5555, 1001, pcb->snd_nxt, TCP_ACK, 0);
	assert_int_equal(pcb->reo_steps, 0);
	send_data(pcb, 2 * pcb->mss);
	sack(5555, pcb->lastack, head, head + pcb->mss);
	assert_int_equal(pcb->reo_steps, 1);
	assert_int_equal(pcb->reo_persist, 16);
	sack(5555, pcb->lastack, head, head + pcb->mss);
	assert_int_equal(pcb->reo_steps, 1);
	seg(5555, 1001, pcb->snd_nxt, TCP_ACK, 0);
	/* the next stall: RACK still, waiting two quarters of the least
	 * round trip past the delivered segment's round trip (a least round
	 * trip of 400 ms here, so that the wait is still on when looked at
	 * on a loaded machine); then all is acknowledged */
	min_rtt = pcb->min_rtt_us;
	srtt = pcb->srtt_us;
	pcb->min_rtt_us = 400000;
	pcb->srtt_us = 1000000;
	head = pcb->snd_nxt;
	send_data(pcb, 5 * pcb->mss);
	sack(5555, head, head + pcb->mss, head + 3 * pcb->mss);
	assert_int_equal(pcb->rack_due_us, pcb->unacked->xmit_us + pcb->rack_rtt_us + 200000);
	pcb->srtt_us = 150000; /* ... and at most the smoothed round trip */
	tcp_rack_timeout(pcb);
	assert_int_equal(pcb->rack_due_us, pcb->unacked->xmit_us + pcb->rack_rtt_us + 150000);
	pcb->min_rtt_us = min_rtt; /* the test's own round trips again */
	pcb->srtt_us = srtt;
	seg(5555, 1001, pcb->snd_nxt, TCP_ACK, 0);
	/* the step stays for 16 recoveries without a D-SACK
	 * (test_rack_recovery_ends_once counts them), then it is gone (a
	 * stall the loss probe repairs first is no recovery) */
	assert_int_equal(pcb->reo_persist, 16);
	for (int i = 0; pcb->reo_persist > 0 && i < 100; i++) {
		assert_int_equal(pcb->reo_steps, 1);
		head = stall_sacked(pcb, 5555);
		assert_int_equal(sent_of(head), 2);
		seg(5555, 1001, pcb->snd_nxt, TCP_ACK, 0);
		assert_false(pcb->flags & TF_INFR);
	}
	assert_int_equal(pcb->reo_steps, 0);
	/* a D-SACK with the window at the smoothed round trip already: the
	 * path reorders by far more than its least round trip, RACK stops;
	 * three duplicate ACKs find a hole then; after 255 recoveries without
	 * a D-SACK RACK is on again */
	head = stall_sacked(pcb, 5555);
	assert_int_equal(sent_of(head), 2);
	pcb->rack_rexmit_seq = head; /* (RACK's or the probe's: see below) */
	pcb->rack_rexmit_valid = 1;
	pcb->min_rtt_us = 4000; /* a window of 1 ms, the smoothed round trip */
	pcb->srtt_us = 1000;
	sack(5555, pcb->snd_nxt, head, head + pcb->mss);
	assert_int_equal(pcb->reo_off, 1);
	probes = kbs_stats->c.tcp_loss_probes;
	stall_sacked(pcb, 5555);
	assert_int_equal(kbs_stats->c.tcp_loss_probes, probes + 1); /* a probe, not RACK */
	seg(5555, 1001, pcb->snd_nxt, TCP_ACK, 0);
	assert_int_equal(dupack_recoveries(pcb, 5555), 255);
	assert_int_equal(pcb->reo_steps, 0);
	/* four round trips with a D-SACK make four steps; a fifth turns RACK
	 * off however far the smoothed round trip is. (The head is sent again
	 * by RACK or, where it left in the same microsecond as the segments
	 * SACKed after it, by the probe; the D-SACK is then taken for RACK's,
	 * as the step logic is what is tested here.) */
	for (int i = 1; i <= 5; i++) {
		pcb->srtt_us = 1000; /* a probe soon, if RACK cannot */
		head = stall_sacked(pcb, 5555);
		assert_int_equal(sent_of(head), 2);
		pcb->rack_rexmit_seq = head;
		pcb->rack_rexmit_valid = 1;
		pcb->min_rtt_us = 4000; /* a window of 1 ms a step, far below srtt */
		pcb->srtt_us = 1000000;
		sack(5555, pcb->snd_nxt, head, head + pcb->mss);
		assert_int_equal(pcb->reo_steps, i < 5 ? i : 4);
		assert_int_equal(pcb->reo_off, i == 5);
	}
}

/* A burst leaves in one microsecond: a hole sent in the same microsecond
 * as the segments SACKed after it is found lost by RACK, which orders
 * such sends by sequence (patch 0030), not left to the loss probe. */
static void test_rack_same_microsecond(void **state)
{
	struct tcp_pcb *pcb = connect_opt(5757, 1);
	u64_t probes = kbs_stats->c.tcp_loss_probes;
	u32_t head, m = pcb->mss;
	struct tcp_seg *q;

	(void)state;
	exchange(pcb, 5757, 5 * m);
	head = pcb->snd_nxt;
	send_data(pcb, 5 * m);
	for (q = pcb->unacked; q; q = q->next) /* all in one microsecond */
		q->xmit_us = pcb->unacked->xmit_us;
	pcb->srtt_us = 1000000; /* the probe 2 s away */
	sack(5757, head, head + m, head + 3 * m);
	rack_until(head, 2);
	assert_int_equal(sent_of(head), 2);
	assert_int_equal(kbs_stats->c.tcp_loss_probes, probes); /* RACK, not a probe */
	assert_true(pcb->flags & TF_INFR);
	assert_int_equal(sent_of(head + 3 * m), 1); /* sent after the SACKed: not lost */
	seg(5757, 1001, pcb->snd_nxt, TCP_ACK, 0);
}

/* Resends of the first unacknowledged segment that no timeout made (fast
 * retransmits, probes, RACK) do not count toward giving the connection up
 * (patch 0031): 13 of them before an ACK moves, and tcp_slowtmr keeps it;
 * the timeouts still count. */
static void test_resends_not_timeouts(void **state)
{
	struct tcp_pcb *pcb = connect_opt(5858, 1);
	int i, n = count(tcp_active_pcbs);

	(void)state;
	send_data(pcb, 5 * pcb->mss);
	for (i = 0; i < TCP_MAXRTX + 1; i++) {
		assert_int_equal(tcp_rexmit(pcb), ERR_OK);
		assert_int_equal(tcp_output(pcb), ERR_OK);
	}
	assert_int_equal(sent_of(pcb->lastack), TCP_MAXRTX + 2);
	assert_int_equal(pcb->nrtx, 0);
	tcp_slowtmr();
	assert_int_equal(count(tcp_active_pcbs), n);
	nsent = 0; /* a timeout now: counted */
	for (i = 0; i < 500 && sent_of(pcb->lastack) < 1; i++)
		tcp_slowtmr();
	assert_int_equal(pcb->nrtx, 1);
	seg(5858, 1001, pcb->snd_nxt, TCP_ACK, 0);
	assert_int_equal(pcb->nrtx, 0);
}

/* The end of a recovery after a timeout counts toward the reordering
 * window's decay (patch 0029), and a fast recovery begun inside it ends
 * with it: one recovery, counted once. */
static void test_rack_recovery_ends_once(void **state)
{
	struct tcp_pcb *pcb = connect_opt(5656, 1);
	u32_t head, m = pcb->mss;

	(void)state;
	exchange(pcb, 5656, 5 * m);
	pcb->reo_steps = 1;
	pcb->reo_persist = 5;
	/* the timeout sends the head again; acknowledged, the recovery ends */
	head = pcb->snd_nxt;
	send_data(pcb, 5 * m);
	rto_until(head);
	assert_int_equal(sent_of(head), 2);
	assert_true(pcb->flags & TF_RTO);
	seg(5656, 1001, pcb->snd_nxt, TCP_ACK, 0);
	assert_false(pcb->flags & (TF_RTO | TF_INFR));
	assert_int_equal(pcb->reo_persist, 4);
	/* a timeout, then duplicate ACKs: a fast recovery inside it */
	head = pcb->snd_nxt;
	send_data(pcb, 5 * m);
	rto_until(head);
	assert_true(pcb->flags & TF_RTO);
	for (u32_t k = 2; k <= 4; k++)
		sack(5656, head, head + m, head + k * m);
	assert_true((pcb->flags & (TF_RTO | TF_INFR)) == (TF_RTO | TF_INFR));
	seg(5656, 1001, pcb->snd_nxt, TCP_ACK, 0);
	assert_false(pcb->flags & (TF_RTO | TF_INFR));
	assert_int_equal(pcb->reo_persist, 3);
	assert_int_equal(pcb->reo_steps, 1);
}

/* PCB's queue Q is in sequence order; its segment count. */
static int queue_sorted(const struct tcp_seg *q)
{
	int n = 0;

	for (; q; q = q->next, n++)
		if (q->next)
			assert_true(TCP_SEQ_LT(lwip_ntohl(q->tcphdr->seqno), lwip_ntohl(q->next->tcphdr->seqno)));
	return n;
}

/* Eight segments from a first exchange's PCB on port PORT; the peer SACKs
 * the second and the fifth to eighth: the first and the third to fourth
 * are holes. Their first sequence number. */
static u32_t eight_with_holes(struct tcp_pcb *pcb, u16_t port)
{
	u32_t s = pcb->snd_nxt, m = pcb->mss;

	send_data(pcb, 8 * m);
	assert_int_equal(nsent, 8);
	sack(port, s, s + m, s + 2 * m);
	sack(port, s, s + 4 * m, s + 8 * m);
	return s;
}

static void test_rack_every_hole(void **state)
{
	struct tcp_pcb *pcb = connect_opt(6666, 1);
	u64_t recov = kbs_stats->c.tcp_fast_recovery;
	u32_t s, m = pcb->mss;

	(void)state;
	exchange(pcb, 6666, 8 * m);
	s = eight_with_holes(pcb, 6666);
	/* all three holes go again, in one recovery (a loss probe may send
	 * the first once more on a slow machine) */
	rack_until(s + 3 * m, 2);
	rack_until(s + 2 * m, 2);
	assert_true(sent_of(s) >= 2);
	assert_int_equal(sent_of(s + 2 * m), 2);
	assert_int_equal(sent_of(s + 3 * m), 2);
	assert_int_equal(sent_of(s + m) + sent_of(s + 4 * m) + sent_of(s + 7 * m), 3); /* SACKed: once */
	assert_int_equal(kbs_stats->c.tcp_fast_recovery, recov + 1);
	assert_int_equal(queue_sorted(pcb->unacked), 8);
	assert_null(pcb->unsent);
	seg(6666, 1001, pcb->snd_nxt, TCP_ACK, 0);
	assert_null(pcb->unacked);
}

static void test_rack_queued_then_rto(void **state)
{
	struct tcp_pcb *pcb = connect_opt(7777, 1);
	u32_t s, m = pcb->mss;

	(void)state;
	exchange(pcb, 7777, 8 * m);
	/* a window of two segments: the first hole goes (the first
	 * unacknowledged segment goes whatever cwnd says) and the second (the
	 * pipe: eight sent, five SACKed, two queued), the third waits */
	s = pcb->snd_nxt;
	send_data(pcb, 8 * m);
	pcb->cwnd = 2 * m;
	sack(7777, s, s + m, s + 2 * m);
	sack(7777, s, s + 4 * m, s + 8 * m);
	rack_until(s + 2 * m, 2);
	assert_true(sent_of(s) >= 2);
	assert_int_equal(sent_of(s + 2 * m), 2);
	assert_int_equal(sent_of(s + 3 * m), 1);
	assert_non_null(pcb->unsent);
	assert_int_equal(lwip_ntohl(pcb->unsent->tcphdr->seqno), s + 3 * m);
	/* a timeout sends everything again, in order: the queues merge */
	tcp_rexmit_rto(pcb);
	assert_int_equal(queue_sorted(pcb->unacked) + queue_sorted(pcb->unsent), 8);
	/* the peer acknowledges, segment by segment: each goes, none is left */
	while (pcb->unacked || pcb->unsent) {
		u32_t before = pcb->lastack;

		seg(7777, 1001, pcb->unacked ? lwip_ntohl(pcb->unacked->tcphdr->seqno) + pcb->unacked->len
						 : pcb->snd_nxt, TCP_ACK, 0);
		assert_true(TCP_SEQ_GT(pcb->lastack, before));
	}
	assert_int_equal(pcb->lastack, s + 8 * m);
}

static void test_rack_many_holes(void **state)
{
	struct tcp_pcb *pcb = connect_opt(8888, 1);
	u32_t s, m = pcb->mss;
	int i;

	(void)state;
	exchange(pcb, 8888, 8 * m);
	/* 26 segments; the peer SACKs every second one: 13 holes */
	pcb->cwnd = 40 * m;
	s = pcb->snd_nxt;
	send_data(pcb, 26 * m);
	assert_int_equal(nsent, 26);
	for (i = 1; i < 26; i += 2)
		sack(8888, s, s + i * m, s + (i + 1) * m);
	for (i = 0; i < 26; i += 2)
		rack_until(s + i * m, 2);
	for (i = 0; i < 26; i++) /* holes again (the first maybe probed too), SACKed once */
		if (i % 2)
			assert_int_equal(sent_of(s + i * m), 1);
		else
			assert_true(sent_of(s + i * m) >= 2);
	assert_true(pcb->nrtx < TCP_MAXRTX);
	tcp_slowtmr();
	assert_int_equal(count(tcp_active_pcbs), 1);
	seg(8888, 1001, pcb->snd_nxt, TCP_ACK, 0);
	assert_null(pcb->unacked);
}

static void test_rexmit_queued_keeps_bytes(void **state)
{
	struct tcp_pcb *pcb = connect_opt(9191, 1);
	u32_t a, b, m = pcb->mss, lbb, t0, prev;
	struct tcp_seg *q;

	(void)state;
	tcp_nagle_disable(pcb); /* B goes at once, short */
	exchange(pcb, 9191, 8 * m);
	/* A (full), B (100 bytes), then C-E; the peer SACKs C-E: A and B
	 * are holes, queued to go again; the netif refuses them (as a full
	 * pipe would hold B): B is last on unsent */
	a = pcb->snd_nxt;
	send_data(pcb, m);
	b = pcb->snd_nxt;
	send_data(pcb, 100);
	send_data(pcb, 3 * m);
	assert_int_equal(nsent, 3);
	assert_int_equal(pcb->snd_nxt, b + 100 + 3 * m);
	nif_down = 1;
	sack(9191, a, b + 100, b + 100 + 3 * m);
	t0 = prev = kbs_now_us();
	while (!(pcb->unsent && pcb->unsent->next) && ran_us(&t0, &prev) < 1000000u)
		tcp_probe_tmr();
	assert_non_null(q = pcb->unsent);
	assert_non_null(q = q->next);
	assert_int_equal(lwip_ntohl(q->tcphdr->seqno), b);
	assert_null(q->next);
	/* the application writes a byte and closes: B keeps its 100 bytes and
	 * no FIN; the byte and FIN come after E */
	lbb = pcb->snd_lbb;
	assert_int_equal(tcp_write(pcb, "x", 1, TCP_WRITE_FLAG_COPY), ERR_OK);
	assert_int_equal(tcp_shutdown(pcb, 0, 1), ERR_OK);
	assert_int_equal(q->len, 100);
	assert_int_equal(TCPH_FLAGS(q->tcphdr) & TCP_FIN, 0);
	assert_non_null(q->next);
	assert_int_equal(lwip_ntohl(q->next->tcphdr->seqno), lbb);
	queue_sorted(pcb->unsent);
	/* all goes, the peer acknowledges all */
	nif_down = 0;
	tcp_output(pcb);
	seg(9191, 1001, pcb->snd_nxt, TCP_ACK, 0);
	assert_null(pcb->unsent);
	assert_null(pcb->unacked);
	assert_int_equal(pcb->lastack, lbb + 2); /* the byte and FIN */
}

static void test_rack_ack_of_copy(void **state)
{
	struct tcp_pcb *pcb = connect_opt(9292, 1);
	u32_t s, m = pcb->mss, t0;
	int i;

	(void)state;
	exchange(pcb, 9292, 8 * m);
	/* five segments; the peer SACKs the second and third: RACK sends
	 * the first again */
	s = stall_sacked(pcb, 9292);
	assert_int_equal(sent_of(s), 2);
	/* the original was late: an ACK for the first three, a while after
	 * the copy went (longer than the least round trip) */
	spin_us(2 * pcb->min_rtt_us + 50);
	seg(9292, 1001, s + 3 * m, TCP_ACK, 0);
	/* the last two, sent with the first three, are not lost for it */
	t0 = kbs_now_us();
	while (kbs_now_us() - t0 < 1000u)
		tcp_probe_tmr();
	for (i = 3; i < 5; i++)
		assert_int_equal(sent_of(s + i * m), 1);
}

/* One round trip of PCB (peer port PORT): as many full segments as cwnd
 * takes (at most 40), acknowledged all at once a millisecond later. */
static void bbr_round(struct tcp_pcb *pcb, u16_t port)
{
	int n = LWIP_MIN((int)(pcb->cwnd / pcb->mss), 40);

	send_data(pcb, n * pcb->mss);
	spin_us(1000);
	seg(port, 1001, pcb->snd_nxt, TCP_ACK, 0);
	assert_null(pcb->unacked);
}

static u32_t bw_of(const struct tcp_pcb *pcb)
{
	u32_t bw = 0;
	int i;

	for (i = 0; i < TCP_BBR_ROUNDS; i++)
		bw = LWIP_MAX(bw, pcb->bbr_bw[i]);
	return bw;
}

/* Set PCB's model: bottleneck rate BW bytes per ms, least round trip RTT
 * us. A rate this high is above any sample here (at most 40 segments in
 * a millisecond), and no round trip is shorter than 1 us: the model then
 * stays as set. */
static void bbr_model(struct tcp_pcb *pcb, u32_t bw, u32_t rtt)
{
	int i;

	for (i = 0; i < TCP_BBR_ROUNDS; i++)
		pcb->bbr_bw[i] = bw;
	pcb->min_rtt_us = rtt;
	pcb->bbr_extra_acked[0] = pcb->bbr_extra_acked[1] = 0;
	pcb->bbr_epoch_acked = 0;
}

static void test_bbr_rate_and_startup(void **state)
{
	struct tcp_pcb *pcb = connect_opt(9393, 1);
	u32_t m = pcb->mss, c, d0;

	(void)state;
	pcb->cc = TCP_CC_BBR;
	c = pcb->cwnd;
	/* a window acknowledged 2 ms after it went: its rate is at most its
	 * bytes over 2 ms, whatever else the machine does meanwhile */
	d0 = pcb->delivered;
	send_data(pcb, (int)c);
	assert_int_equal(nsent, (int)(c / m));
	spin_us(2000);
	seg(9393, 1001, pcb->snd_nxt, TCP_ACK, 0);
	assert_int_equal(pcb->delivered - d0, c);
	assert_true(bw_of(pcb) > 0);
	assert_true(bw_of(pcb) <= c / 2);
	/* starting up, below the model's cwnd: cwnd grows by what was
	 * delivered (slow start) */
	assert_false(pcb->bbr_filled);
	bbr_model(pcb, 1000000, 1000);
	c = pcb->cwnd;
	bbr_round(pcb, 9393);
	assert_int_equal(pcb->cwnd, 2 * c);
	/* once the pipe is full: the model's cwnd, 2 x bandwidth x delay
	 * plus three segments (2 x 1000000 B/ms x 1 us = 2000 bytes), plus
	 * the ACK aggregation seen: the whole window acknowledged at once */
	pcb->bbr_filled = 1;
	bbr_model(pcb, 1000000, 1);
	c = pcb->cwnd;
	bbr_round(pcb, 9393);
	assert_int_equal(pcb->cwnd, 2000 + 3 * m + c);
}

static void test_bbr_loss_keeps_window(void **state)
{
	struct tcp_pcb *pcb = connect_opt(9494, 1);
	u32_t s, m = pcb->mss, w;
	int i;

	(void)state;
	assert_int_equal(pcb->cc, TCP_CC_BBR); /* the default when it connected */
	pcb->cwnd = 20 * m;
	for (i = 0; i < 2; i++)
		bbr_round(pcb, 9494);
	w = pcb->cwnd;
	assert_true(w >= 20 * m);
	/* eight segments, the first, third and fourth lost: RACK sends the
	 * holes again. The first ACK in the recovery (the last four SACKed,
	 * or if RACK's timer found the holes, the third and fourth) set cwnd
	 * to what was in flight and what it delivered: no more than the
	 * eight segments in play */
	s = eight_with_holes(pcb, 9494);
	rack_until(s + 3 * m, 2);
	assert_true(pcb->flags & TF_INFR);
	sack(9494, s, s + 2 * m, s + 8 * m);
	assert_int_equal(tcp_pipe(pcb), m);
	assert_true(pcb->cwnd <= 8 * m);
	/* repaired: cwnd is back */
	seg(9494, 1001, pcb->snd_nxt, TCP_ACK, 0);
	assert_null(pcb->unacked);
	assert_false(pcb->flags & TF_INFR);
	assert_true(pcb->cwnd >= w);
}

static int bbr_default(void **state)
{
	(void)state;
	tcp_cc_default = TCP_CC_BBR;
	return 0;
}

static int reno_default(void **state)
{
	tcp_cc_default = TCP_CC_RENO;
	return abort_all(state);
}

/* Patch 0028: the timers visit only PCBs with something timed. An idle
 * connection leaves tcp_tmr_pcbs at the first fast tick and tcp_slowtmr
 * no longer touches it (its poll counter stands still); data sent, data
 * received or keepalive put it back, and a retransmission timeout still
 * fires on a listed PCB. */
static int on_tmr_list(const struct tcp_pcb *pcb)
{
	const struct tcp_pcb *p;

	for (p = tcp_tmr_pcbs; p; p = p->tmr_next)
		if (p == pcb)
			return 1;
	return 0;
}

static void test_timer_list(void **state)
{
	struct tcp_pcb *a = connect_from(5101), *b = connect_from(5102);
	u8_t poll_b;
	int i;

	(void)state;
	assert_true(on_tmr_list(a) && on_tmr_list(b)); /* new: listed */
	tcp_fasttmr();
	assert_false(on_tmr_list(a));
	assert_false(on_tmr_list(b));
	poll_b = b->polltmr;
	for (i = 0; i < 20; i++)
		tcp_slowtmr();
	assert_int_equal(b->polltmr, poll_b); /* not visited */
	/* data out: listed until acknowledged */
	send_data(a, 100);
	assert_true(on_tmr_list(a));
	tcp_fasttmr();
	assert_true(on_tmr_list(a));
	seg(5101, 1001, a->snd_nxt, TCP_ACK, 0);
	tcp_fasttmr();
	assert_false(on_tmr_list(a));
	/* data in: listed (a delayed ACK), then off once it went */
	seg(5102, 1001, b->snd_nxt, TCP_ACK | TCP_PSH, 10);
	assert_true(on_tmr_list(b));
	tcp_fasttmr();
	assert_false(b->flags & TF_ACK_DELAY);
	assert_false(on_tmr_list(b));
	/* keepalive keeps it listed */
	ip_set_option(b, SOF_KEEPALIVE);
	tcp_tmr_list(b);
	tcp_fasttmr();
	assert_true(on_tmr_list(b));
	/* the retransmission timeout of an idle-again PCB's new data */
	send_data(a, 100);
	rto_until(a->lastack);
	assert_int_equal(sent_of(a->lastack), 2); /* sent, then sent again */
}

/* What keeps a PCB on the timer list: data out of order, the peer's FIN
 * (CLOSE_WAIT); and tcp_slowtmr removing a PCB from the middle of both
 * lists (retransmissions exhausted) leaves the others whole. */
static void test_timer_list_keeps(void **state)
{
	struct tcp_pcb *a = connect_from(5111), *b = connect_from(5112), *c = connect_from(5113);
	int n = count(tcp_active_pcbs), i;

	(void)state;
	tcp_fasttmr();
	assert_false(on_tmr_list(a) || on_tmr_list(b) || on_tmr_list(c));
	seg(5111, 1001 + 100, a->snd_nxt, TCP_ACK, 10); /* a hole before it */
	assert_non_null(a->ooseq);
	seg(5112, 1001, b->snd_nxt, TCP_ACK | TCP_FIN, 0);
	assert_int_equal(b->state, CLOSE_WAIT);
	for (i = 0; i < 3; i++)
		tcp_fasttmr();
	assert_true(on_tmr_list(a));
	assert_true(on_tmr_list(b));
	assert_false(on_tmr_list(c));
	/* c in the middle of the timer list (a, b behind it), then given up */
	send_data(c, 100);
	assert_ptr_equal(tcp_tmr_pcbs, c);
	c->nrtx = TCP_MAXRTX;
	tcp_slowtmr();
	assert_int_equal(count(tcp_active_pcbs), n - 1);
	assert_false(on_tmr_list(c)); /* (freed: compared as a pointer only) */
	assert_true(on_tmr_list(a) && on_tmr_list(b));
	{ /* every back link of both lists intact */
		struct tcp_pcb **pp, *p;

		for (pp = &tcp_active_pcbs; (p = *pp) != NULL; pp = &p->next)
			assert_ptr_equal(p->list_pprev, pp);
		for (pp = &tcp_tmr_pcbs; (p = *pp) != NULL; pp = &p->tmr_next)
			assert_ptr_equal(p->tmr_pprev, pp);
	}
}

/* Input in a burst (lwIP patch 0032): in-order segments are acknowledged
 * once, at the burst's end; a segment out of order still gets its
 * duplicate ACK at once (from tcp_receive); a PCB freed while its output
 * waits is off the list. */
static void test_input_burst(void **state)
{
	struct tcp_pcb *pcb = connect_from(5151);
	u32_t s = 1001, a = pcb->snd_nxt;
	int i;

	(void)state;
	nacks = 0;
	tcp_burst_begin();
	for (i = 0; i < 6; i++, s += 1000)
		seg(5151, s, a, TCP_ACK, 1000);
	assert_int_equal(nacks, 0);
	assert_ptr_equal(tcp_out_pcbs, pcb);
	tcp_burst_end();
	assert_int_equal(nacks, 1);
	assert_int_equal(last_ack, s);
	assert_null(tcp_out_pcbs);
	/* outside a burst, as lwIP always did: every second segment */
	nacks = 0;
	for (i = 0; i < 6; i++, s += 1000)
		seg(5151, s, a, TCP_ACK, 1000);
	assert_int_equal(nacks, 3);
	assert_int_equal(last_ack, s);
	/* a hole at S: each segment beyond it answered at once */
	nacks = 0;
	tcp_burst_begin();
	seg(5151, s + 1000, a, TCP_ACK, 1000);
	assert_int_equal(nacks, 1);
	seg(5151, s + 2000, a, TCP_ACK, 1000);
	assert_int_equal(nacks, 2);
	assert_int_equal(last_ack, s);
	/* the hole filled in the same burst: one ACK for all, at its end */
	seg(5151, s, a, TCP_ACK, 1000);
	assert_int_equal(nacks, 2);
	tcp_burst_end();
	assert_int_equal(nacks, 3);
	assert_int_equal(last_ack, s + 3000);
	s += 3000;
	/* freed while its output waits, by the application: off the list
	 * (ASan: no use after free) */
	tcp_burst_begin();
	seg(5151, s, a, TCP_ACK, 1000);
	seg(5151, s + 1000, a, TCP_ACK, 1000);
	assert_ptr_equal(tcp_out_pcbs, pcb);
	tcp_abort(pcb);
	assert_null(tcp_out_pcbs);
	tcp_burst_end();
	/* ... and by the peer's reset, inside tcp_input, in the same burst */
	pcb = connect_from(5252);
	a = pcb->snd_nxt;
	tcp_burst_begin();
	seg(5252, 1001, a, TCP_ACK, 1000);
	seg(5252, 2001, a, TCP_ACK, 1000);
	assert_ptr_equal(tcp_out_pcbs, pcb);
	seg(5252, 3001, a, TCP_RST | TCP_ACK, 0);
	assert_null(tcp_out_pcbs);
	tcp_burst_end();
	assert_null(tcp_active_pcbs);
}

/* With SACK, the first three ACKs with SACK blocks for one rcv_nxt go at
 * once (a sender may count them); later ones in a burst go once, at its
 * end (patch 0034). */
static void test_input_burst_sack(void **state)
{
	struct tcp_pcb *pcb = connect_opt(5353, 1);
	u32_t s = 1001, a = pcb->snd_nxt;
	int i;

	(void)state;
	assert_true(pcb->flags & TF_SACK);
	/* a hole at S, five segments beyond it in a burst: three ACKs at
	 * once, one at the burst's end whose block covers all five */
	nacks = 0;
	tcp_burst_begin();
	for (i = 1; i <= 5; i++)
		seg(5353, s + (u32_t)i * 1000, a, TCP_ACK, 1000);
	assert_int_equal(nacks, 3);
	assert_int_equal(last_sack[1], s + 4000);
	tcp_burst_end();
	assert_int_equal(nacks, 4);
	assert_int_equal(last_ack, s);
	assert_int_equal(last_sack[0], s + 1000);
	assert_int_equal(last_sack[1], s + 6000);
	/* outside a burst, at once: a second hole at S + 6000 */
	seg(5353, s + 7000, a, TCP_ACK, 1000);
	assert_int_equal(nacks, 5);
	assert_int_equal(last_sack[0], s + 7000);
	assert_int_equal(last_sack[1], s + 8000);
	/* the burst's ACK cannot go: it is owed no more past the burst, and
	 * the fast timer sends it, blocks and all */
	tcp_burst_begin();
	seg(5353, s + 8000, a, TCP_ACK, 1000);
	assert_int_equal(nacks, 5);
	nif_down = 1;
	tcp_burst_end();
	nif_down = 0;
	assert_false(pcb->flags & TF_SACK_NOW);
	assert_true(pcb->flags & TF_ACK_NOW);
	tcp_fasttmr();
	assert_int_equal(nacks, 6);
	assert_int_equal(last_sack[0], s + 7000);
	assert_int_equal(last_sack[1], s + 9000);
	/* the first hole filled: rcv_nxt moves, so three at once again (the
	 * filling and two beyond the second hole), then one at the end */
	tcp_burst_begin();
	seg(5353, s, a, TCP_ACK, 1000);
	assert_int_equal(nacks, 7);
	assert_int_equal(last_ack, s + 6000);
	for (i = 9; i <= 11; i++)
		seg(5353, s + (u32_t)i * 1000, a, TCP_ACK, 1000);
	assert_int_equal(nacks, 9);
	tcp_burst_end();
	assert_int_equal(nacks, 10);
	assert_int_equal(last_sack[0], s + 7000);
	assert_int_equal(last_sack[1], s + 12000);
	/* the last hole filled: a plain ACK for everything */
	tcp_burst_begin();
	seg(5353, s + 6000, a, TCP_ACK, 1000);
	tcp_burst_end();
	assert_int_equal(nacks, 11);
	assert_int_equal(last_ack, s + 12000);
	assert_int_equal(last_sack[0], 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_close_in_input_removes_once),
		cmocka_unit_test_teardown(test_probe_stall, abort_all),
		cmocka_unit_test_teardown(test_probe_not_one_segment, abort_all),
		cmocka_unit_test_teardown(test_rack, abort_all),
		cmocka_unit_test_teardown(test_rack_recovery_ends_once, abort_all),
		cmocka_unit_test_teardown(test_rack_same_microsecond, abort_all),
		cmocka_unit_test_teardown(test_resends_not_timeouts, abort_all),
		cmocka_unit_test_teardown(test_rack_every_hole, abort_all),
		cmocka_unit_test_teardown(test_rack_queued_then_rto, abort_all),
		cmocka_unit_test_teardown(test_rack_many_holes, abort_all),
		cmocka_unit_test_teardown(test_rexmit_queued_keeps_bytes, abort_all),
		cmocka_unit_test_teardown(test_rack_ack_of_copy, abort_all),
		cmocka_unit_test_teardown(test_bbr_rate_and_startup, abort_all),
		cmocka_unit_test_setup_teardown(test_bbr_loss_keeps_window, bbr_default, reno_default),
		cmocka_unit_test_teardown(test_timer_list, abort_all),
		cmocka_unit_test_teardown(test_timer_list_keeps, abort_all),
		cmocka_unit_test_teardown(test_input_burst, abort_all),
		cmocka_unit_test_teardown(test_input_burst_sack, abort_all),
	};

	return cmocka_run_group_tests_name("lwip_close", tests, setup, NULL);
}
