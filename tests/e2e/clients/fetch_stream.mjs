// A plain Node program using the global fetch: no proxy or certificate code, the environment
// (HTTPS_PROXY with NODE_USE_ENV_PROXY=1, NODE_EXTRA_CA_CERTS) does that.
//
//     node fetch_stream.mjs URL
//
// POSTs a streaming chat request to URL and prints the response body exactly as it arrives.

const response = await fetch(process.argv[2], {
  method: "POST",
  headers: { "content-type": "application/json", authorization: "Bearer sk-proj-fetchSECRETabcdefghijklmnop" },
  body: JSON.stringify({ model: "gpt-e2e", messages: [{ role: "user", content: "count" }], stream: true }),
});
if (!response.ok) {
  console.error(`HTTP ${response.status}`);
  process.exit(1);
}
for await (const piece of response.body) {
  process.stdout.write(piece);
}
