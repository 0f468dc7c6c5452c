/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration files for mcfs and mcfs-master: the long command-line
 * options, one per line, so that a file and a command line say the same
 * thing the same way:
 *
 *   # the node's share of the pool
 *   segment-size = 4G
 *   replicas 2
 *   node-name = "rack 1 / a"
 *
 * A line is "name = value" or "name value"; a line with a name only (a flag
 * such as "verbose") gives the value "". Blank lines and lines whose first
 * non-blank character is '#' are ignored, as is the rest of a line after a
 * '#' that follows a blank. A value in double quotes is taken as is, blanks
 * and '#' included. Surrounding blanks are trimmed. Sections ("[x]") are not
 * part of the format.
 *
 * (Debian's libinih was considered: it has no "name value" form, reports
 * no line number to the handler and truncates lines at 200 bytes, so a
 * reader of this exact format is shorter than the adaptation.)
 */
#ifndef MCFS_CONF_H
#define MCFS_CONF_H

/*
 * Read the file at path and call set(ctx, name, value) once per setting, in
 * file order; name and value are NUL-terminated and borrowed for the call.
 * set returns 0 to accept, -ENOENT for an unknown name, another negative
 * errno for a bad value (it may log the details first). Stops at the first
 * error, which is logged as "PATH:LINE: what is wrong". 0, -EINVAL for a
 * malformed line, an unknown name or a bad value, or the negative errno of
 * opening or reading the file (also logged).
 */
int mcfs_conf_load(const char *path, int (*set)(void *ctx, const char *name, const char *value),
		   void *ctx);

#endif
