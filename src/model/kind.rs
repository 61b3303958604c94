//! The 25 execution event type codes of the exec schema (`enum monad_exec_event_type : u16`,
//! docs/ring-format.md#s3-2) and their PascalCase wire names.
//!
//! Runs anywhere; pure data. Unknown codes from the ring are `None` from [`EventType::from_code`]
//! and are counted and skipped by the caller, never a panic.

/// One execution event type. The discriminant is the ring's `event_type` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum EventType {
    /// Code 0: never emitted by a writer; a descriptor carrying it is malformed.
    None = 0,
    RecordError = 1,
    BlockStart = 2,
    BlockReject = 3,
    BlockPerfEvmEnter = 4,
    BlockPerfEvmExit = 5,
    BlockEnd = 6,
    BlockQc = 7,
    BlockFinalized = 8,
    BlockVerified = 9,
    TxnHeaderStart = 10,
    TxnAccessListEntry = 11,
    TxnAuthListEntry = 12,
    TxnHeaderEnd = 13,
    TxnReject = 14,
    TxnPerfEvmEnter = 15,
    TxnPerfEvmExit = 16,
    TxnEvmOutput = 17,
    TxnLog = 18,
    TxnCallFrame = 19,
    TxnEnd = 20,
    AccountAccessListHeader = 21,
    AccountAccess = 22,
    StorageAccess = 23,
    EvmError = 24,
}

/// `MONAD_EXEC_EVENT_COUNT`: codes are `0..EVENT_TYPE_COUNT`.
pub const EVENT_TYPE_COUNT: usize = 25;

impl EventType {
    /// Every type in code order; `ALL[code] as u16 == code`.
    pub const ALL: [EventType; EVENT_TYPE_COUNT] = [
        EventType::None,
        EventType::RecordError,
        EventType::BlockStart,
        EventType::BlockReject,
        EventType::BlockPerfEvmEnter,
        EventType::BlockPerfEvmExit,
        EventType::BlockEnd,
        EventType::BlockQc,
        EventType::BlockFinalized,
        EventType::BlockVerified,
        EventType::TxnHeaderStart,
        EventType::TxnAccessListEntry,
        EventType::TxnAuthListEntry,
        EventType::TxnHeaderEnd,
        EventType::TxnReject,
        EventType::TxnPerfEvmEnter,
        EventType::TxnPerfEvmExit,
        EventType::TxnEvmOutput,
        EventType::TxnLog,
        EventType::TxnCallFrame,
        EventType::TxnEnd,
        EventType::AccountAccessListHeader,
        EventType::AccountAccess,
        EventType::StorageAccess,
        EventType::EvmError,
    ];

    /// The type for a ring code, or `None` for a code this schema does not define.
    pub fn from_code(code: u16) -> Option<EventType> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// The ring code.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// One bit per type, for event-kind masks in filters (`1 << code`).
    pub fn bit(self) -> u32 {
        1u32 << (self as u32)
    }

    /// The PascalCase name used as `event_name` and `payload.type` on the wire (the existing
    /// gateway's names, so its clients' subscriptions keep working).
    pub fn name(self) -> &'static str {
        match self {
            EventType::None => "None",
            EventType::RecordError => "RecordError",
            EventType::BlockStart => "BlockStart",
            EventType::BlockReject => "BlockReject",
            EventType::BlockPerfEvmEnter => "BlockPerfEvmEnter",
            EventType::BlockPerfEvmExit => "BlockPerfEvmExit",
            EventType::BlockEnd => "BlockEnd",
            EventType::BlockQc => "BlockQC",
            EventType::BlockFinalized => "BlockFinalized",
            EventType::BlockVerified => "BlockVerified",
            EventType::TxnHeaderStart => "TxnHeaderStart",
            EventType::TxnAccessListEntry => "TxnAccessListEntry",
            EventType::TxnAuthListEntry => "TxnAuthListEntry",
            EventType::TxnHeaderEnd => "TxnHeaderEnd",
            EventType::TxnReject => "TxnReject",
            EventType::TxnPerfEvmEnter => "TxnPerfEvmEnter",
            EventType::TxnPerfEvmExit => "TxnPerfEvmExit",
            EventType::TxnEvmOutput => "TxnEvmOutput",
            EventType::TxnLog => "TxnLog",
            EventType::TxnCallFrame => "TxnCallFrame",
            EventType::TxnEnd => "TxnEnd",
            EventType::AccountAccessListHeader => "AccountAccessListHeader",
            EventType::AccountAccess => "AccountAccess",
            EventType::StorageAccess => "StorageAccess",
            EventType::EvmError => "EvmError",
        }
    }

    /// The type for a wire name (exact, case-sensitive, as the existing gateway parses them).
    /// `None` (code 0) is not nameable by clients.
    pub fn from_name(name: &str) -> Option<EventType> {
        Self::ALL[1..].iter().copied().find(|t| t.name() == name)
    }

    /// The spec's upper-snake name (`BLOCK_START`), for logs and `inspect` headers.
    pub fn spec_name(self) -> &'static str {
        match self {
            EventType::None => "NONE",
            EventType::RecordError => "RECORD_ERROR",
            EventType::BlockStart => "BLOCK_START",
            EventType::BlockReject => "BLOCK_REJECT",
            EventType::BlockPerfEvmEnter => "BLOCK_PERF_EVM_ENTER",
            EventType::BlockPerfEvmExit => "BLOCK_PERF_EVM_EXIT",
            EventType::BlockEnd => "BLOCK_END",
            EventType::BlockQc => "BLOCK_QC",
            EventType::BlockFinalized => "BLOCK_FINALIZED",
            EventType::BlockVerified => "BLOCK_VERIFIED",
            EventType::TxnHeaderStart => "TXN_HEADER_START",
            EventType::TxnAccessListEntry => "TXN_ACCESS_LIST_ENTRY",
            EventType::TxnAuthListEntry => "TXN_AUTH_LIST_ENTRY",
            EventType::TxnHeaderEnd => "TXN_HEADER_END",
            EventType::TxnReject => "TXN_REJECT",
            EventType::TxnPerfEvmEnter => "TXN_PERF_EVM_ENTER",
            EventType::TxnPerfEvmExit => "TXN_PERF_EVM_EXIT",
            EventType::TxnEvmOutput => "TXN_EVM_OUTPUT",
            EventType::TxnLog => "TXN_LOG",
            EventType::TxnCallFrame => "TXN_CALL_FRAME",
            EventType::TxnEnd => "TXN_END",
            EventType::AccountAccessListHeader => "ACCOUNT_ACCESS_LIST_HEADER",
            EventType::AccountAccess => "ACCOUNT_ACCESS",
            EventType::StorageAccess => "STORAGE_ACCESS",
            EventType::EvmError => "EVM_ERROR",
        }
    }
}

/// Why a ring payload could not be decoded (the class of `ingest::event::decode::DecodeError`),
/// usable as a counter or metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DecodeErrorKind {
    NoneType,
    UnknownType,
    Short,
    LengthMismatch,
}

impl DecodeErrorKind {
    /// Every kind, in counter order.
    pub const ALL: [DecodeErrorKind; 4] = [
        DecodeErrorKind::NoneType,
        DecodeErrorKind::UnknownType,
        DecodeErrorKind::Short,
        DecodeErrorKind::LengthMismatch,
    ];

    /// Snake-case label (`"length_mismatch"`).
    pub fn name(self) -> &'static str {
        match self {
            DecodeErrorKind::NoneType => "none_type",
            DecodeErrorKind::UnknownType => "unknown_type",
            DecodeErrorKind::Short => "short",
            DecodeErrorKind::LengthMismatch => "length_mismatch",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_names_are_unique() {
        for (code, t) in EventType::ALL.iter().enumerate() {
            assert_eq!(t.code() as usize, code);
            assert_eq!(EventType::from_code(code as u16), Some(*t));
            if *t != EventType::None {
                assert_eq!(EventType::from_name(t.name()), Some(*t));
            }
        }
        assert_eq!(EventType::from_code(25), None);
        assert_eq!(EventType::from_name("None"), None);
        assert_eq!(EventType::from_name("blockstart"), None);
    }
}
