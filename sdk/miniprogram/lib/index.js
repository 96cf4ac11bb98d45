'use strict';
/**
 * wxgate-miniprogram: the mini-program side of wxgate's login contract.
 *
 * A client logs in with the platform's `login()` (wx.login, uni.login, Taro.login), keeps the
 * credential the wxgate sidecar issues, attaches it to every request, and on an answer whose
 * body says `relogin: true` logs in again exactly once however many requests failed at that
 * moment, then retries each of them once. Answers with `retryable: true` are retried after
 * `Retry-After` (bounded, with jitter). No runtime dependencies; no Node APIs.
 */

const DEFAULTS = {
  loginPath: '/login',
  code: { in: 'header', name: 'js_code' },
  session: { name: 'user_session', returnIn: 'header', acceptIn: 'header' },
  phone: { in: 'header', name: 'phone_code', path: null },
  storageKey: 'wxgate.credential',
  retry: { attempts: 2, maxDelayMs: 10000 },
};

const CODE_IN = ['header', 'query', 'body'];
const RETURN_IN = ['header', 'cookie', 'body'];
const ACCEPT_IN = ['header', 'cookie', 'query'];

/** An answer of the wxgate sidecar's error contract, or a request that got no answer. */
class WxGateError extends Error {
  constructor(code, message, details) {
    super(message);
    this.name = 'WxGateError';
    /** The wxgate error code (`LOGIN_EXPIRED`, `WX_CODE_USED`, ...), or `NETWORK_ERROR`. */
    this.code = code;
    this.statusCode = details.statusCode;
    this.relogin = Boolean(details.relogin);
    this.retryable = Boolean(details.retryable);
    /** Seconds the sidecar asked to wait, when it did. */
    this.retryAfter = details.retryAfter;
    /** The platform's response object, when there was one. */
    this.response = details.response;
  }
}

/** Platform adapters: the same logic on WeChat (`wx`), QQ (`qq`), uni-app (`uni`) and Taro. */
const adapters = {
  /** WeChat's `wx` object. */
  wx(wx) {
    return callbackAdapter(wx, {});
  },
  /** QQ's `qq` object (a QQ mini program; the sidecar's plugin has `platform: qq`). */
  qq(qq) {
    return callbackAdapter(qq, {});
  },
  /** uni-app's `uni` object (logs in with the `weixin` provider). */
  uni(uni) {
    return callbackAdapter(uni, { provider: 'weixin' });
  },
  /** Taro (`import Taro from '@tarojs/taro'`), whose APIs also take callbacks. */
  taro(taro) {
    return callbackAdapter(taro, {});
  },
};

function callbackAdapter(api, loginOptions) {
  if (!api || typeof api.login !== 'function' || typeof api.request !== 'function') {
    throw new TypeError('wxgate: the platform object needs login() and request()');
  }
  return {
    login() {
      return new Promise((resolve, reject) => {
        api.login(Object.assign({}, loginOptions, {
          success: (res) => (res && res.code ? resolve(res.code) : reject(new Error('login() gave no code'))),
          fail: (err) => reject(err instanceof Error ? err : new Error((err && err.errMsg) || 'login() failed')),
        }));
      });
    },
    request(options) {
      return new Promise((resolve, reject) => {
        api.request(Object.assign({}, options, {
          success: resolve,
          fail: (err) => reject(err instanceof Error ? err : new Error((err && err.errMsg) || 'request() failed')),
        }));
      });
    },
    getStorage(key) {
      try {
        return api.getStorageSync ? api.getStorageSync(key) || null : null;
      } catch (_) {
        return null;
      }
    },
    setStorage(key, value) {
      if (api.setStorageSync) api.setStorageSync(key, value);
    },
    removeStorage(key) {
      if (api.removeStorageSync) api.removeStorageSync(key);
    },
  };
}

function defaultPlatform() {
  const g = typeof globalThis !== 'undefined' ? globalThis : {};
  if (g.wx && typeof g.wx.login === 'function') return adapters.wx(g.wx);
  if (g.qq && typeof g.qq.login === 'function') return adapters.qq(g.qq);
  if (g.uni && typeof g.uni.login === 'function') return adapters.uni(g.uni);
  throw new TypeError('wxgate: no platform found: pass createClient({ platform: adapters.wx(wx) })');
}

function check(value, allowed, what) {
  if (!allowed.includes(value)) {
    throw new TypeError(`wxgate: ${what} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`);
  }
}

/** The value of a header, whatever its case. */
function header(headers, name) {
  if (!headers) return undefined;
  const lower = name.toLowerCase();
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() === lower) return headers[key];
  }
  return undefined;
}

/** A cookie's value out of a response's `cookies` array or `Set-Cookie` header(s). */
function cookie(res, name) {
  let lines = [];
  if (Array.isArray(res.cookies)) lines = lines.concat(res.cookies.map(String));
  const set = header(res.header, 'set-cookie');
  if (Array.isArray(set)) lines = lines.concat(set);
  else if (typeof set === 'string') lines = lines.concat(set.split(/,(?=\s*[^;=,\s]+=)/));
  for (const line of lines) {
    const first = line.split(';')[0];
    const eq = first.indexOf('=');
    if (eq > 0 && first.slice(0, eq).trim() === name) return first.slice(eq + 1).trim();
  }
  return undefined;
}

function withQuery(url, name, value) {
  const sep = url.includes('?') ? '&' : '?';
  return `${url}${sep}${encodeURIComponent(name)}=${encodeURIComponent(value)}`;
}

/**
 * Whether a retryable answer may be retried for this method: always, except where the app may
 * have acted on the request already (no answer at all, or the app's own timeout) and the method
 * is not idempotent.
 */
function safeToRetry(method, code) {
  const m = (method || 'GET').toUpperCase();
  const idempotent = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'].includes(m);
  return idempotent || (code !== 'NETWORK_ERROR' && code !== 'UPSTREAM_TIMEOUT');
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The wxgate error body of an answer, if it is one. */
function errorOf(res) {
  let body = res.data;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch (_) {
      body = null;
    }
  }
  // Only the sidecar sets x-wxgate-error (it strips the app's): an app's own 4xx is an answer.
  const code = header(res.header, 'x-wxgate-error');
  if (!code || res.statusCode < 400) return null;
  const retryAfter = Number(header(res.header, 'retry-after'));
  return new WxGateError(code, (body && body.message) || code, {
    statusCode: res.statusCode,
    relogin: body && body.relogin,
    retryable: body && body.retryable,
    retryAfter: Number.isFinite(retryAfter) ? retryAfter : undefined,
    response: res,
  });
}

class Client {
  constructor(options) {
    if (!options || typeof options.baseURL !== 'string' || !options.baseURL) {
      throw new TypeError('wxgate: createClient needs a baseURL');
    }
    this.baseURL = options.baseURL.replace(/\/+$/, '');
    this.loginPath = options.loginPath || DEFAULTS.loginPath;
    this.code = Object.assign({}, DEFAULTS.code, options.code);
    this.session = Object.assign({}, DEFAULTS.session, options.session);
    this.phone = Object.assign({}, DEFAULTS.phone, options.phone);
    this.storageKey = options.storageKey || DEFAULTS.storageKey;
    this.retry = Object.assign({}, DEFAULTS.retry, options.retry);
    this.loginData = options.loginData;
    this.platform = options.platform || defaultPlatform();
    this.hooks = {
      onLogin: options.onLogin,
      onLoginFailed: options.onLoginFailed,
      onCredential: options.onCredential,
    };
    check(this.code.in, CODE_IN, 'code.in');
    check(this.session.returnIn, RETURN_IN, 'session.returnIn');
    check(this.session.acceptIn, ACCEPT_IN, 'session.acceptIn');
    check(this.phone.in, CODE_IN, 'phone.in');
    this._credential = this.platform.getStorage(this.storageKey) || null;
    this._login = null;
  }

  /** The credential kept now, or null. */
  getCredential() {
    return this._credential;
  }

  /** Forgets the credential here (the sidecar keeps no session to end). */
  logout() {
    this._credential = null;
    this.platform.removeStorage(this.storageKey);
  }

  /**
   * Logs in: `login()` of the platform, then the login request. Concurrent calls share one
   * login. Resolves with the credential.
   */
  login(extra) {
    if (!this._login) {
      this._login = this._doLogin(extra).then(
        (credential) => {
          this._login = null;
          return credential;
        },
        (err) => {
          this._login = null;
          if (this.hooks.onLoginFailed) this.hooks.onLoginFailed(err);
          throw err;
        },
      );
    }
    return this._login;
  }

  async _doLogin(extra) {
    // A spent or refused login code (relogin: true) gets one fresh code; unavailability is
    // retried with the same code after Retry-After, up to retry.attempts times.
    let freshCodes = 1;
    let retries = 0;
    let code = await this.platform.login();
    for (;;) {
      // A login code sent again within its five minutes gets wxgate's first answer, so a login
      // that got no answer is safe to send again.
      const sent = await this._attempt(this._loginRequest(code, extra));
      const res = sent.res;
      const err = sent.err || errorOf(res);
      if (!err && res.statusCode >= 200 && res.statusCode < 300) {
        const credential = this._credentialOf(res);
        if (!credential) {
          throw new WxGateError('NO_CREDENTIAL', 'the login answer carries no credential', {
            statusCode: res.statusCode,
            response: res,
          });
        }
        this._store(credential);
        if (this.hooks.onLogin) this.hooks.onLogin(credential, res);
        return credential;
      }
      if (!err) {
        throw new WxGateError('LOGIN_REFUSED', `the login answer was HTTP ${res.statusCode}`, {
          statusCode: res.statusCode,
          response: res,
        });
      }
      if (err.relogin && freshCodes > 0) {
        freshCodes -= 1;
        code = await this.platform.login();
        continue;
      }
      if (err.retryable && retries < this.retry.attempts) {
        retries += 1;
        await this._backoff(err, retries);
        continue;
      }
      throw err;
    }
  }

  _loginRequest(code, extra) {
    const options = Object.assign({ method: 'POST', header: {} }, this.loginData, extra);
    options.header = Object.assign({}, options.header);
    options.url = this.baseURL + this.loginPath;
    this._put(options, this.code, code);
    return options;
  }

  /** Puts a parameter where a code travels (header, query, body field). */
  _put(options, where, value) {
    if (where.in === 'header') {
      options.header[where.name] = value;
    } else if (where.in === 'query') {
      options.url = withQuery(options.url, where.name, value);
    } else {
      const data = options.data && typeof options.data === 'object' ? Object.assign({}, options.data) : {};
      data[where.name] = value;
      options.data = data;
      if (!header(options.header, 'content-type')) options.header['content-type'] = 'application/json';
    }
  }

  _credentialOf(res) {
    const name = this.session.name;
    const fromHeader = header(res.header, name);
    if (this.session.returnIn === 'cookie') return cookie(res, name) || fromHeader || null;
    if (this.session.returnIn === 'body' && res.data && typeof res.data === 'object' && typeof res.data[name] === 'string') {
      return res.data[name];
    }
    return fromHeader || null;
  }

  _store(credential) {
    if (credential === this._credential) return;
    this._credential = credential;
    this.platform.setStorage(this.storageKey, credential);
    if (this.hooks.onCredential) this.hooks.onCredential(credential);
  }

  _attach(options, credential) {
    const name = this.session.name;
    if (this.session.acceptIn === 'header') {
      options.header[name] = credential;
    } else if (this.session.acceptIn === 'cookie') {
      const existing = header(options.header, 'cookie');
      options.header.Cookie = (existing ? `${existing}; ` : '') + `${name}=${credential}`;
    } else {
      options.url = withQuery(options.url, name, credential);
    }
  }

  /** Sends a request: `{ res }`, or `{ err }` (NETWORK_ERROR) when it got no answer. */
  async _attempt(options) {
    try {
      return { res: await this.platform.request(options) };
    } catch (e) {
      const err = new WxGateError('NETWORK_ERROR', (e && e.message) || 'the request failed', {
        retryable: true,
        response: undefined,
      });
      return { err };
    }
  }

  async _backoff(err, attempt) {
    const asked = err.retryAfter !== undefined ? err.retryAfter * 1000 : 500 * 2 ** (attempt - 1);
    const wait = Math.min(asked, this.retry.maxDelayMs);
    await sleep(wait + Math.random() * Math.min(wait, 250));
  }

  /**
   * A request with the shape of `wx.request`: `url` is relative to `baseURL` (or absolute).
   * Resolves with the platform's response; rejects with a WxGateError for an answer of the
   * sidecar's error contract. With `success` / `fail` / `complete` callbacks it calls them too.
   */
  request(options) {
    const promise = this._request(options || {});
    const { success, fail, complete } = options || {};
    if (success || fail || complete) {
      promise.then(
        (res) => {
          if (success) success(res);
          if (complete) complete(res);
        },
        (err) => {
          if (fail) fail(err);
          if (complete) complete(err);
        },
      );
    }
    return promise;
  }

  async _request(options, put) {
    let credential = this._credential || (await this.login());
    let relogged = false;
    let retries = 0;
    for (;;) {
      const req = Object.assign({}, options);
      delete req.success;
      delete req.fail;
      delete req.complete;
      req.header = Object.assign({}, options.header);
      req.url = /^https?:\/\//.test(options.url || '') ? options.url : this.baseURL + (options.url || '/');
      if (put) put(req);
      this._attach(req, credential);
      const sent = await this._attempt(req);
      const res = sent.res;
      const err = sent.err || errorOf(res);
      if (!err) {
        const renewed = res.statusCode < 300 ? this._credentialOf(res) : null;
        if (renewed) this._store(renewed);
        return res;
      }
      if (err.relogin && !relogged) {
        relogged = true;
        // Another request may have logged in already: use its credential, else log in (shared).
        credential = this._credential && this._credential !== credential ? this._credential : await this._relogin(credential);
        continue;
      }
      if (err.retryable && retries < this.retry.attempts && safeToRetry(req.method, err.code)) {
        retries += 1;
        await this._backoff(err, retries);
        continue;
      }
      throw err;
    }
  }

  /** One login for every request that found `stale` refused at the same moment. */
  _relogin(stale) {
    if (this._credential === stale) {
      this._credential = null;
      this.platform.removeStorage(this.storageKey);
    }
    return this._credential ? Promise.resolve(this._credential) : this.login();
  }

  /**
   * Sends a phone code from `<button open-type="getPhoneNumber">` (`e.detail.code`) to the
   * plugin's `phone.paths` path with the credential; wxgate exchanges it and the app receives
   * the number. Resolves with the response (a credential holding the number is stored when the
   * plugin keeps it).
   */
  bindPhone(phoneCode, options) {
    const path = (options && options.path) || this.phone.path;
    if (!path) return Promise.reject(new TypeError('wxgate: bindPhone needs phone.path (a phone.paths path of the plugin)'));
    const req = Object.assign({ method: 'POST' }, options, { url: path });
    return this._request(req, (r) => this._put(r, this.phone, phoneCode));
  }
}

/** A client; the options mirror the GatewayPlugin's fields (see the README). */
function createClient(options) {
  return new Client(options);
}

module.exports = { createClient, Client, WxGateError, adapters };
