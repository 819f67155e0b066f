/* SPDX-License-Identifier: MIT */
/* The verb list is written in four places: the protocol (ControlVerb, control_commands()), the
 * daemon's handler table, tcpeductl's verb table and the bash completion. This fails when they
 * differ: every command of the protocol is sent by some verb of tcpeductl, every verb that names
 * a request names a real one, the completion offers exactly tcpeductl's verbs and session
 * sub-verbs, and the daemon handles every command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control-proto.h"
#include "macro.h"
#include "test-util.h"
#include "unit-assert.h"
#include "verbs.h"
#ifdef HAVE_TCPEDUD_CORE
#include "control-dispatch.h"
#endif

#ifndef COMPLETION_PATH
#error "COMPLETION_PATH: the path of ctl/tcpeductl.bash"
#endif

static void test_protocol_reachable(void) {
        size_t n_cmds, n_verbs;
        const ControlCommand *cmds = control_commands(&n_cmds);
        const CtlVerb *verbs = ctl_verbs(&n_verbs);

        ASSERT_INTEQ(n_cmds, _CONTROL_VERB_MAX);
        for (size_t i = 0; i < n_cmds; i++) {
                bool found = false;
                for (size_t k = 0; k < n_verbs && !found; k++)
                        found = verbs[k].request == cmds[i].verb;
                if (!found)
                        fprintf(stderr, "\n    no tcpeductl verb sends %s\n", cmds[i].name);
                ASSERT_TRUE(found);
        }
}

static void test_table_valid(void) {
        size_t n_verbs;
        const CtlVerb *verbs = ctl_verbs(&n_verbs);

        ASSERT_TRUE(n_verbs > 0);
        for (size_t i = 0; i < n_verbs; i++) {
                const CtlVerb *v = &verbs[i];
                ASSERT_TRUE(v->name && v->args && v->help && v->run);
                ASSERT_TRUE(v->min_args >= 0 && v->min_args <= v->max_args);
                /* names are unique: the lookup finds this very entry */
                ASSERT_TRUE(ctl_verb_find(v->name) == v);
                if (v->request == CTL_REQUEST_LOCAL) {
                        ASSERT_TRUE(ctl_verb_command(v) == NULL);
                        continue;
                }
                bool valid = v->request >= 0 && v->request < _CONTROL_VERB_MAX && control_command_get(v->request);
                if (!valid)
                        fprintf(stderr, "\n    tcpeductl %s names request %d, not one of the protocol\n", v->name, (int)v->request);
                ASSERT_TRUE(valid);
                if (valid) {
                        ASSERT_TRUE(control_command_get(v->request)->verb == v->request);
                        ASSERT_STREQ(ctl_verb_command(v), control_command_get(v->request)->name);
                }
        }
}

/* The words of `local NAME="..."` in the completion file, space-separated, in a string to free. */
static char *completion_list(const char *name) {
        FILE *f = fopen(COMPLETION_PATH, "re");
        char line[4096], key[128];
        char *ret = NULL;
        if (!f) {
                fprintf(stderr, "\n    cannot open %s\n", COMPLETION_PATH);
                return NULL;
        }
        snprintf(key, sizeof(key), "local %s=\"", name);
        while (!ret && fgets(line, sizeof(line), f)) {
                char *p = strstr(line, key);
                if (!p)
                        continue;
                p += strlen(key);
                char *end = strchr(p, '"');
                if (end)
                        ret = strndup(p, (size_t)(end - p));
        }
        fclose(f);
        return ret;
}

/* The table's top-level words (a two-word verb gives its first word once) or, with prefix, the
 * second words of the verbs that begin with it; space-separated, in the table's order. */
static void table_list(const char *prefix, char *buf, size_t size) {
        size_t n, off = 0;
        const CtlVerb *verbs = ctl_verbs(&n);
        buf[0] = 0;
        for (size_t i = 0; i < n; i++) {
                const char *name = verbs[i].name, *space = strchr(name, ' ');
                char word[64];
                if (prefix) {
                        if (!space || strncmp(name, prefix, (size_t)(space - name)) != 0 || prefix[space - name] != 0)
                                continue;
                        snprintf(word, sizeof(word), "%s", space + 1);
                } else
                        snprintf(word, sizeof(word), "%.*s", (int)(space ? (size_t)(space - name) : strlen(name)), name);
                /* once each */
                char padded[80], with[4200];
                snprintf(padded, sizeof(padded), " %s ", word);
                snprintf(with, sizeof(with), " %s ", buf);
                if (strstr(with, padded))
                        continue;
                off += (size_t)snprintf(buf + off, size - off, "%s%s", off ? " " : "", word);
        }
}

static void test_completion_verbs(void) {
        char want[4096];
        char *got = completion_list("verbs");
        table_list(NULL, want, sizeof(want));
        ASSERT_STREQ(got, want);
        free(got);
}

static void test_completion_session_verbs(void) {
        char want[4096];
        char *got = completion_list("session_verbs");
        table_list("session", want, sizeof(want));
        ASSERT_TRUE(want[0] != 0);
        ASSERT_STREQ(got, want);
        free(got);
}

static void test_daemon_handles(void) {
#ifdef HAVE_TCPEDUD_CORE
        for (int v = 0; v < _CONTROL_VERB_MAX; v++) {
                bool handled = control_dispatch_handles((ControlVerb)v);
                if (!handled)
                        fprintf(stderr, "\n    tcpedud has no handler for %s\n", control_command_get((ControlVerb)v)->name);
                ASSERT_TRUE(handled);
        }
#else
        printf("\n    SKIPPED: no tcpedud-core library to check the daemon's handlers against ");
#endif
}

int main(void) {
        static CU_TestInfo tests[] = {
                { "every command has a verb", test_protocol_reachable },
                { "every verb's request is real", test_table_valid },
                { "completion: verbs", test_completion_verbs },
                { "completion: session verbs", test_completion_session_verbs },
                { "the daemon handles every command", test_daemon_handles },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                { "verb lists", NULL, NULL, NULL, NULL, tests },
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
