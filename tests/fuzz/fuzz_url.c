/* SPDX-License-Identifier: MIT */
/*
 * fuzz_url.c - libFuzzer target over rdps_url_parse(), which reads every
 * url a user, a launcher or a rendezvous peer hands to a transport.
 *
 * Input: byte 0 bit 0 is need_port, the rest is the url (cut at a NUL, as
 * a C string would be). Besides "no crash" (ASan), each input checks:
 *   - failure is -EINVAL with an rdps_errmsg() and leaves *url_out alone;
 *   - success gives a non-empty scheme and host, NUL-terminated in their
 *     arrays, a host without '/', ' ' or control characters, a port of
 *     -1 (none; only without need_port) or 0..65535;
 *   - a url with a port survives rdps_url_format() and a second parse
 *     unchanged (what a listener prints, a connector can use).
 * Verdict (fuzz.h): accepted or refused.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "rdps/rdps.h"
#include "transport.h"

int fuzz_verdict;

static void breach(const char *what, size_t size)
{
	fuzz_breach("fuzz_url", what, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rdps_url u, again, poison;
	char out[16 + 3 + 2 + 256 + 7];
	int need_port, ret;
	char *url;

	fuzz_verdict = FUZZ_NONE;
	if (!size)
		return 0;
	need_port = data[0] & 1;
	/* Exactly the string's bytes, so ASan sees a read past its NUL. */
	url = malloc(size);
	if (!url)
		return 0;
	memcpy(url, data + 1, size - 1);
	url[size - 1] = '\0';

	memset(&poison, 0x5a, sizeof(poison));
	u = poison;
	ret = rdps_url_parse(url, need_port, &u);
	if (ret) {
		fuzz_verdict = FUZZ_REJECT;
		if (ret != -EINVAL)
			breach("failed with something else than -EINVAL", size);
		if (!*rdps_errmsg())
			breach("failed without an rdps_errmsg", size);
		if (memcmp(&u, &poison, sizeof(u)))
			breach("failed but wrote url_out", size);
		free(url);
		return 0;
	}
	fuzz_verdict = FUZZ_ACCEPT;
	if (!memchr(u.scheme, '\0', sizeof(u.scheme)) ||
	    !memchr(u.host, '\0', sizeof(u.host)))
		breach("scheme or host not NUL-terminated", size);
	if (!u.scheme[0] || !u.host[0])
		breach("accepted an empty scheme or host", size);
	for (const char *p = u.host; *p; p++)
		if (*p == '/' || *p == ' ' || (unsigned char)*p < 0x20)
			breach("accepted a host with '/', ' ' or a control "
			       "character",
			       size);
	if (u.port < -1 || u.port > 65535 || (need_port && u.port < 0))
		breach("port out of range or missing", size);
	if (u.port >= 0) {
		if (rdps_url_format(out, sizeof(out), u.scheme, u.host,
				    (unsigned)u.port))
			breach("cannot format what was parsed", size);
		if (rdps_url_parse(out, 1, &again))
			breach("the formatted url does not parse again", size);
		if (strcmp(again.scheme, u.scheme) ||
		    strcmp(again.host, u.host) || again.port != u.port)
			breach("format and parse do not round-trip", size);
	}
	free(url);
	return 0;
}
