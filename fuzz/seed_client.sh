#!/usr/bin/env bash
# seed_client.sh -- (re)writes the fuzz_client seeds in corpus/client/: short
# sessions of alice's client (see fuzz_client.c for the format).
set -euo pipefail
cd "$(dirname "$0")"
out=corpus/client
mkdir -p "$out"
find "$out" -name 'conv-*' -delete
conv() { # conv NAME FLAGS LINE...
  local name=$1 flags=$2
  shift 2
  { printf "\\x$flags"; printf '%s\n' "$@"; } > "$out/conv-$name"
}
tk=0123456789abcdef0123456789abcdef
tk2=fedcba9876543210fedcba9876543210
# FUZZ_KEY of fuzz_client.c: the key every fake link proves; another one
fk=f00d0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab
ok=e0e00123456789abcdef0123456789abcdef0123456789abcdef0123456789ab
hello() { # hello FROM TO TICKET
  printf '{"type":"peer_hello","proto":1,"from":"%s","to":"%s","ticket":"%s"}' "$1" "$2" "$3"
}
conv relay 04 'T/msg carol hello' \
  'S{"type":"ok","id":"$0","msg_id":"#0","status":"stored"}' \
  'T/gmsg team hi all' 'S{"type":"ok","id":"$0","msg_id":"#0","relayed":1,"stored":2}' \
  'S{"type":"deliver","from":"bob","msg_id":"m-1","body":"yo","ts":1700000000000,"offline":false}' \
  'S{"type":"deliver","from":"bob","msg_id":"m-1","body":"yo","ts":1700000000000,"offline":false}' \
  'S{"type":"deliver","group":"team","from":"dave","msg_id":"m-2","body":"g","ts":1,"offline":true}' \
  'S{"type":"receipt","msg_id":"#1","to":"carol","state":"delivered"}' 'Tand more' \
  'S{"type":"ok","id":"$1","msg_id":"#0","relayed":0,"stored":0}'
conv direct 04 'T/msg bob hi' \
  "S{\"type\":\"ok\",\"id\":\"\$0\",\"to\":\"bob\",\"host\":\"127.0.0.1\",\"port\":40001,\"ticket\":\"$tk\",\"key\":\"$fk\"}" \
  'P0{"type":"peer_welcome","user":"bob"}' 'P0{"type":"ack","msg_id":"#0"}' \
  'P0{"type":"msg","msg_id":"d-1","body":"back","ts":1}' 'P0{"type":"ping"}' \
  'S{"type":"deliver","from":"bob","msg_id":"d-1","body":"back","ts":1,"offline":false}' \
  'T/msg bob again' 't6000' 'S{"type":"ok","id":"$0","msg_id":"#0","status":"relayed"}' \
  'T/msg bob third' 'X0' 'W' 'S{"type":"ok","id":"$0","msg_id":"#0","status":"relayed"}'
conv listener 04 "S{\"type\":\"expect\",\"from\":\"bob\",\"ticket\":\"$tk\",\"key\":\"$fk\"}" \
  'A' "P0$(hello bob alice $tk)" 'P0{"type":"msg","msg_id":"d-1","body":"hi","ts":1}' \
  'T/msg bob over the accepted link' 'P0{"type":"ack","msg_id":"#0"}' \
  'A' "P1$(hello bob alice $tk)" \
  'A' "P2$(hello carol alice $tk2)" 't1000' \
  "S{\"type\":\"expect\",\"from\":\"carol\",\"ticket\":\"$tk2\",\"key\":\"$fk\"}" \
  'P2{"type":"msg","msg_id":"d-2","body":"late","ts":2}' \
  'A' 'P3not json' 'P3{"type":"msg"}' 'A' "P4$(hello bob carol $tk)" 'A' 't11000' 'X0'
conv ticket_wait 04 'A' "P0$(hello bob alice $tk)" 'P0{"type":"msg","msg_id":"d-1","body":"queued","ts":1}' \
  't5000' 'A' "P1$(hello dave alice $tk2)" 't31000' \
  "S{\"type\":\"expect\",\"from\":\"dave\",\"ticket\":\"$tk2\",\"key\":\"$fk\"}" 'A' "P2$(hello dave alice $tk2)" \
  't31000' 'A' "P3$(hello dave alice $tk2)"
conv login 02 'S{"type":"welcome","proto":1,"server":"x","heartbeat":30,"max_frame":65536}' \
  'S{"type":"error","id":"register","code":"user_exists","message":"x"}' \
  'S{"type":"ok","id":"login","user":"alice","host":"127.0.0.1"}' \
  'T/msg bob early' \
  'S{"type":"ok","id":"login-contacts","contacts":[{"user":"bob","status":"online"}]}' \
  'T/contacts' 'S{"type":"ok","id":"$0","contacts":[]}' \
  'S{"type":"error","id":"$1","code":"no_such_user","message":"gone"}'
conv reconnect 04 'T/msg carol x' 'D' 'T/msg carol y' 'N' 'L' \
  'S{"type":"ok","id":"$0","msg_id":"#0","status":"stored"}' \
  'S{"type":"ok","id":"$1","msg_id":"#1","status":"stored"}' 'T/msg bob z' 'D' 'N' 'L' \
  'S{"type":"kicked","reason":"logged_in_elsewhere"}' 'Tafter kick'
conv commands 24 'T/add bob' 'S{"type":"ok","id":"$0"}' 'T/accept erin' \
  'S{"type":"error","id":"$0","code":"no_request","message":"x"}' 'T/status away' \
  'S{"type":"ok","id":"$0"}' 'T/group create team' 'T/group add team bob' 'T/groups' \
  'S{"type":"ok","id":"$0","groups":["team"]}' 'T/group members team' \
  'S{"type":"ok","id":"$0","members":["alice","bob"]}' 'T/help' 'T/wait 100' 'T/nonsense' \
  'S{"type":"presence","user":"carol","status":"online"}' 'S{"type":"contact_request","from":"erin"}' \
  'S{"type":"contact_added","user":"erin","status":"online"}' 'S{"type":"contact_removed","user":"dave"}' \
  'S{"type":"group_added","group":"g2","by":"bob"}' 'T/msg carol drain me' 'T/quit' \
  'S{"type":"ok","id":"$0","msg_id":"#0","status":"relayed"}'
conv errors 04 'T/msg bob fail' 'S{"type":"error","id":"$0","code":"no_p2p","message":"x"}' \
  'S{"type":"error","id":"$0","code":"no_such_user","message":"nope"}' \
  'T/msg dave slow' 'S{"type":"error","id":"$0","code":"offline","message":"x"}' \
  'S{"type":"error","id":"$0","code":"rate_limited","message":"slow"}' 'W' \
  'S{"type":"error","code":"bad_json","message":"x"}' 'Snot json' 'S{"type":"nope"}' \
  'S{"type":"error","id":"login-contacts","code":"internal","message":"x"}' 'N' 'L'
conv dial_fails 14 'T/msg bob x' \
  "S{\"type\":\"ok\",\"id\":\"\$0\",\"to\":\"bob\",\"host\":\"127.0.0.1\",\"port\":40001,\"ticket\":\"$tk\",\"key\":\"$fk\"}" \
  't3000' 'S{"type":"ok","id":"$0","msg_id":"#0","status":"relayed"}'
conv deferred 0c 'T/msg bob x' \
  "S{\"type\":\"ok\",\"id\":\"\$0\",\"to\":\"bob\",\"host\":\"127.0.0.1\",\"port\":40001,\"ticket\":\"$tk\",\"key\":\"$fk\"}" \
  'P0{"type":"error","code":"bad_ticket","message":"no"}' 'P0{"type":"peer_welcome","user":"bob"}' 'z' \
  'A' "P1$(hello bob alice $tk)" 'S{"type":"kicked","reason":"x"}' 'P1{"type":"ping"}' 'z'
conv no_p2p 05 'A' "P0$(hello bob alice $tk)" 'T/msg bob x' \
  'S{"type":"error","id":"$0","code":"no_p2p","message":"x"}'
# keys (PROTOCOL.md 7): a connect reply without a key or with another one,
# an expect for another key, and dialed handshakes that fail (flag 0x40).
conv keys 0c 'T/msg bob x' \
  "S{\"type\":\"ok\",\"id\":\"\$0\",\"to\":\"bob\",\"host\":\"127.0.0.1\",\"port\":40001,\"ticket\":\"$tk\"}" \
  'S{"type":"ok","id":"$0","msg_id":"#0","status":"relayed"}' 'T/msg bob y' \
  "S{\"type\":\"ok\",\"id\":\"\$0\",\"to\":\"bob\",\"host\":\"127.0.0.1\",\"port\":40001,\"ticket\":\"$tk\",\"key\":\"$ok\"}" \
  'z' 'P0{"type":"peer_welcome","user":"bob"}' 'z' \
  "S{\"type\":\"expect\",\"from\":\"bob\",\"ticket\":\"$tk2\",\"key\":\"$ok\"}" \
  'A' "P1$(hello bob alice $tk2)" 'A' "P2$(hello bob alice $tk)" 't1000' \
  "S{\"type\":\"expect\",\"from\":\"bob\",\"ticket\":\"$tk\"}" 'z'
conv tls_fails 44 'T/msg bob x' \
  "S{\"type\":\"ok\",\"id\":\"\$0\",\"to\":\"bob\",\"host\":\"127.0.0.1\",\"port\":40001,\"ticket\":\"$tk\",\"key\":\"$fk\"}" \
  'P0{"type":"peer_welcome","user":"bob"}' 'S{"type":"ok","id":"$0","msg_id":"#0","status":"relayed"}'
ls "$out" | wc -l
