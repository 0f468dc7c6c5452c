// SPDX-License-Identifier: Apache-2.0
/*
 * /dev/fuse I/O with one addition (see kio.h): the FUSE_INIT exchange is
 * watched, and when the kernel offers FUSE_DIRECT_IO_ALLOW_MMAP in its
 * extended flags, the reply asks for it. Every other message passes through
 * unchanged.
 *
 * And the wait for the next request may poll (mcfs_kio_set_poll): on
 * virtual machines, waking a daemon thread that sleeps in read() on another
 * CPU costs more than the request itself (an inter-processor interrupt to a
 * halted vCPU, 20-50 us here), so right after a request the device is read
 * without blocking for a short while, and only then does the thread sleep.
 * A request that arrives within the window is taken at once; the price is
 * at most that window of CPU time after each request. Each look yields the
 * CPU first, so a spinning daemon never keeps a runnable thread (the very
 * caller it waits for, often, on a machine with few cores) off its CPU.
 *
 * Some kernels can instead wake the sleeping daemon on the caller's own CPU
 * (the fuse module's wake_here parameter): the request then costs two
 * context switches on one CPU and no interrupt at all. There a poll only
 * does harm, since a daemon spinning on the other CPU takes the request
 * away from the caller's, and answers across CPUs again.
 */
#include "mcfs/kio.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

/* Protocol 7.39 names, absent from older kernel headers. */
#define KIO_INIT_EXT		  (1u << 30)
#define KIO_DIRECT_IO_ALLOW_MMAP2 (1u << (36 - 32)) /* in flags2 */

/* Offsets in struct fuse_init_in / fuse_init_out (stable since 7.36). */
#define INIT_IN_FLAGS	12
#define INIT_IN_FLAGS2	16
#define INIT_OUT_FLAGS	12
#define INIT_OUT_FLAGS2 32

static uint64_t init_unique; /* the FUSE_INIT request, while unanswered */
static bool kernel_offers;
static bool granted;
static uint64_t poll_ns; /* 0: sleep at once */
static int stop_fd = -1; /* eventfd: readable once the daemon is told to stop */

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/*
 * read() of the non-blocking device: retried for poll_ns (0: once), then a
 * sleep in poll() until a request is there or the daemon is told to stop.
 * Never fails with EAGAIN (libfuse's loop would end); a stop fails with
 * EINTR, which libfuse's loop takes as "check whether to exit, then read
 * again".
 *
 * A stop signal is handled by whichever thread the kernel picks, often not
 * this one, so it cannot count on being interrupted: the handler writes to
 * stop_fd (mcfs_kio_stop), which the sleep watches too.
 */
static ssize_t read_polled(int fd, void *buf, size_t len)
{
	struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
	ssize_t n;

	for (;;) {
		n = read(fd, buf, len);
		if (n >= 0 || errno != EAGAIN)
			return n;
		if (mcfs_spin_readable(fd, poll_ns))
			continue;
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			return -1;
		if (p[1].revents) {
			errno = EINTR;
			return -1;
		}
	}
}

static ssize_t kio_read(int fd, void *buf, size_t len, void *userdata)
{
	const struct fuse_in_header *in = buf;
	ssize_t n = stop_fd >= 0 ? read_polled(fd, buf, len) : read(fd, buf, len);

	(void)userdata;
	if (n >= (ssize_t)sizeof(*in) && in->opcode == FUSE_INIT) {
		const uint8_t *arg = (const uint8_t *)buf + sizeof(*in);
		size_t arglen = (size_t)n - sizeof(*in);

		init_unique = in->unique;
		kernel_offers = arglen >= INIT_IN_FLAGS2 + 4 &&
				(get32(arg + INIT_IN_FLAGS) & KIO_INIT_EXT) &&
				(get32(arg + INIT_IN_FLAGS2) & KIO_DIRECT_IO_ALLOW_MMAP2);
	}
	return n;
}

static ssize_t kio_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	(void)userdata;
	if (init_unique && count >= 2 && iov[0].iov_len >= sizeof(struct fuse_out_header)) {
		struct fuse_out_header *out = iov[0].iov_base;

		if (out->unique == init_unique) {
			uint8_t *arg = iov[1].iov_base;
			uint32_t flags, flags2;

			init_unique = 0;
			if (!out->error && kernel_offers && iov[1].iov_len >= INIT_OUT_FLAGS2 + 4) {
				flags = get32(arg + INIT_OUT_FLAGS) | KIO_INIT_EXT;
				flags2 = get32(arg + INIT_OUT_FLAGS2) | KIO_DIRECT_IO_ALLOW_MMAP2;
				memcpy(arg + INIT_OUT_FLAGS, &flags, 4);
				memcpy(arg + INIT_OUT_FLAGS2, &flags2, 4);
				granted = true;
			}
			mcfs_debug("direct_io mmap: %s",
				   granted ? "on" : "not offered by the kernel");
		}
	}
	return writev(fd, iov, count);
}

static const struct fuse_custom_io kio_ops = {
    .read = kio_read,
    .writev = kio_writev,
};

void mcfs_kio_set_poll(unsigned int us)
{
	poll_ns = (uint64_t)us * 1000;
}

void mcfs_kio_stop(void)
{
	uint64_t one = 1;

	if (stop_fd >= 0 && write(stop_fd, &one, sizeof(one)) < 0) {
		/* full (it already says stop) or gone: nothing to do */
	}
}

int mcfs_kio_install(struct fuse_session *se)
{
	int fd = fuse_session_fd(se);
	int fl, ret;

	if (fd < 0)
		return -EBADF;
	ret = fuse_session_custom_io(se, &kio_ops, fd);
	if (ret)
		return ret; /* libfuse reads the device itself, blocking, as before */
	/* Only now: libfuse's own read() of a non-blocking device would end its loop. */
	stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	fl = stop_fd < 0 ? -1 : fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		mcfs_warn("cannot poll /dev/fuse (%s): waiting in read()", strerror(errno));
		if (stop_fd >= 0)
			close(stop_fd);
		stop_fd = -1;
	}
	return 0;
}

bool mcfs_kio_direct_io_mmap(void)
{
	return granted;
}
