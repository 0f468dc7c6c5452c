// SPDX-License-Identifier: Apache-2.0
/*
 * The logger: a level, an identity and one fprintf per message so that lines
 * from several threads do not interleave.
 */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int log_level = -1;
static const char *log_ident = "mcfs";

static const char *const level_names[] = {"emerg", "alert",  "crit", "error",
					  "warn",  "notice", "info", "debug"};

void mcfs_log_set_level(int level)
{
	log_level = level;
}

int mcfs_log_get_level(void)
{
	if (log_level < 0) {
		const char *env = getenv("MCFS_LOG");

		log_level = LOG_INFO;
		for (int i = 0; env && i < 8; i++)
			if (!strcasecmp(env, level_names[i]))
				log_level = i;
	}
	return log_level;
}

void mcfs_log_set_ident(const char *ident)
{
	log_ident = ident;
}

void mcfs_log(int level, const char *fmt, ...)
{
	char msg[1024];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (level > mcfs_log_get_level())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	fprintf(stderr, "%02d:%02d:%02d.%03ld %s[%s]: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
		ts.tv_nsec / 1000000, log_ident, level_names[level & 7], msg);
}
