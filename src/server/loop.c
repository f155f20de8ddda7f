/* SPDX-License-Identifier: MIT */
/*
 * loop.c - a shard's life: create, the event loop and the completions it
 * hands out, destroy. The layout and the protocol are ps_proto.h's;
 * comments here say why, not what.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/server_impl.h"

#define SRV_POLL_BATCH 32
#define SRV_WAIT_MS_JOINING 5 /* wait slice while workers are missing */
#define SRV_WAIT_MS_FULL 100  /* wait slice once everyone is connected */
#define SRV_ACCEPT_EVERY_NS (20 * 1000000ull)

void rdps_server_cfg_default(struct rdps_server_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->nshards = 1;
	cfg->workers = 1;
	cfg->model = RDPS_MODEL_BSP;
	cfg->poll_mode = RDPS_TP_POLL_ADAPTIVE;
	cfg->slot_bytes = PS_SLOT_BYTES_DEFAULT;
	cfg->resume_clock = RDPS_SERVER_RESUME_NEWEST;
	cfg->heartbeat_ms = PS_HEARTBEAT_MS;
}

/* A completion of the shard's own post: a refusing welcome written, a
 * pulse read back, or a reply (its failure only). */
static void srv_comp_sent(struct rdps_server *s, const struct rdps_tp_comp *c)
{
	uint32_t kind = (uint32_t)(c->wr_id >> 32);
	uint32_t idx = (uint32_t)c->wr_id;
	struct srv_worker *w;
	char why[96];

	if (kind == SRV_WR_REJECT && idx < SRV_REJECT_MAX) {
		srv_reject_sent(s, idx);
		return;
	}
	if (idx >= s->cfg.workers)
		return;
	w = &s->w[idx];
	if (kind == SRV_WR_PULSE && w->state == SRV_W_LIVE &&
	    (!c->ep || c->ep == w->ep)) {
		if (c->status == RDPS_TP_WC_SUCCESS) {
			srv_pulse_seen(w, srv_pulses(s)[idx]);
		} else {
			snprintf(why, sizeof(why), "pulse read failed: %s",
				 rdps_tp_status_str(c->status));
			srv_worker_dead(w, why);
		}
		return;
	}
	if (kind != SRV_WR_REPLY)
		return;
	if (c->status != RDPS_TP_WC_SUCCESS && w->state == SRV_W_LIVE &&
	    (!c->ep || c->ep == w->ep)) {
		snprintf(why, sizeof(why), "reply failed: %s",
			 rdps_tp_status_str(c->status));
		srv_worker_dead(w, why);
	}
}

/* A worker's write with immediate arrived (or failed). */
static void srv_comp_recv(const struct rdps_tp_comp *c)
{
	struct srv_worker *w;
	char why[96];

	if (!c->ep || !c->ep->user)
		return; /* closed or refused: nothing to serve */
	w = c->ep->user;
	if (w->state != SRV_W_LIVE)
		return;
	if (c->status != RDPS_TP_WC_SUCCESS) {
		snprintf(why, sizeof(why), "receive failed: %s",
			 rdps_tp_status_str(c->status));
		srv_worker_dead(w, why);
		return;
	}
	srv_recv(w, c->imm, c->len);
}

static void srv_handle_comp(struct rdps_server *s, const struct rdps_tp_comp *c)
{
	struct srv_worker *w;

	if (c->opcode == RDPS_TP_OP_DISCONNECT) {
		w = c->ep ? c->ep->user : NULL;
		if (w && w->state == SRV_W_LIVE)
			srv_worker_dead(w, "connection lost (the worker exited "
					   "or died)");
		return;
	}
	if (c->opcode != RDPS_TP_OP_RECV_IMM)
		srv_comp_sent(s, c);
	else
		srv_comp_recv(c);
}

/* Loop ------------------------------------------------------------------ */

/* Accept the peers waiting, as often as the job's state asks; set
 * *wait_ms_out to how long the loop may then wait for completions. 0 or
 * the listener's fatal -errno. */
static int srv_accept_step(struct rdps_server *s, int *wait_ms_out)
{
	int ret;

	if (s->live == 0 && s->live + s->dead + s->left < s->cfg.workers) {
		/* Nothing to serve: sleep in accept itself. */
		ret = srv_accept_all(s, SRV_WAIT_MS_JOINING * 10);
		*wait_ms_out = 0;
	} else if (s->live + s->dead + s->left < s->cfg.workers ||
		   rdps_now_ns() - s->last_accept_ns >= SRV_ACCEPT_EVERY_NS) {
		ret = srv_accept_all(s, 0);
		*wait_ms_out = s->live + s->dead + s->left < s->cfg.workers
				       ? SRV_WAIT_MS_JOINING
				       : SRV_WAIT_MS_FULL;
	} else {
		ret = 0;
		*wait_ms_out = SRV_WAIT_MS_FULL;
	}
	return ret;
}

/* Handle the n completions in comps, then those that came meanwhile,
 * until none is left or *stop is set. 0 or -errno (rdps_errmsg()). */
static int srv_drain(struct rdps_server *s, struct rdps_tp_comp *comps, int n,
		     const volatile sig_atomic_t *stop)
{
	while (n > 0) {
		for (int i = 0; i < n; i++)
			srv_handle_comp(s, &comps[i]);
		srv_ep_close_doomed(s);
		/* Drain what came meanwhile before waiting again. */
		n = rdps_tp_poll(s->tp, comps, SRV_POLL_BATCH);
		if (n < 0)
			return rdps_set_error(n, "shard %u: polling failed: %s",
					      s->cfg.shard, strerror(-n));
		if (stop && *stop)
			break;
	}
	return 0;
}

int rdps_server_run(struct rdps_server *s, const volatile sig_atomic_t *stop)
{
	struct rdps_tp_comp comps[SRV_POLL_BATCH];
	int n, ret, wait_ms;

	/* Who handles messages, for a reader of /proc (ps_dir_stats). */
	s->dir->stats.pid_be = rdps_htobe32((uint32_t)getpid());
	s->dir->stats.tid_be = rdps_htobe32((uint32_t)gettid());
	while (!(stop && *stop)) {
		srv_pulse(s);
		ret = srv_accept_step(s, &wait_ms);
		if (ret) {
			return rdps_set_error(ret,
					      "shard %u: accepting on %s "
					      "failed: %s",
					      s->cfg.shard, s->url,
					      strerror(-ret));
		}
		for (unsigned r = 0; s->backlog && r < s->cfg.workers; r++)
			if (s->w[r].ring_head != s->w[r].ring_tail)
				srv_worker_flush(&s->w[r]);
		/* No completion in hand here: close what died meanwhile. */
		srv_ep_close_doomed(s);
		n = rdps_tp_wait(s->tp, comps, SRV_POLL_BATCH, wait_ms);
		if (n < 0) {
			return rdps_set_error(n,
					      "shard %u: waiting for "
					      "completions failed: %s",
					      s->cfg.shard, strerror(-n));
		}
		ret = srv_drain(s, comps, n, stop);
		if (ret)
			return ret;
		if (s->ckpt_err)
			return rdps_set_error(s->ckpt_err, "%s", s->ckpt_msg);
	}
	/* Stopping: nobody waits for a release that will not come. */
	srv_wake_all(s);
	for (unsigned r = 0; s->backlog && r < s->cfg.workers; r++)
		if (s->w[r].ring_head != s->w[r].ring_tail)
			srv_worker_flush(&s->w[r]);
	return 0;
}

/* Create and destroy ----------------------------------------------------- */

static int srv_check_cfg(const struct rdps_server_cfg *cfg)
{
	if (!cfg->url || !*cfg->url)
		return rdps_set_error(-EINVAL,
				      "no listen url: give e.g. "
				      "shm://job-s0 or tcp://0.0.0.0:7000");
	if (cfg->nshards < 1 || cfg->nshards > 65535)
		return rdps_set_error(-EINVAL,
				      "shard count %u is out of range: use "
				      "1..65535",
				      cfg->nshards);
	if (cfg->shard >= cfg->nshards)
		return rdps_set_error(-EINVAL,
				      "shard index %u is out of range: with %u "
				      "shards use 0..%u",
				      cfg->shard, cfg->nshards,
				      cfg->nshards - 1);
	if (cfg->workers < 1 || cfg->workers > RDPS_SERVER_WORKERS_MAX)
		return rdps_set_error(-EINVAL,
				      "worker count %u is out of range: use "
				      "1..%u",
				      cfg->workers, RDPS_SERVER_WORKERS_MAX);
	if ((unsigned)cfg->model >= RDPS_MODEL_COUNT)
		return rdps_set_error(
			-EINVAL, "unknown model %d: use bsp, ssp, asp or absp",
			(int)cfg->model);
	if (rdps_model_in_order(cfg->model) && cfg->slack)
		return rdps_set_error(-EINVAL,
				      "%s has no slack (got %u): use the ssp "
				      "model for a slack",
				      rdps_model_name(cfg->model), cfg->slack);
	if (cfg->ckpt_dir && !rdps_model_in_order(cfg->model))
		return rdps_set_error(-EINVAL,
				      "checkpoints need model bsp or absp: "
				      "under %s a shard has no clock boundary "
				      "to save at",
				      rdps_model_name(cfg->model));
	if (cfg->resume && !cfg->ckpt_dir)
		return rdps_set_error(-EINVAL,
				      "resume needs a checkpoint directory");
	if (ps_clock_k(cfg->slack) > PS_CLOCK_K_MAX)
		return rdps_set_error(-EINVAL,
				      "slack %u is too large: at most %d",
				      cfg->slack, PS_CLOCK_K_MAX - 2);
	if (cfg->slot_bytes &&
	    (cfg->slot_bytes < RDPS_SERVER_SLOT_MIN ||
	     cfg->slot_bytes > RDPS_SERVER_SLOT_MAX || cfg->slot_bytes % 64))
		return rdps_set_error(-EINVAL,
				      "slot size %zu is not valid: use a "
				      "multiple of 64 from %u to %u bytes",
				      cfg->slot_bytes, RDPS_SERVER_SLOT_MIN,
				      RDPS_SERVER_SLOT_MAX);
	if (cfg->heartbeat_ms &&
	    (cfg->heartbeat_ms < RDPS_SERVER_HEARTBEAT_MIN ||
	     cfg->heartbeat_ms > RDPS_SERVER_HEARTBEAT_MAX))
		return rdps_set_error(-EINVAL,
				      "heartbeat %u ms is out of range: use "
				      "%u..%u ms, or 0 for no liveness checks",
				      cfg->heartbeat_ms,
				      RDPS_SERVER_HEARTBEAT_MIN,
				      RDPS_SERVER_HEARTBEAT_MAX);
	return 0;
}

/* The directory workers read first: its header, applied_clock 0. */
static int srv_dir_new(struct rdps_server *s)
{
	const struct rdps_server_cfg *cfg = &s->cfg;
	struct ps_dir_hdr *h;
	int ret;

	s->dir_len = srv_round_up(sizeof(struct ps_dir), 4096);
	ret = srv_region_new(s, s->dir_len, RDPS_TP_ACCESS_REMOTE_READ,
			     (void **)&s->dir, &s->dir_mr);
	if (ret)
		return rdps_set_error(ret, "cannot register the directory: %s",
				      strerror(-ret));
	h = &s->dir->hdr;
	h->magic_be = rdps_htobe64(PS_DIR_MAGIC);
	h->version_be = rdps_htobe32(PS_PROTO_VERSION);
	h->shard_be = srv_htobe16(cfg->shard);
	h->nshards_be = srv_htobe16(cfg->nshards);
	h->workers_be = rdps_htobe32(cfg->workers);
	h->model_be = rdps_htobe32((uint32_t)cfg->model);
	h->slack_be = rdps_htobe32(cfg->slack);
	h->clock_k_be = rdps_htobe32(ps_clock_k(cfg->slack));
	h->heartbeat_ms_be = rdps_htobe32(cfg->heartbeat_ms);
	srv_publish_applied(s, 0);
	return 0;
}

/* The clock region (shard 0's table and every shard's nodes of the clock
 * tree, ps_proto.h), which only the workers' atomics change. */
static int srv_clock_new(struct rdps_server *s)
{
	int ret;

	s->clk_len = srv_round_up(
		ps_clock_region_len(s->cfg.workers, s->cfg.nshards), 4096);
	ret = srv_region_new(s, s->clk_len,
			     RDPS_TP_ACCESS_REMOTE_ATOMIC |
				     RDPS_TP_ACCESS_REMOTE_READ,
			     (void **)&s->clk, &s->clk_mr);
	if (ret)
		return rdps_set_error(ret,
				      "cannot register the clock table: %s",
				      strerror(-ret));
	rdps_tp_rkey_pack(s->clk_mr, &s->clk_wire);
	return 0;
}

/* The sources of welcomes (workers' and refusals') and the pulse landing
 * spots (srv_pulses). */
static int srv_welcomes_new(struct rdps_server *s)
{
	int ret;

	s->wel_len = srv_round_up((s->cfg.workers + SRV_REJECT_MAX) *
						  sizeof(struct ps_welcome) +
					  8ull * s->cfg.workers,
				  4096);
	ret = srv_region_new(s, s->wel_len, RDPS_TP_ACCESS_LOCAL,
			     (void **)&s->wel, &s->wel_mr);
	if (ret)
		return rdps_set_error(ret,
				      "cannot register welcome buffers: %s",
				      strerror(-ret));
	return 0;
}

/* Listen on url with the listener's hello (the directory's key). */
static int srv_listen(struct rdps_server *s, const char *url)
{
	const struct rdps_server_cfg *cfg = &s->cfg;
	struct ps_lhello lh;
	int ret;

	memset(&lh, 0, sizeof(lh));
	lh.magic_be = rdps_htobe32(PS_MAGIC_LISTENER);
	lh.shard_be = srv_htobe16(cfg->shard);
	lh.nshards_be = srv_htobe16(cfg->nshards);
	rdps_tp_rkey_pack(s->dir_mr, &lh.dir);
	ret = rdps_tp_listen(s->tp, url, &lh, sizeof(lh), &s->lst);
	if (ret)
		return ret;
	if (rdps_tp_listener_url(s->lst, s->url, sizeof(s->url)))
		snprintf(s->url, sizeof(s->url), "%s", url);
	rdps_info("shard %u of %u listening on %s: %u workers, %s slack %u, "
		  "%zu-byte sub-slots",
		  cfg->shard, cfg->nshards, s->url, cfg->workers,
		  rdps_model_name(cfg->model), cfg->slack, s->slot_bytes);
	return 0;
}

/* Stop the heartbeat and free the tables and the regions of
 * srv_dir_new(), srv_clock_new() and srv_welcomes_new() (any of them may
 * be missing). */
static void srv_regions_free(struct rdps_server *s)
{
	rdps_pulse_stop(&s->heartbeat);
	for (unsigned i = 0; i < PS_MAX_TABLES; i++)
		if (s->tables[i].used)
			srv_table_free(s, &s->tables[i]);
	for (unsigned i = 0; i < PS_EMB_MAX; i++)
		if (s->emb[i].used)
			srv_emb_free(s, &s->emb[i]);
	srv_emb_lookup_free(s);
	srv_region_free(s, (void **)&s->wel, s->wel_len, &s->wel_mr);
	srv_region_free(s, (void **)&s->clk, s->clk_len, &s->clk_mr);
	srv_region_free(s, (void **)&s->dir, s->dir_len, &s->dir_mr);
}

int rdps_server_create(const struct rdps_server_cfg *cfg,
		       struct rdps_server **server_out)
{
	struct rdps_tp_cfg tcfg;
	struct rdps_server *s;
	int ret;

	ret = srv_check_cfg(cfg);
	if (ret)
		return ret;
	s = calloc(1, sizeof(*s));
	if (!s)
		return rdps_set_error(-ENOMEM, "out of memory");
	s->cfg = *cfg;
	s->cfg.url = NULL; /* the caller's string; we keep s->url */
	s->slot_bytes =
		cfg->slot_bytes ? cfg->slot_bytes : PS_SLOT_BYTES_DEFAULT;
	s->w = calloc(cfg->workers, sizeof(*s->w));
	s->waiters = calloc(cfg->workers, sizeof(*s->waiters));
	if (!s->w || !s->waiters) {
		ret = rdps_set_error(-ENOMEM, "out of memory");
		goto err_free;
	}
	for (unsigned r = 0; r < cfg->workers; r++) {
		s->w[r].s = s;
		s->w[r].rank = r;
	}

	rdps_tp_cfg_default(&tcfg);
	tcfg.poll_mode = cfg->poll_mode;
	tcfg.token = cfg->token;
	/* tcp: the loop thread applies updates but never answers a READ;
	 * the transport's thread is the NIC. */
	tcfg.serve_thread = 1;
	ret = rdps_tp_open(cfg->url, &tcfg, &s->tp);
	if (ret)
		goto err_free;
	ret = srv_dir_new(s);
	if (ret)
		goto err_close_tp;
	/* A thread, not the loop: a long checkpoint write is no hang. */
	ret = rdps_pulse_start(&s->heartbeat, &s->dir->hdr.heartbeat,
			       PS_PULSE_MS);
	if (!ret)
		ret = srv_clock_new(s);
	if (!ret && cfg->resume)
		ret = srv_resume(s);
	if (!ret)
		ret = srv_welcomes_new(s);
	if (!ret)
		ret = srv_listen(s, cfg->url);
	if (ret)
		goto err_free_regions;
	*server_out = s;
	return 0;

err_free_regions:
	srv_regions_free(s);
err_close_tp:
	rdps_tp_close(s->tp);
err_free:
	free(s->waiters);
	free(s->w);
	free(s);
	return ret;
}

const char *rdps_server_url(const struct rdps_server *s)
{
	return s->url;
}

void rdps_server_stats(const struct rdps_server *s,
		       struct rdps_server_stats *out)
{
	*out = s->st;
}

void rdps_server_destroy(struct rdps_server *s)
{
	int ret;

	if (!s)
		return;
	if (s->lst)
		rdps_tp_listener_close(s->lst);
	for (unsigned i = 0; i < SRV_REJECT_MAX; i++)
		if (s->rejects[i].ep)
			rdps_tp_ep_close(s->rejects[i].ep);
	for (unsigned r = 0; r < s->cfg.workers; r++)
		srv_worker_release(&s->w[r], true);
	srv_ep_close_doomed(s);
	free(s->doomed);
	srv_regions_free(s);
	ret = rdps_tp_close(s->tp);
	if (ret)
		rdps_warn("shard %u: transport not closed: %s", s->cfg.shard,
			  strerror(-ret));
	free(s->waiters);
	free(s->w);
	free(s);
}
