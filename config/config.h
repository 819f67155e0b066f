/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sockaddr-util.h"

#define CONFIG_DEFAULT_PATH "/etc/tcpedud/tcpedud.conf"
#define CONFIG_DEFAULT_DROPIN_DIR "/etc/tcpedud/conf.d"
#define CONFIG_EMBEDDED_NAME "(embedded default)"

#define CONFIG_LINE_MAX 198 /* bytes per line, what Debian's inih (INI_MAX_LINE 200) can take whole */
#define CONFIG_FILE_MAX (1 << 20) /* bytes per file */
#define CONFIG_ERRORS_MAX 100
#define SERVER_NAME_MAX 32
#define SERVERS_MAX 64
#define LISTEN_MAX 16

typedef enum LogTransitions {
        LOG_TRANSITIONS_ALL,
        LOG_TRANSITIONS_SUMMARY,
        LOG_TRANSITIONS_OFF,
        _LOG_TRANSITIONS_MAX,
} LogTransitions;

/* Where the daemon learns TCP states: auto (bpf when it loads, else tcp_info), the eBPF
 * tracepoint source, or TCP_INFO and sock_diag. */
typedef enum KernelSource {
        KERNEL_SOURCE_AUTO,
        KERNEL_SOURCE_BPF,
        KERNEL_SOURCE_TCP_INFO,
        _KERNEL_SOURCE_MAX,
} KernelSource;

typedef enum ServerType {
        SERVER_TYPE_ECHO,
        SERVER_TYPE_ENHANCED,
        SERVER_TYPE_CHAT,
        _SERVER_TYPE_MAX,
        _SERVER_TYPE_INVALID = -22,
} ServerType;

typedef enum ChatProtocol {
        CHAT_PROTOCOL_AUTO, /* '{' as the first byte: JSON; anything else: line mode */
        CHAT_PROTOCOL_JSON,
        CHAT_PROTOCOL_LINE,
        _CHAT_PROTOCOL_MAX,
} ChatProtocol;

#define HANDLER_JSON_COMMANDS "json-commands"

typedef struct ListenAddr {
        SockaddrUnion addr;
        char spec[SOCKADDR_STR_MAX]; /* canonical "ADDR:PORT" as written in the config (port 0 kept) */
} ListenAddr;

typedef struct ConfigOrigin {
        uint16_t file; /* index into Config.files */
        uint32_t line;
} ConfigOrigin;

enum { SERVER_KEY_SLOTS = 16, DAEMON_KEY_SLOTS = 16 };

/* Flat structs without pointers: a copy is a plain assignment, so a running server keeps its own
 * copy across reloads and the Config it came from can be freed. */
typedef struct DaemonConfig {
        char control_socket[108];
        char admin_group[64];
        int log_transitions; /* LogTransitions */
        int kernel_source; /* KernelSource: read at start only */
        unsigned max_connections;
        int log_level; /* syslog priority 0..7 */
        unsigned max_sessions; /* client sessions opened through the control socket; 0: none */
        size_t session_buffer; /* received and not yet read, per session */
        unsigned session_idle_timeout; /* seconds; 0: never */
        char user[64]; /* started as root: switch to this user once the sockets are open; empty: tcpedu if it exists */
        char group[64]; /* and this group; empty: the user's primary group */
} DaemonConfig;

typedef struct ServerConfig {
        char name[SERVER_NAME_MAX + 1];
        int type; /* ServerType */
        ListenAddr listen[LISTEN_MAX];
        unsigned n_listen;
        bool autostart;
        unsigned backlog;
        unsigned max_clients;
        unsigned max_clients_per_ip; /* 0: no per-address limit */
        unsigned idle_timeout; /* seconds, 0: never */
        uint64_t buffer_size; /* bytes of unsent output before reading pauses */
        /* enhanced and chat */
        unsigned max_message; /* bytes per framed message */
        unsigned line_timeout; /* seconds an incomplete message may stay open, 0: no limit */
        /* enhanced */
        char handler[256]; /* "json-commands" or the path of a plug-in (.so) */
        /* chat */
        int protocol; /* ChatProtocol */
        unsigned history;
        uint64_t max_queue; /* bytes queued for one member before it is dropped */
        unsigned max_rate; /* messages a second from one member, 0: no limit */

        ConfigOrigin declared; /* its [server NAME] header */
        ConfigOrigin key_origin[SERVER_KEY_SLOTS]; /* where each key was last set; line 0: default */
} ServerConfig;

typedef struct Config {
        char *main_path; /* file read, or CONFIG_EMBEDDED_NAME */
        char **files; /* every file read, main first, then drop-ins in order */
        size_t n_files;
        DaemonConfig daemon;
        ConfigOrigin daemon_key_origin[DAEMON_KEY_SLOTS]; /* where each [daemon] key was last set; line 0: default */
        ServerConfig *servers; /* in order of first declaration */
        size_t n_servers;
} Config;

typedef struct ConfigErrors {
        char **lines; /* "FILE:LINE: message" */
        size_t n;
        size_t suppressed;
} ConfigErrors;

/* Load the main file and its drop-ins. path NULL: CONFIG_DEFAULT_PATH, falling back to the
 * embedded default when that file does not exist. Returns 0, or -EINVAL with every problem in
 * errs (nothing is returned in *ret then), or another -errno for a failure that is not the file's. */
int config_load(const char *path, Config **ret, ConfigErrors *errs);
/* Parse a config held in memory (for tests and the embedded default); name is used in errors. */
int config_load_string(const char *name, const char *text, Config **ret, ConfigErrors *errs);
Config *config_free(Config *c);

/* Parse a single extra file's text on top of an existing config (drop-in semantics). */
int config_apply_string(Config *c, const char *name, const char *text, ConfigErrors *errs);
/* Check cross-key and cross-server rules after all files are read. */
int config_validate(Config *c, ConfigErrors *errs);

const ServerConfig *config_find_server(const Config *c, const char *name);
/* Where a server's key was set (line 0: not set), and the file an origin names. */
ConfigOrigin config_key_origin(const ServerConfig *s, const char *key);
/* Where a [daemon] key was last set; line 0: not set (its default). */
ConfigOrigin config_daemon_key_origin(const Config *c, const char *key);
const char *config_origin_file(const Config *c, ConfigOrigin o);
void config_dump(const Config *c, FILE *f);
bool server_config_equal(const ServerConfig *a, const ServerConfig *b);
/* True if only limits differ: the listeners and the type stay. */
bool server_config_same_listeners(const ServerConfig *a, const ServerConfig *b);

const char *server_type_to_string(int t);
const char *chat_protocol_to_string(int p);
int server_type_from_string(const char *s);
const char *log_transitions_to_string(int t);
const char *kernel_source_to_string(int s);
const char *log_level_to_string(int level);
int log_level_from_string(const char *s);

void config_errors_add(ConfigErrors *e, const char *file, unsigned line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void config_errors_clear(ConfigErrors *e);
void config_errors_print(const ConfigErrors *e, FILE *f);

extern const char config_embedded_default[];
