//! Byte-level format checks shared by the router (which only classifies a part) and the
//! media decoders (which pick a container).

/// The MPEG audio layer (1, 2 or 3) of a bare frame header at the start of `bytes`: 11 sync
/// bits, a valid version, a layer, and a bitrate index that is neither "free" nor "bad" and a
/// valid sample-rate index. `None` when `bytes` does not start with one.
pub fn mpeg_audio_layer(bytes: &[u8]) -> Option<u8> {
    let [0xFF, b1, b2, ..] = *bytes else {
        return None;
    };
    let version = (b1 >> 3) & 0b11;
    let layer = (b1 >> 1) & 0b11;
    let bitrate = b2 >> 4;
    let rate = (b2 >> 2) & 0b11;
    let valid =
        b1 & 0xE0 == 0xE0 && version != 0b01 && layer != 0 && bitrate != 0xF && rate != 0b11;
    // Layer bits: 0b01 is layer III, 0b10 layer II, 0b11 layer I.
    valid.then_some(4 - layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_headers_give_their_layer() {
        assert_eq!(mpeg_audio_layer(&[0xFF, 0xFB, 0x90]), Some(3));
        assert_eq!(mpeg_audio_layer(&[0xFF, 0xF3, 0x80]), Some(3));
        assert_eq!(mpeg_audio_layer(&[0xFF, 0xFD, 0x90]), Some(2));
        assert_eq!(mpeg_audio_layer(&[0xFF, 0xF3, 0xF0]), None);
        assert_eq!(mpeg_audio_layer(&[0xFF, 0xF9, 0x90]), None); // layer bits 00: reserved
        assert_eq!(mpeg_audio_layer(b"ID3"), None);
    }
}
