//! Word lists and sentence templates of the synthetic discharge summaries.
//!
//! Templates use a tiny markup of their own (never written to the output):
//! * `<N>` … `</N>` marks a decision of category N (1 to 9); `<10>`, `<11>` and `<0>` (`TBD`)
//!   mark out-of-scope gold labels. Marks may nest, cross and repeat.
//! * `{slot}` is replaced by a random entry of the slot's word list.
//!
//! Slot values are inserted verbatim and may contain `<`, `>`, quotes, brackets and non-ASCII.

/// Fills for `{slot}` placeholders.
pub const SLOTS: &[(&str, &[&str])] = &[
    (
        "drug",
        &[
            "aspirin",
            "metoprolol tartrate",
            "lisinopril",
            "furosemide",
            "warfarin",
            "heparin",
            "vancomycin",
            "ceftriaxone",
            "pantoprazole",
            "atorvastatin",
            "insulin glargine",
            "levothyroxine",
            "prednisone",
            "amiodarone",
            "Lasix",
            "Coumadin",
            "Zosyn",
            "acetaminophen",
            "oxycodone",
            "metformin",
            "enoxaparin",
            "Flagyl",
            "Vit. D",
        ],
    ),
    (
        "dose",
        &[
            "81 mg",
            "25 mg",
            "5\u{a0}mg",
            "40mg",
            "1 g",
            "2.5 mg",
            "10 units",
            "500 mg",
            "12.5 mg",
            "100 mcg",
            "0.5 µg/kg/min",
            "20 mEq",
        ],
    ),
    ("route", &["PO", "IV", "p.o.", "SC", "SL", "via G-tube"]),
    (
        "freq",
        &[
            "daily",
            "b.i.d.",
            "BID",
            "q.d.",
            "q6h",
            "TID",
            "qHS",
            "every 8 hours",
            "PRN",
        ],
    ),
    (
        "problem",
        &[
            "community acquired pneumonia",
            "CHF exacerbation",
            "acute kidney injury",
            "ARF",
            "urosepsis",
            "atrial fibrillation with RVR",
            "NSTEMI",
            "GI bleed",
            "DKA",
            "hypotension",
            "COPD flare",
            "cellulitis of the left leg",
            "delirium",
            "hyperkalemia",
            "Ménétrier's disease",
            "C. diff colitis",
            "SBO",
        ],
    ),
    (
        "cause",
        &[
            "dehydration",
            "poor PO intake",
            "medication non-compliance",
            "an aspiration event",
            "volume overload",
            "NSAID use",
            "a UTI",
            "\"viral\" etiology",
        ],
    ),
    (
        "lab",
        &[
            "creatinine",
            "potassium",
            "INR",
            "troponin",
            "Hct",
            "lactate",
            "WBC",
            "BNP",
            "TSH",
        ],
    ),
    (
        "labval",
        &[
            "2.3",
            "5.9",
            "<0.01",
            "1.8 (baseline 1.1)",
            "> 3.0",
            "13K",
            "0.45",
            "34.2%",
            "7,400",
        ],
    ),
    (
        "imaging",
        &[
            "CXR",
            "CT abd/pelvis",
            "Echo",
            "TTE",
            "RUQ U/S",
            "MRI of the head",
            "CTA chest",
            "EKG",
            "KUB",
        ],
    ),
    (
        "finding",
        &[
            "a RLL infiltrate",
            "no acute process",
            "EF 30-35%",
            "mild bibasilar atelectasis",
            "a small L pleural effusion",
            "ST depressions in V4-V6",
            "cholelithiasis w/o cholecystitis",
            "no PE",
            "an old lacunar infarct",
            "free air under the diaphragm",
        ],
    ),
    (
        "procedure",
        &[
            "cardiac catheterization",
            "EGD",
            "thoracentesis",
            "paracentesis",
            "PICC placement",
            "hemodialysis",
            "a right IJ central line",
            "ERCP with stent placement",
            "bronchoscopy",
            "intubation",
        ],
    ),
    (
        "service",
        &[
            "Cardiology",
            "GI",
            "Renal",
            "ID",
            "Surgery",
            "Psychiatry",
            "Neurology",
            "the pain service",
        ],
    ),
    (
        "symptom",
        &[
            "chest pain",
            "shortness of breath",
            "fevers > 101.4",
            "dizziness",
            "bright red blood per rectum",
            "worsening swelling",
            "confusion",
        ],
    ),
    (
        "facility",
        &[
            "[**Hospital1 18**]",
            "[**Hospital 1263**] rehab",
            "[**Location (un) 620**] VNA",
            "an extended care facility",
        ],
    ),
    (
        "doctor",
        &[
            "Dr. [**Last Name (STitle) 1022**]",
            "Dr. [**First Name (STitle) 437**]",
            "your PCP [**Name Initial (PRE) **] [**Known lastname 1149**]",
        ],
    ),
    ("weeks", &["1", "2", "one to two", "3-4", "six"]),
    (
        "goal",
        &[
            "INR 2-3",
            "SBP < 140",
            "euvolemia",
            "HR 60-80",
            "glucose 100-180",
            "pain control",
        ],
    ),
    (
        "pmh",
        &[
            "HTN",
            "DM2, insulin dependent",
            "CAD s/p CABG [**2139**]",
            "CKD stage III",
            "hypothyroidism",
            "GERD",
            "h/o DVT (on coumadin)",
            "depression",
            "OSA on CPAP",
            "s/p appendectomy",
        ],
    ),
    (
        "misc",
        &[
            "patient's daughter was updated",
            "social work saw the patient",
            "the team discussed code status",
            "family meeting held",
        ],
    ),
];

/// Sentences for the hospital course and history, with decisions of every category.
pub const COURSE: &[&str] = &[
    "<3>{problem}</3> was thought to be secondary to <3>{cause}</3>.",
    "<5>Started {drug} {dose} {route} {freq}</5> for <3>{problem}</3>.",
    "<5>{drug} was held</5> given <7>{lab} of {labval}</7>.",
    "<2>{service} was consulted</2> and <6>{procedure} was performed</6> without complication.",
    "<7>{imaging} showed {finding}</7>, <3>consistent with {problem}</3>.",
    "<3>The prior study suggested <7>{finding}</3> which can't be fully evaluated</7> on this film.",
    "Pt's {lab} trended down; <5>continue {drug} for <4>{goal}</4></5>.",
    "<2>Will check {lab} in AM</2> and <5>titrate {drug} as needed</5>.",
    "<8>Decision regarding {procedure} deferred to outpatient setting</8>.",
    "<6>She didn't want {procedure}</6>, so <6><5>{drug} was continued instead</5></6>.",
    "He was \"feeling fine\" per his wife; <7><3>{finding}</3></7> noted.",
    "<5><5>Increased {drug} to {dose} {freq}</5></5> with <4>goal {goal}</4>.",
    "<7>{lab} {labval}</7> -> <5>repleted with {drug}</5>.",
    "<2>Blood cultures were sent</2>; <7>they're NGTD</7>.",
    "<10>Case management confirmed insurance coverage for {facility}</10>.",
    "<0>{misc}</0>.",
    "<11>{misc}</11> and the plan was reviewed.",
    "<3>Likely {problem}</3>, e.g. from {cause} — approx. 2 days of symptoms.",
    "<6>Underwent {procedure}</6> on [**2151-7-18**]; <7>post-procedure {imaging} with {finding}</7>.",
    "<4>Aim for {goal}</4> before <1>transfer to {facility}</1>.",
    "<9>Avoid NSAIDs</9> given <3>{problem}</3>.",
    "<5>Stop {drug}</5> — <3>suspected allergic reaction</3> (rash → resolved).",
];

/// Discharge-instruction sentences.
pub const INSTRUCTIONS: &[&str] = &[
    "<9>Please call your doctor or return to the ED if you experience {symptom}</9>.",
    "<9>Don't drive while taking {drug}</9>.",
    "<9>Weigh yourself every morning, <1>call {doctor} if weight goes up more than 3 lbs</1></9>.",
    "<5>Please take {drug} {dose} {freq} until told otherwise</5>.",
    "<9>Keep your incision clean and dry</9>.",
];

/// Follow-up sentences.
pub const FOLLOWUP: &[&str] = &[
    "<1>Follow up with {doctor} in {weeks} weeks</1>.",
    "<1>Provider: {doctor} Phone:[**Telephone/Fax (1) 2422**] Date/Time:[**2151-8-15**] 10:30</1>",
    "<2><1>Follow-up with {service} for repeat {imaging}</1></2>.",
    "<8>Further work-up of {finding} to be decided at follow-up</8>.",
];

/// Chief complaints.
pub const COMPLAINTS: &[&str] = &[
    "{symptom}",
    "{symptom}, {symptom}",
    "s/p fall",
    "\"not feeling right\"",
    "{problem}",
];

/// Services on the header line.
pub const SERVICES: &[&str] = &[
    "MEDICINE",
    "CARDIOTHORACIC",
    "NEUROLOGY",
    "SURGERY",
    "ORTHOPAEDICS",
];

/// Discharge dispositions.
pub const DISPOSITIONS: &[&str] = &[
    "Home",
    "Home With Service",
    "Extended Care",
    "Home\tWith Service",
];

/// Rare astral and symbol characters sprinkled into a few notes.
pub const ODD_TOKENS: &[&str] = &["\u{1d6fd}-blocker", "38.5°C", "≥2", "±", "🙂", "\u{2009}"];

/// The word list of a slot.
pub fn slot(name: &str) -> Option<&'static [&'static str]> {
    SLOTS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}
