//! Pseudo-labels from unlabeled notes (LAMAR's Model 3, `lamar-spec.md` §8): the unlabeled
//! discharge summaries of MIMIC-III ([`extract`]), then (issue 20, to come) their embeddings,
//! nearest neighbours of the MedDec documents, and the entropy-based selection mixed into the
//! training data.

pub mod embeddings;
pub mod explore;
pub mod extract;
pub mod retrieve;
pub mod select;
