// Chromium from Debian for the tests, driven by playwright-core: one launch for every test file.
// Beside other tests, Docker making or removing a network on this machine changes its addresses,
// and Chromium then aborts a navigation in flight with net::ERR_NETWORK_CHANGED (seen when
// remote.test started beside tls.test's browser test), or playwright reports the navigation as
// "interrupted by another navigation to chrome-error://chromewebdata/" (cluster.test, CI of
// b3b0d1f). Every page of a browser launched here goes to a URL again when either happens (at most
// 3 times), printing what chromium's error page said; every other outcome, an error the test
// expects included, is the page's own.
import { chromium, type Browser, type BrowserContext, type Page, type Request } from 'playwright-core'

/** goto's errors that are the network under the browser changing, not the site's answer. */
const NETWORK_CHANGED = /ERR_NETWORK_CHANGED|interrupted by another navigation to "chrome-error:/

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
        console.log(`browser: ${String(a[0])}: ${String(e).split('\n')[0]}; the page says: ${await errorPageText(page)}; going there again`)
      }
    }
  }
  return page
}

/** The text of chromium's error page (its last line is the error's code, e.g. ERR_NETWORK_CHANGED), '' if none. */
async function errorPageText(page: Page): Promise<string> {
  await page.waitForLoadState('load').catch(() => {})
  return (await page.locator('body').innerText().catch(() => '')).replace(/\s+/g, ' ').slice(0, 300)
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

/** A file for a file input, as playwright's setInputFiles takes it. */
export interface FormFile {
  name: string
  mimeType: string
  buffer: Buffer
}

/**
 * Waits for the answer to the POST the next click sends: `answered` (its status, and where it
 * redirects), or why there is none: chromium failed the request (the network under it changed),
 * or nothing came within `ms`.
 */
function postOutcome(page: Page, ms = 20_000): Promise<{ answered?: string; lost?: string }> {
  return new Promise((resolve) => {
    const done = (o: { answered?: string; lost?: string }) => {
      page.off('requestfinished', onFinished)
      page.off('requestfailed', onFailed)
      clearTimeout(timer)
      resolve(o)
    }
    const onFinished = (q: Request) => {
      if (q.method() !== 'POST') return
      void q.response().then(
        (r) => done({ answered: r ? `${r.status()}${r.headers().location ? ` to ${r.headers().location}` : ''}` : 'without a response' }),
        () => done({ answered: 'with an unreadable response' }),
      )
    }
    const onFailed = (q: Request) => {
      if (q.method() === 'POST') done({ lost: `chromium failed it: ${q.failure()?.errorText ?? '?'}` })
    }
    const timer = setTimeout(() => done({ lost: `no answer within ${ms / 1000} s` }), ms)
    page.on('requestfinished', onFinished)
    page.on('requestfailed', onFailed)
  })
}

/**
 * Goes to the form at `path`, fills `fields` (selector -> value) and `files` (selector -> file)
 * and clicks `button`, as a person does; when the post is lost (chromium failed it, or it ended
 * on chromium's own error page: net::ERR_NETWORK_CHANGED, as above), all of it is done again (at
 * most 3 times). The first post may have reached the site anyway: a form that must not be sent
 * twice (a registration) has to accept "already exists" as its answer. Returns the site's answer
 * to the post (status, and where it redirects), for a test's error message.
 */
export async function submitForm(page: Page, path: string, fields: Record<string, string>, button: string, files: Record<string, FormFile> = {}): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    await page.goto(path)
    for (const [selector, value] of Object.entries(fields)) await page.fill(selector, value)
    for (const [selector, file] of Object.entries(files)) await page.setInputFiles(selector, file)
    const outcome = postOutcome(page)
    await page.click(button)
    const { answered, lost } = await outcome
    await page.waitForLoadState('load')
    const said = page.url().startsWith('chrome-error://') ? await errorPageText(page) : undefined
    if (answered !== undefined && said === undefined) return answered
    const why = said !== undefined ? `it ended on chromium's error page (${said})` : `it was lost (${lost})`
    if (attempt >= 3) throw new Error(`${path}: the post failed 3 times; the last time ${why}`)
    console.log(`browser: the post to ${path}: ${why}; sending it again`)
  }
}

/**
 * Uploads `file` through the poster form of the movie page `page` is on (submitForm: sent again
 * after chromium's error page; seen in CI) and returns the new poster's src (the newest is shown
 * first). It waits for the page after the post to show one poster more than before: right after
 * the click, the old page (with older posters) may still be the one a locator reads.
 */
export async function uploadPoster(page: Page, file: FormFile): Promise<string> {
  const before = await page.locator('img.poster').count()
  const answer = await submitForm(page, page.url(), {}, '#upload-button', { '#id_image': file })
  try {
    await page.locator('img.poster').nth(before).waitFor()
  } catch (e) {
    const text = (await page.locator('body').innerText().catch(() => '')).replace(/\s+/g, ' ').slice(0, 400)
    // the page loaded again: a stale page (the site's cache) shows the poster now, a lost upload does not
    const again = await page.reload().then(() => page.locator('img.poster').count(), (err: Error) => `not loaded: ${err.message}`)
    throw new Error(`no new poster on ${page.url()} after the upload (the post was answered ${answer}; ${before} poster(s) before, ${again} on the page loaded again); the page says: ${text}`, { cause: e })
  }
  const src = await page.locator('img.poster').first().getAttribute('src')
  if (!src) throw new Error('the movie page shows a poster without a src')
  return src
}
