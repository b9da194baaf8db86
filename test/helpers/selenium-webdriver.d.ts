// The part of selenium-webdriver (which ships no types) that test/helpers/browsers.ts uses to drive WebKitGTK.
declare module 'selenium-webdriver' {
  export class Builder {
    usingServer(url: string): this;
    withCapabilities(capabilities: Record<string, unknown>): this;
    build(): WebDriver;
  }
  export interface WebDriver {
    get(url: string): Promise<void>;
    executeAsyncScript<T>(script: string, ...args: unknown[]): Promise<T>;
    getCapabilities(): Promise<{ get(name: string): unknown }>;
    manage(): { setTimeouts(timeouts: { script?: number; pageLoad?: number }): Promise<void> };
    quit(): Promise<void>;
  }
}
