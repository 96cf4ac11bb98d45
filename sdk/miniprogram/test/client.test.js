'use strict';
// The client against a real wxgate sidecar, WeChat simulator and echo app on 127.0.0.1.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { createClient, adapters, WxGateError } = require('../lib/index.js');
const { APPID, APPID_B, QQ_APPID, startSim, startApp, startSidecar, stopAll, wechatCalls, qqCalls, fakeWx, mint } = require('./support.js');

let sim;
let header; // default locations, phone binding kept in the credential
let cookie; // credential in a cookie, renewed on every answer
let twoApps; // two WeChat mini programs in one plugin
let qq; // a QQ mini program (platform: qq)

const openid = (user, appid = APPID) => `o${crypto.createHash('sha256').update(`openid:${appid}:${user}`).digest('base64url').slice(0, 27)}`;
const referer = (appid, version, host = 'servicewechat.com') => `https://${host}/${appid}/${version}/page-frame.html`;
const fast = { attempts: 2, maxDelayMs: 20 };

before(async () => {
  sim = await startSim();
  const app = await startApp();
  [header, cookie, twoApps, qq] = await Promise.all([
    startSidecar({ sim, app, more: '    phone: { paths: [/bind-phone], keepInCredential: true }\n' }),
    startSidecar({
      sim,
      app,
      more: '    session: { returnIn: cookie, acceptIn: cookie, ttlMinutes: 60, renewBeforeMinutes: 59 }\n',
    }),
    startSidecar({
      sim,
      app,
      apps: `    apps:\n      - { appId: ${APPID}, credentialsSecretRef: { name: creds } }\n      - { appId: ${APPID_B}, credentialsSecretRef: { name: creds } }\n`,
      more: '    appIdParam: { in: header, name: x-mp-appid }\n    tags: { fields: [appid, channel] }\n',
    }),
    startSidecar({ sim, app, apps: `    platform: qq\n    appId: "${QQ_APPID}"\n    credentialsSecretRef: { name: creds }\n` }),
  ]);
});

after(stopAll);

function client(wx, options = {}) {
  return createClient(Object.assign({ baseURL: header, platform: adapters.wx(wx), retry: fast }, options));
}

test('the first request logs in, then succeeds with the identity', async () => {
  const wx = fakeWx({ codes: (n) => `alice_${n}` });
  const res = await client(wx).request({ url: '/orders/1', data: { q: 'x' } });
  assert.equal(res.statusCode, 200);
  assert.equal(res.data.headers['x-wx-openid'], openid('alice'));
  assert.equal(res.data.path, '/orders/1');
  assert.equal(res.data.query, 'q=x');
  assert.equal(wx.logins, 1);
  assert.ok(wx.storage.get('wxgate.credential').startsWith('v1.'));
});

test('twenty requests without a credential share one wx.login() and one WeChat call', async () => {
  const wx = fakeWx({ codes: (n) => `delay100-bob_${n}` });
  const c = client(wx);
  const before = await wechatCalls(sim);
  const all = await Promise.all(Array.from({ length: 20 }, (_, i) => c.request({ url: `/items/${i}` })));
  assert.ok(all.every((r) => r.statusCode === 200));
  assert.equal(wx.logins, 1);
  assert.equal((await wechatCalls(sim)) - before, 1);
});

test('an expired credential: one re-login, every waiting request retried once', async () => {
  const wx = fakeWx({ codes: (n) => `delay100-carol_${n}` });
  const now = Math.floor(Date.now() / 1000);
  const expired = mint({ openid: openid('delay100-carol'), appid: APPID, iat: now - 7200, exp: now - 3600, jti: 'expired' });
  wx.storage.set('wxgate.credential', expired);
  const c = client(wx);
  assert.equal(c.getCredential(), expired);
  const before = await wechatCalls(sim);
  const all = await Promise.all(Array.from({ length: 10 }, () => c.request({ url: '/cart' })));
  // The simulator's user is the code's part before `_`: `delay100-carol`.
  assert.ok(all.every((r) => r.statusCode === 200 && r.data.headers['x-wx-openid'] === openid('delay100-carol')));
  assert.equal(wx.logins, 1);
  assert.equal((await wechatCalls(sim)) - before, 1);
  const sent = wx.requests.filter((r) => r.url.endsWith('/cart'));
  assert.equal(sent.length, 20, 'ten refused, ten retried once');
  assert.notEqual(c.getCredential(), expired);
});

test('WX_CODE_USED and WX_CODE_INVALID are recovered by a fresh wx.login()', async () => {
  for (const bad of ['err40163-used', 'err40029-invalid']) {
    const wx = fakeWx({ codes: (n) => (n === 1 ? bad : `dave_${n}`) });
    const res = await client(wx).request({ url: '/me' });
    assert.equal(res.statusCode, 200, bad);
    assert.equal(wx.logins, 2, bad);
  }
});

test('503 WX_UNAVAILABLE with Retry-After is retried, then surfaced', async () => {
  const wx = fakeWx({ codes: () => 'errm1-down_1' });
  const c = client(wx);
  const err = await c.request({ url: '/me' }).catch((e) => e);
  assert.ok(err instanceof WxGateError);
  assert.equal(err.code, 'WX_UNAVAILABLE');
  assert.equal(err.statusCode, 503);
  assert.equal(err.retryable, true);
  assert.equal(err.retryAfter, 5);
  const logins = wx.requests.filter((r) => r.url.endsWith('/login'));
  assert.equal(logins.length, 3, 'the first try and two retries');
  assert.equal(wx.logins, 1, 'the code was not spent: no new wx.login()');
  assert.equal(c.getCredential(), null);
});

test('403 WX_USER_BLOCKED is surfaced without a loop, to the callback style too', async () => {
  const wx = fakeWx({ codes: () => 'err40226-blocked' });
  const c = client(wx);
  const failed = await new Promise((resolve) => {
    c.request({ url: '/me', success: () => resolve(null), fail: resolve });
  });
  assert.ok(failed instanceof WxGateError);
  assert.equal(failed.code, 'WX_USER_BLOCKED');
  assert.equal(failed.statusCode, 403);
  assert.equal(wx.logins, 1);
  assert.equal(wx.requests.length, 1);
});

test('a credential in a cookie is carried by the client, and a renewal is stored', async () => {
  const wx = fakeWx({ codes: (n) => `erin_${n}` });
  const kept = [];
  const options = {
    baseURL: cookie,
    session: { returnIn: 'cookie', acceptIn: 'cookie' },
    onCredential: (cred) => kept.push(cred),
  };
  const c = client(wx, options);
  const first = await c.request({ url: '/a' });
  assert.equal(first.data.headers['x-wx-openid'], openid('erin'));
  assert.ok(c.getCredential().startsWith('v1.'), 'taken from Set-Cookie');
  const second = await c.request({ url: '/b' });
  assert.equal(second.statusCode, 200);
  assert.match(wx.requests.at(-1).headers.Cookie, /^user_session=v1\./);
  assert.ok(!('user_session' in second.data.headers), 'the app never sees the credential');
  assert.equal(kept.length, 1, 'no renewal far from expiry');

  // Two minutes from expiry, inside renewBeforeMinutes: the answer carries a renewed one.
  const now = Math.floor(Date.now() / 1000);
  const ending = mint({ openid: openid('erin'), appid: APPID, iat: now - 3480, exp: now + 120, jti: 'ending' });
  wx.storage.set('wxgate.credential', ending);
  const renewing = client(wx, options);
  const res = await renewing.request({ url: '/c' });
  assert.equal(res.statusCode, 200);
  assert.notEqual(renewing.getCredential(), ending, 'the renewed credential was stored');
  assert.equal(wx.storage.get('wxgate.credential'), renewing.getCredential());
  assert.equal(wx.logins, 1);
});

test('the credential survives a new client instance; logout forgets it', async () => {
  const wx = fakeWx({ codes: (n) => `frank_${n}` });
  await client(wx).request({ url: '/x' });
  const again = client(wx);
  const res = await again.request({ url: '/y' });
  assert.equal(res.data.headers['x-wx-openid'], openid('frank'));
  assert.equal(wx.logins, 1, 'no second login');
  again.logout();
  assert.equal(again.getCredential(), null);
  assert.equal(wx.storage.has('wxgate.credential'), false);
});

test('bindPhone sends the phone code and keeps the credential holding the number', async () => {
  const wx = fakeWx({ codes: (n) => `13800138000_${n}` });
  const c = client(wx, { phone: { path: '/bind-phone' } });
  await c.login();
  const before = c.getCredential();
  const res = await c.bindPhone('13800138000_p1');
  assert.equal(res.statusCode, 200);
  assert.equal(res.data.headers['x-wx-phone-number'], '13800138000');
  assert.notEqual(c.getCredential(), before);
  const later = await c.request({ url: '/profile' });
  assert.equal(later.data.headers['x-wx-phone-number'], '13800138000');
  const refused = await c.bindPhone('err40029-bad').catch((e) => e);
  assert.equal(refused.code, 'WX_PHONE_CODE_INVALID');
  assert.equal(refused.relogin, false);
});

test('bad options are refused with a clear error', () => {
  const wx = fakeWx();
  assert.throws(() => createClient({ platform: adapters.wx(wx) }), /baseURL/);
  assert.throws(() => client(wx, { code: { in: 'cookie' } }), /code\.in must be one of header, query, body/);
  assert.throws(() => client(wx, { session: { acceptIn: 'body' } }), /session\.acceptIn/);
  assert.throws(() => adapters.wx({}), /login\(\) and request\(\)/);
});

test('uni-app and Taro run the same logic through their adapters', async () => {
  for (const [name, make] of [['uni', adapters.uni], ['taro', adapters.taro]]) {
    const wx = fakeWx({ codes: (n) => `gina${name}_${n}` });
    const providers = [];
    const platform = Object.assign({}, wx, {
      login(options) {
        providers.push(options.provider);
        return wx.login(options);
      },
    });
    const res = await createClient({ baseURL: header, platform: make(platform), retry: fast }).request({ url: '/z' });
    assert.equal(res.data.headers['x-wx-openid'], openid(`gina${name}`), name);
    assert.deepEqual(providers, [name === 'uni' ? 'weixin' : undefined], name);
  }
});

test('no answer at all: retried where safe, then NETWORK_ERROR', async () => {
  const wx = fakeWx({ codes: (n) => `hank_${n}` });
  const down = client(wx, { baseURL: 'http://127.0.0.1:9' });
  const err = await down.request({ url: '/x' }).catch((e) => e);
  assert.equal(err.code, 'NETWORK_ERROR');
  assert.equal(wx.requests.length, 3, 'a login resent with its code is safe: the first try and two retries');
  wx.storage.set('wxgate.credential', 'v1.kept');
  const post = await client(wx, { baseURL: 'http://127.0.0.1:9' }).request({ url: '/pay', method: 'POST', data: {} }).catch((e) => e);
  assert.equal(post.code, 'NETWORK_ERROR');
  assert.equal(wx.requests.length, 4, 'a POST that may have reached the app is not sent again');
});

test('two mini programs on one sidecar: each logs in as the app its runtime names in the Referer', async () => {
  for (const [appid, version, channel] of [[APPID, '4', 'release'], [APPID_B, '0', 'trial-or-develop']]) {
    const wx = fakeWx({ codes: (n) => `ivy_${n}`, referer: referer(appid, version) });
    const res = await createClient({ baseURL: twoApps, platform: adapters.wx(wx), retry: fast }).request({ url: '/apps' });
    assert.equal(res.statusCode, 200);
    assert.equal(res.data.headers['x-wx-appid'], appid);
    assert.equal(res.data.headers['x-wx-openid'], openid('ivy', appid));
    assert.equal(res.data.headers['x-wxgate-tag-channel'], channel);
  }
  // A runtime with no WeChat Referer gets the error code, not a credential.
  const bare = fakeWx({ codes: (n) => `ivy_${n}` });
  const err = await createClient({ baseURL: twoApps, platform: adapters.wx(bare), retry: fast })
    .request({ url: '/apps' })
    .catch((e) => e);
  assert.ok(err instanceof WxGateError);
  assert.equal(err.code, 'LOGIN_APPID_UNKNOWN');
  // ... unless its login names the AppID in the plugin's appIdParam.
  const named = fakeWx({ codes: (n) => `ivy_${n}` });
  const res = await createClient({
    baseURL: twoApps,
    platform: adapters.wx(named),
    retry: fast,
    loginData: { header: { 'x-mp-appid': APPID_B } },
  }).request({ url: '/apps' });
  assert.equal(res.statusCode, 200);
  assert.equal(res.data.headers['x-wx-appid'], APPID_B);
});

test('a QQ mini program logs in through a platform: qq sidecar with the qq adapter', async () => {
  const before = await qqCalls(sim);
  const q = fakeWx({ codes: (n) => `june_${n}`, referer: referer(QQ_APPID, '2', 'appservice.qq.com') });
  const res = await createClient({ baseURL: qq, platform: adapters.qq(q), retry: fast }).request({ url: '/qq' });
  assert.equal(res.statusCode, 200);
  assert.equal(res.data.headers['x-wx-appid'], QQ_APPID);
  assert.equal(res.data.headers['x-wx-openid'], openid('june', QQ_APPID));
  assert.equal((await qqCalls(sim)) - before, 1, 'the code went to QQ');
});
