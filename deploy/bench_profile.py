"""deploy/bench_profile.py: where a process's time per delivered event goes, from a perf profile.

Reads `perf script` output of one process (cpu-clock samples with call chains) and prints one
JSON line for bench-results.jsonl (kind "profile" for a Herald worker, "relay" for an nginx
worker of Herald or nchan): each part's share of the samples and its microseconds per delivery,
from the process's CPU seconds (/proc, user + system) and the events delivered while perf
recorded. A sample belongs to the part of its innermost frame; a worker's kernel samples are
split by the system call their chain passes through, nginx's by the libc wrapper that entered
the kernel (writev to a client, recv from a worker, epoll_wait).
"""
import argparse
import json
import sys

# (part, description), in the order the report lists them.
PARTS = [
    ("kernel-send", "kernel: send(2) of each record to nginx's socket (copy, nginx woken)"),
    ("kernel-other", "kernel: the event loop's epoll, reads, scheduling"),
    ("herald", "Herald: the registry's deliver loop and the hub link"),
    ("nio", "SwiftNIO: event loop, hub-link decoding"),
    ("runtime", "Swift runtime: retain/release, allocation"),
    ("libc", "libc: send wrapper, malloc, memcpy"),
    ("other", "other"),
]


# nginx's parts, the same for Herald's nginx and nchan's.
NGINX_PARTS = [
    ("kernel-send", "kernel: writev of each event to its client's TCP socket (loopback: the client's receive too)"),
    ("kernel-recv", "kernel: recv of each record from the worker's unix socket"),
    ("kernel-epoll", "kernel: epoll_wait"),
    ("kernel-other", "kernel: other (accept, close, timers)"),
    ("nchan", "nchan's module: its message store and subscriber lists"),
    ("nginx", "nginx: HTTP output, upstream relay, event loop"),
    ("libc", "libc"),
    ("other", "other"),
]


def nginx_part_of(frames):
    """The part of an nginx worker's sample (innermost frame first)."""
    if not frames:
        return "other"
    symbol, dso = frames[0]
    if "kernel" in dso or dso.startswith("[k"):
        wrapper = next((s for s, d in frames if "libc" in d), "")
        if "writev" in wrapper or "send" in wrapper:
            return "kernel-send"
        if "recv" in wrapper or "read" in wrapper:
            return "kernel-recv"
        if "epoll_wait" in wrapper:
            return "kernel-epoll"
        return "kernel-other"
    if "nchan" in dso:
        return "nchan"
    if "nginx" in dso:
        return "nginx"
    if "libc" in dso:
        return "libc"
    return "other"


def part_of(frames):
    """The part a sample's call chain (innermost frame first) belongs to."""
    if not frames:
        return "other"
    symbol, dso = frames[0]
    if "kernel" in dso or dso.startswith("[k"):
        chain = " ".join(s for s, _ in frames)
        if "sendto" in chain or "sendmsg" in chain or "writev" in chain:
            return "kernel-send"
        return "kernel-other"
    if "libswiftCore" in dso or symbol.startswith("swift_"):
        return "runtime"
    if "libc" in dso:
        return "libc"
    if "Herald" in symbol:
        return "herald"
    if "NIO" in symbol:
        return "nio"
    return "other"


def samples(lines):
    """Each sample's frames as (symbol, dso), innermost first."""
    frames = []
    for line in lines:
        if not line.strip():
            if frames:
                yield frames
            frames = []
            continue
        if not line.startswith((" ", "\t")):
            continue  # the sample's header line
        fields = line.strip().split(" ", 1)
        if len(fields) < 2:
            continue
        rest = fields[1]
        dso = rest[rest.rfind("(") + 1:-1] if rest.endswith(")") else ""
        symbol = rest[:rest.rfind("(")].strip() if "(" in rest else rest
        frames.append((symbol, dso))
    if frames:
        yield frames


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--script", required=True, help="perf script output")
    parser.add_argument("--cpu-seconds", type=float, required=True, help="worker user + system seconds while recorded")
    parser.add_argument("--user-seconds", type=float, required=True)
    parser.add_argument("--deliveries", type=int, required=True, help="events the worker wrote while recorded")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--subscribers", type=int, required=True)
    parser.add_argument("--rate", type=int, required=True)
    parser.add_argument("--nginx", choices=["herald", "nchan"],
                        help="the process is that system's nginx worker (kind relay), not a Herald worker")
    args = parser.parse_args()
    parts, classify = (NGINX_PARTS, nginx_part_of) if args.nginx else (PARTS, part_of)
    counts = {part: 0 for part, _ in parts}
    with open(args.script, errors="replace") as script:
        for frames in samples(script):
            counts[classify(frames)] += 1
    total = sum(counts.values())
    if total == 0 or args.deliveries <= 0:
        sys.exit("bench_profile: no samples or no deliveries")
    per_delivery = args.cpu_seconds / args.deliveries * 1e6
    print(json.dumps({
        "kind": "relay" if args.nginx else "profile", "system": args.nginx or "herald", "subscribers": args.subscribers, "rate": args.rate,
        "seconds": args.seconds, "samples": total, "deliveries": args.deliveries,
        "cpuSeconds": args.cpu_seconds, "userSeconds": args.user_seconds,
        "microsecondsPerDelivery": per_delivery,
        "userMicrosecondsPerDelivery": args.user_seconds / args.deliveries * 1e6,
        "parts": [{"part": part, "description": text, "share": counts[part] / total,
                   "microsecondsPerDelivery": per_delivery * counts[part] / total}
                  for part, text in parts if counts[part]],
    }, sort_keys=True))


if __name__ == "__main__":
    main()
