// npm `sunshine-conversations-client` 14.1.0 (the official v2 Node client)
// against the emulator's /v2. Run by tests/official_clients.rs. "ref N" =
// section N of sunshine-conversations-v2.md.
//
// Env: SMOOCH_URL, SMOOCH_KEY_ID, SMOOCH_SECRET (the account key: Basic auth).
// Prints one JSON object on stdout; exits non-zero on an unexpected answer.
'use strict';

const assert = require('assert');
const SC = require('sunshine-conversations-client');

const MISSING = '0'.repeat(24);
const CREDENTIALS = ['TG-BOT-TOKEN-4', 'TW-AUTH-TOKEN-4', 'FB-PAGE-TOKEN-4', 'FB-APP-SECRET-4',
  'LINE-SECRET-4'];

function client(username, password) {
  const api = new SC.ApiClient();
  api.basePath = process.env.SMOOCH_URL;
  api.authentications.basicAuth.username = username;
  api.authentications.basicAuth.password = password;
  return api;
}

/** The promise rejects with `status` and a v2 error body (ref 7). */
async function expectError(status, what, promise) {
  let value;
  try {
    value = await promise;
  } catch (err) {
    assert.strictEqual(err.status, status, `${what}: expected ${status}, got ${err.status}: ${JSON.stringify(err.body)} ${err.stack || ''}`);
    const first = ((err.body && err.body.errors) || [])[0] || {};
    assert.ok(typeof first.title === 'string' && first.title && typeof first.code === 'string' && first.code,
      `${what}: body is not {errors: [{code, title}]}: ${JSON.stringify(err.body)}`);
    return { status: err.status, code: first.code, title: first.title };
  }
  assert.fail(`${what}: expected ${status}, got success ${JSON.stringify(value)}`);
}

function noCredentials(what, value) {
  const text = JSON.stringify(value);
  for (const credential of CREDENTIALS) {
    assert.ok(!text.includes(credential), `${what} answer carries a credential`);
  }
}

async function main() {
  const account = client(process.env.SMOOCH_KEY_ID, process.env.SMOOCH_SECRET);
  const apps = new SC.AppsApi(account);
  const keys = new SC.AppKeysApi(account);
  const out = {};

  // ---- apps: create 5, page through them (ref 2, 3)
  const made = [];
  for (let i = 0; i < 5; i++) {
    const body = new SC.AppCreateBody(`js-v2 app ${i}`);
    body.metadata = { index: i };
    const { app } = await apps.createApp(body);
    assert.strictEqual(app.displayName, `js-v2 app ${i}`);
    assert.match(app.id, /^[0-9a-f]{24}$/);
    assert.deepStrictEqual(app.metadata, { index: i });
    made.push(app.id);
  }
  // JS quirk (ref 2): only the page object's first key goes out, as
  // page[<key>]. {size: 2} sends page[size]=2; {after, size} sends only
  // page[after], so the following pages come at the default size (25).
  const first = await apps.listApps({ page: { size: 2 } });
  assert.strictEqual(first.apps.length, 2, `page[size]=2 gave ${first.apps.length}`);
  assert.strictEqual(first.meta.hasMore, true);
  assert.ok(first.meta.afterCursor, 'afterCursor');
  const pages = [first.apps.map((a) => a.id)];
  let after = first.meta.afterCursor;
  for (;;) {
    const page = await apps.listApps({ page: { after, size: 2 } });
    pages.push(page.apps.map((a) => a.id));
    assert.ok(pages.length < 10, `paging does not end: ${JSON.stringify(pages)}`);
    if (!page.meta.hasMore) break;
    after = page.meta.afterCursor;
  }
  const seen = pages.flat();
  assert.strictEqual(new Set(seen).size, seen.length, `an app on two pages: ${JSON.stringify(pages)}`);
  assert.deepStrictEqual([...seen].sort(), [...made].sort());
  assert.deepStrictEqual(pages.map((p) => p.length), [2, 3]);
  out.app_pages = pages;

  const [appId, otherApp] = made;
  const got = (await apps.getApp(appId)).app;
  assert.deepStrictEqual([got.id, got.displayName], [appId, 'js-v2 app 0']);
  const patched = (await apps.updateApp(appId, { displayName: 'js-v2 renamed', metadata: { team: 'js' } })).app;
  assert.deepStrictEqual([patched.displayName, patched.metadata], ['js-v2 renamed', { team: 'js' }]);
  assert.strictEqual((await apps.getApp(appId)).app.displayName, 'js-v2 renamed');
  await apps.deleteApp(made[4]);
  await expectError(404, 'get deleted app', apps.getApp(made[4]));
  Object.assign(out, { app_id: appId, other_app_id: otherApp, deleted_app_id: made[4] });

  // ---- app keys (ref 4)
  const { key } = await keys.createAppKey(appId, new SC.AppKeyCreateBody('js key'));
  assert.match(key.id, /^app_/);
  assert.ok(key.secret, 'the created key has its secret');
  assert.strictEqual(key.displayName, 'js key');
  assert.ok((await keys.listAppKeys(appId)).keys.some((k) => k.id === key.id), 'listAppKeys');
  assert.strictEqual((await keys.getAppKey(appId, key.id)).key.displayName, 'js key');
  const spare = (await keys.createAppKey(appId, { displayName: 'spare' })).key;
  await keys.deleteAppKey(appId, spare.id);
  assert.ok(!(await keys.listAppKeys(appId)).keys.some((k) => k.id === spare.id), 'deleted key listed');
  await expectError(404, 'get deleted key', keys.getAppKey(appId, spare.id));
  out.key_id = key.id;

  // ---- integrations with the app key's Basic auth (ref 1, 5)
  const asApp = client(key.id, key.secret);
  const integrations = new SC.IntegrationsApi(asApp);
  const webhooks = new SC.WebhooksApi(asApp);
  const bodies = {
    telegram: new SC.Telegram('telegram', 'TG-BOT-TOKEN-4'),
    twilio: Object.assign(new SC.Twilio('twilio', 'ACa1b4c65ee0722712fab89867cb14eac7', 'TW-AUTH-TOKEN-4'),
      { phoneNumberSid: 'PN0674df0ecee0c9819bca0ff0bc0a159e' }),
    messenger: Object.assign(new SC.Messenger('messenger', 'FB-PAGE-TOKEN-4', 'fb-app-4', 'FB-APP-SECRET-4'),
      { displayName: 'js messenger' }),
    line: Object.assign(new SC.Line('line'), { channelId: '1462776486', channelSecret: 'LINE-SECRET-4' }),
    custom: Object.assign(new SC.Custom('custom', [{
      target: 'https://example.com/js-v2', triggers: ['conversation:message'], includeFullUser: true,
    }]), { displayName: 'js custom' }),
  };
  const ids = {};
  let firstHook;
  for (const [kind, body] of Object.entries(bodies)) {
    // The raw answer: this client's Integration model keeps only the common fields.
    const { response } = await integrations.createIntegrationWithHttpInfo(appId, body);
    const integration = response.body.integration;
    assert.strictEqual(response.status, 201, `create ${kind}: ${response.status}`);
    assert.strictEqual(integration.type, kind);
    assert.match(integration.id, /^[0-9a-f]{24}$/);
    noCredentials(kind, response.body);
    ids[kind] = integration.id;
    if (kind === 'custom') firstHook = integration.webhooks[0];
    if (kind === 'messenger') assert.strictEqual(integration.displayName, 'js messenger');
  }
  assert.ok(firstHook && firstHook.id && firstHook.secret, 'custom integration echoes its webhook');
  assert.deepStrictEqual([firstHook.target, firstHook.triggers, firstHook.includeFullUser],
    ['https://example.com/js-v2', ['conversation:message'], true]);
  out.integrations = ids;

  const every = (await integrations.listIntegrations(appId)).integrations;
  assert.deepStrictEqual(every.map((i) => i.type).sort(), Object.keys(ids).sort());
  // filter[types]=telegram,line (one key: the JS quirk does not bite).
  const some = (await integrations.listIntegrations(appId, { filter: { types: 'telegram,line' } })).integrations;
  assert.deepStrictEqual(some.map((i) => i.type).sort(), ['line', 'telegram']);
  const small = await integrations.listIntegrations(appId, { page: { size: 2 } });
  assert.strictEqual(small.integrations.length, 2);
  assert.strictEqual(small.meta.hasMore, true);
  const rest = await integrations.listIntegrations(appId, { page: { after: small.meta.afterCursor } });
  assert.deepStrictEqual([...small.integrations, ...rest.integrations].map((i) => i.id).sort(),
    Object.values(ids).sort());
  for (const [kind, id] of Object.entries(ids)) {
    const one = (await integrations.getIntegration(appId, id)).integration;
    assert.deepStrictEqual([one.id, one.type], [id, kind]);
  }
  const renamed = (await integrations.updateIntegration(appId, ids.telegram, { displayName: 'js telegram' })).integration;
  assert.deepStrictEqual([renamed.id, renamed.displayName], [ids.telegram, 'js telegram']);
  const renamedCustom = (await integrations.updateIntegration(appId, ids.custom, { displayName: 'js custom 2' })).integration;
  assert.strictEqual(renamedCustom.displayName, 'js custom 2');
  assert.strictEqual((await integrations.getIntegration(appId, ids.telegram)).integration.displayName, 'js telegram');
  for (const kind of ['twilio', 'line']) {
    await integrations.deleteIntegration(appId, ids[kind]);
    await expectError(404, `get deleted ${kind}`, integrations.getIntegration(appId, ids[kind]));
  }

  // ---- webhooks of the custom integration (ref 6)
  const { webhook } = await webhooks.createWebhook(appId, ids.custom, {
    target: 'https://example.com/js-v2-b', triggers: ['conversation:message', 'conversation:postback'],
    includeFullSource: true,
  });
  assert.ok(webhook.id && webhook.secret, 'webhook id and secret');
  assert.deepStrictEqual([webhook.target, webhook.includeFullSource, webhook.includeFullUser],
    ['https://example.com/js-v2-b', true, false]);
  const listed = (await webhooks.listWebhooks(appId, ids.custom)).webhooks.map((w) => w.id).sort();
  assert.deepStrictEqual(listed, [firstHook.id, webhook.id].sort());
  const fetched = (await webhooks.getWebhook(appId, ids.custom, webhook.id)).webhook;
  assert.deepStrictEqual([fetched.id, fetched.secret], [webhook.id, webhook.secret]);
  // A plain object sends only the target: the flags stay (unlike PY, ref 6).
  const changed = (await webhooks.updateWebhook(appId, ids.custom, webhook.id, { target: 'https://example.com/js-v2-c' })).webhook;
  assert.deepStrictEqual([changed.target, changed.includeFullSource, changed.triggers],
    ['https://example.com/js-v2-c', true, ['conversation:message', 'conversation:postback']]);
  await webhooks.deleteWebhook(appId, ids.custom, firstHook.id);
  await expectError(404, 'get deleted webhook', webhooks.getWebhook(appId, ids.custom, firstHook.id));
  out.webhook_id = webhook.id;

  // ---- errors (ref 7)
  out.not_found = await expectError(404, 'missing app', apps.getApp(MISSING));
  const wrong = new SC.AppsApi(client(process.env.SMOOCH_KEY_ID, 'x'.repeat(24)));
  out.unauthorized = await expectError(401, 'wrong secret', wrong.listApps());
  out.forbidden = await expectError(403, 'app key on another app', integrations.listIntegrations(otherApp));
  await expectError(403, 'app key gets another app', new SC.AppsApi(asApp).getApp(otherApp));
  // This client does not check lengths: the server's validation answers.
  out.bad_request = await expectError(400, 'displayName over 100', apps.createApp({ displayName: 'x'.repeat(101) }));
  await expectError(400, 'PATCH displayName over 100', apps.updateApp(appId, { displayName: 'y'.repeat(101) }));
  assert.strictEqual((await apps.getApp(appId)).app.displayName, 'js-v2 renamed', 'a refused PATCH changed the app');
  return out;
}

main().then(
  (out) => console.log(JSON.stringify(out)),
  (err) => {
    console.error(`FAILED: ${err && err.stack ? err.stack : JSON.stringify(err)}`);
    process.exit(1);
  },
);
