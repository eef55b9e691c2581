"""A NOTEEVENTS-shaped CSV of a given size, for timing `lamar pseudo extract`.

Usage: python3 make_noteevents.py OUT.csv MEGABYTES [SEED]
Columns and quoting as MIMIC-III's NOTEEVENTS.csv (every field quoted by csv.QUOTE_ALL except
the numeric ids, notes of 500 to 20,000 characters over many lines with embedded quotes and
commas, about 15 % discharge summaries, 2 % of them without a HADM_ID). Seeded: the same file
for the same arguments.
"""
import csv
import random
import sys

out, megabytes = sys.argv[1], float(sys.argv[2])
rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 7)
WORDS = ("patient was admitted with chest pain , started on aspirin and metoprolol . "
         "CT of the head showed no \"acute\" process ; follow up with cardiology in [**2 weeks**] "
         "Discharge Medications : 1. Lisinopril 10 mg PO daily 2. Atorvastatin").split()
CATEGORIES = ["Nursing/other", "Radiology", "Nursing", "ECG", "Physician ", "Discharge summary"]
target = int(megabytes * 1e6)
written = 0
with open(out, "w", newline="") as f:
    f.write('"ROW_ID","SUBJECT_ID","HADM_ID","CHARTDATE","CHARTTIME","STORETIME","CATEGORY",'
            '"DESCRIPTION","CGID","ISERROR","TEXT"\n')
    w = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
    row = 0
    while written < target:
        row += 1
        category = "Discharge summary" if rng.random() < 0.15 else rng.choice(CATEGORIES[:-1])
        hadm = "" if category == "Discharge summary" and rng.random() < 0.02 else str(rng.randrange(100000, 200000))
        words = [rng.choice(WORDS) for _ in range(rng.randrange(80, 3000))]
        lines = [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)]
        text = "\n".join(lines)
        record = [row, rng.randrange(1, 99999), hadm, "2150-01-01", "", "", category,
                  rng.choice(["Report", "Report", "Addendum"]), "", "", text]
        line = ",".join([str(record[0]), str(record[1]), record[2]]) + ","
        f.write(line)
        w.writerow(record[3:])
        written += len(line) + len(text) + 60
print(f"{out}: {row} records, about {written / 1e6:.0f} MB")
