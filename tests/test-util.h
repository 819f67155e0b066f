/* SPDX-License-Identifier: MIT */
#pragma once

#include <CUnit/CUnit.h>

/* Register the suites, run them verbosely, print "N passed, N failed" and return the exit code
 * ctest expects: 0 when every assertion passed. */
int test_main(CU_SuiteInfo *suites);
