/* SPDX-License-Identifier: MIT */
#pragma once

/* A network namespace of the test's own, joined to the host by a veth pair, with an nftables table
 * inside it to hold or drop segments of one side of a connection. */

#include <stdbool.h>
#include <stddef.h>

typedef struct Netns {
        char name[64]; /* ip netns name */
        char host_if[16], ns_if[16];
        char host_ip[32], ns_ip[32]; /* the host's end (where tcpedud listens) and the namespace's */
        int fd; /* /run/netns/NAME */
        bool created;
} Netns;

/* ip netns add, a veth pair, addresses, lo up, and table inet referee with chains out (output)
 * and in (input). Deletes leftovers of dead earlier runs first. 0, or -1 with a reason in why. */
int netns_create(Netns *n, char *why, size_t why_size);
/* Delete the namespace (its veth end, and with it the pair, and its nft table go with it). */
void netns_destroy(Netns *n);
/* A socket in the namespace (setns there and back in this thread). fd or -errno. */
int netns_socket(Netns *n, int family, int type);
/* nft add rule inet referee CHAIN RULE... inside the namespace (RULE as separate words). 0 or -1. */
int netns_nft_rule(Netns *n, const char *chain, const char *rule);
/* Flush both chains. */
int netns_nft_flush(Netns *n);
