//! Prompt filling, chat-template rendering and tokenization against transformers'
//! `apply_chat_template` (golden files made by `gpu/tools/make_chat_golden.py`).
//!
//! Two goldens: the tiny test tokenizer, and Qwen3's real `tokenizer.json` and chat template on
//! every note of the 451-document synthetic corpus (`tests/golden/qwen3_chat`, see its README).
//! `LAMAR_CHAT_GOLDEN_DIR=DIR` runs the first set of comparisons against another snapshot folder
//! whose `expected.json` that script wrote with `--snapshot DIR`.

use lamar_core::prompt::TaskPrompt;
use lamar_model::chat::{ChatTemplate, Message};
use lamar_model::tokenizer::TextTokenizer;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Case {
    name: String,
    document: Option<String>,
    messages: Vec<RawMessage>,
    add_generation_prompt: bool,
    enable_thinking: bool,
    text: String,
    ids: Vec<u32>,
    decoded: String,
}

#[derive(Deserialize)]
struct RawMessage {
    role: String,
    content: String,
}

/// A snapshot folder (tokenizer and chat template) with what transformers made of each case
/// (`expected.json` written by `gpu/tools/make_chat_golden.py`).
struct Golden {
    snapshot: PathBuf,
    cases: Vec<Case>,
    /// Whether the tokenizer's only stop token is `<|im_end|>` (the tiny test tokenizer).
    only_im_end: bool,
    _unpacked: Option<tempfile::TempDir>,
}

fn read_cases(path: &std::path::Path) -> Vec<Case> {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The tiny test tokenizer (gpu/assets/tiny-chat), or a snapshot named by
/// `LAMAR_CHAT_GOLDEN_DIR` holding its own `expected.json`.
fn tiny() -> Golden {
    match std::env::var_os("LAMAR_CHAT_GOLDEN_DIR") {
        Some(dir) => Golden {
            cases: read_cases(&PathBuf::from(&dir).join("expected.json")),
            snapshot: PathBuf::from(dir),
            only_im_end: false,
            _unpacked: None,
        },
        None => Golden {
            snapshot: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/tiny-chat"),
            cases: read_cases(
                &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../tests/golden/chat/expected.json"),
            ),
            only_im_end: true,
            _unpacked: None,
        },
    }
}

/// Qwen3's real `tokenizer.json` and chat template with transformers' rendering and token ids
/// of every note of the 451-document synthetic corpus (tests/golden/qwen3_chat, compressed).
fn qwen3() -> Golden {
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/qwen3_chat");
    let unpacked = tempfile::tempdir().unwrap();
    let gunzip = |name: &str| -> Vec<u8> {
        let file = std::fs::File::open(golden.join(format!("{name}.gz"))).unwrap();
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(file), &mut out).unwrap();
        out
    };
    std::fs::write(
        unpacked.path().join("tokenizer.json"),
        gunzip("tokenizer.json"),
    )
    .unwrap();
    std::fs::copy(
        golden.join("tokenizer_config.json"),
        unpacked.path().join("tokenizer_config.json"),
    )
    .unwrap();
    let cases = serde_json::from_slice(&gunzip("expected.json")).unwrap();
    Golden {
        snapshot: unpacked.path().to_path_buf(),
        cases,
        only_im_end: false,
        _unpacked: Some(unpacked),
    }
}

fn check_rendering(golden: &Golden) {
    let template = ChatTemplate::from_snapshot(&golden.snapshot).unwrap();
    let prompt = TaskPrompt::builtin();
    assert!(golden.cases.len() >= 8);
    for case in &golden.cases {
        let messages: Vec<Message> = case
            .messages
            .iter()
            .map(|m| Message {
                role: m.role.clone(),
                content: m.content.clone(),
            })
            .collect();
        // The user message is Python's prompt.format(raw_text=document).
        if let Some(doc) = &case.document {
            assert_eq!(prompt.fill(doc), messages[0].content, "{}", case.name);
        }
        let text = template
            .render(&messages, case.add_generation_prompt, case.enable_thinking)
            .unwrap();
        assert_eq!(text, case.text, "{}", case.name);
        if case.add_generation_prompt && !case.enable_thinking {
            let doc = case.document.as_deref().unwrap();
            assert_eq!(
                template.generation_prompt(&prompt.fill(doc)).unwrap(),
                case.text
            );
        }
    }
}

fn check_tokens(golden: &Golden) {
    let tokenizer = TextTokenizer::from_snapshot(&golden.snapshot).unwrap();
    for case in &golden.cases {
        assert_eq!(
            tokenizer.encode(&case.text).unwrap(),
            case.ids,
            "{}",
            case.name
        );
        assert_eq!(
            tokenizer.decode(&case.ids, true).unwrap(),
            case.decoded,
            "{}",
            case.name
        );
    }
    let im_end = tokenizer.token_id("<|im_end|>").unwrap();
    assert!(tokenizer.stop_tokens().contains(&im_end));
    if golden.only_im_end {
        assert_eq!(tokenizer.stop_tokens(), &[im_end]);
    }
}

#[test]
fn rendering_matches_apply_chat_template_byte_for_byte() {
    check_rendering(&tiny());
}

#[test]
fn token_ids_and_decoding_match_transformers() {
    check_tokens(&tiny());
}

#[test]
fn the_real_qwen3_tokenizer_and_template_match_transformers_on_451_notes() {
    let golden = qwen3();
    assert_eq!(
        golden
            .cases
            .iter()
            .filter(|c| c.name.starts_with("note_"))
            .count(),
        447,
        "every note but the four of the fixed cases"
    );
    check_rendering(&golden);
    check_tokens(&golden);
}

#[test]
fn missing_and_broken_snapshots_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = ChatTemplate::from_snapshot(dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no chat template"), "{err}");
    let err = TextTokenizer::from_snapshot(dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
    std::fs::write(dir.path().join("tokenizer_config.json"), "{ not json").unwrap();
    let err = ChatTemplate::from_snapshot(dir.path())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("tokenizer_config.json"), "{err}");
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        r#"{"chat_template": [{"name": "default", "template": "{{ messages[0].content }}!"}]}"#,
    )
    .unwrap();
    let t = ChatTemplate::from_snapshot(dir.path()).unwrap();
    assert_eq!(
        t.render(&[Message::user("hi")], true, false).unwrap(),
        "hi!"
    );
}
