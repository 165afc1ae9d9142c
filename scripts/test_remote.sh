#!/usr/bin/env bash
# On-demand test of the remote graph store (`graph.store: ws://...`): nanodex against a real SurrealDB server
# (`surreal start`, in-memory storage, on 127.0.0.1), on three inputs: the Java and mixed-language fixtures and a
# copy of part of the installed Python standard library. For each:
#   - `extract` writes the graph into the server, and `graph-inspect`, `graph show` and `graph query` read it back;
#   - the server's graph equals, table by table and record by record, the graph the embedded store holds for the
#     same input;
#   - (stdlib) after one file is edited, a second run re-parses that file only and again equals the embedded
#     store's graph of the edited input; `--full` rebuilds it to the same graph;
#   - a wrong password is one clear error line, and nothing is written.
# Not part of CI: the server is built from the `surrealdb-server` crate (tools/surreal-server), a full SurrealDB
# build (about 25 min on 2 cores the first time, into $HOME/.cache/nanodex/target-surreal).
# Usage: make test-remote
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/nanodex/target}"
SURREAL_TARGET=${SURREAL_TARGET:-$HOME/.cache/nanodex/target-surreal}
# NANODEX_BIN / SURREAL_BIN: binaries to use instead of building them.
BIN=${NANODEX_BIN:-}
if [ -z "$BIN" ]; then
  cargo build --release --locked --quiet -p nanodex-cli
  BIN=$CARGO_TARGET_DIR/release/nanodex
fi
SURREAL=${SURREAL_BIN:-}
if [ -z "$SURREAL" ]; then
  echo "building SurrealDB's server (tools/surreal-server) into $SURREAL_TARGET ..."
  CARGO_TARGET_DIR=$SURREAL_TARGET cargo build --locked --quiet --manifest-path tools/surreal-server/Cargo.toml
  SURREAL=$SURREAL_TARGET/debug/surreal
fi

TMP=$(mktemp -d)
SERVER_PID=
cleanup() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PASS=secret-$RANDOM
"$SURREAL" start --bind "127.0.0.1:$PORT" --user root --pass "$PASS" --log warn memory > "$TMP/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/server.log"; echo "FAIL: the server did not start"; exit 1; }
  sleep 0.2
done
echo "server: SurrealDB $("$SURREAL" version 2>/dev/null | tail -1) on 127.0.0.1:$PORT"
export NANODEX_DB_USER=root NANODEX_DB_PASS=$PASS

FAILED=0
fail() { echo "FAIL: $*"; FAILED=1; }
ok() { echo "ok:   $*"; }
# field EXPR: EXPR over the JSON document on stdin (`d`).
field() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

# dump WS [CONFIG]: every table of the graph's database with its records sorted by id, as one JSON document
# {table: [records]}. The tables are listed by the store itself (INFO FOR DB), so a table added to the schema is
# compared too; `graph_state` is left out, as it holds the time of the write.
dump() {
  local tables sql=""
  tables=$("$BIN" graph query "INFO FOR DB" --workspace "$1" ${2:+--config "$2"} \
    | field '" ".join(sorted(t for t in d[0]["tables"] if t != "graph_state"))')
  for t in $tables; do sql+="SELECT * FROM \`$t\` ORDER BY id; "; done
  "$BIN" graph query "$sql" --workspace "$1" ${2:+--config "$2"} | TABLES="$tables" python3 -c '
import json, os, sys
print(json.dumps(dict(zip(os.environ["TABLES"].split(), json.load(sys.stdin))), sort_keys=True, indent=1))'
}
# remote_config NAMESPACE: a config file that points the store at the server, in its own namespace.
remote_config() {
  printf 'graph:\n  store: "ws://127.0.0.1:%s"\n  namespace: %s\n' "$PORT" "$1" > "$TMP/$1.yaml"
  echo "$TMP/$1.yaml"
}
# same NAME REMOTE_WS REMOTE_CFG EMBEDDED_WS: the remote graph equals the embedded one.
same() {
  dump "$2" "$3" > "$TMP/remote.json"
  dump "$4" > "$TMP/embedded.json"
  local records
  records=$(python3 -c "import json; print(sum(map(len, json.load(open('$TMP/remote.json')).values())))")
  if [ "$records" -eq 0 ]; then fail "$1: the server's graph is empty"
  elif cmp -s "$TMP/remote.json" "$TMP/embedded.json"; then ok "$1: server graph = embedded graph ($records records)"
  else fail "$1: server graph differs from the embedded graph"; diff "$TMP/embedded.json" "$TMP/remote.json" | head -20 || true
  fi
}

STDLIB=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
mkdir -p "$TMP/stdlib"
for pkg in json email http; do cp -r "$STDLIB/$pkg" "$TMP/stdlib/"; done
for input in tests/fixtures/java tests/fixtures/mixed "$TMP/stdlib"; do
  name=$(basename "$input"); ns=t_$name
  cfg=$(remote_config "$ns"); rws=$TMP/ws-remote-$name; ews=$TMP/ws-embedded-$name
  "$BIN" extract "$input" --workspace "$rws" --config "$cfg" --json > "$TMP/extract.json" \
    || { fail "$name: extract into the server"; continue; }
  "$BIN" extract "$input" --workspace "$ews" --json > /dev/null
  parsed=$(field 'd["report"]["parsed"]' < "$TMP/extract.json")
  inserted=$(field 'd["write"]["inserted"]' < "$TMP/extract.json")
  ok "$name: extracted into the server ($parsed files parsed, $inserted records inserted)"
  same "$name" "$rws" "$cfg" "$ews"
  inspect=$("$BIN" graph-inspect --workspace "$rws" --config "$cfg" --json)
  modules=$(echo "$inspect" | field 'd["nodes"].get("module", 0)')
  [ "$modules" -gt 0 ] && ok "$name: graph-inspect reads $modules modules" || fail "$name: graph-inspect found no modules"
done

# graph show and graph query against the server (the stdlib copy: json.loads calls JSONDecoder.decode).
cfg=$TMP/t_stdlib.yaml; rws=$TMP/ws-remote-stdlib; ews=$TMP/ws-embedded-stdlib
if "$BIN" graph show json.loads --workspace "$rws" --config "$cfg" --json > "$TMP/show.json" \
  && grep -q 'JSONDecoder.decode' "$TMP/show.json"; then ok "graph show json.loads: calls json.decoder.JSONDecoder.decode"
else fail "graph show json.loads against the server"; fi
callers=$("$BIN" graph query "SELECT VALUE qname FROM \`function\` WHERE ->calls->function.qname CONTAINS 'json.decoder.JSONDecoder.decode'" \
  --workspace "$rws" --config "$cfg" | field 'sorted(d[0])') || callers="(query failed)"
echo "$callers" | grep -q "json.loads" && ok "graph query: callers of JSONDecoder.decode: $callers" \
  || fail "graph query: callers of JSONDecoder.decode: $callers"

# An edit: the second run parses one file, and the graph equals the embedded store's of the edited input.
printf '\n\ndef added_by_the_remote_test(s):\n    return loads(s)\n' >> "$TMP/stdlib/json/__init__.py"
"$BIN" extract "$TMP/stdlib" --workspace "$rws" --config "$cfg" --json > "$TMP/extract.json"
"$BIN" extract "$TMP/stdlib" --workspace "$ews" --json > /dev/null
read -r parsed mode < <(field 'd["report"]["parsed"], d["write"]["mode"]' < "$TMP/extract.json" | tr -d '(),'"'")
[ "$parsed" = 1 ] && ok "incremental: $parsed file re-parsed ($mode write)" || fail "incremental: $parsed files re-parsed ($mode write)"
same "stdlib after an edit" "$rws" "$cfg" "$ews"
"$BIN" extract "$TMP/stdlib" --workspace "$rws" --config "$cfg" --full --json > /dev/null
same "stdlib after --full" "$rws" "$cfg" "$ews"

# A wrong password: one line naming the server, exit status 1, and nothing written.
cfg=$(remote_config t_denied)
if NANODEX_DB_PASS=wrong "$BIN" extract tests/fixtures/java --workspace "$TMP/ws-denied" --config "$cfg" > "$TMP/out" 2> "$TMP/err"; then
  fail "a wrong password was accepted"
else
  lines=$(grep -c . "$TMP/err" || true)
  if [ "$lines" = 1 ] && grep -q "127.0.0.1:$PORT refused the sign-in as .root.*NANODEX_DB_PASS" "$TMP/err"; then
    ok "wrong password: $(cat "$TMP/err")"
  else fail "wrong password: expected one line naming the server and NANODEX_DB_PASS"; cat "$TMP/err"; fi
fi

if [ "$FAILED" = 0 ]; then echo "remote store: all checks passed"; else echo "remote store: FAILED"; exit 1; fi
