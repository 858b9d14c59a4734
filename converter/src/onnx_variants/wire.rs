//! The protobuf wire format, walked field by field over borrowed bytes.
//!
//! A protobuf message is a sequence of fields, each a key (field number and wire type, a
//! varint) followed by a varint, 4 or 8 bytes, or a varint length and that many bytes. Walking
//! those lets the converter find the graph and its initializers in a memory-mapped model and
//! hand prost only the small parts, without copying the weights. Keys, varints and the
//! skipping of (deprecated) groups are prost's own helpers, so what is accepted here is what
//! prost accepts.

use prost::encoding::{
    decode_key, decode_varint, encode_key, encode_varint, encoded_len_varint, key_len, skip_field,
    DecodeContext, WireType,
};

/// One field of an encoded message.
#[derive(Debug, Clone, Copy)]
pub(super) struct Field<'a> {
    /// Field number.
    pub tag: u32,
    /// How its value is encoded.
    pub wire_type: WireType,
    /// Offset of the field's key in the walked bytes.
    pub start: usize,
    /// The whole field: key, length prefix (if any) and value.
    pub bytes: &'a [u8],
    /// The value: the contents of a length-delimited field, else the encoded value itself.
    pub payload: &'a [u8],
}

impl<'a> Field<'a> {
    /// The field's contents when it is length-delimited (a message, string, bytes or packed
    /// numbers), else an error naming `what`.
    pub fn delimited(&self, what: &str) -> Result<&'a [u8], String> {
        if self.wire_type == WireType::LengthDelimited {
            Ok(self.payload)
        } else {
            Err(format!(
                "{what} (field {}) has wire type {:?}, expected length-delimited",
                self.tag, self.wire_type
            ))
        }
    }
}

/// The fields of `buf`, an encoded message, in the order they are stored. The walk stops at
/// the first malformed field (truncated, bad key, bad wire type), which it yields as an error.
pub(super) fn fields(buf: &[u8]) -> Fields<'_> {
    Fields {
        buf,
        pos: 0,
        failed: false,
    }
}

/// Iterator returned by [`fields`].
pub(super) struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> Fields<'a> {
    fn read(&mut self) -> Result<Field<'a>, String> {
        let buf: &'a [u8] = self.buf;
        let start = self.pos;
        let mut rest = buf.get(start..).unwrap_or_default();
        let (tag, wire_type) = decode_key(&mut rest).map_err(|e| e.to_string())?;
        let value_start = buf.len() - rest.len();
        let payload = if wire_type == WireType::LengthDelimited {
            let len = decode_varint(&mut rest).map_err(|e| e.to_string())?;
            let len = usize::try_from(len)
                .ok()
                .filter(|&len| len <= rest.len())
                .ok_or_else(|| {
                    format!(
                        "field {tag} at byte {start} is {len} bytes long, but only {} bytes are \
                         left (truncated file?)",
                        rest.len()
                    )
                })?;
            let (payload, after) = rest.split_at(len);
            rest = after;
            payload
        } else {
            skip_field(wire_type, tag, &mut rest, DecodeContext::default())
                .map_err(|e| format!("field {tag} at byte {start}: {e}"))?;
            &buf[value_start..buf.len() - rest.len()]
        };
        self.pos = buf.len() - rest.len();
        Ok(Field {
            tag,
            wire_type,
            start,
            bytes: &buf[start..self.pos],
            payload,
        })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let field = self.read();
        self.failed = field.is_err();
        Some(field)
    }
}

/// Encoded size of a length-delimited field numbered `tag` holding `len` bytes.
pub(super) fn delimited_size(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

/// Encoded size of a `bytes` field numbered `tag` holding `len` bytes as prost writes it for a
/// proto3-style field: nothing at all when empty.
pub(super) fn bytes_field_size(tag: u32, len: usize) -> usize {
    if len == 0 {
        0
    } else {
        delimited_size(tag, len)
    }
}

/// The key and length prefix of a length-delimited field numbered `tag` holding `len` bytes.
pub(super) fn delimited_header(tag: u32, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(key_len(tag) + encoded_len_varint(len as u64));
    encode_key(tag, WireType::LengthDelimited, &mut out);
    encode_varint(len as u64, &mut out);
    out
}

/// Splits an encoded message before its first field numbered above `tag`. prost writes fields
/// in field-number order, so for a message prost encoded without any field `tag`, writing the
/// first part, then fields numbered `tag`, then the second part gives exactly what prost would
/// have written with those fields set.
pub(super) fn split_after_tag(encoded: &[u8], tag: u32) -> Result<(&[u8], &[u8]), String> {
    for field in fields(encoded) {
        let field = field?;
        if field.tag > tag {
            return Ok(encoded.split_at(field.start));
        }
    }
    Ok((encoded, &[]))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use prost::Message;
    use tract_onnx::pb::{StringStringEntryProto, TensorProto};

    #[test]
    fn walks_every_wire_type_and_rejects_truncation() {
        let t = TensorProto {
            dims: vec![2, 3],
            data_type: 1,
            name: "w".into(),
            raw_data: vec![7; 24],
            double_data: vec![1.5],
            data_location: Some(0),
            external_data: vec![StringStringEntryProto {
                key: "k".into(),
                value: "v".into(),
            }],
            ..TensorProto::default()
        };
        let bytes = t.encode_to_vec();
        let got: Vec<(u32, usize)> = fields(&bytes)
            .map(|f| f.map(|f| (f.tag, f.payload.len())))
            .collect::<Result<_, _>>()
            .unwrap();
        // dims (packed, 2 bytes), data_type (varint), name, raw_data, double_data (packed),
        // external_data, data_location.
        assert_eq!(
            got,
            [(1, 2), (2, 1), (8, 1), (9, 24), (10, 8), (13, 6), (14, 1)]
        );
        let total: usize = fields(&bytes).map(|f| f.unwrap().bytes.len()).sum();
        assert_eq!(total, bytes.len());
        for cut in 1..bytes.len() {
            let walked: Result<Vec<_>, _> = fields(&bytes[..cut]).collect();
            let whole = walked
                .as_ref()
                .map_or(0, |f| f.iter().map(|f| f.bytes.len()).sum());
            // Either an error, or the cut fell between two fields.
            assert!(walked.is_err() || whole == cut, "cut {cut}");
        }
        // An end-group key with no group open, a bad wire type.
        assert!(fields(&[0x0c]).next().unwrap().is_err());
        assert!(fields(&[0x0f]).next().unwrap().is_err());
    }

    #[test]
    fn split_then_insert_matches_prost() {
        let mut t = TensorProto {
            dims: vec![4],
            data_type: 1,
            name: "w".into(),
            doc_string: "d".into(),
            ..TensorProto::default()
        };
        let head = t.encode_to_vec();
        let (a, b) = split_after_tag(&head, 9).unwrap();
        t.raw_data = vec![1; 16];
        let mut joined = a.to_vec();
        joined.extend(delimited_header(9, 16));
        joined.extend([1; 16]);
        joined.extend(b);
        assert_eq!(joined, t.encode_to_vec());
        assert_eq!(joined.len(), head.len() + bytes_field_size(9, 16));
        assert_eq!(bytes_field_size(9, 0), 0);
    }
}
