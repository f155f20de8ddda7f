/* SPDX-License-Identifier: MIT */
/*
 * replay.c - run LLVMFuzzerTestOneInput over every file of the directories
 * (or the files) given, without libFuzzer: the seed corpus becomes an
 * ordinary ctest under any compiler. Each input is copied into a buffer of
 * exactly its size, so a sanitizer build catches reads past the end.
 *
 * Seeds named "ok-*" must be accepted by the parser under test and seeds
 * named "bad-*" refused, as the target reports in fuzz_verdict (fuzz.h);
 * other names only have to run without a breach.
 *
 * Exit 0 when at least one input ran, none aborted and every verdict
 * matched; 1 on a wrong verdict, a read error or an empty corpus (a wrong
 * path must not pass as "nothing failed").
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static unsigned n_checked, n_wrong;

/* The verdict a seed's name asks for, FUZZ_NONE if it asks for none. */
static int wanted_verdict(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	if (!strncmp(base, "ok-", 3))
		return FUZZ_ACCEPT;
	if (!strncmp(base, "bad-", 4))
		return FUZZ_REJECT;
	return FUZZ_NONE;
}

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	struct stat st;
	size_t n;
	int want;

	if (!f || fstat(fileno(f), &st)) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	/* malloc(0) may return NULL: keep one byte for empty inputs. */
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		fclose(f);
		return -1;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	fclose(f);
	if (n != (size_t)st.st_size) {
		fprintf(stderr, "replay: %s: short read\n", path);
		free(buf);
		return -1;
	}
	fuzz_verdict = FUZZ_NONE;
	LLVMFuzzerTestOneInput(buf, n);
	free(buf);
	want = wanted_verdict(path);
	if (want != FUZZ_NONE) {
		n_checked++;
		if (fuzz_verdict != want) {
			fprintf(stderr, "replay: %s: %s, want %s\n", path,
				fuzz_verdict == FUZZ_ACCEPT   ? "accepted"
				: fuzz_verdict == FUZZ_REJECT ? "refused"
							      : "no verdict",
				want == FUZZ_ACCEPT ? "accepted" : "refused");
			n_wrong++;
		}
	}
	return 0;
}

static int replay_dir(const char *dir, unsigned *count)
{
	struct dirent *de;
	char path[4096];
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		if (replay_file(path)) {
			closedir(d);
			return -1;
		}
		(*count)++;
	}
	closedir(d);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned count = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		int ret;

		if (stat(argv[i], &st)) {
			fprintf(stderr, "replay: %s: %s\n", argv[i],
				strerror(errno));
			return 1;
		}
		if (S_ISDIR(st.st_mode))
			ret = replay_dir(argv[i], &count);
		else if ((ret = replay_file(argv[i])) == 0)
			count++;
		if (ret)
			return 1;
	}
	if (!count) {
		fprintf(stderr, "replay: no inputs found\n");
		return 1;
	}
	if (n_wrong) {
		fprintf(stderr,
			"replay: %u of %u seeds named ok-/bad- got "
			"the wrong verdict\n",
			n_wrong, n_checked);
		return 1;
	}
	printf("replay: %u inputs, no contract breach, %u verdicts as "
	       "named\n",
	       count, n_checked);
	return 0;
}
