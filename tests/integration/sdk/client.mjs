// Drives the gateway with the official SDKs, changing nothing but the base
// URL and the key, and prints what the application would see as JSON.
//   node client.mjs openai|anthropic json|stream BASE_URL KEY MODEL
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const [sdk, mode, baseURL, apiKey, model] = process.argv.slice(2);
const stream = mode === "stream";
const out = { text: "", usage: null, requestId: null };

if (sdk === "openai") {
  const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey, maxRetries: 0 });
  const request = { model, messages: [{ role: "user", content: "Hello from the SDK" }], max_tokens: 5 };
  if (stream) {
    const chunks = await client.chat.completions.create({ ...request, stream: true });
    for await (const chunk of chunks) {
      out.text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) out.usage = chunk.usage;
    }
  } else {
    const { data, response } = await client.chat.completions.create(request).withResponse();
    out.text = data.choices[0].message.content;
    out.usage = data.usage;
    out.requestId = response.headers.get("x-perpetuo-request-id");
  }
} else {
  const client = new Anthropic({ baseURL, apiKey, maxRetries: 0 });
  const request = { model, max_tokens: 5, messages: [{ role: "user", content: "Hello from the SDK" }] };
  if (stream) {
    const events = client.messages.stream(request);
    events.on("text", (text) => { out.text += text; });
    const final = await events.finalMessage();
    out.usage = final.usage;
  } else {
    const message = await client.messages.create(request);
    out.text = message.content.map((b) => b.text ?? "").join("");
    out.usage = message.usage;
  }
}
console.log(JSON.stringify(out));
