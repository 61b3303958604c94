//! The tailer's glue from a decoded ring event to the chain's narrow input.
//!
//! Runs on the tailer core, once per event, right after decoding. Pure mapping: events the
//! chain does not use (logs, call frames, headers' bodies, markers) map to `None`. Keeping this
//! in one place lets [`crate::ingest::chain`] stay independent of the decoder's types.

use crate::ingest::chain::input::ChainInput;
use crate::ingest::event::flow::EventContext;
use crate::ingest::event::payload::ExecEvent;

/// The chain fact carried by `event`, or `None` when the chain modules do not use it.
/// `timestamp_ns` is the descriptor's `record_epoch_nanos`.
pub fn chain_input(
    event: &ExecEvent<'_>,
    ctx: &EventContext,
    timestamp_ns: u64,
) -> Option<ChainInput> {
    let block_seqno = ctx.block_seqno;
    let txn_idx = ctx.txn_idx;
    let input = match event {
        ExecEvent::BlockStart(start) => {
            let consensus_ns = u64::try_from(start.proposal_epoch_nanos).unwrap_or(u64::MAX);
            let block_time_ns = if consensus_ns != 0 {
                consensus_ns
            } else {
                start
                    .eth_block_input
                    .timestamp
                    .saturating_mul(1_000_000_000)
            };
            ChainInput::BlockStart {
                block_seqno,
                id: start.block_tag.id,
                number: start.block_tag.block_number,
                parent_eth_hash: start.parent_eth_hash,
                txn_count: start.eth_block_input.txn_count,
                block_time_ns,
                timestamp_ns,
            }
        }
        ExecEvent::BlockEnd(end) => ChainInput::BlockEnd {
            block_seqno,
            gas_used: end.gas_used,
            eth_block_hash: end.eth_block_hash,
            timestamp_ns,
        },
        ExecEvent::BlockReject(_) => ChainInput::BlockReject {
            block_seqno,
            timestamp_ns,
        },
        ExecEvent::EvmError(_) if txn_idx.is_none() && block_seqno != 0 => {
            ChainInput::BlockEvmError {
                block_seqno,
                timestamp_ns,
            }
        }
        ExecEvent::BlockQc(qc) => ChainInput::Qc {
            id: qc.block_tag.id,
            number: qc.block_tag.block_number,
            timestamp_ns,
        },
        ExecEvent::BlockFinalized(tag) => ChainInput::Finalized {
            id: tag.id,
            number: tag.block_number,
            timestamp_ns,
        },
        ExecEvent::BlockVerified { block_number } => ChainInput::Verified {
            number: *block_number,
            timestamp_ns,
        },
        ExecEvent::TxnHeaderStart(_) => ChainInput::TxnHeaderStart {
            block_seqno,
            txn_idx: txn_idx?,
            timestamp_ns,
        },
        ExecEvent::TxnPerfEvmEnter => ChainInput::TxnPerfEnter {
            block_seqno,
            txn_idx: txn_idx?,
            timestamp_ns,
        },
        ExecEvent::TxnPerfEvmExit => ChainInput::TxnPerfExit {
            block_seqno,
            txn_idx: txn_idx?,
            timestamp_ns,
        },
        ExecEvent::AccountAccess(access) => ChainInput::AccountAccess {
            block_seqno,
            txn_idx,
            address: access.address,
            timestamp_ns,
        },
        ExecEvent::StorageAccess(access) => ChainInput::StorageAccess {
            block_seqno,
            txn_idx,
            address: access.address,
            key: access.key,
            modified: access.modified,
            transient: access.transient,
            timestamp_ns,
        },
        _ => return None,
    };
    Some(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::event::payload::{BlockTag, EvmError};

    fn ctx(block_seqno: u64, txn_idx: Option<u32>) -> EventContext {
        EventContext {
            block_seqno,
            txn_idx,
            ..EventContext::default()
        }
    }

    #[test]
    fn evm_error_is_a_block_failure_only_in_block_scope() {
        let err = ExecEvent::EvmError(EvmError {
            domain_id: 1,
            status_code: 2,
        });
        assert_eq!(
            chain_input(&err, &ctx(10, None), 5),
            Some(ChainInput::BlockEvmError {
                block_seqno: 10,
                timestamp_ns: 5
            })
        );
        assert_eq!(chain_input(&err, &ctx(10, Some(3)), 5), None);
    }

    #[test]
    fn consensus_events_carry_their_tag_and_logs_map_to_nothing() {
        let fin = ExecEvent::BlockFinalized(BlockTag {
            id: [7; 32],
            block_number: 42,
        });
        assert_eq!(
            chain_input(&fin, &ctx(0, None), 9),
            Some(ChainInput::Finalized {
                id: [7; 32],
                number: 42,
                timestamp_ns: 9
            })
        );
        assert_eq!(chain_input(&ExecEvent::TxnEnd, &ctx(10, Some(0)), 9), None);
    }
}
