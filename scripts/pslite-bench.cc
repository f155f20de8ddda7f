// SPDX-License-Identifier: MIT
//
// pslite-bench.cc - the ps-lite side of scripts/bench-pslite.sh: one
// program that is the scheduler, the server or the worker of a ps-lite job
// (DMLC_ROLE), measuring what rdps-psbench measures on rdps:
//
//   round  an 8-byte push, waited for, then an 8-byte pull of the same key,
//          waited for: median us per round
//   pull   a pull of SIZE bytes of float32 under one key: median GB/s
//   push   a push of SIZE bytes of float32 deltas under one key, which the
//          server adds into its copy (the SUM rule) before it answers:
//          median GB/s of push + apply
//
// The worker runs the tests named on its command line, one JSON line each
// on stdout, with zero-copy ZPush/ZPull (ps-lite's fastest calls). The
// server keeps one float32 array per key; a pull answers with that array
// itself (shared, not copied).
//
// Built by scripts/bench-pslite.sh against ps-lite's library; not part of
// the rdps build.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "ps/ps.h"

namespace
{

using Store = std::unordered_map<ps::Key, ps::SArray<float>>;

Store store;

void handle(const ps::KVMeta &meta, const ps::KVPairs<float> &req,
	    ps::KVServer<float> *server)
{
	ps::KVPairs<float> res;

	if (req.keys.size() != 1) {
		std::fprintf(stderr, "pslite-bench: %zu keys in one request, "
				     "this benchmark sends 1\n",
			     req.keys.size());
		std::abort();
	}
	ps::Key k = req.keys[0];
	if (meta.push) {
		ps::SArray<float> &v = store[k];

		if (v.size() != req.vals.size()) {
			v.resize(req.vals.size());
			std::fill(v.begin(), v.end(), 0.0f);
		}
		float *d = v.data();
		const float *s = req.vals.data();
		for (size_t i = 0; i < v.size(); i++)
			d[i] += s[i];
	} else {
		res.keys = req.keys;
		res.vals = store[k];
		res.lens.push_back((int)res.vals.size());
	}
	server->Response(meta, res);
}

double now_us()
{
	return std::chrono::duration<double, std::micro>(
		       std::chrono::steady_clock::now().time_since_epoch())
		.count();
}

double median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	size_t n = v.size();
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Opts {
	size_t size = 1 << 20;
	size_t round_size = 8;
	int iters = 1000;
	int round_iters = 10000;
};

void report(const char *test, size_t bytes, const std::vector<double> &t)
{
	double med = median(t);

	std::printf("{\"test\":\"%s\",\"bytes\":%zu,\"iters\":%zu,"
		    "\"median_us\":%.4f,\"gbps\":%.4f}\n",
		    test, bytes, t.size(), med, med > 0 ? bytes / med / 1e3 : 0);
	std::fflush(stdout);
}

// One timed loop: warm-up n/10 untimed, then n timed calls of f.
template <typename F> std::vector<double> timed(int n, F f)
{
	std::vector<double> t;

	for (int i = 0; i < n / 10; i++)
		f();
	t.reserve(n);
	for (int i = 0; i < n; i++) {
		double t0 = now_us();

		f();
		t.push_back(now_us() - t0);
	}
	return t;
}

void run_worker(const Opts &o, const std::vector<std::string> &tests)
{
	ps::KVWorker<float> kv(0, 0);
	size_t n = o.size / sizeof(float);
	size_t rn = o.round_size / sizeof(float);
	ps::SArray<ps::Key> big_key(1, 0), small_key(1, 1);
	ps::SArray<float> big(n, 1.0f), small(rn, 1.0f);
	ps::SArray<int> big_len(1, (int)n), small_len(1, (int)rn);
	// ZPull fills a destination of the pulled size (or sizes an empty one
	// on the first pull): one per size, reused like rdps-psbench's.
	ps::SArray<float> big_out(n), small_out(rn);
	ps::SArray<int> out_len(1);

	// The server learns each key's length from its first push.
	kv.Wait(kv.ZPush(big_key, big, big_len));
	kv.Wait(kv.ZPush(small_key, small, small_len));
	for (const std::string &test : tests) {
		if (test == "round") {
			report("round", o.round_size,
			       timed(o.round_iters, [&] {
				       kv.Wait(kv.ZPush(small_key, small,
							small_len));
				       kv.Wait(kv.ZPull(small_key, &small_out,
							&out_len));
			       }));
		} else if (test == "pull") {
			report("pull", o.size, timed(o.iters, [&] {
				       kv.Wait(kv.ZPull(big_key, &big_out,
							&out_len));
			       }));
			// Every push added 1 to each value.
			if (big_out[0] < 1.0f || big_out[n - 1] != big_out[0]) {
				std::fprintf(stderr,
					     "pslite-bench: pulled %g and %g, "
					     "wanted two equal sums\n",
					     big_out[0], big_out[n - 1]);
				std::exit(1);
			}
		} else if (test == "push") {
			report("push", o.size, timed(o.iters, [&] {
				       kv.Wait(kv.ZPush(big_key, big,
							big_len));
			       }));
		}
	}
}

[[noreturn]] void usage(int status)
{
	std::fprintf(status ? stderr : stdout,
		     "Usage: DMLC_ROLE=worker|server|scheduler [DMLC_* ...] "
		     "pslite-bench [-s SIZE] [-n N] [-N N] TEST...\n"
		     "  TEST   round, pull or push (worker; the others "
		     "ignore them)\n"
		     "  -s     pull/push bytes (1048576), a multiple of 4\n"
		     "  -n     pull/push iterations (1000; warm-up n/10)\n"
		     "  -N     round iterations (10000; warm-up N/10)\n");
	std::exit(status);
}

long number(const char *s)
{
	char *end;
	long v = std::strtol(s, &end, 10);

	if (!*s || *end || v <= 0) {
		std::fprintf(stderr,
			     "pslite-bench: bad number '%s': use a positive "
			     "whole number\n",
			     s);
		std::exit(2);
	}
	return v;
}

} // namespace

int main(int argc, char **argv)
{
	Opts o;
	std::vector<std::string> tests;

	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];

		if (a == "-h" || a == "--help")
			usage(0);
		if ((a == "-s" || a == "-n" || a == "-N") && i + 1 < argc) {
			long v = number(argv[++i]);

			if (a == "-s")
				o.size = (size_t)v;
			else if (a == "-n")
				o.iters = (int)v;
			else
				o.round_iters = (int)v;
		} else if (a == "round" || a == "pull" || a == "push") {
			tests.push_back(a);
		} else {
			std::fprintf(stderr,
				     "pslite-bench: unknown argument '%s'\n",
				     argv[i]);
			usage(2);
		}
	}
	if (o.size % sizeof(float)) {
		std::fprintf(stderr, "pslite-bench: -s %zu is not a multiple "
				     "of 4\n",
			     o.size);
		return 2;
	}
	ps::Start(0);
	ps::KVServer<float> *server = nullptr;
	if (ps::IsServer()) {
		server = new ps::KVServer<float>(0);
		server->set_request_handle(handle);
	}
	if (ps::IsWorker())
		run_worker(o, tests);
	ps::Finalize(0, true);
	delete server;
	return 0;
}
