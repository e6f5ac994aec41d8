/* tickets.c -- random peer tickets from libsodium's CSPRNG. */
#include "tickets.h"

#include <sodium.h>

void chat__ticket_new(char out[33]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char raw[16];
  randombytes_buf(raw, sizeof(raw));
  for (int i = 0; i < 16; i++) {
    out[2 * i] = hex[raw[i] >> 4];
    out[2 * i + 1] = hex[raw[i] & 15];
  }
  out[32] = '\0';
}
