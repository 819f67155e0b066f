/* SPDX-License-Identifier: MIT */
#include "test-util.h"

#include <CUnit/Basic.h>
#include <stdio.h>

int test_main(CU_SuiteInfo *suites) {
        if (CU_initialize_registry() != CUE_SUCCESS)
                return 2;
        if (CU_register_suites(suites) != CUE_SUCCESS) {
                fprintf(stderr, "cannot register suites: %s\n", CU_get_error_msg());
                CU_cleanup_registry();
                return 2;
        }
        CU_basic_set_mode(CU_BRM_VERBOSE);
        CU_basic_run_tests();
        unsigned failed = CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed();
        unsigned run = CU_get_number_of_tests_run();
        printf("\n%u passed, %u failed\n", run - CU_get_number_of_tests_failed(), failed);
        CU_cleanup_registry();
        return failed ? 1 : 0;
}
