//! Captured frames as a classic pcap file, the format `tcpdump -r` and Wireshark open:
//! a 24-byte header (microsecond times, link type Ethernet, which is what `lo` carries on
//! Linux) and, per frame, a 16-byte header (time, bytes kept, length on the wire) and the
//! bytes kept. Written by hand rather than with the `pcap-file` crate: two fixed headers
//! are less than a dependency. Pure: the bytes of the file, not the file.

use hello_proto::kernel::Frame;

/// The pcap magic for microsecond timestamps.
const MAGIC: u32 = 0xa1b2_c3d4;
/// `LINKTYPE_ETHERNET`: Linux's loopback frames carry an Ethernet header (zero addresses).
pub const LINKTYPE_ETHERNET: u32 = 1;

/// The pcap file of `frames`, each cut to at most `snaplen` bytes (the header says so).
pub fn file(frames: &[Frame], snaplen: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + frames.iter().map(|f| 16 + f.data.len()).sum::<usize>());
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // times are UTC
    out.extend_from_slice(&0u32.to_le_bytes()); // accuracy: unspecified
    out.extend_from_slice(&snaplen.to_le_bytes());
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
    for f in frames {
        let kept = &f.data[..f.data.len().min(snaplen as usize)];
        let secs = u32::try_from(f.t_us / 1_000_000).unwrap_or(u32::MAX);
        out.extend_from_slice(&secs.to_le_bytes());
        out.extend_from_slice(&((f.t_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(kept.len() as u32).to_le_bytes());
        out.extend_from_slice(&f.len.max(kept.len() as u32).to_le_bytes());
        out.extend_from_slice(kept);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::packets::build::{Inner, frame};

    #[test]
    fn headers_and_records_are_where_readers_look_for_them() {
        let whole = frame(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
            Inner::Udp { payload: 300 },
        );
        let frames = [
            Frame {
                t_us: 1_700_000_000_123_456,
                len: whole.len() as u32,
                data: whole[..100].to_vec(),
            },
            Frame {
                t_us: 1_700_000_001_000_001,
                len: 60,
                data: vec![9; 60],
            },
        ];
        let f = file(&frames, 100);
        let word = |i: usize| u32::from_le_bytes(f[i..i + 4].try_into().unwrap());
        assert_eq!((word(0), word(16), word(20)), (MAGIC, 100, LINKTYPE_ETHERNET));
        assert_eq!(&f[4..8], &[2, 0, 4, 0]);
        // First record: time, 100 kept of 342 on the wire, then the bytes.
        assert_eq!(
            (word(24), word(28), word(32), word(36)),
            (1_700_000_000, 123_456, 100, 342)
        );
        assert_eq!(&f[40..140], &whole[..100]);
        // Second record.
        assert_eq!(
            (word(140), word(144), word(148), word(152)),
            (1_700_000_001, 1, 60, 60)
        );
        assert_eq!(f.len(), 24 + 16 + 100 + 16 + 60);
        // A frame longer than the snap length is cut to it.
        let cut = file(&frames[..1], 50);
        assert_eq!(cut.len(), 24 + 16 + 50);
        assert_eq!(u32::from_le_bytes(cut[36..40].try_into().unwrap()), 342);
    }
}
