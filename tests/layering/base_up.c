/* SPDX-License-Identifier: MIT */
/* Must not compile: src/base/ sees no layer above it (tests/layering). */
#include "transport.h"
