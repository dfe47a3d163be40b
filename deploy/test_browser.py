#!/usr/bin/env python3
"""deploy/test_browser.py: Herald's demo page in a real browser (headless Chromium).

Drives Debian's chromium through chromium-driver with selenium, against a Herald that
deploy/run is already running (deploy/test-browser starts one and runs this):

  streaming  the page at / renders the rooms of the `rooms` init; a booking published with
             heraldctl shows within 2 s; killing (SIGKILL) the worker that holds the page's
             stream makes the page reconnect, and the next booking still shows; after a
             reload the page shows the board at once and resumes after its last event id;
             a room removed ({"Ember": null}) goes, and `state set` replaces the board.
  polling    (from a known board, set with `state set`) with /stream/ blocked in the
             browser, the page falls back to long polling and still shows bookings;
             unblocked, it goes back to streaming.
  tokens     (with --subscriber-key) herald.js on a private channel with a `token` callback
             whose first token expires in 4 s: the stream ends with `token-expired`, the feed
             asks for a second token and resumes after its last event; every event arrives once.
  https      (with --https-url: a second Herald with TLS and HTTP/2, its self-signed
             certificate trusted by its SPKI hash) the page loads over h2 and goes live;
             twelve more EventSources on it all get their init and the same event: on one
             HTTP/2 connection, where HTTP/1.1 would allow six per host. The same twelve on
             the plain-HTTP page: only five live (the page's own stream takes the sixth
             connection), the rest waiting, for as long as the twelve are open.

Every wait is bounded and waits for a condition in the page or in the hub, never a fixed
sleep. Screenshots go to --out (demo.png, demo-polling.png). Prints one line per step and
closes with "N passed, N failed, N skipped"; exits 1 if any step failed.

Usage: test_browser.py --url http://127.0.0.1:PORT/ --run-dir RUN_DIR --bin-dir BIN_DIR
                       [--https-url https://127.0.0.1:PORT/ --https-run-dir DIR --trust-spki B64]
                       [--out DIR] [--chromium /usr/bin/chromium]
                       [--chromedriver /usr/bin/chromedriver]
"""

import argparse
import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
import traceback

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

BOOKING_DEADLINE = 2.0  # seconds from publish to the page showing it (the bound)

# The board the polling case starts from (set with `state set`, whatever came before).
POLLING_BOARD = {
    "Aurora": {"busy": True, "by": "ana", "until": "15:30"},
    "Boreal": {"busy": True, "by": "marta", "until": "11:00"},
    "Cirrus": {"busy": False, "by": "", "until": ""},
    "Dune": {"busy": True, "by": "li", "until": "12:30"},
    "Ember": {"busy": False, "by": "", "until": ""},
    "Fjord": {"busy": False, "by": "", "until": ""},
}


class StepFailed(Exception):
    pass


# ------------------------------------------------------------------- the hub --


class Hub:
    """The running Herald, through heraldctl on its admin socket."""

    def __init__(self, run_dir, bin_dir):
        self.ctl_path = os.path.join(bin_dir, "heraldctl")
        self.env = dict(os.environ, HERALD_ADMIN_SOCKET=os.path.join(run_dir, "admin.sock"))

    def ctl(self, *args):
        done = subprocess.run([self.ctl_path, *args], env=self.env, capture_output=True,
                              text=True, timeout=10, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise StepFailed(f"heraldctl {' '.join(args)} failed ({done.returncode}): "
                             f"{done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def rooms(self):
        return json.loads(self.ctl("state", "get", "rooms"))

    def book(self, room, by, until):
        patch = {room: {"busy": True, "by": by, "until": until}}
        return self.ctl("publish", "rooms", json.dumps(patch), "--merge").strip()

    def free(self, room):
        patch = {room: {"busy": False, "by": "", "until": ""}}
        return self.ctl("publish", "rooms", json.dumps(patch), "--merge").strip()

    def workers_streaming_rooms(self):
        """[(id, pid)] of the workers that hold at least one stream of `rooms`."""
        stats = json.loads(self.ctl("stats", "--json"))
        return [(w["id"], w["pid"]) for w in stats.get("workers", [])
                if w.get("streamsByChannel", {}).get("rooms", 0) > 0]


# --------------------------------------------------------------- the page --

# One round trip: every card as {name: {busy, who, until}}, plus the connection pill.
READ_PAGE = """
const rooms = {};
for (const card of document.querySelectorAll('#board [data-room]')) {
  rooms[card.dataset.room] = { busy: card.dataset.busy === 'true',
    who: card.querySelector('.who').textContent, until: card.querySelector('.until').textContent };
}
const conn = document.getElementById('conn');
const feed = window.roomsFeed;
return { rooms, conn: { state: conn.dataset.state, transport: conn.dataset.transport || '',
  connects: Number(conn.dataset.connects || 0) },
  lastEventId: feed ? feed.lastEventId : '', resumedFrom: feed ? feed.status.resumedFrom || '' : '' };
"""


def read_page(driver):
    return driver.execute_script(READ_PAGE)


def wait_for(driver, timeout, what, condition):
    """Wait until condition(page) is truthy (page = read_page); return that value."""
    last = {}

    def check(d):
        last["page"] = read_page(d)
        return condition(last["page"])

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(check)
    except TimeoutException:
        raise StepFailed(f"timed out after {timeout} s waiting for {what}; the page showed "
                         f"{json.dumps(last.get('page'), sort_keys=True)[:600]}") from None


def wait_hub(timeout, what, condition):
    """Wait until condition() (a hub query) is truthy, polling every 50 ms; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise StepFailed(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)  # polling the hub's own figures: nothing to block on


def live(transport):
    return lambda p: p["conn"]["state"] == "live" and p["conn"]["transport"] == transport


def shows_booking(room, by):
    return lambda p: p["rooms"].get(room, {}).get("busy") is True and p["rooms"][room]["who"] == by


def book_and_see(hub, driver, room, by, until):
    """Publish a booking and wait (at most BOOKING_DEADLINE) until the page shows it."""
    page = read_page(driver)
    if shows_booking(room, by)(page):
        raise StepFailed(f"{room} already shows a booking by {by} before publishing it")
    start = time.monotonic()
    event_id = hub.book(room, by, until)
    wait_for(driver, BOOKING_DEADLINE, f"{room} booked by {by} (event {event_id})", shows_booking(room, by))
    return f"{room} booked by {by}, shown after {(time.monotonic() - start) * 1000:.0f} ms"


def free_and_see(hub, driver, room):
    """Publish that a room is free and wait (at most BOOKING_DEADLINE) until the page shows it."""
    start = time.monotonic()
    event_id = hub.free(room)
    wait_for(driver, BOOKING_DEADLINE, f"{room} to show free (event {event_id})",
             lambda p: p["rooms"].get(room, {}).get("busy") is False)
    return f"{room} freed, shown after {(time.monotonic() - start) * 1000:.0f} ms"


def matches_hub(hub):
    rooms = hub.rooms()
    if not isinstance(rooms, dict) or not rooms:
        raise StepFailed(f"the hub has no rooms to show (state get rooms: {rooms!r}); deploy/run seeds them")
    expected = {name: bool(room.get("busy")) for name, room in rooms.items()}
    return expected, (lambda p: {n: r["busy"] for n, r in p["rooms"].items()} == expected)


# ------------------------------------------------------------------ browser --


def start_browser(args):
    options = webdriver.ChromeOptions()
    options.binary_location = args.chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                 "--disable-background-networking", "--disable-component-update",
                 "--password-store=basic"):
        options.add_argument(flag)
    if args.trust_spki:
        # Trust exactly the test's certificate (its public key's hash), nothing else.
        options.add_argument(f"--ignore-certificate-errors-spki-list={args.trust_spki}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(args.chromedriver), options=options)
    driver.set_page_load_timeout(15)
    driver.set_script_timeout(10)
    return driver


def screenshot(driver, path):
    # Fit the window to the page so the whole board and the panels are in the picture.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(max(int(height) + 140, 600), 2000))
    if not driver.save_screenshot(path):
        raise StepFailed(f"could not save the screenshot {path}")
    return path


def console_tail(driver, lines=15):
    try:
        entries = driver.get_log("browser")
    except WebDriverException:
        return []
    return [f"    console {e.get('level')}: {e.get('message')}" for e in entries[-lines:]]


# -------------------------------------------------------------------- cases --


def streaming_case(args, hub):
    """Steps of the streaming case, each a (name, function(driver)) pair."""

    def init_renders(driver):
        driver.get(args.url)
        expected, same = matches_hub(hub)
        wait_for(driver, 10, f"the {len(expected)} rooms of the init ({sorted(expected)})", same)
        wait_for(driver, 10, "the page to say it is live over SSE", live("sse"))
        return f"{len(expected)} rooms shown, {sum(expected.values())} busy; connection live (sse)"

    def booking_shows(driver):
        return book_and_see(hub, driver, "Aurora", "ana", "15:30")

    def survives_worker_kill(driver):
        serving = wait_hub(5, "exactly one worker holding the page's stream",
                           lambda: (lambda w: w if len(w) == 1 else None)(hub.workers_streaming_rooms()))
        worker_id, pid = serving[0]
        before = read_page(driver)["conn"]["connects"]
        os.kill(pid, signal.SIGKILL)
        wait_for(driver, 15, "the page to reconnect after the worker was killed",
                 lambda p: p["conn"]["connects"] > before and live("sse")(p))
        now = wait_hub(10, "the reconnected stream on a live worker",
                       lambda: [w for w in hub.workers_streaming_rooms() if w[1] != pid])
        seen = book_and_see(hub, driver, "Cirrus", "omar", "14:00")
        return f"killed {worker_id} (pid {pid}); page reconnected to {now[0][0]} (pid {now[0][1]}); {seen}"

    def reload_resumes(driver):
        last = read_page(driver)["lastEventId"]
        if not last:
            raise StepFailed("the page has no last event id before the reload")
        driver.refresh()
        page = read_page(driver)
        if not page["rooms"]:
            raise StepFailed("after the reload the board was empty until the server answered")
        wait_for(driver, 10, f"the page to resume after {last}",
                 lambda p: live("sse")(p) and p["resumedFrom"] == last)
        seen = free_and_see(hub, driver, "Fjord")
        shot = screenshot(driver, os.path.join(args.out, "demo.png"))
        return f"board shown from storage at once, resumed after {last}; {seen}; screenshot {shot}"

    def removal_and_state_set(driver):
        hub.ctl("publish", "rooms", json.dumps({"Ember": None}), "--merge")
        wait_for(driver, BOOKING_DEADLINE, "Ember's card to go (merge patch null)", lambda p: "Ember" not in p["rooms"])
        board = {"Atlas": {"busy": True, "by": "zoe", "until": "09:30"}, "Borealis": {"busy": False, "by": "", "until": ""}}
        hub.ctl("state", "set", "rooms", json.dumps(board))
        wait_for(driver, BOOKING_DEADLINE, "the board replaced by state set (a fresh init)",
                 lambda p: sorted(p["rooms"]) == ["Atlas", "Borealis"] and shows_booking("Atlas", "zoe")(p))
        return "Ember removed by {\"Ember\": null}; state set replaced the board with Atlas and Borealis"

    return [("init renders the rooms", init_renders),
            ("a booking shows within 2 s", booking_shows),
            ("killing the serving worker: page reconnects, next booking shows", survives_worker_kill),
            ("a reload shows the board at once and resumes", reload_resumes),
            ("a removed room goes, and state set replaces the board", removal_and_state_set)]


def polling_case(args, hub):
    def falls_back(driver):
        hub.ctl("state", "set", "rooms", json.dumps(POLLING_BOARD))
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/stream/*"]})
        driver.get(args.url.rstrip("/") + "/?probe=2")
        expected, same = matches_hub(hub)
        wait_for(driver, 30, "the page to fall back to long polling", live("poll"))
        wait_for(driver, 5, "the rooms of the init, from /poll", same)
        return f"streams blocked: page live over long polling with {len(expected)} rooms"

    def polling_updates(driver):
        seen = [book_and_see(hub, driver, "Boreal", "lena", "13:00"), free_and_see(hub, driver, "Dune")]
        shot = screenshot(driver, os.path.join(args.out, "demo-polling.png"))
        return f"{'; '.join(seen)}; screenshot {shot}"

    def back_to_streaming(driver):
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
        wait_for(driver, 20, "the page to go back to streaming", live("sse"))
        return "streams unblocked: page back to SSE; " + book_and_see(hub, driver, "Fjord", "kai", "18:00")

    return [("with streams blocked the page falls back to long polling", falls_back),
            ("long polling shows bookings within 2 s", polling_updates),
            ("unblocked, the page switches back to streaming", back_to_streaming)]


def script_wait(driver, timeout, what, script, condition, describe=lambda value: value):
    """Run `script` every 50 ms until condition(its value) holds (at most `timeout` s); return
    that value, or fail naming `what` and describe(the last value)."""
    last = {}

    def check(d):
        last["value"] = d.execute_script(script)
        return condition(last["value"])

    try:
        WebDriverWait(driver, timeout, poll_frequency=0.05).until(check)
        return last["value"]
    except TimeoutException:
        raise StepFailed(f"timed out after {timeout} s waiting for {what}; saw "
                         f"{describe(last.get('value'))}") from None


def subscriber_token(key, channels, expires_in):
    """An HS256 JWT as an application would sign it for Herald's private channels."""
    def part(data):
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    signed = part({"alg": "HS256", "typ": "JWT"}) + "." + part(
        {"channels": channels, "exp": int(time.time() + expires_in), "sub": "browser-test"})
    mac = hmac.new(key.encode(), signed.encode(), hashlib.sha256).digest()
    return signed + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


# A feed on a private channel whose token callback hands out window.tokens one by one.
OPEN_PRIVATE_FEED = """
const [channel, tokens] = arguments;
window.tokens = tokens; window.tokenCalls = 0; window.notes = []; window.feedStates = [];
window.privateFeed = Herald.subscribe(channel, { storage: null, events: ['note'],
  onStatus: (status) => window.feedStates.push(status.state),
  token: () => { window.tokenCalls++; return Promise.resolve(window.tokens.shift()); },
  onEvent: (name, data, id) => window.notes.push([name, data, id]) });
"""
READ_PRIVATE_FEED = """
const f = window.privateFeed;
return { calls: window.tokenCalls, notes: window.notes, status: f ? f.status.state : '', states: window.feedStates };
"""


def tokens_case(args, hub):
    """herald.js's token refresh on a stream whose token expires."""
    channel = "private.browser"

    def feed_wait(driver, timeout, what, condition):
        return script_wait(driver, timeout, what, READ_PRIVATE_FEED, condition)

    def refreshes(driver):
        driver.get(args.url)
        tokens = [subscriber_token(args.subscriber_key, [channel], 4),
                  subscriber_token(args.subscriber_key, [channel], 300)]
        driver.execute_script(OPEN_PRIVATE_FEED, channel, tokens)
        feed_wait(driver, 10, "the private feed to be live", lambda f: f["status"] == "live")
        first = hub.ctl("publish", channel, "before expiry", "--event", "note").strip()
        feed_wait(driver, BOOKING_DEADLINE, f"note {first}", lambda f: len(f["notes"]) == 1)
        # token-expired at 4 s, then a second token and a resumed stream.
        feed_wait(driver, 12, "a second token after token-expired", lambda f: f["calls"] == 2 and f["status"] == "live")
        second = hub.ctl("publish", channel, "after refresh", "--event", "note").strip()
        feed = feed_wait(driver, BOOKING_DEADLINE, f"note {second}", lambda f: len(f["notes"]) >= 2)
        if [n[2] for n in feed["notes"]] != [first, second]:
            raise StepFailed(f"expected notes {first} and {second} once each, got {feed['notes']}")
        # Straight from token-expired to a new stream: never through a failed reconnect (the
        # expired token's 401), which is what EventSource alone would do.
        if "reconnecting" in feed["states"]:
            raise StepFailed(f"the feed went through a failed reconnect: states {feed['states']}")
        driver.execute_script("window.privateFeed.close()")
        return f"token callback called twice; notes {first} and {second} each once, the stream resumed after expiry"

    return [("a stream whose token expires: the feed gets a fresh token and resumes", refreshes)]


# Opens `count` EventSources on `channel` and records, per source, whether it has its init
# and the data of each later event; read back with READ_SOURCES.
OPEN_SOURCES = """
const [channel, count] = arguments;
window.extraSources = [];
for (let i = 0; i < count; i++) {
  const record = { init: false, data: [] };
  const source = new EventSource('/stream/' + channel);
  source.addEventListener('init', () => { record.init = true; });
  source.addEventListener('delta', (event) => { record.data.push(event.data); });
  window.extraSources.push({ source, record });
}
"""
READ_SOURCES = """
return (window.extraSources || []).map(({ source, record }) =>
  ({ state: source.readyState, init: record.init, data: record.data }));
"""
CLOSE_SOURCES = """
for (const { source } of window.extraSources || []) source.close();
window.extraSources = [];
"""
EXTRA_SOURCES = 12


def sources_wait(driver, timeout, what, condition):
    return script_wait(driver, timeout, what, READ_SOURCES, condition, lambda sources: [
        (s["state"], s["init"], len(s["data"])) for s in sources or []])


def https_case(args, hub):
    """Steps of the HTTPS case (a second Herald with TLS and HTTP/2)."""
    channel = "browser-h2"

    def page_over_h2(driver):
        driver.get(args.https_url)
        wait_for(driver, 10, "the page to say it is live over SSE", live("sse"))
        protocol = driver.execute_script(
            "return performance.getEntriesByType('navigation')[0].nextHopProtocol")
        if protocol != "h2":
            raise StepFailed(f"the page came over {protocol!r}, not h2")
        return f"{args.https_url} over {protocol} with the test's certificate; connection live (sse)"

    def twelve_live(driver):
        driver.execute_script(OPEN_SOURCES, channel, EXTRA_SOURCES)
        sources_wait(driver, 10, f"all {EXTRA_SOURCES} EventSources to have their init",
                     lambda sources: len(sources) == EXTRA_SOURCES and all(s["init"] for s in sources))
        start = time.monotonic()
        event_id = hub.ctl("publish", channel, "to all twelve").strip()
        sources_wait(driver, BOOKING_DEADLINE, f"event {event_id} on every EventSource",
                     lambda sources: all(s["data"] == ["to all twelve"] for s in sources))
        page = read_page(driver)
        if not live("sse")(page):
            raise StepFailed(f"the page's own stream is no longer live: {page['conn']}")
        driver.execute_script(CLOSE_SOURCES)
        return (f"{EXTRA_SOURCES} EventSources and the page's own stream open at once, each got its init "
                f"and event {event_id} ({(time.monotonic() - start) * 1000:.0f} ms after publishing)")

    def http1_stalls(driver):
        driver.get(args.url)
        wait_for(driver, 10, "the plain-HTTP page to say it is live over SSE", live("sse"))
        driver.execute_script(OPEN_SOURCES, channel, EXTRA_SOURCES)
        # Six connections per host: the page's stream and five of these.
        sources_wait(driver, 10, "five EventSources with their init",
                     lambda sources: sum(s["init"] for s in sources) >= 5)
        # An observation window, not a wait for a condition: the other seven must still be
        # waiting for a connection 2 s later (they would open in milliseconds if they could).
        time.sleep(2)
        sources = driver.execute_script(READ_SOURCES)
        opened = sum(s["init"] for s in sources)
        driver.execute_script(CLOSE_SOURCES)
        if opened != 5:
            raise StepFailed(f"{opened} of {EXTRA_SOURCES} EventSources live over HTTP/1.1, expected 5")
        return f"over HTTP/1.1 only 5 of {EXTRA_SOURCES} live after 2 s (the page's stream holds the sixth connection)"

    return [("the page loads over HTTP/2 with the test's certificate and goes live", page_over_h2),
            (f"{EXTRA_SOURCES} more EventSources on the page are all live at once over HTTP/2", twelve_live),
            (f"the same {EXTRA_SOURCES} over plain HTTP/1.1: 5 live, the rest stalled", http1_stalls)]


def run_case(name, steps, args, counts):
    driver = None
    try:
        driver = start_browser(args)
    except Exception as error:  # no browser: every step of the case fails
        print(f"FAIL {name}: could not start chromium: {error}", flush=True)
        counts["failed"] += len(steps)
        return
    try:
        failed = False
        for title, step in steps:
            label = f"{name}: {title}"
            if failed:
                print(f"SKIP {label} (an earlier step failed)", flush=True)
                counts["skipped"] += 1
                continue
            start = time.monotonic()
            try:
                detail = step(driver)
                print(f"ok   {label} ({time.monotonic() - start:.1f} s): {detail}", flush=True)
                counts["passed"] += 1
            except Exception as error:
                failed = True
                counts["failed"] += 1
                reason = str(error) if isinstance(error, StepFailed) else traceback.format_exc().strip()
                print(f"FAIL {label}: {reason}", flush=True)
                for line in console_tail(driver):
                    print(line, flush=True)
                try:
                    print(f"    screenshot of the failure: "
                          f"{screenshot(driver, os.path.join(args.out, f'failure-{name}.png'))}", flush=True)
                except Exception:  # the browser itself may be what failed
                    pass
    finally:
        driver.quit()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="the page, e.g. http://127.0.0.1:PORT/")
    parser.add_argument("--run-dir", required=True, help="deploy/run's run dir (admin.sock)")
    parser.add_argument("--bin-dir", required=True, help="dir holding heraldctl")
    parser.add_argument("--out", default=".", help="where screenshots go")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    parser.add_argument("--https-url", help="a Herald with TLS and HTTP/2, e.g. https://127.0.0.1:PORT/")
    parser.add_argument("--https-run-dir", help="that Herald's run dir (admin.sock)")
    parser.add_argument("--trust-spki", help="base64 SHA-256 of the certificate's public key, trusted")
    parser.add_argument("--subscriber-key", help="HERALD_SUBSCRIBER_KEY of the --url Herald (private.*)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)

    hub = Hub(args.run_dir, args.bin_dir)
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    run_case("streaming", streaming_case(args, hub), args, counts)
    run_case("polling", polling_case(args, hub), args, counts)
    if args.subscriber_key:
        run_case("tokens", tokens_case(args, hub), args, counts)
    if args.https_url:
        run_case("https", https_case(args, Hub(args.https_run_dir, args.bin_dir)), args, counts)
    print(f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped", flush=True)
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
