/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Intrusive circular doubly linked list: O(1) insert, remove and move-to-tail, no allocation.
 * A ListNode that is not on a list points to itself, so list_remove() is always safe. */
typedef struct ListNode {
        struct ListNode *prev, *next;
} ListNode;

static inline void list_init(ListNode *n) {
        n->prev = n->next = n;
}

static inline bool list_empty(const ListNode *head) {
        return head->next == head;
}

static inline bool list_linked(const ListNode *n) {
        return n->next != n;
}

static inline void list_remove(ListNode *n) {
        n->prev->next = n->next;
        n->next->prev = n->prev;
        list_init(n);
}

static inline void list_append(ListNode *head, ListNode *n) {
        n->prev = head->prev;
        n->next = head;
        head->prev->next = n;
        head->prev = n;
}

static inline void list_move_tail(ListNode *head, ListNode *n) {
        if (head->prev == n)
                return;
        n->prev->next = n->next;
        n->next->prev = n->prev;
        list_append(head, n);
}

#define list_entry(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define list_first(head, type, member) (list_empty(head) ? NULL : list_entry((head)->next, type, member))

/* Iterate safely against removal of the current element. */
/* Not for loops that remove pos: list_foreach_safe is. */
#define list_foreach(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

#define list_foreach_safe(pos, tmp, head)                                                                                                  \
        for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)
