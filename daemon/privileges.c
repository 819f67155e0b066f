/* SPDX-License-Identifier: MIT */
/* Started as root, tcpedud needs root only to bind its listeners (ports below 1024) and to create
 * its control socket where tcpeductl looks for it. Once both are open it switches to [daemon] user
 * and group and keeps nothing: no supplementary group but the user's own, no capability, no way
 * back (no_new_privs). What runs after that (the event loop, the journal writer thread, plug-ins
 * loaded at a server's first connection, every reload) runs as that user. */
#include <errno.h>
#include <limits.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <unistd.h>

#include "macro.h"
#include "privileges.h"

#define DEFAULT_USER "tcpedu"

static bool all_digits(const char *s) {
        return *s && strspn(s, "0123456789") == strlen(s);
}

/* A user by name, or by number when the value is all digits. NULL with errno 0: no such user. */
static struct passwd *lookup_user(const char *name) {
        errno = 0;
        if (all_digits(name)) {
                char *end;
                unsigned long id = strtoul(name, &end, 10);
                return *end || id >= (uid_t)-1 ? NULL : getpwuid((uid_t)id);
        }
        return getpwnam(name);
}

static struct group *lookup_group(const char *name) {
        errno = 0;
        if (all_digits(name)) {
                char *end;
                unsigned long id = strtoul(name, &end, 10);
                return *end || id >= (gid_t)-1 ? NULL : getgrgid((gid_t)id);
        }
        return getgrnam(name);
}

static void lookup_error(ConfigErrors *errs, const Config *c, const char *key, const char *value, int err) {
        ConfigOrigin o = config_daemon_key_origin(c, key);
        const char *file = o.line ? config_origin_file(c, o) : c->main_path;
        if (err == 0 || err == ENOENT || err == ESRCH)
                config_errors_add(errs, file, o.line, "%s '%s' does not exist", key, value);
        else
                config_errors_add(errs, file, o.line, "cannot look up %s '%s': %s", key, value, strerror(err));
}

int privileges_validate(const Config *c, ConfigErrors *errs) {
        const DaemonConfig *d = &c->daemon;
        int ret = 0;

        if (d->user[0] && !lookup_user(d->user)) {
                lookup_error(errs, c, "user", d->user, errno);
                ret = -EINVAL;
        }
        if (d->group[0] && !lookup_group(d->group)) {
                lookup_error(errs, c, "group", d->group, errno);
                ret = -EINVAL;
        }
        return ret;
}

static void name_of_uid(uid_t uid, char *buf, size_t size) {
        struct passwd *pw = getpwuid(uid);
        if (pw)
                snprintf(buf, size, "%s", pw->pw_name);
        else
                snprintf(buf, size, "%u", (unsigned)uid);
}

static void name_of_gid(gid_t gid, char *buf, size_t size) {
        struct group *gr = getgrgid(gid);
        if (gr)
                snprintf(buf, size, "%s", gr->gr_name);
        else
                snprintf(buf, size, "%u", (unsigned)gid);
}

#define CAP_BIT(c) (UINT64_C(1) << (c))
#define CAP_PERFMON_NUMBER 38 /* linux/capability.h's CAP_PERFMON and CAP_BPF, absent from older headers */
#define CAP_BPF_NUMBER 39

/* The permitted and effective sets as one mask; UINT64_MAX if they cannot be read. */
static uint64_t capabilities_held(void) {
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
        if (syscall(SYS_capget, &h, data) < 0)
                return UINT64_MAX;
        return (uint64_t)data[0].permitted | (uint64_t)data[1].permitted << 32 | (uint64_t)data[0].effective |
               (uint64_t)data[1].effective << 32;
}

/* Effective or permitted capabilities left beyond allowed: after setresuid() from root to another
 * user the kernel clears both (unless kept on purpose), and this checks that it did. */
static bool capabilities_left(uint64_t allowed) {
        return (capabilities_held() & ~allowed) != 0;
}

/* Keep of what the process holds only keep (effective and permitted), nothing inheritable or
 * ambient. 0, or -errno (a seccomp filter without capset, say). */
static int capabilities_restrict(uint64_t keep) {
        uint64_t had = capabilities_held();
        if (had == UINT64_MAX)
                return -EPERM;
        (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        if ((had & ~keep) == 0)
                return 0;
        uint64_t left = had & keep;
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {
                { .effective = (uint32_t)left, .permitted = (uint32_t)left },
                { .effective = (uint32_t)(left >> 32), .permitted = (uint32_t)(left >> 32) },
        };
        return syscall(SYS_capset, &h, data) < 0 ? negative_errno() : 0;
}

/* Not root, but started with capabilities (systemd's AmbientCapabilities=): CAP_PERFMON was for
 * loading the eBPF source and goes once it is loaded; CAP_BPF stays while that source is in use
 * (before Linux 6.5 every bpf() call needs it, the updates of its watch maps too) and goes
 * otherwise. Any other (CAP_NET_BIND_SERVICE for a reload's low ports) stays, as it was given. */
static void capabilities_after_start(Core *m, bool keep_bpf) {
        uint64_t had = capabilities_held();
        uint64_t drop = CAP_BIT(CAP_PERFMON_NUMBER) | (keep_bpf ? 0 : CAP_BIT(CAP_BPF_NUMBER));
        if (had == UINT64_MAX || (had & drop) == 0)
                return;
        int r = capabilities_restrict(had & ~drop);
        if (r < 0)
                log_msg(m, LOG_WARNING, NULL, "cannot give up CAP_PERFMON%s after start (%s): the daemon keeps it",
                        keep_bpf ? "" : " and CAP_BPF", strerror(-r));
        else
                log_msg(m, LOG_NOTICE, NULL, "gave up %s%s", (had & CAP_BIT(CAP_PERFMON_NUMBER)) ? "CAP_PERFMON" : "",
                        keep_bpf                          ? ", kept CAP_BPF (the eBPF source's watch maps)"
                        : (had & CAP_BIT(CAP_BPF_NUMBER)) ? " CAP_BPF"
                                                          : "");
}

/* The control socket file and, when tcpedud created it, its directory belong to the daemon's user
 * from now on: the daemon removes its socket when it exits, which takes write access to the
 * directory. The socket's mode stays what it was (anyone who can reach it may connect and read). */
static void control_socket_chown(Core *m, const char *path, bool dir_created, uid_t uid, gid_t gid) {
        if (!path || !path[0])
                return;
        if (chown(path, uid, gid) < 0)
                log_msg(m, LOG_WARNING, NULL, "control socket %s: cannot change its owner to uid %u: %m", path, (unsigned)uid);
        if (!dir_created)
                return;
        char dir[PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", path);
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
                return;
        *slash = 0;
        if (chown(dir, uid, gid) < 0)
                log_msg(m, LOG_WARNING, NULL, "control socket directory %s: cannot change its owner to uid %u: %m", dir, (unsigned)uid);
}

/* From root to uid and gid for good; CAP_BPF, if *keep asks for it, survives the switch (*keep is
 * 0 if it could not), nothing else does. -errno with *error set if the switch failed. */
static int switch_user(const char *user, uid_t uid, gid_t gid, uint64_t *keep, char *error, size_t error_size) {
        /* The groups first, while still root; the uid last: after it nothing can be changed back. */
        if (initgroups(user, gid) < 0) {
                snprintf(error, error_size, "cannot set the groups of user '%s': %m", user);
                return negative_errno();
        }
        if (setresgid(gid, gid, gid) < 0) {
                snprintf(error, error_size, "cannot switch to gid %u: %m", (unsigned)gid);
                return negative_errno();
        }
        /* CAP_BPF, if the eBPF source needs it, survives the switch; nothing else does */
        if (*keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
                *keep = 0;
        if (setresuid(uid, uid, uid) < 0) {
                snprintf(error, error_size, "cannot switch to user '%s' (uid %u): %m", user, (unsigned)uid);
                return negative_errno();
        }
        if (*keep) {
                (void)prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
                if (capabilities_restrict(*keep) < 0)
                        *keep = 0;
        }
        if (setresuid(0, 0, 0) == 0 || geteuid() != uid || getegid() != gid || capabilities_left(*keep)) {
                snprintf(error, error_size, "switched to user '%s', but root privileges are still there: refusing to run", user);
                return -EPERM;
        }
        return 0;
}

int privileges_drop(Core *m, const char *control_socket, bool control_dir_created, bool keep_bpf, char *error, size_t error_size) {
        const DaemonConfig *d = &m->config->daemon;
        uint64_t keep = keep_bpf ? CAP_BIT(CAP_BPF_NUMBER) : 0;

        if (geteuid() != 0) {
                capabilities_after_start(m, keep_bpf);
                name_of_uid(geteuid(), m->user_name, sizeof(m->user_name));
                name_of_gid(getegid(), m->group_name, sizeof(m->group_name));
                struct passwd *pw = d->user[0] ? lookup_user(d->user) : NULL;
                if (d->user[0] && (!pw || pw->pw_uid != geteuid()))
                        log_msg(m, LOG_WARNING, NULL, "[daemon] user = %s has no effect: tcpedud was not started as root (it runs as %s)",
                                d->user, m->user_name);
                return 0;
        }

        struct passwd *pw = lookup_user(d->user[0] ? d->user : DEFAULT_USER);
        if (!pw) {
                if (d->user[0]) {
                        snprintf(error, error_size, "cannot switch to user '%s': %s", d->user, errno ? strerror(errno) : "no such user");
                        return -ESRCH;
                }
                snprintf(m->user_name, sizeof(m->user_name), "root");
                snprintf(m->group_name, sizeof(m->group_name), "root");
                log_msg(m, LOG_WARNING, NULL,
                        "running as root: there is no user '" DEFAULT_USER "' to switch to (set [daemon] user, or user = root to "
                        "stay root without this warning)");
                return 0;
        }
        if (pw->pw_uid == 0) {
                /* user = root: asked for, nothing to do */
                snprintf(m->user_name, sizeof(m->user_name), "%s", pw->pw_name);
                name_of_gid(getegid(), m->group_name, sizeof(m->group_name));
                return 0;
        }

        uid_t uid = pw->pw_uid;
        gid_t gid = pw->pw_gid;
        char user[64];
        snprintf(user, sizeof(user), "%s", pw->pw_name);
        if (d->group[0]) {
                struct group *gr = lookup_group(d->group);
                if (!gr) {
                        snprintf(error, error_size, "cannot switch to group '%s': %s", d->group, errno ? strerror(errno) : "no such group");
                        return -ESRCH;
                }
                gid = gr->gr_gid;
        }

        control_socket_chown(m, control_socket, control_dir_created, uid, gid);

        int r = switch_user(user, uid, gid, &keep, error, error_size);
        if (r < 0)
                return r;
        /* Nothing the daemon could exec would give them back either. */
        (void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        m->privileges_dropped = true;

        snprintf(m->user_name, sizeof(m->user_name), "%s", user);
        name_of_gid(gid, m->group_name, sizeof(m->group_name));
        log_msg(m, LOG_NOTICE, NULL, "running as user %s (uid %u), group %s (gid %u), %s: a reload cannot bind ports below 1024",
                m->user_name, (unsigned)uid, m->group_name, (unsigned)gid,
                keep ? "with CAP_BPF only (the eBPF source's watch maps)" : "without capabilities");
        return 0;
}
