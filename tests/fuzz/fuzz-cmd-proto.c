/* SPDX-License-Identifier: MIT */
/* The enhanced server's JSON command protocol (common/cmd-proto.c) on what its clients send: the
 * input goes through the JSON framer as on the server, and every object is answered. Checked:
 * every reply is an object with "status" and "timestamp" that serializes; "random" stays within
 * [min, max]; the kind reported is one of the table's. */
#include <json-c/json.h>
#include <string.h>

#include "cmd-proto.h"
#include "framing.h"
#include "fuzz.h"

static uint64_t rng_state;

static uint64_t fuzz_random(void *userdata) {
        (void)userdata;
        /* splitmix64: deterministic per input, so a crash reproduces */
        uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}

static struct json_object *fuzz_stats(void *userdata) {
        (void)userdata;
        struct json_object *o = json_object_new_object();
        json_object_object_add(o, "requests", json_object_new_int64(1));
        return o;
}

static struct json_object *fuzz_whoami(void *userdata) {
        (void)userdata;
        return json_object_new_string("127.0.0.1:1");
}

static int on_frame(void *userdata, const Frame *f) {
        const CmdContext *ctx = userdata;
        struct json_object *reply, *v;
        CmdKind kind = _CMD_KIND_MAX;

        if (f->kind == FRAME_OBJECT)
                reply = cmd_handle(f->object, ctx, &kind);
        else if (f->kind == FRAME_TOO_LONG || f->kind == FRAME_INVALID)
                reply = cmd_error(f->kind == FRAME_INVALID ? f->error : "Message too long", ctx);
        else
                return 0; /* text is echoed back as it is */
        FUZZ_CHECK(reply && json_object_is_type(reply, json_type_object));
        FUZZ_CHECK(json_object_object_get_ex(reply, "status", &v) && json_object_is_type(v, json_type_string));
        FUZZ_CHECK(json_object_object_get_ex(reply, "timestamp", &v));
        FUZZ_CHECK(json_object_to_json_string_ext(reply, JSON_C_TO_STRING_PLAIN));
        if (f->kind == FRAME_OBJECT) {
                FUZZ_CHECK(kind < _CMD_KIND_MAX && cmd_kind_to_string(kind));
                const char *status = json_object_get_string(json_object_object_get(reply, "status"));
                if (kind == CMD_RANDOM && strcmp(status, "success") == 0) {
                        struct json_object *lo, *hi;
                        int64_t x = json_object_get_int64(json_object_object_get(reply, "result"));
                        int64_t min = json_object_object_get_ex(f->object, "min", &lo) ? json_object_get_int64(lo) : 1;
                        int64_t max = json_object_object_get_ex(f->object, "max", &hi) ? json_object_get_int64(hi) : 100;
                        FUZZ_CHECK(min <= x && x <= max);
                }
        }
        json_object_put(reply);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* The clock and the time zone are the daemon's, not the peer's: fixed, plausible values. */
        CmdContext ctx = {
                .now = 1700000000.25,
                .utc_offset = 3600,
                .random = fuzz_random,
                .stats = fuzz_stats,
                .whoami = fuzz_whoami,
        };
        Framer f;

        rng_state = size;
        framer_init(&f, FRAMER_JSON, 65536);
        (void)framer_feed(&f, (const char *)data, size, on_frame, &ctx);
        framer_done(&f);
        return 0;
}
