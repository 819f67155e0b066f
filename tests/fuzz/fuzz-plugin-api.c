/* SPDX-License-Identifier: MIT */
/* The API tcpedud gives handler plug-ins (daemon/plugin.c), with what a plug-in may hand it: NULL
 * or live connections, NULL or real data of any length (up to 1 MiB, past the 16 x buffer_size
 * output bound), any priority and message for the log, its per-connection data; from the top of
 * the loop and from inside on_message; while clients connect, send, half-close, reset and do not
 * read. The daemon is built in-process (daemon-harness.h) with one enhanced server whose handler
 * is fuzz-plugin.so. The input is a script of operations, one byte each and its arguments:
 *   0 send   1 close   2 broadcast   3 accessors and per-connection data   4 log
 *   5 a client sends a line; the next N operations run inside its on_message
 *   6 a client connects   7 a client closes or resets   8 run the loop (and let clients read)
 *   9 a client half-closes
 * Checked: the documented results (-EINVAL for a NULL connection or NULL data with a length, ""
 * and NULL from the accessors given NULL), and that the plug-in never holds a connection the
 * daemon freed (ASan) nor is left holding one once every client is gone. */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon-harness.h"
#include "fuzz-plugin.h"
#include "fuzz.h"
#include "id.h"

#define CLIENTS_MAX 8
#define DATA_MAX (1u << 20)

static FuzzPluginShared *plug;
static int clients[CLIENTS_MAX];
static unsigned n_clients;
static uint8_t payload[DATA_MAX];

static tcpedu_conn *pick_conn(Script *s) {
        uint8_t b = next(s);
        if (b == 0xff || plug->n_conns == 0)
                return NULL;
        return plug->conns[b % plug->n_conns];
}

static const void *pick_data(Script *s, size_t *ret_len) {
        uint8_t mode = next(s);
        size_t len = (size_t)next(s) << 8 | next(s);
        if (mode & 2)
                len *= 16; /* up to 1 MiB */
        *ret_len = len;
        return mode & 1 ? NULL : payload;
}

static void op_send(Script *s) {
        tcpedu_conn *c = pick_conn(s);
        size_t len;
        const void *data = pick_data(s, &len);
        int r = plug->api->send(c, data, len);
        if (!c || (!data && len))
                FUZZ_CHECK(r == -EINVAL);
        else
                FUZZ_CHECK(r == 0 || r == -EPIPE || r == -ENOBUFS || r == -ECONNRESET || r == -ENOMEM);
}

static void op_broadcast(Script *s) {
        tcpedu_server *srv = next(s) == 0xff ? NULL : plug->server;
        tcpedu_conn *except = pick_conn(s);
        size_t len;
        const void *data = pick_data(s, &len);
        unsigned before = plug->n_conns;
        int r = plug->api->broadcast(srv, data, len, except);
        if (!srv || (!data && len))
                FUZZ_CHECK(r == -EINVAL);
        else
                FUZZ_CHECK(r >= 0 && (unsigned)r <= before);
}

static void op_accessors(Script *s) {
        const tcpedu_api *api = plug->api;
        tcpedu_conn *c = pick_conn(s);
        uint8_t what = next(s);

        FUZZ_CHECK(strcmp(api->server_name(plug->server), "plug") == 0);
        FUZZ_CHECK(strcmp(api->server_name(NULL), "") == 0);
        if (!c) {
                FUZZ_CHECK(strcmp(api->conn_id(NULL), "") == 0);
                FUZZ_CHECK(strcmp(api->conn_peer(NULL), "") == 0);
                FUZZ_CHECK(api->conn_server(NULL) == NULL);
                FUZZ_CHECK(api->conn_get_data(NULL) == NULL);
                api->conn_set_data(NULL, payload);
                return;
        }
        FUZZ_CHECK(id_is_valid(api->conn_id(c)));
        FUZZ_CHECK(strncmp(api->conn_peer(c), "127.0.0.1:", 10) == 0);
        FUZZ_CHECK(api->conn_server(c) == plug->server);
        if (what & 1) {
                /* per-connection data: the plug-in's own, freed in its on_disconnect */
                free(api->conn_get_data(c));
                uint8_t *p = malloc(1 + what);
                FUZZ_CHECK(p);
                p[0] = what;
                api->conn_set_data(c, p);
                FUZZ_CHECK(api->conn_get_data(c) == p);
        } else {
                uint8_t *p = api->conn_get_data(c);
                if (p)
                        FUZZ_CHECK(p[0] & 1); /* what this target stored, for this connection */
        }
}

static void op_log(Script *s) {
        tcpedu_server *srv = next(s) == 0xff ? NULL : plug->server;
        int priority = (int)((uint32_t)next(s) << 24 | (uint32_t)next(s) << 16 | (uint32_t)next(s) << 8 | next(s));
        size_t len = next(s);
        char *msg = NULL;
        if (len != 0xff) {
                len = len * 8 < s->n ? len * 8 : s->n; /* up to 2 KiB: past the 1024 bytes logged */
                msg = fuzz_strndup(s->p, len);
                s->p += len, s->n -= len;
        }
        plug->api->log(srv, priority, msg);
        free(msg);
}

static void client_send(Script *s, Script *nested, Script *pending) {
        uint8_t k = next(s), depth = next(s);
        size_t len = next(s);
        len = len < s->n ? len : s->n;
        if (n_clients > 0) {
                char line[300];
                for (size_t i = 0; i < len; i++)
                        line[i] = s->p[i] == '\n' ? ' ' : (char)s->p[i];
                line[len] = '\n';
                (void)send(clients[k % n_clients], line, len + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        s->p += len, s->n -= len;
        /* The next operations, up to depth bytes of them, run inside on_message. */
        size_t n = depth < s->n ? depth : s->n;
        if (nested) {
                *pending = (Script){ s->p, n };
                s->p += n, s->n -= n;
        }
}

static void client_connect(void) {
        if (n_clients >= CLIENTS_MAX)
                return;
        int fd = fuzz_daemon_connect("plug");
        FUZZ_CHECK(fd >= 0);
        clients[n_clients++] = fd;
}

static void client_close(Script *s) {
        uint8_t b = next(s);
        if (n_clients == 0)
                return;
        unsigned k = b % n_clients;
        if (b & 0x80) /* reset: RST instead of FIN */
                (void)setsockopt(clients[k], SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 }, sizeof(struct linger));
        close(clients[k]);
        clients[k] = clients[--n_clients];
}

static void run(Script *s, bool top);

static Script in_message; /* what the next on_message runs */
static unsigned nesting;

static void on_message(tcpedu_conn *c, const char *msg, size_t len) {
        (void)c;
        (void)msg;
        (void)len;
        if (in_message.n == 0 || nesting > 0)
                return;
        Script s = in_message;
        in_message = (Script){};
        nesting++;
        run(&s, false);
        nesting--;
}

static void run(Script *s, bool top) {
        while (s->n > 0) {
                uint8_t op = next(s) % 10;
                switch (op) {
                case 0:
                        op_send(s);
                        break;
                case 1:
                        plug->api->close(pick_conn(s));
                        break;
                case 2:
                        op_broadcast(s);
                        break;
                case 3:
                        op_accessors(s);
                        break;
                case 4:
                        op_log(s);
                        break;
                case 5:
                        client_send(s, top ? s : NULL, &in_message);
                        break;
                case 6:
                        if (top)
                                client_connect();
                        break;
                case 7:
                        if (top)
                                client_close(s);
                        break;
                case 8:
                        if (top) {
                                fuzz_daemon_pump(100);
                                if (next(s) & 1)
                                        for (unsigned i = 0; i < n_clients; i++)
                                                (void)fuzz_drain(clients[i]);
                        }
                        break;
                case 9:
                        if (top && n_clients > 0)
                                (void)shutdown(clients[next(s) % n_clients], SHUT_WR);
                        break;
                }
        }
}

static const char config_fmt[] = "log_level = debug\n"
                                 "[server plug]\ntype = enhanced\nlisten = 127.0.0.1:%s\nhandler = %s\n"
                                 "buffer_size = 1024\nmax_message = 256\nmax_clients = 16\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char config[512];
        (void)argc;
        (void)argv;
        bool netns = fuzz_daemon_netns();
        snprintf(config, sizeof(config), config_fmt, netns ? "7011" : "0", FUZZ_PLUGIN_PATH);
        fuzz_daemon_start(config);

        /* the daemon loads the plug-in at the first connection: this is the same object */
        void *dl = dlopen(FUZZ_PLUGIN_PATH, RTLD_NOW | RTLD_LOCAL);
        if (!dl)
                fprintf(stderr, "fuzz-plugin-api: %s\n", dlerror());
        FUZZ_CHECK(dl);
        FuzzPluginShared *(*get)(void);
        *(void **)&get = dlsym(dl, "fuzz_plugin_shared");
        FUZZ_CHECK(get);
        plug = get();
        plug->on_message = on_message;
        for (size_t i = 0; i < sizeof(payload); i++)
                payload[i] = (uint8_t)('a' + i % 26);
        client_connect();
        fuzz_daemon_pump(100);
        if (!plug->api)
                fprintf(stderr, "fuzz-plugin-api: the daemon did not load %s (see its log)\n", FUZZ_PLUGIN_PATH);
        FUZZ_CHECK(plug->api && plug->n_conns == 1);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Script s = { data, size };

        while (n_clients < 2)
                client_connect();
        fuzz_daemon_pump(100);
        run(&s, true);
        fuzz_daemon_pump(200);

        /* Every client resets: the plug-in must be told of every connection's end. */
        while (n_clients > 0) {
                (void)setsockopt(clients[0], SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 }, sizeof(struct linger));
                close(clients[0]);
                clients[0] = clients[--n_clients];
        }
        in_message = (Script){};
        for (unsigned i = 0; i < 100 && plug->n_conns > 0; i++)
                fuzz_daemon_pump(100);
        FUZZ_CHECK(plug->n_conns == 0);
        /* as fuzz-control does: no TIME_WAIT watch piles up from one input to the next */
        ListNode *n, *tmp;
        list_foreach_safe (n, tmp, &fuzz_daemon.manager->core.lingering)
                conn_forget(list_entry(n, Conn, node), "fuzz input done");
        return 0;
}
