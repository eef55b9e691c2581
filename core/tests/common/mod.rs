//! Helpers shared by the differential tests: generated clinical-style text and Python
//! environments with pinned NLTK releases.
#![allow(dead_code)]

use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::process::Command;

/// Fragments that stress the tokenizers: contractions before newlines, leading quotes, MIMIC
/// brackets, ellipses, abbreviations, tabs, Unicode punctuation and letters.
pub const PIECES: &[&str] = &[
    "Pt",
    "pt's",
    "can't",
    "won't",
    "didn't",
    "I'm",
    "they'll",
    "we've",
    "cannot",
    "gonna",
    "wanna ",
    "'tis",
    "'twas",
    "d/c'd",
    "'neg'",
    "'s",
    "''",
    "\"",
    "``",
    "'",
    "\"quoted\"",
    "“smart”",
    "‘single’",
    "«guillemets»",
    "[**Hospital1 18**]",
    "[**2151-7-16**]",
    "[**Last Name (STitle) 1022**]",
    "Dr.",
    "Mr.",
    "Mrs.",
    "p.o.",
    "b.i.d.",
    "q.d.",
    "e.g.",
    "i.e.",
    "vs.",
    "approx.",
    "St.",
    "No.",
    "U.S.",
    "a.m.",
    "...",
    "..",
    ". . .",
    "--",
    "-",
    "—",
    "–",
    "‒",
    "―",
    "?",
    "!",
    "?!",
    ".",
    ",",
    ":",
    ";",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "<",
    ">",
    "<5",
    "> 100",
    "*",
    "**",
    "@",
    "#",
    "$",
    "%",
    "&",
    "3.88",
    "3,36",
    "1,000",
    "-2.5",
    ".5",
    "100mg",
    "BP 120/80",
    "T 38.5°C",
    "x3",
    "éclair",
    "Straße",
    "İstanbul",
    "Ωmega",
    "naïve",
    "中文",
    "🙂",
    "𝛽",
    "\u{a0}",
    "\t",
    "\n",
    "\n\n",
    " ",
    "  ",
    "\u{2009}",
    "\u{1f}",
    "\u{1c}",
    "e\u{301}",
    "x²",
    "٣٤",
    "Ⅻ",
    "a\u{200d}b",
    "Lasix",
    "was",
    "held",
    "The",
    "patient",
    "He",
    "She",
    "It",
    "A.",
    "B.",
    "J.",
    "Smith",
    "and",
    "follow",
    "up",
    "in",
    "2",
    "weeks",
    "HTN",
    "CHF",
    "s/p",
    "w/",
    "h/o",
    "CXR",
    "showed",
    "no",
    "acute",
    "process",
    "continue",
    "aspirin",
    "81",
    "mg",
    "daily",
    "Please",
    "call",
    "if",
    "fever",
    "i",
];

pub fn generated_texts(n: usize, seed: u64) -> Vec<String> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let len = rng.random_range(1..60);
            let mut text = String::new();
            for _ in 0..len {
                text.push_str(PIECES.choose(&mut rng).unwrap());
                let sep = match rng.random_range(0..10) {
                    0 => "",
                    1 => "\n",
                    2 => ". ",
                    _ => " ",
                };
                text.push_str(sep);
            }
            if rng.random_bool(0.3) {
                text = text.trim_end().to_string();
            }
            text
        })
        .collect()
}

/// Python with the given NLTK release, installed on first use.
pub fn oracle(release: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/nltk-oracle")
        .join(release);
    let python = root.join("bin/python");
    if !python.exists() {
        let ok = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&root)
            .status()
            .expect("python3 must be installed")
            .success();
        assert!(
            ok,
            "could not create a virtual environment in {}",
            root.display()
        );
        // Every package pinned (NLTK's dependencies too), so that the oracle is the same on
        // every machine.
        let pins = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/requirements-nltk.txt"),
        )
        .unwrap()
        .replace("NLTK_RELEASE", release);
        let requirements = root.join("requirements.txt");
        std::fs::write(&requirements, pins).unwrap();
        let ok = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "-r",
            ])
            .arg(&requirements)
            .status()
            .unwrap()
            .success();
        assert!(ok, "pip could not install {}", requirements.display());
    }
    python
}

/// Runs `python script` with `input` on stdin and returns its stdout; fails the test if the
/// script fails (`what` names it in the message).
pub fn run_python(
    python: impl AsRef<std::ffi::OsStr>,
    script: &str,
    input: &[u8],
    what: &str,
) -> Vec<u8> {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new(python)
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{what} failed");
    out.stdout
}
