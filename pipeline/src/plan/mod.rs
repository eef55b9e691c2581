//! The plan: a pipeline file turned into stages, each a list of `lamar` command lines with the
//! files it reads and writes.
//!
//! A stage is exactly what a user would type: `lamar run --dry-run` prints the commands, and
//! running them by hand in order gives the same files. The stages, in order (those of a model
//! that is not configured are left out):
//!
//! | stage | what | commands |
//! |---|---|---|
//! | `corpus` | a synthetic corpus (only with `[data.synthetic]`) | `lamar synth` |
//! | `model` | a tiny random base model (only with `model.tiny_seed`) | `lamar export tiny` |
//! | `rows` | gold → tagged rows of the three splits | `lamar tag` ×3 |
//! | `dft` | Model 1: LoRA + DFT | `lamar train dft` |
//! | `grpo` | Model 2: Model 1 merged, then GRPO | `lamar export merge`, `lamar train grpo` |
//! | `pseudo` | Model 1's most confident labels of retrieved unlabeled notes | `lamar pseudo extract`, `embed` ×4, `retrieve`, `lamar infer`, `lamar pseudo mix` |
//! | `pseudo-dft` | Model 3: DFT on the training rows + pseudo-labels | `lamar train dft` |
//! | `infer-MODEL` | each model tags val and test | `lamar infer` ×2, `lamar offsets` ×2 |
//! | `encoder` | the encoder baseline (only with `[encoder]`) | `lamar export tiny-encoder` (with `encoder.tiny_seed`), `lamar train encoder`, `lamar classify` ×2 |
//! | `consensus` | thresholds tuned on val, the ensemble of test | `lamar tune`, `lamar ensemble` |
//! | `evaluate` | official scores of every model and the ensemble on test | `lamar evaluate` per system |
//! | `view` | the browser viewer (unless `view.enabled = false`) | `lamar view` |

mod encoder;
mod line;
mod models;

use crate::PipelineError;
use crate::config::{DataConfig, PipelineConfig};
use line::{Line, ModelArgs};
use models::{dft_stage, infer_line};
use std::path::{Path, PathBuf};

/// One `lamar` invocation of a stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The arguments after `lamar` (`["train", "dft", "--model", …]`).
    pub args: Vec<String>,
    /// How to continue it after an interruption: the flag to add, when the checkpoint it
    /// continues from exists (`--resume` of `lamar train`). Commands that resume by themselves
    /// (`lamar infer` skips the documents already written) need none.
    pub resume: Option<Resume>,
}

/// A resume flag and the checkpoint it needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Resume {
    /// The flag, e.g. `--resume`.
    pub flag: String,
    /// Added only when this exists.
    pub checkpoint: PathBuf,
}

/// One stage of the plan.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Its name (`--from`, `--only`, its folder under `out`).
    pub name: String,
    /// One line on what it does.
    pub about: String,
    /// Its folder.
    pub dir: PathBuf,
    /// Its commands, in order.
    pub commands: Vec<Invocation>,
    /// Files and folders it reads (hashed into its manifest).
    pub inputs: Vec<PathBuf>,
    /// Files and folders it writes (checked before it is skipped).
    pub outputs: Vec<PathBuf>,
}

/// A model of the ensemble and where its predictions land.
#[derive(Debug, Clone)]
pub struct ModelPredictions {
    /// Its name in the score table (`dft`, `grpo`, `pseudo`, `ensemble`).
    pub name: String,
    /// Offsets JSON on the validation split (none for the ensemble).
    pub val: Option<PathBuf>,
    /// Offsets JSON on the test split.
    pub test: PathBuf,
    /// `lamar evaluate`'s report on test.
    pub scores: PathBuf,
}

/// The whole plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Stages in order.
    pub stages: Vec<Stage>,
    /// Every system scored at the end, the ensemble last.
    pub systems: Vec<ModelPredictions>,
    /// Where the score table is written (`scores.md`, `scores.json`).
    pub out: PathBuf,
    /// Files the pipeline file itself holds (an inline prompt), written before any stage runs.
    pub generated: Vec<(PathBuf, String)>,
}

/// MedDec's paths, given or of the synthetic corpus.
struct Data {
    gold_dir: PathBuf,
    raw_text_dir: PathBuf,
    stats_csv: PathBuf,
    splits: [(&'static str, PathBuf); 3],
    noteevents: Option<PathBuf>,
}

fn data_paths(data: &DataConfig, corpus: &Path) -> Data {
    let or = |p: &Option<PathBuf>, default: PathBuf| p.clone().unwrap_or(default);
    Data {
        gold_dir: or(&data.gold_dir, corpus.join("data")),
        raw_text_dir: or(&data.raw_text_dir, corpus.join("raw_text")),
        stats_csv: or(&data.stats_csv, corpus.join("stats.csv")),
        splits: [
            (
                "train",
                or(&data.train_split, corpus.join("splits/train.txt")),
            ),
            ("val", or(&data.val_split, corpus.join("splits/val.txt"))),
            ("test", or(&data.test_split, corpus.join("splits/test.txt"))),
        ],
        noteevents: data
            .synthetic
            .as_ref()
            .and_then(|s| s.unlabeled_notes)
            .map(|_| corpus.join("NOTEEVENTS.csv")),
    }
}

impl Plan {
    /// The plan of `config` (validated first with [`PipelineConfig::validate`]).
    pub fn new(config: &PipelineConfig) -> Result<Plan, PipelineError> {
        let out = config.out.clone();
        let mut stages = Vec::new();
        let corpus_dir = out.join("corpus");
        let data = data_paths(&config.data, &corpus_dir);
        if let Some(synthetic) = &config.data.synthetic {
            stages.push(Stage {
                name: "corpus".into(),
                about: "a synthetic corpus in the MedDec layout".into(),
                dir: corpus_dir.clone(),
                commands: vec![
                    Line::new(&["synth"])
                        .path("--out", &corpus_dir)?
                        .opt("--docs", &synthetic.docs)
                        .opt("--seed", &synthetic.seed)
                        .opt("--unlabeled-notes", &synthetic.unlabeled_notes)
                        .done(),
                ],
                inputs: vec![],
                outputs: vec![
                    data.gold_dir.clone(),
                    data.raw_text_dir.clone(),
                    data.stats_csv.clone(),
                    corpus_dir.join("splits"),
                ],
            });
        }
        let snapshot = match &config.model.snapshot {
            Some(s) => s.clone(),
            None => {
                let dir = out.join("model");
                let snapshot = dir.join("snapshot");
                let copier = config.model.tiny_copier;
                stages.push(Stage {
                    name: "model".into(),
                    about: if copier {
                        "the tiny Qwen3.5 pre-trained to copy notes".into()
                    } else {
                        "a tiny randomly initialised Qwen3.5".into()
                    },
                    dir,
                    commands: vec![
                        Line::new(&["export", "tiny"])
                            .path("--out", &snapshot)?
                            .opt("--seed", &config.model.tiny_seed)
                            .flag("--copier", copier)
                            .done(),
                    ],
                    inputs: vec![],
                    outputs: vec![snapshot.clone()],
                });
                snapshot
            }
        };
        let mut generated = Vec::new();
        let prompt = match &config.model.prompt {
            Some(text) => {
                let path = out.join("prompt.txt");
                generated.push((path.clone(), text.clone()));
                Some(path)
            }
            None => config.model.prompt_file.clone(),
        };
        let model = ModelArgs {
            snapshot: snapshot.clone(),
            device: config.model.device.as_arg(),
            dtype: config.model.dtype.clone(),
            prompt,
        };
        let mut common_inputs = vec![snapshot.clone()];
        common_inputs.extend(model.prompt.clone());

        // Tagged rows of the three splits.
        let rows_dir = out.join("rows");
        let rows = |split: &str| rows_dir.join(format!("{split}.jsonl"));
        let mut commands = Vec::new();
        for (split, file) in &data.splits {
            commands.push(
                Line::new(&["tag"])
                    .path("--gold-dir", &data.gold_dir)?
                    .path("--raw-text-dir", &data.raw_text_dir)?
                    .path("--split", file)?
                    .path("--out", &rows(split))?
                    .done(),
            );
        }
        let mut outputs: Vec<PathBuf> = data.splits.iter().map(|(s, _)| rows(s)).collect();
        // What the models train on: the training rows, or windows of them.
        let training_rows = match config.dft.window_chars {
            Some(chars) => {
                let windows = rows_dir.join("train-windows.jsonl");
                commands.push(
                    Line::new(&["tag"])
                        .path("--gold-dir", &data.gold_dir)?
                        .path("--raw-text-dir", &data.raw_text_dir)?
                        .path("--split", &data.splits[0].1)?
                        .path("--out", &windows)?
                        .arg("--window-chars", chars)
                        .done(),
                );
                outputs.push(windows.clone());
                windows
            }
            None => rows("train"),
        };
        let mut inputs = vec![data.gold_dir.clone(), data.raw_text_dir.clone()];
        inputs.extend(data.splits.iter().map(|(_, f)| f.clone()));
        stages.push(Stage {
            name: "rows".into(),
            about: "gold → tagged rows of train, val and test".into(),
            dir: rows_dir.clone(),
            commands,
            inputs,
            outputs,
        });

        // Model 1.
        let dft = dft_stage(
            config,
            &model,
            &out,
            "dft",
            "Model 1: LoRA + Dynamic Fine-Tuning on the training rows",
            &training_rows,
            &common_inputs,
        )?;
        let dft_adapter = dft.outputs[0].clone();
        stages.push(dft);
        // (name, snapshot it runs on, adapter) of each model.
        let mut models = vec![("dft", snapshot.clone(), dft_adapter.clone())];

        if let Some(grpo) = &config.grpo {
            let dir = out.join("grpo");
            let merged = dir.join("model1-merged");
            let adapter = dir.join("adapter");
            let mut train = Line::new(&["train", "grpo"])
                .path("--model", &merged)?
                .path("--data", &training_rows)?
                .path("--out", &adapter)?;
            for reward in grpo.rewards.iter().flatten() {
                train = train.arg("--reward", reward);
            }
            train = train
                .opt("--generations", &grpo.generations)
                .opt("--temperature", &grpo.temperature)
                .opt("--min-p", &grpo.min_p)
                .opt("--max-completion", &grpo.max_completion)
                .opt("--rank", &grpo.rank)
                .opt("--alpha", &grpo.alpha)
                .opt("--lr", &grpo.lr)
                .opt("--epochs", &grpo.epochs)
                .opt("--max-steps", &grpo.max_steps)
                .opt("--seed", &grpo.seed)
                .opt("--sampling-seed", &grpo.sampling_seed)
                .opt("--checkpoint-every", &grpo.checkpoint_every);
            let train = model.add(train, true)?;
            let mut inputs = common_inputs.clone();
            inputs.extend([dft_adapter.clone(), training_rows.clone()]);
            stages.push(Stage {
                name: "grpo".into(),
                about: "Model 2: Model 1 merged, then GRPO with verifiable rewards".into(),
                dir,
                commands: vec![
                    Line::new(&["export", "merge"])
                        .path("--model", &snapshot)?
                        .path("--adapter", &dft_adapter)?
                        .path("--out", &merged)?
                        .done(),
                    train.resumable(adapter.join("checkpoint")),
                ],
                inputs,
                outputs: vec![merged.clone(), adapter.clone()],
            });
            models.push(("grpo", merged, adapter));
        }

        if let Some(pseudo) = &config.pseudo {
            let dir = out.join("pseudo");
            let noteevents = pseudo
                .noteevents
                .clone()
                .or(data.noteevents.clone())
                .ok_or_else(|| PipelineError::Invalid {
                    key: "pseudo.noteevents".into(),
                    message: "missing".into(),
                })?;
            let notes = dir.join("notes.jsonl");
            let mut commands = vec![
                Line::new(&["pseudo", "extract"])
                    .path("--noteevents", &noteevents)?
                    .paths(
                        "--exclude",
                        &data
                            .splits
                            .iter()
                            .map(|(_, f)| f.clone())
                            .collect::<Vec<_>>(),
                    )?
                    .path("--out", &notes)?
                    .done(),
            ];
            let embed = |input: &Path, output: &Path| -> Result<Line, PipelineError> {
                let mut line = Line::new(&["pseudo", "embed"])
                    .path("--input", input)?
                    .path("--out", output)?
                    .opt("--embedder", &pseudo.embedder)
                    .opt("--dim", &pseudo.dim);
                if let Some(m) = &pseudo.embedding_model {
                    line = line.path("--model", m)?.arg("--device", model.device);
                }
                Ok(line)
            };
            let mut queries = Vec::new();
            for (split, _) in &data.splits {
                let q = dir.join(format!("{split}.safetensors"));
                commands.push(embed(&rows(split), &q)?.done());
                queries.push(q);
            }
            let reports = dir.join("reports.safetensors");
            commands.push(
                embed(&notes, &reports)?
                    .arg("--description", "Report")
                    .done(),
            );
            let chosen = dir.join("chosen.jsonl");
            commands.push(
                Line::new(&["pseudo", "retrieve"])
                    .paths("--queries", &queries)?
                    .path("--corpus", &reports)?
                    .opt("--k", &pseudo.k)
                    .opt("--candidates", &pseudo.candidates)
                    .opt("--device", &pseudo.retrieve_device)
                    .path("--out", &dir.join("neighbours.jsonl"))?
                    .path("--corpus-notes", &notes)?
                    .path("--inference-input", &chosen)?
                    .done(),
            );
            let labelled = dir.join("labelled.jsonl");
            commands.push(infer_line(
                config,
                &model,
                &snapshot,
                &dft_adapter,
                &chosen,
                &labelled,
            )?);
            let mixed = dir.join("train-mixed.jsonl");
            commands.push(
                Line::new(&["pseudo", "mix"])
                    .path("--train", &training_rows)?
                    .path("--predictions", &labelled)?
                    .opt("--quantile", &pseudo.quantile)
                    .path("--out", &mixed)?
                    .done(),
            );
            let mut inputs = common_inputs.clone();
            inputs.extend([noteevents, dft_adapter.clone()]);
            inputs.extend(data.splits.iter().map(|(s, _)| rows(s)));
            inputs.push(training_rows.clone());
            inputs.extend(pseudo.embedding_model.clone());
            stages.push(Stage {
                name: "pseudo".into(),
                about: "Model 1's most confident tags of the unlabeled notes nearest each document"
                    .into(),
                dir,
                commands,
                inputs,
                outputs: vec![mixed.clone(), labelled],
            });
            let stage = dft_stage(
                config,
                &model,
                &out,
                "pseudo-dft",
                "Model 3: DFT on the training rows and the pseudo-labels",
                &mixed,
                &common_inputs,
            )?;
            let adapter = stage.outputs[0].clone();
            stages.push(stage);
            models.push(("pseudo", snapshot.clone(), adapter));
        }

        // Every model tags val and test.
        let mut systems = Vec::new();
        let eval_dir = out.join("evaluate");
        for (name, base, adapter) in &models {
            let dir = out.join(format!("infer-{name}"));
            let mut commands = Vec::new();
            let mut outputs = Vec::new();
            for split in ["val", "test"] {
                let tagged = dir.join(format!("{split}.jsonl"));
                commands.push(infer_line(
                    config,
                    &model,
                    base,
                    adapter,
                    &rows(split),
                    &tagged,
                )?);
            }
            for split in ["val", "test"] {
                let offsets = dir.join(format!("{split}.json"));
                commands.push(
                    Line::new(&["offsets"])
                        .path("--input", &dir.join(format!("{split}.jsonl")))?
                        .path("--raw-text-dir", &data.raw_text_dir)?
                        .path("--out", &offsets)?
                        .done(),
                );
                outputs.push(offsets);
            }
            let mut inputs = vec![base.clone(), adapter.clone(), rows("val"), rows("test")];
            inputs.extend(model.prompt.clone());
            inputs.push(data.raw_text_dir.clone());
            systems.push(ModelPredictions {
                name: name.to_string(),
                val: Some(outputs[0].clone()),
                test: outputs[1].clone(),
                scores: eval_dir.join(format!("{name}.json")),
            });
            stages.push(Stage {
                name: format!("infer-{name}"),
                about: format!("the {name} model tags val and test; tags → offsets"),
                dir,
                commands,
                inputs,
                outputs,
            });
        }

        if let Some(encoder) = &config.encoder {
            let (stage, predictions) = encoder::encoder_stage(
                encoder,
                config.model.device.as_arg(),
                &out,
                encoder::EncoderRows {
                    train: &rows("train"),
                    val: &rows("val"),
                    test: &rows("test"),
                },
                &eval_dir,
            )?;
            stages.push(stage);
            systems.push(predictions);
        }

        // The consensus, tuned on val.
        let dir = out.join("consensus");
        let params = dir.join("params.json");
        let val: Vec<PathBuf> = systems.iter().filter_map(|s| s.val.clone()).collect();
        let test: Vec<PathBuf> = systems.iter().map(|s| s.test.clone()).collect();
        let ensemble = dir.join("test.json");
        let mut inputs = val.clone();
        inputs.extend(test.iter().cloned());
        inputs.extend([
            data.gold_dir.clone(),
            data.raw_text_dir.clone(),
            data.stats_csv.clone(),
            data.splits[1].1.clone(),
        ]);
        stages.push(Stage {
            name: "consensus".into(),
            about: "Span-Cluster Consensus: thresholds tuned on val, the ensemble of test".into(),
            dir: dir.clone(),
            commands: vec![
                Line::new(&["tune"])
                    .paths("--predictions", &val)?
                    .path("--gold-dir", &data.gold_dir)?
                    .path("--raw-text-dir", &data.raw_text_dir)?
                    .path("--split", &data.splits[1].1)?
                    .path("--stats-csv", &data.stats_csv)?
                    .opt("--trials", &config.consensus.trials)
                    .opt("--seed", &config.consensus.seed)
                    .path("--out", &params)?
                    .done(),
                Line::new(&["ensemble"])
                    .paths("--predictions", &test)?
                    .path("--params", &params)?
                    .path("--out", &ensemble)?
                    .done(),
            ],
            inputs,
            outputs: vec![params, ensemble.clone()],
        });
        systems.push(ModelPredictions {
            name: "ensemble".into(),
            val: None,
            test: ensemble,
            scores: eval_dir.join("ensemble.json"),
        });

        // Scores on test.
        let mut commands = Vec::new();
        for s in &systems {
            commands.push(
                Line::new(&["evaluate"])
                    .path("--gold-dir", &data.gold_dir)?
                    .path("--raw-text-dir", &data.raw_text_dir)?
                    .path("--stats-csv", &data.stats_csv)?
                    .path("--split", &data.splits[2].1)?
                    .path("--predictions", &s.test)?
                    .path("--output", &s.scores)?
                    .done(),
            );
        }
        let mut inputs: Vec<PathBuf> = systems.iter().map(|s| s.test.clone()).collect();
        inputs.extend([
            data.gold_dir.clone(),
            data.raw_text_dir.clone(),
            data.stats_csv.clone(),
            data.splits[2].1.clone(),
        ]);
        stages.push(Stage {
            name: "evaluate".into(),
            about: "official MedDec scores of every model and the ensemble on test".into(),
            dir: eval_dir,
            commands,
            inputs,
            outputs: systems.iter().map(|s| s.scores.clone()).collect(),
        });

        if config.view.enabled {
            let dir = out.join("view");
            let mut inputs: Vec<PathBuf> = systems.iter().map(|s| s.test.clone()).collect();
            inputs.extend([
                data.gold_dir.clone(),
                data.raw_text_dir.clone(),
                data.stats_csv.clone(),
                data.splits[2].1.clone(),
            ]);
            stages.push(Stage {
                name: "view".into(),
                about: "the browser viewer of every model and the ensemble on test".into(),
                dir: dir.clone(),
                commands: vec![
                    Line::new(&["view"])
                        .path("--raw-text-dir", &data.raw_text_dir)?
                        .paths("--predictions", &inputs[..systems.len()])?
                        .path("--gold-dir", &data.gold_dir)?
                        .path("--stats-csv", &data.stats_csv)?
                        .path("--split", &data.splits[2].1)?
                        .path("--out", &dir.join("site"))?
                        .done(),
                ],
                inputs,
                outputs: vec![dir.join("site")],
            });
        }
        Ok(Plan {
            stages,
            systems,
            out,
            generated,
        })
    }

    /// The index of the stage called `name`, or an error listing the stages.
    pub fn position(&self, name: &str) -> Result<usize, PipelineError> {
        self.stages
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| PipelineError::UnknownStage {
                name: name.to_string(),
                stages: self
                    .stages
                    .iter()
                    .map(|s| s.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

#[cfg(test)]
mod tests;
