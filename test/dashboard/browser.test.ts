// The dashboard end to end in Debian's Chromium: a real broker with the HTTP API and a plugin
// with counters, real mqtt.js clients, and the page driven like a user would.
import test from 'ava'
import type { Page } from 'playwright-core'
import httpApi from '../../plugins/http-api/index.ts'
import webhook from '../../plugins/webhook/index.ts'
import { type Api, apiUrl, client, startApi } from '../http-api/helpers.ts'
import { testBroker } from '../helpers/broker.ts'
import { connectClient, nextMessage, once, type Teardown } from '../helpers/mqtt.ts'
import { baseConf, optionsFrom, Receiver } from '../webhook/receiver.ts'
import { ensureDashboardBuilt, eventually, hasChromium, openBrowser, screenshot } from './helpers.ts'

/** every request the page made to /api, with its Authorization header */
function recordApiCalls (page: Page): Array<{ path: string, authorization: string | undefined }> {
  const calls: Array<{ path: string, authorization: string | undefined }> = []
  page.on('request', (request) => {
    const url = new URL(request.url())
    if (url.pathname.startsWith('/api/')) calls.push({ path: decodeURIComponent(url.pathname), authorization: request.headers().authorization })
  })
  return calls
}

/** The HTTP API plus the webhook plugin, which posts every client message to a local receiver. */
async function apiWithWebhook (t: Teardown): Promise<{ api: Api, receiver: Receiver }> {
  const receiver = await Receiver.start(t)
  const options = await optionsFrom(t, baseConf(receiver) + 'web.hook.rule.message.publish.1={"action": "on_message_publish"}\n')
  const broker = await testBroker(t, {
    plugins: [{ plugin: httpApi, options: { enable: true, port: 0 } }, { plugin: webhook, options }]
  })
  return { api: client(await apiUrl(broker), broker), receiver }
}

async function logIn (page: Page, api: Api): Promise<void> {
  await page.goto(api.url + '/?refresh=0.5')
  await page.getByLabel('User name').fill('admin')
  await page.getByLabel('Password').fill('public')
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByRole('heading', { name: 'Overview' }).waitFor()
}

if (!hasChromium) {
  test.skip('dashboard in a browser: skipped, /usr/bin/chromium is missing (apt-get install chromium)', () => {})
} else {
  test.before(() => ensureDashboardBuilt())

  test.serial('logs in, shows a new subscription in the topic tree, switches the webhook plugin off', async (t) => {
    const { api, receiver } = await apiWithWebhook(t)
    const { page } = await openBrowser(t)
    const errors: string[] = []
    page.on('pageerror', (err) => errors.push(err.message))
    const calls = recordApiCalls(page)

    // the login form: wrong credentials are refused, right ones open the overview
    await page.goto(api.url + '/?refresh=0.5')
    await page.getByLabel('User name').fill('admin')
    await page.getByLabel('Password').fill('wrong')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByText('Wrong user name or password.').waitFor()
    await page.getByLabel('Password').fill('public')
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByRole('heading', { name: 'Overview' }).waitFor()
    await page.getByTestId('overview-stats').waitFor()

    // the topic tree starts empty, then shows what a real client subscribes to
    await page.getByRole('link', { name: 'Topic tree' }).click()
    await page.getByText('No subscriptions yet').waitFor()
    const subscriber = await connectClient(t, api.broker.url, { clientId: 'dash-sub' })
    await subscriber.subscribeAsync('plant/+/temperature')
    const row = page.locator('[data-filter="plant/+/temperature"]')
    await row.waitFor()
    t.is(await row.locator('.chip').innerText(), 'dash-sub')
    // a retained message and live traffic show up in the same row
    const publisher = await connectClient(t, api.broker.url, { clientId: 'dash-pub' })
    await publisher.publishAsync('plant/boiler/temperature', '71', { retain: true })
    await eventually(async () => (await row.locator('.num').nth(1).innerText()) === '1', 'the retained count')
    const rateCell = row.locator('.num').nth(2)
    await eventually(async () => (await rateCell.innerText()) === '0', 'a rate of 0 while nothing is published')
    const traffic = setInterval(() => publisher.publish('plant/boiler/temperature', '72'), 20)
    t.teardown(() => clearInterval(traffic))
    const rate = await eventually(async () => {
      const text = await rateCell.innerText()
      return Number.parseFloat(text) > 0 && text
    }, 'a message rate in the row')
    clearInterval(traffic)
    t.true(Number.parseFloat(rate) > 0)
    // the publish counter behind it saw the traffic
    const published = page.locator('tr', { hasText: 'plant/boiler/temperature' }).locator('.num').first()
    t.true(Number((await published.innerText()).replace('k', '')) > 1)
    // the search keeps matches and their parents
    await subscriber.subscribeAsync('office/lights')
    await page.locator('[data-filter="office/lights"]').waitFor()
    await page.getByLabel('Search the topic tree').fill('temperature')
    await page.locator('[data-filter="office/lights"]').waitFor({ state: 'detached' })
    t.true(await row.isVisible())
    await page.getByLabel('Search the topic tree').fill('')
    await screenshot(page, 'dashboard-topic-tree')

    // the webhook's counters: what it delivered to the receiver
    await page.getByRole('link', { name: 'Plugins' }).click()
    const card = page.locator('[data-plugin="tapmq:webhook"]')
    await receiver.count(1)
    const sent = card.locator('.counter', { hasText: 'sent' }).locator('dd')
    await eventually(async () => Number(await sent.innerText()) >= 1, 'the webhook\'s sent counter on the page', 20_000)
    await card.locator('.counter', { hasText: 'queue depth' }).waitFor()

    // the switch goes through PUT /api/v4/plugins/:name/disable
    const toggle = page.getByRole('switch', { name: 'Enable tapmq:webhook' })
    t.true(await toggle.isChecked())
    t.true(await page.getByRole('switch', { name: 'Enable tapmq:http-api' }).isDisabled(), 'the API cannot switch itself off')
    await page.locator('.switch', { has: toggle }).click()
    await eventually(async () => (await api.get('/api/v4/plugins/tapmq:webhook')).json.data.state === 'disabled', 'the webhook to be disabled')
    await card.getByText('disabled', { exact: true }).waitFor()
    t.false(await toggle.isChecked())
    t.true(calls.some((call) => call.path === '/api/v4/plugins/tapmq:webhook/disable'))
    await screenshot(page, 'dashboard-plugins')

    // and back on
    await page.locator('.switch', { has: toggle }).click()
    await eventually(async () => (await api.get('/api/v4/plugins/tapmq:webhook')).json.data.state === 'running', 'the webhook to run again')
    await card.getByText('running', { exact: true }).waitFor()

    await page.getByRole('link', { name: 'Overview' }).click()
    await page.locator('.chart canvas').first().waitFor()
    await screenshot(page, 'dashboard-overview')

    // every API call carried the credentials; the page itself threw nothing
    // (the one exception: the refused login, with the wrong password)
    const basic = (password: string) => 'Basic ' + Buffer.from(`admin:${password}`).toString('base64')
    t.true(calls.length > 10)
    t.deepEqual(calls.filter((call) => call.authorization !== basic('public')), [{ path: '/api/v4/brokers', authorization: basic('wrong') }])
    t.deepEqual(errors, [])
  })

  test.serial('clients can be filtered and disconnected; the publish form reaches subscribers', async (t) => {
    const api = await startApi(t)
    const keep = await connectClient(t, api.broker.url, { clientId: 'sensor-keep', username: 'plant' })
    const kick = await connectClient(t, api.broker.url, { clientId: 'sensor-kick', reconnectPeriod: 0 })
    await kick.subscribeAsync('plant/alarm', { qos: 1 })
    const { page } = await openBrowser(t)
    await logIn(page, api)

    await page.getByRole('link', { name: 'Clients' }).click()
    const table = page.getByRole('table', { name: 'Clients' })
    await table.locator('[data-client="sensor-keep"]').waitFor()
    const kickRow = table.locator('[data-client="sensor-kick"]')
    t.regex(await kickRow.innerText(), /plant\/alarm/)
    await page.getByLabel('Filter clients').fill('kick')
    await table.locator('[data-client="sensor-keep"]').waitFor({ state: 'detached' })
    await screenshot(page, 'dashboard-clients')

    const closed = once(kick, 'close')
    await kickRow.getByRole('button', { name: 'Disconnect' }).click()
    await kickRow.getByRole('button', { name: 'Confirm' }).click()
    await closed
    await page.getByText('Disconnected sensor-kick.').waitFor()
    await kickRow.waitFor({ state: 'detached' })
    t.truthy(api.broker.broker.client('sensor-keep'))
    t.is(api.broker.broker.client('sensor-kick'), undefined)

    await keep.subscribeAsync('dashboard/test')
    await page.getByRole('link', { name: 'Publish' }).click()
    await page.getByLabel('Topic', { exact: true }).fill('dashboard/test')
    await page.getByLabel('Payload', { exact: true }).fill('hello from a browser')
    const message = nextMessage(keep)
    await page.getByRole('button', { name: 'Publish' }).click()
    const [topic, payload] = await message
    t.is(topic, 'dashboard/test')
    t.is(payload.toString(), 'hello from a browser')
    await page.getByText('Published 20 bytes to dashboard/test').waitFor()
  })
}
