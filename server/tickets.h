/* tickets.h -- peer handshake tickets: 128 random bits as 32 lowercase hex
 * digits. The server only issues them (in connect / expect); the peers check
 * them, single use, for CHAT_TICKET_TTL_MS. */
#ifndef CHAT_TICKETS_H
#define CHAT_TICKETS_H

#define CHAT_TICKET_TTL_MS 30000

/* Writes a fresh ticket and its NUL into out. Needs sodium_init() first. */
void chat__ticket_new(char out[33]);

#endif /* CHAT_TICKETS_H */
