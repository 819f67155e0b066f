/* SPDX-License-Identifier: MIT */
/* tcpeductl: the control client of tcpedud. main() reads the global options, finds the verb in
 * the table (verbs.c), takes the global options that follow the verb out of its arguments, checks
 * the count of positional ones and runs it. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl-util.h"
#include "verbs.h"

/* The options before the verb. Returns -1 to go on, or the exit code. */
static int parse_global_options(int argc, char **argv, CtlOptions *o) {
        static const struct option options[] = {
                { "socket", required_argument, NULL, 's' }, { "config", required_argument, NULL, 'c' }, { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },      {},
        };
        int c;

        opterr = 0;
        /* Stop at the verb: what follows belongs to it. */
        while ((c = getopt_long(argc, argv, "+:s:c:jh", options, NULL)) >= 0) {
                switch (c) {
                case 's':
                        o->socket_path = optarg;
                        break;
                case 'c':
                        o->config_path = optarg;
                        break;
                case 'j':
                        o->json = true;
                        break;
                case 'h':
                        ctl_help(stdout);
                        return EXIT_OK;
                case 'V':
                        printf("tcpeductl " TCPEDU_VERSION " (control protocol %d)\n", CONTROL_PROTOCOL_VERSION);
                        return EXIT_OK;
                case ':':
                        fprintf(stderr, "tcpeductl: option '%s' needs an argument\nTry 'tcpeductl --help'.\n", argv[optind - 1]);
                        return EXIT_USAGE;
                default:
                        fprintf(stderr, "tcpeductl: unknown option '%s'\nTry 'tcpeductl --help'.\n", argv[optind - 1]);
                        return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                ctl_help(stderr);
                return EXIT_USAGE;
        }
        return -1;
}

/* The verb at argv[optind]: "session VERB" is one verb of two words. *ret_first: where its
 * arguments' argv[0] is. Returns -1 with *ret set, or the exit code. */
static int find_verb(int argc, char **argv, const CtlVerb **ret, int *ret_first) {
        char name[64];
        int first = optind;
        snprintf(name, sizeof(name), "%s", argv[optind]);
        if (strcmp(argv[optind], "session") == 0) {
                const char *sub = optind + 1 < argc ? argv[optind + 1] : NULL;
                if (!sub || sub[0] == '-') {
                        bool asked = sub && (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0);
                        ctl_session_help(asked ? stdout : stderr);
                        return asked ? EXIT_OK : EXIT_USAGE;
                }
                if ((size_t)snprintf(name, sizeof(name), "session %s", sub) >= sizeof(name) || !ctl_verb_find(name)) {
                        fprintf(stderr,
                                "tcpeductl: unknown verb 'session %s' (session open, send, recv, close or watch)\n"
                                "Try 'tcpeductl session --help'.\n",
                                sub);
                        return EXIT_USAGE;
                }
                first = optind + 1;
        }
        *ret = ctl_verb_find(name);
        if (!*ret) {
                fprintf(stderr, "tcpeductl: unknown verb '%s'\nTry 'tcpeductl --help'.\n", argv[optind]);
                return EXIT_USAGE;
        }
        *ret_first = first;
        return -1;
}

/* Options are accepted after the verb too: tcpeductl status --json. They are taken out of vargv;
 * after "--" everything is the verb's, as it is. Returns -1 with *vargc updated, or the exit code
 * (VERB --help). */
static int take_global_options(const CtlVerb *v, int *vargc, char **vargv, CtlOptions *o) {
        int kept = 1, n = *vargc;
        for (int i = 1; i < n; i++) {
                if (strcmp(vargv[i], "--") == 0) {
                        while (i < n)
                                vargv[kept++] = vargv[i++];
                        break;
                }
                if (strcmp(vargv[i], "--help") == 0 || strcmp(vargv[i], "-h") == 0) {
                        ctl_verb_help(v);
                        return EXIT_OK;
                }
                if (strcmp(vargv[i], "--json") == 0 || strcmp(vargv[i], "-j") == 0)
                        o->json = true;
                else if ((strcmp(vargv[i], "-s") == 0 || strcmp(vargv[i], "--socket") == 0) && i + 1 < n)
                        o->socket_path = vargv[++i];
                else if (strncmp(vargv[i], "--socket=", 9) == 0)
                        o->socket_path = vargv[i] + 9;
                else if ((strcmp(vargv[i], "-c") == 0 || strcmp(vargv[i], "--config") == 0) && i + 1 < n)
                        o->config_path = vargv[++i];
                else if (strncmp(vargv[i], "--config=", 9) == 0)
                        o->config_path = vargv[i] + 9;
                else
                        vargv[kept++] = vargv[i];
        }
        *vargc = kept;
        vargv[kept] = NULL;
        return -1;
}

/* The count of positional arguments, for a verb that does not parse its options itself. */
static int check_arguments(const CtlVerb *v, int vargc, char **vargv) {
        int positional = 0;
        if (v->own_options)
                return EXIT_OK;
        for (int i = 1; i < vargc; i++)
                if (vargv[i][0] != '-' || strcmp(vargv[i], "-") == 0)
                        positional++;
        if (positional < v->min_args || positional > v->max_args || positional != vargc - 1) {
                fprintf(stderr, "tcpeductl %s: expected %s%s\nTry 'tcpeductl %s --help'.\n", v->name, v->args[0] ? v->args : "no arguments",
                        positional > v->max_args ? " (too many arguments)" : "", v->name);
                return EXIT_USAGE;
        }
        return EXIT_OK;
}

int main(int argc, char **argv) {
        CtlOptions o = {};
        const CtlVerb *v;
        int first, r;

        if ((r = parse_global_options(argc, argv, &o)) >= 0)
                return r;
        if ((r = find_verb(argc, argv, &v, &first)) >= 0)
                return r;
        int vargc = argc - first;
        char **vargv = argv + first;
        if ((r = take_global_options(v, &vargc, vargv, &o)) >= 0)
                return r;
        if ((r = check_arguments(v, vargc, vargv)) != EXIT_OK)
                return r;
        return v->run(v, &o, vargc, vargv);
}
