/* SPDX-License-Identifier: MIT */
/* What TCP peers send to the echo, enhanced and chat servers, through the sockets of a daemon
 * built in-process (daemon-harness.h): the framers, the protocols and what the servers do with
 * them (chat rooms with JSON and line-mode members, renames, history, rate limits, queues; the
 * command server's answers), while peers connect, half-close, reset and do not read. The input is
 * a script of operations, one byte each and its arguments:
 *   0 connect to one of the servers   1 a client sends bytes from the input
 *   2 a client half-closes   3 a client closes or resets   4 run the loop, clients read
 *   5 a client sends one of a few well-formed requests
 * Checked: every line a chat server sends that begins with '{' is a JSON object with a "type";
 * every other line holds no control character (line-mode members see names and content as
 * terminal text), unless it is an error about the member's own line ("! "); and once every client
 * has reset, no server holds a connection. */
#include <errno.h>
#include <json-c/json.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon-harness.h"
#include "fuzz.h"
#include "macro.h"

#define CLIENTS_MAX 8
#define LINE_MAX_KEPT 65536

static const char *const servers[] = { "echo", "cmd", "chatj", "chatl", "chata" };

typedef struct Client {
        int fd;
        unsigned server;
        char *buf; /* a partial line from a chat server */
        size_t len;
} Client;

static Client clients[CLIENTS_MAX];
static unsigned n_clients;
static bool verbose; /* TCPEDU_FUZZ_VERBOSE=1: print the chat servers' lines */

static bool is_chat(const Client *c) {
        return strncmp(servers[c->server], "chat", 4) == 0;
}

static void check_line(const char *p, size_t n) {
        if (verbose)
                fprintf(stderr, "< %.*s\n", (int)n, p);
        if (n > 0 && p[0] == '{') {
                struct json_tokener *tok = json_tokener_new();
                struct json_object *o = json_tokener_parse_ex(tok, p, (int)n), *v;
                FUZZ_CHECK(o && json_object_is_type(o, json_type_object));
                FUZZ_CHECK(json_object_object_get_ex(o, "type", &v) && json_object_is_type(v, json_type_string));
                json_object_put(o);
                json_tokener_free(tok);
                return;
        }
        if (n >= 2 && p[0] == '!' && p[1] == ' ')
                return;
        for (size_t i = 0; i < n; i++)
                if (((unsigned char)p[i] < 0x20 && p[i] != '\t') || p[i] == 0x7f) {
                        fprintf(stderr, "chat line with a control character: %.*s\n", (int)n, p);
                        FUZZ_CHECK(!"no control character in a chat line");
                }
}

/* Read what is waiting; for a chat client, check each whole line. False once the server closed. */
static bool client_read(Client *c) {
        char buf[16384];
        for (;;) {
                ssize_t n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n == 0)
                        return false;
                if (n < 0)
                        return errno == EAGAIN || errno == EINTR;
                if (!is_chat(c))
                        continue;
                for (ssize_t i = 0; i < n; i++) {
                        if (buf[i] == '\n') {
                                check_line(c->buf, c->len);
                                c->len = 0;
                        } else if (c->len < LINE_MAX_KEPT)
                                c->buf[c->len++] = buf[i];
                }
        }
}

static void client_connect(Script *s) {
        unsigned server = next(s) % ELEMENTSOF(servers);
        if (n_clients >= CLIENTS_MAX)
                return;
        int fd = fuzz_daemon_connect(servers[server]);
        FUZZ_CHECK(fd >= 0);
        Client *c = &clients[n_clients++];
        c->fd = fd;
        c->server = server;
        c->len = 0;
}

static void client_remove(unsigned k, bool reset) {
        if (reset)
                (void)setsockopt(clients[k].fd, SOL_SOCKET, SO_LINGER, &(struct linger){ 1, 0 }, sizeof(struct linger));
        close(clients[k].fd);
        char *buf = clients[k].buf;
        clients[k] = clients[--n_clients];
        clients[n_clients].buf = buf;
}

static const char *const requests[] = {
        "/nick alice\n",
        "/nick bob\n",
        "/users\n",
        "/me waves\n",
        "hello room\n",
        "/quit\n",
        "{\"type\":\"join\",\"username\":\"carol\"}\n",
        "{\"type\":\"join\",\"username\":\"alice\"}\n",
        "{\"type\":\"message\",\"content\":\"hi there\"}\n",
        "{\"type\":\"leave\"}\n",
        "{\"command\":\"whoami\"}\n",
        "{\"command\":\"stats\"}\n",
        "{\"command\":\"random\",\"min\":1,\"max\":6}\n",
        "{\"command\":\"echo\",\"data\":[1,{\"a\":null}]}\n",
};

static void run(Script *s) {
        while (s->n > 0) {
                uint8_t op = next(s) % 6;
                if (op == 0) {
                        client_connect(s);
                        continue;
                }
                if (op == 4) {
                        fuzz_daemon_pump(100);
                        for (unsigned i = 0; i < n_clients; i++)
                                if (!client_read(&clients[i]))
                                        client_remove(i--, false);
                        continue;
                }
                uint8_t arg = next(s);
                if (n_clients == 0)
                        continue;
                Client *c = &clients[arg % n_clients];
                if (op == 1) {
                        size_t len = next(s);
                        len = len < s->n ? len : s->n;
                        (void)send(c->fd, s->p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                        s->p += len, s->n -= len;
                } else if (op == 2)
                        (void)shutdown(c->fd, SHUT_WR);
                else if (op == 3)
                        client_remove(arg % n_clients, arg & 0x80);
                else {
                        const char *r = requests[next(s) % ELEMENTSOF(requests)];
                        (void)send(c->fd, r, strlen(r), MSG_NOSIGNAL | MSG_DONTWAIT);
                }
        }
}

static const char config_fmt[] = "log_level = debug\n"
                                 "[server echo]\ntype = echo\nlisten = 127.0.0.1:%u\nbuffer_size = 1024\n"
                                 "[server cmd]\ntype = enhanced\nlisten = 127.0.0.1:%u\nbuffer_size = 1024\nmax_message = 256\n"
                                 "[server chatj]\ntype = chat\nprotocol = json\nlisten = 127.0.0.1:%u\n"
                                 "max_message = 128\nhistory = 3\nmax_queue = 4096\nmax_rate = 50\n"
                                 "[server chatl]\ntype = chat\nprotocol = line\nlisten = 127.0.0.1:%u\n"
                                 "max_message = 128\nhistory = 3\nmax_queue = 4096\nmax_rate = 50\n"
                                 "[server chata]\ntype = chat\nlisten = 127.0.0.1:%u\nmax_message = 128\nhistory = 0\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        char config[1024];
        (void)argc;
        (void)argv;
        verbose = getenv("TCPEDU_FUZZ_VERBOSE");
        bool netns = fuzz_daemon_netns();
        unsigned base = netns ? 7100 : 0, step = netns ? 1 : 0;
        snprintf(config, sizeof(config), config_fmt, base, base + step, base + 2 * step, base + 3 * step, base + 4 * step);
        fuzz_daemon_start(config);
        for (unsigned i = 0; i < CLIENTS_MAX; i++) {
                clients[i].buf = malloc(LINE_MAX_KEPT);
                FUZZ_CHECK(clients[i].buf);
        }
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Manager *m = fuzz_daemon.manager;
        Script s = { data, size };
        ListNode *n, *tmp;

        run(&s);
        fuzz_daemon_pump(200);
        for (unsigned i = 0; i < n_clients; i++)
                (void)client_read(&clients[i]);
        while (n_clients > 0)
                client_remove(0, true);
        for (unsigned i = 0; i < 100; i++) {
                unsigned open = 0;
                for (size_t k = 0; k < m->core.n_servers; k++)
                        open += m->core.servers[k]->n_conns;
                if (open == 0)
                        break;
                FUZZ_CHECK(i < 99); /* a server still holds a connection whose peer reset */
                fuzz_daemon_pump(100);
        }
        /* as fuzz-control does: no TIME_WAIT watch piles up from one input to the next */
        fuzz_daemon_pump(100);
        list_foreach_safe (n, tmp, &m->core.lingering)
                conn_forget(list_entry(n, Conn, node), "fuzz input done");
        return 0;
}
