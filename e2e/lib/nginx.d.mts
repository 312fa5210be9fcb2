// Types of nginx.mjs, for the TypeScript client's tests.

export type NginxMode = 'passing' | 'refusing' | 'killing';

export interface NginxOptions {
  mode: NginxMode;
  /** The Host header passed upstream: `$host` (default) or `$http_host`. */
  host?: string;
  /** The killing mode's read timeout, in nginx's syntax (default `1s`). */
  silence?: string;
  /** How long nginx may take to answer `/api/health` (default 30 s). */
  waitMs?: number;
}

export declare class Nginx {
  readonly url: string;
  static start(upstream: string, options: NginxOptions): Promise<Nginx>;
  get log(): string;
  stop(): Promise<void>;
}
