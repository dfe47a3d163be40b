"""deploy/bench_report.py: BENCHMARKS.md and bench-plot.png from deploy/bench's results.

Reads bench-results.jsonl (one herald-bench --json report per line, plus "system",
"nginxWorkers", and "kind": matrix, publish (with "row"), many-channel, or profile and relay
(from deploy/bench_profile.py)), and writes the tables of both systems' figures with their ratios, the targets of the comparison, the
machine and the command, and the plot of p99 latency against delivered events per second.
Parts missing from a partial run (deploy/bench --only) are left out.
"""
import argparse
import json
import os
import platform
import subprocess
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def run(command):
    """What `command` printed: its stdout, or its stderr if it printed nothing else (nginx -v)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError:
        return "unknown"
    return done.stdout.strip() or done.stderr.strip()


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as meminfo:
        total_kb = int(meminfo.readline().split()[1])
    return [
        f"CPU: {os.cpu_count()} x {model}",
        f"Memory: {total_kb / 1024 / 1024:.1f} GiB; open files per process: {run(['bash', '-c', 'ulimit -Hn'])} (hard)",
        f"Kernel: {platform.release()}",
        f"nginx: {run(['/usr/sbin/nginx', '-v']).replace('nginx version: ', '')}; "
        f"nchan: libnginx-mod-nchan {run(['dpkg-query', '-W', '-f=${Version}', 'libnginx-mod-nchan'])}",
        f"Swift: {(run(['swift', '--version']).splitlines() or ['unknown'])[0]}",
        f"Herald: commit {run(['git', 'rev-parse', '--short', 'HEAD'])}"
        # The run's own outputs are rewritten while it runs: they are not changes to what was measured.
        + (" (with uncommitted changes)" if run(['git', 'status', '--porcelain', '--untracked-files=no', '--', '.',
                                                 ':!BENCHMARKS.md', ':!bench-plot.png', ':!bench-results.jsonl'])
           else ""),
    ]


def kb_per_subscriber(report):
    memory = report["memoryKilobytes"]
    added = sum(value - memory["before"].get(name, 0) for name, value in memory["connected"].items())
    return added / report["subscribers"]


def cpu_share(report, prefix):
    flow = max(report["flowSeconds"], 0.001)
    return sum(seconds for name, seconds in report["cpuSeconds"].items() if name.startswith(prefix)) / flow


def ratio(herald, nchan):
    return f"{herald / nchan:.2f}" if nchan else "n/a"


def clean(report):
    return report["lost"] == 0 and report["duplicates"] == 0 and report["ended"] == 0


def met(ok, figure):
    """The "met" cell: yes/no with the ratio to the target."""
    return f"{'yes' if ok else 'no'} ({figure:.2f})"


def publish_clean(report):
    """Every answer 2xx, no transport error, every acknowledged event delivered exactly once."""
    delivery = report["delivery"]
    return not report["refusals"] and report["transportErrors"] == 0 and delivery["missing"] == 0 \
        and delivery["duplicated"] == 0


PUBLISH_ROWS = (
    ("http", "HTTP, one event per POST, closed loop"),
    ("http-paced", "HTTP, paced at half the closed-loop rate"),
    ("http-batch", "HTTP NDJSON batches (`POST /publish`)"),
    ("admin", "admin socket, pipelined on one connection"),
)


def publishing_section(out, publish):
    """The publishing table (Herald vs nchan, ratio) and its targets."""
    any_row = next(iter(publish.values()))
    out.append("## Publishing")
    out.append("")
    out.append(f"`herald-bench --publish-throughput`: {any_row['publishers']} publishers on keep-alive HTTP/1.1 "
               f"connections (as wrk), each sending its next publish as soon as the previous one is answered, for "
               f"{any_row['seconds']:.0f} s (the paced rows: at half the closed-loop rate); Herald's batches are "
               f"{publish.get(('herald', 'http-batch'), {}).get('batchSize') or 'n/a'} events; the admin row is one "
               f"connection with {publish.get(('herald', 'admin'), {}).get('window') or 'n/a'} publishes in flight. "
               "Herald runs with `deploy/run`'s defaults (the default journal policy); each row on a fresh server "
               "with 1 nginx worker. One stream on the channel checks that every acknowledged event arrived "
               "exactly once. Acknowledgement latency runs from sending a publish to its answer. Ratios are "
               "Herald / nchan.")
    out.append("")
    out.append("| transport | system | events/s | ack p50 ms | ack p99 ms | ack max ms | refused / transport errors "
               "| delivered / missing / duplicated | server CPU |")
    out.append("|---|---|---|---|---|---|---|---|---|")
    for row, label in PUBLISH_ROWS:
        for system in ("herald", "nchan"):
            r = publish.get((system, row))
            if not r:
                continue
            ack, check = r["acknowledgedMicroseconds"], r["delivery"]
            refused = sum(r["refusals"].values())
            cpu = sum(r["cpuSeconds"].values()) / max(r["flowSeconds"], 0.001)
            pace = f" ({r['rate']:,}/s)" if r.get("rate") else ""
            out.append(f"| {label}{pace} | {'Herald' if system == 'herald' else 'nchan'} | {r['eventsPerSecond']:,.0f} "
                       f"| {ack['p50'] / 1000:.2f} | {ack['p99'] / 1000:.2f} | {ack['max'] / 1000:.2f} "
                       f"| {refused} / {r['transportErrors']} "
                       f"| {check['delivered']:,} / {check['missing']} / {check['duplicated']} | {cpu:.0%} |")
        h, n = publish.get(("herald", row)), publish.get(("nchan", row))
        if h and n:
            out.append(f"| | **ratio** | **{ratio(h['eventsPerSecond'], n['eventsPerSecond'])}** "
                       f"| {ratio(h['acknowledgedMicroseconds']['p50'], n['acknowledgedMicroseconds']['p50'])} "
                       f"| {ratio(h['acknowledgedMicroseconds']['p99'], n['acknowledgedMicroseconds']['p99'])} | | | | |")
    out.append("")
    out.append("### Publishing targets")
    out.append("")
    out.append("| target | Herald | reference | met (ratio to target) |")
    out.append("|---|---|---|---|")
    h, n = publish.get(("herald", "http")), publish.get(("nchan", "http"))
    if h and n:
        ok = h["eventsPerSecond"] >= n["eventsPerSecond"] and publish_clean(h)
        out.append(f"| HTTP publishes/s ≥ nchan's, every answer 2xx, every acknowledged event delivered exactly once "
                   f"| {h['eventsPerSecond']:,.0f}/s{'' if publish_clean(h) else ' (not clean)'} "
                   f"| nchan {n['eventsPerSecond']:,.0f}/s "
                   f"| {met(ok, h['eventsPerSecond'] / max(n['eventsPerSecond'], 1e-9))} |")
    batch = publish.get(("herald", "http-batch"), {}).get("batchSize") or 0
    for row, floor, label in (("admin", 20_000, "Admin publishes pipelined on one connection ≥ 20,000/s"),
                              ("http-batch", 100_000,
                               f"Batch publishing ≥ 100,000 events/s in {batch:,}-event batches (target: 1,000)")):
        r = publish.get(("herald", row))
        if r:
            ok = r["eventsPerSecond"] >= floor and publish_clean(r)
            out.append(f"| {label} | {r['eventsPerSecond']:,.0f}/s{'' if publish_clean(r) else ' (not clean)'} "
                       f"| {floor:,}/s | {met(ok, r['eventsPerSecond'] / floor)} |")
    r = publish.get(("herald", "http-paced"))
    if r:
        p99 = r["acknowledgedMicroseconds"]["p99"] / 1000
        out.append(f"| Acknowledgement p99 at half of the highest HTTP rate ({r['rate']:,}/s) ≤ 20 ms | {p99:.2f} ms "
                   f"| 20 ms | {met(p99 <= 20, p99 / 20)} |")
    out.append("")


def many_channel_section(out, many):
    """The many-channel table (Herald vs nchan, ratio) and its targets."""
    any_row = next(iter(many.values()))
    out.append("## Many channels")
    out.append("")
    out.append(f"The notification workload: {any_row['subscribers']:,} subscribers, each streaming a channel of its "
               f"own; {any_row['rate']:,} events per second published over keep-alive HTTP for "
               f"{any_row['events'] // any_row['rate']} s, event k to channel k mod {any_row['subscribers']:,}, so "
               "each event has exactly one recipient. Server CPU per delivered event: CPU seconds of every server "
               "process while events flowed, divided by deliveries. Ratios are Herald / nchan.")
    out.append("")
    out.append("| system | nginx | delivered/s | p50 ms | p90 ms | p99 ms | max ms | server CPU µs/event "
               "| lost/dup/misrouted/ended | publish refused / errors |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for system in ("herald", "nchan"):
        r = many.get(system)
        if not r:
            continue
        lat = r["latencyMilliseconds"]
        cpu = r.get("cpuMicrosecondsPerDelivery")
        out.append(f"| {'Herald' if system == 'herald' else 'nchan'} | {r['nginxWorkers']} "
                   f"| {r['deliveredPerSecond']:,.0f} | {lat['p50']:.1f} | {lat['p90']:.1f} | {lat['p99']:.1f} "
                   f"| {lat['max']:.1f} | {cpu:.1f} | {r['lost']}/{r['duplicates']}/{r.get('misrouted', 0)}/{r['ended']} "
                   f"| {sum(r.get('publishRefusals', {}).values())} / {r.get('publishTransportErrors', 0)} |"
                   if cpu is not None else
                   f"| {'Herald' if system == 'herald' else 'nchan'} | {r['nginxWorkers']} | … | | | | | n/a | | |")
    h, n = many.get("herald"), many.get("nchan")
    if h and n:
        hp, np_ = h["latencyMilliseconds"]["p99"], n["latencyMilliseconds"]["p99"]
        hc, nc = h.get("cpuMicrosecondsPerDelivery") or 0, n.get("cpuMicrosecondsPerDelivery") or 0
        out.append(f"| **ratio** | | {ratio(h['deliveredPerSecond'], n['deliveredPerSecond'])} | | | **{ratio(hp, np_)}** "
                   f"| | **{ratio(hc, nc)}** | | |")
        out.append("")
        out.append("### Many-channel targets")
        out.append("")
        out.append("| target | Herald | nchan | met (Herald / nchan) |")
        out.append("|---|---|---|---|")
        out.append(f"| p99 within 1.25 × nchan's | {hp:.1f} ms | {np_:.1f} ms "
                   f"| {met(hp <= 1.25 * np_, hp / np_ if np_ else float('inf'))} |")
        out.append(f"| server CPU per delivered event within 1.25 × nchan's | {hc:.1f} µs | {nc:.1f} µs "
                   f"| {met(nc > 0 and hc <= 1.25 * nc, hc / nc if nc else float('inf'))} |")
    out.append("")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--results", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--started", required=True)
    parser.add_argument("--command", required=True)
    args = parser.parse_args()

    runs = defaultdict(dict)
    publish = {}  # (system, row) -> report
    many = {}  # system -> report
    profile = None
    relays = {}  # system -> nginx profile report
    with open(args.results) as results:
        for line in results:
            report = json.loads(line)
            kind = report.get("kind", "matrix")
            if kind == "publish":
                publish[(report["system"], report["row"])] = report
            elif kind == "many-channel":
                many[report["system"]] = report
            elif kind == "profile":
                profile = report
            elif kind == "relay":
                relays[report["system"]] = report
            else:
                runs[(report["subscribers"], report["rate"])][report["system"]] = report
    keys = sorted(key for key, pair in runs.items() if "herald" in pair and "nchan" in pair)
    any_report = runs[keys[0]]["herald"] if keys else None

    out = []
    out.append("# Herald and nchan, measured side by side")
    out.append("")
    out.append(f"Written by `deploy/bench` from one run started {args.started}; every figure below comes from "
               "that run. Regenerate it with the command below on a quiet machine.")
    out.append("")
    out.append("```")
    out.append(args.command)
    out.append("```")
    out.append("")
    out.append("## Setup")
    out.append("")
    for line in machine():
        out.append(f"- {line}")
    if any_report:
        out.append(f"- Load: `herald-bench` on the same machine, over loopback: subscribers connect at up to 50,000 per "
               f"second, then {any_report['payloadBytes']}-byte events are published over HTTP at the given rate "
                   f"for {any_report['events'] // any_report['rate']} s; each carries its send time (CLOCK_MONOTONIC), "
                   "and latency is measured from just before the publish request to the subscriber's read.")
    out.append("- Herald: `deploy/run` with the hub, 2 workers and nginx (the repository's `nginx.conf`), "
               "publishing with `POST /publish/bench`. nchan: a private nginx with `deploy/nchan.conf` "
               "(`nchan_publisher` and `nchan_subscriber eventsource`). Both get the same number of nginx worker "
               "processes in a row (the column `nginx`).")
    out.append("- Memory is the resident memory (RSS) added while the subscribers connected, over every process "
               "of the system (Herald: hub, workers, nginx master and workers; nchan: nginx master and workers), "
               "divided by the subscribers.")
    out.append("")
    if keys:
        matrix_sections(out, runs, keys, profile)
    if profile:
        profile_section(out, profile)
    if relays:
        relay_section(out, relays)
    if publish:
        publishing_section(out, publish)
    if many:
        many_channel_section(out, many)
    if keys:
        out.append("## Plot")
        out.append("")
        out.append("![p99 latency against delivered events per second](bench-plot.png)")
        out.append("")

    with open(os.path.join(args.output, "BENCHMARKS.md"), "w") as markdown:
        markdown.write("\n".join(out))
    if keys:
        plot(runs, keys, args.output)


def cpu_per_delivery(report):
    """Server CPU microseconds per delivered event (every server process), or None."""
    return report.get("cpuMicrosecondsPerDelivery")


def delivery_targets(out, runs, profile):
    """The targets of the worker's delivery cost (issue 13), where the run has their rows."""
    rows = []
    if (5000, 20) in runs and len(runs[(5000, 20)]) == 2:
        h, n = runs[(5000, 20)]["herald"], runs[(5000, 20)]["nchan"]
        hc, nc = cpu_per_delivery(h), cpu_per_delivery(n)
        if hc is not None and nc:
            rows.append(f"| server CPU per delivered event at 5,000 × 20/s, every process | {hc:.1f} µs | {nc:.1f} µs "
                        f"| ≤ nchan's | {'yes' if hc <= nc else 'no'} ({ratio(hc, nc)}) |")
        hm, nm = kb_per_subscriber(h), kb_per_subscriber(n)
        rows.append(f"| memory per subscriber at 5,000, all processes | {hm:.1f} KB | {nm:.1f} KB | ≤ 1.1 × nchan's "
                    f"| {'yes' if hm <= 1.1 * nm else 'no'} ({ratio(hm, nm)}) |")
    if (1000, 20) in runs and len(runs[(1000, 20)]) == 2:
        h, n = runs[(1000, 20)]["herald"], runs[(1000, 20)]["nchan"]
        for q in ("p50", "p99"):
            hq, nq = h["latencyMilliseconds"][q], n["latencyMilliseconds"][q]
            rows.append(f"| {q} at 1,000 × 20/s | {hq:.1f} ms | {nq:.1f} ms | ≤ 1.3 × nchan's "
                        f"| {'yes' if hq <= 1.3 * nq else 'no'} ({ratio(hq, nq)}) |")
    if profile:
        user = profile["userMicrosecondsPerDelivery"]
        rows.append(f"| worker userland per delivery (profile row, below) | {user:.2f} µs | | ≤ 1 µs "
                    f"| {'yes' if user <= 1 else 'no'} |")
    if not rows:
        return
    out.append("### Delivery targets")
    out.append("")
    out.append("| figure | Herald | nchan | target | met |")
    out.append("|---|---|---|---|---|")
    out.extend(rows)
    out.append("")


def profile_section(out, profile):
    """Where one worker's time per delivered event goes, from the perf profile row."""
    out.append("## Where a delivery's time goes")
    out.append("")
    out.append(f"Herald alone with one worker: {profile['subscribers']:,} subscribers on one channel, "
               f"{profile['rate']} events/s. `perf record -e cpu-clock -F 2000 -g` sampled the worker for "
               f"{profile['seconds']:g} s while it wrote {profile['deliveries']:,} events "
               f"({profile['samples']:,} samples); its CPU over the same window (/proc, user + system) was "
               f"{profile['cpuSeconds']:.2f} s, {profile['microsecondsPerDelivery']:.2f} µs per delivery, of which "
               f"user {profile['userMicrosecondsPerDelivery']:.2f} µs. A sample counts for the part of its innermost "
               "frame; kernel samples by the system call on their chain.")
    out.append("")
    out.append("| part | share of samples | µs per delivery |")
    out.append("|---|---|---|")
    for part in profile["parts"]:
        out.append(f"| {part['description']} | {part['share']:.1%} | {part['microsecondsPerDelivery']:.2f} |")
    out.append("")


def relay_section(out, relays):
    """Where each system's nginx worker spends its time per delivery, from the relay profile rows."""
    first = next(iter(relays.values()))
    out.append("## Where nginx's time per delivery goes")
    out.append("")
    out.append(f"Each system with one nginx worker, {first['subscribers']:,} subscribers on one channel at "
               f"{first['rate']} events/s (Herald with its 2 workers). `perf record -e cpu-clock -F 2000 -g` sampled "
               f"the nginx worker for {first['seconds']:g} s from the start of publishing; its CPU over that window "
               "(/proc, user + system) is divided by the deliveries the schedule makes in it (subscribers × rate × "
               "seconds). A kernel sample counts for the libc call that entered the kernel. Herald's nginx relays "
               "each event: it reads the record from the worker's socket, then writes it to the client; nchan's "
               "nginx writes events it holds itself.")
    out.append("")
    systems = [system for system in ("herald", "nchan") if system in relays]
    out.append("| part | " + " | ".join(f"{'Herald' if s == 'herald' else 'nchan'} µs" for s in systems) + " |")
    out.append("|---|" + "---|" * len(systems))
    descriptions = {}
    for system in systems:
        for part in relays[system]["parts"]:
            descriptions.setdefault(part["part"], part["description"])
    for part, description in descriptions.items():
        cells = []
        for system in systems:
            found = next((p for p in relays[system]["parts"] if p["part"] == part), None)
            cells.append(f"{found['microsecondsPerDelivery']:.2f}" if found else "0")
        out.append(f"| {description} | " + " | ".join(cells) + " |")
    out.append("| **nginx worker, all** | " + " | ".join(
        f"**{relays[s]['microsecondsPerDelivery']:.2f}**" for s in systems) + " |")
    out.append("| of which user (/proc) | " + " | ".join(
        f"{relays[s]['userMicrosecondsPerDelivery']:.2f}" for s in systems) + " |")
    out.append("")


def memory_section(out, runs, keys):
    """The resident memory each group of processes added per subscriber, by matrix row."""
    def groups(report):
        memory = report["memoryKilobytes"]
        added = defaultdict(float)
        for name, value in memory["connected"].items():
            group = "nginx" if name.startswith("nginx") else "workers" if name.startswith("worker") else name
            added[group] += (value - memory["before"].get(name, 0)) / report["subscribers"]
        return added
    out.append("## Where a subscriber's memory goes")
    out.append("")
    out.append("Resident memory each group of processes added while the subscribers connected, per subscriber "
               "(rows at 20 events/s; the rate does not change it).")
    out.append("")
    out.append("| subscribers | Herald nginx | Herald workers | Herald hub | Herald, all | nchan nginx |")
    out.append("|---|---|---|---|---|---|")
    for subscribers, rate in keys:
        if rate != min(r for _, r in keys):
            continue
        h, n = groups(runs[(subscribers, rate)]["herald"]), groups(runs[(subscribers, rate)]["nchan"])
        out.append(f"| {subscribers:,} | {h['nginx']:.1f} KB | {h['workers']:.1f} KB | {h['hub']:.1f} KB "
                   f"| {sum(h.values()):.1f} KB | {n['nginx']:.1f} KB |")
    out.append("")


def matrix_sections(out, runs, keys, profile=None):
    """The matrix's results, targets and CPU tables."""
    out.append("## Results")
    out.append("")
    out.append("Ratios are Herald / nchan (below 1: Herald is lower). Delivered: events received per second over "
               "all subscribers while publishing. Lost/dup/ended: events never received, received twice, and "
               "streams that ended during the run.")
    out.append("")
    out.append("| subscribers × events/s | nginx | system | delivered/s | p50 ms | p90 ms | p99 ms | max ms | "
               "KB/subscriber | connect s | lost/dup/ended |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for key in keys:
        pair = runs[key]
        for system in ("herald", "nchan"):
            r = pair[system]
            lat = r["latencyMilliseconds"]
            out.append(f"| {key[0]:,} × {key[1]} | {r['nginxWorkers']} | {'Herald' if system == 'herald' else 'nchan'} "
                       f"| {r['deliveredPerSecond']:,.0f} | {lat['p50']:.1f} | {lat['p90']:.1f} | {lat['p99']:.1f} "
                       f"| {lat['max']:.1f} | {kb_per_subscriber(r):.1f} | {r['connectSeconds']:.2f} "
                       f"| {r['lost']}/{r['duplicates']}/{r['ended']} |")
        h, n = pair["herald"], pair["nchan"]
        out.append(f"| | | **ratio** | | {ratio(h['latencyMilliseconds']['p50'], n['latencyMilliseconds']['p50'])} "
                   f"| | **{ratio(h['latencyMilliseconds']['p99'], n['latencyMilliseconds']['p99'])}** | | "
                   f"**{ratio(kb_per_subscriber(h), kb_per_subscriber(n))}** "
                   f"| **{ratio(h['connectSeconds'], n['connectSeconds'])}** | |")
    out.append("")

    # The targets of the comparison (issue 5).
    def kept_up(report):
        # Publishing kept its schedule (within 5%): the row's offered rate was really offered.
        return report["acknowledged"] == report["events"] and \
            report["publishSeconds"] <= 1.05 * report["events"] / report["rate"]

    def best_rate(system):
        # The offered rate (subscribers × events/s) of the best row that held: p99 ≤ 100 ms,
        # nothing lost or doubled, and the publishing schedule kept.
        rates = [k[0] * k[1] for k in keys
                 if runs[k][system]["latencyMilliseconds"]["p99"] <= 100 and clean(runs[k][system])
                 and kept_up(runs[k][system])]
        return max(rates) if rates else 0

    out.append("## Targets")
    out.append("")
    out.append("| figure | Herald | nchan | target | met |")
    out.append("|---|---|---|---|---|")
    hb, nb = best_rate("herald"), best_rate("nchan")
    out.append(f"| highest delivered rate (subscribers × events/s) with p99 ≤ 100 ms, nothing lost and the "
               f"publishing schedule kept, of the rows above | {hb:,.0f}/s "
               f"| {nb:,.0f}/s | at least nchan's | {'yes' if hb >= nb and hb > 0 else 'no'} |")
    reference = (5000, 20) if (5000, 20) in runs and len(runs[(5000, 20)]) == 2 else None
    if reference:
        h, n = runs[reference]["herald"], runs[reference]["nchan"]
        hp, np_ = h["latencyMilliseconds"]["p99"], n["latencyMilliseconds"]["p99"]
        out.append(f"| p99 at 5,000 subscribers × 20/s | {hp:.1f} ms | {np_:.1f} ms | ≤ 1.5 × nchan's "
                   f"| {'yes' if hp <= 1.5 * np_ else 'no'} ({ratio(hp, np_)}) |")
        hm, nm = kb_per_subscriber(h), kb_per_subscriber(n)
        out.append(f"| memory per subscriber at 5,000, all processes | {hm:.1f} KB | {nm:.1f} KB | ≤ 1.25 × nchan's "
                   f"| {'yes' if hm <= 1.25 * nm else 'no'} ({ratio(hm, nm)}) |")
        hc, nc = h["connectSeconds"], n["connectSeconds"]
        out.append(f"| time to connect 5,000 subscribers | {hc:.2f} s | {nc:.2f} s | ≤ 2 × nchan's "
                   f"| {'yes' if hc <= 2 * nc else 'no'} ({ratio(hc, nc)}) |")
    lost = sum(runs[k]["herald"]["lost"] for k in keys)
    dup = sum(runs[k]["herald"]["duplicates"] for k in keys)
    nlost = sum(runs[k]["nchan"]["lost"] for k in keys)
    ndup = sum(runs[k]["nchan"]["duplicates"] for k in keys)
    out.append(f"| lost / duplicated events, all rows | {lost} / {dup} | {nlost} / {ndup} | 0 / 0 "
               f"| {'yes' if lost == 0 and dup == 0 else 'no'} |")
    out.append("")
    delivery_targets(out, runs, profile)

    out.append("## Where the CPU goes")
    out.append("")
    out.append("Share of one core each process used while events flowed (first publish to the last delivery or "
               "the drain timeout), server CPU per delivered event (CPU seconds of every server process over that "
               "time, divided by the deliveries), and how busy each subscriber process of the client was. A client "
               "process near 100% would be the bottleneck; the client processes share the machine's two cores with "
               "the server.")
    out.append("")
    out.append("| subscribers × events/s | Herald nginx | Herald workers | Herald hub | nchan nginx "
               "| server µs/event Herald | nchan | ratio | client (Herald run) | client (nchan run) |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")

    def micro(value):
        return f"{value:.1f}" if value is not None else "n/a"

    for key in keys:
        h, n = runs[key]["herald"], runs[key]["nchan"]
        hc, nc = cpu_per_delivery(h), cpu_per_delivery(n)
        out.append(f"| {key[0]:,} × {key[1]} | {cpu_share(h, 'nginx'):.0%} | {cpu_share(h, 'worker'):.0%} "
                   f"| {cpu_share(h, 'hub'):.0%} | {cpu_share(n, 'nginx'):.0%} "
                   f"| {micro(hc)} | {micro(nc)} | {ratio(hc, nc) if hc is not None and nc else 'n/a'} "
                   f"| {' '.join(f'{b:.0%}' for b in h['clientBusy'])} | {' '.join(f'{b:.0%}' for b in n['clientBusy'])} |")
    out.append("")
    memory_section(out, runs, keys)


def plot(runs, keys, output):
    """bench-plot.png: the matrix's p99 against delivered events per second."""
    figure, axes = plt.subplots(figsize=(8, 5))
    for system, color, marker in (("herald", "tab:blue", "o"), ("nchan", "tab:orange", "s")):
        points = sorted((runs[k][system]["deliveredPerSecond"], runs[k][system]["latencyMilliseconds"]["p99"], k)
                        for k in keys)
        axes.plot([p[0] for p in points], [p[1] for p in points], marker=marker, color=color, linestyle="",
                  label="Herald" if system == "herald" else "nchan")
        for x, y, k in points:
            axes.annotate(f"{k[0] // 1000}k×{k[1]}", (x, y), textcoords="offset points", xytext=(5, 4),
                          fontsize=8, color=color)
    axes.axhline(100, color="gray", linestyle="--", linewidth=0.8)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("delivered events per second (all subscribers)")
    axes.set_ylabel("p99 latency, ms")
    axes.set_title("Herald and nchan on one 2-core machine (deploy/bench)")
    axes.legend()
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(os.path.join(output, "bench-plot.png"), dpi=110)


if __name__ == "__main__":
    main()
