//! The score table at the end of a run: every model and the ensemble on the test split, from
//! `lamar evaluate`'s reports.

use crate::PipelineError;
use crate::plan::Plan;
use serde::Serialize;

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreRow {
    /// The system (`dft`, `grpo`, `pseudo`, `encoder`, `ensemble`).
    pub system: String,
    /// Span F1.
    pub span_f1: f64,
    /// Token F1.
    pub token_f1: f64,
    /// The worst demographic group's score.
    pub worst_group: f64,
    /// The shared task's final score.
    pub final_score: f64,
}

/// The rows of every system whose report exists (none before `evaluate` has run).
pub fn scores(plan: &Plan) -> Result<Vec<ScoreRow>, PipelineError> {
    let mut rows = Vec::new();
    for system in &plan.systems {
        let path = &system.scores;
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        let bad = |what: &str| PipelineError::Manifest {
            path: path.clone(),
            message: format!("no {what} in lamar evaluate's report"),
        };
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| PipelineError::Manifest {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let number = |pointer: &str| {
            v.pointer(pointer)
                .and_then(|x| x.as_f64())
                .ok_or_else(|| bad(pointer))
        };
        rows.push(ScoreRow {
            system: system.name.clone(),
            span_f1: number("/span_f1/f1")?,
            token_f1: number("/token_f1")?,
            worst_group: number("/shared_task/worst_group_score")?,
            final_score: number("/shared_task/final_score")?,
        });
    }
    Ok(rows)
}

/// How far the ensemble's span F1 lies above the best single model's (negative: below); none
/// without an ensemble row and at least one model's.
pub fn ensemble_gain(rows: &[ScoreRow]) -> Option<f64> {
    let ensemble = rows.iter().find(|r| r.system == "ensemble")?;
    let best = rows
        .iter()
        .filter(|r| r.system != "ensemble")
        .map(|r| r.span_f1)
        .fold(None, |best: Option<f64>, f| {
            Some(best.map_or(f, |b| b.max(f)))
        })?;
    Some(ensemble.span_f1 - best)
}

/// The rows as a Markdown table.
pub fn markdown(rows: &[ScoreRow]) -> String {
    let mut text = String::from(
        "| system | span F1 | token F1 | worst group | final |\n|---|---|---|---|---|\n",
    );
    for r in rows {
        text.push_str(&format!(
            "| {} | {:.4} | {:.4} | {:.4} | {:.4} |\n",
            r.system, r.span_f1, r.token_f1, r.worst_group, r.final_score
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(system: &str, span_f1: f64) -> ScoreRow {
        ScoreRow {
            system: system.into(),
            span_f1,
            token_f1: 0.0,
            worst_group: 0.0,
            final_score: 0.0,
        }
    }

    #[test]
    fn the_gain_is_measured_against_the_best_single_model() {
        let rows = [row("dft", 0.25), row("encoder", 0.3), row("ensemble", 0.34)];
        let gain = ensemble_gain(&rows).unwrap();
        assert!((gain - 0.04).abs() < 1e-12, "{gain}");
        let rows = [row("dft", 0.4), row("ensemble", 0.34)];
        assert!(ensemble_gain(&rows).unwrap() < 0.0);
        assert_eq!(ensemble_gain(&[row("dft", 0.4)]), None);
        assert_eq!(ensemble_gain(&[row("ensemble", 0.4)]), None);
    }
}
