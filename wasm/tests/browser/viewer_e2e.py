"""End-to-end test of the viewer in headless Chromium, driven through chromedriver (WebDriver).

Usage: python3 viewer_e2e.py SITE_DIR SCREENSHOT.png
Serves SITE_DIR on 127.0.0.1, opens the page, waits for it, reads the scores and the merged
span lines shown, moves the "support" slider to 0.7, waits for the recomputation, reads the
scores again, saves a screenshot, and prints everything as JSON (the Rust test compares it with
native lamar). Needs chromium and chromedriver (Debian packages), stdlib only.
"""
import base64
import functools
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

site, screenshot = sys.argv[1], sys.argv[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


web_port = free_port()
server = http.server.ThreadingHTTPServer(("127.0.0.1", web_port), functools.partial(Quiet, directory=site))
threading.Thread(target=server.serve_forever, daemon=True).start()

driver_port = free_port()
driver = subprocess.Popen(["chromedriver", f"--port={driver_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = f"http://127.0.0.1:{driver_port}"


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["value"]


try:
    for _ in range(100):
        try:
            call("GET", "/status")
            break
        except OSError:
            time.sleep(0.1)
    profile = tempfile.mkdtemp()
    session = call("POST", "/session", {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
        "binary": os.environ.get("CHROMIUM", "/usr/bin/chromium"),
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000", f"--user-data-dir={profile}"]}}}})
    sid = session["sessionId"]

    def js(script, *args):
        return call("POST", f"/session/{sid}/execute/sync", {"script": script, "args": list(args)})

    def wait_ready(timeout=60):
        end = time.time() + timeout
        while time.time() < end:
            if js("return document.getElementById('status').textContent") == "ready":
                return
            time.sleep(0.1)
        raise SystemExit("the page never became ready: " + js("return document.body.innerText")[:2000])

    read = """
        const scores = {};
        for (const tr of document.querySelectorAll('#metrics tr[data-system]')) {
          const row = {};
          for (const td of tr.querySelectorAll('td[data-metric]')) row[td.dataset.metric] = td.dataset.value ? Number(td.dataset.value) : null;
          scores[tr.dataset.system] = row;
        }
        const doc = document.getElementById('doc-title').textContent;
        const merged = new Set(Array.from(document.querySelectorAll('#doc-text .bar[data-lane=merged]')).map(b => b.dataset.span));
        const errors = Array.from(document.querySelectorAll('#messages .error')).map(e => e.textContent);
        const rollouts = {groups: document.querySelectorAll('#rollout-groups details').length,
                          completions: document.querySelectorAll('#rollout-groups tbody tr').length,
                          tags: document.querySelectorAll('#rollout-groups .tag').length,
                          summary: document.getElementById('rollout-summary').textContent};
        const retrieval = {queries: document.querySelectorAll('#retrieval-query option').length,
                           titles: Array.from(document.querySelectorAll('#retrieval-panes h3')).map(e => e.textContent),
                           texts: Array.from(document.querySelectorAll('#retrieval-panes pre')).map(e => e.textContent),
                           missing: document.querySelectorAll('#retrieval-panes pre.missing').length};
        const categories = Array.from(document.querySelectorAll('#categories > span')).map(e => e.textContent);
        const lane_names = Array.from(document.querySelectorAll('#legend span')).map(e => e.textContent);
        const bar = document.querySelector('#doc-text .bar[data-lane=merged]');
        const bar_title = bar ? bar.title : '';
        return {scores, doc, merged_spans: merged.size, errors, rollouts, retrieval, categories, lane_names, bar_title, documents: document.querySelectorAll('#doc-list li').length};
    """
    call("POST", f"/session/{sid}/url", {"url": f"http://127.0.0.1:{web_port}/index.html"})
    started = time.time()
    wait_ready()
    before = js(read)
    before["load_seconds"] = time.time() - started
    # Move the slider as a user would (value + input event), then wait for the new scores.
    old = before["scores"].get("ensemble:scc", {}).get("final")
    js("""const s = document.getElementById('min_cluster_support');
          s.value = '0.7'; s.dispatchEvent(new Event('input', {bubbles: true}));""")
    end = time.time() + 30
    while time.time() < end:
        time.sleep(0.2)
        after = js(read)
        if js("return document.getElementById('status').textContent") == "ready" and \
                after["scores"].get("ensemble:scc", {}).get("final") != old:
            break
    # Hover a merged span line: the details panel explains its cluster.
    details = js("""const bar = document.querySelector('#doc-text .bar[data-lane=merged]');
                    if (!bar) return '';
                    bar.dispatchEvent(new MouseEvent('mouseenter'));
                    return document.getElementById('details').textContent;""")
    # In-browser timing of one consensus + scoring of the merged result (what a slider move costs).
    timing = js("""const s = JSON.stringify(settings());
                   const best = (f) => { let b = Infinity; for (let i = 0; i < 5; i++) { const t = performance.now(); f(); b = Math.min(b, performance.now() - t); } return b; };
                   return {merge_ms: best(() => state.viewer.merge(s)),
                           evaluate_ms: best(() => state.viewer.evaluate(s, false)),
                           page_refresh_ms: best(() => refresh(false))};""")
    png = call("GET", f"/session/{sid}/screenshot")
    os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
    with open(screenshot, "wb") as f:
        f.write(base64.b64decode(png))
    # Hovering a lane's name dims every other lane's lines.
    focus = js("""const tag = document.querySelector('#legend span[data-lane=merged]');
                  tag.dispatchEvent(new MouseEvent('mouseenter'));
                  const bars = Array.from(document.querySelectorAll('#doc-text .bar'));
                  const shown = bars.filter(b => !b.classList.contains('dim'));
                  const result = {bars: bars.length, shown: shown.length,
                                  shown_lanes: Array.from(new Set(shown.map(b => b.dataset.lane)))};
                  tag.dispatchEvent(new MouseEvent('mouseleave'));
                  result.dim_after = document.querySelectorAll('#doc-text .bar.dim').length;
                  return result;""")
    # Bad input: a malformed file, spans beyond a document's end, an unknown file type. The page
    # must say what is wrong and keep working.
    bad = js("""addFile('broken.json', '[{"file_name": ');
                  addFile('beyond.json', JSON.stringify([{file_name: state.current,
                      predictions: [{start_offset: 0, end_offset: 10000000, category: 5}]}]));
                  refresh(true);
                  addFile('notes.pdf', 'x');
                  addFile('bad_rollouts.jsonl', '{"step": 1}');
                  const texts = (sel) => Array.from(document.querySelectorAll(sel)).map(e => e.textContent);
                  return {errors: texts('#messages .error'), warnings: texts('#messages .warning'),
                          documents: document.querySelectorAll('#doc-list li').length,
                          lanes: document.querySelectorAll('#legend span').length,
                          status: document.getElementById('status').textContent};""")
    call("DELETE", f"/session/{sid}")
    print(json.dumps({"before": before, "after": after, "details": details, "focus": focus, "timing": timing, "bad": bad}))
finally:
    driver.terminate()
    server.shutdown()
