//! The official evaluator's printed summary, reproduced line for line.

use super::Evaluation;
use std::fmt::Write;

/// The summary `evaluate.py` prints (without the optional "Filtered to …" and "Results saved
/// to …" lines, which depend on the command line).
pub fn summary(e: &Evaluation) -> String {
    let rule = "=".repeat(50);
    let mut s = String::new();
    let _ = writeln!(s, "{rule}\nMedDec Shared Task Evaluation Results\n{rule}");
    let _ = writeln!(s, "\nSpan F1:\n  {:.4}", e.span_f1.f1);
    let _ = writeln!(s, "\nToken F1:\n  {:.4}", e.token_f1);
    if let Some(st) = &e.shared_task {
        let _ = writeln!(s, "\nShared-task final scoring (uses stats.csv):");
        let _ = writeln!(s, "  Base score:        {:.4}", st.base_score);
        let _ = writeln!(s, "  Worst group score: {:.4}", st.worst_group_score);
        let _ = writeln!(s, "  Final score:       {:.4}", st.final_score);
        let _ = writeln!(s, "\nWorst-group candidates (base_score by subgroup):");
        for (dim, groups) in [
            ("sex", &st.subgroups.sex),
            ("race", &st.subgroups.race),
            ("language", &st.subgroups.language),
        ] {
            for (name, m) in &groups.0 {
                let _ = writeln!(
                    s,
                    "  - {dim:<8} = {name:<20} n={:>3}  base={:.4}  span_f1={:.4}  token_f1={:.4}",
                    m.n_spans, m.base_score, m.span_f1, m.token_f1
                );
            }
        }
    }
    let _ = writeln!(s, "{rule}");
    s
}
