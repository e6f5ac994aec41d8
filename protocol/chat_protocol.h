/* chat_protocol.h -- the wire protocol, version 1: framing, validation, replies.
 *
 * This library turns bytes into messages and messages into bytes and checks
 * them against ../shared/PROTOCOL.md. It depends on jansson alone: it does no
 * I/O, no logging and never replies on its own; callers decide what to do.
 *
 * Conventions: functions return 0 (or a count) on success and a negative code
 * on failure: -CHAT_E_<CODE> for the protocol's error codes (see chat_code_t,
 * values from 1000 so they never collide with a negated errno), or -ENOMEM /
 * -EINVAL for local failures. chat_strerror() names either kind.
 */
#ifndef CHAT_PROTOCOL_H
#define CHAT_PROTOCOL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define CHAT_PROTO_VERSION 1
#define CHAT_MAX_FRAME_DEFAULT 65536 /* bytes in one line, LF/CR not counted */
#define CHAT_MAX_DEPTH 32            /* nesting of arrays and objects */
#define CHAT_MAX_NAME 32             /* user and group names, bytes */
#define CHAT_MIN_PASSWORD 8
#define CHAT_MAX_PASSWORD 256
#define CHAT_MAX_MSG_ID 64
#define CHAT_MAX_BODY 16384
#define CHAT_MAX_ID_STRING 64        /* a request "id" given as a string */
#define CHAT_MAX_ID_INT 9007199254740991LL /* 2^53 - 1 */
#define CHAT_TICKET_LEN 32           /* lowercase hex digits */
#define CHAT_KEY_LEN 64              /* a direct-link key: lowercase hex */
#define CHAT_MAX_LAN 4               /* login's lan: addresses at most */
#define CHAT_IP_MAX 46               /* a numeric address with its NUL */
#define CHAT_MAX_PROTOCOL_ERRORS 10  /* the 10th on a connection closes it */
#define CHAT_MAX_FAILED_LOGINS 5     /* the 5th on a connection closes it */

/* The error codes of PROTOCOL.md section 2, in wire order. */
typedef enum chat_code {
  CHAT_E_BAD_JSON = 1000,
  CHAT_E_FRAME_TOO_LARGE,
  CHAT_E_BAD_REQUEST,
  CHAT_E_UNKNOWN_TYPE,
  CHAT_E_NOT_AUTHENTICATED,
  CHAT_E_ALREADY_AUTHENTICATED,
  CHAT_E_AUTH_FAILED,
  CHAT_E_USER_EXISTS,
  CHAT_E_NO_SUCH_USER,
  CHAT_E_NO_SUCH_GROUP,
  CHAT_E_NOT_CONTACT,
  CHAT_E_OFFLINE,
  CHAT_E_NO_P2P,
  CHAT_E_GROUP_EXISTS,
  CHAT_E_NOT_MEMBER,
  CHAT_E_BAD_TICKET,
  CHAT_E_RATE_LIMITED,
  CHAT_E_SERVER_BUSY,
  CHAT_E_INTERNAL,
  CHAT_E__END
} chat_code_t;

/* "bad_json" for CHAT_E_BAD_JSON or -CHAT_E_BAD_JSON; NULL for anything else. */
const char *chat_code_name(int code);
/* The positive chat_code_t named by name, or 0 when it names none. */
int chat_code_from_name(const char *name);
/* A short text for any code this project returns: protocol or negated errno. */
const char *chat_strerror(int err);
/* Nonzero for the codes that count towards CHAT_MAX_PROTOCOL_ERRORS:
 * bad_json, bad_request, unknown_type, not_authenticated, already_authenticated. */
int chat_code_is_protocol_error(int code);

/* A structured error: the first one wins (like jansson's json_error_t). */
typedef struct chat_error {
  int code;           /* positive chat_code_t, 0 when none */
  char field[32];     /* the offending field ("" when none) */
  char message[160];  /* text for a person; names the field */
} chat_error_t;

/* Sets err (if non-NULL and not already set) and returns -code. */
int chat_error_set(chat_error_t *err, int code, const char *field,
                   const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- Framing: bytes -> lines ------------------------------------------- */

/* An incremental line splitter. It borrows each fed chunk and copies only the
 * unterminated tail of a line (at most max_frame + 1 bytes, the 1 for a CR),
 * so an idle stream holds no buffer at all. Not thread-safe. */
typedef struct chat_decoder {
  size_t max_frame;
  const char *chunk;  /* borrowed, unread part of the last fed chunk */
  size_t chunk_len;
  char *part;         /* owned: a line begun in an earlier chunk */
  size_t part_len;
  size_t part_cap;
  size_t part_pos;    /* next unread byte of part (after save: many lines) */
  size_t part_scan;   /* part is known to hold no LF before this offset */
  int dead;           /* the code next() keeps returning once dead:
                       * -CHAT_E_FRAME_TOO_LARGE, or -ENOMEM from feed */
} chat_decoder_t;

/* No allocation happens here. max_frame 0 means CHAT_MAX_FRAME_DEFAULT.
 * Always returns 0. Memory comes from jansson's allocator (json_set_alloc_funcs
 * governs it). */
int chat_decoder_init(chat_decoder_t *d, size_t max_frame);
void chat_decoder_free(chat_decoder_t *d);
/* Hands the decoder the next chunk; borrowed until chat_decoder_next() returns
 * 0 or chat_decoder_save() is called. The previous chunk should be used up
 * (if not, its rest is saved first; ENOMEM then kills the decoder). Ignored
 * once the decoder is dead. */
void chat_decoder_feed(chat_decoder_t *d, const char *data, size_t len);
/* The next complete line. Returns:
 *   1  *line / *len hold it, LF and a CR before it stripped; valid until the
 *      next call. Blank lines are returned too (see chat_frame_parse).
 *   0  more input is needed; the chunk is used up (its tail was copied).
 *   -CHAT_E_FRAME_TOO_LARGE  a line exceeds max_frame (known as soon as
 *      max_frame + 1 bytes arrive without LF, or + 2 without CR LF); the
 *      decoder is dead: it drops what it held and returns this ever after.
 *   -ENOMEM  nothing was consumed; calling again later retries. */
int chat_decoder_next(chat_decoder_t *d, const char **line, size_t *len);
/* Copies the unread rest of the current chunk into the decoder, so the caller
 * may stop calling next (e.g. a paused connection) and reuse the chunk's
 * memory. Bounded by the chunk. Returns 0 or -ENOMEM. */
int chat_decoder_save(chat_decoder_t *d);
/* Bytes held or still unread: nonzero at end of stream means an unterminated
 * final line, which is never a frame. 0 once dead. */
size_t chat_decoder_pending(const chat_decoder_t *d);

/* ---- Lines <-> JSON objects -------------------------------------------- */

/* Parses one line (without LF) into a JSON object. Returns:
 *   0  *out is a new reference to the object;
 *   1  the line is empty or only spaces and tabs: skip it, *out is NULL;
 *   -CHAT_E_BAD_JSON  not UTF-8, not JSON, not an object, nested deeper than
 *      CHAT_MAX_DEPTH, a duplicate key, a number beyond int64 and double, or a
 *      NUL byte; err says what. An integer literal beyond int64 that fits a
 *      double is accepted and arrives as a real.
 *   -ENOMEM  (err is left clear: this is no fault of the line). jansson
 *      reports some allocation failures as syntax errors, so when memory
 *      runs out a good line may also come back as -CHAT_E_BAD_JSON.
 * err (may be NULL) is cleared on entry. */
int chat_frame_parse(const char *line, size_t len, json_t **out,
                     chat_error_t *err);

/* Serialises obj compactly as one line ending in LF into a new malloc'd
 * buffer that the caller frees with free(); *len counts the LF, and a NUL
 * follows it. Returns 0, -EINVAL (not an object) or -ENOMEM (also for any
 * failure inside jansson: with checked strings, only an allocation fails). */
int chat_frame_encode(const json_t *obj, char **out, size_t *len);
/* The same line, written through a callback (json_dump_callback's shape), so
 * a caller can append straight into its own buffer. The LF is written last.
 * The callback returns 0, or nonzero to stop. Returns 0, -EINVAL (not an
 * object, or no callback), -ENOMEM (as above), or the callback's negative
 * return (a positive one becomes -EIO). */
typedef int (*chat_frame_write_cb)(const char *buf, size_t len, void *ctx);
int chat_frame_dump(const json_t *obj, chat_frame_write_cb write, void *ctx);

/* ---- Messages: validation ---------------------------------------------- */

typedef enum chat_type {
  CHAT_T_NONE = 0,
  /* client -> server */
  CHAT_T_REGISTER, CHAT_T_LOGIN, CHAT_T_LOGOUT, CHAT_T_PING, CHAT_T_STATUS,
  CHAT_T_CONTACT_ADD, CHAT_T_CONTACT_ACCEPT, CHAT_T_CONTACT_DECLINE,
  CHAT_T_CONTACT_REMOVE, CHAT_T_CONTACTS, CHAT_T_SEND, CHAT_T_ACK,
  CHAT_T_CONNECT, CHAT_T_GROUP_CREATE, CHAT_T_GROUP_ADD, CHAT_T_GROUP_LEAVE,
  CHAT_T_GROUP_MEMBERS, CHAT_T_GROUPS, CHAT_T_GROUP_SEND,
  /* server -> client */
  CHAT_T_WELCOME, CHAT_T_OK, CHAT_T_ERROR, CHAT_T_PONG, CHAT_T_KICKED,
  CHAT_T_PRESENCE, CHAT_T_CONTACT_REQUEST, CHAT_T_CONTACT_ADDED,
  CHAT_T_CONTACT_REMOVED, CHAT_T_DELIVER, CHAT_T_RECEIPT, CHAT_T_EXPECT,
  CHAT_T_GROUP_ADDED,
  /* peer <-> peer (also ping, pong, ack, error) */
  CHAT_T_PEER_HELLO, CHAT_T_PEER_WELCOME, CHAT_T_MSG, CHAT_T_PEER_REVERSE,
  CHAT_T__COUNT
} chat_type_t;

/* "send" for CHAT_T_SEND; NULL for CHAT_T_NONE or out of range. */
const char *chat_type_name(chat_type_t type);
/* CHAT_T_NONE when the name is unknown. */
chat_type_t chat_type_from_name(const char *name);

/* Who is receiving the frame decides which types and fields are valid. */
typedef enum chat_role {
  CHAT_ROLE_SERVER, /* a server reading a client's requests */
  CHAT_ROLE_CLIENT, /* a client reading its server's replies and events */
  CHAT_ROLE_PEER    /* either end of a direct peer link */
} chat_role_t;

/* Presence values; CHAT_STATUS_NONE when a field is absent. */
typedef enum chat_status {
  CHAT_STATUS_NONE = 0,
  CHAT_STATUS_ONLINE, CHAT_STATUS_AWAY, CHAT_STATUS_BUSY, CHAT_STATUS_OFFLINE
} chat_status_t;
const char *chat_status_name(chat_status_t s);
chat_status_t chat_status_from_name(const char *name); /* NONE if unknown */

/* The fields of one decoded message. Every pointer borrows from the json_t it
 * was decoded from and lives as long as that object. Absent strings are NULL,
 * absent integers are -1, absent booleans are -1. */
typedef struct chat_msg {
  chat_type_t type;
  const json_t *id;          /* the request id, NULL when absent or invalid */
  const char *user, *password, *to, *from, *by, *msg_id, *body, *group;
  const char *ticket, *host, *p2p_host, *reason, *code, *message, *state;
  const char *server;        /* welcome */
  const char *token;         /* login (in place of password) / its ok */
  const char *key;           /* login / connect's ok / expect: a direct-link
                              * public key, CHAT_KEY_LEN lowercase hex */
  int remember;              /* login: ask for a session token (0 or 1) */
  size_t body_len;           /* bytes of body (no NUL inside) */
  chat_status_t status;      /* login/status/presence/contact_added */
  int64_t p2p_port, port, proto, ts, heartbeat, max_frame, relayed, stored;
  int offline;               /* deliver */
  const json_t *contacts, *members, *groups; /* arrays in an ok, borrowed */
  /* NAT traversal (docs/DIRECT.md): login's and connect ok's lan (an array
   * of numeric addresses, checked at login only), the punch target and
   * moment of a connect ok / expect, and the ok's reverse flag (-1 when
   * absent). An expect's host and port are where to dial back. */
  const json_t *lan;
  const char *punch_host;
  int64_t punch_port, punch_ms;
  int reverse;
} chat_msg_t;

/* Sets every field of *msg to its absent value (see chat_msg_t), for code
 * that fills a chat_msg_t itself rather than through chat_msg_decode(). */
void chat_msg_init(chat_msg_t *msg);

/* Checks obj as a frame that role receives and fills *msg. Order of checks is
 * PROTOCOL.md's: "type" present and a string (else bad_request naming type),
 * type known for role (else unknown_type), "id" valid (else bad_request naming
 * id, and msg->id stays NULL so nothing is echoed), then each field.
 * Returns 0, -CHAT_E_BAD_REQUEST or -CHAT_E_UNKNOWN_TYPE; err (may be NULL,
 * cleared on entry) names the field. On failure msg->type and msg->id are
 * still set when they were valid (a valid id is kept even when type is
 * missing or unknown), so the caller can echo the id. login only checks field
 * types: a name or password that breaks the rules is the server's
 * auth_failed, not bad_request. A field present as null counts as the wrong
 * type. For an ok (role CLIENT) only type and id can fail; the other fields
 * are filled when present and well-formed, and a send reply's "status"
 * (relayed|stored) goes to msg->state, since it is no chat_status_t. */
int chat_msg_decode(const json_t *obj, chat_role_t role, chat_msg_t *msg,
                    chat_error_t *err);

/* The rules of PROTOCOL.md section 2, for callers that check by hand. */
int chat_name_valid(const char *name);      /* ^[a-z0-9][a-z0-9_.-]{0,31}$ */
int chat_password_valid(const char *password);       /* 8..256 bytes */
int chat_msg_id_valid(const char *msg_id);  /* ^[A-Za-z0-9_-]{1,64}$ */
int chat_body_valid(const char *body, size_t len);   /* 1..16384, no NUL */
int chat_ticket_valid(const char *ticket);  /* 32 lowercase hex digits */
int chat_key_valid(const char *key);        /* 64 lowercase hex digits */
/* A numeric IPv4 or IPv6 address (no brackets, port or zone). */
int chat_ip_valid(const char *ip);

/* ---- Messages: building ------------------------------------------------ */
/* Each returns a new reference, or NULL when out of memory. id may be NULL
 * (then no "id" is written); it is copied, not stolen. */

json_t *chat_reply_ok(const json_t *id);  /* {"type":"ok","id":id} */
json_t *chat_reply_error(const json_t *id, int code, const char *message);
/* An error frame from a chat_error_t (code and message). */
json_t *chat_reply_from_error(const json_t *id, const chat_error_t *err);
json_t *chat_msg_new(chat_type_t type);   /* {"type":"<name>"} */

json_t *chat_ev_welcome(const char *server, int heartbeat, size_t max_frame);
json_t *chat_ev_presence(const char *user, chat_status_t status);
json_t *chat_ev_contact_request(const char *from);
json_t *chat_ev_contact_added(const char *user, chat_status_t status);
json_t *chat_ev_contact_removed(const char *user);
json_t *chat_ev_kicked(const char *reason);
/* group may be NULL for a 1:1 message. body is body_len bytes of UTF-8. */
json_t *chat_ev_deliver(const char *from, const char *group,
                        const char *msg_id, const char *body, size_t body_len,
                        int64_t ts, int offline);
json_t *chat_ev_receipt(const char *msg_id, const char *to, const char *state);
json_t *chat_ev_expect(const char *from, const char *ticket);
json_t *chat_ev_group_added(const char *group, const char *by);

/* ---- Fast path: the hot frames without jansson (fastpath.c) ------------ */
/* For the frames that carry the traffic (send, ack, group_send in; deliver,
 * ok, receipt out), parsing into a jansson tree and dumping one costs most
 * of a relay's time. These functions read and write such lines directly.
 * They never report an error of their own: a line the scanner does not
 * take ("declined") goes the full way (chat_frame_parse, chat_msg_decode),
 * which gives every error exactly as before. Nothing here allocates. */

typedef enum chat_fast_kind {
  CHAT_FAST_NONE = 0, CHAT_FAST_STRING, CHAT_FAST_INT, CHAT_FAST_BOOL
} chat_fast_kind_t;

/* One member of a flat object. Pointers borrow from the scanned line. */
typedef struct chat_fast_field {
  const char *key;       /* never escaped, not NUL-terminated */
  size_t key_len;
  const char *raw;       /* a string's bytes between its quotes, still
                          * escaped; an integer's digits; true/false */
  size_t raw_len;
  size_t len;            /* a string's length once unescaped */
  int64_t num;           /* an integer's value; a boolean's 0 or 1 */
  unsigned char kind;    /* chat_fast_kind_t */
  unsigned char escaped; /* the string holds backslash escapes */
} chat_fast_field_t;

#define CHAT_FAST_MAX_FIELDS 8

/* Scans line (without LF) as one JSON object whose members are all strings,
 * integers or booleans, into fields (at most max). Returns the number of
 * members, or -1 to decline: whenever the line is not such an object or
 * holds anything this scanner leaves to jansson -- nesting, null, a real, a
 * negative integer or one of more than 17 digits, a \u escape, an escaped
 * key, a duplicate key, malformed UTF-8, more than max members. Strings
 * take only the escapes \" \\ \/ \b \f \n \r \t, so none decodes to
 * U+0000. What it accepts, chat_frame_parse accepts with the same members. */
int chat_fast_scan(const char *line, size_t len, chat_fast_field_t *fields,
                   int max);
/* Writes the decoded string of f (f->len bytes, no NUL added) to out. */
void chat_fast_unescape(const chat_fast_field_t *f, char *out);

/* A send, ack or group_send as chat_msg_decode (role SERVER) would see it. */
typedef struct chat_fast_req {
  chat_type_t type;          /* CHAT_T_SEND, CHAT_T_ACK or CHAT_T_GROUP_SEND */
  int id_kind;               /* CHAT_FAST_NONE, _INT or _STRING */
  int64_t id_num;            /* an integer id, 0..CHAT_MAX_ID_INT */
  const char *id_str;        /* a string id (never escaped), borrowed */
  size_t id_len;
  char to[CHAT_MAX_NAME + 1];       /* send */
  char group[CHAT_MAX_NAME + 1];    /* group_send */
  char from[CHAT_MAX_NAME + 1];     /* ack */
  char msg_id[CHAT_MAX_MSG_ID + 1];
  chat_fast_field_t body;    /* send, group_send: raw; body.len is 1..16384 */
} chat_fast_req_t;

/* Returns 1 when line is a valid send, ack or group_send with only the
 * fields of its type (and "id"), every value valid as chat_msg_decode
 * checks it; *req holds them. Returns 0 (declined) for anything else,
 * valid or not: the caller then takes the full path. */
int chat_fast_request(const char *line, size_t len, chat_fast_req_t *req);

/* ---- Line writers for the hot outgoing frames (lines.c) ---------------- */
/* Each writes one line ending in LF into out, byte for byte what
 * chat_frame_encode writes for the matching builder (chat_ev_deliver,
 * chat_ev_receipt, chat_reply_ok plus fields), and returns its length.
 * Names, msg_ids and states must be plain printable ASCII without '"' or
 * '\', at most 128 bytes (true of every valid name and msg_id): -EINVAL
 * otherwise. body is body_len bytes of UTF-8 and is escaped as jansson
 * does. id may be NULL, else a string of at most CHAT_MAX_ID_STRING bytes
 * or an integer (-EINVAL for anything else). cap must be at least
 * chat_line_max(body_len) (for lines without a body: chat_line_max(0)),
 * else -ENOBUFS; that always suffices. */
size_t chat_line_max(size_t body_len);
int chat_line_deliver(char *out, size_t cap, const char *from,
                      const char *group, const char *msg_id, const char *body,
                      size_t body_len, int64_t ts, int offline);
/* Bytes s[0..n) take inside a JSON string once escaped as above. */
size_t chat_json_escaped_len(const char *s, size_t n);
/* The length of the deliver line chat_line_deliver writes for these names
 * and a body of body_escaped_len escaped bytes, LF included, for any ts of
 * at most 19 digits and either offline value (an upper bound off by at most
 * the ts digits it does not know). A frame's length in PROTOCOL.md's sense
 * is this minus the LF. group may be NULL. */
size_t chat_line_deliver_len(const char *from, const char *group,
                             const char *msg_id, size_t body_escaped_len);
int chat_line_receipt(char *out, size_t cap, const char *msg_id,
                      const char *to, const char *state);
/* {"type":"ok","id":ID,"msg_id":M,"status":S}: the answer to a send. */
int chat_line_send_ok(char *out, size_t cap, const json_t *id,
                      const char *msg_id, const char *status);

#endif /* CHAT_PROTOCOL_H */
