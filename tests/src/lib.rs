//! Cross-crate tests of lamar live in `tests/tests/`; this library is empty on purpose.
