#!/usr/bin/env bash
# seed_server.sh -- (re)writes the fuzz_server seeds in corpus/server/:
# short conversations of four sessions (see fuzz_server.c for the format).
set -euo pipefail
cd "$(dirname "$0")"
out=corpus/server
mkdir -p "$out"
find "$out" -name 'conv-*' -delete
conv() { # conv NAME FLAGS LINE...
  local name=$1 flags=$2
  shift 2
  { printf "\\x$flags"; printf '%s\n' "$@"; } > "$out/conv-$name"
}
reg='0{"type":"register","id":1,"user":"alice","password":"alicepass1"}
1{"type":"register","id":1,"user":"bob","password":"bobpass123"}
2{"type":"register","id":1,"user":"carol","password":"carolpass1"}
0{"type":"login","id":2,"user":"alice","password":"alicepass1","p2p_port":4000}
1{"type":"login","id":2,"user":"bob","password":"bobpass123","status":"away"}'
conv accounts 00 "$reg" '3{"type":"login","id":9,"user":"alice","password":"wrongpass"}' \
  '3{"type":"login","id":10,"user":"nobody","password":"whatever1"}' \
  '3{"type":"register","id":11,"user":"alice","password":"alicepass1"}' \
  '0{"type":"status","id":3,"status":"busy"}' '0{"type":"ping","id":4}' \
  '3{"type":"contacts","id":12}' '0{"type":"logout","id":5}'
conv contacts 00 "$reg" '0{"type":"contact_add","id":3,"user":"bob"}' \
  '1{"type":"contact_accept","id":3,"user":"alice"}' '0{"type":"contacts","id":4}' \
  '0{"type":"contact_add","id":5,"user":"carol"}' \
  '2{"type":"login","id":6,"user":"carol","password":"carolpass1"}' \
  '2{"type":"contact_decline","id":7,"user":"alice"}' \
  '1{"type":"contact_remove","id":8,"user":"alice"}' '1{"type":"contact_remove","id":9,"user":"alice"}'
conv relay 00 "$reg" '0{"type":"send","id":3,"to":"bob","msg_id":"m1","body":"hi bob"}' \
  '1{"type":"ack","msg_id":"m1","from":"alice"}' \
  '0{"type":"send","id":4,"to":"carol","msg_id":"m2","body":"for later"}' \
  '0{"type":"send","id":5,"to":"carol","msg_id":"m2","body":"for later"}' \
  '2{"type":"login","id":6,"user":"carol","password":"carolpass1"}' \
  '2{"type":"ack","msg_id":"m2","from":"alice"}' 'e1' 'n1' \
  '0{"type":"send","id":7,"to":"bob","msg_id":"m3","body":"while away"}' \
  '1{"type":"login","id":8,"user":"bob","password":"bobpass123"}'
conv connect 00 "$reg" '0{"type":"contact_add","id":3,"user":"bob"}' \
  '1{"type":"contact_add","id":3,"user":"alice"}' '1{"type":"connect","id":4,"to":"alice"}' \
  '0{"type":"connect","id":5,"to":"bob"}' '0{"type":"connect","id":6,"to":"carol"}'
conv groups 00 "$reg" '0{"type":"contact_add","id":3,"user":"bob"}' \
  '1{"type":"contact_accept","id":3,"user":"alice"}' \
  '0{"type":"group_create","id":4,"group":"team"}' '0{"type":"group_add","id":5,"group":"team","user":"bob"}' \
  '0{"type":"group_send","id":6,"group":"team","msg_id":"g1","body":"all"}' \
  '1{"type":"group_members","id":7,"group":"team"}' '1{"type":"groups","id":8}' \
  '1{"type":"group_leave","id":9,"group":"team"}' '0{"type":"group_leave","id":10,"group":"team"}'
conv kick_race 02 "$reg" 'r' '3{"type":"login","id":7,"user":"alice","password":"alicepass1"}' \
  '3{"type":"send","id":8,"to":"bob","msg_id":"k1","body":"early"}' \
  '0{"type":"ping","id":9}' 'r' 's' 'r'
conv errors 01 '0{"type":"send","id":1}' '0not json' '0{"type":"nope","id":"x"}' \
  '0{"id":[1]}' '0{"type":"login","id":2,"user":"al","password":"x"}' \
  '0{"type":"login","id":2,"user":"al","password":"x"}' '0{"type":"login","id":2,"user":"al","password":"x"}' \
  '0{"type":"login","id":2,"user":"al","password":"x"}' '0{"type":"login","id":2,"user":"al","password":"x"}' \
  '1{}' '1{}' '1{}' '1{}' '1{}' '1{}' '1{}' '1{}' '1{}' '1{}' '1{"type":"ping","id":3}'
