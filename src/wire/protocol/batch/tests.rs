//! Unit tests of Events batch assembly.

use super::*;
use crate::model::kind::EventType;
use crate::model::outbound::{EventBody, FilterKeys, MetaKind};
use crate::model::stage::CommitStage;
use sonic_rs::{JsonContainerTrait, JsonValueTrait, Value};

fn event(seqno: u64, extra: usize) -> EncodedEvent {
    let json = format!(
        r#"{{"event_name":"TxnLog","payload":{{"type":"TxnLog","data":"0x{}"}},"seqno":{seqno},"timestamp_ns":1}}"#,
        "ab".repeat(extra)
    );
    EncodedEvent {
        server_seqno: seqno,
        gate: CommitStage::Proposed,
        body: Arc::new(EventBody {
            origin_seqno: seqno,
            ring_seqno: seqno,
            timestamp_ns: 1,
            keys: FilterKeys::new(EventType::TxnLog),
            json: json.into_bytes().into(),
            stage_span: None,
        }),
    }
}

/// Parses one server frame from the front of `bytes` independently of our writer:
/// returns (opcode, payload, frame length).
fn read_frame(bytes: &[u8]) -> (u8, &[u8], usize) {
    assert_eq!(bytes[0] & 0xf0, 0x80, "FIN set, no RSV bits");
    assert_eq!(bytes[1] & 0x80, 0, "server frames are unmasked");
    let (len, hdr) = match bytes[1] & 0x7f {
        126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
        127 => (
            u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
            10,
        ),
        n => (usize::from(n), 2),
    };
    (bytes[0] & 0x0f, &bytes[hdr..hdr + len], hdr + len)
}

fn frames(mut bytes: &[u8]) -> Vec<Value> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (op, payload, n) = read_frame(bytes);
        assert_eq!(op, 1, "text frame");
        out.push(sonic_rs::from_slice(payload).unwrap());
        bytes = &bytes[n..];
    }
    out
}

#[test]
fn batches_are_valid_text_frames_stamped_with_the_highest_seqno() {
    for (n, extra) in [(1usize, 0usize), (3, 10), (40, 2000), (300, 1)] {
        let events: Vec<EncodedEvent> = (0..n as u64).map(|i| event(1000 + i, extra)).collect();
        let mut out = vec![0xEE]; // existing bytes are kept
        let mut rest = &events[..];
        let writer = BatchWriter::default();
        let mut batches = Vec::new();
        while !rest.is_empty() {
            let b = writer.write_events(rest, &mut out);
            assert!(b.events >= 1);
            assert_eq!(b.server_seqno, rest[b.events - 1].server_seqno);
            batches.push(b);
            rest = &rest[b.events..];
        }
        assert_eq!(out[0], 0xEE);
        let parsed = frames(&out[1..]);
        assert_eq!(parsed.len(), batches.len());
        let mut next = 1000u64;
        for (v, b) in parsed.iter().zip(&batches) {
            let arr = v["Events"].as_array().unwrap();
            assert_eq!(arr.len(), b.events);
            assert!(arr.len() <= 256);
            let max = arr
                .iter()
                .map(|e| e["seqno"].as_u64().unwrap())
                .max()
                .unwrap();
            assert_eq!(v["server_seqno"].as_u64(), Some(max));
            for e in arr {
                assert_eq!(e["seqno"].as_u64(), Some(next));
                next += 1;
            }
        }
        assert_eq!(next, 1000 + n as u64);
    }
}

#[test]
fn the_byte_cap_splits_batches_but_an_oversized_event_still_goes_alone() {
    let writer = BatchWriter::new(BatchLimits {
        max_events: 256,
        max_bytes: 1024,
    });
    let events: Vec<EncodedEvent> = (0..10).map(|i| event(i + 1, 150)).collect();
    let mut out = Vec::new();
    let b = writer.write_events(&events, &mut out);
    let (_, payload, _) = read_frame(&out);
    assert!(payload.len() <= 1024, "{}", payload.len());
    assert!(b.events >= 2 && b.events < 10, "{}", b.events);

    let big = [event(50, 5000), event(51, 1)];
    let mut out = Vec::new();
    let b = writer.write_events(&big, &mut out);
    assert_eq!(b.events, 1);
    assert_eq!(frames(&out)[0]["server_seqno"].as_u64(), Some(50));
}

#[test]
fn an_empty_run_writes_nothing() {
    let mut out = Vec::new();
    let b = BatchWriter::default().write_events(std::iter::empty(), &mut out);
    assert_eq!(b.events, 0);
    assert!(out.is_empty());
}

#[test]
fn meta_frames_are_framed_verbatim() {
    let m = Arc::new(MetaFrame {
        old: None,
        server_seqno: 5,
        kind: MetaKind::Tps,
        stage: None,
        frame: Box::from(&br#"{"server_seqno":5,"TPS":12}"#[..]),
    });
    let mut out = Vec::new();
    let n = write_meta(Framing::WebSocket, &m, &mut out);
    assert_eq!(n, out.len());
    assert_eq!(frames(&out)[0]["TPS"].as_u64(), Some(12));
}

#[test]
fn a_gather_list_carries_exactly_the_bytes_a_buffer_gets() {
    use crate::wire::protocol::gather::Gather;
    let events: Vec<EncodedEvent> = (0..300).map(|i| event(10 + i, 3)).collect();
    let m = Arc::new(MetaFrame {
        old: None,
        server_seqno: 400,
        kind: MetaKind::Tps,
        stage: None,
        frame: Box::from(&br#"{"server_seqno":400,"TPS":7}"#[..]),
    });
    let writer = BatchWriter::default();
    let mut buffer = b"control".to_vec();
    let mut gather = Gather::default();
    gather.put(b"control");
    let mut rest = &events[..];
    while !rest.is_empty() {
        let a = writer.write_events(rest, &mut buffer);
        let b = writer.write_events(rest, &mut gather);
        assert_eq!(a, b);
        rest = &rest[a.events..];
    }
    assert_eq!(
        write_meta(Framing::WebSocket, &m, &mut buffer),
        write_meta(Framing::WebSocket, &m, &mut gather)
    );
    assert_eq!(gather.byte_len(), buffer.len());
    let mut gathered = Vec::new();
    gather.copy_from(0, &mut gathered);
    assert!(gathered == buffer, "same bytes in the same order");
    assert_eq!(frames(&buffer[b"control".len()..]).len(), 3);
}

#[test]
fn sse_framing_wraps_the_same_json_in_id_and_data_lines() {
    let events: Vec<EncodedEvent> = (0..5).map(|i| event(20 + i, 2)).collect();
    let m = Arc::new(MetaFrame {
        old: Some(Box::from(&br#"{"server_seqno":30,"TPS":1}"#[..])),
        server_seqno: 30,
        kind: MetaKind::Tps,
        stage: None,
        frame: Box::from(&br#"{"server_seqno":30,"TPS":2}"#[..]),
    });
    let limits = BatchLimits {
        max_events: 3,
        ..BatchLimits::default()
    };
    let sse = Framing::Sse { epoch: 99 };
    let mut ws_out = Vec::new();
    let mut sse_out = Vec::new();
    for (framing, out) in [(Framing::WebSocket, &mut ws_out), (sse, &mut sse_out)] {
        let writer = BatchWriter::new(limits)
            .with_framing(framing)
            .old_shapes(true);
        let mut rest = &events[..];
        while !rest.is_empty() {
            let b = writer.write_events(rest, out);
            rest = &rest[b.events..];
        }
        writer.write_meta(&m, out);
    }
    let text = String::from_utf8(sse_out).unwrap();
    let messages: Vec<&str> = text.strip_suffix("\n\n").unwrap().split("\n\n").collect();
    let ws_frames = frames(&ws_out);
    assert_eq!(messages.len(), ws_frames.len());
    assert_eq!(
        messages.len(),
        3,
        "two batches of at most 3 events, one meta frame"
    );
    for (msg, ws) in messages.iter().zip(&ws_frames) {
        let (id, data) = msg.split_once('\n').unwrap();
        let data = data.strip_prefix("data: ").unwrap();
        assert!(!data.contains('\n'), "one data line per frame");
        let seqno = ws["server_seqno"].as_u64().unwrap();
        assert_eq!(id, format!("id: 99:{seqno}"));
        let v: Value = sonic_rs::from_str(data).unwrap();
        assert_eq!(&v, ws, "the SSE data is the WebSocket frame's JSON");
    }
    assert!(text.ends_with("id: 99:30\ndata: {\"server_seqno\":30,\"TPS\":1}\n\n"));
}
