//! The sans-IO protocol core speaks real WebSocket: a tungstenite client completes our
//! handshake, reads our Hello / Events / meta / ping / close frames, and we decode its masked
//! (and fragmented) frames. Everything runs over in-memory pipes: no sockets, no runtime.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::rc::Rc;
use std::sync::Arc;

use ringgate::config::Config;
use ringgate::model::kind::EventType;
use ringgate::model::outbound::{
    EncodedEvent, EventBody, FilterKeys, MetaFrame, MetaKind, Outbound,
};
use ringgate::model::stage::CommitStage;
use ringgate::serve::backpressure::{QueueLimits, SessionQueue};
use ringgate::wire::http::{parse_request, route, Parsed, RequestLimits, Route};
use ringgate::wire::protocol::messages::{self, Hello};
use ringgate::wire::protocol::BatchWriter;
use ringgate::wire::subscription::channel::Channel;
use ringgate::wire::subscription::{parse_client_message, ClientMessage, SubscriptionLimits};
use ringgate::wire::ws::{
    accept, switching_protocols, write_close, write_frame, CloseCode, Decoded, FrameDecoder, OpCode,
};
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use tungstenite::protocol::frame::coding::{Data, OpCode as TOpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::Message;

/// One direction of an in-memory connection; reads would block when empty.
#[derive(Clone, Default)]
struct Pipe {
    to_client: Rc<RefCell<VecDeque<u8>>>,
    to_server: Rc<RefCell<Vec<u8>>>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut q = self.to_client.borrow_mut();
        if q.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(q.len());
        for (dst, src) in buf.iter_mut().zip(q.drain(..n)) {
            *dst = src;
        }
        Ok(n)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.to_server.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Pipe {
    fn send_to_client(&self, bytes: &[u8]) {
        self.to_client.borrow_mut().extend(bytes.iter().copied());
    }
    fn take_from_client(&self) -> Vec<u8> {
        std::mem::take(&mut *self.to_server.borrow_mut())
    }
}

fn event(seqno: u64) -> EncodedEvent {
    EncodedEvent {
        server_seqno: seqno,
        gate: CommitStage::Proposed,
        body: Arc::new(EventBody {
            origin_seqno: seqno,
            ring_seqno: seqno + 1000,
            timestamp_ns: 1_756_499_174_388_871_879,
            keys: FilterKeys::new(EventType::TxnLog),
            json: format!(
                r#"{{"event_name":"TxnLog","block_number":15000001,"txn_idx":1,"commit_stage":"Proposed","payload":{{"type":"TxnLog","txn_index":1,"log_index":0}},"seqno":{},"timestamp_ns":1756499174388871879}}"#,
                seqno + 1000
            )
            .into_bytes()
            .into(),
            stage_span: None,
        }),
    }
}

fn connect(pipe: &Pipe) -> tungstenite::WebSocket<Pipe> {
    let mid = match tungstenite::client::client(
        "ws://gateway.test/v1/ws/txs?resume_from=0",
        pipe.clone(),
    ) {
        Err(tungstenite::HandshakeError::Interrupted(mid)) => mid,
        other => panic!(
            "expected the client to wait for our response: {:?}",
            other.err()
        ),
    };
    let request = pipe.take_from_client();
    let req = match parse_request(&request, &RequestLimits::default()) {
        Ok(Parsed::Complete(r)) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(req.head_len, request.len());
    assert!(matches!(route(&req), Ok(Route::Ws(Channel::Txs, _))));
    let accepted = accept(&req).expect("tungstenite's upgrade request is valid");
    pipe.send_to_client(&switching_protocols(&accepted));
    match mid.handshake() {
        Ok((ws, response)) => {
            assert_eq!(response.status(), 101);
            ws
        }
        Err(e) => panic!("handshake failed: {e}"),
    }
}

#[test]
fn a_tungstenite_client_reads_everything_the_session_writes() {
    let pipe = Pipe::default();
    let mut client = connect(&pipe);

    let mut out = Vec::new();
    let hello = Hello {
        server_version: "0.1.0",
        epoch: 1_700_000_000_000,
        channel: Channel::Txs.name(),
        resume: true,
        // What a default server announces.
        limits: Config::default().advertised_limits(),
    };
    messages::write_message(&messages::hello(0, &hello), &mut out);
    let mut queue = SessionQueue::new(QueueLimits::default(), 0);
    for s in 1..=300 {
        queue.offer(Outbound::Event(event(s)));
    }
    queue.offer(Outbound::Meta(Arc::new(MetaFrame {
        old: None,
        server_seqno: 301,
        kind: MetaKind::Tps,
        stage: None,
        frame: Box::from(&br#"{"server_seqno":301,"TPS":4200}"#[..]),
    })));
    queue.write_pending(&BatchWriter::default(), &mut out, usize::MAX);
    write_frame(OpCode::Ping, b"hb", &mut out);
    write_close(
        CloseCode::Policy,
        "slow client: 10000 frames dropped",
        &mut out,
    );
    pipe.send_to_client(&out);

    let mut seqnos = Vec::new();
    let mut events = 0;
    loop {
        match client.read() {
            Ok(Message::Text(t)) => {
                let v: sonic_rs::Value = sonic_rs::from_str(t.as_str()).unwrap();
                seqnos.push(v["server_seqno"].as_u64().unwrap());
                if let Some(arr) = v.get("Events").and_then(|e| e.as_array()) {
                    events += arr.len();
                }
            }
            Ok(Message::Ping(p)) => assert_eq!(&p[..], b"hb"),
            Ok(Message::Close(Some(frame))) => {
                assert_eq!(u16::from(frame.code), 1008);
                assert_eq!(frame.reason.as_str(), "slow client: 10000 frames dropped");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(events, 300);
    assert_eq!(seqnos, [0, 256, 300, 301], "Hello, two capped batches, TPS");
    assert!(seqnos.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn we_decode_a_tungstenite_clients_frames() {
    let pipe = Pipe::default();
    let mut client = connect(&pipe);
    client
        .send(Message::text(
            r#"{"subscribe":["TxnLog","NativeTransfer"]}"#,
        ))
        .unwrap();
    client.send(Message::Ping(b"p".to_vec().into())).unwrap();
    let mut bytes = pipe.take_from_client();
    // A fragmented text message, masked as a client must.
    for (part, fin, op) in [
        (
            &br#"{"subscribe":{"events":"#[..],
            false,
            TOpCode::Data(Data::Text),
        ),
        (
            br#"["TxnEnd"],"min_stage":"#,
            false,
            TOpCode::Data(Data::Continue),
        ),
        (br#""Finalized"}}"#, true, TOpCode::Data(Data::Continue)),
    ] {
        let mut frame = Frame::message(part.to_vec(), op, fin);
        frame.header_mut().mask = Some([0xde, 0xad, 0xbe, 0xef]);
        frame.format(&mut bytes).unwrap();
    }
    client.send(Message::Binary(vec![1, 2, 3].into())).unwrap();
    bytes.extend(pipe.take_from_client());

    let mut decoder = FrameDecoder::default();
    let mut subs = Vec::new();
    let mut pings = 0;
    let mut buf = &bytes[..];
    let err = loop {
        match decoder.decode(buf) {
            Ok(d) => {
                let n = d.consumed();
                match d {
                    Decoded::Text { text, .. } => {
                        match parse_client_message(
                            text,
                            Channel::Txs,
                            &SubscriptionLimits::default(),
                        ) {
                            Ok(ClientMessage::Subscribe(s)) => subs.push(s),
                            other => panic!("{other:?}"),
                        }
                    }
                    Decoded::Ping { payload, .. } => {
                        assert_eq!(payload, b"p");
                        pings += 1;
                    }
                    Decoded::Partial { .. } => {}
                    other => panic!("{other:?}"),
                }
                buf = &buf[n..];
            }
            Err(e) => break e,
        }
    };
    assert_eq!(pings, 1);
    assert_eq!(subs.len(), 2);
    assert!(subs[0].native_transfer);
    assert_eq!(subs[1].events, EventType::TxnEnd.bit());
    assert_eq!(subs[1].min_stage, CommitStage::Finalized);
    assert_eq!(
        err.close_code(),
        CloseCode::Unsupported,
        "binary closes with 1003"
    );
}
