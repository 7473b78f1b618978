/**
 * Message composition (RFC 5322 + MIME): `composeMessage` turns a JSON-friendly description
 * into the octets of a message and its SMTP envelope. Web-standard APIs only.
 */
export {
  type AddressInput,
  formatAddressHeader,
  type ListedAddress,
  type NamedAddress,
  parseAddress,
  type ResolvedAddress,
  resolveAddress,
  splitAddressList,
} from './address.ts';
export {
  type AttachmentInput,
  COMPOSER_HEADERS,
  type ComposedMessage,
  composeMessage,
  type MessageInput,
} from './compose.ts';
export { mediaTypeForFilename } from './content-type.ts';
export { formatDate } from './identity.ts';
export { domainToAscii, punycodeEncode } from './punycode.ts';
export { quotedPrintableEncode } from './transfer-encoding.ts';
