"""Long work runs with the GIL released: other Python threads keep running meanwhile."""

import json
import threading
import time

import lamar

from conftest import GOLDEN

ROWS = [json.loads(line) for line in (GOLDEN / "rewards" / "inputs.jsonl").read_text().splitlines()]


def test_rewards_release_the_gil():
    completions = [r["completion"] for r in ROWS] * 10
    raw_text = [r["raw_text"] for r in ROWS] * 10
    started, finished = threading.Event(), threading.Event()
    took = []

    def work():
        started.set()
        begin = time.perf_counter()
        lamar.reward_fidelity(completions, raw_text=raw_text)
        took.append(time.perf_counter() - begin)
        finished.set()

    worker = threading.Thread(target=work)
    worker.start()
    started.wait()
    # While the worker is inside lamar, this thread must keep getting turns: the longest pause
    # between two of its steps stays far below the worker's time (with the GIL held, one pause
    # would last the whole native call).
    last, longest = time.perf_counter(), 0.0
    while not finished.is_set():
        now = time.perf_counter()
        longest, last = max(longest, now - last), now
    worker.join()
    assert took[0] > 0.2, f"the work took only {took[0]:.3f} s: too short to tell"
    assert longest < took[0] / 3, f"longest pause {longest:.3f} s during {took[0]:.3f} s of work"
