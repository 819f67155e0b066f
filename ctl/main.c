/* SPDX-License-Identifier: MIT */
/* tcpeductl: the control client. Verbs are data: a table of name, handler and help. */
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "tcp-state.h"

#define EXIT_USAGE 64

typedef struct Verb {
        const char *name;
        const char *args;
        const char *help;
        int (*run)(int argc, char **argv);
} Verb;

static int verb_explain(int argc, char **argv);

static const Verb verbs[] = {
        { "explain", "[STATE]", "what a TCP state means (works without a daemon)", verb_explain },
};

static void help(void) {
        printf("Usage: tcpeductl [OPTIONS] VERB [ARGS]\n\nControl client of tcpedud(8).\n\nVerbs:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                printf("  %-8s %-10s %s\n", verbs[i].name, verbs[i].args, verbs[i].help);
        printf("\nOptions:\n  -h, --help     show this help and exit\n      --version  show the version and exit\n"
               "\nExit status: 0 success, 1 failure, 64 usage error.\n");
}

static int verb_explain(int argc, char **argv) {
        if (argc > 2) {
                fprintf(stderr, "tcpeductl explain: too many arguments\n");
                return EXIT_USAGE;
        }
        for (int s = 0; s < _TCP_STATE_MAX; s++) {
                const TcpStateInfo *info = tcp_state_info((TcpState)s);
                if (argc == 2 && tcp_state_from_string(argv[1]) != (TcpState)s)
                        continue;
                printf("%-13s %s (%s)\n", info->name, info->meaning, info->who);
        }
        if (argc == 2 && tcp_state_from_string(argv[1]) < 0) {
                fprintf(stderr, "tcpeductl explain: unknown state '%s'\n", argv[1]);
                return 1;
        }
        return 0;
}

int main(int argc, char **argv) {
        if (argc < 2) {
                help();
                return EXIT_USAGE;
        }
        if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
                help();
                return 0;
        }
        if (strcmp(argv[1], "--version") == 0) {
                printf("tcpeductl " TCPEDU_VERSION "\n");
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (strcmp(argv[1], verbs[i].name) == 0)
                        return verbs[i].run(argc - 1, argv + 1);
        fprintf(stderr, "tcpeductl: unknown verb '%s'\nTry 'tcpeductl --help'.\n", argv[1]);
        return EXIT_USAGE;
}
