// The proof of work a join from a busy network carries (polls/joinguard.py): a nonce that
// gives sha256("<challenge>:<nonce>") `bits` leading zero bits. Plain JS, because
// crypto.subtle answers one digest per promise (far too slow for 100,000 of them) and is
// missing on plain-http addresses such as a laptop serving the venue network.

// Int32Array, not Uint32Array: V8's optimising compilers assume a typed array element is an int32,
// and a Uint32Array's top half is not one; each such read threw the hash loop out of optimised code
// (a deoptimisation loop; the figures are in docs/performance.md).
// The constants as the standard defines them: the first 32 bits of the fractional parts of the
// cube roots of the first 64 primes (K), of the square roots of the first 8 (H0). Computed,
// not listed: 350 bytes less for the phone (its budget); each lies over 1,000 float ulps from a
// bit boundary, so an engine's root a few ulps off still gives the very same words.
const primes = [];
for (let n = 2; primes.length < 64; n++) if (primes.every((p) => n % p)) primes.push(n);
const frac = (x) => ((x - Math.floor(x)) * 2 ** 32) | 0;
const K = new Int32Array(primes.map((p) => frac(Math.cbrt(p))));
const H0 = primes.slice(0, 8).map((p) => frac(Math.sqrt(p)));
const W = new Int32Array(64);
const H = new Int32Array(8);
let buf = new Uint8Array(128);
const rotr = (x, n) => (x >>> n) | (x << (32 - n));

// Leading zero bits of the SHA-256 of bytes[0..len) (len < 2^29). Allocation-free: it runs
// hundreds of thousands of times per join.
export function zeroBits(bytes, len) {
  const blocks = (len + 72) >> 6;
  if (buf.length < blocks * 64) buf = new Uint8Array(blocks * 64);
  buf.fill(0, 0, blocks * 64);
  buf.set(bytes.subarray(0, len));
  buf[len] = 0x80;
  const end = blocks * 64;
  const bitLen = len * 8;
  for (let i = 0; i < 4; i++) buf[end - 1 - i] = (bitLen >>> (8 * i)) & 255;
  H.set(H0);
  for (let b = 0; b < blocks; b++) {
    for (let i = 0; i < 16; i++) {
      const o = b * 64 + i * 4;
      W[i] = (buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3];
    }
    for (let i = 16; i < 64; i++) {
      const x = W[i - 15];
      const y = W[i - 2];
      W[i] = (W[i - 16] + (rotr(x, 7) ^ rotr(x, 18) ^ (x >>> 3)) + W[i - 7] + (rotr(y, 17) ^ rotr(y, 19) ^ (y >>> 10))) | 0;
    }
    let a = H[0], c1 = H[1], c = H[2], d = H[3], e = H[4], f = H[5], g = H[6], h = H[7];
    for (let i = 0; i < 64; i++) {
      const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
      const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & c1) ^ (a & c) ^ (c1 & c))) | 0;
      h = g;
      g = f;
      f = e;
      e = (d + t1) | 0;
      d = c;
      c = c1;
      c1 = a;
      a = (t1 + t2) | 0;
    }
    H[0] = (H[0] + a) | 0; H[1] = (H[1] + c1) | 0; H[2] = (H[2] + c) | 0; H[3] = (H[3] + d) | 0;
    H[4] = (H[4] + e) | 0; H[5] = (H[5] + f) | 0; H[6] = (H[6] + g) | 0; H[7] = (H[7] + h) | 0;
  }
  const first = Math.clz32(H[0]);
  return first < 32 ? first : 32 + Math.clz32(H[1]);
}

// A nonce for the challenge; yields to the page every few thousand tries.
export async function solve({ challenge, bits }) {
  const prefix = new TextEncoder().encode(challenge + ':');
  const bytes = new Uint8Array(prefix.length + 21);
  bytes.set(prefix);
  for (let n = 0; ; n++) {
    const s = String(n);
    for (let i = 0; i < s.length; i++) bytes[prefix.length + i] = s.charCodeAt(i);
    if (zeroBits(bytes, prefix.length + s.length) >= bits) return s;
    if ((n & 0x1fff) === 0x1fff) await new Promise((done) => setTimeout(done));
  }
}
