/* SPDX-License-Identifier: MIT */
/* Checks across keys and servers once every file is read, the effective configuration as text,
 * and the comparisons a reload uses to decide what to restart. */
#include <errno.h>
#include <string.h>

#include "config-internal.h"
#include "macro.h"

int config_validate(Config *c, ConfigErrors *errs) {
        size_t before = errs->n + errs->suppressed;
        size_t type_slot = 0, listen_slot = 0;
        (void)config_key_find(SECTION_SERVER, "type", &type_slot);
        (void)config_key_find(SECTION_SERVER, "listen", &listen_slot);

        for (size_t i = 0; i < c->n_servers; i++) {
                ServerConfig *s = &c->servers[i];
                size_t slot = 0;
                for (size_t k = 0; k < config_keys_n; k++) {
                        if (config_keys[k].section != SECTION_SERVER)
                                continue;
                        ConfigOrigin o = s->key_origin[slot++];
                        if (o.line && s->type >= 0 && config_keys[k].types && !(config_keys[k].types & TYPE_BIT(s->type)))
                                config_errors_add(errs, config_origin_file(c, o), o.line, "key '%s' does not apply to a server of type %s",
                                                  config_keys[k].name, server_type_to_string(s->type));
                }
                /* A key that was set but invalid has been reported already. */
                if (s->key_origin[type_slot].line == 0)
                        config_errors_add(errs, config_origin_file(c, s->declared), s->declared.line,
                                          "[server %s]: missing required key 'type'", s->name);
                if (s->key_origin[listen_slot].line == 0)
                        config_errors_add(errs, config_origin_file(c, s->declared), s->declared.line,
                                          "[server %s]: missing required key 'listen'", s->name);
                for (unsigned a = 0; a < s->n_listen; a++) {
                        if (sockaddr_port(&s->listen[a].addr.sa) == 0)
                                continue;
                        for (size_t j = 0; j < i; j++)
                                for (unsigned b = 0; b < c->servers[j].n_listen; b++)
                                        if (strcmp(c->servers[j].listen[b].spec, s->listen[a].spec) == 0) {
                                                ConfigOrigin o = s->key_origin[listen_slot];
                                                config_errors_add(errs, config_origin_file(c, o), o.line,
                                                                  "listen address %s of server '%s' is already used by server '%s'",
                                                                  s->listen[a].spec, s->name, c->servers[j].name);
                                        }
                }
        }
        return errs->n + errs->suppressed > before ? -EINVAL : 0;
}

void config_dump(const Config *c, FILE *f) {
        char v[LISTEN_MAX * SOCKADDR_STR_MAX];

        fprintf(f, "# effective configuration, read from:\n");
        for (size_t i = 0; i < c->n_files; i++)
                fprintf(f, "#   %s\n", c->files[i]);
        fprintf(f, "\n[daemon]\n");
        for (size_t i = 0; i < config_keys_n; i++)
                if (config_keys[i].section == SECTION_DAEMON) {
                        config_key_format(&config_keys[i], &c->daemon, v, sizeof(v));
                        fprintf(f, "%s = %s\n", config_keys[i].name, v);
                }
        for (size_t s = 0; s < c->n_servers; s++) {
                fprintf(f, "\n[server %s]\n", c->servers[s].name);
                for (size_t i = 0; i < config_keys_n; i++)
                        if (config_keys[i].section == SECTION_SERVER &&
                            (!config_keys[i].types || (c->servers[s].type >= 0 && (config_keys[i].types & TYPE_BIT(c->servers[s].type))))) {
                                config_key_format(&config_keys[i], &c->servers[s], v, sizeof(v));
                                /* What tcpedud prints it must be able to read back: drop the blanks
                                 * around '=' rather than exceed the line limit. */
                                bool tight = strlen(config_keys[i].name) + 3 + strlen(v) > CONFIG_LINE_MAX;
                                fprintf(f, "%s%s%s\n", config_keys[i].name, tight ? "=" : " = ", v);
                        }
        }
}

bool server_config_same_listeners(const ServerConfig *a, const ServerConfig *b) {
        if (a->type != b->type || a->n_listen != b->n_listen || a->backlog != b->backlog)
                return false;
        for (unsigned i = 0; i < a->n_listen; i++)
                if (strcmp(a->listen[i].spec, b->listen[i].spec) != 0)
                        return false;
        return true;
}

bool server_config_equal(const ServerConfig *a, const ServerConfig *b) {
        return strcmp(a->name, b->name) == 0 && server_config_same_listeners(a, b) && a->autostart == b->autostart &&
               a->max_clients == b->max_clients && a->max_clients_per_ip == b->max_clients_per_ip && a->idle_timeout == b->idle_timeout &&
               a->buffer_size == b->buffer_size && a->max_message == b->max_message && a->line_timeout == b->line_timeout &&
               strcmp(a->handler, b->handler) == 0 && a->protocol == b->protocol && a->history == b->history &&
               a->max_queue == b->max_queue && a->max_rate == b->max_rate;
}
