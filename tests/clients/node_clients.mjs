// One chat with a JavaScript client against the server; prints what the client got as
// one JSON line. Used by tests/e2e/test_clients.py and test_real_client_libraries.py.
//
//   node node_clients.mjs <openai|ai-sdk> <mode> <baseURL> <model> <question>
//
// mode: stream | plain (both clients); object | output | tools | tools-stream (ai-sdk only).
import OpenAI from "openai";
import { generateObject, generateText, Output, stepCountIs, streamText, tool } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { z } from "zod";

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

const Work = z.object({ title: z.string(), year: z.number().int().nullable() });
const Person = z.object({ name: z.string(), age: z.number().int(), known_for: Work.nullable() });

async function withAISDK() {
  const provider = createOpenAICompatible({
    name: "copilot-cli-proxy",
    baseURL,
    apiKey: "unused",
    includeUsage: true,
    // The schema then goes as response_format json_schema, not json_object.
    supportsStructuredOutputs: mode === "output",
  });
  const options = { model: provider(model), messages, maxRetries: 0 };
  if (mode === "object") {
    const result = await generateObject({ ...options, schema: Person, schemaName: "person" });
    return { object: result.object, finish_reason: result.finishReason, usage: result.usage };
  }
  // The SDK's current way (generateObject is deprecated in favour of it).
  if (mode === "output") {
    const result = await generateText({ ...options, output: Output.object({ schema: Person }) });
    return { object: result.output, finish_reason: result.finishReason, usage: result.usage };
  }
  if (mode === "tools" || mode === "tools-stream") return await withAISDKTools(options);
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

// The SDK's own agent loop: it runs the tool the model called and asks again.
async function withAISDKTools(options) {
  const ran = [];
  const getWeather = tool({
    description: "The weather in a city.",
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      ran.push({ city });
      return `minus 3 C in ${city}`;
    },
  });
  const agent = { ...options, tools: { get_weather: getWeather }, stopWhen: stepCountIs(3) };
  if (mode === "tools") {
    const result = await generateText(agent);
    const steps = result.steps.map((step) => step.finishReason);
    return { content: result.text, ran, steps, finish_reason: result.finishReason };
  }
  let failure = null;
  const result = streamText({ ...agent, onError: ({ error }) => (failure = error) });
  const pieces = [];
  for await (const piece of result.textStream) pieces.push(piece);
  if (failure) throw failure;
  const steps = (await result.steps).map((step) => step.finishReason);
  return { content: pieces.join(""), ran, steps, finish_reason: await result.finishReason };
}

const run = { openai: withOpenAI, "ai-sdk": withAISDK }[client];
const modes = ["stream", "plain", ...(client === "ai-sdk" ? ["object", "output", "tools", "tools-stream"] : [])];
if (!run || !modes.includes(mode)) {
  console.error("usage: node node_clients.mjs <openai|ai-sdk> <mode> <baseURL> <model> <question>");
  process.exit(2);
}
try {
  console.log(JSON.stringify(await run()));
} catch (error) {
  console.error(`${client} ${mode}: ${error?.stack ?? error}`);
  process.exit(1);
}
