//! What the H.264 and H.265 depacketizers share: an access unit built from NAL units in
//! AVCC form, a NAL unit rebuilt from fragments (FU-A, RFC 6184 §5.8; FU, RFC 7798 §4.4.3),
//! and the splitting of aggregation packets (STAP-A, RFC 6184 §5.7.1; AP, RFC 7798 §4.4.2).

use bytes::{BufMut, Bytes, BytesMut};

use super::{check_frame_limits, Assembled, PayloadError, MAX_FRAME_BYTES};

/// An access unit in the making: NAL units with 4-byte big-endian length prefixes.
#[derive(Debug, Default)]
pub(super) struct AccessUnit {
    out: BytesMut,
    units: usize,
    has_vcl: bool,
    keyframe: bool,
}

impl AccessUnit {
    /// Appends one NAL unit; `vcl` marks a coded slice and `keyframe` an IDR/IRAP one.
    pub(super) fn append(
        &mut self,
        nal: &[u8],
        vcl: bool,
        keyframe: bool,
    ) -> Result<(), PayloadError> {
        check_frame_limits(self.out.len() + 4 + nal.len(), self.units + 1)?;
        // check_frame_limits bounds the NAL unit well below u32::MAX.
        self.out.put_u32(nal.len() as u32);
        self.out.put_slice(nal);
        self.units += 1;
        self.has_vcl |= vcl;
        self.keyframe |= keyframe;
        Ok(())
    }

    /// The finished frame, or `None` (keeping what was gathered) when no coded slice came yet:
    /// parameter sets or SEI sent on their own are carried into the next access unit.
    pub(super) fn take(&mut self) -> Option<Assembled> {
        if !self.has_vcl {
            return None;
        }
        let data = std::mem::take(&mut self.out).freeze();
        let keyframe = self.keyframe;
        self.clear();
        Some(Assembled { data, keyframe })
    }

    /// Drops everything gathered.
    pub(super) fn clear(&mut self) {
        self.out.clear();
        self.units = 0;
        self.has_vcl = false;
        self.keyframe = false;
    }
}

/// A NAL unit being rebuilt from fragmentation units.
#[derive(Debug, Default)]
pub(super) struct Fragments {
    nal: Option<BytesMut>,
}

impl Fragments {
    /// Whether a fragmented NAL unit is open (its end has not arrived).
    pub(super) fn is_open(&self) -> bool {
        self.nal.is_some()
    }

    /// Forgets an open NAL unit.
    pub(super) fn clear(&mut self) {
        self.nal = None;
    }

    /// Adds one fragment. `header` is the rebuilt NAL header, used when `start` is set;
    /// returns the whole NAL unit once the fragment with `end` arrives.
    pub(super) fn push(
        &mut self,
        start: bool,
        end: bool,
        header: &[u8],
        body: &[u8],
    ) -> Result<Option<Bytes>, PayloadError> {
        if start {
            if self.nal.is_some() {
                self.nal = None;
                return Err(PayloadError::BadFragment(
                    "fragment start while the previous fragmented unit was not ended",
                ));
            }
            let mut nal = BytesMut::with_capacity((header.len() + body.len()) * 4);
            nal.put_slice(header);
            self.nal = Some(nal);
        }
        let Some(nal) = self.nal.as_mut() else {
            return Err(PayloadError::BadFragment(
                "fragment continuation without a start",
            ));
        };
        let size = nal.len() + body.len();
        if size > MAX_FRAME_BYTES {
            self.nal = None;
            return Err(PayloadError::UnitTooLarge(size));
        }
        nal.put_slice(body);
        Ok(if end {
            self.nal.take().map(BytesMut::freeze)
        } else {
            None
        })
    }
}

/// Calls `each` on every NAL unit of an aggregation packet's body (after its payload
/// header): 16-bit big-endian sizes, each at least `min_len`, that exactly fill `body`.
pub(super) fn for_each_aggregated(
    mut body: &[u8],
    min_len: usize,
    mut each: impl FnMut(&[u8]) -> Result<(), PayloadError>,
) -> Result<(), PayloadError> {
    if body.is_empty() {
        return Err(PayloadError::BadAggregationLength {
            declared: 0,
            remaining: 0,
        });
    }
    while !body.is_empty() {
        if body.len() < 2 {
            return Err(PayloadError::BadAggregationLength {
                declared: 2,
                remaining: body.len(),
            });
        }
        let len = usize::from(u16::from_be_bytes([body[0], body[1]]));
        body = &body[2..];
        if len < min_len.max(1) || len > body.len() {
            return Err(PayloadError::BadAggregationLength {
                declared: len,
                remaining: body.len(),
            });
        }
        each(&body[..len])?;
        body = &body[len..];
    }
    Ok(())
}
