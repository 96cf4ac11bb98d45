'use strict';
// A real WeChat simulator, echo app and wxgate sidecars on 127.0.0.1 (the binaries the Rust
// build made), and a `wx` stand-in whose login() hands out simulator codes and whose request()
// does real HTTP with Node's own client: the only stand-in is the mini-program runtime.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const BIN = process.env.WXGATE_BIN_DIR || path.join(__dirname, '..', '..', '..', 'target', 'debug');
const APPID = 'wx0123456789abcdef';
const SECRET = 'sdk-test-secret';
/** A second mini program, and a QQ one, the simulator knows. */
const APPID_B = 'wx00000000000000bb';
const QQ_APPID = '1109876543';
const KID = Buffer.from([0x0a, 0x0b, 0x0c, 0x0d]);
const KEY = Buffer.alloc(32, 7);
const children = [];

function start(bin, args, ready) {
  const file = path.join(BIN, bin);
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: build it with cargo build -p wxgate-sidecar -p wxgate-sim`);
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${bin} did not start:\n${out}`)), 20000);
    const onData = (chunk) => {
      out += chunk;
      const found = ready(out);
      if (found) {
        clearTimeout(timer);
        resolve(found);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${bin} exited (${code}):\n${out}`)));
  });
}

const printed = (re) => (out) => {
  const m = out.match(re);
  return m && m[1];
};

async function startSim() {
  const apps = [APPID, APPID_B, QQ_APPID].flatMap((id) => ['--app', `${id}:${SECRET}`]);
  return start('wxgate-wechat-sim', ['--listen', '127.0.0.1:0', ...apps], printed(/on http:\/\/(\S+)/));
}

async function startApp() {
  return start('wxgate-echo-app', ['--listen', '127.0.0.1:0'], printed(/on http:\/\/(\S+)/));
}

/**
 * A sidecar whose plugin's wechatMpLogin block ends with `more` (YAML indented by 4) and names
 * its mini programs with `apps` (default: APPID with the Secret `creds`, which holds SECRET).
 */
async function startSidecar({ sim, app, more = '', apps = `    appId: ${APPID}\n    credentialsSecretRef: { name: creds }\n` }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wxgate-sdk-'));
  fs.writeFileSync(path.join(dir, 'wxgate.yaml'), `apiVersion: wxgate.dev/v1alpha1
kind: GatewayPlugin
metadata: { name: mp-login }
spec:
  type: WeChatMpLogin
  wechatMpLogin:
${apps}    login: { paths: [/login] }
${more}---
apiVersion: wxgate.dev/v1alpha1
kind: PluginBinding
metadata: { name: shop }
spec:
  pluginRef: { name: mp-login }
  targetRef: { kind: Service, name: shop-api }
---
apiVersion: v1
kind: Secret
metadata: { name: creds }
stringData: { appsecret: ${SECRET} }
---
apiVersion: v1
kind: Secret
metadata: { name: mp-login-credential-keys }
data:
  active: ${Buffer.from(KID.toString('hex')).toString('base64')}
  "${KID.toString('hex')}": ${KEY.toString('base64')}
`);
  const line = await start('wxgate-sidecar', [
    '--manifests', dir, '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0',
    '--upstream', `http://${app}`, '--wechat-api-base', `http://${sim}`, '--qq-api-base', `http://${sim}/qq`,
    '--wechat-retry-delay-ms', '10', '--access-log', 'false', '--log-format', 'json',
  ], (out) => out.split('\n').slice(0, -1).find((l) => l.includes('wxgate sidecar listening')));
  const fields = JSON.parse(line);
  for (let i = 0; i < 200; i++) {
    const r = await fetch(`http://${fields.admin}/ready`).catch(() => null);
    if (r && r.ok) return `http://${fields.traffic}`;
    await new Promise((res) => setTimeout(res, 20));
  }
  throw new Error('the sidecar did not become ready');
}

function stopAll() {
  for (const child of children) child.kill('SIGKILL');
}

/** code2Session calls the simulator received in all (WeChat's and QQ's). */
async function wechatCalls(sim) {
  const r = await fetch(`http://${sim}/sim/calls`);
  return (await r.json()).total;
}

/** code2Session calls the simulator received at QQ's endpoint. */
async function qqCalls(sim) {
  const r = await fetch(`http://${sim}/sim/calls`);
  return (await r.json()).qq;
}

/**
 * A `wx` (or `qq`) stand-in: `codes` hands out login codes (a function of the call number);
 * `referer`, when given, is sent on every request as the runtime does
 * (`https://servicewechat.com/{appid}/{version}/page-frame.html`, QQ's on appservice.qq.com).
 */
function fakeWx({ codes = (n) => `user_${n}`, referer } = {}) {
  const storage = new Map();
  const wx = {
    logins: 0,
    requests: [],
    storage,
    login({ success, fail }) {
      wx.logins += 1;
      const n = wx.logins;
      setTimeout(() => {
        try {
          success({ code: codes(n), errMsg: 'login:ok' });
        } catch (e) {
          fail({ errMsg: `login:fail ${e.message}` });
        }
      }, 5);
    },
    request({ url, method = 'GET', data, header = {}, success, fail }) {
      const headers = Object.assign({}, header);
      if (referer) headers.Referer = referer;
      let body;
      let target = url;
      if (data !== undefined && data !== null) {
        if (method === 'GET' && typeof data === 'object') {
          const q = new URLSearchParams(data).toString();
          target += (target.includes('?') ? '&' : '?') + q;
        } else if (typeof data === 'object') {
          body = JSON.stringify(data);
          if (!Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
        } else {
          body = String(data);
        }
      }
      wx.requests.push({ url: target, method, headers });
      fetch(target, { method, headers, body, redirect: 'manual' }).then(async (r) => {
        const text = await r.text();
        const h = {};
        r.headers.forEach((v, k) => {
          if (k !== 'set-cookie') h[k] = v;
        });
        const joined = r.headers.get('set-cookie');
        const cookies = typeof r.headers.getSetCookie === 'function' ? r.headers.getSetCookie() : joined ? [joined] : [];
        if (cookies.length) h['Set-Cookie'] = cookies.join(', ');
        let parsed = text;
        try {
          parsed = JSON.parse(text);
        } catch (_) {
          // not JSON: the text, as wx.request gives it
        }
        success({ statusCode: r.status, data: parsed, header: h, cookies, errMsg: 'request:ok' });
      }, (err) => fail({ errMsg: `request:fail ${err.message}` }));
    },
    getStorageSync: (k) => (storage.has(k) ? storage.get(k) : ''),
    setStorageSync: (k, v) => storage.set(k, v),
    removeStorageSync: (k) => storage.delete(k),
  };
  return wx;
}

/** A credential minted with the README's layout (the test key ring), e.g. already expired. */
function mint(claims, plugin = 'default/mp-login') {
  const len = (b) => {
    const l = Buffer.alloc(4);
    l.writeUInt32BE(b.length);
    return Buffer.concat([l, b]);
  };
  const aad = Buffer.concat([Buffer.from('wxgate/v1'), len(KID), len(Buffer.from(APPID)), len(Buffer.from(plugin))]);
  const nonce = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', KEY, nonce);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(JSON.stringify(claims)), cipher.final(), cipher.getAuthTag()]);
  return `v1.${Buffer.concat([KID, nonce, ct]).toString('base64url')}`;
}

module.exports = { APPID, APPID_B, QQ_APPID, startSim, startApp, startSidecar, stopAll, wechatCalls, qqCalls, fakeWx, mint };
