/* SPDX-License-Identifier: MIT */
/*
 * opts.h - command-line options as tables: each tool describes its options
 * once ({long name, short letter, argument, help, default, setter}) and
 * tool_opts_parse() builds the getopt_long arrays, the dispatch and the
 * usage text from the tables. The job options shared by rdps-launch,
 * rdps-run, rdps-server and rdps-train experiment are one such table
 * (jobopts.h).
 *
 * Setters print their own one-line error (tool_err) and return -EINVAL,
 * or 0; a setter returning 1 (e.g. --version, having printed) stops the
 * parse with 1, as --help does.
 */
#ifndef RDPS_TOOLS_OPTS_H
#define RDPS_TOOLS_OPTS_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

struct tool_opt {
	const char *name; /* long name, "shards" */
	int key;	  /* short letter; 0: long only */
	const char *arg;  /* argument name in the help, "N"; NULL: none */
	int arg_optional; /* --name[=ARG] */
	const char *help; /* help text; wrapped to 80 columns */
	const char *def;  /* default shown as " (def)"; NULL: none */
	/* Or the tail of the help computed from the parse target (a range,
	 * a default set by the tool), written into buf. */
	void (*show)(const void *ctx, char *buf, size_t len);
	int (*set)(void *ctx, const char *arg);
	unsigned tools; /* jobopts.h: the tools taking it; 0 elsewhere */
};

/* One table and the struct its setters fill. */
struct tool_optset {
	const struct tool_opt *opts;
	size_t n;
	void *ctx;
	unsigned mask; /* only entries whose tools has one of these; 0: all */
	/* Plain getopt_long entries (listed in help by the command's tail),
	 * each handed to raw_set with its val. */
	const struct option *raw;
	size_t nraw;
	int (*raw_set)(void *ctx, int key, const char *arg);
};

/* The first n entries of a tool's own table, parsing into ctx. */
#define TOOL_OPTSET(table, n_, ctx_)                      \
	{                                                 \
		.opts = (table), .n = (n_), .ctx = (ctx_) \
	}

struct tool_cmd {
	const char *name;      /* in messages: "rdps-train experiment" */
	int stop_at_cmd;       /* stop at the first operand: it is a command */
	void (*head)(FILE *f); /* the usage before the options */
	const char *title; /* heading of the option list; NULL: "Options:" */
	void (*tail)(FILE *f); /* after the options; NULL: none */
	const struct tool_optset *sets;
	size_t nsets;
};

/*
 * Parse argv by the command's tables (-h/--help is added and comes last in
 * the usage). Returns 0 with optind at the first operand, 1 when --help (or
 * a setter such as --version) printed, or -EINVAL after one line on stderr
 * (an unknown option, a missing value, or the setter's own error).
 */
int tool_opts_parse(const struct tool_cmd *cmd, int argc, char **argv);
/* The usage: head, the option list made from the tables, tail. */
void tool_opts_usage(const struct tool_cmd *cmd, FILE *f);

#endif /* RDPS_TOOLS_OPTS_H */
