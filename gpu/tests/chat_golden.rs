//! Prompt filling, chat-template rendering and tokenization against transformers'
//! `apply_chat_template` (golden files made by `gpu/tools/make_chat_golden.py`).
//!
//! `LAMAR_CHAT_GOLDEN_DIR=DIR` runs the same comparisons against another snapshot folder whose
//! `expected.json` that script wrote with `--snapshot DIR` (for example a real Qwen tokenizer
//! and template, which are not committed here).

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

/// The snapshot folder (tokenizer and chat template): the tiny test tokenizer, or a real
/// snapshot named by `LAMAR_CHAT_GOLDEN_DIR` (which then holds its `expected.json` too).
fn snapshot() -> PathBuf {
    match std::env::var_os("LAMAR_CHAT_GOLDEN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/tiny-chat"),
    }
}

/// What transformers made of each case (`gpu/tools/make_chat_golden.py`).
fn cases() -> Vec<Case> {
    let expected = match std::env::var_os("LAMAR_CHAT_GOLDEN_DIR") {
        Some(dir) => PathBuf::from(dir).join("expected.json"),
        None => {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/chat/expected.json")
        }
    };
    let text = std::fs::read_to_string(expected).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn rendering_matches_apply_chat_template_byte_for_byte() {
    let template = ChatTemplate::from_snapshot(&snapshot()).unwrap();
    let prompt = TaskPrompt::builtin();
    let cases = cases();
    assert!(cases.len() >= 8);
    for case in &cases {
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

#[test]
fn token_ids_and_decoding_match_transformers() {
    let tokenizer = TextTokenizer::from_snapshot(&snapshot()).unwrap();
    for case in cases() {
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
    if std::env::var_os("LAMAR_CHAT_GOLDEN_DIR").is_none() {
        assert_eq!(tokenizer.stop_tokens(), &[im_end]);
    }
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
