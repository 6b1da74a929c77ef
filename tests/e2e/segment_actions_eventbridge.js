// Sends Segment events through Segment's own Amazon EventBridge (Actions) destination code
// (@segment/action-destinations, "Send" action): its PutPartnerEvents entries, built by its code
// from its default mapping (Detail = the whole event, DetailType = its type, Time = its
// timestamp), go to the EventBridge endpoint in AWS_ENDPOINT_URL (a moto server; the caller
// sets dummy credentials). The partner source id is what "Create Partner Source" saved: the
// mapping's onMappingSave hook output. Used by tests/e2e/test_segment_eventbridge.py.
//
// stdin:  {"sourceId": str, "accountId": str, "region": str, "events": [...], "batch": bool}
// stdout: {"results": [{"status": int, "message"?: str}], "errors": [str]}
'use strict'

const fs = require('fs')
const { createTestIntegration } = require('@segment/actions-core')
const EventBridge = require('@segment/action-destinations/dist/destinations/amazon-eventbridge').default

async function main() {
  const input = JSON.parse(fs.readFileSync(0, 'utf8'))
  // The destination's name ("Amazon Eventbridge") prefixes the key its payload schema is
  // cached under; the fast-uri in this install reads "Amazon Eventbridge:Send" as a URI with a
  // malformed scheme and refuses it before anything is sent. Only that key changes here.
  const destination = createTestIntegration({ ...EventBridge, name: 'amazon-eventbridge' })
  const settings = { accountId: input.accountId, region: input.region }
  const mapping = { onMappingSave: { outputs: { sourceId: input.sourceId } } }
  const out = { results: [], errors: [] }
  const note = (status, message) => out.results.push(message ? { status, message } : { status })
  try {
    if (input.batch) {
      await destination.testBatchAction('send', {
        events: input.events,
        mapping: { ...mapping, enable_batching: true },
        settings,
        useDefaultMappings: true
      })
      for (const result of destination.results) {
        for (const status of result.multistatus || []) note(status.status, status.errormessage)
      }
    } else {
      for (const event of input.events) {
        await destination.testAction('send', { event, mapping, settings, useDefaultMappings: true })
        note(200)
      }
    }
  } catch (error) {
    out.errors.push(String(error && error.message ? error.message : error))
  }
  process.stdout.write(JSON.stringify(out))
}

main().catch((error) => {
  process.stderr.write(String(error && error.stack ? error.stack : error))
  process.exit(1)
})
