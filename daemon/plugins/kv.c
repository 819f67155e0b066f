/* SPDX-License-Identifier: MIT */
/* Example handler plug-in: a key-value store shared by every connection of the server, kept across
 * messages and connections (the state lives in the server, not in a connection).
 *   SET KEY VALUE -> OK            GET KEY -> VALUE v | NOT_FOUND     DEL KEY -> OK | NOT_FOUND
 *   KEYS -> KEYS k1 k2 ...         COUNT -> COUNT n                   anything else -> ERR ...
 * Bounded: at most 1000 keys of 64 bytes and values of 1024 bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpedu/handler.h"

#define KV_MAX_KEYS 1000
#define KV_KEY_MAX 64
#define KV_VALUE_MAX 1024

typedef struct Entry {
        struct Entry *next;
        char key[KV_KEY_MAX + 1];
        char *value;
} Entry;

typedef struct Store {
        const tcpedu_api *api;
        tcpedu_server *server;
        Entry *head;
        unsigned n;
} Store;

static int kv_init(const tcpedu_api *api, tcpedu_server *s, void **state) {
        Store *st = calloc(1, sizeof(Store));
        if (!st)
                return -1;
        st->api = api;
        st->server = s;
        *state = st;
        return 0;
}

static void kv_fini(void *state) {
        Store *st = state;
        while (st && st->head) {
                Entry *e = st->head;
                st->head = e->next;
                free(e->value);
                free(e);
        }
        free(st);
}

static Entry **find(Store *st, const char *key) {
        Entry **pp = &st->head;
        for (; *pp; pp = &(*pp)->next)
                if (strcmp((*pp)->key, key) == 0)
                        break;
        return pp;
}

static void reply(Store *st, tcpedu_conn *c, const char *text) {
        st->api->send(c, text, strlen(text));
}

/* Split "WORD REST": the word into word (bounded), *rest after one blank. */
static int word(const char *msg, size_t len, char *w, size_t wsize, const char **rest, size_t *rest_len) {
        size_t i = 0;
        while (i < len && msg[i] != ' ')
                i++;
        if (i == 0 || i >= wsize)
                return -1;
        memcpy(w, msg, i);
        w[i] = 0;
        *rest = i < len ? msg + i + 1 : msg + len;
        *rest_len = i < len ? len - i - 1 : 0;
        return 0;
}

/* The entry *pp (NULL: none of that key) is where key is or would go; value is what followed it. */
typedef void (*KvKeyCommand)(Store *st, tcpedu_conn *c, Entry **pp, const char *key, const char *value, size_t value_len);

static void kv_get(Store *st, tcpedu_conn *c, Entry **pp, const char *key, const char *value, size_t value_len) {
        char out[KV_VALUE_MAX + 32];
        (void)key, (void)value, (void)value_len;

        if (!*pp) {
                reply(st, c, "NOT_FOUND\n");
                return;
        }
        snprintf(out, sizeof(out), "VALUE %s\n", (*pp)->value);
        reply(st, c, out);
}

static void kv_del(Store *st, tcpedu_conn *c, Entry **pp, const char *key, const char *value, size_t value_len) {
        (void)key, (void)value, (void)value_len;

        if (!*pp) {
                reply(st, c, "NOT_FOUND\n");
                return;
        }
        Entry *e = *pp;
        *pp = e->next;
        free(e->value);
        free(e);
        st->n--;
        reply(st, c, "OK\n");
}

/* A new key goes first in the list, so KEYS lists the newest first. */
static const char *kv_insert(Store *st, const char *key, char *v) {
        if (st->n >= KV_MAX_KEYS)
                return "ERR store full (1000 keys)\n";
        Entry *e = calloc(1, sizeof(Entry));
        if (!e)
                return "ERR out of memory\n";
        snprintf(e->key, sizeof(e->key), "%s", key);
        e->value = v;
        e->next = st->head;
        st->head = e;
        st->n++;
        return NULL;
}

static void kv_set(Store *st, tcpedu_conn *c, Entry **pp, const char *key, const char *value, size_t value_len) {
        if (value_len == 0 || value_len > KV_VALUE_MAX || memchr(value, 0, value_len)) {
                reply(st, c, "ERR value required (1-1024 bytes)\n");
                return;
        }
        char *v = strndup(value, value_len);
        if (!v) {
                reply(st, c, "ERR out of memory\n");
                return;
        }
        if (*pp) {
                free((*pp)->value);
                (*pp)->value = v;
        } else {
                const char *err = kv_insert(st, key, v);
                if (err) {
                        free(v);
                        reply(st, c, err);
                        return;
                }
        }
        reply(st, c, "OK\n");
}

static void kv_keys(Store *st, tcpedu_conn *c) {
        reply(st, c, "KEYS");
        for (Entry *e = st->head; e; e = e->next) {
                reply(st, c, " ");
                reply(st, c, e->key);
        }
        reply(st, c, "\n");
}

static void kv_count(Store *st, tcpedu_conn *c) {
        char out[32];
        snprintf(out, sizeof(out), "COUNT %u\n", st->n);
        reply(st, c, out);
}

/* The verbs: those with a key get it parsed and looked up first; KEYS and COUNT ignore the rest. */
static const struct {
        const char *name;
        KvKeyCommand with_key;
        void (*without_key)(Store *st, tcpedu_conn *c);
} kv_commands[] = {
        { "SET", kv_set, NULL }, { "GET", kv_get, NULL }, { "DEL", kv_del, NULL }, { "KEYS", NULL, kv_keys }, { "COUNT", NULL, kv_count },
};

static void kv_on_message(void *state, tcpedu_conn *c, const char *msg, size_t len) {
        Store *st = state;
        char cmd[8], key[KV_KEY_MAX + 1];
        const char *rest, *value;
        size_t rest_len, value_len;

        if (word(msg, len, cmd, sizeof(cmd), &rest, &rest_len) < 0) {
                reply(st, c, "ERR unknown command (SET, GET, DEL, KEYS, COUNT)\n");
                return;
        }
        for (size_t i = 0; i < sizeof(kv_commands) / sizeof(kv_commands[0]); i++) {
                if (strcmp(cmd, kv_commands[i].name) != 0)
                        continue;
                if (kv_commands[i].without_key) {
                        kv_commands[i].without_key(st, c);
                        return;
                }
                if (word(rest, rest_len, key, sizeof(key), &value, &value_len) < 0) {
                        reply(st, c, "ERR key required (1-64 bytes)\n");
                        return;
                }
                kv_commands[i].with_key(st, c, find(st, key), key, value, value_len);
                return;
        }
        reply(st, c, "ERR unknown command (SET, GET, DEL, KEYS, COUNT)\n");
}

static const tcpedu_handler handler = {
        .abi_version = TCPEDU_HANDLER_ABI_VERSION,
        .name = "kv",
        .framing = TCPEDU_FRAMING_LINE,
        .init = kv_init,
        .fini = kv_fini,
        .on_message = kv_on_message,
};

const tcpedu_handler *tcpedu_handler_get(void) {
        return &handler;
}
