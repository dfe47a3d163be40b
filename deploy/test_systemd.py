#!/usr/bin/env python3
"""deploy/test_systemd.py: the load side of deploy/test-systemd (clients and a publisher).

Opens --clients SSE streams on one channel through nginx (raw HTTP/1.0 sockets, no library)
that behave as a browser's EventSource: when a stream ends or fails, wait the last `retry`
the server sent and connect again with `Last-Event-ID`. Every event each client receives is
recorded with its arrival time. Once every client has its `init`, one publisher sends a
numbered sequence (data "1", "2", ...) with HTTP publishes at --rate per second, one at a
time, each with its own `Idempotency-Key`; a non-2xx answer or a lost connection is retried
with the same key (a repeat is never published twice), so every event is published exactly
once from the publisher's point of view.

Prints "ready" once publishing runs, then reads commands on stdin (deploy/test-systemd drives
it through faults) and answers each with one line starting with "ok" or "FAIL":

  live NAME BOUND    wait (at most 3 x BOUND s) until every client has received an event
                     published after this command came; "ok" if that took at most BOUND s.
                     Also says how many clients reconnected since the previous `live`.
  clients N          open N more clients, answer once each has its `init` (20 s at most).
  streams            answer with how many clients are connected right now.
  stop               stop publishing, wait (20 s at most) for every client to reach the last
                     event, then print the checks and figures, one per line ("ok   ...",
                     "FAIL ...", "figure NAME VALUE"), then "end", and exit.

Exits 1 if the publisher gave up (an event not accepted within 30 s) or on bad input.

Usage: HERALD_PUBLISH_TOKEN=T test_systemd.py --port PORT --channel NAME [--clients 40]
                                              [--rate 20] [--key-prefix PREFIX] [--tls-ca PEM]
  --tls-ca PEM   speak HTTPS (HTTP/1.0 over TLS), trusting only this certificate
"""

import argparse
import os
import socket
import ssl
import sys
import threading
import time

CONNECT_TIMEOUT = 5.0  # seconds for one TCP connect and response head
READ_TIMEOUT = 40.0  # a stream silent this long is given up (heartbeats come every 15 s)
PUBLISH_TIMEOUT = 2.0  # one publish attempt: a POST nginx gave a stopped worker is sent again (same key)
PUBLISH_GIVE_UP = 30.0  # one event not accepted after this long: the publisher gives up
CATCH_UP = 20.0  # seconds for every client to reach the last event after `stop`


def say(line):
    print(line, flush=True)


def log(line):
    now = time.time()
    stamp = time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"
    print(f"{stamp} test_systemd.py: {line}", file=sys.stderr, flush=True)


def event_seq(event_id):
    """The sequence number of an id `<epoch>-<sequence>`, or None."""
    _, _, seq = event_id.rpartition("-")
    return int(seq) if seq.isdigit() else None


# ---------------------------------------------------------------- HTTP/1.0 --

TLS = None  # an ssl.SSLContext with --tls-ca: every connection is wrapped in TLS


def http_request(port, method, path, headers, body=b"", timeout=CONNECT_TIMEOUT):
    """Open a connection, send one request, read the response head. Returns (status,
    headers as a lowercase dict, file for the body, socket)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        if TLS is not None:
            sock = TLS.wrap_socket(sock, server_hostname="127.0.0.1")
        lines = [f"{method} {path} HTTP/1.0", "Host: 127.0.0.1"]
        lines += [f"{name}: {value}" for name, value in headers]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        body_file = sock.makefile("rb")
        status_line = body_file.readline().decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise OSError(f"bad status line {status_line!r}")
        head = {}
        while True:
            line = body_file.readline().decode("latin-1")
            if line in ("\r\n", "\n", ""):
                break
            name, _, value = line.partition(":")
            head[name.strip().lower()] = value.strip()
        return int(parts[1]), head, body_file, sock
    except BaseException:
        sock.close()
        raise


# ------------------------------------------------------------------ clients --


class Client:
    """One reconnecting stream. `events` holds (arrival time, id, event type, data)."""

    def __init__(self, index, port, channel, stopping):
        self.index = index
        self.port = port
        self.channel = channel
        self.stopping = stopping
        self.lock = threading.Lock()
        self.events = []
        self.last_id = ""
        self.retry_ms = 2000  # EventSource's default until the server sends one
        self.connections = 0  # streams opened (200 text/event-stream)
        self.refused = 0  # connection attempts that failed or got another answer
        self.connected = False
        self.has_init = threading.Event()
        self.sock = None
        self.thread = threading.Thread(target=self.run, name=f"client-{index}", daemon=True)

    def run(self):
        while not self.stopping.is_set():
            try:
                self.stream_once()
            except OSError:
                pass
            with self.lock:
                self.connected = False
            # EventSource waits the reconnection time, then resumes after its last id.
            self.stopping.wait(self.retry_ms / 1000)

    def stream_once(self):
        headers = [("Accept", "text/event-stream")]
        if self.last_id:
            headers.append(("Last-Event-ID", self.last_id))
        try:
            status, head, body, sock = http_request(self.port, "GET", f"/stream/{self.channel}", headers)
        except OSError:
            self.refused += 1
            raise
        self.sock = sock
        try:
            if status != 200 or not head.get("content-type", "").startswith("text/event-stream"):
                self.refused += 1
                return
            sock.settimeout(READ_TIMEOUT)
            with self.lock:
                self.connections += 1
                self.connected = True
            self.read_events(body)
        finally:
            sock.close()

    def read_events(self, body):
        """The SSE parser (WHATWG "Server-sent events"): fields until a blank line."""
        event_id, event_type, data = None, "message", []
        while True:
            raw = body.readline()
            if not raw:
                return  # the server ended the stream
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":
                if data:
                    self.dispatch(event_id, event_type, "\n".join(data))
                event_type, data = "message", []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "event":
                event_type = value
            elif name == "id":
                event_id = value
            elif name == "retry" and value.isdigit():
                self.retry_ms = int(value)

    def dispatch(self, event_id, event_type, data):
        now = time.time()
        with self.lock:
            if event_id is not None:
                self.last_id = event_id
            self.events.append((now, event_id or "", event_type, data))
        if event_type == "init":
            self.has_init.set()

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def close(self):
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


# ---------------------------------------------------------------- publisher --


class Publisher:
    """Publishes "1", "2", ... one at a time at `rate` per second, retrying with the key."""

    def __init__(self, port, channel, rate, token, key_prefix):
        self.port = port
        self.channel = channel
        self.interval = 1.0 / rate
        self.token = token
        self.key_prefix = key_prefix
        self.stop = threading.Event()
        self.lock = threading.Lock()
        # (number, id, time first sent, time accepted, attempts)
        self.published = []
        self.answers = {}  # non-200 answers seen, by status ("lost" for no answer)
        self.replayed = 0  # answers with Idempotent-Replayed: true
        self.error = None
        self.thread = threading.Thread(target=self.run, name="publisher", daemon=True)

    def run(self):
        number = 1
        next_at = time.time()
        while not self.stop.is_set():
            delay = next_at - time.time()
            if delay > 0 and self.stop.wait(delay):
                break
            try:
                self.publish(number)
            except RuntimeError as error:
                self.error = str(error)
                log(self.error)
                return
            number += 1
            # A steady pace, no burst after an outage.
            next_at = max(next_at + self.interval, time.time())

    def publish(self, number):
        key = f"{self.key_prefix}{number}"
        headers = [
            ("Authorization", f"Bearer {self.token}"),
            ("Idempotency-Key", key),
            ("Content-Type", "text/plain"),
        ]
        first = time.time()
        attempts = 0
        while True:
            attempts += 1
            wait = 0.2
            try:
                status, head, body, sock = http_request(
                    self.port, "POST", f"/publish/{self.channel}", headers, str(number).encode(), PUBLISH_TIMEOUT
                )
                try:
                    text = body.read().decode("utf-8", "replace").strip()
                finally:
                    sock.close()
            except OSError:
                status, head, text = "lost", {}, ""
            if status == 200:
                if attempts > 1:
                    log(f"publish {number} attempt {attempts}: 200 {text!r} {head.get('idempotent-replayed', '')}")
                with self.lock:
                    self.published.append((number, text, first, time.time(), attempts))
                    if head.get("idempotent-replayed", "").lower() == "true":
                        self.replayed += 1
                return
            with self.lock:
                self.answers[status] = self.answers.get(status, 0) + 1
            log(f"publish {number} attempt {attempts}: {status} {text[:120]!r} after {time.time() - first:.2f} s")
            if isinstance(status, int) and 400 <= status <= 415:
                raise RuntimeError(f"publish {number} refused with {status}: {text}")
            if time.time() - first > PUBLISH_GIVE_UP:
                raise RuntimeError(f"publish {number} not accepted within {PUBLISH_GIVE_UP:.0f} s (last: {status})")
            if status == 503 and head.get("retry-after", "").isdigit():
                wait = min(1.0, float(head["retry-after"]))
            time.sleep(wait)

    def snapshot(self):
        with self.lock:
            return list(self.published)


# -------------------------------------------------------------------- load --


class Load:
    def __init__(self, args, token):
        self.args = args
        self.stopping = threading.Event()
        self.clients = []
        self.publisher = Publisher(args.port, args.channel, args.rate, token, args.key_prefix)
        self.reconnects_seen = 0
        self.started = None
        self.phases = []  # (time, name) of each `live` command: the fault just before it

    def open_clients(self, count):
        new = [Client(len(self.clients) + i, self.args.port, self.args.channel, self.stopping) for i in range(count)]
        self.clients += new
        for client in new:
            client.thread.start()
        deadline = time.time() + 20
        for client in new:
            if not client.has_init.wait(max(0.0, deadline - time.time())):
                return False
        return True

    def reconnects(self):
        return sum(max(0, c.connections - 1) for c in self.clients)

    def live(self, name, bound):
        """Every client receives an event first sent after now: how long did that take?"""
        start = time.time()
        self.phases.append((start, name))
        deadline = start + 3 * bound
        slowest = 0.0
        waiting = list(self.clients)
        while waiting and time.time() < deadline:
            ids = {p[1] for p in self.publisher.snapshot() if p[2] >= start}
            still = []
            for client in waiting:
                arrival = next((e[0] for e in client.snapshot() if e[1] in ids), None)
                if arrival is None:
                    still.append(client)
                else:
                    slowest = max(slowest, arrival - start)
            waiting = still
            if waiting:
                time.sleep(0.05)
        reconnected = self.reconnects() - self.reconnects_seen
        self.reconnects_seen += reconnected
        what = f"{len(self.clients)} clients; {reconnected} reconnects since the previous check"
        if waiting:
            return f"FAIL {len(waiting)} of {len(self.clients)} clients had no new event {3 * bound:.0f} s after {name} ({what})"
        verdict = "ok" if slowest <= bound else "FAIL"
        return f"{verdict} every stream live {slowest:.2f} s after {name} (bound {bound:g} s; {what})"

    def finish(self):
        self.publisher.stop.set()
        self.publisher.thread.join(PUBLISH_GIVE_UP + PUBLISH_TIMEOUT + 5)
        published = self.publisher.snapshot()
        lines = []
        if self.publisher.error:
            lines.append(f"FAIL the publisher: {self.publisher.error}")
        last = published[-1][1] if published else None
        deadline = time.time() + CATCH_UP
        while last and time.time() < deadline:
            if all(c.last_id == last for c in self.clients):
                break
            time.sleep(0.05)
        self.stopping.set()
        for client in self.clients:
            client.close()
        lines += self.verify(published)
        lines.append("end")
        return lines

    def verify(self, published):
        lines = []
        answers = ", ".join(f"{n} x {s}" for s, n in sorted(self.publisher.answers.items(), key=str)) or "none"
        retried = sum(p[4] - 1 for p in published)
        lines.append(
            f"{'ok  ' if published else 'FAIL'} {len(published)} events published over HTTP "
            f"({retried} retries with the same key; non-200 answers: {answers}; "
            f"{self.publisher.replayed} answered as repeats)"
        )
        by_seq = {}
        for number, event_id, *_ in published:
            seq = event_seq(event_id)
            if seq is None:
                lines.append(f"FAIL publish {number} was answered {event_id!r}, not an event id")
                return lines
            by_seq[seq] = (number, event_id)
        ordered = [by_seq[s] for s in sorted(by_seq)]
        if [n for n, _ in ordered] != [p[0] for p in published]:
            lines.append("FAIL the accepted events' ids are not in publishing order")
        bad = []
        max_gap, gap_client, gap_at = 0.0, None, 0.0
        # The longest silence per phase: a gap belongs to the first `live` check after it began
        # (the fault that `live` follows), or to "end".
        phase_gap = {name: 0.0 for _, name in self.phases}
        phase_gap["end"] = 0.0

        def phase_of(moment):
            return next((name for at, name in self.phases if at >= moment), "end")

        for client in self.clients:
            events = client.snapshot()
            inits = [e for e in events if e[2] == "init"]
            deltas = [e for e in events if e[2] != "init"]
            if not inits:
                bad.append(f"client {client.index}: no init")
                continue
            if len(inits) > 1:
                bad.append(f"client {client.index}: {len(inits)} inits (a resume fell back to a fresh init)")
            since = event_seq(inits[0][1]) or 0
            expected = [event_id for seq, (_, event_id) in sorted(by_seq.items()) if seq > since]
            got = [e[1] for e in deltas]
            if got != expected:
                missing = sorted(set(expected) - set(got), key=event_seq)
                duplicates = len(got) - len(set(got))
                extra = sorted(set(got) - set(expected), key=lambda i: event_seq(i) or 0)
                bad.append(
                    f"client {client.index}: {len(got)} events, expected {len(expected)}; "
                    f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, {duplicates} duplicates, "
                    f"unexpected {extra[:5]}, in order: {got == sorted(got, key=lambda i: event_seq(i) or 0)}"
                )
            times = [inits[0][0]] + [e[0] for e in deltas]
            for before, after in zip(times, times[1:]):
                phase = phase_of(before)
                phase_gap[phase] = max(phase_gap[phase], after - before)
                if after - before > max_gap:
                    max_gap, gap_client, gap_at = after - before, client.index, before
        streams = len(self.clients)
        if bad:
            lines.append(f"FAIL every client got every published event exactly once, in order: {len(bad)} of {streams} did not")
            lines += [f"     {b}" for b in bad[:10]]
        else:
            lines.append(
                f"ok   every client got every published event exactly once, in order "
                f"({streams} clients, {len(published)} events, {self.reconnects()} reconnects with Last-Event-ID)"
            )
        if published:
            span = published[-1][3] - published[0][2]
            lines.append(f"figure events {len(published)}")
            lines.append(f"figure publishing-seconds {span:.1f}")
            # Publish to 200, first attempts only (retried ones include the outage).
            took = sorted(p[3] - p[2] for p in published if p[4] == 1)
            if took:
                median, p99 = took[len(took) // 2], took[min(len(took) - 1, int(len(took) * 0.99))]
                lines.append(f"figure publish-ms {median * 1000:.0f} {p99 * 1000:.0f}")
        lines.append(f"figure reconnects {self.reconnects()}")
        lines.append(f"figure max-gap {max_gap:.2f}")
        lines += [f"figure gap {name} {gap:.2f}" for name, gap in phase_gap.items()]
        if gap_client is not None:
            lines.append(f"figure max-gap-at {gap_at - (self.started or gap_at):.1f} s into publishing, client {gap_client}")
        return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--channel", required=True)
    parser.add_argument("--clients", type=int, default=40)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--key-prefix", default=f"test-systemd-{os.getpid()}-")
    parser.add_argument("--tls-ca", help="speak HTTPS, trusting only this PEM certificate")
    args = parser.parse_args()
    if args.tls_ca:
        global TLS
        TLS = ssl.create_default_context(cafile=args.tls_ca)
    token = os.environ.get("HERALD_PUBLISH_TOKEN", "")
    if not token:
        log("HERALD_PUBLISH_TOKEN is not set")
        return 2

    load = Load(args, token)
    if not load.open_clients(args.clients):
        say(f"FAIL not every one of {args.clients} clients got its init within 20 s")
        return 1
    load.started = time.time()
    load.publisher.thread.start()
    say("ready")
    for command in sys.stdin:
        words = command.split()
        if not words:
            continue
        if words[0] == "live" and len(words) == 3:
            say(load.live(words[1], float(words[2])))
        elif words[0] == "clients" and len(words) == 2:
            ok = load.open_clients(int(words[1]))
            say(f"ok {words[1]} more clients" if ok else f"FAIL not every one of {words[1]} new clients got its init within 20 s")
        elif words[0] == "streams":
            say(f"ok {sum(c.connected for c in load.clients)}")
        elif words[0] == "stop":
            for line in load.finish():
                say(line)
            return 1 if load.publisher.error else 0
        else:
            say(f"FAIL unknown command {command.strip()!r}")
    load.stopping.set()
    return 1


if __name__ == "__main__":
    sys.exit(main())
