// Sends Segment events to a URL through Segment's own Webhooks (Actions) destination code
// (@segment/action-destinations, "Send" action), so the request body, the X-Signature and the
// headers are exactly what Segment produces. Used by tests/e2e/test_segment_clients.py.
//
// stdin:  {"url": str, "events": [...], "batch": bool, "sharedSecret"?: str, "headers"?: {}}
// stdout: {"responses": [{"status": int, "body": any}], "errors": [{"status": int|null, "message": str}]}
'use strict'

const fs = require('fs')
const { createTestIntegration } = require('@segment/actions-core')
const Webhook = require('@segment/action-destinations/dist/destinations/webhook').default

async function main() {
  const input = JSON.parse(fs.readFileSync(0, 'utf8'))
  const destination = createTestIntegration(Webhook)
  const settings = input.sharedSecret ? { sharedSecret: input.sharedSecret } : {}
  const mapping = { url: input.url }
  if (input.headers) mapping.headers = input.headers
  const out = { responses: [], errors: [] }
  const record = (response) => out.responses.push({ status: response.status, body: response.data ?? null })
  const fail = (error) =>
    out.errors.push({ status: error.response ? error.response.status : null, message: String(error.message) })

  if (input.batch) {
    try {
      const responses = await destination.testBatchAction('send', {
        events: input.events,
        mapping,
        settings,
        useDefaultMappings: true
      })
      responses.forEach(record)
      for (const result of destination.results) {
        for (const status of result.multistatus || []) {
          if (status.status >= 300) out.errors.push({ status: status.status, message: String(status.errormessage) })
        }
      }
    } catch (error) {
      fail(error)
    }
  } else {
    for (const event of input.events) {
      try {
        const responses = await destination.testAction('send', { event, mapping, settings, useDefaultMappings: true })
        responses.forEach(record)
      } catch (error) {
        fail(error)
      }
    }
  }
  process.stdout.write(JSON.stringify(out))
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error))
  process.exit(1)
})
