/**
 * The SMTP client core: `SmtpClientSession` drives one connection over any `Transport`.
 * Adapters (`@smtp-edge/protocol/node`, `@smtp-edge/protocol/workers`) open the connection.
 */
export { type AuthExchange, authenticate, chooseMechanism } from './auth.ts';
export { type BodyFacts, bodyChunks, inspectBody } from './body.ts';
export { addressLiteral, defaultHeloName, usableHostname, validateHeloName } from './ehlo.ts';
export { type BodyType, planTransaction, type TransactionPlan, validateEnvelope } from './envelope.ts';
export { SmtpRecipientsRejectedError } from './errors.ts';
export {
  DEFAULT_CHUNK_SIZE,
  DEFAULT_TIMEOUTS,
  type DsnOptions,
  type MessageBody,
  type RecipientResult,
  type ResolvedClientOptions,
  resolveClientOptions,
  type SendEnvelope,
  type SendResult,
  type SmtpClientOptions,
  type SmtpClientTimeouts,
} from './options.ts';
export { ReplyReader } from './reply-reader.ts';
export { type SendOnceOptions, sendOnce } from './send-mail.ts';
export { type SessionState, SmtpClientSession } from './session.ts';
