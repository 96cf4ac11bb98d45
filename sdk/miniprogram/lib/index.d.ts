/** Where a code travels on a request (the plugin's `code.in` / `phone.code.in`). */
export type CodeIn = 'header' | 'query' | 'body';
/** Where the sidecar returns the credential (`session.returnIn`). */
export type ReturnIn = 'header' | 'cookie' | 'body';
/** Where the sidecar accepts the credential (`session.acceptIn`). */
export type AcceptIn = 'header' | 'cookie' | 'query';

/** wxgate's error codes (the README's error contract), plus the client's own. */
export type WxGateErrorCode =
  | 'BAD_LOGIN_REQUEST' | 'WX_CODE_INVALID' | 'WX_CODE_USED' | 'WX_USER_BLOCKED'
  | 'WX_RATE_LIMITED' | 'WX_UNAVAILABLE' | 'WX_TIMEOUT' | 'WX_BAD_RESPONSE' | 'WX_CONFIG_ERROR'
  | 'LOGIN_REQUIRED' | 'LOGIN_INVALID' | 'LOGIN_EXPIRED' | 'UPSTREAM_UNAVAILABLE'
  | 'UPSTREAM_TIMEOUT' | 'NOT_READY' | 'BAD_REQUEST' | 'REQUEST_TOO_LARGE' | 'HEADERS_TOO_LARGE'
  | 'WX_PROFILE_INVALID' | 'WX_TOKEN_UNAVAILABLE' | 'BAD_PHONE_REQUEST' | 'WX_PHONE_CODE_INVALID'
  | 'OPEN_API_APPID_UNKNOWN'
  | 'NETWORK_ERROR' | 'NO_CREDENTIAL' | 'LOGIN_REFUSED';

/** The response object of the platform's `request()` (`wx.request`'s success result). */
export interface Response<T = any> {
  statusCode: number;
  data: T;
  header: Record<string, string | string[]>;
  cookies?: string[];
}

/** Options of `client.request`, the shape of `wx.request`'s. */
export interface RequestOptions<T = any> {
  /** Relative to `baseURL`, or absolute. */
  url: string;
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'HEAD' | 'OPTIONS';
  data?: string | object | ArrayBuffer;
  header?: Record<string, string>;
  timeout?: number;
  dataType?: string;
  responseType?: 'text' | 'arraybuffer';
  success?: (res: Response<T>) => void;
  fail?: (err: WxGateError) => void;
  complete?: (resOrErr: Response<T> | WxGateError) => void;
  [option: string]: unknown;
}

/** What the client needs of a platform; `adapters` make one of `wx`, `uni` or Taro. */
export interface Platform {
  login(): Promise<string>;
  request(options: object): Promise<Response>;
  getStorage(key: string): string | null;
  setStorage(key: string, value: string): void;
  removeStorage(key: string): void;
}

/** The subset of `wx` / `uni` / Taro the adapters use. */
export interface PlatformApi {
  login(options: { success?: (res: { code: string }) => void; fail?: (err: any) => void; [k: string]: unknown }): unknown;
  request(options: { success?: (res: any) => void; fail?: (err: any) => void; [k: string]: unknown }): unknown;
  getStorageSync?(key: string): any;
  setStorageSync?(key: string, value: any): void;
  removeStorageSync?(key: string): void;
}

export declare const adapters: {
  wx(wx: PlatformApi): Platform;
  qq(qq: PlatformApi): Platform;
  uni(uni: PlatformApi): Platform;
  taro(taro: PlatformApi): Platform;
};

export interface ClientOptions {
  /** The Service's address, e.g. `https://api.example.com`. */
  baseURL: string;
  /** The plugin's `login.paths` entry to log in on. Default `/login`. */
  loginPath?: string;
  /** The plugin's `code`: where the login code travels. Default `{ in: 'header', name: 'js_code' }`. */
  code?: { in?: CodeIn; name?: string };
  /** The plugin's `session`. Default `{ name: 'user_session', returnIn: 'header', acceptIn: 'header' }`. */
  session?: { name?: string; returnIn?: ReturnIn; acceptIn?: AcceptIn };
  /** The plugin's `phone`: where the phone code travels and the `phone.paths` path of `bindPhone`. */
  phone?: { in?: CodeIn; name?: string; path?: string | null };
  /** Storage key of the credential. Default `wxgate.credential`. */
  storageKey?: string;
  /** Retries of answers with `retryable: true`: at most `attempts` (2), each waiting `Retry-After` capped at `maxDelayMs` (10000), plus jitter. */
  retry?: { attempts?: number; maxDelayMs?: number };
  /** Extra options of the login request (e.g. `data` for the app's login API). */
  loginData?: Partial<RequestOptions>;
  /** The platform; default `adapters.wx(wx)` (or `adapters.qq(qq)`, `adapters.uni(uni)`) when found globally. */
  platform?: Platform;
  onLogin?: (credential: string, res: Response) => void;
  onLoginFailed?: (err: WxGateError) => void;
  /** Every new credential kept (login or renewal). */
  onCredential?: (credential: string) => void;
}

export declare class WxGateError extends Error {
  readonly name: 'WxGateError';
  readonly code: WxGateErrorCode | string;
  readonly statusCode?: number;
  readonly relogin: boolean;
  readonly retryable: boolean;
  readonly retryAfter?: number;
  readonly response?: Response;
}

export declare class Client {
  readonly baseURL: string;
  getCredential(): string | null;
  logout(): void;
  login(extra?: Partial<RequestOptions>): Promise<string>;
  request<T = any>(options: RequestOptions<T>): Promise<Response<T>>;
  bindPhone<T = any>(phoneCode: string, options?: Partial<RequestOptions<T>> & { path?: string }): Promise<Response<T>>;
}

export declare function createClient(options: ClientOptions): Client;
