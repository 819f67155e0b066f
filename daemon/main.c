/* SPDX-License-Identifier: MIT */
/* tcpedud: a short run() over the manager. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "manager.h"
#include "plugin.h"
#include "privileges.h"

static void help(void) {
        printf("Usage: tcpedud [OPTIONS]\n"
               "\n"
               "TCP echo, JSON-command and chat servers that log every TCP state transition\n"
               "of every connection to the journal, checked against what the kernel reports.\n"
               "\n"
               "Options:\n"
               "  -c, --config=FILE       read FILE and FILE.d/*.conf instead of\n"
               "                          " CONFIG_DEFAULT_PATH " and " CONFIG_DEFAULT_DROPIN_DIR "/*.conf\n"
               "  -t, --check-config      check the configuration, print every error and exit\n"
               "      --dump-config       print the effective configuration and exit\n"
               "      --log-target=TARGET auto, journal or stderr (auto: the journal when\n"
               "                          journald runs, stderr otherwise)\n"
               "  -h, --help              show this help and exit\n"
               "      --version           show the version and exit\n"
               "\n"
               "With no file at " CONFIG_DEFAULT_PATH " and no -c, tcpedud runs on its\n"
               "embedded default: echo on port 7007, enhanced (JSON commands) on 7008 and\n"
               "chat on 7009, each on 127.0.0.1 and [::1].\n"
               "\n"
               "Signals: SIGHUP reloads the configuration (a rejected one changes nothing),\n"
               "SIGTERM and SIGINT close every connection gracefully and exit.\n"
               "\n"
               "Exit status: 0 success, 1 runtime failure (e.g. an address in use),\n"
               "64 usage error, 78 configuration error.\n"
               "\n"
               "See tcpedud(8), tcpedud.conf(5), journalctl SYSLOG_IDENTIFIER=tcpedud.\n");
}

enum { ARG_DUMP_CONFIG = 0x100, ARG_LOG_TARGET, ARG_VERSION };

typedef struct Args {
        const char *config_path;
        bool check_config;
        bool dump_config;
        LogTarget log_target;
} Args;

/* Returns 1 to run, 0 to exit successfully, or an exit code as a negative number. */
static int parse_args(int argc, char **argv, Args *args) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, 't' },
                { "dump-config", no_argument, NULL, ARG_DUMP_CONFIG },
                { "log-target", required_argument, NULL, ARG_LOG_TARGET },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {},
        };
        int c;

        *args = (Args){ .log_target = LOG_TARGET_AUTO };
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":c:th", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                        args->config_path = optarg;
                        break;
                case 't':
                        args->check_config = true;
                        break;
                case ARG_DUMP_CONFIG:
                        args->dump_config = true;
                        break;
                case ARG_LOG_TARGET:
                        args->log_target = log_target_from_string(optarg);
                        if (args->log_target < 0) {
                                fprintf(stderr, "tcpedud: invalid --log-target '%s': expected auto, journal or stderr\n", optarg);
                                return -EXIT_USAGE;
                        }
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("tcpedud " TCPEDU_VERSION "\n");
                        return 0;
                case ':':
                        fprintf(stderr, "tcpedud: option '%s' needs an argument\nTry 'tcpedud --help'.\n", argv[optind - 1]);
                        return -EXIT_USAGE;
                default:
                        fprintf(stderr, "tcpedud: unknown option '%s'\nTry 'tcpedud --help'.\n", argv[optind - 1]);
                        return -EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "tcpedud: unexpected argument '%s'\nTry 'tcpedud --help'.\n", argv[optind]);
                return -EXIT_USAGE;
        }
        return 1;
}

static int run(int argc, char **argv) {
        Args args;
        ConfigErrors errs = {};
        Config *config = NULL;
        Manager *m = NULL;
        char error[512];
        int r;

        /* Block the signals sd-event handles before anything else, so that a SIGTERM during
         * start-up is handled gracefully once the loop runs instead of killing the process. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = parse_args(argc, argv, &args);
        if (r <= 0)
                return -r;

        r = config_load(args.config_path, &config, &errs);
        if (r >= 0 && (privileges_validate(config, &errs) < 0 || kernel_source_validate(config, &errs) < 0 ||
                       plugins_validate(config, false, &errs) < 0)) {
                config = config_free(config);
                r = -EINVAL;
        }
        if (r < 0) {
                if (errs.n == 0)
                        fprintf(stderr, "tcpedud: cannot load configuration: %s\n", strerror(-r));
                config_errors_print(&errs, stderr);
                config_errors_clear(&errs);
                return EXIT_CONFIG;
        }
        if (args.check_config || args.dump_config) {
                if (args.dump_config)
                        config_dump(config, stdout);
                else
                        printf("%s: configuration OK (%zu files, %zu servers)\n", config->main_path, config->n_files, config->n_servers);
                config_free(config);
                return 0;
        }

        r = manager_new(args.config_path, config, args.log_target, &m);
        if (r < 0) {
                fprintf(stderr, "tcpedud: cannot start: %s\n", strerror(-r));
                config_free(config);
                return 1;
        }
        r = manager_start(m, TAKE_PTR(config), error, sizeof(error));
        if (r < 0) {
                fprintf(stderr, "tcpedud: %s\n", error);
                manager_free(m);
                return 1;
        }
        JournalStats js;
        journal_stats(m->core.journal, &js);
        if (!js.to_stderr && isatty(STDERR_FILENO))
                fprintf(stderr, "tcpedud: running; events go to the journal: journalctl -f SYSLOG_IDENTIFIER=tcpedud\n");

        r = manager_run(m);
        if (r < 0)
                fprintf(stderr, "tcpedud: event loop failed: %s\n", strerror(-r));
        int code = r < 0 ? 1 : m->core.exit_code;
        manager_free(m);
        return code;
}

int main(int argc, char **argv) {
        return run(argc, argv);
}
