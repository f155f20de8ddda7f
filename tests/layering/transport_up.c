/* SPDX-License-Identifier: MIT */
/* Must not compile: transport/ sees no parameter-server header. */
#include "ps_proto.h"
