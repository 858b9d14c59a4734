//! Chat formatting with the model's own Jinja template (`tokenizer.chat_template` in the GGUF
//! metadata), rendered by minijinja with Python-compatible string methods, as Hugging Face
//! renders it. llama.cpp's built-in template matching is only the fallback.

use minijinja::{context, Environment, Error, ErrorKind};
use serde::Serialize;
use switchyard_core::ChatMessage;

/// A compiled chat template plus the special tokens templates refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

#[derive(Serialize)]
struct TemplateMessage<'a> {
    role: &'a str,
    content: &'a str,
}

impl ChatTemplate {
    /// Compiles `source`; fails when the template does not parse.
    pub fn new(source: &str, bos_token: &str, eos_token: &str) -> Result<Self, Error> {
        let mut env = Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<String, Error> {
                Err(Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_function("strftime_now", |_format: String| -> String {
            // Templates use it for a "today is" line; a fixed date keeps prompts cacheable.
            String::from("01 Jan 2026")
        });
        env.add_template_owned("chat", source.to_owned())?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
        })
    }

    /// Renders the conversation with the assistant's turn opened.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, Error> {
        let messages: Vec<TemplateMessage<'_>> = messages
            .iter()
            .map(|m| TemplateMessage {
                role: &m.role,
                content: &m.content,
            })
            .collect();
        self.env.get_template("chat")?.render(context! {
            messages => messages,
            add_generation_prompt => true,
            bos_token => self.bos_token,
            eos_token => self.eos_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn renders_chatml_with_python_methods() {
        let src = "{% for m in messages %}{% if loop.first and m.role != 'system' %}<|im_start|>system\nDefault<|im_end|>\n{% endif %}<|im_start|>{{ m.role }}\n{{ m.content.strip() }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
        let t = ChatTemplate::new(src, "<s>", "</s>").unwrap();
        let out = t.render(&[msg("user", "  hi  ")]).unwrap();
        assert_eq!(
            out,
            "<|im_start|>system\nDefault<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn raise_exception_is_an_error() {
        let t = ChatTemplate::new("{{ raise_exception('no system role') }}", "", "").unwrap();
        let err = t.render(&[msg("system", "x")]).unwrap_err();
        assert!(err.to_string().contains("no system role"));
    }

    #[test]
    fn bos_token_is_available() {
        let t = ChatTemplate::new("{{ bos_token }}{{ messages[0].content }}", "<bos>", "").unwrap();
        assert_eq!(t.render(&[msg("user", "a")]).unwrap(), "<bos>a");
    }
}
