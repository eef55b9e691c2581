//! The score table at the end of a run: every model and the ensemble on the test split, from
//! `lamar evaluate`'s reports.

use crate::PipelineError;
use crate::plan::Plan;
use serde::Serialize;

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreRow {
    /// The system (`dft`, `grpo`, `pseudo`, `ensemble`).
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
