/* SPDX-License-Identifier: MIT */
#pragma once

/* The line chat's user types, edited as it is typed on a terminal in raw mode: printable bytes are
 * added at the end, Backspace removes the last character, Ctrl-U the line, Ctrl-W the last word;
 * escape sequences (arrows, function keys) are read whole and ignored. The line is shown after a
 * prompt, cut on the left to the terminal's width. What each key means for the program (Enter,
 * Ctrl-C, Ctrl-D) is returned as an action, so the editor itself does no I/O and can be tested
 * alone; line_editor_draw() and _hide() only append to a TextBuf. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "byte-queue.h"
#include "format.h"

#define LINE_EDITOR_MAX 4096 /* bytes in the line */
#define LINE_EDITOR_PROMPT_MAX 160

typedef enum LineEditorAction {
        LINE_EDITOR_NONE, /* nothing changed */
        LINE_EDITOR_CHANGED, /* the line or the screen changed: draw it again */
        LINE_EDITOR_SUBMIT, /* Enter: the line is line_editor_submitted(), and the editor's line is empty */
        LINE_EDITOR_INTERRUPT, /* Ctrl-C */
        LINE_EDITOR_END, /* Ctrl-D on an empty line */
        LINE_EDITOR_FULL, /* a character did not fit: ring the bell */
        _LINE_EDITOR_ACTION_MAX,
        _LINE_EDITOR_ACTION_INVALID = -1,
} LineEditorAction;

typedef struct LineEditor {
        ByteQueue line; /* what is typed, at most LINE_EDITOR_MAX bytes */
        ByteQueue submitted; /* the line Enter took, until line_editor_submitted_done() */
        int esc; /* 0, 1 after ESC, 2 in a CSI sequence, 3 in SS3 */
        bool shown; /* the prompt and the line are on the screen */
        unsigned cols; /* the terminal's width */
        char prompt[LINE_EDITOR_PROMPT_MAX];
} LineEditor;

/* ---- line-editor.c ---- */

void line_editor_init(LineEditor *e, const char *prompt, unsigned cols);
void line_editor_done(LineEditor *e);

/* One key from the terminal. */
LineEditorAction line_editor_key(LineEditor *e, uint8_t key);

static inline const char *line_editor_text(const LineEditor *e, size_t *ret_len) {
        *ret_len = byte_queue_len(&e->line);
        return (const char *)byte_queue_peek(&e->line);
}
/* After LINE_EDITOR_SUBMIT: the line, valid until line_editor_submitted_done(). */
const char *line_editor_submitted(const LineEditor *e, size_t *ret_len);
void line_editor_submitted_done(LineEditor *e);

/* The prompt and the end of the line that fits the width, appended to out. */
void line_editor_view(const LineEditor *e, TextBuf *out);
/* Erase the screen's line and show the prompt and line on it. */
void line_editor_draw(LineEditor *e, TextBuf *out);
/* Erase them if they are shown. */
void line_editor_hide(LineEditor *e, TextBuf *out);

/* ---- the terminal ---- */

/* Raw mode on stdin: keys as they come, no echo, ^C and ^Z as bytes; output processing stays. The
 * saved mode is restored by term_restore(), also at exit. 0 or -errno. */
int term_raw(void);
void term_restore(void);
bool term_is_raw(void);
/* stdout's width in columns; 80 when it does not say. */
unsigned term_cols(void);
