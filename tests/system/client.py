#!/usr/bin/python3
"""Small TCP clients and journal checks for system-test.sh.

  client.py echo PORT TEXT        one line through an echo server
  client.py enhanced PORT         a JSON echo command through an enhanced server
  client.py chat PORT NAME        a JSON member joins a chat room and is welcomed
  client.py hold PORT             a connection to an echo server kept open, driven by stdin:
                                    ping TEXT   -> "ok" once TEXT came back, else "error: ..."
                                    eof SECONDS -> "eof" (FIN: then it closes too, as a client
                                                   does), "reset" (RST), "timeout" or "data: ..."
                                    quit        -> closes and exits
  client.py transitions FILE PEER...  check `journalctl -o json` output in FILE (- for standard
                                    input): every transition of the connections from each PEER
                                    (ADDR:PORT) carries the documented
                                    fields, and each connection's path goes from LISTEN -> SYN_RECEIVED through
                                    ESTABLISHED to CLOSED

The network clients print the local address they connected from ("local ADDR:PORT") so the test can
find their connections in the journal; every failure is one line on stderr and exit status 1.
"""
import json
import socket
import sys

TIMEOUT = 10.0


def die(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def connect(port):
    s = socket.create_connection(("127.0.0.1", int(port)), timeout=TIMEOUT)
    addr, lport = s.getsockname()[:2]
    print(f"local {addr}:{lport}", flush=True)
    return s


def read_line(s, buf):
    """One line (without '\n') from s; buf is a bytearray of what was read beyond earlier lines."""
    while b"\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError(f"connection closed after {bytes(buf)!r}")
        buf += chunk
    line, _, rest = bytes(buf).partition(b"\n")
    buf[:] = rest
    return line.decode("utf-8", "replace").rstrip("\r")


def cmd_echo(port, text):
    with connect(port) as s:
        s.sendall(text.encode() + b"\n")
        got = read_line(s, bytearray())
        if got != text:
            die(f"echo on port {port}: sent {text!r}, got {got!r}")
        s.shutdown(socket.SHUT_WR)
        rest = s.recv(65536)
        if rest:
            die(f"echo on port {port}: unexpected {rest!r} after the echo")
    print(f"echoed {text!r}")


def cmd_enhanced(port):
    with connect(port) as s:
        s.sendall(b'{"command":"echo","data":"hello"}\n')
        line = read_line(s, bytearray())
        try:
            reply = json.loads(line)
        except ValueError:
            die(f"enhanced on port {port}: not JSON: {line!r}")
        want = {"status": "success", "command": "echo", "data": "hello"}
        ts = reply.pop("timestamp", None) if isinstance(reply, dict) else None
        if reply != want or not isinstance(ts, (int, float)):
            die(f"enhanced on port {port}: sent an echo command, got {line!r}, want {json.dumps(want)} and a timestamp")
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    print(f"reply {line}")


def cmd_chat(port, name):
    with connect(port) as s:
        s.sendall(json.dumps({"type": "join", "username": name}).encode() + b"\n")
        buf = bytearray()
        seen = []
        # History may come first; the welcome is addressed to this member.
        while True:
            line = read_line(s, buf)
            seen.append(line)
            try:
                msg = json.loads(line)
            except ValueError:
                die(f"chat on port {port}: not JSON: {line!r}")
            if msg.get("type") == "welcome":
                want = f"Welcome to the chat, {name}!"
                if msg.get("content") != want:
                    die(f"chat on port {port}: welcome {line!r}, want content {want!r}")
                break
            if len(seen) > 100:
                die(f"chat on port {port}: no welcome in {seen[:5]!r}...")
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    print(f"welcome {line}")


def cmd_hold(port):
    s = connect(port)
    buf = bytearray()
    for req in sys.stdin:
        verb, _, arg = req.rstrip("\n").partition(" ")
        try:
            if verb == "ping":
                s.settimeout(TIMEOUT)
                s.sendall(arg.encode() + b"\n")
                got = read_line(s, buf)
                print("ok" if got == arg else f"error: sent {arg!r}, got {got!r}", flush=True)
            elif verb == "eof":
                s.settimeout(float(arg))
                try:
                    data = s.recv(65536)
                    if not data:
                        s.close()
                    print("eof" if not data else f"data: {data!r}", flush=True)
                except ConnectionResetError:
                    print("reset", flush=True)
                except socket.timeout:
                    print("timeout", flush=True)
            elif verb == "quit":
                break
            else:
                print(f"error: unknown request {req!r}", flush=True)
        except (OSError, EOFError) as e:
            print(f"error: {e}", flush=True)
    s.close()


TRANSITION_FIELDS = ["MESSAGE", "MESSAGE_ID", "TCPEDU_EVENT", "TCPEDU_CONN_ID", "TCPEDU_OLD_STATE", "TCPEDU_NEW_STATE",
                     "TCPEDU_STATE_SOURCE", "TCPEDU_ROLE", "TCPEDU_SERVER", "TCPEDU_SERVER_TYPE", "TCPEDU_PEER", "TCPEDU_LOCAL",
                     "TCPEDU_STATE_DURATION_USEC", "TCPEDU_REASON", "TCPEDU_MONOTONIC_USEC"]
STATES = "CLOSED LISTEN SYN_SENT SYN_RECEIVED ESTABLISHED FIN_WAIT_1 FIN_WAIT_2 CLOSE_WAIT CLOSING LAST_ACK TIME_WAIT".split()


def cmd_transitions(path, *peers):
    entries = []
    with (sys.stdin if path == "-" else open(path)) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    entries.append(json.loads(line))
                except ValueError:
                    die(f"journalctl -o json line {n} is not JSON: {line[:200]!r}")
    errors = []
    for peer in peers:
        mine = [e for e in entries if e.get("TCPEDU_PEER") == peer]
        if not mine:
            errors.append(f"no transition from peer {peer} (of {len(entries)} transitions)")
            continue
        ids = {e.get("TCPEDU_CONN_ID") for e in mine}
        if len(ids) != 1:
            errors.append(f"peer {peer}: {len(ids)} connection ids {sorted(map(str, ids))}")
        for e in mine:
            missing = [k for k in TRANSITION_FIELDS if k not in e]
            if missing:
                errors.append(f"peer {peer}: {e.get('MESSAGE')!r} lacks {', '.join(missing)}")
                continue
            if e["TCPEDU_EVENT"] != "transition" or e["MESSAGE_ID"] != "4a1b7fd3b3b44f6a8a7d2f0e5c9c1a01":
                errors.append(f"peer {peer}: {e['MESSAGE']!r} has TCPEDU_EVENT={e['TCPEDU_EVENT']} MESSAGE_ID={e['MESSAGE_ID']}")
            if e["TCPEDU_ROLE"] != "server":
                errors.append(f"peer {peer}: {e['MESSAGE']!r} has TCPEDU_ROLE={e['TCPEDU_ROLE']}, want server")
            if e["TCPEDU_OLD_STATE"] not in STATES or e["TCPEDU_NEW_STATE"] not in STATES:
                errors.append(f"peer {peer}: {e['MESSAGE']!r} names an unknown state")
            src = e["TCPEDU_STATE_SOURCE"]
            if src not in ("kernel", "inferred"):
                errors.append(f"peer {peer}: {e['MESSAGE']!r} has TCPEDU_STATE_SOURCE={src}")
            if src == "kernel" and e.get("TCPEDU_KERNEL_SOURCE") not in ("tcp_info", "sock_diag"):
                errors.append(f"peer {peer}: {e['MESSAGE']!r} is from the kernel but TCPEDU_KERNEL_SOURCE={e.get('TCPEDU_KERNEL_SOURCE')}")
            if src == "inferred" and ("TCPEDU_KERNEL_STATE" in e or "TCPEDU_KERNEL_SOURCE" in e):
                errors.append(f"peer {peer}: {e['MESSAGE']!r} is inferred but carries kernel fields")
            if not str(e["TCPEDU_STATE_DURATION_USEC"]).isdigit():
                errors.append(f"peer {peer}: TCPEDU_STATE_DURATION_USEC={e['TCPEDU_STATE_DURATION_USEC']!r}")
            if not e["TCPEDU_LOCAL"].startswith("127.0.0.1:"):
                errors.append(f"peer {peer}: TCPEDU_LOCAL={e['TCPEDU_LOCAL']}")
        path = [mine[0].get("TCPEDU_OLD_STATE")] + [e.get("TCPEDU_NEW_STATE") for e in mine]
        steps_ok = all(a.get("TCPEDU_NEW_STATE") == b.get("TCPEDU_OLD_STATE") for a, b in zip(mine, mine[1:]))
        if not steps_ok or path[:2] != ["LISTEN", "SYN_RECEIVED"] or "ESTABLISHED" not in path or path[-1] != "CLOSED":
            errors.append(f"peer {peer}: path {' -> '.join(map(str, path))}, want LISTEN -> SYN_RECEIVED -> ESTABLISHED -> ... -> CLOSED")
        else:
            e = mine[0]
            print(f"{peer} -> {e['TCPEDU_LOCAL']} (server {e['TCPEDU_SERVER']}, {e['TCPEDU_SERVER_TYPE']}): {' -> '.join(path)}")
    # The kernel's fields are absent on inferred steps; at least one step must carry them.
    if not errors and not any("TCPEDU_KERNEL_STATE" in e and "TCPEDU_KERNEL_SOURCE" in e
                              for e in entries if e.get("TCPEDU_PEER") in peers):
        errors.append("no transition carries TCPEDU_KERNEL_STATE and TCPEDU_KERNEL_SOURCE")
    if errors:
        die("; ".join(errors))


COMMANDS = {"echo": (cmd_echo, 2), "enhanced": (cmd_enhanced, 1), "chat": (cmd_chat, 2), "hold": (cmd_hold, 1)}

if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "transitions" and len(sys.argv) >= 4:
        cmd_transitions(*sys.argv[2:])
        sys.exit(0)
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS or len(sys.argv) - 2 != COMMANDS[sys.argv[1]][1]:
        die(__doc__)
    try:
        COMMANDS[sys.argv[1]][0](*sys.argv[2:])
    except (OSError, EOFError) as e:
        die(f"{sys.argv[1]} on port {sys.argv[2]}: {e}")
