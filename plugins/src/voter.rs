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
use lamar_core::ensemble::decide::{Decision, apply_decisions, cluster_count, document_clusters};
use lamar_core::ensemble::input::VotesByDocument;
use lamar_core::ensemble::scc::SccParams;
use lamar_core::ensemble::{Explanation, Merged};
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
        let (plugin, component) = host.compiled(path, PluginKind::Voter)?;
        let mut linker = wasmtime::component::Linker::new(&host.engine);
        linker.allow_shadowing(false);
        let pre = linker
            .instantiate_pre(&component)
            .and_then(bindings::VoterPluginPre::new)
            .map_err(|e| PluginError::Load {
                plugin: plugin.clone(),
                message: format!("{e:#}"),
            })?;
        let pool = Pool::new(
            plugin,
            host.engine.clone(),
            host.limits,
            Box::new(move |store| pre.instantiate(store)),
        );
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

    /// Merges every document (sorted by name, as the native ensemble).
    pub fn merge_all(
        &self,
        votes: &VotesByDocument,
        params: &SccParams,
    ) -> Result<Vec<(String, Merged)>, PluginError> {
        let mut out = Vec::with_capacity(votes.len());
        let mut batch: Vec<(String, Explanation)> = Vec::new();
        let mut batch_clusters = 0;
        for (name, doc) in votes {
            let clusters = document_clusters(doc, params);
            batch_clusters += cluster_count(&clusters);
            batch.push((name.clone(), clusters));
            if batch_clusters >= BATCH_CLUSTERS {
                out.extend(self.decide(std::mem::take(&mut batch), params, votes)?);
                batch_clusters = 0;
            }
        }
        if !batch.is_empty() {
            out.extend(self.decide(batch, params, votes)?);
        }
        Ok(out)
    }

    /// One plugin call for a batch of documents.
    fn decide(
        &self,
        batch: Vec<(String, Explanation)>,
        params: &SccParams,
        votes: &VotesByDocument,
    ) -> Result<Vec<(String, Merged)>, PluginError> {
        let plugin = &self.pool.plugin;
        let mut clusters = Vec::new();
        let mut members = Vec::new();
        for (name, explanation) in &batch {
            let models = votes.get(name).map_or(0, |v| v.models.len());
            for category in &explanation.categories {
                let weight_of = |model: usize| {
                    category
                        .weights
                        .iter()
                        .find(|w| w.model == model)
                        .map_or(0.0, |w| w.weight)
                };
                for record in &category.clusters {
                    clusters.push(wit::Cluster {
                        category: category.category.id(),
                        models: to_u32(models, plugin, name)?,
                        support: record.support,
                        first: to_u32(members.len(), plugin, name)?,
                        count: to_u32(record.members.len(), plugin, name)?,
                    });
                    for m in &record.members {
                        members.push(wit::Member {
                            model: to_u32(m.model, plugin, name)?,
                            weight: weight_of(m.model),
                            start: to_u32(m.start, plugin, name)?,
                            end: to_u32(m.end, plugin, name)?,
                        });
                    }
                }
            }
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
        let mut rest = decisions.as_slice();
        let mut out = Vec::with_capacity(batch.len());
        for (name, explanation) in batch {
            let (own, next) = rest.split_at(cluster_count(&explanation));
            rest = next;
            let own: Vec<Decision> = own
                .iter()
                .map(|d| Decision {
                    keep: d.keep,
                    start: d.start as usize,
                    end: d.end as usize,
                })
                .collect();
            let merged =
                apply_decisions(explanation, &own, params.min_iou_same_cat).map_err(|e| {
                    PluginError::BadOutput {
                        plugin: plugin.clone(),
                        message: format!("document {name}: {e}"),
                    }
                })?;
            out.push((name, merged));
        }
        Ok(out)
    }
}

/// An offset or count as the interface's `u32`.
fn to_u32(value: usize, plugin: &str, document: &str) -> Result<u32, PluginError> {
    u32::try_from(value).map_err(|_| PluginError::Input {
        plugin: plugin.to_string(),
        message: format!("document {document}: {value} does not fit the interface's u32"),
    })
}
