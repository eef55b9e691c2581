//! The two compute shaders' sources, completed for a storage type, and their modules.

use super::types::Storage;

/// Accumulators per thread of `similarity.wgsl`: 8 query rows × 2 vec4s of corpus rows.
const ROWS: usize = 8;
const QUADS: usize = 2;

/// `similarity.wgsl` for one storage type, with its unrolled step filled in.
pub(super) fn similarity_source(storage: Storage) -> String {
    let template = include_str!("similarity.wgsl");
    let (element, queries, corpus) = match storage {
        Storage::F32 => (
            "vec4<f32>",
            "return queries[index];",
            "return corpus[index];",
        ),
        Storage::F16 => (
            "vec2<u32>",
            "let w = queries[index]; return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));",
            "let w = corpus[index]; return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));",
        ),
    };
    let lanes = ["x", "y", "z", "w"];
    let mut declare = String::new();
    let mut multiply = String::new();
    let mut store = String::new();
    for i in 0..ROWS {
        // Row i of the thread: 4 ty + i for the first four, 64 + 4 ty + (i - 4) after.
        let (operand, lane) = (i / 4, lanes[i % 4]);
        let row = format!("row0 + {}u + 4u * ty + {}u", 64 * (i / 4), i % 4);
        for j in 0..QUADS {
            let acc = format!("acc_{i}_{j}");
            declare.push_str(&format!("var {acc} = vec4<f32>(0.0);\n    "));
            multiply.push_str(&format!(
                "{acc} = {acc} + a{operand}.{lane} * b{j};\n            "
            ));
            store.push_str(&format!(
                "scores[({row}) * stride + first + {}u] = {acc};\n    ",
                16 * j
            ));
        }
    }
    template
        .replace("__STORAGE__", element)
        .replace("__LOAD_QUERIES__", queries)
        .replace("__LOAD_CORPUS__", corpus)
        .replace("__DECLARE__", declare.trim_end())
        .replace("__MULTIPLY__", multiply.trim_end())
        .replace("__STORE__", store.trim_end())
}

/// `select.wgsl` reading scores (`true`) or earlier candidates (`false`).
pub(super) fn select_source(from_scores: bool) -> String {
    include_str!("select.wgsl").replace(
        "__FROM_SCORES__",
        if from_scores { "true" } else { "false" },
    )
}

/// A compute pipeline from WGSL, built without wgpu's injected run-time checks.
///
/// By default wgpu guards every array index of a shader with a clamp and gives every loop an
/// extra counter against infinite loops. Both keep the driver's compiler from unrolling the
/// product's inner loop and from holding its accumulators in registers, which costs most of
/// the product's speed. These two shaders are written so that neither is needed: every index
/// is within its array by construction (the host sizes every buffer for the dispatch it makes,
/// `GpuRetriever::search_batch`), and every loop runs to a bound given by the host's
/// parameters.
pub(super) fn pipeline(
    device: &wgpu::Device,
    label: &str,
    source: String,
    layout: &wgpu::BindGroupLayout,
) -> wgpu::ComputePipeline {
    let descriptor = wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    };
    // SAFETY: see above; the shaders are ours, fixed at compile time except for the storage
    // type's load expressions and the unrolled step, and index only within the buffers that
    // `search_batch` binds for each dispatch.
    let module = unsafe {
        device.create_shader_module_trusted(descriptor, wgpu::ShaderRuntimeChecks::unchecked())
    };
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(layout)],
        immediate_size: 0,
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(label),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_completed_shaders_parse_and_validate() {
        for source in [
            similarity_source(Storage::F32),
            similarity_source(Storage::F16),
            select_source(true),
            select_source(false),
        ] {
            let module = naga::front::wgsl::parse_str(&source)
                .unwrap_or_else(|e| panic!("{}", e.emit_to_string(&source)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::SHADER_FLOAT16_IN_FLOAT32,
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{e:?}"));
        }
    }
}
