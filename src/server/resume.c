/* SPDX-License-Identifier: MIT */
/*
 * resume.c - checkpoints of a shard (checkpoint.h holds the file format):
 * writing the tables at a clock boundary, and loading them to resume.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "server/server_impl.h"

/* A checkpoint that failed fails the shard: a job that goes on without
 * them could not resume where the user expects, and would say so only
 * after the crash it was meant for. The text is kept here because the
 * loop may set other errors before it returns. */
static int srv_ckpt_fail(struct rdps_server *s, int ret, uint64_t c,
			 const char *why)
{
	snprintf(s->ckpt_msg, sizeof(s->ckpt_msg),
		 "shard %u: the checkpoint of clock %" PRIu64
		 " cannot be written, stopping (the last good one stays): %s",
		 s->cfg.shard, c, why);
	s->ckpt_err = ret;
	return ret;
}

/* Write the tables as of applied clock c when c is due. Before c is
 * published, so no worker runs past a clock this shard could not resume
 * at: shards of a job are at most one checkpoint apart. */
int srv_checkpoint(struct rdps_server *s, uint64_t c)
{
	unsigned every = s->cfg.ckpt_every ? s->cfg.ckpt_every : 1;
	struct ckpt *ck;
	uint64_t t0;
	int ret;

	if (!s->cfg.ckpt_dir || c % every)
		return 0;
	ck = calloc(1, sizeof(*ck));
	if (!ck)
		return srv_ckpt_fail(s, -ENOMEM, c, "out of memory");
	ck->shard = s->cfg.shard;
	ck->nshards = s->cfg.nshards;
	ck->workers = s->cfg.workers;
	ck->model = (unsigned)s->cfg.model;
	ck->clock = c;
	for (unsigned i = 0; i < PS_MAX_TABLES; i++) {
		const struct srv_table *t = &s->tables[i];
		struct ckpt_table *ct;

		if (!t->used)
			continue;
		ct = &ck->t[ck->ntables++];
		memcpy(ct->name, t->name, sizeof(ct->name));
		ct->n = t->n;
		ct->lo = t->lo;
		ct->hi = t->hi;
		ct->dtype = t->sl.dtype;
		ct->rule = t->sl.rule;
		ct->esize = t->sl.esize;
		ct->lr = t->sl.lr;
		ct->params = t->sl.params;
		ct->acc = t->sl.acc;
	}
	srv_emb_to_ckpt(s, ck);
	t0 = rdps_now_ns();
	ret = ckpt_write(s->cfg.ckpt_dir, ck);
	if (ret)
		srv_ckpt_fail(s, ret, c, rdps_errmsg());
	else
		rdps_dbg("shard %u: checkpoint of clock %" PRIu64
			 " (%u tables, %u embedding tables) written in %.1f ms",
			 s->cfg.shard, c, ck->ntables, ck->nemb,
			 (double)(rdps_now_ns() - t0) / 1e6);
	free(ck);
	return ret;
}

/*
 * Load both checkpoints of this shard kept in ckpt_dir (newest and .prev)
 * into ck[] and buf[] and pick the one cfg asks for: its index, or -errno
 * with rdps_errmsg() (naming both files and why neither is usable). A
 * file that does not load is skipped (logged).
 */
static int srv_ckpt_pick(struct rdps_server *s, char path[2][4096],
			 void *buf[2], struct ckpt *ck[2])
{
	const struct rdps_server_cfg *cfg = &s->cfg;
	int pick = -1, ret, rets[2];
	char why[2][512];

	for (int i = 0; i < 2; i++) {
		ck[i] = calloc(1, sizeof(*ck[i]));
		if (!ck[i])
			return rdps_set_error(-ENOMEM, "out of memory");
		ret = ckpt_path(path[i], sizeof(path[i]), cfg->ckpt_dir,
				cfg->shard, i);
		if (ret)
			return ret;
		rets[i] = ckpt_load(path[i], &buf[i], ck[i]);
		if (rets[i] == -ENOENT)
			snprintf(why[i], sizeof(why[i]), "%s is not there",
				 path[i]);
		else if (rets[i])
			snprintf(why[i], sizeof(why[i]), "%s", rdps_errmsg());
		if (rets[i] && rets[i] != -ENOENT) {
			/* A corrupt newest file may still leave .prev. */
			rdps_warn("shard %u: %s", cfg->shard, why[i]);
		}
	}
	for (int i = 0; i < 2; i++) {
		if (rets[i])
			continue;
		if (cfg->resume_clock == RDPS_SERVER_RESUME_NEWEST
			    ? pick < 0 || ck[i]->clock > ck[pick]->clock
			    : ck[i]->clock == cfg->resume_clock)
			pick = i;
	}
	if (pick >= 0)
		return pick;
	if (cfg->resume_clock == RDPS_SERVER_RESUME_NEWEST)
		return rdps_set_error(-ENOENT,
				      "no usable checkpoint of shard %u: %s; "
				      "%s (restore good copies of them, or "
				      "start without resume to begin afresh)",
				      cfg->shard, why[0], why[1]);
	return rdps_set_error(-ENOENT,
			      "shard %u has no checkpoint of "
			      "clock %" PRIu64 " in %s",
			      cfg->shard, cfg->resume_clock, cfg->ckpt_dir);
}

/* Checkpoint c (file path) is of this job's layout: 0 or -EINVAL. */
static int srv_ckpt_fits(struct rdps_server *s, const struct ckpt *c,
			 const char *path)
{
	const struct rdps_server_cfg *cfg = &s->cfg;

	if (c->shard != cfg->shard || c->nshards != cfg->nshards ||
	    c->workers != cfg->workers || c->model != (unsigned)cfg->model)
		return rdps_set_error(
			-EINVAL,
			"checkpoint %s is of shard %u of %u, %u "
			"workers, model %s; this shard is %u of %u, "
			"%u workers, model %s: resume with the job's "
			"own layout",
			path, c->shard, c->nshards, c->workers,
			rdps_model_name(c->model), cfg->shard, cfg->nshards,
			cfg->workers, rdps_model_name(cfg->model));
	return 0;
}

/* Create and publish the tables of checkpoint c (file path) with its
 * values. 0 or -errno with rdps_errmsg(). */
static int srv_ckpt_tables(struct rdps_server *s, const struct ckpt *c,
			   const char *path)
{
	const struct rdps_server_cfg *cfg = &s->cfg;
	int ret;

	for (unsigned i = 0; i < c->ntables; i++) {
		const struct ckpt_table *ct = &c->t[i];
		struct srv_table *t;
		uint64_t lo, hi;

		ps_shard_range(ct->n, cfg->nshards, cfg->shard, &lo, &hi);
		if (ct->dtype > PS_DTYPE_F64 || ct->rule > PS_RULE_MAX ||
		    lo != ct->lo || hi != ct->hi ||
		    ct->esize != ps_dtype_size(ct->dtype) ||
		    !ct->acc != (ct->rule != PS_RULE_ADAGRAD || lo == hi) ||
		    srv_table_find(s, ct->name))
			return rdps_set_error(-EINVAL,
					      "checkpoint %s: table '%s' does "
					      "not fit this shard (range, "
					      "type, rule or a duplicate name)",
					      path, ct->name);
		ret = srv_table_create(s, ct->name, ct->n, ct->dtype, ct->rule,
				       ct->lr, &t);
		if (ret)
			return rdps_set_error(ret,
					      "cannot create table '%s' of "
					      "checkpoint %s: %s",
					      ct->name, path, strerror(-ret));
		memcpy(t->sl.params, ct->params, (hi - lo) * t->sl.esize);
		if (t->sl.acc)
			memcpy(t->sl.acc, ct->acc, (hi - lo) * t->sl.esize);
		srv_table_publish(s, t);
	}
	return 0;
}

/* The clocks as the job left clock c: every worker's ends, the clock
 * table on shard 0, applied_clock. */
static void srv_ckpt_clocks(struct rdps_server *s, uint64_t c)
{
	const struct rdps_server_cfg *cfg = &s->cfg;

	/* The clock table as the job left clock c: W arrivals at
	 * every clock below c, no barrier, round c not cut. The tree's
	 * nodes stay 0: workers count their rounds from c. */
	if (s->clk && cfg->shard == 0) {
		unsigned k = ps_clock_k(cfg->slack);

		for (unsigned r = 0; r < k; r++)
			s->clk->arrive[r] =
				(uint64_t)cfg->workers * (c / k + (r < c % k));
		s->clk->barrier = 0;
		s->clk->cut = c;
		/* wclock[] and wbar[] (ps_wclock_off) stay 0: only
		 * the clocks a worker finishes from here count. */
	}
	for (unsigned r = 0; r < cfg->workers; r++)
		s->w[r].ends = c;
	srv_publish_applied(s, c);
}

int srv_resume(struct rdps_server *s)
{
	char path[2][4096];
	void *buf[2] = {NULL, NULL};
	struct ckpt *ck[2] = {NULL, NULL};
	const struct ckpt *c;
	int pick, ret;

	pick = srv_ckpt_pick(s, path, buf, ck);
	if (pick < 0) {
		ret = pick;
		goto out;
	}
	c = ck[pick];
	ret = srv_ckpt_fits(s, c, path[pick]);
	if (!ret)
		ret = srv_ckpt_tables(s, c, path[pick]);
	for (unsigned i = 0; !ret && i < c->nemb; i++)
		ret = srv_emb_restore(s, &c->e[i], path[pick]);
	if (ret)
		goto out;
	srv_ckpt_clocks(s, c->clock);
	rdps_info("shard %u: resumed at clock %" PRIu64
		  " from %s (%u tables, %u embedding tables)",
		  s->cfg.shard, c->clock, path[pick], c->ntables, c->nemb);
out:
	for (int i = 0; i < 2; i++) {
		free(buf[i]);
		free(ck[i]);
	}
	return ret;
}
