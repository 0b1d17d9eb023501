// In-process micro benchmarks for signed keys, measured side by side in interleaved rounds:
//  - warm: a cached signed key against a cached opaque key, both awaited as a middleware does;
//  - cold: a signed key verified on every request (no verified-token cache) through
//    authenticate(), beside jose's own jwtVerify on the same token and key, for EdDSA and ES256.
// `node micro/signed.mjs [ROUNDS]` prints a table; with `--json`, JSON (run.mjs).
import { createKeyscope, MemoryStore } from '@keyscope/core';
import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { interleaved } from './rounds.mjs';

const json = process.argv.includes('--json');
const rounds = Number(process.argv.slice(2).find((arg) => arg !== '--json') ?? 5);
const WARM_N = 300_000;
const COLD_N = 3_000;
const ISSUER = 'https://bench.test';
const AUDIENCE = 'bench-api';

const store = new MemoryStore();
store.addProject({ id: 'proj_alpha', ownerId: 'u', name: 'Alpha' });

async function signer(alg, kid) {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  return { alg, kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg } };
}
const ed = await signer('EdDSA', 'ed-1');
const es = await signer('ES256', 'es-1');
const jwks = { keys: [ed.jwk, es.jwk] };
const signedKeys = (s) => ({ issuer: ISSUER, audience: AUDIENCE, keys: jwks, signing: { key: s.privateKey, kid: s.kid, alg: s.alg } });

const warm = createKeyscope({ store, usage: false, signedKeys: signedKeys(ed) });
const opaque = await warm.keys.create({ ownerId: 'u', name: 'opaque', level: 'user' });
const edKey = await warm.keys.createSigned({ ownerId: 'u', name: 'signed', level: 'user', expiresIn: 86_400_000 });
const esIssuer = createKeyscope({ store, usage: false, signedKeys: signedKeys(es) });
const esKey = await esIssuer.keys.createSigned({ ownerId: 'u', name: 'signed es', level: 'user', expiresIn: 86_400_000 });
// Cold: nothing verified is kept, so every request checks the signature (the deny-list stays loaded).
const cold = createKeyscope({ store, usage: false, cache: { ttlMs: 0, negativeTtlMs: 0 }, signedKeys: { ...signedKeys(ed), denyListMaxAgeMs: 3_600_000 } });

// Node's IncomingHttpHeaders as a server sees them: a null-prototype object, lowercase names.
const input = (key) => ({ headers: Object.assign(Object.create(null), { host: '127.0.0.1', accept: '*/*', 'x-api-key': key, 'x-project-id': 'proj_alpha' }), method: 'GET', path: '/sites' });
for (const [ks, key] of [[warm, opaque.key], [warm, edKey.key], [cold, edKey.key], [cold, esKey.key]]) {
  const result = await ks.authenticate(input(key));
  if (!result.ok) throw new Error(`bench key refused: ${result.error.code}`);
}

const localSet = createLocalJWKSet(jwks);
const joseOptions = { algorithms: ['EdDSA', 'ES256'], typ: 'keyscope+jwt', issuer: ISSUER, audience: AUDIENCE, requiredClaims: ['exp', 'jti', 'sub'] };
let sink;
const loop = async (n, fn) => {
  const t = performance.now();
  for (let i = 0; i < n; i++) sink = await fn();
  return ((performance.now() - t) / n) * 1e6;
};
const opaqueInput = input(opaque.key);
const edInput = input(edKey.key);
const esInput = input(esKey.key);
const cases = {
  warmOpaque: () => loop(WARM_N, () => warm.authenticate(opaqueInput)),
  warmSigned: () => loop(WARM_N, () => warm.authenticate(edInput)),
  coldEdDSA: () => loop(COLD_N, () => cold.authenticate(edInput)),
  joseEdDSA: () => loop(COLD_N, () => jwtVerify(edKey.key, localSet, joseOptions)),
  coldES256: () => loop(COLD_N, () => cold.authenticate(esInput)),
  joseES256: () => loop(COLD_N, () => jwtVerify(esKey.key, localSet, joseOptions)),
};
const ns = await interleaved(cases, rounds);
for (const ks of [warm, esIssuer, cold]) await ks.close();

const result = {
  rounds,
  ns,
  ratio: { warmSignedToOpaque: ns.warmSigned / ns.warmOpaque, coldEdDSAToJose: ns.coldEdDSA / ns.joseEdDSA, coldES256ToJose: ns.coldES256 / ns.joseES256 },
  tokenLength: { EdDSA: edKey.key.length, ES256: esKey.key.length },
};
if (json) console.log(JSON.stringify(result));
else {
  console.table(Object.fromEntries(Object.entries(ns).map(([name, value]) => [name, { 'ns/op': Math.round(value) }])));
  console.log(`warm signed ÷ warm opaque = ${result.ratio.warmSignedToOpaque.toFixed(2)} (target ≤ 1.2)`);
  console.log(`cold verification ÷ jose's jwtVerify: EdDSA ${result.ratio.coldEdDSAToJose.toFixed(2)}, ES256 ${result.ratio.coldES256ToJose.toFixed(2)}`);
}
