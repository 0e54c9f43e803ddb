// One chat with a JavaScript client against the server; prints what the client got as
// one JSON line. Used by tests/e2e/test_clients_node.py.
//
//   node node_clients.mjs <openai|ai-sdk> <stream|plain> <baseURL> <model> <question>
import OpenAI from "openai";
import { generateText, streamText } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";

const [client, mode, baseURL, model, question] = process.argv.slice(2);
const messages = [{ role: "user", content: question }];

async function withOpenAI() {
  const openai = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0 });
  if (mode === "plain") {
    const completion = await openai.chat.completions.create({ model, messages });
    return {
      content: completion.choices[0].message.content,
      finish_reason: completion.choices[0].finish_reason,
      usage: completion.usage,
    };
  }
  const stream = await openai.chat.completions.create({
    model,
    messages,
    stream: true,
    stream_options: { include_usage: true },
  });
  const pieces = [];
  let finishReason = null;
  let usage = null;
  for await (const chunk of stream) {
    for (const choice of chunk.choices) {
      if (choice.delta.content) pieces.push(choice.delta.content);
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  return { content: pieces.join(""), pieces: pieces.length, finish_reason: finishReason, usage };
}

async function withAISDK() {
  const provider = createOpenAICompatible({
    name: "copilot-cli-proxy",
    baseURL,
    apiKey: "unused",
    includeUsage: true,
  });
  const options = { model: provider(model), messages, maxRetries: 0 };
  if (mode === "plain") {
    const result = await generateText(options);
    return { content: result.text, finish_reason: result.finishReason, usage: result.usage };
  }
  let failure = null;
  const result = streamText({ ...options, onError: ({ error }) => (failure = error) });
  const pieces = [];
  for await (const piece of result.textStream) pieces.push(piece);
  if (failure) throw failure;
  return {
    content: pieces.join(""),
    pieces: pieces.length,
    finish_reason: await result.finishReason,
    usage: await result.usage,
  };
}

const run = { openai: withOpenAI, "ai-sdk": withAISDK }[client];
if (!run || !["stream", "plain"].includes(mode)) {
  console.error("usage: node node_clients.mjs <openai|ai-sdk> <stream|plain> <baseURL> <model> <question>");
  process.exit(2);
}
try {
  console.log(JSON.stringify(await run()));
} catch (error) {
  console.error(`${client} ${mode}: ${error?.stack ?? error}`);
  process.exit(1);
}
