// Type-checked (tsc --noEmit), never run: the shipped .d.ts describes the API as documented.
import { createClient, adapters, WxGateError, Response, Platform } from '../lib/index';

declare const wx: Parameters<typeof adapters.wx>[0];

const client = createClient({
  baseURL: 'https://api.example.com',
  loginPath: '/login',
  code: { in: 'header', name: 'js_code' },
  session: { name: 'user_session', returnIn: 'cookie', acceptIn: 'cookie' },
  phone: { in: 'body', name: 'phoneCode', path: '/api/bind-phone' },
  retry: { attempts: 3, maxDelayMs: 5000 },
  platform: adapters.wx(wx),
  onLogin: (credential: string) => void credential,
  onLoginFailed: (err: WxGateError) => void err.code,
});

async function use(): Promise<void> {
  const res: Response<{ items: string[] }> = await client.request<{ items: string[] }>({ url: '/orders', method: 'GET' });
  const items: string[] = res.data.items;
  void items;
  client.request({ url: '/orders', success: (r) => void r.statusCode, fail: (e) => void e.relogin });
  try {
    await client.bindPhone('code-from-button');
  } catch (e) {
    if (e instanceof WxGateError && e.code === 'WX_PHONE_CODE_INVALID') {
      const after: number | undefined = e.retryAfter;
      void after;
    }
  }
  const credential: string | null = client.getCredential();
  void credential;
  client.logout();
  const custom: Platform = {
    login: async () => 'code',
    request: async () => ({ statusCode: 200, data: null, header: {} }),
    getStorage: () => null,
    setStorage: () => undefined,
    removeStorage: () => undefined,
  };
  createClient({ baseURL: 'https://x', platform: custom });
}
void use;
