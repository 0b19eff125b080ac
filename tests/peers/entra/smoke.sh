#!/usr/bin/env bash
# Smoke test of the Entra stand-in with curl + openssl (+ headless Chromium for the device login).
#
#   ./smoke.sh                 # needs: node, npm install done here, openssl, curl, python3
#   PW_DIR=/tmp/pw ./smoke.sh  # also approves the device login in headless Chromium, using
#                              # playwright-core installed in $PW_DIR (npm install --prefix /tmp/pw playwright-core)
#
# Without PW_DIR the device-login part stops after showing the pending error.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
W="$(mktemp -d /tmp/entra-smoke.XXXXXX)"
TENANT=72f988bf-86f1-41af-91ab-2d7cd011db47
PUBLIC=04b07795-8ddb-461a-bbee-02f9e1bf7b46
SECRET_ID=11111111-1111-1111-1111-111111111111
CERT_ID=22222222-2222-2222-2222-222222222222
EC_ID=33333333-3333-3333-3333-333333333333
ASSERTION_TYPE=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
DEVICE_GRANT=urn:ietf:params:oauth:grant-type:device_code
cd "$W"

# --- throwaway CA + leaf (ECDSA P-256, PKCS#8) and client keys
openssl ecparam -name prime256v1 -genkey -noout -out ca.key
openssl req -x509 -new -key ca.key -sha256 -days 1 -subj "/CN=entra smoke CA" -out ca.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out leaf-key.pem
openssl req -new -key leaf-key.pem -subj "/CN=127.0.0.1" -out leaf.csr
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -sha256 -extfile ext.cnf -out leaf.pem 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-client.pem 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa-wrong.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec-client.pem

node - "$W" <<'EOF'
const crypto = require('crypto'), fs = require('fs');
const W = process.argv[2];
const pub = (f) => crypto.createPublicKey(fs.readFileSync(`${W}/${f}`)).export({ format: 'jwk' });
fs.writeFileSync(`${W}/config.json`, JSON.stringify({
  host: '127.0.0.1', port: 0, tlsCert: `${W}/leaf.pem`, tlsKey: `${W}/leaf-key.pem`,
  tenant: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  clients: [
    { client_id: '04b07795-8ddb-461a-bbee-02f9e1bf7b46', type: 'public' },
    { client_id: '11111111-1111-1111-1111-111111111111', type: 'secret', client_secret: 's3cret-value' },
    { client_id: '22222222-2222-2222-2222-222222222222', type: 'certificate', jwks: { keys: [pub('rsa-client.pem')] } },
    { client_id: '33333333-3333-3333-3333-333333333333', type: 'certificate', jwks: { keys: [pub('ec-client.pem')] } },
  ],
  audiences: ['https://management.azure.com', 'https://graph.microsoft.com', 'https://containerregistry.azure.net'],
  accessTokenTtl: 3600,
}, null, 2));
EOF

# client assertion signer: node assert.js KEY.pem CLIENT_ID AUD
cat > assert.js <<'EOF'
const crypto = require('crypto'), fs = require('fs');
const [keyPath, cid, aud] = process.argv.slice(2);
const key = crypto.createPrivateKey(fs.readFileSync(keyPath));
const ec = key.asymmetricKeyType === 'ec';
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const now = Math.floor(Date.now() / 1000);
const der = crypto.createPublicKey(key).export({ type: 'spki', format: 'der' });
const header = { alg: ec ? 'ES256' : 'RS256', typ: 'JWT', 'x5t#S256': crypto.createHash('sha256').update(der).digest('base64url') };
const claims = { aud, iss: cid, sub: cid, jti: crypto.randomUUID(), nbf: now, iat: now, exp: now + 600 };
const input = `${b64(header)}.${b64(claims)}`;
const sig = crypto.sign('sha256', Buffer.from(input), ec ? { key, dsaEncoding: 'ieee-p1363' } : key);
process.stdout.write(`${input}.${sig.toString('base64url')}`);
EOF

claims() { # print a JWT's header and payload
  python3 -c 'import sys,json,base64
h,p,_=sys.argv[1].split(".")
d=lambda s: json.loads(base64.urlsafe_b64decode(s+"="*(-len(s)%4)))
print("  header:", json.dumps(d(h))); print("  claims:", json.dumps(d(p)))' "$1"
}
field() { python3 -c 'import sys,json; print(json.load(sys.stdin).get(sys.argv[1], ""))' "$1"; }
summary() { python3 -c 'import sys,json
d=json.load(sys.stdin)
print("  " + json.dumps({k:(v[:12]+"..." if k in ("access_token","refresh_token","id_token","device_code") else v) for k,v in d.items()}))'; }
check() { if ! eval "$1"; then echo "FAILED: $1"; exit 1; fi; }

# --- start the server; stdin is a fifo held open by a sleep, so closing it stops the server
mkfifo stdin.fifo
(cd "$HERE" && exec node server.mjs "$W/config.json" < "$W/stdin.fifo" > "$W/stdout.log" 2> "$W/stderr.log") &
SERVER=$!
sleep 3600 > stdin.fifo &
HOLDER=$!
trap 'kill $HOLDER 2>/dev/null || true; sleep 0.3; kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '^READY ' stdout.log 2>/dev/null && break; sleep 0.1; done
BASE=$(awk '/^READY /{print $2}' stdout.log)
echo "server: $(cat stdout.log)"
C=(curl -sS --cacert "$W/ca.pem")
TOKEN_URL="$BASE/$TENANT/oauth2/v2.0/token"

echo "== discovery"
"${C[@]}" "$BASE/$TENANT/v2.0/.well-known/openid-configuration" > disc.json
python3 -c 'import json; d=json.load(open("disc.json")); [print("  %s: %s" % (k, d[k])) for k in ("issuer","authorization_endpoint","token_endpoint","device_authorization_endpoint","jwks_uri")]'
check "[ \"\$(field issuer < disc.json)\" = \"$BASE/$TENANT/v2.0\" ]"
"${C[@]}" "$BASE/organizations/v2.0/.well-known/openid-configuration" | field token_endpoint
"${C[@]}" "$BASE/$TENANT/discovery/v2.0/keys" | python3 -c 'import sys,json; print("  jwks:", [(k["kty"],k["kid"],k.get("alg")) for k in json.load(sys.stdin)["keys"]])'

echo "== client_credentials, client_secret_post, ARM"
"${C[@]}" -d client_id=$SECRET_ID -d client_secret=s3cret-value -d grant_type=client_credentials \
  --data-urlencode scope=https://management.azure.com/.default "$TOKEN_URL" > cc.json
summary < cc.json; claims "$(field access_token < cc.json)"
check "claims \"\$(field access_token < cc.json)\" | grep -q '\"aud\": \"https://management.azure.com\"'"

echo "== client_credentials, client_secret_basic, /organizations alias, Graph with az-cli style '//.default'"
"${C[@]}" -u $SECRET_ID:s3cret-value -d grant_type=client_credentials \
  --data-urlencode scope=https://graph.microsoft.com//.default "$BASE/organizations/oauth2/v2.0/token" > cc2.json
check "claims \"\$(field access_token < cc2.json)\" | grep -q '\"aud\": \"https://graph.microsoft.com\"'"; echo "  ok"

echo "== wrong secret -> 401"
"${C[@]}" -w '  HTTP %{http_code}\n' -d client_id=$SECRET_ID -d client_secret=wrong -d grant_type=client_credentials \
  --data-urlencode scope=https://management.azure.com/.default "$TOKEN_URL"

for spec in "$CERT_ID rsa-client.pem $TOKEN_URL $TENANT" \
            "$CERT_ID rsa-client.pem $BASE/organizations/oauth2/v2.0/token organizations" \
            "$EC_ID ec-client.pem $TOKEN_URL $TENANT"; do
  set -- $spec
  echo "== client_credentials, private_key_jwt ($2), aud $3"
  "${C[@]}" -w '\n' -d client_id=$1 -d grant_type=client_credentials \
    --data-urlencode scope=https://containerregistry.azure.net/.default \
    -d client_assertion_type=$ASSERTION_TYPE -d client_assertion="$(node assert.js "$2" "$1" "$3")" \
    "$BASE/$4/oauth2/v2.0/token" > pk.json
  summary < pk.json
  check "claims \"\$(field access_token < pk.json)\" | grep -q '\"aud\": \"https://containerregistry.azure.net\"'"
done
claims "$(field access_token < pk.json)"

echo "== private_key_jwt signed by the wrong key -> 401 invalid_client"
"${C[@]}" -w '  HTTP %{http_code}\n' -d grant_type=client_credentials \
  --data-urlencode scope=https://management.azure.com/.default \
  -d client_assertion_type=$ASSERTION_TYPE -d client_assertion="$(node assert.js rsa-wrong.pem $CERT_ID "$TOKEN_URL")" "$TOKEN_URL" | tee bad.out
check "grep -q 'HTTP 401' bad.out && grep -q invalid_client bad.out"

echo "== device code (via /organizations)"
"${C[@]}" -d client_id=$PUBLIC --data-urlencode "scope=https://management.azure.com/.default offline_access openid profile" \
  "$BASE/organizations/oauth2/v2.0/devicecode" > dc.json
cat dc.json; echo
DC=$(field device_code < dc.json); UC=$(field user_code < dc.json); VU=$(field verification_uri < dc.json)
"${C[@]}" -w '  HTTP %{http_code}\n' -d client_id=$PUBLIC -d grant_type=$DEVICE_GRANT -d device_code="$DC" \
  "$BASE/organizations/oauth2/v2.0/token" | tee pending.out
check "grep -q authorization_pending pending.out && grep -q 'HTTP 400' pending.out"

if [ -z "${PW_DIR:-}" ]; then
  echo "PW_DIR not set: skipping the browser approval. Open $VU and enter $UC to continue by hand."
  exit 0
fi

echo "== approving in headless Chromium"
cat > approve.mjs <<'EOF'
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
const { chromium } = createRequire(`${process.env.PW_DIR}/`)('playwright-core');
const [uri, code, login] = process.argv.slice(2);
const dir = fs.mkdtempSync('/tmp/entra-chromium-');
const ctx = await chromium.launchPersistentContext(dir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, ignoreHTTPSErrors: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--ignore-certificate-errors'],
});
const page = await ctx.newPage();
const origin = new URL(uri).origin;
page.on('request', (r) => { if (!r.url().startsWith(origin)) console.log('  EXTERNAL REQUEST', r.url()); });
const step = async (n) => console.log(`  [${n}] ${page.url()} title=${JSON.stringify(await page.title())}`);
const submit = (sel) => Promise.all([page.waitForNavigation(), page.click(sel)]);
await page.goto(uri); await step('code');
await page.fill('input[name=user_code]', code); await submit('#device-code-submit'); await step('confirm');
await submit('#device-confirm'); await step('login');
await page.fill('input[name=login]', login); await page.fill('input[name=password]', 'any');
await submit('button[type=submit]'); await step('consent');
await submit('button[type=submit]'); await step('success');
console.log('  ', (await page.textContent('#device-success')), '|', (await page.textContent('p')).trim());
await ctx.close(); fs.rmSync(dir, { recursive: true, force: true });
EOF
PW_DIR="$PW_DIR" timeout 120 node approve.mjs "$VU" "$UC" alice@contoso.test

echo "== token poll after approval"
"${C[@]}" -d client_id=$PUBLIC -d grant_type=$DEVICE_GRANT -d device_code="$DC" "$BASE/organizations/oauth2/v2.0/token" > tok.json
summary < tok.json; claims "$(field access_token < tok.json)"
check "[ -n \"\$(field refresh_token < tok.json)\" ]"
RT=$(field refresh_token < tok.json)

for aud in https://graph.microsoft.com https://containerregistry.azure.net https://management.azure.com; do
  echo "== refresh_token -> $aud/.default (via /common)"
  "${C[@]}" -d client_id=$PUBLIC -d grant_type=refresh_token --data-urlencode refresh_token="$RT" \
    --data-urlencode "scope=$aud/.default offline_access openid profile" "$BASE/common/oauth2/v2.0/token" > rt.json
  summary < rt.json
  check "claims \"\$(field access_token < rt.json)\" | grep -q '\"aud\": \"$aud\"'"
done
claims "$(field access_token < rt.json)"

echo "== stdin EOF stops the server"
kill $HOLDER; for _ in $(seq 30); do kill -0 $SERVER 2>/dev/null || break; sleep 0.1; done
if kill -0 $SERVER 2>/dev/null; then echo "FAILED: server still running"; exit 1; fi
echo "  stopped"
echo "== server log (stderr)"; grep -v '^oidc-provider' stderr.log | tail -40
echo "ALL OK ($W)"
