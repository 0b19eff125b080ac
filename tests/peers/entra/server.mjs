// Entra ID (v2 endpoints) stand-in for studio's integration tests.
//
//   node server.mjs CONFIG.json
//
// Built on oidc-provider 9.13.3. See README.md for the config format, routes, the
// browser flow of a device login, and the token claims. Prints exactly one line
// `READY https://HOST:PORT` on stdout; everything else goes to stderr. Exits when
// stdin reaches EOF.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as querystring from 'node:querystring';

// oidc-provider prints notices with console.info (stdout). Keep stdout for READY only.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

const { default: Provider, errors } = await import('oidc-provider');

// ---------------------------------------------------------------- configuration

const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node server.mjs CONFIG.json');
  process.exit(2);
}
const cfg = JSON.parse(fs.readFileSync(configPath, 'utf8'));

const HOST = cfg.host || '127.0.0.1';
const TENANT = String(cfg.tenant || '72f988bf-86f1-41af-91ab-2d7cd011db47').toLowerCase();
const TENANT_ALIASES = ['organizations', 'common'];
const AUDIENCES = (cfg.audiences || []).map((a) => String(a).replace(/\/+$/, ''));
const AT_TTL = Number(cfg.accessTokenTtl || 3600);
const DEVICE_CODE_TTL = 600;
const REFRESH_TOKEN_TTL = 90 * 24 * 3600;
// Internal resource-server scope that stands for Entra's ".default"; shows up as `scp`.
const USER_SCOPE = 'user_impersonation';
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const OIDC_SCOPES = new Set(['openid', 'profile', 'email', 'offline_access']);

if (AUDIENCES.length === 0) {
  console.error('config: "audiences" must list at least one resource');
  process.exit(2);
}

// Deterministic GUID from a string (UUID-shaped; version nibble 8 = "custom").
function guidFrom(text) {
  const h = crypto.createHash('sha256').update(text).digest();
  h[6] = (h[6] & 0x0f) | 0x80;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}
const userOid = (login) => guidFrom(`${TENANT}:user:${login.trim().toLowerCase()}`);

// oid (accountId) -> login name typed on the login page.
const users = new Map();

const clientCfgById = new Map();
const clients = (cfg.clients || []).map((c) => {
  clientCfgById.set(c.client_id, c);
  const redirectUris = c.redirect_uris || [];
  const grants = ['refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'];
  if (redirectUris.length) grants.push('authorization_code');
  const base = {
    client_id: c.client_id,
    client_name: c.client_name || c.client_id,
    redirect_uris: redirectUris,
    response_types: redirectUris.length ? ['code'] : [],
  };
  switch (c.type) {
    case 'public':
      return {
        ...base,
        application_type: 'native', // always shows the consent page (deterministic browser flow)
        token_endpoint_auth_method: 'none',
        grant_types: grants,
      };
    case 'secret':
      return {
        ...base,
        client_secret: c.client_secret,
        token_endpoint_auth_method: 'client_secret_post', // client_secret_basic is accepted too
        grant_types: ['client_credentials', ...grants],
      };
    case 'certificate':
      return {
        ...base,
        jwks: c.jwks,
        token_endpoint_auth_method: 'private_key_jwt',
        grant_types: ['client_credentials', ...grants],
      };
    default:
      console.error(`config: client ${c.client_id}: unknown type ${c.type}`);
      process.exit(2);
  }
});

function clientOid(clientId) {
  return clientCfgById.get(clientId)?.object_id || guidFrom(`${TENANT}:sp:${clientId}`);
}

// Map a scope token to a configured audience: "<aud>/.default", "<aud>//.default",
// "<aud>/anything" all name <aud>. Returns undefined for OIDC scopes / unknown names.
function audienceOf(value) {
  const v = String(value).replace(/\/+$/, '');
  const exact = AUDIENCES.find((a) => a === v);
  if (exact) return exact;
  return AUDIENCES.find((a) => value.startsWith(`${a}/`));
}
function normalizeResource(value) {
  const v = String(value).replace(/\/+$/, '');
  return AUDIENCES.find((a) => a === v) || value;
}

// ---------------------------------------------------------------- keys

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = {
  ...privateKey.export({ format: 'jwk' }),
  kid: crypto.randomBytes(20).toString('base64url'),
  use: 'sig',
  alg: 'RS256',
};

// ---------------------------------------------------------------- HTML pages (no external resources)

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));
const CSS = 'body{font-family:sans-serif;margin:25px}.box{width:320px;margin:0 auto;padding:0 30px 10px;'
  + 'background:#f7f7f7;box-shadow:0 2px 2px rgba(0,0,0,.3)}h1{font-weight:300;text-align:center}'
  + 'input[type=text]{width:100%;height:40px;font-size:16px;box-sizing:border-box;margin-bottom:10px;text-transform:uppercase;text-align:center}'
  + 'button{width:100%;height:36px;margin-bottom:10px;font-weight:700}.red{color:#d50000}';
const page = (title, body) => `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title><style>${CSS}</style></head>
<body><div class="box">${body}</div></body></html>`;

async function userCodeInputSource(ctx, form, out, err) {
  let msg;
  if (err && (err.userCode || err.name === 'NoCodeError')) {
    msg = '<p class="red" id="error">The code you entered is incorrect. Try again</p>';
  } else if (err && err.name === 'AbortedError') {
    msg = '<p class="red" id="error">The Sign-in request was interrupted</p>';
  } else if (err) {
    msg = '<p class="red" id="error">There was an error processing your request</p>';
  } else {
    msg = '<p>Enter the code displayed on your device</p>';
  }
  const button = '<button type="submit" id="device-code-submit">Next</button>';
  ctx.body = page('Enter code', `<h1>Enter code</h1>${msg}${form.replace('</form>', `${button}</form>`)}`);
}

async function userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
  const name = esc(client.clientName || client.clientId);
  const buttons = '<button type="submit" id="device-confirm" autofocus>Continue</button>'
    + '<button type="submit" id="device-abort" name="abort" value="yes">Cancel</button>';
  ctx.body = page('Confirm device', `<h1>Are you trying to sign in to ${name}?</h1>
<p>Code: <code id="user-code">${esc(userCode)}</code></p>
<p>Only continue if you initiated this sign-in on your device.</p>
${form.replace('</form>', `${buttons}</form>`)}`);
}

async function successSource(ctx) {
  const name = esc(ctx.oidc.client?.clientName || ctx.oidc.client?.clientId || '');
  ctx.body = page('Sign-in Success', `<h1 id="device-success">Sign-in Success</h1>
<p>You have signed in to the ${name} application on your device. You may now close this window.</p>`);
}

async function renderError(ctx, out) {
  ctx.type = 'html';
  ctx.body = page('Error', `<h1 id="error-page">Error</h1>${Object.entries(out)
    .map(([k, v]) => `<p><strong>${esc(k)}</strong>: <span class="${esc(k)}">${esc(v)}</span></p>`).join('')}`);
}

// ---------------------------------------------------------------- provider

function buildProvider(origin) {
  const issuer = `${origin}/${TENANT}/v2.0`;
  const oidcPaths = {
    authorization: `/${TENANT}/oauth2/v2.0/authorize`,
    token: `/${TENANT}/oauth2/v2.0/token`,
    device_authorization: `/${TENANT}/oauth2/v2.0/devicecode`,
    code_verification: '/device',
    jwks: `/${TENANT}/discovery/v2.0/keys`,
    end_session: `/${TENANT}/oauth2/v2.0/logout`,
  };

  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [signingJwk] },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    routes: oidcPaths,
    scopes: ['openid', 'offline_access'],
    claims: {
      openid: ['sub', 'oid', 'tid'],
      profile: ['name', 'preferred_username'],
      email: ['email'],
    },
    clockTolerance: 60,
    features: {
      devInteractions: { enabled: true },
      deviceFlow: {
        enabled: true,
        userCodeInputSource,
        userCodeConfirmSource,
        successSource,
      },
      clientCredentials: { enabled: true },
      userinfo: { enabled: false },
      revocation: { enabled: false },
      introspection: { enabled: false },
      resourceIndicators: {
        enabled: true,
        // oneOf: the resources the grant was issued for (requested one first).
        defaultResource: async (ctx, client, oneOf) => (oneOf ? oneOf[0] : undefined),
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, indicator) => {
          const aud = AUDIENCES.find((a) => a === indicator);
          if (!aud) {
            throw new errors.InvalidTarget(`resource ${indicator} is not known to this tenant`);
          }
          return {
            scope: USER_SCOPE,
            audience: aud,
            accessTokenTTL: AT_TTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    formats: {
      customizers: {
        async jwt(ctx, token, jwt) {
          const p = jwt.payload;
          const clientId = p.client_id;
          const client = clientCfgById.get(clientId);
          const acr = client?.type === 'certificate' ? '2' : client?.type === 'secret' ? '1' : '0';
          const isUser = token.kind === 'AccessToken' && token.accountId;
          const out = {
            aud: p.aud,
            iss: p.iss,
            iat: p.iat,
            nbf: p.iat,
            exp: p.exp,
            tid: TENANT,
            ver: '2.0',
            azp: clientId,
            azpacr: acr,
            appid: clientId,
            appidacr: acr,
            uti: p.jti,
            jti: p.jti,
          };
          if (isUser) {
            const login = users.get(token.accountId) || token.accountId;
            Object.assign(out, {
              oid: token.accountId,
              sub: token.accountId,
              idtyp: 'user',
              scp: p.scope || USER_SCOPE,
              name: login,
              preferred_username: login,
              ...(login.includes('@') ? { upn: login } : {}),
            });
          } else {
            const oid = clientOid(clientId);
            Object.assign(out, { oid, sub: oid, idtyp: 'app' });
            const roles = client?.roles;
            if (Array.isArray(roles) && roles.length) out.roles = roles;
          }
          jwt.payload = out;
          jwt.header = { typ: 'JWT' };
        },
      },
    },
    async findAccount(ctx, id) {
      const login = users.get(id) || id;
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            oid: id,
            tid: TENANT,
            name: login,
            preferred_username: login,
            ...(login.includes('@') ? { email: login } : {}),
          };
        },
      };
    },
    // Entra keeps old refresh tokens valid; a rotated-and-reused token here would revoke the grant.
    rotateRefreshToken: false,
    issueRefreshToken: async (ctx, client, source) => client.grantTypeAllowed('refresh_token')
      && source.scopes.has('offline_access'),
    clientBasedCORS: () => true,
    renderError,
    ttl: {
      AccessToken: () => AT_TTL,
      ClientCredentials: () => AT_TTL,
      IdToken: () => 3600,
      // A client may ask for a shorter device code life (`deviceCodeTtl`, seconds) so tests
      // can see Entra's expired_token without waiting 10 minutes.
      DeviceCode: (ctx, token, client) => Number(
        clientCfgById.get(client?.clientId)?.deviceCodeTtl || DEVICE_CODE_TTL,
      ),
      RefreshToken: () => REFRESH_TOKEN_TTL,
      Grant: () => REFRESH_TOKEN_TTL,
      Session: () => REFRESH_TOKEN_TTL,
      Interaction: () => DEVICE_CODE_TTL,
      AuthorizationCode: () => 300,
    },
  });

  // Accept client assertions whose aud is the token endpoint as called (tenant id or alias),
  // or the issuer, with or without a trailing slash.
  const ctxProto = provider.OIDCContext.prototype;
  const origAud = ctxProto.clientJwtAuthExpectedAudience;
  ctxProto.clientJwtAuthExpectedAudience = function clientJwtAuthExpectedAudience() {
    const set = origAud.call(this);
    for (const o of new Set([origin, this.ctx.origin])) {
      for (const t of [TENANT, ...TENANT_ALIASES]) {
        for (const u of [`${o}/${t}/oauth2/v2.0/token`, `${o}/${t}/v2.0`]) {
          set.add(u);
          set.add(`${u}/`);
        }
      }
    }
    return set;
  };

  // Entra does not reject a client assertion that is presented twice (workload identity
  // reuses one federated token for many requests); oidc-provider would. Turn that off.
  provider.ReplayDetection.unique = async () => true;

  installMiddleware(provider, { issuer, oidcPaths });
  return provider;
}

// ---------------------------------------------------------------- Entra-shaping middleware

const ERROR_CODES = {
  authorization_pending: 70016,
  slow_down: 70016,
  expired_token: 70020,
  access_denied: 70000,
  invalid_grant: 70000,
  invalid_client: 7000215,
  invalid_scope: 70011,
  invalid_resource: 500011,
  invalid_request: 900144,
  unsupported_grant_type: 70003,
  unauthorized_client: 700016,
};

async function readForm(ctx) {
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  return querystring.parse(Buffer.concat(chunks).toString('utf8'));
}

function splitScope(scope) {
  return String(scope || '').split(/\s+/).filter(Boolean);
}

// Turns Entra-style "<aud>/.default" scopes into resource indicators.
// Returns { resources: [aud...], rest: [other scopes] }.
function extractResources(params) {
  const resources = [];
  const rest = [];
  for (const s of splitScope(params.scope)) {
    const aud = OIDC_SCOPES.has(s) ? undefined : audienceOf(s);
    if (aud) {
      if (!resources.includes(aud)) resources.push(aud);
    } else if (!OIDC_SCOPES.has(s) && /^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
      // An unknown resource URL: let oidc-provider reject it as an unknown resource.
      const r = s.replace(/\/\.default$/, '').replace(/\/+$/, '');
      if (!resources.includes(r)) resources.push(r);
    } else {
      rest.push(s);
    }
  }
  for (const r of [].concat(params.resource || [])) {
    const n = normalizeResource(r);
    if (!resources.includes(n)) resources.push(n);
  }
  return { resources, rest };
}

// Authorization-like requests (devicecode, authorize): the grant covers every audience
// (requested one first) so that one login can later be refreshed into any audience.
function rewriteAuthorizationParams(params) {
  const { resources, rest } = extractResources(params);
  const all = [...resources, ...AUDIENCES.filter((a) => !resources.includes(a))];
  const scopes = [...rest.filter((s) => s !== USER_SCOPE), USER_SCOPE];
  params.scope = scopes.join(' ');
  params.resource = all;
  return resources[0] || all[0];
}

// Token requests: the requested audience becomes `resource`, `.default` scopes disappear.
function rewriteTokenParams(params) {
  const { resources, rest } = extractResources(params);
  delete params.resource;
  if (resources.length) params.resource = resources.length === 1 ? resources[0] : resources;
  const gt = params.grant_type;
  if (gt === 'client_credentials') {
    const others = rest.filter((s) => !OIDC_SCOPES.has(s));
    if (others.length) params.scope = others.join(' ');
    else delete params.scope;
  } else {
    // device_code / refresh_token / authorization_code: the grant already fixes the scopes.
    delete params.scope;
  }
  return resources[0];
}

function installMiddleware(provider, { oidcPaths }) {
  const tokenPath = oidcPaths.token;
  const devicePath = oidcPaths.device_authorization;
  const authorizePath = oidcPaths.authorization;
  const aliasRe = new RegExp(`^/(${TENANT_ALIASES.join('|')})(?=/)`, 'i');
  const tenantRe = new RegExp(`^/${TENANT}(?=/)`, 'i');

  // Outermost: request log.
  provider.use(async (ctx, next) => {
    const started = Date.now();
    const path = ctx.path;
    try {
      await next();
    } finally {
      const extra = [];
      if (ctx.state.grantType) extra.push(`grant_type=${ctx.state.grantType}`);
      let clientId = ctx.state.clientId;
      try { clientId = ctx.oidc?.client?.clientId || clientId; } catch { /* not an oidc route */ }
      if (clientId) extra.push(`client_id=${clientId}`);
      if (ctx.state.audience) extra.push(`resource=${ctx.state.audience}`);
      if (ctx.body && typeof ctx.body === 'object' && ctx.body.error) extra.push(`error=${ctx.body.error}`);
      console.error(`${new Date().toISOString()} ${ctx.method} ${path} ${ctx.status} ${Date.now() - started}ms ${extra.join(' ')}`.trimEnd());
    }
  });

  // Tenant aliases, Entra discovery paths, instance discovery.
  provider.use(async (ctx, next) => {
    let p = ctx.path;
    if (aliasRe.test(p)) p = p.replace(aliasRe, `/${TENANT}`);
    if (tenantRe.test(p)) p = p.replace(tenantRe, `/${TENANT}`);
    if (p === `/${TENANT}/v2.0/.well-known/openid-configuration`
      || p === `/${TENANT}/.well-known/openid-configuration`) {
      p = '/.well-known/openid-configuration';
    }
    if (p === `/${TENANT}/discovery/instance` || p === '/common/discovery/instance') {
      const host = ctx.host;
      ctx.body = {
        tenant_discovery_endpoint: `${ctx.origin}/${TENANT}/v2.0/.well-known/openid-configuration`,
        'api-version': '1.1',
        metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
      };
      return;
    }
    if (p !== ctx.path) ctx.path = p;
    await next();
  });

  // Request rewriting and Entra-shaped responses.
  provider.use(async (ctx, next) => {
    const p = ctx.path;
    const isForm = ctx.method === 'POST' && ctx.is('application/x-www-form-urlencoded');
    let kind;
    let audience;
    let params;

    if (isForm && (p === tokenPath || p === devicePath || /^\/interaction\/[^/]+$/.test(p))) {
      params = await readForm(ctx);
      if (p === tokenPath) {
        kind = 'token';
        ctx.state.grantType = params.grant_type;
        ctx.state.clientId = params.client_id;
        audience = rewriteTokenParams(params);
        // oidc-provider revokes every token of the grant when a consumed device code is
        // presented again; Entra just refuses the request. Refuse it here, revoke nothing.
        if (params.grant_type === DEVICE_GRANT && typeof params.device_code === 'string') {
          const code = await provider.DeviceCode.find(params.device_code, { ignoreExpiration: true });
          if (code?.consumed) {
            ctx.status = 400;
            ctx.body = entraError({
              error: 'invalid_grant',
              error_description: 'The device code has already been redeemed.',
            }, 70000);
            return;
          }
        }
        if (params.grant_type === 'client_credentials' && !params.resource) {
          ctx.status = 400;
          ctx.body = entraError({
            error: 'invalid_request',
            error_description: "The request body must contain the following parameter: 'scope'.",
          }, 90014);
          return;
        }
      } else if (p === devicePath) {
        kind = 'devicecode';
        ctx.state.clientId = params.client_id;
        audience = rewriteAuthorizationParams(params);
      } else if (params.prompt === 'login' && typeof params.login === 'string' && params.login) {
        // devInteractions login: the account id becomes a stable GUID (the user's oid).
        const login = params.login.trim();
        const oid = userOid(login);
        users.set(oid, login);
        params.login = oid;
      }
      // oidc-provider reads an already-consumed body from req.body (documented fallback).
      ctx.req.body = querystring.stringify(params);
    } else if (ctx.method === 'GET' && p === authorizePath) {
      params = { ...ctx.query };
      audience = rewriteAuthorizationParams(params);
      ctx.querystring = querystring.stringify(params);
    }
    ctx.state.audience = audience;

    await next();

    // HTML pages must not pull external fonts (headless browsers without network).
    if (typeof ctx.body === 'string' && ctx.response.is('html')) {
      ctx.body = ctx.body.replace(/@import url\(https?:\/\/[^)]*\);?/g, '');
    }

    if (!kind || !ctx.body || typeof ctx.body !== 'object' || Buffer.isBuffer(ctx.body)) return;
    const body = ctx.body;

    if (body.error) {
      if (body.error === 'invalid_target') body.error = 'invalid_resource';
      let code = ERROR_CODES[body.error];
      if (body.error === 'invalid_client' && params?.client_assertion) code = 700027;
      ctx.body = entraError(body, code);
      return;
    }

    if (kind === 'token' && body.access_token) {
      const aud = audience || jwtAud(body.access_token);
      const out = {
        token_type: 'Bearer',
        expires_in: body.expires_in,
        ext_expires_in: body.expires_in,
      };
      if (params.grant_type !== 'client_credentials') {
        const source = ctx.oidc?.entities?.RefreshToken || ctx.oidc?.entities?.DeviceCode
          || ctx.oidc?.entities?.AuthorizationCode;
        const granted = splitScope(source?.scope).filter((s) => OIDC_SCOPES.has(s));
        out.scope = [...(aud ? [`${aud}/${USER_SCOPE}`, `${aud}/.default`] : []), ...granted].join(' ');
      }
      out.access_token = body.access_token;
      if (body.refresh_token) out.refresh_token = body.refresh_token;
      if (body.id_token) out.id_token = body.id_token;
      ctx.body = out;
    }
  });
}

function jwtAud(token) {
  try {
    return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).aud;
  } catch {
    return undefined;
  }
}

function entraError(body, code) {
  const out = { ...body };
  if (code) {
    out.error_description = `AADSTS${code}: ${body.error_description || body.error}`;
    out.error_codes = [code];
  }
  out.timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  out.trace_id = crypto.randomUUID();
  out.correlation_id = crypto.randomUUID();
  if (code) out.error_uri = `https://login.microsoftonline.com/error?code=${code}`;
  return out;
}

// ---------------------------------------------------------------- server

const server = https.createServer({
  cert: fs.readFileSync(cfg.tlsCert),
  key: fs.readFileSync(cfg.tlsKey),
});

server.listen(Number(cfg.port || 0), HOST, () => {
  const { port } = server.address();
  const hostPart = HOST.includes(':') ? `[${HOST}]` : HOST;
  const origin = `https://${hostPart}:${port}`;
  const provider = buildProvider(origin);
  provider.on('server_error', (ctx, err) => console.error('server_error:', err));
  for (const ev of ['grant.error', 'device_authorization.error', 'code_verification.error',
    'authorization.error', 'discovery.error', 'jwks.error', 'device_resume.error']) {
    provider.on(ev, (ctx, err) => err.error !== 'authorization_pending' && console.error(`  ${ev}: ${err.error || err.name}: ${err.error_description || err.message}${err.error_detail ? ` (${err.error_detail})` : ''}`));
  }
  server.on('request', provider.callback());
  process.stdout.write(`READY ${origin}\n`);
});

server.on('error', (err) => {
  console.error('server error:', err);
  process.exit(1);
});

process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
