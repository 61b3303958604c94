//! Filter keys: the values subscription filters test, computed once per event on the tailer
//! core from the decoded event and its flow context (docs/invariants.md#fast-4).
//!
//! Input: [`ExecEvent`] + [`EventContext`]; output: [`FilterKeys`] (see frame.rs for what each
//! key means). Pure and allocation-free.

use crate::ingest::event::flow::EventContext;
use crate::ingest::event::payload::ExecEvent;
use crate::model::outbound::{FilterKeys, MAX_LOG_TOPICS};

/// The first four bytes of call data, when there are at least four.
fn selector(input: &[u8]) -> Option<[u8; 4]> {
    input.first_chunk::<4>().copied()
}

/// Computes the filter keys of one event.
pub fn filter_keys(event: &ExecEvent<'_>, ctx: &EventContext) -> FilterKeys {
    let mut k = FilterKeys::new(event.event_type());
    k.block_seqno = ctx.block_seqno;
    k.block_id = ctx.block_id;
    k.block_number = ctx.block_number;
    k.txn_idx = ctx.txn_idx;
    match event {
        ExecEvent::TxnLog(g) => {
            k.log_index = Some(g.index);
            k.push_address(g.address);
            for (slot, topic) in k.topics.iter_mut().zip(g.topics()).take(MAX_LOG_TOPICS) {
                slot.copy_from_slice(topic);
                k.topic_count += 1;
            }
        }
        ExecEvent::TxnCallFrame(c) => {
            k.push_address(c.caller);
            k.push_address(c.call_target);
            k.selector = selector(c.input);
            k.has_value = !c.value.is_zero();
        }
        ExecEvent::TxnHeaderStart(t) => {
            k.push_address(t.sender);
            if !t.txn_header.is_contract_creation {
                k.push_address(t.txn_header.to);
            }
            k.selector = selector(t.data);
        }
        ExecEvent::TxnAccessListEntry(e) => k.push_address(e.address),
        ExecEvent::TxnAuthListEntry(a) => {
            k.push_address(a.address);
            k.push_address(a.authority);
        }
        ExecEvent::AccountAccess(a) => k.push_address(a.address),
        ExecEvent::StorageAccess(s) => k.push_address(s.address),
        _ => {}
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::event::payload::*;
    use crate::model::kind::EventType;

    #[test]
    fn call_frame_keys_name_both_addresses_the_selector_and_value() {
        let input = [0xa9, 0x05, 0x9c, 0xbb, 1, 2];
        let ev = ExecEvent::TxnCallFrame(TxnCallFrame {
            index: 0,
            caller: [1; 20],
            call_target: [2; 20],
            opcode: 0xf1,
            value: U256::from_u64(5),
            gas: 1,
            gas_used: 1,
            evmc_status: 0,
            depth: 0,
            input: &input,
            output: &[],
        });
        let ctx = EventContext {
            block_seqno: 3,
            block_number: Some(9),
            txn_idx: Some(4),
            ..EventContext::default()
        };
        let k = filter_keys(&ev, &ctx);
        assert_eq!(k.event_type, EventType::TxnCallFrame);
        assert_eq!(k.addresses(), &[[1; 20], [2; 20]]);
        assert_eq!(k.selector, Some([0xa9, 0x05, 0x9c, 0xbb]));
        assert!(k.has_value);
        assert_eq!(
            (k.block_seqno, k.block_number, k.txn_idx),
            (3, Some(9), Some(4))
        );
    }

    #[test]
    fn log_keys_hold_topics_in_order() {
        let mut topics = [0u8; 96];
        topics[0] = 0xdd;
        topics[32] = 0x01;
        topics[64] = 0x02;
        let ev = ExecEvent::TxnLog(TxnLog {
            index: 7,
            address: [9; 20],
            topics: &topics,
            data: &[],
        });
        let k = filter_keys(&ev, &EventContext::default());
        assert_eq!(k.log_index, Some(7));
        assert_eq!(k.topics().len(), 3);
        assert_eq!(k.topics()[0][0], 0xdd);
        assert_eq!(k.topics()[2][0], 0x02);
        assert_eq!(k.addresses(), &[[9; 20]]);
        assert!(!k.has_value);
    }
}
