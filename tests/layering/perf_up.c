/* SPDX-License-Identifier: MIT */
/* Must not compile: src/perf/ sees the transport, not the parameter server. */
#include "ps_proto.h"
