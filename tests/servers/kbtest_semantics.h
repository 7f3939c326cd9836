/*
 * kbtest_semantics.h — what kbtest_semantics.c (the runner: settings,
 * checks, the peer and its command channel) lends to scenario files other
 * than its own (kbtest_lifecycle.c). Test code only.
 */
#ifndef KBTEST_SEMANTICS_H
#define KBTEST_SEMANTICS_H

#include <stdbool.h>
#include <stddef.h>

/* ---- settings (command line of the side under test) ---- */
extern int port;   /* --port: where the scenario listens */
extern long tw_ms; /* --tw-ms: how long kbstackd's lwIP keeps TIME_WAIT, 0 unknown */
extern int pcbs;   /* --pcbs: kbstackd's lwIP TCP PCB pool, 0 unknown */

/* ---- reporting: one "ok - " or "FAIL - " line per check ---- */
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
bool check(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
long now_ms(void);
void sleep_ms(long ms);
const char *err_name(int e);

/* ---- the peer (kernel client in the client namespace) ---- */
#define KBTEST_NCONN 64 /* connections it holds at once: indices 0..63 */
void peer_callf(char *reply, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
bool peer_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int peer_recv(int idx, int n, int ms, char *out, size_t len, bool *eof);
/* The peer connects (its connection idx), from local port lport unless 0;
 * we accept. The accepted fd, -1 on failure; *pport: the peer's port. */
int accept_peer_from(int l, int idx, int lport, int *pport);

/* ---- sockets of the side under test ---- */
int listen_on(int p);
/* Read until n bytes, EOF, an error or ms pass: the count read; *eof and
 * *err (0: none) say how it ended (either may be NULL). */
int read_until(int fd, char *buf, int n, int ms, bool *eof, int *err);
int read_n(int fd, char *buf, int n, int ms); /* read_until, how it ended unsaid */
void pattern(char *b, int n); /* the bytes every "send"/"recvpat" carries */

/* ---- scenarios in kbtest_lifecycle.c ---- */
void sc_late_close_reused(void);
void sc_late_close_reused_busy(void);
void sc_late_close_expired(void);
void sc_late_close_exhausted(void);

/* ---- kbtest_overflow.c ---- */
void sc_accept_overflow(void);
void sc_high_fd(void);
void sc_many_listeners(void);
/* The peer's burst commands ("burst N", "burstmore N", "burstcheck MS",
 * "burstclose"):
 * false when line is none of them. */
bool peer_burst_cmd(const char *line, const char *host, char *reply, size_t len);

#endif /* KBTEST_SEMANTICS_H */
