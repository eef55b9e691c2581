//! `lamar pseudo extract` end to end: a NOTEEVENTS-shaped file, plain and gzipped, with
//! multi-line quoted notes, other categories, MedDec documents to leave out and rows that
//! cannot be used (reported with their line).

mod common;

use common::{fails, lamar, p};
use std::io::Write;

const NOTES: &str = "\"ROW_ID\",\"SUBJECT_ID\",\"HADM_ID\",\"CHARTDATE\",\"CHARTTIME\",\"STORETIME\",\"CATEGORY\",\"DESCRIPTION\",\"CGID\",\"ISERROR\",\"TEXT\"
174,22532,167853,2151-08-04,,,\"Discharge summary\",\"Report\",,,\"Admission Date:  [**2151-7-16**]
Discharge Date: \"\"soon\"\"

Service: ADDENDUM\"
175,13702,107527,2118-06-14,,,\"Discharge summary\",\"Report\",,,\"a MedDec note\"
176,13702,,2118-06-14,,,\"Discharge summary\",\"Report\",,,\"no admission id\"
178,1,2,2100-01-01,,,\"Nursing/other\",\"Report\",,,\"a nursing note\"
179,9,10,2100-01-02,,,\"Discharge summary\",\"Addendum\",,,\"an addendum\"
";

fn ids(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["file_id"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn extract_keeps_unlabeled_discharge_summaries_from_plain_and_gzipped_files() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("NOTEEVENTS.csv");
    std::fs::write(&plain, NOTES).unwrap();
    let gz = dir.path().join("NOTEEVENTS.csv.gz");
    let mut encoder =
        flate2::write::GzEncoder::new(std::fs::File::create(&gz).unwrap(), Default::default());
    encoder.write_all(NOTES.as_bytes()).unwrap();
    encoder.finish().unwrap();
    let split = dir.path().join("train.txt");
    std::fs::write(&split, "13702_107527_175\n").unwrap();
    for input in [&plain, &gz] {
        let out = dir.path().join("out/unlabeled.jsonl");
        let run = lamar(&[
            "pseudo",
            "extract",
            "--noteevents",
            p(input),
            "--exclude",
            p(&split),
            "--out",
            p(&out),
        ]);
        assert!(run.status.success(), "{run:?}");
        let said = String::from_utf8(run.stdout).unwrap();
        let warned = String::from_utf8(run.stderr).unwrap();
        assert!(
            said.starts_with("2 discharge summaries written")
                && said.contains(
                    "5 records read, 1 of other categories, 1 MedDec documents left out, 1 skipped"
                ),
            "{said}"
        );
        assert!(warned.contains(":7: skipped: no HADM_ID"), "{warned}");
        assert_eq!(ids(&out), ["22532_167853_174", "9_10_179"]);
        let first: serde_json::Value = serde_json::from_str(
            std::fs::read_to_string(&out)
                .unwrap()
                .lines()
                .next()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            first["text"],
            "Admission Date:  [**2151-7-16**]\nDischarge Date: \"soon\"\n\nService: ADDENDUM"
        );
        assert!(!out.with_extension("jsonl.partial").exists());
    }
    let other = dir.path().join("other.csv");
    std::fs::write(&other, "id,text\n1,x\n").unwrap();
    let err = fails(&[
        "pseudo",
        "extract",
        "--noteevents",
        p(&other),
        "--out",
        p(&dir.path().join("x.jsonl")),
    ]);
    assert!(
        err.contains("other.csv") && err.contains("no ROW_ID column"),
        "{err}"
    );
}
