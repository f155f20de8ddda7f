/* SPDX-License-Identifier: MIT */
/*
 * _rdps.c - the CPython extension under the rdps package: one object per
 * public handle (struct rdps_ctx, struct rdps_table, struct rdps_emb, an
 * rdps_buf_alloc() buffer), each call straight onto include/rdps/rdps.h
 * and nothing else.
 *
 * Why an extension module and not ctypes over a shared library: a call
 * here costs a fraction of a microsecond, where ctypes' argument
 * conversion costs about a microsecond per call, which is the whole
 * budget Python may add to an 8-byte pull; the GIL is released around
 * exactly the C call; buffers are taken through the buffer protocol (so
 * numpy arrays, torch tensors' numpy views, bytearrays all work); and the
 * project keeps its static libraries (built position-independent for
 * this module) rather than growing a shared librdps with an ABI to keep.
 * The one use of numpy's headers: the plain dense pull and push
 * (fast_dense) read an ndarray's fields (data, dims, flags, dtype)
 * instead of requesting its buffer; no numpy function is called, and the
 * module is built against the numpy it runs with (Debian's).
 *
 * The argument checks that name the argument (dtype, shape, range, a
 * closed context) are in rdps/__init__.py, but for those of an array's
 * buffer (contiguous, writable, its size), which are here (get_buf), in
 * the one buffer request a call makes anyway; each raises ValueError
 * naming the argument, before any rdps call.
 *
 * Ctrl-C: rdps_clock(), rdps_barrier() and pulls may wait for other
 * workers for up to the context's timeout. They run in the calling
 * thread with the GIL released, like every call, and the context's wait
 * check (rdps_ctx_set_wait_check) looks for signals: once a wait has
 * slept for RDPS_WAIT_CHECK_MS, and then as often, it takes the GIL, runs
 * PyErr_CheckSignals() and keeps the exception it raises (Ctrl-C's
 * KeyboardInterrupt), which ends the C call with -EINTR. The C context
 * is then interrupted for good (its tick counted, later calls refused):
 * it is marked broken here (every later call raises rdps.Error EINTR) and
 * destroyed at once, or when its last array dies. A call that does not
 * wait never runs the check, so Python adds no cost to it. A first
 * version ran the two calls on a waiter thread (a futex hand-off, 1.7 to
 * 2.9 us per call) because a C wait could not be abandoned half way.
 * With interruptible=False no check is set: Ctrl-C then takes effect
 * when the wait ends (the peers arrive, a lost peer is detected within
 * two heartbeats, or the timeout).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
/* The array fields only (no import_array(): no call into numpy). */
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/ndarraytypes.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rdps/rdps.h>

static PyObject *rdps_error_type; /* rdps.Error, a subclass of OSError */

struct py_ctx {
	PyObject_HEAD struct rdps_ctx *ctx;
	int closed;    /* close() called: no more calls */
	int busy;      /* a call is in flight (one thread at a time) */
	int broken;    /* interrupted in a wait: the C context refuses calls */
	unsigned bufs; /* live buffers over the context's memory */
	int workers, rank, model;
};

/* rdps.Table (rdps/__init__.py) is a Python subclass of this type. */
struct py_table {
	PyObject_HEAD struct py_ctx *owner;
	struct rdps_table *t;
	int esize;
	unsigned long long n; /* elements */
	PyObject *dtype;      /* their numpy dtype */
};

static PyTypeObject table_type;

struct py_buf {
	PyObject_HEAD struct py_ctx *owner;
	void *mem;
	Py_ssize_t len;
};

struct py_emb {
	PyObject_HEAD struct py_ctx *owner;
	struct rdps_emb *e; /* lives until rdps_ctx_destroy() */
	int esize;
	unsigned dim;
};

static PyTypeObject ctx_type, table_type, buf_type, emb_type;

/* rdps.Error(errno, text): text from rdps_errmsg(), or msg. */
static PyObject *raise_err(int ret, const char *msg)
{
	PyObject *e = PyObject_CallFunction(rdps_error_type, "is", -ret,
					    msg && *msg ? msg : strerror(-ret));

	if (e) {
		PyErr_SetObject(rdps_error_type, e);
		Py_DECREF(e);
	}
	return NULL;
}

static PyObject *raise_rdps(int ret)
{
	return raise_err(ret, rdps_errmsg());
}

/* Can a call start? Sets the exception if not. */
static int ctx_usable(struct py_ctx *c)
{
	if (c->broken) {
		raise_err(-EINTR, "the context was interrupted in a wait "
				  "(Ctrl-C); close it");
		return -1;
	}
	if (c->closed || !c->ctx) {
		raise_err(-EBADF, "the context is closed");
		return -1;
	}
	if (c->busy) {
		raise_err(-EBUSY, "the context is in use by another thread "
				  "(use one context per thread)");
		return -1;
	}
	return 0;
}

/*
 * The context's wait check: on the waiting thread, without the GIL. Runs
 * the Python signal handlers; one that raised (KeyboardInterrupt) leaves
 * its exception set in this thread's state, and the C call returns
 * -EINTR (call_failed() takes it from there).
 */
static int py_wait_check(void *unused)
{
	PyGILState_STATE g = PyGILState_Ensure();
	int raised = PyErr_CheckSignals() != 0;

	PyGILState_Release(g);
	return raised;
}

static void ctx_release(struct py_ctx *c);

/* A call on c failed with ret: rdps.Error, or, when the wait check
 * interrupted it, the exception a signal handler raised (the context is
 * then broken and released). */
static PyObject *call_failed(struct py_ctx *c, int ret)
{
	if (ret == -EINTR && PyErr_Occurred()) {
		c->broken = 1;
		c->closed = 1; /* its last array releases it */
		ctx_release(c);
		return NULL;
	}
	return raise_rdps(ret);
}

/* clock() and barrier(): in this thread, the GIL released. */
static PyObject *ctx_wait(struct py_ctx *c, int (*fn)(struct rdps_ctx *))
{
	int ret;

	if (ctx_usable(c))
		return NULL;
	c->busy = 1;
	Py_BEGIN_ALLOW_THREADS;
	ret = fn(c->ctx);
	Py_END_ALLOW_THREADS;
	c->busy = 0;
	if (ret < 0)
		return call_failed(c, ret);
	return PyLong_FromLong(ret);
}

/* Destroy the C context once nothing can touch it: no array over its
 * memory. */
static void ctx_release(struct py_ctx *c)
{
	if (!c->ctx || c->bufs)
		return;
	rdps_ctx_destroy(c->ctx);
	c->ctx = NULL;
}

/* ---- Context ---------------------------------------------------------- */

static PyObject *ctx_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	const char *shards = NULL;
	int rank = -1, workers = -1, model = -1, poll = -1, timeout = -1;
	int loss = -1, fanin = -1, from_env = 1, interruptible = 1;
	long long slack = -1;
	PyObject *token = Py_None;
	struct rdps_config cfg;
	struct py_ctx *c;
	int ret;

	/* Positional, in struct rdps_config's order, then from_env and
	 * interruptible; -1 or None: not given. rdps/__init__.py maps the
	 * keywords. */
	if (!PyArg_ParseTuple(args, "ziiiLOiiiipp", &shards, &rank, &workers,
			      &model, &slack, &token, &poll, &timeout, &loss,
			      &fanin, &from_env, &interruptible))
		return NULL;
	rdps_config_default(&cfg);
	if (from_env && (ret = rdps_config_from_env(&cfg)) < 0)
		return raise_rdps(ret);
	if (token != Py_None) {
		cfg.token = PyLong_AsUnsignedLongLong(token);
		if (PyErr_Occurred())
			return NULL;
	}
	if (shards)
		cfg.shards = shards;
	if (rank >= 0)
		cfg.rank = rank;
	if (workers >= 0)
		cfg.workers = workers;
	if (model >= 0)
		cfg.model = (enum rdps_model)model;
	if (slack >= 0)
		cfg.slack = (unsigned)slack;
	if (poll >= 0)
		cfg.poll_mode = (enum rdps_poll_mode)poll;
	if (timeout >= 0)
		cfg.timeout_ms = timeout;
	if (loss >= 0)
		cfg.on_worker_loss = (enum rdps_on_loss)loss;
	if (fanin >= 0)
		cfg.clock_fanin = fanin;

	c = (struct py_ctx *)type->tp_alloc(type, 0);
	if (!c)
		return NULL;
	c->workers = cfg.workers;
	c->rank = cfg.rank;
	c->model = cfg.model;
	Py_BEGIN_ALLOW_THREADS;
	ret = rdps_ctx_create(&cfg, &c->ctx);
	Py_END_ALLOW_THREADS;
	if (ret < 0) {
		c->ctx = NULL;
		raise_rdps(ret);
		Py_DECREF(c);
		return NULL;
	}
	if (interruptible)
		rdps_ctx_set_wait_check(c->ctx, py_wait_check, NULL);
	return (PyObject *)c;
}

static void ctx_dealloc(struct py_ctx *c)
{
	ctx_release(c);
	Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyObject *ctx_close(struct py_ctx *c, PyObject *unused)
{
	if (c->busy)
		return raise_err(-EBUSY, "close() while another thread is in "
					 "a call on this context");
	c->closed = 1;
	ctx_release(c);
	Py_RETURN_NONE;
}

static PyObject *ctx_clock(struct py_ctx *c, PyObject *unused)
{
	return ctx_wait(c, rdps_clock);
}

static PyObject *ctx_barrier(struct py_ctx *c, PyObject *unused)
{
	return ctx_wait(c, rdps_barrier);
}

static PyObject *ctx_cut_common(struct py_ctx *c, int (*fn)(struct rdps_ctx *))
{
	int ret;

	if (ctx_usable(c))
		return NULL;
	ret = fn(c->ctx);
	if (ret < 0)
		return raise_rdps(ret);
	return PyBool_FromLong(ret);
}

static PyObject *ctx_cut(struct py_ctx *c, PyObject *unused)
{
	return ctx_cut_common(c, rdps_cut);
}

static PyObject *ctx_cut_poll(struct py_ctx *c, PyObject *unused)
{
	return ctx_cut_common(c, rdps_cut_poll);
}

static PyObject *ctx_clock_now(struct py_ctx *c, PyObject *unused)
{
	if (ctx_usable(c))
		return NULL;
	return PyLong_FromUnsignedLongLong(rdps_clock_now(c->ctx));
}

static PyObject *ctx_stats(struct py_ctx *c, PyObject *unused)
{
	struct rdps_stats s;

	if (ctx_usable(c))
		return NULL;
	rdps_ctx_stats(c->ctx, &s);
	return Py_BuildValue(
		"{sKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsKsK}", "pulls",
		(unsigned long long)s.pulls, "pushes",
		(unsigned long long)s.pushes, "clocks",
		(unsigned long long)s.clocks, "bytes_pulled",
		(unsigned long long)s.bytes_pulled, "bytes_pushed",
		(unsigned long long)s.bytes_pushed, "clock_wait_ns",
		(unsigned long long)s.clock_wait_ns, "pull_wait_ns",
		(unsigned long long)s.pull_wait_ns, "cuts",
		(unsigned long long)s.cuts, "made_up",
		(unsigned long long)s.made_up, "emb_pulls",
		(unsigned long long)s.emb_pulls, "emb_pushes",
		(unsigned long long)s.emb_pushes, "emb_rows_pulled",
		(unsigned long long)s.emb_rows_pulled, "emb_rows_pushed",
		(unsigned long long)s.emb_rows_pushed, "emb_misses",
		(unsigned long long)s.emb_misses, "emb_torn_retries",
		(unsigned long long)s.emb_torn_retries, "emb_round_trips",
		(unsigned long long)s.emb_round_trips, "emb_cache_hits",
		(unsigned long long)s.emb_cache_hits, "emb_cache_stale",
		(unsigned long long)s.emb_cache_stale, "remote_ops",
		(unsigned long long)s.remote_ops, "remote_bytes",
		(unsigned long long)s.remote_bytes);
}

/* table_open(cls, name, n, dtype, rule, lr, npdtype): an instance of
 * cls, a subclass of _rdps.Table, over the opened table. */
static PyObject *ctx_table_open(struct py_ctx *c, PyObject *args)
{
	const char *name;
	unsigned long long n;
	int dtype, rule, ret;
	double lr;
	struct py_table *t;
	struct rdps_table *h;
	PyTypeObject *cls;
	PyObject *npdtype;

	if (!PyArg_ParseTuple(args, "O!sKiidO", &PyType_Type, &cls, &name, &n,
			      &dtype, &rule, &lr, &npdtype))
		return NULL;
	if (!PyType_IsSubtype(cls, &table_type)) {
		PyErr_SetString(PyExc_TypeError,
				"table_open: cls must subclass _rdps.Table");
		return NULL;
	}
	if (ctx_usable(c))
		return NULL;
	c->busy = 1;
	Py_BEGIN_ALLOW_THREADS;
	ret = rdps_table_open(c->ctx, name, n, (enum rdps_dtype)dtype,
			      (enum rdps_rule)rule, lr, &h);
	Py_END_ALLOW_THREADS;
	c->busy = 0;
	if (ret < 0)
		return raise_rdps(ret);
	t = (struct py_table *)cls->tp_alloc(cls, 0);
	if (!t)
		return NULL;
	Py_INCREF(c);
	t->owner = c;
	t->t = h;
	t->esize = dtype == RDPS_DTYPE_F64 ? 8 : 4;
	t->n = n;
	t->dtype = Py_NewRef(npdtype);
	return (PyObject *)t;
}

static PyObject *ctx_buf_alloc(struct py_ctx *c, PyObject *args)
{
	Py_ssize_t len;
	struct py_buf *b;
	void *mem;

	if (!PyArg_ParseTuple(args, "n", &len))
		return NULL;
	if (len <= 0) {
		PyErr_SetString(PyExc_ValueError, "nbytes must be positive");
		return NULL;
	}
	if (ctx_usable(c))
		return NULL;
	mem = rdps_buf_alloc(c->ctx, (size_t)len);
	if (!mem)
		return raise_err(-ENOMEM, rdps_errmsg());
	b = PyObject_New(struct py_buf, &buf_type);
	if (!b) {
		rdps_buf_free(c->ctx, mem);
		return NULL;
	}
	Py_INCREF(c);
	b->owner = c;
	b->mem = mem;
	b->len = len;
	c->bufs++;
	return (PyObject *)b;
}

/* emb_open(name, dim, dtype, rule, lr, capacity, init, init_scale, seed):
 * rdps_emb_open; rdps/__init__.py checks and maps the arguments. */
static PyObject *ctx_emb_open(struct py_ctx *c, PyObject *args)
{
	struct rdps_emb_cfg cfg;
	unsigned long long capacity, seed;
	const char *name;
	unsigned dim;
	int dtype, rule, init, ret;
	double lr, scale;
	struct py_emb *t;
	struct rdps_emb *h;

	if (!PyArg_ParseTuple(args, "sIiidKidK", &name, &dim, &dtype, &rule,
			      &lr, &capacity, &init, &scale, &seed))
		return NULL;
	if (ctx_usable(c))
		return NULL;
	rdps_emb_cfg_default(&cfg);
	cfg.dim = dim;
	cfg.dtype = (enum rdps_dtype)dtype;
	cfg.rule = (enum rdps_rule)rule;
	cfg.lr = lr;
	cfg.capacity = capacity;
	cfg.init = (enum rdps_emb_init)init;
	cfg.init_scale = scale;
	cfg.seed = seed;
	c->busy = 1;
	Py_BEGIN_ALLOW_THREADS;
	ret = rdps_emb_open(c->ctx, name, &cfg, &h);
	Py_END_ALLOW_THREADS;
	c->busy = 0;
	if (ret < 0)
		return raise_rdps(ret);
	t = PyObject_New(struct py_emb, &emb_type);
	if (!t)
		return NULL;
	Py_INCREF(c);
	t->owner = c;
	t->e = h;
	t->esize = dtype == RDPS_DTYPE_F64 ? 8 : 4;
	t->dim = rdps_emb_dim(h);
	return (PyObject *)t;
}

static PyObject *ctx_get_workers(struct py_ctx *c, void *unused)
{
	return PyLong_FromLong(c->workers);
}

static PyObject *ctx_get_rank(struct py_ctx *c, void *unused)
{
	return PyLong_FromLong(c->rank);
}

static PyObject *ctx_get_model(struct py_ctx *c, void *unused)
{
	return PyLong_FromLong(c->model);
}

static PyObject *ctx_get_closed(struct py_ctx *c, void *unused)
{
	return PyBool_FromLong(c->closed || c->broken || !c->ctx);
}

static PyMethodDef ctx_methods[] = {
	{"close", (PyCFunction)ctx_close, METH_NOARGS, NULL},
	{"clock", (PyCFunction)ctx_clock, METH_NOARGS, NULL},
	{"barrier", (PyCFunction)ctx_barrier, METH_NOARGS, NULL},
	{"cut", (PyCFunction)ctx_cut, METH_NOARGS, NULL},
	{"cut_poll", (PyCFunction)ctx_cut_poll, METH_NOARGS, NULL},
	{"clock_now", (PyCFunction)ctx_clock_now, METH_NOARGS, NULL},
	{"stats", (PyCFunction)ctx_stats, METH_NOARGS, NULL},
	{"table_open", (PyCFunction)ctx_table_open, METH_VARARGS, NULL},
	{"buf_alloc", (PyCFunction)ctx_buf_alloc, METH_VARARGS, NULL},
	{"emb_open", (PyCFunction)ctx_emb_open, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static PyGetSetDef ctx_getset[] = {
	{"workers", (getter)ctx_get_workers, NULL, NULL, NULL},
	{"rank", (getter)ctx_get_rank, NULL, NULL, NULL},
	{"closed", (getter)ctx_get_closed, NULL, NULL, NULL},
	{"model", (getter)ctx_get_model, NULL, NULL, NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ctx_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rdps._rdps.Ctx",
	.tp_basicsize = sizeof(struct py_ctx),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "A connected struct rdps_ctx (use rdps.Context).",
	.tp_new = ctx_new,
	.tp_dealloc = (destructor)ctx_dealloc,
	.tp_methods = ctx_methods,
	.tp_getset = ctx_getset,
};

/* ---- Table ------------------------------------------------------------ */

static void table_dealloc(struct py_table *t)
{
	Py_XDECREF(t->dtype);
	Py_DECREF(t->owner);
	Py_TYPE(t)->tp_free((PyObject *)t);
}

/*
 * A C-contiguous buffer of exactly need bytes (any size for need 0),
 * writable if asked; else ValueError naming what. rdps/__init__.py
 * leaves these checks of a numpy array to this one buffer request, which
 * a call makes anyway: fewer steps per call.
 */
static int get_buf(PyObject *o, Py_buffer *v, size_t need, int esize,
		   int writable, const char *what)
{
	if (PyObject_GetBuffer(o, v,
			       PyBUF_C_CONTIGUOUS |
				       (writable ? PyBUF_WRITABLE : 0))) {
		int ro;

		if (!PyObject_CheckBuffer(o))
			return -1; /* not an array: the TypeError stands */
		PyErr_Clear();
		ro = writable && !PyObject_GetBuffer(o, v, PyBUF_C_CONTIGUOUS);
		if (ro)
			PyBuffer_Release(v);
		else
			PyErr_Clear();
		PyErr_Format(PyExc_ValueError,
			     ro ? "%s: the array is read-only"
				: "%s: the array must be C-contiguous "
				  "(numpy.ascontiguousarray)",
			     what);
		return -1;
	}
	if (need && (size_t)v->len != need) {
		PyErr_Format(PyExc_ValueError,
			     "%s: %zd elements, the call takes %zu", what,
			     v->len / esize, need / esize);
		PyBuffer_Release(v);
		return -1;
	}
	return 0;
}

static uint64_t py_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * dense(pull, start, count, buf): rdps_pull into buf when pull, else
 * rdps_push from it. timed: return the C call's own time in ns instead
 * of None (dense_timed, for python/bench/overhead.py, which shows with it that
 * the C call takes as long from Python as from C).
 */
static PyObject *dense_call(struct py_table *t, PyObject *const *args,
			    Py_ssize_t nargs, int timed)
{
	unsigned long long start, count;
	uint64_t t0 = 0, t1 = 0;
	PyObject *o;
	Py_buffer v;
	int pull, ret;

	/* The hot call: vector arguments, no tuple to parse. */
	if (nargs != 4) {
		PyErr_SetString(PyExc_TypeError,
				"dense(pull, start, count, buf): 4 arguments");
		return NULL;
	}
	pull = PyObject_IsTrue(args[0]);
	start = PyLong_AsUnsignedLongLong(args[1]);
	count = PyLong_AsUnsignedLongLong(args[2]);
	o = args[3];
	if (pull < 0 || PyErr_Occurred())
		return NULL;
	if (count > SIZE_MAX / 8) {
		PyErr_SetString(PyExc_ValueError, "count too large");
		return NULL;
	}
	if (ctx_usable(t->owner))
		return NULL;
	if (get_buf(o, &v, count * t->esize, t->esize, pull,
		    pull ? "out" : "delta"))
		return NULL;
	t->owner->busy = 1;
	Py_BEGIN_ALLOW_THREADS;
	if (timed)
		t0 = py_now_ns();
	ret = pull ? rdps_pull(t->t, start, count, v.buf)
		   : rdps_push(t->t, start, count, v.buf);
	if (timed)
		t1 = py_now_ns();
	Py_END_ALLOW_THREADS;
	t->owner->busy = 0;
	PyBuffer_Release(&v);
	if (ret < 0)
		return call_failed(t->owner, ret);
	if (timed)
		return PyLong_FromUnsignedLongLong(t1 - t0);
	Py_RETURN_NONE;
}

static PyObject *table_dense(struct py_table *t, PyObject *const *args,
			     Py_ssize_t nargs)
{
	return dense_call(t, args, nargs, 0);
}

/* dense_timed(...): dense(...), returning the C call's time in ns. */
static PyObject *table_dense_timed(struct py_table *t, PyObject *const *args,
				   Py_ssize_t nargs)
{
	return dense_call(t, args, nargs, 1);
}

static PyTypeObject *ndarray_type; /* numpy.ndarray, from PyInit__rdps */
static PyObject *str_start, *str_count, *str_out, *str_delta;

/*
 * The dense call's arguments when they are the plain ones a training
 * loop repeats: start and count ints (count None: to the end) in the
 * table's range, and the array an exact numpy.ndarray of the table's
 * dtype, C-contiguous, writable for a pull, of exactly count elements,
 * and a view (not owning its memory, as ctx.array() and its slices are,
 * so that no one can resize it while the GIL is released). A push
 * (writable 0) takes its count from the array. 0 when so, with the range
 * and the memory set; else 1 (no exception): the caller leaves the call
 * to the Python method, which checks and raises.
 */
static int fast_args(const struct py_table *t, PyObject *so, PyObject *co,
		     PyObject *ao, int writable, unsigned long long *start,
		     unsigned long long *count, void **mem)
{
	PyArrayObject *a = (PyArrayObject *)ao;
	int need =
		NPY_ARRAY_C_CONTIGUOUS | (writable ? NPY_ARRAY_WRITEABLE : 0);
	unsigned long long s = 0, c, elems = 1;
	int ovf;

	if (!ao || Py_TYPE(ao) != ndarray_type ||
	    PyArray_DESCR(a) != (PyArray_Descr *)t->dtype ||
	    (PyArray_FLAGS(a) & need) != need ||
	    (PyArray_FLAGS(a) & NPY_ARRAY_OWNDATA))
		return 1;
	if (so) {
		if (!PyLong_CheckExact(so))
			return 1;
		s = (unsigned long long)PyLong_AsLongLongAndOverflow(so, &ovf);
		if (ovf || (long long)s < 0 || s > t->n)
			return 1;
	}
	for (int i = 0; i < PyArray_NDIM(a); i++)
		elems *= (unsigned long long)PyArray_DIMS(a)[i];
	c = writable ? t->n - s : elems;
	if (c > t->n - s)
		return 1;
	if (co && co != Py_None) {
		if (!PyLong_CheckExact(co))
			return 1;
		c = (unsigned long long)PyLong_AsLongLongAndOverflow(co, &ovf);
		if (ovf || (long long)c < 0 || c > t->n - s)
			return 1;
	}
	if (elems != c)
		return 1;
	*start = s;
	*count = c;
	*mem = PyArray_DATA(a);
	return 0;
}

/*
 * A Table method whose plain call runs here and any other in the Python
 * function it wraps (rdps/__init__.py: pull = _rdps.fast_dense(pull,
 * True)). The plain call is the one a training loop repeats (fast_args):
 * it runs with no Python frame and no buffer request, which after a large
 * copy cost microseconds of cache refill each (README "Overhead"); the
 * function checks every other call and raises naming the argument. Like
 * a function, the object is a method descriptor: obj.pull(...) calls it
 * with obj first and no bound method made; __doc__, __wrapped__ (for
 * inspect.signature) and every other attribute are the function's.
 */
struct py_fastm {
	PyObject_HEAD vectorcallfunc vectorcall;
	PyObject *func;
	int pull; /* pull(start, count, out), else push(delta, start) */
};

/* The plain call of f on table t, or 1 in *slow (no exception). */
static PyObject *fastm_plain(const struct py_fastm *f, struct py_table *t,
			     PyObject *const *args, Py_ssize_t nargs,
			     PyObject *kwnames, int *slow)
{
	PyObject *v[3] = {NULL, NULL, NULL};
	PyObject *const names[3] = {f->pull ? str_start : str_delta,
				    f->pull ? str_count : str_start,
				    f->pull ? str_out : NULL};
	Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
	unsigned long long start, count;
	void *mem;
	int ret;

	*slow = 1;
	if (nargs > (f->pull ? 3 : 2))
		return NULL;
	for (Py_ssize_t i = 0; i < nargs; i++)
		v[i] = args[i];
	for (Py_ssize_t i = 0; i < nkw; i++) {
		/* Keywords of a call in code are interned: compare
		 * pointers; any other takes the slow way. */
		PyObject *k = PyTuple_GET_ITEM(kwnames, i);
		int j = k == names[0]	? 0
			: k == names[1] ? 1
			: k == names[2] ? 2
					: -1;

		if (j < 0 || v[j])
			return NULL;
		v[j] = args[nargs + i];
	}
	if (f->pull ? fast_args(t, v[0], v[1], v[2], 1, &start, &count, &mem)
		    : fast_args(t, v[1], NULL, v[0], 0, &start, &count, &mem))
		return NULL;
	*slow = 0;
	if (ctx_usable(t->owner))
		return NULL;
	t->owner->busy = 1;
	Py_BEGIN_ALLOW_THREADS;
	ret = f->pull ? rdps_pull(t->t, start, count, mem)
		      : rdps_push(t->t, start, count, mem);
	Py_END_ALLOW_THREADS;
	t->owner->busy = 0;
	if (ret < 0)
		return call_failed(t->owner, ret);
	if (f->pull)
		return Py_NewRef(v[2]);
	Py_RETURN_NONE;
}

static PyObject *fastm_call(PyObject *self, PyObject *const *args,
			    size_t nargsf, PyObject *kwnames)
{
	struct py_fastm *f = (struct py_fastm *)self;
	Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
	PyObject *r;
	int slow;

	if (nargs >= 1 && PyObject_TypeCheck(args[0], &table_type)) {
		r = fastm_plain(f, (struct py_table *)args[0], args + 1,
				nargs - 1, kwnames, &slow);
		if (!slow)
			return r;
	}
	return PyObject_Vectorcall(f->func, args, nargsf, kwnames);
}

static PyObject *fastm_get(PyObject *self, PyObject *obj, PyObject *type)
{
	if (!obj || obj == Py_None)
		return Py_NewRef(self);
	return PyMethod_New(self, obj);
}

static PyObject *fastm_getattro(PyObject *self, PyObject *name)
{
	PyObject *r = PyObject_GenericGetAttr(self, name);

	if (r || !PyErr_ExceptionMatches(PyExc_AttributeError))
		return r;
	PyErr_Clear();
	return PyObject_GetAttr(((struct py_fastm *)self)->func, name);
}

static PyObject *fastm_doc(PyObject *self, void *unused)
{
	return PyObject_GetAttrString(((struct py_fastm *)self)->func,
				      "__doc__");
}

static PyObject *fastm_wrapped(PyObject *self, void *unused)
{
	return Py_NewRef(((struct py_fastm *)self)->func);
}

static int fastm_traverse(PyObject *self, visitproc visit, void *arg)
{
	Py_VISIT(((struct py_fastm *)self)->func);
	return 0;
}

static int fastm_clear(PyObject *self)
{
	Py_CLEAR(((struct py_fastm *)self)->func);
	return 0;
}

static void fastm_dealloc(PyObject *self)
{
	PyObject_GC_UnTrack(self);
	fastm_clear(self);
	PyObject_GC_Del(self);
}

static PyGetSetDef fastm_getset[] = {
	{"__doc__", fastm_doc, NULL, NULL, NULL},
	{"__wrapped__", fastm_wrapped, NULL, NULL, NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject fastm_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rdps._rdps.FastDense",
	.tp_basicsize = sizeof(struct py_fastm),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
		    Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
	.tp_vectorcall_offset = offsetof(struct py_fastm, vectorcall),
	.tp_call = PyVectorcall_Call,
	.tp_descr_get = fastm_get,
	.tp_getattro = fastm_getattro,
	.tp_getset = fastm_getset,
	.tp_traverse = fastm_traverse,
	.tp_clear = fastm_clear,
	.tp_dealloc = fastm_dealloc,
};

/* fast_dense(func, pull): the method descriptor over func. */
static PyObject *mod_fast_dense(PyObject *mod, PyObject *args)
{
	struct py_fastm *f;
	PyObject *func;
	int pull;

	if (!PyArg_ParseTuple(args, "Op", &func, &pull))
		return NULL;
	if (!PyCallable_Check(func)) {
		PyErr_SetString(PyExc_TypeError, "fast_dense: func");
		return NULL;
	}
	f = PyObject_GC_New(struct py_fastm, &fastm_type);
	if (!f)
		return NULL;
	f->vectorcall = fastm_call;
	f->func = Py_NewRef(func);
	f->pull = pull;
	PyObject_GC_Track(f);
	return (PyObject *)f;
}

/* A call on n uint64 keys (or indices) and a row of values per key. */
typedef int (*keyed_fn)(void *h, int pull, const uint64_t *keys, size_t n,
			void *vals);

/*
 * keyed(...): fn on the keys of buffer ko and the rows of buffer vo (row
 * bytes each), writable for a pull; kname and vname name them in errors
 * (a pull's rows are "out").
 */
static PyObject *keyed(struct py_ctx *owner, keyed_fn fn, void *h, int pull,
		       PyObject *ko, PyObject *vo, size_t row, int esize,
		       const char *kname, const char *vname)
{
	Py_buffer kv, vv;
	size_t n;
	int ret;

	if (ctx_usable(owner))
		return NULL;
	if (get_buf(ko, &kv, 0, 8, 0, kname))
		return NULL;
	n = (size_t)kv.len / sizeof(uint64_t);
	if (get_buf(vo, &vv, n * row, esize, pull, pull ? "out" : vname)) {
		PyBuffer_Release(&kv);
		return NULL;
	}
	owner->busy = 1;
	Py_BEGIN_ALLOW_THREADS;
	ret = fn(h, pull, kv.buf, n, vv.buf);
	Py_END_ALLOW_THREADS;
	owner->busy = 0;
	PyBuffer_Release(&vv);
	PyBuffer_Release(&kv);
	if (ret < 0)
		return call_failed(owner, ret);
	Py_RETURN_NONE;
}

static int sparse_fn(void *h, int pull, const uint64_t *idx, size_t n,
		     void *vals)
{
	return pull ? rdps_pull_sparse(h, idx, n, vals)
		    : rdps_push_sparse(h, idx, n, vals);
}

/* sparse(pull, idx, vals): rdps_pull_sparse or rdps_push_sparse; idx
 * holds uint64 indices. */
static PyObject *table_sparse(struct py_table *t, PyObject *args)
{
	PyObject *io, *vo;
	int pull;

	if (!PyArg_ParseTuple(args, "pOO", &pull, &io, &vo))
		return NULL;
	return keyed(t->owner, sparse_fn, t->t, pull, io, vo, t->esize,
		     t->esize, "idx", "delta");
}

static PyMemberDef table_members[] = {
	{"n", T_ULONGLONG, offsetof(struct py_table, n), READONLY, "elements"},
	{"dtype", T_OBJECT, offsetof(struct py_table, dtype), READONLY,
	 "the elements' numpy dtype"},
	{NULL, 0, 0, 0, NULL},
};

static PyMethodDef table_methods[] = {

	{"dense", (PyCFunction)(void (*)(void))table_dense, METH_FASTCALL,
	 NULL},
	{"dense_timed", (PyCFunction)(void (*)(void))table_dense_timed,
	 METH_FASTCALL, NULL},
	{"sparse", (PyCFunction)table_sparse, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject table_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rdps._rdps.Table",
	.tp_basicsize = sizeof(struct py_table),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = "An open struct rdps_table (use rdps.Context.table).",
	.tp_dealloc = (destructor)table_dealloc,
	.tp_methods = table_methods,
	.tp_members = table_members,
};

/* ---- Embedding table -------------------------------------------------- */

static void emb_dealloc(struct py_emb *t)
{
	Py_DECREF(t->owner);
	PyObject_Free(t);
}

static int emb_fn(void *h, int pull, const uint64_t *keys, size_t n, void *vals)
{
	return pull ? rdps_emb_pull(h, keys, n, vals)
		    : rdps_emb_push(h, keys, n, vals);
}

/* rows(pull, keys, vals): rdps_emb_pull into vals when pull, else
 * rdps_emb_push from it; keys holds uint64 keys, vals dim values each. */
static PyObject *emb_rows(struct py_emb *t, PyObject *const *args,
			  Py_ssize_t nargs)
{
	int pull;

	if (nargs != 3) {
		PyErr_SetString(PyExc_TypeError,
				"rows(pull, keys, vals): 3 arguments");
		return NULL;
	}
	pull = PyObject_IsTrue(args[0]);
	if (pull < 0)
		return NULL;
	return keyed(t->owner, emb_fn, t->e, pull, args[1], args[2],
		     (size_t)t->dim * t->esize, t->esize, "keys", "grads");
}

/* An export's rows as rdps_emb_export() hands them over, grown by
 * doubling: keys (8 B each) and values (row bytes each). */
struct py_export {
	char *keys, *vals;
	size_t n, cap, row;
	int nomem;
};

static int export_row(void *arg, uint64_t key, const void *vals)
{
	struct py_export *x = arg;

	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 1024;
		char *k = realloc(x->keys, cap * 8), *v;

		if (k)
			x->keys = k;
		v = k ? realloc(x->vals, cap * x->row) : NULL;
		if (!v) {
			x->nomem = 1;
			return -ENOMEM;
		}
		x->vals = v;
		x->cap = cap;
	}
	memcpy(x->keys + x->n * 8, &key, 8);
	memcpy(x->vals + x->n * x->row, vals, x->row);
	x->n++;
	return 0;
}

/* export() -> (keys bytes, values bytes, n): every row, in the order the
 * shards hand them over (rdps/__init__.py sorts them). */
static PyObject *emb_export(struct py_emb *t, PyObject *unused)
{
	struct py_export x = {NULL, NULL, 0, 0, (size_t)t->dim * t->esize, 0};
	PyObject *r = NULL;
	int ret;

	if (ctx_usable(t->owner))
		return NULL;
	t->owner->busy = 1;
	Py_BEGIN_ALLOW_THREADS;
	ret = rdps_emb_export(t->e, export_row, &x);
	Py_END_ALLOW_THREADS;
	t->owner->busy = 0;
	if (x.nomem)
		PyErr_NoMemory();
	else if (ret < 0)
		call_failed(t->owner, ret);
	else
		r = Py_BuildValue("(y#y#n)", x.keys ? x.keys : "",
				  (Py_ssize_t)(x.n * 8), x.vals ? x.vals : "",
				  (Py_ssize_t)(x.n * x.row), (Py_ssize_t)x.n);
	free(x.keys);
	free(x.vals);
	return r;
}

static PyMethodDef emb_methods[] = {
	{"rows", (PyCFunction)(void (*)(void))emb_rows, METH_FASTCALL, NULL},
	{"export", (PyCFunction)emb_export, METH_NOARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static PyTypeObject emb_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rdps._rdps.Emb",
	.tp_basicsize = sizeof(struct py_emb),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "An open struct rdps_emb (use rdps.Context.emb_table).",
	.tp_dealloc = (destructor)emb_dealloc,
	.tp_methods = emb_methods,
};

/* ---- Buffer: rdps_buf_alloc() memory through the buffer protocol ------ */

static void buf_dealloc(struct py_buf *b)
{
	struct py_ctx *c = b->owner;

	if (c->ctx)
		rdps_buf_free(c->ctx, b->mem);
	c->bufs--;
	if (c->closed)
		ctx_release(c);
	Py_DECREF(c);
	PyObject_Free(b);
}

static int buf_getbuffer(struct py_buf *b, Py_buffer *view, int flags)
{
	return PyBuffer_FillInfo(view, (PyObject *)b, b->mem, b->len, 0, flags);
}

static PyObject *buf_address(struct py_buf *b, PyObject *unused)
{
	return PyLong_FromVoidPtr(b->mem);
}

static PyBufferProcs buf_as_buffer = {
	.bf_getbuffer = (getbufferproc)buf_getbuffer,
};

static PyMethodDef buf_methods[] = {
	{"address", (PyCFunction)buf_address, METH_NOARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static Py_ssize_t buf_length(struct py_buf *b)
{
	return b->len;
}

static PySequenceMethods buf_as_seq = {
	.sq_length = (lenfunc)buf_length,
};

static PyTypeObject buf_type = {
	PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rdps._rdps.Buffer",
	.tp_basicsize = sizeof(struct py_buf),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "Registered memory of rdps_buf_alloc(); keeps its context "
		  "alive.",
	.tp_dealloc = (destructor)buf_dealloc,
	.tp_methods = buf_methods,
	.tp_as_buffer = &buf_as_buffer,
	.tp_as_sequence = &buf_as_seq,
};

/* ---- Module ----------------------------------------------------------- */

/*
 * read_lines(buf): read one word of every 64-byte line of a buffer, the
 * loop of rdps-psbench -W: the caller's work between calls in
 * python/bench/overhead.py -W, the same in C and from Python.
 */
static volatile uint64_t read_lines_sink; /* the sum: never elided */

static PyObject *mod_read_lines(PyObject *mod, PyObject *o)
{
	uint64_t sum = 0;
	Py_buffer v;

	if (get_buf(o, &v, 0, 1, 0, "buf"))
		return NULL;
	for (Py_ssize_t i = 0; i + 8 <= v.len; i += 64) {
		uint64_t w;

		memcpy(&w, (char *)v.buf + i, sizeof(w)); /* any alignment */
		sum += w;
	}
	read_lines_sink = sum;
	PyBuffer_Release(&v);
	Py_RETURN_NONE;
}

static PyMethodDef mod_methods[] = {
	{"read_lines", mod_read_lines, METH_O, NULL},
	{"fast_dense", mod_fast_dense, METH_VARARGS, NULL},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef rdps_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "rdps._rdps",
	.m_doc = "The C calls under the rdps package (include/rdps/rdps.h).",
	.m_size = -1,
	.m_methods = mod_methods,
};

PyMODINIT_FUNC PyInit__rdps(void);
PyMODINIT_FUNC PyInit__rdps(void)
{
	PyObject *m;

	if (PyType_Ready(&ctx_type) || PyType_Ready(&table_type) ||
	    PyType_Ready(&buf_type) || PyType_Ready(&emb_type) ||
	    PyType_Ready(&fastm_type))
		return NULL;
	if (!ndarray_type) {
		PyObject *np = PyImport_ImportModule("numpy");

		ndarray_type = np ? (PyTypeObject *)PyObject_GetAttrString(
					    np, "ndarray")
				  : NULL;
		Py_XDECREF(np);
		str_start = PyUnicode_InternFromString("start");
		str_count = PyUnicode_InternFromString("count");
		str_out = PyUnicode_InternFromString("out");
		str_delta = PyUnicode_InternFromString("delta");
		if (!ndarray_type || !str_start || !str_count || !str_out ||
		    !str_delta)
			return NULL;
	}
	m = PyModule_Create(&rdps_module);
	if (!m)
		return NULL;
	rdps_error_type = PyErr_NewExceptionWithDoc(
		"rdps.Error",
		"A failed rdps call: errno is the negative return value's "
		"magnitude, strerror rdps_errmsg()'s text.",
		PyExc_OSError, NULL);
	if (!rdps_error_type ||
	    PyModule_AddObjectRef(m, "Error", rdps_error_type) ||
	    PyModule_AddObjectRef(m, "Ctx", (PyObject *)&ctx_type) ||
	    PyModule_AddObjectRef(m, "Table", (PyObject *)&table_type) ||
	    PyModule_AddObjectRef(m, "Buffer", (PyObject *)&buf_type) ||
	    PyModule_AddObjectRef(m, "Emb", (PyObject *)&emb_type) ||
	    PyModule_AddIntConstant(m, "WAIT_SLICE_MS", RDPS_WAIT_CHECK_MS)) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
