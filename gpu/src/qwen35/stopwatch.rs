//! Where a forward call's time goes, stage by stage (`qwen35-bench --profile`). A [`Stopwatch`]
//! given to the model ([`super::model::Qwen35Model::set_stopwatch`]) waits for the device at
//! the end of every stage and charges the time since the previous stage's end to it, so each
//! stage's time is its host work plus its device work, without the overlap of a normal run
//! (the stages' sum is an upper bound of an unprofiled call). Without a stopwatch the stage
//! marks cost nothing.
//!
//! A backward pass is one call into candle's autograd, so stage marks cannot split it. For
//! that, [`Stopwatch::mark_backward`] threads an identity operation into the forward graph at
//! a stage's input: autograd reaches it only after the gradients of everything the stage
//! computed from it, and its backward ends a stage there. Each such stage's time is the
//! backward work between it and the previous mark (nearer the loss).

use candle_core::{CustomOp1, Device, Layout, Result, Shape, Tensor};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
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

    /// `x` through an identity operation whose backward ends stage `name` (see the module's
    /// documentation): name it after the work done on the way back from the next mark to this
    /// one. `x` itself when there is no stopwatch or `x` is not tracked (the identity copies
    /// `x`: marks are for profiling runs only).
    pub fn mark_backward(
        watch: Option<&Arc<Stopwatch>>,
        x: &Tensor,
        name: &'static str,
    ) -> Result<Tensor> {
        match watch {
            Some(watch) if x.track_op() => x.contiguous()?.apply_op1(BackwardMark {
                watch: watch.clone(),
                name,
            }),
            _ => Ok(x.clone()),
        }
    }

    fn laps(&self) -> std::sync::MutexGuard<'_, Laps> {
        // A panic while holding the lock leaves only timings behind: keep using them.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The identity whose backward pass laps a stopwatch ([`Stopwatch::mark_backward`]).
struct BackwardMark {
    watch: Arc<Stopwatch>,
    name: &'static str,
}

impl CustomOp1 for BackwardMark {
    fn name(&self) -> &'static str {
        "backward-mark"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &Layout,
    ) -> Result<(candle_core::CpuStorage, Shape)> {
        whole(layout)?;
        Ok((storage.clone(), layout.shape().clone()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        use candle_core::backend::BackendStorage;
        whole(layout)?;
        Ok((storage.try_clone(layout)?, layout.shape().clone()))
    }

    fn bwd(&self, _: &Tensor, _: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        self.watch.lap(self.name)?;
        Ok(Some(grad.clone()))
    }
}

/// A backward mark's input is whole and contiguous ([`Stopwatch::mark_backward`] makes it so).
fn whole(layout: &Layout) -> Result<()> {
    if layout.is_contiguous() && layout.start_offset() == 0 {
        Ok(())
    } else {
        candle_core::bail!("backward mark: the input is not a whole contiguous tensor")
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

    #[test]
    fn backward_marks_pass_values_and_gradients_and_lap_in_the_backward_pass() {
        let watch = Arc::new(Stopwatch::new(&Device::Cpu));
        let x = candle_core::Var::new(&[1.0f32, -2.0, 3.0], &Device::Cpu).unwrap();
        let marked = Stopwatch::mark_backward(Some(&watch), x.as_tensor(), "back").unwrap();
        assert_eq!(marked.to_vec1::<f32>().unwrap(), [1.0, -2.0, 3.0]);
        assert!(watch.take().is_empty(), "the forward pass laps nothing");
        let grads = marked.sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let grad = grads.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(grad, [2.0, -4.0, 6.0]);
        let laps: Vec<_> = watch.take().iter().map(|(n, _, k)| (*n, *k)).collect();
        assert_eq!(laps, [("back", 1)]);
        // Untracked inputs and no stopwatch: no operation, no lap.
        let plain = Tensor::new(&[1.0f32], &Device::Cpu).unwrap();
        Stopwatch::mark_backward(Some(&watch), &plain, "none").unwrap();
        Stopwatch::mark_backward(None, x.as_tensor(), "none").unwrap();
        assert!(watch.take().is_empty());
    }
}
