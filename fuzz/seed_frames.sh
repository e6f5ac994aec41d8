#!/usr/bin/env bash
# seed_frames.sh -- (re)writes the fuzz_frames seeds in corpus/frames/ from
# tests/unit/protocol/frames/*/input plus one valid frame of every message
# type. Each seed starts with the 2-byte header fuzz_frames.c reads: max_frame
# (from the case's max_frame file, else the default) and "one chunk".
# crash-* files (regressions) are left alone.
set -euo pipefail
cd "$(dirname "$0")"
root=..
out=corpus/frames
mkdir -p "$out"
find "$out" -name 'case-*' -delete
find "$out" -name 'valid-*' -delete

# The header byte for a max_frame, in fuzz_frames.c's encoding.
header0() {
  local mf=$1
  if [ "$mf" -eq 65536 ]; then printf '\\x00'
  elif [ "$mf" -eq 256 ]; then printf '\\x01'
  elif [ "$mf" -ge 1 ] && [ "$mf" -le 64 ]; then printf '\\x%02x' $(( ((mf - 1) << 2) | 2 ))
  elif [ "$mf" -ge 64 ] && [ "$mf" -le 316 ] && [ $(( (mf - 64) % 4 )) -eq 0 ]; then
    printf '\\x%02x' $(( (((mf - 64) / 4) << 2) | 3 ))
  else echo "seed_frames: max_frame $mf has no header encoding" >&2; exit 1
  fi
}

for dir in "$root"/tests/unit/protocol/frames/*/; do
  name=$(basename "$dir")
  [ -f "$dir/input" ] || continue
  mf=65536
  [ -f "$dir/max_frame" ] && mf=$(tr -d ' \n' < "$dir/max_frame")
  { printf "$(header0 "$mf")\\x00"; cat "$dir/input"; } > "$out/case-$name"
done

valid() { # valid NAME LINE...
  local name=$1
  shift
  { printf '\x00\x00'; printf '%s\n' "$@"; } > "$out/valid-$name"
}
t=0123456789abcdef0123456789abcdef
k=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef  # a direct-link key (PROTOCOL.md 7)
# client -> server
valid register '{"type":"register","id":1,"user":"alice","password":"correct horse"}'
valid login '{"type":"login","id":"l1","user":"alice","password":"correct horse","p2p_port":40000,"p2p_host":"10.0.0.2","status":"away"}'
valid login_key '{"type":"login","id":"l2","user":"alice","token":"'$k'","p2p_port":4000,"key":"'$k'"}'
valid logout '{"type":"logout","id":9}'
valid ping '{"type":"ping","id":2}'
valid status '{"type":"status","id":3,"status":"busy"}'
valid contact_add '{"type":"contact_add","id":4,"user":"bob"}'
valid contact_accept '{"type":"contact_accept","id":5,"user":"bob"}'
valid contact_decline '{"type":"contact_decline","id":6,"user":"bob"}'
valid contact_remove '{"type":"contact_remove","id":7,"user":"bob"}'
valid contacts '{"type":"contacts","id":8}'
valid send '{"type":"send","id":10,"to":"bob","msg_id":"3f2a9c0d1e4b5a6978877665544332211","body":"hi \u00e9 \ud83d\ude00"}'
valid ack '{"type":"ack","msg_id":"m-1","from":"bob"}'
valid connect '{"type":"connect","id":11,"to":"bob"}'
valid group_create '{"type":"group_create","id":12,"group":"team.a"}'
valid group_add '{"type":"group_add","id":13,"group":"team.a","user":"carol"}'
valid group_leave '{"type":"group_leave","id":14,"group":"team.a"}'
valid group_members '{"type":"group_members","id":15,"group":"team.a"}'
valid groups '{"type":"groups","id":16}'
valid group_send '{"type":"group_send","id":17,"group":"team.a","msg_id":"g_1","body":"hello all"}'
# server -> client
valid welcome '{"type":"welcome","proto":1,"server":"chat-server/0.1.0","heartbeat":30,"max_frame":65536}'
valid ok '{"type":"ok","id":10,"msg_id":"m-1","status":"stored"}'
valid ok_login '{"type":"ok","id":"l1","user":"alice","host":"127.0.0.1"}'
valid ok_connect '{"type":"ok","id":11,"to":"bob","host":"10.0.0.3","port":40001,"ticket":"'$t'"}'
valid ok_connect_key '{"type":"ok","id":11,"to":"bob","host":"10.0.0.3","port":40001,"ticket":"'$t'","key":"'$k'"}'
valid ok_lists '{"type":"ok","id":8,"contacts":[{"user":"bob","status":"online"}],"members":[],"groups":["team.a"],"relayed":1,"stored":2}'
valid error '{"type":"error","id":4,"code":"no_such_user","message":"no such user"}'
valid pong '{"type":"pong","id":2}'
valid kicked '{"type":"kicked","reason":"logged_in_elsewhere"}'
valid presence '{"type":"presence","user":"bob","status":"offline"}'
valid contact_request '{"type":"contact_request","from":"bob"}'
valid contact_added '{"type":"contact_added","user":"bob","status":"online"}'
valid contact_removed '{"type":"contact_removed","user":"bob"}'
valid deliver '{"type":"deliver","group":"team.a","from":"bob","msg_id":"m-2","body":"yo","ts":1700000000000,"offline":true}'
valid receipt '{"type":"receipt","msg_id":"m-1","to":"bob","state":"delivered"}'
valid expect '{"type":"expect","from":"bob","ticket":"'$t'"}'
valid expect_key '{"type":"expect","from":"bob","ticket":"'$t'","key":"'$k'"}'
valid group_added '{"type":"group_added","group":"team.a","by":"bob"}'
# peer <-> peer
valid peer_hello '{"type":"peer_hello","proto":1,"from":"alice","to":"bob","ticket":"'$t'"}'
valid peer_welcome '{"type":"peer_welcome","user":"bob"}'
valid msg '{"type":"msg","msg_id":"p-1","body":"direct","ts":1700000000001}'
valid peer_ack '{"type":"ack","msg_id":"p-1"}'
# a conversation in one stream, CR LF and blank lines included
valid session '{"type":"welcome","proto":1,"heartbeat":30,"max_frame":65536}' \
  '{"type":"login","id":1,"user":"alice","password":"12345678"}' '' \
  $'{"type":"send","id":2,"to":"bob","msg_id":"a","body":"x"}\r' \
  '  ' '{"type":"ack","msg_id":"a","from":"bob"}'
