/* bench_rss.c -- a local process's resident set size, from /proc. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

long bench_rss_kb(int pid) {
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -errno;
  long kb = -ENOENT;
  while (fgets(line, sizeof(line), f)) {
    if (strncmp(line, "VmRSS:", 6) == 0) {
      if (sscanf(line + 6, "%ld", &kb) != 1)
        kb = -EINVAL;
      break;
    }
  }
  fclose(f);
  return kb;
}
