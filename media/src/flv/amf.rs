//! The subset of AMF0 that FLV script data uses (FLV spec v10.1 §E.4.4 SCRIPTDATA,
//! AMF0 spec §2).
//!
//! A small hand-written codec instead of `rml_amf0`: `onMetaData` is an ECMA array (type 8)
//! whose key order and exact byte size matter here (the metadata is rewritten in place
//! over a fixed-size placeholder), and `rml_amf0` has neither ECMA arrays nor ordered
//! objects.

use super::FlvError;

/// AMF0 type markers (AMF0 spec §2.1).
mod marker {
    pub const NUMBER: u8 = 0x00;
    pub const BOOLEAN: u8 = 0x01;
    pub const STRING: u8 = 0x02;
    pub const OBJECT: u8 = 0x03;
    pub const NULL: u8 = 0x05;
    pub const UNDEFINED: u8 = 0x06;
    pub const ECMA_ARRAY: u8 = 0x08;
    pub const OBJECT_END: u8 = 0x09;
    pub const STRICT_ARRAY: u8 = 0x0a;
    pub const DATE: u8 = 0x0b;
    pub const LONG_STRING: u8 = 0x0c;
}

/// Nesting deeper than this is rejected by [`decode_all`], so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 32;

/// One AMF0 value; objects and ECMA arrays keep their key order.
#[derive(Debug, Clone, PartialEq)]
pub enum AmfValue {
    /// An IEEE-754 double (marker 0x00).
    Number(f64),
    /// A boolean (marker 0x01).
    Boolean(bool),
    /// A UTF-8 string (marker 0x02, or 0x0C when longer than 65535 bytes).
    String(String),
    /// An anonymous object (marker 0x03).
    Object(Vec<(String, AmfValue)>),
    /// Null (marker 0x05).
    Null,
    /// Undefined (marker 0x06).
    Undefined,
    /// An ECMA (associative) array (marker 0x08), as `onMetaData` uses.
    EcmaArray(Vec<(String, AmfValue)>),
    /// A strict (dense) array (marker 0x0A).
    StrictArray(Vec<AmfValue>),
    /// A date: milliseconds since the epoch and a timezone offset (marker 0x0B).
    Date(f64, i16),
}

impl AmfValue {
    /// Looks a key up in an object or ECMA array; `None` for other values.
    pub fn get(&self, key: &str) -> Option<&AmfValue> {
        match self {
            AmfValue::Object(props) | AmfValue::EcmaArray(props) => {
                props.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// The number, if this is one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            AmfValue::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// Appends the encoded value to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            AmfValue::Number(n) => {
                out.push(marker::NUMBER);
                out.extend_from_slice(&n.to_be_bytes());
            }
            AmfValue::Boolean(b) => out.extend_from_slice(&[marker::BOOLEAN, u8::from(*b)]),
            AmfValue::String(s) => match u16::try_from(s.len()) {
                Ok(len) => {
                    out.push(marker::STRING);
                    out.extend_from_slice(&len.to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
                Err(_) => {
                    out.push(marker::LONG_STRING);
                    out.extend_from_slice(&(s.len().min(u32::MAX as usize) as u32).to_be_bytes());
                    out.extend_from_slice(&s.as_bytes()[..s.len().min(u32::MAX as usize)]);
                }
            },
            AmfValue::Object(props) => {
                out.push(marker::OBJECT);
                encode_properties(props, out);
            }
            AmfValue::Null => out.push(marker::NULL),
            AmfValue::Undefined => out.push(marker::UNDEFINED),
            AmfValue::EcmaArray(props) => {
                out.push(marker::ECMA_ARRAY);
                out.extend_from_slice(&(props.len().min(u32::MAX as usize) as u32).to_be_bytes());
                encode_properties(props, out);
            }
            AmfValue::StrictArray(items) => {
                out.push(marker::STRICT_ARRAY);
                out.extend_from_slice(&(items.len().min(u32::MAX as usize) as u32).to_be_bytes());
                for item in items {
                    item.encode(out);
                }
            }
            AmfValue::Date(ms, tz) => {
                out.push(marker::DATE);
                out.extend_from_slice(&ms.to_be_bytes());
                out.extend_from_slice(&tz.to_be_bytes());
            }
        }
    }

    /// The encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        let mut out = Vec::new();
        self.encode(&mut out);
        out.len()
    }
}

/// Encodes a property key (UTF-8 with a 16-bit length; longer keys are cut at 65535 bytes).
pub(crate) fn encode_key(key: &str, out: &mut Vec<u8>) {
    let bytes = &key.as_bytes()[..key.len().min(usize::from(u16::MAX))];
    // The slice is at most u16::MAX long, so the cast is lossless.
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn encode_properties(props: &[(String, AmfValue)], out: &mut Vec<u8>) {
    for (key, value) in props {
        encode_key(key, out);
        value.encode(out);
    }
    out.extend_from_slice(&[0, 0, marker::OBJECT_END]);
}

/// Decodes consecutive AMF0 values until `data` ends (a script tag body is a name string
/// followed by a value). Errors carry the byte offset within `data`.
pub fn decode_all(data: &[u8]) -> Result<Vec<AmfValue>, FlvError> {
    let mut decoder = Decoder { data, pos: 0 };
    let mut values = Vec::new();
    while decoder.pos < data.len() {
        values.push(decoder.value(0)?);
    }
    Ok(values)
}

struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn error(&self, what: &'static str) -> FlvError {
        FlvError::Amf {
            offset: self.pos,
            what,
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FlvError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| self.error(what))?;
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16, FlvError> {
        let b = self.take(2, "truncated u16")?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, FlvError> {
        let b = self.take(4, "truncated u32")?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, FlvError> {
        let b = self.take(8, "truncated number")?;
        let mut raw = [0u8; 8];
        raw.copy_from_slice(b);
        Ok(f64::from_be_bytes(raw))
    }

    fn string(&mut self, len: usize) -> Result<String, FlvError> {
        let raw = self.take(len, "truncated string")?;
        Ok(String::from_utf8_lossy(raw).into_owned())
    }

    fn properties(&mut self, depth: usize) -> Result<Vec<(String, AmfValue)>, FlvError> {
        let mut props = Vec::new();
        loop {
            let len = usize::from(self.u16()?);
            if len == 0 {
                let end = self.take(1, "truncated object end")?;
                if end[0] != marker::OBJECT_END {
                    return Err(self.error("empty key without object-end marker"));
                }
                return Ok(props);
            }
            let key = self.string(len)?;
            let value = self.value(depth + 1)?;
            props.push((key, value));
        }
    }

    fn value(&mut self, depth: usize) -> Result<AmfValue, FlvError> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        let marker = self.take(1, "truncated type marker")?[0];
        Ok(match marker {
            marker::NUMBER => AmfValue::Number(self.f64()?),
            marker::BOOLEAN => AmfValue::Boolean(self.take(1, "truncated boolean")?[0] != 0),
            marker::STRING => {
                let len = usize::from(self.u16()?);
                AmfValue::String(self.string(len)?)
            }
            marker::LONG_STRING => {
                let len = self.u32()? as usize;
                AmfValue::String(self.string(len)?)
            }
            marker::OBJECT => AmfValue::Object(self.properties(depth)?),
            marker::NULL => AmfValue::Null,
            marker::UNDEFINED => AmfValue::Undefined,
            marker::ECMA_ARRAY => {
                let _count = self.u32()?;
                AmfValue::EcmaArray(self.properties(depth)?)
            }
            marker::STRICT_ARRAY => {
                let count = self.u32()? as usize;
                // Every element takes at least one byte, so a count beyond the remaining
                // bytes is malformed; checking first bounds the allocation.
                if count > self.data.len() - self.pos {
                    return Err(self.error("strict array longer than the data"));
                }
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                AmfValue::StrictArray(items)
            }
            marker::DATE => {
                let ms = self.f64()?;
                let tz = self.u16()? as i16;
                AmfValue::Date(ms, tz)
            }
            _ => return Err(self.error("unsupported AMF0 type marker")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_values_round_trip_in_order() {
        let value = AmfValue::EcmaArray(vec![
            ("duration".into(), AmfValue::Number(3.5)),
            ("stereo".into(), AmfValue::Boolean(true)),
            ("encoder".into(), AmfValue::String("recnode".into())),
            (
                "keyframes".into(),
                AmfValue::Object(vec![(
                    "times".into(),
                    AmfValue::StrictArray(vec![AmfValue::Number(0.0), AmfValue::Null]),
                )]),
            ),
        ]);
        let mut out = Vec::new();
        AmfValue::String("onMetaData".into()).encode(&mut out);
        value.encode(&mut out);
        let decoded = decode_all(&out).unwrap();
        assert_eq!(decoded[0], AmfValue::String("onMetaData".into()));
        assert_eq!(decoded[1], value);
        assert_eq!(
            decoded[1].get("duration").and_then(AmfValue::as_number),
            Some(3.5)
        );
    }

    #[test]
    fn truncated_and_hostile_amf_is_an_error() {
        assert!(decode_all(&[marker::NUMBER, 0, 0]).is_err());
        assert!(decode_all(&[marker::STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff]).is_err());
        let deep = [marker::STRICT_ARRAY, 0, 0, 0, 1].repeat(100);
        assert!(decode_all(&deep).is_err());
        assert!(decode_all(&[0x42]).is_err());
    }
}
