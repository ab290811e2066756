// npm `smooch-core` 8.11.4 (Smooch's last v1.1 Node client) against the
// emulator. Run by tests/official_clients.rs.
//
// The client signs its own HS256 JWT from keyId/secret/scope (header `kid`,
// payload `{scope}`) and calls `serviceUrl + '/v1.1' + path`. With scope
// `account` it puts `/apps/{appId}` in front of keys and webhooks paths;
// with any other scope it uses the short paths `/v1.1/keys`, `/v1.1/webhooks`.
// Integrations always go to `/apps/{appId}/integrations`.
//
// Env: SMOOCH_URL, SMOOCH_MODE (`account` or `app`), SMOOCH_KEY_ID,
// SMOOCH_SECRET (the account's key for `account`, an app's key for `app`);
// for `app` also SMOOCH_APP_ID (the key's app) and SMOOCH_OTHER_APP_ID.
// Prints one JSON object on stdout; exits non-zero on an unexpected answer.
'use strict';

const assert = require('assert');
const Smooch = require('smooch-core');

const URL = process.env.SMOOCH_URL;
const MODE = process.env.SMOOCH_MODE;
const MISSING = '0'.repeat(24);
const CREDENTIALS = ['TG-BOT-TOKEN-2', 'TW-AUTH-TOKEN-2', 'FB-PAGE-TOKEN-2', 'FB-APP-SECRET-2',
  'LINE-SECRET-2'];

function client(scope, keyId = process.env.SMOOCH_KEY_ID, secret = process.env.SMOOCH_SECRET) {
  return new Smooch({ keyId, secret, scope, serviceUrl: URL });
}

/** The promise rejects with `status`; returns {status, code, description}. */
async function expectError(status, what, promise) {
  let value;
  try {
    value = await promise;
  } catch (err) {
    const got = err.response && err.response.status;
    assert.strictEqual(got, status, `${what}: expected ${status}, got ${got}: ${err.message}`);
    assert.ok(typeof err.code === 'string' && err.code.length > 0, `${what}: no error.code (${err.message})`);
    return { status: got, code: err.code, description: err.description };
  }
  assert.fail(`${what}: expected ${status}, got success ${JSON.stringify(value)}`);
}

function noCredentials(what, value) {
  const text = JSON.stringify(value);
  for (const credential of CREDENTIALS) {
    assert.ok(!text.includes(credential), `${what} answer carries a credential`);
  }
}

function decode(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString());
}

const INTEGRATIONS = {
  telegram: { type: 'telegram', token: 'TG-BOT-TOKEN-2' },
  twilio: {
    type: 'twilio', accountSid: 'ACa1b4c65ee0722712fab89867cb14eac7',
    authToken: 'TW-AUTH-TOKEN-2', phoneNumberSid: 'PN0674df0ecee0c9819bca0ff0bc0a159e',
  },
  messenger: {
    type: 'messenger', pageAccessToken: 'FB-PAGE-TOKEN-2', appId: 'fb-app-2',
    appSecret: 'FB-APP-SECRET-2',
  },
  line: {
    type: 'line', channelId: '1462776484', channelSecret: 'LINE-SECRET-2',
    mid: 'uf0c0bc1813d372ac5af4c5b5faee9924',
  },
};

/** Create, list (all and by types), get and delete the four channels; keeps telegram. */
async function integrationFlow(smooch, appId, out) {
  const made = {};
  for (const [kind, props] of Object.entries(INTEGRATIONS)) {
    const { integration } = await smooch.integrations.create(appId, props);
    assert.strictEqual(integration.type, kind);
    assert.match(integration._id, /^[0-9a-f]{24}$/);
    noCredentials(kind, integration);
    made[kind] = integration;
  }
  assert.strictEqual(made.twilio.accountSid, INTEGRATIONS.twilio.accountSid);
  assert.strictEqual(made.line.channelId, INTEGRATIONS.line.channelId);
  const all = (await smooch.integrations.list(appId)).integrations.map((i) => i.type).sort();
  assert.deepStrictEqual(all, ['line', 'messenger', 'telegram', 'twilio']);
  // The client joins an array of types with commas (`?types=twilio,line`).
  const some = (await smooch.integrations.list(appId, ['twilio', 'line'])).integrations;
  assert.deepStrictEqual(some.map((i) => i.type).sort(), ['line', 'twilio']);
  for (const [kind, integration] of Object.entries(made)) {
    const got = (await smooch.integrations.get(appId, integration._id)).integration;
    assert.deepStrictEqual([got._id, got.type], [integration._id, kind]);
  }
  for (const kind of ['twilio', 'messenger', 'line']) {
    await smooch.integrations.delete(appId, made[kind]._id);
    await expectError(404, `get deleted ${kind}`, smooch.integrations.get(appId, made[kind]._id));
  }
  const left = (await smooch.integrations.list(appId)).integrations.map((i) => i._id);
  assert.deepStrictEqual(left, [made.telegram._id]);
  out.integrations = Object.fromEntries(Object.entries(made).map(([k, i]) => [k, i._id]));
}

/** Webhooks create/list/get/update/delete; `args` is [] (short paths) or [appId]. */
async function webhookFlow(smooch, args, out) {
  const { webhook } = await smooch.webhooks.create(...args, {
    target: 'https://example.com/sc-hook', triggers: ['message:appUser', 'postback'],
  });
  assert.strictEqual(webhook.target, 'https://example.com/sc-hook');
  assert.deepStrictEqual([...webhook.triggers].sort(), ['message:appUser', 'postback']);
  assert.ok(webhook.secret && /^[0-9a-f]{24}$/.test(webhook._id), 'webhook secret/id');
  const second = (await smooch.webhooks.create(...args, { target: 'https://example.com/sc-2' })).webhook;
  assert.deepStrictEqual(second.triggers, ['message'], 'default triggers');
  const listed = (await smooch.webhooks.list(...args)).webhooks.map((w) => w._id).sort();
  assert.deepStrictEqual(listed, [webhook._id, second._id].sort());
  const got = (await smooch.webhooks.get(...args, webhook._id)).webhook;
  assert.deepStrictEqual([got._id, got.secret], [webhook._id, webhook.secret]);
  const changed = (await smooch.webhooks.update(...args, webhook._id, {
    target: 'https://example.com/sc-hook-2', triggers: ['message:appMaker'],
  })).webhook;
  assert.deepStrictEqual([changed.target, changed.triggers], ['https://example.com/sc-hook-2', ['message:appMaker']]);
  await smooch.webhooks.delete(...args, second._id);
  await expectError(404, 'get deleted webhook', smooch.webhooks.get(...args, second._id));
  const after = (await smooch.webhooks.list(...args)).webhooks;
  assert.deepStrictEqual(after.map((w) => [w._id, w.target]), [[webhook._id, 'https://example.com/sc-hook-2']]);
  out.webhook_id = webhook._id;
}

async function account() {
  const smooch = client('account');
  const out = {};

  // apps
  const { app } = await smooch.apps.create('sc-v1 app', { useAnimalNames: true }, { team: 'js' });
  assert.strictEqual(app.name, 'sc-v1 app');
  assert.match(app._id, /^[0-9a-f]{24}$/);
  assert.ok(app.appToken, 'appToken');
  assert.strictEqual(app.settings.useAnimalNames, true);
  assert.deepStrictEqual(app.metadata, { team: 'js' });
  const appId = app._id;
  out.app_id = appId;
  const listed = await smooch.apps.list(100, 0);
  assert.ok(listed.apps.some((a) => a._id === appId), 'apps.list misses the app');
  assert.strictEqual(listed.hasMore, false);
  const got = (await smooch.apps.get(appId)).app;
  assert.deepStrictEqual([got._id, got.name, got.appToken], [appId, 'sc-v1 app', app.appToken]);
  const updated = (await smooch.apps.update(appId, { name: 'sc-v1 renamed' })).app;
  assert.strictEqual(updated.name, 'sc-v1 renamed');
  assert.strictEqual((await smooch.apps.get(appId)).app.name, 'sc-v1 renamed');

  // keys, under /apps/{appId}/keys with this scope
  const { key } = await smooch.apps.keys.create(appId, 'sc key');
  assert.match(key._id, /^app_[0-9a-f]{24}$/);
  assert.strictEqual(key.name, 'sc key');
  assert.ok((await smooch.apps.keys.list(appId)).keys.some((k) => k._id === key._id), 'keys.list');
  const fetched = (await smooch.apps.keys.get(appId, key._id)).key;
  assert.deepStrictEqual([fetched._id, fetched.name], [key._id, 'sc key']);
  const { jwt } = await smooch.apps.keys.getJwt(appId, key._id);
  const [head, payload] = jwt.split('.');
  assert.strictEqual(decode(head).kid, key._id);
  assert.strictEqual(decode(payload).scope, 'app');
  // The client's own JWT signing agrees with the server's verification:
  // the key just made, used with scope `app`, reads its app's integrations.
  const asApp = client('app', key._id, key.secret);
  assert.deepStrictEqual((await asApp.integrations.list(appId)).integrations, []);
  await smooch.apps.keys.delete(appId, key._id);
  assert.ok(!(await smooch.apps.keys.list(appId)).keys.some((k) => k._id === key._id), 'key still listed');
  await expectError(404, 'get deleted key', smooch.apps.keys.get(appId, key._id));
  out.key_id = key._id;
  // A deleted key's tokens no longer work.
  out.deleted_key = await expectError(401, 'deleted key', asApp.integrations.list(appId));

  await integrationFlow(smooch, appId, out);
  await webhookFlow(smooch, [appId], out);

  // errors
  out.missing_app = await expectError(404, 'get missing app', smooch.apps.get(MISSING));
  const wrongSecret = client('account', process.env.SMOOCH_KEY_ID, 'x'.repeat(24));
  out.bad_secret = await expectError(401, 'wrong secret', wrongSecret.apps.list());
  const unknownKey = client('account', 'app_' + '0'.repeat(24), 'x'.repeat(24));
  await expectError(401, 'unknown key', unknownKey.apps.get(appId));

  const doomed = (await smooch.apps.create('sc-v1 doomed')).app._id;
  await smooch.apps.delete(doomed);
  await expectError(404, 'get deleted app', smooch.apps.get(doomed));
  out.deleted_app_id = doomed;
  return out;
}

async function app() {
  const appId = process.env.SMOOCH_APP_ID;
  const other = process.env.SMOOCH_OTHER_APP_ID;
  const smooch = client('app');
  const out = { app_id: appId };

  await integrationFlow(smooch, appId, out);
  // Webhooks on the short path /v1.1/webhooks: the token names the app.
  await webhookFlow(smooch, [], out);

  // An app token reaches no other app, and not the app maker API: apps and
  // keys need an appMaker token (messaging-inside-api.md, "Secret Keys": "A
  // JWT with scope 'appMaker' is required"), so /v1.1/keys is a 403.
  out.other_app = await expectError(403, 'other app', smooch.integrations.list(other));
  out.keys = await expectError(403, 'keys with an app token', smooch.apps.keys.list());
  out.apps = await expectError(403, 'apps with an app token', smooch.apps.list());
  out.missing_integration = await expectError(404, 'missing integration', smooch.integrations.get(appId, MISSING));
  const wrongSecret = client('app', process.env.SMOOCH_KEY_ID, 'x'.repeat(24));
  out.bad_secret = await expectError(401, 'wrong secret', wrongSecret.webhooks.list());
  return out;
}

const modes = { account, app };
if (!modes[MODE]) {
  console.error(`SMOOCH_MODE must be account or app, not ${MODE}`);
  process.exit(2);
}
modes[MODE]().then(
  (out) => console.log(JSON.stringify(out)),
  (err) => {
    console.error(`FAILED (${MODE}): ${err.stack || err}`);
    process.exit(1);
  },
);
