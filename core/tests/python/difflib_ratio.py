"""Reads [[a, b], ...] as JSON from stdin, prints SequenceMatcher(None, a, b).ratio() per line.

Used by core/tests/difflib_parity.rs to compare lamar's port with CPython's difflib.
"""
import json
import sys
from difflib import SequenceMatcher

for a, b in json.load(sys.stdin):
    print(repr(SequenceMatcher(None, a, b).ratio()))
