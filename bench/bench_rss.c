/* bench_rss.c -- a local process's resident set size and CPU time, from
 * /proc. */
#include <errno.h>
#include <unistd.h>
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

long long bench_cpu_ns(int pid) {
  char path[64], line[1024];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -errno;
  size_t n = fread(line, 1, sizeof(line) - 1, f);
  fclose(f);
  line[n] = '\0';
  /* The command name may hold spaces and parentheses: fields count from
   * the last ')'. utime and stime are fields 14 and 15. */
  char *p = strrchr(line, ')');
  unsigned long long ut, st;
  if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                          "%llu %llu", &ut, &st) != 2)
    return -EINVAL;
  long hz = sysconf(_SC_CLK_TCK);
  return (long long)((ut + st) * (1000000000ull / (unsigned long long)hz));
}
