//! Predictions straight from Python lists and back, without JSON in between.
//!
//! Each reader handles the shapes MedDec files have (dicts, strings, integers) and gives up,
//! returning `None`, on anything else; the caller then serialises the list and lets the CLI's
//! JSON readers decide, so that every input ends exactly as it would through a file.

use lamar_core::Span;
use lamar_core::ensemble::input::span_if_valid;
use lamar_core::formats::predictions::PredictedSpan;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyList, PyString};

/// `dict[key]` as an `i64`: `Ok(None)` when absent or not an integer, `Err(())` when the
/// fast path cannot decide (an integer beyond 64 bits).
fn integer(dict: &Bound<'_, PyDict>, key: &str) -> Result<Option<i64>, ()> {
    match dict.get_item(key).map_err(|_| ())? {
        Some(v) if v.is_instance_of::<PyInt>() => v.extract::<i64>().map(Some).map_err(|_| ()),
        _ => Ok(None),
    }
}

/// One model's entries for the consensus, validated as LAMAR's `mbr.py` validates them
/// (booleans count as integers, as `isinstance(x, int)` says); entries without a string
/// `file_name` are skipped, or hand over to JSON when the name is neither a string nor `None`.
pub fn votes_from_list(list: &Bound<'_, PyList>) -> Option<Vec<(String, Vec<Span>)>> {
    let mut entries = Vec::with_capacity(list.len());
    for item in list.iter() {
        let Ok(entry) = item.cast::<PyDict>() else {
            continue;
        };
        let name = match entry.get_item("file_name").ok()? {
            None => continue,
            Some(n) if n.is_none() => continue,
            Some(n) => n.cast::<PyString>().ok()?.to_cow().ok()?.into_owned(),
        };
        let mut spans = Vec::new();
        if let Some(predictions) = entry.get_item("predictions").ok()?
            && let Ok(predictions) = predictions.cast::<PyList>()
        {
            for span in predictions.iter() {
                let Ok(span) = span.cast::<PyDict>() else {
                    continue;
                };
                let (start, end, category) = (
                    integer(span, "start_offset").ok()?,
                    integer(span, "end_offset").ok()?,
                    integer(span, "category").ok()?,
                );
                if let (Some(s), Some(e), Some(c)) = (start, end, category) {
                    spans.extend(span_if_valid(s, e, c));
                }
            }
        }
        entries.push((name, spans));
    }
    Some(entries)
}

/// A strict `int` field (not a boolean) of a prediction.
fn strict_integer(dict: &Bound<'_, PyDict>, key: &str) -> Option<i64> {
    let value = dict.get_item(key).ok()??;
    if value.is_instance_of::<PyBool>() {
        return None;
    }
    value.extract::<i64>().ok()
}

/// A predictions list for the scorer: every entry a dict with a string `file_name` and a list of
/// dicts with integer offsets and category (and optionally a string `decision`), else `None`
/// (JSON then reports what is wrong, as `lamar evaluate` does).
pub fn predictions_from_list(
    list: &Bound<'_, PyList>,
) -> Option<Vec<(String, Vec<PredictedSpan>)>> {
    let mut files = Vec::with_capacity(list.len());
    for item in list.iter() {
        let entry = item.cast::<PyDict>().ok()?;
        let name = entry.get_item("file_name").ok()??;
        let name = name.cast::<PyString>().ok()?.to_cow().ok()?.into_owned();
        let predictions = entry.get_item("predictions").ok()??;
        let predictions = predictions.cast::<PyList>().ok()?;
        let mut spans = Vec::with_capacity(predictions.len());
        for span in predictions.iter() {
            let span = span.cast::<PyDict>().ok()?;
            let decision = match span.get_item("decision").ok()? {
                None => None,
                Some(d) => Some(d.cast::<PyString>().ok()?.to_cow().ok()?.into_owned()),
            };
            spans.push(PredictedSpan {
                start_offset: strict_integer(span, "start_offset")?,
                end_offset: strict_integer(span, "end_offset")?,
                category: strict_integer(span, "category")?,
                decision,
            });
        }
        files.push((name, spans));
    }
    Some(files)
}

/// A predictions list as Python objects: `[{"file_name", "predictions": [{start_offset,
/// end_offset, category}]}]`.
pub fn predictions_to_list<'py>(
    py: Python<'py>,
    files: &[(String, Vec<Span>)],
) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for (name, spans) in files {
        let predictions = PyList::empty(py);
        for s in spans {
            let span = PyDict::new(py);
            span.set_item("start_offset", s.start)?;
            span.set_item("end_offset", s.end)?;
            span.set_item("category", s.category.id())?;
            predictions.append(span)?;
        }
        let entry = PyDict::new(py);
        entry.set_item("file_name", name)?;
        entry.set_item("predictions", predictions)?;
        out.append(entry)?;
    }
    Ok(out)
}
