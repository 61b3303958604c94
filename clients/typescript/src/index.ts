/**
 * ringgate-client: TypeScript client for ringgate, the WebSocket gateway for Monad execution
 * event rings. See README.md for the contract.
 */
export { connect, Client, latencyNs, isKnownEvent, buildUrl, CHANNELS, MIN_STAGES } from "./client.js";
export type { ConnectOptions, ClientStats, Channel } from "./client.js";
export { formatCursor, parseCursor, toCursor, cursorEquals } from "./cursor.js";
export type { Cursor } from "./cursor.js";
export {
  RinggateError,
  ConnectError,
  AuthenticationError,
  RequestRejected,
  NotRinggateError,
  SubscriptionError,
  ConnectionLost,
  ProtocolError,
} from "./errors.js";
export { fieldFilter, Matcher } from "./filters.js";
export type { FieldFilter, FilterSpec, TopicSlot } from "./filters.js";
export type {
  Item,
  RinggateEvent,
  EventOf,
  GapItem,
  WarningItem,
  ShedItem,
  TpsItem,
  LifecycleItem,
  ContentionDataItem,
  TopAccessesItem,
  ResumedItem,
  ReconnectingItem,
  ConnectedItem,
} from "./items.js";
export { exactU64, hexToBigInt, splitTopics } from "./rawjson.js";
export { nowNs } from "./clock.js";
export {
  validateEvent,
  validateLifecycle,
  validateContentionData,
  validateTopAccesses,
  validateGap,
  validateTps,
  PAYLOAD_FIELDS,
  ENVELOPE_FIELDS,
} from "./schema.js";
export type { Validation, FieldKind, FieldSpec } from "./schema.js";
export { EVENT_NAMES, META_NAMES } from "./types.js";
export type * from "./types.js";
export { VERSION } from "./version.js";
