/* main.c -- chat-client: flags, password, then the client loop. */
#include <getopt.h>
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "chat_addr.h"
#include "chat_json_alloc.h"
#include "chat_log.h"
#include "client_uv.h"
#include "input.h"

static const char usage_text[] =
    "usage: chat-client [--server HOST:PORT[,HOST:PORT...]] --user NAME\n"
    "                   [--register]\n"
    "                   [--tls [--tls-ca FILE]]\n"
    "                   [--p2p-port PORT | --no-p2p] [--p2p-host HOST] "
    "[--json]\n"
    "                   [--no-bell] [--listen-only | --to USER --message TEXT]\n"
    "                   [--log-level error|warn|info|debug]\n"
    "\n"
    "  --server HOST:PORT[,HOST:PORT...]\n"
    "                      the chat-server (default 127.0.0.1:7700), or up\n"
    "                      to 16 nodes of one cluster: the first that answers\n"
    "                      is used, and a lost connection moves on to the\n"
    "                      next ([IPv6]:PORT for an IPv6 address)\n"
    "  --tls               speak TLS to the server; its certificate must\n"
    "                      verify for the HOST of the address dialed (name\n"
    "                      or address)\n"
    "  --tls-ca FILE       trust these PEM CAs instead of the system's\n"
    "                      (needs --tls)\n"
    "  --user NAME         who to log in as\n"
    "  --register          create the account first (fine if it exists)\n"
    "  --p2p-port PORT     listen for direct connections here (default 0: any)\n"
    "  --no-p2p            no listener: messages to you go through the relay\n"
    "  --p2p-host HOST     the address peers should dial (default: the one\n"
    "                      the server sees)\n"
    "  --json              one JSON event per line on stdout, for scripts\n"
    "  --no-bell           no terminal bell when a message arrives\n"
    "  --listen-only       read no commands: stay connected and show what\n"
    "                      arrives until SIGINT or SIGTERM\n"
    "  --to USER --message TEXT\n"
    "                      send TEXT to USER, wait for its confirmation, exit\n"
    "  --log-level LEVEL   diagnostics on stderr (default warn)\n"
    "\n"
    "The password comes from CHAT_PASSWORD, or is asked for on a terminal.\n"
    "Commands are read from stdin; type /help for the list. Input history\n"
    "and conversations are kept in $XDG_STATE_HOME/chat-client/USER/\n"
    "(default ~/.local/state/chat-client/USER/).\n"
    "\n"
    "Exit status: 0 when every message sent was confirmed (delivered,\n"
    "relayed or stored); 1 when the server cannot be reached or its TLS\n"
    "certificate does not verify, the login fails, the session is taken\n"
    "over by another login, or a --message is refused; 2 for a bad command\n"
    "line; 3 when messages were still unconfirmed 10 s after the end of\n"
    "input.\n";

#if defined(__SANITIZE_ADDRESS__)
/* LeakSanitizer's hook: libedit copies the name and help of a function added
 * with EL_ADDFN (the prompt's Tab completion) with wcsdup and never frees
 * them, not even in el_end. chat-client itself never calls wcsdup. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:wcsdup\n"; }
#endif

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "chat-client: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n%s", usage_text);
  return 2;
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"server", required_argument, NULL, 's'},
      {"user", required_argument, NULL, 'u'},
      {"register", no_argument, NULL, 'r'},
      {"p2p-port", required_argument, NULL, 'p'},
      {"no-p2p", no_argument, NULL, 'n'},
      {"p2p-host", required_argument, NULL, 'H'},
      {"json", no_argument, NULL, 'j'},
      {"no-bell", no_argument, NULL, 'B'},
      {"listen-only", no_argument, NULL, 'L'},
      {"to", required_argument, NULL, 't'},
      {"message", required_argument, NULL, 'm'},
      {"log-level", required_argument, NULL, 'l'},
      {"tls", no_argument, NULL, 'T'},
      {"tls-ca", required_argument, NULL, 'C'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0}};
  chat_client_opts_t opts;
  chat_client_uv_t client;
  chat_log_level_t level = CHAT_LOG_WARN;
  const char *server = "127.0.0.1:7700", *pw;
  int opt, have_port = 0, rc;
  uv_loop_t loop;

  /* Typed text, names and the terminal's width of characters follow the
   * user's locale; the wire is UTF-8 whatever it says, so a locale that is
   * not UTF-8 (often plain "C") gets C.UTF-8's character handling, or
   * Chinese and emoji typed at the prompt would be dropped. Numbers stay in
   * the C form. */
  setlocale(LC_ALL, "");
  if (strcmp(nl_langinfo(CODESET), "UTF-8") != 0)
    setlocale(LC_CTYPE, "C.UTF-8");
  setlocale(LC_NUMERIC, "C");
  /* Before any JSON exists: jansson must not go on after a failed malloc. */
  chat_json_alloc_abort_on_oom();
  memset(&opts, 0, sizeof(opts));
  opterr = 0;
  while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (opt) {
    case 's': server = optarg; break;
    case 'u':
      if (!chat_name_valid(optarg))
        return usage_error("bad user name '%s'", optarg);
      snprintf(opts.user, sizeof(opts.user), "%s", optarg);
      break;
    case 'r': opts.do_register = 1; break;
    case 'p':
      if (chat_addr_parse_port(optarg, &opts.p2p_port) < 0)
        return usage_error("bad --p2p-port '%s'", optarg);
      have_port = 1;
      break;
    case 'n': opts.no_p2p = 1; break;
    case 'H':
      if (strlen(optarg) == 0 || strlen(optarg) >= sizeof(opts.p2p_host))
        return usage_error("bad --p2p-host '%s'", optarg);
      snprintf(opts.p2p_host, sizeof(opts.p2p_host), "%s", optarg);
      break;
    case 'j': opts.json = 1; break;
    case 'B': opts.no_bell = 1; break;
    case 'T': opts.tls = 1; break;
    case 'C':
      if (!*optarg)
        return usage_error("%s", "bad --tls-ca ''");
      opts.tls_ca = optarg;
      break;
    case 'L': opts.listen_only = 1; break;
    case 't':
      if (!chat_name_valid(optarg))
        return usage_error("bad --to user name '%s'", optarg);
      opts.to = optarg;
      break;
    case 'm':
      if (strlen(optarg) == 0 || strlen(optarg) > CHAT_MAX_BODY)
        return usage_error("bad --message (1 to 16384 bytes): '%.40s'",
                           optarg);
      opts.message = optarg;
      break;
    case 'l':
      if (chat_log_level_parse(optarg, &level) < 0)
        return usage_error("bad --log-level '%s'", optarg);
      break;
    case 'h': fputs(usage_text, stdout); return 0;
    case 'V': printf("chat-client %s\n", CHAT_VERSION); return 0;
    default:
      return usage_error("bad option '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc)
    return usage_error("unexpected argument '%s'", argv[optind]);
  if (!opts.user[0])
    return usage_error("%s", "--user NAME is required");
  if (!opts.to != !opts.message)
    return usage_error("%s", "--to and --message go together");
  if (opts.to && opts.listen_only)
    return usage_error("%s", "--listen-only and --to exclude each other");
  /* Explicit on purpose: a CA file alone does not switch encryption on. */
  if (opts.tls_ca && !opts.tls)
    return usage_error("%s", "--tls-ca needs --tls");
  if (have_port && opts.no_p2p)
    return usage_error("%s", "--p2p-port and --no-p2p exclude each other");
  {
    char why[CHAT_HOST_MAX + 128];
    if (chat_servers_parse(&opts.servers, server, why, sizeof(why)) < 0)
      return usage_error("%s", why);
  }

  chat_log_set_prefix("chat-client");
  chat_log_set_level(level);
  if (sodium_init() < 0) {
    fprintf(stderr, "chat-client: libsodium failed to start\n");
    return 1;
  }
  if ((pw = getenv("CHAT_PASSWORD")) != NULL) {
    snprintf(opts.password, sizeof(opts.password), "%s", pw);
  } else if (isatty(0)) {
    if (chat__input_password(opts.password, sizeof(opts.password)) < 0) {
      fprintf(stderr, "chat-client: no password given\n");
      return 1;
    }
  } else {
    fprintf(stderr, "chat-client: no password: set CHAT_PASSWORD "
                    "(or run on a terminal to be asked)\n");
    return 1;
  }
  signal(SIGPIPE, SIG_IGN); /* a closed stdout or socket is an error code */

  uv_loop_init(&loop);
  if ((rc = chat_client_uv_init(&client, &loop, &opts)) < 0) {
    fprintf(stderr, "chat-client: %s\n", chat_strerror(rc));
    return 1;
  }
  sodium_memzero(&opts, sizeof(opts));
  client.c.interactive = isatty(0) && isatty(1) && !client.c.opts.json &&
                         !client.c.opts.listen_only && !client.c.opts.to;
  client.c.color = isatty(1) && !client.c.opts.json && !getenv("NO_COLOR");
  /* On a terminal, an event and the prompt redrawn below it go out in one
   * write (every output path flushes when it is done). */
  if (client.c.interactive)
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  rc = chat_client_uv_run(&client);
  chat_client_uv_free(&client);
  if (uv_loop_close(&loop) != 0)
    CHAT_DEBUG("loop closed with handles open");
  return rc;
}
