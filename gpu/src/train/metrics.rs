//! A run's metrics: one JSON line per optimiser step ([`StepReport`] for DFT, GRPO's own
//! reports and rollouts: anything [`Logged`]), flushed as it is made so that a killed run keeps
//! them, and the loss curve drawn from them as SVG.

use super::trainer::StepReport;
use lamar_core::plot::{Chart, Series, line_chart};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// A line of a run's log, made at an optimiser step: resuming after step `s` keeps the lines
/// of steps up to `s` and drops the rest (they will be made again).
pub trait Logged: Serialize + DeserializeOwned {
    /// The 1-based optimiser step the line belongs to.
    fn step(&self) -> usize;
}

impl Logged for StepReport {
    fn step(&self) -> usize {
        self.step
    }
}

/// Why the metrics could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The failure.
        source: std::io::Error,
    },
    /// A line is not a step report.
    #[error("{path}: line {line}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// The metrics file of a run, open for appending lines of type `R`.
pub struct MetricsLog<R = StepReport> {
    path: PathBuf,
    file: std::fs::File,
    lines: PhantomData<fn(&R)>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> MetricsError + '_ {
    move |source| MetricsError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl<R: Logged> MetricsLog<R> {
    /// Starts `path` afresh, or, continuing a run from a checkpoint after step `resumed_at`,
    /// keeps the lines up to that step (the steps after it will be run, and logged, again).
    pub fn open(path: &Path, resumed_at: Option<usize>) -> Result<MetricsLog<R>, MetricsError> {
        let kept: Vec<R> = match resumed_at {
            Some(step) if path.exists() => read_metrics::<R>(path)?
                .into_iter()
                .filter(|r| r.step() <= step)
                .collect(),
            _ => Vec::new(),
        };
        let mut text = String::new();
        for r in &kept {
            text.push_str(&serde_json::to_string(r).expect("a report serialises"));
            text.push('\n');
        }
        std::fs::write(path, text).map_err(io(path))?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io(path))?;
        Ok(MetricsLog {
            path: path.to_path_buf(),
            file,
            lines: PhantomData,
        })
    }

    /// Appends one line and flushes it.
    pub fn append(&mut self, report: &R) -> Result<(), MetricsError> {
        let line = serde_json::to_string(report).expect("a report serialises");
        writeln!(self.file, "{line}")
            .and_then(|()| self.file.flush())
            .map_err(io(&self.path))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The lines of a metrics file.
pub fn read_metrics<R: Logged>(path: &Path) -> Result<Vec<R>, MetricsError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(k, l)| {
            serde_json::from_str(l).map_err(|e| MetricsError::Invalid {
                path: path.display().to_string(),
                line: k + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

/// A line of a [`step_chart`]: its name and the value it reads from a line of the log.
pub type ChartLine<'a, R> = (&'a str, fn(&R) -> f64);

/// A chart of `lines` (each a name and the value it reads from a line of the log) by
/// optimiser step, as SVG.
pub fn step_chart<R: Logged>(
    reports: &[R],
    title: &str,
    y_label: &str,
    lines: &[ChartLine<'_, R>],
) -> String {
    let series: Vec<Series> = lines
        .iter()
        .map(|(name, value)| Series {
            name: (*name).into(),
            points: reports
                .iter()
                .map(|r| (r.step() as f64, value(r)))
                .collect(),
        })
        .collect();
    line_chart(
        &Chart {
            title: title.into(),
            x_label: "optimiser step".into(),
            y_label: y_label.into(),
        },
        &series,
    )
}

/// The loss curve of `reports` as SVG: the trained loss and the plain cross-entropy per
/// response token, by optimiser step.
pub fn loss_curve(reports: &[StepReport], title: &str) -> String {
    step_chart(
        reports,
        title,
        "nats per response token",
        &[
            ("loss (as trained)", |r| r.loss),
            ("cross-entropy", |r| r.cross_entropy),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(step: usize) -> StepReport {
        StepReport {
            step,
            total_steps: 4,
            epoch: 0,
            loss: 1.0 / step as f64,
            cross_entropy: 2.0 / step as f64,
            learning_rate: 1e-3,
            grad_norm: 0.5,
            tokens: 10,
            seconds: 0.25,
        }
    }

    #[test]
    fn a_resumed_log_keeps_the_steps_up_to_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.jsonl");
        let mut log = MetricsLog::<StepReport>::open(&path, None).unwrap();
        for k in 1..=3 {
            log.append(&report(k)).unwrap();
        }
        assert_eq!(
            read_metrics::<StepReport>(&path).unwrap(),
            vec![report(1), report(2), report(3)]
        );
        let mut log = MetricsLog::<StepReport>::open(&path, Some(2)).unwrap();
        log.append(&report(3)).unwrap();
        log.append(&report(4)).unwrap();
        let steps: Vec<usize> = read_metrics::<StepReport>(&path)
            .unwrap()
            .iter()
            .map(|r| r.step)
            .collect();
        assert_eq!(steps, [1, 2, 3, 4]);
        // A fresh run starts the file again.
        MetricsLog::<StepReport>::open(&path, None).unwrap();
        assert!(read_metrics::<StepReport>(&path).unwrap().is_empty());
        let svg = loss_curve(&[report(1), report(2)], "run");
        assert_eq!(svg.matches("<polyline").count(), 2);
        std::fs::write(&path, "{\"step\": 1}\n").unwrap();
        let err = read_metrics::<StepReport>(&path).unwrap_err().to_string();
        assert!(err.contains("metrics.jsonl: line 1"), "{err}");
    }
}
