// Uploads one file to StreamGate's origin with the real tus-js-client (Node), as a creator's
// app would, and prints what happened as JSON on stdout. Driven by origin/tests/api/tus_js.rs.
//
//   node tus.mjs '{"endpoint":"http://…/v1/uploads","token":"…","contentId":"…","file":"/path",
//                  "chunkSize":1048576,"checksum":"sha1"|"sha256"|"wrong-sha256"|null,
//                  "deferLength":false,"parallel":1,"retryDelays":[0,100,…]}'
//
// With a checksum, every PATCH carries `Upload-Checksum` over exactly the bytes it sends
// ("wrong-…" flips one bit of the digest to see the server refuse it). With deferLength the
// upload is created without a length (tus creation-defer-length) and the last PATCH states it.
// With parallel > 1 the file goes up as that many partial uploads at once, then one final
// upload concatenates them (tus concatenation).
// (The file is given as a Buffer: tus-js-client 4.3.1 with a Node stream whose size is not
// known waits forever for the stream's end after its last chunk.)
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import * as tus from 'tus-js-client'

const o = JSON.parse(process.argv[2])
const data = readFileSync(o.file)
const chunkSize = o.chunkSize ?? Number.POSITIVE_INFINITY
const requests = []
const retries = []

function checksumOf(offset) {
  const [wrong, algo] = o.checksum.startsWith('wrong-') ? [true, o.checksum.slice(6)] : [false, o.checksum]
  const body = data.subarray(offset, Math.min(offset + chunkSize, data.length))
  const digest = createHash(algo).update(body).digest()
  if (wrong) digest[0] ^= 1
  return `${algo} ${digest.toString('base64')}`
}

const result = await new Promise((resolve) => {
  const upload = new tus.Upload(data, {
    endpoint: o.endpoint,
    chunkSize,
    retryDelays: o.retryDelays ?? [0, 100, 250, 500, 1000, 2000],
    uploadLengthDeferred: !!o.deferLength,
    parallelUploads: o.parallel ?? 1,
    metadata: { content_id: o.contentId, filename: 'clip.bin' },
    headers: { Authorization: `Bearer ${o.token}` },
    storeFingerprintForResuming: false,
    onBeforeRequest(req) {
      console.error(`${req.getMethod()} offset=${req.getHeader('Upload-Offset')} length=${req.getHeader('Upload-Length')}`)
      if (o.checksum && req.getMethod() === 'PATCH') {
        req.setHeader('Upload-Checksum', checksumOf(Number(req.getHeader('Upload-Offset'))))
      }
    },
    onAfterResponse(req, res) {
      requests.push({
        method: req.getMethod(),
        offset: req.getHeader('Upload-Offset') ?? null,
        status: res.getStatus(),
        newOffset: res.getHeader('Upload-Offset') ?? null,
        concat: req.getHeader('Upload-Concat') ?? null,
        location: res.getHeader('Location') ?? null,
      })
    },
    onShouldRetry(err) {
      const status = err.originalResponse ? err.originalResponse.getStatus() : 0
      retries.push(status)
      return status === 0 || status >= 500 || status === 409 || status === 423
    },
    onSuccess() {
      resolve({ ok: true, url: upload.url })
    },
    onError(err) {
      resolve({
        ok: false,
        url: upload.url,
        status: err.originalResponse ? err.originalResponse.getStatus() : 0,
        body: err.originalResponse ? err.originalResponse.getBody() : String(err),
      })
    },
  })
  upload.start()
})
console.log(JSON.stringify({ ...result, requests, retries }))
