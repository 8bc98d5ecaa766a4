"""Tiny line-based chat server (one thread per client).

Protocol: every line a client sends is broadcast to its current room, except
commands:

    /nick NAME      change nickname
    /join ROOM      switch rooms (the last 50 lines of ROOM are replayed)
    /who            list members of the current room
    /quit           disconnect
    /shutdown TOKEN stop the server (TOKEN from --admin-token)
"""

import argparse
import collections
import logging
import re
import socket
import socketserver
import threading
import time

log = logging.getLogger("chat")

HISTORY = 50
NICK_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{1,15}$")


class ChatState:
    def __init__(self):
        self.clients = {}                          # nick -> handler
        self.rooms = collections.defaultdict(set)  # room -> {nick}
        self.history = collections.defaultdict(
            lambda: collections.deque(maxlen=HISTORY))
        self.registry_lock = threading.Lock()
        self.history_lock = threading.Lock()
        self._guest_seq = 0

    def register(self, handler):
        with self.registry_lock:
            self._guest_seq += 1
            nick = f"guest{self._guest_seq}"
            self.clients[nick] = handler
            return nick

    def unregister(self, handler):
        with self.registry_lock:
            self.clients.pop(handler.nick, None)
            self.rooms[handler.room].discard(handler.nick)

    def broadcast(self, room, sender, text):
        line = f"[{room}] <{sender}> {text}"
        with self.registry_lock:
            targets = [self.clients[n] for n in self.rooms.get(room, ())
                       if n in self.clients]
            with self.history_lock:
                self.history[room].append(line)
        for h in targets:
            h.send_line(line)

    def join_room(self, handler, room):
        with self.history_lock:
            backlog = list(self.history[room])
            with self.registry_lock:
                self.rooms[handler.room].discard(handler.nick)
                self.rooms[room].add(handler.nick)
                handler.room = room
        for line in backlog:
            handler.send_line(line)

    def rename(self, handler, new_nick):
        with threading.Lock():
            if new_nick in self.clients:
                return False
            self.clients[new_nick] = self.clients.pop(handler.nick)
            members = self.rooms[handler.room]
            members.discard(handler.nick)
            members.add(new_nick)
            handler.nick = new_nick
        return True

    def members(self, room):
        with self.registry_lock:
            return sorted(self.rooms.get(room, ()))

    def idle_clients(self, cutoff):
        with self.registry_lock:
            return [h for h in self.clients.values() if h.last_seen < cutoff]


class ChatHandler(socketserver.StreamRequestHandler):
    def setup(self):
        super().setup()
        self.nick = None
        self.room = "lobby"
        self.last_seen = time.monotonic()
        self._wlock = threading.Lock()
        self._closed = threading.Event()

    def send_line(self, line):
        data = (line + "\r\n").encode("utf-8", "replace")
        with self._wlock:
            try:
                self.wfile.write(data)
            except OSError:
                self._closed.set()

    def disconnect(self):
        self._closed.set()
        try:
            self.request.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _ping_loop(self):
        while not self._closed.wait(60.0):
            self.send_line("PING")

    def handle(self):
        state = self.server.state
        self.nick = state.register(self)
        state.join_room(self, "lobby")
        self.send_line(f"* welcome, you are {self.nick}")
        pinger = threading.Thread(target=self._ping_loop,
                                  name=f"ping-{self.nick}", daemon=True)
        pinger.run()
        for raw in self.rfile:
            self.last_seen = time.monotonic()
            line = raw.decode("utf-8", "replace").strip()
            if not line or line == "PONG":
                continue
            if line.startswith("/"):
                if not self._command(state, line):
                    break
            else:
                state.broadcast(self.room, self.nick, line)

    def finish(self):
        self._closed.set()
        self.server.state.unregister(self)
        super().finish()

    def _command(self, state, line):
        cmd, _, arg = line.partition(" ")
        arg = arg.strip()
        if cmd == "/quit":
            return False
        if cmd == "/nick":
            if not NICK_RE.match(arg):
                self.send_line("* invalid nickname")
            elif not state.rename(self, arg):
                self.send_line(f"* {arg} is taken")
        elif cmd == "/join" and arg:
            state.join_room(self, arg.lower())
        elif cmd == "/who":
            self.send_line("* " + " ".join(state.members(self.room)))
        elif cmd == "/shutdown" and arg == self.server.admin_token:
            log.warning("shutdown requested by %s", self.nick)
            self.server.shutdown_requested = True
        else:
            self.send_line(f"* unknown command {cmd}")
        return True


class ChatServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, state, admin_token):
        super().__init__(addr, ChatHandler)
        self.state = state
        self.admin_token = admin_token
        self.shutdown_requested = False
        self._stopped = threading.Event()

    def reap_idle(self, max_idle):
        while not self._stopped.wait(30.0):
            for h in self.state.idle_clients(time.monotonic() - max_idle):
                h.send_line("* disconnected: idle timeout")
                h.disconnect()

    def stop(self):
        self._stopped.set()
        self.shutdown()


def main(argv=None):
    ap = argparse.ArgumentParser(description="line-based chat server")
    ap.add_argument("--host", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=6667)
    ap.add_argument("--idle", type=float, default=600.0)
    ap.add_argument("--admin-token", required=True)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    server = ChatServer((args.host, args.port), ChatState(), args.admin_token)
    accept = threading.Thread(target=server.serve_forever, name="chat-accept")
    accept.start()
    reaper = threading.Thread(target=server.reap_idle, args=(args.idle,),
                              name="chat-reaper", daemon=True)
    reaper.start()
    log.info("listening on %s:%d", args.host, args.port)
    try:
        while not server.shutdown_requested:
            time.sleep(0.05)
    except KeyboardInterrupt:
        pass
    server.stop()
    accept.join()
    server.server_close()


if __name__ == "__main__":
    main()
