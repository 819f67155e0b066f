/* SPDX-License-Identifier: MIT */
/* Test fixture: a shared object that is not a tcpedu plug-in. */
int not_a_handler(void);
int not_a_handler(void) {
        return 42;
}
