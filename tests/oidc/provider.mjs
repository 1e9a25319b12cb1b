// A real OpenID provider (panva/oidc-provider) for the gateway's tests, on loopback only.
// Configured from the environment; prints "ready <issuer>" once it listens.
// Users sign in through the library's development login form (any password).
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT || 0);
const issuer = `http://127.0.0.1:${port}`;
const redirectUris = (process.env.OIDC_REDIRECT_URIS || '').split(',').filter(Boolean);
const logoutUris = (process.env.OIDC_POST_LOGOUT_URIS || '').split(',').filter(Boolean);
const backchannelUri = process.env.OIDC_BACKCHANNEL_URI || undefined;

const users = {
  alice: { email: 'alice@example.com', email_verified: true, name: 'Alice Example', groups: ['staff', 'video'] },
  bob: { email: 'bob@other.org', email_verified: true, name: 'Bob Other', groups: [] },
  eve: { email: 'eve@example.com', email_verified: false, name: 'Eve Unverified', groups: ['staff'] },
  carol: { email: 'Carol@Example.com', email_verified: true, name: 'Carol Case', groups: ['video'] },
  // As Entra ID sends them: 150 group GUIDs, one of which a site's policy names.
  dana: {
    email: 'dana@example.com', email_verified: true, name: 'Dana Many',
    groups: [...Array.from({ length: 150 }, (_, i) => `0b6c2f1e-7a4d-4e0a-9c1b-${String(i).padStart(12, '0')}`), 'video'],
  },
};

// The signing key comes from the test (OIDC_JWK), so tests can sign hostile tokens with the
// provider's own key; otherwise a fresh one each start.
let jwk;
if (process.env.OIDC_JWK) {
  jwk = JSON.parse(process.env.OIDC_JWK);
} else {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  jwk = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' };
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.OIDC_CLIENT_ID || 'gateway',
    client_secret: process.env.OIDC_CLIENT_SECRET || 'gateway-secret',
    redirect_uris: redirectUris,
    post_logout_redirect_uris: logoutUris,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: process.env.OIDC_AUTH_METHOD || 'client_secret_basic',
    ...(backchannelUri ? { backchannel_logout_uri: backchannelUri, backchannel_logout_session_required: true } : {}),
  }],
  pkce: { methods: ['S256'], required: () => true },
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  // ID tokens carry the claims when OIDC_ID_TOKEN_CLAIMS=1; otherwise only userinfo does,
  // as many providers do.
  conformIdTokenClaims: process.env.OIDC_ID_TOKEN_CLAIMS !== '1',
  features: {
    // OIDC_NO_USERINFO=1: the claims are only in the ID token (as some providers have it).
    userinfo: { enabled: process.env.OIDC_NO_USERINFO !== '1' },
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    backchannelLogout: { enabled: true },
  },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, ...(users[id] || {}) }),
  }),
  jwks: { keys: [jwk] },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = `<!doctype html><title>error</title><h1 id="error">${out.error}</h1>`;
  },
});

const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
