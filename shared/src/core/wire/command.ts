/**
 * SMTP command lines, server side: split a received line into its verb and argument string,
 * and split the argument of MAIL / RCPT into the path and its ESMTP parameters.
 *
 * RFC 5321 section 4.1.1: a command is a verb, optionally followed by SP and arguments, ended
 * by CRLF (the caller has already removed the CRLF, see `InputBuffer.readLine`). Verbs are
 * case-insensitive. The parsers here never throw: every outcome is a typed value the server
 * turns into a reply.
 */

/** A command line split into its parts. `verb` is upper-cased; `args` is everything after the first SP. */
export interface SmtpCommand {
  readonly kind: 'command';
  readonly verb: string;
  readonly args: string;
}

/** Why a line is not a command at all (the server answers 500 5.5.2). */
export type InvalidCommandReason =
  /** Empty line. */
  | 'empty'
  /** Not well-formed UTF-8 (RFC 6531 section 3.3 allows UTF-8 only, and only in paths). */
  | 'not-utf8'
  /** NUL, bare CR, bare LF or another control character inside the line (RFC 5321 section 4.1.1). */
  | 'control-character'
  /** The first word is not a keyword (RFC 5321 section 4.1.2: `Keyword = Ldh-str`). */
  | 'bad-verb';

export interface InvalidCommand {
  readonly kind: 'invalid';
  readonly reason: InvalidCommandReason;
}

export type ParsedCommand = SmtpCommand | InvalidCommand;

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// RFC 5321 section 4.1.2: command verbs are letters, digits and hyphens, starting with a letter.
const VERB = /^[A-Za-z][A-Za-z0-9-]*$/;
// C0 controls except HTAB, and DEL. HTAB is tolerated as white space in arguments (some
// clients send "MAIL FROM:\t<a@b>"); everything else is an injection attempt or garbage.
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

/**
 * Parse one command line (without its CRLF). Accepts a string or the raw octets; octets must be
 * well-formed UTF-8 (plain ASCII is). Never throws.
 */
export function parseCommand(line: Uint8Array | string): ParsedCommand {
  let text: string;
  if (typeof line === 'string') {
    text = line;
  } else {
    const ascii = asciiText(line);
    if (ascii !== null) {
      text = ascii;
    } else {
      try {
        text = strictUtf8.decode(line);
      } catch {
        return { kind: 'invalid', reason: 'not-utf8' };
      }
    }
  }
  if (text.length === 0) return { kind: 'invalid', reason: 'empty' };
  if (CONTROL.test(text)) return { kind: 'invalid', reason: 'control-character' };
  const sp = text.indexOf(' ');
  const verb = sp < 0 ? text : text.slice(0, sp);
  if (!VERB.test(verb)) return { kind: 'invalid', reason: 'bad-verb' };
  // Trailing white space after the arguments is common (RFC 5321 section 4.1.1 tolerance:
  // "servers SHOULD be tolerant"); leading extra spaces too. The verb itself is exact.
  const args = sp < 0 ? '' : text.slice(sp + 1).trim();
  return { kind: 'command', verb: verb.toUpperCase(), args };
}

/**
 * The text of a short all-ASCII line (nearly every command), or null (then decode as UTF-8).
 * A `TextDecoder` call costs more than the whole line for the usual 10-40 octets.
 */
function asciiText(line: Uint8Array): string | null {
  if (line.length > 1024) return null;
  for (let i = 0; i < line.length; i++) if (line[i]! > 0x7f) return null;
  return String.fromCharCode.apply(null, line as unknown as number[]);
}

/** The `FROM:<path> params` / `TO:<path> params` argument of MAIL / RCPT, split. */
export interface PathArgument {
  readonly kind: 'path';
  /** The path including its angle brackets, e.g. `<a@example.org>` or `<>`. */
  readonly path: string;
  /** The ESMTP parameters after the path (space separated, not yet parsed); '' when none. */
  readonly params: string;
}

export interface PathArgumentError {
  readonly kind: 'error';
  /** `keyword`: no `FROM:` / `TO:`; `syntax`: no well-formed `<...>` path after it. */
  readonly reason: 'keyword' | 'syntax';
}

/**
 * Split `FROM:<path> [SP params]` (keyword `FROM`) or `TO:<path> [SP params]` (keyword `TO`).
 *
 * RFC 5321 section 4.1.1.2 / 4.1.1.3: `"MAIL FROM:" Reverse-path [SP Mail-parameters]`. Two
 * widespread deviations are accepted because real clients send them and they are unambiguous:
 * white space between the colon and the path, and lower-case keywords. A path without angle
 * brackets is refused (it is ambiguous with parameters). The closing `>` is found while
 * honouring quoted strings and quoted pairs, so `<"a>b"@example.org>` is one path.
 */
export function splitPathArgument(args: string, keyword: 'FROM' | 'TO'): PathArgument | PathArgumentError {
  const prefix = `${keyword}:`;
  if (args.length < prefix.length || args.slice(0, prefix.length).toUpperCase() !== prefix) {
    return { kind: 'error', reason: 'keyword' };
  }
  let i = prefix.length;
  while (args[i] === ' ' || args[i] === '\t') i++;
  if (args[i] !== '<') return { kind: 'error', reason: 'syntax' };
  const start = i;
  let quoted = false;
  for (i = start + 1; i < args.length; i++) {
    const c = args[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
    } else if (c === '>') {
      break;
    } else if (c === '<') {
      return { kind: 'error', reason: 'syntax' };
    }
  }
  if (i >= args.length) return { kind: 'error', reason: 'syntax' };
  const path = args.slice(start, i + 1);
  const rest = args.slice(i + 1);
  if (rest.length > 0 && rest[0] !== ' ' && rest[0] !== '\t') return { kind: 'error', reason: 'syntax' };
  return { kind: 'path', path, params: rest.trim() };
}
