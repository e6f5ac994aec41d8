/* fuzz_line.h -- everything checked about one line the decoder returned. */
#ifndef CHAT_FUZZ_LINE_H
#define CHAT_FUZZ_LINE_H

#include <stddef.h>

/* Parses the line, checks chat_frame_parse against plain jansson and an
 * independent UTF-8 check, decodes the object for every role, builds the
 * replies a receiver would send, and round-trips it through
 * chat_frame_encode. Aborts on any broken invariant. */
void chat__fuzz_check_line(const char *line, size_t len);

#endif /* CHAT_FUZZ_LINE_H */
