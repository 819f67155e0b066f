/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "line-editor.h"
#include "macro.h"

#define ERASE_LINE "\r\033[K"

static bool utf8_continuation(uint8_t b) {
        return (b & 0xc0) == 0x80;
}

static uint8_t line_at(const LineEditor *e, size_t i) {
        return byte_queue_peek(&e->line)[i];
}

void line_editor_init(LineEditor *e, const char *prompt, unsigned cols) {
        *e = (LineEditor){ .cols = cols };
        snprintf(e->prompt, sizeof(e->prompt), "%s", prompt);
}

void line_editor_done(LineEditor *e) {
        byte_queue_done(&e->line);
        byte_queue_done(&e->submitted);
}

const char *line_editor_submitted(const LineEditor *e, size_t *ret_len) {
        *ret_len = byte_queue_len(&e->submitted);
        return (const char *)byte_queue_peek(&e->submitted);
}

void line_editor_submitted_done(LineEditor *e) {
        byte_queue_consume(&e->submitted, byte_queue_len(&e->submitted));
}

/* Where an escape sequence is: 1 after ESC, 2 in CSI (ESC [ ... final byte), 3 in SS3 (ESC O x).
 * true if the key belongs to one. */
static bool escape_key(LineEditor *e, uint8_t k) {
        switch (e->esc) {
        case 1:
                e->esc = k == '[' ? 2 : k == 'O' ? 3 : 0;
                return true;
        case 2:
                if (k >= 0x40 && k <= 0x7e)
                        e->esc = 0;
                return true;
        case 3:
                e->esc = 0;
                return true;
        default:
                return false;
        }
}

static LineEditorAction key_submit(LineEditor *e) {
        /* The line moves out whole; the editor starts again with the submitted one's storage. */
        ByteQueue t = e->submitted;
        byte_queue_consume(&t, byte_queue_len(&t));
        e->submitted = e->line;
        e->line = t;
        return LINE_EDITOR_SUBMIT;
}

static LineEditorAction key_backspace(LineEditor *e) {
        size_t n = byte_queue_len(&e->line);
        while (n > 0 && utf8_continuation(line_at(e, n - 1)))
                n--;
        if (n > 0)
                n--;
        byte_queue_truncate(&e->line, n);
        return LINE_EDITOR_CHANGED;
}

/* Ctrl-W: the word before the cursor, and the blanks after it. */
static LineEditorAction key_erase_word(LineEditor *e) {
        size_t n = byte_queue_len(&e->line);
        while (n > 0 && line_at(e, n - 1) == ' ')
                n--;
        while (n > 0 && line_at(e, n - 1) != ' ')
                n--;
        byte_queue_truncate(&e->line, n);
        return LINE_EDITOR_CHANGED;
}

static LineEditorAction key_insert(LineEditor *e, uint8_t k) {
        if (k < 0x20)
                return LINE_EDITOR_NONE; /* other control keys: nothing */
        if (byte_queue_push(&e->line, &k, 1, LINE_EDITOR_MAX) < 0)
                return LINE_EDITOR_FULL;
        return LINE_EDITOR_CHANGED;
}

LineEditorAction line_editor_key(LineEditor *e, uint8_t k) {
        if (escape_key(e, k))
                return LINE_EDITOR_NONE;
        switch (k) {
        case 0x03: /* Ctrl-C */
                return LINE_EDITOR_INTERRUPT;
        case 0x04: /* Ctrl-D: the end on an empty line */
                return byte_queue_empty(&e->line) ? LINE_EDITOR_END : LINE_EDITOR_NONE;
        case '\r':
        case '\n':
                return key_submit(e);
        case 0x7f: /* Backspace */
        case 0x08:
                return key_backspace(e);
        case 0x15: /* Ctrl-U */
                byte_queue_truncate(&e->line, 0);
                return LINE_EDITOR_CHANGED;
        case 0x17:
                return key_erase_word(e);
        case 0x0c: /* Ctrl-L */
                return LINE_EDITOR_CHANGED;
        case 0x1b:
                e->esc = 1;
                return LINE_EDITOR_NONE;
        default:
                return key_insert(e, k);
        }
}

static size_t utf8_columns(const char *s, size_t len) {
        size_t n = 0;
        for (size_t i = 0; i < len; i++)
                if (!utf8_continuation((uint8_t)s[i]))
                        n++;
        return n;
}

void line_editor_view(const LineEditor *e, TextBuf *b) {
        size_t len = byte_queue_len(&e->line);
        const char *line = (const char *)byte_queue_peek(&e->line);
        size_t pcols = utf8_columns(e->prompt, strlen(e->prompt));
        size_t room = e->cols > pcols + 2 ? e->cols - pcols - 2 : 1;
        size_t start = len, cols = 0;
        while (start > 0) {
                size_t s = start - 1;
                while (s > 0 && utf8_continuation((uint8_t)line[s]))
                        s--;
                if (cols + 1 > room)
                        break;
                cols++;
                start = s;
        }
        text_puts(b, e->prompt);
        if (start > 0 && room > 1) {
                /* cut on the left: show that there is more */
                size_t s = start;
                do
                        s++;
                while (s < len && utf8_continuation((uint8_t)line[s]));
                text_puts(b, "<");
                start = s;
        }
        if (len > start)
                text_put(b, line + start, len - start);
}

void line_editor_draw(LineEditor *e, TextBuf *out) {
        text_puts(out, ERASE_LINE);
        line_editor_view(e, out);
        e->shown = true;
}

void line_editor_hide(LineEditor *e, TextBuf *out) {
        if (e->shown)
                text_puts(out, ERASE_LINE);
        e->shown = false;
}

/* ---- the terminal ---- */

static struct termios saved_termios;
static bool termios_saved;

void term_restore(void) {
        if (termios_saved) {
                (void)tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_termios);
                termios_saved = false;
        }
}

bool term_is_raw(void) {
        return termios_saved;
}

int term_raw(void) {
        static bool registered;
        struct termios t;
        if (tcgetattr(STDIN_FILENO, &saved_termios) < 0)
                return negative_errno();
        t = saved_termios;
        /* Keys as they come, no echo, ^C and ^Z as bytes; output processing stays (\n is \r\n). */
        t.c_iflag &= ~(tcflag_t)(ICRNL | INLCR | IGNCR | IXON | ISTRIP | BRKINT | INPCK | PARMRK);
        t.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ECHONL | ISIG | IEXTEN);
        t.c_cc[VMIN] = 1;
        t.c_cc[VTIME] = 0;
        if (tcsetattr(STDIN_FILENO, TCSADRAIN, &t) < 0)
                return negative_errno();
        termios_saved = true;
        if (!registered) {
                atexit(term_restore);
                registered = true;
        }
        return 0;
}

unsigned term_cols(void) {
        struct winsize w;
        if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &w) == 0 && w.ws_col > 0)
                return w.ws_col;
        return 80;
}
