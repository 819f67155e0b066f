/* SPDX-License-Identifier: MIT */
/* The control socket's dispatch (daemon/control.c) with argument validation, against a daemon
 * built in-process (daemon-harness.h): echo, enhanced and chat servers that run, one that does
 * not, a connection of this process's own to each running server, and client sessions (in the
 * private network namespace only). Each input is what one control client sends:
 *   byte 0:  bit 0: the client is unprivileged (uid 65534, when run as root), else an admin
 *   the rest: request lines, sent as fast as the daemon takes them; then the client half-closes.
 * The daemon must answer with valid JSON lines only and close the client once it is done;
 * afterwards the harness puts the daemon back as it was (servers, log level, no sessions, no
 * connection lingering in TIME_WAIT). */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control-proto.h"
#include "daemon-harness.h"
#include "fuzz.h"
#include "macro.h"

#define ROUNDS_MAX 20000 /* event-loop iterations for one input: far more than any needs */

static const char *const member_servers[] = { "echo", "cmd", "chat" };
static int members[3] = { -1, -1, -1 };
static bool verbose; /* TCPEDU_FUZZ_VERBOSE=1: print what the daemon answers */

static const char config_netns[] = "log_level = debug\n"
                                   "max_sessions = 4\n"
                                   "session_buffer = 4096\n"
                                   "session_idle_timeout = 60\n"
                                   "[server echo]\ntype = echo\nlisten = 127.0.0.1:7007, [::1]:7007\nmax_clients_per_ip = 50\n"
                                   "[server cmd]\ntype = enhanced\nlisten = 127.0.0.1:7008\n"
                                   "[server chat]\ntype = chat\nlisten = 127.0.0.1:7009\nmax_message = 256\n"
                                   "[server spare]\ntype = echo\nlisten = 127.0.0.1:7010\nautostart = no\n";
static const char config_plain[] = "log_level = debug\n"
                                   "max_sessions = 0\n"
                                   "[server echo]\ntype = echo\nlisten = 127.0.0.1:0\nmax_clients_per_ip = 50\n"
                                   "[server cmd]\ntype = enhanced\nlisten = 127.0.0.1:0\n"
                                   "[server chat]\ntype = chat\nlisten = 127.0.0.1:0\nmax_message = 256\n"
                                   "[server spare]\ntype = echo\nlisten = 127.0.0.1:0\nautostart = no\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void)argc;
        (void)argv;
        verbose = getenv("TCPEDU_FUZZ_VERBOSE");
        bool netns = fuzz_daemon_netns();
        if (!netns)
                fprintf(stderr, "fuzz-control: not root: no network namespace, so no client sessions and servers on port 0\n");
        fuzz_daemon_start(netns ? config_netns : config_plain);
        return 0;
}

/* This process's own members of each running server, so that connection commands find some. */
static void members_connect(void) {
        for (size_t i = 0; i < ELEMENTSOF(members); i++) {
                if (members[i] >= 0 && !fuzz_drain(members[i]))
                        members[i] = safe_close(members[i]);
                if (members[i] >= 0)
                        continue;
                members[i] = fuzz_daemon_connect(member_servers[i]);
                if (members[i] >= 0 && strcmp(member_servers[i], "chat") == 0) {
                        fuzz_daemon_pump(50);
                        (void)send(members[i], "/nick member\n", 13, MSG_NOSIGNAL | MSG_DONTWAIT);
                }
        }
        fuzz_daemon_pump(100);
}

/* Every line from the daemon is one JSON object: the greeting, a reply or an event. */
static void check_lines(char *buf, size_t *len, bool *greeted) {
        size_t start = 0;
        for (;;) {
                char *nl = memchr(buf + start, '\n', *len - start);
                if (!nl)
                        break;
                size_t n = (size_t)(nl - (buf + start));
                ControlReply rep;
                if (verbose)
                        fprintf(stderr, "< %.*s\n", (int)n, buf + start);
                FUZZ_CHECK(n <= CONTROL_REPLY_MAX);
                FUZZ_CHECK(control_reply_parse(buf + start, n, &rep) == 0);
                struct json_object *v;
                if (!*greeted) {
                        FUZZ_CHECK(json_object_object_get_ex(rep.root, "tcpedu", &v));
                        *greeted = true;
                } else if (!json_object_object_get_ex(rep.root, "event", &v)) {
                        FUZZ_CHECK(json_object_object_get_ex(rep.root, "ok", &v) && json_object_object_get_ex(rep.root, "id", &v));
                        if (!rep.ok)
                                FUZZ_CHECK(rep.code >= 0 && rep.message && *rep.message);
                }
                control_reply_done(&rep);
                start += n + 1;
        }
        memmove(buf, buf + start, *len - start);
        *len -= start;
}

/* Put the daemon back as the config has it: the next input starts from the same place. */
static void reset(void) {
        Manager *m = fuzz_daemon.manager;
        ListNode *n, *tmp;

        list_foreach_safe (n, tmp, &m->core.session_server->conns)
                conn_abort(list_entry(n, Conn, node), "fuzz input done");
        /* Connections the daemon closed first are watched in TIME_WAIT for a minute: thousands
         * of them would pile up over a run, each looked up in the kernel by every "connections",
         * and slow it down more and more. They end as when the daemon exits. */
        fuzz_daemon_pump(200);
        list_foreach_safe (n, tmp, &m->core.lingering)
                conn_forget(list_entry(n, Conn, node), "fuzz input done");
        for (size_t i = 0; i < m->core.n_servers; i++) {
                Server *s = m->core.servers[i];
                if (s->running && !s->cfg.autostart)
                        server_stop(s, "fuzz input done");
                else if (!s->running && s->cfg.autostart) {
                        Listener *prepared[LISTEN_MAX];
                        char error[512];
                        FUZZ_CHECK(server_prepare_listeners(s, NULL, 0, prepared, error, sizeof(error)) == 0);
                        FUZZ_CHECK(server_start(s, prepared, true) == 0);
                }
        }
        m->core.log_level = m->core.config->daemon.log_level;
        fuzz_daemon_pump(200);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        static char in[CONTROL_REPLY_MAX + 1];
        size_t in_len = 0, sent = 0;
        bool greeted = false, eof = false, shut = false, unprivileged;
        unsigned settle = 0;

        if (size < 1)
                return 0;
        unprivileged = data[0] & 1;
        data++, size--;
        members_connect();

        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fuzz_daemon.control_path);
        if (unprivileged && geteuid() == 0)
                FUZZ_CHECK(seteuid(65534) == 0);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        FUZZ_CHECK(fd >= 0);
        FUZZ_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        if (unprivileged && getuid() == 0)
                FUZZ_CHECK(seteuid(0) == 0);

        for (unsigned round = 0; !eof; round++) {
                FUZZ_CHECK(round < ROUNDS_MAX); /* the daemon stopped answering */
                if (sent < size) {
                        ssize_t k = send(fd, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
                        FUZZ_CHECK(k >= 0 || errno == EAGAIN);
                        sent += k > 0 ? (size_t)k : 0;
                }
                int r = sd_event_run(fuzz_daemon.manager->core.event, 0);
                FUZZ_CHECK(r >= 0);
                /* All sent: once the daemon is idle (a session's handshake done, say), the client is done. */
                if (sent == size && !shut && (r == 0 || ++settle > 50)) {
                        FUZZ_CHECK(shutdown(fd, SHUT_WR) == 0);
                        shut = true;
                }
                for (;;) {
                        ssize_t k = recv(fd, in + in_len, sizeof(in) - in_len, MSG_DONTWAIT);
                        if (k == 0 || (k < 0 && errno == ECONNRESET)) {
                                eof = true;
                                break;
                        }
                        if (k < 0) {
                                FUZZ_CHECK(errno == EAGAIN);
                                break;
                        }
                        in_len += (size_t)k;
                        check_lines(in, &in_len, &greeted);
                        FUZZ_CHECK(in_len < sizeof(in)); /* a line over CONTROL_REPLY_MAX */
                }
        }
        FUZZ_CHECK(in_len == 0); /* the last line was whole */
        close(fd);
        reset();
        return 0;
}
