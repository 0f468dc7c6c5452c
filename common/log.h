/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One logger for every mcfs program and library: syslog levels, one line per
 * message on stderr, printf-checked. Library code logs through here, never
 * with printf.
 */
#ifndef MCFS_LOG_H
#define MCFS_LOG_H

#include <syslog.h>

/* Messages above this level are dropped. Default LOG_INFO; MCFS_LOG=debug overrides. */
void mcfs_log_set_level(int level);
int mcfs_log_get_level(void);
/* The program name printed before every message ("mcfs", "mcfs-master"). */
void mcfs_log_set_ident(const char *ident);

void mcfs_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define mcfs_err(...)	mcfs_log(LOG_ERR, __VA_ARGS__)
#define mcfs_warn(...)	mcfs_log(LOG_WARNING, __VA_ARGS__)
#define mcfs_info(...)	mcfs_log(LOG_INFO, __VA_ARGS__)
#define mcfs_debug(...) mcfs_log(LOG_DEBUG, __VA_ARGS__)

#endif
