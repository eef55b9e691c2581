//! One module per subcommand.

pub mod demo;
pub mod encoder;
pub mod ensemble;
pub mod evaluate;
pub mod export;
pub mod grpo;
pub mod infer;
pub mod offsets;
pub mod outside;
pub mod plugin;
pub mod pseudo;
pub mod reward;
pub mod run;
pub mod synth;
pub mod tag;
pub mod train;
pub mod tune;
pub mod view;
