//! `lamar pseudo retrieve`'s output read back (for the viewer's retrieval page): the lines of
//! `neighbours.jsonl` checked with their line numbers, then grouped by query.

use crate::formats::FormatError;
use crate::pseudo::retrieve::MatchRow;

/// One chosen note of a query.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChosenNote {
    /// 1-based rank within the query's notes.
    pub rank: usize,
    /// The similarity.
    pub score: f64,
    /// The note's id.
    pub ref_file_id: String,
}

/// A query (a MedDec document) and the notes it was given, best first.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueryNeighbours {
    /// The query's split.
    pub split: String,
    /// The query's document id.
    pub query_file_id: String,
    /// Its notes by rank.
    pub notes: Vec<ChosenNote>,
}

/// The rows of a `neighbours.jsonl` (named `name` in errors); blank lines skipped.
pub fn parse_matches(jsonl: &str, name: &str) -> Result<Vec<MatchRow>, FormatError> {
    let mut rows = Vec::new();
    for (k, line) in jsonl.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let row: MatchRow = serde_json::from_str(line).map_err(|e| FormatError::Invalid {
            path: name.to_string(),
            location: format!("line {}", k + 1),
            message: format!("not a lamar pseudo retrieve record: {e}"),
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// The rows grouped by query, queries in their order (`query_idx`), notes by rank.
pub fn group_matches(rows: &[MatchRow]) -> Vec<QueryNeighbours> {
    let mut sorted: Vec<&MatchRow> = rows.iter().collect();
    sorted.sort_by_key(|r| (r.query_idx, r.rank));
    let mut groups: Vec<(usize, QueryNeighbours)> = Vec::new();
    for row in sorted {
        if groups.last().is_none_or(|(q, _)| *q != row.query_idx) {
            groups.push((
                row.query_idx,
                QueryNeighbours {
                    split: row.split.clone(),
                    query_file_id: row.query_file_id.clone(),
                    notes: Vec::new(),
                },
            ));
        }
        if let Some((_, group)) = groups.last_mut() {
            group.notes.push(ChosenNote {
                rank: row.rank,
                score: row.score,
                ref_file_id: row.ref_file_id.clone(),
            });
        }
    }
    groups.into_iter().map(|(_, g)| g).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(q: usize, rank: usize, note: &str) -> String {
        serde_json::json!({"split": "test", "query_idx": q, "query_file_id": format!("d{q}"),
            "rank": rank, "score": 1.0 / rank as f64, "ref_idx": 0, "ref_file_id": note})
        .to_string()
    }

    #[test]
    fn rows_group_by_query_in_order_with_notes_by_rank() {
        let text = [
            line(1, 2, "b"),
            line(0, 1, "x"),
            String::new(),
            line(1, 1, "a"),
        ]
        .join("\n");
        let groups = group_matches(&parse_matches(&text, "n.jsonl").unwrap());
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].query_file_id, "d0");
        let ids: Vec<&str> = groups[1]
            .notes
            .iter()
            .map(|n| n.ref_file_id.as_str())
            .collect();
        assert_eq!(ids, ["a", "b"]);
    }

    #[test]
    fn a_bad_line_is_named() {
        let text = format!("{}\n{{\"step\": 1}}", line(0, 1, "x"));
        let err = parse_matches(&text, "n.jsonl").unwrap_err().to_string();
        assert!(err.contains("n.jsonl") && err.contains("line 2"), "{err}");
    }
}
