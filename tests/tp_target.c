/* SPDX-License-Identifier: MIT */
/*
 * tp_target.c - the target of the conformance suite (tp_conf.h
 * tc_target_main): a child process that opens its own transport instance
 * and serves the test's commands (enum tcmd) over its channel, one answer
 * per command, while it polls its completions. What it did not expect (a
 * completion it never posted for, a second or stray DISCONNECT, more
 * RECV_IMMs than it keeps, a SIGPIPE) is kept and reported at T_EXIT,
 * where the test fails on it.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rdps_base.h"
#include "tp_conf.h"

struct tgt_region {
	uint8_t *addr;
	size_t len;
	struct rdps_tp_mr *mr;
};

struct tgt_state {
	int fd;
	struct rdps_tp *tp;
	struct rdps_tp_listener *l;
	struct rdps_tp_ep *ep[T_MAX_EP];
	int n_ep;
	struct tgt_region reg[T_MAX_REG];
	int n_reg;
	int w_idx;
	uint64_t w_off, w_len;
	struct imm_rec imm[T_MAX_IMM];
	int n_imm;
	/* DISCONNECT completions: per endpoint index, and of closed ones. */
	int disc[T_MAX_EP];
	int n_disc;
	char bad[256]; /* first unexpected event, reported at T_EXIT */
};

static void tgt_take(struct tgt_state *s, const struct rdps_tp_comp *c, int n)
{
	for (int i = 0; i < n; i++) {
		struct imm_rec *r;

		if (c[i].opcode == RDPS_TP_OP_DISCONNECT) {
			int e = 0;

			while (e < s->n_ep && s->ep[e] != c[i].ep)
				e++;
			if (e == s->n_ep || c[i].wr_id ||
			    c[i].status != RDPS_TP_WC_CONN_ERR ||
			    ++s->disc[e] > 1) {
				if (!s->bad[0])
					snprintf(
						s->bad, sizeof(s->bad),
						"bad DISCONNECT completion: "
						"endpoint %s, wr_id %" PRIu64
						", status %s, %s",
						e == s->n_ep ? "unknown" : "ok",
						c[i].wr_id,
						rdps_tp_status_str(c[i].status),
						e < s->n_ep && s->disc[e] > 1
							? "a second one"
							: "the first");
				continue;
			}
			s->n_disc++;
			continue;
		}
		if (c[i].opcode != RDPS_TP_OP_RECV_IMM) {
			if (!s->bad[0])
				snprintf(
					s->bad, sizeof(s->bad),
					"target polled a %s completion (status "
					"%s, wr_id %" PRIu64 ") but posted "
					"nothing",
					rdps_tp_opcode_str(c[i].opcode),
					rdps_tp_status_str(c[i].status),
					c[i].wr_id);
			continue;
		}
		if (s->n_imm == T_MAX_IMM) {
			if (!s->bad[0])
				snprintf(s->bad, sizeof(s->bad),
					 "more than %d RECV_IMM completions",
					 T_MAX_IMM);
			continue;
		}
		r = &s->imm[s->n_imm++];
		memset(r, 0, sizeof(*r));
		r->imm = c[i].imm;
		r->len = c[i].len;
		r->status = c[i].status;
		r->opcode = c[i].opcode;
		for (int e = 0; e < s->n_ep; e++)
			if (s->ep[e] && s->ep[e] == c[i].ep)
				r->ep_ok = 1;
		if (s->w_idx >= 0 && s->reg[s->w_idx].addr)
			r->hash = th_hash(s->reg[s->w_idx].addr + s->w_off,
					  s->w_len);
	}
}

/* Take completions until *count reaches want or timeout_ms pass: 0, or
 * rdps_tp_wait's error. Waits the way the instance's poll mode says. */
static int tgt_wait_count(struct tgt_state *s, const int *count, uint64_t want,
			  uint64_t timeout_ms)
{
	uint64_t deadline = th_now_ms() + timeout_ms;

	while ((uint64_t)*count < want) {
		struct rdps_tp_comp comps[32];
		uint64_t now = th_now_ms();
		int n;

		if (now >= deadline)
			break;
		n = rdps_tp_wait(s->tp, comps, 32, (int)(deadline - now));
		if (n < 0)
			return n;
		tgt_take(s, comps, n);
	}
	return 0;
}

static void tgt_progress(struct tgt_state *s)
{
	struct rdps_tp_comp comps[32];
	int n = rdps_tp_poll(s->tp, comps, 32);

	if (n < 0 && !s->bad[0])
		snprintf(s->bad, sizeof(s->bad), "rdps_tp_poll returned %d", n);
	if (n > 0)
		tgt_take(s, comps, n);
}

static int tgt_reply(struct tgt_state *s, struct tmsg *m, const void *payload,
		     size_t plen)
{
	if (m->ret < 0 && !m->err[0])
		snprintf(m->err, sizeof(m->err), "%s", rdps_errmsg());
	if (th_send(s->fd, m, sizeof(*m)))
		return -1;
	if (plen && th_send(s->fd, payload, plen))
		return -1;
	return 0;
}

static int tgt_region_ok(struct tgt_state *s, const struct tmsg *m)
{
	return m->idx < (uint32_t)s->n_reg && s->reg[m->idx].addr &&
	       m->a <= s->reg[m->idx].len && m->b <= s->reg[m->idx].len - m->a;
}

static int tgt_release(struct tgt_state *s)
{
	for (int i = 0; i < s->n_ep; i++)
		rdps_tp_ep_close(s->ep[i]);
	s->n_ep = 0;
	rdps_tp_listener_close(s->l);
	s->l = NULL;
	for (int i = 0; i < s->n_reg; i++) {
		rdps_tp_mem_dereg(s->reg[i].mr);
		rdps_tp_mem_free(s->tp, s->reg[i].addr, s->reg[i].len);
	}
	s->n_reg = 0;
	return rdps_tp_close(s->tp);
}

static void tgt_handle(struct tgt_state *s, struct tmsg *m)
{
	struct tgt_region *r;
	uint8_t *payload = NULL;
	size_t plen = 0;

	m->ret = 0;
	m->err[0] = '\0';
	switch (m->cmd) {
	case T_LISTEN:
		m->ret = rdps_tp_listen(s->tp, m->url, m->priv, m->priv_len,
					&s->l);
		if (!m->ret)
			m->ret = rdps_tp_listener_url(s->l, m->url,
						      sizeof(m->url));
		break;
	case T_ACCEPT:
		m->c = 0;
		for (uint64_t i = 0; i < m->a; i++) {
			struct rdps_tp_ep *ep;

			if (s->n_ep == T_MAX_EP) {
				m->ret = -ENOSPC;
				break;
			}
			m->ret = rdps_tp_accept(s->l, &ep, (int)m->b);
			if (m->ret)
				break;
			s->ep[s->n_ep++] = ep;
			m->c++;
			m->priv_len = ep->peer_priv_len;
			memcpy(m->priv, ep->peer_priv, sizeof(m->priv));
		}
		break;
	case T_ALLOC:
		if (s->n_reg == T_MAX_REG) {
			m->ret = -ENOSPC;
			break;
		}
		r = &s->reg[s->n_reg];
		m->ret = rdps_tp_mem_alloc(s->tp, m->a, (void **)&r->addr);
		if (m->ret)
			break;
		r->len = m->a;
		if ((uintptr_t)r->addr % (uintptr_t)sysconf(_SC_PAGESIZE)) {
			m->ret = -EPROTO;
			snprintf(m->err, sizeof(m->err),
				 "mem_alloc(%zu) returned %p, not page-aligned",
				 r->len, (void *)r->addr);
		} else {
			size_t nz = 0;

			while (nz < r->len && !r->addr[nz])
				nz++;
			if (nz < r->len) {
				m->ret = -EPROTO;
				snprintf(m->err, sizeof(m->err),
					 "mem_alloc(%zu) memory not zeroed: "
					 "byte %zu is 0x%02x",
					 r->len, nz, r->addr[nz]);
			}
		}
		th_fill(r->addr, r->len, m->b, 0);
		if (!m->ret)
			m->ret = rdps_tp_mem_reg(s->tp, r->addr, r->len,
						 m->access, &r->mr);
		if (m->ret) {
			rdps_tp_mem_free(s->tp, r->addr, r->len);
			r->addr = NULL;
			break;
		}
		rdps_tp_rkey_pack(r->mr, &m->wire);
		m->idx = (uint32_t)s->n_reg++;
		m->c = (uint64_t)(uintptr_t)r->addr;
		break;
	case T_REG:
		if (m->idx >= (uint32_t)s->n_reg || s->reg[m->idx].mr) {
			m->ret = -EINVAL;
			snprintf(m->err, sizeof(m->err), "bad region %u",
				 m->idx);
			break;
		}
		r = &s->reg[m->idx];
		if (m->a > (uint64_t)s->n_ep || (m->a && !s->ep[m->a - 1])) {
			m->ret = -EINVAL;
			snprintf(m->err, sizeof(m->err),
				 "bad endpoint %" PRIu64, m->a - 1);
			break;
		}
		if (m->a)
			m->ret = rdps_tp_mem_reg_ep(s->ep[m->a - 1], r->addr,
						    r->len, m->access, &r->mr);
		else
			m->ret = rdps_tp_mem_reg(s->tp, r->addr, r->len,
						 m->access, &r->mr);
		if (!m->ret)
			rdps_tp_rkey_pack(r->mr, &m->wire);
		break;
	case T_DEREG:
		if (m->idx >= (uint32_t)s->n_reg || !s->reg[m->idx].mr) {
			m->ret = -EINVAL;
			snprintf(m->err, sizeof(m->err), "bad region %u",
				 m->idx);
			break;
		}
		rdps_tp_mem_dereg(s->reg[m->idx].mr);
		s->reg[m->idx].mr = NULL;
		break;
	case T_FILL:
	case T_HASH:
	case T_READ:
	case T_WATCH:
		if (!tgt_region_ok(s, m) ||
		    (m->cmd == T_READ && m->b > T_MAX_READ)) {
			m->ret = -EINVAL;
			snprintf(m->err, sizeof(m->err),
				 "bad range: region %u off %" PRIu64
				 " len %" PRIu64,
				 m->idx, m->a, m->b);
			break;
		}
		r = &s->reg[m->idx];
		if (m->cmd == T_FILL) {
			th_fill(r->addr + m->a, m->b, m->c, m->a);
		} else if (m->cmd == T_HASH) {
			m->c = th_hash(r->addr + m->a, m->b);
		} else if (m->cmd == T_READ) {
			payload = r->addr + m->a;
			plen = m->b;
		} else {
			s->w_idx = (int)m->idx;
			s->w_off = m->a;
			s->w_len = m->b;
		}
		break;
	case T_IMM_WAIT:
		/* Waits the way the instance's poll mode says. */
		m->ret = tgt_wait_count(s, &s->n_imm, m->a, m->b);
		if (m->ret)
			break;
		m->ret = s->n_imm < (int)m->a ? s->n_imm : (int)m->a;
		payload = (uint8_t *)s->imm;
		plen = (size_t)m->ret * sizeof(struct imm_rec);
		break;
	case T_CLOSE_EPS:
		for (int i = 0; i < s->n_ep; i++)
			rdps_tp_ep_close(s->ep[i]);
		s->n_ep = 0;
		memset(s->disc, 0, sizeof(s->disc));
		break;
	case T_DISC_WAIT:
		/* Posts nothing: the endpoints only receive. */
		m->ret = tgt_wait_count(s, &s->n_disc, m->a, m->b);
		if (!m->ret)
			m->ret = s->n_disc;
		break;
	case T_EXIT:
		m->ret = tgt_release(s);
		if (!m->ret && s->bad[0]) {
			m->ret = -EPROTO;
			snprintf(m->err, sizeof(m->err), "%s", s->bad);
		}
		if (!m->ret && tc_sigpipe_seen) {
			m->ret = -EPIPE;
			snprintf(m->err, sizeof(m->err),
				 "the target got SIGPIPE: a transport wrote "
				 "to a closed socket without MSG_NOSIGNAL");
		}
		tgt_reply(s, m, NULL, 0);
		_exit(m->ret ? 3 : 0);
	default:
		m->ret = -EINVAL;
		snprintf(m->err, sizeof(m->err), "unknown command %u", m->cmd);
	}
	if (tgt_reply(s, m, payload, plen))
		_exit(4);
	if (m->cmd == T_IMM_WAIT && m->ret > 0) {
		memmove(s->imm, s->imm + m->ret,
			(size_t)(s->n_imm - m->ret) * sizeof(struct imm_rec));
		s->n_imm -= m->ret;
	}
}

int tc_target_main(int fd, void *arg)
{
	static struct tgt_state s; /* one per child process */
	const struct rdps_tp_cfg *cfg = arg;
	struct tmsg m;

	memset(&s, 0, sizeof(s));
	s.fd = fd;
	s.w_idx = -1;
	memset(&m, 0, sizeof(m));
	m.cmd = T_HELLO;
	m.ret = rdps_tp_open(tc_scheme(), cfg, &s.tp);
	if (tgt_reply(&s, &m, NULL, 0) || m.ret)
		return 5;
	for (;;) {
		struct pollfd pfd[2] = {
			{.fd = fd, .events = POLLIN},
			{.fd = s.tp->ops->wait_fd(s.tp), .events = POLLIN},
		};
		int armed, r;

		tgt_progress(&s);
		/* Sleep on both the channel and the completion fd. */
		armed = s.tp->ops->arm(s.tp);
		if (armed == -EAGAIN)
			continue;
		r = poll(pfd, armed == 0 ? 2 : 1, armed == 0 ? 5 : 1);
		if (r <= 0 || !(pfd[0].revents & (POLLIN | POLLHUP)))
			continue;
		if (th_recv(fd, &m, sizeof(m), TC_REPLY_MS))
			_exit(6); /* the test is gone */
		tgt_handle(&s, &m);
	}
}
