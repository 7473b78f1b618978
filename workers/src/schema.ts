/**
 * The JSON contract of `POST /send` and `Mailer.send()` as zod schemas. The same schemas validate
 * requests (HTTP and RPC) and generate the OpenAPI document served at `GET /openapi.json`.
 *
 * Injection is stopped here, before anything is composed: no CR, LF or NUL can reach a header
 * field, an address or an SMTP command through any field (RFC 5322 section 2.2: header field
 * bodies are single lines once unfolded; RFC 5321 section 4.1.2: paths contain no CR/LF).
 */
import { z } from '@hono/zod-openapi';
import { base64DecodedLength, COMPOSER_HEADERS, splitAddressList } from '@smtp-edge/protocol';
import type { Limits } from './config.ts';
import type { FieldError, SendRequest } from './types.ts';

const NO_LINE_BREAKS = /^[^\r\n\0]*$/;
const NO_CONTROLS = /^[^\x01-\x08\x0b\x0c\x0e-\x1f\x7f]*$/;
const LINE_BREAK_MESSAGE = 'must not contain CR, LF or NUL (header injection)';

/** One line of printable text: no CR/LF/NUL (reported as injection), and no other C0 control but TAB. */
const singleLine = (max: number) =>
  z
    .string({ error: 'must be a string' })
    .max(max, { error: `must be at most ${max} characters` })
    .regex(NO_LINE_BREAKS, { error: LINE_BREAK_MESSAGE, abort: true })
    .regex(NO_CONTROLS, { error: 'must not contain control characters' });

/** Mailbox in `local@domain` form (RFC 5321 section 4.1.2); the composer checks the full grammar. */
const ADDR_SPEC =
  /^[^\s@<>()[\]\\,;:"]+(?:\.[^\s@<>()[\]\\,;:"]+)*@[^\s@<>()[\]\\,;:"]+$|^"[^"\\]*"@[^\s@<>]+$/;
// RFC 5321 section 4.5.3.1.3: a path is at most 256 octets; the mailbox itself at most 254.
const addressString = singleLine(998).min(3, { error: 'must be an email address' });

export const MailboxObjectSchema = z
  .strictObject({
    name: singleLine(998).optional().openapi({ example: 'Zoë Martin' }),
    address: singleLine(254)
      .regex(ADDR_SPEC, { error: 'must be an address such as zoe@example.org' })
      .openapi({ example: 'zoe@example.org' }),
  })
  .openapi('Mailbox');

export const AddressSchema = z
  .union([addressString.openapi({ example: '"Zoë Martin" <zoe@example.org>' }), MailboxObjectSchema], {
    error: (issue) =>
      issue.input === undefined
        ? 'is required'
        : 'must be an address string such as "Zoë" <zoe@example.org>, or an object {name, address}',
  })
  .openapi('Address', {
    description:
      'An address: `zoe@example.org`, `"Zoë" <zoe@example.org>` or `{ "name": "Zoë", "address": "zoe@example.org" }`.',
  });

/** Most addresses in one list: an array, or a comma-separated string. */
const MAX_LIST = 1000;

/**
 * How many addresses a value of `to`, `cc`, `bcc` or `replyTo` holds: one per array element or
 * object, and for a string the addresses of its comma-separated list (RFC 5322 section 3.4
 * address-list, split as the composer splits it). A string the splitter refuses counts as one:
 * the composer reports it with its path.
 */
export function countAddresses(value: unknown): number {
  if (value === undefined || value === null) return 0;
  const items: unknown[] = Array.isArray(value) ? value : [value];
  let n = 0;
  for (const item of items) n += typeof item === 'string' ? addressesIn(item) : 1;
  return n;
}

function addressesIn(text: string): number {
  try {
    return splitAddressList(text, '').length;
  } catch {
    return 1;
  }
}

/**
 * One string holding one address or several separated by commas (`a@x, "Doe, J" <j@y>`), as
 * nodemailer takes them. Long enough for MAX_LIST addresses of the longest path (256 octets).
 */
const addressListString = singleLine(256 * MAX_LIST)
  .min(3, { error: 'must be an email address' })
  .refine((text) => addressesIn(text) <= MAX_LIST, { error: `must hold at most ${MAX_LIST} addresses` })
  .openapi({ example: 'zoe@example.org, "Martin, Jan" <jan@example.org>' });

export const AddressListSchema = z
  .union(
    [
      addressListString,
      MailboxObjectSchema,
      z
        .array(AddressSchema)
        .min(1, { error: 'must not be an empty list' })
        .max(MAX_LIST, { error: `must hold at most ${MAX_LIST} addresses` }),
    ],
    {
      error: (issue) =>
        issue.input === undefined
          ? 'is required'
          : 'must be an address, a comma-separated list of addresses in one string, or an array of addresses',
    },
  )
  .openapi('AddressList', {
    description:
      'One address, several in one string separated by commas (`a@example.org, "Doe, Jan" <jan@example.org>`), ' +
      'or an array of addresses (each of which may itself be such a string). Groups (`name: a, b;`) are not supported. ' +
      'An error in the n-th address of a string list is reported at `to[n]` (counting from 0), or `to[i][n]` inside the array element `to[i]`.',
  });

/**
 * Decoded size of attachment content: strict base64 (RFC 4648 section 4 alphabet, `=` padding,
 * zero pad bits) in which whitespace (line breaks of MIME encoders) is ignored; -1 when it is
 * not. One pass, nothing decoded: the composer checks the same rules when it re-wraps the text.
 */
export function base64DecodedSize(content: string): number {
  const known = checkedSizes?.get(content);
  if (known !== undefined) return known;
  try {
    return base64DecodedLength(content, { allowWhitespace: true });
  } catch {
    return -1;
  }
}

/**
 * While `validateSendRequest` runs: the decoded size of each attachment text the schema checked,
 * so the size limit does not scan the text again. Parsing is synchronous (no other request can
 * run in between), and the map is dropped when the call ends. Long strings are keyed in O(1):
 * V8 hashes them by length and compares the same string by identity.
 */
let checkedSizes: Map<string, number> | null = null;

function isStrictBase64(content: string): boolean {
  const size = base64DecodedSize(content);
  checkedSizes?.set(content, size);
  return size >= 0;
}

/**
 * RFC 6838 section 4.2 type/subtype names, with optional RFC 2045 section 5.1 parameters
 * (`; name=token` or `; name="quoted"`), no CR/LF anywhere.
 */
const MEDIA_TOKEN = '[A-Za-z0-9!#$&^_.+-]';
const MEDIA_TYPE = new RegExp(
  `^[A-Za-z0-9]${MEDIA_TOKEN}{0,126}/[A-Za-z0-9]${MEDIA_TOKEN}{0,126}` +
    `(?:[ \\t]*;[ \\t]*[!#$%&'*+.^_\`|~0-9A-Za-z-]+=(?:[!#$%&'*+.^_\`|~0-9A-Za-z-]+|"[^"\\\\\\r\\n]*"))*$`,
);

export const AttachmentSchema = z
  .strictObject({
    filename: singleLine(255).min(1, { error: 'must not be empty' }).openapi({ example: 'report.pdf' }),
    content: z
      .string({ error: 'must be a base64 string' })
      .refine(isStrictBase64, {
        error: 'must be valid base64 (RFC 4648 section 4, with = padding)',
      })
      .openapi({ format: 'byte', example: 'JVBERi0xLjQK' }),
    contentType: z
      .string({ error: 'must be a string' })
      .max(998, { error: 'must be at most 998 characters' })
      .regex(MEDIA_TYPE, { error: 'must be a media type such as application/pdf or text/csv; charset=utf-8' })
      .optional()
      .openapi({ example: 'application/pdf' }),
  })
  .openapi('Attachment');

/**
 * Header fields the Worker writes itself (the composer's own list): the message's own fields come
 * from their JSON fields, and the MIME structure belongs to the composer; trace fields belong to
 * relays. `Date`, `Message-ID`, `In-Reply-To` and `References` may be given (the composer checks
 * their syntax).
 */
const RESERVED_HEADERS = COMPOSER_HEADERS;
const RESERVED_MESSAGE =
  'is written by the Worker: use the JSON fields (from, to, cc, bcc, replyTo, subject, text, html, attachments)';
/** RFC 5322 section 3.6.8: field-name = 1*ftext, printable US-ASCII except colon. */
const FIELD_NAME = /^[!-9;-~]{1,76}$/;

const HeaderNameSchema = z
  .string()
  .regex(FIELD_NAME, {
    error: 'is not a valid header field name (printable ASCII, no spaces or colon, RFC 5322 section 3.6.8)',
    abort: true,
  })
  .refine((name) => !RESERVED_HEADERS.has(name.toLowerCase()), {
    error: RESERVED_MESSAGE,
  });

export const HeadersSchema = z
  .record(HeaderNameSchema, singleLine(998))
  .refine((headers) => Object.keys(headers).length <= 100, { error: 'at most 100 header fields' })
  .openapi('Headers', { example: { 'In-Reply-To': '<1234@example.org>', 'X-Campaign': 'spring' } });

const NOTIFY = z
  .string()
  .transform((value) => value.toUpperCase())
  .pipe(
    z.enum(['SUCCESS', 'FAILURE', 'DELAY', 'NEVER'], { error: 'must be SUCCESS, FAILURE, DELAY or NEVER' }),
  );

export const DsnSchema = z
  .strictObject({
    notify: z
      .union([NOTIFY, z.array(NOTIFY).min(1, { error: 'must not be empty' })])
      .optional()
      .refine(
        (value) =>
          value === undefined || typeof value === 'string' || !value.includes('NEVER') || value.length === 1,
        { error: 'NEVER cannot be combined with other values (RFC 3461 section 4.1)' },
      )
      .openapi({ example: ['FAILURE', 'DELAY'] }),
    ret: z
      .string()
      .transform((value) => value.toUpperCase())
      .pipe(z.enum(['FULL', 'HDRS'], { error: 'must be FULL or HDRS' }))
      .optional(),
    envid: z
      .string({ error: 'must be a string' })
      .regex(/^[!-~]{1,100}$/, {
        error: 'must be 1 to 100 printable ASCII characters (RFC 3461 section 4.4)',
      })
      .optional(),
  })
  .openapi('Dsn', { description: 'Delivery status notifications (RFC 3461), when the relay supports them.' });

export const SendRequestSchema = z
  .strictObject({
    from: AddressSchema,
    to: AddressListSchema.optional(),
    cc: AddressListSchema.optional(),
    bcc: AddressListSchema.optional(),
    replyTo: AddressListSchema.optional(),
    subject: singleLine(998).optional().openapi({ example: 'Your invoice' }),
    text: z
      .string({ error: 'must be a string' })
      .optional()
      .openapi({ example: 'Hello Zoë,\n\nyour invoice is attached.' }),
    html: z.string({ error: 'must be a string' }).optional(),
    attachments: z.array(AttachmentSchema).max(100, { error: 'at most 100 attachments' }).optional(),
    headers: HeadersSchema.optional(),
    dsn: DsnSchema.optional(),
  })
  .openapi('SendRequest');

export type ParsedSendRequest = z.output<typeof SendRequestSchema>;

// The hand-written public types and the schema describe the same input.
type Assert<T extends true> = T;
export type _RequestMatchesSchema = Assert<
  SendRequest extends z.input<typeof SendRequestSchema> ? true : false
>;

const RejectionSchema = z
  .object({
    recipient: z.string().openapi({ example: 'nobody@example.org' }),
    code: z.number().int().openapi({ example: 550 }),
    enhancedCode: z.string().nullable().openapi({ example: '5.1.1' }),
    message: z.string().openapi({ example: 'No such user' }),
  })
  .openapi('RecipientRejection');

export const SendSuccessSchema = z
  .object({
    ok: z.literal(true),
    messageId: z.string().openapi({ example: '<f81d4fae.7dec@mailer.example.org>' }),
    accepted: z.array(z.string()).openapi({ example: ['zoe@example.org'] }),
    rejected: z.array(RejectionSchema),
    requestId: z.string(),
  })
  .openapi('SendSuccess');

export const ErrorResponseSchema = z
  .object({
    ok: z.literal(false),
    error: z.object({
      status: z.number().int(),
      code: z.string().openapi({ example: 'invalid_request' }),
      message: z.string(),
      fields: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
      smtp: z
        .object({
          code: z.number().int(),
          enhancedCode: z.string().nullable(),
          message: z.string(),
          command: z.string().optional(),
        })
        .optional(),
      rejected: z.array(RejectionSchema).optional(),
      retryAfterSeconds: z.number().int().optional(),
    }),
    requestId: z.string(),
  })
  .openapi('Error');

/** Turn a zod path into `to[2]`, `attachments[0].content`, `headers.X-Foo`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

export type Validation = { ok: true; value: ParsedSendRequest } | { ok: false; fields: FieldError[] };

/**
 * `to` + `cc` + `bcc` over `MAX_RECIPIENTS`: the list where the total crosses the limit. Works on
 * the raw input: every address counts, those of a comma-separated string too (`countAddresses`).
 */
function recipientLimit(input: Record<string, unknown>, limits: Limits): FieldError | undefined {
  const counts = (['to', 'cc', 'bcc'] as const).map((path) => [path, countAddresses(input[path])] as const);
  const sum = counts.reduce((n, [, c]) => n + c, 0);
  if (sum <= limits.maxRecipients) return undefined;
  let total = 0;
  for (const [path, count] of counts) {
    total += count;
    if (count > 0 && total > limits.maxRecipients) {
      return {
        path,
        message: `too many recipients: to, cc and bcc hold ${sum} together and the limit is ${limits.maxRecipients}`,
      };
    }
  }
  return undefined;
}

/**
 * Validate a request against the schema and the configured limits, reporting every wrong field
 * (not only the first).
 */
export function validateSendRequest(input: unknown, limits: Limits): Validation {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { ok: false, fields: [{ path: '', message: 'the body must be a JSON object' }] };
  }
  // Too many recipients is refused before the (costlier) field-by-field parse.
  const early = recipientLimit(input as Record<string, unknown>, limits);
  if (early !== undefined) return { ok: false, fields: [early] };
  checkedSizes = new Map();
  try {
    return checkRequest(SendRequestSchema.safeParse(input), limits);
  } finally {
    checkedSizes = null;
  }
}

function checkRequest(parsed: ReturnType<typeof SendRequestSchema.safeParse>, limits: Limits): Validation {
  if (!parsed.success) return { ok: false, fields: dedupe(flattenIssues(parsed.error.issues, [])) };

  const value = parsed.data;
  const fields: FieldError[] = [];
  if (countAddresses(value.to) + countAddresses(value.cc) + countAddresses(value.bcc) === 0) {
    fields.push({ path: 'to', message: 'at least one recipient is required in to, cc or bcc' });
  }
  if (value.text === undefined && value.html === undefined && (value.attachments?.length ?? 0) === 0) {
    fields.push({ path: 'text', message: 'the message is empty: give text, html or attachments' });
  }
  const attachmentBytes = (value.attachments ?? []).reduce((n, a) => n + base64DecodedSize(a.content), 0);
  if (attachmentBytes > limits.maxAttachmentBytes) {
    fields.push({
      path: 'attachments',
      message: `attachments total ${attachmentBytes} bytes once decoded; the limit is ${limits.maxAttachmentBytes}`,
    });
  }
  return fields.length > 0 ? { ok: false, fields } : { ok: true, value };
}

type Issue = z.core.$ZodIssue;

/**
 * Issues to field errors. A failed union reports the issues of the one alternative whose type
 * matched (an array of addresses with one bad element reports that element, e.g. `to[1]`), and
 * its own message when none or several matched.
 */
function flattenIssues(issues: readonly Issue[], prefix: readonly PropertyKey[]): FieldError[] {
  const out: FieldError[] = [];
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys)
        out.push({ path: formatPath([...path, key]), message: 'is not a known field' });
    } else if (issue.code === 'invalid_key') {
      // A record key (a header field name): report the key's own message at its path.
      out.push({ path: formatPath(path), message: issue.issues[0]?.message ?? issue.message });
    } else if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const typed = issue.errors.filter((option) => !typeMismatch(option));
      const only = typed.length === 1 ? typed[0] : undefined;
      if (only !== undefined && only.length > 0) out.push(...flattenIssues(only, path));
      else out.push({ path: formatPath(path), message: issue.message });
    } else {
      out.push({ path: formatPath(path), message: issue.message });
    }
  }
  return out;
}

/** True when an alternative failed because the value has another type (not because of its content). */
function typeMismatch(issues: readonly Issue[]): boolean {
  return issues.some(
    (i) =>
      i.path.length === 0 &&
      (i.code === 'invalid_type' ||
        (i.code === 'invalid_union' && i.errors.every((option) => typeMismatch(option)))),
  );
}

function dedupe(fields: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return fields.filter((f) => {
    const key = `${f.path}\n${f.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
