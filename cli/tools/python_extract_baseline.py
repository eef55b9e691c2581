"""The baseline of `lamar pseudo extract`: Python's csv module reading NOTEEVENTS.csv and keeping
the discharge summaries as the reference does (its ids; rows without a HADM_ID skipped, where
the reference's pandas code would raise), written as JSON Lines like lamar's.

Usage: python3 python_extract_baseline.py NOTEEVENTS.csv OUT.jsonl
"""
import csv
import json
import sys
import time

csv.field_size_limit(1 << 30)
started = time.time()
kept = skipped = 0
with open(sys.argv[1], newline="", encoding="utf-8") as f, open(sys.argv[2], "w") as out:
    for row in csv.DictReader(f):
        if row["CATEGORY"] != "Discharge summary":
            continue
        if not row["HADM_ID"]:
            skipped += 1
            continue
        file_id = f'{int(row["SUBJECT_ID"])}_{int(float(row["HADM_ID"]))}_{int(row["ROW_ID"])}'
        out.write(json.dumps({"file_id": file_id, "description": row["DESCRIPTION"],
                              "text": row["TEXT"]}, ensure_ascii=False, separators=(",", ":")) + "\n")
        kept += 1
print(json.dumps({"kept": kept, "skipped": skipped, "seconds": time.time() - started}))
