//! The nine decision categories of the MedExACT shared task and how gold labels name them.
//!
//! MedDec gold files name a category with a free-text string such as
//! `"Category 5: Drug"`. Only the number counts: the official evaluator and LAMAR both apply
//! `re.match(r"Category\s*(\d+)", s)` and keep numbers 1 to 9. Everything else (`Category 10`,
//! `Category 11`, `TBD`, a leading space) is out of scope. lamar keeps such labels as
//! [`GoldLabel::OutOfScope`] instead of dropping or re-mapping them, so tools can report them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One of the nine shared-task decision categories (ids 1 to 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum Category {
    /// 1: admissions, discharges, follow-ups, referrals.
    ContactRelated = 1,
    /// 2: ordering tests, consulting colleagues.
    GatheringInformation = 2,
    /// 3: diagnostic conclusions, health-state evaluations.
    DefiningProblem = 3,
    /// 4: therapeutic goals and objectives.
    TreatmentGoal = 4,
    /// 5: starting, stopping, continuing or changing medication.
    Drug = 5,
    /// 6: performing, planning or refraining from procedures.
    TherapeuticProcedure = 6,
    /// 7: interpreting findings and test results.
    EvaluatingTestResult = 7,
    /// 8: delaying judgement or action.
    Deferment = 8,
    /// 9: patient instructions, advice, precautions.
    AdviceAndPrecaution = 9,
}

impl Category {
    /// All nine categories in id order.
    pub const ALL: [Category; 9] = [
        Category::ContactRelated,
        Category::GatheringInformation,
        Category::DefiningProblem,
        Category::TreatmentGoal,
        Category::Drug,
        Category::TherapeuticProcedure,
        Category::EvaluatingTestResult,
        Category::Deferment,
        Category::AdviceAndPrecaution,
    ];

    /// The shared-task id, 1 to 9.
    pub fn id(self) -> u8 {
        self as u8
    }

    /// The category with this id, if it is 1 to 9.
    pub fn from_id(id: i64) -> Option<Category> {
        match id {
            1..=9 => Some(Category::ALL[(id - 1) as usize]),
            _ => None,
        }
    }

    /// The MedDec name, as written after `Category N: ` in gold files.
    pub fn meddec_name(self) -> &'static str {
        match self {
            Category::ContactRelated => "Contact related",
            Category::GatheringInformation => "Gathering additional information",
            Category::DefiningProblem => "Defining problem",
            Category::TreatmentGoal => "Treatment goal",
            Category::Drug => "Drug",
            Category::TherapeuticProcedure => "Therapeutic procedure related",
            Category::EvaluatingTestResult => "Evaluating test result",
            Category::Deferment => "Deferment",
            Category::AdviceAndPrecaution => "Advice and precaution",
        }
    }

    /// The full gold-file label, e.g. `Category 5: Drug`.
    pub fn gold_label(self) -> String {
        format!("Category {}: {}", self.id(), self.meddec_name())
    }

    /// The inline tag name LAMAR's models write, e.g. `drug_decision`.
    pub fn tag(self) -> &'static str {
        match self {
            Category::ContactRelated => "contact_related",
            Category::GatheringInformation => "gather_info",
            Category::DefiningProblem => "define_problem",
            Category::TreatmentGoal => "treatment_goal",
            Category::Drug => "drug_decision",
            Category::TherapeuticProcedure => "therapeutic_procedure",
            Category::EvaluatingTestResult => "evaluate_result",
            Category::Deferment => "defer_decision",
            Category::AdviceAndPrecaution => "advice_and_precaution",
        }
    }

    /// The category whose tag name is exactly `tag` (case-sensitive, as the reference parser).
    pub fn from_tag(tag: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.tag() == tag)
    }

    /// Nesting rank used when encoding gold spans as tags: among spans with the same start and
    /// end, the one with the higher rank is written outermost. Rank 0 (`define_problem`, the most
    /// prevalent category) is innermost; the order is 3, 5, 7, 1, 6, 9, 2, 4, 8.
    pub fn nest_rank(self) -> u8 {
        match self {
            Category::DefiningProblem => 0,
            Category::Drug => 1,
            Category::EvaluatingTestResult => 2,
            Category::ContactRelated => 3,
            Category::TherapeuticProcedure => 4,
            Category::AdviceAndPrecaution => 5,
            Category::GatheringInformation => 6,
            Category::TreatmentGoal => 7,
            Category::Deferment => 8,
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.tag())
    }
}

impl From<Category> for u8 {
    fn from(c: Category) -> u8 {
        c.id()
    }
}

/// Error for a category id outside 1 to 9.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("category id {0} is not a shared-task category (1 to 9)")]
pub struct InvalidCategoryId(pub i64);

impl TryFrom<u8> for Category {
    type Error = InvalidCategoryId;
    fn try_from(id: u8) -> Result<Self, Self::Error> {
        Category::from_id(i64::from(id)).ok_or(InvalidCategoryId(i64::from(id)))
    }
}

/// A gold annotation's label: one of the nine categories, or a label the shared task ignores.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GoldLabel {
    /// `Category 1` to `Category 9`.
    Decision(Category),
    /// Anything else (`Category 10`, `Category 11`, `TBD`, ...), kept verbatim.
    OutOfScope(String),
}

impl GoldLabel {
    /// Parses a gold category string with the official rule `re.match(r"Category\s*(\d+)", s)`:
    /// anchored at the start, case-sensitive, Unicode whitespace between the word and the number,
    /// Unicode decimal digits (as Python's `\d`), the number must be 1 to 9.
    pub fn parse(label: &str) -> GoldLabel {
        match official_category_number(label) {
            Some(n) => match Category::from_id(n) {
                Some(c) => GoldLabel::Decision(c),
                None => GoldLabel::OutOfScope(label.to_string()),
            },
            None => GoldLabel::OutOfScope(label.to_string()),
        }
    }

    /// The in-scope category, if any.
    pub fn category(&self) -> Option<Category> {
        match self {
            GoldLabel::Decision(c) => Some(*c),
            GoldLabel::OutOfScope(_) => None,
        }
    }
}

/// The number after `Category` as the official regex reads it, or `None` if it does not match.
/// Numbers too large for `i64` saturate (they are out of scope either way).
fn official_category_number(label: &str) -> Option<i64> {
    let rest = label.strip_prefix("Category")?;
    let rest = rest.trim_start_matches(crate::text::is_python_space);
    let mut value: i64 = 0;
    let mut digits = 0;
    for c in rest.chars() {
        match python_decimal_value(c) {
            Some(d) => {
                value = value.saturating_mul(10).saturating_add(i64::from(d));
                digits += 1;
            }
            None => break,
        }
    }
    (digits > 0).then_some(value)
}

/// Decimal value of a character matched by Python's `\d` (Unicode category Nd). Covers ASCII and
/// the common Nd blocks, each of which is a run of ten consecutive code points starting at zero.
fn python_decimal_value(c: char) -> Option<u32> {
    const ZEROS: [u32; 37] = [
        0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
        0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
        0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0,
        0xFF10,
    ];
    let cp = c as u32;
    ZEROS
        .iter()
        .find(|&&z| (z..z + 10).contains(&cp))
        .map(|&z| cp - z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_tags_and_names_round_trip() {
        for c in Category::ALL {
            assert_eq!(Category::from_id(i64::from(c.id())), Some(c));
            assert_eq!(Category::from_tag(c.tag()), Some(c));
            assert_eq!(GoldLabel::parse(&c.gold_label()), GoldLabel::Decision(c));
        }
        assert_eq!(Category::from_id(0), None);
        assert_eq!(Category::from_id(10), None);
        assert_eq!(Category::from_tag("Drug_Decision"), None);
    }

    #[test]
    fn gold_labels_follow_the_official_regex() {
        assert_eq!(
            GoldLabel::parse("Category 5: Drug related").category(),
            Some(Category::Drug)
        );
        assert_eq!(
            GoldLabel::parse("Category3").category(),
            Some(Category::DefiningProblem)
        );
        assert_eq!(
            GoldLabel::parse("Category \t 7").category(),
            Some(Category::EvaluatingTestResult)
        );
        for out in [
            "Category 10: Legal and insurance related",
            "Category 11",
            "TBD",
            " Category 3",
            "category 3",
            "Category",
            "Category 0",
            "Category 05",
        ] {
            let parsed = GoldLabel::parse(out);
            if out == "Category 05" {
                // int("05") == 5 in Python: the official rule accepts it.
                assert_eq!(parsed.category(), Some(Category::Drug));
            } else {
                assert_eq!(parsed, GoldLabel::OutOfScope(out.to_string()), "{out}");
            }
        }
        // "Category 12" reads as 12, never as 1.
        assert_eq!(GoldLabel::parse("Category 12").category(), None);
        // Python's \d matches Arabic-Indic digits too.
        assert_eq!(
            GoldLabel::parse("Category \u{663}").category(),
            Some(Category::DefiningProblem)
        );
    }

    #[test]
    fn nest_ranks_are_a_permutation() {
        let mut ranks: Vec<u8> = Category::ALL.iter().map(|c| c.nest_rank()).collect();
        ranks.sort();
        assert_eq!(ranks, (0..9).collect::<Vec<u8>>());
    }
}
