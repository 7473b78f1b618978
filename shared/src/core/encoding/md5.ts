/**
 * MD5 (RFC 1321) and HMAC-MD5 (RFC 2104), in plain TypeScript.
 *
 * Only CRAM-MD5 (RFC 2195) needs them. Node's Web Crypto has no MD5, and the core must run
 * unchanged in Workers, so the digest is computed here. MD5 is broken for collision
 * resistance; HMAC-MD5 as a keyed challenge-response is what RFC 2195 specifies.
 */

// Per-round shift amounts, RFC 1321 section 3.4.
const S = [
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9,
  14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15,
  21, 6, 10, 15, 21,
];
// T[i] = floor(abs(sin(i + 1)) * 2^32), RFC 1321 section 3.4.
const T = Int32Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 0x100000000) | 0);

function transform(state: Int32Array, block: DataView, offset: number, x: Int32Array): void {
  for (let i = 0; i < 16; i++) x[i] = block.getInt32(offset + i * 4, true);
  let a = state[0]!;
  let b = state[1]!;
  let c = state[2]!;
  let d = state[3]!;
  for (let i = 0; i < 64; i++) {
    let f: number;
    let g: number;
    if (i < 16) {
      f = (b & c) | (~b & d);
      g = i;
    } else if (i < 32) {
      f = (d & b) | (~d & c);
      g = (5 * i + 1) & 15;
    } else if (i < 48) {
      f = b ^ c ^ d;
      g = (3 * i + 5) & 15;
    } else {
      f = c ^ (b | ~d);
      g = (7 * i) & 15;
    }
    const sum = (a + f + T[i]! + x[g]!) | 0;
    const s = S[i]!;
    a = d;
    d = c;
    c = b;
    b = (b + ((sum << s) | (sum >>> (32 - s)))) | 0;
  }
  state[0] = (state[0]! + a) | 0;
  state[1] = (state[1]! + b) | 0;
  state[2] = (state[2]! + c) | 0;
  state[3] = (state[3]! + d) | 0;
}

/** The 16-octet MD5 digest of `bytes` (RFC 1321). */
export function md5(bytes: Uint8Array): Uint8Array {
  const state = Int32Array.of(0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476);
  const x = new Int32Array(16);
  const full = bytes.length - (bytes.length % 64);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let off = 0; off < full; off += 64) transform(state, view, off, x);
  // Padding: 0x80, zeros to 56 mod 64, then the bit length as 64-bit little-endian (section 3.1-3.2).
  const restLen = bytes.length - full;
  const tail = new Uint8Array(restLen < 56 ? 64 : 128);
  tail.set(bytes.subarray(full));
  tail[restLen] = 0x80;
  const tailView = new DataView(tail.buffer);
  const bitLen = bytes.length * 8;
  tailView.setUint32(tail.length - 8, bitLen >>> 0, true);
  tailView.setUint32(tail.length - 4, Math.floor(bitLen / 0x100000000), true);
  for (let off = 0; off < tail.length; off += 64) transform(state, tailView, off, x);
  const out = new Uint8Array(16);
  const outView = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) outView.setInt32(i * 4, state[i]!, true);
  return out;
}

const BLOCK = 64;

/** HMAC-MD5 (RFC 2104 section 2, B = 64): keys longer than 64 octets are hashed first. */
export function hmacMd5(key: Uint8Array, data: Uint8Array): Uint8Array {
  const k = new Uint8Array(BLOCK);
  k.set(key.length > BLOCK ? md5(key) : key);
  const inner = new Uint8Array(BLOCK + data.length);
  const outer = new Uint8Array(BLOCK + 16);
  for (let i = 0; i < BLOCK; i++) {
    inner[i] = k[i]! ^ 0x36;
    outer[i] = k[i]! ^ 0x5c;
  }
  inner.set(data, BLOCK);
  outer.set(md5(inner), BLOCK);
  return md5(outer);
}
