/*
 * kbp_syms.h — the one table of libc symbols libkbpreload.so interposes.
 *
 * KBP_SYM(ret, name, params, args) for each. From it come: the libc_<name>
 * pointers (dlsym(RTLD_NEXT)), their resolution at start-up, and the
 * export list (the linker version script is generated from this file, so
 * nothing else leaves the library). The definitions of the symbols
 * themselves are in kbp_interpose.c.
 */
#define KBP_SYMS(X)                                                            \
	X(int, socket, (int d, int t, int p), (d, t, p))                       \
	X(int, bind, (int fd, const struct sockaddr *a, socklen_t l), (fd, a, l)) \
	X(int, listen, (int fd, int b), (fd, b))                               \
	X(int, accept, (int fd, struct sockaddr *a, socklen_t *l), (fd, a, l)) \
	X(int, accept4, (int fd, struct sockaddr *a, socklen_t *l, int f), (fd, a, l, f)) \
	X(int, connect, (int fd, const struct sockaddr *a, socklen_t l), (fd, a, l)) \
	X(ssize_t, read, (int fd, void *b, size_t n), (fd, b, n))              \
	X(ssize_t, readv, (int fd, const struct iovec *v, int n), (fd, v, n))  \
	X(ssize_t, write, (int fd, const void *b, size_t n), (fd, b, n))       \
	X(ssize_t, writev, (int fd, const struct iovec *v, int n), (fd, v, n)) \
	X(ssize_t, recv, (int fd, void *b, size_t n, int f), (fd, b, n, f))    \
	X(ssize_t, recvfrom, (int fd, void *b, size_t n, int f, struct sockaddr *a, socklen_t *l), (fd, b, n, f, a, l)) \
	X(ssize_t, recvmsg, (int fd, struct msghdr *m, int f), (fd, m, f))     \
	X(ssize_t, send, (int fd, const void *b, size_t n, int f), (fd, b, n, f)) \
	X(ssize_t, sendto, (int fd, const void *b, size_t n, int f, const struct sockaddr *a, socklen_t l), (fd, b, n, f, a, l)) \
	X(ssize_t, sendmsg, (int fd, const struct msghdr *m, int f), (fd, m, f)) \
	X(ssize_t, sendfile, (int o, int i, off_t *off, size_t n), (o, i, off, n)) \
	X(ssize_t, sendfile64, (int o, int i, off64_t *off, size_t n), (o, i, off, n)) \
	X(int, close, (int fd), (fd))                                          \
	X(int, close_range, (unsigned a, unsigned b, int f), (a, b, f))        \
	X(int, shutdown, (int fd, int h), (fd, h))                             \
	X(int, getsockopt, (int fd, int lv, int o, void *v, socklen_t *l), (fd, lv, o, v, l)) \
	X(int, setsockopt, (int fd, int lv, int o, const void *v, socklen_t l), (fd, lv, o, v, l)) \
	X(int, getsockname, (int fd, struct sockaddr *a, socklen_t *l), (fd, a, l)) \
	X(int, getpeername, (int fd, struct sockaddr *a, socklen_t *l), (fd, a, l)) \
	X(int, dup, (int fd), (fd))                                            \
	X(int, dup2, (int a, int b), (a, b))                                   \
	X(int, dup3, (int a, int b, int f), (a, b, f))                         \
	X(int, epoll_create, (int n), (n))                                     \
	X(int, epoll_create1, (int f), (f))                                    \
	X(int, epoll_ctl, (int e, int op, int fd, struct epoll_event *ev), (e, op, fd, ev)) \
	X(int, epoll_wait, (int e, struct epoll_event *ev, int n, int t), (e, ev, n, t)) \
	X(int, epoll_pwait, (int e, struct epoll_event *ev, int n, int t, const sigset_t *s), (e, ev, n, t, s)) \
	X(int, epoll_pwait2, (int e, struct epoll_event *ev, int n, const struct timespec *t, const sigset_t *s), (e, ev, n, t, s)) \
	X(int, poll, (struct pollfd *p, nfds_t n, int t), (p, n, t))           \
	X(int, ppoll, (struct pollfd *p, nfds_t n, const struct timespec *t, const sigset_t *s), (p, n, t, s)) \
	X(int, select, (int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *t), (n, r, w, e, t)) \
	X(int, pselect, (int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t, const sigset_t *s), (n, r, w, e, t, s))

/* fcntl and ioctl are variadic: defined by hand, resolved with the rest. */
#define KBP_SYMS_VARIADIC(X)                                                   \
	X(int, fcntl, (int fd, int cmd, ...))                                  \
	X(int, fcntl64, (int fd, int cmd, ...))                                \
	X(int, ioctl, (int fd, unsigned long req, ...))

/* glibc's fortified variants: same behaviour, with a buffer-size check. */
#define KBP_SYMS_CHK(X)                                                        \
	X(ssize_t, __read_chk, (int fd, void *b, size_t n, size_t bl))         \
	X(ssize_t, __recv_chk, (int fd, void *b, size_t n, size_t bl, int f))  \
	X(ssize_t, __recvfrom_chk, (int fd, void *b, size_t n, size_t bl, int f, struct sockaddr *a, socklen_t *l)) \
	X(int, __poll_chk, (struct pollfd *p, nfds_t n, int t, size_t pl))     \
	X(int, __ppoll_chk, (struct pollfd *p, nfds_t n, const struct timespec *t, const sigset_t *s, size_t pl))
