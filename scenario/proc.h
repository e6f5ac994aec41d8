/* proc.h -- one child process on the libuv loop with its stdin, stdout and
 * stderr as pipes, output split into lines.
 *
 * Lifetime: the proc frees itself. Once the child has exited and both output
 * pipes reached end of file (or chat_scenario_proc_abandon() was called), it
 * closes its handles and then calls on_done exactly once; the pointer is
 * invalid after on_done returns. */
#ifndef CHAT_SCENARIO_PROC_H
#define CHAT_SCENARIO_PROC_H

#include <stdint.h>
#include <uv.h>

typedef struct chat_scenario_proc chat_scenario_proc_t;

typedef struct chat_scenario_proc_cbs {
  /* One line of output; fd is 1 or 2; line is NUL-terminated and borrowed.
   * cut: the line was longer than the limit and was cut short. */
  void (*on_line)(chat_scenario_proc_t *p, int fd, const char *line,
                  size_t len, int cut);
  /* The child exited: exit status, or the signal that ended it (else 0). */
  void (*on_exit)(chat_scenario_proc_t *p, int64_t status, int signum);
  /* All handles closed; the proc is about to be freed. */
  void (*on_done)(chat_scenario_proc_t *p);
} chat_scenario_proc_cbs_t;

/* Starts file (a path) with argv (NULL-terminated, argv[0] included) and env
 * (NULL-terminated, or NULL to inherit) in directory cwd. data is the
 * caller's and returned by chat_scenario_proc_data(). Returns 0 with *out set,
 * or a libuv error (e.g. UV_ENOENT); on error nothing needs freeing (the
 * handles close on the next loop turn without callbacks). */
int chat_scenario_proc_spawn(uv_loop_t *loop, const char *file, char **argv,
                             char **env, const char *cwd,
                             const chat_scenario_proc_cbs_t *cbs, void *data,
                             chat_scenario_proc_t **out);
void *chat_scenario_proc_data(const chat_scenario_proc_t *p);
int chat_scenario_proc_pid(const chat_scenario_proc_t *p);
int chat_scenario_proc_exited(const chat_scenario_proc_t *p);
/* Queues text for the child's stdin (copied). 0, UV_EPIPE once stdin is
 * closed, or a libuv error. A failed write later is ignored: the child may
 * be gone, and the script's expectations will say so. */
int chat_scenario_proc_write(chat_scenario_proc_t *p, const char *text,
                             size_t len);
/* Closes stdin after everything queued was written. 0 or UV_EPIPE. */
int chat_scenario_proc_close_stdin(chat_scenario_proc_t *p);
/* Sends a signal. 0, UV_ESRCH once exited, or a libuv error. */
int chat_scenario_proc_kill(chat_scenario_proc_t *p, int signum);
/* Stops reading and closes everything now (last resort at teardown, e.g. an
 * output pipe kept open by someone else). on_done follows. */
void chat_scenario_proc_abandon(chat_scenario_proc_t *p);

#endif /* CHAT_SCENARIO_PROC_H */
