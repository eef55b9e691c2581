//! Where a forward call's time goes, stage by stage (`qwen35-bench --profile`). A [`Stopwatch`]
//! given to the model ([`super::model::Qwen35Model::set_stopwatch`]) waits for the device at
//! the end of every stage and charges the time since the previous stage's end to it, so each
//! stage's time is its host work plus its device work, without the overlap of a normal run
//! (the stages' sum is an upper bound of an unprofiled call). Without a stopwatch the stage
//! marks cost nothing.

use candle_core::{Device, Result};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

/// Seconds and counts per stage name, accumulated over forward calls.
pub struct Stopwatch {
    device: Device,
    state: Mutex<Laps>,
}

struct Laps {
    last: Instant,
    stages: BTreeMap<&'static str, (f64, usize)>,
    /// The most device memory in use (bytes) at the end of each stage (CUDA only).
    used: BTreeMap<&'static str, u64>,
}

impl Stopwatch {
    /// A stopwatch for work on `device`.
    pub fn new(device: &Device) -> Self {
        Stopwatch {
            device: device.clone(),
            state: Mutex::new(Laps {
                last: Instant::now(),
                stages: BTreeMap::new(),
                used: BTreeMap::new(),
            }),
        }
    }

    /// Starts timing from now (the time before is charged to no stage).
    pub fn restart(&self) -> Result<()> {
        self.device.synchronize()?;
        self.laps().last = Instant::now();
        Ok(())
    }

    /// Ends stage `name`: waits for the device and charges the time since the last mark.
    pub fn lap(&self, name: &'static str) -> Result<()> {
        self.device.synchronize()?;
        let now = Instant::now();
        let used = self.device_memory_in_use()?;
        let mut laps = self.laps();
        let spent = now.duration_since(laps.last).as_secs_f64();
        let entry = laps.stages.entry(name).or_insert((0.0, 0));
        entry.0 += spent;
        entry.1 += 1;
        if let Some(bytes) = used {
            let most = laps.used.entry(name).or_insert(0);
            *most = (*most).max(bytes);
        }
        // Memory queries take time too: not charged to the next stage.
        laps.last = Instant::now();
        Ok(())
    }

    /// [`Stopwatch::lap`] on `watch` when there is one (a model's optional stopwatch); nothing
    /// otherwise.
    pub fn lap_on(watch: Option<&Stopwatch>, name: &'static str) -> Result<()> {
        match watch {
            Some(watch) => watch.lap(name),
            None => Ok(()),
        }
    }

    /// `(stage, seconds, laps)` for every stage so far, by name; then forgets them.
    pub fn take(&self) -> Vec<(&'static str, f64, usize)> {
        self.take_with_memory()
            .into_iter()
            .map(|(k, s, n, _)| (k, s, n))
            .collect()
    }

    /// [`Stopwatch::take`] with the most device memory in use (bytes, as the driver reports
    /// it after the stage's work finished) at the end of each stage; `None` off CUDA.
    pub fn take_with_memory(&self) -> Vec<(&'static str, f64, usize, Option<u64>)> {
        let mut laps = self.laps();
        let stages = std::mem::take(&mut laps.stages);
        let mut used = std::mem::take(&mut laps.used);
        stages
            .into_iter()
            .map(|(k, (s, n))| (k, s, n, used.remove(k)))
            .collect()
    }

    /// Device memory in use now (total minus free), on CUDA.
    fn device_memory_in_use(&self) -> Result<Option<u64>> {
        #[cfg(feature = "cuda")]
        if let Device::Cuda(cuda) = &self.device {
            use candle_core::cuda_backend::WrapErr;
            let (free, total) = cuda.cuda_stream().context().mem_get_info().w()?;
            return Ok(Some((total - free) as u64));
        }
        Ok(None)
    }

    fn laps(&self) -> std::sync::MutexGuard<'_, Laps> {
        // A panic while holding the lock leaves only timings behind: keep using them.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn laps_add_up_per_stage_and_take_forgets_them() {
        let watch = Stopwatch::new(&Device::Cpu);
        watch.restart().unwrap();
        watch.lap("b").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        watch.lap("a").unwrap();
        watch.lap("b").unwrap();
        let laps = watch.take();
        let names: Vec<_> = laps.iter().map(|(n, _, k)| (*n, *k)).collect();
        assert_eq!(names, [("a", 1), ("b", 2)]);
        assert!(laps[0].1 >= 0.002, "stage a took {} s", laps[0].1);
        assert!(watch.take().is_empty());
    }
}
