// SPDX-License-Identifier: Apache-2.0
/*
 * The configuration file reader (see conf.h). Lines are split in place;
 * every error names the file and line, as Redis does for its config.
 */
#include "common/conf.h"

#include <ctype.h>
#include <sys/types.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static char *skip_blanks(char *p)
{
	while (*p && isspace((unsigned char)*p))
		p++;
	return p;
}

static void trim_end(char *s)
{
	size_t n = strlen(s);

	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = 0;
}

/*
 * Split one line into *name and *value (both pointing into line). Returns
 * 1 for a setting, 0 for a blank or comment line, or -EINVAL with *why set.
 */
static int split_line(char *line, char **name, char **value, const char **why)
{
	char *p = skip_blanks(line), *v;

	if (!*p || *p == '#')
		return 0;
	*name = p;
	while (*p && !isspace((unsigned char)*p) && *p != '=' && *p != '#')
		p++;
	if (p == *name) {
		*why = "missing option name before '='";
		return -EINVAL;
	}
	if (**name == '[') {
		*why = "sections are not supported; write \"name = value\" lines";
		return -EINVAL;
	}
	v = skip_blanks(p);
	if (*v == '=')
		v = skip_blanks(v + 1);
	*p = 0; /* ends the name; v is past it */
	*value = v;
	if (*v == '"') {
		char *end = strchr(v + 1, '"');

		if (!end) {
			*why = "unterminated quoted value";
			return -EINVAL;
		}
		*end = 0;
		*value = v + 1;
		v = skip_blanks(end + 1);
		if (*v && *v != '#') {
			*why = "text after the quoted value";
			return -EINVAL;
		}
		return 1;
	}
	/* A '#' at the start of the value or after a blank starts a comment. */
	for (char *c = v; *c; c++) {
		if (*c == '#' && (c == v || isspace((unsigned char)c[-1]))) {
			*c = 0;
			break;
		}
	}
	trim_end(v);
	return 1;
}

int mcfs_conf_load(const char *path, int (*set)(void *ctx, const char *name, const char *value),
		   void *ctx)
{
	char *line = NULL, *name, *value;
	const char *why = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned lineno = 0;
	FILE *f;
	int ret = 0;

	f = fopen(path, "re");
	if (!f) {
		ret = -errno;
		mcfs_err("cannot read config file %s: %s", path, strerror(-ret));
		return ret;
	}
	for (;;) {
		errno = 0; /* getline leaves it alone at the end of the file */
		n = getline(&line, &cap, f);
		if (n < 0)
			break;
		lineno++;
		if (strlen(line) != (size_t)n) {
			mcfs_err("%s:%u: NUL byte in line", path, lineno);
			ret = -EINVAL;
			goto out_free_line;
		}
		line[strcspn(line, "\r\n")] = 0;
		ret = split_line(line, &name, &value, &why);
		if (ret < 0) {
			mcfs_err("%s:%u: %s", path, lineno, why);
			goto out_free_line;
		}
		if (ret == 0)
			continue;
		ret = set(ctx, name, value);
		if (ret == -ENOENT) {
			mcfs_err("%s:%u: unknown option '%s'", path, lineno, name);
			ret = -EINVAL;
			goto out_free_line;
		}
		if (ret) {
			mcfs_err("%s:%u: %s: bad value '%s'", path, lineno, name, value);
			ret = -EINVAL;
			goto out_free_line;
		}
	}
	if (ferror(f)) {
		ret = errno ? -errno : -EIO;
		mcfs_err("cannot read config file %s: %s", path, strerror(-ret));
	}
out_free_line:
	free(line);
	fclose(f);
	return ret;
}
