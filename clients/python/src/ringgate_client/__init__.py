"""Python client for ringgate, the WebSocket gateway for Monad execution event rings.

    import asyncio
    from ringgate_client import connect, Event, Gap

    async def main():
        async with connect("ws://127.0.0.1:8443", events=["TxnLog"]) as client:
            async for item in client:
                if isinstance(item, Event):
                    print(item.payload.address, item.payload.topic_list)
                elif isinstance(item, Gap):
                    print("lost data:", item)

    asyncio.run(main())

See README.md for the contract (cursor, resume, de-duplication, reconnect).
"""

from ._version import __version__
from .client import CHANNELS, Client, connect, latency_ns
from .cursor import Cursor
from .errors import (
    AuthenticationError,
    ConnectError,
    ConnectionLost,
    DecodeError,
    NotRinggateError,
    ProtocolError,
    RequestRejected,
    RinggateError,
    SubscriptionError,
)
from .filters import field_filter
from .types import (
    EVENT_KINDS,
    PAYLOAD_TYPES,
    AccessCount,
    BackpressureWarning,
    Shed,
    Connected,
    ContendedContract,
    ContendedSlot,
    ContentionData,
    ContractEdge,
    Event,
    Gap,
    Item,
    Lifecycle,
    Payload,
    Reconnecting,
    Resumed,
    StorageCount,
    TopAccesses,
    Tps,
    UnknownPayload,
    Warning,
    decode_payload,
    hex_to_int,
)
from .types import (  # the 24 payload classes, one per event kind
    AccountAccess,
    AccountAccessListHeader,
    BlockEnd,
    BlockFinalized,
    BlockPerfEvmEnter,
    BlockPerfEvmExit,
    BlockQC,
    BlockReject,
    BlockStart,
    BlockVerified,
    EvmError,
    RecordError,
    StorageAccess,
    TxnAccessListEntry,
    TxnAuthListEntry,
    TxnCallFrame,
    TxnEnd,
    TxnEvmOutput,
    TxnHeaderEnd,
    TxnHeaderStart,
    TxnLog,
    TxnPerfEvmEnter,
    TxnPerfEvmExit,
    TxnReject,
)

__all__ = [
    "__version__", "connect", "Client", "latency_ns", "Cursor", "CHANNELS", "field_filter",
    # items
    "Event", "Gap", "Warning", "BackpressureWarning", "Shed", "Lifecycle", "Tps", "ContentionData",
    "TopAccesses", "Resumed", "Reconnecting", "Connected", "Item",
    "ContendedSlot", "ContendedContract", "ContractEdge", "AccessCount", "StorageCount",
    # payloads
    "Payload", "UnknownPayload", "PAYLOAD_TYPES", "EVENT_KINDS", "decode_payload", "hex_to_int",
    *sorted(PAYLOAD_TYPES),
    # errors
    "RinggateError", "ConnectError", "AuthenticationError", "RequestRejected", "NotRinggateError",
    "SubscriptionError", "ConnectionLost", "ProtocolError", "DecodeError",
]
