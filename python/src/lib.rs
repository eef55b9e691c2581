//! `lamar._native`: lamar-core for Python.
//!
//! A thin layer: every function here hands its inputs to lamar-core as they are (strings,
//! integer triples, or JSON text in MedDec's shapes, parsed by the same readers the CLI uses)
//! and returns plain values or JSON text. The Python package `lamar` (`python/pysrc/lamar`) turns
//! them into dictionaries and lists, gives them Pythonic signatures and documents them; its tests
//! (`python/tests`) compare every function with the CLI and with the reference implementations.
//!
//! Long work (scoring, merging, rewards over many completions) runs with the GIL released.

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

mod codec;
mod convert;
mod ensemble;
mod rewards;
mod scoring;
mod synth;

create_exception!(
    _native,
    LamarError,
    PyValueError,
    "Raised when lamar-core refuses an input: the message is the one the CLI prints."
);

/// A lamar-core error as a Python exception with the same message.
pub(crate) fn error(e: impl std::fmt::Display) -> PyErr {
    LamarError::new_err(e.to_string())
}

/// The JSON text of `value`: a string as it is, anything else through Python's `json.dumps`
/// (non-ASCII kept).
pub(crate) fn json_text(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(text) = value.cast::<pyo3::types::PyString>() {
        return Ok(text.to_cow()?.into_owned());
    }
    let kwargs = pyo3::types::PyDict::new(value.py());
    kwargs.set_item("ensure_ascii", false)?;
    value
        .py()
        .import("json")?
        .call_method("dumps", (value,), Some(&kwargs))?
        .extract()
}

/// A span as Python passes it: `(start_offset, end_offset, category)`.
pub(crate) type SpanTuple = (i64, i64, i64);

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("LamarError", m.py().get_type::<LamarError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(codec::encode, m)?)?;
    m.add_function(wrap_pyfunction!(codec::decode, m)?)?;
    m.add_class::<scoring::Scorer>()?;
    m.add_function(wrap_pyfunction!(ensemble::vote, m)?)?;
    m.add_function(wrap_pyfunction!(ensemble::voter_names, m)?)?;
    m.add_function(wrap_pyfunction!(rewards::reward, m)?)?;
    m.add_function(wrap_pyfunction!(rewards::reward_names, m)?)?;
    m.add_function(wrap_pyfunction!(synth::synth, m)?)?;
    Ok(())
}
