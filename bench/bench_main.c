/* bench_main.c -- chat-bench: load a chat-server and report what it did. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <sodium.h>

#include "bench.h"

/* Every session is a socket, and direct mode adds two per pair: raise the
 * soft limit to the hard one rather than fail at a few thousand. */
static void raise_nofile(const bench_opts_t *o) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
    return;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  rlim_t need = (rlim_t)o->idle + (rlim_t)o->pairs * 4 + 64;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
    fprintf(stderr, "chat-bench: warning: open-file limit %llu is below the "
                    "%llu this run needs (raise ulimit -Hn)\n",
            (unsigned long long)rl.rlim_cur, (unsigned long long)need);
}

int main(int argc, char **argv) {
  /* The load generator's own costs must not depend on the shape of the
   * traffic: with glibc's moving thresholds a bursty run (cross-node
   * deliveries come in the inbox's batches) had its heap's top trimmed and
   * faulted in again, 0.5 us more per 1 KiB message than a steady one.
   * Fixed: blocks up to 4 MiB from the heap, its top kept up to 64 MiB. */
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  if (sodium_init() < 0) {
    fprintf(stderr, "chat-bench: libsodium failed to initialise\n");
    return 1;
  }
  bench_t *b = calloc(1, sizeof(*b));
  if (!b) {
    fprintf(stderr, "chat-bench: out of memory\n");
    return 1;
  }
  int rc = bench_opts_parse(&b->opts, argc, argv);
  if (rc != 0) {
    free(b);
    return rc > 0 ? 0 : 2;
  }
  unsigned char tag[4];
  randombytes_buf(tag, sizeof(tag));
  snprintf(b->run_tag, sizeof(b->run_tag), "%02x%02x%02x%02x", tag[0], tag[1],
           tag[2], tag[3]);
  signal(SIGPIPE, SIG_IGN);
  raise_nofile(&b->opts);

  rc = bench_run(b);
  if (rc < 0 && !b->stopping) {
    bench_free(b);
    free(b);
    return 1;
  }
  if (b->opts.json)
    bench_report_json(b, stdout);
  else
    bench_report_plain(b, stdout);
  fflush(stdout);
  int failed = bench_errors_total(b) > 0 || b->interrupted;
  bench_free(b);
  free(b);
  return failed ? 1 : 0;
}
