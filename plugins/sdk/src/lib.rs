//! # lamar-plugin-sdk
//!
//! Everything a Rust plugin for lamar needs: the bindings of the plugin contract
//! (`plugins/wit/lamar-plugin.wit`, the single source of truth), an export macro per plugin
//! kind, and small helpers.
//!
//! A voter plugin is a `cdylib` crate built for `wasm32-unknown-unknown`:
//!
//! ```ignore
//! use lamar_plugin_sdk::voter::{Cluster, Decision, Guest, Info, Member, Thresholds};
//!
//! struct KeepAll;
//!
//! impl Guest for KeepAll {
//!     fn info() -> Info {
//!         Info {
//!             name: "keep-all".into(),
//!             version: "1.0.0".into(),
//!             description: "Keeps every cluster, widest member.".into(),
//!         }
//!     }
//!     fn vote(_: Thresholds, clusters: Vec<Cluster>, members: Vec<Member>) -> Result<Vec<Decision>, String> {
//!         lamar_plugin_sdk::voter::each_cluster(&clusters, &members, |_, m| {
//!             let widest = m.iter().max_by_key(|x| x.end - x.start).unwrap();
//!             Decision { keep: true, start: widest.start, end: widest.end }
//!         })
//!     }
//! }
//!
//! lamar_plugin_sdk::voter::export_voter!(KeepAll);
//! ```
//!
//! Build it with `cargo build --target wasm32-unknown-unknown --profile wasm` (or `--release`)
//! and pass the `.wasm` file to `lamar ensemble --voter`. lamar turns the module into a
//! component when it loads it; the plugin must import nothing but the WIT's shared `types` (plain
//! Rust without I/O does not).

/// Bindings of the `voter` interface.
pub mod voter {
    wit_bindgen::generate!({
        world: "voter-plugin",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_voter",
        default_bindings_module: "lamar_plugin_sdk::voter",
    });

    pub use exports::lamar::plugin::voter::{Cluster, Decision, Guest, Member, Thresholds};
    pub use lamar::plugin::types::PluginInfo as Info;

    /// Calls `decide` on every cluster with its members (checked against the member list) and
    /// collects the decisions in order.
    pub fn each_cluster(
        clusters: &[Cluster],
        members: &[Member],
        mut decide: impl FnMut(&Cluster, &[Member]) -> Decision,
    ) -> Result<Vec<Decision>, String> {
        clusters
            .iter()
            .map(|c| {
                let (first, count) = (c.first as usize, c.count as usize);
                let own = first
                    .checked_add(count)
                    .and_then(|end| members.get(first..end))
                    .filter(|own| !own.is_empty())
                    .ok_or_else(|| format!("cluster members {first}+{count} out of range"))?;
                Ok(decide(c, own))
            })
            .collect()
    }
}

/// Bindings of the `reward` interface.
pub mod reward {
    wit_bindgen::generate!({
        world: "reward-plugin",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "export_reward",
        default_bindings_module: "lamar_plugin_sdk::reward",
    });

    pub use exports::lamar::plugin::reward::{Guest, Sample};
    pub use lamar::plugin::types::PluginInfo as Info;
}
