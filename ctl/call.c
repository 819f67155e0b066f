/* SPDX-License-Identifier: MIT */
#include <stdio.h>

#include "call.h"
#include "ctl-util.h"
#include "format.h"
#include "socket-path.h"

int ctl_connect(const CtlOptions *o, Link *ret) {
        char path[sizeof(ret->path)];
        *ret = LINK_NULL;
        int r = ctl_socket_find(o->socket_path, o->config_path, path, sizeof(path));
        return r != EXIT_OK ? r : link_open(ret, path, NULL);
}

int ctl_call(Link *l, const char *command, struct json_object *args, ControlReply *ret) {
        ControlReply rep;
        int r = link_call(l, command, args, CTL_REPLY_TIMEOUT_MS, &rep);
        if (r != EXIT_OK)
                return r;
        if (!rep.ok) {
                struct json_object *details, *errors;
                fprintf(stderr, "tcpeductl %s: %s\n", command, rep.message);
                if (json_object_object_get_ex(rep.data, "details", &details) && json_object_object_get_ex(details, "errors", &errors))
                        for (size_t i = 0; i < json_object_array_length(errors); i++)
                                fprintf(stderr, "%s\n", json_object_get_string(json_object_array_get_idx(errors, i)));
                int code = exit_code_for(rep.code);
                control_reply_done(&rep);
                return code;
        }
        *ret = rep;
        return EXIT_OK;
}

int ctl_simple(const CtlVerb *v, const CtlOptions *o, struct json_object *args, void (*print)(struct json_object *data)) {
        _cleanup_(link_close) Link l = LINK_NULL;
        ControlReply rep;
        int r = ctl_connect(o, &l);
        if (r != EXIT_OK) {
                json_object_put(args);
                return r;
        }
        r = ctl_call(&l, ctl_verb_command(v), args, &rep);
        if (r != EXIT_OK)
                return r;
        if (o->json || !print)
                print_json(rep.data);
        else
                print(rep.data);
        control_reply_done(&rep);
        return EXIT_OK;
}

struct json_object *args_with(const char *key, const char *value) {
        struct json_object *a = json_object_new_object();
        if (value)
                json_object_object_add(a, key, json_object_new_string(value));
        return a;
}
