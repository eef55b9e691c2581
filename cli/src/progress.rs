//! Progress bars for long steps (drawn on stderr, hidden when it is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` items labelled `what`.
pub fn bar(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>12} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// The bar of a training run of `total` steps, `done` of them already done by the checkpoint
/// in `checkpoint` it resumes from (said on stdout).
pub fn training(
    total: usize,
    done: usize,
    what: &str,
    checkpoint: &std::path::Path,
) -> ProgressBar {
    if done > 0 {
        println!("resuming after step {done} from {}", checkpoint.display());
    }
    let b = bar(total, what);
    b.set_position(done as u64);
    b
}

/// A bar over `bytes` bytes labelled `what` (throughput in bytes per second).
pub fn bytes(bytes: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(bytes);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>12} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}
