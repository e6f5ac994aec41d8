/* chat_json_alloc.h -- jansson allocators that abort on out-of-memory.
 *
 * jansson 2.14 ignores some failed allocations inside its lexer (lex_save
 * drops the result of strbuffer_append_byte; akheron/jansson#362), so under
 * memory exhaustion json_loadb() can silently drop a byte of a string: a
 * user name or msg_id could change and a message be misrouted. A crash is
 * better than that. See fuzz/README.md, known bug 1.
 */
#ifndef CHAT_JSON_ALLOC_H
#define CHAT_JSON_ALLOC_H

/* Installs (json_set_alloc_funcs) a malloc that, when an allocation fails,
 * writes one line to stderr ("<program>: out of memory: ...") and calls
 * abort(). Call first thing in main(), before any JSON value exists (values
 * must be freed by the allocator that made them). Idempotent. */
void chat_json_alloc_abort_on_oom(void);

#endif /* CHAT_JSON_ALLOC_H */
