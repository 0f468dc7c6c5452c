/* SPDX-License-Identifier: Apache-2.0 */
/* The benchmarks' view of a process's memory: resident set size from /proc. */
#ifndef MCFS_TOOLS_PROC_RSS_H
#define MCFS_TOOLS_PROC_RSS_H

#include <stdio.h>
#include <sys/types.h>

/* VmRSS of pid (0: this process) in KiB, or -1. */
static inline long proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

#endif
