//! The model's own chat template, rendered as transformers' `apply_chat_template` renders it.
//!
//! A snapshot carries its template in `chat_template.jinja` (transformers ≥ 4.43 writes it
//! there) or under `chat_template` in `tokenizer_config.json`. It is Jinja2; lamar renders it
//! with `minijinja` set up the way transformers sets up Jinja2:
//! `trim_blocks` and `lstrip_blocks` on, loop controls, the globals `raise_exception` and
//! `strftime_now`, a `tojson` filter that is Python's `json.dumps` (no HTML escaping), and the
//! tokenizer's special tokens (`eos_token`, …) as variables. Python string methods
//! (`.startswith`, `.split`, `.strip`, …) come from `minijinja-contrib`'s Python compatibility
//! layer, except where Python and Rust disagree on whitespace (`str.strip()` and `|trim` strip
//! the `\x1c`–`\x1f` separators too): those are lamar's own, after Python's `str.isspace`.

use lamar_core::text::{is_python_space, python_float_repr, split_python_whitespace};
use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, State};
use std::path::{Path, PathBuf};

/// Why a chat template could not be loaded or rendered.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `tokenizer_config.json` is not valid JSON.
    #[error("{path}: {message}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The snapshot has no chat template.
    #[error(
        "{0}: no chat template (neither chat_template.jinja nor a chat_template entry in \
         tokenizer_config.json)"
    )]
    Missing(PathBuf),
    /// The template does not parse, or raised an error while rendering.
    #[error("{origin}: {source:#}")]
    Template {
        /// The template's file.
        origin: String,
        /// Jinja's error (with the template line).
        source: Box<Error>,
    },
}

/// One chat message.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Message {
    /// `user`, `assistant` or `system`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Message {
        Message {
            role: "user".into(),
            content: content.into(),
        }
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Message {
        Message {
            role: "assistant".into(),
            content: content.into(),
        }
    }
}

/// A compiled chat template with the special tokens it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    origin: String,
    special_tokens: Vec<(String, String)>,
}

const NAME: &str = "chat";

impl ChatTemplate {
    /// The template of a snapshot folder: `chat_template.jinja` if present, else the
    /// `chat_template` entry of `tokenizer_config.json` (a string, or a list of named templates
    /// of which `default` is used). The special tokens come from `tokenizer_config.json`.
    pub fn from_snapshot(dir: &Path) -> Result<ChatTemplate, ChatError> {
        let config_path = dir.join("tokenizer_config.json");
        let config: serde_json::Value = match std::fs::read_to_string(&config_path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| ChatError::Config {
                path: config_path.clone(),
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::Value::Null,
            Err(source) => {
                return Err(ChatError::Read {
                    path: config_path,
                    source,
                });
            }
        };
        let jinja_path = dir.join("chat_template.jinja");
        let (source, origin) = if jinja_path.is_file() {
            let text = std::fs::read_to_string(&jinja_path).map_err(|source| ChatError::Read {
                path: jinja_path.clone(),
                source,
            })?;
            (text, jinja_path.display().to_string())
        } else {
            let embedded = match config.get("chat_template") {
                Some(serde_json::Value::String(t)) => Some(t.clone()),
                Some(serde_json::Value::Array(named)) => named
                    .iter()
                    .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                    .and_then(|t| t.get("template"))
                    .and_then(|t| t.as_str())
                    .map(str::to_string),
                _ => None,
            };
            let text = embedded.ok_or_else(|| ChatError::Missing(dir.to_path_buf()))?;
            (text, format!("{} (chat_template)", config_path.display()))
        };
        let mut special_tokens = Vec::new();
        for key in [
            "bos_token",
            "eos_token",
            "unk_token",
            "sep_token",
            "pad_token",
            "cls_token",
            "mask_token",
        ] {
            let value = match config.get(key) {
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Object(o)) => o
                    .get("content")
                    .and_then(|c| c.as_str())
                    .map(str::to_string),
                _ => None,
            };
            if let Some(v) = value {
                special_tokens.push((key.to_string(), v));
            }
        }
        ChatTemplate::new(source, origin, special_tokens)
    }

    /// A template from its source; `origin` names it in errors.
    pub fn new(
        source: String,
        origin: String,
        special_tokens: Vec<(String, String)>,
    ) -> Result<ChatTemplate, ChatError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(python_method);
        env.add_filter("trim", python_trim);
        env.add_filter("tojson", python_json);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<Value, Error> {
                Err(Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_function("strftime_now", |_format: String| -> Result<Value, Error> {
            Err(Error::new(
                ErrorKind::InvalidOperation,
                "strftime_now is not available: lamar renders prompts reproducibly, without the clock",
            ))
        });
        env.add_template_owned(NAME, source)
            .map_err(|source| ChatError::Template {
                origin: origin.clone(),
                source: Box::new(source),
            })?;
        Ok(ChatTemplate {
            env,
            origin,
            special_tokens,
        })
    }

    /// Renders a conversation, as `apply_chat_template(messages, tokenize=False,
    /// add_generation_prompt=…, enable_thinking=…)` does.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        enable_thinking: bool,
    ) -> Result<String, ChatError> {
        let template = self
            .env
            .get_template(NAME)
            .expect("the template was added at construction");
        let mut context: Vec<(String, Value)> = self
            .special_tokens
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        context.extend([
            ("messages".to_string(), Value::from_serialize(messages)),
            ("tools".to_string(), Value::from(())),
            ("documents".to_string(), Value::from(())),
            (
                "add_generation_prompt".to_string(),
                Value::from(add_generation_prompt),
            ),
            ("enable_thinking".to_string(), Value::from(enable_thinking)),
        ]);
        let context: Value = context.into_iter().collect();
        template
            .render(context)
            .map_err(|source| ChatError::Template {
                origin: self.origin.clone(),
                source: Box::new(source),
            })
    }

    /// The text the model continues for one user message with thinking switched off: what
    /// LAMAR's inference feeds the model.
    pub fn generation_prompt(&self, user: &str) -> Result<String, ChatError> {
        self.render(&[Message::user(user)], true, false)
    }

    /// Where the template came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

/// Python's `str.strip(chars)` family: `chars = None` strips what `str.isspace()` accepts.
fn python_strip(s: &str, chars: Option<&str>, left: bool, right: bool) -> String {
    let strip = |c: char| match chars {
        Some(set) => set.contains(c),
        None => is_python_space(c),
    };
    let mut t = s;
    if left {
        t = t.trim_start_matches(strip);
    }
    if right {
        t = t.trim_end_matches(strip);
    }
    t.to_string()
}

/// Jinja2's `trim` filter (`str.strip(chars)`).
fn python_trim(value: Value, chars: Option<String>) -> Result<Value, Error> {
    let text = match value.as_str() {
        Some(s) => s.to_string(),
        None => value.to_string(),
    };
    Ok(Value::from(python_strip(
        &text,
        chars.as_deref(),
        true,
        true,
    )))
}

/// String methods whose Python whitespace rules differ from Rust's; the rest from
/// `minijinja-contrib`.
fn python_method(
    state: &State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    if let Some(s) = value.as_str() {
        let chars = |args: &[Value]| -> Result<Option<String>, Error> {
            match args {
                [] => Ok(None),
                [v] if v.is_none() => Ok(None),
                [v] => v.as_str().map(|c| Some(c.to_string())).ok_or_else(|| {
                    Error::new(ErrorKind::InvalidOperation, "strip arg must be a string")
                }),
                _ => Err(Error::from(ErrorKind::TooManyArguments)),
            }
        };
        match method {
            "strip" => {
                return Ok(Value::from(python_strip(
                    s,
                    chars(args)?.as_deref(),
                    true,
                    true,
                )));
            }
            "lstrip" => {
                return Ok(Value::from(python_strip(
                    s,
                    chars(args)?.as_deref(),
                    true,
                    false,
                )));
            }
            "rstrip" => {
                return Ok(Value::from(python_strip(
                    s,
                    chars(args)?.as_deref(),
                    false,
                    true,
                )));
            }
            "split" if args.is_empty() || args[0].is_none() => {
                // A negative `maxsplit` (Python's default, -1) means no limit.
                let max = match args.get(1) {
                    Some(m) => usize::try_from(i64::try_from(m.clone())?).ok(),
                    None => None,
                };
                return Ok(Value::from(split_python_whitespace(s, max)));
            }
            _ => {}
        }
    }
    minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
}

/// transformers' `tojson`: Python's `json.dumps(x, ensure_ascii=False, indent=…,
/// separators=…, sort_keys=…)`.
fn python_json(value: Value, kwargs: Kwargs) -> Result<Value, Error> {
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let indent: Option<Value> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let separators: Option<Value> = kwargs.get("separators")?;
    kwargs.assert_all_used()?;
    let indent = match indent {
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => match v.as_str() {
            Some(s) => Some(s.to_string()),
            None => Some(" ".repeat(usize::try_from(v)?)),
        },
    };
    let (item_sep, key_sep) = match separators {
        Some(v) if !v.is_none() => {
            let a = v.get_item(&Value::from(0))?;
            let b = v.get_item(&Value::from(1))?;
            (a.to_string(), b.to_string())
        }
        _ if indent.is_some() => (",".to_string(), ": ".to_string()),
        _ => (", ".to_string(), ": ".to_string()),
    };
    let style = JsonStyle {
        ascii: ensure_ascii.unwrap_or(false),
        indent,
        item_sep,
        key_sep,
        sort_keys: sort_keys.unwrap_or(false),
    };
    let mut out = String::new();
    style.write(&value, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

/// How [`python_json`] lays JSON out.
struct JsonStyle {
    ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

impl JsonStyle {
    fn newline(&self, depth: usize, out: &mut String) {
        if let Some(unit) = &self.indent {
            out.push('\n');
            for _ in 0..depth {
                out.push_str(unit);
            }
        }
    }

    fn string(&self, s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (self.ascii && (c as u32) > 0x7e) => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }

    fn write(&self, value: &Value, depth: usize, out: &mut String) -> Result<(), Error> {
        match value.kind() {
            ValueKind::Undefined | ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
            ValueKind::Number => {
                if let Ok(i) = i64::try_from(value.clone()) {
                    out.push_str(&i.to_string());
                } else {
                    // json.dumps writes Python's float repr, but NaN and Infinity for the
                    // values JSON lacks.
                    let f = f64::try_from(value.clone())?;
                    out.push_str(&match python_float_repr(f).as_str() {
                        "nan" => "NaN".to_string(),
                        "inf" => "Infinity".to_string(),
                        "-inf" => "-Infinity".to_string(),
                        repr => repr.to_string(),
                    });
                }
            }
            ValueKind::String => self.string(value.as_str().unwrap_or_default(), out),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = value.try_iter()?.collect();
                self.container('[', ']', items.len(), depth, out, |k, out| {
                    self.write(&items[k], depth + 1, out)
                })?;
            }
            ValueKind::Map => {
                let mut keys: Vec<Value> = value.try_iter()?.collect();
                if self.sort_keys {
                    keys.sort();
                }
                self.container('{', '}', keys.len(), depth, out, |k, out| {
                    let key = &keys[k];
                    match key.as_str() {
                        Some(s) => self.string(s, out),
                        None => self.string(&key.to_string(), out),
                    }
                    out.push_str(&self.key_sep);
                    self.write(&value.get_item(key)?, depth + 1, out)
                })?;
            }
            _ => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson cannot serialise a {}", value.kind()),
                ));
            }
        }
        Ok(())
    }

    fn container(
        &self,
        open: char,
        close: char,
        len: usize,
        depth: usize,
        out: &mut String,
        mut item: impl FnMut(usize, &mut String) -> Result<(), Error>,
    ) -> Result<(), Error> {
        out.push(open);
        if len == 0 {
            out.push(close);
            return Ok(());
        }
        for k in 0..len {
            if k > 0 {
                out.push_str(&self.item_sep);
            }
            self.newline(depth + 1, out);
            item(k, out)?;
        }
        self.newline(depth, out);
        out.push(close);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, messages: &[Message]) -> String {
        ChatTemplate::new(source.into(), "t.jinja".into(), vec![])
            .unwrap()
            .render(messages, true, false)
            .unwrap()
    }

    #[test]
    fn python_whitespace_rules_apply_to_trim_and_strip() {
        let m = [Message::user("\u{1c} hi \u{1f}\n")];
        assert_eq!(render("{{ messages[0].content|trim }}", &m), "hi");
        assert_eq!(render("{{ messages[0].content.strip() }}", &m), "hi");
        assert_eq!(
            render("{{ messages[0].content.lstrip() }}|", &m),
            "hi \u{1f}\n|"
        );
        assert_eq!(
            render("{{ messages[0].content.rstrip('\\n') }}|", &m),
            "\u{1c} hi \u{1f}|"
        );
        assert_eq!(
            render("{{ 'a  b\u{1d}c '.split()|join(',') }}", &m),
            "a,b,c"
        );
        assert_eq!(
            render("{{ 'a b c'.split(none, 1)|join(',') }}", &m),
            "a,b c"
        );
    }

    #[test]
    fn tojson_is_python_json_dumps() {
        let m = [Message::user("x")];
        assert_eq!(
            render(
                "{{ {'b': [1, 2.5, none, true], 'a': 'é\"\\n'}|tojson }}",
                &m
            ),
            "{\"b\": [1, 2.5, null, true], \"a\": \"é\\\"\\n\"}"
        );
        assert_eq!(
            render("{{ {'a': [1]}|tojson(indent=2) }}", &m),
            "{\n  \"a\": [\n    1\n  ]\n}"
        );
        assert_eq!(render("{{ [1e20, 1e-5]|tojson }}", &m), "[1e+20, 1e-05]");
    }

    #[test]
    fn raise_exception_and_bad_templates_are_errors_naming_the_template() {
        let t = ChatTemplate::new(
            "{{ raise_exception('no system messages') }}".into(),
            "x.jinja".into(),
            vec![],
        )
        .unwrap();
        let err = t.render(&[Message::user("a")], true, false).unwrap_err();
        assert!(err.to_string().contains("x.jinja"), "{err}");
        assert!(err.to_string().contains("no system messages"), "{err}");
        let bad = ChatTemplate::new("{% if %}".into(), "y.jinja".into(), vec![]);
        assert!(bad.err().unwrap().to_string().starts_with("y.jinja"));
    }
}
