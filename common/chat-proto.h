/* SPDX-License-Identifier: MIT */
#pragma once

/* The chat protocol, both dialects, as pure functions (no I/O, no clock).
 * JSON (python_tcp's chat app), client -> server:
 *   {"type":"join","username":N}  {"type":"message","content":C}  {"type":"leave"}
 * server -> client: welcome, join, leave, users, message, goodbye, error; each with "timestamp".
 * Line mode (nc, telnet): /nick NAME, /users, /me ACTION, /quit, /help; any other line is a message. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#define CHAT_NAME_MAX 32

typedef enum ChatRequestType {
        CHAT_REQ_JOIN, /* join, or rename when already joined */
        CHAT_REQ_MESSAGE,
        CHAT_REQ_ACTION, /* line mode /me */
        CHAT_REQ_LEAVE,
        CHAT_REQ_USERS, /* line mode /users */
        CHAT_REQ_HELP, /* line mode /help */
        CHAT_REQ_INVALID, /* error says why */
} ChatRequestType;

typedef struct ChatRequest {
        ChatRequestType type;
        const char *username; /* JOIN: borrowed from the request (json object or line) */
        size_t username_len;
        const char *content; /* MESSAGE, ACTION */
        size_t content_len;
        const char *error; /* INVALID: the text of the error reply */
        char error_buf[96];
} ChatRequest;

/* Exact error texts, shared with the tests. */
#define CHAT_ERR_USERNAME_REQUIRED "Username required"
#define CHAT_ERR_USERNAME_TAKEN "Username already taken"
#define CHAT_ERR_NOT_REGISTERED "Not registered: join first"
#define CHAT_ERR_CONTENT_REQUIRED "Content required"
#define CHAT_ERR_CONTENT_CONTROL "Content must be one line without control characters"
#define CHAT_ERR_INVALID_JSON "Invalid JSON"
#define CHAT_ERR_TYPE_REQUIRED "Message type required"

void chat_request_from_json(struct json_object *o, ChatRequest *ret);
void chat_request_from_line(const char *line, size_t len, ChatRequest *ret);

/* 1-32 printable characters (UTF-8 allowed), no blank at either end, not starting with '*'.
 * Returns NULL if valid, else the error text. */
const char *chat_name_check(const char *name, size_t len);
bool chat_name_equal(const char *a, const char *b);

/* Server -> client JSON messages; each a new object with "type" and "timestamp". */
struct json_object *chat_json(const char *type, double timestamp);
struct json_object *chat_json_with(const char *type, double timestamp, const char *key, const char *value);
