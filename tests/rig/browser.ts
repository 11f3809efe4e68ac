// Chromium beside other tests: Docker making or removing a network on this machine changes its
// addresses, and Chromium then aborts a navigation in flight with net::ERR_NETWORK_CHANGED (seen
// when remote.test started beside tls.test's browser test). Pages of a browser passed through
// steady() go to a URL again when that happens (at most 3 times); every other outcome, an error
// the test expects included, is the page's own.
import type { Browser, Page } from 'playwright-core'

const NETWORK_CHANGED = /ERR_NETWORK_CHANGED/

/** `browser`, its newPage() giving pages whose goto() tries again after net::ERR_NETWORK_CHANGED. */
export function steady(browser: Browser): Browser {
  const newPage = browser.newPage.bind(browser)
  browser.newPage = async (...args: Parameters<Browser['newPage']>): Promise<Page> => {
    const page = await newPage(...args)
    const goto = page.goto.bind(page)
    page.goto = async (...a: Parameters<Page['goto']>) => {
      for (let attempt = 1; ; attempt++) {
        try {
          return await goto(...a)
        } catch (e) {
          if (attempt >= 3 || !NETWORK_CHANGED.test(String(e))) throw e
        }
      }
    }
    return page
  }
  return browser
}
