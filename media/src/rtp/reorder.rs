//! A bounded RTP reorder buffer (sequence handling after RFC 3550 Appendix A.1).
//!
//! Packets go in with their 16-bit sequence number and come out in order. While a sequence
//! number is missing, later packets wait; when more than `capacity` packets wait, or the newest
//! waiting packet is more than `max_delay` timestamp ticks after the last released one, the gap
//! is declared lost. Sequence numbers are extended to 64 bits, so wraparound is invisible.
//! A jump of more than `max_dropout` ahead (or `max_misorder` behind) is taken as a sender
//! restart only when the next packet confirms it, as RFC 3550 A.1 does.

use std::collections::{BTreeMap, VecDeque};

/// Where extended sequence numbers start, so that looking back never underflows.
const EXT_BASE: u64 = 1 << 32;
/// How many recent sequence numbers the duplicate history covers.
const HISTORY: u64 = 1024;

/// What happened to an inserted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Insert {
    /// Held for release; `reordered` when a later sequence number was already held.
    Accepted {
        /// It arrived after a packet with a higher sequence number.
        reordered: bool,
    },
    /// The sequence number was already held or released; the packet was dropped.
    Duplicate,
    /// The sequence number was already declared lost; the packet was dropped.
    Late,
    /// A large sequence jump, dropped until the next packet confirms a restart.
    Probation,
}

/// What the buffer releases, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Released<T> {
    /// The next packet in sequence order.
    Packet(T),
    /// This many sequence numbers will never arrive.
    Lost(u64),
    /// The sender restarted its sequence numbers; what follows is a new sequence.
    Restart,
}

/// The reorder buffer; `T` is the packet type.
#[derive(Debug)]
pub(crate) struct ReorderBuffer<T> {
    capacity: usize,
    max_delay: Option<u32>,
    max_misorder: u64,
    max_dropout: u64,
    next: Option<u64>,
    held: BTreeMap<u64, (u32, T)>,
    delivered: [u64; (HISTORY / 64) as usize],
    probation: Option<u16>,
    pending: VecDeque<Released<T>>,
    last_timestamp: Option<u32>,
}

impl<T> ReorderBuffer<T> {
    /// A buffer that holds up to `capacity` packets (at most 8192) and `max_delay` ticks.
    pub(crate) fn new(capacity: usize, max_delay: Option<u32>) -> Self {
        let capacity = capacity.min(8192);
        ReorderBuffer {
            capacity,
            max_delay,
            max_misorder: (capacity as u64).clamp(100, HISTORY - 1),
            max_dropout: (capacity as u64 + 1).max(3000),
            next: None,
            held: BTreeMap::new(),
            delivered: [0; (HISTORY / 64) as usize],
            probation: None,
            pending: VecDeque::new(),
            last_timestamp: None,
        }
    }

    /// Offers a packet.
    pub(crate) fn insert(&mut self, seq: u16, timestamp: u32, item: T) -> Insert {
        let Some(next) = self.next else {
            self.restart_at(seq, timestamp, item);
            return Insert::Accepted { reordered: false };
        };
        let diff = i64::from(seq.wrapping_sub(next as u16) as i16);
        if diff >= 0 && diff.unsigned_abs() < self.max_dropout {
            let ext = next + diff.unsigned_abs();
            if self.held.contains_key(&ext) {
                return Insert::Duplicate;
            }
            let reordered = self.held.range(ext + 1..).next().is_some();
            self.held.insert(ext, (timestamp, item));
            self.probation = None;
            Insert::Accepted { reordered }
        } else if diff < 0 && diff.unsigned_abs() <= self.max_misorder {
            if self.was_delivered(next - diff.unsigned_abs()) {
                Insert::Duplicate
            } else {
                Insert::Late
            }
        } else if self.probation == Some(seq) {
            let drained = self.drain();
            self.pending.extend(drained);
            self.pending.push_back(Released::Restart);
            self.restart_at(seq, timestamp, item);
            Insert::Accepted { reordered: false }
        } else {
            self.probation = Some(seq.wrapping_add(1));
            Insert::Probation
        }
    }

    /// Starts a new sequence at `seq` with `item` held.
    fn restart_at(&mut self, seq: u16, timestamp: u32, item: T) {
        let ext = EXT_BASE + u64::from(seq);
        self.next = Some(ext);
        self.delivered = [0; (HISTORY / 64) as usize];
        self.probation = None;
        self.last_timestamp = None;
        self.held.insert(ext, (timestamp, item));
    }

    /// The next thing to release, if the buffer's rules allow one now.
    pub(crate) fn pop(&mut self) -> Option<Released<T>> {
        if let Some(r) = self.pending.pop_front() {
            return Some(r);
        }
        let next = self.next?;
        if let Some((timestamp, item)) = self.held.remove(&next) {
            self.mark(next, true);
            self.next = Some(next + 1);
            self.last_timestamp = Some(timestamp);
            return Some(Released::Packet(item));
        }
        let (&first, _) = self.held.first_key_value()?;
        if self.held.len() > self.capacity || self.delay_exceeded() {
            return Some(self.skip_to(first));
        }
        None
    }

    /// Releases everything held, declaring the gaps lost (end of stream or a new SSRC).
    pub(crate) fn drain(&mut self) -> Vec<Released<T>> {
        let mut out: Vec<Released<T>> = self.pending.drain(..).collect();
        while let Some((&first, _)) = self.held.first_key_value() {
            // `next` is set whenever anything is held (restart_at sets both).
            let next = self.next.unwrap_or(first);
            if first != next {
                out.push(self.skip_to(first));
            }
            if let Some((timestamp, item)) = self.held.remove(&first) {
                self.mark(first, true);
                self.next = Some(first + 1);
                self.last_timestamp = Some(timestamp);
                out.push(Released::Packet(item));
            }
        }
        out
    }

    /// Forgets all state (a new SSRC).
    pub(crate) fn reset(&mut self) {
        self.next = None;
        self.held.clear();
        self.pending.clear();
        self.probation = None;
        self.last_timestamp = None;
        self.delivered = [0; (HISTORY / 64) as usize];
    }

    /// Declares everything before `first` lost and moves on to it.
    fn skip_to(&mut self, first: u64) -> Released<T> {
        let next = self.next.unwrap_or(first);
        let lost = first.saturating_sub(next);
        if lost >= HISTORY {
            self.delivered = [0; (HISTORY / 64) as usize];
        } else {
            for s in next..first {
                self.mark(s, false);
            }
        }
        self.next = Some(first);
        Released::Lost(lost)
    }

    fn delay_exceeded(&self) -> bool {
        let (Some(max), Some(last)) = (self.max_delay, self.last_timestamp) else {
            return false;
        };
        self.held
            .values()
            .any(|(ts, _)| ts.wrapping_sub(last) as i32 > max as i32)
    }

    fn mark(&mut self, ext: u64, delivered: bool) {
        let i = ext % HISTORY;
        let (word, bit) = ((i / 64) as usize, i % 64);
        if delivered {
            self.delivered[word] |= 1 << bit;
        } else {
            self.delivered[word] &= !(1 << bit);
        }
    }

    fn was_delivered(&self, ext: u64) -> bool {
        let i = ext % HISTORY;
        self.delivered[(i / 64) as usize] & (1 << (i % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn released(buf: &mut ReorderBuffer<u16>) -> Vec<Released<u16>> {
        std::iter::from_fn(|| buf.pop()).collect()
    }

    #[test]
    fn in_order_packets_come_straight_out() {
        let mut buf = ReorderBuffer::new(4, None);
        for seq in 10..13 {
            assert_eq!(
                buf.insert(seq, 0, seq),
                Insert::Accepted { reordered: false }
            );
            assert_eq!(released(&mut buf), vec![Released::Packet(seq)]);
        }
    }

    #[test]
    fn a_swapped_pair_is_put_back_in_order() {
        let mut buf = ReorderBuffer::new(4, None);
        buf.insert(1, 0, 1);
        released(&mut buf);
        buf.insert(3, 0, 3);
        assert!(released(&mut buf).is_empty());
        assert_eq!(buf.insert(2, 0, 2), Insert::Accepted { reordered: true });
        assert_eq!(
            released(&mut buf),
            vec![Released::Packet(2), Released::Packet(3)]
        );
    }

    #[test]
    fn a_gap_is_declared_lost_when_the_window_overflows() {
        let mut buf = ReorderBuffer::new(2, None);
        buf.insert(1, 0, 1);
        released(&mut buf);
        buf.insert(3, 0, 3);
        buf.insert(4, 0, 4);
        assert!(released(&mut buf).is_empty());
        buf.insert(5, 0, 5);
        assert_eq!(
            released(&mut buf),
            vec![
                Released::Lost(1),
                Released::Packet(3),
                Released::Packet(4),
                Released::Packet(5)
            ]
        );
        assert_eq!(buf.insert(2, 0, 2), Insert::Late);
        assert_eq!(buf.insert(4, 0, 4), Insert::Duplicate);
    }

    #[test]
    fn a_gap_is_declared_lost_when_the_delay_is_exceeded() {
        let mut buf = ReorderBuffer::new(64, Some(9000));
        buf.insert(1, 0, 1);
        released(&mut buf);
        buf.insert(3, 3000, 3);
        assert!(released(&mut buf).is_empty());
        buf.insert(4, 9001, 4);
        assert_eq!(
            released(&mut buf),
            vec![Released::Lost(1), Released::Packet(3), Released::Packet(4)]
        );
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let mut buf = ReorderBuffer::new(4, None);
        let mut out = Vec::new();
        for seq in [65534u16, 0, 65535, 1] {
            buf.insert(seq, 0, seq);
            out.extend(released(&mut buf));
        }
        assert_eq!(out, [65534, 65535, 0, 1].map(Released::Packet).to_vec());
    }

    #[test]
    fn a_confirmed_jump_restarts_the_sequence() {
        let mut buf = ReorderBuffer::new(4, None);
        buf.insert(1, 0, 1);
        released(&mut buf);
        assert_eq!(buf.insert(30000, 0, 30000), Insert::Probation);
        assert_eq!(
            buf.insert(30001, 0, 30001),
            Insert::Accepted { reordered: false }
        );
        assert_eq!(
            released(&mut buf),
            vec![Released::Restart, Released::Packet(30001)]
        );
    }

    #[test]
    fn drain_releases_everything_with_gaps() {
        let mut buf = ReorderBuffer::new(8, None);
        buf.insert(1, 0, 1);
        released(&mut buf);
        buf.insert(4, 0, 4);
        buf.insert(3, 0, 3);
        assert_eq!(
            buf.drain(),
            vec![Released::Lost(1), Released::Packet(3), Released::Packet(4)]
        );
    }
}
