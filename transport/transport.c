/* SPDX-License-Identifier: MIT */
/* transport.c - transport registry, generic object bookkeeping, waiting. */
#include <assert.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rdps_base.h"
#include "transport.h"

#ifdef RDPS_TRANSPORT_SHM
extern const struct rdps_tp_ops rdps_shm_ops;
#endif
#ifdef RDPS_TRANSPORT_TCP
extern const struct rdps_tp_ops rdps_tcp_ops;
#endif
#ifdef RDPS_TRANSPORT_VERBS
extern const struct rdps_tp_ops rdps_verbs_ops;
#endif

static const struct rdps_tp_ops *const registry[] = {
#ifdef RDPS_TRANSPORT_SHM
	&rdps_shm_ops,
#endif
#ifdef RDPS_TRANSPORT_TCP
	&rdps_tcp_ops,
#endif
#ifdef RDPS_TRANSPORT_VERBS
	&rdps_verbs_ops,
#endif
	NULL,
};

/* Every transport knows of (built in or not), for clear errors. */
static const char *const known_schemes[] = {"shm", "tcp", "verbs"};

void rdps_tp_cfg_default(struct rdps_tp_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->poll_mode = RDPS_TP_POLL_ADAPTIVE;
	cfg->spin_us = 50;
	cfg->sq_depth = 256;
	cfg->cq_depth = 8192;
	cfg->shm_heap_size = (size_t)16 << 30;
	cfg->gid_index = -1;
	cfg->numa_node = -1;
}

const char *rdps_tp_names(void)
{
	static char names[64];

	if (!names[0]) {
		for (size_t i = 0; registry[i]; i++) {
			if (i)
				strcat(names, ",");
			strcat(names, registry[i]->name);
		}
	}
	return names;
}

/* The transport of url, or NULL with *err and rdps_errmsg() set. */
static const struct rdps_tp_ops *tp_find(const char *url, int *err)
{
	size_t n;
	const char *sep;

	if (!url || !*url) {
		*err = rdps_set_error(-EINVAL,
				      "empty transport url: use shm://NAME, "
				      "tcp://HOST:PORT or verbs://HOST:PORT");
		return NULL;
	}
	sep = strstr(url, "://");
	n = sep ? (size_t)(sep - url) : strlen(url);
	for (size_t i = 0; registry[i]; i++) {
		struct rdps_url u;

		if (strlen(registry[i]->name) != n ||
		    strncmp(registry[i]->name, url, n))
			continue;
		/* A malformed url is named before the transport opens
		 * (and blames a device or a socket): "verbs://" is a typo,
		 * not a missing NIC. A bare scheme only picks the
		 * transport. */
		if (sep && (*err = rdps_url_parse(url, 0, &u)))
			return NULL;
		return registry[i];
	}
	for (size_t i = 0; i < RDPS_ARRAY_SIZE(known_schemes); i++) {
		if (strlen(known_schemes[i]) == n &&
		    !strncmp(known_schemes[i], url, n)) {
			*err = rdps_set_error(
				-EPROTONOSUPPORT,
				"transport '%s' is not built into this "
				"rdps (built in: %s); rebuild with "
				"-DRDPS_TRANSPORT_%s=ON",
				known_schemes[i], rdps_tp_names(),
				i == 0	 ? "SHM"
				: i == 1 ? "TCP"
					 : "VERBS");
			return NULL;
		}
	}
	*err = rdps_set_error(-EINVAL,
			      "unknown transport in '%s': use shm://NAME, "
			      "tcp://HOST:PORT or verbs://HOST:PORT",
			      url);
	return NULL;
}

const struct rdps_tp_ops *rdps_tp_lookup(const char *url)
{
	int err;

	return tp_find(url, &err);
}

static int cfg_check(const struct rdps_tp_cfg *cfg)
{
	if (cfg->poll_mode > RDPS_TP_POLL_EVENT)
		return rdps_set_error(-EINVAL,
				      "bad poll mode %d: use busy, "
				      "adaptive or event",
				      (int)cfg->poll_mode);
	if (cfg->sq_depth < 1 || cfg->sq_depth > 65536)
		return rdps_set_error(-EINVAL,
				      "send queue depth %u out of "
				      "range: use 1..65536",
				      cfg->sq_depth);
	if (cfg->cq_depth < cfg->sq_depth || cfg->cq_depth > (1u << 22))
		return rdps_set_error(-EINVAL,
				      "completion queue depth %u out of range: "
				      "use sq_depth (%u) .. 4194304",
				      cfg->cq_depth, cfg->sq_depth);
	return 0;
}

int rdps_tp_open(const char *url, const struct rdps_tp_cfg *cfg,
		 struct rdps_tp **tp_out)
{
	const struct rdps_tp_ops *ops;
	struct rdps_tp_cfg def;
	struct rdps_tp *tp;
	int ret;

	ops = tp_find(url, &ret);
	if (!ops)
		return ret;
	assert(ops->size == sizeof(*ops));
	assert(ops->init && ops->fini && ops->listen && ops->accept &&
	       ops->connect && ops->ep_close && ops->mem_reg &&
	       ops->mem_reg_ep && ops->mem_dereg && ops->rkey_pack &&
	       ops->rkey_unpack && ops->put && ops->get && ops->poll &&
	       ops->mem_alloc && ops->mem_free && ops->listener_close &&
	       ops->listener_url && ops->put_imm && ops->atomic_fadd &&
	       ops->atomic_cswap && ops->wait_fd && ops->arm);
	if (!cfg) {
		rdps_tp_cfg_default(&def);
		cfg = &def;
	}
	ret = cfg_check(cfg);
	if (ret)
		return ret;
	rdps_clear_error();
	ret = ops->init(cfg, &tp);
	if (ret) {
		/* Every failure leaves an explanation for the caller. */
		if (!*rdps_errmsg())
			rdps_set_error(ret, "cannot open the %s transport: %s",
				       ops->name, strerror(-ret));
		return ret;
	}
	tp->ops = ops;
	tp->cfg = *cfg;
	if (tp->place.reason == RDPS_NUMA_NONE)
		tp->place.node = -1;
	tp->n_ep = tp->n_mr = tp->n_lst = 0;
	tp->spin_ns = (uint64_t)cfg->spin_us * 1000ull;
	tp->spin_waits = 0;
	*tp_out = tp;
	return 0;
}

int rdps_tp_close(struct rdps_tp *tp)
{
	if (!tp)
		return 0;
	if (tp->n_ep || tp->n_mr || tp->n_lst) {
		rdps_warn("%s transport still has %d endpoints, %d "
			  "registrations, %d listeners",
			  tp->ops->name, tp->n_ep, tp->n_mr, tp->n_lst);
		return -EBUSY;
	}
	tp->ops->fini(tp);
	return 0;
}

int rdps_tp_listen(struct rdps_tp *tp, const char *url, const void *priv,
		   size_t priv_len, struct rdps_tp_listener **l_out)
{
	int ret;

	if (priv_len > RDPS_TP_PRIV_MAX)
		return rdps_set_error(-EINVAL,
				      "listener private data of %zu bytes is "
				      "over the %d-byte limit",
				      priv_len, RDPS_TP_PRIV_MAX);
	ret = tp->ops->listen(tp, url, priv, priv_len, l_out);

	if (!ret)
		tp->n_lst++;
	return ret;
}

int rdps_tp_listener_url(struct rdps_tp_listener *l, char *buf, size_t len)
{
	return l->tp->ops->listener_url(l, buf, len);
}

int rdps_tp_accept(struct rdps_tp_listener *l, struct rdps_tp_ep **ep_out,
		   int timeout_ms)
{
	int ret = l->tp->ops->accept(l, ep_out, timeout_ms);

	if (!ret)
		l->tp->n_ep++;
	return ret;
}

void rdps_tp_listener_close(struct rdps_tp_listener *l)
{
	struct rdps_tp *tp;

	if (!l)
		return;
	tp = l->tp;
	tp->ops->listener_close(l);
	tp->n_lst--;
}

int rdps_tp_connect(struct rdps_tp *tp, const char *url, const void *priv,
		    size_t priv_len, struct rdps_tp_ep **ep_out, int timeout_ms)
{
	int ret;

	if (priv_len > RDPS_TP_PRIV_MAX)
		return rdps_set_error(-EINVAL,
				      "connect private data of %zu bytes is "
				      "over the %d-byte limit",
				      priv_len, RDPS_TP_PRIV_MAX);
	ret = tp->ops->connect(tp, url, priv, priv_len, ep_out, timeout_ms);

	if (!ret)
		tp->n_ep++;
	return ret;
}

void rdps_tp_ep_close(struct rdps_tp_ep *ep)
{
	struct rdps_tp *tp;

	if (!ep)
		return;
	tp = ep->tp;
	tp->ops->ep_close(ep);
	tp->n_ep--;
}

int rdps_tp_mem_alloc(struct rdps_tp *tp, size_t len, void **addr_out)
{
	if (!len)
		return rdps_set_error(-EINVAL, "cannot allocate 0 bytes");
	return tp->ops->mem_alloc(tp, len, addr_out);
}

void rdps_tp_mem_free(struct rdps_tp *tp, void *addr, size_t len)
{
	if (addr)
		tp->ops->mem_free(tp, addr, len);
}

static int mem_reg_check(void *addr, size_t len, unsigned access)
{
	if (!addr || !len)
		return rdps_set_error(-EINVAL,
				      "cannot register an empty "
				      "region (addr %p len %zu)",
				      addr, len);
	if (access & ~(unsigned)(RDPS_TP_ACCESS_REMOTE_READ |
				 RDPS_TP_ACCESS_REMOTE_WRITE |
				 RDPS_TP_ACCESS_REMOTE_ATOMIC))
		return rdps_set_error(-EINVAL, "unknown access bits 0x%x",
				      access);
	return 0;
}

int rdps_tp_mem_reg(struct rdps_tp *tp, void *addr, size_t len, unsigned access,
		    struct rdps_tp_mr **mr_out)
{
	int ret = mem_reg_check(addr, len, access);

	if (!ret)
		ret = tp->ops->mem_reg(tp, addr, len, access, mr_out);
	if (!ret)
		tp->n_mr++;
	return ret;
}

int rdps_tp_mem_reg_ep(struct rdps_tp_ep *ep, void *addr, size_t len,
		       unsigned access, struct rdps_tp_mr **mr_out)
{
	int ret = mem_reg_check(addr, len, access);

	if (!ret)
		ret = ep->tp->ops->mem_reg_ep(ep, addr, len, access, mr_out);
	if (!ret)
		ep->tp->n_mr++;
	return ret;
}

void rdps_tp_mem_dereg(struct rdps_tp_mr *mr)
{
	struct rdps_tp *tp;

	if (!mr)
		return;
	tp = mr->tp;
	tp->ops->mem_dereg(mr);
	tp->n_mr--;
}

/* Spins between clock readings in rdps_tp_wait(). */
#define RDPS_TP_WAIT_CLOCK_EVERY 64

static int wait_on_fd(struct rdps_tp *tp, int timeout_ms)
{
	struct pollfd pfd = {.fd = tp->ops->wait_fd(tp), .events = POLLIN};
	int ret;

	ret = tp->ops->arm(tp);
	if (ret == -EAGAIN)
		return 0;
	if (ret)
		return ret;
	tp->wait_sleeps++;
	ret = poll(&pfd, 1, timeout_ms);
	if (ret < 0 && errno != EINTR)
		return -errno;
	return 0;
}

/*
 * Adaptive polling spins only while spinning pays. Spinning saves a wake-up
 * when the completion comes within the spin, which needs the peer to run
 * meanwhile; where cores are short (the peer, or its wake-up, waits for the
 * core the spinner holds) or the peer is asleep itself, every spin runs out
 * and only adds its length to the wait, and the CPU it burnt makes the
 * scheduler slower to run this thread when it is woken (tcp round on 2
 * loaded cores: 35 us with no spin, 76 us spinning 5 us, 265 us spinning
 * 50 us). So a wait answered during its spin puts the budget back to
 * spin_us; one that spun in vain and slept halves it (below 1 us: none); and
 * every RDPS_TP_SPIN_PROBE-th wait spins the whole spin_us, to learn when
 * spinning pays again. Never longer than spin_us: a spin learned upwards (to
 * 1 ms) made runs bimodal and cost shm pushes 3-6x on 2 cores.
 */
#define RDPS_TP_SPIN_PROBE 64

/* How long this wait spins before it sleeps (ns); UINT64_MAX: until the
 * deadline. */
static uint64_t wait_spin_ns(struct rdps_tp *tp)
{
	uint64_t full = (uint64_t)tp->cfg.spin_us * 1000ull;

	if (tp->cfg.poll_mode == RDPS_TP_POLL_BUSY)
		return UINT64_MAX;
	if (tp->cfg.poll_mode == RDPS_TP_POLL_EVENT)
		return 0;
	if (tp->spin_ns > full)
		tp->spin_ns = full; /* spin_us lowered since */
	if (++tp->spin_waits % RDPS_TP_SPIN_PROBE == 0)
		return full;
	return tp->spin_ns;
}

/* A wait that spun for spin ns got its completion with (slept) or without
 * sleeping. */
static void wait_spin_learn(struct rdps_tp *tp, uint64_t spin, int slept)
{
	if (!spin || spin == UINT64_MAX)
		return;
	if (!slept)
		tp->spin_ns = (uint64_t)tp->cfg.spin_us * 1000ull;
	else
		tp->spin_ns = tp->spin_ns / 2 < 1000 ? 0 : tp->spin_ns / 2;
}

/* How long a wait spins on after it saw bytes move toward a completion
 * (tp->moved), from when it saw them (ns): 0 when it never spins. */
static uint64_t wait_moving_ns(const struct rdps_tp *tp)
{
	if (tp->cfg.poll_mode != RDPS_TP_POLL_ADAPTIVE)
		return 0;
	return (uint64_t)tp->cfg.spin_us * 1000ull;
}

int rdps_tp_wait(struct rdps_tp *tp, struct rdps_tp_comp *comps, int max,
		 int timeout_ms)
{
	uint64_t start, now, spin, spin_end, deadline, moved, seen;
	int n, ret, slept = 0;

	n = tp->ops->poll(tp, comps, max);
	if (n || timeout_ms == 0)
		return n;
	deadline = rdps_deadline(timeout_ms);
	start = now = rdps_now_ns();
	spin = wait_spin_ns(tp);
	spin_end = spin == UINT64_MAX ? deadline : start + spin;
	seen = __atomic_load_n(&tp->moved, __ATOMIC_RELAXED);
	for (unsigned spins = 1;; spins++) {
		n = tp->ops->poll(tp, comps, max);
		if (n) {
			wait_spin_learn(tp, spin, slept);
			return n;
		}
		/* Where the clock is a system call (hpet in a VM), reading it
		 * every spin would cost more than the poll. Not after a
		 * wake-up (the spin ended before the last reading): back to
		 * sleep at once if it brought no completion and moved no
		 * bytes of one (a request served, an acknowledgement); a
		 * burst of polls there cost a shard serving 1 MiB reads a
		 * spinning core beside the reader. */
		if (spin_end > now && spins % RDPS_TP_WAIT_CLOCK_EVERY)
			continue;
		now = rdps_now_ns();
		/* Bytes of a completion moving (a 1 MiB READ response
		 * arriving socket buffer by socket buffer): the peer runs
		 * and the completion is near, so spin on rather than sleep
		 * and be woken again for every piece (each wake-up cost a
		 * 1 MiB tcp pull ~30 us, 4-5 of them per pull); sleep once
		 * nothing moved for a spin's length. */
		moved = __atomic_load_n(&tp->moved, __ATOMIC_RELAXED);
		if (moved != seen) {
			seen = moved;
			if (now + wait_moving_ns(tp) > spin_end)
				spin_end = now + wait_moving_ns(tp);
		}
		if (now >= deadline) {
			if (slept) /* the spin was in vain too */
				wait_spin_learn(tp, spin, slept);
			return 0;
		}
		if (now < spin_end)
			continue;
		ret = wait_on_fd(tp, rdps_ms_left(deadline));
		if (ret)
			return ret;
		slept = 1;
	}
}

int rdps_tp_bind_poller(struct rdps_tp *tp)
{
	return tp->ops->bind_poller ? tp->ops->bind_poller(tp) : 0;
}

void rdps_tp_rkey_encode(const struct rdps_tp_mr *mr, uint32_t key,
			 struct rdps_tp_rkey_wire *w)
{
	w->addr_be = rdps_htobe64((uint64_t)(uintptr_t)mr->addr);
	w->len_be = rdps_htobe64((uint64_t)mr->len);
	w->rkey_be = rdps_htobe32(key);
	w->pad = 0;
}

int rdps_tp_rkey_decode(const char *tp_name, const struct rdps_tp_rkey_wire *w,
			rdps_tp_rkey_check_fn *check,
			struct rdps_tp_rkey *rkey_out)
{
	struct rdps_tp_rkey k = {
		.addr = rdps_be64toh(w->addr_be),
		.len = rdps_be64toh(w->len_be),
		.key = rdps_be32toh(w->rkey_be),
	};
	const char *why = NULL;

	/* Keys travel inside messages a peer wrote: check every field the
	 * target's checks rely on before it is used for an operation. */
	if (w->pad)
		why = "its pad is not zero";
	else if (!k.len)
		why = "its length is 0, and no registration is empty";
	else if (k.addr + k.len < k.addr)
		why = "its region wraps around the address space";
	else if (check)
		why = check(k.key);
	if (why)
		return rdps_set_error(-EINVAL,
				      "malformed %s remote key (addr 0x%llx "
				      "len %llu key 0x%x pad 0x%x): %s; pass "
				      "on the 24 bytes rdps_tp_rkey_pack "
				      "produced, unchanged, to an endpoint of "
				      "the same transport",
				      tp_name, (unsigned long long)k.addr,
				      (unsigned long long)k.len, k.key,
				      rdps_be32toh(w->pad), why);
	*rkey_out = k;
	return 0;
}

/* Gather READ: limits and the generic fallback ------------------------ */

int rdps_tp_gather_check(const struct rdps_tp_gather_ent *ents, unsigned k,
			 unsigned sq_depth, uint64_t *total)
{
	uint64_t sum = 0;

	if (!ents || !k || k > RDPS_TP_GATHER_MAX)
		return rdps_set_error(-EINVAL,
				      "gather READ of %u ranges: use 1..%u "
				      "and post more gathers for more",
				      k, RDPS_TP_GATHER_MAX);
	if (sq_depth && k > sq_depth)
		return rdps_set_error(
			-EINVAL,
			"gather READ of %u ranges takes %u "
			"send-queue slots here, over sq_depth %u: "
			"split it",
			k, k, sq_depth);
	for (unsigned i = 0; i < k; i++) {
		if (!ents[i].len || !ents[i].rkey)
			return rdps_set_error(
				-EINVAL, "gather READ range %u has %s", i,
				ents[i].len ? "no remote key" : "length 0");
		sum += ents[i].len;
	}
	/* k * UINT32_MAX cannot wrap 64 bits. */
	if (sum > RDPS_TP_GATHER_MAX_BYTES)
		return rdps_set_error(-EINVAL,
				      "gather READ of %llu bytes is over the "
				      "%u-byte limit: split it",
				      (unsigned long long)sum,
				      RDPS_TP_GATHER_MAX_BYTES);
	*total = sum;
	return 0;
}

/* k plain READs, only the last signaled: one completion when all succeed
 * (the contract's caveats on failure are at rdps_tp_get_gather_fn). */
int rdps_tp_get_gather_fallback(struct rdps_tp_ep *ep,
				const struct rdps_tp_gather_ent *ents,
				unsigned k, struct rdps_tp_mr *lmr,
				uint64_t wr_id, unsigned flags)
{
	uint64_t total;
	int ret = rdps_tp_gather_check(ents, k, ep->tp->cfg.sq_depth, &total);

	for (unsigned i = 0; !ret && i < k; i++)
		ret = ep->tp->ops->get(ep, ents[i].lbuf, ents[i].len, lmr,
				       ents[i].raddr, ents[i].rkey, wr_id,
				       i + 1 < k ? flags | RDPS_TP_F_UNSIGNALED
						 : flags);
	return ret;
}

int rdps_tp_no_listener_url(struct rdps_tp_listener *l, char *buf, size_t len)
{
	(void)l;
	(void)buf;
	(void)len;
	return -EOPNOTSUPP;
}

const char *rdps_tp_status_str(int status)
{
	switch (status) {
	case RDPS_TP_WC_SUCCESS:
		return "success";
	case RDPS_TP_WC_REM_ACCESS_ERR:
		return "remote access error";
	case RDPS_TP_WC_REM_INV_REQ_ERR:
		return "remote invalid request";
	case RDPS_TP_WC_CONN_ERR:
		return "connection lost";
	case RDPS_TP_WC_FLUSH_ERR:
		return "flushed";
	case RDPS_TP_WC_LOC_PROT_ERR:
		return "local protection error";
	default:
		return "general error";
	}
}

const char *rdps_tp_opcode_str(int opcode)
{
	static const char *const names[] = {"?",	 "read",      "write",
					    "write_imm", "fadd",      "cswap",
					    "recv_imm",	 "disconnect"};

	return opcode > 0 && opcode < (int)RDPS_ARRAY_SIZE(names)
		       ? names[opcode]
		       : "?";
}

int rdps_url_format(char *buf, size_t len, const char *scheme, const char *host,
		    unsigned port)
{
	int v6 = strchr(host, ':') != NULL;
	int n = snprintf(buf, len, "%s://%s%s%s:%u", scheme, v6 ? "[" : "",
			 host, v6 ? "]" : "", port);

	if (n < 0 || (size_t)n >= len)
		return rdps_set_error(-ENOSPC,
				      "listener url needs %d bytes, buffer "
				      "has %zu",
				      n + 1, len);
	return 0;
}

int rdps_url_parse(const char *url, int need_port, struct rdps_url *url_out)
{
	struct rdps_url tmp, *out = &tmp;
	const char *sep, *rest, *colon, *tail;
	size_t n;
	long port = -1;

	memset(out, 0, sizeof(*out));
	out->port = -1;
	if (!url)
		return rdps_set_error(-EINVAL, "missing url");
	sep = strstr(url, "://");
	if (!sep || sep == url)
		return rdps_set_error(-EINVAL,
				      "malformed url '%s': expected "
				      "SCHEME://HOST:PORT or shm://NAME",
				      url);
	n = (size_t)(sep - url);
	if (n >= sizeof(out->scheme))
		return rdps_set_error(-EINVAL,
				      "malformed url '%s': scheme "
				      "too long",
				      url);
	memcpy(out->scheme, url, n);
	rest = sep + 3;
	if (!*rest)
		return rdps_set_error(-EINVAL,
				      "malformed url '%s': nothing after "
				      "'://' (give HOST:PORT or NAME)",
				      url);
	tail = rest + strcspn(rest, "/?#");
	if (*tail)
		return rdps_set_error(-EINVAL,
				      "malformed url '%s': '%s' after the "
				      "address: an rdps url has no path, "
				      "query or fragment (use %s://HOST:PORT "
				      "or shm://NAME)",
				      url, tail, out->scheme);
	if (rest[0] == '[') { /* [v6addr]:port */
		const char *close = strchr(rest, ']');

		if (!close)
			return rdps_set_error(-EINVAL,
					      "malformed url '%s': "
					      "missing ']'",
					      url);
		n = (size_t)(close - rest - 1);
		if (n == 0 || n >= sizeof(out->host))
			return rdps_set_error(-EINVAL,
					      "malformed url '%s': "
					      "bad host",
					      url);
		memcpy(out->host, rest + 1, n);
		colon = close[1] == ':' ? close + 1 : NULL;
		if (!colon && close[1])
			return rdps_set_error(-EINVAL,
					      "malformed url '%s': junk after "
					      "']'",
					      url);
	} else {
		colon = strrchr(rest, ':');
		n = colon ? (size_t)(colon - rest) : strlen(rest);
		if (n == 0 || n >= sizeof(out->host))
			return rdps_set_error(-EINVAL,
					      "malformed url '%s': "
					      "empty or too long host",
					      url);
		memcpy(out->host, rest, n);
	}
	/* No brackets inside a host: rdps_url_format() could not write it
	 * back ("tcp://a]:b:1" would become "tcp://[a]:b]:1"). */
	for (const char *p = out->host; *p; p++) {
		if (*p == '/' || *p == ' ' || *p == '[' || *p == ']' ||
		    (unsigned char)*p < 0x20)
			return rdps_set_error(
				-EINVAL,
				"malformed url '%s': character "
				"'%c' not allowed in host or name",
				url, (unsigned char)*p < 0x20 ? '?' : *p);
	}
	if (colon) {
		/* Digits only: strtol() would take " 7000" and "+7000". */
		n = strspn(colon + 1, "0123456789");
		if (n && n <= 5 && !colon[1 + n])
			port = strtol(colon + 1, NULL, 10);
		if (port < 0 || port > 65535)
			return rdps_set_error(
				-EINVAL,
				"malformed url '%s': port '%s' "
				"is not a number 0..65535 (digits "
				"only)",
				url, colon + 1);
		out->port = (int)port;
	} else if (need_port) {
		return rdps_set_error(
			-EINVAL, "url '%s' has no port: use %s://HOST:PORT",
			url, out->scheme);
	}
	*url_out = tmp;
	return 0;
}
