/*
 * kbp_syms.h — the one table of libc symbols libkbpreload.so interposes.
 *
 * X(ret, name, params, args, sys) for each. From it come: the libc_<name>
 * pointers and their resolution (kbp_libc.c), and the export list (the
 * linker version script is generated from this file, so nothing else
 * leaves the library). The definitions of the symbols themselves are in
 * kbp_interpose.c.
 *
 * sys is the system call that does what libc's function does with exactly
 * these arguments, or KBP_NOSYS where there is none (recv is recvfrom with
 * two more). kbp_libc.c makes it only when libc's function cannot be had:
 * while the calling thread is itself inside dlsym, or libc lacks the name.
 */
#define KBP_NOSYS (-1L)

#define KBP_SYMS(X)                                                            \
	X(int, socket, (int d, int t, int p), (d, t, p), SYS_socket)           \
	X(int, bind, (int fd, const struct sockaddr *a, socklen_t l), (fd, a, l), SYS_bind) \
	X(int, listen, (int fd, int b), (fd, b), SYS_listen)                   \
	X(int, accept, (int fd, struct sockaddr *a, socklen_t *l), (fd, a, l), SYS_accept) \
	X(int, accept4, (int fd, struct sockaddr *a, socklen_t *l, int f), (fd, a, l, f), SYS_accept4) \
	X(int, connect, (int fd, const struct sockaddr *a, socklen_t l), (fd, a, l), SYS_connect) \
	X(ssize_t, read, (int fd, void *b, size_t n), (fd, b, n), SYS_read)    \
	X(ssize_t, readv, (int fd, const struct iovec *v, int n), (fd, v, n), SYS_readv) \
	X(ssize_t, write, (int fd, const void *b, size_t n), (fd, b, n), SYS_write) \
	X(ssize_t, writev, (int fd, const struct iovec *v, int n), (fd, v, n), SYS_writev) \
	X(ssize_t, recv, (int fd, void *b, size_t n, int f), (fd, b, n, f), KBP_NOSYS) \
	X(ssize_t, recvfrom, (int fd, void *b, size_t n, int f, struct sockaddr *a, socklen_t *l), (fd, b, n, f, a, l), SYS_recvfrom) \
	X(ssize_t, recvmsg, (int fd, struct msghdr *m, int f), (fd, m, f), SYS_recvmsg) \
	X(ssize_t, send, (int fd, const void *b, size_t n, int f), (fd, b, n, f), KBP_NOSYS) \
	X(ssize_t, sendto, (int fd, const void *b, size_t n, int f, const struct sockaddr *a, socklen_t l), (fd, b, n, f, a, l), SYS_sendto) \
	X(ssize_t, sendmsg, (int fd, const struct msghdr *m, int f), (fd, m, f), SYS_sendmsg) \
	X(ssize_t, sendfile, (int o, int i, off_t *off, size_t n), (o, i, off, n), SYS_sendfile) \
	X(ssize_t, sendfile64, (int o, int i, off64_t *off, size_t n), (o, i, off, n), SYS_sendfile) \
	X(int, close, (int fd), (fd), SYS_close)                               \
	X(int, close_range, (unsigned a, unsigned b, int f), (a, b, f), SYS_close_range) \
	X(int, shutdown, (int fd, int h), (fd, h), SYS_shutdown)               \
	X(int, getsockopt, (int fd, int lv, int o, void *v, socklen_t *l), (fd, lv, o, v, l), SYS_getsockopt) \
	X(int, setsockopt, (int fd, int lv, int o, const void *v, socklen_t l), (fd, lv, o, v, l), SYS_setsockopt) \
	X(int, getsockname, (int fd, struct sockaddr *a, socklen_t *l), (fd, a, l), SYS_getsockname) \
	X(int, getpeername, (int fd, struct sockaddr *a, socklen_t *l), (fd, a, l), SYS_getpeername) \
	X(int, dup, (int fd), (fd), SYS_dup)                                   \
	X(int, dup2, (int a, int b), (a, b), SYS_dup2)                         \
	X(int, dup3, (int a, int b, int f), (a, b, f), SYS_dup3)               \
	X(int, epoll_create, (int n), (n), SYS_epoll_create)                   \
	X(int, epoll_create1, (int f), (f), SYS_epoll_create1)                 \
	X(int, epoll_ctl, (int e, int op, int fd, struct epoll_event *ev), (e, op, fd, ev), SYS_epoll_ctl) \
	X(int, epoll_wait, (int e, struct epoll_event *ev, int n, int t), (e, ev, n, t), SYS_epoll_wait) \
	X(int, epoll_pwait, (int e, struct epoll_event *ev, int n, int t, const sigset_t *s), (e, ev, n, t, s), KBP_NOSYS) \
	X(int, epoll_pwait2, (int e, struct epoll_event *ev, int n, const struct timespec *t, const sigset_t *s), (e, ev, n, t, s), KBP_NOSYS) \
	X(int, poll, (struct pollfd *p, nfds_t n, int t), (p, n, t), SYS_poll) \
	X(int, ppoll, (struct pollfd *p, nfds_t n, const struct timespec *t, const sigset_t *s), (p, n, t, s), KBP_NOSYS) \
	X(int, select, (int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *t), (n, r, w, e, t), SYS_select) \
	X(int, pselect, (int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *t, const sigset_t *s), (n, r, w, e, t, s), KBP_NOSYS)

/* fcntl and ioctl are variadic: defined by hand, resolved with the rest.
 * X(ret, name, params, sys); params are named fd and cmd, then one word. */
#define KBP_SYMS_VARIADIC(X)                                                   \
	X(int, fcntl, (int fd, int cmd, ...), SYS_fcntl)                       \
	X(int, fcntl64, (int fd, int cmd, ...), SYS_fcntl)                     \
	X(int, ioctl, (int fd, unsigned long cmd, ...), SYS_ioctl)

/* syscall(2)'s libc function, variadic: the number, then up to six words.
 * X(ret, name, params). kbp_syscall.c routes the calls that name an fd kb
 * may serve to the symbols above; kb's own raw calls use libc_syscall. */
#define KBP_SYMS_SYSCALL(X) X(long, syscall, (long nr, ...))

/* glibc's fortified variants: same behaviour, with a buffer-size check. */
#define KBP_SYMS_CHK(X)                                                        \
	X(ssize_t, __read_chk, (int fd, void *b, size_t n, size_t bl))         \
	X(ssize_t, __recv_chk, (int fd, void *b, size_t n, size_t bl, int f))  \
	X(ssize_t, __recvfrom_chk, (int fd, void *b, size_t n, size_t bl, int f, struct sockaddr *a, socklen_t *l)) \
	X(int, __poll_chk, (struct pollfd *p, nfds_t n, int t, size_t pl))     \
	X(int, __ppoll_chk, (struct pollfd *p, nfds_t n, const struct timespec *t, const sigset_t *s, size_t pl))
