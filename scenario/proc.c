/* proc.c -- a child process with piped stdio on the libuv loop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proc.h"
#include "scenario.h"

/* Client events are at most a 16 KiB body plus fields; server log lines are
 * short. Anything longer is cut and marked. */
#define PROC_LINE_MAX (256 * 1024)

struct chat_scenario_proc {
  uv_process_t process;
  uv_pipe_t pipes[3]; /* stdin, stdout, stderr */
  int open[3];        /* pipe handle not yet closed */
  int reading[3];     /* stdout/stderr: not yet at end of file */
  int process_open;
  int handles; /* handles whose close callback is pending or not yet asked */
  int exited, stdin_shut, done_called, failed_spawn;
  int pid;
  chat_scenario_linebuf_t lines[3];
  chat_scenario_proc_cbs_t cbs;
  void *data;
  char rbuf[64 * 1024];
};

typedef struct write_req {
  uv_write_t req;
  char bytes[];
} write_req_t;

static void on_handle_closed(uv_handle_t *h) {
  chat_scenario_proc_t *p = h->data;
  if (--p->handles > 0)
    return;
  if (!p->failed_spawn && p->cbs.on_done != NULL)
    p->cbs.on_done(p);
  for (int i = 1; i < 3; i++)
    chat_scenario_linebuf_free(&p->lines[i]);
  free(p);
}

static void close_pipe(chat_scenario_proc_t *p, int i) {
  if (!p->open[i])
    return;
  p->open[i] = 0;
  uv_close((uv_handle_t *)&p->pipes[i], on_handle_closed);
}

static void close_all(chat_scenario_proc_t *p) {
  for (int i = 0; i < 3; i++)
    close_pipe(p, i);
  if (p->process_open) {
    p->process_open = 0;
    uv_close((uv_handle_t *)&p->process, on_handle_closed);
  }
}

/* Done when the child is gone and its output is fully read. */
static void maybe_finish(chat_scenario_proc_t *p) {
  if (p->exited && !p->reading[1] && !p->reading[2])
    close_all(p);
}

typedef struct line_ctx {
  chat_scenario_proc_t *p;
  int fd;
} line_ctx_t;

static int deliver_line(void *ctx, const char *line, size_t len, int cut) {
  line_ctx_t *lc = ctx;
  if (lc->p->cbs.on_line != NULL)
    lc->p->cbs.on_line(lc->p, lc->fd, line, len, cut);
  return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  chat_scenario_proc_t *p = h->data;
  *buf = uv_buf_init(p->rbuf, sizeof(p->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  chat_scenario_proc_t *p = s->data;
  int fd = (uv_pipe_t *)s == &p->pipes[1] ? 1 : 2;
  line_ctx_t lc = {p, fd};
  if (nread > 0) {
    chat_scenario_linebuf_feed(&p->lines[fd], buf->base, (size_t)nread,
                               deliver_line, &lc);
    return;
  }
  if (nread == 0)
    return;
  /* UV_EOF or a read error: either way nothing more will come. */
  chat_scenario_linebuf_finish(&p->lines[fd], deliver_line, &lc);
  uv_read_stop(s);
  p->reading[fd] = 0;
  close_pipe(p, fd);
  maybe_finish(p);
}

static void proc_on_exit(uv_process_t *proc, int64_t status, int signum) {
  chat_scenario_proc_t *p = proc->data;
  p->exited = 1;
  /* The child cannot read any more: stop holding its stdin. */
  close_pipe(p, 0);
  if (p->cbs.on_exit != NULL)
    p->cbs.on_exit(p, status, signum);
  maybe_finish(p);
}

int chat_scenario_proc_spawn(uv_loop_t *loop, const char *file, char **argv,
                             char **env, const char *cwd,
                             const chat_scenario_proc_cbs_t *cbs, void *data,
                             chat_scenario_proc_t **out) {
  chat_scenario_proc_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return UV_ENOMEM;
  p->cbs = *cbs;
  p->data = data;
  for (int i = 0; i < 3; i++) {
    uv_pipe_init(loop, &p->pipes[i], 0);
    p->pipes[i].data = p;
    p->open[i] = 1;
    p->handles++;
    chat_scenario_linebuf_init(&p->lines[i], PROC_LINE_MAX);
  }
  uv_process_options_t opt;
  uv_stdio_container_t stdio[3];
  memset(&opt, 0, sizeof(opt));
  stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
  stdio[0].data.stream = (uv_stream_t *)&p->pipes[0];
  for (int i = 1; i < 3; i++) {
    stdio[i].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[i].data.stream = (uv_stream_t *)&p->pipes[i];
  }
  opt.file = file;
  opt.args = argv;
  opt.env = env;
  opt.cwd = cwd;
  opt.stdio = stdio;
  opt.stdio_count = 3;
  opt.exit_cb = proc_on_exit;
  p->process.data = p;
  int rc = uv_spawn(loop, &p->process, &opt);
  /* Even a failed uv_spawn leaves an initialised handle that must close. */
  p->process_open = 1;
  p->handles++;
  if (rc != 0) {
    p->failed_spawn = 1;
    close_all(p);
    return rc;
  }
  p->pid = p->process.pid;
  for (int i = 1; i < 3; i++) {
    p->reading[i] = 1;
    int r = uv_read_start((uv_stream_t *)&p->pipes[i], on_alloc, on_read);
    if (r != 0) {
      p->reading[i] = 0;
      close_pipe(p, i);
    }
  }
  *out = p;
  return 0;
}

void *chat_scenario_proc_data(const chat_scenario_proc_t *p) {
  return p->data;
}

int chat_scenario_proc_pid(const chat_scenario_proc_t *p) { return p->pid; }

int chat_scenario_proc_exited(const chat_scenario_proc_t *p) {
  return p->exited;
}

static void on_written(uv_write_t *req, int status) { free(req); }

int chat_scenario_proc_write(chat_scenario_proc_t *p, const char *text,
                             size_t len) {
  if (!p->open[0] || p->stdin_shut)
    return UV_EPIPE;
  write_req_t *w = malloc(sizeof(*w) + len);
  if (w == NULL)
    return UV_ENOMEM;
  memcpy(w->bytes, text, len);
  uv_buf_t buf = uv_buf_init(w->bytes, (unsigned)len);
  int rc = uv_write(&w->req, (uv_stream_t *)&p->pipes[0], &buf, 1, on_written);
  if (rc != 0)
    free(w);
  return rc;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  chat_scenario_proc_t *p = req->data;
  free(req);
  close_pipe(p, 0);
}

int chat_scenario_proc_close_stdin(chat_scenario_proc_t *p) {
  if (!p->open[0] || p->stdin_shut)
    return UV_EPIPE;
  p->stdin_shut = 1;
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (req == NULL) {
    close_pipe(p, 0);
    return 0;
  }
  req->data = p;
  if (uv_shutdown(req, (uv_stream_t *)&p->pipes[0], on_shutdown) != 0) {
    free(req);
    close_pipe(p, 0);
  }
  return 0;
}

int chat_scenario_proc_kill(chat_scenario_proc_t *p, int signum) {
  if (p->exited)
    return UV_ESRCH;
  return uv_process_kill(&p->process, signum);
}

void chat_scenario_proc_abandon(chat_scenario_proc_t *p) {
  for (int i = 1; i < 3; i++)
    if (p->reading[i]) {
      uv_read_stop((uv_stream_t *)&p->pipes[i]);
      p->reading[i] = 0;
    }
  close_all(p);
}
