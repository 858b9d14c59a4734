//! Image and audio parts of chat messages: taken out of the messages while parsing (a
//! placeholder keeps their place), turned into text by the pipeline (OCR for images, speech-to-
//! text for audio), and put back as text the LLM can read.

use std::sync::Arc;

use serde_json::Value;
use switchyard_core::ChatMessage;

use super::remote_image::RemoteImages;
use super::route_request::{data_uri_bytes, decode_base64};
use super::wire::ContentPart;
use crate::error::ApiError;

/// What a media part holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// An `image_url` part.
    Image,
    /// An `input_audio` part.
    Audio,
}

/// One image or audio part of a chat request.
#[derive(Debug, Clone)]
pub struct MediaPart {
    /// Image or audio.
    pub kind: MediaKind,
    /// The decoded base64 payload.
    pub data: Arc<[u8]>,
    /// The request field, for errors (`messages[0].content[1]`).
    pub param: String,
    /// For an image fetched from an http(s) URL: the URL and the fetch time (ms).
    pub fetched: Option<(String, f64)>,
}

/// The marker left in a message where media part `index` stood.
pub fn placeholder(index: usize) -> String {
    format!("\u{FFFC}media{index}\u{FFFC}")
}

impl MediaPart {
    /// Reads an `image_url` or `input_audio` content part; `remote` holds the images fetched
    /// for http(s) URLs.
    pub fn from_wire(
        part: &ContentPart,
        param: &str,
        remote: &RemoteImages,
    ) -> Result<MediaPart, ApiError> {
        match part.kind.as_str() {
            "image_url" => {
                let url = part
                    .image_url
                    .as_ref()
                    .and_then(|u| u.get("url").or(Some(u)))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            format!("{param}.image_url.url is missing"),
                            Some(&format!("{param}.image_url")),
                        )
                    })?;
                Ok(MediaPart {
                    kind: MediaKind::Image,
                    data: data_uri_bytes(url, param, remote)?,
                    param: format!("{param}.image_url.url"),
                    fetched: remote.get(url).map(|f| (url.to_owned(), f.ms)),
                })
            }
            _ => {
                let data = part
                    .input_audio
                    .as_ref()
                    .and_then(|a| a.get("data"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        ApiError::bad_request(
                            format!("{param}.input_audio.data must hold the audio as base64"),
                            Some(&format!("{param}.input_audio.data")),
                        )
                    })?;
                let param = format!("{param}.input_audio.data");
                Ok(MediaPart {
                    kind: MediaKind::Audio,
                    data: decode_base64(data, &param)?,
                    param,
                    fetched: None,
                })
            }
        }
    }
}

/// How a media part's text is shown to the LLM.
pub fn grounding(kind: MediaKind, index: usize, text: &str) -> String {
    match kind {
        MediaKind::Image if text.trim().is_empty() => {
            format!("[Image {}: no text was found in it]", index + 1)
        }
        MediaKind::Image => format!("[Text read from image {} by OCR]\n{text}", index + 1),
        // A spoken question is the user's words: give them as they are.
        MediaKind::Audio => text.to_owned(),
    }
}

/// Replaces every placeholder with the text of its media part.
pub fn substitute(messages: &mut [ChatMessage], texts: &[String]) {
    for message in messages {
        for (index, text) in texts.iter().enumerate() {
            let marker = placeholder(index);
            if message.content.contains(&marker) {
                message.content = message.content.replace(&marker, text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_in_place() {
        let mut messages = vec![ChatMessage {
            role: "user".into(),
            content: format!("What does this say?\n{}", placeholder(0)),
        }];
        substitute(
            &mut messages,
            &[grounding(MediaKind::Image, 0, "OPEN 9 TO 5")],
        );
        assert_eq!(
            messages[0].content,
            "What does this say?\n[Text read from image 1 by OCR]\nOPEN 9 TO 5"
        );
    }

    #[test]
    fn audio_part_without_data_is_a_clear_error() {
        let part: ContentPart = serde_json::from_value(
            serde_json::json!({"type": "input_audio", "input_audio": {"format": "wav"}}),
        )
        .unwrap();
        let err = MediaPart::from_wire(&part, "messages[0].content[0]", &RemoteImages::none())
            .unwrap_err();
        assert!(
            err.body_json().contains("input_audio.data"),
            "{}",
            err.body_json()
        );
    }
}
