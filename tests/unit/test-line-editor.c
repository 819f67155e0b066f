/* SPDX-License-Identifier: MIT */
/* chat's line editor: what each key does to the line and which action it returns, escape
 * sequences read whole, the length limit, and how the line is shown after the prompt when it is
 * wider than the terminal. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "line-editor.h"
#include "macro.h"
#include "test-util.h"
#include "unit-assert.h"

/* The line as a C string (a static buffer: one call per assertion). */
static const char *line_of(const LineEditor *e) {
        static char buf[LINE_EDITOR_MAX + 1];
        size_t n;
        const char *p = line_editor_text(e, &n);
        memcpy(buf, p ? p : "", n);
        buf[n] = 0;
        return buf;
}

/* Feed keys; the last action. */
static LineEditorAction type(LineEditor *e, const char *keys) {
        LineEditorAction a = LINE_EDITOR_NONE;
        for (const char *k = keys; *k; k++)
                a = line_editor_key(e, (uint8_t)*k);
        return a;
}

static const char *view_of(const LineEditor *e) {
        static char buf[LINE_EDITOR_MAX + 256];
        TextBuf b = { .limit = sizeof(buf) - 1 };
        line_editor_view(e, &b);
        memcpy(buf, text_data(&b) ? text_data(&b) : "", text_len(&b));
        buf[text_len(&b)] = 0;
        text_done(&b);
        return buf;
}

static void test_typing(void) {
        LineEditor e;
        line_editor_init(&e, "bob> ", 80);
        ASSERT_INTEQ(line_editor_key(&e, 'h'), LINE_EDITOR_CHANGED);
        ASSERT_INTEQ(type(&e, "ello"), LINE_EDITOR_CHANGED);
        ASSERT_STREQ(line_of(&e), "hello");
        /* other control keys do nothing */
        ASSERT_INTEQ(line_editor_key(&e, 0x01), LINE_EDITOR_NONE);
        ASSERT_INTEQ(line_editor_key(&e, '\t'), LINE_EDITOR_NONE);
        ASSERT_STREQ(line_of(&e), "hello");
        /* Ctrl-L: the same line, drawn again */
        ASSERT_INTEQ(line_editor_key(&e, 0x0c), LINE_EDITOR_CHANGED);
        ASSERT_STREQ(line_of(&e), "hello");
        line_editor_done(&e);
}

static void test_submit(void) {
        LineEditor e;
        size_t n;
        line_editor_init(&e, "> ", 80);
        type(&e, "one");
        ASSERT_INTEQ(line_editor_key(&e, '\r'), LINE_EDITOR_SUBMIT);
        const char *s = line_editor_submitted(&e, &n);
        ASSERT_INTEQ(n, 3);
        ASSERT_TRUE(s && memcmp(s, "one", 3) == 0);
        /* the editor's line is empty at once, the submitted one stays until done */
        ASSERT_STREQ(line_of(&e), "");
        type(&e, "two");
        s = line_editor_submitted(&e, &n);
        ASSERT_TRUE(n == 3 && memcmp(s, "one", 3) == 0);
        line_editor_submitted_done(&e);
        line_editor_submitted(&e, &n);
        ASSERT_INTEQ(n, 0);
        ASSERT_INTEQ(line_editor_key(&e, '\n'), LINE_EDITOR_SUBMIT);
        s = line_editor_submitted(&e, &n);
        ASSERT_TRUE(n == 3 && memcmp(s, "two", 3) == 0);
        line_editor_submitted_done(&e);
        /* an empty line is submitted too: what it means is the caller's business */
        ASSERT_INTEQ(line_editor_key(&e, '\r'), LINE_EDITOR_SUBMIT);
        line_editor_submitted(&e, &n);
        ASSERT_INTEQ(n, 0);
        line_editor_done(&e);
}

static void test_erase(void) {
        LineEditor e;
        line_editor_init(&e, "> ", 80);
        type(&e, "abc");
        ASSERT_INTEQ(line_editor_key(&e, 0x7f), LINE_EDITOR_CHANGED);
        ASSERT_STREQ(line_of(&e), "ab");
        ASSERT_INTEQ(line_editor_key(&e, 0x08), LINE_EDITOR_CHANGED);
        ASSERT_STREQ(line_of(&e), "a");
        type(&e, "\x7f\x7f\x7f");
        ASSERT_STREQ(line_of(&e), "");
        /* Backspace takes a whole UTF-8 character */
        type(&e, "x\xc3\xa9\xe2\x82\xac");
        ASSERT_INTEQ(line_editor_key(&e, 0x7f), LINE_EDITOR_CHANGED);
        ASSERT_STREQ(line_of(&e), "x\xc3\xa9");
        line_editor_key(&e, 0x7f);
        ASSERT_STREQ(line_of(&e), "x");
        /* Ctrl-W: the last word and the blanks after it */
        type(&e, "y two  three  ");
        ASSERT_INTEQ(line_editor_key(&e, 0x17), LINE_EDITOR_CHANGED);
        ASSERT_STREQ(line_of(&e), "xy two  ");
        line_editor_key(&e, 0x17);
        ASSERT_STREQ(line_of(&e), "xy ");
        line_editor_key(&e, 0x17);
        ASSERT_STREQ(line_of(&e), "");
        line_editor_key(&e, 0x17);
        ASSERT_STREQ(line_of(&e), "");
        /* Ctrl-U: all of it */
        type(&e, "some words");
        ASSERT_INTEQ(line_editor_key(&e, 0x15), LINE_EDITOR_CHANGED);
        ASSERT_STREQ(line_of(&e), "");
        line_editor_done(&e);
}

static void test_control_keys(void) {
        LineEditor e;
        line_editor_init(&e, "> ", 80);
        ASSERT_INTEQ(line_editor_key(&e, 0x03), LINE_EDITOR_INTERRUPT);
        /* Ctrl-D ends only on an empty line */
        ASSERT_INTEQ(line_editor_key(&e, 0x04), LINE_EDITOR_END);
        type(&e, "a");
        ASSERT_INTEQ(line_editor_key(&e, 0x04), LINE_EDITOR_NONE);
        ASSERT_STREQ(line_of(&e), "a");
        ASSERT_INTEQ(line_editor_key(&e, 0x03), LINE_EDITOR_INTERRUPT);
        ASSERT_STREQ(line_of(&e), "a");
        line_editor_done(&e);
}

static void test_escapes(void) {
        LineEditor e;
        line_editor_init(&e, "> ", 80);
        type(&e, "a");
        /* arrows (CSI), a CSI with parameters (Delete), F1 (SS3): read whole, nothing typed */
        ASSERT_INTEQ(type(&e, "\033[A\033[D"), LINE_EDITOR_NONE);
        ASSERT_INTEQ(type(&e, "\033[3~"), LINE_EDITOR_NONE);
        ASSERT_INTEQ(type(&e, "\033OP"), LINE_EDITOR_NONE);
        ASSERT_STREQ(line_of(&e), "a");
        /* ESC and another key: both gone, and the next key is typed */
        type(&e, "\033xb");
        ASSERT_STREQ(line_of(&e), "ab");
        /* a control key inside a CSI does not act */
        ASSERT_INTEQ(type(&e, "\033[1;\x03"), LINE_EDITOR_NONE);
        type(&e, "5Rc");
        ASSERT_STREQ(line_of(&e), "abc");
        line_editor_done(&e);
}

static void test_limit(void) {
        LineEditor e;
        line_editor_init(&e, "> ", 80);
        for (size_t i = 0; i < LINE_EDITOR_MAX; i++)
                ASSERT_INTEQ(line_editor_key(&e, 'x'), LINE_EDITOR_CHANGED);
        ASSERT_INTEQ(line_editor_key(&e, 'y'), LINE_EDITOR_FULL);
        size_t n;
        line_editor_text(&e, &n);
        ASSERT_INTEQ(n, LINE_EDITOR_MAX);
        /* room again after an erase */
        line_editor_key(&e, 0x7f);
        ASSERT_INTEQ(line_editor_key(&e, 'y'), LINE_EDITOR_CHANGED);
        ASSERT_INTEQ(line_editor_key(&e, '\r'), LINE_EDITOR_SUBMIT);
        line_editor_submitted(&e, &n);
        ASSERT_INTEQ(n, LINE_EDITOR_MAX);
        line_editor_done(&e);
}

static void test_view(void) {
        LineEditor e;
        line_editor_init(&e, "bob> ", 12);
        ASSERT_STREQ(view_of(&e), "bob> ");
        /* room: 12 columns - 5 of the prompt - 2 = 5 */
        type(&e, "abcde");
        ASSERT_STREQ(view_of(&e), "bob> abcde");
        /* wider: cut on the left, '<' says so */
        type(&e, "fgh");
        ASSERT_STREQ(view_of(&e), "bob> <efgh");
        /* characters, not bytes, count */
        line_editor_key(&e, 0x15);
        type(&e, "\xc3\xa9\xc3\xa9\xc3\xa9");
        ASSERT_STREQ(view_of(&e), "bob> \xc3\xa9\xc3\xa9\xc3\xa9");
        /* a terminal too narrow for the prompt: one character shown, no '<' */
        line_editor_key(&e, 0x15);
        e.cols = 4;
        type(&e, "xyz");
        ASSERT_STREQ(view_of(&e), "bob> z");
        line_editor_done(&e);
}

static void test_draw_hide(void) {
        LineEditor e;
        TextBuf b = { .limit = 256 };
        line_editor_init(&e, "> ", 80);
        type(&e, "hi");
        line_editor_hide(&e, &b);
        ASSERT_INTEQ(text_len(&b), 0);
        line_editor_draw(&e, &b);
        ASSERT_TRUE(e.shown);
        ASSERT_TRUE(text_len(&b) == 8 && memcmp(text_data(&b), "\r\033[K> hi", 8) == 0);
        text_clear(&b);
        line_editor_hide(&e, &b);
        ASSERT_FALSE(e.shown);
        ASSERT_TRUE(text_len(&b) == 4 && memcmp(text_data(&b), "\r\033[K", 4) == 0);
        text_done(&b);
        line_editor_done(&e);
}

int main(void) {
        static CU_TestInfo tests[] = {
                { "typing", test_typing },
                { "submit", test_submit },
                { "erase", test_erase },
                { "control keys", test_control_keys },
                { "escape sequences", test_escapes },
                { "limit", test_limit },
                { "view", test_view },
                { "draw and hide", test_draw_hide },
                CU_TEST_INFO_NULL,
        };
        static CU_SuiteInfo suites[] = {
                { "line-editor", NULL, NULL, NULL, NULL, tests },
                CU_SUITE_INFO_NULL,
        };
        return test_main(suites);
}
