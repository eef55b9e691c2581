//! Cross-crate tests: the synthetic corpus on disk, read back through the MedDec readers, the
//! codec, and the browser bindings, agreeing with each other.

use lamar_core::codec::{DecodeOptions, canonicalize, decode, encode};
use lamar_core::formats::gold::read_gold_dir;
use lamar_core::formats::predictions::read_predictions;
use lamar_core::formats::raw_text::read_raw_text_of;
use lamar_core::formats::rows::{TrainingRow, read_model_outputs};
use lamar_core::formats::split::read_split;
use lamar_core::formats::stats::read_stats;
use lamar_core::synth::{
    CorpusLayout, NoiseRates, SynthConfig, generate, simulate, write_corpus, write_simulated_model,
};

fn corpus_on_disk(docs: usize) -> (tempfile::TempDir, lamar_core::synth::SyntheticCorpus) {
    let dir = tempfile::tempdir().unwrap();
    let corpus = generate(&SynthConfig { docs, seed: 11 });
    let layout = CorpusLayout::new(dir.path());
    write_corpus(&corpus, &layout, |_| {}).unwrap();
    for k in 0..2 {
        write_simulated_model(&simulate(&corpus, k, &NoiseRates::default(), 11), &layout).unwrap();
    }
    (dir, corpus)
}

#[test]
fn files_read_back_exactly_as_generated() {
    let (dir, corpus) = corpus_on_disk(60);
    let layout = CorpusLayout::new(dir.path());
    let gold = read_gold_dir(&layout.gold_dir()).unwrap();
    assert_eq!(gold.len(), corpus.documents.len());
    let mut crlf = 0;
    for doc in &corpus.documents {
        // CRLF files read back with universal newlines, so offsets still hold.
        let text = read_raw_text_of(&layout.raw_text_dir(), &doc.id).unwrap();
        assert_eq!(text, doc.text, "{}", doc.id);
        crlf += usize::from(doc.crlf_on_disk);
        let (spans, skipped) = gold[&doc.id].spans(text.chars().count());
        assert_eq!(spans, doc.gold);
        assert_eq!(skipped.len(), doc.out_of_scope.len());
    }
    assert!(crlf > 0, "some raw files are written with CRLF line ends");
    let stats = read_stats(&layout.stats()).unwrap();
    assert_eq!(stats.len(), corpus.documents.len());
    assert_eq!(read_split(&layout.split("val")).unwrap(), corpus.val);
}

#[test]
fn every_training_target_decodes_to_its_gold() {
    let (_dir, corpus) = corpus_on_disk(80);
    for doc in &corpus.documents {
        let (row, _) = TrainingRow::from_gold(&doc.id, &doc.text, &doc.gold_document());
        let mut got = decode(&row.gold_span, &doc.text, &DecodeOptions::default()).plain_spans();
        let mut want = canonicalize(&doc.gold);
        got.sort();
        want.sort();
        assert_eq!(got, want, "{}", doc.id);
    }
}

#[test]
fn browser_bindings_decode_like_the_core() {
    let (dir, corpus) = corpus_on_disk(30);
    let layout = CorpusLayout::new(dir.path());
    let outputs = read_model_outputs(&layout.outputs("model_1")).unwrap();
    assert_eq!(outputs.len(), corpus.documents.len());
    for (doc, out) in corpus.documents.iter().zip(&outputs) {
        assert_eq!(out.file_id, doc.id);
        let native = decode(&out.predicted, &doc.text, &DecodeOptions::default());
        let via_wasm: serde_json::Value =
            serde_json::from_str(&lamar_wasm::decode_tags(&out.predicted, &doc.text)).unwrap();
        let wasm_spans = via_wasm["spans"].as_array().unwrap();
        assert_eq!(wasm_spans.len(), native.spans.len());
        for (w, n) in wasm_spans.iter().zip(&native.spans) {
            assert_eq!(w["span"]["start"].as_u64().unwrap() as usize, n.span.start);
            assert_eq!(w["span"]["end"].as_u64().unwrap() as usize, n.span.end);
            assert_eq!(
                w["span"]["category"].as_u64().unwrap() as u8,
                n.span.category.id()
            );
        }
        assert_eq!(
            via_wasm["dropped"].as_array().unwrap().len(),
            native.dropped.len()
        );
        let spans = serde_json::to_string(&doc.gold).unwrap();
        assert_eq!(
            lamar_wasm::encode_tags(&doc.text, &spans).unwrap(),
            encode(&doc.text, &doc.gold).unwrap()
        );
    }
}

#[test]
fn simulated_predictions_are_valid_submissions() {
    let (dir, corpus) = corpus_on_disk(20);
    let layout = CorpusLayout::new(dir.path());
    let preds = read_predictions(&layout.predictions("model_0")).unwrap();
    assert_eq!(preds.len(), corpus.documents.len());
    for (p, doc) in preds.iter().zip(&corpus.documents) {
        assert_eq!(p.file_name, doc.id);
        let (_, invalid) = p.spans(Some(doc.text.chars().count()));
        assert_eq!(invalid, 0);
        let offsets: Vec<(i64, i64)> = p
            .predictions
            .iter()
            .map(|s| (s.start_offset, s.end_offset))
            .collect();
        assert!(
            offsets.windows(2).all(|w| w[0] <= w[1]),
            "sorted by (start, end)"
        );
    }
}
