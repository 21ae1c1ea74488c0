// A webhook receiver as a creator's backend runs it: every POST is verified with the official
// `standardwebhooks` library (signature, timestamp tolerance) and recorded as one JSON line in
// OUT: {"id", "type", "data", "status"} when valid, {"invalid": "<reason>"} when not.
// Driven by origin/tests/api/webhooks.rs.
//
//   node receiver.mjs PORT SECRET OUT [MODE]
//
// MODE `ok` (default) answers 204 to valid deliveries, `fail` answers 500 to everything (a
// broken endpoint). Prints "listening" once it accepts connections.
import { appendFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { Webhook } from 'standardwebhooks'

const [port, secret, out, mode = 'ok'] = process.argv.slice(2)
const wh = new Webhook(secret)

const server = createServer((req, res) => {
  const chunks = []
  req.on('data', (c) => chunks.push(c))
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8')
    if (mode === 'fail') {
      res.writeHead(500).end()
      return
    }
    try {
      const ev = wh.verify(body, req.headers)
      appendFileSync(out, `${JSON.stringify({ id: req.headers['webhook-id'], type: ev.type, data: ev.data })}\n`)
      res.writeHead(204).end()
    } catch (e) {
      appendFileSync(out, `${JSON.stringify({ invalid: String(e && e.message ? e.message : e) })}\n`)
      res.writeHead(400).end()
    }
  })
})
server.listen(Number(port), '127.0.0.1', () => console.log('listening'))
