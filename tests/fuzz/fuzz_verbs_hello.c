/* SPDX-License-Identifier: MIT */
/*
 * fuzz_verbs_hello.c - libFuzzer target over what a verbs peer sends
 * through rdmacm: the private data of a connect request or accept reply
 * (verbs_hello_parse) and the remote keys in its blob (verbs_rkey_unpack).
 *
 * Input: byte 0 picks the kind expected (bit 0: HELLO or REPLY); then the
 * private data, cut at 48 bytes as verbs_cm_progress() cuts what rdmacm
 * delivers (RDMA_CM_EVENT_* private_data_len can be larger: 56 for RC on
 * InfiniBand, 196 for a CM REQ). The parser expects protocol version 1
 * and token 42. Each input checks:
 *   - an accepted message has our magic, the kind asked for, version 1,
 *     token 42, priv_len <= 32 and its blob inside the bytes received;
 *   - a refusal is one of the reject reasons the listener can send;
 *   - an accepted remote key is non-empty and does not wrap.
 * Verdict (fuzz.h): whether verbs_hello_parse() accepted the data.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "verbs/verbs.h"

int fuzz_verdict;

#define VERSION 1
#define TOKEN 42

static void breach(const char *what, size_t size)
{
	fuzz_breach("fuzz_verbs_hello", what, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct verbs_hello h;
	struct rdps_tp_rkey_wire w;
	struct rdps_tp_rkey k;
	uint8_t kind;
	size_t len;
	int ret;

	fuzz_verdict = FUZZ_NONE;
	if (!size)
		return 0;
	kind = data[0] & 1 ? VERBS_MSG_REPLY : VERBS_MSG_HELLO;
	len = size - 1 > VERBS_PDATA_MAX ? VERBS_PDATA_MAX : size - 1;

	ret = verbs_hello_parse(data + 1, len, kind, VERSION, TOKEN, &h);
	if (ret) {
		fuzz_verdict = FUZZ_REJECT;
		if (ret != VERBS_REJ_MALFORMED && ret != VERBS_REJ_VERSION &&
		    ret != VERBS_REJ_TOKEN)
			breach("refused with an unknown reason", size);
	} else {
		fuzz_verdict = FUZZ_ACCEPT;
		if (rdps_be32toh(h.magic_be) != VERBS_MAGIC || h.kind != kind ||
		    h.version != VERSION || rdps_be64toh(h.token_be) != TOKEN)
			breach("accepted a foreign magic, kind, version or "
			       "token",
			       size);
		if (h.priv_len > RDPS_TP_PRIV_MAX ||
		    sizeof(h) + h.priv_len > len)
			breach("accepted a blob beyond the data received",
			       size);
	}

	if (size - 1 >= sizeof(w)) {
		memcpy(&w, data + 1, sizeof(w));
		if (!verbs_rkey_unpack(NULL, &w, &k) &&
		    (!k.len || k.addr + k.len < k.addr))
			breach("rkey: accepted an empty or wrapping key", size);
	}
	return 0;
}
