/* SPDX-License-Identifier: MIT */
/* opts.c - getopt_long arrays, dispatch and usage made from option tables. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "opts.h"

#define OPTS_LONG_BASE 0x100 /* vals of long-only entries: base + index */
#define OPTS_HELP_COL 23     /* where help text starts */
#define OPTS_WIDTH 79
#define OPTS_LONG_LEFT 30 /* flags this wide get a line of their own */

static int opts_taken(const struct tool_optset *set, size_t i)
{
	return !set->mask || (set->opts[i].tools & set->mask);
}

/* The table entry getopt_long's val stands for; NULL if none. */
static const struct tool_opt *opts_find(const struct tool_cmd *cmd, int val,
					const struct tool_optset **set_out)
{
	int idx = OPTS_LONG_BASE;

	for (size_t s = 0; s < cmd->nsets; s++) {
		const struct tool_optset *set = &cmd->sets[s];

		for (size_t i = 0; i < set->n; i++, idx++) {
			const struct tool_opt *o = &set->opts[i];

			if (!opts_taken(set, i))
				continue;
			if (o->key ? o->key == val : idx == val) {
				*set_out = set;
				return o;
			}
		}
	}
	return NULL;
}

static const struct tool_optset *opts_find_raw(const struct tool_cmd *cmd,
					       int val)
{
	for (size_t s = 0; s < cmd->nsets; s++)
		for (size_t i = 0; i < cmd->sets[s].nraw; i++)
			if (cmd->sets[s].raw[i].val == val)
				return &cmd->sets[s];
	return NULL;
}

static void opts_add_short(char *shorts, size_t *n, int key, int has_arg)
{
	/* Two options of one tool on one letter would shadow each other. */
	assert(!strchr(shorts, key));
	shorts[(*n)++] = (char)key;
	if (has_arg != no_argument)
		shorts[(*n)++] = ':';
	if (has_arg == optional_argument)
		shorts[(*n)++] = ':';
	shorts[*n] = '\0';
}

/* The getopt_long arrays of every set, then --help; NULL on no memory. */
static struct option *opts_build(const struct tool_cmd *cmd, char **shorts_out)
{
	size_t total = 1, n = 0, ns = 0;
	struct option *lo;
	char *shorts;
	int idx = OPTS_LONG_BASE;

	for (size_t s = 0; s < cmd->nsets; s++)
		total += cmd->sets[s].n + cmd->sets[s].nraw;
	lo = calloc(total + 1, sizeof(*lo));
	shorts = calloc(total * 3 + 4, 1);
	if (!lo || !shorts) {
		free(lo);
		free(shorts);
		return NULL;
	}
	shorts[ns++] = cmd->stop_at_cmd ? '+' : ':';
	if (cmd->stop_at_cmd)
		shorts[ns++] = ':';
	for (size_t s = 0; s < cmd->nsets; s++) {
		const struct tool_optset *set = &cmd->sets[s];

		for (size_t i = 0; i < set->n; i++, idx++) {
			const struct tool_opt *o = &set->opts[i];
			int has = !o->arg	    ? no_argument
				  : o->arg_optional ? optional_argument
						    : required_argument;

			if (!opts_taken(set, i))
				continue;
			lo[n++] = (struct option){o->name, has, NULL,
						  o->key ? o->key : idx};
			if (o->key)
				opts_add_short(shorts, &ns, o->key, has);
		}
		for (size_t i = 0; i < set->nraw; i++) {
			lo[n++] = set->raw[i];
			if (set->raw[i].val < 0x80 &&
			    isalnum((unsigned char)set->raw[i].val))
				opts_add_short(shorts, &ns, set->raw[i].val,
					       set->raw[i].has_arg);
		}
	}
	lo[n++] = (struct option){"help", no_argument, NULL, 'h'};
	opts_add_short(shorts, &ns, 'h', no_argument);
	*shorts_out = shorts;
	return lo;
}

int tool_opts_parse(const struct tool_cmd *cmd, int argc, char **argv)
{
	struct option *lo;
	char *shorts;
	int ch, ret = 0;

	lo = opts_build(cmd, &shorts);
	if (!lo) {
		tool_err("out of memory");
		return -ENOMEM;
	}
	optind = 0; /* a fresh scan, also of a subcommand's argv */
	opterr = 0;
	while (!ret && (ch = getopt_long(argc, argv, shorts, lo, NULL)) != -1) {
		const struct tool_optset *set;
		const struct tool_opt *o;

		if (ch == 'h') {
			tool_opts_usage(cmd, stdout);
			ret = 1;
		} else if (ch == ':') {
			tool_err("option '%s' needs a value (see %s --help)",
				 argv[optind - 1], cmd->name);
			ret = -EINVAL;
		} else if ((o = opts_find(cmd, ch, &set))) {
			ret = o->set(set->ctx, optarg);
		} else if ((set = opts_find_raw(cmd, ch))) {
			ret = set->raw_set(set->ctx, ch, optarg);
		} else {
			tool_err("unknown option '%s' (see %s --help)",
				 argv[optind - 1], cmd->name);
			ret = -EINVAL;
		}
	}
	free(lo);
	free(shorts);
	return ret > 0 ? 1 : ret < 0 ? -EINVAL : 0;
}

/* One option's lines: its flags, then the help wrapped at OPTS_WIDTH. */
static void opts_print(FILE *f, const struct tool_opt *o, const void *ctx)
{
	char left[96], text[512], tail[256] = "";
	const char *w;
	int col;

	col = snprintf(left, sizeof(left), "  %c%c%c --%s", o->key ? '-' : ' ',
		       o->key ? o->key : ' ', o->key ? ',' : ' ', o->name);
	if (o->arg)
		col += snprintf(left + col, sizeof(left) - (size_t)col,
				o->arg_optional ? "[=%s]" : "=%s", o->arg);
	if (o->show)
		o->show(ctx, tail, sizeof(tail));
	else if (o->def)
		snprintf(tail, sizeof(tail), " (%s)", o->def);
	snprintf(text, sizeof(text), "%s%s", o->help, tail);
	/* A long flag column puts the help on the next line. */
	if (col >= OPTS_LONG_LEFT)
		col = fprintf(f, "%s\n%*s", left, OPTS_HELP_COL, "") - col - 1;
	else
		col = fprintf(f, "%s%*s", left,
			      col < OPTS_HELP_COL - 1 ? OPTS_HELP_COL - col : 2,
			      "");
	for (w = text; *w;) {
		size_t len = strcspn(w, " ");

		/* Words after the first: a space, or a new line. */
		if (w != text && col + 1 + (int)len > OPTS_WIDTH)
			col = fprintf(f, "\n%*s", OPTS_HELP_COL, "") - 1;
		else if (w != text)
			col += fprintf(f, " ");
		col += fprintf(f, "%.*s", (int)len, w);
		w += len;
		while (*w == ' ')
			w++;
	}
	fputc('\n', f);
}

void tool_opts_usage(const struct tool_cmd *cmd, FILE *f)
{
	static const struct tool_opt help = {
		.name = "help", .key = 'h', .help = "this help"};

	if (cmd->head)
		cmd->head(f);
	fprintf(f, "%s\n", cmd->title ? cmd->title : "Options:");
	for (size_t s = 0; s < cmd->nsets; s++)
		for (size_t i = 0; i < cmd->sets[s].n; i++)
			if (opts_taken(&cmd->sets[s], i))
				opts_print(f, &cmd->sets[s].opts[i],
					   cmd->sets[s].ctx);
	opts_print(f, &help, NULL);
	if (cmd->tail)
		cmd->tail(f);
}
