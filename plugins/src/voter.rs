//! Voter plugins: Span-Cluster Consensus with a plugin deciding the clusters.
//!
//! lamar computes each document's model weights and clusters exactly as the native consensus
//! does ([`lamar_core::ensemble::decide`]), sends them to the plugin in batches of whole
//! documents (one call carries up to [`BATCH_CLUSTERS`] clusters), checks the decisions, then
//! de-duplicates and sorts as the consensus does.

use crate::error::PluginError;
use crate::load::PluginKind;
use crate::pool::Pool;
use crate::{PluginHost, PluginInfo};
use lamar_core::ensemble::decide::{
    Decision, FlatClusters, apply_decisions, apply_flat_decisions, document_clusters,
};
use lamar_core::ensemble::input::VotesByDocument;
use lamar_core::ensemble::scc::SccParams;
use lamar_core::ensemble::{Explanation, Merged, Votes};
use std::path::Path;

mod bindings {
    wasmtime::component::bindgen!({ world: "voter-plugin", path: "wit" });
}

use bindings::exports::lamar::plugin::voter as wit;

/// Roughly how many clusters one call carries (whole documents are never split).
pub const BATCH_CLUSTERS: usize = 4096;

/// A loaded voter plugin.
pub struct VoterPlugin {
    pool: Pool<bindings::VoterPlugin>,
    info: PluginInfo,
}

impl VoterPlugin {
    pub(crate) fn load(host: &PluginHost, path: &Path) -> Result<VoterPlugin, PluginError> {
        let pool = host.pool(path, PluginKind::Voter, |pre| {
            let pre = bindings::VoterPluginPre::new(pre)?;
            Ok(Box::new(move |store| pre.instantiate(store)))
        })?;
        let info = pool.with_instance(|store, b| b.lamar_plugin_voter().call_info(store))?;
        Ok(VoterPlugin {
            pool,
            info: PluginInfo {
                name: info.name,
                version: info.version,
                description: info.description,
            },
        })
    }

    /// What the plugin says about itself.
    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Merges every document (sorted by name, as the native ensemble). With `explain`, each
    /// result carries the weights and clusters with the plugin's decisions; without, only the
    /// spans (faster: no per-cluster records).
    pub fn merge_all(
        &self,
        votes: &VotesByDocument,
        params: &SccParams,
        explain: bool,
    ) -> Result<Vec<(String, Merged)>, PluginError> {
        let mut out = Vec::with_capacity(votes.len());
        let mut batch = Batch::default();
        for (name, doc) in votes {
            batch.add(name, doc, params, explain);
            if batch.flat.clusters.len() >= BATCH_CLUSTERS {
                out.extend(self.decide(std::mem::take(&mut batch), params)?);
            }
        }
        if !batch.documents.is_empty() {
            out.extend(self.decide(batch, params)?);
        }
        Ok(out)
    }

    /// One plugin call for a batch of documents.
    fn decide(
        &self,
        batch: Batch,
        params: &SccParams,
    ) -> Result<Vec<(String, Merged)>, PluginError> {
        let plugin = &self.pool.plugin;
        let input = |message: String| PluginError::Input {
            plugin: plugin.clone(),
            message,
        };
        let u32_of = |v: usize| {
            u32::try_from(v).map_err(|_| input(format!("{v} does not fit the interface's u32")))
        };
        let mut clusters = Vec::with_capacity(batch.flat.clusters.len());
        let mut doc_of_cluster = batch
            .documents
            .iter()
            .flat_map(|d| std::iter::repeat_n(d.models, d.clusters));
        for c in &batch.flat.clusters {
            clusters.push(wit::Cluster {
                category: c.category.id(),
                models: u32_of(doc_of_cluster.next().unwrap_or(0))?,
                support: c.support,
                first: u32_of(c.first)?,
                count: u32_of(c.count)?,
            });
        }
        let mut members = Vec::with_capacity(batch.flat.members.len());
        for m in &batch.flat.members {
            members.push(wit::Member {
                model: u32_of(m.model)?,
                weight: m.weight,
                start: u32_of(m.span.start)?,
                end: u32_of(m.span.end)?,
            });
        }
        let thresholds = wit::Thresholds {
            min_cluster_iou: params.min_cluster_iou,
            min_pairwise_iou: params.min_pairwise_iou,
            min_cluster_support: params.min_cluster_support,
            min_iou_same_cat: params.min_iou_same_cat,
        };
        let decisions = self
            .pool
            .with_instance(|store, b| {
                b.lamar_plugin_voter()
                    .call_vote(store, thresholds, &clusters, &members)
            })?
            .map_err(|message| PluginError::Refused {
                plugin: plugin.clone(),
                message,
            })?;
        if decisions.len() != clusters.len() {
            return Err(PluginError::BadOutput {
                plugin: plugin.clone(),
                message: format!(
                    "{} decisions for {} clusters",
                    decisions.len(),
                    clusters.len()
                ),
            });
        }
        let decisions: Vec<Decision> = decisions
            .iter()
            .map(|d| Decision {
                keep: d.keep,
                start: d.start as usize,
                end: d.end as usize,
            })
            .collect();
        let bad =
            |name: &str, e: lamar_core::ensemble::decide::DecisionError| PluginError::BadOutput {
                plugin: plugin.clone(),
                message: format!("document {name}: {e}"),
            };
        let mut out = Vec::with_capacity(batch.documents.len());
        let mut at = 0;
        for doc in batch.documents {
            let range = at..at + doc.clusters;
            at = range.end;
            let merged = match doc.explanation {
                Some(explanation) => {
                    apply_decisions(explanation, &decisions[range], params.min_iou_same_cat)
                        .map_err(|e| bad(&doc.name, e))?
                }
                None => Merged {
                    spans: apply_flat_decisions(
                        &batch.flat.clusters[range.clone()],
                        &decisions[range],
                        params.min_iou_same_cat,
                    )
                    .map_err(|e| bad(&doc.name, e))?,
                    ..Merged::default()
                },
            };
            out.push((doc.name, merged));
        }
        Ok(out)
    }
}

/// Documents waiting for one plugin call.
#[derive(Default)]
struct Batch {
    flat: FlatClusters,
    documents: Vec<BatchDocument>,
}

struct BatchDocument {
    name: String,
    /// Models present for the document.
    models: usize,
    /// How many clusters it has in the batch.
    clusters: usize,
    /// Its undecided explanation, when one is wanted.
    explanation: Option<Explanation>,
}

impl Batch {
    fn add(&mut self, name: &str, votes: &Votes, params: &SccParams, explain: bool) {
        // Cluster once: from the explanation when one is wanted, directly otherwise.
        let (clusters, explanation) = if explain {
            let explanation = document_clusters(votes, params);
            (self.flat.push_explanation(&explanation), Some(explanation))
        } else {
            (self.flat.push_document(votes, params), None)
        };
        self.documents.push(BatchDocument {
            name: name.to_string(),
            models: votes.models.len(),
            clusters,
            explanation,
        });
    }
}
