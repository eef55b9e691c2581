//! Reward plugins: score completions against the gold for GRPO. The trainer and `lamar reward`
//! use the same call, [`RewardPlugin::score`], which sends the samples in batches; a loaded
//! plugin is a [`Reward`] like the native ones.

use crate::error::PluginError;
use crate::load::PluginKind;
use crate::pool::Pool;
use crate::{PluginHost, PluginInfo};
use lamar_core::reward::{Reward, RewardError};
use std::path::Path;

mod bindings {
    wasmtime::component::bindgen!({ world: "reward-plugin", path: "wit" });
}

use bindings::exports::lamar::plugin::reward as wit;

/// How many samples one call carries.
pub const BATCH_SAMPLES: usize = 64;

/// One completion to score (the samples every [`Reward`] scores).
pub use lamar_core::reward::Sample as RewardInput;

/// A loaded reward plugin.
pub struct RewardPlugin {
    pool: Pool<bindings::RewardPlugin>,
    info: PluginInfo,
}

impl RewardPlugin {
    pub(crate) fn load(host: &PluginHost, path: &Path) -> Result<RewardPlugin, PluginError> {
        let pool = host.pool(path, PluginKind::Reward, |pre| {
            let pre = bindings::RewardPluginPre::new(pre)?;
            Ok(Box::new(move |store| pre.instantiate(store)))
        })?;
        let info = pool.with_instance(|store, b| b.lamar_plugin_reward().call_info(store))?;
        Ok(RewardPlugin {
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

    /// One finite score per input, in order.
    pub fn score(&self, inputs: &[RewardInput<'_>]) -> Result<Vec<f64>, PluginError> {
        let plugin = &self.pool.plugin;
        let mut scores = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(BATCH_SAMPLES) {
            let samples: Vec<wit::Sample> = chunk
                .iter()
                .map(|s| wit::Sample {
                    completion: s.completion.to_string(),
                    gold: s.gold.to_string(),
                    raw_text: s.raw_text.to_string(),
                })
                .collect();
            let got = self
                .pool
                .with_instance(|store, b| b.lamar_plugin_reward().call_reward(store, &samples))?
                .map_err(|message| PluginError::Refused {
                    plugin: plugin.clone(),
                    message,
                })?;
            if got.len() != chunk.len() {
                return Err(PluginError::BadOutput {
                    plugin: plugin.clone(),
                    message: format!("{} scores for {} samples", got.len(), chunk.len()),
                });
            }
            if let Some(k) = got.iter().position(|x| !x.is_finite()) {
                return Err(PluginError::BadOutput {
                    plugin: plugin.clone(),
                    message: format!("score {} of a batch is {}", k, got[k]),
                });
            }
            scores.extend(got);
        }
        Ok(scores)
    }
}

impl Reward for RewardPlugin {
    fn name(&self) -> &str {
        &self.info.name
    }

    fn score(&self, samples: &[RewardInput<'_>]) -> Result<Vec<f64>, RewardError> {
        RewardPlugin::score(self, samples).map_err(|e| RewardError::Failed(Box::new(e)))
    }
}
