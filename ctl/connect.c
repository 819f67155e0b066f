/* SPDX-License-Identifier: MIT */
/* Data is written to stdout with blocking writes: while stdout does not take it, the control
 * socket is not read and the daemon, then the peer, wait. The end of stdin half-closes the
 * connection; when the peer closes, we close too, and exit 0 once everything it sent is written.
 *
 * Signals: SIGINT, SIGTERM and SIGHUP close the session (FIN, as session-close how=close), wait up
 * to 1 s for the daemon's answer and exit with 128 + the signal's number (130 for ^C), as a shell
 * reports a program a signal ended: the transfer did not finish. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "connect.h"
#include "ctl-util.h"
#include "interactive-io.h"
#include "session-client.h"
#include "socket-path.h"

static void connect_on_data(Client *c, const uint8_t *p, size_t n) {
        int r = write_all(STDOUT_FILENO, p, n);
        if (r == -EINTR)
                return; /* the loop sees the signal */
        if (r < 0) {
                if (r != -EPIPE)
                        say("cannot write to stdout: %s", strerror(-r));
                client_finish(c, EXIT_FAILED);
        }
}

/* Done once our fd is closed: cleanly if the close was a FIN exchange we or the peer started. */
static void connect_on_disconnected(Client *c) {
        bool clean = !c->reset && (c->peer_closed || c->shut || c->close_sent);
        if (!clean && !c->verbose)
                say("disconnected: %s", c->reason);
        client_finish(c, clean ? EXIT_OK : EXIT_FAILED);
}

/* What stdin has for the peer, once the last session-send is answered. */
static void connect_read_stdin(Client *c, ByteQueue *in, bool *stdin_eof) {
        int r = 0;
        uint8_t *p = byte_queue_reserve(in, STDIN_CHUNK, STDIN_CHUNK, &r);
        if (!p) {
                say("out of memory");
                client_finish(c, EXIT_FAILED);
                return;
        }
        ssize_t n = read(STDIN_FILENO, p, STDIN_CHUNK);
        if (n > 0) {
                byte_queue_commit(in, (size_t)n);
                r = client_send(c, byte_queue_peek(in), byte_queue_len(in));
                byte_queue_consume(in, byte_queue_len(in));
                if (r < 0) {
                        say("session %s: cannot send: %s", c->id, strerror(-r));
                        client_finish(c, EXIT_FAILED);
                }
        } else if (n == 0)
                *stdin_eof = true;
        else if (errno != EINTR && errno != EAGAIN) {
                say("cannot read stdin: %s", strerror(errno));
                *stdin_eof = true;
        }
}

static int connect_run(Client *c) {
        _cleanup_(byte_queue_done) ByteQueue in = {};
        bool stdin_eof = false;

        while (!c->done) {
                if (signals_stop_asked()) {
                        client_interrupt(c);
                        break;
                }
                /* The peer closed: close our side too. Our stdin ended: half-close. */
                if (c->send_id == 0 && !c->close_sent && !c->shut && !c->disconnected) {
                        if (c->peer_closed)
                                client_close(c, "close");
                        else if (stdin_eof)
                                client_close(c, "shutdown");
                        if (c->done)
                                break;
                }
                bool want = !stdin_eof && !c->peer_closed && !c->close_sent && !c->shut && !c->disconnected && c->send_id == 0;
                struct pollfd pin = { .fd = STDIN_FILENO, .events = POLLIN };
                client_poll(c, &pin, want ? 1 : 0, -1);
                if (!c->done && want && pin.revents)
                        connect_read_stdin(c, &in, &stdin_eof);
        }
        return c->code;
}

int verb_connect(const CtlVerb *v, const CtlOptions *o, int argc, char **argv) {
        char path[sizeof(((Link *)0)->path)];
        ClientArgs a;
        (void)v;
        int r = ctl_socket_find(o->socket_path, o->config_path, path, sizeof(path));
        if (r != EXIT_OK)
                return r;
        r = client_args_parse(argc, argv, false, &a);
        if (r != EXIT_OK)
                return r;
        if (signals_setup() < 0) {
                say("cannot set up signal handling: %s", strerror(errno));
                return EXIT_FAILED;
        }
        Client c = { .link = LINK_NULL, .verbose = a.verbose, .on_data = connect_on_data, .on_disconnected = connect_on_disconnected };
        r = client_open(&c, path, &a);
        if (r == EXIT_OK)
                r = connect_run(&c);
        link_close(&c.link);
        signals_restore();
        return r;
}
