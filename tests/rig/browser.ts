// Chromium from Debian for the tests, driven by playwright-core: one launch for every test file.
// Beside other tests, Docker making or removing a network on this machine changes its addresses,
// and Chromium then aborts a navigation in flight with net::ERR_NETWORK_CHANGED (seen when
// remote.test started beside tls.test's browser test). Every page of a browser launched here goes
// to a URL again when that happens (at most 3 times); every other outcome, an error the test
// expects included, is the page's own.
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'

const NETWORK_CHANGED = /ERR_NETWORK_CHANGED/

/** The switches every test browser gets (headless in a container, no background traffic). */
const ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

/** `page`, its goto() trying again after net::ERR_NETWORK_CHANGED. */
function steadyPage(page: Page): Page {
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

function steadyContext(context: BrowserContext): BrowserContext {
  const newPage = context.newPage.bind(context)
  context.newPage = async () => steadyPage(await newPage())
  return context
}

/** Headless chromium (CHROMIUM, else /usr/bin/chromium); `home`: its HOME (a trust store); `args`: more switches. */
export async function launchChromium(o: { home?: string; args?: string[] } = {}): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    ...(o.home ? { env: { ...process.env, HOME: o.home } } : {}),
    args: [...ARGS, ...(o.args ?? [])],
  })
  const newPage = browser.newPage.bind(browser)
  browser.newPage = async (...a: Parameters<Browser['newPage']>) => steadyPage(await newPage(...a))
  const newContext = browser.newContext.bind(browser)
  browser.newContext = async (...a: Parameters<Browser['newContext']>) => steadyContext(await newContext(...a))
  return browser
}
