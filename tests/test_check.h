/* SPDX-License-Identifier: MIT */
/*
 * test_check.h - CHECK(cond, fmt, ...): a cmocka assertion that says what
 * was being checked and what was found, for failures that must be read
 * without a debugger (CI logs, sanitizer runs). Include after <cmocka.h>.
 */
#ifndef RDPS_TEST_CHECK_H
#define RDPS_TEST_CHECK_H

#define CHECK(cond, ...)                                                    \
	do {                                                                \
		if (!(cond)) {                                              \
			print_error("%s:%d: check '%s' failed: ", __FILE__, \
				    __LINE__, #cond);                       \
			print_error(__VA_ARGS__);                           \
			print_error("\n");                                  \
			fail();                                             \
		}                                                           \
	} while (0)

#endif /* RDPS_TEST_CHECK_H */
