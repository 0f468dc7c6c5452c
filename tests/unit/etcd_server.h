/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A real etcd for unit tests (tests/unit/test_etcd.c, test_persist.c):
 * Debian's /usr/bin/etcd started on two free 127.0.0.1 ports with its data
 * in a temp dir (on tmpfs when there is one: etcd fsyncs every write),
 * killed with the test process if that crashes, and stopped by PID. When
 * the binary is missing nothing starts (etcd_pid stays 0) and the tests
 * skip. Header-only: each test binary includes it once.
 */
#ifndef MCFS_TEST_ETCD_SERVER_H
#define MCFS_TEST_ETCD_SERVER_H

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "meta/etcd.h"

#ifndef ETCD_BIN
#define ETCD_BIN "/usr/bin/etcd"
#endif

static pid_t etcd_pid;
static char etcd_dir[128];
static char etcd_url[64];
static char etcd_peer[64];

/* A listening socket on a free loopback port. */
static int listen_any(uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 16), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

static int count_kv(void *arg, const char *key, const void *val, size_t len, int64_t mod_rev)
{
	(void)key, (void)val, (void)len, (void)mod_rev;
	(*(int *)arg)++;
	return 0;
}

static int etcd_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

/* Kill etcd, its data dir kept (etcd_launch() finds it again). */
static inline void etcd_kill(void)
{
	if (etcd_pid > 0) {
		kill(etcd_pid, SIGKILL);
		waitpid(etcd_pid, NULL, 0);
		etcd_pid = 0;
	}
}

/* Stop etcd (SIGTERM, then SIGKILL after 3 s) and remove its data dir. */
static inline void etcd_stop(void)
{
	if (etcd_pid > 0) {
		int st;

		kill(etcd_pid, SIGTERM);
		for (int i = 0; i < 300 && waitpid(etcd_pid, &st, WNOHANG) == 0; i++)
			usleep(10000);
		if (waitpid(etcd_pid, &st, WNOHANG) == 0) {
			kill(etcd_pid, SIGKILL);
			waitpid(etcd_pid, &st, 0);
		}
		etcd_pid = 0;
	}
	if (etcd_dir[0]) {
		nftw(etcd_dir, etcd_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		etcd_dir[0] = 0;
	}
}

/* Start etcd on etcd_url/etcd_peer with its data in etcd_dir; wait until it answers. */
static inline void etcd_launch(void)
{
	char cluster[96], data[160], log[160];
	struct mcfs_etcd *e;
	pid_t parent = getpid();
	int rc = -1;

	snprintf(cluster, sizeof(cluster), "t=%s", etcd_peer);
	snprintf(data, sizeof(data), "%s/data", etcd_dir);
	snprintf(log, sizeof(log), "%s/etcd.log", etcd_dir);
	etcd_pid = fork();
	cr_assert_geq(etcd_pid, 0);
	if (etcd_pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		/* die with the test process, even when it crashes */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(ETCD_BIN, "etcd", "--name", "t", "--data-dir", data, "--listen-client-urls",
		      etcd_url, "--advertise-client-urls", etcd_url, "--listen-peer-urls",
		      etcd_peer, "--initial-advertise-peer-urls", etcd_peer, "--initial-cluster",
		      cluster, "--logger", "zap", "--log-level", "warn", (char *)NULL);
		_exit(127);
	}
	cr_assert_eq(mcfs_etcd_open(etcd_url, &e), 0);
	mcfs_etcd_set_timeout(e, 500);
	for (int i = 0; i < 500; i++) {
		int n = 0;

		rc = mcfs_etcd_get(e, "ready", false, count_kv, &n, NULL);
		if (!rc || waitpid(etcd_pid, NULL, WNOHANG) != 0)
			break;
		usleep(20000);
	}
	mcfs_etcd_close(e);
	cr_assert_eq(rc, 0, "etcd did not come up on %s (log: %s): %d", etcd_url, log, rc);
}

/* Pick free ports and a data dir named after tag, and start etcd (nothing when it is missing). */
static inline void etcd_start(const char *tag)
{
	uint16_t cport, pport;
	int cfd = listen_any(&cport), pfd = listen_any(&pport); /* two distinct free ports */

	close(cfd);
	close(pfd);
	if (access(ETCD_BIN, X_OK))
		return; /* the tests skip */
	snprintf(etcd_dir, sizeof(etcd_dir), "%s/mcfs-%s-XXXXXX",
		 access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm", tag);
	cr_assert(mkdtemp(etcd_dir), "mkdtemp: %s", strerror(errno));
	snprintf(etcd_url, sizeof(etcd_url), "http://127.0.0.1:%u", cport);
	snprintf(etcd_peer, sizeof(etcd_peer), "http://127.0.0.1:%u", pport);
	etcd_launch();
}

#endif
