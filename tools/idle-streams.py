#!/usr/bin/env python3
"""Measure a running Herald (deploy/run): RSS of workers, hub and nginx before and after
opening N idle event streams, and how long a closed stream takes to leave `heraldctl stats`.

Usage: tools/idle-streams.py --port 8080 --run-dir run --bin .build/release [--streams 1000]
Traffic goes to 127.0.0.1 only; every socket is closed before it exits.
"""
import argparse, json, os, socket, subprocess, time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pids(run_dir):
    out = {}
    for name in sorted(os.listdir(run_dir)):
        if name.endswith(".pid"):
            with open(os.path.join(run_dir, name)) as f:
                pid = int(f.read().strip())
            out[name[:-4]] = pid
            if name == "nginx.pid":  # nginx workers are the master's children
                for child in open(f"/proc/{pid}/task/{pid}/children").read().split():
                    out[f"nginx-worker-{child}"] = int(child)
    return out


def stats(bin_dir, run_dir):
    env = dict(os.environ, HERALD_ADMIN_SOCKET=os.path.join(run_dir, "admin.sock"))
    out = subprocess.run([os.path.join(bin_dir, "heraldctl"), "stats", "--json"], env=env,
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def open_stream(port, channel):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET /stream/{channel} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
    data = b""
    while b"event: init" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError("stream closed before init")
        data += chunk
    return s


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--run-dir", default="run")
    p.add_argument("--bin", default=".build/release")
    p.add_argument("--streams", type=int, default=1000)
    a = p.parse_args()

    processes = pids(a.run_dir)
    before = {name: rss_kb(pid) for name, pid in processes.items()}
    started = time.monotonic()
    streams = [open_stream(a.port, "idle") for _ in range(a.streams)]
    opened = time.monotonic() - started
    deadline = time.monotonic() + 30
    while stats(a.bin, a.run_dir)["streams"] < a.streams and time.monotonic() < deadline:
        time.sleep(0.05)
    after = {name: rss_kb(pid) for name, pid in processes.items()}
    print(f"{a.streams} streams opened (init received) in {opened:.2f} s")
    for name in processes:
        delta = after[name] - before[name]
        print(f"  {name:24s} RSS {before[name]:8d} KB -> {after[name]:8d} KB  (+{delta} KB, {delta * 1024 / a.streams:.0f} B/stream)")

    # Disconnect detection: close one stream, time until the stats no longer count it.
    samples = []
    for s in streams[:20]:
        expected = stats(a.bin, a.run_dir)["streams"] - 1
        t0 = time.monotonic()
        s.close()
        while stats(a.bin, a.run_dir)["streams"] > expected:
            pass
        samples.append((time.monotonic() - t0) * 1000)
    samples.sort()
    print(f"closed stream gone from stats after: median {samples[len(samples)//2]:.0f} ms, max {samples[-1]:.0f} ms "
          f"(20 samples; each includes one heraldctl run of the poll)")
    for s in streams[20:]:
        s.close()


if __name__ == "__main__":
    main()
