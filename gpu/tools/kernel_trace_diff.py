#!/usr/bin/env python3
"""One unit of work's GPU time by kernel: the difference of two kernel_trace.c outputs, the
first from a run with one unit more work than the second (e.g. 3 and 2 training steps), as a
Markdown table of the kernels that took the most time, with the GPU's busy time and the span.

Usage: kernel_trace_diff.py MORE.csv LESS.csv [--top 40]
"""
import argparse
import csv


def read(path):
    rows = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            rows[row["name"]] = (int(row["count"]), int(row["total_ns"]))
    return rows


def short(name, width=100):
    return name if len(name) <= width else name[: width - 1] + "…"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("more")
    parser.add_argument("less")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    more, less = read(args.more), read(args.less)
    diff = {}
    for name, (count, total) in more.items():
        c0, t0 = less.get(name, (0, 0))
        diff[name] = (count - c0, total - t0)
    busy = diff.pop("#busy", (0, 0))
    span = diff.pop("#span", (0, 0))
    kernels = sorted(diff.items(), key=lambda kv: -kv[1][1])
    summed = sum(t for _, (_, t) in kernels)
    print(f"GPU busy {busy[1] / 1e6:.1f} ms of a {span[1] / 1e6:.1f} ms span; "
          f"{busy[0]} kernels, copies and memsets; their times sum to {summed / 1e6:.1f} ms\n")
    print("| kernel | calls | ms | share of busy |")
    print("|---|---|---|---|")
    for name, (count, total) in kernels[: args.top]:
        share = total / busy[1] if busy[1] else 0.0
        print(f"| `{short(name)}` | {count} | {total / 1e6:.2f} | {100 * share:.1f} % |")
    rest = sum(t for _, (_, t) in kernels[args.top:])
    print(f"| the other {max(len(kernels) - args.top, 0)} | | {rest / 1e6:.2f} | |")


if __name__ == "__main__":
    main()
